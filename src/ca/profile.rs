//! Certificate profiles, policy in OpenSSL config syntax (so the openssl CLI reads the
//! same files): the root's (`[req]` as `openssl req -x509 -config` reads it) and the
//! issuance profiles (`[hsm_demo_profile]` naming an extensions section and what a
//! request may bring).

use std::path::Path;

use openssl::conf::Conf;

use crate::bridge::{self, ConfExt as _, KeySpec, Scheme};

use super::{refuse, validate, CaError};

/// A profile that cannot be used: exit 2, named.
fn broken(name: &str, why: impl std::fmt::Display) -> CaError {
    CaError::Input(format!("profile {name}: {why}"))
}

/// The root certificate's profile read from an OpenSSL config file.
pub struct RootProfile {
    conf: Conf,
    /// The `[req] distinguished_name` entries, in file order.
    pub subject: Vec<(String, String)>,
    /// The `[req] x509_extensions` section name.
    pub extensions: String,
    /// SHA-256 of the config text the profile was read from.
    pub sha256: [u8; 32],
}

impl RootProfile {
    /// Reads a profile file (see [`RootProfile::from_text`]).
    pub fn load(path: &Path) -> Result<RootProfile, CaError> {
        let name = path.display().to_string();
        let text = crate::output::read_regular_text(path).map_err(|e| CaError::Input(format!("{name}: {}", crate::output::reason(&e))))?;
        Self::from_text(&text, &name)
    }

    /// A profile from a config's text: `[req] distinguished_name` (with `prompt = no`)
    /// and `[req] x509_extensions`, as `openssl req` reads them.
    pub fn from_text(text: &str, name: &str) -> Result<RootProfile, CaError> {
        let bad = |why: String| CaError::Input(format!("{name}: {why}"));
        let conf = bridge::parse_config_text(text).map_err(|e| bad(e.to_string()))?;
        let dn_section = conf
            .get("req", "distinguished_name")
            .ok_or_else(|| bad("[req] has no distinguished_name".into()))?;
        let extensions = conf
            .get("req", "x509_extensions")
            .ok_or_else(|| bad("[req] has no x509_extensions".into()))?;
        if conf.section(&extensions).is_none() {
            return Err(bad(format!("no [{extensions}] section")));
        }
        let subject: Vec<(String, String)> = conf
            .section(&dn_section)
            .ok_or_else(|| bad(format!("no [{dn_section}] section")))?
            .into_iter()
            // `openssl req` allows "0.OU = ..." to repeat a field; the prefix is not part of the name.
            .map(|(k, v)| (k.rsplit('.').next().unwrap_or(&k).to_string(), v))
            .collect();
        if subject.is_empty() {
            return Err(bad(format!("[{dn_section}] is empty")));
        }
        Ok(RootProfile {
            sha256: openssl::sha::sha256(text.as_bytes()),
            conf,
            subject,
            extensions,
        })
    }

    /// The subject name the profile gives.
    pub fn subject_name(&self) -> Result<openssl::x509::X509Name, CaError> {
        bridge::name_from_entries(self.subject.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| CaError::Input(format!("the profile's subject: {e}")))
    }

    /// The template of a root certificate from this profile.
    pub fn template<'a>(&'a self, subject: &'a openssl::x509::X509NameRef, serial: &'a [u8], days: u32) -> bridge::SelfSignedTemplate<'a> {
        bridge::SelfSignedTemplate { subject, extensions: (&self.conf, &self.extensions), serial, days }
    }

    /// Builds and checks a certificate from this profile with a throwaway in-memory key
    /// of the ceremony's kind, so that a profile that cannot make a valid root is
    /// refused before the token is touched (nothing to undo).
    pub fn try_on_throwaway(&self, days: u32, spec: KeySpec) -> Result<(), CaError> {
        let trial = || -> anyhow::Result<()> {
            let (key, public) = bridge::software_key(spec)?;
            let scheme = Scheme::for_key(&public, None, None)?;
            let sign = |tbs: &[u8]| bridge::sign_message(&key, scheme, false, tbs);
            let subject = self.subject_name()?;
            let signer = bridge::TbsSigner::new(spec, scheme.x509_digest(), &sign);
            let cert = bridge::build_self_signed(&self.template(&subject, &[0x40; 16], days), &public, &signer)?;
            bridge::check_self_signed(&cert, &public)?;
            Ok(())
        };
        let result = trial();
        bridge::clear_openssl_errors();
        result.map_err(|e| CaError::Input(format!("{e:#}")))
    }
}

