use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::ggml::GgmlType;

const PY_SMALL: &[u8] = include_bytes!("testdata/py_small.gguf");
const PY_ALIGN64: &[u8] = include_bytes!("testdata/py_align64.gguf");
const OURS: &[u8] = include_bytes!("testdata/ours.gguf");

/// Value type ids, for hand-built headers.
const T_U8: u32 = 0;
const T_U32: u32 = 4;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;
const T_U64: u32 = 10;
const F32: u32 = 0;
const Q4_0: u32 = 2;

/// A hand-built header, for inputs the writer refuses to produce.
struct Raw(Vec<u8>);

impl Raw {
    fn new(version: u32, n_tensors: u64, n_kv: u64) -> Raw {
        Raw(Vec::new()).bytes(b"GGUF").u32(version).u64(n_tensors).u64(n_kv)
    }
    fn bytes(mut self, b: &[u8]) -> Raw {
        self.0.extend_from_slice(b);
        self
    }
    fn u8(self, v: u8) -> Raw {
        self.bytes(&[v])
    }
    fn u32(self, v: u32) -> Raw {
        self.bytes(&v.to_le_bytes())
    }
    fn u64(self, v: u64) -> Raw {
        self.bytes(&v.to_le_bytes())
    }
    fn str(self, s: &[u8]) -> Raw {
        self.u64(s.len() as u64).bytes(s)
    }
    fn kv_u32(self, key: &str, v: u32) -> Raw {
        self.str(key.as_bytes()).u32(T_U32).u32(v)
    }
    fn tensor(self, name: &str, ne: &[u64], ty: u32, offset: u64) -> Raw {
        let mut r = self.str(name.as_bytes()).u32(ne.len() as u32);
        for &n in ne {
            r = r.u64(n);
        }
        r.u32(ty).u64(offset)
    }
    /// Pads to `align` and appends `data_len` bytes of data.
    fn finish_aligned(mut self, align: usize, data_len: usize) -> Vec<u8> {
        let n = self.0.len().next_multiple_of(align) + data_len;
        self.0.resize(n, 0xAB);
        self.0
    }
    fn finish(self, data_len: usize) -> Vec<u8> {
        self.finish_aligned(32, data_len)
    }
}

fn err(bytes: &[u8]) -> GgufError {
    match GgufHeader::parse(bytes) {
        Ok(h) => panic!("parsed, expected an error: {h:?}"),
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.chars().any(char::is_control), "{msg:?}");
            e
        }
    }
}

fn kv_item(index: u64, key: &str) -> Item {
    Item::Kv { index, key: Some(Name::new(key)) }
}

fn tensor_item(index: u64, name: &str) -> Item {
    Item::Tensor { index, name: Some(Name::new(name)) }
}

/// A writer with every value type, a nested array and tensors of several types.
fn sample_writer() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.push_kv(keys::GENERAL_ARCHITECTURE, "llama");
    w.push_kv("t.u8", 200u8);
    w.push_kv("t.i8", -100i8);
    w.push_kv("t.u16", 60000u16);
    w.push_kv("t.i16", -30000i16);
    w.push_kv("t.u32", 4_000_000_000u32);
    w.push_kv("t.i32", -2_000_000_000i32);
    w.push_kv("t.f32", 1.5f32);
    w.push_kv("t.bool", true);
    w.push_kv("t.str", "h\u{e9}llo");
    w.push_kv("t.u64", (1u64 << 63) + 5);
    w.push_kv("t.i64", -(1i64 << 62));
    w.push_kv("t.f64", -0.25f64);
    w.push_kv("t.arr_u32", Array::U32(vec![1, 2, 3]));
    w.push_kv("t.arr_str", Array::String(vec!["a".into(), String::new(), "ccc".into()]));
    w.push_kv("t.arr_f32", Array::F32(vec![0.5, -1.0]));
    w.push_kv("t.arr_bool", Array::Bool(vec![true, false]));
    w.push_kv("t.arr_empty", Array::I64(vec![]));
    w.push_kv("t.nested", Array::Array(vec![Array::I32(vec![1, 2]), Array::String(vec!["x".into()])]));
    w.push_kv(keys::GENERAL_FILE_TYPE, 7u32);
    w.push_kv(keys::GENERAL_QUANTIZATION_VERSION, QUANTIZATION_VERSION);
    w.push_tensor("a.weight", &[3, 2], GgmlType::F32).unwrap();
    w.push_tensor("b.weight", &[32], GgmlType::F16).unwrap();
    w.push_tensor("c.weight", &[32, 2], GgmlType::Q8_0).unwrap();
    w.push_tensor("d.weight", &[256, 2, 1, 3], GgmlType::Q4_K).unwrap();
    w
}

/// A complete file: the header, then each tensor's data (byte `i + 1` for tensor `i`)
/// and its padding.
fn file_of(layout: &GgufLayout) -> Vec<u8> {
    let mut f = layout.header_bytes().to_vec();
    for (i, t) in layout.tensors().iter().enumerate() {
        assert_eq!(f.len() as u64, layout.tensor_range(i).start);
        f.resize(f.len() + t.n_bytes() as usize, i as u8 + 1);
        f.resize(f.len() + layout.padding_after(i) as usize, 0);
    }
    assert_eq!(f.len() as u64, layout.file_len());
    f
}

// ---------------------------------------------------------------- writer

