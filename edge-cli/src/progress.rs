//! Progress of a quantization run on stderr: an indicatif bar (tensors, bytes,
//! throughput, ETA) when stderr is a terminal; otherwise plain log lines (a start
//! line, one line per tenth of the bytes with throughput and ETA, one per fallback,
//! and one per tensor with `--verbose`); nothing with `--quiet`.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use arrowquant_std::{Progress, ProgressEvent};
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::GlobalArgs;

/// Receives the library's progress events and shows them.
#[derive(Debug)]
pub struct Reporter {
    mode: Mode,
    label: String,
    verbose: bool,
    start: Instant,
    /// Tenths of the bytes already logged (plain mode).
    logged_tenths: u64,
}

#[derive(Debug)]
enum Mode {
    Quiet,
    Lines,
    Bar(ProgressBar),
}

impl Reporter {
    /// A reporter for one model; `label` prefixes log lines.
    pub fn new(global: &GlobalArgs, label: &str) -> Self {
        let mode = if global.quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] [{bar:25}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {wide_msg}",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            Mode::Bar(bar)
        } else {
            Mode::Lines
        };
        Reporter {
            mode,
            label: label.to_string(),
            verbose: global.verbose,
            start: Instant::now(),
            logged_tenths: 0,
        }
    }

    /// Handles one event.
    pub fn on(&mut self, p: &Progress<'_>) {
        match (&self.mode, p.event) {
            (Mode::Quiet, _) => {}
            (Mode::Bar(bar), ev) => {
                bar.set_length(p.bytes_total);
                bar.set_position(p.bytes_done);
                match ev {
                    ProgressEvent::TensorStarted => {
                        bar.set_message(format!("{}/{} {}", p.tensor_index + 1, p.tensors_total, p.tensor));
                    }
                    ProgressEvent::Fallback { from_bits, to_bits, cosine } => {
                        bar.println(fallback_line(p.tensor, from_bits, to_bits, cosine));
                    }
                    _ => {}
                }
            }
            (Mode::Lines, ProgressEvent::TensorStarted) if p.tensor_index == 0 => {
                line(&format!(
                    "{}: quantizing {} tensors, {:.2} MB",
                    self.label,
                    p.tensors_total,
                    p.bytes_total as f64 / 1e6
                ));
            }
            (Mode::Lines, ProgressEvent::TensorFinished) => {
                if self.verbose {
                    let width = p.tensors_total.to_string().len();
                    line(&format!(
                        "{}: [{:>width$}/{}] {}",
                        self.label,
                        p.tensor_index + 1,
                        p.tensors_total,
                        p.tensor
                    ));
                }
                let tenths = (p.bytes_done * 10).checked_div(p.bytes_total).unwrap_or(10);
                if tenths > self.logged_tenths {
                    self.logged_tenths = tenths;
                    let secs = self.start.elapsed().as_secs_f64();
                    let rate = p.bytes_done as f64 / secs.max(1e-9);
                    let eta = (p.bytes_total - p.bytes_done.min(p.bytes_total)) as f64 / rate.max(1e-9);
                    line(&format!(
                        "{}: {:>3}% ({}/{} tensors, {:.1} MB/s, {secs:.1} s elapsed, eta {eta:.1} s)",
                        self.label,
                        tenths * 10,
                        p.tensor_index + 1,
                        p.tensors_total,
                        rate / 1e6
                    ));
                }
            }
            (Mode::Lines, ProgressEvent::Fallback { from_bits, to_bits, cosine }) => {
                line(&format!("{}: {}", self.label, fallback_line(p.tensor, from_bits, to_bits, cosine)));
            }
            (Mode::Lines, _) => {}
        }
    }

    /// Removes the bar (the report follows on stdout).
    pub fn finish(&self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}

fn fallback_line(tensor: &str, from: u32, to: u32, cosine: f64) -> String {
    format!(
        "fallback: {tensor}: cosine {cosine:.6} at {from} bits is below min accuracy, retrying at {to} bits"
    )
}

fn line(s: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{}", crate::out::escape_controls(s, false));
}
