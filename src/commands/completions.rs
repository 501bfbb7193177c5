//! `completions`: a shell completion script, generated from the same clap definitions
//! that parse the command line (clap_complete).

use crate::console::out;
use clap_complete::Shell;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(mut definition: clap::Command, a: Args) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut definition, "hsm-demo", &mut script);
    let mut script = String::from_utf8(script)?;
    if a.shell == Shell::Bash {
        // clap_complete's bash script spells the state of a hyphenated binary two ways
        // (the loop sets `hsm__demo__subcmd__sign`, the arms match
        // `hsm__subcmd__demo__subcmd__sign`), so no subcommand's options ever complete:
        // clap-rs/clap issue #6421 (also #6529). Spell the arms as the loop does; once
        // upstream is fixed there is nothing left to replace.
        script = script.replace("hsm__subcmd__demo", "hsm__demo");
    }
    out!("{script}")?;
    Ok(())
}
