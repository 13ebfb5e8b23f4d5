//! # arrowquant-core
//!
//! The quantization engine of ArrowQuant: `#![no_std]` with optional `alloc`, so the
//! same code runs in our CLI, in a Raspberry Pi app and in Cortex-M firmware.
//!
//! - [`format`]: INT2/INT4/INT8 codes, group sizes, schemes, the packing layout and
//!   bits-per-weight arithmetic.
//! - [`stats`]: per-group minimum, maximum, absmax, sum and sum of squares.
//! - [`kernels`]: quantize+pack and unpack+dequantize over whole buffers.
//! - [`simd`]: the backends (scalar, SSE2, AVX2, NEON) and how one is chosen.
//! - [`stream`]: the constant-memory streaming quantizer and its sinks.
//! - [`metrics`]: streaming cosine similarity, relative RMSE and SQNR.
//! - [`search`]: calibration-free parameter search (MSE-optimal clipping, least-squares
//!   refits) and [`SearchedGroupCodec`].
//! - [`kquant`]: two-level formats (sub-group scales and mins quantized under f16
//!   super-scales, optional exact outliers, per-row mode).
//! - [`preset`]: named presets (`fast`, `int2`, `int4`, `int8`, ...) and [`AnyCodec`],
//!   with their measured quality against ggml's k-quants.
//! - [`diffusion`]: time-aware activation parameters, thermodynamic smoothing, channel
//!   equalization and sensitivity-driven mixed precision.
//! - [`ggml`]: ggml's block formats (Q4_0 ... Q6_K, IQ4_NL, IQ4_XS) byte for byte, for GGUF.
//! - [`gguf`] (with `alloc`): the GGUF container, llama.cpp's model file: a header
//!   writer (metadata, tensor infos, offsets, alignment) and a strict, allocation-bounded
//!   parser for untrusted headers.
//! - [`device`]: the compact device format (postcard header + packed blocks) and its
//!   zero-copy, group-at-a-time reader for firmware.
//!
//! # Example: quantize a buffer
//!
//! ```
//! use arrowquant_core::{GroupFormat, Input, Scheme, dequantize, quantize};
//!
//! let w: Vec<f32> = (0..256).map(|i| (i as f32 * 0.37).sin()).collect();
//! let f = GroupFormat::new(4, 128, Scheme::Asymmetric)?;
//! let groups = w.len() / f.group_len();
//! let mut codes = vec![0u8; groups * f.codes_len()];
//! let mut params = vec![0u8; groups * f.params_len()];
//! quantize(f, Input::F32(&w), &mut codes, &mut params)?;
//!
//! let mut back = vec![0f32; w.len()];
//! dequantize(f, &codes, &params, &mut back)?;
//! assert!(w.iter().zip(&back).all(|(a, b)| (a - b).abs() < 0.07));
//! # Ok::<(), arrowquant_core::QuantError>(())
//! ```
//!
//! # Example: stream chunks of any length in constant memory
//!
//! ```
//! use arrowquant_core::{GroupCodec, GroupFormat, Input, Scheme, SliceSink, StreamQuantizer};
//!
//! let f = GroupFormat::new(2, 64, Scheme::Asymmetric)?;
//! let mut q = StreamQuantizer::<_, 64>::new(GroupCodec::new(f))?.track_quality(true);
//! let (mut codes, mut params) = ([0u8; 64], [0u8; 16]);
//! let mut sink = SliceSink::new(&mut codes, &mut params);
//! let w: Vec<f32> = (0..200).map(|i| (i as f32).cos()).collect();
//! for chunk in w.chunks(37) {
//!     q.feed(Input::F32(chunk), &mut sink).unwrap();
//! }
//! let summary = q.finish(&mut sink).unwrap();
//! assert_eq!((summary.elements, summary.blocks, summary.padding), (200, 4, 56));
//! assert!(summary.quality.unwrap().cosine > 0.9);
//! # Ok::<(), arrowquant_core::QuantError>(())
//! ```
//!
//! # NaN and infinity policy
//!
//! Group parameters are f16, so the quantizer rejects what they cannot represent:
//! a NaN or an infinity gives [`QuantError::NonFinite`] and a finite value with
//! `|x| > 65504` gives [`QuantError::OutOfRange`], each naming the first offending
//! element. Nothing is silently clamped. Subnormal values are quantized like any
//! other value. Statistics ([`stats`]) report NaN for every statistic of a group that
//! holds a NaN.
//!
//! # Crate features
//!
//! - `std` (default): runtime detection of AVX2+F16C on x86_64; implies `alloc`.
//! - `alloc`: [`VecSink`] and other heap-backed helpers. Without `std`, AVX2 is used
//!   only when enabled at compile time (`-C target-feature=+avx2,+f16c`).
//! - `bench-internals`: exposes per-ISA kernels for benches; not a stable API.
//!
//! # SIMD paths
//!
//! | target | paths | selection |
//! |---|---|---|
//! | x86_64 | scalar, SSE2, AVX2+F16C | SSE2 baseline, AVX2 at run time (`std`) or compile time |
//! | aarch64 | scalar, NEON | NEON at compile time (baseline) |
//! | others (thumbv7em, ...) | scalar | |
//!
//! Every path produces the same packed bytes as the scalar reference.

#![no_std]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod codec;
pub mod device;
pub mod diffusion;
mod error;
pub mod format;
pub mod ggml;
#[cfg(feature = "alloc")]
pub mod gguf;
pub mod input;
pub mod kernels;
pub mod kquant;
pub mod metrics;
pub mod params;
pub mod preset;
pub mod search;
pub mod simd;
pub mod stats;
pub mod stream;
// Parity-test helpers of the SIMD paths (reduced sizes under Miri, which runs the
// SSE2 tests: Miri interprets SSE2 intrinsics and reports AVX2 as unavailable).
#[cfg(all(test, any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon"))))]
mod testutil;

pub use codec::{BlockCodec, GroupCodec};
pub use error::{BufferFull, QuantError, StreamError};
pub use format::{Bits, GroupFormat, GroupSize, Scheme};
pub use input::{Dtype, Input};
pub use kernels::{dequantize, dequantize_ref, dequantize_with, quantize, quantize_ref, quantize_with};
pub use kquant::{RowScales, TwoLevelCodec, TwoLevelFormat};
pub use metrics::{Quality, QualityAccumulator};
pub use preset::{AnyCodec, CodecLayout, Preset};
pub use search::{SearchConfig, SearchedGroupCodec, Weighting};
pub use simd::Backend;
pub use stats::{GroupStats, group_stats, group_stats_ref, group_stats_with};
#[cfg(feature = "alloc")]
pub use stream::VecSink;
pub use stream::{BlockSink, SliceSink, StreamQuantizer, StreamSummary};

pub use half::{bf16, f16};
