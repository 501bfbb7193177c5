//! Issuing a certificate from a request and a profile, with every rule checked on the
//! finished structure before the token signs (see `bridge::pkix`), and the record
//! written before the token signs and completed after.

use openssl::pkey::{PKey, Public};
use openssl::x509::{X509KeyUsage, X509};

use crate::bridge::{self, AltName, CertTemplate};
use crate::console::escape;
use crate::hsm::{Hsm, SigningKey};

use super::applicant::Applicant;
use super::db::CertRecord;
use super::profile::IssueProfile;
use super::record::CertState;
use super::{audit, db_err, refuse, serial_hex, validate, CaDir, CaError};

pub struct IssueOptions {
    pub profile: IssueProfile,
    pub path_len: Option<u32>,
    pub days: Option<u32>,
    /// The operator's note for the log entry.
    pub note: Option<String>,
    /// Where the command writes the certificate (PEM), recorded with its digest.
    pub out: Option<std::path::PathBuf>,
    /// What the CA adds beyond the profile (ca.cnf and the command line).
    pub additions: super::Additions,
    /// Check AWS Private CA's import rules before signing (`--target aws-pca`).
    pub aws_pca: bool,
}

pub struct Issued {
    pub cert: X509,
    pub serial: String,
    /// What was checked, on the lint copy and on the signed certificate.
    pub checks: Vec<&'static str>,
}

/// The issuer may sign certificates: a CA (basicConstraints cA) whose keyUsage, if
/// present, has keyCertSign (RFC 5280 §4.2.1.3, §6.1.4 (k), (n)).
pub fn check_issuer(ca: &X509) -> Result<(), CaError> {
    if !bridge::is_ca(ca) {
        return Err(refuse("issuer is a CA", "the CA certificate has no basicConstraints cA TRUE"));
    }
    if ca.key_usage().is_some_and(|ku| !ku.contains(X509KeyUsage::KEY_CERT_SIGN)) {
        return Err(refuse("issuer keyUsage", "the CA certificate's keyUsage lacks keyCertSign"));
    }
    Ok(())
}

