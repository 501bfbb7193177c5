//! CA certificates as token objects (PKCS#11 v2.40 §4.6.3, X.509 public key
//! certificate objects): CKO_CERTIFICATE, CKC_X_509, public (readable without a PIN),
//! with the key's CKA_ID and label, so applications and the openssl CLI find a key's
//! certificate by URI (`pkcs11:...;type=cert`: pkcs11-provider, p11tool, pkcs11-tool).

use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass, ObjectHandle};

use super::object::KeyObject;
use super::{Session, TokenError};

/// What a certificate object holds: the DER of the certificate and of its subject,
/// issuer and serial number (as the token stores them: DER Name, DER INTEGER).
pub struct CertParts {
    pub der: Vec<u8>,
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
    pub serial: Vec<u8>,
}

/// A certificate object the token holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertObject {
    #[serde(skip)]
    pub handle: ObjectHandle,
    pub label: String,
    #[serde(serialize_with = "hex_id")]
    pub id: Vec<u8>,
    #[serde(skip)]
    pub der: Vec<u8>,
    pub uri: String,
}

fn hex_id<S: serde::Serializer>(id: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(id))
}

/// Whether the certificate was stored, or was there already.
pub enum Stored {
    New(String),
    AlreadyThere(String),
}

impl<R> Session<R> {
    /// Every certificate object this session can see (public objects: no PIN needed).
    pub fn list_certificates(&self) -> Result<Vec<CertObject>, TokenError> {
        let what = "list the certificate objects";
        let mut out = Vec::new();
        for h in self.find(&[Attribute::Class(ObjectClass::CERTIFICATE)], what)? {
            let attrs = self
                .inner
                .get_attributes(h, &[AttributeType::Label, AttributeType::Id, AttributeType::Value])
                .map_err(TokenError::pkcs11(what))?;
            let (mut label, mut id, mut der) = (String::new(), Vec::new(), Vec::new());
            for a in attrs {
                match a {
                    Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                    Attribute::Id(i) => id = i,
                    Attribute::Value(v) => der = v,
                    _ => {}
                }
            }
            let uri = self.token().key_uri(&label, &id, "cert");
            out.push(CertObject { handle: h, label, id, der, uri });
        }
        out.sort_by(|a, b| (&a.label, &a.id).cmp(&(&b.label, &b.id)));
        Ok(out)
    }

    /// The certificate objects beside `key` (its CKA_ID).
    pub fn certificates_of(&self, key: &KeyObject) -> Result<Vec<CertObject>, TokenError> {
        Ok(self.list_certificates()?.into_iter().filter(|c| c.id == key.id).collect())
    }
}

impl<R> Session<R> {
    /// Stores `cert` as a public certificate object beside `key` (its CKA_ID and
    /// label), unless the token holds that very certificate already.
    pub fn store_certificate(&self, key: &KeyObject, cert: &CertParts) -> Result<Stored, TokenError> {
        let uri = self.token().key_uri(&key.label, &key.id, "cert");
        if self.certificates_of(key)?.iter().any(|c| c.der == cert.der) {
            return Ok(Stored::AlreadyThere(uri));
        }
        let template = [
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(key.label.as_bytes().to_vec()),
            Attribute::Id(key.id.clone()),
            Attribute::Subject(cert.subject.clone()),
            Attribute::Issuer(cert.issuer.clone()),
            Attribute::SerialNumber(cert.serial.clone()),
            Attribute::Value(cert.der.clone()),
        ];
        self.inner
            .create_object(&template)
            .map_err(TokenError::pkcs11("store the certificate (C_CreateObject, CKO_CERTIFICATE)"))?;
        Ok(Stored::New(uri))
    }

    /// Destroys the certificate objects beside `key`; how many there were.
    pub fn destroy_certificates_of(&self, key: &KeyObject) -> Result<usize, TokenError> {
        let certs = self.certificates_of(key)?;
        for c in &certs {
            self.inner
                .destroy_object(c.handle)
                .map_err(TokenError::pkcs11("destroy the certificate object"))?;
        }
        Ok(certs.len())
    }
}
