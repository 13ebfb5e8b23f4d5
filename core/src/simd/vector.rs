//! The small vector trait every SIMD algorithm is written against.
//!
//! It is implemented on *capability tokens* ([`super::sse2::Sse2`],
//! [`super::avx2::Avx2`], [`super::neon::Neon`]): a token value exists only when the
//! CPU supports its instruction set, so the methods can be safe even though they call
//! target-feature intrinsics. Every method is `#[inline(always)]`: the algorithms in
//! `kernels::generic` and `stats::generic` are inlined into the thin per-ISA entry
//! points that carry `#[target_feature]`, and the intrinsics are compiled there.
//!
//! Slice arguments must hold at least the number of elements a method reads or
//! writes; the implementations check it with a slice index, which the optimiser
//! removes inside `chunks_exact` loops.

/// One SIMD instruction set: an f32 vector type and the operations the kernels need.
pub(crate) trait Simd: Copy {
    /// The f32 vector.
    type V: Copy;
    /// f32 lanes per vector.
    const LANES: usize;

    /// All lanes set to `x`.
    fn splat(self, x: f32) -> Self::V;
    /// Loads `LANES` values from `x[..LANES]` (no alignment needed).
    fn load(self, x: &[f32]) -> Self::V;
    /// Stores the lanes into `out[..LANES]`.
    fn store(self, v: Self::V, out: &mut [f32]);
    /// Stores the lanes into `out[..LANES]` bypassing the caches where the ISA can
    /// (x86 `movntps`, when `out` is 16-byte aligned; a plain store otherwise). Call
    /// [`Simd::store_fence`] after the last one.
    fn store_stream(self, v: Self::V, out: &mut [f32]);
    /// Orders earlier streaming stores before any later store (x86 `sfence`).
    fn store_fence(self);
    /// Hints that `x` will be read soon: one prefetch per 64-byte line. Only a hint
    /// (no effect on results); the default does nothing.
    #[inline(always)]
    fn prefetch(self, x: &[u8]) {
        let _ = x;
    }
    /// Loads `LANES` f16 values (little-endian bit patterns) as f32, exactly.
    fn load_f16(self, x: &[u16]) -> Self::V;
    /// Loads `LANES` bf16 values (bit patterns) as f32, exactly.
    fn load_bf16(self, x: &[u16]) -> Self::V;

    /// Lane-wise minimum (for non-NaN lanes; which zero is returned for `-0`/`+0` is unspecified).
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise maximum (same caveats as [`Simd::min`]).
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a - b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b`, rounded once (never fused with a following add).
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a / b`, correctly rounded (IEEE division, as scalar `/`).
    fn div(self, a: Self::V, b: Self::V) -> Self::V;

    /// Smallest lane.
    fn reduce_min(self, v: Self::V) -> f32;
    /// Largest lane.
    fn reduce_max(self, v: Self::V) -> f32;
    /// Sum of the lanes (order unspecified).
    fn reduce_add(self, v: Self::V) -> f32;

    /// Rounds `4 * LANES` values (already clamped to the code range) to the nearest
    /// integer, ties to even, adds `bias`, and stores them as `BITS`-bit codes packed in
    /// the layout of [`crate::format`] into `out[..4 * LANES * BITS / 8]`.
    fn store_codes<const BITS: u32>(self, t: [Self::V; 4], bias: i32, out: &mut [u8]);
    /// Loads `4 * LANES` codes (one per byte) from `codes[..4 * LANES]` as f32.
    fn load_codes(self, codes: &[u8]) -> [Self::V; 4];

    /// Unpacks INT4 codes to one per byte: `codes.len() == 2 * packed.len()`, a multiple of 32.
    fn unpack_i4(self, packed: &[u8], codes: &mut [u8]);
    /// Unpacks INT2 codes to one per byte: `codes.len() == 4 * packed.len()`, a multiple of 32.
    fn unpack_i2(self, packed: &[u8], codes: &mut [u8]);

    // f64 lanes, for the quality sums (`metrics::compare`): f32 products are exact in
    // f64, so the per-element terms equal the scalar reference's; only the order of the
    // additions differs.

    /// The f64 vector: `LANES / 2` lanes.
    type D: Copy;
    /// All f64 lanes zero.
    fn dzero(self) -> Self::D;
    /// The lanes of `v` widened exactly to f64: `[low half, high half]`.
    fn widen_f64(self, v: Self::V) -> [Self::D; 2];
    /// `a + b` in f64.
    fn dadd(self, a: Self::D, b: Self::D) -> Self::D;
    /// `a - b` in f64.
    fn dsub(self, a: Self::D, b: Self::D) -> Self::D;
    /// `a * b` in f64, rounded once (never fused with a following add).
    fn dmul(self, a: Self::D, b: Self::D) -> Self::D;
    /// `max(acc, |e|)` lane-wise, for lanes that are not NaN.
    fn dmax_abs(self, acc: Self::D, e: Self::D) -> Self::D;
    /// Stores the lanes into `out[..LANES / 2]`.
    fn dstore(self, v: Self::D, out: &mut [f64]);
}
