//! Our Parquet reader on arbitrary bytes (seeded with real ArrowQuant files, see
//! `seeds/gen_seeds.py`): `QuantizedFile::open`, then every accessor, streaming every
//! chunk and dequantizing every tensor. Properties: no panic; every error is one line
//! naming the file; a tensor that reads back has its manifest's element count. A panic
//! inside the parquet crate's page decoding that our decode guard turns into an error
//! is not a crash; any other panic is.
#![no_main]

use arrowquant_fuzz::{allow_guarded_panics, assert_names_file, scratch_dir};
use arrowquant_std::QuantizedFile;
use libfuzzer_sys::fuzz_target;

/// Decoding budget per input (elements), so a huge manifest does not stall the run.
const MAX_ELEMENTS: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    allow_guarded_panics();
    let path = scratch_dir().join("q.parquet");
    std::fs::write(&path, data).unwrap();
    let f = match QuantizedFile::open(&path) {
        Ok(f) => f,
        Err(e) => {
            assert_names_file(&e, &path);
            return;
        }
    };
    let _ = (f.config(), f.tool_version(), f.source_metadata(), f.file_size());
    let budget = f.tensors().iter().try_fold(0u64, |a, t| a.checked_add(t.elements));
    if budget.is_none_or(|n| n > MAX_ELEMENTS) {
        return;
    }
    let _ = f.bits_per_weight();
    if let Err(e) = f.for_each_chunk(|_, _, _| Ok(())) {
        assert_names_file(&e, &path);
    }
    for t in f.tensors() {
        match f.read_tensor_f32(&t.name) {
            Ok(v) => assert_eq!(v.len() as u64, t.elements, "{} ({})", t.name, t.codec),
            Err(e) => assert_names_file(&e, &path),
        }
    }
});
