//! Writes a synthetic 7B-shaped fp16 model, streaming (a few MiB of memory whatever
//! the size), for the memory and throughput measurements in `docs/MEMORY.md` and
//! `docs/GGUF.md`: safetensors, or GGUF when OUT ends in `.gguf`.
//!
//! ```text
//! cargo run --release -p arrowquant-std --example gen_synthetic -- OUT.safetensors [LAYERS] [SEED]
//! cargo run --release -p arrowquant-std --example gen_synthetic -- OUT.gguf [LAYERS] [SEED]
//! cargo run --release -p arrowquant-std --example gen_synthetic -- OUT_DIR/ [LAYERS] [SEED]
//! ```
//! An OUT that ends in `/` is a Hugging Face folder: `OUT_DIR/model.safetensors` holds
//! the same tensors plus the two a runnable LLaMA also has, `model.norm.weight` (4096)
//! and `lm_head.weight` (32000x4096, +262 MB); `tests/python/tiny_models.py --hf7b
//! OUT_DIR --layers LAYERS` writes its `config.json` and `tokenizer.json`
//! (`benches/scripts/gen_synthetic_7b.sh` does both). The two other forms keep the
//! tensor list the earlier measurements used.
//! The GGUF holds the same tensors under llama.cpp's names (`token_embd.weight`,
//! `blk.N.attn_q.weight`, ...) in ggml's dimension order, F16, with the `llama.*`
//! hyper-parameters llama-quantize reads (no vocabulary: it is for quantizers, not for
//! inference).
//! Shapes follow a LLaMA-7B: an embedding of 32000x4096, then per layer four
//! 4096x4096 attention matrices (q, k, v, o), three MLP matrices of 11008x4096
//! elements (gate and up 11008x4096, down 4096x11008) and two 4096 norms.
//! 32 layers (the default) is 13.2 GB; 2 layers is 1.07 GB.
//!
//! Values are seeded and heavy-tailed: Laplace with scale 0.02, and one value in a
//! thousand multiplied by 10 (outliers, as in real weights). Norms are 1 +- noise.

use std::fs::File;
use std::io::{BufWriter, Write};

use arrowquant_std::core::ggml::GgmlType;
use arrowquant_std::core::gguf::{GgufWriter, Metadata, Value};
use half::f16;

/// xorshift64*: fast, seedable, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 + 1.0) * (1.0 / (1u64 << 24) as f32)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().ok_or("usage: gen_synthetic OUT.safetensors [LAYERS] [SEED]")?;
    let layers: usize = args.next().map_or(Ok(32), |s| s.parse())?;
    let seed: u64 = args.next().map_or(Ok(7), |s| s.parse())?;
    let (d, ff, vocab) = (4096u64, 11008u64, 32000u64);
    let mut tensors: Vec<(String, Vec<u64>)> = vec![("model.embed_tokens.weight".into(), vec![vocab, d])];
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        tensors.push((format!("{p}.input_layernorm.weight"), vec![d]));
        for m in ["q", "k", "v", "o"] {
            tensors.push((format!("{p}.self_attn.{m}_proj.weight"), vec![d, d]));
        }
        tensors.push((format!("{p}.post_attention_layernorm.weight"), vec![d]));
        tensors.push((format!("{p}.mlp.gate_proj.weight"), vec![ff, d]));
        tensors.push((format!("{p}.mlp.up_proj.weight"), vec![ff, d]));
        tensors.push((format!("{p}.mlp.down_proj.weight"), vec![d, ff]));
    }
    let folder = out.ends_with('/');
    let out = if folder {
        std::fs::create_dir_all(&out)?;
        tensors.push(("model.norm.weight".into(), vec![d]));
        tensors.push(("lm_head.weight".into(), vec![vocab, d]));
        format!("{out}model.safetensors")
    } else {
        out
    };
    let mut w = if out.ends_with(".gguf") {
        gguf_header(&out, &tensors, layers as u32)?
    } else {
        safetensors_header(&out, &tensors)?
    };
    write_data(&mut w, &tensors, seed, out.ends_with(".gguf"))?;
    w.flush()?;
    let bytes: u64 = tensors.iter().map(|(_, s)| s.iter().product::<u64>() * 2).sum();
    eprintln!("wrote {out}: {} tensors, {bytes} bytes of data", tensors.len());
    Ok(())
}

