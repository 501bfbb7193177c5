//! Public keys from token data: CKA_EC_POINT to an OpenSSL key and its SPKI.

use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::sha::sha256;

use super::BridgeError;

/// Named EC curves by the DER of their OID (CKA_EC_PARAMS).
pub fn curve_nid(params: &[u8]) -> Option<Nid> {
    match params {
        [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] => Some(Nid::X9_62_PRIME256V1),
        [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22] => Some(Nid::SECP384R1),
        [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23] => Some(Nid::SECP521R1),
        _ => None,
    }
}

/// An RSA public key from CKA_MODULUS and CKA_PUBLIC_EXPONENT.
pub fn rsa_public_key(n: &[u8], e: &[u8]) -> Result<PKey<Public>, BridgeError> {
    super::clear_openssl_errors();
    let op = BridgeError::openssl("build the RSA public key");
    let n = openssl::bn::BigNum::from_slice(n).map_err(op)?;
    let e = openssl::bn::BigNum::from_slice(e)
        .map_err(BridgeError::openssl("build the RSA public key"))?;
    let rsa = openssl::rsa::Rsa::from_public_components(n, e)
        .map_err(BridgeError::openssl("build the RSA public key"))?;
    PKey::from_rsa(rsa).map_err(BridgeError::openssl("wrap the RSA public key"))
}

/// An Ed25519 public key from its 32 raw bytes.
pub fn ed25519_public_key(raw: &[u8]) -> Result<PKey<Public>, BridgeError> {
    super::clear_openssl_errors();
    PKey::public_key_from_raw_bytes(raw, openssl::pkey::Id::ED25519)
        .map_err(BridgeError::openssl("build the Ed25519 public key"))
}

/// An OpenSSL public key (default provider) from an uncompressed point on `curve`.
pub fn ec_public_key(curve: Nid, point: &[u8]) -> Result<PKey<Public>, BridgeError> {
    super::clear_openssl_errors();
    let group = EcGroup::from_curve_name(curve)
        .map_err(BridgeError::openssl("load the curve"))?;
    let mut ctx = BigNumContext::new().map_err(BridgeError::openssl("allocate a BN_CTX"))?;
    let point = EcPoint::from_bytes(&group, point, &mut ctx)
        .map_err(BridgeError::openssl("decode the EC point"))?;
    let key = EcKey::from_public_key(&group, &point)
        .map_err(BridgeError::openssl("build the EC public key"))?;
    key.check_key()
        .map_err(BridgeError::openssl("check the EC public key"))?;
    PKey::from_ec_key(key).map_err(BridgeError::openssl("wrap the EC public key"))
}

/// A PEM SubjectPublicKeyInfo.
pub fn public_key_from_pem(pem: &[u8]) -> Option<PKey<Public>> {
    let key = PKey::public_key_from_pem(pem).ok();
    super::clear_openssl_errors();
    key
}

/// A PEM certificate and the SHA-256 of its DER.
pub fn certificate_from_pem(pem: &[u8]) -> Option<(openssl::x509::X509, [u8; 32])> {
    let cert = openssl::x509::X509::from_pem(pem).ok();
    super::clear_openssl_errors();
    let cert = cert?;
    let der = cert.to_der().ok()?;
    Some((cert, sha256(&der)))
}

/// SHA-256 over the DER SubjectPublicKeyInfo: the fingerprint
/// `openssl pkey -pubin -outform DER | openssl dgst -sha256` prints.
pub fn spki_sha256(key: &PKey<Public>) -> Result<[u8; 32], BridgeError> {
    let der = key
        .public_key_to_der()
        .map_err(BridgeError::openssl("encode the SPKI"))?;
    Ok(sha256(&der))
}

/// The key check value of an AES-256 key: the first 3 bytes of AES-ECB over a zero
/// block, hex (the form HSM vendors print for key ceremonies).
pub fn aes_check_value(key: &[u8]) -> Result<String, BridgeError> {
    let op = BridgeError::openssl("compute the key check value");
    let mut c = openssl::symm::Crypter::new(openssl::symm::Cipher::aes_256_ecb(), openssl::symm::Mode::Encrypt, key, None).map_err(op)?;
    c.pad(false);
    let mut out = vec![0u8; 32];
    let n = c.update(&[0u8; 16], &mut out).map_err(BridgeError::openssl("compute the key check value"))?;
    Ok(hex::encode(&out[..n.min(3)]))
}

/// A public key's parts, as a token's public key object holds them.
pub enum KeyParts {
    /// The uncompressed point.
    Ec(Vec<u8>),
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ed25519(Vec<u8>),
}

/// The parts of `key` (EC P-256/384/521, RSA, Ed25519).
pub fn key_parts(key: &PKey<openssl::pkey::Public>) -> Result<KeyParts, BridgeError> {
    use openssl::pkey::Id;
    let op = BridgeError::openssl("read the public key's parts");
    match key.id() {
        Id::EC => {
            let ec = key.ec_key().map_err(op)?;
            let mut ctx = openssl::bn::BigNumContext::new().map_err(BridgeError::openssl("allocate a BN context"))?;
            let point = ec
                .public_key()
                .to_bytes(ec.group(), openssl::ec::PointConversionForm::UNCOMPRESSED, &mut ctx)
                .map_err(BridgeError::openssl("encode the EC point"))?;
            Ok(KeyParts::Ec(point))
        }
        Id::RSA => {
            let rsa = key.rsa().map_err(op)?;
            Ok(KeyParts::Rsa { n: rsa.n().to_vec(), e: rsa.e().to_vec() })
        }
        _ => Ok(KeyParts::Ed25519(key.raw_public_key().map_err(op)?)),
    }
}
