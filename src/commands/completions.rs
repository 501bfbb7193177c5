//! `completions`: a shell completion script, generated from the same clap definitions
//! that parse the command line (clap_complete).

use clap_complete::Shell;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(mut definition: clap::Command, a: Args) -> anyhow::Result<()> {
    clap_complete::generate(a.shell, &mut definition, "hsm-demo", &mut std::io::stdout());
    Ok(())
}
