//! `arrowquant quantize MODEL... -o OUT`: one or more models to Parquet (or the
//! device format), with quality fallback and a report.
//!
//! Everything that can be checked before writing is checked first, for every model:
//! the flags, the config file and environment, each model's headers, the output
//! names. Only then is anything written, so a bad input leaves nothing behind; the
//! library writes each output atomically, so a failure while writing does not either.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use arrowquant_std::{
    AdapterError, Config, ConfigLayer, Detection, Model, OutputInfo, detect_modality, quantize_model,
    resolve_config_for_model,
};

use crate::args::{GlobalArgs, QuantFormat, QuantSettings, QuantizeArgs};
use crate::exit::{Outcome, QualityError};
use crate::progress::Reporter;
use crate::report::{QuantizeSummary, quantize_json, quantize_text};

/// One model ready to be quantized.
#[derive(Debug)]
pub struct Job {
    /// The model as given on the command line.
    pub input: PathBuf,
    /// The opened (header-validated) model.
    pub model: Model,
    /// The output file.
    pub output: PathBuf,
    /// The resolved configuration.
    pub config: Config,
    /// How the modality was found.
    pub detection: Detection,
}

/// Runs `arrowquant quantize`.
///
/// # Errors
/// Usage and input errors (exit 2), or a [`QualityError`] with `--fail-fast` (exit 1).
pub fn run(args: &QuantizeArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    if args.format == QuantFormat::Gguf {
        return crate::cmd::quantize_gguf::run(args, global);
    }
    // GGUF-only flags must not be silently ignored.
    for (given, flag) in [
        (args.gguf_type.is_some(), "--gguf-type"),
        (args.gguf_effort.is_some(), "--gguf-effort"),
        (args.pooling.is_some(), "--pooling"),
    ] {
        if given {
            let name = clap::ValueEnum::to_possible_value(&args.format).map(|v| v.get_name().to_string());
            anyhow::bail!(
                "{flag} applies to --format gguf only (this run writes {})",
                name.unwrap_or_default()
            );
        }
    }
    let jobs = plan(&args.models, &args.output, args.format, &args.settings, global)?;
    let mut summaries = Vec::with_capacity(jobs.len());
    for job in &jobs {
        summaries.push(execute(job, args.format, global)?);
    }
    print_summaries(&summaries, global)?;
    Ok(outcome_of(&summaries))
}

/// Every include/exclude pattern must match one of the model's tensors; a thread
/// count above the machine's cores is capped with a warning.
///
/// # Errors
/// A pattern that matches nothing, naming the model.
pub fn check_patterns_and_threads(
    config: &Config,
    tensor_names: &[&str],
    input: &Path,
    global: &GlobalArgs,
) -> anyhow::Result<()> {
    config.check_patterns(tensor_names).with_context(|| format!("model {}", input.display()))?;
    if config.effective_threads() < config.num_threads {
        let msg = format!(
            "warning: {} threads asked for; using {}, the cores this machine has",
            config.num_threads,
            config.effective_threads()
        );
        crate::out::note(global, &msg);
    }
    Ok(())
}

/// Exit 1 if a tensor is below min accuracy even at 8 bits.
pub fn outcome_of(summaries: &[QuantizeSummary]) -> Outcome {
    let below: Vec<String> = summaries
        .iter()
        .flat_map(|s| s.report.below_min_accuracy.iter().map(move |t| format!("{}: {t}", s.report.model)))
        .collect();
    if below.is_empty() {
        Outcome::Success
    } else {
        Outcome::QualityFailed(format!("below min accuracy even at 8 bits: {}", below.join(", ")))
    }
}

/// Prints one report per model, or the one JSON document of docs/JSON.md (the same
/// shape for any number of models).
///
/// # Errors
/// A write error on stdout.
pub fn print_summaries(summaries: &[QuantizeSummary], global: &GlobalArgs) -> anyhow::Result<()> {
    if global.json {
        crate::out::print_json(&serde_json::json!({
            "command": "quantize",
            "schema_version": crate::report::JSON_SCHEMA_VERSION,
            "models": summaries.iter().map(quantize_json).collect::<Vec<_>>(),
            "timings": {
                "total_s": crate::usage::elapsed_s(),
                "quantize_s": summaries.iter().map(|s| s.report.time_s).collect::<Vec<_>>(),
            },
            "peak_rss_bytes": crate::usage::peak_rss_bytes(),
        }))
    } else {
        let text: Vec<String> = summaries.iter().map(|s| quantize_text(s, global.verbose)).collect();
        crate::out::print(&text.join("\n"))
    }
}