#[test]
fn writer_round_trips_through_the_parser() {
    let w = sample_writer();
    let expected_kvs = w.metadata().clone();
    let layout = w.finish().unwrap();
    let file = file_of(&layout);
    let h = GgufHeader::parse(&file).unwrap();
    assert_eq!(h.version(), VERSION);
    assert_eq!(h.metadata(), &expected_kvs);
    assert_eq!(h.metadata(), layout.metadata());
    assert_eq!(h.tensors(), layout.tensors());
    assert_eq!((h.alignment(), h.data_offset()), (32, layout.data_offset()));
    assert_eq!(h.data_offset() % 32, 0);
    for (i, (t, r)) in h.tensor_ranges().enumerate() {
        assert_eq!(r, layout.tensor_range(i));
        assert_eq!(r.start % 32, 0);
        assert!(file[r.start as usize..r.end as usize].iter().all(|&b| b == i as u8 + 1), "{}", t.name());
    }
    let d = h.tensor("d.weight").unwrap();
    assert_eq!((d.dims(), d.elements(), d.rows()), (&[256u64, 2, 1, 3][..], 1536, 6));
    assert_eq!(d.n_bytes(), 6 * 144);
    assert_eq!(h.tensor("b.weight").unwrap().n_bytes(), 64);
    assert!(h.tensor("nope").is_none());
}

#[test]
fn writer_offsets_are_packed_in_push_order_and_aligned() {
    let layout = sample_writer().finish().unwrap();
    // a: 6 x 4 = 24 -> 32; b: 64; c: 2 x 34 = 68 -> 96; d: 864.
    let offsets: Vec<u64> = layout.tensors().iter().map(TensorInfo::offset).collect();
    assert_eq!(offsets, [0, 32, 96, 192]);
    let paddings: Vec<u64> = (0..4).map(|i| layout.padding_after(i)).collect();
    assert_eq!(paddings, [8, 0, 28, 0]);
    assert_eq!(layout.data_len(), 192 + 864);
}

#[test]
fn writer_header_bytes_are_exact() {
    let mut w = GgufWriter::new();
    w.push_kv("k", 7u32);
    w.push_tensor("t", &[2], GgmlType::F32).unwrap();
    let layout = w.finish().unwrap();
    let mut want = Vec::new();
    want.extend_from_slice(b"GGUF");
    want.extend_from_slice(&3u32.to_le_bytes());
    want.extend_from_slice(&1u64.to_le_bytes()); // tensors
    want.extend_from_slice(&1u64.to_le_bytes()); // key-values
    want.extend_from_slice(&1u64.to_le_bytes());
    want.push(b'k');
    want.extend_from_slice(&4u32.to_le_bytes());
    want.extend_from_slice(&7u32.to_le_bytes());
    want.extend_from_slice(&1u64.to_le_bytes());
    want.push(b't');
    want.extend_from_slice(&1u32.to_le_bytes());
    want.extend_from_slice(&2u64.to_le_bytes());
    want.extend_from_slice(&0u32.to_le_bytes());
    want.extend_from_slice(&0u64.to_le_bytes());
    assert_eq!(want.len(), 74);
    want.resize(96, 0);
    assert_eq!(layout.header_bytes(), &want[..]);
    assert_eq!((layout.padding_after(0), layout.file_len()), (24, 128));
}

#[test]
fn writer_is_deterministic_and_matches_the_committed_file() {
    let a = file_of(&sample_writer().finish().unwrap());
    let b = file_of(&sample_writer().finish().unwrap());
    assert_eq!(a, b);
    // tests/python/test_gguf_writer.py reads the committed copy with gguf-py's reader.
    if std::env::var_os("GGUF_BLESS").is_some() {
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/src/gguf/testdata/ours.gguf"), &a).unwrap();
    } else {
        assert!(a == OURS, "writer output changed: GGUF_BLESS=1 cargo test, then rerun the Python check");
    }
}

#[test]
fn writer_honours_general_alignment() {
    let mut w = GgufWriter::new();
    w.push_kv(keys::GENERAL_ALIGNMENT, 64u32);
    w.push_tensor("x", &[5], GgmlType::F32).unwrap();
    w.push_tensor("y", &[7, 3], GgmlType::F32).unwrap();
    let layout = w.finish().unwrap();
    assert_eq!(layout.alignment(), 64);
    assert_eq!(layout.data_offset() % 64, 0);
    assert_eq!(layout.tensors()[1].offset(), 64);
    assert_eq!((layout.padding_after(0), layout.padding_after(1), layout.data_len()), (44, 44, 192));
    let h = GgufHeader::parse(&file_of(&layout)).unwrap();
    assert_eq!(h.alignment(), 64);
}

#[test]
fn writer_without_tensors_writes_a_padded_header() {
    let mut w = GgufWriter::new();
    w.push_kv(keys::GENERAL_ARCHITECTURE, "x");
    let layout = w.finish().unwrap();
    assert_eq!(layout.header_bytes().len() % 32, 0);
    assert_eq!(layout.data_len(), 0);
    let h = GgufHeader::parse(layout.header_bytes()).unwrap();
    assert!(h.tensors().is_empty());
}

