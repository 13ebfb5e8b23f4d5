//! Writes a synthetic diffusion calibration file (format: docs/CALIBRATION.md).
//!
//! ```text
//! cargo run --release -p arrowquant-benches --bin gen_calibration -- OUT.json \
//!     [--timesteps 1000] [--layers 8] [--channels 384] [--outliers 4] [--seed 42]
//! ```

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;

use arrowquant_std::calibration::{SyntheticSpec, synthesize, write};

fn parse() -> Result<(String, SyntheticSpec), Box<dyn Error>> {
    let mut spec = SyntheticSpec::default();
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Result<u64, Box<dyn Error>> {
            let v = args.next().ok_or_else(|| format!("{name} needs a value"))?;
            Ok(v.parse::<u64>().map_err(|e| format!("{name} {v}: {e}"))?)
        };
        match a.as_str() {
            "--timesteps" => spec.timesteps = num("--timesteps")? as usize,
            "--layers" => spec.layers = num("--layers")? as usize,
            "--channels" => spec.channels = num("--channels")? as usize,
            "--outliers" => spec.outlier_channels = num("--outliers")? as usize,
            "--seed" => spec.seed = num("--seed")?,
            s if s.starts_with("--") => return Err(format!("unknown option {s}").into()),
            s => out = Some(s.to_string()),
        }
    }
    if spec.timesteps == 0 || spec.layers == 0 {
        return Err("--timesteps and --layers must be at least 1".into());
    }
    let out = out.ok_or(
        "usage: gen_calibration OUT.json [--timesteps N] [--layers N] [--channels N] [--outliers N] [--seed N]",
    )?;
    Ok((out, spec))
}

fn main() -> ExitCode {
    match parse().and_then(|(out, spec)| {
        let file = synthesize(&spec);
        write(Path::new(&out), &file)?;
        println!(
            "wrote {out}: {} layers x {} timesteps, {} channels ({} outliers), seed {}",
            spec.layers, spec.timesteps, spec.channels, spec.outlier_channels, spec.seed
        );
        Ok(())
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
