//! Command-line arguments (clap derive). Flag values that clap can check (bit widths,
//! group sizes, profiles, the accuracy range, byte counts) are checked here, so a bad
//! flag is a usage error (exit 2) before any file is opened.

use std::path::PathBuf;

use arrowquant_std::Pooling;
use arrowquant_std::core::ggml::Effort;
use arrowquant_std::{Modality, OutDtype, Profile, SchemeName};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Quantize model weights to INT2/INT4/INT8 on the device that runs the model.
#[derive(Debug, Parser)]
#[command(name = "arrowquant", version, about, long_about = None, propagate_version = true)]
#[command(after_help = "Exit codes: 0 success, 1 quality check failed, 2 usage or input error.\n\
First run: `arrowquant demo` writes, quantizes and validates a small generated model.")]
pub struct Cli {
    /// Options every subcommand accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every subcommand.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Print one JSON object on stdout instead of the human report.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress or log lines on stderr (errors are still printed).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail on stderr (the SIMD backend, the resolved configuration).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Quantize one or more models (.safetensors file, sharded or model directory) to Parquet.
    Quantize(QuantizeArgs),
    /// Compare a quantized file with its original model, tensor by tensor (exit 1 below min accuracy).
    Validate(ValidateArgs),
    /// List the tensors of a .safetensors, ArrowQuant .parquet or device (.bin) file.
    Inspect(InspectArgs),
    /// Write the dequantized weights of a quantized file as .safetensors.
    Dequantize(DequantizeArgs),
    /// Convert a quantized file to another format (postcard device file, safetensors).
    Export(ExportArgs),
    /// Generate a small deterministic model, quantize it (edge profile by default), validate it and print the report.
    Demo(DemoArgs),
    /// List every preset with its bits per weight, speed and quality on all-MiniLM-L6-v2.
    Presets,
    /// Print a shell completion script (e.g. `arrowquant completions bash > /etc/bash_completion.d/arrowquant`).
    Completions(CompletionsArgs),
    /// Print the man page (roff) of arrowquant and every subcommand (`arrowquant man | man -l -`).
    Man,
}

/// `arrowquant completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Output formats of `quantize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum QuantFormat {
    /// ArrowQuant Parquet (docs/FORMAT.md).
    #[default]
    Parquet,
    /// The compact device format (postcard header + packed blocks per tensor).
    Postcard,
    /// GGUF v3 in ggml's block types, for llama.cpp and candle (docs/GGUF.md).
    Gguf,
}

/// Output formats of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// The compact device format (postcard header + packed blocks per tensor).
    Postcard,
    /// Dequantized safetensors (as `dequantize`).
    Safetensors,
    /// GGUF with the stored blocks repacked into ggml's types, no re-quantization
    /// (int4 -> Q4_K, int2 -> Q2_K, INT4/INT8 groups of 32 -> Q4_0/Q4_1/Q8_0).
    Gguf,
}

