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
