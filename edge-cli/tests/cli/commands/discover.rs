//! First run and discoverability (issue 16): profiles default to the quality preset of
//! their width, `arrowquant presets` and the `--preset` help list every preset with its
//! size, speed and quality, ggml type names alias presets, completions and the man page.

use arrowquant_core::Preset;

use super::{listing, run, run_with, s, tempdir, write_model};

/// The committed table `arrowquant presets` prints (`edge-cli/src/presets_minilm.md`).
const TABLE: &str = include_str!("../../../src/presets_minilm.md");

/// (name, bpw, mean cosine, min cosine, SQNR dB) of each row of [`TABLE`].
fn table_rows() -> Vec<[String; 5]> {
    TABLE
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| preset"))
        .map(|l| {
            let c: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            [c[0], c[2], c[3], c[4], c[6]].map(String::from)
        })
        .collect()
}

/// The subcommand names `arrowquant --help` lists under "Commands:".
fn subcommands() -> Vec<String> {
    let h = run(&["--help"]);
    assert_eq!(h.code, 0, "{h:?}");
    let list: Vec<String> = h
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // Wrapped descriptions continue on lines indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|n| n != "help")
        .collect();
    assert!(list.len() >= 9, "{list:?}");
    list
}

#[test]
fn profiles_quantize_with_the_quality_preset_of_their_width() {
    let dir = tempdir();
    let model = dir.path().join("m.safetensors");
    write_model(&model, 3);
    let out = dir.path().join("o.parquet");
    let quantize = |extra: &[&str]| {
        let mut args = vec!["quantize", s(&model), "-o", s(&out), "--json", "-q"];
        args.extend_from_slice(extra);
        let r = run(&args);
        assert_eq!(r.code, 0, "{extra:?}: {r:?}");
        let j = r.json();
        (j["preset"].as_str().map(String::from), j["codec"].as_str().unwrap().to_string())
    };
    for (profile, preset, codec) in [
        ("edge", "int2", "k2b256s16c4m4o0"),
        ("local", "int4", "k4b256s32c6m6o0"),
        ("cloud", "int8", "k8b256s32c6m6o0"),
    ] {
        assert_eq!(quantize(&["--profile", profile]), (Some(preset.into()), codec.into()), "{profile}");
    }
    assert_eq!(quantize(&[]).0.as_deref(), Some("int4"), "no flag: the local profile's int4");
    assert_eq!(quantize(&["--bits", "8"]).0.as_deref(), Some("int8"), "a width alone: its quality preset");
    assert_eq!(quantize(&["--group-size", "64"]), (None, "g4a64".into()), "plain knobs: plain codec");
    assert_eq!(quantize(&["--preset", "fast"]), (Some("fast".into()), "g4a128".into()));
}

#[test]
fn presets_lists_every_preset_with_size_speed_and_quality() {
    let rows = table_rows();
    assert_eq!(rows.len(), Preset::ALL.len(), "one committed row per preset: {rows:?}");
    let r = run(&["presets"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("eval_presets"), "names the command that made the table: {r:?}");
    for [name, bpw, mean, min, sqnr] in &rows {
        let line = r
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} missing: {r:?}"));
        for v in [bpw, mean, min, sqnr] {
            assert!(line.contains(v.as_str()), "{name}: {v} missing from {line:?}");
        }
    }
    let j = run(&["presets", "--json"]).json();
    assert_eq!(j["schema_version"], 1);
    let presets = j["presets"].as_array().unwrap();
    assert_eq!(presets.len(), Preset::ALL.len());
    for (p, [name, _, mean, _, _]) in presets.iter().zip(&rows) {
        assert_eq!(p["name"].as_str(), Some(name.as_str()));
        assert_eq!(p["minilm"]["mean_cosine"].as_f64(), Some(mean.parse().unwrap()), "{p}");
        assert!(p["minilm"]["encode_mweights_per_s"].as_f64().is_some_and(|x| x > 0.0), "{p}");
    }
    let int4 = presets.iter().find(|p| p["name"] == "int4").unwrap();
    assert_eq!(int4["profile_default"], "local");
    assert!(int4["ggml_aliases"].as_array().unwrap().iter().any(|a| a == "Q4_K"), "{int4}");
}

#[test]
fn preset_help_lists_every_preset() {
    for args in [&["quantize", "-h"][..], &["quantize", "--help"], &["demo", "--help"]] {
        let h = run(args);
        assert_eq!(h.code, 0, "{h:?}");
        for p in Preset::ALL {
            assert!(h.stdout.contains(p.name()), "{args:?}: {p} missing");
        }
        assert!(h.stdout.contains("arrowquant presets"), "{args:?}");
    }
    let long = run(&["quantize", "--help"]);
    let [_, _, mean, _, _] = &table_rows()[3];
    assert!(long.stdout.contains(mean.as_str()) && long.stdout.contains("Q4_K_M"), "the table: {long:?}");
}

#[test]
fn ggml_type_names_alias_the_preset_of_their_width() {
    let dir = tempdir();
    let model = dir.path().join("m.safetensors");
    write_model(&model, 4);
    let out = dir.path().join("o.parquet");
    for (name, preset) in [("Q4_K_M", "int4"), ("q2_k", "int2"), ("Q8_0", "int8"), ("Q3_K_S", "int4")] {
        let r = run(&["quantize", s(&model), "-o", s(&out), "--json", "--preset", name]);
        assert_eq!(r.code, 0, "{name}: {r:?}");
        assert_eq!(r.json()["preset"], preset, "{name}");
        assert!(r.stderr.contains(&format!("--preset {name}: a ggml type name")), "{name}: {r:?}");
    }
    let r = run(&["quantize", s(&model), "-o", s(&out), "--preset", "Q9_K"]);
    assert!(r.code == 2 && r.stderr.contains("int4-fine"), "unknown names list the known ones: {r:?}");
}

