//! `arrowquant presets`: every preset with its size, speed and quality on
//! all-MiniLM-L6-v2, from the committed table `presets_minilm.md` (which names the
//! command that produced it), and the ggml type names that stand for each.

use arrowquant_core::preset::{GGML_ALIASES, Preset};
use serde_json::json;

use crate::args::GlobalArgs;
use crate::exit::Outcome;

/// The committed output of `eval_presets` on all-MiniLM-L6-v2 (see the file's header).
pub const TABLE: &str = include_str!("../presets_minilm.md");

/// The command that produced [`TABLE`].
pub const PRODUCED_BY: &str =
    "cargo run -p arrowquant-benches --bin eval_presets -- PATH/model.safetensors --runs 3";

/// One row of [`TABLE`], as printed there.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The preset name.
    pub name: String,
    /// Its layout id.
    pub layout: String,
    /// Bits per weight, every scale and minimum counted.
    pub bpw: String,
    /// Mean cosine over the 40 matrices.
    pub mean_cos: String,
    /// The worst matrix's cosine.
    pub min_cos: String,
    /// Mean SQNR in dB.
    pub sqnr_db: String,
    /// Single-threaded encode speed, M weights/s.
    pub mweights_s: String,
}

/// The rows of [`TABLE`]: every line `| name | ... |` but the header and its rule.
pub fn rows() -> Vec<Row> {
    TABLE
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("| preset") && !l.starts_with("|---"))
        .filter_map(|l| {
            let c: Vec<String> = l.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect();
            let [name, layout, bpw, mean_cos, min_cos, _rmse, sqnr_db, _ms, mweights_s] =
                <[String; 9]>::try_from(c).ok()?;
            Some(Row { name, layout, bpw, mean_cos, min_cos, sqnr_db, mweights_s })
        })
        .collect()
}

/// The ggml type names that stand for `p`.
pub fn ggml_aliases(p: Preset) -> Vec<&'static str> {
    GGML_ALIASES.iter().filter(|(_, q)| *q == p).map(|(n, _)| *n).collect()
}

/// The profile whose default `p` is, if any.
fn profile_of(p: Preset) -> Option<&'static str> {
    arrowquant_std::Profile::ALL.into_iter().find_map(|prof| {
        let c = arrowquant_std::Config::from_profile(prof);
        (c.preset.as_deref() == Some(p.name())).then_some(prof.name())
    })
}

/// The table as text: one line per preset, then where the figures come from.
pub fn text() -> String {
    let rows = rows();
    let mut o = format!(
        "{:<10} {:>7} {:>9} {:>9} {:>9} {:>8}  {:<7} {}\n",
        "preset", "bpw", "M w/s", "mean cos", "min cos", "SQNR dB", "profile", "ggml aliases"
    );
    for p in Preset::ALL {
        let r = rows.iter().find(|r| r.name == p.name());
        let f = |get: fn(&Row) -> &String| r.map_or("-", |r| get(r).as_str()).to_string();
        let aliases = ggml_aliases(p);
        o.push_str(&format!(
            "{:<10} {:>7} {:>9} {:>9} {:>9} {:>8}  {:<7} {}\n",
            p.name(),
            f(|r| &r.bpw),
            f(|r| &r.mweights_s),
            f(|r| &r.mean_cos),
            f(|r| &r.min_cos),
            f(|r| &r.sqnr_db),
            profile_of(p).unwrap_or("-"),
            if aliases.is_empty() { "-".to_string() } else { aliases.join(" ") },
        ));
        o.push_str(&format!("{:<10} {}\n", "", p.description()));
    }
    o.push_str(&format!(
        "quality: all-MiniLM-L6-v2, its 40 matrices (mean and worst cosine, mean SQNR); speed: \
         single-threaded encode on a shared 2-vCPU AVX2 machine; produced by `{PRODUCED_BY}`.\n\
         ggml type names stand for the preset of their code width, rounded up (Q3_K -> int4, \
         Q5_K/Q6_K -> int8).\n"
    ));
    o
}

/// The `--preset` flag's long help: the names, then [`text`].
pub fn preset_long_help() -> String {
    format!(
        "A named codec preset: {}; or a ggml type name standing for one (Q4_K_M -> int4). Overrides \
         --bits/--group-size/--scheme; the default is the profile's (edge int2, local int4, cloud int8). \
         `arrowquant presets` prints this table:\n\n{}",
        Preset::ALL.map(Preset::name).join(", "),
        text()
    )
}

/// Runs `arrowquant presets`.
///
/// # Errors
/// A closed or failing stdout.
pub fn run(global: &GlobalArgs) -> anyhow::Result<Outcome> {
    if global.json {
        let rows = rows();
        let presets: Vec<_> = Preset::ALL
            .iter()
            .map(|&p| {
                let r = rows.iter().find(|r| r.name == p.name());
                let num = |get: fn(&Row) -> &String| r.and_then(|r| get(r).parse::<f64>().ok());
                json!({
                    "name": p.name(),
                    "description": p.description(),
                    "layout_id": p.codec().layout().to_string(),
                    "bits_per_weight": p.bits_per_weight(),
                    "profile_default": profile_of(p),
                    "ggml_aliases": ggml_aliases(p),
                    "minilm": {
                        "mean_cosine": num(|r| &r.mean_cos),
                        "min_cosine": num(|r| &r.min_cos),
                        "mean_sqnr_db": num(|r| &r.sqnr_db),
                        "encode_mweights_per_s": num(|r| &r.mweights_s),
                    },
                })
            })
            .collect();
        crate::out::print_json(&json!({
            "command": "presets",
            "schema_version": 1,
            "model": "all-MiniLM-L6-v2",
            "produced_by": PRODUCED_BY,
            "presets": presets,
        }))?;
    } else {
        crate::out::print(&text())?;
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_table_has_one_row_per_preset_matching_its_codec() {
        let rows = rows();
        assert_eq!(rows.len(), Preset::ALL.len(), "{rows:?}");
        for p in Preset::ALL {
            let r = rows.iter().find(|r| r.name == p.name()).unwrap_or_else(|| panic!("{p}: no row"));
            assert_eq!(r.layout, p.codec().layout().to_string(), "{p}");
            let bpw: f64 = r.bpw.parse().unwrap();
            assert!((bpw - p.bits_per_weight()).abs() < 1e-4, "{p}: {bpw}");
        }
    }
}
