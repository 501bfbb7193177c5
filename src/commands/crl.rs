//! `crl`: the CA directory's next CRL, or a series of them signed in one vault visit
//! to publish over the months until the next (RFC 5280 §5; see `ca::crl`).

use std::path::PathBuf;

use crate::bridge::Idp;
use crate::ca::{self, CaDir, Schedule};
use crate::console::outln;
use crate::error::usage;
use crate::output;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("dest").multiple(false).args(["out", "out_dir"])))]
pub struct Args {
    /// The CA directory
    #[arg(long, value_name = "DIR")]
    ca: PathBuf,

    /// Days from thisUpdate to nextUpdate
    #[arg(long, value_name = "N", default_value_t = 30)]
    days: u32,

    /// thisUpdate, UTC: 2027-01-31 or 2027-01-31T12:00:00Z [default: now]
    #[arg(long, value_name = "TIME")]
    this_update: Option<String>,

    /// nextUpdate, UTC (instead of --days)
    #[arg(long, value_name = "TIME", conflicts_with_all = ["series"])]
    next_update: Option<String>,

    /// Sign K CRLs at once (increasing numbers), the i-th taking effect i x --interval
    /// days after the first, each valid --days (which must exceed the interval, so
    /// the windows overlap); written into --out-dir
    #[arg(long, value_name = "K", requires_all = ["interval", "out_dir"])]
    series: Option<u32>,

    /// Days between the CRLs of a --series
    #[arg(long, value_name = "DAYS", requires = "series")]
    interval: Option<u32>,

    /// Write the CRL (PEM) to FILE instead of stdout (never overwrites)
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,

    /// Write a series into DIR as crl-NUMBER.pem (or .crl with --der), all or none
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,

    /// Write DER instead of PEM
    #[arg(long)]
    der: bool,

    /// The URL the CRLs are published at (their issuingDistributionPoint) [default:
    /// crl_url in the CA directory's ca.cnf]
    #[arg(long, value_name = "URL")]
    crl_url: Option<String>,

    /// Allow a nextUpdate after the CA certificate's notAfter (refused otherwise)
    #[arg(long)]
    allow_beyond_ca: bool,

    #[command(flatten)]
    note: super::args::NoteArg,
}

fn time_arg(flag: &str, text: &Option<String>) -> anyhow::Result<Option<i64>> {
    text.as_deref()
        .map(|t| crate::clock::parse_utc(t).ok_or_else(|| usage(format!("{flag} '{}': not a UTC time (2027-01-31 or 2027-01-31T12:00:00Z)", crate::console::escape(t)))))
        .transpose()
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    let note = a.note.checked()?;
    if a.days == 0 {
        return Err(usage("--days must be at least 1"));
    }
    let schedule = Schedule {
        this_update: time_arg("--this-update", &a.this_update)?,
        next_update: time_arg("--next-update", &a.next_update)?,
        days: a.days,
        series: a.series.map(|k| (k, a.interval.unwrap_or(0))),
    };
    if let Some(path) = &a.out {
        output::refuse_existing(path, "--out")?;
    }
    if let Some(dir) = &a.out_dir {
        if !dir.is_dir() {
            return Err(usage(format!("--out-dir {}: not a directory", dir.display())));
        }
    }
    let mut ca = CaDir::open(&a.ca)?;
    let windows = ca::crl_windows(&ca, &schedule, a.allow_beyond_ca)?;
    let additions = ca::Additions::load(&a.ca, &ca::Given { crl_url: a.crl_url.clone(), ..ca::Given::default() })?;
    let url = additions.crl_url;
    let ext = if a.der { "crl" } else { "pem" };
    let only_ca = ca::only_ca_certificates(&ca)?;
    let (hsm, selector) = super::login_for_key(settings, &ca.key_uri, super::Use::Login)?;
    let key = hsm.signing_key(&selector)?;
    let mut made = Vec::new();
    let progress = crate::console::Progress::new(windows.len() as u64, "CRLs", false);
    for window in &windows {
        let output = ca::CrlOutput {
            out: a.out.as_deref(),
            pem: !a.der,
            who: ca::audit::Who::of(&hsm, &ca.key_uri, note),
            idp: Idp { url: url.as_deref(), only_ca },
        };
        made.push((ca::make_crl(&mut ca, &key, *window, &output)?, *window));
        progress.tick();
    }
    progress.finish();
    ca.log.checkpoint(&key)?;
    let kind = if only_ca { "ARL" } else { "CRL" };
    match (&a.out, &a.out_dir) {
        (Some(path), _) => {
            let (crl, _) = &made[0];
            output::publish_file(path, &crl.bytes, 0o644, "--out")?;
            outln!("{kind} number {}: {} revoked certificate(s), next update in {} days", crl.number, crl.entries, a.days)?;
        }
        (None, Some(dir)) => {
            let (batch, notes) = output::Batch::new(dir)?;
            for n in notes {
                crate::console::note(&n);
            }
            let mut targets = Vec::new();
            for (i, (crl, _)) in made.iter().enumerate() {
                batch.stage(i, &crl.bytes, 0o644)?;
                targets.push(dir.join(format!("crl-{}.{ext}", crl.number)));
            }
            batch.place(dir, &targets)?;
            let scope = if only_ca { " (CA certificates only)" } else { "" };
            outln!("{} {kind}s{scope} of CA {} in {}:", made.len(), ca::subject_line(ca.cert.subject_name()), dir.display())?;
            for ((crl, (this, next)), path) in made.iter().zip(&targets) {
                outln!("  number {:>4}  {} to {}  {} revoked  {}", crl.number, crate::clock::rfc3339(*this), crate::clock::rfc3339(*next), crl.entries, path.display())?;
            }
        }
        (None, None) => crate::console::write_bytes(&made[0].0.bytes)?,
    }
    Ok(())
}
