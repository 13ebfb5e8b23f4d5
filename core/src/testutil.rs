//! Shared parity tests for the SIMD paths (test builds only).
//!
//! Every function takes the backend under test and compares it with the scalar
//! reference: byte for byte on packed codes and parameters, bit for bit on
//! dequantized values, exactly on min/max/absmax, within `1e-5` relative on sums.
//! The per-ISA test modules call them, so each path is tested where it is defined.

use std::vec::Vec;

use half::{bf16, f16};

use crate::format::{Bits, GroupFormat, Scheme};
use crate::input::{Dtype, Input};
use crate::simd::Backend;
use crate::simd::vector::Simd;
use crate::{GroupStats, QuantError};

/// Start and end shifts tried: `0..SHIFTS` covers `2 * LANES` for every ISA (AVX2: 8 lanes).
#[cfg(not(miri))]
const SHIFTS: usize = 17;
/// Under Miri only SSE2 runs (4 lanes): `0..9` covers `2 * LANES`.
#[cfg(miri)]
const SHIFTS: usize = 9;

/// xorshift64*: small, deterministic, good enough for test data.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[-1, 1)`.
    pub(crate) fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// Every format: bits 2/4/8 x groups 32..256 x asymmetric/symmetric. Under Miri, every
/// width and scheme at the smallest groups (the kernels do not depend on the group
/// length beyond whole vectors; interpreted, the full set takes too long).
pub(crate) fn all_formats() -> impl Iterator<Item = GroupFormat> {
    if cfg!(miri) {
        let v = [
            (2, 32, Scheme::Asymmetric),
            (4, 32, Scheme::Symmetric),
            (4, 64, Scheme::Asymmetric),
            (8, 32, Scheme::Symmetric),
        ];
        return v.map(|(b, g, s)| GroupFormat::new(b, g, s).expect("valid format")).to_vec().into_iter();
    }
    let mut v = Vec::new();
    for bits in [2u8, 4, 8] {
        for g in [32usize, 64, 128, 256] {
            for scheme in [Scheme::Asymmetric, Scheme::Symmetric] {
                v.push(GroupFormat::new(bits, g, scheme).expect("valid format"));
            }
        }
    }
    v.into_iter()
}

/// The same values stored in each input type (f16/bf16 round the f32 values).
pub(crate) struct Owned {
    f32: Vec<f32>,
    f16: Vec<f16>,
    bf16: Vec<bf16>,
}

impl Owned {
    pub(crate) fn new(x: &[f32]) -> Self {
        Owned {
            f32: x.to_vec(),
            f16: x.iter().map(|&v| f16::from_f32(v)).collect(),
            bf16: x.iter().map(|&v| bf16::from_f32(v)).collect(),
        }
    }

    pub(crate) fn input(&self, dtype: Dtype, start: usize, end: usize) -> Input<'_> {
        match dtype {
            Dtype::F32 => Input::F32(&self.f32[start..end]),
            Dtype::F16 => Input::F16(&self.f16[start..end]),
            Dtype::Bf16 => Input::Bf16(&self.bf16[start..end]),
        }
    }
}

pub(crate) const DTYPES: [Dtype; 3] = [Dtype::F32, Dtype::F16, Dtype::Bf16];

/// Quantizes with `backend` and with the reference; asserts identical results.
/// Returns the reference's result.
pub(crate) fn assert_quantize_same(
    backend: Backend,
    format: GroupFormat,
    input: Input<'_>,
) -> Result<(), QuantError> {
    let groups = input.len() / format.group_len();
    let (mut c0, mut p0) =
        (std::vec![0u8; groups * format.codes_len()], std::vec![0u8; groups * format.params_len()]);
    let (mut c1, mut p1) = (std::vec![0xa5u8; c0.len()], std::vec![0xa5u8; p0.len()]);
    let r0 = crate::quantize_ref(format, input, &mut c0, &mut p0);
    let r1 = crate::quantize_with(backend, format, input, &mut c1, &mut p1);
    assert_eq!(r0, r1, "{backend} {format:?} {:?}: result differs", input.dtype());
    if r0.is_ok() {
        assert_eq!(p0, p1, "{backend} {format:?} {:?}: params differ", input.dtype());
        assert_eq!(c0, c1, "{backend} {format:?} {:?}: codes differ", input.dtype());
    }
    r0
}

