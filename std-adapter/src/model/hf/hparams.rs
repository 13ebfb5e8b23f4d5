//! The architecture's hyper-parameters from `config.json`: the keys
//! `TextModel.set_gguf_parameters` and the per-architecture classes of the reference
//! converter write, with the same value types (gguf-py: counts `uint32`, epsilons and
//! frequencies `float32`, flags `bool`).

use std::path::Path;

use arrowquant_core::gguf::Value;
use serde_json::Value as Json;

use super::arch::Arch;
use crate::error::{AdapterError, Result};

/// The first of `keys` that `config` has (the reference's `find_hparam`).
fn find<'a>(config: &'a Json, keys: &[&str]) -> Option<(&'a Json, String)> {
    keys.iter().find_map(|k| config.get(*k).filter(|v| !v.is_null()).map(|v| (v, (*k).to_string())))
}

fn as_u32(v: &Json, key: &str, path: &Path) -> Result<u32> {
    v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
        AdapterError::convert(path, format!("`{key}` = {v} is not a count (an integer below 2^32)"))
    })
}

fn as_f32(v: &Json, key: &str, path: &Path) -> Result<f32> {
    v.as_f64()
        .map(|x| x as f32)
        .ok_or_else(|| AdapterError::convert(path, format!("`{key}` = {v} is not a number")))
}

/// A required count.
pub fn count(config: &Json, keys: &[&str], path: &Path) -> Result<u32> {
    let (v, k) = find(config, keys)
        .ok_or_else(|| AdapterError::convert(path, format!("`{}` is missing", keys.join("` / `"))))?;
    as_u32(v, &k, path)
}

/// The key-value pairs of `arch`'s hyper-parameters, in the reference's order.
///
/// # Errors
/// [`AdapterError::Convert`] naming `path` and the key: a required key missing
/// (`num_hidden_layers`, `hidden_size`, `num_attention_heads`), a value of the wrong
/// kind, or a RoPE scaling the converter does not write.
pub fn hparams(arch: Arch, config: &Json, path: &Path) -> Result<Vec<(String, Value)>> {
    let a = arch.name();
    let mut kv: Vec<(String, Value)> = Vec::new();
    let put_u32 = |kv: &mut Vec<(String, Value)>, key: &str, keys: &[&str]| -> Result<()> {
        if let Some((v, k)) = find(config, keys) {
            kv.push((format!("{a}.{key}"), Value::U32(as_u32(v, &k, path)?)));
        }
        Ok(())
    };
    kv.push((
        format!("{a}.block_count"),
        Value::U32(count(config, &["num_hidden_layers", "n_layers"], path)?),
    ));
    put_u32(&mut kv, "context_length", &["max_position_embeddings", "n_ctx", "n_positions"])?;
    put_u32(&mut kv, "embedding_length", &["hidden_size", "n_embd"])?;
    put_u32(&mut kv, "feed_forward_length", &["intermediate_size", "n_inner"])?;
    put_u32(&mut kv, "attention.head_count", &["num_attention_heads", "n_head"])?;
    put_u32(&mut kv, "attention.head_count_kv", &["num_key_value_heads", "n_kv_heads"])?;
    if config.get("is_causal").and_then(Json::as_bool) == Some(false) {
        kv.push((format!("{a}.attention.causal"), Value::Bool(false)));
    }
    let rope = config.get("rope_parameters").or_else(|| config.get("rope_scaling")).filter(|r| r.is_object());
    if let Some(r) = rope {
        rope_scaling(a, r, config, path, &mut kv)?;
    }
    let theta = rope.and_then(|r| r.get("rope_theta")).or_else(|| config.get("rope_theta"));
    if let Some(t) = theta {
        kv.push((format!("{a}.rope.freq_base"), Value::F32(as_f32(t, "rope_theta", path)?)));
    }
    for (key, keys) in [
        ("attention.layer_norm_rms_epsilon", &["rms_norm_eps", "norm_eps"][..]),
        ("attention.layer_norm_epsilon", &["layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"][..]),
    ] {
        if let Some((v, k)) = find(config, keys) {
            kv.push((format!("{a}.{key}"), Value::F32(as_f32(v, &k, path)?)));
        }
    }
    if let Some(hd) = config.get("head_dim").filter(|v| !v.is_null()) {
        let hd = as_u32(hd, "head_dim", path)?;
        kv.push((format!("{a}.attention.key_length"), Value::U32(hd)));
        kv.push((format!("{a}.attention.value_length"), Value::U32(hd)));
    }
    match arch {
        Arch::Llama => {
            kv.push((format!("{a}.vocab_size"), Value::U32(count(config, &["vocab_size"], path)?)));
            let rope_dim = match config.get("head_dim").filter(|v| !v.is_null()) {
                Some(hd) => as_u32(hd, "head_dim", path)?,
                None => {
                    let heads = count(config, &["num_attention_heads"], path)?.max(1);
                    count(config, &["hidden_size"], path)? / heads
                }
            };
            kv.push((format!("{a}.rope.dimension_count"), Value::U32(rope_dim)));
        }
        Arch::Bert => kv.push((format!("{a}.attention.causal"), Value::Bool(false))),
        Arch::Qwen2 => {}
    }
    Ok(kv)
}

