//! hsm-demo: PKCS#11 key custody with OpenSSL 3 doing every signature (entry point):
//! parse, resolve the settings, export what the token libraries read from the
//! environment, run the command, print one error line and pick the exit code.

mod bench;
mod bridge;
mod ca;
mod ceremony;
mod cli;
mod commands;
mod console;
mod error;
mod hsm;
mod lock;
mod output;
mod pin;
mod quorum;
mod settings;
mod token;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

use crate::settings::{PinRole, Settings};

fn main() -> ExitCode {
    // Before anything opens a file: see claim_standard_fds. Then initialise OpenSSL
    // before anything else touches libcrypto (SoftHSM uses it too),
    // so that its state outlives the token libraries; openssl-sys registers no atexit
    // cleanup, and we never call OPENSSL_cleanup (docs/platform.md, "exit").
    console::claim_standard_fds();
    openssl::init();
    keep_secrets_out_of_core_dumps();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(step) = cli::so_step(&args) {
        let child = match cli::SoStepCli::try_parse_from(&args) {
            Ok(child) => child,
            Err(e) => return clap_error(e),
        };
        let settings = prepare(&child.global);
        return ceremony::so_step::child_main(&settings, step);
    }
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    let settings = prepare(&cli.global);
    match commands::run(cli.command, &settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            console::error_line(&error::one_line(&err));
            ExitCode::from(error::exit_code(&err))
        }
    }
}

/// Resolves the settings and makes the process environment what the libraries need.
fn prepare(global: &settings::GlobalArgs) -> Settings {
    let settings = Settings::resolve(global);
    // The only writes to the environment, made here once before any thread exists
    // (set_var is not thread-safe). SoftHSM2 reads its config, and the pkcs11-provider
    // the module it drives, from the environment only (docs/platform.md, "one module").
    for (name, value) in settings.exports() {
        std::env::set_var(name, value);
    }
    // The settings hold the PINs now; no child process (the ceremony's SO step, which
    // gets its PINs on stdin) inherits them.
    for role in PinRole::ALL {
        std::env::remove_var(role.env_var());
    }
    settings
}

/// Every hsm-demo process may hold a PIN or a quorum share: no core dump (RLIMIT_CORE
/// 0, which children inherit) and not dumpable (PR_SET_DUMPABLE 0, which also keeps
/// other processes of the same user from attaching with ptrace). Done before any
/// secret is read; a failure leaves the process as it was (nothing to report to).
fn keep_secrets_out_of_core_dumps() {
    use rustix::process::{setrlimit, set_dumpable_behavior, DumpableBehavior, Resource, Rlimit};
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    let _ = setrlimit(Resource::Core, none);
    let _ = set_dumpable_behavior(DumpableBehavior::NotDumpable);
}

/// Help and version as clap prints them; a usage error as one line and exit 2.
fn clap_error(e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ => {
            // One line: clap's first line, and for "required arguments were not
            // provided" the indented lines naming them, joined.
            let text = e.render().to_string();
            let mut lines = text.lines();
            let first = lines.next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first).trim_end_matches(':');
            let named: Vec<&str> = lines
                .take_while(|l| !l.trim().is_empty())
                .filter(|l| l.starts_with("  "))
                .map(str::trim)
                .collect();
            let line = if named.is_empty() { first.to_string() } else { format!("{first}: {}", named.join(", ")) };
            console::error_line(&format!("{line} (see 'hsm-demo --help')"));
            ExitCode::from(error::exit::USAGE)
        }
    }
}
