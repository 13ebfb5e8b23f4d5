//! Row counts in the Parquet footer: the footer states them per row group and for the
//! whole file, both read from the file. A crafted footer whose row groups disagree
//! with the file's count, or whose counts overflow when summed, must be an error
//! naming the file, from `QuantizedFile::open` and from the CLI, never an overflow
//! panic or a wrapped sum in `dequantize_tensor`.

use std::path::Path;

use arrowquant_std::QuantizedFile;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader, ParquetMetaDataWriter};

use arrowquant_tests::{f32_bytes, safetensors_bytes, weights};

use super::{arrowquant, check_input_error, run};

/// Quantizes a two-tensor model with the CLI into `dir/name` and returns the bytes.
fn quantized_file(dir: &Path, name: &str) -> Vec<u8> {
    let model = dir.join("m.safetensors");
    let st = safetensors_bytes(&[
        ("a.weight", "F32", &[64, 64], f32_bytes(&weights(64 * 64, 1))),
        ("b.weight", "F32", &[32, 64], f32_bytes(&weights(32 * 64, 2))),
    ]);
    std::fs::write(&model, st).unwrap();
    let out = dir.join(name);
    let r = run(arrowquant(&["quantize", model.to_str().unwrap(), "-o", out.to_str().unwrap(), "-q"], &[]));
    assert_eq!(r.code, Some(0), "{r:?}");
    std::fs::read(&out).unwrap()
}

/// The file with its footer replaced by `metadata` re-encoded (the data pages stay).
fn with_footer(file: &[u8], metadata: &ParquetMetaData) -> Vec<u8> {
    let n = file.len();
    let footer_len = u32::from_le_bytes(file[n - 8..n - 4].try_into().unwrap()) as usize;
    let mut out = file[..n - 8 - footer_len].to_vec();
    ParquetMetaDataWriter::new(&mut out, metadata).finish().unwrap();
    out
}

fn footer(file: &[u8]) -> ParquetMetaData {
    let n = file.len();
    let footer_len = u32::from_le_bytes(file[n - 8..n - 4].try_into().unwrap()) as usize;
    ParquetMetaDataReader::decode_metadata(&file[n - 8 - footer_len..n - 8]).unwrap()
}

/// `metadata` with its row groups replaced by copies of the first with `counts` rows
/// each. The writer stores the file's row count as the (i64) sum of the row groups'.
fn with_row_counts(metadata: &ParquetMetaData, counts: &[i64]) -> ParquetMetaData {
    let first = metadata.row_group(0).clone();
    let groups =
        counts.iter().map(|&n| first.clone().into_builder().set_num_rows(n).build().unwrap()).collect();
    metadata.clone().into_builder().set_row_groups(groups).build()
}

#[test]
fn row_group_counts_that_disagree_or_overflow_are_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = quantized_file(dir.path(), "good.parquet");
    let meta = footer(&good);
    assert_eq!(meta.num_row_groups(), 1, "the test assumes one row group");
    let rows = meta.file_metadata().num_rows();

    // The footer round trip alone keeps the file readable, so what fails below fails
    // because of the counts.
    let same = dir.path().join("same.parquet");
    std::fs::write(&same, with_footer(&good, &with_row_counts(&meta, &[rows]))).unwrap();
    let q = QuantizedFile::open(&same).unwrap();
    assert_eq!(q.read_tensor_f32("b.weight").unwrap().len(), 32 * 64);

    let max = i64::MAX;
    let cases: [(&str, Vec<i64>, &str); 2] = [
        // A negative count (read as 0) and one too many: the sums disagree.
        ("pq_row_groups_disagree.parquet", vec![rows + 5, -5], "hold"),
        // The file's i64 sum comes back to `rows`, the row groups' u64 sum passes 2^64
        // (the unchecked `start + n` in `dequantize_tensor` overflowed here).
        ("pq_row_groups_overflow.parquet", vec![max, -max, max, -max, max, rows - max], "more than 2^64"),
    ];
    for (name, counts, expect) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, with_footer(&good, &with_row_counts(&meta, &counts))).unwrap();
        let e = QuantizedFile::open(&path).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(expect) && !e.contains('\n'), "{name}: {e}");
        for cmd in [vec!["dequantize", path.to_str().unwrap(), "-o"], vec!["inspect", path.to_str().unwrap()]]
        {
            let out = dir.path().join("out.safetensors");
            let mut args = cmd.clone();
            if args[0] == "dequantize" {
                args.push(out.to_str().unwrap());
            }
            let r = run(arrowquant(&args, &[]));
            check_input_error(&r, &[name, expect]).unwrap_or_else(|e| panic!("{}: {e}", args[0]));
            assert!(!out.exists(), "{name}: dequantize left {}", out.display());
        }
    }
}

#[test]
fn a_column_chunk_outside_the_file_is_an_error_not_a_panic() {
    // `parquet_reader` crash-6fc8f888: a negative page offset made the parquet crate
    // panic (`ColumnChunkMetaData::byte_range` asserts) while reading the column.
    let dir = tempfile::tempdir().unwrap();
    let good = quantized_file(dir.path(), "good.parquet");
    let meta = footer(&good);
    for (name, offset) in [("pq_negative_page_offset.parquet", -8i64), ("pq_page_past_end.parquet", 1 << 40)]
    {
        let g = meta.row_group(0).clone();
        let mut columns = g.columns().to_vec();
        columns[0] = columns[0]
            .clone()
            .into_builder()
            .set_data_page_offset(offset)
            .set_dictionary_page_offset(None)
            .build()
            .unwrap();
        let g = g.into_builder().set_column_metadata(columns).build().unwrap();
        let bad = meta.clone().into_builder().set_row_groups(vec![g]).build();
        let path = dir.path().join(name);
        std::fs::write(&path, with_footer(&good, &bad)).unwrap();
        let e = QuantizedFile::open(&path).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains("lie outside the file"), "{name}: {e}");
        let r = run(arrowquant(&["inspect", path.to_str().unwrap()], &[]));
        check_input_error(&r, &[name, "outside the file"]).unwrap();
    }
}
