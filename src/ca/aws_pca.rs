//! `issue --target aws-pca`: before the token signs a CA certificate meant for AWS
//! Private CA's ImportCertificateAuthorityCertificate, every rule AWS enforces on the
//! imported certificate and its chain, each refused with one line naming the rule and
//! the AWS page that states it (a failed import costs another vault visit).

use openssl::x509::X509;

use crate::bridge::{self, der};

use super::validate::Rule;
use super::{refuse, CaError};

const IMPORT: &str = "https://docs.aws.amazon.com/privateca/latest/APIReference/API_ImportCertificateAuthorityCertificate.html";
const RFC_COMPLIANCE: &str = "https://docs.aws.amazon.com/privateca/latest/userguide/RFC-compliance.html";

pub const BASIC_CONSTRAINTS: Rule = Rule { name: "aws-pca-basic-constraints", source: "AWS Private CA RFC compliance: basicConstraints present, critical, CA:TRUE" };
pub const PATH_LENGTH: Rule = Rule { name: "aws-pca-path-length", source: "AWS Private CA RFC compliance: no pathLenConstraint of the certificate's chain violated by importing it" };
pub const NOT_AFTER: Rule = Rule { name: "aws-pca-not-after", source: "AWS Private CA RFC compliance: notAfter not later than the issuing CA's" };
pub const CRITICAL: Rule = Rule { name: "aws-pca-critical-extensions", source: "ImportCertificateAuthorityCertificate: authorityInfoAccess, cRLDistributionPoints, freshestCRL and policyConstraints not critical (certificate and chain)" };
pub const SIZE: Rule = Rule { name: "aws-pca-size", source: "ImportCertificateAuthorityCertificate: a certificate at most 32 KB, the chain at most 2 MB (PEM)" };
pub const CHAIN: Rule = Rule { name: "aws-pca-chain", source: "ImportCertificateAuthorityCertificate: a subordinate is not self-signed; the chain, in order up to its self-signed root, does not hold the certificate" };

/// The rules, as the README lists them.
pub const RULES: [&Rule; 6] = [&BASIC_CONSTRAINTS, &PATH_LENGTH, &NOT_AFTER, &CRITICAL, &SIZE, &CHAIN];

/// Extensions AWS refuses when critical: AIA, CRL DP, Freshest CRL, Policy Constraints.
const NOT_CRITICAL: [(&[u8], &str); 4] = [
    (&[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01], "authorityInfoAccess"),
    (&[0x55, 0x1d, 0x1f], "cRLDistributionPoints"),
    (&[0x55, 0x1d, 0x2e], "freshestCRL"),
    (&[0x55, 0x1d, 0x24], "policyConstraints"),
];

fn no(rule: &Rule, page: &str, why: String) -> CaError {
    refuse(rule.name, format!("{why} (AWS Private CA refuses the import: {page})"))
}

/// The rules on a certificate's own extensions (what a profile makes: checked on its
/// trial certificate, before any token work).
pub fn extension_rules(cert: &X509) -> Result<(), CaError> {
    let cert_der = cert.to_der().map_err(|_| refuse(SIZE.name, "a certificate does not encode"))?;
    let exts = der::extensions(&cert_der).unwrap_or_default();
    let bc = exts.iter().find(|(oid, _)| *oid == [0x55, 0x1d, 0x13]);
    if !bridge::is_ca(cert) || !bc.is_some_and(|(_, critical)| *critical) {
        return Err(no(&BASIC_CONSTRAINTS, RFC_COMPLIANCE, "the certificate's basicConstraints is not critical with CA:TRUE".into()));
    }
    if let Some((_, name)) = exts.iter().filter(|(_, critical)| *critical).find_map(|(oid, _)| NOT_CRITICAL.iter().find(|(o, _)| o == oid)) {
        return Err(no(&CRITICAL, IMPORT, format!("the certificate marks {name} critical")));
    }
    Ok(())
}

/// `cert` (the finished certificate, before the token signs it) and `chain` (its
/// issuer first, up to the root) against AWS Private CA's import rules.
pub fn preflight(cert: &X509, chain: &[&X509]) -> Result<(), CaError> {
    let der_of = |c: &X509| c.to_der().map_err(|_| refuse(SIZE.name, "a certificate does not encode"));
    let cert_der = der_of(cert)?;
    extension_rules(cert)?;
    // A pathLenConstraint p on the chain's i-th CA (0: the issuer) allows p CA
    // certificates below it; i + 1 would be (the intermediates and this one).
    for (i, c) in chain.iter().enumerate() {
        if let Some(p) = c.pathlen() {
            if (p as usize) < i + 1 {
                return Err(no(&PATH_LENGTH, RFC_COMPLIANCE, format!("{} has pathLenConstraint {p}, and this certificate would be CA number {} below it", super::subject_line(c.subject_name()), i + 1)));
            }
        }
    }
    if let Some(issuer) = chain.first() {
        if cert.not_after() > issuer.not_after() {
            return Err(no(&NOT_AFTER, RFC_COMPLIANCE, format!("notAfter {} is later than the issuing CA's ({})", cert.not_after(), issuer.not_after())));
        }
    }
    let mut total = 0usize;
    for (i, c) in std::iter::once(&cert).chain(chain).enumerate() {
        let d = der_of(c)?;
        for (oid, critical) in der::extensions(&d).unwrap_or_default() {
            if let Some((_, name)) = NOT_CRITICAL.iter().find(|(o, _)| *o == oid).filter(|_| critical) {
                let whose = if i == 0 { "the certificate".to_string() } else { format!("chain certificate {} ({})", i, super::subject_line(c.subject_name())) };
                return Err(no(&CRITICAL, IMPORT, format!("{whose} marks {name} critical")));
            }
        }
        let pem = bridge::pem("CERTIFICATE", &d).len();
        if pem > 32 * 1024 {
            return Err(no(&SIZE, IMPORT, format!("a certificate of {pem} bytes (PEM) is over 32 KB")));
        }
        total += if i == 0 { 0 } else { pem };
    }
    if total > 2 * 1024 * 1024 {
        return Err(no(&SIZE, IMPORT, format!("the chain of {total} bytes (PEM) is over 2 MB")));
    }
    let self_signed = cert.issuer_name().to_der().ok() == cert.subject_name().to_der().ok();
    let last_is_root = chain.last().is_some_and(|r| r.issuer_name().to_der().ok() == r.subject_name().to_der().ok());
    if self_signed || !last_is_root || chain.iter().any(|c| c.to_der().ok().as_deref() == Some(&cert_der[..])) {
        return Err(no(&CHAIN, IMPORT, "the chain is not the issuer up to a self-signed root without the certificate itself".into()));
    }
    Ok(())
}
