//! What a certificate is issued for: a PKCS#10 request, or (cross-signing, as Let's
//! Encrypt's ceremony tool's `cross-certificate` mode does) an existing CA
//! certificate, whose subject, public key, subject key identifier and basicConstraints
//! the new certificate repeats under another issuer, optionally with a request from
//! its key's holders (`csr --from-cert`) as proof of possession.

use openssl::pkey::{PKey, Public};
use openssl::x509::{X509NameRef, X509Req, X509};

use crate::bridge::{self, AltName};

use super::{audit, refuse, validate, CaError};

pub enum Applicant<'a> {
    Request(&'a X509Req),
    CrossSign { cert: &'a X509, request: Option<&'a X509Req> },
}

impl Applicant<'_> {
    /// The subject public key, with proof that its holder asked: the request's own
    /// signature; for a cross-certificate without one, the certificate's own signature
    /// (a self-signed root proves its key that way).
    pub fn public_key(&self) -> Result<PKey<Public>, CaError> {
        let verified = |req: &X509Req| -> Result<PKey<Public>, CaError> {
            let public = req.public_key().map_err(|_| refuse("request public key", "unreadable"))?;
            if !req.verify(&public).unwrap_or(false) {
                bridge::clear_openssl_errors();
                return Err(refuse("proof of possession", "the request's signature does not verify with its own public key"));
            }
            Ok(public)
        };
        match self {
            Applicant::Request(req) => verified(req),
            Applicant::CrossSign { cert, request } => {
                let public = cert.public_key().map_err(|_| refuse("cross-sign public key", "unreadable"))?;
                if !bridge::is_ca(cert) {
                    return Err(refuse("cross-sign", "the certificate to cross-sign is not a CA certificate (no cA TRUE)"));
                }
                match request {
                    Some(req) => {
                        let asked = verified(req)?;
                        let same_name = req.subject_name().to_der().ok() == cert.subject_name().to_der().ok();
                        if !asked.public_eq(&public) || !same_name {
                            return Err(refuse("cross-sign", "the request's key or subject is not the certificate's (make it with 'hsm-demo csr --from-cert CERT')"));
                        }
                    }
                    None => {
                        let self_signed = cert.issuer_name().to_der().ok() == cert.subject_name().to_der().ok() && cert.verify(&public).unwrap_or(false);
                        bridge::clear_openssl_errors();
                        if !self_signed {
                            return Err(refuse("proof of possession", "the certificate to cross-sign is not self-signed, so its signature does not prove its key: give --csr, made by the key's holders with 'hsm-demo csr --from-cert CERT'"));
                        }
                    }
                }
                Ok(public)
            }
        }
    }

    pub fn subject(&self) -> &X509NameRef {
        match self {
            Applicant::Request(req) => req.subject_name(),
            Applicant::CrossSign { cert, .. } => cert.subject_name(),
        }
    }

    /// The subjectAltName entries asked for (a cross-certificate repeats none).
    pub fn alt_names(&self) -> Result<Vec<AltName>, CaError> {
        match self {
            Applicant::Request(req) => bridge::requested_alt_names(req).map_err(|e| match e {
                bridge::AltNameError::IpLength(_) => refuse(validate::IP.name, e),
                other => refuse(validate::REQUEST_EXTENSIONS.name, other),
            }),
            Applicant::CrossSign { .. } => Ok(Vec::new()),
        }
    }

    /// The path length: as asked for a CA certificate (default 0); for a
    /// cross-certificate, the original's, present or absent, unless one is asked for.
    pub fn path_len(&self, asked: Option<u32>) -> Option<u32> {
        match self {
            Applicant::Request(_) => Some(asked.unwrap_or(0)),
            Applicant::CrossSign { cert, .. } => asked.or_else(|| cert.pathlen()),
        }
    }

    /// The subjectKeyIdentifier the certificate must carry: RFC 5280 §4.2.1.2 method
    /// (1) of the key, or the cross-signed certificate's own (so that paths built by
    /// key identifier find both).
    pub fn subject_key_id(&self, method_1: &[u8]) -> Vec<u8> {
        match self {
            Applicant::CrossSign { cert, .. } => cert.subject_key_id().map_or_else(|| method_1.to_vec(), |k| k.as_slice().to_vec()),
            Applicant::Request(_) => method_1.to_vec(),
        }
    }

    pub fn is_cross(&self) -> bool {
        matches!(self, Applicant::CrossSign { .. })
    }

    /// The log's inputs: the request's and the cross-signed certificate's SHA-256.
    pub fn digests(&self, inputs: &mut serde_json::Map<String, serde_json::Value>) -> anyhow::Result<Option<String>> {
        let (req, cert) = match self {
            Applicant::Request(req) => (Some(*req), None),
            Applicant::CrossSign { cert, request } => (*request, Some(*cert)),
        };
        if let Some(c) = cert {
            inputs.insert("cross_signed_sha256".into(), audit::hex_digest(&c.to_der()?).into());
        }
        let csr = req.map(|r| r.to_der()).transpose()?.map(|d| audit::hex_digest(&d));
        if let Some(d) = &csr {
            inputs.insert("csr_sha256".into(), d.clone().into());
        }
        Ok(csr)
    }
}
