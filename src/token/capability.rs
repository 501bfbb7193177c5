//! What a token can do, read from its mechanism list and CK_TOKEN_INFO before
//! anything is created: the algorithms hsm-demo can use there, and what a ceremony
//! needs.

use cryptoki::context::Function;
use cryptoki::mechanism::MechanismType;

use super::object::{Algorithm, Curve, KeyKind};
use super::{Module, TokenError, TokenRef};

/// What a token offers for a ceremony.
pub struct Capabilities {
    /// The mechanisms a ceremony uses that the token has.
    pub mechanisms: Vec<String>,
    /// What the ceremony needs that the token lacks.
    pub missing: Vec<String>,
    pub min_pin: usize,
    /// ulMaxPinLen; `None` for no limit.
    pub max_pin: Option<usize>,
}

/// The mechanisms hsm-demo uses for one family of keys: how the token generates a key
/// pair, and the signing mechanisms of which it needs one.
pub struct Mechanisms {
    pub keygen: (MechanismType, &'static str),
    pub sign: &'static [(MechanismType, &'static str)],
    /// What the two are for, in a list of what a token lacks.
    keygen_purpose: &'static str,
    sign_purpose: &'static str,
}

const EC: Mechanisms = Mechanisms {
    keygen: (MechanismType::ECC_KEY_PAIR_GEN, "CKM_EC_KEY_PAIR_GEN"),
    sign: &[
        (MechanismType::ECDSA, "CKM_ECDSA"),
        (MechanismType::ECDSA_SHA256, "CKM_ECDSA_SHA256"),
    ],
    keygen_purpose: "EC key generation",
    sign_purpose: "ECDSA signing",
};

const RSA: Mechanisms = Mechanisms {
    keygen: (MechanismType::RSA_PKCS_KEY_PAIR_GEN, "CKM_RSA_PKCS_KEY_PAIR_GEN"),
    sign: &[
        (MechanismType::RSA_PKCS, "CKM_RSA_PKCS"),
        (MechanismType::SHA256_RSA_PKCS, "CKM_SHA256_RSA_PKCS"),
    ],
    keygen_purpose: "RSA key generation",
    sign_purpose: "RSA signing",
};

const EDWARDS: Mechanisms = Mechanisms {
    keygen: (MechanismType::ECC_EDWARDS_KEY_PAIR_GEN, "CKM_EC_EDWARDS_KEY_PAIR_GEN"),
    sign: &[(MechanismType::EDDSA, "CKM_EDDSA")],
    keygen_purpose: "Edwards key generation",
    sign_purpose: "EdDSA signing",
};

impl Mechanisms {
    pub fn can_generate(&self, have: &[MechanismType]) -> bool {
        have.contains(&self.keygen.0)
    }

    pub fn can_sign(&self, have: &[MechanismType]) -> bool {
        self.sign.iter().any(|(m, _)| have.contains(m))
    }

    /// "CKM_ECDSA or CKM_ECDSA_SHA256".
    pub fn sign_names(&self) -> String {
        let names: Vec<&str> = self.sign.iter().map(|(_, n)| *n).collect();
        names.join(" or ")
    }
}

impl Algorithm {
    pub fn mechanisms(self) -> &'static Mechanisms {
        match self {
            Algorithm::EcP256 | Algorithm::EcP384 | Algorithm::EcP521 => &EC,
            Algorithm::Rsa2048 | Algorithm::Rsa3072 | Algorithm::Rsa4096 => &RSA,
            Algorithm::Ed25519 => &EDWARDS,
        }
    }
}

impl KeyKind {
    /// The mechanisms to sign with a key of this kind; None for a kind hsm-demo does
    /// not sign with (an EC key on another curve, DSA, an Edwards key not Ed25519).
    pub fn signing_mechanisms(&self) -> Option<&'static Mechanisms> {
        match self {
            KeyKind::Ec(Some(Curve::P256 | Curve::P384 | Curve::P521)) => Some(&EC),
            KeyKind::Rsa(_) => Some(&RSA),
            KeyKind::EdDsa => Some(&EDWARDS),
            _ => None,
        }
    }
}

