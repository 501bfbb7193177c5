//! `sign`: the digest on the host, the signature in the token, via EVP and the
//! provider: ECDSA (DER by default), RSA PKCS#1 v1.5 or PSS, Ed25519.

use crate::console::outln;
use std::path::{Path, PathBuf};

use clap::ValueEnum;

use crate::bridge;
use crate::error::usage;
use crate::output;

use super::io::Input;
use super::{DataArgs, KeyArgs};

/// What to sign: --data, one or more --in, or a --manifest (exactly one of the three).
#[derive(Debug, clap::Args, Clone)]
#[group(required = true, multiple = false)]
pub struct SignInput {
    /// The data, as a UTF-8 string
    #[arg(long, value_name = "STR")]
    data: Option<String>,

    /// Read the data from FILE (bytes as they are; - for standard input); repeat for
    /// several files, each signed on its own (then --out-dir)
    #[arg(long = "in", id = "input", value_name = "FILE")]
    input: Vec<PathBuf>,

    /// A file listing the files to sign, one path per line (blank lines and # comments
    /// ignored; relative paths from the manifest's directory); with --out-dir
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    key: KeyArgs,

    #[command(flatten)]
    data: SignInput,

    /// With several inputs: write each signature (binary) to DIR/<input file name>.sig.
    /// Every output is checked to be new before anything is signed; none is overwritten
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    out_dir: Option<PathBuf>,

    /// With several inputs: signing threads, each with its own prepared signing and
    /// verification contexts (default: the number of CPUs)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    jobs: Option<u32>,

    /// ECDSA signature encoding: der (ECDSA-Sig-Value) or raw (r||s: 64, 96 or 132 bytes)
    #[arg(long, value_enum, default_value_t = SigFormat::Der)]
    format: SigFormat,

    /// Digest (default: SHA-256; SHA-384 for P-384, SHA-512 for P-521; none for Ed25519)
    #[arg(long, value_enum)]
    digest: Option<super::args::DigestArg>,

    /// RSA padding: pkcs1 (default) or pss
    #[arg(long, value_enum)]
    padding: Option<super::args::PaddingArg>,

    /// Also write the binary signature to FILE (never overwrites)
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SigFormat {
    /// DER ECDSA-Sig-Value (openssl dgst, X.509, CMS)
    Der,
    /// r||s, each 32 bytes (PKCS#11 CKM_ECDSA, JOSE)
    Raw,
}

pub fn run(settings: &crate::settings::Settings, a: Args) -> anyhow::Result<()> {
    let batch = a.data.manifest.is_some() || a.data.input.len() > 1 || a.out_dir.is_some();
    if batch {
        return run_batch(settings, &a);
    }
    let data = DataArgs {
        data: a.data.data.clone(),
        input: a.data.input.first().cloned(),
    };
    if let Some(out) = &a.out {
        if out.symlink_metadata().is_ok() {
            return Err(output::OutputError::Exists {
                what: "--out".into(),
                path: out.clone(),
            }
            .into());
        }
    }
    let mut input = Input::open(&data)?;
    let (hsm, selector) = a.key.login(settings)?;
    let key = hsm.signing_key(&selector)?;
    let (scheme, field) = scheme_of(&key, &a)?;
    let signature = key.sign(scheme, |sink| input.feed(sink))?;
    let bytes = encoded(signature, a.format, field)?;
    if let Some(out) = &a.out {
        output::publish_file(out, &bytes, 0o644, "--out")?;
    }
    outln!("Signature: {}", hex::encode(&bytes))?;
    Ok(())
}

/// The scheme `a` asks of `key`, and the ECDSA field size when the signature is ECDSA.
fn scheme_of(key: &crate::hsm::SigningKey<'_>, a: &Args) -> anyhow::Result<(bridge::Scheme, Option<usize>)> {
    let scheme = key.scheme(a.digest.map(Into::into), a.padding.map(Into::into)).map_err(super::args::scheme_error)?;
    match (scheme, a.format) {
        (bridge::Scheme::Ecdsa { field, .. }, _) => Ok((scheme, Some(field))),
        (_, SigFormat::Raw) => Err(usage("--format raw is for ECDSA signatures only")),
        _ => Ok((scheme, None)),
    }
}

/// The signature as `--format` wants it: DER as made, or raw r||s for ECDSA.
fn encoded(signature: Vec<u8>, format: SigFormat, field: Option<usize>) -> anyhow::Result<Vec<u8>> {
    match (format, field) {
        (SigFormat::Raw, Some(field)) => bridge::EcdsaSignature::parse_for(&signature, field)
            .and_then(|s| s.raw())
            .map_err(|e| anyhow::anyhow!("{e}")),
        _ => Ok(signature),
    }
}

/// Files up to this size are read whole and signed with the prepared contexts; larger
/// ones stream.
const WHOLE_FILE: u64 = 16 << 20;

/// The inputs of a batch: the --in files or the manifest's lines.
fn batch_inputs(a: &Args) -> anyhow::Result<Vec<PathBuf>> {
    let Some(manifest) = &a.data.manifest else {
        return Ok(a.data.input.clone());
    };
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| usage(format!("--manifest {}: {}", manifest.display(), output::reason(&e))))?;
    let base = manifest.parent().unwrap_or(Path::new("."));
    let files: Vec<PathBuf> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| base.join(l))
        .collect();
    if files.is_empty() {
        return Err(usage(format!("--manifest {}: lists no file", manifest.display())));
    }
    Ok(files)
}

