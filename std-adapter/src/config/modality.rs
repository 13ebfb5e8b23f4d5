//! Modality detection (text, code, image, audio) and the defaults each modality
//! selects.
//!
//! # Where the answer comes from, first match wins
//!
//! 1. `--modality` (or `modality:` in the config file / environment).
//! 2. `config.json` next to the model (or in its directory): `model_type`,
//!    `architectures` and diffusers' `_class_name`.
//! 3. `model_index.json` in the model's directory or its parent (diffusers pipelines):
//!    `_class_name` and the component class names.
//! 4. Tensor names: embedding and LM-head names say text; UNet/VAE/patch-embedding
//!    names say image; mel/feature-extractor names say audio.
//!
//! # Defaults (the configuration guide, scenarios 5 and 6)
//!
//! Text and code use discrete diffusion strategies: spatial quantization off,
//! 128 calibration samples. Image and audio use continuous strategies: spatial on,
//! groups of 64 weights (for the plain group codec: the profile's quality preset keeps
//! its own blocks), 256 calibration samples. These apply on top of the deployment
//! profile and under the config file, environment and flags.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, ConfigLayer, Modality};

/// The detected modality and how it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The modality, if anything told.
    pub modality: Option<Modality>,
    /// Human-readable evidence, e.g. `config.json: model_type "bert"`.
    pub source: String,
    /// Metadata files that exist but could not be read (reported, not fatal: the
    /// weights do not depend on them).
    pub warnings: Vec<String>,
}

/// The configuration layer a modality selects (see the module docs).
pub fn defaults_for(m: Modality) -> ConfigLayer {
    match m {
        Modality::Text | Modality::Code => {
            ConfigLayer { enable_spatial: Some(false), calibration_samples: Some(128), ..Default::default() }
        }
        Modality::Image | Modality::Audio => ConfigLayer {
            enable_spatial: Some(true),
            group_size: Some(64),
            calibration_samples: Some(256),
            ..Default::default()
        },
    }
}

/// Resolves the configuration of one model: profile < modality defaults < `file` <
/// `env` < `explicit`. The modality is the first of `explicit`, `env`, `file` and the
/// detection that names one.
///
/// A profile named in any layer is never overridden by a modality default: the
/// modality's defaults apply only on top of the default profile (an audio model under
/// `--profile edge` keeps edge's group of 256).
///
/// # Errors
/// A validation error of the resolved configuration.
pub fn resolve_for_model(
    file: Option<&ConfigLayer>,
    env: &ConfigLayer,
    explicit: &ConfigLayer,
    detection: &Detection,
) -> Result<Config, ConfigError> {
    let chosen = explicit.modality.or(env.modality).or(file.and_then(|f| f.modality)).or(detection.modality);
    let named_profile =
        explicit.deployment_profile.or(env.deployment_profile).or(file.and_then(|f| f.deployment_profile));
    let defaults = chosen.filter(|_| named_profile.is_none()).map(defaults_for).unwrap_or_default();
    let layers = [
        file.cloned().unwrap_or_default(),
        env.clone(),
        ConfigLayer { modality: chosen, ..explicit.clone() },
    ];
    Config::from_defaults_and_layers(&defaults, &layers)
}

/// One line describing [`defaults_for`], for reports.
pub fn describe_defaults(m: Modality) -> &'static str {
    match m {
        Modality::Text | Modality::Code => "discrete: spatial off, 128 calibration samples",
        Modality::Image | Modality::Audio => "continuous: spatial on, group 64, 256 calibration samples",
    }
}

/// The metadata files [`detect`] reads for the model at `model_path`, whether they
/// exist or not (`config.json` beside it, `model_index.json` beside it and one level
/// up), with whether each is a pipeline index. An output must not replace them.
fn metadata_candidates(model_path: &Path) -> Vec<(PathBuf, bool)> {
    let dir = if model_path.is_dir() {
        model_path.to_path_buf()
    } else {
        model_path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
    };
    let mut candidates = vec![(dir.join("config.json"), false), (dir.join("model_index.json"), true)];
    if let Some(parent) = dir.parent() {
        candidates.push((parent.join("model_index.json"), true));
    }
    candidates
}

