//! Round trips against the core's decode, multi-record files, and rejection of
//! truncated, corrupted and arbitrary input.

use std::vec;
use std::vec::Vec;

use super::crc::{CRC_INIT, crc32};
use super::*;
use crate::format::{Bits, GroupFormat, GroupSize, Scheme};
use crate::{GroupCodec, Input, QuantError, StreamQuantizer, VecSink};

fn weights(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|i| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * (1.0 + (i % 7) as f32)
        })
        .collect()
}

/// Quantizes like the CLI does: streamed in odd chunks into a `VecSink`.
fn stream(format: GroupFormat, w: &[f32]) -> VecSink {
    let mut q = StreamQuantizer::<_, 256>::new(GroupCodec::new(format)).unwrap();
    let mut sink = VecSink::new();
    for chunk in w.chunks(37) {
        q.feed(Input::F32(chunk), &mut sink).unwrap();
    }
    q.finish(&mut sink).unwrap();
    sink
}

/// Every format. Under Miri, `testutil`'s subset (every width and scheme at the two
/// smallest group sizes): interpreted, each format takes about 3 s here.
fn all_formats() -> Vec<GroupFormat> {
    if cfg!(miri) {
        return crate::testutil::all_formats().collect();
    }
    Bits::ALL
        .into_iter()
        .flat_map(|b| {
            GroupSize::ALLOWED.into_iter().flat_map(move |g| {
                [Scheme::Asymmetric, Scheme::Symmetric]
                    .into_iter()
                    .map(move |s| GroupFormat::new(b.get() as u8, g, s).unwrap())
            })
        })
        .collect()
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn sample_file() -> Vec<u8> {
    let f = GroupFormat::new(4, 32, Scheme::Asymmetric).unwrap();
    let w = weights(100, 7);
    let s = stream(f, &w);
    write_tensor("blk.0.w", &[4, 25], f, &s.codes, &s.params).unwrap()
}

#[test]
fn round_trip_equals_core_dequantize_for_every_format() {
    // A padded last group for every group size: 300 elements, or under Miri 100 (its
    // formats have groups of 32 and 64).
    let n = if cfg!(miri) { 100 } else { 300 };
    let w = weights(n, 1);
    for f in all_formats() {
        let sink = stream(f, &w);
        let file = write_tensor("t", &[n as u64 / 100, 100], f, &sink.codes, &sink.params).unwrap();
        assert_eq!(&file[..5], b"AQDV\x01");
        let (t, rest) = DeviceTensor::parse(&file).unwrap();
        assert!(rest.is_empty());
        assert_eq!((t.name(), t.shape(), t.len(), t.format()), ("t", &[n as u64 / 100, 100][..], n, Some(f)));
        assert_eq!((t.codes(), t.params()), (&sink.codes[..], &sink.params[..]));

        // The oracle: the core's own decode of the same codes and parameters.
        let g = f.group_len();
        let mut expected = vec![0f32; t.groups() * g];
        crate::dequantize(f, &sink.codes, &sink.params, &mut expected).unwrap();

        let mut group = vec![0f32; g];
        for i in 0..t.groups() {
            let real = t.dequantize_group(i, &mut group).unwrap();
            assert_eq!(real, g.min(n - i * g), "{f:?} group {i}");
            assert_eq!(bits(&group), bits(&expected[i * g..(i + 1) * g]), "{f:?} group {i}");
        }
        let mut all = vec![0f32; n];
        t.dequantize_into(&mut all).unwrap();
        assert_eq!(bits(&all), bits(&expected[..n]), "{f:?}");
    }
}

#[test]
fn records_concatenate_into_one_file() {
    let f8 = GroupFormat::new(8, 64, Scheme::Symmetric).unwrap();
    let f2 = GroupFormat::new(2, 128, Scheme::Asymmetric).unwrap();
    let (a, b) = (weights(64, 2), weights(1000, 3));
    let (sa, sb) = (stream(f8, &a), stream(f2, &b));
    let mut file = write_tensor("a", &[64], f8, &sa.codes, &sa.params).unwrap();
    append_tensor(&mut file, "b", &[10, 10, 10], f2, &sb.codes, &sb.params).unwrap();

    let names: Vec<&str> = tensors(&file).map(|t| t.unwrap().name()).collect();
    assert_eq!(names, ["a", "b"]);
    let b_read = find(&file, "b").unwrap();
    assert_eq!((b_read.format(), b_read.groups(), b_read.len()), (Some(f2), 8, 1000));
    assert_eq!(find(&file, "c").unwrap_err(), DeviceError::NotFound);
    // Trailing garbage after the last record is reported, not ignored.
    file.extend_from_slice(b"junk");
    assert_eq!(tensors(&file).nth(2).unwrap().unwrap_err(), DeviceError::BadMagic);
}

#[test]
fn slice_writer_matches_vec_writer_and_reports_small_buffers() {
    let f = GroupFormat::new(4, 32, Scheme::Asymmetric).unwrap();
    let s = stream(f, &weights(100, 7));
    let file = sample_file();
    assert_eq!(encoded_len("blk.0.w", &[4, 25], f).unwrap(), file.len());
    let mut buf = vec![0u8; file.len() + 3];
    let n = write_tensor_into(&mut buf, "blk.0.w", &[4, 25], f, &s.codes, &s.params).unwrap();
    assert_eq!(&buf[..n], &file[..]);
    let err = write_tensor_into(&mut buf[..n - 1], "blk.0.w", &[4, 25], f, &s.codes, &s.params);
    assert_eq!(err, Err(DeviceError::Truncated { needed: n as u64, available: n as u64 - 1 }));
}

#[test]
fn writer_rejects_inconsistent_input() {
    let f = GroupFormat::new(4, 32, Scheme::Asymmetric).unwrap();
    let s = stream(f, &weights(100, 7));
    // 100 elements need 4 blocks; the shape says 96 (3 blocks).
    let err = write_tensor("w", &[96], f, &s.codes, &s.params).unwrap_err();
    assert_eq!(err, DeviceError::Quant(QuantError::LengthMismatch { expected: 48, actual: 64 }));
    let err = write_tensor("w", &[100], f, &s.codes, &s.params[1..]).unwrap_err();
    assert_eq!(err, DeviceError::Quant(QuantError::LengthMismatch { expected: 16, actual: 15 }));
    assert_eq!(write_tensor("w", &[1; 9], f, &[], &[]).unwrap_err(), DeviceError::RankTooLarge(9));
    let huge = [u64::MAX, 2];
    assert_eq!(write_tensor("w", &huge, f, &[], &[]).unwrap_err(), DeviceError::TooLarge);
}

#[test]
fn every_truncation_is_an_error() {
    let file = sample_file();
    for len in 0..file.len() {
        assert!(DeviceTensor::parse(&file[..len]).is_err(), "prefix of {len} bytes accepted");
    }
    let header_len = file.len() - 16 * 4 - 4 * 4 - CRC_LEN;
    assert_eq!(
        DeviceTensor::parse(&file[..header_len + 10]).unwrap_err(),
        DeviceError::Truncated { needed: file.len() as u64, available: header_len as u64 + 10 }
    );
}

#[test]
fn every_corrupted_byte_is_an_error() {
    let file = sample_file();
    let flips = [0x01u8, 0x80, 0xFF];
    for i in 0..file.len() {
        // Under Miri (a parse takes about 0.2 s interpreted) one flip a byte, taking
        // the three in turn: every byte is still corrupted once.
        let mine = if cfg!(miri) { &flips[i % 3..i % 3 + 1] } else { &flips[..] };
        for &flip in mine {
            let mut bad = file.clone();
            bad[i] ^= flip;
            assert!(DeviceTensor::parse(&bad).is_err(), "byte {i} ^ {flip:#x} accepted");
        }
    }
    let mut bad = file.clone();
    let last = bad.len() - CRC_LEN - 1;
    bad[last] ^= 1;
    assert!(matches!(DeviceTensor::parse(&bad), Err(DeviceError::ChecksumMismatch { .. })));
}

#[test]
fn header_errors_name_the_problem() {
    let f = GroupFormat::new(4, 32, Scheme::Asymmetric).unwrap();
    let good = DeviceHeader {
        magic: MAGIC,
        version: VERSION,
        name: "w",
        shape: Shape::new(&[64]).unwrap(),
        elements: 64,
        codec: CodecDesc::from_format(f),
        codes_len: 16,
        params_len: 4,
        blocks: 2,
    };
    let parse = |h: &DeviceHeader<'_>| {
        let mut rec = postcard::to_allocvec(h).unwrap();
        rec.extend_from_slice(&[0u8; 2 * 20]);
        let crc = crc32(CRC_INIT, &rec) ^ CRC_INIT;
        rec.extend_from_slice(&crc.to_le_bytes());
        DeviceTensor::parse(&rec).map(|(t, _)| t.len())
    };
    assert_eq!(parse(&good), Ok(64));
    assert_eq!(parse(&DeviceHeader { version: 2, ..good }), Err(DeviceError::UnsupportedVersion(2)));
    assert_eq!(
        parse(&DeviceHeader { elements: 65, ..good }),
        Err(DeviceError::ShapeMismatch { shape_elements: 64, elements: 65 })
    );
    assert_eq!(
        parse(&DeviceHeader { blocks: 3, ..good }),
        Err(DeviceError::BlockCountMismatch { expected: 2, actual: 3 })
    );
    assert_eq!(
        parse(&DeviceHeader { params_len: 2, ..good }),
        Err(DeviceError::BlockLayoutMismatch { codes_len: 16, params_len: 2 })
    );
    let bad_codec = CodecDesc::Group { bits: 3, group: 32, scheme: SchemeTag::Symmetric };
    assert_eq!(
        parse(&DeviceHeader { codec: bad_codec, ..good }),
        Err(DeviceError::Quant(QuantError::InvalidBitWidth(3)))
    );
    // A header that claims far more data than the bytes present.
    let blocks = u64::MAX.div_ceil(32);
    let huge = DeviceHeader { shape: Shape::new(&[u64::MAX]).unwrap(), elements: u64::MAX, blocks, ..good };
    assert!(matches!(parse(&huge), Err(DeviceError::Truncated { available: 87, .. })));
    // With INT8 codes the payload length (36 bytes a block) overflows u64.
    let int8 = CodecDesc::Group { bits: 8, group: 32, scheme: SchemeTag::Asymmetric };
    let huge8 = DeviceHeader { codec: int8, codes_len: 32, ..huge };
    assert_eq!(parse(&huge8), Err(DeviceError::TooLarge));
    assert_eq!(DeviceTensor::parse(b"GGUF\x03").unwrap_err(), DeviceError::BadMagic);
    // A ninth dimension is refused by the shape decoder.
    let mut nine = postcard::to_allocvec(&good).unwrap();
    let shape_at = 4 + 1 + 2; // magic, version, "w"
    assert_eq!(nine[shape_at], 1);
    nine.splice(shape_at..shape_at + 2, [9u8, 1, 1, 1, 1, 1, 1, 1, 1, 64]);
    assert_eq!(DeviceTensor::parse(&nine).unwrap_err(), DeviceError::BadHeader);
}