/// Issues a certificate for `applicant` under `ca` with `key` (the CA's token key).
pub fn issue(ca: &mut CaDir, hsm: &Hsm, key: &SigningKey<'_>, applicant: &Applicant<'_>, opts: &IssueOptions) -> anyhow::Result<Issued> {
    let profile = &opts.profile;
    let ca_public = ca.cert.public_key()?;
    if !ca_public.public_eq(key.public()) {
        return Err(CaError::Input(format!(
            "the token key {} is not the key of the CA certificate in {}",
            ca.key_uri,
            ca.path.display()
        ))
        .into());
    }
    // The request (or the certificate to cross-sign).
    if applicant.is_cross() && !profile.ca {
        return Err(refuse("cross-sign", format!("a cross-certificate is a CA certificate: profile {} is not a CA profile", profile.name)).into());
    }
    let public = applicant.public_key()?;
    let key_kind = validate::subject_key(&public)?;
    let rsa_subject = key_kind == "RSA";
    check_issuer(&ca.cert)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    validate::ca_valid_now(&ca.cert, now)?;
    // Validity.
    let days = opts.days.unwrap_or(profile.default_days);
    if days == 0 {
        return Err(refuse("validity", "--days must be at least 1").into());
    }
    if let Some(max) = profile.max_days {
        if days > max {
            return Err(refuse("validity", format!("{days} days is more than profile {} allows ({max})", profile.name)).into());
        }
    }
    let not_after = now + i64::from(days) * 86_400;
    let (_, issuer_not_after) = bridge::validity(&ca.cert)?;
    if not_after > issuer_not_after {
        return Err(refuse(
            "validity within the issuer's",
            format!("{days} days would end after the CA certificate's notAfter ({})", ca.cert.not_after()),
        )
        .into());
    }
    // Path length (RFC 5280 §6.1.4 (l), (m); AWS Private CA refuses the same).
    let path_len = match (profile.ca, opts.path_len) {
        (false, Some(_)) => return Err(refuse("path length", format!("--path-len applies to CA profiles, not {}", profile.name)).into()),
        (false, None) => None,
        (true, requested) => {
            let n = applicant.path_len(requested);
            if let Some(issuer) = ca.cert.pathlen() {
                match n {
                    Some(n) if n >= issuer => {
                        return Err(refuse("path length below the issuer's", format!("pathLenConstraint {n} is not below the issuer's {issuer}")).into())
                    }
                    None => {
                        return Err(refuse("path length below the issuer's", format!("the certificate would carry no pathLenConstraint under an issuer whose is {issuer}; give --path-len below {issuer}")).into())
                    }
                    _ => {}
                }
            }
            n
        }
    };
    // Subject and subjectAltName from the request, as far as the profile allows.
    let subject = applicant.subject().to_owned()?;
    validate::subject(&subject)?;
    let sans = applicant.alt_names()?;
    if let Some(bad) = sans.iter().find(|n| !profile.san.iter().any(|k| k == n.kind())) {
        return Err(refuse(
            "subjectAltName from the request",
            format!(
                "profile {} does not take {} (it takes: {})",
                profile.name,
                escape(&bad.to_string()),
                if profile.san.is_empty() { "none".into() } else { profile.san.join(", ") }
            ),
        )
        .into());
    }
    if profile.san_required && sans.is_empty() {
        return Err(refuse("subjectAltName required", format!("profile {} needs a subjectAltName of kind {}", profile.name, profile.san.join(" or "))).into());
    }
    validate::alt_names(&sans, profile.wildcard)?;
    if subject.entries().next().is_none() && sans.is_empty() {
        return Err(refuse(validate::EMPTY_SUBJECT.name, "the request has neither a subject nor a subjectAltName").into());
    }
    if profile.ca && subject.entries().next().is_none() {
        return Err(refuse("subject", "a CA certificate needs a subject").into());
    }
    // Serial: 16 bytes from the token RNG, positive with its top byte nonzero.
    let mut serial = hsm.session().random(16)?;
    serial[0] = (serial[0] & 0x7f) | 0x40;
    let serial_text = serial_hex(&serial)?;
    let expected_ski = applicant.subject_key_id(&openssl::sha::sha1(&spki_bit_string(&public)?));
    let mut additions = opts.additions.clone();
    if applicant.is_cross() {
        // The cross-signed CA's own subject key identifier, exactly.
        let ski: Vec<String> = expected_ski.iter().map(|b| format!("{b:02X}")).collect();
        super::additions::set(&mut additions.subordinate, "subjectKeyIdentifier", ski.join(":"));
    }
    let (conf, section) = profile.effective(path_len, rsa_subject, &additions)?;
    key.with_tbs_signer(|signer| {
        let template = CertTemplate {
            issuer: &ca.cert,
            subject: &subject,
            public: &public,
            serial: &serial,
            not_before: now,
            not_after,
            sans: &sans,
            // RFC 5280 §4.2.1.6: with an empty subject, the subjectAltName is critical.
            san_critical: subject.entries().next().is_none(),
            extensions: (&conf, &section),
        };
        // Lint: every rule on the finished structure, signed by the throwaway key.
        let lint = bridge::build_certificate(&template, signer)
            .map_err(|e| refuse(validate::PROFILE_BUILDS.name, format!("profile {}: {e:#}", profile.name)))?;
        let issuers: Vec<&X509> = std::iter::once(&ca.cert).chain(&ca.chain).collect();
        if opts.aws_pca {
            if !profile.ca {
                return Err(refuse(super::aws_pca::CHAIN.name, format!("--target aws-pca imports a CA certificate; profile {} is not a CA profile", profile.name)).into());
            }
            super::aws_pca::preflight(&lint, &issuers)?;
        }
        validate::built_extensions(&lint, profile.ca, rsa_subject)?;
        let mut checks = lint_checks(&lint, ca, (&public, &subject, &expected_ski), profile, path_len, &sans)?;
        if applicant.is_cross() {
            for c in &mut checks {
                *c = match *c {
                    "proof of possession (request signature verifies)" => "proof of possession (the request's, or the self-signed certificate's own signature)",
                    "subject and subjectAltName from the request as the profile allows" => "subject, key and basicConstraints of the cross-signed certificate",
                    "SKI = SHA-1 of the subject key (RFC 5280 §4.2.1.2 (1)), AKI = issuer SKI" => "SKI = the cross-signed certificate's, AKI = issuer SKI",
                    other => other,
                };
            }
        }
        if super::additions::check_within_constraints(&lint, &issuers, !profile.ca, &sans)? {
            checks.push("within the issuers' nameConstraints (OpenSSL's NAME_CONSTRAINTS_check)");
        }
        if opts.aws_pca {
            checks.push("AWS Private CA's import rules (basicConstraints, path length, notAfter, critical extensions, sizes, chain)");
        }
        checks.insert(0, key_kind_check(key_kind));
        // Record first, then sign: a kill -9 from here on leaves a pending record that the
        // next command marks abandoned; the serial is never used again.
        let record = CertRecord {
            serial: serial_text.clone(),
            state: CertState::Pending,
            subject: subject_line(&subject),
            profile: Some(profile.name.clone()),
            not_before: Some(now),
            not_after,
            revoked_at: None,
            reason: None,
            cert_der: None,
        };
        if !ca.db.reserve(&record, now).map_err(db_err("reserve the serial"))? {
            anyhow::bail!("serial {serial_text} from the token RNG is already recorded; nothing was signed (run the command again)");
        }
        // The log says what is about to be signed before the token signs it.
        let mut inputs = serde_json::Map::new();
        let csr_sha256 = applicant.digests(&mut inputs)?;
        inputs.insert("profile".into(), profile.name.clone().into());
        if let Some(sha) = &opts.additions.config_sha256 {
            inputs.insert("ca_cnf_sha256".into(), sha.clone().into());
        }
        ca.log.begin("issue", &audit::Who::of(hsm, &ca.key_uri, opts.note.as_deref()), inputs);
        ca.log.push(&audit::Entry::Issue {
            serial: serial_text.clone(),
            subject: record.subject.clone(),
            profile: profile.name.clone(),
            not_before: now,
            not_after,
            csr_sha256,
        });
        if let Err(e) = ca.log.flush() {
            ca.db.abandon(&serial_text).map_err(db_err("mark the serial abandoned"))?;
            return Err(e);
        }
        let signed = (|| -> anyhow::Result<(X509, Vec<u8>)> {
            let cert = signer.token_sign_certificate(&lint)?;
            after_checks(&cert, &lint, ca, &public)?;
            let der = cert.to_der()?;
            Ok((cert, der))
        })();
        let (cert, der) = match signed {
            Ok(x) => x,
            Err(e) => {
                ca.db.abandon(&serial_text).map_err(db_err("mark the serial abandoned"))?;
                let records = ca.db.record_entry(&serial_text).map_err(db_err("read a record"))?;
                ca.log.abandon(&format!("{e:#}"), records.into_iter().collect())?;
                return Err(e);
            }
        };
        ca.db.complete(&serial_text, &der).map_err(db_err("record the certificate"))?;
        let mut outputs = serde_json::Map::new();
        outputs.insert("serial".into(), serial_text.clone().into());
        outputs.insert("cert_sha256".into(), audit::hex_digest(&der).into());
        if let Some(out) = &opts.out {
            audit::record_output(&mut outputs, out, &cert.to_pem()?);
        }
        ca.log.commit_before_checkpoint(outputs);
        let key_check = if applicant.is_cross() { "public key = the cross-signed certificate's" } else { "public key = the request's" };
        checks.extend(["signed in the token: verifies under the CA certificate", "the issuer chain verifies", key_check]);
        Ok(Issued {
            cert,
            serial: serial_text,
            checks,
        })
    })
}

