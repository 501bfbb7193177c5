//! Command-line arguments (clap).

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

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

    /// Sign data: SHA-256 on the host, ECDSA in the token, through OpenSSL's EVP API and
    /// the pkcs11-provider. Prints "Signature: <hex>" (DER ECDSA-Sig-Value by default,
    /// what `openssl dgst -verify` accepts)
    Sign {
        #[command(flatten)]
        key: KeyArgs,

        #[command(flatten)]
        data: DataArgs,

        /// Signature encoding: der (ECDSA-Sig-Value) or raw (r||s, 64 bytes for P-256)
        #[arg(long, value_enum, default_value_t = SigFormat::Der)]
        format: SigFormat,

        /// Also write the binary signature to FILE (never overwrites)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },

    /// Verify a signature with the token's public key (no PIN, no private-key access),
    /// or with --pubkey / --cert and no token at all. Exit 0 "Signature verified OK",
    /// exit 1 "signature verification failed", exit 2 for a malformed signature
    #[command(group(ArgGroup::new("signature").required(true).args(["sig", "sig_file"])))]
    #[command(group(ArgGroup::new("verifier").required(true).args(["label", "key", "pubkey", "cert"])))]
    Verify {
        /// CKA_LABEL of the key pair in the token
        #[arg(long)]
        label: Option<String>,

        /// PKCS#11 URI of the key ('pkcs11:object=...;id=...')
        #[arg(long, value_name = "URI")]
        key: Option<String>,

        /// PEM public key (SubjectPublicKeyInfo) instead of the token
        #[arg(long, value_name = "PEM")]
        pubkey: Option<PathBuf>,

        /// PEM certificate whose public key verifies, instead of the token
        #[arg(long, value_name = "PEM")]
        cert: Option<PathBuf>,

        #[command(flatten)]
        data: DataArgs,

        /// Signature in hex, DER or raw r||s
        #[arg(long, value_name = "HEX")]
        sig: Option<String>,

        /// File with the signature: binary DER, binary r||s, or hex text
        #[arg(long, value_name = "FILE")]
        sig_file: Option<PathBuf>,
    },

    /// Print a key's public key as PEM SubjectPublicKeyInfo (no PIN needed)
    ExportPubkey {
        #[command(flatten)]
        key: KeyArgs,

        /// Write to FILE instead of stdout (never overwrites)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },

    /// Offline-root key ceremony: a P-256 key generated in the token, a root CA
    /// certificate built by OpenSSL from an OpenSSL config and signed in the token,
    /// custody proven, the SO PIN put under a real M-of-N quorum, and a transcript
    /// signed by the new root key. Outputs go to --out atomically, never overwritten
    KeyCeremony {
        /// CKA_LABEL of the root key (refused if any object has it)
        #[arg(long, default_value = "root-ca-key")]
        label: String,

        /// Certificate profile: an OpenSSL config with [req] distinguished_name and
        /// x509_extensions (default: openssl-conf/root-ca.cnf, or its built-in copy)
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,

        /// Output directory (must not exist; default ./ceremony-<UTC time>)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,

        /// M/N: split the new SO PIN into N custodian shares, any M of which open it
        #[arg(
            long,
            value_name = "M/N",
            default_value = "3/5",
            conflicts_with = "no_quorum"
        )]
        quorum: crate::quorum::Quorum,

        /// Make no quorum and leave the SO PIN as it is (says so in the transcript)
        #[arg(long)]
        no_quorum: bool,

        /// Validity of the root certificate in days (at most 25 years)
        #[arg(long, default_value_t = 3650, value_name = "N")]
        days: u32,

        /// File holding the current SO PIN; else HSM_DEMO_SO_PIN, else a prompt
        #[arg(long, value_name = "FILE")]
        so_pin_file: Option<PathBuf>,
    },

    /// Use M custodian shares from a key ceremony to log in as SO and set a new user
    /// PIN (from --new-pin-file, HSM_DEMO_NEW_PIN or a prompt)
    QuorumResetPin {
        /// A custodian's share file; give it once per custodian present
        #[arg(long = "share", value_name = "FILE", required = true)]
        shares: Vec<PathBuf>,

        /// File holding the new user PIN; else HSM_DEMO_NEW_PIN, else a prompt (twice)
        #[arg(long, value_name = "FILE")]
        new_pin_file: Option<PathBuf>,
    },

    /// Measure cold start and signing latency/throughput: (a) OpenSSL EVP with the
    /// token key through the pkcs11-provider, (b) raw cryptoki C_Sign(CKM_ECDSA),
    /// (c) an in-memory software key (the ceiling). Samples of every path are verified
    Bench {
        #[command(flatten)]
        key: KeyArgs,

        /// Signatures per path (split across threads)
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
        count: u32,

        /// Also run with this many threads, each with its own PKCS#11 session, and
        /// report scaling against one thread
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        threads: u32,

        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },

    /// Internal: the key ceremony's SO step, run as a separate PKCS#11 application.
    /// Reads the current and the new SO PIN from stdin, one per line.
    #[command(name = "__set-so-pin", hide = true)]
    SetSoPin,

    /// Print the shell exports that point the openssl CLI at the same token through
    /// openssl-conf/pkcs11.cnf: eval "$(hsm-demo openssl-env)"
    OpensslEnv,
}

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

/// The data to sign or verify: --data or --in (exactly one).
#[derive(Debug, Args, Clone)]
#[group(required = true, multiple = false)]
pub struct DataArgs {
    /// The data, as a UTF-8 string
    #[arg(long, value_name = "STR")]
    pub data: Option<String>,

    /// Read the data from FILE (bytes as they are)
    #[arg(long = "in", id = "input", value_name = "FILE")]
    pub input: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SigFormat {
    /// DER ECDSA-Sig-Value (openssl dgst, X.509, CMS)
    Der,
    /// r||s, each 32 bytes (PKCS#11 CKM_ECDSA, JOSE)
    Raw,
}
