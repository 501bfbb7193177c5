//! Signing benchmark: cold-start phases, and per-signature latency and throughput for
//! three paths with any signing key (EVP through the pkcs11-provider, raw cryptoki
//! C_Sign, an in-memory software key of the same kind), every path checked by
//! verifying a sample of its output.

use std::time::{Duration, Instant};

use crate::bridge::{PKey, Private, Public};
use serde::Serialize;

use crate::bridge::{self, FetchedScheme, Scheme};
use crate::hsm::{Hsm, SigningKey};
use crate::token::{KeyKind, Session, User};

/// The message every path signs (SHA-256 of it for the raw C_Sign path).
pub const MESSAGE: &[u8] = b"hsm-demo bench: a 64-byte message, about the size of a TBS hash.";

/// The three signing paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Path {
    /// (a) EVP_DigestSign with the token key through the pkcs11-provider.
    EvpProvider,
    /// (b) C_Sign(CKM_ECDSA) over a host SHA-256 digest, straight through cryptoki.
    CryptokiCSign,
    /// (c) EVP_DigestSign with an in-memory key in OpenSSL's default provider.
    SoftwareKey,
}

impl Path {
    pub const ALL: [Path; 3] = [Path::EvpProvider, Path::CryptokiCSign, Path::SoftwareKey];

    /// The path's name in the report; (b) names the mechanism for the key's kind.
    pub fn describe(self, kind: &KeyKind) -> &'static str {
        match (self, kind) {
            (Path::EvpProvider, _) => "(a) OpenSSL EVP + pkcs11-provider",
            (Path::CryptokiCSign, KeyKind::Ec(_)) => "(b) cryptoki C_Sign(CKM_ECDSA)",
            (Path::CryptokiCSign, KeyKind::Rsa(_)) => "(b) cryptoki C_Sign(CKM_RSA_PKCS)",
            (Path::CryptokiCSign, _) => "(b) cryptoki C_Sign(CKM_EDDSA)",
            (Path::SoftwareKey, _) => "(c) software key (default provider)",
        }
    }
}

/// Latency percentiles in microseconds and throughput for one path and thread count.
#[derive(Debug, Clone, Serialize)]
pub struct PathResult {
    pub path: Path,
    pub threads: usize,
    pub signatures: usize,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub wall_s: f64,
    pub per_second: f64,
    pub verified: usize,
}

/// What each signing loop needs: the token key (through the provider, and by its
/// object handle for raw C_Sign), its scheme, and a software key of the same kind.
pub struct Keys<'a, 'h> {
    pub token: &'a SigningKey<'h>,
    pub scheme: Scheme,
    pub software_key: PKey<Private>,
    pub software_public: PKey<Public>,
    pub software_scheme: Scheme,
    /// The schemes with their digests fetched once (paths (a) and (c)).
    pub fetched: FetchedScheme,
    pub software_fetched: FetchedScheme,
    /// `--implicit-fetch`: paths (a) and (c) call EVP_DigestSignInit per signature, as
    /// `sign` does for one message (the comparison for the prepared contexts).
    pub implicit: bool,
}

/// The DER DigestInfo prefix of SHA-256 (RFC 8017 §9.2, note 1): CKM_RSA_PKCS signs
/// DigestInfo || digest, which is RSASSA-PKCS1-v1_5 with SHA-256.
const SHA256_DIGEST_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
    0x05, 0x00, 0x04, 0x20,
];

/// The input of the raw C_Sign path for the key's kind, and how its output becomes
/// what the scheme verifies.
fn raw_input(keys: &Keys) -> anyhow::Result<Vec<u8>> {
    Ok(match keys.token.object().kind {
        KeyKind::Ec(_) => bridge::digest_of(keys.scheme, MESSAGE)?,
        KeyKind::Rsa(_) => [SHA256_DIGEST_INFO, &bridge::digest_of(keys.scheme, MESSAGE)?].concat(),
        _ => MESSAGE.to_vec(),
    })
}

/// Whether signature `i` of `n` is verified: the first, the last, and 1 in 100.
fn sampled(i: usize, n: usize) -> bool {
    i == 0 || i + 1 == n || i % 100 == 0
}

/// Signs `n` times on one path in this thread; returns the latencies and the sampled
/// signatures (verified later, outside the timed loop). `first` is the index of the
/// first signature within the path's whole run of `total`.
fn sign_loop(
    path: Path,
    keys: &Keys,
    session: &Session<User>,
    (first, n, total): (usize, usize, usize),
    tick: &(dyn Fn() + Sync),
) -> anyhow::Result<Signed> {
    let mut lat = Vec::with_capacity(n);
    let mut samples = Vec::new();
    let raw = raw_input(keys)?;
    let object = keys.token.object();
    // This thread's own signing contexts, initialised once (outside the clock).
    let mut token = match path {
        Path::EvpProvider => Some(keys.token.bench_signer(&keys.fetched, keys.implicit)?),
        _ => None,
    };
    let mut software = match path {
        Path::SoftwareKey if !keys.implicit => Some(keys.software_fetched.prepare(&keys.software_key)?),
        _ => None,
    };
    for i in first..first + n {
        let t0 = Instant::now();
        let sig = match (path, token.as_mut(), software.as_mut()) {
            (Path::EvpProvider, Some(t), _) => t.sign(MESSAGE)?,
            (Path::SoftwareKey, _, Some(p)) => p
                .sign(MESSAGE)
                .map_err(bridge::BridgeError::openssl("sign (EVP_DigestSign, prepared context)"))?,
            (Path::SoftwareKey, _, None) => bridge::sign_message(&keys.software_key, keys.software_scheme, false, MESSAGE)?,
            (Path::EvpProvider, None, _) => unreachable!("the provider path has its signer"),
            (Path::CryptokiCSign, _, _) => {
                let sig = session.sign_raw_for_measurement(object.handle, &object.kind, &raw)?;
                keys.scheme
                    .parse_signature(&sig)
                    .map_err(|e| anyhow::anyhow!("C_Sign returned {} bytes: {e}", sig.len()))?
            }
        };
        lat.push(t0.elapsed());
        if sampled(i, total) {
            samples.push(sig);
        }
        tick();
    }
    Ok((lat, samples))
}

