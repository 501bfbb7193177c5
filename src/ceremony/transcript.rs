//! The ceremony transcript: each step recorded with its UTC time as it happens, then
//! written to transcript.txt and signed by the new root key. The same lines are handed
//! to the command's printer as they are recorded.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// UTC now, RFC 3339 to the second.
pub fn utc_now() -> String {
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 ns is valid");
    now.format(&Rfc3339).expect("RFC 3339 formats any UTC time")
}

/// UTC now as a compact file-name stamp: 20261122T165501Z.
pub fn utc_stamp() -> String {
    utc_now().replace(['-', ':'], "")
}

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
