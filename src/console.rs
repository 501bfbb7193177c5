//! Writing to stdout and stderr without ever panicking: a broken pipe or a full disk
//! becomes one error line and a non-zero exit (Rust ignores SIGPIPE, so a write to a
//! closed pipe returns EPIPE, which `println!` would turn into a panic).

use std::fmt;
use std::io::Write as _;
use std::os::fd::{AsFd as _, IntoRawFd as _};

use rustix::fs::{Mode, OFlags};

/// Why the output could not be written. (Not a chained cause: the message quotes it.)
#[derive(Debug, thiserror::Error)]
#[error("cannot write to stdout: {}", crate::output::reason(.0))]
pub struct StdoutError(pub std::io::Error);

impl From<std::io::Error> for StdoutError {
    fn from(e: std::io::Error) -> Self {
        StdoutError(e)
    }
}

/// Run first in `main`. A standard descriptor (0, 1, 2) the process was started
/// without must not be taken by a file hsm-demo opens later (a lock, a token store
/// file) and receive what is printed: the Rust runtime already reopens closed ones as
/// /dev/null (read-write) before `main`, and this makes sure of it.
///
/// A stdout the process was started without therefore looks exactly like a stdout
/// that is /dev/null opened read-write, which is what automation hands a program
/// (Python's `subprocess.DEVNULL`, a shell's `1<>/dev/null`): both are working
/// outputs that discard what is written, and the command succeeds. Telling them apart
/// would take code that runs before the runtime (README, "Exit codes").
pub fn claim_standard_fds() {
    for fd in 0..3 {
        // fcntl(F_GETFD) fails with EBADF on a descriptor that is not open.
        let open = match fd {
            0 => rustix::io::fcntl_getfd(std::io::stdin().as_fd()).is_ok(),
            1 => rustix::io::fcntl_getfd(std::io::stdout().as_fd()).is_ok(),
            _ => rustix::io::fcntl_getfd(std::io::stderr().as_fd()).is_ok(),
        };
        if open {
            continue;
        }
        // open(2) returns the lowest free descriptor: this one.
        if let Ok(null) = rustix::fs::open("/dev/null", OFlags::RDWR, Mode::empty()) {
            let _ = null.into_raw_fd();
        }
    }
}

/// Writes to stdout and flushes, reporting any failure.
pub fn write_out(args: fmt::Arguments) -> Result<(), StdoutError> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)?;
    out.flush()?;
    Ok(())
}

/// Writes bytes to stdout and flushes, reporting any failure.
pub fn write_bytes(bytes: &[u8]) -> Result<(), StdoutError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

/// `println!` that returns an error instead of panicking.
macro_rules! outln {
    () => {
        $crate::console::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::console::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that returns an error instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::console::write_out(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};

/// One line on stderr, `hsm-demo: ` first; a failure to write it is ignored (there is
/// nowhere left to report it).
pub fn error_line(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "hsm-demo: {text}");
}

/// A note on stderr that does not stop the command.
pub fn note(text: &str) {
    error_line(&format!("note: {text}"));
}

/// Lines printed by work that must go on whatever happens to stdout (the ceremony):
/// the first write error is kept, later lines are dropped, and [`Printer::finish`]
/// reports it once the work is done.
#[derive(Default)]
pub struct Printer {
    failed: Option<StdoutError>,
}

impl Printer {
    pub fn line(&mut self, text: &str) {
        if self.failed.is_none() {
            if let Err(e) = outln!("{text}") {
                self.failed = Some(e);
            }
        }
    }

    pub fn finish(self) -> Result<(), StdoutError> {
        match self.failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// `text` as it may be shown on a terminal: control characters (C0, DEL, C1) escaped as
/// `\r`, `\n`, `\t`, `\x00`, `\u{9b}`, so that a name from a request or a certificate
/// can never move the cursor, clear the screen or hide part of a line.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A progress bar on stderr for long work (a batch, a big revocation, a CRL series),
/// shown only on a terminal, not when `quiet` (`--json`), and only once the work has
/// lasted a second; nothing otherwise.
pub struct Progress {
    bar: indicatif::ProgressBar,
    start: std::time::Instant,
    enabled: bool,
    shown: std::sync::atomic::AtomicBool,
}

impl Progress {
    /// `total` steps of `what` ("signatures", "serials", ...).
    pub fn new(total: u64, what: &str, quiet: bool) -> Self {
        use std::io::IsTerminal as _;
        let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::hidden());
        if let Ok(style) = indicatif::ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {what}, {{per_sec}}, eta {{eta}}")) {
            bar.set_style(style);
        }
        Progress {
            bar,
            start: std::time::Instant::now(),
            enabled: !quiet && std::io::stderr().is_terminal(),
            shown: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn tick(&self) {
        self.inc(1);
    }

    pub fn inc(&self, n: u64) {
        use std::sync::atomic::Ordering;
        self.bar.inc(n);
        if self.enabled && !self.shown.load(Ordering::Relaxed) && self.start.elapsed().as_secs() >= 1 && !self.shown.swap(true, Ordering::Relaxed) {
            self.bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
