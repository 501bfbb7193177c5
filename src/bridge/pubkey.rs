//! Public keys from token data: CKA_EC_POINT to an OpenSSL key and its SPKI.

use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::sha::sha256;

use super::BridgeError;

/// An OpenSSL public key (default provider) from an uncompressed P-256 point.
pub fn p256_public_key(point: &[u8]) -> Result<PKey<Public>, BridgeError> {
    super::clear_openssl_errors();
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)
        .map_err(BridgeError::openssl("load curve P-256"))?;
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
