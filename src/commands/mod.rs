//! One file per subcommand, each with its clap `Args` and a `run` that is glue: read
//! the arguments, call the layers, print. This file dispatches and holds the steps
//! several commands share (choosing the token and the key, logging in).

mod args;
pub mod bench;
mod bench_processes;
mod child;
pub mod ca_init;
pub mod completions;
pub mod crl;
pub mod csr;
pub mod delete_key;
pub mod export_pubkey;
pub mod generate_key;
pub mod init_token;
pub mod issue;
mod io;
pub mod key_ceremony;
pub mod key_restore;
pub mod list_issued;
pub mod list_keys;
pub mod list_slots;
pub mod manpage;
mod openssl_env;
pub mod pin;
pub mod quorum_check_share;
pub mod quorum_redeal;
pub mod quorum_reset_pin;
pub mod revoke;
pub mod shares;
pub mod sign;
pub mod verify;
pub mod verify_audit;
pub mod verify_ceremony;

use crate::console::outln;
use anyhow::Context as _;

use crate::error::usage;
use crate::hsm::Hsm;
use crate::lock::{self, Access, StoreLock};
use pin::PinSource;
use crate::quorum;
use crate::settings::Settings;
use crate::token::{KeySelector, Module, Pkcs11Uri, TokenRef, TokenSelector};

pub use args::{DataArgs, FormatArgs, KeyArgs};
pub use child::run as run_child;

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
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

    /// Restore a key kept for backup (a ceremony's root-key.wrapped) onto this token from M
    /// of its backup shares; the restored key must sign a challenge that verifies under
    /// the original public key. The SO PIN installs the trusted wrap key
    KeyRestore(key_restore::RestoreArgs),

    /// Another wrapped copy of a key kept for backup (extractable only wrapped by a
    /// trusted key), from M of its backup shares, for a further site
    KeyBackup(key_restore::BackupArgs),

    /// Check a ceremony's outputs with no token and no PIN: the transcript's signature,
    /// the root certificate, every file hash, every share file against its set.
    /// Exit 0 when all holds, 1 naming each file that does not
    VerifyCeremony(verify_ceremony::Args),

    /// Use M custodian shares from a key ceremony to log in as SO and set a new user
    /// PIN (from --new-pin-file, HSM_DEMO_NEW_PIN or a prompt)
    QuorumResetPin(quorum_reset_pin::Args),

    /// One custodian checks their share file alone (no token, no PIN, no other share):
    /// structure, check value, set id, threshold and index, and with --ceremony-dir the
    /// SHA-256 the signed transcript lists. Exit 0, or 1 with the reason
    QuorumCheckShare(quorum_check_share::Args),

    /// Replace a quorum's PIN without anyone choosing or seeing it: M current shares of
    /// the role open it, a fresh secret from the token RNG becomes its PIN, split into a
    /// new set (same or new M/N) written ahead; the old set is retired, and a transcript
    /// signed by --sign-with (default root-ca-key) records both sets
    QuorumRedeal(quorum_redeal::Args),

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

    /// Check a CA directory's audit.log with no token and no PIN: hash chain, checkpoint
    /// signatures, ca.db against the entries; prints the head for the witness sheet.
    /// Exit 0, or 1 naming the first entry that does not hold
    VerifyAudit(verify_audit::Args),

    /// Print the shell exports that point the openssl CLI at the same token through
    /// openssl-conf/pkcs11.cnf: eval "$(hsm-demo openssl-env)"
    OpensslEnv,

    /// Print a shell completion script: hsm-demo completions bash > /etc/bash_completion.d/hsm-demo
    Completions(completions::Args),

    /// Print the man page (roff), or write one page per command with --dir
    Manpage(manpage::Args),
}


