//! `quantize --format gguf` on Hugging Face folders (issue 18): a tiny generated
//! LLaMA-shaped folder (config.json, a byte-level BPE tokenizer.json with Llama 3's
//! split regex, tokenizer_config.json, safetensors) and a tiny BERT folder, converted
//! by the binary and read back with core's GGUF parser: keys, values, names, types,
//! shapes, the Q/K row permutation; the errors for folders we cannot convert; and
//! (ignored, needs the model) all-MiniLM-L6-v2's real folder.

use std::path::Path;

use arrowquant_core::ggml::GgmlType;
use arrowquant_core::gguf::{Array, GgufHeader, Value, keys};
use serde_json::json;

use super::{Rng, f32_tensor, listing, run, s, safetensors_bytes, tempdir};

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// (hidden, heads, kv heads, ffn, layers, config vocab_size)
const LLAMA: (usize, usize, usize, usize, usize, usize) = (256, 4, 2, 512, 2, 300);

/// Writes a tiny LLaMA-shaped folder into `dir`; returns the input tensors.
fn write_llama(dir: &Path) -> Vec<(String, &'static str, Vec<usize>, Vec<u8>)> {
    let (h, nh, nkv, ff, layers, vocab) = LLAMA;
    let config = json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h,
        "intermediate_size": ff, "num_attention_heads": nh, "num_key_value_heads": nkv,
        "num_hidden_layers": layers, "max_position_embeddings": 1024, "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0, "vocab_size": vocab, "bos_token_id": 280, "eos_token_id": 281,
        "rope_scaling": null, "tie_word_embeddings": false
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    // A byte-level BPE: 256 byte tokens (ids = byte values, as GPT-2's alphabet maps
    // them, here simply `b{i}`), a few merges, two special tokens; ids 282.. padded.
    let mut vocab_map = serde_json::Map::new();
    for i in 0..256 {
        vocab_map.insert(format!("b{i}"), json!(i));
    }
    for (i, t) in ["ab", "abc", "Ġthe"].iter().enumerate() {
        vocab_map.insert((*t).to_string(), json!(256 + i));
    }
    let tok = json!({
        "version": "1.0",
        "added_tokens": [
            {"id": 280, "content": "<|begin_of_text|>", "special": true, "normalized": false},
            {"id": 281, "content": "<|end_of_text|>", "special": true, "normalized": false}
        ],
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
        ]},
        "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [], "special_tokens": {}}
        ]},
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": vocab_map, "merges": [["a", "b"], ["ab", "c"], ["Ġ", "the"]]}
    });
    std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
    let tc = json!({"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
        "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"});
    std::fs::write(dir.join("tokenizer_config.json"), tc.to_string()).unwrap();

    let mut rng = Rng(18);
    let hd = h / nh;
    let mut t = vec![f32_tensor("model.embed_tokens.weight", &[vocab, h], &mut rng)];
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        t.push(f32_tensor(&format!("{p}.input_layernorm.weight"), &[h], &mut rng));
        t.push(f32_tensor(&format!("{p}.self_attn.q_proj.weight"), &[nh * hd, h], &mut rng));
        t.push(f32_tensor(&format!("{p}.self_attn.k_proj.weight"), &[nkv * hd, h], &mut rng));
        t.push(f32_tensor(&format!("{p}.self_attn.v_proj.weight"), &[nkv * hd, h], &mut rng));
        t.push(f32_tensor(&format!("{p}.self_attn.o_proj.weight"), &[h, nh * hd], &mut rng));
        t.push(f32_tensor(&format!("{p}.self_attn.rotary_emb.inv_freq"), &[hd / 2], &mut rng));
        t.push(f32_tensor(&format!("{p}.post_attention_layernorm.weight"), &[h], &mut rng));
        t.push(f32_tensor(&format!("{p}.mlp.gate_proj.weight"), &[ff, h], &mut rng));
        t.push(f32_tensor(&format!("{p}.mlp.up_proj.weight"), &[ff, h], &mut rng));
        t.push(f32_tensor(&format!("{p}.mlp.down_proj.weight"), &[h, ff], &mut rng));
    }
    t.push(f32_tensor("model.norm.weight", &[h], &mut rng));
    t.push(f32_tensor("lm_head.weight", &[vocab, h], &mut rng));
    std::fs::write(dir.join("model.safetensors"), safetensors_bytes(&t)).unwrap();
    t
}

