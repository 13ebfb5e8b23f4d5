//! Drives the adapter end to end until the `arrowquant` CLI exists: quantize a model
//! to Parquet and print the report as one JSON line; optionally validate and export.
//!
//! ```text
//! cargo run --release -p arrowquant-std --example quantize -- MODEL OUT.parquet \
//!     [--profile edge|local|cloud] [--bits N] [--group N] [--max-memory 256M] [--threads N] \
//!     [--min-accuracy X] [--fail-fast] [--config FILE.yaml] [--validate] [--export OUT.safetensors] \
//!     [--tensors] [--progress]
//! ```
//! Environment variables `ARROW_QUANT_*` apply as documented in `config.rs`.

use std::path::PathBuf;
use std::process::ExitCode;

use arrowquant_std::{
    Config, ConfigLayer, Model, OutDtype, ProgressEvent, QuantizedFile, parse_bytes, quantize_model, validate,
};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            let mut src = std::error::Error::source(e.as_ref());
            while let Some(s) = src {
                eprintln!("  caused by: {s}");
                src = s.source();
            }
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut pos = Vec::new();
    let mut layer = ConfigLayer::default();
    let (mut config_file, mut do_validate, mut export, mut tensors, mut progress) =
        (None, false, None, false, false);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--profile" => layer.deployment_profile = Some(arrowquant_std::Profile::parse(&val()?)?),
            "--bits" => layer.bit_width = Some(val()?.parse()?),
            "--group" => layer.group_size = Some(val()?.parse()?),
            "--max-memory" => layer.max_memory = Some(parse_bytes(&val()?)?),
            "--threads" => layer.num_threads = Some(val()?.parse()?),
            "--min-accuracy" => layer.min_accuracy = Some(val()?.parse()?),
            "--preset" => layer.preset = Some(val()?),
            "--fail-fast" => layer.fail_fast = Some(true),
            "--config" => config_file = Some(PathBuf::from(val()?)),
            "--validate" => do_validate = true,
            "--export" => export = Some(PathBuf::from(val()?)),
            "--tensors" => tensors = true,
            "--progress" => progress = true,
            _ if a.starts_with("--") => return Err(format!("unknown option {a}").into()),
            _ => pos.push(PathBuf::from(a)),
        }
    }
    let [model_path, out] =
        <[PathBuf; 2]>::try_from(pos).map_err(|_| "usage: quantize MODEL OUT.parquet [options]")?;
    let config: Config = Config::resolve(config_file.as_deref(), &layer)?;
    let model = Model::open(&model_path)?;
    let mut report = quantize_model(&model, &config, &out, &mut |p| {
        if progress && matches!(p.event, ProgressEvent::TensorFinished) {
            eprintln!(
                "[{}/{}] {} ({:.1}%)",
                p.tensor_index + 1,
                p.tensors_total,
                p.tensor,
                100.0 * p.bytes_done as f64 / p.bytes_total.max(1) as f64
            );
        }
        if let ProgressEvent::Fallback { from_bits, to_bits, cosine } = p.event {
            eprintln!("fallback: {} {from_bits} -> {to_bits} bits (cosine {cosine:.4})", p.tensor);
        }
    })?;
    if !tensors {
        report.tensors.clear();
    }
    println!("{}", serde_json::to_string(&report)?);
    let mut code = ExitCode::SUCCESS;
    if do_validate {
        let q = QuantizedFile::open(&out)?;
        let mut v = validate(&model, &q, config.min_accuracy)?;
        if !v.passed {
            code = ExitCode::from(1);
        }
        if !tensors {
            v.tensors.clear();
        }
        println!("{}", serde_json::to_string(&v)?);
    }
    if let Some(e) = export {
        let q = QuantizedFile::open(&out)?;
        let r = q.export_safetensors(&e, OutDtype::F32)?;
        println!("{}", serde_json::to_string(&r)?);
    }
    Ok(code)
}