#[test]
fn arbitrary_bytes_never_panic() {
    let file = sample_file();
    let mut s = 0x1234_5678u32;
    // Interpreted, a case takes about 30 ms: Miri tries 300.
    let cases = if cfg!(miri) { 300 } else { 3000 };
    for n in 0..cases {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let len = (s >> 16) as usize % (file.len() + 8);
        let mut bytes: Vec<u8> = (0..len)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 24) as u8
            })
            .collect();
        // Half the cases keep a valid prefix so the parser gets past the magic.
        let keep = if n % 2 == 0 { (s as usize >> 3) % file.len().min(len + 1) } else { 0 };
        bytes[..keep].copy_from_slice(&file[..keep]);
        let _ = tensors(&bytes).count();
    }
}

#[test]
fn group_reader_checks_its_arguments() {
    let file = sample_file();
    let t = find(&file, "blk.0.w").unwrap();
    let mut out = [0f32; 32];
    assert_eq!(t.dequantize_group(3, &mut out), Ok(4));
    assert_eq!(t.dequantize_group(4, &mut out), Err(DeviceError::GroupOutOfRange { group: 4, groups: 4 }));
    assert_eq!(
        t.dequantize_group(0, &mut out[..31]),
        Err(DeviceError::Quant(QuantError::LengthMismatch { expected: 32, actual: 31 }))
    );
    assert_eq!(
        t.dequantize_into(&mut [0f32; 99]),
        Err(DeviceError::Quant(QuantError::LengthMismatch { expected: 100, actual: 99 }))
    );
}

