//! The pooling type of an embedder (`{arch}.pooling_type`): from a
//! sentence-transformers folder (`modules.json` names the Pooling module's folder, its
//! `config.json` the mode), as the reference's `_try_set_pooling_type` reads it, or
//! chosen by the caller (`--pooling`), which wins.

use std::path::Path;

use serde_json::Value as Json;

use crate::error::{AdapterError, Result};

/// llama.cpp's `llama_pooling_type` values the converter writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// No pooling: one embedding per token (0).
    None,
    /// Mean over the tokens (1).
    Mean,
    /// The first (`[CLS]`) token (2).
    Cls,
    /// The last token (3).
    Last,
}

impl Pooling {
    /// The `uint32` llama.cpp stores.
    pub fn id(self) -> u32 {
        match self {
            Pooling::None => 0,
            Pooling::Mean => 1,
            Pooling::Cls => 2,
            Pooling::Last => 3,
        }
    }

    /// The name users give (`none`, `mean`, `cls`, `last`).
    pub fn name(self) -> &'static str {
        match self {
            Pooling::None => "none",
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Last => "last",
        }
    }

    /// Parses a user's name, any case.
    pub fn from_name(s: &str) -> Option<Pooling> {
        [Pooling::None, Pooling::Mean, Pooling::Cls, Pooling::Last]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
    }
}

/// The pooling a sentence-transformers folder `dir` declares, with the file that says
/// so; `None` when there is no `modules.json` or it has no Pooling module.
///
/// # Errors
/// [`AdapterError::Convert`] naming the file: unreadable JSON, or a mode llama.cpp has
/// no pooling for (max, weighted mean, ...).
pub fn from_folder(dir: &Path) -> Result<Option<(Pooling, String)>> {
    let modules_path = dir.join("modules.json");
    let Ok(bytes) = crate::model::input::read_regular(&modules_path) else { return Ok(None) };
    let modules: Json = serde_json::from_slice(&bytes)
        .map_err(|e| AdapterError::convert(&modules_path, format!("not valid JSON: {e}")))?;
    let sub = modules.as_array().into_iter().flatten().find_map(|m| {
        let ty = m.get("type")?.as_str()?;
        ty.ends_with("Pooling").then(|| m.get("path").and_then(Json::as_str).unwrap_or("").to_string())
    });
    let Some(sub) = sub else { return Ok(None) };
    let path = dir.join(&sub).join("config.json");
    let bytes = crate::model::input::read_regular(&path).map_err(|e| AdapterError::io(&path, e))?;
    let cfg: Json = serde_json::from_slice(&bytes)
        .map_err(|e| AdapterError::convert(&path, format!("not valid JSON: {e}")))?;
    let on = |k: &str| cfg.get(k).and_then(Json::as_bool) == Some(true);
    let pooling = if on("pooling_mode_mean_tokens") {
        Pooling::Mean
    } else if on("pooling_mode_cls_token") {
        Pooling::Cls
    } else if on("pooling_mode_lasttoken") {
        Pooling::Last
    } else {
        match cfg.get("pooling_mode").and_then(Json::as_str) {
            Some("mean") => Pooling::Mean,
            Some("cls") => Pooling::Cls,
            Some("lasttoken") => Pooling::Last,
            _ => {
                return Err(AdapterError::convert(
                    &path,
                    "pooling mode is none of mean, cls, last token (the ones llama.cpp has); \
                     choose one with --pooling",
                ));
            }
        }
    };
    Ok(Some((pooling, format!("{}/config.json", if sub.is_empty() { "." } else { &sub }))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentence_transformers_pooling_is_read_and_odd_modes_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(from_folder(dir.path()).unwrap(), None, "no modules.json");
        std::fs::write(
            dir.path().join("modules.json"),
            r#"[{"idx":0,"path":"","type":"sentence_transformers.models.Transformer"},
               {"idx":1,"path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]"#,
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
        let cfg = dir.path().join("1_Pooling/config.json");
        std::fs::write(&cfg, r#"{"pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true}"#)
            .unwrap();
        assert_eq!(from_folder(dir.path()).unwrap(), Some((Pooling::Mean, "1_Pooling/config.json".into())));
        std::fs::write(&cfg, r#"{"pooling_mode_cls_token": true}"#).unwrap();
        assert_eq!(from_folder(dir.path()).unwrap().unwrap().0, Pooling::Cls);
        std::fs::write(&cfg, r#"{"pooling_mode_max_tokens": true}"#).unwrap();
        let e = from_folder(dir.path()).unwrap_err().to_string();
        assert!(e.contains("1_Pooling/config.json") && e.contains("--pooling"), "{e}");
        assert_eq!(Pooling::from_name("MEAN"), Some(Pooling::Mean));
        assert_eq!(Pooling::from_name("max"), None);
        assert_eq!((Pooling::None.id(), Pooling::Last.id()), (0, 3));
    }
}