/// Test data of a few shapes: uniform, offset and tiny, heavy-tailed, small integers.
fn random_values(rng: &mut Rng, n: usize, shape: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let u = rng.unit();
            match shape {
                0 => u,
                1 => 5.0 + 1e-3 * u,
                2 => u * u * u * 300.0,
                _ => (u * 8.0).round(),
            }
        })
        .collect()
}

/// Random data, every format and input type, inputs shifted by `0..2*LANES` at both
/// ends of the backing buffer.
///
/// Under Miri (interpreted, a quantize call takes about 0.2 s): one data shape, two
/// groups, and one input type per shift, taken in turn (each type still meets every
/// shift over the formats).
pub(crate) fn quantize_parity(backend: Backend) {
    let mut rng = Rng::new(1);
    let cases = if cfg!(miri) { 1 } else { 4 };
    for (fi, format) in all_formats().enumerate() {
        let n = if cfg!(miri) { 2 } else { 3 } * format.group_len();
        for shape in 0..cases {
            let data = Owned::new(&random_values(&mut rng, n + SHIFTS, shape));
            for (di, dtype) in DTYPES.into_iter().enumerate() {
                for shift in 0..SHIFTS {
                    if cfg!(miri) && (fi + shift) % DTYPES.len() != di {
                        continue;
                    }
                    // Start shifted by `shift`, and end `shift` before the buffer's end.
                    assert_quantize_same(backend, format, data.input(dtype, shift, shift + n)).unwrap();
                    let end = n + SHIFTS - shift;
                    assert_quantize_same(backend, format, data.input(dtype, end - n, end)).unwrap();
                }
            }
        }
    }
}

/// Values every path must handle alike.
pub(crate) const SPECIALS: [f32; 20] = [
    0.0,
    -0.0,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
    1e-40,        // f32 subnormal
    -1e-40,       // f32 subnormal
    6.0e-8,       // f16 subnormal (smallest is 5.96e-8)
    -3.0e-5,      // f16 subnormal
    6.1035156e-5, // smallest normal f16
    65504.0,
    -65504.0,
    65504.004, // the next f32 above 65504: out of range
    -65520.0,
    70000.0,
    1e30,
    f32::MAX,
    f32::MIN_POSITIVE,
    1.0,
    -0.5,
];