#[test]
fn crc32_known_answer() {
    assert_eq!(crc32(CRC_INIT, b"123456789") ^ CRC_INIT, 0xCBF4_3926);
}

/// On aarch64 the reader (and every default codec) must run the NEON kernels.
#[cfg(target_arch = "aarch64")]
#[test]
fn neon_is_the_selected_backend_on_aarch64() {
    assert_eq!(crate::Backend::detect(), crate::Backend::Neon);
    let file = sample_file();
    assert_eq!(find(&file, "blk.0.w").unwrap().backend(), crate::Backend::Neon);
}

/// Two-level records (the presets' layout): written, parsed and decoded by the no_std
/// reader exactly as the codec a Parquet reader rebuilds from the layout id decodes
/// them, padded last block included.
#[test]
fn two_level_records_decode_like_the_std_decoder_bit_for_bit() {
    use std::string::ToString;

    use crate::BlockCodec;
    use crate::preset::{AnyCodec, LayoutKind, Preset};
    for p in [Preset::Int2, Preset::Int2Fine, Preset::Int4, Preset::Int4Fine, Preset::Int8] {
        let codec = p.codec();
        let LayoutKind::TwoLevel { format, per_row: false } = codec.layout().kind else { panic!("{p}") };
        let n: usize = 256 * 3 + 100;
        let x: Vec<f32> = (0..n).map(|i| ((i as f32 * 0.37).sin() * (1.0 + (i % 7) as f32)) * 0.1).collect();
        let blocks = n.div_ceil(256);
        let mut q = crate::StreamQuantizer::<AnyCodec, 256>::new(codec).unwrap();
        let mut sink = crate::VecSink::default();
        q.feed(crate::Input::F32(&x), &mut sink).unwrap();
        q.finish(&mut sink).unwrap();
        assert_eq!(
            (sink.codes.len(), sink.params.len()),
            (blocks * format.codes_len(), blocks * format.params_len(false))
        );
        let file = write_tensor("w", &[1, n as u64], format, &sink.codes, &sink.params).unwrap();
        let t = find(&file, "w").unwrap();
        assert_eq!(
            (t.bits(), t.format(), t.group_len(), t.groups()),
            (format.bits.get() as u8, None, 256, blocks)
        );
        let mut got = vec![0f32; n];
        t.dequantize_into(&mut got).unwrap();
        // The std side: the codec rebuilt from the stored layout id, as the Parquet reader does.
        let id = codec.layout().to_string();
        let std_codec = AnyCodec::from_layout_id(&id, None).unwrap();
        let mut want = vec![0f32; blocks * 256];
        std_codec.decode(&sink.codes, &sink.params, &mut want).unwrap();
        assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{p}");
        let mut last = [0f32; 256];
        assert_eq!(t.dequantize_group(blocks - 1, &mut last).unwrap(), 100);
        assert_eq!(
            last[..100].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want[768..868].iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        // A header whose two-level knobs are out of range is refused, never decoded.
        let mut bad = file.clone();
        let at = bad.windows(2).position(|w| w == [1, format.bits.get() as u8]).unwrap();
        bad[at + 1] = 3;
        assert!(DeviceTensor::parse(&bad).is_err(), "{p}");
    }
}

/// Raw records (tensors stored unquantized): float dtypes decode to their f32 values,
/// integer dtypes keep their bytes and refuse to decode.
#[test]
fn raw_records_keep_bytes_and_decode_floats() {
    let vals = [1.5f32, -0.0, 3.25e-3, f32::MAX];
    let f32_bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    let h: Vec<u8> = vals.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
    let ints: Vec<u8> = (0..3i64).flat_map(|i| i.to_le_bytes()).collect();
    let mut file = write_tensor("a", &[4], DeviceCodec::Raw(RawDtype::F32), &f32_bytes, &[]).unwrap();
    append_tensor(&mut file, "b", &[2, 2], DeviceCodec::Raw(RawDtype::F16), &h, &[]).unwrap();
    append_tensor(&mut file, "c", &[3], DeviceCodec::Raw(RawDtype::I64), &ints, &[]).unwrap();
    let a = find(&file, "a").unwrap();
    let mut out = [0f32; 4];
    a.dequantize_into(&mut out).unwrap();
    assert_eq!(out.map(f32::to_bits), vals.map(f32::to_bits));
    assert_eq!((a.raw_dtype(), a.groups(), a.group_len(), a.params()), (Some(RawDtype::F32), 4, 1, &[][..]));
    let b = find(&file, "b").unwrap();
    b.dequantize_into(&mut out).unwrap();
    assert_eq!(out.map(f32::to_bits), vals.map(|v| half::f16::from_f32(v).to_f32().to_bits()));
    let c = find(&file, "c").unwrap();
    assert_eq!(c.codes(), &ints[..]);
    assert_eq!(c.dequantize_into(&mut [0f32; 3]), Err(DeviceError::NotFloat("I64")));
    assert!(
        write_tensor("d", &[3], DeviceCodec::Raw(RawDtype::F32), &f32_bytes, &[]).is_err(),
        "length checked"
    );
    for d in RawDtype::ALL {
        assert_eq!(RawDtype::from_name(d.name()), Some(d));
    }
}