/// An issuance profile: an OpenSSL config whose `[hsm_demo_profile]` section says which
/// extensions section to apply and what the request may bring (the openssl CLI ignores
/// that section and takes the extensions section with `-extfile F -extensions S`).
pub struct IssueProfile {
    pub name: String,
    conf: Conf,
    text: String,
    pub extensions: String,
    /// The extensions section for an RSA subject key, when it differs (tls-server adds
    /// keyEncipherment for RSA keys, which RFC 5480 §3 forbids for EC keys).
    pub extensions_rsa: Option<String>,
    pub ca: bool,
    /// Whether a dNSName may be a wildcard (`*.example.com`).
    pub wildcard: bool,
    pub default_days: u32,
    pub max_days: Option<u32>,
    /// subjectAltName kinds taken from the request (`dns`, `ip`, `email`, `uri`).
    pub san: Vec<String>,
    pub san_required: bool,
    /// `target = aws-pca`: issuance checks AWS Private CA's import rules.
    pub target: Option<String>,
}

/// The profiles hsm-demo ships (`openssl-conf/profiles/`).
pub const SHIPPED_PROFILES: [(&str, &str); 3] = [
    ("subordinate-ca", include_str!("../../openssl-conf/profiles/subordinate-ca.cnf")),
    ("tls-server", include_str!("../../openssl-conf/profiles/tls-server.cnf")),
    ("tls-client", include_str!("../../openssl-conf/profiles/tls-client.cnf")),
];

impl IssueProfile {
    /// A shipped profile by name, or a profile file by path.
    pub fn load(name: &str) -> Result<IssueProfile, CaError> {
        if let Some((n, text)) = SHIPPED_PROFILES.iter().find(|(n, _)| *n == name) {
            return IssueProfile::from_text(n, text);
        }
        if !name.contains('/') && !name.ends_with(".cnf") {
            let names: Vec<&str> = SHIPPED_PROFILES.iter().map(|(n, _)| *n).collect();
            return Err(CaError::Input(format!(
                "unknown profile '{name}' (shipped: {}; or give a .cnf file's path)",
                names.join(", ")
            )));
        }
        let text = crate::output::read_regular_text(Path::new(name))
            .map_err(|e| CaError::Input(format!("--profile {name}: {}", crate::output::reason(&e))))?;
        IssueProfile::from_text(name, &text)
    }

    pub fn from_text(name: &str, text: &str) -> Result<IssueProfile, CaError> {
        let conf = bridge::parse_config_text(text).map_err(|e| broken(name, e))?;
        let get = |k: &str| conf.get("hsm_demo_profile", k);
        let extensions = get("extensions").ok_or_else(|| broken(name, "no [hsm_demo_profile] extensions = SECTION"))?;
        let extensions_rsa = get("extensions_rsa");
        for section in std::iter::once(&extensions).chain(extensions_rsa.as_ref()) {
            if conf.section(section).is_none() {
                return Err(broken(name, format!("no section [{section}]")));
            }
        }
        let yes = |k: &str| -> Result<bool, CaError> {
            match get(k).as_deref().map(str::trim) {
                None | Some("no") | Some("") => Ok(false),
                Some("yes") => Ok(true),
                Some(v) => Err(broken(name, format!("{k} = {v}: not yes or no"))),
            }
        };
        let days = |k: &str| -> Result<Option<u32>, CaError> {
            get(k)
                .map(|v| v.trim().parse::<u32>().map_err(|_| broken(name, format!("{k} = {v}: not a number of days"))))
                .transpose()
        };
        let san: Vec<String> = get("san")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        if let Some(bad) = san.iter().find(|s| !["dns", "ip", "email", "uri"].contains(&s.as_str())) {
            return Err(broken(name, format!("san kind '{bad}' is not dns, ip, email or uri")));
        }
        Ok(IssueProfile {
            name: name.to_string(),
            extensions,
            extensions_rsa,
            ca: yes("ca")?,
            wildcard: yes("wildcard")?,
            default_days: days("default_days")?.unwrap_or(365),
            max_days: days("max_days")?,
            san,
            san_required: yes("san_required")?,
            target: match get("target").as_deref().map(str::trim) {
                None | Some("") => None,
                Some("aws-pca") => Some("aws-pca".into()),
                Some(other) => return Err(broken(name, format!("target = {other}: the only target is aws-pca"))),
            },
            text: text.to_string(),
            conf,
        })
    }

