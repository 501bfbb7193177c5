//! `manpage`: man pages in roff, generated from the same clap definitions that parse
//! the command line (clap_mangen): hsm-demo(1) on stdout, or with --dir one page per
//! command (hsm-demo.1, hsm-demo-sign.1, ...), never replacing a file.

use crate::console::outln;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write hsm-demo.1 and hsm-demo-<command>.1 into DIR instead of printing hsm-demo(1)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

fn render(page: &clap::Command) -> anyhow::Result<Vec<u8>> {
    let mut roff = Vec::new();
    clap_mangen::Man::new(page.clone())
        .render(&mut roff)
        .context("render the man page")?;
    Ok(roff)
}

pub fn run(definition: clap::Command, a: Args) -> anyhow::Result<()> {
    let definition = definition.version(env!("CARGO_PKG_VERSION"));
    let Some(dir) = a.dir else {
        crate::console::write_bytes(&render(&definition)?)?;
        return Ok(());
    };
    let mut pages = vec![("hsm-demo.1".to_string(), definition.clone())];
    for sub in definition.get_subcommands() {
        let name = format!("hsm-demo-{}", sub.get_name());
        let page = sub.clone().name(name.clone()).version(env!("CARGO_PKG_VERSION"));
        pages.push((format!("{name}.1"), page));
    }
    for (file, page) in &pages {
        output::publish_file(&dir.join(file), &render(page)?, 0o644, "man page")?;
        outln!("{}", dir.join(file).display())?;
    }
    Ok(())
}