/// `rope_scaling`: linear and YaRN as the reference writes them; `llama3` writes no key
/// (its factors are the `rope_freqs` tensor, [`super::rope`]), for `llama` only.
fn rope_scaling(a: &str, r: &Json, config: &Json, path: &Path, kv: &mut Vec<(String, Value)>) -> Result<()> {
    let Some(ty) = r.get("rope_type").or_else(|| r.get("type")).and_then(Json::as_str) else { return Ok(()) };
    let factor = r.get("factor").map(|f| as_f32(f, "rope_scaling.factor", path)).transpose()?;
    match (ty, factor) {
        ("linear", Some(f)) => {
            kv.push((format!("{a}.rope.scaling.type"), Value::String("linear".into())));
            kv.push((format!("{a}.rope.scaling.factor"), Value::F32(f)));
        }
        ("yarn", Some(f)) => {
            kv.push((format!("{a}.rope.scaling.type"), Value::String("yarn".into())));
            kv.push((format!("{a}.rope.scaling.factor"), Value::F32(f)));
            let orig = r
                .get("original_max_position_embeddings")
                .or_else(|| config.get("original_max_position_embeddings"));
            let orig = orig.ok_or_else(|| {
                AdapterError::convert(path, "`rope_scaling` yarn without `original_max_position_embeddings`")
            })?;
            kv.push((
                format!("{a}.rope.scaling.original_context_length"),
                Value::U32(as_u32(orig, "original_max_position_embeddings", path)?),
            ));
        }
        ("default", _) => {}
        ("llama3", _) if a == "llama" => {}
        (other, _) => {
            return Err(AdapterError::convert(
                path,
                format!(
                    "`rope_scaling` type `{other}` is not supported by this converter yet (linear, yarn are)"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn get<'a>(kv: &'a [(String, Value)], k: &str) -> Option<&'a Value> {
        kv.iter().find(|(key, _)| key == k).map(|(_, v)| v)
    }

    #[test]
    fn llama_keys_and_types_follow_the_reference() {
        let c = json!({"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 2, "hidden_size": 256,
            "intermediate_size": 512, "num_attention_heads": 8, "num_key_value_heads": 2,
            "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "vocab_size": 300});
        let kv = hparams(Arch::Llama, &c, Path::new("config.json")).unwrap();
        let keys: Vec<&str> = kv.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "llama.block_count",
                "llama.context_length",
                "llama.embedding_length",
                "llama.feed_forward_length",
                "llama.attention.head_count",
                "llama.attention.head_count_kv",
                "llama.rope.freq_base",
                "llama.attention.layer_norm_rms_epsilon",
                "llama.vocab_size",
                "llama.rope.dimension_count",
            ]
        );
        assert_eq!(get(&kv, "llama.attention.head_count_kv"), Some(&Value::U32(2)));
        assert_eq!(get(&kv, "llama.rope.freq_base"), Some(&Value::F32(500000.0)));
        assert_eq!(get(&kv, "llama.attention.layer_norm_rms_epsilon"), Some(&Value::F32(1e-5)));
        assert_eq!(get(&kv, "llama.rope.dimension_count"), Some(&Value::U32(32)), "hidden / heads");
    }

    #[test]
    fn bert_is_not_causal_and_qwen2_has_no_rope_dimension() {
        let c = json!({"num_hidden_layers": 6, "hidden_size": 384, "intermediate_size": 1536,
            "num_attention_heads": 12, "max_position_embeddings": 512, "layer_norm_eps": 1e-12});
        let kv = hparams(Arch::Bert, &c, Path::new("config.json")).unwrap();
        assert_eq!(get(&kv, "bert.attention.causal"), Some(&Value::Bool(false)));
        assert_eq!(get(&kv, "bert.attention.layer_norm_epsilon"), Some(&Value::F32(1e-12)));
        assert_eq!(get(&kv, "bert.context_length"), Some(&Value::U32(512)));
        assert!(get(&kv, "bert.attention.head_count_kv").is_none());
        let kv = hparams(Arch::Qwen2, &c, Path::new("config.json")).unwrap();
        assert!(get(&kv, "qwen2.rope.dimension_count").is_none());
        assert!(get(&kv, "qwen2.vocab_size").is_none());
    }

    #[test]
    fn missing_or_bad_values_name_the_key() {
        let p = Path::new("m/config.json");
        let e = hparams(Arch::Llama, &json!({"hidden_size": 4}), p).unwrap_err().to_string();
        assert!(e.starts_with("m/config.json: `num_hidden_layers` / `n_layers` is missing"), "{e}");
        let e = hparams(Arch::Bert, &json!({"num_hidden_layers": 2, "hidden_size": "big"}), p).unwrap_err();
        assert!(e.to_string().contains("`hidden_size` = \"big\" is not a count"), "{e}");
        let c = json!({"num_hidden_layers": 2, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}});
        let e = hparams(Arch::Qwen2, &c, p).unwrap_err().to_string();
        assert!(e.contains("`llama3` is not supported"), "{e}");
        let mut c = c;
        c["vocab_size"] = json!(32);
        c["hidden_size"] = json!(64);
        c["num_attention_heads"] = json!(4);
        let kv = hparams(Arch::Llama, &c, p).unwrap();
        assert!(get(&kv, "llama.rope.scaling.type").is_none(), "llama3 scaling is the rope_freqs tensor");
        let c = json!({"num_hidden_layers": 2, "rope_scaling": {"type": "linear", "factor": 2.0}});
        let kv = hparams(Arch::Qwen2, &c, p).unwrap();
        assert_eq!(get(&kv, "qwen2.rope.scaling.factor"), Some(&Value::F32(2.0)));
    }
}
