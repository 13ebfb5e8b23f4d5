//! `tokenizer.ggml.pre`: the name llama.cpp gives a byte-level BPE pre-tokenizer
//! (`llama-vocab.cpp` maps each name to its split regex). The reference converter
//! finds it by hashing a tokenization (which needs the `tokenizers` library); we
//! read the `Split` regex of `tokenizer.json`'s `pre_tokenizer` and name it when it is
//! one we know, else stop with the regex in the message.

use serde_json::Value as Json;

/// Known Split regexes (as `tokenizer.json` spells them) and llama.cpp's names.
const KNOWN: [(&str, &str); 2] = [
    (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        "llama-bpe",
    ),
    (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        "qwen2",
    ),
];

/// Every `Split` regex in a pre-tokenizer (a `Sequence` holds several).
fn split_regexes(p: &Json, out: &mut Vec<String>) {
    match p.get("type").and_then(Json::as_str) {
        Some("Split") => {
            if let Some(r) = p.pointer("/pattern/Regex").and_then(Json::as_str) {
                out.push(r.to_string());
            }
        }
        Some("Sequence") => {
            for q in p.get("pretokenizers").and_then(Json::as_array).into_iter().flatten() {
                split_regexes(q, out);
            }
        }
        _ => {}
    }
}

/// The llama.cpp pre-tokenizer name of a byte-level BPE `tokenizer.json`.
///
/// # Errors
/// A message with the regex found (or saying there is none) and the known names.
pub fn bpe_pre_name(tokenizer: &Json) -> Result<&'static str, String> {
    let mut found = Vec::new();
    if let Some(p) = tokenizer.get("pre_tokenizer") {
        split_regexes(p, &mut found);
    }
    let known: Vec<&str> = KNOWN.iter().map(|(_, n)| *n).collect();
    match found.as_slice() {
        [one] => KNOWN.iter().find(|(r, _)| r == one).map(|(_, n)| *n).ok_or_else(|| {
            format!(
                "pre_tokenizer: Split regex {one:?} is not one this converter can name for llama.cpp (known: {})",
                known.join(", ")
            )
        }),
        [] => Err(format!(
            "pre_tokenizer: no Split regex, so its llama.cpp name is unknown (known: {})",
            known.join(", ")
        )),
        _ => Err(format!("pre_tokenizer: {} Split regexes; one is expected", found.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with_regex(r: &str) -> Json {
        json!({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
        ]}})
    }

    #[test]
    fn llama3_and_qwen2_regexes_are_named_as_llama_cpp_names_them() {
        assert_eq!(bpe_pre_name(&with_regex(KNOWN[0].0)), Ok("llama-bpe"));
        assert_eq!(bpe_pre_name(&with_regex(KNOWN[1].0)), Ok("qwen2"));
        // The two differ only in digit grouping: \p{N}{1,3} vs \p{N}.
        assert_ne!(KNOWN[0].0, KNOWN[1].0);
    }

    #[test]
    fn an_unknown_or_missing_regex_is_an_error_naming_it() {
        let e = bpe_pre_name(&with_regex(r"\s+")).unwrap_err();
        assert!(e.contains(r#""\\s+""#) && e.contains("llama-bpe, qwen2"), "{e}");
        let e = bpe_pre_name(&json!({"pre_tokenizer": {"type": "Metaspace"}})).unwrap_err();
        assert!(e.contains("no Split regex"), "{e}");
    }
}
