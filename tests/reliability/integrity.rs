//! Integrity of our Parquet files: every row carries a checksum in the manifest
//! (`StoredTensor::checksums`), verified by every reader before a row is decoded. A
//! byte flipped anywhere in the column data must give an error naming the file (and,
//! inside the codes and parameters, the tensor), or leave the weights unchanged (a
//! flip in a statistics column): never different weights with success.

use std::path::Path;

use arrowquant_std::{ChunkData, Config, ConfigLayer, Model, QuantizedFile, quantize_model};
use parquet::file::reader::{FileReader, SerializedFileReader};

use arrowquant_tests::{f32_bytes, safetensors_bytes, weights};

/// Every chunk of every tensor as `(tensor, first element, bytes)`: dequantized f32
/// values as little-endian bytes, raw tensors as stored.
type Decoded = Vec<(String, u64, Vec<u8>)>;

fn decode_all(path: &Path) -> Result<Decoded, String> {
    let q = QuantizedFile::open(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    q.for_each_chunk(|t, offset, data| {
        let bytes = match data {
            ChunkData::F32(v) => f32_bytes(v),
            ChunkData::Raw(b) => b.to_vec(),
        };
        out.push((t.name.clone(), offset, bytes));
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(out)
}

/// A quantized file of three matrices and a raw 1-D tensor.
fn quantized_file(dir: &Path) -> std::path::PathBuf {
    let model = dir.join("m.safetensors");
    let t = |n: &str, shape: &[usize], seed| {
        (n.to_string(), "F32", shape.to_vec(), f32_bytes(&weights(shape.iter().product(), seed)))
    };
    let tensors = vec![
        t("a.weight", &[64, 256], 1),
        t("a.bias", &[256], 2),
        t("b.weight", &[32, 128], 3),
        t("c.weight", &[16, 64], 4),
    ];
    std::fs::write(&model, safetensors_bytes(&tensors)).unwrap();
    let m = Model::open(&model).unwrap();
    let config = Config::from_layers(&[ConfigLayer { bit_width: Some(4), ..Default::default() }]).unwrap();
    let out = dir.join("q.parquet");
    quantize_model(&m, &config, &out, &mut |_| {}).unwrap();
    out
}

/// `(start, end, holds weights)` of every column chunk: codes and params hold them.
fn column_chunks(path: &Path) -> Vec<(usize, usize, bool)> {
    let r = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut v = Vec::new();
    for g in r.metadata().row_groups() {
        for c in g.columns() {
            let start = c.dictionary_page_offset().unwrap_or_else(|| c.data_page_offset()) as usize;
            let name = c.column_path().string();
            v.push((start, start + c.compressed_size() as usize, name == "codes" || name == "params"));
        }
    }
    v
}

#[test]
fn a_flipped_byte_in_the_data_never_decodes_silently_to_different_weights() {
    let dir = tempfile::tempdir().unwrap();
    let path = quantized_file(dir.path());
    let good = decode_all(&path).expect("the unchanged file decodes");
    let bytes = std::fs::read(&path).unwrap();
    let chunks = column_chunks(&path);
    let bad = dir.path().join("flipped.parquet");
    let (mut errors, mut same, mut weight_flips) = (0, 0, 0);
    let mut failures = Vec::new();
    for &(start, end, weights) in &chunks {
        // Every byte of small chunks, about 64 positions of large ones (page headers,
        // the zstd frame and its payload alike).
        let step = ((end - start) / 64).max(1);
        for (i, pos) in (start..end).step_by(step).enumerate() {
            let mut b = bytes.clone();
            // A single bit, at a different place each time, or the whole byte.
            b[pos] ^= if i % 9 == 8 { 0xFF } else { 1 << (i % 8) };
            std::fs::write(&bad, &b).unwrap();
            weight_flips += usize::from(weights);
            match decode_all(&bad) {
                Err(e) => {
                    errors += 1;
                    if !e.contains("flipped.parquet") || (weights && !e.contains("tensor `")) {
                        failures.push(format!("byte {pos}: error does not name the file and tensor: {e}"));
                    }
                    if e.contains('\n') {
                        failures.push(format!("byte {pos}: error on several lines: {e}"));
                    }
                }
                Ok(d) if d == good => same += 1,
                Ok(_) => {
                    failures.push(format!("byte {pos} (weights: {weights}): different weights, no error"))
                }
            }
        }
    }
    eprintln!("{errors} flips refused, {same} decoded to the same weights, {weight_flips} in codes/params");
    assert!(weight_flips >= 100, "too few flips in the codes and parameters: {weight_flips}");
    assert!(errors >= weight_flips, "flips in codes/params must all be refused: {errors} errors");
    assert!(failures.is_empty(), "{} of {} flips:\n{}", failures.len(), errors + same, failures.join("\n"));
}

#[test]
fn rows_without_checksums_are_refused_naming_the_tensor() {
    // A manifest without checksums (a file from before they were written, or one whose
    // manifest was edited) is not read: a silent skip would make the check optional.
    let dir = tempfile::tempdir().unwrap();
    let path = quantized_file(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let key = b"\"checksums\":[";
    let at = bytes.windows(key.len()).position(|w| w == key).expect("checksums in the manifest") + key.len();
    let end = at + bytes[at..].iter().position(|&c| c == b']').unwrap();
    // Same length, so the footer's offsets stay valid: digits become spaces (JSON
    // whitespace) after an empty list.
    let mut b = bytes.clone();
    for (i, byte) in b[at..end].iter_mut().enumerate() {
        *byte = if i == 0 { b']' } else { b' ' };
    }
    b[end] = b' ';
    std::fs::write(&path, &b).unwrap();
    let e = decode_all(&path).unwrap_err();
    assert!(e.contains("q.parquet") && e.contains("tensor `a.weight`") && e.contains("no checksum"), "{e}");
}
