//! Sharded checkpoints: an arbitrary `model.safetensors.index.json` next to two fixed
//! valid shards (`a.safetensors`: x, y; `b.safetensors`: z) and one shard of arbitrary
//! bytes (`c.safetensors`), opened through the directory and through the index file.
//! Properties: no panic; both ways agree; an accepted model lists each tensor once,
//! every tensor of the weight map is in the shard it names, and only shards named by
//! the index are read; a rejected model gets a one-line error naming a file.
#![no_main]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use arrowquant_fuzz::{Cursor, scratch_dir};
use arrowquant_std::Model;
use libfuzzer_sys::fuzz_target;

fn st_file(tensors: &[(&str, &str, &[u64], u64)]) -> Vec<u8> {
    let mut header = String::from("{");
    let mut off = 0;
    for (i, (name, dtype, shape, n)) in tensors.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        header += &format!(
            r#""{name}":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":[{off},{}]}}"#,
            off + n
        );
        off += n;
    }
    header.push('}');
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.resize(v.len() + off as usize, 0);
    v
}

fn dir() -> &'static Path {
    static INIT: std::sync::Once = std::sync::Once::new();
    let d = scratch_dir();
    INIT.call_once(|| {
        std::fs::write(d.join("a.safetensors"), st_file(&[("x", "F32", &[2, 2], 16), ("y", "F16", &[3], 6)]))
            .unwrap();
        std::fs::write(d.join("b.safetensors"), st_file(&[("z", "BF16", &[4], 8)])).unwrap();
    });
    d
}

fuzz_target!(|data: &[u8]| {
    let d = dir();
    let mut c = Cursor::new(data);
    let n = usize::from(c.u16());
    let index = c.take(n);
    let shard_c = c.rest();
    let index_path = d.join("model.safetensors.index.json");
    std::fs::write(&index_path, index).unwrap();
    std::fs::write(d.join("c.safetensors"), shard_c).unwrap();

    let by_dir = Model::open(d);
    let by_index = Model::open(&index_path);
    match (&by_dir, &by_index) {
        (Ok(m), Ok(m2)) => {
            assert_eq!(m.tensors, m2.tensors);
            let mut names = HashSet::new();
            assert!(m.tensors.iter().all(|t| names.insert(t.name.clone())), "a tensor is listed twice");
            let map: BTreeMap<String, String> = serde_json::from_slice::<serde_json::Value>(index)
                .ok()
                .and_then(|v| serde_json::from_value(v.get("weight_map")?.clone()).ok())
                .expect("an accepted index has a weight_map of strings");
            for (tensor, shard) in &map {
                let t = m.tensor(tensor).unwrap_or_else(|| panic!("{tensor} missing"));
                assert_eq!(m.file_of(t).file_name().unwrap().to_str(), Some(shard.as_str()));
            }
            for f in &m.files {
                assert_eq!(f.parent(), Some(d), "shard outside the model directory: {}", f.display());
                let name = f.file_name().unwrap().to_str().unwrap();
                assert!(map.values().any(|s| s == name), "{name} read but not in the index");
            }
        }
        (Err(e), Err(e2)) => {
            for e in [e, e2] {
                let msg = e.to_string();
                assert!(!msg.contains('\n'), "multi-line error: {msg}");
                assert!(msg.contains(&*d.to_string_lossy()), "error names no file: {msg}");
            }
        }
        _ => panic!("by directory {:?}, by index {:?}", by_dir.as_ref().err(), by_index.as_ref().err()),
    }
});
