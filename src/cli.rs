//! Command-line arguments (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
PINs are never taken from the command line. The user PIN comes from --pin-file FILE,
else HSM_DEMO_PIN, else a prompt when stdin is a terminal; the SO PIN likewise from
--so-pin-file, HSM_DEMO_SO_PIN or a prompt.

With no --module and no SOFTHSM2_CONF, hsm-demo uses its own SoftHSM2 token store in
$XDG_DATA_HOME/hsm-demo (default ~/.local/share/hsm-demo), created on first use.

Exit codes: 0 success, 1 signature verification failed, 2 usage or input error,
3 module/token/PIN error, 4 anything else.";

/// Key custody with a PKCS#11 token: keys are generated and kept in the token
/// (cryptoki); signatures and certificates are made by OpenSSL 3 through the
/// pkcs11-provider. Works with SoftHSM2, AWS CloudHSM or any PKCS#11 module.
#[derive(Debug, Parser)]
#[command(name = "hsm-demo", version, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// PKCS#11 module (shared library) to load; default: SoftHSM2 with hsm-demo's own token store
    #[arg(long, global = true, env = "HSM_DEMO_MODULE", value_name = "PATH")]
    pub module: Option<PathBuf>,

    /// Token to use, by label or PKCS#11 URI ('pkcs11:token=...;serial=...');
    /// default: the only initialized token
    #[arg(long, global = true, value_name = "LABEL|URI")]
    pub token: Option<String>,

    /// Token to use, by serial number
    #[arg(long, global = true, value_name = "SERIAL")]
    pub serial: Option<String>,

    /// File holding the user PIN (one trailing newline is ignored); else HSM_DEMO_PIN, else a prompt
    #[arg(long, global = true, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the module's slots and their tokens, with the flags and mechanisms that matter
    ListSlots {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },

    /// Initialize a token in a free slot (C_InitToken) and set its user PIN
    InitToken {
        /// Label of the new token (must not exist yet)
        #[arg(long)]
        label: String,

        /// File holding the new SO PIN; else HSM_DEMO_SO_PIN, else a prompt
        #[arg(long, value_name = "FILE")]
        so_pin_file: Option<PathBuf>,
    },

    /// Generate an ECDSA P-256 key pair inside the token (sensitive, never extractable)
    GenerateKey {
        /// CKA_LABEL of both keys; refused if any object already has it
        #[arg(long)]
        label: String,

        /// CKA_ID in hex (default: 16 random bytes from the token's RNG)
        #[arg(long, value_name = "HEX")]
        id: Option<String>,
    },

    /// List the token's keys with their custody attributes and PKCS#11 URIs
    ListKeys {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}
