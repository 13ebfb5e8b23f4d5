//! The GGUF header parser on arbitrary bytes (odd first byte: behind a valid magic and
//! version 3, so the fuzzer starts inside the counts). Properties: no panic, one-line
//! errors; a window of the file gives `NeedMore` (asking for more than the window and
//! no more than the file), the same error or the same header as the whole file; a
//! parsed header's tensors lie inside the file, aligned and disjoint, with consistent
//! sizes and lookups; the writer accepts what the parser accepted and its output
//! parses back to the same metadata and tensors.
#![no_main]

use arrowquant_core::gguf::{self, GgufError, GgufHeader, GgufWriter, MAX_NAME_LEN, Parsed};
use libfuzzer_sys::fuzz_target;

/// Largest alignment for which the rewrite is tried (the writer pads the header in
/// memory, and a parsed file may ask for 2^31).
const MAX_REWRITE_ALIGNMENT: u64 = 1 << 16;

fn one_line(e: &GgufError) {
    let msg = e.to_string();
    assert!(!msg.chars().any(char::is_control), "{msg:?}");
}

fn check_header(h: &GgufHeader, file: &[u8]) {
    let len = file.len() as u64;
    let a = h.alignment();
    assert!(a.is_power_of_two());
    assert!(h.header_len() <= h.data_offset() && h.data_offset() % a == 0);
    assert!(h.data_offset() - h.header_len() < a);
    let mut ranges = Vec::new();
    for (t, r) in h.tensor_ranges() {
        assert!((1..=4).contains(&t.dims().len()));
        assert!(t.dims().iter().all(|&n| n > 0));
        assert_eq!(t.ggml_type().bytes_for(t.elements()), Some(t.n_bytes()));
        assert_eq!(t.dims()[0] % t.ggml_type().block_len() as u64, 0);
        assert!(r.start >= h.data_offset() && r.start % a == 0 && r.end <= len && r.start < r.end);
        assert_eq!(r.end - r.start, t.n_bytes());
        assert_eq!(h.tensor(t.name()).map(|x| x.name()), Some(t.name()));
        ranges.push(r);
    }
    ranges.sort_by_key(|r| r.start);
    assert!(ranges.windows(2).all(|w| w[0].end <= w[1].start));
    let mut keys: Vec<&str> = h.metadata().iter().map(|(k, _)| k).collect();
    assert!(keys.iter().all(|k| !k.is_empty()));
    keys.sort_unstable();
    assert!(keys.windows(2).all(|w| w[0] != w[1]));
}

/// Writes the parsed header again and parses the result.
fn rewrite(h: &GgufHeader) {
    if h.alignment() > MAX_REWRITE_ALIGNMENT {
        return;
    }
    let mut w = GgufWriter::with_metadata(h.metadata().clone());
    for t in h.tensors() {
        match w.push_tensor(t.name(), t.dims(), t.ggml_type()) {
            Ok(()) => {}
            Err(GgufError::NameTooLong { .. }) if t.name().len() >= MAX_NAME_LEN => return,
            Err(e) => panic!("the writer refuses a parsed tensor: {e}"),
        }
    }
    let layout = w.finish().unwrap_or_else(|e| panic!("the writer refuses a parsed header: {e}"));
    let back = match gguf::parse(layout.header_bytes(), layout.file_len()) {
        Ok(Parsed::Header(b)) => b,
        other => panic!("the writer's header does not parse: {other:?}"),
    };
    // Debug, so that NaN values compare equal to themselves.
    assert_eq!(format!("{:?}", back.metadata()), format!("{:?}", h.metadata()));
    assert_eq!(back.tensors().len(), h.tensors().len());
    for (b, t) in back.tensors().iter().zip(h.tensors()) {
        assert_eq!((b.name(), b.dims(), b.ggml_type()), (t.name(), t.dims(), t.ggml_type()));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let prefixed;
    let file: &[u8] = if mode & 1 == 1 {
        let mut v = b"GGUF\x03\0\0\0".to_vec();
        v.extend_from_slice(rest);
        prefixed = v;
        &prefixed
    } else {
        rest
    };
    let len = file.len() as u64;
    let full = GgufHeader::parse(file);
    match &full {
        Ok(h) => check_header(h, file),
        Err(e) => one_line(e),
    }

    let k = usize::from(mode >> 1) * file.len() / 127;
    match gguf::parse(&file[..k], len) {
        Ok(Parsed::NeedMore { needed }) => assert!(needed > k as u64 && needed <= len, "{k} {needed} {len}"),
        Ok(Parsed::Header(h)) => {
            let whole = full.as_ref().expect("a window parses but the whole file does not");
            assert_eq!(format!("{h:?}"), format!("{whole:?}"));
        }
        Err(e) => assert_eq!(full.as_ref().err(), Some(&e), "window {k}"),
    }

    if let Ok(h) = &full {
        rewrite(h);
    }
});
