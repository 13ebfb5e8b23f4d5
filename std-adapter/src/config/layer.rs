//! One layer of settings (every field optional) and where layers come from: a YAML
//! file, the `ARROW_QUANT_*` environment, explicit arguments; how a layer applies to a
//! configuration; byte counts.

use std::path::{Path, PathBuf};

use super::{Compression, Config, ConfigError, Modality, Profile, SchemeName};
use arrowquant_core::diffusion::ThermodynamicConfig;
use serde::{Deserialize, Serialize};

/// One layer of settings: every field optional. YAML files, the environment and
/// command-line arguments are each read into one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)] // Each field means what the same field of `Config` means.
pub struct ConfigLayer {
    pub deployment_profile: Option<Profile>,
    pub bit_width: Option<u32>,
    pub group_size: Option<usize>,
    pub scheme: Option<SchemeName>,
    pub preset: Option<String>,
    pub num_time_groups: Option<u32>,
    pub enable_time_aware: Option<bool>,
    pub enable_spatial: Option<bool>,
    pub min_accuracy: Option<f64>,
    pub calibration_samples: Option<u32>,
    pub fail_fast: Option<bool>,
    pub num_threads: Option<usize>,
    pub enable_streaming: Option<bool>,
    /// Bytes: an integer or a string such as `512M`, `2G`, `256MiB`.
    #[serde(deserialize_with = "de_opt_bytes")]
    pub max_memory: Option<u64>,
    pub include: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
    pub quantize_1d: Option<bool>,
    pub modality: Option<Modality>,
    pub calibration: Option<PathBuf>,
    pub activation_bits: Option<u8>,
    /// The whole `thermodynamic:` section (missing keys take their defaults).
    pub thermodynamic: Option<ThermodynamicConfig>,
    pub target_bpw: Option<f64>,
    pub equalization_alpha: Option<f32>,
    pub compression: Option<Compression>,
}

