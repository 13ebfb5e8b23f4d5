//! Reports: the human-readable text, and the JSON objects `--json` prints. The
//! quantize JSON is the serde form of the library's `QuantizeSummary` (field names and
//! `schema_version` are defined there). Sizes in MB are 10^6 bytes.

use std::fmt::Write as _;

use arrowquant_std::{
    EqualizationTable, MarkovSummary, MixedPrecision, OutputInfo, QuantizeReport, TensorReport,
    TimeGroupTable, ValidationReport,
};
use serde_json::{Value, json};

use arrowquant_std::{Detection, describe_modality_defaults as describe_defaults};

/// The version of the `--json` documents' outer shape (docs/JSON.md): 2 since every
/// `quantize --json` is `{command, schema_version, models: [...], timings,
/// peak_rss_bytes}` whatever the number of models.
pub const JSON_SCHEMA_VERSION: u32 = 2;

/// Bytes to MB (10^6).
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// What a quantize run produced: the library's report, the modality detection and
/// what the output format wrote.
#[derive(Debug)]
pub struct QuantizeSummary {
    /// The library's report.
    pub report: QuantizeReport,
    /// How the modality was found.
    pub detection: Detection,
    /// The output format, file, size and the tensors it left out.
    pub out: OutputInfo,
}

/// The JSON object of one quantized model: the serde form of the library's
/// [`arrowquant_std::QuantizeSummary`] (with its `schema_version`).
pub fn quantize_json(s: &QuantizeSummary) -> Value {
    let doc = arrowquant_std::QuantizeSummary::new(&s.report, &s.detection, &s.out);
    serde_json::to_value(doc).unwrap_or_else(|e| json!({ "command": "quantize", "error": e.to_string() }))
}

/// Lines about the time-aware activation parameters (stored or skipped, and why).
pub fn time_aware_text(o: &mut String, table: Option<&TimeGroupTable>, skipped: Option<&str>) {
    let Some(t) = table else {
        let _ = writeln!(o, "  time-aware   skipped: {}", skipped.unwrap_or("not recorded"));
        return;
    };
    let mut smoothing = Vec::new();
    if t.boundary_smoothing {
        smoothing.push("boundary smoothing");
    }
    if t.transition_optimization {
        smoothing.push("transition optimization");
    }
    let _ = writeln!(
        o,
        "  time-aware   {} layers x {} timesteps from {}: {} groups (DP split), {}-bit activations, {}",
        t.layers.len(),
        t.timesteps,
        t.calibration,
        t.num_time_groups,
        t.activation_bits,
        if smoothing.is_empty() { "no smoothing".to_string() } else { smoothing.join(" + ") }
    );
    let markov = |m: Option<MarkovSummary>| {
        m.map_or_else(|| "-".to_string(), |m| format!("{} (max {:.3})", m.violations, m.max_ratio))
    };
    let _ = writeln!(
        o,
        "    {:<32} {:>6} {:>10} {:>10} {:>10}  Markov violations at {} before -> after",
        "layer", "groups", "uniform", "dp", "stored", t.smoothness_threshold
    );
    for l in &t.layers {
        let _ = writeln!(
            o,
            "    {:<32} {:>6} {:>10.3e} {:>10.3e} {:>10.3e}  {} -> {}",
            l.layer,
            l.groups.len(),
            l.uniform_mse,
            l.dp_mse,
            l.stored_mse,
            markov(l.markov_before),
            markov(l.markov_after)
        );
    }
}

/// Lines about channel equalization: the equalized tensors, the layers skipped and why,
/// or why the step did not run.
pub fn equalization_text(o: &mut String, table: Option<&EqualizationTable>, skipped: Option<&str>) {
    let Some(t) = table else {
        let _ = writeln!(o, "  equalize     skipped: {}", skipped.unwrap_or("not recorded"));
        return;
    };
    let _ = writeln!(
        o,
        "  equalize     {} tensors from {} (alpha {}); stored weights are W*s: a runtime divides activation channel j by s_j",
        t.tensors.len(),
        t.calibration,
        t.alpha
    );
    for (name, e) in &t.tensors {
        let _ = writeln!(
            o,
            "    {} <- {}: {} factors in [{:.4e}, {:.4e}], {} neutral",
            crate::out::esc(name),
            crate::out::esc(&e.layer),
            e.factors.len(),
            e.min_factor,
            e.max_factor,
            e.neutral
        );
    }
    for s in &t.skipped {
        let _ = writeln!(o, "    skipped {}: {}", s.layer, s.reason);
    }
}