/// Opens every model, resolves every configuration and names every output.
///
/// # Errors
/// The first problem found; nothing has been written.
pub fn plan(
    models: &[PathBuf],
    output: &Path,
    format: QuantFormat,
    settings: &QuantSettings,
    global: &GlobalArgs,
) -> anyhow::Result<Vec<Job>> {
    let file_layer = settings
        .config
        .as_deref()
        .map(ConfigLayer::from_yaml_file)
        .transpose()
        .context("reading the configuration")?;
    let env_layer = ConfigLayer::from_env().context("reading the environment")?;
    for w in arrowquant_std::unknown_env_warnings() {
        crate::out::note(global, &format!("warning: {w}"));
    }
    if format == QuantFormat::Postcard {
        crate::output::refuse_stdout(output, POSTCARD_NOT_STREAMED)?;
    }
    if crate::output::is_stdout(output) && models.len() > 1 {
        bail!("-o - takes one model ({} given): standard output holds one file", models.len());
    }
    crate::output::stream_if_stdout(output);
    let to_dir = !crate::output::is_stdout(output)
        && (models.len() > 1 || output.is_dir() || output.as_os_str().to_string_lossy().ends_with('/'));
    let ext = match format {
        QuantFormat::Parquet => "parquet",
        QuantFormat::Postcard => "bin",
        QuantFormat::Gguf => "gguf",
    };
    let mut jobs: Vec<Job> = Vec::with_capacity(models.len());
    let mut names = HashSet::new();
    for input in models {
        let model = Model::open(input).with_context(|| format!("opening model {}", input.display()))?;
        let detection = detect_modality(input, model.tensors.iter().map(|t| t.name.as_str()));
        for w in &detection.warnings {
            crate::out::note(global, &format!("warning: {w}"));
        }
        let config = resolve_config(settings, file_layer.as_ref(), &env_layer, &detection)?;
        let tensor_names: Vec<&str> = model.tensors.iter().map(|t| t.name.as_str()).collect();
        check_patterns_and_threads(&config, &tensor_names, input, global)?;
        if format == QuantFormat::Postcard {
            crate::cmd::postcard_fit::check(&config)?;
        }
        // Report what was used: an explicit modality overrides the detected one.
        let detection = if config.modality == detection.modality {
            detection
        } else {
            let by = if settings.modality.is_some() { "--modality" } else { "the configuration" };
            let detected = detection.modality.map_or("nothing", |m| m.name());
            Detection {
                modality: config.modality,
                source: format!("set by {by}; detected: {detected}"),
                ..detection
            }
        };
        let out =
            if to_dir { output.join(format!("{}.{ext}", output_stem(input))) } else { output.to_path_buf() };
        if !names.insert(out.clone()) {
            bail!("two models would both be written to {}: quantize them in separate runs", out.display());
        }
        let mut reads = arrowquant_std::files_read(&model, &config);
        reads.extend(settings.config.iter().cloned());
        crate::output::check(&out, &reads)?;
        if global.verbose {
            crate::out::note(global, &format!("{}: configuration {}", input.display(), config.to_json()));
        }
        if let (Some(asked), Some(used)) = (&settings.preset, &config.preset)
            && asked != used
            && format != QuantFormat::Gguf
        {
            crate::out::note(
                global,
                &format!(
                    "--preset {asked}: a ggml type name, quantizing with the `{used}` preset (arrowquant presets)"
                ),
            );
        }
        jobs.push(Job { input: input.clone(), model, output: out, config, detection });
    }
    if to_dir {
        std::fs::create_dir_all(output)
            .with_context(|| format!("creating output directory {}", output.display()))?;
    }
    Ok(jobs)
}

/// Resolves the configuration of one model (the library's rule: profile < modality
/// defaults < file < environment < flags; a named profile keeps its defaults).
///
/// # Errors
/// An invalid value (with the guide's error name).
pub fn resolve_config(
    s: &QuantSettings,
    file: Option<&ConfigLayer>,
    env: &ConfigLayer,
    detection: &Detection,
) -> anyhow::Result<Config> {
    let flags = ConfigLayer {
        deployment_profile: s.profile,
        bit_width: s.bits,
        group_size: s.group_size,
        scheme: s.scheme,
        preset: s.preset.clone(),
        min_accuracy: s.min_accuracy,
        fail_fast: s.fail_fast.then_some(true),
        num_threads: s.threads,
        max_memory: s.max_memory,
        include: (!s.include.is_empty()).then(|| s.include.clone()),
        exclude: (!s.exclude.is_empty()).then(|| s.exclude.clone()),
        quantize_1d: s.quantize_1d.then_some(true),
        modality: s.modality,
        calibration: s.calibration.clone(),
        target_bpw: s.target_bpw,
        ..Default::default()
    };
    resolve_config_for_model(file, env, &flags, detection).context("invalid configuration")
}

