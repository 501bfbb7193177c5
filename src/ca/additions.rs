//! What a CA adds to the certificates it issues beyond the profile: name constraints
//! and certificate policies for the CA certificates it signs, a CRL distribution point
//! and an AIA caIssuers URL for every certificate. From the command line (`issue
//! --permit`, `--exclude`, `--policy`, `--crl-url`, `--ca-issuers-url`) or from the CA
//! directory's `ca.cnf`, so later issuances need no flags:
//!
//! ```text
//! [ hsm_demo_ca ]
//! issued_extensions      = issued_ext       # every certificate
//! subordinate_extensions = subordinate_ext  # CA certificates only
//! crl_url                = http://pki.example.com/root.crl   # this CA's CRLs' IDP
//!
//! [ issued_ext ]
//! crlDistributionPoints = URI:http://pki.example.com/root.crl
//! authorityInfoAccess   = caIssuers;URI:http://pki.example.com/root.cer
//!
//! [ subordinate_ext ]
//! nameConstraints     = critical, permitted;DNS:.example.com
//! certificatePolicies = 1.3.6.1.4.1.55555.1.1
//! ```
//!
//! The extension sections are OpenSSL's own syntax: `openssl x509 -req -extfile ca.cnf
//! -extensions subordinate_ext` reads them as hsm-demo does. A line given on the
//! command line replaces the same extension from ca.cnf, which replaces the profile's.

use std::path::Path;

use crate::bridge::{self, ConfExt as _};

use super::CaError;

/// The CA directory's defaults file.
pub const CA_CONFIG: &str = "ca.cnf";

/// Extension lines (name, value) and the config text their `@section` references need.
#[derive(Debug, Default, Clone)]
pub struct Additions {
    /// For every certificate.
    pub issued: Vec<(String, String)>,
    /// For CA certificates only.
    pub subordinate: Vec<(String, String)>,
    /// Sections the lines refer to (`@hsm_demo_policy_1`), OpenSSL config text.
    pub sections: String,
    /// The URL of this CA's CRLs (their issuingDistributionPoint).
    pub crl_url: Option<String>,
    /// SHA-256 of ca.cnf, when one was read (for the log).
    pub config_sha256: Option<String>,
}

/// The command line's additions, as given.
#[derive(Debug, Default)]
pub struct Given {
    pub permit: Vec<String>,
    pub exclude: Vec<String>,
    pub policies: Vec<String>,
    pub crl_url: Option<String>,
    pub ca_issuers_url: Option<String>,
}

fn input(msg: String) -> CaError {
    CaError::Input(msg)
}

impl Additions {
    /// The CA directory's ca.cnf (if it has one), then the command line over it.
    pub fn load(dir: &Path, given: &Given) -> Result<Additions, CaError> {
        let mut a = match crate::output::read_regular_text(&dir.join(CA_CONFIG)) {
            Ok(text) => Additions::from_config(&text, &dir.join(CA_CONFIG).display().to_string())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Additions::default(),
            Err(e) => return Err(input(format!("{}: {}", dir.join(CA_CONFIG).display(), crate::output::reason(&e)))),
        };
        a.apply(given)?;
        Ok(a)
    }

    /// ca.cnf's `[hsm_demo_ca]` and the sections it names.
    pub fn from_config(text: &str, name: &str) -> Result<Additions, CaError> {
        let conf = bridge::parse_config_text(text).map_err(|e| input(format!("{name}: {e}")))?;
        let lines = |key: &str| -> Result<Vec<(String, String)>, CaError> {
            match conf.get("hsm_demo_ca", key) {
                None => Ok(Vec::new()),
                Some(section) => conf.section(&section).ok_or_else(|| input(format!("{name}: {key} = {section}: no [{section}] section"))),
            }
        };
        let crl_url = conf.get("hsm_demo_ca", "crl_url");
        if let Some(u) = &crl_url {
            check_url(u, "crl_url")?;
        }
        Ok(Additions {
            issued: lines("issued_extensions")?,
            subordinate: lines("subordinate_extensions")?,
            // Every section of the file stays available to `@section` references.
            sections: text.to_string(),
            crl_url,
            config_sha256: Some(super::audit::hex_digest(text.as_bytes())),
        })
    }