fn header_of(path: &Path) -> (Vec<u8>, GgufHeader) {
    let bytes = std::fs::read(path).unwrap();
    let h = GgufHeader::parse(&bytes).unwrap();
    (bytes, h)
}

fn u32_of(h: &GgufHeader, k: &str) -> u32 {
    match h.get(k) {
        Some(Value::U32(v)) => *v,
        other => panic!("{k}: {other:?}"),
    }
}

fn strings<'a>(h: &'a GgufHeader, k: &str) -> &'a [String] {
    match h.get(k) {
        Some(Value::Array(Array::String(v))) => v,
        other => panic!("{k}: {other:?}"),
    }
}

fn f32_rows(b: &[u8], cols: usize) -> Vec<Vec<f32>> {
    let x: Vec<f32> = b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    x.chunks(cols).map(<[f32]>::to_vec).collect()
}

#[test]
fn a_llama_folder_becomes_a_complete_llama_gguf() {
    let dir = tempdir();
    let model = dir.path().join("tiny-llama");
    std::fs::create_dir(&model).unwrap();
    write_llama(&model);
    let out = dir.path().join("q.gguf");
    let r = run(&["quantize", s(&model), "--format", "gguf", "-o", s(&out), "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("LlamaForCausalLM -> llama.cpp `llama`"), "{r:?}");
    let j = r.json();
    assert!(
        j["skipped_by_format"].as_array().unwrap().iter().any(|v| v.as_str().unwrap().contains("inv_freq"))
    );

    let (_, h) = header_of(&out);
    let (hidden, nh, nkv, ff, layers, vocab) = LLAMA;
    assert_eq!(h.metadata().get_str(keys::GENERAL_ARCHITECTURE).unwrap(), "llama");
    assert_eq!(h.metadata().get_str(keys::GENERAL_NAME).unwrap(), "tiny-llama");
    for (k, v) in [
        ("llama.block_count", layers),
        ("llama.context_length", 1024),
        ("llama.embedding_length", hidden),
        ("llama.feed_forward_length", ff),
        ("llama.attention.head_count", nh),
        ("llama.attention.head_count_kv", nkv),
        ("llama.vocab_size", vocab),
        ("llama.rope.dimension_count", hidden / nh),
        ("tokenizer.ggml.bos_token_id", 280),
        ("tokenizer.ggml.eos_token_id", 281),
        ("general.file_type", 15),
    ] {
        assert_eq!(u32_of(&h, k) as usize, v, "{k}");
    }
    assert_eq!(h.get("llama.rope.freq_base"), Some(&Value::F32(500000.0)));
    assert_eq!(h.get("llama.attention.layer_norm_rms_epsilon"), Some(&Value::F32(1e-5)));
    assert_eq!(h.metadata().get_str("tokenizer.ggml.model").unwrap(), "gpt2");
    assert_eq!(h.metadata().get_str("tokenizer.ggml.pre").unwrap(), "llama-bpe");
    assert_eq!(h.get("tokenizer.ggml.add_bos_token"), Some(&Value::Bool(true)));
    assert_eq!(h.get("tokenizer.ggml.add_eos_token"), Some(&Value::Bool(false)));
    assert!(h.metadata().get_str("tokenizer.chat_template").unwrap().contains("m.content"));
    let tokens = strings(&h, "tokenizer.ggml.tokens");
    assert_eq!(tokens.len(), vocab, "padded to config's vocab_size");
    assert_eq!(
        (tokens[0].as_str(), tokens[257].as_str(), tokens[280].as_str()),
        ("b0", "abc", "<|begin_of_text|>")
    );
    assert_eq!(tokens[299], "[PAD299]");
    let Some(Value::Array(Array::I32(types))) = h.get("tokenizer.ggml.token_type") else {
        panic!("token_type")
    };
    assert_eq!((types[0], types[280], types[281], types[290]), (1, 3, 3, 5));
    assert_eq!(strings(&h, "tokenizer.ggml.merges"), ["a b", "ab c", "Ġ the"]);

    let mut names: Vec<&str> = h.tensors().iter().map(|t| t.name()).collect();
    names.sort_unstable();
    let mut want = vec!["token_embd.weight".to_string(), "output_norm.weight".into(), "output.weight".into()];
    for l in 0..layers {
        for t in [
            "attn_norm",
            "attn_q",
            "attn_k",
            "attn_v",
            "attn_output",
            "ffn_norm",
            "ffn_gate",
            "ffn_up",
            "ffn_down",
        ] {
            want.push(format!("blk.{l}.{t}.weight"));
        }
    }
    want.sort_unstable();
    assert_eq!(names, want);
    let t = |n: &str| h.tensor(n).unwrap();
    assert_eq!(
        (t("blk.0.attn_q.weight").ggml_type(), t("blk.0.attn_q.weight").dims()),
        (GgmlType::Q4_K, &[256u64, 256][..])
    );
    assert_eq!(t("blk.1.attn_k.weight").dims(), [256, 128]);
    assert_eq!(t("blk.0.ffn_down.weight").dims(), [512, 256]);
    assert_eq!(t("blk.0.ffn_down.weight").ggml_type(), GgmlType::Q4_K);
    assert_eq!(
        (t("blk.0.attn_norm.weight").ggml_type(), t("output_norm.weight").dims()),
        (GgmlType::F32, &[256u64][..])
    );
    assert_eq!(t("token_embd.weight").dims(), [256, 300]);
}

#[test]
fn llama_q_and_k_rows_are_permuted_as_llama_cpp_expects() {
    let dir = tempdir();
    let model = dir.path().join("m");
    std::fs::create_dir(&model).unwrap();
    let inputs = write_llama(&model);
    let out = dir.path().join("f32.gguf");
    let r = run(&["quantize", s(&model), "--format", "gguf", "--gguf-type", "F32", "-o", s(&out), "-q"]);
    assert_eq!(r.code, 0, "{r:?}");
    let (bytes, h) = header_of(&out);
    let (hidden, nh, nkv, ..) = LLAMA;
    let hd = hidden / nh;
    let input = |n: &str| f32_rows(&inputs.iter().find(|t| t.0 == n).unwrap().3, hidden);
    let output = |n: &str| {
        let r = h.data_range(h.tensor(n).unwrap());
        f32_rows(&bytes[r.start as usize..r.end as usize], hidden)
    };
    // The reference: w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2).reshape(w.shape),
    // spelled out: output row (head, i, j) is input row (head, j, i).
    let permuted = |w: Vec<Vec<f32>>, heads: usize| {
        let mut out = Vec::new();
        for head in 0..heads {
            for i in 0..hd / 2 {
                for j in 0..2 {
                    out.push(w[head * hd + j * (hd / 2) + i].clone());
                }
            }
        }
        out
    };
    for l in 0..2 {
        let q = input(&format!("model.layers.{l}.self_attn.q_proj.weight"));
        assert_eq!(output(&format!("blk.{l}.attn_q.weight")), permuted(q.clone(), nh), "layer {l} q");
        assert_ne!(output(&format!("blk.{l}.attn_q.weight")), q, "the permutation moved rows");
        let k = input(&format!("model.layers.{l}.self_attn.k_proj.weight"));
        assert_eq!(
            output(&format!("blk.{l}.attn_k.weight")),
            permuted(k, nkv),
            "layer {l} k uses the kv heads"
        );
        let v = input(&format!("model.layers.{l}.self_attn.v_proj.weight"));
        assert_eq!(output(&format!("blk.{l}.attn_v.weight")), v, "v keeps its order");
    }
}

#[test]
fn folders_we_cannot_convert_exit_2_with_one_line_naming_the_file() {
    let dir = tempdir();
    let model = dir.path().join("m");
    std::fs::create_dir(&model).unwrap();
    write_llama(&model);
    let out = dir.path().join("o.gguf");
    let quantize = || run(&["quantize", s(&model), "--format", "gguf", "-o", s(&out)]);
    let config = model.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("LlamaForCausalLM", "GPTNeoXForCausalLM")).unwrap();
    let r = quantize();
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(s(&config)) && r.stderr.contains("`GPTNeoXForCausalLM` is not supported"),
        "{r:?}"
    );
    assert!(r.stderr.contains("Qwen2ForCausalLM"), "lists the supported ones: {r:?}");
    assert_eq!(r.stderr.trim_end().lines().count(), 1, "{r:?}");
    std::fs::write(&config, &text).unwrap();
    std::fs::remove_file(model.join("tokenizer.json")).unwrap();
    let r = quantize();
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("tokenizer.json: missing"), "{r:?}");
    assert_eq!(r.stderr.trim_end().lines().count(), 1, "{r:?}");
    assert_eq!(listing(dir.path()), ["m"], "no output left behind");
    // --pooling is for embedders, and GGUF-only.
    let r = run(&["quantize", s(&model), "-o", s(&dir.path().join("o.parquet")), "--pooling", "mean"]);
    assert!(r.code == 2 && r.stderr.contains("--pooling applies to --format gguf"), "{r:?}");
}

