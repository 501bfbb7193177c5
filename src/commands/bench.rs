//! `bench`: time the cold start phases, then the three signing paths.

use crate::console::outln;
use std::time::Instant;

use serde::Serialize;

use cryptoki::types::AuthPin;

use crate::bench::{self, Keys, Path, PathResult};
use crate::bridge;
use crate::child;
use crate::hsm::Hsm;
use crate::settings::Settings;
use crate::token::{KeySelector, Module, Pkcs11Uri, TokenSelector};

use super::{open_module, token_selector, user_pin, KeyArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    key: KeyArgs,

    /// Signatures per path (split across threads)
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    count: u32,

    /// Also run with this many threads, each with its own PKCS#11 session, and
    /// report scaling against one thread
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: u32,

    /// Paths (a) and (c) initialise a signing context per signature (EVP_DigestSignInit,
    /// with OpenSSL's implicit algorithm fetch), instead of copying one prepared per
    /// thread: the comparison that shows what the prepared contexts gain
    #[arg(long)]
    implicit_fetch: bool,

    /// Run the signing paths in this many hsm-demo processes at once and report their
    /// summed throughput against one process alone (each process does --count per path)
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=64), conflicts_with_all = ["threads", "implicit_fetch"])]
    processes: Option<u32>,

    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Phase {
    name: &'static str,
    ms: f64,
}

#[derive(Serialize)]
struct Ratios {
    /// Throughput of (a) over (b), one thread: the provider path's overhead.
    evp_over_cryptoki: f64,
    /// Throughput of (a) over (c), one thread: the token against the software ceiling.
    evp_over_software: f64,
    /// Throughput with --threads over one thread, per path (absent with one thread).
    scaling: Vec<(Path, f64)>,
}

#[derive(Serialize)]
struct Report {
    module: String,
    token: String,
    serial: String,
    key: String,
    /// The key's kind and size: "EC P-256", "RSA 3072 bits", "EdDSA Ed25519".
    algorithm: String,
    scheme: String,
    #[serde(skip)]
    kind: crate::token::KeyKind,
    count: usize,
    threads: usize,
    cold_start: Vec<Phase>,
    cold_start_total_ms: f64,
    one_thread: Vec<PathResult>,
    multi_thread: Vec<PathResult>,
    ratios: Ratios,
}

pub fn run(settings: &Settings, a: Args) -> anyhow::Result<()> {
    let (count, threads, json) = (a.count as usize, a.threads as usize, a.json);
    if let Some(p) = a.processes {
        return super::bench_processes::run(settings, &a.key, count, p as usize, json);
    }
    let (selector, uri) = a.key.selector()?;
    let token_sel = token_selector(settings, uri.as_ref())?;
    let t = Instant::now();
    let (module, lock) = open_module(settings, super::Use::Login)?;
    let loaded = t.elapsed();
    let token = module.select_token(&token_sel)?;
    let pin = user_pin(settings, &token)?;
    let setup = Setup { module, lock, token, pin, provider: settings.provider.clone(), selector, loaded };
    measure(setup, Run { count, threads, implicit: a.implicit_fetch, json }, false)
}

/// A worker of `bench --processes` (`crate::child::Child::BenchWorker`): the module,
/// key and count from the header, the PIN from the parent, the store lock held by the
/// parent; "ready" once logged in, then the signing paths on "go", the JSON report on
/// stdout. Dies with its parent.
pub fn worker(header: &child::Header, pin: &[u8]) -> anyhow::Result<()> {
    child::die_with_parent(header)?;
    let uri = header.key_uri.as_deref().ok_or_else(|| anyhow::anyhow!("bench worker: no key URI"))?;
    let parsed = Pkcs11Uri::parse(uri)?;
    let selector = KeySelector { label: parsed.object.clone(), id: parsed.id.clone() };
    let token_sel = TokenSelector { uri: Some(parsed), ..Default::default() };
    let t = Instant::now();
    let module = Module::open(&header.module_spec())?;
    let loaded = t.elapsed();
    let token = module.select_token(&token_sel)?;
    let pin = std::str::from_utf8(pin).map_err(|_| anyhow::anyhow!("bench worker: the PIN is not UTF-8"))?;
    let provider = header.provider.clone().ok_or_else(|| anyhow::anyhow!("bench worker: no provider path"))?;
    let setup = Setup { module, lock: crate::lock::held_by_parent(), token, pin: AuthPin::from(pin), provider, selector, loaded };
    let count = header.count.unwrap_or(1);
    measure(setup, Run { count, threads: 1, implicit: false, json: true }, true)
}

/// A loaded module, its token, the PIN and the key, before the login.
struct Setup {
    module: Module,
    lock: crate::lock::StoreLock,
    token: crate::token::TokenRef,
    pin: AuthPin,
    provider: std::path::PathBuf,
    selector: KeySelector,
    /// How long the module load took.
    loaded: std::time::Duration,
}

/// What to measure.
struct Run {
    count: usize,
    threads: usize,
    implicit: bool,
    json: bool,
}

