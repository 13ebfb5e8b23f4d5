//! The `tokenizer.*` keys of a llama.cpp GGUF from `tokenizer.json` (and
//! `tokenizer_config.json`, `config.json`), in the reference converter's order:
//! WordPiece for `bert` (`tokenizer.ggml.model` = `bert`, phantom-space tokens,
//! `token_type_count`), byte-level BPE for `llama`/`qwen2` (`gpt2`, merges, the
//! pre-tokenizer's llama.cpp name). Memory: the vocabulary and merges as strings,
//! bounded by the vocabulary (a 150k-token BPE is a few tens of MB at most).

use std::path::Path;

use arrowquant_core::gguf::{Array, Value};
use serde_json::Value as Json;

use super::arch::Arch;
use super::{pretok, special::Special, vocab};
use crate::error::{AdapterError, Result};

/// Reads and parses a JSON file of the folder, or `None` when it does not exist.
pub(super) fn read_json(path: &Path) -> Result<Option<Json>> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = crate::model::input::read_regular(path).map_err(|e| AdapterError::io(path, e))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| AdapterError::convert(path, format!("not valid JSON: {e}")))
}

/// The tokenizer key-value pairs for `arch` from the files in `dir`.
///
/// # Errors
/// [`AdapterError::Convert`] naming the file: no `tokenizer.json`, a tokenizer model
/// of the wrong kind for the architecture, an unknown pre-tokenizer, bad ids.
pub fn key_values(arch: Arch, dir: &Path, config: &Json) -> Result<Vec<(String, Value)>> {
    let path = dir.join("tokenizer.json");
    let tok = read_json(&path)?.ok_or_else(|| {
        AdapterError::convert(&path, "missing: a llama.cpp GGUF needs the tokenizer (tokenizer.json)")
    })?;
    let tc_path = dir.join("tokenizer_config.json");
    let tc = read_json(&tc_path)?;
    let bad = |m: String| AdapterError::convert(&path, m);
    let kind = tok.pointer("/model/type").and_then(Json::as_str).unwrap_or("");
    let want = if arch == Arch::Bert { "WordPiece" } else { "BPE" };
    if kind != want {
        return Err(bad(format!(
            "model.type is `{kind}`; llama.cpp's {} reads a {want} tokenizer",
            arch.name()
        )));
    }
    let vocab_size = match config.get("vocab_size") {
        Some(v) if !v.is_null() => {
            Some(super::hparams::count(config, &["vocab_size"], &dir.join("config.json"))?)
        }
        _ => None,
    };
    let mut v = vocab::build(&tok, vocab_size).map_err(bad)?;
    let mut kv: Vec<(String, Value)> = Vec::new();
    let n_vocab = v.tokens.len();
    let special = if arch == Arch::Bert {
        let types = config.get("type_vocab_size").and_then(Json::as_u64).unwrap_or(1);
        kv.push((
            "tokenizer.ggml.token_type_count".into(),
            Value::U32(u32::try_from(types).unwrap_or(u32::MAX)),
        ));
        vocab::phantom_space(&mut v);
        kv.push(("tokenizer.ggml.model".into(), "bert".into()));
        // llama.cpp reads no pre-tokenizer for WordPiece vocabularies.
        kv.push(("tokenizer.ggml.pre".into(), "default".into()));
        Special::read(&tok, tc.as_ref(), config, Some(n_vocab))
    } else {
        // Byte-level: a ByteLevel step in the pre-tokenizer or the decoder.
        let byte_level = ["pre_tokenizer", "decoder"]
            .iter()
            .filter_map(|k| tok.get(*k))
            .any(|v| v.to_string().contains("\"ByteLevel\""));
        if !byte_level {
            return Err(bad(
                "not a byte-level BPE (no ByteLevel step): SentencePiece-style BPE (Llama 2, Mistral v0.1) \
                 is not supported by this converter yet"
                    .into(),
            ));
        }
        if arch == Arch::Llama
            && let Some(b) = tc.as_ref().and_then(|c| c.get("add_prefix_space")).and_then(Json::as_bool)
        {
            kv.push(("tokenizer.ggml.add_space_prefix".into(), Value::Bool(b)));
        }
        kv.push(("tokenizer.ggml.model".into(), "gpt2".into()));
        kv.push(("tokenizer.ggml.pre".into(), pretok::bpe_pre_name(&tok).map_err(bad)?.into()));
        Special::read(&tok, tc.as_ref(), config, None)
    };
    kv.push(("tokenizer.ggml.tokens".into(), Value::Array(Array::String(v.tokens))));
    kv.push(("tokenizer.ggml.token_type".into(), Value::Array(Array::I32(v.types))));
    if arch != Arch::Bert {
        let merges = merges(&tok).map_err(bad)?;
        kv.push(("tokenizer.ggml.merges".into(), Value::Array(Array::String(merges))));
    }
    let mut special = special;
    if special.chat_template.is_none() {
        let jinja = dir.join("chat_template.jinja");
        if jinja.is_file() {
            let bytes = crate::model::input::read_regular(&jinja).map_err(|e| AdapterError::io(&jinja, e))?;
            special.chat_template =
                Some(String::from_utf8(bytes).map_err(|_| AdapterError::convert(&jinja, "not UTF-8"))?);
        }
    }
    kv.extend(special.key_values());
    Ok(kv)
}

/// `model.merges` as `"a b"` strings: the old form as it is, the pair form joined
/// with a space after a space inside a part is written as U+0120 (gguf-py's rule).
fn merges(tok: &Json) -> Result<Vec<String>, String> {
    let list = tok.pointer("/model/merges").and_then(Json::as_array).ok_or("`model.merges` is missing")?;
    list.iter()
        .map(|m| match m {
            Json::String(s) => Ok(s.clone()),
            Json::Array(p) => match p.as_slice() {
                [Json::String(a), Json::String(b)] => {
                    let enc = |s: &str| s.replace(' ', "\u{0120}");
                    Ok(format!("{} {}", enc(a), enc(b)))
                }
                _ => Err(format!("`model.merges` entry {m} is not a pair of strings")),
            },
            _ => Err(format!("`model.merges` entry {m} is neither a string nor a pair")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_in_both_forms() {
        let t = json!({"model": {"merges": ["a b", "ab c"]}});
        assert_eq!(merges(&t).unwrap(), ["a b", "ab c"]);
        let t = json!({"model": {"merges": [["a", "b"], ["x y", "z"]]}});
        assert_eq!(merges(&t).unwrap(), ["a b", "x\u{0120}y z"]);
        assert!(merges(&json!({"model": {"merges": [1]}})).unwrap_err().contains("entry 1"));
    }

    #[test]
    fn wrong_tokenizer_kind_and_missing_file_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = key_values(Arch::Llama, dir.path(), &json!({})).unwrap_err().to_string();
        assert!(e.contains("tokenizer.json: missing"), "{e}");
        let t = json!({"model": {"type": "WordPiece", "vocab": {"a": 0}}});
        std::fs::write(dir.path().join("tokenizer.json"), t.to_string()).unwrap();
        let e = key_values(Arch::Qwen2, dir.path(), &json!({})).unwrap_err().to_string();
        assert!(e.contains("model.type is `WordPiece`; llama.cpp's qwen2 reads a BPE tokenizer"), "{e}");
        let t = json!({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Metaspace"}});
        std::fs::write(dir.path().join("tokenizer.json"), t.to_string()).unwrap();
        let e = key_values(Arch::Llama, dir.path(), &json!({})).unwrap_err().to_string();
        assert!(e.contains("SentencePiece-style BPE"), "{e}");
    }
}
