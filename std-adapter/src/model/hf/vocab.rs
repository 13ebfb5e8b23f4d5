//! The token list and token types from `tokenizer.json`, as the reference's
//! `get_vocab_base` builds them: ids `0..vocab_size` (config's `vocab_size`, else the
//! vocabulary's size), a missing id padded as `[PAD{i}]` of type UNUSED, added tokens
//! CONTROL when special (or looking special) else USER_DEFINED, the rest NORMAL.
//! For a WordPiece (`bert`) vocabulary the tokens are rewritten to llama.cpp's
//! phantom-space form: `##piece` -> `piece`, a word start `w` -> `▁w`, CONTROL kept.

use std::collections::HashMap;

use serde_json::Value as Json;

/// gguf-py's `TokenType` values (the `int32` array `tokenizer.ggml.token_type`).
pub mod token_type {
    /// An ordinary vocabulary entry.
    pub const NORMAL: i32 = 1;
    /// A special token (`<|begin_of_text|>`, `[CLS]`).
    pub const CONTROL: i32 = 3;
    /// An added token that is not special.
    pub const USER_DEFINED: i32 = 4;
    /// Padding up to `vocab_size`.
    pub const UNUSED: i32 = 5;
}

/// The whole vocabulary in id order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocab {
    /// Token text per id.
    pub tokens: Vec<String>,
    /// Token type per id.
    pub types: Vec<i32>,
}

/// One `added_tokens` entry.
struct Added {
    content: String,
    special: bool,
}

/// Names the reference treats as special even when not marked so
/// (`does_token_look_special`).
fn looks_special(t: &str) -> bool {
    matches!(t, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<｜") && t.ends_with("｜>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

/// Builds the vocabulary of `tokenizer` (a parsed `tokenizer.json`) padded to
/// `vocab_size` (None: the vocabulary's own size).
///
/// # Errors
/// A message naming the problem: no `model.vocab` object, an id that is not an
/// integer, an id at or past `vocab_size`, two tokens with one id.
pub fn build(tokenizer: &Json, vocab_size: Option<u32>) -> Result<Vocab, String> {
    let vocab = tokenizer
        .pointer("/model/vocab")
        .and_then(Json::as_object)
        .ok_or("`model.vocab` is not a token -> id object")?;
    let mut by_id: HashMap<u64, String> = HashMap::with_capacity(vocab.len());
    for (tok, id) in vocab {
        let id =
            id.as_u64().ok_or_else(|| format!("`model.vocab` token {tok:?}: id {id} is not an integer"))?;
        if let Some(other) = by_id.insert(id, tok.clone()) {
            return Err(format!("`model.vocab`: tokens {other:?} and {tok:?} share id {id}"));
        }
    }
    let mut added = Vec::new();
    for a in tokenizer.get("added_tokens").and_then(Json::as_array).into_iter().flatten() {
        let (Some(id), Some(content)) =
            (a.get("id").and_then(Json::as_u64), a.get("content").and_then(Json::as_str))
        else {
            return Err(format!("`added_tokens` entry {a} has no integer `id` and string `content`"));
        };
        by_id.insert(id, content.to_string());
        added.push(Added { content: content.into(), special: a.get("special") == Some(&Json::Bool(true)) });
    }
    let n = match vocab_size {
        Some(n) => u64::from(n),
        None => by_id.keys().max().map_or(0, |m| m + 1),
    };
    if let Some(max) = by_id.keys().copied().filter(|&id| id >= n).max() {
        return Err(format!("token id {max} is not below config.json's vocab_size {n}"));
    }
    // Added tokens by content (the reference tests membership in `get_added_vocab()`).
    let special_of: HashMap<&str, bool> = added.iter().map(|a| (a.content.as_str(), a.special)).collect();
    let mut tokens = Vec::with_capacity(n as usize);
    let mut types = Vec::with_capacity(n as usize);
    for i in 0..n {
        match by_id.remove(&i) {
            None => {
                tokens.push(format!("[PAD{i}]"));
                types.push(token_type::UNUSED);
            }
            Some(tok) => match special_of.get(tok.as_str()).copied() {
                Some(special) if special || looks_special(&tok) => {
                    tokens.push(tok);
                    types.push(token_type::CONTROL);
                }
                // The reference pre-normalizes user-defined spaces (Gemma's ▁).
                Some(_) => {
                    tokens.push(tok.replace('\u{2581}', " "));
                    types.push(token_type::USER_DEFINED);
                }
                None => {
                    tokens.push(tok);
                    types.push(token_type::NORMAL);
                }
            },
        }
    }
    Ok(Vocab { tokens, types })
}

/// WordPiece to llama.cpp's phantom-space vocabulary (`BertModel.set_vocab`).
pub fn phantom_space(v: &mut Vocab) {
    for (tok, ty) in v.tokens.iter_mut().zip(&v.types) {
        if *ty == token_type::CONTROL {
            continue;
        }
        *tok = match tok.strip_prefix("##") {
            Some(rest) => rest.to_string(),
            None => format!("\u{2581}{tok}"),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wordpiece() -> Json {
        json!({
            "added_tokens": [
                {"id": 0, "content": "[PAD]", "special": true},
                {"id": 1, "content": "[CLS]", "special": true},
            ],
            "model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "[CLS]": 1, "hello": 2, "##lo": 3, "[unused0]": 4}}
        })
    }

    #[test]
    fn wordpiece_gets_phantom_spaces_except_control_tokens() {
        let mut v = build(&wordpiece(), None).unwrap();
        phantom_space(&mut v);
        assert_eq!(v.tokens, ["[PAD]", "[CLS]", "\u{2581}hello", "lo", "\u{2581}[unused0]"]);
        use token_type::*;
        assert_eq!(v.types, [CONTROL, CONTROL, NORMAL, NORMAL, NORMAL]);
    }

    #[test]
    fn bpe_vocab_is_padded_to_config_vocab_size_and_added_tokens_typed() {
        let t = json!({
            "added_tokens": [
                {"id": 3, "content": "<|end|>", "special": false},
                {"id": 4, "content": "<tool>", "special": false},
                {"id": 5, "content": "<s>", "special": true},
            ],
            "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}
        });
        let v = build(&t, Some(8)).unwrap();
        assert_eq!(v.tokens, ["a", "b", "ab", "<|end|>", "<tool>", "<s>", "[PAD6]", "[PAD7]"]);
        use token_type::*;
        assert_eq!(v.types, [NORMAL, NORMAL, NORMAL, CONTROL, USER_DEFINED, CONTROL, UNUSED, UNUSED]);
        let e = build(&t, Some(5)).unwrap_err();
        assert!(e.contains("token id 5 is not below config.json's vocab_size 5"), "{e}");
        let e = build(&json!({"model": {"vocab": {"a": 0, "b": 0}}}), None).unwrap_err();
        assert!(e.contains("share id 0"), "{e}");
    }
}