impl ConfigLayer {
    /// Reads a YAML config file.
    ///
    /// # Errors
    /// [`ConfigError::File`] naming the file (unreadable, bad YAML, unknown field).
    pub fn from_yaml_file(path: &Path) -> Result<Self, ConfigError> {
        let bytes = crate::model::input::read_regular(path)
            .map_err(|e| ConfigError::File { path: path.to_path_buf(), message: e.to_string() })?;
        let text = String::from_utf8(bytes).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            message: format!("not UTF-8 text (at byte {})", e.utf8_error().valid_up_to()),
        })?;
        let layer = Self::from_yaml_str(&text).map_err(|e| match e {
            ConfigError::File { message, .. } => ConfigError::File { path: path.to_path_buf(), message },
            other => other,
        })?;
        // A bad value is checked here, against the defaults, so the error names this
        // file (checked only after every layer is merged, it named no source).
        super::Config::from_layers(std::slice::from_ref(&layer))
            .map_err(|e| ConfigError::File { path: path.to_path_buf(), message: e.to_string() })?;
        Ok(layer)
    }

    /// Parses YAML text (an empty document is an empty layer).
    ///
    /// # Errors
    /// [`ConfigError::File`] with an empty path.
    pub fn from_yaml_str(text: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(ConfigLayer::default());
        }
        let file = |message: String| ConfigError::File { path: PathBuf::new(), message };
        // One line with the line and column: no rustc-like snippet (it quoted the file
        // as `<input>` and repeated the message, key list included, on the same line).
        let yaml = |e: serde_saphyr::Error| file(yaml_message(&e.to_string(), text));
        let options = || serde_saphyr::options! { with_snippet: false };
        let layer = serde_saphyr::from_str_with_options::<ConfigLayer>(text, options()).map_err(yaml)?;
        // The typed parse above turns a quoted "4" into the number 4; read the file again
        // untyped to see what was written (a quoted scalar stays a string).
        let untyped: serde_json::Value =
            serde_saphyr::from_str_with_options(text, options()).map_err(yaml)?;
        check_no_quoted_values(&untyped, "").map_err(file)?;
        Ok(layer)
    }

    /// Reads the `ARROW_QUANT_*` variables of this process.
    ///
    /// # Errors
    /// [`ConfigError::Env`] naming the variable and its value, or
    /// [`ConfigError::EnvNotUtf8`] for a value that is not UTF-8 (ignoring it would
    /// quietly quantize with a setting the user did not ask for).
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut vars = Vec::new();
        for (k, v) in std::env::vars_os() {
            let Ok(k) = k.into_string() else { continue };
            if !k.starts_with(ENV_PREFIX) {
                continue;
            }
            let v = v.into_string().map_err(|_| ConfigError::EnvNotUtf8(k.clone()))?;
            vars.push((k, v));
        }
        Self::from_vars(vars)
    }

    /// Reads `ARROW_QUANT_*` variables from any list of pairs (other names are ignored).
    ///
    /// # Errors
    /// [`ConfigError::Env`] naming the variable and its value.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut l = ConfigLayer::default();
        for (k, v) in vars {
            let (k, v) = (k.as_ref(), v.as_ref());
            let Some(name) = k.strip_prefix(ENV_PREFIX) else { continue };
            let bad = |expected: &str| ConfigError::Env {
                var: k.to_string(),
                value: v.to_string(),
                expected: expected.to_string(),
            };
            let int = |expected: &str| v.trim().parse::<u64>().map_err(|_| bad(expected));
            match name {
                "DEPLOYMENT_PROFILE" => {
                    l.deployment_profile = Some(Profile::parse(v).map_err(|_| bad("edge, local or cloud"))?)
                }
                "BIT_WIDTH" => {
                    l.bit_width = Some(u32::try_from(int("2, 4 or 8")?).map_err(|_| bad("2, 4 or 8"))?)
                }
                "NUM_TIME_GROUPS" => {
                    l.num_time_groups = Some(u32::try_from(int("1 to 100")?).map_err(|_| bad("1 to 100"))?)
                }
                "GROUP_SIZE" => l.group_size = Some(int("32, 64, 128 or 256")? as usize),
                "MIN_ACCURACY" => {
                    l.min_accuracy =
                        Some(v.trim().parse::<f64>().map_err(|_| bad("a number from 0.0 to 1.0"))?)
                }
                "CALIBRATION_SAMPLES" => {
                    l.calibration_samples =
                        Some(u32::try_from(int("an integer")?).map_err(|_| bad("an integer"))?)
                }
                "FAIL_FAST" => l.fail_fast = Some(parse_bool(v).ok_or_else(|| bad("true or false"))?),
                "NUM_THREADS" => l.num_threads = Some(int("an integer (0 = all cores)")? as usize),
                "ENABLE_STREAMING" => {
                    l.enable_streaming = Some(parse_bool(v).ok_or_else(|| bad("true or false"))?)
                }
                "PRESET" => l.preset = Some(v.trim().to_string()),
                "MAX_MEMORY" => {
                    l.max_memory = Some(parse_bytes(v).map_err(|_| bad("bytes, e.g. 268435456, 512M or 2G"))?)
                }
                "ENABLE_TIME_AWARE" => {
                    l.enable_time_aware = Some(parse_bool(v).ok_or_else(|| bad("true or false"))?)
                }
                "ACTIVATION_BITS" => {
                    l.activation_bits = Some(u8::try_from(int("2 to 16")?).map_err(|_| bad("2 to 16"))?)
                }
                "CALIBRATION" if v.trim().is_empty() => return Err(bad("the path of a calibration file")),
                "CALIBRATION" => l.calibration = Some(PathBuf::from(v.trim())),
                "ENABLE_SPATIAL" => {
                    l.enable_spatial = Some(parse_bool(v).ok_or_else(|| bad("true or false"))?)
                }
                "EQUALIZATION_ALPHA" => {
                    l.equalization_alpha =
                        Some(v.trim().parse::<f32>().map_err(|_| bad("a number from 0.0 to 1.0"))?)
                }
                "TARGET_BPW" => {
                    l.target_bpw = Some(
                        v.trim().parse::<f64>().map_err(|_| bad("bits per weight, a number such as 3.0"))?,
                    )
                }
                "COMPRESSION" => {
                    l.compression = Some(Compression::parse(v).ok_or_else(|| bad("zstd or none"))?)
                }
                _ => {}
            }
        }
        Ok(l)
    }

    /// Writes every field this layer sets into `c`.
    pub fn apply_to(&self, c: &mut Config) {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { c.$f = v.clone(); } )* };
        }
        set!(
            bit_width,
            group_size,
            scheme,
            num_time_groups,
            enable_time_aware,
            enable_spatial,
            min_accuracy,
            calibration_samples,
            fail_fast,
            num_threads,
            enable_streaming,
            max_memory,
            include,
            exclude,
            quantize_1d,
            activation_bits,
            thermodynamic,
            equalization_alpha,
            compression
        );
        if let Some(p) = &self.calibration {
            c.calibration = Some(p.clone());
        }
        if let Some(b) = self.target_bpw {
            c.target_bpw = Some(b);
        }
        if let Some(p) = &self.preset {
            c.preset = Some(p.clone());
        }
        if let Some(m) = self.modality {
            c.modality = Some(m);
        }
        if let Some(p) = self.deployment_profile {
            c.deployment_profile = p;
        }
    }
}

