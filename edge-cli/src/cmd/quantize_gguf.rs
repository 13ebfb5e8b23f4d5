//! `arrowquant quantize MODEL --format gguf -o OUT.gguf [--gguf-type Q4_K]`: a
//! safetensors model or a GGUF of F32/F16/BF16 tensors to a GGUF file in ggml's block
//! types (docs/GGUF.md), with the same report as the Parquet path. A Hugging Face
//! folder (`config.json` with `architectures`, `tokenizer.json`) becomes a GGUF
//! llama.cpp runs (`bert`, `llama`, `qwen2`); a bare safetensors file, tensors only.
//!
//! Inputs are recognised by their first bytes (`GGUF`), not their names. Every input
//! header is checked before anything is written; the output is written atomically.

use std::path::Path;

use anyhow::{Context, bail};
use arrowquant_std::core::ggml::{Effort, GgmlType};
use arrowquant_std::{ConfigLayer, Model, OutputInfo};
use arrowquant_std::{GgufModel, is_gguf};
use arrowquant_std::{GgufSource, gguf_target_type as target_type, write_gguf};

use crate::args::{GlobalArgs, QuantizeArgs};
use crate::exit::Outcome;
use crate::report::QuantizeSummary;

/// Runs `quantize --format gguf`.
///
/// # Errors
/// Usage and input errors (exit 2); nothing is left at the output on error.
pub fn run(args: &QuantizeArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let [input] = args.models.as_slice() else {
        bail!("--format gguf takes one model per run ({} given)", args.models.len());
    };
    let forced = args.gguf_type.as_deref().map(parse_type).transpose()?;
    crate::output::stream_if_stdout(&args.output);
    let (source, mut files) = if is_gguf(input) {
        let m = GgufModel::open(input).with_context(|| format!("opening GGUF model {}", input.display()))?;
        (GgufSource::from_gguf(&m), vec![input.clone()])
    } else {
        let m = Model::open(input).with_context(|| format!("opening model {}", input.display()))?;
        let source = GgufSource::from_hf(&m, args.pooling)
            .with_context(|| format!("converting {} for llama.cpp", input.display()))?;
        if source.notes.is_empty() {
            crate::out::note(
                global,
                "note: no config.json with `architectures` beside the model: tensors only, \
                 a GGUF llama.cpp cannot run (docs/GGUF.md)",
            );
        }
        (source, m.files_read())
    };
    if is_gguf(input) && args.pooling.is_some() {
        bail!("--pooling applies to a Hugging Face folder; a GGUF input keeps its own metadata");
    }
    for n in &source.notes {
        crate::out::note(global, &format!("note: {n}"));
    }
    files.extend(arrowquant_std::model_metadata_files(input));
    files.extend(args.settings.config.iter().cloned());
    let output = if crate::output::is_stdout(&args.output) {
        args.output.clone()
    } else if args.output.is_dir() || args.output.as_os_str().to_string_lossy().ends_with('/') {
        args.output.join(format!("{}.gguf", stem(input)))
    } else {
        args.output.clone()
    };
    crate::output::check(&output, &files)?;

    let detection = arrowquant_std::detect_modality(input, source.tensors.iter().map(|t| t.name.as_str()));
    let file_layer = args
        .settings
        .config
        .as_deref()
        .map(ConfigLayer::from_yaml_file)
        .transpose()
        .context("reading the configuration")?;
    let env_layer = ConfigLayer::from_env().context("reading the environment")?;
    let config =
        crate::cmd::quantize::resolve_config(&args.settings, file_layer.as_ref(), &env_layer, &detection)?;
    files.extend(config.calibration.iter().cloned());
    crate::output::check(&output, &files)?;
    let names: Vec<&str> = source.tensors.iter().map(|t| t.name.as_str()).collect();
    crate::cmd::quantize::check_patterns_and_threads(&config, &names, input, global)?;
    let target = forced.unwrap_or_else(|| target_type(&config));
    if let Some(dir) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating output directory {}", dir.display()))?;
    }
    let report = write_gguf(&source, &config, target, args.gguf_effort.unwrap_or(Effort::Fast), &output)
        .with_context(|| format!("quantizing {} to GGUF", input.display()))?;
    let out = OutputInfo {
        format: "gguf",
        output: output.display().to_string(),
        output_bytes: report.output_bytes,
        skipped: source.skipped.iter().map(|(n, why)| format!("{n} ({why})")).collect(),
    };
    let summary = QuantizeSummary { report, detection, out };
    crate::cmd::quantize::print_summaries(std::slice::from_ref(&summary), global)?;
    Ok(Outcome::Success)
}

/// A ggml type name, any case.
fn parse_type(name: &str) -> anyhow::Result<GgmlType> {
    GgmlType::from_name(name).with_context(|| {
        let all: Vec<&str> = GgmlType::ALL.iter().map(|t| t.name()).collect();
        format!("--gguf-type {name:?}: not a ggml type (one of {})", all.join(", "))
    })
}

fn stem(input: &Path) -> String {
    let name = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    name.split('.').next().filter(|s| !s.is_empty()).unwrap_or("model").to_string()
}

/// `dequantize IN.gguf -o OUT.safetensors`: every tensor decoded to F32.
///
/// # Errors
/// Input and write errors (exit 2); nothing is left at the output on error.
pub fn dequantize(input: &Path, output: &Path, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    crate::output::stream_if_stdout(output);
    crate::output::check(output, &[input.to_path_buf()])?;
    let r = arrowquant_std::export_gguf_safetensors(input, output)
        .with_context(|| format!("dequantizing {}", input.display()))?;
    if global.json {
        crate::out::print_json(&serde_json::json!({
            "command": "dequantize", "input": input.display().to_string(),
            "output": output.display().to_string(), "format": "safetensors",
            "tensors": r.tensors, "bytes": r.bytes, "dtype": "f32",
        }))?;
    } else {
        crate::out::print(&format!(
            "wrote {} ({} tensors, {:.2} MB, dequantized to f32)\n",
            output.display(),
            r.tensors,
            crate::report::mb(r.bytes)
        ))?;
    }
    Ok(Outcome::Success)
}