    /// The command line's values over what ca.cnf gave.
    pub fn apply(&mut self, g: &Given) -> Result<(), CaError> {
        let mut subtrees = Vec::new();
        for (kind, list) in [("permitted", &g.permit), ("excluded", &g.exclude)] {
            for v in list {
                subtrees.push(format!("{kind};{}", subtree(v)?));
            }
        }
        if !subtrees.is_empty() {
            set(&mut self.subordinate, "nameConstraints", format!("critical, {}", subtrees.join(", ")));
        }
        if !g.policies.is_empty() {
            let mut parts = Vec::new();
            for (i, p) in g.policies.iter().enumerate() {
                let (oid, cps) = match p.split_once('=') {
                    Some((o, c)) => (o.trim(), Some(c.trim())),
                    None => (p.trim(), None),
                };
                check_oid(oid)?;
                match cps {
                    None => parts.push(oid.to_string()),
                    Some(url) => {
                        check_url(url, "--policy's CPS")?;
                        let section = format!("hsm_demo_policy_{}", i + 1);
                        self.sections.push_str(&format!("\n[ {section} ]\npolicyIdentifier = {oid}\nCPS.1 = \"{url}\"\n"));
                        parts.push(format!("@{section}"));
                    }
                }
            }
            set(&mut self.issued, "certificatePolicies", parts.join(", "));
        }
        if let Some(url) = &g.crl_url {
            // The CA's CRLs are published there: its certificates' distribution point,
            // its CRLs' issuingDistributionPoint.
            check_url(url, "--crl-url")?;
            set(&mut self.issued, "crlDistributionPoints", format!("URI:{url}"));
            self.crl_url = Some(url.clone());
        }
        if let Some(url) = &g.ca_issuers_url {
            check_url(url, "--ca-issuers-url")?;
            set(&mut self.issued, "authorityInfoAccess", format!("caIssuers;URI:{url}"));
        }
        Ok(())
    }

    /// The lines for a certificate (`ca`: a CA certificate).
    pub fn lines_for(&self, ca: bool) -> Vec<(String, String)> {
        let mut out = self.issued.clone();
        if ca {
            for (k, v) in &self.subordinate {
                set(&mut out, k, v.clone());
            }
        }
        out
    }

}

/// Sets extension `key` in `lines`, replacing an earlier value.
pub fn set(lines: &mut Vec<(String, String)>, key: &str, value: String) {
    lines.retain(|(k, _)| k != key);
    lines.push((key.to_string(), value));
}