    /// The extensions section for a subject key (RSA or not).
    fn section_for(&self, rsa_subject: bool) -> &str {
        match (&self.extensions_rsa, rsa_subject) {
            (Some(rsa), true) => rsa,
            _ => &self.extensions,
        }
    }

    /// The (name, value) pairs of the extensions section for a subject key.
    pub fn extension_lines(&self, rsa_subject: bool) -> Vec<(String, String)> {
        self.conf.section(self.section_for(rsa_subject)).unwrap_or_default()
    }

    /// The config and section to apply: a copy of the profile's section with what the
    /// CA adds (`additions`: its lines replace the profile's of the same extension),
    /// and for a CA with a path length, basicConstraints carrying `pathlen:N` (added to
    /// the profile's text, so sections it refers to still resolve).
    pub fn effective(&self, path_len: Option<u32>, rsa_subject: bool, additions: &super::Additions) -> Result<(Conf, String), CaError> {
        let mut text = self.text.clone();
        text.push('\n');
        text.push_str(&additions.sections);
        let section = "hsm_demo_effective_ext";
        text.push_str(&format!("\n[ {section} ]\n"));
        let mut lines = self.extension_lines(rsa_subject);
        for (k, v) in additions.lines_for(self.ca) {
            super::additions::set(&mut lines, &k, v);
        }
        for (k, v) in lines {
            let v = match (k.as_str(), path_len) {
                ("basicConstraints", Some(n)) if self.ca => {
                    let kept: Vec<&str> = v.split(',').map(str::trim).filter(|p| !p.starts_with("pathlen")).collect();
                    format!("{}, pathlen:{n}", kept.join(", "))
                }
                _ => v,
            };
            text.push_str(&format!("{k} = {v}\n"));
        }
        let conf = bridge::parse_config_text(&text).map_err(|e| broken(&self.name, e))?;
        Ok((conf, section.to_string()))
    }

    /// Builds what this profile issues for an EC and (where it differs) an RSA subject
    /// on throwaway keys, under a throwaway CA, and applies the rules on the result: a
    /// profile that does not build, or builds what relying parties would reject, is
    /// refused before any token work.
    pub fn try_on_throwaway(&self, aws_pca: bool) -> Result<(), CaError> {
        let kinds: &[bool] = if self.extensions_rsa.is_some() { &[false, true] } else { &[false] };
        for &rsa in kinds {
            let path_len = self.ca.then_some(0);
            let (conf, section) = self.effective(path_len, rsa, &super::Additions::default())?;
            let built = bridge::trial_certificate((&conf, &section))
                .map_err(|e| refuse(validate::PROFILE_BUILDS.name, format!("profile {}: {e:#}", self.name)))?;
            if bridge::is_ca(&built) != self.ca {
                return Err(refuse(
                    validate::PROFILE_BUILDS.name,
                    format!("profile {} says ca = {} but its extensions make cA {}", self.name, yes_no(self.ca), yes_no(!self.ca)),
                ));
            }
            if aws_pca && self.ca {
                super::aws_pca::extension_rules(&built)?;
            }
            validate::built_extensions(&built, self.ca, rsa)?;
        }
        bridge::clear_openssl_errors();
        Ok(())
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