/// Special values at the edges and in the middle of a group, constant groups, a single
/// non-zero, mixed zeros: every format and input type, results and errors identical.
///
/// Under Miri (interpreted, a quantize call takes about 0.2 s) each special value is
/// checked once, at one of a group's first and last element and the next group's first,
/// in one format and input type, all taken in turn (see `miri_case`).
pub(crate) fn quantize_special_values(backend: Backend) {
    let mut rng = Rng::new(2);
    let formats: Vec<GroupFormat> = all_formats().collect();
    let nf = formats.len();
    // Special `k` under Miri: format `k % nf`, input type `(k / nf) % 3`, position `k % 3`.
    let miri_case = |k: usize, fi: usize, di: usize| k % nf == fi && (k / nf) % DTYPES.len() == di;
    for (fi, &format) in formats.iter().enumerate() {
        let g = format.group_len();
        let base = random_values(&mut rng, 3 * g, 0);
        for (di, dtype) in DTYPES.into_iter().enumerate() {
            let all = [0, 1, g / 2, g - 1, g, 2 * g - 1, 3 * g - 1];
            for (k, &v) in SPECIALS.iter().enumerate() {
                if cfg!(miri) && !miri_case(k, fi, di) {
                    continue;
                }
                let miri_position = [[0], [g - 1], [g]][k % 3];
                let positions: &[usize] = if cfg!(miri) { &miri_position } else { &all };
                for &p in positions {
                    let mut x = base.clone();
                    x[p] = v;
                    assert_quantize_same(backend, format, Owned::new(&x).input(dtype, 0, x.len())).ok();
                    // A single non-zero in a group of zeros.
                    let mut z = std::vec![0.0f32; 3 * g];
                    z[p] = v;
                    assert_quantize_same(backend, format, Owned::new(&z).input(dtype, 0, z.len())).ok();
                }
                // A constant group.
                let c = std::vec![v; g];
                assert_quantize_same(backend, format, Owned::new(&c).input(dtype, 0, g)).ok();
            }
            // Mixed zeros: under Miri in one input type a format, taken in turn.
            if cfg!(miri) && fi % DTYPES.len() != di {
                continue;
            }
            let zeros: Vec<f32> = (0..g).map(|i| if i % 3 == 0 { -0.0 } else { 0.0 }).collect();
            assert_quantize_same(backend, format, Owned::new(&zeros).input(dtype, 0, g)).unwrap();
        }
    }
    // The policy itself: the errors name the first offending element.
    let f = GroupFormat::new(4, 32, Scheme::Asymmetric).unwrap();
    let mut x = std::vec![0.25f32; 64];
    x[40] = f32::NAN;
    x[50] = f32::INFINITY;
    let r = assert_quantize_same(backend, f, Input::F32(&x));
    assert_eq!(r, Err(QuantError::NonFinite { element: 40 }));
    x[40] = 65504.004;
    x[50] = 0.0;
    let r = assert_quantize_same(backend, f, Input::F32(&x));
    assert_eq!(r, Err(QuantError::OutOfRange { element: 40 }));
}

/// Random codes and parameters (some not finite): identical output bits and errors,
/// output slices shifted by `0..2*LANES`.
pub(crate) fn dequantize_parity(backend: Backend) {
    let mut rng = Rng::new(3);
    for format in all_formats() {
        // Under Miri two groups (interpreted, the shifted calls take about 0.6 s a group).
        let groups = if cfg!(miri) { 2 } else { 5 };
        let g = format.group_len();
        let codes: Vec<u8> = (0..groups * format.codes_len()).map(|_| rng.next_u64() as u8).collect();
        let mut params: Vec<u8> = Vec::new();
        for _ in 0..groups * format.params_len() / 2 {
            // Finite f16 values of every magnitude and sign.
            let bits = (rng.next_u64() as u16) & 0xfbff;
            params.extend_from_slice(&bits.to_le_bytes());
        }
        let mut out0 = std::vec![0f32; groups * g + SHIFTS];
        let mut out1 = std::vec![0f32; groups * g + SHIFTS];
        for shift in 0..SHIFTS {
            let r0 = crate::dequantize_ref(format, &codes, &params, &mut out0[shift..shift + groups * g]);
            let r1 = crate::dequantize_with(
                backend,
                format,
                &codes,
                &params,
                &mut out1[shift..shift + groups * g],
            );
            assert_eq!(r0, r1);
            r0.unwrap();
            let b0: Vec<u32> = out0.iter().map(|v| v.to_bits()).collect();
            let b1: Vec<u32> = out1.iter().map(|v| v.to_bits()).collect();
            assert_eq!(b0, b1, "{backend} {format:?} shift {shift}: dequantized bits differ");
        }
        // A corrupt (infinite) scale in group 3 (under Miri the last, 1) is reported alike.
        let mut bad = params.clone();
        let at = 3.min(groups - 1) * format.params_len();
        bad[at..at + 2].copy_from_slice(&f16::INFINITY.to_le_bytes());
        let r0 = crate::dequantize_ref(format, &codes, &bad, &mut out0[..groups * g]);
        let r1 = crate::dequantize_with(backend, format, &codes, &bad, &mut out1[..groups * g]);
        assert_eq!((r0, r1), (Err(QuantError::Corrupt), Err(QuantError::Corrupt)));
    }
}