/// A `--permit`/`--exclude` value in OpenSSL's nameConstraints syntax: `DNS:example.com`
/// (the domain and every name below it; a leading dot is dropped), `URI:spiffe://prod.example.org` (URIs whose
/// host is that: RFC 5280 §4.2.1.10 constrains a URI by its host), `email:example.com`,
/// `IP:10.0.0.0/8`.
fn subtree(text: &str) -> Result<String, CaError> {
    let bad = |why: &str| input(format!("--permit/--exclude '{}': {why}", crate::console::escape(text)));
    let (kind, value) = text.split_once(':').ok_or_else(|| bad("not TYPE:value (DNS:, URI:, email:, IP:)"))?;
    match kind.to_ascii_lowercase().as_str() {
        "dns" => {
            // RFC 5280 §4.2.1.10: a dNSName constraint is written without a leading dot
            // and covers the name and every name below it (`.example.com` is accepted
            // and written as `example.com`, as pkilint wants it).
            let domain = value.strip_prefix('.').unwrap_or(value);
            super::validate::dns_name(domain, false)?;
            Ok(format!("DNS:{domain}"))
        }
        "uri" => {
            // A URI constraint is a host or a domain (leading dot); a SPIFFE trust
            // domain URI names its host.
            let host = value.split_once("://").map_or(value, |(_, rest)| rest).trim_end_matches('/');
            if host.contains('/') || host.contains(':') {
                return Err(bad("a URI constraint is a host (spiffe://trust.domain or .example.com), not a path"));
            }
            super::validate::dns_name(host.strip_prefix('.').unwrap_or(host), false)?;
            Ok(format!("URI:{host}"))
        }
        "email" => {
            if value.is_empty() || value.contains(char::is_whitespace) {
                return Err(bad("not a mailbox, host or domain"));
            }
            Ok(format!("email:{value}"))
        }
        "ip" => {
            let (addr, prefix) = value.split_once('/').ok_or_else(|| bad("an IP constraint is ADDRESS/PREFIX, e.g. 10.0.0.0/8"))?;
            let addr: std::net::IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
            let bits = if addr.is_ipv4() { 32 } else { 128 };
            let prefix: u32 = prefix.parse().ok().filter(|p| *p <= bits).ok_or_else(|| bad("not a prefix length"))?;
            let mask: u128 = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
            let mask = match addr {
                std::net::IpAddr::V4(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::from((mask >> 96) as u32)),
                std::net::IpAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::from(mask)),
            };
            Ok(format!("IP:{addr}/{mask}"))
        }
        other => Err(bad(&format!("type '{other}' is not DNS, URI, email or IP"))),
    }
}

fn check_oid(oid: &str) -> Result<(), CaError> {
    let arcs: Vec<&str> = oid.split('.').collect();
    if arcs.len() < 2 || arcs.iter().any(|a| a.is_empty() || !a.chars().all(|c| c.is_ascii_digit())) {
        return Err(input(format!("--policy '{}': not a dotted OID (e.g. 2.23.140.1.2.2)", crate::console::escape(oid))));
    }
    Ok(())
}

fn check_url(url: &str, what: &str) -> Result<(), CaError> {
    let ok = (url.starts_with("http://") || url.starts_with("https://") || url.starts_with("ldap://"))
        && !url.contains(|c: char| c.is_whitespace() || c == '"' || c == ',' || c.is_control());
    if !ok {
        return Err(input(format!("{what} '{}': an http(s) or ldap URL without spaces, quotes or commas", crate::console::escape(url))));
    }
    Ok(())
}

/// The certificate about to be signed (the lint copy) against the nameConstraints of
/// its issuer and of every CA above it, as `openssl verify` applies them: refused
/// before the token signs what relying parties would reject. Whether any issuer had
/// constraints.
pub fn check_within_constraints(lint: &bridge::X509, issuers: &[&bridge::X509], leaf: bool, names: &[bridge::AltName]) -> Result<bool, CaError> {
    let mut any = false;
    for ca in issuers {
        let why = match bridge::name_constraint_violation(lint, ca, leaf) {
            bridge::Constraints::None => continue,
            bridge::Constraints::Within => {
                any = true;
                continue;
            }
            bridge::Constraints::Violated(why) => why,
        };
        {
            let listed: Vec<String> = names.iter().map(|n| crate::console::escape(&n.to_string())).collect();
            let subject = super::subject_line(lint.subject_name());
            return Err(super::refuse(
                super::validate::WITHIN_CONSTRAINTS.name,
                format!(
                    "{} ({}{}) is outside the nameConstraints of {} (OpenSSL: {why})",
                    if leaf { "the certificate" } else { "the CA certificate" },
                    crate::console::escape(&subject),
                    if listed.is_empty() { String::new() } else { format!("; {}", listed.join(", ")) },
                    crate::console::escape(&super::subject_line(ca.subject_name())),
                ),
            ));
        }
    }
    Ok(any)
}