/// Runs `command`; `definition` is the whole command line's clap definition (for
/// completions and man pages).
pub fn run(command: Command, settings: &Settings, definition: fn() -> clap::Command) -> anyhow::Result<()> {
    match command {
        Command::ListSlots(a) => list_slots::run(settings, a),
        Command::InitToken(a) => init_token::run(settings, a),
        Command::GenerateKey(a) => generate_key::run(settings, a),
        Command::ListKeys(a) => list_keys::run(settings, a),
        Command::DeleteKey(a) => delete_key::run(settings, a),
        Command::Sign(a) => sign::run(settings, a),
        Command::Verify(a) => verify::run(settings, a),
        Command::ExportPubkey(a) => export_pubkey::run(settings, a),
        Command::KeyCeremony(a) => key_ceremony::run(settings, a),
        Command::QuorumResetPin(a) => quorum_reset_pin::run(settings, a),
        Command::VerifyCeremony(a) => verify_ceremony::run(settings, a),
        Command::QuorumCheckShare(a) => quorum_check_share::run(settings, a),
        Command::QuorumRedeal(a) => quorum_redeal::run(settings, a),
        Command::KeyRestore(a) => key_restore::restore(settings, a),
        Command::KeyBackup(a) => key_restore::backup(settings, a),
        Command::Bench(a) => bench::run(settings, a),
        Command::Csr(a) => csr::run(settings, a),
        Command::CaInit(a) => ca_init::run(settings, a),
        Command::Issue(a) => issue::run(settings, a),
        Command::Revoke(a) => revoke::run(settings, a),
        Command::Crl(a) => crl::run(settings, a),
        Command::ListIssued(a) => list_issued::run(a),
        Command::VerifyAudit(a) => verify_audit::run(a),
        Command::OpensslEnv => openssl_env::run(settings),
        Command::Completions(a) => completions::run(definition(), a),
        Command::Manpage(a) => manpage::run(definition(), a),
    }
}

/// How a command uses the token store, which decides its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Lists or reads public objects, no login: a shared lock.
    Read,
    /// A user login to use keys: a shared lock, made exclusive on a module whose
    /// login writes its store.
    Login,
    /// Creates objects or changes PINs: an exclusive lock.
    Change,
}

/// Locks the token store, then loads the module the settings name (or the embedded
/// default). The lock is held as long as the returned value lives.
pub fn open_module(settings: &Settings, how: Use) -> anyhow::Result<(Module, StoreLock)> {
    let spec = settings.module()?;
    let path = lock::lock_path(&settings.lock_dir, &spec.path, &settings.module_environment());
    let access = match how {
        Use::Read | Use::Login => Access::Shared,
        Use::Change => Access::Exclusive,
    };
    let mut held = lock::acquire(&path, access)?;
    // SoftHSM2's token files, checked under the lock before the module reads them; a
    // repair needs the store to itself.
    if let Some(guard) = spec.store_guard() {
        if guard.needs_repair() {
            held.upgrade()?;
        }
        for note in guard.check() {
            crate::console::note(&note);
        }
    }
    let module = Module::open(&spec)?;
    if how == Use::Login && module.writes_on_login() {
        held.upgrade_for_login()?;
    }
    Ok((module, held))
}

/// The token selector from --token (label or URI) and --serial, merged with the
/// token attributes of an extra URI (e.g. a key URI from --key).
pub fn token_selector(
    settings: &Settings,
    extra: Option<&Pkcs11Uri>,
) -> anyhow::Result<TokenSelector> {
    let mut sel = TokenSelector {
        serial: settings.serial.clone(),
        ..Default::default()
    };
    if let Some(t) = &settings.token {
        if t.starts_with("pkcs11:") {
            sel.uri = Some(Pkcs11Uri::parse(t).map_err(|e| usage(e.to_string()))?);
        } else {
            sel.label = Some(t.clone());
        }
    }
    if let Some(extra) = extra.filter(|u| u.names_token()) {
        if sel.uri.is_some() {
            return Err(usage(
                "give the token either in --token or in the key URI, not both",
            ));
        }
        sel.uri = Some(extra.clone());
    }
    Ok(sel)
}

/// Lock, module and the selected token.
pub fn open_token(
    settings: &Settings,
    extra: Option<&Pkcs11Uri>,
    how: Use,
) -> anyhow::Result<(Module, TokenRef, StoreLock)> {
    let selector = token_selector(settings, extra)?;
    let (module, lock) = open_module(settings, how)?;
    let token = module.select_token(&selector)?;
    Ok((module, token, lock))
}

/// The user's PIN for `token`: recombined from `--pin-share` files, else from a file,
/// the environment or a prompt. Shares that are too few, duplicated, altered, of the
/// SO quorum, or of another ceremony or token are refused before any login.
pub fn user_pin(settings: &Settings, token: &TokenRef) -> anyhow::Result<cryptoki::types::AuthPin> {
    if settings.pin_shares.is_empty() {
        return pin::read_pin(settings, PinSource::User, settings.pin_file.as_deref(), &token.label);
    }
    let (secret, binding) = shares::combine_current(settings, &settings.pin_shares, quorum::Purpose::Activation)?;
    if binding.token_serial != token.serial || binding.token_label != token.label {
        return Err(usage(format!(
            "these activation shares belong to token '{}' (serial {}), not to '{}' (serial {}); nothing was sent to the token",
            binding.token_label, binding.token_serial, token.label, token.serial
        )));
    }
    Ok(pin::pin_from_bytes(&secret, "the user PIN recombined from the activation shares")?)
}