/// Logs in, loads the key and runs every path; `worker` (a child of `bench
/// --processes`) frames "ready" after the login and waits for "go".
fn measure(setup: Setup, run: Run, worker: bool) -> anyhow::Result<()> {
    let Setup { module, lock, token, pin, provider, selector, loaded } = setup;
    let Run { count, threads, implicit, json } = run;
    let mut phases = vec![Phase { name: "module load + C_Initialize", ms: loaded.as_secs_f64() * 1e3 }];
    let mut timed = |name: &'static str, t: Instant| {
        phases.push(Phase {
            name,
            ms: t.elapsed().as_secs_f64() * 1e3,
        })
    };
    let t = Instant::now();
    let hsm = Hsm::login(module, &token, pin, provider, lock)?;
    timed("open session + C_Login", t);
    let t = Instant::now();
    let object = hsm.session().find_private_key(&selector)?;
    let public = hsm.public_key(&object)?;
    timed("key lookup (C_FindObjects, public key)", t);
    let t = Instant::now();
    let key = hsm.load_key_with(object, public)?;
    timed("provider load + OSSL_STORE key load", t);
    let t = Instant::now();
    let scheme = key.scheme(None, None)?;
    let fetched = scheme.fetched()?;
    key.bench_signer(&fetched, true)?.sign(bench::MESSAGE)?;
    timed("first signature (EVP, provider)", t);
    let cold_total = phases.iter().map(|p| p.ms).sum();

    let kind = key.object().kind.clone();
    let (software_key, software_public) = bridge::software_key(crate::hsm::software_spec(&kind))?;
    let software_scheme = bridge::Scheme::for_key(&software_public, None, None)?;
    let keys = Keys {
        token: &key,
        scheme,
        fetched,
        software_fetched: software_scheme.fetched()?,
        implicit,
        software_key,
        software_public,
        software_scheme,
    };

    if worker {
        // Logged in and the key loaded: tell the parent, wait for all workers to start.
        child::write_frame(&mut std::io::stdout().lock(), b"ready")?;
        if child::read_frame(&mut std::io::stdin().lock())?.as_slice() != b"go" {
            anyhow::bail!("bench worker: the parent did not say go");
        }
    }
    let rounds = if threads > 1 { 2 } else { 1 };
    let progress = crate::console::Progress::new((count * Path::ALL.len() * rounds) as u64, "signatures", json);
    let tick = || progress.tick();
    let thread_counts: Vec<usize> = if threads > 1 {
        vec![1, threads]
    } else {
        vec![1]
    };
    let mut results =
        bench::run_paths(&keys, &hsm, count, &thread_counts, &tick)?.into_iter();
    let one_thread = results.next().unwrap_or_default();
    let multi_thread = results.next().unwrap_or_default();
    progress.finish();

    let rate = |results: &[PathResult], p: Path| {
        results
            .iter()
            .find(|r| r.path == p)
            .map(|r| r.per_second)
            .unwrap_or(0.0)
    };
    let ratios = Ratios {
        evp_over_cryptoki: rate(&one_thread, Path::EvpProvider)
            / rate(&one_thread, Path::CryptokiCSign),
        evp_over_software: rate(&one_thread, Path::EvpProvider)
            / rate(&one_thread, Path::SoftwareKey),
        scaling: multi_thread
            .iter()
            .map(|r| (r.path, r.per_second / rate(&one_thread, r.path)))
            .collect(),
    };
    let report = Report {
        module: hsm.module().path().display().to_string(),
        token: token.label.clone(),
        serial: token.serial.clone(),
        key: key.object().label.clone(),
        algorithm: format!("{} {}", kind.type_name(), kind.size_name().unwrap_or_default()),
        scheme: if key.digests_on_host(scheme) {
            format!("{}; path (a) digests on the host and signs with EVP_PKEY_sign (the token has no hash-and-sign mechanism)", scheme.describe())
        } else {
            scheme.describe()
        },
        kind,
        count,
        threads,
        cold_start: phases,
        cold_start_total_ms: cold_total,
        one_thread,
        multi_thread,
        ratios,
    };
    if json {
        return super::print_json(&report);
    }
    print_text(&report)?;
    Ok(())
}

fn print_text(r: &Report) -> Result<(), crate::console::StdoutError> {
    outln!(
        "hsm-demo bench: key '{}' ({}) in token '{}' (serial {})",
        r.key, r.algorithm, r.token, r.serial
    )?;
    outln!("module: {}", r.module)?;
    outln!()?;
    outln!("Cold start                                      ms")?;
    for p in &r.cold_start {
        outln!("  {:<42}{:>8.2}", p.name, p.ms)?;
    }
    outln!("  {:<42}{:>8.2}", "total", r.cold_start_total_ms)?;
    for (title, results) in [("1 thread", &r.one_thread), ("threads", &r.multi_thread)] {
        if results.is_empty() {
            continue;
        }
        let heading = if title == "threads" {
            format!("{} threads", r.threads)
        } else {
            title.to_string()
        };
        outln!()?;
        outln!("Signing, {} signatures, {heading:<10}     p50 µs   p90 µs   p99 µs   max µs      sig/s  verified", r.count)?;
        for p in results.iter() {
            outln!(
                "  {:<40}{:>9.1}{:>9.1}{:>9.1}{:>9.1}{:>11.0}{:>10}",
                p.path.describe(&r.kind),
                p.p50_us,
                p.p90_us,
                p.p99_us,
                p.max_us,
                p.per_second,
                p.verified
            )?;
        }
    }
    outln!()?;
    outln!(
        "(a)/(b) throughput, 1 thread: {:.2}   (provider path against raw PKCS#11)",
        r.ratios.evp_over_cryptoki
    )?;
    outln!(
        "(a)/(c) throughput, 1 thread: {:.2}   (token against the in-memory software ceiling)",
        r.ratios.evp_over_software
    )?;
    for (path, s) in &r.ratios.scaling {
        outln!(
            "{} threads / 1 thread, {}: {:.2}x",
            r.threads,
            path.describe(&r.kind),
            s
        )?;
    }
    Ok(())
}