fn key_kind_check(kind: &'static str) -> &'static str {
    match kind {
        "EC P-256" => "subject key EC P-256",
        "EC P-384" => "subject key EC P-384",
        "EC P-521" => "subject key EC P-521",
        "RSA" => "subject key RSA, 2048 bits or more",
        _ => "subject key Ed25519",
    }
}

/// `/C=US/O=Example/CN=Name`, as openssl's index.txt and `-subj` write it, with
/// control characters escaped (it is shown to people).
pub fn subject_line(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let field = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("/{field}={}", escape(&value.replace('/', "\\/")))
        })
        .collect()
}

/// The rules, checked on the lint copy (all fields final, throwaway signature).
fn lint_checks(
    lint: &X509,
    ca: &CaDir,
    (public, subject, expected_ski): (&PKey<Public>, &openssl::x509::X509NameRef, &[u8]),
    profile: &IssueProfile,
    path_len: Option<u32>,
    sans: &[AltName],
) -> anyhow::Result<Vec<&'static str>> {
    let fail = |what: &str| refuse("lint", format!("the certificate built from the request {what}"));
    if !lint.public_key()?.public_eq(public) {
        return Err(fail("does not carry the request's public key").into());
    }
    if lint.subject_name().to_der()? != subject.to_der()? {
        return Err(fail("does not carry the request's subject").into());
    }
    if lint.issuer_name().to_der()? != ca.cert.subject_name().to_der()? {
        return Err(fail("names another issuer than the CA's subject").into());
    }
    if lint.not_after() > ca.cert.not_after() {
        return Err(fail("outlives the CA certificate").into());
    }
    if bridge::is_ca(lint) != profile.ca {
        return Err(fail(if profile.ca { "is not a CA certificate" } else { "is a CA certificate" }).into());
    }
    if profile.ca && lint.pathlen() != path_len {
        return Err(fail("does not carry the path length asked for").into());
    }
    if profile.ca && lint.key_usage().is_none_or(|ku| !ku.contains(X509KeyUsage::KEY_CERT_SIGN)) {
        return Err(fail("is a CA certificate without keyCertSign").into());
    }
    let ski = lint.subject_key_id().map(|k| k.as_slice().to_vec());
    let aki = lint.authority_key_id().map(|k| k.as_slice().to_vec());
    let issuer_ski = ca.cert.subject_key_id().map(|k| k.as_slice().to_vec());
    if ski.is_none() {
        return Err(fail("has no subjectKeyIdentifier").into());
    }
    if aki.is_none() || aki != issuer_ski {
        return Err(fail("has an authorityKeyIdentifier that is not the CA's subjectKeyIdentifier").into());
    }
    if ski.as_deref() != Some(expected_ski) {
        return Err(fail("has a subjectKeyIdentifier other than method (1) of RFC 5280 §4.2.1.2 (or, cross-signed, the original's)").into());
    }
    let got: Vec<String> = lint.subject_alt_names().map_or_else(Vec::new, |s| s.iter().map(|n| format!("{n:?}")).collect());
    if got.len() != sans.len() {
        return Err(fail("does not carry exactly the request's allowed subjectAltName entries").into());
    }
    Ok(vec![
        "proof of possession (request signature verifies)",
        "issuer is a CA with keyCertSign",
        "validity within the issuer's",
        "basicConstraints and path length as the profile and issuer allow",
        "subject and subjectAltName from the request as the profile allows",
        "SKI = SHA-1 of the subject key (RFC 5280 §4.2.1.2 (1)), AKI = issuer SKI",
    ])
}

