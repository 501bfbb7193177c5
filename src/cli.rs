//! The command line: the top-level parser and the list of subcommands. Each
//! subcommand's arguments live in its own file under commands/ (cargo's layout); the
//! global flags live with the settings they feed.

use clap::{CommandFactory as _, Parser, Subcommand};

use crate::commands::{
    bench, ca_init, completions, crl, csr, delete_key, export_pubkey, generate_key, init_token, issue,
    key_ceremony, list_issued, list_keys, list_slots, manpage, quorum_reset_pin, revoke, sign, verify,
    verify_ceremony,
};
use crate::settings::GlobalArgs;

const AFTER_HELP: &str = "\
PINs are never taken from the command line. The user PIN comes from --pin-file FILE,
else HSM_DEMO_PIN, else a prompt when stdin is a terminal (after a ceremony with
--activation-quorum: from the custodians' --pin-share FILE); the SO PIN likewise from
--so-pin-file, HSM_DEMO_SO_PIN or a prompt.

With no --module and no SOFTHSM2_CONF, hsm-demo uses its own SoftHSM2 token store in
$XDG_DATA_HOME/hsm-demo (default ~/.local/share/hsm-demo), created on first use.

Exit codes: 0 success, 1 a signature or ceremony evidence did not verify, 2 usage or input error,
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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the module's slots and their tokens, with the flags and mechanisms that matter
    ListSlots(list_slots::Args),

    /// Initialize a token in a free slot (C_InitToken) and set its user PIN
    InitToken(init_token::Args),

    /// Generate a key pair inside the token (sensitive, never extractable): ECDSA P-256 by
    /// default, --algo for P-384, P-521, RSA or Ed25519
    GenerateKey(generate_key::Args),

    /// List the token's keys with their custody attributes and PKCS#11 URIs
    ListKeys(list_keys::Args),

    /// Destroy a key pair after its label is typed again (refused for the root key of a
    /// completed ceremony directory unless --force)
    DeleteKey(delete_key::Args),

    /// Sign data with the token's private key through OpenSSL's EVP API and the
    /// pkcs11-provider (the scheme follows the key: ECDSA, RSA PKCS#1 v1.5 or PSS, Ed25519).
    /// Prints "Signature: <hex>" in the form `openssl dgst -verify` accepts
    Sign(sign::Args),

    /// Verify a signature with the token's public key (no PIN, no private-key access),
    /// or with --pubkey / --cert and no token at all. Exit 0 "Signature verified OK",
    /// exit 1 "signature verification failed", exit 2 for a malformed signature
    Verify(verify::Args),

    /// Print a key's public key as PEM SubjectPublicKeyInfo (no PIN needed)
    ExportPubkey(export_pubkey::Args),

    /// Offline-root key ceremony: a key generated in the token (P-256 unless --algo), a root CA
    /// certificate built by OpenSSL from an OpenSSL config and signed in the token,
    /// custody proven, the SO PIN put under a real M-of-N quorum, and a transcript
    /// signed by the new root key. Outputs go to --out atomically, never overwritten
    KeyCeremony(key_ceremony::Args),

    /// Check a ceremony's outputs with no token and no PIN: the transcript's signature,
    /// the root certificate, every file hash, every share file against its set.
    /// Exit 0 when all holds, 1 naming each file that does not
    VerifyCeremony(verify_ceremony::Args),

    /// Use M custodian shares from a key ceremony to log in as SO and set a new user
    /// PIN (from --new-pin-file, HSM_DEMO_NEW_PIN or a prompt)
    QuorumResetPin(quorum_reset_pin::Args),

    /// Measure cold start and signing latency/throughput: (a) OpenSSL EVP with the
    /// token key through the pkcs11-provider, (b) raw cryptoki C_Sign(CKM_ECDSA),
    /// (c) an in-memory software key (the ceiling). Samples of every path are verified
    Bench(bench::Args),

    /// Make a PKCS#10 certificate request for a token key (X509_REQ built by OpenSSL,
    /// signed in the token): --subject '/C=US/O=Example/CN=Example Issuing CA 1'
    Csr(csr::Args),

    /// Make a directory the home of a CA whose key is in a token: its certificate
    /// (checked against the token key) and records, optionally taken over from an
    /// `openssl ca` index.txt. A key ceremony's --out directory is one already
    CaInit(ca_init::Args),

    /// Issue a certificate from a request and a profile (subordinate-ca, tls-server,
    /// tls-client or your own OpenSSL config). Every rule is checked on the finished
    /// certificate before the token signs; a refused request records and writes nothing
    Issue(issue::Args),

    /// Revoke certificates of a CA directory (all or nothing); the next `crl` lists them
    Revoke(revoke::Args),

    /// Make the CA's next CRL (X509_CRL, signed in the token; CRL number increasing)
    Crl(crl::Args),

    /// List the certificates a CA directory has issued, revoked or imported
    ListIssued(list_issued::Args),

    /// Print the shell exports that point the openssl CLI at the same token through
    /// openssl-conf/pkcs11.cnf: eval "$(hsm-demo openssl-env)"
    OpensslEnv,

    /// Print a shell completion script: hsm-demo completions bash > /etc/bash_completion.d/hsm-demo
    Completions(completions::Args),

    /// Print the man page (roff), or write one page per command with --dir
    Manpage(manpage::Args),
}

/// The command line of the ceremony's SO steps, child processes hsm-demo runs itself
/// (`hsm-demo --module M --serial S __set-so-pin`, PINs on stdin): a parser of their
/// own, so that they are in no help text, completion script or man page.
#[derive(Debug, Parser)]
#[command(name = "hsm-demo")]
pub struct SoStepCli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub step: SoStep,
}

#[derive(Debug, Subcommand)]
pub enum SoStep {
    #[command(name = "__set-so-pin")]
    Set,
    #[command(name = "__prove-so-pin")]
    ProveSo,
    #[command(name = "__prove-user-pin")]
    ProveUser,
}

/// The SO step this process is, if it was started with exactly the argument shape the
/// ceremony uses.
pub fn so_step(args: &[std::ffi::OsString]) -> Option<&'static str> {
    use crate::ceremony::so_step::{PROVE_SO_PIN, PROVE_USER_PIN, SET_SO_PIN};
    match args {
        [_, m, _, s, _, step] if m == "--module" && s == "--serial" => [SET_SO_PIN, PROVE_SO_PIN, PROVE_USER_PIN]
            .into_iter()
            .find(|name| step == name),
        _ => None,
    }
}
/// The clap definition of the whole command line (for completions and man pages).
pub fn definition() -> clap::Command {
    Cli::command()
}
