//! `arrowquant validate ORIGINAL QUANTIZED.parquet`: a per-layer table of cosine,
//! relative RMSE, SQNR and largest error; exit 1 if a tensor is below min accuracy.

use anyhow::Context;
use arrowquant_std::{Model, QuantizedFile, validate};

use crate::args::{GlobalArgs, ValidateArgs};
use crate::exit::Outcome;
use crate::report::{validate_json, validate_text};

/// The threshold when neither the flag nor the file says (the `local` profile's).
const DEFAULT_MIN_ACCURACY: f64 = 0.85;

/// The min accuracy the file was written with (the default if it stores no
/// configuration). A stored configuration that does not parse or is invalid is an
/// error naming the file, not a silent default.
fn stored_min_accuracy(q: &QuantizedFile) -> anyhow::Result<f64> {
    let path = q.path().display();
    if q.config_json().trim().is_empty() {
        return Ok(DEFAULT_MIN_ACCURACY);
    }
    let Some(c) = q.config() else {
        anyhow::bail!(
            "{path}: the stored configuration (`arrowquant.config`) is not valid; pass --min-accuracy"
        );
    };
    c.validate()
        .with_context(|| format!("{path}: the stored configuration is invalid (pass --min-accuracy)"))?;
    Ok(c.min_accuracy)
}

/// Runs `arrowquant validate`.
///
/// # Errors
/// Input errors (exit 2).
pub fn run(args: &ValidateArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let model =
        Model::open(&args.original).with_context(|| format!("opening model {}", args.original.display()))?;
    let q = QuantizedFile::open(&args.quantized)
        .with_context(|| format!("opening quantized file {}", args.quantized.display()))?;
    let min = match args.min_accuracy {
        Some(m) => m,
        None => stored_min_accuracy(&q)?,
    };
    let report = validate(&model, &q, min).context("validating")?;
    if global.json {
        crate::out::print_json(&validate_json(&report))?;
    } else {
        crate::out::print(&validate_text(&report))?;
    }
    Ok(if report.passed {
        Outcome::Success
    } else {
        Outcome::QualityFailed(format!(
            "{} tensor(s) below min accuracy {min}: {}",
            report.failed.len(),
            report.failed.join(", ")
        ))
    })
}
