//! Tests of the two-level formats: layout arithmetic, round trips, outliers, per-row
//! mode, the NaN policy and corrupt input.

use std::vec;
use std::vec::Vec;

use super::*;
use crate::metrics::QualityAccumulator;
use crate::search::{SearchConfig, Weighting};
use crate::stream::{StreamQuantizer, VecSink};

/// Deterministic heavy-tailed test data (a cubed uniform plus a small linear part).
pub(crate) fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let u = (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            u * u * u * 4.0 + u * 0.05
        })
        .collect()
}

fn round_trip(codec: &TwoLevelCodec, x: &[f32]) -> (Vec<f32>, Vec<u8>, Vec<u8>) {
    let n = x.len() / codec.block_len();
    let mut codes = vec![0u8; n * codec.codes_len()];
    let mut params = vec![0u8; n * codec.params_len()];
    codec.encode(Input::F32(x), 0, &mut codes, &mut params).unwrap();
    let mut y = vec![0f32; x.len()];
    codec.decode(&codes, &params, &mut y).unwrap();
    (y, codes, params)
}

/// `normal` elements, or `miri` under Miri: interpreted, encoding one 256-element
/// block takes about 1.5 s with `SearchConfig::FAST` and 7 s with `FINE`.
fn len(normal: usize, miri: usize) -> usize {
    if cfg!(miri) { miri } else { normal }
}

fn sqnr(x: &[f32], y: &[f32]) -> f64 {
    let mut q = QualityAccumulator::new();
    q.update(x, y);
    q.finish().sqnr_db
}

#[test]
fn layout_arithmetic_matches_the_docs() {
    let q2k = TwoLevelFormat::new(2, 256, 16, 4, 4).unwrap();
    assert_eq!((q2k.codes_len(), q2k.params_len(false)), (64, 20));
    assert_eq!(q2k.bits_per_weight(false), 2.625);
    let q4k = TwoLevelFormat::new(4, 256, 32, 6, 6).unwrap();
    assert_eq!((q4k.codes_len(), q4k.params_len(false)), (128, 16));
    assert_eq!(q4k.bits_per_weight(false), 4.5);
    assert_eq!(q4k.params_len(true), 12);
    let q8 = TwoLevelFormat::new(8, 256, 32, 6, 6).unwrap();
    assert_eq!(q8.bits_per_weight(false), 8.5);
    let o = q2k.with_outliers(2).unwrap();
    assert_eq!(o.params_len(false), 26);
    assert_eq!(o.bits_per_weight(false), 2.625 + 48.0 / 256.0);
}

#[test]
fn invalid_knobs_are_errors() {
    assert_eq!(TwoLevelFormat::new(3, 256, 16, 4, 4), Err(QuantError::InvalidBitWidth(3)));
    assert_eq!(TwoLevelFormat::new(4, 200, 16, 4, 4), Err(QuantError::InvalidGroupSize(200)));
    assert_eq!(TwoLevelFormat::new(4, 256, 12, 4, 4), Err(QuantError::InvalidGroupSize(12)));
    assert_eq!(TwoLevelFormat::new(4, 64, 128, 4, 4), Err(QuantError::InvalidGroupSize(128)));
    assert_eq!(TwoLevelFormat::new(4, 256, 16, 0, 4), Err(QuantError::InvalidBitWidth(0)));
    assert_eq!(TwoLevelFormat::new(4, 256, 16, 4, 9), Err(QuantError::InvalidBitWidth(9)));
    let f = TwoLevelFormat::new(4, 256, 16, 4, 4).unwrap();
    assert_eq!(f.with_outliers(17), Err(QuantError::InvalidGroupSize(17)));
}

