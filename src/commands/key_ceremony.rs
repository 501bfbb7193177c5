//! `key-ceremony`: argument checks, PINs and everything else that can be checked
//! without changing the token; then either the ceremony (the ceremony module does the
//! work, this command prints its lines as they come) or, with --dry-run, the script.

use std::path::{Path, PathBuf};

use cryptoki::types::AuthPin;

use crate::ca::RootProfile;
use crate::ceremony::{self, Options, SecretShape, MAX_DAYS};
use crate::console::{self, outln};
use crate::error::{usage, SetupError};
use crate::commands::pin::{self, PinSource};
use crate::quorum::{Purpose, Quorum};
use crate::settings::Settings;
use crate::token::{Algorithm, Capabilities, Module, TokenError, TokenRef};

use super::{login_on, open_token, user_pin, Use};

/// openssl-conf/root-ca.cnf, built in for runs outside the source tree.
const BUILTIN_PROFILE: &str = include_str!("../../openssl-conf/root-ca.cnf");
const DEFAULT_PROFILE: &str = "openssl-conf/root-ca.cnf";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// CKA_LABEL of the root key (refused if any object has it)
    #[arg(long, default_value = "root-ca-key")]
    label: String,

    /// The root key: ec-p256, ec-p384, ec-p521, rsa-2048, rsa-3072, rsa-4096 or ed25519;
    /// the certificate is signed with the matching digest (P-384: ecdsa-with-SHA384)
    #[arg(long, default_value = "ec-p256", value_name = "ALGO")]
    algo: Algorithm,

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
    quorum: Quorum,

    /// Make no quorum and leave the SO PIN as it is (says so in the transcript)
    #[arg(long)]
    no_quorum: bool,

    /// M/N: also replace the user PIN by a secret split into N activation shares, so
    /// that every use of the root key needs M custodians (`--pin-share FILE` each)
    #[arg(long, value_name = "M/N")]
    activation_quorum: Option<Quorum>,

    /// M/N: generate the root extractable only wrapped by a trusted key, and keep a
    /// backup of it (root-key.wrapped) under a wrap key split into N backup shares; M of
    /// them restore it onto another token (`key-restore`). Needs the SO PIN
    #[arg(long, value_name = "M/N")]
    backup_quorum: Option<Quorum>,

    /// Check everything that can be checked without changing the token, print the
    /// ceremony's script step by step, and create nothing
    #[arg(long)]
    dry_run: bool,

    /// Validity of the root certificate in days (at most 25 years)
    #[arg(long, default_value_t = 3650, value_name = "N")]
    days: u32,

    /// File holding the current SO PIN; else HSM_DEMO_SO_PIN, else a prompt
    #[arg(long, value_name = "FILE")]
    so_pin_file: Option<PathBuf>,
}

/// What the argument checks settled.
struct Plan {
    out: PathBuf,
    profile: RootProfile,
    profile_name: String,
    quorum: Option<Quorum>,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    let plan = check_arguments(settings, &a)?;
    for dir in ceremony::incomplete_near(&plan.out) {
        console::note(&format!(
            "{} holds a ceremony that did not complete; if it has share files they may hold one of the token's PINs (see {})",
            dir.display(),
            dir.join(ceremony::INCOMPLETE).display()
        ));
    }
    if a.dry_run {
        return dry_run(settings, &a, plan);
    }
    // The name is taken before anything else happens: a collision stops here.
    let reserved = ceremony::reserve(&plan.out)?;
    let (module, token, lock) = open_token(settings, None, Use::Change)?;
    let (quorum, activation) = check_token(&module, &token, &plan, &a)?;
    let so_pin = read_so_pin(settings, &a, &plan, &token)?;
    ceremony::preflight(&module, &token, &a.label, so_pin.as_ref(), a.backup_quorum.is_some())?;
    let hsm = login_on(settings, module, &token, lock)?;
    let opts = Options {
        backup: a.backup_quorum,
        label: a.label,
        algo: a.algo,
        profile: plan.profile,
        profile_name: plan.profile_name,
        quorum,
        activation,
        days: a.days,
    };
    let mut printer = console::Printer::default();
    let mut print = |line: &str| printer.line(line);
    let launcher = super::launcher(settings)?;
    ceremony::run(&hsm, &launcher, so_pin.as_ref(), &opts, reserved, &mut print)?;
    printer.finish().map_err(|e| {
        anyhow::Error::from(e).context(format!(
            "the ceremony completed, but its report was not fully written; the outputs are in {}",
            plan.out.display()
        ))
    })
}

