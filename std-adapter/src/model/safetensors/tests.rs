//! Header parsing: each malformation gets its own error.

use super::*;

fn file(header: &str, data: usize) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.resize(v.len() + data, 0);
    v
}

fn parse(bytes: &[u8]) -> std::result::Result<Header, SafetensorsError> {
    parse_header(bytes, bytes.len() as u64)
}

#[test]
fn accepts_a_valid_header() {
    let h = r#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#;
    let hd = parse(&file(h, 16)).unwrap();
    assert_eq!(hd.tensors.len(), 2);
    assert_eq!(hd.tensors[0].name, "a", "sorted by offset");
    assert_eq!(hd.tensors[1].offset, 8 + h.len() as u64 + 8);
    assert_eq!(hd.metadata["format"], "pt");
}

#[test]
fn rejects_each_malformation() {
    let ok = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    assert!(matches!(parse(&[1, 2, 3]), Err(SafetensorsError::TooShort { .. })));
    let mut long = file(ok, 8);
    long[..8].copy_from_slice(&1000u64.to_le_bytes());
    assert!(matches!(parse(&long), Err(SafetensorsError::HeaderPastEnd { .. })));
    let mut absurd = file(ok, 8);
    absurd[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(parse(&absurd), Err(SafetensorsError::HeaderTooLarge { .. })));
    let oob = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    assert!(matches!(parse(&file(oob, 4)), Err(SafetensorsError::OffsetOutOfBounds { .. })));
    let overlap = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    assert!(matches!(parse(&file(overlap, 8)), Err(SafetensorsError::Overlap { .. })));
    let wrong = r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
    assert!(matches!(parse(&file(wrong, 8)), Err(SafetensorsError::ByteLength { .. })));
    let unknown = r#"{"a":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}}"#;
    assert!(matches!(parse(&file(unknown, 8)), Err(SafetensorsError::UnknownDtype { .. })));
    let mut bad_utf8 = file(ok, 8);
    bad_utf8[9] = 0xff;
    assert!(matches!(parse(&bad_utf8), Err(SafetensorsError::NotUtf8 { .. })));
    assert!(matches!(parse(&file("{not json", 8)), Err(SafetensorsError::Json(_))));
    assert!(matches!(parse(&file("[1,2]", 8)), Err(SafetensorsError::Json(_))));
    let dup = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    assert!(matches!(parse(&file(dup, 8)), Err(SafetensorsError::DuplicateTensor(_))));
    let huge = r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#;
    assert!(matches!(parse(&file(huge, 8)), Err(SafetensorsError::ShapeOverflow { .. })));
    let between = r#"{"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
    assert!(
        matches!(parse(&file(between, 16)), Err(SafetensorsError::Overlap { .. })),
        "an empty tensor between two overlapping ones"
    );
    let empties = r#"{"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"y":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    assert!(parse(&file(empties, 8)).is_ok(), "empty tensors at the edges of others overlap nothing");
    let dup_key = r#"{"a":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#;
    let e = parse(&file(dup_key, 4)).unwrap_err().to_string();
    assert!(e.contains("`a`") && e.contains("`dtype` appears twice"), "{e}");
    let rev = r#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#;
    assert!(matches!(parse(&file(rev, 8)), Err(SafetensorsError::ReversedOffsets { .. })));
}
