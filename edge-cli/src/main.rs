//! `arrowquant`: quantize model weights to INT2/INT4/INT8 Parquet files, validate,
//! inspect, dequantize and export them.
//!
//! Exit codes: 0 success, 1 a quality check failed, 2 a usage or input error. Errors
//! print their cause chain on one line (`error: ...`); a closed stdout (`| head`) ends
//! the program quietly with 0. SIGINT, SIGTERM and SIGHUP remove the temporary files
//! and exit with 130, 143 and 129 (`signals.rs`).

mod args;
mod cmd;
mod exit;
mod out;
mod output;
mod progress;
mod report;
mod signals;
mod synth;
mod usage;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::exit::Outcome;

fn main() {
    usage::mark_start();
    exit::install_panic_hook();
    exit::ignore_file_size_signal();
    signals::install();
    // clap's usage errors become one line and exit 2; --help/--version print and exit 0.
    let cli = Cli::try_parse().unwrap_or_else(|e| exit::usage_error(&e));
    let outcome = run(&cli);
    std::process::exit(exit::report(outcome));
}

fn run(cli: &Cli) -> anyhow::Result<Outcome> {
    if cli.global.verbose {
        out::note(&cli.global, &format!("SIMD backend: {}", arrowquant_core::Backend::detect().name()));
    }
    match &cli.command {
        Command::Quantize(a) => cmd::quantize::run(a, &cli.global),
        Command::Validate(a) => cmd::validate::run(a, &cli.global),
        Command::Inspect(a) => cmd::inspect::run(a, &cli.global),
        Command::Dequantize(a) => cmd::dequantize::run(a, &cli.global),
        Command::Export(a) => cmd::export::run(a, &cli.global),
        Command::Demo(a) => cmd::demo::run(a, &cli.global),
        Command::Presets => cmd::presets::run(&cli.global),
        Command::Completions(a) => cmd::manual::completions(a.shell),
        Command::Man => cmd::manual::man(),
    }
}