#[test]
fn error_stays_within_half_a_step_of_the_chosen_parameters() {
    // Every decoded value must be the nearest grid point of its sub-group unless
    // clipped: |x - y| <= step/2 inside the sub-group's representable range.
    let x = data(len(4096, 256), 3);
    for (bits, sub, sb) in [(2u8, 16usize, 4u8), (4, 32, 6), (8, 32, 6)] {
        let f = TwoLevelFormat::new(bits, 256, sub, sb, sb).unwrap();
        let codec = TwoLevelCodec::new(f, SearchConfig::FAST);
        let (y, _, params) = round_trip(&codec, &x);
        let pl = f.params_len(false);
        for (blk, p) in params.chunks_exact(pl).enumerate() {
            let d = f16::from_le_bytes([p[0], p[1]]).to_f32();
            let dmin = f16::from_le_bytes([p[2], p[3]]).to_f32();
            let mut sc = [0u8; MAX_SUBS];
            let mut mc = [0u8; MAX_SUBS];
            bitpack::unpack_bits(&p[4..4 + f.scales_len()], f.scale_bits(), &mut sc[..f.subs()]);
            bitpack::unpack_bits(&p[4 + f.scales_len()..pl], f.min_bits(), &mut mc[..f.subs()]);
            for j in 0..f.subs() {
                let (step, lo) = (d * f32::from(sc[j]), -dmin * f32::from(mc[j]));
                let hi = lo + step * f.bits.max_code() as f32;
                for i in blk * 256 + j * sub..blk * 256 + (j + 1) * sub {
                    let inside = x[i] >= lo && x[i] <= hi;
                    if inside {
                        assert!((x[i] - y[i]).abs() <= step * 0.5 * 1.0001 + 1e-7, "bits {bits} i {i}");
                    } else {
                        assert!(
                            y[i] == lo
                                || y[i] == lo + step * f.bits.max_code() as f32
                                || (y[i] - hi).abs() < 1e-5
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn quality_floor_on_heavy_tailed_data() {
    // Floors measured with margin; a broken search or decoder falls far below them.
    let x = data(len(1 << 14, 256), 11);
    let cases = [(2u8, 16usize, 4u8, 9.0f64), (4, 32, 6, 21.0), (8, 32, 6, 43.0)];
    for (bits, sub, sb, floor) in cases {
        let f = TwoLevelFormat::new(bits, 256, sub, sb, sb).unwrap();
        // Under Miri the fine search runs at 2 bits only, where it matters most.
        let fine = !cfg!(miri) || bits == 2;
        for search in [SearchConfig::FAST, SearchConfig::FINE].into_iter().take(if fine { 2 } else { 1 }) {
            let (y, _, _) = round_trip(&TwoLevelCodec::new(f, search), &x);
            let db = sqnr(&x, &y);
            assert!(db > floor, "bits {bits}: {db} dB");
        }
    }
}

#[test]
fn fine_search_beats_plain_rounding_of_min_max() {
    // Rounding min-max parameters (no grid, no refit, no neighbours) versus the full search.
    let x = data(len(1 << 13, 256), 5);
    let f = TwoLevelFormat::new(2, 256, 16, 4, 4).unwrap();
    let naive = SearchConfig { refit_iters: 0, block_refits: 0, ..SearchConfig::FAST };
    let (y0, _, _) = round_trip(&TwoLevelCodec::new(f, naive), &x);
    let (y1, _, _) = round_trip(&TwoLevelCodec::new(f, SearchConfig::FINE), &x);
    assert!(sqnr(&x, &y1) > sqnr(&x, &y0) + 1.0, "{} vs {}", sqnr(&x, &y1), sqnr(&x, &y0));
}

#[test]
fn constant_and_zero_blocks_decode_exactly() {
    let f = TwoLevelFormat::new(4, 256, 32, 6, 6).unwrap();
    let codec = TwoLevelCodec::new(f, SearchConfig::FINE);
    let (y, _, _) = round_trip(&codec, &[0.0; 256]);
    assert!(y.iter().all(|&v| v == 0.0));
    // A constant is stored as a quantized sub-min: exact up to f16 precision of `dmin`.
    let (y, _, _) = round_trip(&codec, &[-0.5; 256]);
    assert!(y.iter().all(|&v| (v + 0.5).abs() <= 0.5 / 1024.0), "{:?}", &y[..4]);
    assert!(y.iter().all(|&v| v == y[0]));
}

#[test]
fn outliers_are_kept_and_help() {
    let mut x = data(len(1024, 512), 9);
    x[5] = 40.0;
    x[300] = -25.0;
    x[301] = 31.0;
    let f = TwoLevelFormat::new(2, 256, 16, 4, 4).unwrap();
    let with = f.with_outliers(2).unwrap();
    let (y0, _, _) = round_trip(&TwoLevelCodec::new(f, SearchConfig::FAST), &x);
    let (y1, _, _) = round_trip(&TwoLevelCodec::new(with, SearchConfig::FAST), &x);
    assert_eq!((y1[5], y1[300], y1[301]), (40.0, -25.0, 31.0));
    assert!(sqnr(&x, &y1) > sqnr(&x, &y0) + 3.0);
}

#[test]
fn weighted_search_runs_and_stays_close() {
    let x = data(len(4096, 256), 21);
    let f = TwoLevelFormat::new(4, 256, 32, 6, 6).unwrap();
    // Under Miri the comparison uses FAST (interpreted, FINE takes about 7 s a block):
    // the weights enter the same error and refit code either way.
    let base = if cfg!(miri) { SearchConfig::FAST } else { SearchConfig::FINE };
    let (y0, _, _) = round_trip(&TwoLevelCodec::new(f, base), &x);
    for weighting in [Weighting::Magnitude, Weighting::Energy] {
        let s = SearchConfig { weighting, ..base };
        let (y1, _, _) = round_trip(&TwoLevelCodec::new(f, s), &x);
        // Weighting trades plain MSE for accuracy on large weights: close, not better.
        assert!(sqnr(&x, &y1) > sqnr(&x, &y0) - 1.5);
    }
}

#[test]
fn per_row_mode_round_trips_with_smaller_blocks() {
    let x = data(len(384 * 4, 384), 13);
    let f = TwoLevelFormat::new(4, 128, 32, 6, 6).unwrap();
    let base = TwoLevelCodec::new(f, SearchConfig::FAST);
    let mut acc = QualityAccumulator::new();
    for row in x.chunks(384) {
        let scales = base.row_scales(Input::F32(row)).unwrap();
        let header = scales.to_le_bytes();
        let codec = TwoLevelCodec::with_row(f, SearchConfig::FAST, RowScales::from_le_bytes(header).unwrap());
        assert_eq!(codec.params_len(), f.params_len(false) - 4);
        let (y, _, _) = round_trip(&codec, row);
        acc.update(row, &y);
    }
    assert!(acc.finish().sqnr_db > 19.0, "{}", acc.finish().sqnr_db);
    // A row that ends in a partial sub-group: its tail counts, and errors name it.
    let mut odd = data(300, 4);
    odd[290] = 9.0;
    let with_tail = base.row_scales(Input::F32(&odd)).unwrap();
    let without = base.row_scales(Input::F32(&odd[..288])).unwrap();
    assert!(with_tail.d.to_f32() > without.d.to_f32());
    odd[299] = f32::NAN;
    assert_eq!(base.row_scales(Input::F32(&odd)), Err(QuantError::NonFinite { element: 299 }));
}

#[test]
fn streaming_matches_whole_buffer_encoding() {
    // A padded last block either way.
    let n = len(1000, 300);
    let x = data(n, 17);
    let f = TwoLevelFormat::new(2, 256, 16, 4, 4).unwrap().with_outliers(1).unwrap();
    let codec = TwoLevelCodec::new(f, SearchConfig::FAST);
    let mut q = StreamQuantizer::<_, 256>::new(codec).unwrap().track_quality(true);
    let mut sink = VecSink::new();
    for chunk in x.chunks(77) {
        q.feed(Input::F32(chunk), &mut sink).unwrap();
    }
    let summary = q.finish(&mut sink).unwrap();
    let blocks = n.div_ceil(256);
    assert_eq!(
        (summary.elements, summary.blocks, summary.padding),
        (n as u64, blocks as u64, blocks * 256 - n)
    );
    let (_, codes, params) = round_trip(&codec, &x[..(blocks - 1) * 256]);
    assert_eq!(&sink.codes[..codes.len()], &codes[..]);
    assert_eq!(&sink.params[..params.len()], &params[..]);
    assert!(summary.quality.unwrap().sqnr_db > 8.0);
}

#[test]
fn non_finite_and_out_of_range_input_is_rejected_by_element() {
    let f = TwoLevelFormat::new(4, 256, 32, 6, 6).unwrap();
    let codec = TwoLevelCodec::new(f, SearchConfig::FAST);
    let mut x = data(512, 1);
    let (mut codes, mut params) = (vec![0u8; 256], vec![0u8; 32]);
    x[300] = f32::INFINITY;
    assert_eq!(
        codec.encode(Input::F32(&x), 1000, &mut codes, &mut params),
        Err(QuantError::NonFinite { element: 1300 })
    );
    x[300] = f32::NAN;
    assert_eq!(
        codec.encode(Input::F32(&x), 0, &mut codes, &mut params),
        Err(QuantError::NonFinite { element: 300 })
    );
    x[300] = -70000.0;
    assert_eq!(
        codec.encode(Input::F32(&x), 0, &mut codes, &mut params),
        Err(QuantError::OutOfRange { element: 300 })
    );
    x[300] = 0.0;
    let mut row = x.clone();
    row[7] = f32::NAN;
    assert_eq!(codec.row_scales(Input::F32(&row)), Err(QuantError::NonFinite { element: 7 }));
    assert_eq!(
        codec.encode(Input::F32(&x[..100]), 0, &mut codes, &mut params),
        Err(QuantError::NotBlockMultiple { len: 100, block: 256 })
    );
}

#[test]
fn corrupt_blocks_are_errors() {
    let f = TwoLevelFormat::new(4, 256, 32, 6, 6).unwrap().with_outliers(1).unwrap();
    let codec = TwoLevelCodec::new(f, SearchConfig::FAST);
    let x = data(256, 2);
    let (_, codes, mut params) = round_trip(&codec, &x);
    let mut y = vec![0f32; 256];
    let last = params.len() - 1;
    params[last] = 255; // outlier index 255 is inside a 256-block: fine
    assert!(codec.decode(&codes, &params, &mut y).is_ok());
    params[0..2].copy_from_slice(&f16::NAN.to_le_bytes());
    assert_eq!(codec.decode(&codes, &params, &mut y), Err(QuantError::Corrupt));
    let g = TwoLevelFormat::new(4, 128, 32, 6, 6).unwrap().with_outliers(1).unwrap();
    let small = TwoLevelCodec::new(g, SearchConfig::FAST);
    let (_, codes, mut params) = round_trip(&small, &x[..128]);
    let last = params.len() - 1;
    params[last] = 200; // outside a 128-block
    assert_eq!(small.decode(&codes, &params, &mut y[..128]), Err(QuantError::Corrupt));
    assert_eq!(RowScales::from_le_bytes([0, 0x7C, 0, 0]), Err(QuantError::Corrupt));
}

#[test]
fn every_instruction_set_path_gives_the_same_bytes() {
    let x = data(len(8192, 256), 77);
    for (fi, (bits, sub, sb)) in [(2u8, 16usize, 4u8), (4, 32, 6), (8, 32, 6)].into_iter().enumerate() {
        let f = TwoLevelFormat::new(bits, 256, sub, sb, sb).unwrap().with_outliers(1).unwrap();
        for (si, search) in [
            SearchConfig::FAST,
            SearchConfig::FINE,
            SearchConfig { weighting: Weighting::Energy, ..SearchConfig::FAST },
        ]
        .into_iter()
        .enumerate()
        {
            // Under Miri (which reports AVX2 absent, so both sides run the baseline) one
            // search a format, taken in turn, and FINE's grid cut to 3 steps (the same
            // code paths, fewer candidates).
            if cfg!(miri) && si != fi {
                continue;
            }
            let search = if cfg!(miri) {
                SearchConfig { grid_steps: search.grid_steps.min(3), ..search }
            } else {
                search
            };
            let n = x.len() / 256;
            let (mut c0, mut p0) = (vec![0u8; n * f.codes_len()], vec![0u8; n * f.params_len(false)]);
            let (mut c1, mut p1) = (c0.clone(), p0.clone());
            encode::encode_blocks(&f, &search, None, Input::F32(&x), 0, &mut c0, &mut p0).unwrap();
            encode::encode_blocks_baseline(&f, &search, None, Input::F32(&x), 0, &mut c1, &mut p1).unwrap();
            assert_eq!((c0, p0), (c1, p1), "bits {bits}");
        }
    }
}