/// Logs the user in on `token` of `module`: the command's [`Hsm`] context, which
/// keeps `lock` until it is dropped.
pub fn login_on(
    settings: &Settings,
    module: Module,
    token: &TokenRef,
    lock: StoreLock,
) -> anyhow::Result<Hsm> {
    let pin = user_pin(settings, token)?;
    Ok(Hsm::login(module, token, pin, settings.provider.clone(), lock)?)
}

/// Module, token, lock and user login in one step.
pub fn login(settings: &Settings, extra: Option<&Pkcs11Uri>, how: Use) -> anyhow::Result<Hsm> {
    let (module, token, lock) = open_token(settings, extra, how)?;
    login_on(settings, module, &token, lock)
}

/// A user login on the token a key URI names (a CA directory's key), and the key's
/// selector; `how`: Use::Change when the command also stores objects.
pub fn login_for_key(settings: &Settings, uri: &str, how: Use) -> anyhow::Result<(Hsm, KeySelector)> {
    let (selector, uri) = KeyArgs { label: None, key: Some(uri.to_string()) }.selector()?;
    Ok((login(settings, uri.as_ref(), how)?, selector))
}

impl KeyArgs {
    /// A user login on the token this key lives on (the URI's token, else --token or
    /// the only one), and the key's selector.
    pub fn login(&self, settings: &Settings) -> anyhow::Result<(Hsm, KeySelector)> {
        let (selector, uri) = self.selector()?;
        Ok((login(settings, uri.as_ref(), Use::Login)?, selector))
    }

    /// The key named by --label or --key URI, and the URI (whose token attributes,
    /// if any, choose the token).
    pub fn selector(&self) -> anyhow::Result<(KeySelector, Option<Pkcs11Uri>)> {
        match (&self.label, &self.key) {
            (Some(label), None) => {
                if label.is_empty() {
                    return Err(usage("--label must not be empty"));
                }
                let selector = KeySelector {
                    label: Some(label.clone()),
                    id: None,
                };
                Ok((selector, None))
            }
            (None, Some(uri)) => {
                let parsed = Pkcs11Uri::parse(uri).map_err(|e| usage(e.to_string()))?;
                if parsed.object.is_none() && parsed.id.is_none() {
                    return Err(usage(format!(
                        "--key {uri} names no key: add object=LABEL or id=%.."
                    )));
                }
                if parsed
                    .object_type
                    .as_deref()
                    .is_some_and(|t| t != "private" && t != "public")
                {
                    return Err(usage(format!(
                        "--key {uri} is not a key URI (type must be private or public)"
                    )));
                }
                let selector = KeySelector {
                    label: parsed.object.clone(),
                    id: parsed.id.clone(),
                };
                Ok((selector, Some(parsed)))
            }
            _ => Err(usage("give exactly one of --label LABEL or --key URI")),
        }
    }
}

/// How this process starts its hidden children (`crate::child`): the module the
/// settings name, and the environment it and the provider read.
pub fn launcher(settings: &Settings) -> anyhow::Result<crate::child::Launcher> {
    let spec = settings.module()?;
    let module_env = settings.module_environment();
    let provider_env = settings.exports().into_iter().filter(|(n, _)| !module_env.iter().any(|(m, _)| m == n)).collect();
    let header = crate::child::Header {
        module: spec.path,
        softhsm_conf: spec.softhsm_conf,
        embedded: spec.embedded,
        provider: Some(settings.provider.clone()),
        ..Default::default()
    };
    Ok(crate::child::Launcher { module_env, provider_env, header })
}

/// Parses a hex string given on the command line.
pub fn parse_hex(what: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    let text = text.trim();
    if text.len() % 2 == 1 {
        return Err(usage(format!(
            "{what}: odd number of hex digits ({})",
            text.len()
        )));
    }
    hex::decode(text).map_err(|e| usage(format!("{what}: not hex ({e})")))
}

/// Prints JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("encode JSON")?;
    outln!("{text}")?;
    Ok(())
}