type Writer = BufWriter<File>;

/// Opens `out` and writes the safetensors header of `tensors` (F16, packed).
fn safetensors_header(
    out: &str,
    tensors: &[(String, Vec<u64>)],
) -> Result<Writer, Box<dyn std::error::Error>> {
    let mut header = serde_json::Map::new();
    header.insert(
        "__metadata__".into(),
        serde_json::json!({"format": "pt", "generator": "arrowquant gen_synthetic"}),
    );
    let mut off = 0u64;
    for (name, shape) in tensors {
        let n: u64 = shape.iter().product::<u64>() * 2;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F16", "shape": shape, "data_offsets": [off, off + n]}),
        );
        off += n;
    }
    let mut text = serde_json::to_string(&header)?;
    while (8 + text.len()) % 8 != 0 {
        text.push(' ');
    }
    let mut w = BufWriter::with_capacity(8 << 20, File::create(out)?);
    w.write_all(&(text.len() as u64).to_le_bytes())?;
    w.write_all(text.as_bytes())?;
    Ok(w)
}

/// llama.cpp's name of one of our tensors.
fn gguf_name(name: &str) -> String {
    if name == "model.embed_tokens.weight" {
        return "token_embd.weight".into();
    }
    let rest = name.strip_prefix("model.layers.").unwrap_or(name);
    let (l, t) = rest.split_once('.').unwrap_or(("0", rest));
    let t = match t {
        "input_layernorm.weight" => "attn_norm.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        other => other,
    };
    format!("blk.{l}.{t}")
}

/// Opens `out` and writes a GGUF header for `tensors` (F16, ggml's dimension order).
fn gguf_header(
    out: &str,
    tensors: &[(String, Vec<u64>)],
    layers: u32,
) -> Result<Writer, Box<dyn std::error::Error>> {
    let mut m = Metadata::new();
    m.push("general.architecture", Value::String("llama".into()));
    m.push("general.name", Value::String("synthetic-7b".into()));
    m.push("general.file_type", Value::U32(1));
    for (k, v) in [
        ("llama.block_count", layers),
        ("llama.context_length", 4096),
        ("llama.embedding_length", 4096),
        ("llama.feed_forward_length", 11008),
        ("llama.attention.head_count", 32),
        ("llama.attention.head_count_kv", 32),
        ("llama.rope.dimension_count", 128),
        ("llama.vocab_size", 32000),
    ] {
        m.push(k, Value::U32(v));
    }
    m.push("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5));
    let mut g = GgufWriter::with_metadata(m);
    for (name, shape) in tensors {
        let ne: Vec<u64> = shape.iter().rev().copied().collect();
        g.push_tensor(gguf_name(name).as_str(), &ne, GgmlType::F16).map_err(|e| e.to_string())?;
    }
    let layout = g.finish().map_err(|e| e.to_string())?;
    let mut w = BufWriter::with_capacity(8 << 20, File::create(out)?);
    w.write_all(layout.header_bytes())?;
    Ok(w)
}

/// The seeded values of every tensor, in order; with `align32`, each tensor's data
/// padded to 32 bytes (GGUF's default alignment).
fn write_data(
    w: &mut Writer,
    tensors: &[(String, Vec<u64>)],
    seed: u64,
    align32: bool,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 22);
    for (i, (name, shape)) in tensors.iter().enumerate() {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(i as u64 + 1) | 1);
        let n: u64 = shape.iter().product();
        let norm = shape.len() == 1;
        let mut left = n;
        while left > 0 {
            let k = left.min(1 << 20);
            buf.clear();
            for _ in 0..k {
                let u = rng.unit();
                let r = rng.next_u64();
                let sign = if r & 1 == 0 { 1.0 } else { -1.0 };
                let mut x = -0.02 * u.ln() * sign;
                if (r >> 1).is_multiple_of(1000) {
                    x *= 10.0;
                }
                if norm {
                    x += 1.0;
                }
                buf.extend_from_slice(&f16::from_f32(x).to_le_bytes());
            }
            w.write_all(&buf)?;
            left -= k;
        }
        if align32 {
            let pad = (32 - (n * 2) % 32) % 32;
            w.write_all(&[0u8; 32][..pad as usize])?;
        }
        if i % 16 == 0 {
            eprintln!("{}/{} {name}", i + 1, tensors.len());
        }
    }
    Ok(())
}