impl Module {
    /// The algorithms of `Algorithm::ALL` the token lists both a key generation and a
    /// signing mechanism for (RSA sizes within CKM_RSA_PKCS_KEY_PAIR_GEN's key size
    /// range, when the token reports one).
    pub fn algorithms(&self, token: &TokenRef) -> Result<Vec<Algorithm>, TokenError> {
        let have = self.mechanisms(token)?;
        let rsa_range = self
            .ctx
            .get_mechanism_info(token.slot, MechanismType::RSA_PKCS_KEY_PAIR_GEN)
            .ok()
            .map(|i| (i.min_key_size() as u64, i.max_key_size() as u64));
        Ok(Algorithm::ALL
            .into_iter()
            .filter(|a| {
                let m = a.mechanisms();
                let size_ok = match a.kind() {
                    KeyKind::Rsa(bits) => {
                        let bits = bits.unwrap_or(2048);
                        rsa_range.is_none_or(|(min, max)| (min..=max).contains(&bits))
                    }
                    _ => true,
                };
                m.can_generate(&have) && m.can_sign(&have) && size_ok
            })
            .collect())
    }

    /// The token's mechanism list.
    pub fn mechanisms(&self, token: &TokenRef) -> Result<Vec<MechanismType>, TokenError> {
        self.ctx
            .get_mechanism_list(token.slot)
            .map_err(TokenError::pkcs11("list mechanisms"))
    }

    /// The functions of `wanted` that the module's function list leaves empty (AWS
    /// CloudHSM's SDK 5 documents no C_InitToken, C_InitPIN, C_SetPIN), named by the
    /// text given with each. A module that fills the slot with a stub answering
    /// CKR_FUNCTION_NOT_SUPPORTED is found out at the call instead; every PIN change is
    /// made so that such a refusal leaves the PIN as it was.
    pub fn missing_functions(&self, wanted: &[(Function, &'static str)]) -> Vec<String> {
        wanted
            .iter()
            .filter(|(f, _)| !self.ctx.is_fn_supported(*f))
            .map(|(_, what)| (*what).to_string())
            .collect()
    }

    /// Refuses, exit 3, before anything changes, when the module lacks a function that
    /// what is about to happen to the token labelled `token` needs.
    pub fn require_functions(
        &self,
        token: &str,
        what: &'static str,
        wanted: &[(Function, &'static str)],
    ) -> Result<(), TokenError> {
        let missing = self.missing_functions(wanted);
        if missing.is_empty() {
            return Ok(());
        }
        Err(TokenError::Incapable {
            token: token.to_string(),
            what,
            missing: missing.join(", "),
        })
    }

    /// The longest PIN the token takes (None: no limit), for a quorum secret's shape.
    pub fn max_pin_len(&self, token: &TokenRef) -> Result<Option<usize>, TokenError> {
        Ok(self.token_info(token.slot)?.max_pin)
    }

    /// What the token says it can do that a ceremony needs; `missing` names what it
    /// lacks (empty when everything is there). `quorum`: the ceremony will replace a PIN
    /// (SO or activation quorum).
    pub fn ceremony_capabilities(
        &self,
        token: &TokenRef,
        algo: Algorithm,
        quorum: bool,
    ) -> Result<Capabilities, TokenError> {
        let info = self.token_info(token.slot)?;
        let mechanisms = self.mechanisms(token)?;
        let mut missing = Vec::new();
        let m = algo.mechanisms();
        if !m.can_generate(&mechanisms) {
            missing.push(format!("{} ({})", m.keygen.1, m.keygen_purpose));
        }
        if !m.can_sign(&mechanisms) {
            missing.push(format!("{} ({})", m.sign_names(), m.sign_purpose));
        }
        if !info.rng() {
            missing.push("CKF_RNG (a random number generator)".into());
        }
        if quorum {
            missing.extend(self.missing_functions(&[(Function::SetPIN, "C_SetPIN (a quorum replaces a PIN)")]));
        }
        Ok(Capabilities {
            mechanisms: mechanisms
                .iter()
                .map(|m| m.to_string())
                .filter(|m| {
                    m.contains("KEY_PAIR_GEN") || m.starts_with("CKM_ECDSA") || m == "CKM_EDDSA" || m.contains("RSA_PKCS")
                })
                .collect(),
            missing,
            min_pin: info.min_pin,
            max_pin: info.max_pin,
        })
    }

}
