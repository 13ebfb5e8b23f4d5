//! Hugging Face tensor names to llama.cpp's (`gguf-py/gguf/tensor_mapping.py`,
//! `constants.py` `TENSOR_NAMES`), and the tensors the reference converter leaves out.

use super::arch::Arch;

/// What becomes of one input tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mapped {
    /// Written under this llama.cpp name.
    To(String),
    /// Left out, with the reason (as `convert_hf_to_gguf.py` leaves it out).
    Skip(&'static str),
    /// No llama.cpp name: the converter stops on it too ("Can not map tensor").
    Unknown,
}

/// The llama.cpp name of `name` in a model of architecture `arch`.
pub fn map(arch: Arch, name: &str) -> Mapped {
    match arch {
        Arch::Bert => bert(name),
        Arch::Llama | Arch::Qwen2 => llama(name),
    }
}

/// `weight`/`bias` suffix split off, or None.
fn split_suffix(name: &str) -> Option<(&str, &'static str)> {
    if let Some(base) = name.strip_suffix(".weight") {
        Some((base, "weight"))
    } else {
        name.strip_suffix(".bias").map(|base| (base, "bias"))
    }
}

/// `layers.N.rest` -> (N, rest).
fn layer<'a>(name: &'a str, prefix: &str) -> Option<(u32, &'a str)> {
    let rest = name.strip_prefix(prefix)?;
    let (n, rest) = rest.split_once('.')?;
    Some((n.parse().ok()?, rest))
}

fn llama(name: &str) -> Mapped {
    if name.ends_with(".rotary_emb.inv_freq") {
        return Mapped::Skip("rotary inverse frequencies (llama.cpp computes them)");
    }
    let Some((base, suffix)) = split_suffix(name) else { return Mapped::Unknown };
    let global = match base {
        "model.embed_tokens" => Some("token_embd"),
        "model.norm" => Some("output_norm"),
        "lm_head" => Some("output"),
        _ => None,
    };
    if let Some(g) = global {
        return Mapped::To(format!("{g}.{suffix}"));
    }
    let Some((n, rest)) = layer(base, "model.layers.") else { return Mapped::Unknown };
    let to = match rest {
        "input_layernorm" => "attn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "post_attention_layernorm" => "ffn_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return Mapped::Unknown,
    };
    Mapped::To(format!("blk.{n}.{to}.{suffix}"))
}