#[test]
fn writer_refuses_bad_keys() {
    let mut w = GgufWriter::new();
    w.push_kv("a", 1u8);
    w.push_kv("b", 1u8);
    w.push_kv("a", 2u8);
    assert_eq!(w.finish().unwrap_err(), GgufError::DuplicateKey { index: 2, first: 0, key: Name::new("a") });
    let mut w = GgufWriter::new();
    w.push_kv("a", 1u8);
    w.push_kv("", 1u8);
    assert_eq!(w.finish().unwrap_err(), GgufError::EmptyKey { index: 1 });
}

#[test]
fn writer_refuses_bad_alignment() {
    for (v, e) in [
        (Value::U32(48), GgufError::BadAlignment { alignment: 48 }),
        (Value::U32(0), GgufError::BadAlignment { alignment: 0 }),
        (Value::U64(64), GgufError::AlignmentType { found: ValueType::U64 }),
    ] {
        let mut w = GgufWriter::new();
        w.push_kv(keys::GENERAL_ALIGNMENT, v);
        assert_eq!(w.finish().unwrap_err(), e);
    }
}

#[test]
fn writer_refuses_bad_tensors() {
    let mut w = GgufWriter::new();
    let it = |i, n| tensor_item(i, n);
    assert_eq!(
        w.push_tensor("z", &[], GgmlType::F32),
        Err(GgufError::BadDimCount { item: it(0, "z"), n_dims: 0 })
    );
    assert_eq!(
        w.push_tensor("z", &[1, 1, 1, 1, 1], GgmlType::F32),
        Err(GgufError::BadDimCount { item: it(0, "z"), n_dims: 5 })
    );
    assert_eq!(
        w.push_tensor("z", &[4, 0], GgmlType::F32),
        Err(GgufError::ZeroDim { item: it(0, "z"), dim: 1 })
    );
    assert_eq!(
        w.push_tensor("z", &[16, 2], GgmlType::Q4_0),
        Err(GgufError::RowNotBlockMultiple { item: it(0, "z"), ty: GgmlType::Q4_0, ne0: 16 })
    );
    assert_eq!(
        w.push_tensor("z", &[1 << 32, 1 << 31], GgmlType::F32),
        Err(GgufError::ElementsOverflow { item: it(0, "z") })
    );
    // Fits i64 in elements, but not u64 in bytes.
    assert_eq!(
        w.push_tensor("z", &[1 << 62], GgmlType::F32),
        Err(GgufError::SizeOverflow { item: it(0, "z") })
    );
    let long = "n".repeat(MAX_NAME_LEN);
    assert_eq!(
        w.push_tensor(long.as_str(), &[1], GgmlType::F32),
        Err(GgufError::NameTooLong { item: it(0, &long), len: 64 })
    );
    w.push_tensor("n".repeat(MAX_NAME_LEN - 1), &[1], GgmlType::F32).unwrap();
    w.push_tensor("t", &[1], GgmlType::F32).unwrap();
    w.push_tensor("t", &[2], GgmlType::F32).unwrap();
    assert_eq!(
        w.finish().unwrap_err(),
        GgufError::DuplicateTensor { index: 2, first: 1, name: Name::new("t") }
    );
}

#[test]
fn writer_refuses_a_data_section_that_overflows_u64() {
    let mut w = GgufWriter::new();
    // Each is 2^62 bytes of F32 elements (2^60 elements): four of them overflow u64.
    for i in 0..4 {
        w.push_tensor(format!("t{i}"), &[1 << 30, 1 << 30], GgmlType::F32).unwrap();
    }
    assert_eq!(w.finish().unwrap_err(), GgufError::SizeOverflow { item: tensor_item(3, "t3") });
}

// ---------------------------------------------------------------- gguf-py files