/// The metadata files read beside the model at `model_path` (see [`detect`]).
pub fn metadata_files(model_path: &Path) -> Vec<PathBuf> {
    metadata_candidates(model_path).into_iter().map(|(p, _)| p).collect()
}

/// Detects the modality of the model at `model_path` from its metadata files, then
/// from `tensor_names`.
pub fn detect<'a>(model_path: &Path, tensor_names: impl IntoIterator<Item = &'a str>) -> Detection {
    let mut warnings = Vec::new();
    for (path, is_index) in metadata_candidates(model_path) {
        if !path.is_file() {
            continue;
        }
        let value = match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                warnings.push(format!("{}: ignored for modality detection: {e}", path.display()));
                continue;
            }
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some((m, evidence)) = from_metadata(&value, is_index) {
            return Detection { modality: Some(m), source: format!("{name}: {evidence}"), warnings };
        }
    }
    match from_tensor_names(tensor_names) {
        Some((m, evidence)) => Detection { modality: Some(m), source: evidence, warnings },
        None => Detection {
            modality: None,
            source: "unknown: no config.json or model_index.json and no telling tensor names".into(),
            warnings,
        },
    }
}

/// Keywords by modality, checked in this order (code before text: `codellama`
/// contains `llama`). A leading `=` means a whole word only (`sam`, not `samba`;
/// `code`, not `encoder`); other keywords match anywhere (`BertModel`).
const KEYWORDS: [(Modality, &[&str]); 4] = [
    (Modality::Code, &["=code", "starcoder", "santacoder", "codegen", "codet5", "codellama", "codestral"]),
    (
        Modality::Audio,
        &[
            "whisper",
            "wav2vec",
            "hubert",
            "wavlm",
            "audio",
            "speech",
            "encodec",
            "musicgen",
            "seamless",
            "vocoder",
            "hifigan",
            "unispeech",
            "=mel",
            "=bark",
            "=clap",
        ],
    ),
    (
        Modality::Image,
        &[
            "unet",
            "=vae",
            "autoencoderkl",
            "transformer2d",
            "=dit",
            "pixart",
            "=flux",
            "=vit",
            "vision",
            "image",
            "siglip",
            "=dino",
            "dinov2",
            "convnext",
            "resnet",
            "=swin",
            "=detr",
            "segformer",
            "controlnet",
            "=beit",
            "=deit",
            "=sam",
        ],
    ),
    (
        Modality::Text,
        &[
            "bert", "=gpt", "llama", "mistral", "mixtral", "=t5", "bart", "qwen", "=phi", "gemma", "=opt",
            "bloom", "falcon", "mpnet", "electra", "=xlm", "deberta", "mamba", "rwkv", "=olmo", "stablelm",
            "causallm", "maskedlm", "=text", "=mdlm", "=sedd", "llada", "sentence",
        ],
    ),
];

/// Whether `hay` (a model type or class name) contains keyword `kw` (see [`KEYWORDS`]).
fn matches(hay: &str, kw: &str) -> bool {
    let Some(kw) = kw.strip_prefix('=') else {
        return hay.to_ascii_lowercase().contains(kw);
    };
    // `gpt2`, `t5` and `phi3` count as `gpt`, `t5` and `phi`.
    let word = |w: &str| {
        w == kw || w.strip_prefix(kw).is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    };
    hay.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| word(&w.to_ascii_lowercase()))
        || split_camel(hay).iter().any(|w| word(w))
}

/// `ViTForImageClassification` -> `vit`, `for`, `image`, `classification`.
fn split_camel(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        let boundary = c.is_uppercase()
            && !cur.is_empty()
            && (next_lower || cur.chars().last().is_some_and(char::is_lowercase));
        if !c.is_ascii_alphanumeric() || boundary {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur).to_ascii_lowercase());
            }
            if !c.is_ascii_alphanumeric() {
                continue;
            }
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        words.push(cur.to_ascii_lowercase());
    }
    words
}

