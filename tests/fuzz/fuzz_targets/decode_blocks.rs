//! Unpacking and decoding arbitrary bytes: `Bits::unpack`/`pack`, `dequantize_with`
//! on every backend, and `BlockCodec::decode` of every codec (group, searched group,
//! presets, two-level with any knobs, per-row two-level, layout ids parsed from the
//! input). Properties: no panic; exact lengths give `Ok` or `Corrupt`, wrong lengths a
//! length error; every backend decodes bit for bit like the scalar reference; a
//! successful decode of finite parameters is finite; pack(unpack(b)) == b.
#![no_main]

use arrowquant_core::{
    AnyCodec, Backend, Bits, BlockCodec, GroupFormat, QuantError, RowScales, dequantize_with,
};
use arrowquant_fuzz::{Cursor, choose_codec};
use libfuzzer_sys::fuzz_target;

fn check_lengths_error(r: Result<(), QuantError>, exact: bool) {
    match r {
        Ok(()) | Err(QuantError::Corrupt) => assert!(exact, "wrong lengths accepted: {r:?}"),
        Err(QuantError::LengthMismatch { .. } | QuantError::NotBlockMultiple { .. }) => {
            assert!(!exact, "exact lengths rejected: {r:?}")
        }
        Err(e) => panic!("unexpected decode error {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    match c.byte() % 4 {
        // Packing: unpack then pack is the identity on bytes.
        0 => {
            let bits = c.pick(&Bits::ALL);
            let packed = c.rest();
            let mut codes = vec![0u8; packed.len() * bits.per_byte()];
            bits.unpack(packed, &mut codes).unwrap();
            assert!(codes.iter().all(|&x| u32::from(x) <= bits.max_code()));
            let mut again = vec![0u8; packed.len()];
            bits.pack(&codes, &mut again).unwrap();
            assert_eq!(packed, &again[..]);
            // A wrong output length is an error, not a panic.
            let mut short = vec![0u8; codes.len().saturating_sub(1)];
            if !codes.is_empty() {
                assert!(bits.unpack(packed, &mut short).is_err());
            }
        }
        // Group formats: every backend agrees with the scalar reference, bit for bit.
        1 => {
            let codec = choose_codec(&mut c);
            let AnyCodec::Group(g) = codec else { return };
            let f: GroupFormat = g.format();
            let blocks = usize::from(c.byte() % 9);
            let skew = c.byte();
            let exact = skew < 200;
            let (dc, dp, dout) = if exact { (0, 0, 0) } else { (skew % 3, (skew / 3) % 3, (skew / 9) % 3) };
            let codes = c.take(blocks * f.codes_len() + usize::from(dc)).to_vec();
            let params = c.take(blocks * f.params_len() + usize::from(dp)).to_vec();
            let out_len = blocks * f.group_len() + usize::from(dout);
            let exact = codes.len() == blocks * f.codes_len()
                && params.len() == blocks * f.params_len()
                && out_len == blocks * f.group_len();
            let mut reference = vec![0f32; out_len];
            let r = dequantize_with(Backend::Scalar, f, &codes, &params, &mut reference);
            check_lengths_error(r, exact);
            if r.is_ok() {
                assert!(
                    reference.iter().all(|v| v.is_finite()),
                    "finite params decoded to a non-finite value"
                );
            }
            for b in Backend::available() {
                let mut out = vec![0f32; out_len];
                let rb = dequantize_with(b, f, &codes, &params, &mut out);
                assert_eq!(rb, r, "backend {b}");
                if r.is_ok() {
                    let same = reference.iter().zip(&out).all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "backend {b} differs from the scalar reference");
                }
            }
        }
        // Any codec: decode arbitrary code and parameter bytes.
        2 => {
            let codec = choose_codec(&mut c);
            decode_any(&codec, &mut c);
        }
        // A layout id and optional row scales from the input, as a file reader would.
        _ => {
            let id_len = usize::from(c.byte() % 24);
            let Ok(id) = std::str::from_utf8(c.take(id_len)) else { return };
            let row = if c.byte() & 1 == 1 {
                let raw = [c.byte(), c.byte(), c.byte(), c.byte()];
                match RowScales::from_le_bytes(raw) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        assert_eq!(e, QuantError::Corrupt, "row scales {raw:?}");
                        return;
                    }
                }
            } else {
                None
            };
            let Some(codec) = AnyCodec::from_layout_id(id, row) else { return };
            // The printed id of a parsed id parses to the same layout.
            let printed = codec.layout().to_string();
            let again = AnyCodec::from_layout_id(&printed, row).expect("printed ids parse");
            assert_eq!(again.layout(), codec.layout(), "{id} -> {printed}");
            decode_any(&codec, &mut c);
        }
    }
});

fn decode_any(codec: &AnyCodec, c: &mut Cursor<'_>) {
    let blocks = usize::from(c.byte() % 5);
    let wrong = c.byte() >= 220;
    let extra = usize::from(wrong);
    let codes = c.take(blocks * codec.codes_len() + extra).to_vec();
    let params = c.take(blocks * codec.params_len()).to_vec();
    let mut out = vec![0f32; blocks * codec.block_len()];
    let exact = codes.len() == blocks * codec.codes_len() && params.len() == blocks * codec.params_len();
    let r = codec.decode(&codes, &params, &mut out);
    check_lengths_error(r, exact);
}