/// Lines about a mixed-precision plan: budget, what it achieved, the choice per tensor.
pub fn mixed_text(o: &mut String, m: &MixedPrecision, file_bpw: Option<f64>) {
    let achieved = m.achieved_payload_bpw.map_or_else(|| "-".into(), |b| format!("{b:.4}"));
    let _ = writeln!(
        o,
        "  mixed        target {} bits/weight over the quantized payload: planned {:.4}, written {achieved}{}",
        m.target_bpw,
        m.planned_bpw,
        file_bpw.map_or_else(String::new, |f| format!(
            "; whole file {f:.4} (raw tensors, Parquet metadata and zstd are outside the budget)"
        ))
    );
    let best = m.best_uniform_within_budget().map_or_else(
        || "none".into(),
        |u| format!("{} {:.2} dB at {:.4} bpw", u.candidate, u.mean_sqnr_db, u.bpw),
    );
    let _ = writeln!(
        o,
        "               mean SQNR {} dB written ({:.2} planned); best uniform codec within budget: {best}",
        opt(m.achieved_mean_sqnr_db, 2),
        m.planned_mean_sqnr_db
    );
    if !m.fallback_tensors.is_empty() {
        let _ = writeln!(
            o,
            "               quality fallback widened {} (the budget may be exceeded)",
            m.fallback_tensors.join(", ")
        );
    }
    let _ = writeln!(o, "    {:<56} {:>18} {:>5} {:>8} {:>9}", "tensor", "codec", "bits", "bpw", "sqnr_db");
    for t in &m.tensors {
        let _ = writeln!(
            o,
            "    {:<56} {:>18} {:>5} {:>8.3} {:>9.2}",
            crate::out::esc(&t.name),
            t.choice,
            t.bits,
            t.planned_bpw,
            t.planned_sqnr_db
        );
    }
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// The human report of one quantized model; `verbose` adds the per-layer table.
pub fn quantize_text(s: &QuantizeSummary, verbose: bool) -> String {
    let r = &s.report;
    let c = &r.config;
    let mut o = String::new();
    let (model, output) = (crate::out::esc(&r.model), crate::out::esc(&s.out.output));
    let _ = writeln!(o, "quantized {model} -> {output} ({})", s.out.format);
    let modality = match s.detection.modality {
        Some(m) => format!("{} ({}; defaults: {})", m.name(), s.detection.source, describe_defaults(m)),
        None => s.detection.source.clone(),
    };
    let _ = writeln!(o, "  modality     {modality}");
    let codec = match &r.preset {
        Some(p) => format!("preset {p}"),
        None => format!("{}-bit, group {}, {}", r.bit_width, r.group_size, c.scheme.name()),
    };
    let _ = writeln!(
        o,
        "  profile      {}: {codec}, min accuracy {}{}",
        c.deployment_profile.name(),
        r.min_accuracy,
        if c.fail_fast { ", fail fast" } else { "" }
    );
    let _ = writeln!(
        o,
        "  tensors      {} quantized, {} stored unquantized, {} fell back to wider codes",
        r.quantized_tensors, r.raw_tensors, r.fallback_tensors
    );
    let bpw =
        if r.total_elements > 0 { s.out.output_bytes as f64 * 8.0 / r.total_elements as f64 } else { 0.0 };
    let requested = match &r.mixed_precision {
        Some(m) => format!("mixed precision (target {} per quantized weight)", m.target_bpw),
        None => format!("{} requested", r.bit_width),
    };
    let _ = writeln!(
        o,
        "  bits         {requested}; {:.3} bits/weight in the file, {:.3} in quantized payloads",
        bpw, r.payload_bits_per_weight
    );
    let ratio = if s.out.output_bytes > 0 { r.input_bytes as f64 / s.out.output_bytes as f64 } else { 0.0 };
    let _ = writeln!(
        o,
        "  size         {:.2} MB -> {:.2} MB ({ratio:.2}x)",
        mb(r.input_bytes),
        mb(s.out.output_bytes)
    );
    let worst = r
        .tensors
        .iter()
        .filter(|t| t.cosine.is_some() && t.cosine == r.cosine_min)
        .map(|t| format!(" ({})", crate::out::esc(&t.name)))
        .next()
        .unwrap_or_default();
    let _ = writeln!(o, "  cosine       mean {}, min {}{worst}", opt(r.cosine_mean, 6), opt(r.cosine_min, 6));
    let _ = writeln!(o, "  sqnr         mean {} dB over the quantized tensors", opt(mean_sqnr_db(r), 2));
    let _ = writeln!(
        o,
        "  time         {:.2} s ({:.1} MB/s, {} threads, {} kernels)",
        r.time_s, r.throughput_mb_s, r.threads, r.backend
    );
    fallbacks_text(&mut o, &r.tensors);
    time_aware_text(&mut o, r.time_groups.as_ref(), r.time_aware_skipped.as_deref());
    equalization_text(&mut o, r.equalization.as_ref(), r.equalization_skipped.as_deref());
    if let Some(m) = &r.mixed_precision {
        mixed_text(&mut o, m, Some(bpw));
    }
    if !s.out.skipped.is_empty() {
        let _ = writeln!(
            o,
            "not in the {} file (stored unquantized): {}",
            s.out.format,
            s.out.skipped.join(", ")
        );
    }
    if verbose {
        layers_text(&mut o, &r.tensors);
    }
    o
}

/// The tensors that fell back to wider codes (or stayed below the threshold), if any.
fn fallbacks_text(o: &mut String, tensors: &[TensorReport]) {
    let falls: Vec<&TensorReport> =
        tensors.iter().filter(|t| !t.fallback.is_empty() || t.below_min_accuracy).collect();
    if !falls.is_empty() {
        let _ = writeln!(o, "fallbacks:");
        for t in falls {
            let path: Vec<String> =
                t.fallback.iter().map(|f| f.bits.to_string()).chain([t.bits.to_string()]).collect();
            let _ = writeln!(
                o,
                "  {}: {} bits{}: {}",
                crate::out::esc(&t.name),
                path.join(" -> "),
                if t.below_min_accuracy { " (STILL BELOW)" } else { "" },
                t.fallback_reason.as_deref().unwrap_or("")
            );
        }
    }
}

/// The per-layer table of `--verbose`.
fn layers_text(o: &mut String, tensors: &[TensorReport]) {
    let _ = writeln!(
        o,
        "{:<56} {:>5} {:>5} {:>10} {:>9} {:>10}",
        "tensor", "dtype", "bits", "cosine", "bpw", "stored"
    );
    for t in tensors {
        let bits = if t.quantized { t.bits.to_string() } else { "raw".into() };
        let bpw = if t.elements > 0 { t.stored_bytes as f64 * 8.0 / t.elements as f64 } else { 0.0 };
        let _ = writeln!(
            o,
            "{:<56} {:>5} {:>5} {:>10} {:>9.3} {:>10}",
            crate::out::esc(&t.name),
            t.dtype,
            bits,
            opt(t.cosine, 6),
            bpw,
            t.stored_bytes
        );
    }
}

/// The JSON object of a validation.
pub fn validate_json(v: &ValidationReport) -> Value {
    json!({
        "command": "validate",
        "original": v.original,
        "quantized": v.quantized,
        "min_accuracy": v.min_accuracy,
        "passed": v.passed,
        "cosine_similarity": v.cosine_mean,
        "cosine_min": v.cosine_min,
        "failed": v.failed,
        "time_s": v.time_s,
        "layers": v.tensors,
    })
}

/// The per-layer table and summary of a validation.
pub fn validate_text(v: &ValidationReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<56} {:>5} {:>10} {:>10} {:>9} {:>11}  result",
        "tensor", "bits", "cosine", "rel_rmse", "sqnr_db", "max_abs_err"
    );
    for t in &v.tensors {
        let bits = if t.quantized { t.bits.to_string() } else { "raw".into() };
        let result = match (t.pass, t.quantized) {
            (true, true) => "ok",
            (true, false) => "identical",
            (false, true) => "BELOW",
            (false, false) => "DIFFERS",
        };
        let _ = writeln!(
            o,
            "{:<56} {:>5} {:>10} {:>10} {:>9} {:>11}  {result}",
            crate::out::esc(&t.name),
            bits,
            opt(t.cosine, 6),
            opt(t.rel_rmse, 5),
            opt(t.sqnr_db, 2),
            opt(t.max_abs_err, 6)
        );
    }
    let q = v.tensors.iter().filter(|t| t.quantized).count();
    let _ = writeln!(
        o,
        "validated {} tensors ({q} quantized) of {} against {}: cosine mean {}, min {}; min accuracy {}: {}",
        v.tensors.len(),
        v.quantized,
        v.original,
        opt(v.cosine_mean, 6),
        opt(v.cosine_min, 6),
        v.min_accuracy,
        if v.passed { "PASSED".to_string() } else { format!("FAILED ({})", v.failed.join(", ")) }
    );
    o
}

/// Mean SQNR (dB) over the quantized tensors with a finite SQNR (an exact tensor has none).
fn mean_sqnr_db(r: &QuantizeReport) -> Option<f64> {
    let v: Vec<f64> = r.tensors.iter().filter_map(|t| t.sqnr_db).filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}
