//! The ceremony transcript: each step recorded with its UTC time as it happens, then
//! written to transcript.txt and signed by the new root key. The same lines are handed
//! to the command's printer as they are recorded.

pub use crate::clock::{utc_now, utc_stamp};

/// The transcript being recorded, and where its printed lines go.
pub struct Transcript<'p> {
    text: String,
    print: &'p mut dyn FnMut(&str),
}

impl<'p> Transcript<'p> {
    pub fn new(print: &'p mut dyn FnMut(&str)) -> Self {
        Transcript {
            text: String::new(),
            print,
        }
    }

    /// A step line: printed as given, recorded with its UTC time.
    pub fn step(&mut self, line: &str) {
        (self.print)(line);
        self.text.push_str(&format!("{} {line}\n", utc_now()));
    }

    /// A detail under a step: printed and recorded indented.
    pub fn detail(&mut self, line: &str) {
        (self.print)(&format!("         {line}"));
        self.text
            .push_str(&format!("                     {line}\n"));
    }

    /// A line printed only (banners, the output paths).
    pub fn print(&mut self, line: &str) {
        (self.print)(line);
    }

    /// A line recorded in the file only (headers, file hashes).
    pub fn record(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}
