//! `arrowquant demo`: the first command to run on a fresh machine. It writes a small
//! generated model ([`crate::synth`]), quantizes it with the same code path as
//! `quantize`, validates the result with the same code path as `validate`, checks
//! that the two agree on every tensor's cosine, and prints the report.

use std::path::PathBuf;

use anyhow::{Context, ensure};
use arrowquant_std::{QuantizedFile, validate};
use serde_json::json;

use crate::args::{DemoArgs, GlobalArgs, QuantFormat};
use crate::cmd::quantize::{execute, outcome_of, plan};
use crate::exit::Outcome;
use crate::report::{mb, quantize_json, quantize_text, validate_json};

/// Largest difference allowed between the cosine the quantizer measured while
/// encoding and the one `validate` measures from the written file (summation order
/// differs, the values do not).
const COSINE_AGREEMENT: f64 = 1e-9;

/// Runs `arrowquant demo`.
///
/// # Errors
/// Write errors, or a disagreement between the quantizer's and the validator's figures.
pub fn run(args: &DemoArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let (dir, keep) = match &args.dir {
        Some(d) => (d.clone(), true),
        None => (std::env::temp_dir().join(format!("arrowquant-demo-{}", std::process::id())), false),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let _cleanup = (!keep).then(|| RemoveDirOnDrop(dir.clone()));
    let m = crate::synth::write_demo_model(&dir)?;
    crate::out::note(
        global,
        &format!(
            "demo: wrote {} ({} tensors, {} weights, {:.2} MB)",
            dir.join("model.safetensors").display(),
            m.tensors,
            m.elements,
            mb(m.bytes)
        ),
    );
    let out = dir.join("demo.parquet");
    let mut settings = args.settings.clone();
    // The demo shows the edge profile (the `int2` preset with quality fallback) unless
    // told otherwise.
    if settings.profile.is_none()
        && settings.config.is_none()
        && std::env::var_os("ARROW_QUANT_DEPLOYMENT_PROFILE").is_none()
    {
        settings.profile = Some(arrowquant_std::Profile::Edge);
    }
    let jobs = plan(std::slice::from_ref(&dir), &out, QuantFormat::Parquet, &settings, global)?;
    let job = &jobs[0];
    let summary = execute(job, QuantFormat::Parquet, global)?;
    let q = QuantizedFile::open(&out)?;
    let v = validate(&job.model, &q, job.config.min_accuracy).context("validating the demo output")?;
    let mut max_diff = 0f64;
    for (r, t) in summary.report.tensors.iter().zip(&v.tensors) {
        ensure!(r.name == t.name, "validate lists `{}` where quantize listed `{}`", t.name, r.name);
        if let (Some(a), Some(b)) = (r.cosine, t.cosine) {
            max_diff = max_diff.max((a - b).abs());
        }
    }
    ensure!(
        max_diff <= COSINE_AGREEMENT,
        "quantize and validate disagree: cosines differ by up to {max_diff:e}"
    );
    let mut outcome = outcome_of(std::slice::from_ref(&summary));
    if !v.passed && outcome == Outcome::Success {
        outcome = Outcome::QualityFailed(format!("validation failed: {}", v.failed.join(", ")));
    }
    if global.json {
        crate::out::print_json(&json!({
            "command": "demo",
            "schema_version": crate::report::JSON_SCHEMA_VERSION,
            "dir": if keep { Some(dir.display().to_string()) } else { None },
            "model": { "tensors": m.tensors, "elements": m.elements, "bytes": m.bytes },
            "quantize": quantize_json(&summary),
            "validate": validate_json(&v),
            "max_cosine_difference": max_diff,
            "timings": { "total_s": crate::usage::elapsed_s(), "quantize_s": [summary.report.time_s] },
            "peak_rss_bytes": crate::usage::peak_rss_bytes(),
        }))?;
    } else {
        let mut text = quantize_text(&summary, global.verbose);
        text.push_str(&format!(
            "validated {} against the original: {} tensors, cosine mean {:.6}, min {:.6}, {} (quantize and validate agree within {max_diff:.1e})\n",
            out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            v.tensors.len(),
            v.cosine_mean.unwrap_or(f64::NAN),
            v.cosine_min.unwrap_or(f64::NAN),
            if v.passed { "passed" } else { "FAILED" },
        ));
        if keep {
            text.push_str(&format!(
                "files kept in {}; try: arrowquant inspect {}\n",
                dir.display(),
                out.display()
            ));
        } else {
            text.push_str("(temporary files removed; pass --dir DIR to keep them)\n");
        }
        crate::out::print(&text)?;
    }
    Ok(outcome)
}

#[derive(Debug)]
struct RemoveDirOnDrop(PathBuf);

impl Drop for RemoveDirOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
