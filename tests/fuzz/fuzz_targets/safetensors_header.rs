//! Safetensors header parsing on arbitrary bytes: `parse_header` with the true file
//! length or a longer one, and `Model::open` on the same bytes as a file. Properties:
//! no panic; an accepted header's tensors lie inside the data section, do not overlap
//! and have `dtype size x shape` bytes; the file path agrees with `parse_header`; a
//! rejected file gets a one-line error naming it.
#![no_main]

use arrowquant_fuzz::{Cursor, assert_names_file, scratch_dir};
use arrowquant_std::Model;
use arrowquant_std::{Header, parse_header};
use libfuzzer_sys::fuzz_target;

fn check(h: &Header, file_len: u64) {
    assert_eq!(h.data_start + h.data_len, file_len);
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for t in &h.tensors {
        let bytes = t.shape.iter().try_fold(t.dtype.size(), |a, &d| a.checked_mul(d));
        assert_eq!(bytes, Some(t.byte_len), "{}", t.name);
        assert!(t.offset >= h.data_start && t.offset + t.byte_len <= file_len, "{}", t.name);
        if t.byte_len > 0 {
            spans.push((t.offset, t.offset + t.byte_len));
        }
    }
    spans.sort();
    assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "overlap accepted");
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let extra = u64::from(c.byte());
    let file = c.rest();
    let len = file.len() as u64;
    let exact = parse_header(file, len);
    if let Ok(h) = &exact {
        check(h, len);
    }
    if let Ok(h) = parse_header(file, len + extra) {
        check(&h, len + extra);
    }
    let path = scratch_dir().join("model.safetensors");
    std::fs::write(&path, file).unwrap();
    match (Model::open(&path), &exact) {
        (Ok(m), Ok(h)) => {
            assert_eq!(m.tensors.len(), h.tensors.len());
            assert_eq!(m.total_bytes(), h.tensors.iter().map(|t| t.byte_len).sum::<u64>());
        }
        (Err(e), Err(_)) => assert_names_file(&e, &path),
        (m, h) => panic!("Model::open {:?} but parse_header {:?}", m.err(), h.as_ref().err()),
    }
});
