//! Where output goes: reports and JSON on stdout, progress and notes on stderr; with
//! `-o -` the data goes to stdout and the reports to stderr ([`give_stdout_to_data`]).
//!
//! Writes to stdout return `io::Result` instead of panicking like `println!`, so a
//! closed pipe ends the program quietly (see [`crate::exit`]).

use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

use crate::args::GlobalArgs;

/// Set when stdout carries the output file (`-o -`).
static STDOUT_IS_DATA: AtomicBool = AtomicBool::new(false);

/// Sends the reports to stderr from now on: stdout carries the output file.
pub fn give_stdout_to_data() {
    STDOUT_IS_DATA.store(true, Ordering::Relaxed);
}

/// Writes `text` to stdout (to stderr after [`give_stdout_to_data`]), control
/// characters other than newlines and tabs escaped (a tensor name or path holding
/// ESC, BEL or CR must not drive the terminal).
///
/// # Errors
/// The write error (a closed pipe included).
pub fn print(text: &str) -> anyhow::Result<()> {
    let text = escape_controls(text, true);
    if STDOUT_IS_DATA.load(Ordering::Relaxed) {
        let mut o = std::io::stderr().lock();
        return o.write_all(text.as_bytes()).and_then(|()| o.flush()).context("writing to stderr");
    }
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes()).and_then(|()| o.flush()).context("writing to stdout")
}

/// A name or path from a file as shown in text: every control character escaped
/// (`\n`, `\u{1b}`), so it stays on its line and cannot drive the terminal.
pub fn esc(s: &str) -> Cow<'_, str> {
    escape_controls(s, false)
}

/// `s` with its control characters escaped; with `keep_lines`, newlines and tabs (the
/// layout of a report) are kept.
pub fn escape_controls(s: &str, keep_lines: bool) -> Cow<'_, str> {
    let escaped = |c: char| c.is_control() && !(keep_lines && matches!(c, '\n' | '\t'));
    if !s.chars().any(escaped) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars().map(|c| if escaped(c) { c.escape_default().to_string() } else { c.to_string() }).collect(),
    )
}

/// Writes `value` as pretty JSON and a newline to stdout.
///
/// # Errors
/// As [`print()`].
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut s = serde_json::to_string_pretty(value).context("serializing the JSON report")?;
    s.push('\n');
    print(&s)
}

/// A note on stderr, unless `--quiet`.
pub fn note(global: &GlobalArgs, msg: &str) {
    if !global.quiet {
        let _ = writeln!(std::io::stderr().lock(), "{}", escape_controls(msg, false));
    }
}