/// Outputs past the streaming-store threshold (16 MB), at offsets that are 32-byte,
/// 16-byte and 4-byte aligned: identical bits to the reference.
pub(crate) fn dequantize_streaming_parity(backend: Backend) {
    let format = GroupFormat::new(4, 128, Scheme::Asymmetric).unwrap();
    let n = crate::kernels::generic::STREAM_STORE_BYTES / 4 + 4 * 128;
    let groups = n / 128;
    let mut rng = Rng::new(6);
    let codes: Vec<u8> = (0..groups * format.codes_len()).map(|_| rng.next_u64() as u8).collect();
    let params: Vec<u8> = (0..groups)
        .flat_map(|_| {
            let d = f16::from_f32(rng.unit().abs() + 0.01).to_le_bytes();
            let m = f16::from_f32(rng.unit()).to_le_bytes();
            [d[0], d[1], m[0], m[1]]
        })
        .collect();
    let mut want = std::vec![0f32; n];
    crate::dequantize_ref(format, &codes, &params, &mut want).unwrap();
    let mut buf = std::vec![0f32; n + 8];
    let base = buf.as_ptr() as usize;
    // Address modulo 32: 32-byte aligned, 16-byte aligned only, 4-byte aligned only.
    for rem in [0usize, 16, 4] {
        let off = (0..8).find(|&i| (base + 4 * i) % 32 == rem).expect("f32 addresses are 4-aligned");
        let out = &mut buf[off..off + n];
        crate::dequantize_with(backend, format, &codes, &params, out).unwrap();
        assert!(
            out.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{backend} address % 32 = {rem}"
        );
    }
}

/// Quantize then dequantize with `backend`: each finite element comes back within
/// half a step (`scale / 2`), plus a few f32 ulps of the value.
///
/// Under Miri one data shape a format, taken in turn.
pub(crate) fn round_trip_error(backend: Backend) {
    let mut rng = Rng::new(4);
    for (fi, format) in all_formats().enumerate() {
        let g = format.group_len();
        for shape in 0..4 {
            if cfg!(miri) && shape != fi % 4 {
                continue;
            }
            let mut x = random_values(&mut rng, 4 * g, shape);
            x[g + 3] = 1e-40;
            x[2 * g + 7] = 65504.0;
            x[3 * g + 1] = -65504.0;
            let groups = x.len() / g;
            let mut codes = std::vec![0u8; groups * format.codes_len()];
            let mut params = std::vec![0u8; groups * format.params_len()];
            crate::quantize_with(backend, format, Input::F32(&x), &mut codes, &mut params).unwrap();
            let mut y = std::vec![0f32; x.len()];
            crate::dequantize_with(backend, format, &codes, &params, &mut y).unwrap();
            for (i, (&a, &b)) in x.iter().zip(&y).enumerate() {
                let p = &params[i / g * format.params_len()..];
                let d = f16::from_le_bytes([p[0], p[1]]).to_f32();
                let tol = d / 2.0 + 4.0 * f32::EPSILON * (a.abs() + b.abs()) + f32::MIN_POSITIVE;
                assert!((a - b).abs() <= tol, "{backend} {format:?} element {i}: {a} -> {b}, scale {d}");
            }
        }
    }
}

