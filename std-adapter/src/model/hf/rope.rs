//! Llama 3.1's RoPE frequency factors (`rope_scaling.rope_type` = `llama3`): llama.cpp
//! reads them from a `rope_freqs.weight` tensor (one F32 factor per rotary pair) that
//! the reference converter computes from the config (`LlamaModel.generate_extra_tensors`).
//! Long wavelengths are divided by `factor`, short ones kept, the band between
//! interpolated smoothly.

use std::path::Path;

use serde_json::Value as Json;

use crate::error::{AdapterError, Result};

/// The factors for a config whose `rope_scaling` is of type `llama3`, or `None` for
/// any other config.
///
/// # Errors
/// [`AdapterError::Convert`] naming `path` when a value is not a number or the head
/// dimension cannot be found.
pub fn llama3_factors(config: &Json, path: &Path) -> Result<Option<Vec<f32>>> {
    let Some(r) =
        config.get("rope_parameters").or_else(|| config.get("rope_scaling")).filter(|r| r.is_object())
    else {
        return Ok(None);
    };
    let ty = r.get("rope_type").or_else(|| r.get("type")).and_then(Json::as_str).unwrap_or("");
    if !ty.eq_ignore_ascii_case("llama3") {
        return Ok(None);
    }
    let num = |v: Option<&Json>, default: f64, key: &str| -> Result<f64> {
        match v {
            None | Some(Json::Null) => Ok(default),
            Some(x) => x
                .as_f64()
                .ok_or_else(|| AdapterError::convert(path, format!("`{key}` = {x} is not a number"))),
        }
    };
    let base = num(r.get("rope_theta").or_else(|| config.get("rope_theta")), 10000.0, "rope_theta")? as f32;
    let dim = match config.get("head_dim").and_then(Json::as_u64) {
        Some(d) => d,
        None => {
            let hidden = config.get("hidden_size").and_then(Json::as_u64);
            let heads = config.get("num_attention_heads").and_then(Json::as_u64).filter(|&h| h > 0);
            hidden.zip(heads).map(|(h, n)| h / n).ok_or_else(|| {
                AdapterError::convert(
                    path,
                    "llama3 RoPE scaling needs `head_dim` or `hidden_size` and `num_attention_heads`",
                )
            })?
        }
    };
    let factor = num(r.get("factor"), 8.0, "rope_scaling.factor")? as f32;
    let low = num(r.get("low_freq_factor"), 1.0, "rope_scaling.low_freq_factor")? as f32;
    let high = num(r.get("high_freq_factor"), 4.0, "rope_scaling.high_freq_factor")? as f32;
    let old =
        num(r.get("original_max_position_embeddings"), 8192.0, "original_max_position_embeddings")? as f32;
    let (low_wavelen, high_wavelen) = (old / low, old / high);
    // float32 throughout, as the reference computes it in torch.float32.
    let factors = (0..dim)
        .step_by(2)
        .map(|i| {
            let freq = 1.0 / base.powf(i as f32 / dim as f32);
            let wavelen = 2.0 * std::f32::consts::PI / freq;
            if wavelen < high_wavelen {
                1.0
            } else if wavelen > low_wavelen {
                factor
            } else {
                let smooth = (old / wavelen - low) / (high - low);
                1.0 / ((1.0 - smooth) / factor + smooth)
            }
        })
        .collect();
    Ok(Some(factors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn llama_3_2_factors_follow_the_reference() {
        // Llama-3.2-1B's config.
        let c = json!({"hidden_size": 2048, "num_attention_heads": 32, "head_dim": 64, "rope_theta": 500000.0,
            "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                "original_max_position_embeddings": 8192, "rope_type": "llama3"}});
        let f = llama3_factors(&c, Path::new("config.json")).unwrap().unwrap();
        assert_eq!(f.len(), 32);
        // Short wavelengths kept, long ones divided by the factor, monotonic between.
        assert_eq!(f[0], 1.0);
        assert_eq!(f[31], 32.0);
        assert!(f.windows(2).all(|w| w[0] <= w[1]), "{f:?}");
        let mid: Vec<&f32> = f.iter().filter(|&&x| x > 1.0 && x < 32.0).collect();
        assert!(!mid.is_empty(), "the smooth band is not empty: {f:?}");
        assert_eq!(llama3_factors(&json!({"rope_scaling": null}), Path::new("c")).unwrap(), None);
        assert_eq!(
            llama3_factors(&json!({"rope_scaling": {"type": "linear"}}), Path::new("c")).unwrap(),
            None
        );
    }
}
