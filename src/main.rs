//! hsm-demo: PKCS#11 key custody with OpenSSL 3 doing every signature (entry point).

mod bench;
mod bridge;
mod ceremony;
mod cli;
mod commands;
mod error;
mod pin;
mod quorum;
mod token;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // PLATFORM.md: initialise OpenSSL before anything else touches libcrypto (SoftHSM
    // uses it too) so that its state outlives the token libraries; openssl-sys
    // registers no atexit cleanup, and we never call OPENSSL_cleanup.
    openssl::init();
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the context chain joined with ": ".
            eprintln!("hsm-demo: {}", error::one_line(&err));
            ExitCode::from(error::exit_code(&err))
        }
    }
}