fn classify(text: &str) -> Option<Modality> {
    KEYWORDS.iter().find(|(_, kws)| kws.iter().any(|k| matches(text, k))).map(|(m, _)| *m)
}

/// The modality a config.json or model_index.json names, with the evidence.
fn from_metadata(v: &serde_json::Value, is_index: bool) -> Option<(Modality, String)> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    if let Some(s) = v.get("model_type").and_then(|x| x.as_str()) {
        fields.push(("model_type", s.to_string()));
    }
    if let Some(a) = v.get("architectures").and_then(|x| x.as_array()) {
        for s in a.iter().filter_map(|x| x.as_str()) {
            fields.push(("architectures", s.to_string()));
        }
    }
    if let Some(s) = v.get("_class_name").and_then(|x| x.as_str()) {
        fields.push(("_class_name", s.to_string()));
    }
    if is_index && let Some(obj) = v.as_object() {
        // Diffusers components: "unet": ["diffusers", "UNet2DConditionModel"].
        for (k, comp) in obj.iter().filter(|(k, _)| !k.starts_with('_')) {
            if let Some(class) = comp.as_array().and_then(|a| a.get(1)).and_then(|x| x.as_str()) {
                fields.push(("component", format!("{k}={class}")));
            }
        }
    }
    fields.iter().find_map(|(field, value)| classify(value).map(|m| (m, format!("{field} \"{value}\""))))
}

/// Name patterns that are typical of each modality.
const NAME_PATTERNS: [(Modality, &[&str]); 3] = [
    (
        Modality::Audio,
        &["feature_extractor.conv", "mel", "spectrogram", "codevectors", "encoder.conv1.", "audio"],
    ),
    (
        Modality::Image,
        &[
            "down_blocks.",
            "up_blocks.",
            "mid_block.",
            "conv_in.",
            "conv_out.",
            "patch_embed",
            "time_embedding",
            "vision_model",
            "visual.",
            "pixel",
            "post_quant_conv",
        ],
    ),
    (
        Modality::Text,
        &[
            "word_embeddings",
            "embed_tokens",
            "lm_head",
            "tok_embeddings",
            "token_embedding",
            ".wte.",
            "wte.weight",
        ],
    ),
];