#[test]
fn completions_and_man_page_mention_every_subcommand() {
    let subs = subcommands();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let r = run(&["completions", shell]);
        assert_eq!(r.code, 0, "{shell}: {r:?}");
        assert!(r.stdout.contains("arrowquant"), "{shell}");
        for sub in &subs {
            assert!(r.stdout.contains(sub.as_str()), "{shell}: {sub} missing");
        }
        assert!(r.stdout.contains("--preset"), "{shell}: flags of subcommands too");
    }
    assert_eq!(run(&["completions", "tcsh"]).code, 2, "an unknown shell is a usage error");
    let m = run(&["man"]);
    assert_eq!(m.code, 0, "{m:?}");
    assert!(m.stdout.starts_with(".ie") && m.stdout.contains(".TH arrowquant 1"), "roff: {m:?}");
    for sub in &subs {
        assert!(m.stdout.contains(&format!(".TH arrowquant-{sub} 1")), "{sub}: no page of its own");
    }
}

#[test]
fn postcard_output_carries_every_preset_and_checks_before_any_work() {
    let dir = tempdir();
    let model = dir.path().join("m.safetensors");
    write_model(&model, 5);
    let out = dir.path().join("m.bin");
    // Every preset, a ggml alias, each profile's default and mixed precision: the device
    // file is written, read back by core's no_std reader and compared bit for bit with
    // the Parquet (std) decoder before it is kept (export's verify).
    let mut cases: Vec<Vec<&str>> = Preset::ALL.iter().map(|p| vec!["--preset", p.name()]).collect();
    cases.extend([vec!["--preset", "Q4_K_M"], vec!["--profile", "edge"], vec!["--target-bpw", "3.0"]]);
    for extra in cases {
        let mut args = vec!["quantize", s(&model), "-o", s(&out), "--format", "postcard", "--json", "-q"];
        args.extend_from_slice(&extra);
        let r = run(&args);
        assert_eq!(r.code, 0, "{extra:?}: {r:?}");
        let j = r.json();
        assert_eq!(j["format"], "postcard");
        let i = run(&["inspect", s(&out), "--json"]).json();
        assert_eq!(i["kind"], "arrowquant-device", "{i}");
        let records = i["tensors"].as_array().unwrap();
        assert_eq!(records.len() as u64, j["tensor_count"].as_u64().unwrap(), "{extra:?}: every tensor: {i}");
        assert_eq!(
            records.iter().filter(|t| t["codec"].as_str().unwrap().starts_with("raw")).count(),
            2,
            "{i}"
        );
        if j["codec"].as_str().is_some_and(|c| c.starts_with('k')) {
            assert!(records.iter().any(|t| t["codec"] == "two-level"), "{extra:?}: {i}");
        }
    }
    // An export of a preset's Parquet file carries it too.
    let pq = dir.path().join("m.parquet");
    assert_eq!(run(&["quantize", s(&model), "-o", s(&pq), "--preset", "int2", "-q"]).code, 0);
    let r = run(&["export", s(&pq), "--format", "postcard", "-o", s(&dir.path().join("e.bin"))]);
    assert_eq!(r.code, 0, "{r:?}");
    // A bad preset is refused in one line before anything is written.
    let _ = std::fs::remove_file(&out);
    let before = listing(dir.path());
    let r = run_with(
        &["quantize", s(&model), "-o", s(&out), "--format", "postcard"],
        &[("ARROW_QUANT_PRESET", "int9")],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "one line: {r:?}");
    assert!(!r.stderr.contains("quantizing"), "no work started: {r:?}");
    assert_eq!(listing(dir.path()), before, "nothing written");
}

#[test]
fn json_has_one_documented_shape() {
    let dir = tempdir();
    let (a, b) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
    write_model(&a, 6);
    write_model(&b, 7);
    let docs = [
        run(&["quantize", s(&a), "-o", s(&dir.path().join("a.parquet")), "--json", "-q"]),
        run(&["quantize", s(&a), s(&b), "-o", s(&dir.path().join("out")), "--json", "-q"]),
    ];
    let doc_md = include_str!("../../../../docs/JSON.md");
    for (r, models) in docs.iter().zip([1, 2]) {
        assert_eq!(r.code, 0, "{r:?}");
        let d = r.document();
        assert_eq!((d["command"].as_str(), d["schema_version"].as_u64()), (Some("quantize"), Some(2)));
        assert_eq!(d["models"].as_array().map(Vec::len), Some(models), "one shape for any count");
        assert!(d["timings"]["total_s"].as_f64().is_some_and(|t| t > 0.0), "{d}");
        assert_eq!(d["timings"]["quantize_s"].as_array().map(Vec::len), Some(models));
        if cfg!(target_os = "linux") {
            assert!(d["peak_rss_bytes"].as_u64().is_some_and(|b| b > 1 << 20), "{d}");
        }
        for key in d.as_object().unwrap().keys().chain(d["models"][0].as_object().unwrap().keys()) {
            assert!(doc_md.contains(&format!("`{key}`")), "docs/JSON.md does not document `{key}`");
        }
    }
    let demo = run(&["demo", "--json", "-q"]).document();
    assert_eq!(demo["schema_version"], 2);
    assert!(demo["peak_rss_bytes"].is_u64() || !cfg!(target_os = "linux"), "{demo}");
}