/// The subjectPublicKey BIT STRING's contents (without the unused-bits octet): what
/// RFC 5280 §4.2.1.2 method (1) hashes.
fn spki_bit_string(public: &PKey<Public>) -> anyhow::Result<Vec<u8>> {
    use crate::bridge::der;
    let spki = public.public_key_to_der()?;
    let body = der::contents(&spki).ok_or_else(|| anyhow::anyhow!("malformed SPKI"))?;
    let alg = der::tlv_len(body).ok_or_else(|| anyhow::anyhow!("malformed SPKI"))?;
    let bits = der::contents(&body[alg..]).ok_or_else(|| anyhow::anyhow!("malformed SPKI"))?;
    Ok(bits.get(1..).unwrap_or_default().to_vec())
}

/// After the token signed (a second line: everything here was checked on the lint
/// copy before): the certificate verifies under the CA certificate, chains to the root
/// with OpenSSL, carries the request's key, and differs from the lint copy in nothing
/// but the signature. Err is the defect found.
fn after_checks(cert: &X509, lint: &X509, ca: &CaDir, public: &PKey<Public>) -> Result<(), CaError> {
    let defect = |why: &str| Err(CaError::Defect(why.to_string()));
    let verifies = ca.cert.public_key().and_then(|k| cert.verify(&k)).unwrap_or(false);
    if !verifies {
        return defect("the token's signature on the certificate does not verify with the CA's public key");
    }
    if !cert.public_key().is_ok_and(|k| k.public_eq(public)) {
        return defect("the signed certificate does not carry the request's key");
    }
    let tbs = |c: &X509| -> Option<Vec<u8>> {
        let der = c.to_der().ok()?;
        bridge::der::signed_parts(&der).map(|(tbs, _)| tbs.to_vec())
    };
    if tbs(cert).is_none() || tbs(cert) != tbs(lint) {
        return defect("the signed certificate differs from the checked one");
    }
    let root = ca.chain.last().unwrap_or(&ca.cert);
    let untrusted: Vec<X509> = std::iter::once(ca.cert.clone()).chain(ca.chain.iter().cloned()).collect();
    bridge::verify_chain(cert, &untrusted, root)
        .map_err(|e| CaError::Defect(format!("the signed certificate does not chain to the CA's root with OpenSSL: {e}")))
}