fn bert(name: &str) -> Mapped {
    // BertModel checkpoints saved from a task model carry a `bert.` prefix; old ones
    // name LayerNorm parameters gamma/beta (the reference renames both the same way).
    let name = name.strip_prefix("bert.").unwrap_or(name);
    let renamed;
    let name = if let Some(b) = name.strip_suffix(".gamma") {
        renamed = format!("{b}.weight");
        renamed.as_str()
    } else if let Some(b) = name.strip_suffix(".beta") {
        renamed = format!("{b}.bias");
        renamed.as_str()
    } else {
        name
    };
    if name == "embeddings.position_ids" {
        return Mapped::Skip("position ids buffer (llama.cpp counts positions itself)");
    }
    if name.starts_with("pooler.") {
        return Mapped::Skip("pooler (llama.cpp pools by pooling_type; the reference leaves it out)");
    }
    if name.starts_with("cls.predictions") || name.starts_with("cls.seq_relationship") {
        return Mapped::Skip("pre-training head (not used for embeddings)");
    }
    let Some((base, suffix)) = split_suffix(name) else { return Mapped::Unknown };
    let global = match base {
        "embeddings.word_embeddings" => Some("token_embd"),
        "embeddings.token_type_embeddings" => Some("token_types"),
        "embeddings.position_embeddings" => Some("position_embd"),
        "embeddings.LayerNorm" => Some("token_embd_norm"),
        _ => None,
    };
    if let Some(g) = global {
        return Mapped::To(format!("{g}.{suffix}"));
    }
    let Some((n, rest)) = layer(base, "encoder.layer.") else { return Mapped::Unknown };
    let to = match rest {
        "attention.self.query" => "attn_q",
        "attention.self.key" => "attn_k",
        "attention.self.value" => "attn_v",
        "attention.output.dense" => "attn_output",
        "attention.output.LayerNorm" => "attn_output_norm",
        "intermediate.dense" => "ffn_up",
        "output.dense" => "ffn_down",
        "output.LayerNorm" => "layer_output_norm",
        _ => return Mapped::Unknown,
    };
    Mapped::To(format!("blk.{n}.{to}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(s: &str) -> Mapped {
        Mapped::To(s.into())
    }

    #[test]
    fn llama_and_qwen2_names_match_gguf_py() {
        // Pairs printed by gguf-py's get_tensor_name_map(MODEL_ARCH.LLAMA / QWEN2).
        let pairs = [
            ("model.embed_tokens.weight", "token_embd.weight"),
            ("model.norm.weight", "output_norm.weight"),
            ("lm_head.weight", "output.weight"),
            ("model.layers.1.input_layernorm.weight", "blk.1.attn_norm.weight"),
            ("model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight"),
            ("model.layers.1.self_attn.q_proj.bias", "blk.1.attn_q.bias"),
            ("model.layers.12.self_attn.k_proj.weight", "blk.12.attn_k.weight"),
            ("model.layers.1.self_attn.v_proj.bias", "blk.1.attn_v.bias"),
            ("model.layers.1.self_attn.o_proj.weight", "blk.1.attn_output.weight"),
            ("model.layers.1.post_attention_layernorm.weight", "blk.1.ffn_norm.weight"),
            ("model.layers.1.mlp.gate_proj.weight", "blk.1.ffn_gate.weight"),
            ("model.layers.1.mlp.up_proj.weight", "blk.1.ffn_up.weight"),
            ("model.layers.1.mlp.down_proj.weight", "blk.1.ffn_down.weight"),
        ];
        for arch in [Arch::Llama, Arch::Qwen2] {
            for (hf, want) in pairs {
                assert_eq!(map(arch, hf), to(want), "{arch:?} {hf}");
            }
        }
        assert!(matches!(map(Arch::Llama, "model.layers.0.self_attn.rotary_emb.inv_freq"), Mapped::Skip(_)));
        assert_eq!(map(Arch::Llama, "model.layers.x.mlp.up_proj.weight"), Mapped::Unknown);
        assert_eq!(map(Arch::Qwen2, "model.vision.proj.weight"), Mapped::Unknown);
    }

    #[test]
    fn bert_names_match_gguf_py_and_skips_match_the_converter() {
        let pairs = [
            ("embeddings.word_embeddings.weight", "token_embd.weight"),
            ("embeddings.token_type_embeddings.weight", "token_types.weight"),
            ("embeddings.position_embeddings.weight", "position_embd.weight"),
            ("embeddings.LayerNorm.weight", "token_embd_norm.weight"),
            ("embeddings.LayerNorm.bias", "token_embd_norm.bias"),
            ("encoder.layer.0.attention.self.query.weight", "blk.0.attn_q.weight"),
            ("encoder.layer.0.attention.self.key.bias", "blk.0.attn_k.bias"),
            ("encoder.layer.0.attention.self.value.weight", "blk.0.attn_v.weight"),
            ("encoder.layer.5.attention.output.dense.weight", "blk.5.attn_output.weight"),
            ("encoder.layer.0.attention.output.LayerNorm.bias", "blk.0.attn_output_norm.bias"),
            ("encoder.layer.0.intermediate.dense.weight", "blk.0.ffn_up.weight"),
            ("encoder.layer.0.output.dense.bias", "blk.0.ffn_down.bias"),
            ("encoder.layer.0.output.LayerNorm.weight", "blk.0.layer_output_norm.weight"),
            ("bert.encoder.layer.0.output.LayerNorm.gamma", "blk.0.layer_output_norm.weight"),
            ("bert.embeddings.LayerNorm.beta", "token_embd_norm.bias"),
        ];
        for (hf, want) in pairs {
            assert_eq!(map(Arch::Bert, hf), to(want), "{hf}");
        }
        for skipped in
            ["embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias", "cls.predictions.bias"]
        {
            assert!(matches!(map(Arch::Bert, skipped), Mapped::Skip(_)), "{skipped}");
        }
        assert_eq!(map(Arch::Bert, "encoder.layer.0.crossattention.weight"), Mapped::Unknown);
    }
}