/// The output name of a model in directory mode: the file stem, or the directory name
/// for `model.safetensors`, shards, index files and model directories.
fn output_stem(input: &Path) -> String {
    let file_name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let dir_name = |p: &Path| {
        std::fs::canonicalize(p)
            .ok()
            .and_then(|c| file_name(&c))
            .or_else(|| file_name(p))
            .unwrap_or_else(|| "model".into())
    };
    if input.is_dir() {
        return dir_name(input);
    }
    let name = file_name(input).unwrap_or_else(|| "model".into());
    let stem =
        name.strip_suffix(".safetensors").or_else(|| name.strip_suffix(".index.json")).unwrap_or(&name);
    let stem = stem.strip_suffix(".safetensors").unwrap_or(stem);
    if stem == "model" || stem.starts_with("model-0") {
        dir_name(input.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))
    } else {
        stem.to_string()
    }
}

/// Why the device format is not streamed: Parquet, GGUF and safetensors are written
/// front to back and stream to `-o -`; the device file is made from a finished
/// Parquet file and read back before it is kept.
pub const POSTCARD_NOT_STREAMED: &str =
    "the device file is read back and checked before it is kept, which a stream cannot be";

/// Quantizes one planned model and returns its summary.
///
/// # Errors
/// Input and write errors; a [`QualityError`] with `--fail-fast`.
pub fn execute(job: &Job, format: QuantFormat, global: &GlobalArgs) -> anyhow::Result<QuantizeSummary> {
    let label = job.input.display().to_string();
    let mut reporter = Reporter::new(global, &label);
    let parquet_out = match format {
        QuantFormat::Parquet | QuantFormat::Gguf => job.output.clone(),
        QuantFormat::Postcard => temp_sibling(&job.output, "parquet"),
    };
    // Removes the intermediate Parquet file of the postcard path, whatever happens.
    let _cleanup = (format == QuantFormat::Postcard).then(|| RemoveOnDrop::new(parquet_out.clone()));
    let result = quantize_model(&job.model, &job.config, &parquet_out, &mut |p| reporter.on(p));
    reporter.finish();
    let report = result.map_err(|e| match e {
        AdapterError::BelowAccuracy { .. } => anyhow::Error::new(QualityError(format!("{label}: {e}"))),
        other => anyhow::Error::new(other).context(format!("quantizing {label}")),
    })?;
    let (output_bytes, skipped) = match format {
        QuantFormat::Parquet | QuantFormat::Gguf => (report.output_bytes, Vec::new()),
        QuantFormat::Postcard => {
            let q = arrowquant_std::QuantizedFile::open(&parquet_out)?;
            let e = crate::cmd::export::write_postcard(&q, &job.output)?;
            (e.bytes, e.skipped)
        }
    };
    let format = match format {
        QuantFormat::Parquet => "parquet",
        QuantFormat::Postcard => "postcard",
        QuantFormat::Gguf => "gguf",
    };
    let out = OutputInfo { format, output: job.output.display().to_string(), output_bytes, skipped };
    Ok(QuantizeSummary { report, detection: job.detection.clone(), out })
}

/// A hidden name next to `path` for an intermediate file, in the library's temporary
/// name scheme (`.NAME.tmp-PID-...`), so a later run removes it if this one is killed.
fn temp_sibling(path: &Path, ext: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp-{}-intermediate.{ext}", std::process::id()))
}

/// Removes an intermediate file when dropped, and on SIGINT/SIGTERM/SIGHUP (it is
/// registered with the signal handler's table while it lives).
#[derive(Debug)]
struct RemoveOnDrop {
    path: PathBuf,
    _registered: arrowquant_std::temp_files::Registered,
}

impl RemoveOnDrop {
    fn new(path: PathBuf) -> Self {
        let _registered = arrowquant_std::temp_files::register(&path);
        RemoveOnDrop { path, _registered }
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_follow_the_model() {
        assert_eq!(output_stem(Path::new("/x/tiny.safetensors")), "tiny");
        assert_eq!(output_stem(Path::new("/nonexistent/bert-base/model.safetensors")), "bert-base");
        let dir = std::env::temp_dir().join(format!("aq-stem-{}", std::process::id())).join("my-model");
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(output_stem(&dir), "my-model");
        assert_eq!(output_stem(&dir.join("model.safetensors")), "my-model");
        assert_eq!(output_stem(&dir.join("model.safetensors.index.json")), "my-model");
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