/// Checks that need neither the token nor a PIN: label, validity, output path,
/// profile (tried on a throwaway key), SO PIN availability.
fn check_arguments(settings: &Settings, a: &Args) -> anyhow::Result<Plan> {
    if a.label.is_empty() {
        return Err(usage("--label must not be empty"));
    }
    if a.days == 0 || a.days > MAX_DAYS {
        return Err(usage(format!(
            "--days {} is out of range: 1 to {MAX_DAYS} (25 years)",
            a.days
        )));
    }
    let out = ceremony::out_dir(a.out.as_deref(), "ceremony")?;
    let (profile, profile_name) = profile(a.config.as_deref())?;
    profile.try_on_throwaway(a.days, crate::hsm::software_spec(&a.algo.kind())).map_err(|e| {
        usage(format!(
            "the profile {profile_name} cannot make a root certificate (tried with a throwaway key, nothing was created): {e}"
        ))
    })?;
    let quorum = (!a.no_quorum).then_some(a.quorum);
    let so_file = a.so_pin_file.as_deref();
    if quorum.is_some() && !pin::available(settings, PinSource::SecurityOfficer, so_file) {
        return Err(usage(format!(
            "the quorum step needs the token's current SO PIN: {}; or pass --no-quorum to make none",
            PinSource::SecurityOfficer.how_to_supply()
        )));
    }
    Ok(Plan {
        out,
        profile,
        profile_name,
        quorum,
    })
}

/// The quorums with their secret lengths. Refuses, before anything changes, a token
/// that lacks what the ceremony needs or whose PIN length cannot hold a quorum secret.
type Quorums = (Option<(Quorum, SecretShape)>, Option<(Quorum, SecretShape)>);

fn check_token(module: &Module, token: &TokenRef, plan: &Plan, a: &Args) -> anyhow::Result<Quorums> {
    let caps = module.ceremony_capabilities(token, a.algo, plan.quorum.is_some() || a.activation_quorum.is_some())?;
    if !caps.missing.is_empty() {
        return Err(TokenError::Incapable {
            token: token.label.clone(),
            what: "hold a ceremony's root key",
            missing: caps.missing.join(", "),
        }
        .into());
    }
    let len = || SecretShape::for_token(caps.max_pin);
    let quorum = plan.quorum.map(|q| Ok::<_, SetupError>((q, len()?))).transpose()?;
    let activation = a
        .activation_quorum
        .map(|q| Ok::<_, SetupError>((q, len()?)))
        .transpose()?;
    Ok((quorum, activation))
}

fn read_so_pin(
    settings: &Settings,
    a: &Args,
    plan: &Plan,
    token: &TokenRef,
) -> anyhow::Result<Option<AuthPin>> {
    (plan.quorum.is_some() || a.backup_quorum.is_some())
        .then(|| pin::read_pin(settings, PinSource::SecurityOfficer, a.so_pin_file.as_deref(), &token.label))
        .transpose()
}

/// Every check the real run makes before Step 1, with nothing created: the PINs are
/// tried by a login and a logout. Then the script the custodians follow.
fn dry_run(settings: &Settings, a: &Args, plan: Plan) -> anyhow::Result<()> {
    let (module, token, _lock) = open_token(settings, None, Use::Read)?;
    let caps = module.ceremony_capabilities(&token, a.algo, plan.quorum.is_some() || a.activation_quorum.is_some())?;
    let (quorum, activation) = check_token(&module, &token, &plan, a)?;
    let so_pin = read_so_pin(settings, a, &plan, &token)?;
    ceremony::preflight(&module, &token, &a.label, so_pin.as_ref(), a.backup_quorum.is_some())?;
    let pin = user_pin(settings, &token)?;
    // The session is dropped at once: closing the last session logs the user out.
    drop(module.login_user(&token, &pin)?);
    print_script(a, &plan, &module, &token, &caps, (quorum, activation))
}