/// A tiny BertModel folder: 2 layers of 128, a WordPiece vocabulary.
fn write_bert(dir: &Path) {
    let config = json!({"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 128,
        "intermediate_size": 256, "num_attention_heads": 2, "num_hidden_layers": 1,
        "max_position_embeddings": 64, "layer_norm_eps": 1e-12, "type_vocab_size": 2, "vocab_size": 8,
        "pad_token_id": 0});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    let added: Vec<_> =
        special.iter().enumerate().map(|(i, c)| json!({"id": i, "content": c, "special": true})).collect();
    let tok = json!({"added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]"}}, {"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "[SEP]"}}]},
        "model": {"type": "WordPiece", "unk_token": "[UNK]",
            "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "hello": 5, "##lo": 6, "world": 7}}});
    std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
    let tc = json!({"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"});
    std::fs::write(dir.join("tokenizer_config.json"), tc.to_string()).unwrap();
    let mut rng = Rng(5);
    let mut t = vec![
        f32_tensor("embeddings.word_embeddings.weight", &[8, 128], &mut rng),
        f32_tensor("embeddings.position_embeddings.weight", &[64, 128], &mut rng),
        f32_tensor("embeddings.token_type_embeddings.weight", &[2, 128], &mut rng),
        f32_tensor("embeddings.LayerNorm.weight", &[128], &mut rng),
        f32_tensor("embeddings.LayerNorm.bias", &[128], &mut rng),
        f32_tensor("pooler.dense.weight", &[128, 128], &mut rng),
    ];
    let p = "encoder.layer.0";
    for (n, shape) in [
        ("attention.self.query", [128, 128]),
        ("attention.self.key", [128, 128]),
        ("attention.self.value", [128, 128]),
        ("attention.output.dense", [128, 128]),
        ("intermediate.dense", [256, 128]),
        ("output.dense", [128, 256]),
    ] {
        t.push(f32_tensor(&format!("{p}.{n}.weight"), &shape, &mut rng));
        t.push(f32_tensor(&format!("{p}.{n}.bias"), &shape[..1], &mut rng));
    }
    for n in ["attention.output.LayerNorm", "output.LayerNorm"] {
        t.push(f32_tensor(&format!("{p}.{n}.weight"), &[128], &mut rng));
        t.push(f32_tensor(&format!("{p}.{n}.bias"), &[128], &mut rng));
    }
    std::fs::write(dir.join("model.safetensors"), safetensors_bytes(&t)).unwrap();
}

#[test]
fn a_bert_folder_becomes_a_bert_gguf_with_the_pooling_asked_for() {
    let dir = tempdir();
    let model = dir.path().join("b");
    std::fs::create_dir(&model).unwrap();
    write_bert(&model);
    let out = dir.path().join("b.gguf");
    let r = run(&["quantize", s(&model), "--format", "gguf", "-o", s(&out), "--gguf-type", "Q8_0"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("pooling not set"), "{r:?}");
    let (_, h) = header_of(&out);
    assert!(h.get("bert.pooling_type").is_none(), "no sentence-transformers config, no --pooling");
    let r = run(&[
        "quantize",
        s(&model),
        "--format",
        "gguf",
        "-o",
        s(&out),
        "--gguf-type",
        "Q8_0",
        "--pooling",
        "cls",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("pooling cls (from --pooling)"), "{r:?}");
    let (_, h) = header_of(&out);
    assert_eq!(h.metadata().get_str(keys::GENERAL_ARCHITECTURE).unwrap(), "bert");
    assert_eq!(h.get("bert.pooling_type"), Some(&Value::U32(2)));
    assert_eq!(h.get("bert.attention.causal"), Some(&Value::Bool(false)));
    assert_eq!(h.get("bert.attention.layer_norm_epsilon"), Some(&Value::F32(1e-12)));
    assert_eq!(h.get("tokenizer.ggml.token_type_count"), Some(&Value::U32(2)));
    assert_eq!(h.metadata().get_str("tokenizer.ggml.model").unwrap(), "bert");
    assert_eq!(
        strings(&h, "tokenizer.ggml.tokens")[2..],
        ["[CLS]", "[SEP]", "[MASK]", "▁hello", "lo", "▁world"]
    );
    for (k, v) in [("bos", 2), ("eos", 3), ("unknown", 1), ("seperator", 3), ("padding", 0), ("mask", 4)] {
        assert_eq!(u32_of(&h, &format!("tokenizer.ggml.{k}_token_id")), v, "{k}");
    }
    assert_eq!(h.get("tokenizer.ggml.add_bos_token"), Some(&Value::Bool(true)));
    assert_eq!(h.get("tokenizer.ggml.normalizer.lowercase"), Some(&Value::Bool(true)));
    let t = |n: &str| h.tensor(n).unwrap_or_else(|| panic!("{n}"));
    assert_eq!(t("token_types.weight").ggml_type(), GgmlType::F32, "llama-quantize never quantizes it");
    assert_eq!(t("position_embd.weight").ggml_type(), GgmlType::F32);
    assert_eq!(t("blk.0.attn_q.weight").ggml_type(), GgmlType::Q8_0);
    for n in [
        "token_embd_norm.bias",
        "blk.0.attn_output_norm.weight",
        "blk.0.layer_output_norm.bias",
        "blk.0.ffn_up.bias",
    ] {
        assert_eq!(t(n).ggml_type(), GgmlType::F32, "{n}");
    }
    assert!(h.tensor("pooler.dense.weight").is_none());
    assert_eq!(h.tensors().len(), 5 + 16);
}

#[test]
#[ignore = "needs all-MiniLM-L6-v2 in ARROWQUANT_MINILM; CI's model step runs it"]
fn minilm_folder_becomes_a_bert_gguf_with_mean_pooling() {
    let model = arrowquant_tests::minilm();
    let dir = tempdir();
    let out = dir.path().join("minilm.gguf");
    let r = run(&["quantize", s(&model), "--format", "gguf", "-o", s(&out), "--gguf-type", "F16"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("pooling mean (from 1_Pooling/config.json)"), "{r:?}");
    let (_, h) = header_of(&out);
    assert_eq!(h.get("bert.pooling_type"), Some(&Value::U32(1)));
    assert_eq!(u32_of(&h, "bert.block_count"), 6);
    assert_eq!(u32_of(&h, "bert.embedding_length"), 384);
    assert_eq!(u32_of(&h, "bert.attention.head_count"), 12);
    let tokens = strings(&h, "tokenizer.ggml.tokens");
    assert_eq!(tokens.len(), 30522);
    assert_eq!((tokens[101].as_str(), tokens[7592].as_str()), ("[CLS]", "▁hello"));
    // gguf-py's SpecialVocab on this folder: bos 101, eos 102, unk 100, sep 102, pad 0, mask 103.
    for (k, v) in
        [("bos", 101), ("eos", 102), ("unknown", 100), ("seperator", 102), ("padding", 0), ("mask", 103)]
    {
        assert_eq!(u32_of(&h, &format!("tokenizer.ggml.{k}_token_id")), v, "{k}");
    }
    assert_eq!(h.tensors().len(), 5 + 6 * 16, "embeddings, 6 layers; pooler and position_ids left out");
    assert_eq!(h.tensor("blk.5.ffn_up.weight").unwrap().dims(), [384, 1536]);
}

#[test]
fn llama3_rope_scaling_writes_the_rope_freqs_tensor() {
    let dir = tempdir();
    let model = dir.path().join("m");
    std::fs::create_dir(&model).unwrap();
    write_llama(&model);
    let config = model.join("config.json");
    let mut c: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    c["rope_scaling"] = json!({"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
    std::fs::write(&config, c.to_string()).unwrap();
    let out = dir.path().join("o.gguf");
    let r = run(&["quantize", s(&model), "--format", "gguf", "-o", s(&out)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("rope_freqs.weight computed (32 factors)"), "{r:?}");
    let (bytes, h) = header_of(&out);
    let t = h.tensor("rope_freqs.weight").unwrap();
    assert_eq!((t.ggml_type(), t.dims()), (GgmlType::F32, &[32u64][..]));
    let range = h.data_range(t);
    let f = f32_rows(&bytes[range.start as usize..range.end as usize], 32).remove(0);
    // head_dim 64, theta 5e5: the first pairs rotate fast (kept), the last slowly (/32).
    assert_eq!((f[0], f[31]), (1.0, 32.0), "{f:?}");
    assert!(h.get("llama.rope.scaling.type").is_none(), "llama3 is the tensor, not a key");
}