/// One loop's latencies and its sampled signatures.
type Signed = (Vec<Duration>, Vec<Vec<u8>>);

/// What one path has gathered so far.
#[derive(Default)]
struct Tally {
    lat: Vec<Duration>,
    samples: Vec<Vec<u8>>,
    wall: Duration,
    done: usize,
}

/// How many interleaved rounds a run is cut into (fewer for tiny counts).
pub const ROUNDS: usize = 10;

/// Runs every path for `n` signatures at every thread count in `thread_counts`, each
/// thread with its own PKCS#11 session. The runs are interleaved: cut into rounds, each
/// round runs a slice of every (path, thread count) pair, in an order that rotates from
/// round to round, so that drift in the machine's speed (other load, frequency changes)
/// falls on all of them alike and the ratios between them stay meaningful. Returns one
/// list of results per thread count. Fails (exit 4 at the command edge) if any sampled
/// signature does not verify.
pub fn run_paths(
    keys: &Keys,
    hsm: &Hsm,
    n: usize,
    thread_counts: &[usize],
    tick: &(dyn Fn() + Sync),
) -> anyhow::Result<Vec<Vec<PathResult>>> {
    let configs: Vec<(Path, usize)> = thread_counts
        .iter()
        .flat_map(|&t| Path::ALL.iter().map(move |&p| (p, t)))
        .collect();
    let rounds = ROUNDS.min(n);
    let mut tallies: Vec<Tally> = configs.iter().map(|_| Tally::default()).collect();
    for round in 0..rounds {
        let slice = n / rounds + usize::from(round < n % rounds);
        for k in 0..configs.len() {
            let idx = (round + k) % configs.len();
            let (path, threads) = configs[idx];
            run_slice(path, threads, (slice, n), keys, hsm, &mut tallies[idx], tick)?;
        }
    }
    let mut results: Vec<Vec<PathResult>> = thread_counts.iter().map(|_| Vec::new()).collect();
    for ((path, threads), tally) in configs.into_iter().zip(tallies) {
        let at = thread_counts
            .iter()
            .position(|&t| t == threads)
            .expect("a configured thread count");
        results[at].push(summarise(path, keys, threads, tally)?);
    }
    Ok(results)
}

/// One timed slice of one path: `slice` signatures (of the path's `total`) over
/// `threads` threads.
fn run_slice(
    path: Path,
    threads: usize,
    (slice, total): (usize, usize),
    keys: &Keys,
    hsm: &Hsm,
    tally: &mut Tally,
    tick: &(dyn Fn() + Sync),
) -> anyhow::Result<()> {
    let per_thread: Vec<usize> = (0..threads)
        .map(|t| slice / threads + usize::from(t < slice % threads))
        .collect();
    // Sessions are opened before the clock starts.
    let sessions = (0..threads)
        .map(|_| hsm.extra_session())
        .collect::<Result<Vec<_>, _>>()?;
    let mut firsts = Vec::with_capacity(threads);
    let mut next = tally.done;
    for c in &per_thread {
        firsts.push(next);
        next += c;
    }
    let start = Instant::now();
    let results: Vec<anyhow::Result<Signed>> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = sessions
                .into_iter()
                .zip(per_thread.iter().zip(&firsts))
                .map(|(session, (&count, &first))| {
                    scope
                        .spawn(move || sign_loop(path, keys, &session, (first, count, total), tick))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("bench thread panicked"))
                .collect()
        });
    tally.wall += start.elapsed();
    tally.done += slice;
    for r in results {
        let (l, s) = r?;
        tally.lat.extend(l);
        tally.samples.extend(s);
    }
    Ok(())
}

fn summarise(path: Path, keys: &Keys, threads: usize, mut t: Tally) -> anyhow::Result<PathResult> {
    let (public, scheme) = if path == Path::SoftwareKey {
        (&keys.software_public, keys.software_scheme)
    } else {
        (keys.token.public(), keys.scheme)
    };
    for (i, sig) in t.samples.iter().enumerate() {
        if !bridge::verify(public, scheme, sig, |sink| Ok(sink(MESSAGE)?))? {
            anyhow::bail!(
                "{}: sampled signature {i} does not verify; this path is broken",
                path.describe(&keys.token.object().kind)
            );
        }
    }
    t.lat.sort();
    let lat = &t.lat;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let pct = |p: f64| us(lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1]);
    Ok(PathResult {
        path,
        threads,
        signatures: lat.len(),
        p50_us: pct(0.50),
        p90_us: pct(0.90),
        p99_us: pct(0.99),
        max_us: us(*lat.last().expect("n >= 1")),
        wall_s: t.wall.as_secs_f64(),
        per_second: lat.len() as f64 / t.wall.as_secs_f64(),
        verified: t.samples.len(),
    })
}
