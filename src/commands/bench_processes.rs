//! `bench --processes P`: the same signing paths in P hsm-demo processes at once, against
//! one process alone, for the deployment answer when one process's threads do not scale
//! (README, "Benchmarks": OpenSSL 3.0 and the token library bound the threads of one
//! process). Each child is a whole `hsm-demo bench --json` run with its own module load,
//! login and key; the PIN reaches it on its standard input, never in its arguments or
//! environment. This process holds the token store's lock exclusively for all of them
//! and lets them log in one at a time (a SoftHSM2 login rewrites the token files:
//! docs/platform.md), then starts their signing together.

use std::io::Read as _;
use std::time::Instant;

use secrecy::ExposeSecret as _;
use serde::Serialize;

use crate::child::{self, Child};
use crate::console::outln;
use crate::settings::Settings;

use super::{open_token, user_pin, KeyArgs};

/// A running worker, killed if it is dropped before it was waited for (another
/// worker failed, or this process is unwinding an error).
struct Worker(Option<child::Running>);

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(r) = self.0.as_mut() {
            let _ = r.process.kill();
            let _ = r.process.wait();
        }
    }
}

#[derive(Serialize)]
struct PathRate {
    path: String,
    one_process: f64,
    processes: f64,
    ratio: f64,
}

#[derive(Serialize)]
struct Report {
    key: String,
    processes: usize,
    count_per_process: usize,
    wall_s_one: f64,
    wall_s_all: f64,
    rates: Vec<PathRate>,
}

pub fn run(settings: &Settings, key: &KeyArgs, count: usize, processes: usize, json: bool) -> anyhow::Result<()> {
    let (selector, uri) = key.selector()?;
    // The key's URI and the PIN, read once here; the workers log in themselves.
    let (key_uri, pin, _lock) = {
        let (module, token, lock) = open_token(settings, uri.as_ref(), super::Use::Change)?;
        let object = module.public_session(&token)?.find_public_key(&selector)?;
        let pin = user_pin(settings, &token)?;
        // The PIN is tried here, once, as every command tries it: a wrong one is one
        // line and exit 3, not a worker failing. Closing the session logs out.
        drop(module.login_user(&token, &pin)?);
        (token.key_uri(&object.label, &object.id, "private"), pin, lock)
    };
    let launcher = super::launcher(settings)?;
    // One worker: spawned, given the PIN, and logged in before the next starts.
    let start = || -> anyhow::Result<Worker> {
        let key_uri = key_uri.clone();
        let running = launcher.spawn(
            Child::BenchWorker,
            |h| {
                h.key_uri = Some(key_uri);
                h.count = Some(count);
            },
            &[pin.expose_secret().as_bytes()],
            false,
        )?;
        let mut worker = Worker(Some(running));
        let r = worker.0.as_mut().expect("just set");
        match child::read_frame(&mut r.stdout) {
            Ok(ready) if ready.as_slice() == b"ready" => Ok(worker),
            _ => anyhow::bail!("a bench worker did not start (see its error above)"),
        }
    };
    let run_all = |n: usize| -> anyhow::Result<(Vec<serde_json::Value>, f64)> {
        // A worker that fails stops the others: each is killed when its Worker drops.
        let mut workers = (0..n).map(|_| start()).collect::<anyhow::Result<Vec<_>>>()?;
        let t = Instant::now();
        for w in &mut workers {
            let r = w.0.as_mut().expect("running");
            let mut stdin = r.stdin.take().ok_or_else(|| anyhow::anyhow!("a bench worker closed its input"))?;
            child::write_frame(&mut stdin, b"go")?;
        }
        let mut runs = Vec::with_capacity(n);
        for w in &mut workers {
            let mut r = w.0.take().expect("running");
            let mut text = String::new();
            r.stdout.read_to_string(&mut text)?;
            let status = r.process.wait()?;
            if !status.success() {
                anyhow::bail!("a bench worker failed (see its error above); the others were stopped");
            }
            runs.push(serde_json::from_str(&text)?);
        }
        Ok((runs, t.elapsed().as_secs_f64()))
    };
    let (one, wall_one) = run_all(1)?;
    let (all, wall_all) = run_all(processes)?;
    let rate = |runs: &[serde_json::Value], path: &str| -> f64 {
        runs.iter()
            .filter_map(|r| r["one_thread"].as_array())
            .flatten()
            .filter(|p| p["path"] == path)
            .filter_map(|p| p["per_second"].as_f64())
            .sum()
    };
    let rates: Vec<PathRate> = ["evp_provider", "cryptoki_c_sign", "software_key"]
        .iter()
        .map(|p| {
            let (o, a) = (rate(&one, p), rate(&all, p));
            PathRate { path: p.to_string(), one_process: o, processes: a, ratio: a / o }
        })
        .collect();
    let report = Report {
        key: key_uri,
        processes,
        count_per_process: count,
        wall_s_one: wall_one,
        wall_s_all: wall_all,
        rates,
    };
    if json {
        return super::print_json(&report);
    }
    outln!("hsm-demo bench --processes {processes}: key {}", report.key)?;
    outln!("{count} signatures per path in each process; rates are signatures/s, the {processes} processes' summed")?;
    outln!()?;
    outln!("{:<22} {:>12} {:>14} {:>8}", "path", "1 process", format!("{processes} processes"), "ratio")?;
    for r in &report.rates {
        outln!("{:<22} {:>12.0} {:>14.0} {:>7.2}x", r.path, r.one_process, r.processes, r.ratio)?;
    }
    outln!()?;
    outln!("wall: {:.2} s for one process, {:.2} s for {processes} at once", wall_one, wall_all)?;
    Ok(())
}
