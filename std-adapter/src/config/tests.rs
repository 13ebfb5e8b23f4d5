//! Unit tests of the configuration: profiles, layers, environment, validation.

use super::layer::{ENV_NAMES, unknown_env_names};
use super::*;

#[test]
fn profiles_follow_the_guide() {
    let e = Config::from_profile(Profile::Edge);
    assert_eq!((e.bit_width, e.group_size, e.min_accuracy, e.enable_streaming), (2, 256, 0.65, true));
    let c = Config::from_profile(Profile::Cloud);
    assert_eq!((c.bit_width, c.group_size, c.num_time_groups, c.calibration_samples), (8, 64, 20, 512));
    assert_eq!(Config::default(), Config::from_profile(Profile::Local));
}

#[test]
fn profiles_default_to_the_quality_preset_of_their_width() {
    let preset = |layers: &[ConfigLayer]| Config::from_layers(layers).unwrap().preset;
    for (p, want) in [(Profile::Edge, "int2"), (Profile::Local, "int4"), (Profile::Cloud, "int8")] {
        assert_eq!(Config::from_profile(p).preset.as_deref(), Some(want));
        let l = ConfigLayer { deployment_profile: Some(p), ..Default::default() };
        assert_eq!(preset(&[l]).as_deref(), Some(want));
    }
    let file = ConfigLayer::from_yaml_str("deployment_profile: edge\nbit_width: 8\n").unwrap();
    assert_eq!(
        preset(std::slice::from_ref(&file)).as_deref(),
        Some("int8"),
        "a width alone takes its quality preset"
    );
    let gs = ConfigLayer { group_size: Some(64), ..Default::default() };
    assert_eq!(preset(&[file.clone(), gs]), None, "the plain knobs give the plain group codec");
    let named = ConfigLayer { preset: Some("fast".into()), ..Default::default() };
    assert_eq!(preset(&[named, file]).as_deref(), Some("fast"), "a named preset in any layer stays");
    let ggml = ConfigLayer { preset: Some("q4_k_m".into()), ..Default::default() };
    assert_eq!(preset(&[ggml]).as_deref(), Some("int4"), "a ggml name is recorded as its preset");
}

#[test]
fn precedence_file_env_explicit() {
    let file =
        ConfigLayer::from_yaml_str("deployment_profile: edge\nbit_width: 8\nmax_memory: 512M\n").unwrap();
    let env = ConfigLayer::from_vars([("ARROW_QUANT_GROUP_SIZE", "64"), ("PATH", "x")]).unwrap();
    let explicit = ConfigLayer { group_size: Some(32), ..Default::default() };
    let c = Config::from_layers(&[file.clone(), env.clone(), ConfigLayer::default()]).unwrap();
    assert_eq!(
        (c.deployment_profile, c.bit_width, c.group_size, c.max_memory),
        (Profile::Edge, 8, 64, 512 << 20)
    );
    assert_eq!(c.min_accuracy, 0.65, "the rest comes from the edge profile");
    let c = Config::from_layers(&[file, env, explicit]).unwrap();
    assert_eq!(c.group_size, 32);
}

#[test]
fn validation_errors_name_allowed_values() {
    let c = Config { bit_width: 3, ..Config::default() };
    let e = c.validate().unwrap_err();
    assert_eq!(e, ConfigError::InvalidBitWidth(3));
    assert_eq!(e.to_string(), "bit width 3 is not supported (allowed: 2, 4, 8)");
    let c = Config { num_time_groups: 0, ..Config::default() };
    assert_eq!(c.validate(), Err(ConfigError::InvalidTimeGroups(0)));
    let c = Config { group_size: 100, ..Config::default() };
    assert_eq!(c.validate(), Err(ConfigError::InvalidGroupSize(100)));
    let mut c = Config { min_accuracy: 1.5, ..Config::default() };
    assert_eq!(c.validate(), Err(ConfigError::InvalidAccuracy(1.5)));
    c.min_accuracy = f64::NAN;
    assert!(c.validate().is_err());
}

#[test]
fn env_errors_name_the_variable() {
    let e = ConfigLayer::from_vars([("ARROW_QUANT_FAIL_FAST", "maybe")]).unwrap_err();
    assert!(e.to_string().contains("ARROW_QUANT_FAIL_FAST"), "{e}");
    let l = ConfigLayer::from_vars([("ARROW_QUANT_DEPLOYMENT_PROFILE", "Cloud")]).unwrap();
    assert_eq!(l.deployment_profile, Some(Profile::Cloud));
}

#[test]
fn yaml_unknown_field_is_an_error() {
    assert!(ConfigLayer::from_yaml_str("bit_widht: 4\n").is_err());
    assert!(ConfigLayer::from_yaml_str("bit_width: [1]\n").is_err());
}

#[test]
fn bytes_and_globs() {
    assert_eq!(parse_bytes("512M").unwrap(), 512 << 20);
    assert_eq!(parse_bytes("2GiB").unwrap(), 2 << 30);
    assert_eq!(parse_bytes("1000").unwrap(), 1000);
    assert!(parse_bytes("12Q").is_err());
    assert!(parse_bytes("").is_err());
    assert!(glob_match("*.bias", "encoder.layer.0.bias"));
    assert!(glob_match("encoder.*.weight", "encoder.layer.0.weight"));
    assert!(!glob_match("*.bias", "encoder.layer.0.weight"));
    assert!(glob_match("a?c", "abc"));
    assert!(glob_match("*", ""));
}

#[test]
fn every_known_environment_name_is_read() {
    for n in ENV_NAMES {
        let var = format!("ARROW_QUANT_{n}");
        // A value no setting accepts is an error; the two free-text settings take it.
        let read = ConfigLayer::from_vars([(var.as_str(), "??")]);
        assert!(read.as_ref().map_or(true, |l| *l != ConfigLayer::default()), "{var} is not read");
    }
}

#[test]
fn unknown_environment_names_warn_with_the_nearest_known_one() {
    let names = ["ARROW_QUANT_BIT_WIDHT", "ARROW_QUANT_BIT_WIDTH", "PATH", "ARROW_QUANT_THREADS"];
    let w = unknown_env_names(names.map(String::from));
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].contains("ARROW_QUANT_BIT_WIDHT") && w[0].ends_with("ARROW_QUANT_BIT_WIDTH?"), "{w:?}");
    assert!(w[1].contains("ARROW_QUANT_THREADS") && w[1].ends_with("ARROW_QUANT_NUM_THREADS?"), "{w:?}");
}

#[test]
fn an_empty_calibration_path_is_an_error_naming_the_variable() {
    let e = ConfigLayer::from_vars([("ARROW_QUANT_CALIBRATION", " ")]).unwrap_err().to_string();
    assert!(e.contains("ARROW_QUANT_CALIBRATION") && e.contains("path"), "{e}");
}

#[test]
fn yaml_numbers_and_booleans_must_not_be_quoted() {
    for bad in [
        "bit_width: \"4\"\n",
        "fail_fast: 'true'\n",
        "thermodynamic:\n  validation:\n    smoothness_threshold: \"0.2\"\n",
    ] {
        let e = ConfigLayer::from_yaml_str(bad).unwrap_err().to_string();
        assert!(e.contains("remove the quotes"), "{bad}: {e}");
    }
    let ok = "bit_width: 4\nmax_memory: \"512M\"\npreset: \"int4\"\ninclude: [\"*.weight\"]\n";
    assert_eq!(ConfigLayer::from_yaml_str(ok).unwrap().bit_width, Some(4));
}
