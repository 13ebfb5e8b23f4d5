//! Outcomes and exit codes: 0 success, 1 quality check failed, 2 usage or input error.
//!
//! Errors are printed once, here, as `error: ` and their cause chain on one line. A
//! closed stdout (`arrowquant inspect big.parquet | head`) is not an error: the
//! program ends quietly with 0, like other Unix filters.

use std::io::Write;

/// Exit code of a failed quality check.
pub const EXIT_QUALITY: i32 = 1;
/// Exit code of a usage or input error (also clap's code for usage errors).
pub const EXIT_ERROR: i32 = 2;

/// How a command that did not hit an error ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Everything passed.
    Success,
    /// The work was done but a quality check failed; the message says which.
    QualityFailed(String),
}

/// A quality check that stops a command early (`--fail-fast`): exits with 1, not 2.
#[derive(Debug)]
pub struct QualityError(pub String);

impl std::fmt::Display for QualityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QualityError {}

/// Prints what needs printing and returns the process exit code.
pub fn report(outcome: anyhow::Result<Outcome>) -> i32 {
    match outcome {
        Ok(Outcome::Success) => 0,
        Ok(Outcome::QualityFailed(msg)) => {
            eprint_line(&format!("quality check failed: {msg}"));
            EXIT_QUALITY
        }
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            let quality = e.chain().any(|c| c.is::<QualityError>());
            eprint_line(&format!("error: {}", one_line(&e)));
            if quality { EXIT_QUALITY } else { EXIT_ERROR }
        }
    }
}

/// The cause chain `a: b: c`, without repeating a cause that its parent already
/// quotes (library errors often embed their source in their own message).
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if parts.last().is_some_and(|p| p.contains(&s)) {
            continue;
        }
        parts.push(s);
    }
    parts.join(": ").replace('\n', " ")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn eprint_line(s: &str) {
    // Nothing sensible remains to be done if stderr itself is gone.
    let _ = writeln!(std::io::stderr().lock(), "{}", crate::out::escape_controls(s, false));
}

/// Ends the program on a command-line error: `--help` and `--version` print as clap
/// renders them (exit 0), as does the help shown for a missing subcommand (exit 2);
/// a usage error is one line, `error: ...; usage: ...`, exit 2 (clap's own rendering
/// spreads it over five lines with a tip and a blank line between each).
pub fn usage_error(e: &clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("error: invalid command line");
    let mut line = if first.starts_with("error:") { first.to_string() } else { format!("error: {first}") };
    // The allowed values and clap's suggestion are worth keeping; the blank lines not.
    for l in lines {
        if let Some(values) = l.strip_prefix("[possible values: ").and_then(|v| v.strip_suffix(']')) {
            line.push_str(&format!(" (allowed: {values})"));
        } else if let Some(tip) = l.strip_prefix("tip: ") {
            line.push_str(&format!("; {tip}"));
        } else if l.starts_with("--") || l.starts_with('<') {
            // The arguments a "required arguments were not provided:" line lists.
            let sep = if line.ends_with(':') { " " } else { ", " };
            line.push_str(&format!("{sep}{l}"));
        } else if let Some(usage) = l.strip_prefix("Usage: ") {
            line.push_str(&format!("; usage: {usage}"));
        }
    }
    line.push_str(" (more with --help)");
    eprint_line(&line);
    std::process::exit(EXIT_ERROR)
}

/// Makes the file size limit (`ulimit -f`, RLIMIT_FSIZE) an ordinary write error.
///
/// By default the kernel kills a process that writes past the limit with SIGXFSZ, so
/// the atomic writer never gets to remove its temporary file and the user sees only
/// "File size limit exceeded" from the shell. Ignored, the write fails with EFBIG
/// ("File too large"), which reaches [`report`] as an error naming the output file,
/// and the temporary file is removed on the way out.
pub fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any thread exists; SIG_IGN installs
    // no handler code, so nothing runs in signal context.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// The last line of defence: a panic prints one line and exits with 2 instead of a
/// backtrace (every known failure is an `Err`, so this means a bug).
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        // Caught by the reader and returned as an error naming the file.
        if arrowquant_std::decode_guard::in_guarded_decode() {
            return;
        }
        let msg = arrowquant_std::decode_guard::panic_message(info.payload());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprint_line(&format!("error: internal error (a bug, please report it): {msg}{at}"));
        std::process::exit(EXIT_ERROR);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_drops_causes_already_quoted() {
        let io = std::io::Error::other("disk full");
        let e = anyhow::Error::new(io).context("writing out.parquet: disk full").context("quantize");
        assert_eq!(one_line(&e), "quantize: writing out.parquet: disk full");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(report(Ok(Outcome::Success)), 0);
        assert_eq!(report(Ok(Outcome::QualityFailed("x".into()))), 1);
        assert_eq!(report(Err(anyhow::anyhow!("bad"))), 2);
        assert_eq!(report(Err(anyhow::Error::new(QualityError("low".into())))), 1);
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(report(Err(anyhow::Error::new(pipe).context("stdout"))), 0);
    }
}