/// Settings that choose how a model is quantized (shared by `quantize` and `demo`).
#[derive(Debug, Args, Clone, Default)]
pub struct QuantSettings {
    /// Deployment profile: the defaults for bit width, codec preset and min accuracy.
    #[arg(long, value_enum, help_heading = "Quantization")]
    pub profile: Option<Profile>,
    /// A named codec preset (help: `arrowquant presets`).
    #[arg(
        long,
        help_heading = "Quantization",
        help = preset_short_help(),
        long_help = crate::cmd::presets::preset_long_help()
    )]
    pub preset: Option<String>,
    /// Code width in bits.
    #[arg(long, value_parser = parse_bits, help_heading = "Quantization")]
    pub bits: Option<u32>,
    /// Weights per group (one scale and offset each).
    #[arg(long, value_parser = parse_group_size, help_heading = "Quantization")]
    pub group_size: Option<usize>,
    /// How a group's range maps to codes.
    #[arg(long, value_enum, help_heading = "Quantization")]
    pub scheme: Option<SchemeName>,
    /// Minimum cosine similarity per tensor (0.0-1.0); below it the tensor falls back 2 -> 4 -> 8 bits.
    #[arg(long, value_parser = parse_accuracy, help_heading = "Quantization")]
    pub min_accuracy: Option<f64>,
    /// Stop with exit code 1 at the first tensor below --min-accuracy instead of falling back.
    #[arg(long, help_heading = "Quantization")]
    pub fail_fast: bool,
    /// Mixed precision: choose a codec per tensor so the quantized payload averages at most
    /// this many bits per weight (e.g. 3.0); overrides --bits/--preset for quantized tensors.
    /// With --format gguf it chooses among ggml's types (Q2_K ... Q8_0).
    #[arg(long, value_parser = parse_target_bpw, value_name = "BPW", help_heading = "Quantization")]
    pub target_bpw: Option<f64>,
    /// Calibration statistics file (docs/CALIBRATION.md): store time-aware activation
    /// parameters per layer and time group in the output.
    #[arg(long, value_name = "FILE.json", help_heading = "Diffusion")]
    pub calibration: Option<PathBuf>,
    /// Model modality (default: detected from config.json, model_index.json and tensor names).
    #[arg(long, value_enum, help_heading = "Quantization")]
    pub modality: Option<Modality>,
    /// Quantize only tensors whose name matches this glob (`*`, `?`); repeatable.
    #[arg(long, value_name = "PATTERN", help_heading = "Tensors")]
    pub include: Vec<String>,
    /// Store tensors whose name matches this glob unquantized; repeatable.
    #[arg(long, value_name = "PATTERN", help_heading = "Tensors")]
    pub exclude: Vec<String>,
    /// Also quantize 1-D tensors (biases, norms), which are stored unquantized by default.
    #[arg(long, help_heading = "Tensors")]
    pub quantize_1d: bool,
    /// YAML configuration file (profile < file < ARROW_QUANT_* environment < flags).
    #[arg(long, value_name = "FILE.yaml", help_heading = "Resources")]
    pub config: Option<PathBuf>,
    /// Encoder threads (0 = all cores).
    #[arg(long, help_heading = "Resources")]
    pub threads: Option<usize>,
    /// Memory budget for the whole run, e.g. 512M or 2G (at least 32M).
    #[arg(long, value_parser = parse_memory, value_name = "BYTES", help_heading = "Resources")]
    pub max_memory: Option<u64>,
}

/// `arrowquant quantize`.
#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// Models: .safetensors files, sharded directories (model.safetensors.index.json) or model directories.
    #[arg(required = true, value_name = "MODEL")]
    pub models: Vec<PathBuf>,
    /// Output file, or a directory (one file per model, named after the model) when
    /// several models are given or the path ends with `/`.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = QuantFormat::Parquet)]
    pub format: QuantFormat,
    /// With `--format gguf`: the ggml type (Q4_K, Q8_0, ..., any case); default from the
    /// preset or bit width (int2 -> Q2_K, int4 -> Q4_K, int8 -> Q8_0).
    #[arg(long, value_name = "TYPE")]
    pub gguf_type: Option<String>,
    /// With `--format gguf`: how hard the block encoders search. `fast` (Q2_K and Q4_K
    /// several times faster, at least ggml's quality over each tensor) or `best` (no
    /// block worse than ggml's own quantizer; slower). Default: fast.
    #[arg(long, value_name = "EFFORT", value_parser = parse_effort)]
    pub gguf_effort: Option<Effort>,
    /// With `--format gguf` and an embedder folder (bert, qwen2): llama.cpp's pooling
    /// (`none`, `mean`, `cls`, `last`). Default: the sentence-transformers Pooling
    /// config when the folder has one (modules.json), else none written.
    #[arg(long, value_name = "POOLING", value_parser = parse_pooling)]
    pub pooling: Option<Pooling>,
    /// How to quantize.
    #[command(flatten)]
    pub settings: QuantSettings,
}

/// `arrowquant validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The original model.
    pub original: PathBuf,
    /// The quantized .parquet file.
    pub quantized: PathBuf,
    /// Threshold (default: the one the file was quantized with).
    #[arg(long, value_parser = parse_accuracy)]
    pub min_accuracy: Option<f64>,
}

