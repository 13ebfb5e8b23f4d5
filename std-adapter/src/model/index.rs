//! A sharded model's `model.safetensors.index.json`: its `weight_map` names the
//! shards, which must sit next to it and hold exactly the tensors it says.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::safetensors::Model;
use crate::error::{AdapterError, Result, SafetensorsError};

impl Model {
    pub(super) fn open_index(root: &Path, index: &Path) -> Result<Self> {
        let bad = |msg: String| AdapterError::Safetensors {
            path: index.to_path_buf(),
            // Shard and tensor names come from the index; `Index` is displayed with
            // control characters escaped (`error::esc`), so the message stays on one line.
            source: SafetensorsError::Index(msg),
        };
        let text = super::input::read_regular(index).map_err(|e| AdapterError::io(index, e))?;
        #[derive(Deserialize)]
        struct Index {
            weight_map: BTreeMap<String, String>,
        }
        // JSON is UTF-8 (RFC 8259). serde_json checks only the strings it keeps, so a
        // stray byte in an ignored field would otherwise pass: check the whole text.
        let text = std::str::from_utf8(&text)
            .map_err(|e| bad(format!("not valid UTF-8 (at byte {})", e.valid_up_to())))?;
        let idx: Index = serde_json::from_str(text).map_err(|e| bad(format!("not a valid index: {e}")))?;
        let dir = index.parent().unwrap_or(Path::new("."));
        let mut shard_names: Vec<&String> = idx.weight_map.values().collect();
        shard_names.sort();
        shard_names.dedup();
        if shard_names.is_empty() {
            return Err(bad("weight_map is empty".into()));
        }
        let mut files = Vec::new();
        for s in shard_names {
            let p = Path::new(s);
            // Shards must sit next to the index: no absolute paths, no `..`.
            if p.components().count() != 1
                || !matches!(p.components().next(), Some(std::path::Component::Normal(_)))
            {
                return Err(bad(format!("shard name `{s}` must be a plain file name")));
            }
            files.push(dir.join(p));
        }
        let mut model = Self::open_files(root, files)?;
        model.index = Some(index.to_path_buf());
        let names: std::collections::HashMap<&str, &Path> =
            model.tensors.iter().map(|t| (t.name.as_str(), model.files[t.file].as_path())).collect();
        for (tensor, shard) in &idx.weight_map {
            match names.get(tensor.as_str()) {
                None => return Err(bad(format!("tensor `{tensor}` is not in shard `{shard}`"))),
                Some(p) if p.file_name().is_some_and(|n| n != shard.as_str()) => {
                    return Err(bad(format!("tensor `{tensor}` is in `{}`, not in `{shard}`", p.display())));
                }
                Some(_) => {}
            }
        }
        Ok(model)
    }
}