/// A YAML error on one line: serde-saphyr's message ("invalid u32 at line 1, column
/// 12"), followed by the line it points at, quoted and escaped, since the message
/// alone does not say which key.
fn yaml_message(message: &str, text: &str) -> String {
    let m = message.strip_prefix("error: ").unwrap_or(message).replace('\n', " ");
    let line_no = m
        .rsplit_once("at line ")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse::<usize>().ok());
    match line_no.and_then(|n| text.lines().nth(n.checked_sub(1)?)) {
        Some(line) if !line.trim().is_empty() => {
            format!("{m}: `{}`", crate::error::escape_controls(line.trim()))
        }
        _ => m,
    }
}

/// Keys whose values are text (names, paths, byte counts such as `512M`); every other
/// setting is a number or a boolean and must be written as one.
const TEXT_KEYS: [&str; 9] = [
    "deployment_profile",
    "scheme",
    "preset",
    "modality",
    "calibration",
    "max_memory",
    "interpolation",
    "beta_schedule",
    "compression",
];

/// A number or boolean written as a quoted string (`bit_width: "4"`) is an error: the
/// file says text where the setting takes a number, and a typo inside the quotes
/// would go unnoticed by a reader who expects the file to be checked.
fn check_no_quoted_values(v: &serde_json::Value, path: &str) -> Result<(), String> {
    let serde_json::Value::Object(map) = v else { return Ok(()) };
    for (k, v) in map {
        let key = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
        match v {
            serde_json::Value::String(s) if !TEXT_KEYS.contains(&k.as_str()) => {
                return Err(format!(
                    "`{key}` is the text \"{}\", but it takes a number or true/false: remove the quotes",
                    crate::error::escape_controls(s)
                ));
            }
            serde_json::Value::Object(_) => check_no_quoted_values(v, &key)?,
            _ => {}
        }
    }
    Ok(())
}

/// The prefix of every setting in the environment.
const ENV_PREFIX: &str = "ARROW_QUANT_";

/// Every `ARROW_QUANT_*` name [`ConfigLayer::from_vars`] reads, without the prefix.
pub const ENV_NAMES: [&str; 18] = [
    "DEPLOYMENT_PROFILE",
    "BIT_WIDTH",
    "NUM_TIME_GROUPS",
    "GROUP_SIZE",
    "MIN_ACCURACY",
    "CALIBRATION_SAMPLES",
    "FAIL_FAST",
    "NUM_THREADS",
    "ENABLE_STREAMING",
    "PRESET",
    "MAX_MEMORY",
    "ENABLE_TIME_AWARE",
    "ACTIVATION_BITS",
    "CALIBRATION",
    "ENABLE_SPATIAL",
    "EQUALIZATION_ALPHA",
    "TARGET_BPW",
    "COMPRESSION",
];

/// One warning per `ARROW_QUANT_*` variable of this process that no setting reads (a
/// misspelling would otherwise be ignored without a word), naming the nearest known
/// variable.
pub fn unknown_env_warnings() -> Vec<String> {
    let names = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok());
    unknown_env_names(names)
}

/// The warnings of [`unknown_env_warnings`] for a list of variable names.
pub fn unknown_env_names(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    for k in names {
        let Some(name) = k.strip_prefix(ENV_PREFIX) else { continue };
        if ENV_NAMES.contains(&name) {
            continue;
        }
        let nearest = ENV_NAMES.iter().min_by_key(|n| edit_distance(name, n)).copied().unwrap_or_default();
        out.push(format!(
            "environment variable {} is not a setting and is ignored; did you mean {ENV_PREFIX}{nearest}?",
            crate::error::escape_controls(&k)
        ));
    }
    out.sort();
    out
}

/// Levenshtein distance over bytes (the names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(!ca.eq_ignore_ascii_case(&cb));
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parses a byte count: `268435456`, `512K`, `512M`, `2G`, `256MiB`, `1GB` (binary units:
/// K = 1024).
///
/// # Errors
/// [`ConfigError::InvalidBytes`] with the text.
pub fn parse_bytes(s: &str) -> Result<u64, ConfigError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| ConfigError::InvalidBytes(s.to_string()))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(ConfigError::InvalidBytes(s.to_string())),
    };
    n.checked_mul(1u64 << shift).ok_or_else(|| ConfigError::InvalidBytes(s.to_string()))
}

fn de_opt_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::N(n)) => Ok(Some(n)),
        Some(Raw::S(s)) => parse_bytes(&s).map(Some).map_err(serde::de::Error::custom),
    }
}
