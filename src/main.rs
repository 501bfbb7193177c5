//! hsm-demo: PKCS#11 key custody with OpenSSL 3 doing every signature (entry point):
//! a hidden child runs its step; otherwise parse, resolve the settings (which also
//! prepares the process environment), run the command, print one error line and
//! pick the exit code.
#![deny(unsafe_code)]

mod bench;
mod bridge;
mod ca;
mod ceremony;
mod child;
mod cli;
mod clock;
mod commands;
mod console;
mod error;
mod hsm;
mod lock;
mod output;
mod quorum;
mod settings;
mod token;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Before anything opens a file: see claim_standard_fds. Then initialise OpenSSL
    // before anything else touches libcrypto (SoftHSM uses it too), so that its state
    // outlives the token libraries (docs/platform.md, "exit").
    console::claim_standard_fds();
    bridge::init();
    commands::pin::keep_secrets_out_of_core_dumps();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(child) = child::Child::from_args(&args) {
        return commands::run_child(child);
    }
    let cli = match cli::parse(&args) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let mut settings = settings::Settings::prepare_process(&cli.global);
    if cli.command.serial_is_a_certificates() {
        // `revoke --serial` names a certificate; clap hands the value to the global
        // token --serial too (one id), and the CA's key URI names the token anyway.
        settings.serial = None;
    }
    match commands::run(cli.command, &settings, cli::definition) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            console::error_line(&error::one_line(&err));
            ExitCode::from(error::exit_code(&err))
        }
    }
}
