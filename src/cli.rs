//! The command line: the top-level parser, its help, and one-line usage errors. The
//! subcommands (`commands::Command`) and their arguments live under commands/ (cargo's
//! layout); the global flags live with the settings they feed.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory as _, Parser};

use crate::commands::Command;
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

/// The clap definition of the whole command line (for completions and man pages).
pub fn definition() -> clap::Command {
    Cli::command()
}

/// The command line, or the exit code after clap printed help or a version, or after a
/// usage error was printed as one line (exit 2).
pub fn parse(args: &[std::ffi::OsString]) -> Result<Cli, ExitCode> {
    Cli::try_parse_from(args).map_err(clap_error)
}

/// Help and version as clap prints them; a usage error as one line and exit 2.
fn clap_error(e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
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
            crate::console::error_line(&format!("{line} (see 'hsm-demo --help')"));
            ExitCode::from(crate::error::exit::USAGE)
        }
    }
}

impl crate::commands::Command {
    /// Whether this command's own `--serial` is a certificate serial (not the token's).
    pub fn serial_is_a_certificates(&self) -> bool {
        matches!(self, crate::commands::Command::Revoke(_) | crate::commands::Command::ListIssued(_))
    }
}
