//! The llama.cpp architecture of a Hugging Face model, from `config.json`'s
//! `architectures` (the class names `transformers` saves), as llama.cpp's converter
//! registers them (`conversion/bert.py`, `llama.py`, `qwen.py`).

use std::path::Path;

use serde_json::Value as Json;

use crate::error::{AdapterError, Result};

/// An architecture this converter writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// llama.cpp `bert`: encoder-only embedders (all-MiniLM, bge, ...).
    Bert,
    /// llama.cpp `llama` (Llama 1-3, Mistral).
    Llama,
    /// llama.cpp `qwen2`.
    Qwen2,
}

/// The `architectures` names accepted, each with its llama.cpp architecture.
pub const SUPPORTED: [(&str, Arch); 4] = [
    ("BertModel", Arch::Bert),
    ("LlamaForCausalLM", Arch::Llama),
    ("MistralForCausalLM", Arch::Llama),
    ("Qwen2ForCausalLM", Arch::Qwen2),
];

impl Arch {
    /// llama.cpp's name (`general.architecture` and the prefix of its keys).
    pub fn name(self) -> &'static str {
        match self {
            Arch::Bert => "bert",
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
        }
    }

    /// The architecture `config` names (its first `architectures` entry, as the
    /// reference converter takes it).
    ///
    /// # Errors
    /// [`AdapterError::Convert`] naming `path` when `architectures` is missing, empty
    /// or not supported (the message lists the supported names).
    pub fn detect(config: &Json, path: &Path) -> Result<(Arch, String)> {
        let first = config
            .get("architectures")
            .and_then(Json::as_array)
            .and_then(|a| a.first())
            .and_then(Json::as_str)
            .ok_or_else(|| AdapterError::convert(path, "`architectures` is missing or empty"))?;
        match SUPPORTED.iter().find(|(n, _)| *n == first) {
            Some((_, arch)) => Ok((*arch, first.to_string())),
            None => {
                let names: Vec<&str> = SUPPORTED.iter().map(|(n, _)| *n).collect();
                Err(AdapterError::convert(
                    path,
                    format!(
                        "architecture `{first}` is not supported for a llama.cpp GGUF (supported: {}); \
                         convert it with llama.cpp's convert_hf_to_gguf.py and give us that GGUF",
                        names.join(", ")
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_architecture_decides() {
        let p = Path::new("m/config.json");
        let d = |v| Arch::detect(&v, p).map(|(a, _)| a);
        assert_eq!(d(json!({"architectures": ["BertModel"]})).unwrap(), Arch::Bert);
        assert_eq!(d(json!({"architectures": ["MistralForCausalLM"]})).unwrap(), Arch::Llama);
        assert_eq!(d(json!({"architectures": ["Qwen2ForCausalLM", "X"]})).unwrap(), Arch::Qwen2);
        assert_eq!(Arch::Qwen2.name(), "qwen2");
    }

    #[test]
    fn an_unsupported_architecture_names_itself_and_the_supported_ones() {
        let p = Path::new("m/config.json");
        let e = Arch::detect(&json!({"architectures": ["WhisperModel"]}), p).unwrap_err().to_string();
        assert!(e.starts_with("m/config.json: architecture `WhisperModel` is not supported"), "{e}");
        for n in ["BertModel", "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"] {
            assert!(e.contains(n), "{e}");
        }
        assert_eq!(e.lines().count(), 1);
        let e = Arch::detect(&json!({"architectures": []}), p).unwrap_err().to_string();
        assert!(e.contains("`architectures` is missing"), "{e}");
    }
}
