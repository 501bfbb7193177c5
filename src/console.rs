//! Writing to stdout and stderr without ever panicking: a broken pipe or a full disk
//! becomes one error line and a non-zero exit (Rust ignores SIGPIPE, so a write to a
//! closed pipe returns EPIPE, which `println!` would turn into a panic), and a closed
//! stdout is an error, where std's stdout would silently discard what is written.

use std::fmt;
use std::io::Write as _;
use std::os::fd::{AsFd as _, IntoRawFd as _};
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Whether the process was started with stdout closed.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Run first in `main`. A standard descriptor (0, 1, 2) the process was started
/// without must not be taken by a file hsm-demo opens later (a lock, a token store
/// file) and receive what is printed: the Rust runtime already reopens closed ones as
/// /dev/null (read-write) before `main`, and this makes sure of it. A stdout that is
/// that /dev/null (read-write; a shell's `>/dev/null` is write-only) was closed: it is
/// remembered, and printing is then an error rather than a silent success.
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
        if fd == 1 {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
        }
        // open(2) returns the lowest free descriptor: this one.
        if let Ok(null) = rustix::fs::open("/dev/null", OFlags::RDWR, Mode::empty()) {
            let _ = null.into_raw_fd();
        }
    }
    if stdout_is_runtime_null() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

fn stdout_is_runtime_null() -> bool {
    let stdout = std::io::stdout();
    let fd = stdout.as_fd();
    let (Ok(st), Ok(null)) = (rustix::fs::fstat(fd), rustix::fs::stat("/dev/null")) else {
        return false;
    };
    let read_write = rustix::fs::fcntl_getfl(fd)
        .is_ok_and(|flags| flags & OFlags::RWMODE == OFlags::RDWR);
    rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::CharacterDevice
        && st.st_rdev == null.st_rdev
        && read_write
}

fn stdout_open() -> std::io::Result<()> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Err(std::io::Error::other("stdout is closed"));
    }
    Ok(())
}

/// Writes to stdout and flushes, reporting any failure.
pub fn write_out(args: fmt::Arguments) -> Result<(), StdoutError> {
    stdout_open()?;
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)?;
    out.flush()?;
    Ok(())
}

/// Writes bytes to stdout and flushes, reporting any failure.
pub fn write_bytes(bytes: &[u8]) -> Result<(), StdoutError> {
    stdout_open()?;
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
