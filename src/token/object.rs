//! What the token layer says about key objects: typed class, kind and curve, custody
//! attributes, the selector a command gives, and CKA_EC_POINT decoding.

use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};

pub use super::custody::Custody;

/// DER of the named curve prime256v1 (1.2.840.10045.3.1.7), the CKA_EC_PARAMS value.
pub const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// secp384r1 (1.3.132.0.34) and secp521r1 (1.3.132.0.35).
const P384_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
pub const P521_PARAMS: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
/// id-Ed25519 (1.3.101.112, RFC 8410), the CKA_EC_PARAMS of an Ed25519 key; tokens
/// may also report the PrintableString "edwards25519" (PKCS#11 3.0 §2.3.10).
pub const ED25519_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";

/// The key algorithms hsm-demo generates. RSA under 2048 bits and curves under P-256
/// are not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    EcP256,
    EcP384,
    EcP521,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    Ed25519,
}

impl Algorithm {
    pub const ALL: [Algorithm; 7] = [
        Algorithm::EcP256,
        Algorithm::EcP384,
        Algorithm::EcP521,
        Algorithm::Rsa2048,
        Algorithm::Rsa3072,
        Algorithm::Rsa4096,
        Algorithm::Ed25519,
    ];

    /// The name on the command line: ec-p256, rsa-3072, ed25519.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::EcP256 => "ec-p256",
            Algorithm::EcP384 => "ec-p384",
            Algorithm::EcP521 => "ec-p521",
            Algorithm::Rsa2048 => "rsa-2048",
            Algorithm::Rsa3072 => "rsa-3072",
            Algorithm::Rsa4096 => "rsa-4096",
            Algorithm::Ed25519 => "ed25519",
        }
    }

    /// "ECDSA P-256", "RSA-3072", "Ed25519".
    pub fn describe(self) -> String {
        match self.kind() {
            KeyKind::Ec(Some(curve)) => format!("ECDSA {}", curve.name()),
            KeyKind::Rsa(Some(bits)) => format!("RSA-{bits}"),
            _ => "Ed25519".into(),
        }
    }

    /// The ceremony's form: "EC/P-256", "RSA/3072", "EdDSA/Ed25519".
    pub fn step_name(self) -> String {
        match self.kind() {
            KeyKind::Ec(Some(curve)) => format!("EC/{}", curve.name()),
            KeyKind::Rsa(Some(bits)) => format!("RSA/{bits}"),
            _ => "EdDSA/Ed25519".into(),
        }
    }

    pub fn kind(self) -> KeyKind {
        match self {
            Algorithm::EcP256 => KeyKind::Ec(Some(Curve::P256)),
            Algorithm::EcP384 => KeyKind::Ec(Some(Curve::P384)),
            Algorithm::EcP521 => KeyKind::Ec(Some(Curve::P521)),
            Algorithm::Rsa2048 => KeyKind::Rsa(Some(2048)),
            Algorithm::Rsa3072 => KeyKind::Rsa(Some(3072)),
            Algorithm::Rsa4096 => KeyKind::Rsa(Some(4096)),
            Algorithm::Ed25519 => KeyKind::EdDsa,
        }
    }
}

/// A name that is not one of [`Algorithm::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not an algorithm hsm-demo generates; use one of {1}")]
pub struct UnknownAlgorithm(String, String);

impl std::str::FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, UnknownAlgorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                UnknownAlgorithm(s.to_string(), all.join(", "))
            })
    }
}

/// Which key a command means: by label, by id, or both (from --label or --key URI).
#[derive(Debug, Clone, Default)]
pub struct KeySelector {
    pub label: Option<String>,
    pub id: Option<Vec<u8>>,
}

impl KeySelector {
    pub(super) fn template(&self, class: ObjectClass) -> Vec<Attribute> {
        let mut t = vec![Attribute::Class(class)];
        if let Some(l) = &self.label {
            t.push(Attribute::Label(l.as_bytes().to_vec()));
        }
        if let Some(id) = &self.id {
            t.push(Attribute::Id(id.clone()));
        }
        t
    }

    pub fn describe(&self) -> String {
        match (&self.label, &self.id) {
            (Some(l), Some(id)) => format!("label '{l}' and id {}", hex::encode(id)),
            (Some(l), None) => format!("label '{l}'"),
            (None, Some(id)) => format!("id {}", hex::encode(id)),
            (None, None) => "any key".to_string(),
        }
    }
}

/// CKA_CLASS of a key object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyClass {
    Private,
    Public,
}

impl KeyClass {
    /// The name RFC 7512 uses for the URI's `type` attribute.
    pub fn uri_type(self) -> &'static str {
        match self {
            KeyClass::Private => "private",
            KeyClass::Public => "public",
        }
    }

    pub(super) fn object_class(self) -> ObjectClass {
        match self {
            KeyClass::Private => ObjectClass::PRIVATE_KEY,
            KeyClass::Public => ObjectClass::PUBLIC_KEY,
        }
    }
}

/// A named elliptic curve, from CKA_EC_PARAMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
    /// Parameters hsm-demo does not name.
    Other,
}