#[test]
fn parses_a_file_written_by_gguf_py() {
    assert!(size_of::<GgufError>() <= 128, "{}", size_of::<GgufError>());
    let h = GgufHeader::parse(PY_SMALL).unwrap();
    let m = h.metadata();
    assert_eq!(h.version(), 3);
    assert_eq!(m.get_str(keys::GENERAL_ARCHITECTURE).unwrap(), "llama");
    assert_eq!(m.get_u8("t.u8").unwrap(), 200);
    assert_eq!(m.get_i8("t.i8").unwrap(), -100);
    assert_eq!(m.get_u16("t.u16").unwrap(), 60000);
    assert_eq!(m.get_i16("t.i16").unwrap(), -30000);
    assert_eq!(m.get_u32("t.u32").unwrap(), 4_000_000_000);
    assert_eq!(m.get_i32("t.i32").unwrap(), -2_000_000_000);
    assert_eq!(m.get_f32("t.f32").unwrap(), 1.5);
    assert!(m.get_bool("t.bool").unwrap());
    assert_eq!(m.get_str("t.str").unwrap(), "h\u{e9}llo");
    assert_eq!(m.get_u64("t.u64").unwrap(), (1 << 63) + 5);
    assert_eq!(m.get_i64("t.i64").unwrap(), -(1 << 62));
    assert_eq!(m.get_f64("t.f64").unwrap(), -0.25);
    // gguf-py stores Python ints in arrays as int32.
    assert_eq!(m.get_i32_array("t.arr_u32").unwrap(), [1, 2, 3]);
    assert_eq!(m.get_str_array("t.arr_str").unwrap(), ["a", "", "ccc"]);
    assert_eq!(m.get_f32_array("t.arr_f32").unwrap(), [0.5, -1.0]);
    assert_eq!(
        m.get_array("t.nested").unwrap(),
        &Array::Array(vec![Array::I32(vec![1, 2]), Array::I32(vec![3])])
    );
    assert_eq!(m.get_u32(keys::GENERAL_FILE_TYPE).unwrap(), 7);
    assert_eq!(m.get_u32(keys::GENERAL_QUANTIZATION_VERSION).unwrap(), 2);
    let names: Vec<&str> = m.iter().map(|(k, _)| k).take(3).collect();
    assert_eq!(names, [keys::GENERAL_ARCHITECTURE, "t.u8", "t.i8"]);

    let shapes: Vec<(&str, &[u64], GgmlType, u64)> =
        h.tensors().iter().map(|t| (t.name(), t.dims(), t.ggml_type(), t.offset())).collect();
    assert_eq!(
        shapes,
        [
            ("a.weight", &[3u64, 2][..], GgmlType::F32, 0),
            ("b.weight", &[32][..], GgmlType::F16, 32),
            ("c.weight", &[32, 2][..], GgmlType::Q8_0, 96),
        ]
    );
    // gguf-py's reader put a.weight's data at 768 (GGUFReader.tensors[0].data_offset).
    let r = h.data_range(&h.tensors()[0]);
    assert_eq!(r, 768..792);
    let data: Vec<f32> = PY_SMALL[r.start as usize..r.end as usize]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(data, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
}

#[test]
fn parses_a_gguf_py_file_with_custom_alignment() {
    let h = GgufHeader::parse(PY_ALIGN64).unwrap();
    assert_eq!(h.alignment(), 64);
    assert_eq!(h.data_offset() % 64, 0);
    let t: Vec<(&[u64], u64)> = h.tensors().iter().map(|t| (t.dims(), t.offset())).collect();
    assert_eq!(t, [(&[5u64][..], 0), (&[7, 3][..], 64)]);
}

// ---------------------------------------------------------------- windows, truncation

#[test]
fn a_short_window_asks_for_more_until_the_header_parses() {
    for file in [PY_SMALL, PY_ALIGN64, OURS] {
        let whole = GgufHeader::parse(file).unwrap();
        let len = file.len() as u64;
        // Under Miri every 61st window (each parse is milliseconds there).
        for k in (0..file.len()).step_by(if cfg!(miri) { 61 } else { 1 }) {
            match parse(&file[..k], len).unwrap() {
                Parsed::NeedMore { needed } => {
                    assert!(needed > k as u64 && needed <= len, "{k}: {needed}");
                    assert!(k as u64 <= whole.header_len(), "{k}");
                }
                Parsed::Header(h) => {
                    assert!(k as u64 >= whole.header_len(), "{k}");
                    assert_eq!((h.metadata(), h.tensors()), (whole.metadata(), whole.tensors()));
                }
            }
        }
        // The caller's loop: grow to what is asked for.
        let mut window = 1usize;
        let mut rounds = 0;
        let h = loop {
            rounds += 1;
            match parse(&file[..window], len).unwrap() {
                Parsed::Header(h) => break h,
                Parsed::NeedMore { needed } => window = (needed as usize).max(2 * window).min(file.len()),
            }
        };
        assert!(rounds < 16);
        assert_eq!(h.tensors(), whole.tensors());
    }
}

#[test]
fn a_window_longer_than_the_file_is_cut_to_it() {
    let mut f = PY_SMALL.to_vec();
    f.extend_from_slice(&[0; 100]);
    assert!(matches!(parse(&f, PY_SMALL.len() as u64), Ok(Parsed::Header(_))));
}

#[test]
fn every_truncation_is_an_error() {
    let whole = GgufHeader::parse(PY_SMALL).unwrap();
    // The file ends with the last tensor's padding, which nothing needs.
    let data_end = whole.tensor_ranges().map(|(_, r)| r.end).max().unwrap();
    assert!(GgufHeader::parse(&PY_SMALL[..data_end as usize]).is_ok());
    for k in (0..data_end as usize).step_by(if cfg!(miri) { 61 } else { 1 }) {
        let e = err(&PY_SMALL[..k]);
        if (k as u64) < whole.header_len() {
            // Cut inside an item, or before items that the counts announce.
            let ok = match e {
                GgufError::Truncated { needed, file_len, .. } => needed > k as u64 && file_len == k as u64,
                GgufError::TooMany { count, max, .. } => count > max,
                _ => false,
            };
            assert!(ok, "{k}: {e}");
        } else {
            assert!(matches!(e, GgufError::OutOfBounds { .. }), "{k}: {e}");
        }
    }
}

#[test]
fn truncation_names_the_item() {
    let f = Raw::new(3, 0, 2).kv_u32("a", 1).str(b"bb").u32(T_U32).bytes(&[1, 2]).0;
    assert_eq!(err(&f), GgufError::Truncated { item: kv_item(1, "bb"), needed: 59, file_len: 57 });
}

// ---------------------------------------------------------------- malformed classes

#[test]
fn bad_magic() {
    assert_eq!(err(b"GGML\x03\0\0\0"), GgufError::BadMagic { found: *b"GGML" });
    assert_eq!(err(b"GX"), GgufError::BadMagic { found: *b"GX\0\0" });
    assert!(err(b"\x00\nAB").to_string().contains("\\x00\\nAB"));
    // A prefix of the magic is a short file, not a wrong one.
    assert!(matches!(err(b"GG"), GgufError::Truncated { .. }));
}

#[test]
fn versions_other_than_2_and_3_are_refused() {
    for v in [0, 1, 4, 0x0300_0000] {
        assert_eq!(err(&Raw::new(v, 0, 0).finish(0)), GgufError::UnsupportedVersion(v));
    }
    assert!(err(&Raw::new(0x0300_0000, 0, 0).finish(0)).to_string().contains("big-endian"));
    assert!(err(&Raw::new(1, 0, 0).finish(0)).to_string().contains("versions 2 and 3"));
    assert_eq!(GgufHeader::parse(&Raw::new(2, 0, 0).finish(0)).unwrap().version(), 2);
}

#[test]
fn absurd_counts_are_refused_before_allocating() {
    let e = err(&Raw::new(3, 0, u64::MAX).finish(0));
    assert!(matches!(e, GgufError::TooMany { what: Counted::KeyValues, count: u64::MAX, .. }), "{e}");
    let e = err(&Raw::new(3, u64::MAX, 0).finish(0));
    assert!(matches!(e, GgufError::TooMany { what: Counted::Tensors, count: u64::MAX, .. }), "{e}");
    // 32 bytes after the counts hold two smallest pairs, not three.
    let f = Raw::new(3, 0, 3).bytes(&[0; 32]).0;
    assert_eq!(
        err(&f),
        GgufError::TooMany { item: Item::Header, what: Counted::KeyValues, count: 3, max: 2 }
    );
    // Key-values and tensors together: 1 pair (14) + 2 infos (64) > 70.
    let f = Raw::new(3, 2, 1).bytes(&[0; 70]).0;
    assert_eq!(err(&f), GgufError::TooMany { item: Item::Header, what: Counted::Tensors, count: 2, max: 1 });
}

#[test]
fn absurd_lengths_are_refused_before_allocating() {
    let f = Raw::new(3, 0, 1).u64(u64::MAX).bytes(&[b'a'; 16]).0;
    let e = err(&f);
    assert_eq!(
        e,
        GgufError::TooMany {
            item: Item::Kv { index: 0, key: None },
            what: Counted::StringBytes,
            count: u64::MAX,
            max: 16
        }
    );
    // An array of 2^40 u32 in a small file.
    let f = Raw::new(3, 0, 1).str(b"k").u32(T_ARRAY).u32(T_U32).u64(1 << 40).bytes(&[0; 16]).0;
    assert_eq!(
        err(&f),
        GgufError::TooMany { item: kv_item(0, "k"), what: Counted::ArrayElements, count: 1 << 40, max: 4 }
    );
    // Strings need 8 bytes each even when empty.
    let f = Raw::new(3, 0, 1).str(b"k").u32(T_ARRAY).u32(T_STRING).u64(3).bytes(&[0; 23]).0;
    assert_eq!(
        err(&f),
        GgufError::TooMany { item: kv_item(0, "k"), what: Counted::ArrayElements, count: 3, max: 2 }
    );
    // Arrays of arrays need 12 bytes each.
    let f = Raw::new(3, 0, 1).str(b"k").u32(T_ARRAY).u32(T_ARRAY).u64(2).bytes(&[0; 23]).0;
    assert_eq!(
        err(&f),
        GgufError::TooMany { item: kv_item(0, "k"), what: Counted::ArrayElements, count: 2, max: 1 }
    );
    // A string value longer than the file.
    let f = Raw::new(3, 0, 1).str(b"k").u32(T_STRING).u64(100).bytes(b"xy").0;
    assert_eq!(
        err(&f),
        GgufError::TooMany { item: kv_item(0, "k"), what: Counted::StringBytes, count: 100, max: 2 }
    );
}

#[test]
fn non_utf8_strings_are_refused() {
    let f = Raw::new(3, 0, 1).str(b"k\xff").u32(T_U8).u8(0).finish(0);
    assert_eq!(err(&f), GgufError::NotUtf8 { item: Item::Kv { index: 0, key: None }, at: 32 });
    let f = Raw::new(3, 0, 1).str(b"k").u32(T_STRING).str(b"\xc0\x80").finish(0);
    assert_eq!(err(&f), GgufError::NotUtf8 { item: kv_item(0, "k"), at: 45 });
    let f = Raw::new(3, 1, 0).str(b"t\xe9").u32(1).u64(1).u32(F32).u64(0).finish(32);
    assert_eq!(err(&f), GgufError::NotUtf8 { item: Item::Tensor { index: 0, name: None }, at: 32 });
}

#[test]
fn empty_and_duplicate_keys_are_refused() {
    let f = Raw::new(3, 0, 1).str(b"").u32(T_U8).u8(0).finish(0);
    assert_eq!(err(&f), GgufError::EmptyKey { index: 0 });
    let f = Raw::new(3, 0, 3).kv_u32("a", 1).kv_u32("b", 2).kv_u32("a", 3).finish(0);
    assert_eq!(err(&f), GgufError::DuplicateKey { index: 2, first: 0, key: Name::new("a") });
}

#[test]
fn duplicate_tensor_names_are_refused() {
    let f = Raw::new(3, 3, 0)
        .tensor("x", &[8], F32, 0)
        .tensor("y", &[8], F32, 32)
        .tensor("x", &[8], F32, 64)
        .finish(96);
    assert_eq!(err(&f), GgufError::DuplicateTensor { index: 2, first: 0, name: Name::new("x") });
}

#[test]
fn unknown_value_types_are_refused() {
    let f = Raw::new(3, 0, 1).str(b"k").u32(13).u8(0).finish(0);
    assert_eq!(err(&f), GgufError::UnknownValueType { item: kv_item(0, "k"), id: 13 });
    let f = Raw::new(3, 0, 1).str(b"k").u32(T_ARRAY).u32(u32::MAX).u64(0).finish(0);
    assert_eq!(err(&f), GgufError::UnknownValueType { item: kv_item(0, "k"), id: u32::MAX });
}

#[test]
fn arrays_nested_too_deep_are_refused() {
    let nest = |depth: u32| {
        let mut r = Raw::new(3, 0, 1).str(b"k").u32(T_ARRAY);
        for _ in 1..depth {
            r = r.u32(T_ARRAY).u64(1);
        }
        r.u32(T_U8).u64(0).finish(0)
    };
    let h = GgufHeader::parse(&nest(MAX_ARRAY_DEPTH)).unwrap();
    assert_eq!(h.metadata().get_array("k").unwrap().len(), 1);
    assert_eq!(err(&nest(MAX_ARRAY_DEPTH + 1)), GgufError::ArrayTooDeep { item: kv_item(0, "k") });
}

#[test]
fn bools_other_than_0_and_1_are_refused() {
    let f = Raw::new(3, 0, 1).str(b"k").u32(T_BOOL).u8(2).finish(0);
    assert_eq!(err(&f), GgufError::BadBool { item: kv_item(0, "k"), value: 2 });
    let f = Raw::new(3, 0, 1).str(b"k").u32(T_ARRAY).u32(T_BOOL).u64(3).bytes(&[1, 0, 255]).finish(0);
    assert_eq!(err(&f), GgufError::BadBool { item: kv_item(0, "k"), value: 255 });
}

#[test]
fn alignment_must_be_a_u32_power_of_two() {
    let f = Raw::new(3, 0, 1).kv_u32(keys::GENERAL_ALIGNMENT, 48).finish(0);
    assert_eq!(err(&f), GgufError::BadAlignment { alignment: 48 });
    let f = Raw::new(3, 0, 1).kv_u32(keys::GENERAL_ALIGNMENT, 0).finish(0);
    assert_eq!(err(&f), GgufError::BadAlignment { alignment: 0 });
    let f = Raw::new(3, 0, 1).str(keys::GENERAL_ALIGNMENT.as_bytes()).u32(T_U64).u64(32).finish(0);
    assert_eq!(err(&f), GgufError::AlignmentType { found: ValueType::U64 });
    // A large power of two is fine (the data section moves accordingly).
    let f = Raw::new(3, 1, 1)
        .kv_u32(keys::GENERAL_ALIGNMENT, 256)
        .tensor("t", &[4], F32, 0)
        .finish_aligned(256, 16);
    let h = GgufHeader::parse(&f).unwrap();
    assert_eq!((h.alignment(), h.data_offset()), (256, 256));
}

#[test]
fn unknown_tensor_types_are_refused() {
    for id in [4, 16, 39, u32::MAX] {
        let f = Raw::new(3, 1, 0).tensor("t", &[32], id, 0).finish(64);
        assert_eq!(err(&f), GgufError::UnknownTensorType { item: tensor_item(0, "t"), id });
    }
}

#[test]
fn dimension_counts_outside_1_to_4_are_refused() {
    for n in [0u32, 5, u32::MAX] {
        let f = Raw::new(3, 1, 0).str(b"t").u32(n).bytes(&[1; 64]).finish(0);
        assert_eq!(err(&f), GgufError::BadDimCount { item: tensor_item(0, "t"), n_dims: n });
    }
    let f = Raw::new(3, 1, 0).tensor("t", &[1, 1, 1, 1], F32, 0).finish(32);
    assert_eq!(GgufHeader::parse(&f).unwrap().tensors()[0].dims(), [1, 1, 1, 1]);
}

#[test]
fn zero_and_overflowing_shapes_are_refused() {
    let f = Raw::new(3, 1, 0).tensor("t", &[4, 1, 0], F32, 0).finish(32);
    assert_eq!(err(&f), GgufError::ZeroDim { item: tensor_item(0, "t"), dim: 2 });
    let f = Raw::new(3, 1, 0).tensor("t", &[1 << 32, 1 << 32], F32, 0).finish(32);
    assert_eq!(err(&f), GgufError::ElementsOverflow { item: tensor_item(0, "t") });
    // 2^63 elements overflow i64 (ggml's element count) though not u64.
    let f = Raw::new(3, 1, 0).tensor("t", &[1 << 31, 1 << 32], F32, 0).finish(32);
    assert_eq!(err(&f), GgufError::ElementsOverflow { item: tensor_item(0, "t") });
    let f = Raw::new(3, 1, 0).tensor("t", &[1 << 62], F32, 0).finish(32);
    assert_eq!(err(&f), GgufError::SizeOverflow { item: tensor_item(0, "t") });
}

#[test]
fn rows_must_be_whole_blocks() {
    let f = Raw::new(3, 1, 0).tensor("t", &[16, 2], Q4_0, 0).finish(64);
    assert_eq!(
        err(&f),
        GgufError::RowNotBlockMultiple { item: tensor_item(0, "t"), ty: GgmlType::Q4_0, ne0: 16 }
    );
    // The element count is a multiple of 32, but rows are what ggml blocks.
    let f = Raw::new(3, 1, 0).tensor("t", &[16, 4], Q4_0, 0).finish(64);
    assert!(matches!(err(&f), GgufError::RowNotBlockMultiple { .. }));
}

#[test]
fn misaligned_offsets_are_refused() {
    let f = Raw::new(3, 2, 0).tensor("a", &[4], F32, 0).tensor("b", &[4], F32, 16).finish(64);
    assert_eq!(err(&f), GgufError::Misaligned { item: tensor_item(1, "b"), offset: 16, alignment: 32 });
    // With alignment 16 the same offsets are fine.
    let f = Raw::new(3, 2, 1)
        .kv_u32(keys::GENERAL_ALIGNMENT, 16)
        .tensor("a", &[4], F32, 0)
        .tensor("b", &[4], F32, 16)
        .finish_aligned(16, 32);
    GgufHeader::parse(&f).unwrap();
}

#[test]
fn tensor_data_past_the_end_is_refused() {
    let f = Raw::new(3, 1, 0).tensor("t", &[8], F32, 0).finish(31);
    let e = err(&f);
    assert_eq!(
        e,
        GgufError::OutOfBounds {
            item: tensor_item(0, "t"),
            end: f.len() as u64 + 1,
            file_len: f.len() as u64
        }
    );
    let f = Raw::new(3, 1, 0).tensor("t", &[8], F32, u64::MAX - 31).finish(32);
    assert_eq!(err(&f), GgufError::SizeOverflow { item: tensor_item(0, "t") });
    // Exactly at the end is fine.
    GgufHeader::parse(&Raw::new(3, 1, 0).tensor("t", &[8], F32, 0).finish(32)).unwrap();
}

#[test]
fn overlapping_tensors_are_refused_whatever_their_order() {
    // Neighbours in the file.
    let f = Raw::new(3, 2, 0).tensor("a", &[16], F32, 0).tensor("b", &[8], F32, 32).finish(96);
    assert_eq!(
        err(&f),
        GgufError::Overlap { item: tensor_item(1, "b"), other: 0, other_end: 64, offset: 32 }
    );
    // Reverse order.
    let f = Raw::new(3, 2, 0).tensor("b", &[8], F32, 32).tensor("a", &[16], F32, 0).finish(96);
    assert_eq!(
        err(&f),
        GgufError::Overlap { item: tensor_item(0, "b"), other: 1, other_end: 64, offset: 32 }
    );
    // Not neighbours in the file: a [0, 64), b [128, 160), c [32, 64) inside a.
    let f = Raw::new(3, 3, 0)
        .tensor("a", &[16], F32, 0)
        .tensor("b", &[8], F32, 128)
        .tensor("c", &[8], F32, 32)
        .finish(160);
    assert_eq!(
        err(&f),
        GgufError::Overlap { item: tensor_item(2, "c"), other: 0, other_end: 64, offset: 32 }
    );
    // Same offset.
    let f = Raw::new(3, 2, 0).tensor("a", &[8], F32, 64).tensor("b", &[8], F32, 64).finish(96);
    assert!(matches!(err(&f), GgufError::Overlap { .. }));
    // Out of order with gaps but disjoint: accepted.
    let f = Raw::new(3, 2, 0).tensor("b", &[8], F32, 64).tensor("a", &[8], F32, 0).finish(96);
    let h = GgufHeader::parse(&f).unwrap();
    assert_eq!(h.data_range(&h.tensors()[0]), h.data_offset() + 64..h.data_offset() + 96);
}

// ---------------------------------------------------------------- accessors, messages

#[test]
fn typed_getters_say_what_is_wrong() {
    let h = GgufHeader::parse(PY_SMALL).unwrap();
    let m = h.metadata();
    assert_eq!(m.get_u32("nope"), Err(GgufError::MissingKey { key: Name::new("nope") }));
    assert_eq!(
        m.get_u32("t.u64"),
        Err(GgufError::WrongType {
            key: Name::new("t.u64"),
            expected: ValueType::U32,
            found: ValueType::U64,
            in_array: false
        })
    );
    assert_eq!(
        m.get_str_array("t.arr_f32"),
        Err(GgufError::WrongType {
            key: Name::new("t.arr_f32"),
            expected: ValueType::String,
            found: ValueType::F32,
            in_array: true
        })
    );
    assert_eq!(
        m.get_str("t.u8").unwrap_err().to_string(),
        "metadata key `t.u8` is of type uint8, expected string"
    );
    assert_eq!(h.get("t.u8"), Some(&Value::U8(200)));
}

#[test]
fn messages_are_one_line_with_names_escaped_and_cut() {
    let f = Raw::new(3, 0, 2).kv_u32("a\nb\u{7}", 1).kv_u32("a\nb\u{7}", 1).finish(0);
    let msg = err(&f).to_string();
    assert_eq!(msg, "key-value 1: duplicate key `a\\nb\\u{7}` (first at key-value 0)");
    let long = "\u{e9}".repeat(40); // 80 bytes
    let n = Name::new(&long);
    assert!(n.is_cut());
    assert_eq!(n.as_str(), "\u{e9}".repeat(32));
    assert!(n.to_string().ends_with("...`"));
    let f = Raw::new(3, 1, 0).tensor(&long, &[8], 99, 0).finish(32);
    let msg = err(&f).to_string();
    assert!(
        msg.starts_with(&format!("tensor 0 `{}...`: tensor type 99 is not one", "\u{e9}".repeat(32))),
        "{msg}"
    );
    assert!(msg.contains("Q4_K=12"), "{msg}");
}

#[test]
fn corrupted_files_never_panic() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let bases = [PY_SMALL.to_vec(), OURS.to_vec()];
    let rounds = if cfg!(miri) { 50 } else { 5000 };
    for round in 0..rounds {
        let mut f = bases[round % 2].clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() as usize) % f.len();
            f[i] = next() as u8;
        }
        if next() % 4 == 0 {
            f.truncate((next() as usize) % f.len());
        }
        if let Err(e) = GgufHeader::parse(&f) {
            assert!(!e.to_string().chars().any(char::is_control));
        }
        let _ = parse(&f[..f.len() / 2], f.len() as u64);
    }
}

