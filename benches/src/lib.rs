//! Shared helpers of the ArrowQuant benchmarks.
//!
//! - `benches/kernels.rs` (criterion): statistics, quantize and dequantize per ISA side
//!   by side, with a read-sum over the same buffer as the memory-bandwidth yardstick.
//! - `src/bin/kernel_speed.rs`: a compact GB/s table (medians of several runs) for the
//!   README.
//! - `examples/stream_state.rs`: the streaming quantizer's state size per format.

use arrowquant_core::{Backend, GroupFormat, Input, QuantError, Scheme};

/// Deterministic test weights: roughly normal with a few outliers, in `[-4, 4]`.
pub fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let r = s.wrapping_mul(0x2545_f491_4f6c_dd1d);
            // Sum of four uniforms: a cheap bell shape.
            let u = |k: u32| ((r >> (16 * k)) & 0xffff) as f32 / 65536.0 - 0.5;
            (u(0) + u(1) + u(2) + u(3)) * 2.0
        })
        .collect()
}

/// Sums `x` with 32 independent accumulators so the loop is bound by memory, not by
/// the latency of a single add chain: the yardstick for "fraction of memory bandwidth".
#[inline(never)]
pub fn read_sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; 32];
    let mut chunks = x.chunks_exact(32);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// The backends this binary can run, scalar first.
pub fn backends() -> Vec<Backend> {
    Backend::available().collect()
}

/// A format from its knobs (panics on invalid knobs: benchmark configuration only).
pub fn format(bits: u8, group: usize, scheme: Scheme) -> GroupFormat {
    GroupFormat::new(bits, group, scheme).expect("valid benchmark format")
}

/// Output buffers sized for quantizing `n` elements in `format`.
pub fn quant_buffers(format: GroupFormat, n: usize) -> (Vec<u8>, Vec<u8>) {
    let groups = n / format.group_len();
    (vec![0u8; groups * format.codes_len()], vec![0u8; groups * format.params_len()])
}

/// Quantizes with a chosen backend (the dispatching API when `backend` is `None`).
pub fn quantize(
    backend: Option<Backend>,
    format: GroupFormat,
    input: Input<'_>,
    codes: &mut [u8],
    params: &mut [u8],
) -> Result<(), QuantError> {
    match backend {
        Some(b) => arrowquant_core::quantize_with(b, format, input, codes, params),
        None => arrowquant_core::quantize(format, input, codes, params),
    }
}

/// Dequantizes with a chosen backend (the dispatching API when `backend` is `None`).
pub fn dequantize(
    backend: Option<Backend>,
    format: GroupFormat,
    codes: &[u8],
    params: &[u8],
    out: &mut [f32],
) -> Result<(), QuantError> {
    match backend {
        Some(b) => arrowquant_core::dequantize_with(b, format, codes, params, out),
        None => arrowquant_core::dequantize(format, codes, params, out),
    }
}

/// The streaming quantizer's state in bytes for each group size (`N` = the group size)
/// and the formats it serves. The state is a type's size: it cannot depend on how many
/// elements are streamed.
pub fn stream_state_table() -> Vec<(usize, usize)> {
    use arrowquant_core::{GroupCodec, StreamQuantizer};
    vec![
        (32, StreamQuantizer::<GroupCodec, 32>::STATE_BYTES),
        (64, StreamQuantizer::<GroupCodec, 64>::STATE_BYTES),
        (128, StreamQuantizer::<GroupCodec, 128>::STATE_BYTES),
        (256, StreamQuantizer::<GroupCodec, 256>::STATE_BYTES),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrowquant_core::{GroupCodec, StreamQuantizer, VecSink};

    /// Streams tensors of very different lengths through one quantizer type and checks
    /// the value's size stays the documented constant.
    fn stream_len<const N: usize>(f: GroupFormat, len: usize) -> usize {
        let mut q = StreamQuantizer::<GroupCodec, N>::new(GroupCodec::new(f)).unwrap();
        let mut sink = VecSink::new();
        let w = weights(len, 7);
        for chunk in w.chunks(1000) {
            q.feed(Input::F32(chunk), &mut sink).unwrap();
        }
        let size = std::mem::size_of_val(&q);
        let summary = q.finish(&mut sink).unwrap();
        assert_eq!(summary.elements, len as u64);
        size
    }

    #[test]
    fn stream_state_does_not_depend_on_tensor_length() {
        for (g, bytes) in stream_state_table() {
            for bits in [2, 4, 8] {
                for scheme in [Scheme::Asymmetric, Scheme::Symmetric] {
                    let f = format(bits, g, scheme);
                    let sizes: Vec<usize> = [10usize, 100_000, 3_000_001]
                        .into_iter()
                        .map(|len| match g {
                            32 => stream_len::<32>(f, len),
                            64 => stream_len::<64>(f, len),
                            128 => stream_len::<128>(f, len),
                            _ => stream_len::<256>(f, len),
                        })
                        .collect();
                    println!(
                        "INT{bits} g{g} {scheme:?}: state {bytes} bytes (streams of 10, 1e5, 3e6 values)"
                    );
                    assert!(sizes.iter().all(|&s| s == bytes), "{sizes:?} vs {bytes}");
                }
            }
        }
    }

    #[test]
    fn read_sum_adds_everything() {
        let x: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        assert_eq!(read_sum(&x), 499_500.0);
    }
}