fn from_tensor_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<(Modality, String)> {
    let mut counts = [0usize; 3];
    let mut total = 0usize;
    for n in names {
        total += 1;
        for (i, (_, pats)) in NAME_PATTERNS.iter().enumerate() {
            if pats.iter().any(|p| n.contains(p)) {
                counts[i] += 1;
            }
        }
    }
    let (best, &hits) = counts.iter().enumerate().max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))?;
    (hits > 0).then(|| {
        let m = NAME_PATTERNS[best].0;
        (m, format!("tensor names: {hits} of {total} look like {}", m.name()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Profile;
    use serde_json::json;

    #[test]
    fn a_named_profile_is_never_overridden_by_a_modality_default() {
        let audio =
            Detection { modality: Some(Modality::Audio), source: "test".into(), warnings: Vec::new() };
        let none = ConfigLayer::default();
        // No profile named: the modality's defaults apply over the default profile.
        let c = resolve_for_model(None, &none, &none, &audio).unwrap();
        assert_eq!(
            (c.deployment_profile, c.group_size, c.modality),
            (Profile::Local, 64, Some(Modality::Audio))
        );
        // Named by a flag, the environment or the file: the profile's own defaults stay.
        let edge = ConfigLayer { deployment_profile: Some(Profile::Edge), ..Default::default() };
        for c in [
            resolve_for_model(None, &none, &edge, &audio).unwrap(),
            resolve_for_model(None, &edge, &none, &audio).unwrap(),
            resolve_for_model(Some(&edge), &none, &none, &audio).unwrap(),
        ] {
            assert_eq!((c.deployment_profile, c.group_size, c.bit_width), (Profile::Edge, 256, 2));
            assert!(!c.enable_spatial && c.calibration_samples == 32, "edge's defaults: {c:?}");
        }
        // An explicit group size still wins over the profile.
        let edge64 = ConfigLayer { group_size: Some(64), ..edge };
        assert_eq!(resolve_for_model(None, &none, &edge64, &audio).unwrap().group_size, 64);
    }

    #[test]
    fn metadata_names_the_modality() {
        let m = |v: serde_json::Value, idx| from_metadata(&v, idx).map(|r| r.0);
        assert_eq!(
            m(json!({"model_type": "bert", "architectures": ["BertModel"]}), false),
            Some(Modality::Text)
        );
        assert_eq!(
            m(json!({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}), false),
            Some(Modality::Text)
        );
        assert_eq!(m(json!({"architectures": ["CodeLlamaForCausalLM"]}), false), Some(Modality::Code));
        assert_eq!(m(json!({"architectures": ["VisionEncoderDecoderModel"]}), false), Some(Modality::Image));
        assert_eq!(m(json!({"model_type": "starcoder2"}), false), Some(Modality::Code));
        assert_eq!(m(json!({"model_type": "whisper"}), false), Some(Modality::Audio));
        assert_eq!(m(json!({"architectures": ["ViTForImageClassification"]}), false), Some(Modality::Image));
        assert_eq!(m(json!({"_class_name": "UNet2DConditionModel"}), false), Some(Modality::Image));
        assert_eq!(m(json!({"_class_name": "AudioLDMPipeline"}), true), Some(Modality::Audio));
        assert_eq!(
            m(json!({"_class_name": "Pipeline", "unet": ["diffusers", "UNet2DModel"]}), true),
            Some(Modality::Image)
        );
        assert_eq!(m(json!({"model_type": "samba"}), false), None, "short keywords match whole words only");
        assert_eq!(m(json!({"hidden_size": 4}), false), None);
    }

    #[test]
    fn camel_case_words() {
        assert_eq!(split_camel("ViTForImageClassification"), ["vi", "t", "for", "image", "classification"]);
        assert_eq!(split_camel("OPTForCausalLM"), ["opt", "for", "causal", "lm"]);
        assert!(
            matches("UNet2DModel", "unet")
                && matches("gpt2", "=gpt")
                && !matches("VisionEncoderDecoder", "=code")
        );
        assert!(split_camel("BertModel").contains(&"bert".to_string()));
    }

    #[test]
    fn tensor_names_decide_without_metadata() {
        let text = ["embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight"];
        assert_eq!(from_tensor_names(text).map(|r| r.0), Some(Modality::Text));
        let image =
            ["conv_in.weight", "down_blocks.0.resnets.0.conv1.weight", "mid_block.attentions.0.proj.weight"];
        assert_eq!(from_tensor_names(image).map(|r| r.0), Some(Modality::Image));
        let audio =
            ["feature_extractor.conv_layers.0.conv.weight", "encoder.layers.0.attention.k_proj.weight"];
        assert_eq!(from_tensor_names(audio).map(|r| r.0), Some(Modality::Audio));
        assert_eq!(from_tensor_names(["a.weight", "b.bias"]), None);
    }

    #[test]
    fn files_on_disk_and_bad_json() {
        let dir = std::env::temp_dir().join(format!("aq-modality-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let model = dir.join("model.safetensors");
        std::fs::write(dir.join("config.json"), b"{not json").unwrap();
        let d = detect(&model, ["embed_tokens.weight"]);
        assert_eq!(d.modality, Some(Modality::Text));
        assert_eq!(d.warnings.len(), 1, "{d:?}");
        std::fs::write(dir.join("config.json"), br#"{"model_type":"wav2vec2"}"#).unwrap();
        let d = detect(&model, ["embed_tokens.weight"]);
        assert_eq!(
            (d.modality, d.source.as_str()),
            (Some(Modality::Audio), "config.json: model_type \"wav2vec2\"")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