impl Curve {
    /// The CKA_EC_PARAMS value (DER OID) of a named curve.
    pub fn params(self) -> Option<&'static [u8]> {
        match self {
            Curve::P256 => Some(P256_PARAMS),
            Curve::P384 => Some(P384_PARAMS),
            Curve::P521 => Some(P521_PARAMS),
            Curve::Other => None,
        }
    }

    fn from_params(params: &[u8]) -> Curve {
        match params {
            P256_PARAMS => Curve::P256,
            P384_PARAMS => Curve::P384,
            P521_PARAMS => Curve::P521,
            _ => Curve::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
            Curve::Other => "other",
        }
    }
}

/// CKA_KEY_TYPE, with the curve for EC keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    Ec(Option<Curve>),
    /// With CKA_MODULUS_BITS when the token reports it.
    Rsa(Option<u64>),
    /// Ed25519 (other Edwards curves are `Other`).
    EdDsa,
    Other(String),
}

impl KeyKind {
    pub(super) fn new(key_type: Option<KeyType>, params: Option<&[u8]>, bits: Option<u64>) -> KeyKind {
        match key_type {
            Some(KeyType::EC) => KeyKind::Ec(params.map(Curve::from_params)),
            Some(KeyType::RSA) => KeyKind::Rsa(bits),
            Some(KeyType::EC_EDWARDS)
                if params.is_none_or(|p| p == ED25519_PARAMS || p == ED25519_NAME) =>
            {
                KeyKind::EdDsa
            }
            Some(KeyType::EC_EDWARDS) => KeyKind::Other("EdDSA (not Ed25519)".into()),
            Some(other) => KeyKind::Other(other.to_string()),
            None => KeyKind::Other("unknown".into()),
        }
    }

    /// "EC", "RSA", "EdDSA" or the PKCS#11 name.
    pub fn type_name(&self) -> &str {
        match self {
            KeyKind::Ec(_) => "EC",
            KeyKind::Rsa(_) => "RSA",
            KeyKind::EdDsa => "EdDSA",
            KeyKind::Other(name) => name,
        }
    }

    pub fn curve(&self) -> Option<Curve> {
        match self {
            KeyKind::Ec(curve) => *curve,
            _ => None,
        }
    }

    /// The size shown with the type: the curve, the modulus bits, "Ed25519".
    pub fn size_name(&self) -> Option<String> {
        match self {
            KeyKind::Ec(curve) => curve.map(|c| c.name().to_string()),
            KeyKind::Rsa(bits) => bits.map(|b| format!("{b} bits")),
            KeyKind::EdDsa => Some("Ed25519".into()),
            KeyKind::Other(_) => None,
        }
    }
}

/// A key object as the token describes it.
#[derive(Debug, Clone)]
pub struct KeyObject {
    pub handle: ObjectHandle,
    pub class: KeyClass,
    pub label: String,
    pub id: Vec<u8>,
    pub kind: KeyKind,
    /// CKA_SIGN (private keys only).
    pub can_sign: Option<bool>,
    /// The custody attributes (private keys only).
    pub custody: Option<Custody>,
    /// The usage attributes the token reports true (sign, verify, decrypt, ...).
    pub usage: Vec<&'static str>,
    pub uri: String,
}

/// Accepts a raw uncompressed/compressed point or one wrapped in a DER OCTET STRING.
pub fn unwrap_ec_point(bytes: &[u8]) -> Option<Vec<u8>> {
    let is_point = |p: &[u8]| {
        matches!(
            (p.first(), p.len()),
            (Some(4), 65) | (Some(2 | 3), 33) | (Some(4), 97) | (Some(4), 133)
        )
    };
    // DER: 0x04 tag, short-form length equal to the rest, content a valid point.
    if bytes.len() >= 2
        && bytes[0] == 0x04
        && usize::from(bytes[1]) == bytes.len() - 2
        && bytes[1] < 0x80
    {
        let inner = &bytes[2..];
        if is_point(inner) {
            return Some(inner.to_vec());
        }
    }
    if bytes.len() >= 3
        && bytes[0] == 0x04
        && bytes[1] == 0x81
        && usize::from(bytes[2]) == bytes.len() - 3
    {
        let inner = &bytes[3..];
        if is_point(inner) {
            return Some(inner.to_vec());
        }
    }
    if is_point(bytes) {
        return Some(bytes.to_vec());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_der_and_raw_points() {
        let mut point = vec![0x04];
        point.extend([0x11; 64]);
        let mut der = vec![0x04, 0x41];
        der.extend(&point);
        assert_eq!(unwrap_ec_point(&der).unwrap(), point);
        assert_eq!(unwrap_ec_point(&point).unwrap(), point);
        // A raw point whose X happens to start with 0x3f must not be read as DER.
        let mut tricky = vec![0x04, 0x3f];
        tricky.extend([0x22; 63]);
        assert_eq!(unwrap_ec_point(&tricky).unwrap(), tricky);
        assert!(unwrap_ec_point(&[0x04, 0x02, 0x01]).is_none());
    }

}