// ---------------------------------------------------------------- committed samples

macro_rules! samples {
    ($($name:literal => $expect:literal,)*) => {
        [$(($name, &include_bytes!(concat!("../../../tests/data/malformed/gguf_", $name, ".gguf"))[..], $expect)),*]
    };
}

/// `tests/data/malformed/gguf_*.gguf` (written by `tests/data/gen_gguf_malformed.py`):
/// each is refused with a one-line message that says what and where.
#[test]
fn malformed_samples() {
    let cases = samples![
        "bad_magic" => "not a GGUF file: magic is GGML, expected GGUF",
        "version_1" => "GGUF version 1 is not supported (this parser reads versions 2 and 3)",
        "big_endian" => "GGUF version 50331648 is not supported (this parser reads versions 2 and 3); the file may be big-endian",
        "truncated_kv" => "key-value 1 `general.name`: truncated: the header needs 96 bytes but the file has 94",
        "kv_count_absurd" => "header: 1152921504606846976 key-value pairs cannot fit in the rest of the file",
        "tensor_count_absurd" => "header: 1099511627776 tensor infos cannot fit in the rest of the file",
        "string_len_absurd" => "key-value 0: 18446744073709551615 string bytes cannot fit in the rest of the file",
        "array_len_absurd" => "key-value 0 `k`: 1125899906842624 array elements cannot fit in the rest of the file (at most",
        "key_not_utf8" => "key-value 0: string at byte 32 is not valid UTF-8",
        "key_empty" => "key-value 0: the key is empty",
        "duplicate_key" => "key-value 2: duplicate key `general.quantization_version` (first at key-value 0)",
        "unknown_value_type" => "key-value 0 `k`: unknown value type 13 (GGUF defines 0 to 12)",
        "bad_bool" => "key-value 0 `k`: bool byte 2 is neither 0 nor 1",
        "array_too_deep" => "key-value 0 `k`: arrays nested deeper than 8 levels",
        "alignment_not_pow2" => "general.alignment 48 is not a power of two",
        "alignment_wrong_type" => "general.alignment must be of type uint32 but is uint64",
        "name_not_utf8" => "tensor 0: string at byte 32 is not valid UTF-8",
        "duplicate_tensor" => "tensor 1: duplicate tensor name `w` (first at tensor 0)",
        "unknown_tensor_type" => "tensor 0 `w`: tensor type 16 is not one this build knows (F32=0, F16=1,",
        "ndims_zero" => "tensor 0 `w`: 0 dimensions, expected 1 to 4",
        "ndims_five" => "tensor 0 `w`: 5 dimensions, expected 1 to 4",
        "zero_dim" => "tensor 0 `w`: dimension ne1 is 0",
        "dims_overflow" => "tensor 0 `w`: the element count overflows a signed 64-bit integer",
        "row_not_block" => "tensor 0 `w`: row length ne0 = 16 is not a multiple of the Q4_0 block (32)",
        "misaligned_offset" => "tensor 1 `b`: data offset 16 is not a multiple of the alignment 32",
        "data_past_end" => "tensor 0 `w`: data ends at byte 320, past the end of the file (319 bytes)",
        "overlap_out_of_order" => "tensor 2 `c`: data at offset 32 overlaps tensor 0, which ends at offset 64",
        "name_with_newline" => "tensor 1: duplicate tensor name `evil\\nname` (first at tensor 0)",
    ];
    for (name, bytes, expect) in cases {
        let msg = err(bytes).to_string();
        assert!(msg.starts_with(expect), "{name}: {msg}");
    }
}

/// Found by the fuzz target (`regressions/gguf_header/bad_magic_in_a_short_window`): a
/// window of fewer than four bytes reported a magic padded with zeros where the whole
/// file reports the real four bytes.
#[test]
fn a_short_window_never_judges_the_magic_on_fewer_than_four_bytes() {
    let f = b"\x1e\x1e\x1e\x1e\x1e\x1e\x1e";
    let whole = err(f);
    assert_eq!(whole, GgufError::BadMagic { found: [0x1e; 4] });
    for k in 0..4 {
        assert!(matches!(parse(&f[..k], f.len() as u64), Ok(Parsed::NeedMore { needed: 4 })), "{k}");
    }
    assert_eq!(parse(&f[..4], f.len() as u64).unwrap_err(), whole);
    // A file shorter than the magic is judged on what it has.
    assert_eq!(err(b"GX"), GgufError::BadMagic { found: *b"GX\0\0" });
    assert!(matches!(parse(b"G", 2), Ok(Parsed::NeedMore { needed: 2 })));
}