/// The SIMD packers (`store_codes`) and unpackers against the reference packers of
/// [`crate::format`], over every byte value: every INT4 pair and every INT2 quadruple
/// of codes, so `unpack(pack(c)) == c` and `pack(unpack(b)) == b` exhaustively.
pub(crate) fn packers_exhaustive<S: Simd>(s: S) {
    let bytes: Vec<u8> = (0..=255u8).collect();
    let l4 = 4 * S::LANES;
    for bits in [Bits::B8, Bits::B4, Bits::B2] {
        let n = bytes.len() * bits.per_byte();
        let mut reference = std::vec![0u8; n];
        bits.unpack(&bytes, &mut reference).unwrap();
        // Pack: the codes as exact floats through `store_codes`.
        let mut packed = std::vec![0u8; bytes.len()];
        let step = l4 * bits.get() as usize / 8;
        for (c, o) in reference.chunks_exact(l4).zip(packed.chunks_exact_mut(step)) {
            let f: Vec<f32> = c.iter().map(|&v| f32::from(v)).collect();
            let l = S::LANES;
            let t = [0, 1, 2, 3].map(|k| s.load(&f[k * l..]));
            match bits {
                Bits::B8 => s.store_codes::<8>(t, 0, o),
                Bits::B4 => s.store_codes::<4>(t, 0, o),
                Bits::B2 => s.store_codes::<2>(t, 0, o),
            }
        }
        assert_eq!(packed, bytes, "{bits:?}: SIMD packing differs from the reference layout");
        // Unpack.
        let mut codes = std::vec![0u8; n];
        match bits {
            Bits::B8 => codes.copy_from_slice(&bytes),
            Bits::B4 => s.unpack_i4(&bytes, &mut codes),
            Bits::B2 => s.unpack_i2(&bytes, &mut codes),
        }
        assert_eq!(codes, reference, "{bits:?}: SIMD unpacking differs from the reference");
        // And loading codes as floats.
        for (c, r) in codes.chunks_exact(l4).zip(reference.chunks_exact(l4)) {
            let v = s.load_codes(c);
            let mut f = std::vec![0f32; l4];
            for (k, v) in v.into_iter().enumerate() {
                s.store(v, &mut f[k * S::LANES..]);
            }
            let want: Vec<f32> = r.iter().map(|&v| f32::from(v)).collect();
            assert_eq!(f, want);
        }
    }
}

/// Asserts SIMD statistics against the reference: exact extremes, sums within `1e-5`
/// of `sum |x|` (resp. `sum x^2`), NaN for every field of a group holding a NaN.
fn assert_stats_close(backend: Backend, x: &[f32], r: &GroupStats, s: &GroupStats) {
    let same = |a: f32, b: f32| a == b || (a.is_nan() && b.is_nan());
    assert!(
        same(r.min, s.min) && same(r.max, s.max) && same(r.absmax, s.absmax),
        "{backend}: {r:?} vs {s:?}"
    );
    if !r.sum.is_finite() || !r.sum_sq.is_finite() {
        assert_eq!(r.sum.to_bits(), s.sum.to_bits(), "{backend}: {r:?} vs {s:?}");
        assert_eq!(r.sum_sq.to_bits(), s.sum_sq.to_bits(), "{backend}: {r:?} vs {s:?}");
        return;
    }
    let abs: f32 = x.iter().map(|v| v.abs()).sum();
    let sq: f32 = x.iter().map(|v| v * v).sum();
    assert!((r.sum - s.sum).abs() <= 1e-5 * abs + f32::MIN_POSITIVE, "{backend}: {r:?} vs {s:?}");
    assert!((r.sum_sq - s.sum_sq).abs() <= 1e-5 * sq + f32::MIN_POSITIVE, "{backend}: {r:?} vs {s:?}");
}

fn stats_case(backend: Backend, data: &Owned, dtype: Dtype, start: usize, group: usize, groups: usize) {
    let input = data.input(dtype, start, start + group * groups);
    let mut r = std::vec![GroupStats::default(); groups];
    let mut s = std::vec![GroupStats::default(); groups];
    crate::group_stats_ref(input, group, &mut r).unwrap();
    crate::group_stats_with(backend, input, group, &mut s).unwrap();
    let mut x = std::vec![0f32; input.len()];
    input.to_f32(&mut x);
    for (i, (r, s)) in r.iter().zip(&s).enumerate() {
        assert_stats_close(backend, &x[i * group..(i + 1) * group], r, s);
    }
}

