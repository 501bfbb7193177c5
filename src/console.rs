//! Writing to stdout and stderr without ever panicking: a broken pipe or a full disk
//! becomes one error line and a non-zero exit (Rust ignores SIGPIPE, so a write to a
//! closed pipe returns EPIPE, which `println!` would turn into a panic), and a closed
//! stdout is an error, where std's stdout would silently discard what is written.

use std::fmt;
use std::io::Write as _;
use std::os::fd::AsFd as _;

/// Why the output could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write to stdout: {}", crate::output::reason(.0))]
pub struct StdoutError(#[from] pub std::io::Error);

fn stdout_open() -> std::io::Result<()> {
    rustix::io::fcntl_getfd(std::io::stdout().as_fd())
        .map(|_| ())
        .map_err(|_| std::io::Error::other("stdout is closed"))
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