/// Several inputs in one process: one login, one key load, then each file signed and
/// its signature checked with the token's public key, by `--jobs` threads that each
/// prepare their signing and verification contexts once (README, "Benchmarks"). Every
/// input is checked to be a readable regular file and every output new before the
/// login; the signatures go into a staging directory inside --out-dir
/// (`output::Batch`), the report is written, and only then are they placed, without
/// replacing anything: a failure at any point, the report's included, places none, and
/// a killed batch is undone by the next one.
fn run_batch(settings: &crate::settings::Settings, a: &Args) -> anyhow::Result<()> {
    let Some(dir) = &a.out_dir else {
        return Err(usage("several inputs need --out-dir DIR (one signature file per input)"));
    };
    if a.data.data.is_some() {
        return Err(usage("--data signs one string; give files with --in or --manifest"));
    }
    if !dir.is_dir() {
        return Err(usage(format!("--out-dir {}: no such directory", dir.display())));
    }
    let inputs = batch_inputs(a)?;
    // Each input with its output and its size (whether it is read whole).
    let mut plan: Vec<(PathBuf, PathBuf, u64)> = Vec::with_capacity(inputs.len());
    let mut names = std::collections::HashSet::new();
    for input in &inputs {
        if input.as_os_str() == "-" {
            return Err(usage("standard input (-) cannot be one of several inputs"));
        }
        let meta = std::fs::metadata(input)
            .map_err(|e| usage(format!("cannot read --in {}: {}", input.display(), output::reason(&e))))?;
        if meta.is_dir() {
            return Err(usage(format!("--in {} is a directory", input.display())));
        }
        // A FIFO or a device would block or never end: refused before the login.
        if !meta.is_file() {
            return Err(usage(format!("--in {} is not a regular file (a FIFO or a device); nothing was signed", input.display())));
        }
        let name = input
            .file_name()
            .ok_or_else(|| usage(format!("--in {} has no file name", input.display())))?;
        let out = dir.join(format!("{}.sig", name.to_string_lossy()));
        if !names.insert(out.clone()) {
            return Err(usage(format!("two inputs would both write {}; nothing was signed", out.display())));
        }
        plan.push((input.clone(), out, meta.len()));
    }
    // The staging directory inside --out-dir (a dead batch's is undone first).
    let (batch, undone) = output::Batch::new(dir)?;
    for note in undone {
        crate::console::note(&note);
    }
    for (_, out, _) in &plan {
        output::refuse_existing(out, "output")?;
    }
    let (hsm, selector) = a.key.login(settings)?;
    let key = hsm.signing_key(&selector)?;
    let (scheme, field) = scheme_of(&key, a)?;
    let started = std::time::Instant::now();
    let sign_one = |i: usize, input: &Path, len: u64, signer: &mut crate::hsm::ThreadSigner<'_, '_>| -> anyhow::Result<()> {
        let signature = match len <= WHOLE_FILE {
            // Small files: read whole, signed and checked with this thread's contexts.
            true => {
                let data = std::fs::read(input)
                    .map_err(|e| usage(format!("cannot read --in {}: {}", input.display(), output::reason(&e))))?;
                signer.sign(&data)?
            }
            // Large files stream.
            false => {
                let mut data = Input::open(&DataArgs { data: None, input: Some(input.to_path_buf()) })?;
                key.sign(scheme, |sink| data.feed(sink))?
            }
        };
        let bytes = encoded(signature, a.format, field)?;
        Ok(batch.stage(i, &bytes, 0o644)?)
    };
    let fetched = scheme.fetched()?;
    let jobs = a
        .jobs
        .map(|j| j as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(plan.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let progress = crate::console::Progress::new(plan.len() as u64, "files", false);
    let done: Vec<anyhow::Result<()>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    let mut signer = key.thread_signer(&fetched)?;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((input, _, len)) = plan.get(i) else { break };
                        sign_one(i, input, *len, &mut signer)?;
                        progress.tick();
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("signing thread panicked")).collect()
    });
    progress.finish();
    // Any failure drops the batch: its staging directory goes, nothing is placed.
    done.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let secs = started.elapsed().as_secs_f64();
    // The report first: if it cannot be written (a closed pipe, a full disk), nothing
    // is placed either.
    for (input, out, _) in &plan {
        outln!("{} -> {}", input.display(), out.display())?;
    }
    outln!(
        "Signed {} file(s) in {secs:.2} s ({:.0}/s), each signature checked with the token's public key",
        plan.len(),
        plan.len() as f64 / secs
    )?;
    let targets: Vec<PathBuf> = plan.iter().map(|(_, out, _)| out.clone()).collect();
    batch.place(dir, &targets)?;
    Ok(())
}