fn print_script(
    a: &Args,
    plan: &Plan,
    module: &Module,
    token: &TokenRef,
    caps: &Capabilities,
    (quorum, activation): Quorums,
) -> anyhow::Result<()> {
    let limit = match caps.max_pin {
        None => format!("at least {} characters, no upper limit", caps.min_pin),
        Some(n) => format!("{} to {n} characters", caps.min_pin),
    };
    outln!("=== ROOT CA KEY CEREMONY: DRY RUN (nothing was created or changed) ===")?;
    outln!("Token '{}' (serial {}) in {}", token.label, token.serial, module.path().display())?;
    outln!()?;
    outln!("Checks passed:")?;
    outln!("  mechanisms: {}; random number generator (CKF_RNG)", caps.mechanisms.join(", "))?;
    outln!("  label '{}' is free", a.label)?;
    if quorum.is_some() {
        outln!("  the SO PIN opens the SO role (login, logout)")?;
    }
    outln!("  the user PIN opens the user role (login, logout)")?;
    outln!("  profile {} makes a root certificate that passes the ceremony's checks (throwaway key)", plan.profile_name)?;
    outln!("  output directory {} is free and its parent writable", plan.out.display())?;
    outln!("  PIN length for quorum secrets: {limit}")?;
    outln!()?;
    outln!("The ceremony's script, for the custodians and witnesses to follow:")?;
    outln!("  1. Run the same command without --dry-run. Expect each line below, in order.")?;
    outln!("  2. [Step 1] Key pair generated: label={}, algo={}", a.label, a.algo.step_name())?;
    outln!(
        "     template: CKA_TOKEN=true CKA_PRIVATE=true CKA_SENSITIVE=true {} CKA_SIGN=true",
        if a.backup_quorum.is_some() { "CKA_EXTRACTABLE=true CKA_WRAP_WITH_TRUSTED=true" } else { "CKA_EXTRACTABLE=false" }
    )?;
    outln!("  3. [Step 2] Public key (hex): ...  -- write its SPKI SHA-256 on the witness sheet")?;
    let subject = plan.profile.subject.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
    outln!("  4. [Root CA] subject {subject}, valid {} days; checks: public key = token key, signature verifies, self-signed trust anchor verifies, SKI = AKI keyid", a.days)?;
    let mut n = 5;
    if let Some(q) = a.backup_quorum {
        outln!("  {n}. [Step 2b] Backup: the root wrapped (CKM_AES_KEY_WRAP_PAD) into root-key.wrapped under a trusted wrap key split {q}; the token can (checked: the wrapping mechanisms, and an SO-made CKA_TRUSTED key)")?;
        for i in 1..=q.shares {
            outln!("     backup custodian {i} takes {} (to a second site, and signs for it)", Purpose::Backup.file_name(i, q.shares))?;
        }
        n += 1;
    }
    for (purpose, q) in [(Purpose::SoPin, quorum), (Purpose::Activation, activation)] {
        let Some((q, shape)) = q else { continue };
        let (step, pin) = match purpose {
            Purpose::SoPin => ("[Step 3] Quorum created", "SO PIN"),
            Purpose::Activation | Purpose::Backup => ("[Step 3b] Activation quorum created", "user PIN"),
        };
        outln!("  {n}. {step}: the {pin} becomes a {shape} split {q}")?;
        for i in 1..=q.shares {
            outln!("     custodian {i} takes {} (and signs for it)", purpose.file_name(i, q.shares))?;
        }
        n += 1;
    }
    if quorum.is_none() {
        outln!("  {n}. [Step 3] No quorum made (--no-quorum)")?;
        n += 1;
    }
    outln!("  {n}. [Step 4] Ceremony complete. Store HSM in vault.")?;
    outln!("     then, with no token: hsm-demo verify-ceremony {}", plan.out.display())?;
    Ok(())
}

/// The profile: the file named, else the repository's, else the built-in copy.
fn profile(config: Option<&Path>) -> anyhow::Result<(RootProfile, String)> {
    let (profile, name) = match config {
        Some(p) if p.is_dir() => return Err(usage(format!("--config {} is a directory, not a config file", p.display()))),
        Some(p) if !p.is_file() => {
            return Err(usage(format!("--config {} does not exist", p.display())))
        }
        Some(p) => (RootProfile::load(p), p.display().to_string()),
        None if Path::new(DEFAULT_PROFILE).is_file() => (
            RootProfile::load(Path::new(DEFAULT_PROFILE)),
            DEFAULT_PROFILE.to_string(),
        ),
        None => {
            let name = format!("{DEFAULT_PROFILE} (built-in copy)");
            (RootProfile::from_text(BUILTIN_PROFILE, &name), name)
        }
    };
    Ok((profile?, name))
}