/// Group sizes 1..=40 and the format sizes, every input type, shifted inputs, special values.
///
/// Under Miri (interpreted, a case takes about 0.1 to 0.3 s): fewer sizes, one data
/// shape, one input type per shift and each special value at two of the sizes, at one
/// position and in one input type, all taken in turn.
pub(crate) fn stats_parity(backend: Backend) {
    let mut rng = Rng::new(5);
    let sizes: Vec<usize> = if cfg!(miri) {
        // Below, at and past one and two SSE2 vectors, and a format size.
        [1, 3, 4, 5, 8, 9, 17, 32].to_vec()
    } else {
        (1..=40).chain([63, 64, 100, 128, 255, 256]).collect()
    };
    for (si, &group) in sizes.iter().enumerate() {
        let groups = 3;
        for shape in 0..if cfg!(miri) { 1 } else { 3 } {
            let data = Owned::new(&random_values(&mut rng, group * groups + SHIFTS, shape));
            for (di, dtype) in DTYPES.into_iter().enumerate() {
                for shift in 0..SHIFTS {
                    if cfg!(miri) && (si + shift) % DTYPES.len() != di {
                        continue;
                    }
                    stats_case(backend, &data, dtype, shift, group, groups);
                }
            }
        }
        for (k, &v) in SPECIALS.iter().enumerate() {
            if cfg!(miri) && (k + si) % 4 != 0 {
                continue;
            }
            for (pi, p) in [0, group / 2, group - 1].into_iter().enumerate() {
                if cfg!(miri) && pi != k % 3 {
                    continue;
                }
                let mut x = random_values(&mut rng, group * 2, 0);
                x[group + p] = v;
                let data = Owned::new(&x);
                for (di, dtype) in DTYPES.into_iter().enumerate() {
                    if cfg!(miri) && di != (k / 3 + si) % DTYPES.len() {
                        continue;
                    }
                    stats_case(backend, &data, dtype, 0, group, 2);
                }
            }
        }
    }
    // NaN policy: all five fields NaN.
    let mut x = std::vec![1.0f32; 64];
    x[33] = f32::NAN;
    let mut s = [GroupStats::default(); 2];
    crate::group_stats_with(backend, Input::F32(&x), 32, &mut s).unwrap();
    assert_eq!(s[0], GroupStats { min: 1.0, max: 1.0, absmax: 1.0, sum: 32.0, sum_sq: 32.0 });
    assert!(s[1].min.is_nan() && s[1].max.is_nan() && s[1].absmax.is_nan());
    assert!(s[1].sum.is_nan() && s[1].sum_sq.is_nan());
}

/// Whether the kernel tests of `backend` can run here. A backend of the target's
/// baseline ISA (`baseline`) must be available; an optional one that the CPU lacks is
/// reported as skipped on stderr, never passed silently.
pub(crate) fn backend_runs(backend: Backend, baseline: bool) -> bool {
    let ok = backend.is_available();
    assert!(ok || !baseline, "{backend:?} is part of the baseline ISA but is not available");
    if !ok {
        std::eprintln!("SKIPPED: this CPU cannot run the {backend:?} kernels");
    }
    ok
}

/// The kernel parity tests of one backend, stamped into the backend's own test module
/// so that each path is tested where it is defined. `$token` makes the backend's
/// `Simd` token (`Option`); `$baseline`: see [`backend_runs`].
macro_rules! kernel_parity_tests {
    ($backend:expr, $token:expr, $baseline:expr) => {
        #[test]
        fn quantize_matches_reference() {
            if $crate::testutil::backend_runs($backend, $baseline) {
                $crate::testutil::quantize_parity($backend);
            }
        }

        #[test]
        fn quantize_special_values_match_reference() {
            if $crate::testutil::backend_runs($backend, $baseline) {
                $crate::testutil::quantize_special_values($backend);
            }
        }

        #[test]
        fn dequantize_matches_reference() {
            if $crate::testutil::backend_runs($backend, $baseline) {
                $crate::testutil::dequantize_parity($backend);
            }
        }

        #[test]
        fn dequantize_with_streaming_stores_matches_reference() {
            if $crate::testutil::backend_runs($backend, $baseline) {
                $crate::testutil::dequantize_streaming_parity($backend);
            }
        }

        #[test]
        fn round_trip_error_is_within_half_a_step() {
            if $crate::testutil::backend_runs($backend, $baseline) {
                $crate::testutil::round_trip_error($backend);
            }
        }

        #[test]
        fn packers_are_exhaustively_exact() {
            if $crate::testutil::backend_runs($backend, $baseline) {
                $crate::testutil::packers_exhaustive($token.expect("available backend has a token"));
            }
        }
    };
}
pub(crate) use kernel_parity_tests;
