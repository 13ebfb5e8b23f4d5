//! `arrowquant dequantize IN.parquet -o OUT.safetensors [--dtype f32|f16|bf16]`.

use anyhow::Context;
use arrowquant_std::QuantizedFile;
use serde_json::json;

use crate::args::{DequantizeArgs, GlobalArgs};
use crate::exit::Outcome;

/// Runs `arrowquant dequantize`.
///
/// # Errors
/// Input and write errors (exit 2); nothing is left at the output on error.
pub fn run(args: &DequantizeArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    // The safetensors header (every tensor's size) comes from the Parquet manifest,
    // then the data in order: it streams to `-o -`.
    crate::output::stream_if_stdout(&args.output);
    crate::output::check(&args.output, std::slice::from_ref(&args.input))?;
    if arrowquant_std::is_gguf(&args.input) {
        return crate::cmd::quantize_gguf::dequantize(&args.input, &args.output, global);
    }
    write_safetensors(&args.input, &args.output, args.dtype, global, "dequantize")
}

/// Shared with `export --format safetensors`.
pub(crate) fn write_safetensors(
    input: &std::path::Path,
    output: &std::path::Path,
    dtype: arrowquant_std::OutDtype,
    global: &GlobalArgs,
    command: &str,
) -> anyhow::Result<Outcome> {
    let q =
        QuantizedFile::open(input).with_context(|| format!("opening quantized file {}", input.display()))?;
    let r = q.export_safetensors(output, dtype).with_context(|| format!("writing {}", output.display()))?;
    if global.json {
        crate::out::print_json(&json!({
            "command": command,
            "input": input.display().to_string(),
            "output": r.path,
            "format": "safetensors",
            "tensors": r.tensors,
            "bytes": r.bytes,
            "dtype": r.dtype.name(),
        }))?;
    } else {
        crate::out::print(&format!(
            "wrote {} ({} tensors, {:.2} MB, dequantized to {})\n",
            r.path,
            r.tensors,
            crate::report::mb(r.bytes),
            r.dtype.name()
        ))?;
    }
    Ok(Outcome::Success)
}
