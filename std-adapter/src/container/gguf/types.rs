//! The ggml type of each tensor: the target a configuration names, llama-quantize's
//! fallbacks for rows a block does not divide, llama.cpp's file type.

use arrowquant_core::Dtype;
use arrowquant_core::ggml::GgmlType;

use super::SourceData;
use crate::config::Config;

/// The target type of a configuration: a preset or width of 2 bits -> Q2_K, 8 bits ->
/// Q8_0, anything else (the `int4` default) -> Q4_K.
pub fn target_type(config: &Config) -> GgmlType {
    let preset = config.preset.as_deref().unwrap_or("");
    if preset.contains("int2") || (preset.is_empty() && config.bit_width == 2) {
        GgmlType::Q2_K
    } else if preset.contains("int8") || (preset.is_empty() && config.bit_width == 8) {
        GgmlType::Q8_0
    } else {
        GgmlType::Q4_K
    }
}

/// llama.cpp's `llama_ftype` for a file whose main type is `ty` (the K types as their
/// `_M` mixes, as llama-quantize names `Q4_K`); `None` for a type llama.cpp has no
/// file type for.
pub fn file_type(ty: GgmlType) -> Option<u32> {
    Some(match ty {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        GgmlType::Q4_0 => 2,
        GgmlType::Q4_1 => 3,
        GgmlType::Q8_0 => 7,
        GgmlType::Q5_0 => 8,
        GgmlType::Q5_1 => 9,
        GgmlType::Q2_K => 10,
        GgmlType::Q3_K => 12,
        GgmlType::Q4_K => 15,
        GgmlType::Q5_K => 17,
        GgmlType::Q6_K => 18,
        GgmlType::IQ4_NL => 25,
        GgmlType::IQ4_XS => 30,
        GgmlType::BF16 => 32,
        _ => return None,
    })
}

/// The ggml type holding floats of `d` as they are.
pub(super) fn float_type(d: Dtype) -> GgmlType {
    match d {
        Dtype::F16 => GgmlType::F16,
        Dtype::Bf16 => GgmlType::BF16,
        _ => GgmlType::F32,
    }
}

/// The output type of one tensor and, when it differs from the target, why.
pub fn choose_type(ne: &[u64], data: SourceData, target: GgmlType) -> (GgmlType, Option<String>) {
    if let SourceData::Ggml(ty) = data {
        return (ty, Some(format!("already {ty} in the input: copied as it is")));
    }
    if ne.len() == 1 {
        return (GgmlType::F32, Some("1-D tensor (norm, bias) stays F32".into()));
    }
    let ty = target.for_row_len(ne[0]);
    if ty == target {
        (ty, None)
    } else {
        let why = format!(
            "row length {} is not a multiple of {target}'s {}-weight block: {ty} (llama-quantize's fallback)",
            ne[0],
            target.block_len()
        );
        (ty, Some(why))
    }
}

/// Why llama-quantize never quantizes the tensor named `name` (`src/llama-quant.cpp`:
/// `position_embd` and `token_types` are added to the activations as they are), or
/// `None`. Such tensors are written F32, the float type llama.cpp reads everywhere.
pub(super) fn never_quantized(name: &str) -> Option<String> {
    matches!(name, "position_embd.weight" | "token_types.weight")
        .then(|| format!("{name}: llama-quantize never quantizes it; kept as F32"))
}

/// The type holding the most weights among `(type, weights)` pairs (what
/// `general.file_type` names when tensors differ); `None` for no pairs.
pub(super) fn most_weights(items: impl IntoIterator<Item = (GgmlType, u64)>) -> Option<GgmlType> {
    let mut by_type: Vec<(GgmlType, u64)> = Vec::new();
    for (ty, n) in items {
        match by_type.iter_mut().find(|(t, _)| *t == ty) {
            Some((_, w)) => *w += n,
            None => by_type.push((ty, n)),
        }
    }
    by_type.iter().max_by_key(|(_, w)| *w).map(|(t, _)| *t)
}
