//! What a token can do, read from its mechanism list and CK_TOKEN_INFO before
//! anything is created: the algorithms hsm-demo can use there, and what a ceremony
//! needs.

use cryptoki::mechanism::MechanismType;

use super::object::{Algorithm, KeyKind};
use super::{Module, TokenError, TokenRef};

/// What a token offers for a ceremony.
pub struct Capabilities {
    /// The mechanisms a ceremony uses that the token has.
    pub mechanisms: Vec<String>,
    /// What the ceremony needs that the token lacks.
    pub missing: Vec<&'static str>,
    pub min_pin: usize,
    /// ulMaxPinLen; 0 is CK_EFFECTIVELY_INFINITE.
    pub max_pin: usize,
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
            .filter(|a| match a.kind() {
                KeyKind::Ec(_) => {
                    have.contains(&MechanismType::ECC_KEY_PAIR_GEN)
                        && (have.contains(&MechanismType::ECDSA) || have.contains(&MechanismType::ECDSA_SHA256))
                }
                KeyKind::Rsa(bits) => {
                    let bits = bits.unwrap_or(2048);
                    have.contains(&MechanismType::RSA_PKCS_KEY_PAIR_GEN)
                        && (have.contains(&MechanismType::RSA_PKCS) || have.contains(&MechanismType::SHA256_RSA_PKCS))
                        && rsa_range.is_none_or(|(min, max)| (min..=max).contains(&bits))
                }
                _ => have.contains(&MechanismType::ECC_EDWARDS_KEY_PAIR_GEN) && have.contains(&MechanismType::EDDSA),
            })
            .collect())
    }

    /// The token's mechanism list.
    pub fn mechanisms(&self, token: &TokenRef) -> Result<Vec<MechanismType>, TokenError> {
        self.ctx
            .get_mechanism_list(token.slot)
            .map_err(TokenError::pkcs11("list mechanisms"))
    }

    /// What the token says it can do that a ceremony needs; `missing` names what it
    /// lacks (empty when everything is there).
    pub fn ceremony_capabilities(
        &self,
        token: &TokenRef,
        algo: Algorithm,
    ) -> Result<Capabilities, TokenError> {
        let info = self.token_info(token.slot)?;
        let mechanisms = self.mechanisms(token)?;
        let has = |m: &MechanismType| mechanisms.contains(m);
        let mut missing = Vec::new();
        let (keygen, sign, what): (MechanismType, &[MechanismType], [&'static str; 2]) = match algo.kind() {
            KeyKind::Ec(_) => (
                MechanismType::ECC_KEY_PAIR_GEN,
                &[MechanismType::ECDSA, MechanismType::ECDSA_SHA256],
                ["CKM_EC_KEY_PAIR_GEN (EC key generation)", "CKM_ECDSA or CKM_ECDSA_SHA256 (ECDSA signing)"],
            ),
            KeyKind::Rsa(_) => (
                MechanismType::RSA_PKCS_KEY_PAIR_GEN,
                &[MechanismType::RSA_PKCS, MechanismType::SHA256_RSA_PKCS],
                ["CKM_RSA_PKCS_KEY_PAIR_GEN (RSA key generation)", "CKM_RSA_PKCS or CKM_SHA256_RSA_PKCS (RSA signing)"],
            ),
            _ => (
                MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
                &[MechanismType::EDDSA],
                ["CKM_EC_EDWARDS_KEY_PAIR_GEN (Edwards key generation)", "CKM_EDDSA (EdDSA signing)"],
            ),
        };
        if !has(&keygen) {
            missing.push(what[0]);
        }
        if !sign.iter().any(has) {
            missing.push(what[1]);
        }
        if !info.rng() {
            missing.push("CKF_RNG (a random number generator)");
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
            min_pin: info.min_pin_length(),
            max_pin: info.max_pin_length(),
        })
    }

}
