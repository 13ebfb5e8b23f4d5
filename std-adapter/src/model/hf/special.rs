//! Special token ids, whether to add BOS/EOS/SEP, the chat template and the
//! normalizer flags, read as gguf-py's `SpecialVocab` reads them: `tokenizer.json`
//! (`added_tokens`, `post_processor`, `normalizer`), then `tokenizer_config.json`
//! (`bos_token`, ..., `add_bos_token`, `chat_template`), then `config.json`
//! (`bos_token_id`, ...) for the types still unset. The first value found wins.

use arrowquant_core::gguf::Value;
use serde_json::Value as Json;

/// Special token types in the reference's order, with their GGUF id key. (`cls` is
/// read, as a fallback for `bos`, but gguf-py has no key for it.)
const TYPES: [(&str, Option<&str>); 7] = [
    ("bos", Some("tokenizer.ggml.bos_token_id")),
    ("eos", Some("tokenizer.ggml.eos_token_id")),
    ("unk", Some("tokenizer.ggml.unknown_token_id")),
    ("sep", Some("tokenizer.ggml.seperator_token_id")),
    ("pad", Some("tokenizer.ggml.padding_token_id")),
    ("cls", None),
    ("mask", Some("tokenizer.ggml.mask_token_id")),
];

/// What `SpecialVocab` found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Special {
    /// (type, id) in the order found.
    pub ids: Vec<(&'static str, u32)>,
    /// (type, add it) in the order found.
    pub add: Vec<(&'static str, bool)>,
    /// `tokenizer_config.json`'s chat template (or `chat_template.jinja`).
    pub chat_template: Option<String>,
    /// The normalizer lowercases (BERT).
    pub lowercase: Option<bool>,
    /// The normalizer strips accents.
    pub strip_accents: Option<bool>,
}

/// The content of a `tokenizer_config.json` token entry (a string or `{content}`).
fn content(v: Option<&Json>) -> Option<String> {
    match v? {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("content").and_then(Json::as_str).map(str::to_string),
        _ => None,
    }
}

fn set_add(add: &mut Vec<(&'static str, bool)>, ty: &'static str, v: bool, overwrite: bool) {
    match add.iter_mut().find(|(t, _)| *t == ty) {
        Some(slot) if overwrite => slot.1 = v,
        Some(_) => {}
        None => add.push((ty, v)),
    }
}

fn special_id(step: &Json) -> Option<String> {
    step.pointer("/SpecialToken/id").and_then(Json::as_str).map(str::to_string)
}

impl Special {
    /// Reads the three files' contents (`None` for a file that is absent); ids at or
    /// past `n_vocab` are ignored (the reference passes it for BERT only).
    pub fn read(tok: &Json, tok_config: Option<&Json>, config: &Json, n_vocab: Option<usize>) -> Special {
        let mut s = Special::default();
        if let Some(n) = tok.get("normalizer") {
            s.normalizer(n);
        }
        let mut tc = tok_config.cloned();
        let get = |tc: &Option<Json>, k: &str| tc.as_ref().and_then(|c| content(c.get(k)));
        let (mut bos, cls) = (get(&tc, "bos_token"), get(&tc, "cls_token"));
        let (mut eos, sep) = (get(&tc, "eos_token"), get(&tc, "sep_token"));
        if let Some(c) = tc.as_mut().and_then(Json::as_object_mut) {
            if bos.is_none() && cls.is_some() {
                bos = cls.clone();
                c.insert("bos_token".into(), Json::from(bos.clone()));
            }
            if eos.is_none() && sep.is_some() {
                eos = sep.clone();
                c.insert("eos_token".into(), Json::from(eos.clone()));
            }
        }
        if let Some(pp) = tok.get("post_processor") {
            let list =
                pp.get("processors").and_then(Json::as_array).cloned().unwrap_or_else(|| vec![pp.clone()]);
            for p in &list {
                match p.get("type").and_then(Json::as_str) {
                    Some("ByteLevel") => {
                        set_add(&mut s.add, "bos", false, false);
                        set_add(&mut s.add, "eos", false, false);
                    }
                    Some("TemplateProcessing") => s.template(p, (&bos, &cls, &eos, &sep)),
                    _ => {}
                }
            }
        }
        let added: Vec<(&str, u64)> = tok
            .get("added_tokens")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| Some((a.get("content")?.as_str()?, a.get("id")?.as_u64()?)))
            .collect();
        if let Some(c) = &tc {
            s.chat_template = c.get("chat_template").and_then(Json::as_str).map(str::to_string);
            for (ty, _) in TYPES {
                if let Some(b) = c.get(format!("add_{ty}_token")).and_then(Json::as_bool) {
                    set_add(&mut s.add, ty, b, false);
                }
                let Some(want) = content(c.get(format!("{ty}_token"))) else { continue };
                let id = added.iter().find(|(c, _)| *c == want).map(|(_, id)| *id);
                s.set_id(ty, id, n_vocab);
            }
        }
        for (ty, _) in TYPES {
            s.set_id(ty, config.get(format!("{ty}_token_id")).and_then(Json::as_u64), n_vocab);
        }
        s
    }

    fn set_id(&mut self, ty: &'static str, id: Option<u64>, n_vocab: Option<usize>) {
        let Some(id) = id.and_then(|i| u32::try_from(i).ok()) else { return };
        if n_vocab.is_some_and(|n| id as usize >= n) || self.ids.iter().any(|(t, _)| *t == ty) {
            return;
        }
        self.ids.push((ty, id));
    }

    fn normalizer(&mut self, n: &Json) {
        match n.get("type").and_then(Json::as_str) {
            Some("Lowercase") => self.lowercase = Some(true),
            Some("StripAccents") => self.strip_accents = Some(true),
            Some("BertNormalizer") => {
                if let Some(b) = n.get("lowercase").and_then(Json::as_bool) {
                    self.lowercase = Some(b);
                }
                if let Some(b) = n.get("strip_accents").and_then(Json::as_bool) {
                    self.strip_accents = Some(b);
                }
            }
            Some("Sequence") => {
                for m in n.get("normalizers").and_then(Json::as_array).into_iter().flatten() {
                    self.normalizer(m);
                }
            }
            _ => {}
        }
    }

    /// `TemplateProcessing`: a leading special token that is BOS (or CLS) means
    /// add_bos; a trailing one that is EOS means add_eos; a separator between A and B
    /// of the pair template with no trailing token means add_sep (the reference's
    /// "crude parsing", kept crude the same way).
    fn template(
        &mut self,
        p: &Json,
        (bos, cls, eos, sep): (&Option<String>, &Option<String>, &Option<String>, &Option<String>),
    ) {
        let single = p.get("single").and_then(Json::as_array).cloned().unwrap_or_default();
        let pair = p.get("pair").and_then(Json::as_array).cloned().unwrap_or_default();
        let (mut first, mut last) = (None, None);
        if single.len() > 1 {
            first = special_id(&single[0]);
            if let Some(f) = &first {
                set_add(&mut self.add, "bos", Some(f) == bos.as_ref() || Some(f) == cls.as_ref(), true);
            }
            last = special_id(&single[single.len() - 1]);
            if let Some(l) = &last {
                set_add(&mut self.add, "eos", Some(l) == eos.as_ref(), true);
            }
        }
        if pair.is_empty() {
            return;
        }
        let start = usize::from(first.is_some() && special_id(&pair[0]) == first);
        let stop = pair.len() - usize::from(last.is_some() && special_id(&pair[pair.len() - 1]) == last);
        let inner = &pair[start..stop.max(start)];
        let seq = |s: &Json| s.pointer("/Sequence/id").and_then(Json::as_str).map(str::to_string);
        if inner.len() < 2
            || seq(&inner[0]).as_deref() != Some("A")
            || seq(&inner[inner.len() - 1]).as_deref() != Some("B")
        {
            return;
        }
        let middle = &inner[1..inner.len() - 1];
        let is_sep =
            |s: &Json| special_id(s).is_some_and(|id| Some(&id) == sep.as_ref() || Some(&id) == eos.as_ref());
        let mut add_sep = false;
        if let Some(m0) = middle.first() {
            add_sep = is_sep(m0) && last.is_none();
            if middle.len() == 2 && is_sep(&middle[1]) {
                add_sep = true;
            }
        }
        if !middle.is_empty() {
            set_add(&mut self.add, "sep", add_sep, true);
        }
    }

    /// The GGUF key-value pairs, in gguf-py's order (merges are written by the caller).
    pub fn key_values(&self) -> Vec<(String, Value)> {
        let mut kv = Vec::new();
        for (ty, id) in &self.ids {
            if let Some((_, Some(key))) = TYPES.iter().find(|(t, _)| t == ty) {
                kv.push(((*key).to_string(), Value::U32(*id)));
            }
        }
        for (ty, add) in &self.add {
            if matches!(*ty, "bos" | "eos" | "sep") {
                kv.push((format!("tokenizer.ggml.add_{ty}_token"), Value::Bool(*add)));
            }
        }
        if let Some(t) = &self.chat_template {
            kv.push(("tokenizer.chat_template".into(), Value::String(t.clone())));
        }
        if let Some(b) = self.lowercase {
            kv.push(("tokenizer.ggml.normalizer.lowercase".into(), Value::Bool(b)));
        }
        if let Some(b) = self.strip_accents {
            kv.push(("tokenizer.ggml.normalizer.strip_accents".into(), Value::Bool(b)));
        }
        kv
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// all-MiniLM-L6-v2's files, abridged; gguf-py's SpecialVocab on the real folder
    /// gives bos 101, eos 102, unk 100, sep 102, pad 0, cls 101, mask 103, add_bos and
    /// add_eos true, add_sep false, lowercase true.
    #[test]
    fn bert_specials_match_gguf_py_on_minilm() {
        let added: Vec<Json> =
            [("[PAD]", 0), ("[UNK]", 100), ("[CLS]", 101), ("[SEP]", 102), ("[MASK]", 103)]
                .iter()
                .map(|(c, i)| json!({"id": i, "content": c, "special": true}))
                .collect();
        let tok = json!({
            "added_tokens": added,
            "normalizer": {"type": "BertNormalizer", "lowercase": true, "strip_accents": null},
            "post_processor": {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "[CLS]"}}, {"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "[SEP]"}}],
                "pair": [{"SpecialToken": {"id": "[CLS]"}}, {"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "[SEP]"}},
                         {"Sequence": {"id": "B"}}, {"SpecialToken": {"id": "[SEP]"}}]}
        });
        let tc = json!({"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
            "mask_token": "[MASK]"});
        let s = Special::read(&tok, Some(&tc), &json!({"pad_token_id": 0}), Some(30522));
        assert_eq!(
            s.ids,
            [("bos", 101), ("eos", 102), ("unk", 100), ("sep", 102), ("pad", 0), ("cls", 101), ("mask", 103)]
        );
        assert_eq!(s.add, [("bos", true), ("eos", true), ("sep", false)]);
        assert_eq!((s.lowercase, s.strip_accents), (Some(true), None));
        let kv = s.key_values();
        assert!(kv.contains(&("tokenizer.ggml.seperator_token_id".into(), Value::U32(102))));
        assert!(!kv.iter().any(|(k, _)| k.contains("cls")), "gguf-py has no cls key");
    }

    #[test]
    fn llama3_and_qwen2_style_specials() {
        // Llama 3: TemplateProcessing adds BOS only; ids from tokenizer_config.
        let tok = json!({
            "added_tokens": [{"id": 256, "content": "<|begin_of_text|>", "special": true},
                             {"id": 257, "content": "<|end_of_text|>", "special": true}],
            "post_processor": {"type": "Sequence", "processors": [
                {"type": "ByteLevel"},
                {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|begin_of_text|>"}}, {"Sequence": {"id": "A"}}]}
            ]}
        });
        let tc = json!({"bos_token": "<|begin_of_text|>", "eos_token": {"content": "<|end_of_text|>"},
            "chat_template": "{{ messages }}"});
        let s = Special::read(&tok, Some(&tc), &json!({"bos_token_id": 1, "eos_token_id": 257}), None);
        assert_eq!(s.ids, [("bos", 256), ("eos", 257)], "tokenizer_config wins over config.json");
        assert_eq!(s.add, [("bos", true), ("eos", false)]);
        assert_eq!(s.chat_template.as_deref(), Some("{{ messages }}"));
        // Qwen2: ByteLevel post-processor, add_bos false; pad from config.json.
        let tok = json!({"added_tokens": [{"id": 300, "content": "<|endoftext|>", "special": true}],
            "post_processor": {"type": "ByteLevel"}});
        let tc = json!({"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "bos_token": null,
            "add_bos_token": true});
        let s = Special::read(&tok, Some(&tc), &json!({"bos_token_id": 300}), None);
        assert_eq!(s.ids, [("eos", 300), ("pad", 300), ("bos", 300)], "found order, as gguf-py's dict");
        assert_eq!(s.add, [("bos", false), ("eos", false)], "the post-processor wins over add_bos_token");
    }
}
