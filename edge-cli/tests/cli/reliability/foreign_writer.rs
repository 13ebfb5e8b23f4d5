//! ArrowQuant Parquet files rewritten by another writer: pyarrow's defaults name the
//! list item `element` (we write `item`) and compress with SNAPPY. The item name must
//! not matter; SNAPPY, which this build does not decompress, is a corpus case
//! (`pq_pyarrow_snappy`: refused at open, naming the codec).

use std::path::PathBuf;

use arrowquant_std::QuantizedFile;

use super::{arrowquant, run};

fn data(name: &str) -> PathBuf {
    arrowquant_tests::data_dir().join(name)
}

#[test]
fn a_file_rewritten_by_pyarrow_with_zstd_reads_like_the_original() {
    // Both written by tests/data/gen_malformed.py: the original, and the same table
    // through `pyarrow.parquet.write_table(..., compression="zstd")`.
    let ours = QuantizedFile::open(data("malformed/pq_base.parquet")).unwrap();
    let theirs = QuantizedFile::open(data("pyarrow_default_zstd.parquet")).unwrap();
    assert_eq!(ours.tensors(), theirs.tensors());
    assert!(!ours.tensors().is_empty());
    for t in ours.tensors() {
        let (a, b) = (ours.read_tensor_f32(&t.name).unwrap(), theirs.read_tensor_f32(&t.name).unwrap());
        assert_eq!(a.len() as u64, t.elements, "{}", t.name);
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()) && a.len() == b.len(),
            "{}",
            t.name
        );
    }
    let path = data("pyarrow_default_zstd.parquet");
    let r = run(arrowquant(&["inspect", path.to_str().unwrap()], &[]));
    assert_eq!(r.code, Some(0), "{r:?}");
}