/// `arrowquant inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A .safetensors file, a model directory, an ArrowQuant .parquet file or a device file.
    pub file: PathBuf,
}

/// `arrowquant dequantize`.
#[derive(Debug, Args)]
pub struct DequantizeArgs {
    /// The quantized .parquet file.
    pub input: PathBuf,
    /// The .safetensors file to write.
    #[arg(short, long, value_name = "OUT.safetensors")]
    pub output: PathBuf,
    /// Element type of dequantized tensors (unquantized tensors keep theirs).
    #[arg(long, value_enum, default_value_t = OutDtype::F32)]
    pub dtype: OutDtype,
}

/// `arrowquant export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The quantized .parquet file.
    pub input: PathBuf,
    /// The file to write.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Element type for --format safetensors.
    #[arg(long, value_enum, default_value_t = OutDtype::F32)]
    pub dtype: OutDtype,
}

/// `arrowquant demo` (uses the edge profile unless --profile, --config or
/// ARROW_QUANT_DEPLOYMENT_PROFILE says otherwise).
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the generated model and outputs in this directory (default: a temporary
    /// directory, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// How to quantize.
    #[command(flatten)]
    pub settings: QuantSettings,
}

/// The `--preset` flag's short help: every name.
fn preset_short_help() -> String {
    format!(
        "A named codec preset: {} (default: the profile's), or a ggml type name such as Q4_K_M; \
         `arrowquant presets` lists their size, speed and quality",
        arrowquant_core::Preset::ALL.map(arrowquant_core::Preset::name).join(", ")
    )
}

fn parse_bits(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(b @ (2 | 4 | 8)) => Ok(b),
        _ => Err(format!("bit width {s} is not supported (allowed: 2, 4, 8)")),
    }
}

fn parse_group_size(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(g @ (32 | 64 | 128 | 256)) => Ok(g),
        _ => Err(format!("group size {s} is not supported (allowed: 32, 64, 128, 256)")),
    }
}

fn parse_accuracy(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(a) if (0.0..=1.0).contains(&a) => Ok(a),
        _ => Err(format!("min accuracy {s} is out of range (allowed: a number from 0.0 to 1.0)")),
    }
}

fn parse_target_bpw(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(b) if b.is_finite() && (1.0..=32.0).contains(&b) => Ok(b),
        _ => Err(format!("target bits per weight {s} is out of range (allowed: a number from 1.0 to 32.0)")),
    }
}

fn parse_memory(s: &str) -> Result<u64, String> {
    let b = arrowquant_std::parse_bytes(s).map_err(|e| e.to_string())?;
    if b < arrowquant_std::MIN_MAX_MEMORY {
        return Err(format!("memory budget {s} is too small (at least 32M)"));
    }
    Ok(b)
}

/// `fast` or `best`, core's [`Effort`] names.
fn parse_pooling(s: &str) -> Result<Pooling, String> {
    Pooling::from_name(s).ok_or_else(|| format!("{s:?} is not a pooling (none, mean, cls, last)"))
}

fn parse_effort(s: &str) -> Result<Effort, String> {
    [Effort::Fast, Effort::Best]
        .into_iter()
        .find(|e| e.name() == s)
        .ok_or_else(|| format!("{s:?} is not an effort (fast, best)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flag_parsers_reject_what_the_guide_rejects() {
        assert!(parse_bits("3").is_err() && parse_bits("4").is_ok());
        assert!(parse_group_size("100").is_err() && parse_group_size("64").is_ok());
        assert!(
            parse_accuracy("1.5").is_err() && parse_accuracy("NaN").is_err() && parse_accuracy("0.9").is_ok()
        );
        assert_eq!(parse_memory("512M"), Ok(512 << 20));
        assert_eq!(parse_target_bpw("3.0"), Ok(3.0));
        assert!(parse_target_bpw("0.5").is_err() && parse_target_bpw("inf").is_err());
        assert!(parse_memory("1M").is_err() && parse_memory("lots").is_err());
    }
}
