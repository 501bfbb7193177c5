//! Argument groups more than one command takes.

use std::path::PathBuf;

use clap::Args;

/// Which key: --label or --key URI (exactly one).
#[derive(Debug, Args, Clone)]
#[group(required = true, multiple = false)]
pub struct KeyArgs {
    /// CKA_LABEL of the key pair
    #[arg(long)]
    pub label: Option<String>,

    /// PKCS#11 URI of the private key ('pkcs11:token=...;object=...;id=...')
    #[arg(long, value_name = "URI")]
    pub key: Option<String>,
}

/// `--json` for a command whose output is data.
#[derive(Debug, Args, Clone, Copy)]
pub struct FormatArgs {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// The data to sign or verify: --data or --in (exactly one).
#[derive(Debug, Args, Clone)]
#[group(required = true, multiple = false)]
pub struct DataArgs {
    /// The data, as a UTF-8 string
    #[arg(long, value_name = "STR")]
    pub data: Option<String>,

    /// Read the data from FILE (bytes as they are; - for standard input)
    #[arg(long = "in", id = "input", value_name = "FILE")]
    pub input: Option<PathBuf>,
}

/// `--digest`: the digest of a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DigestArg {
    Sha256,
    Sha384,
    Sha512,
}

impl From<DigestArg> for crate::bridge::Digest {
    fn from(d: DigestArg) -> Self {
        match d {
            DigestArg::Sha256 => crate::bridge::Digest::Sha256,
            DigestArg::Sha384 => crate::bridge::Digest::Sha384,
            DigestArg::Sha512 => crate::bridge::Digest::Sha512,
        }
    }
}

/// `--padding`: the RSA signature padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PaddingArg {
    /// PKCS#1 v1.5 (RSASSA-PKCS1-v1_5)
    Pkcs1,
    /// PSS, MGF1 with the same digest, salt length = digest length
    Pss,
}

impl From<PaddingArg> for crate::bridge::RsaPadding {
    fn from(p: PaddingArg) -> Self {
        match p {
            PaddingArg::Pkcs1 => crate::bridge::RsaPadding::Pkcs1,
            PaddingArg::Pss => crate::bridge::RsaPadding::Pss,
        }
    }
}

/// A scheme refusal in the words of the flags that caused it (exit 2).
pub fn scheme_error(e: crate::bridge::SchemeError) -> anyhow::Error {
    use crate::bridge::SchemeError;
    crate::error::usage(match e {
        SchemeError::PaddingNotRsa => "--padding applies to RSA keys only".to_string(),
        SchemeError::DigestWithEd25519 => "Ed25519 signs the whole message (no digest): drop --digest".to_string(),
        other => other.to_string(),
    })
}

/// `--note`: the operator's words for the CA directory's log entry.
#[derive(Debug, clap::Args)]
pub struct NoteArg {
    /// A note for this operation's entry in the CA directory's audit.log (one line, at
    /// most 1000 characters; e.g. the change ticket or the witnesses present)
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

impl NoteArg {
    /// The note, checked before anything happens.
    pub fn checked(&self) -> anyhow::Result<Option<&str>> {
        if let Some(n) = &self.note {
            crate::ca::audit::check_note(n)?;
        }
        Ok(self.note.as_deref())
    }
}

/// What the issuing CA adds beyond the profile (over its directory's ca.cnf).
#[derive(Debug, clap::Args)]
pub struct AdditionArgs {
    /// A name subtree a CA certificate permits (critical nameConstraints; repeatable):
    /// DNS:.example.com, URI:spiffe://prod.example.org, email:example.com, IP:10.0.0.0/8
    #[arg(long, value_name = "TYPE:VALUE")]
    pub permit: Vec<String>,

    /// A name subtree a CA certificate excludes (repeatable; as --permit)
    #[arg(long, value_name = "TYPE:VALUE")]
    pub exclude: Vec<String>,

    /// A certificate policy of a CA certificate: OID, or OID=CPS-URL (repeatable)
    #[arg(long = "policy", value_name = "OID[=URL]")]
    pub policies: Vec<String>,

    /// The CRL distribution point written into the certificate
    #[arg(long, value_name = "URL")]
    pub crl_url: Option<String>,

    /// The AIA caIssuers URL (where the issuer's certificate is published)
    #[arg(long, value_name = "URL")]
    pub ca_issuers_url: Option<String>,
}

impl AdditionArgs {
    pub fn given(&self) -> crate::ca::Given {
        crate::ca::Given {
            permit: self.permit.clone(),
            exclude: self.exclude.clone(),
            policies: self.policies.clone(),
            crl_url: self.crl_url.clone(),
            ca_issuers_url: self.ca_issuers_url.clone(),
        }
    }
}
