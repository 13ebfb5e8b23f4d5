//! The device format: quantized tensors in one flat byte string that firmware reads
//! in place, from flash, one group at a time.
//!
//! # Layout
//!
//! A device file is one or more *tensor records* back to back. Each record is:
//!
//! | part | bytes | content |
//! |---|---|---|
//! | header | variable | [`DeviceHeader`], postcard-serialized (varints, see below) |
//! | codes | `blocks * codes_len` | the packed codes of every block, block after block |
//! | params | `blocks * params_len` | the parameters of every block, block after block |
//! | crc | 4 | CRC-32 (IEEE, little-endian `u32`) of every preceding byte of the record |
//!
//! Codes and parameters are two arrays, not interleaved per block: they are exactly
//! the `codes` and `params` buffers of [`crate::quantize`], of a
//! [`VecSink`](crate::VecSink) or [`SliceSink`](crate::SliceSink), and of the Parquet
//! path, so a whole tensor decodes with one [`crate::dequantize`] call and group `i`
//! is `codes[i * codes_len..]` with `params[i * params_len..]`. The byte layout inside
//! each array is the one documented in [`crate::format`] (parameters are little-endian
//! f16). Nothing needs alignment: the reader works on any `&[u8]`.
//!
//! The header starts with the raw bytes `AQDV` ([`MAGIC`]) followed by the version
//! ([`VERSION`], a varint: `0x01`), so a file can be recognised with `head -c 5`. The
//! header holds the tensor name, its shape, the real element count, the codec
//! ([`CodecDesc`]: tag 0, a plain group format (bit width, group size, scheme); tag 1, a
//! two-level format (bit width, block, sub-group, sub-scale and sub-min widths,
//! outliers), the layout of the `int2`/`int4`/`int8` presets, byte layout in
//! [`crate::kquant`]; tag 2, a tensor stored unquantized ([`RawDtype`]: its elements'
//! little-endian bytes in `codes`, one element per block, no parameters), the code and
//! parameter bytes per block and the block count. The last block may be padded (see [`crate::stream`]): it decodes to a whole
//! group of which only the first `elements - (blocks - 1) * group` values are real.
//!
//! # Writing (with `alloc`)
//!
//! ```
//! use arrowquant_core::{GroupFormat, Input, Scheme, device};
//!
//! let w: Vec<f32> = (0..96).map(|i| (i as f32 * 0.3).sin()).collect();
//! let f = GroupFormat::new(4, 32, Scheme::Asymmetric)?;
//! let (mut codes, mut params) = (vec![0u8; 3 * f.codes_len()], vec![0u8; 3 * f.params_len()]);
//! arrowquant_core::quantize(f, Input::F32(&w), &mut codes, &mut params)?;
//!
//! // One record per tensor; `append_tensor` adds more records to the same file.
//! let file = device::write_tensor("layer0.weight", &[8, 12], f, &codes, &params)?;
//!
//! let t = device::find(&file, "layer0.weight")?;
//! let mut group = [0f32; 32];
//! let real = t.dequantize_group(2, &mut group)?;
//! assert_eq!((t.shape(), t.groups(), real), (&[8u64, 12][..], 3, 32));
//! # Ok::<(), arrowquant_core::device::DeviceError>(())
//! ```
//!
//! [`write_tensor_into`] writes into a caller's buffer without `alloc`, and
//! [`encoded_len`] says how large it must be. The codes and parameters usually come
//! from a [`StreamQuantizer`](crate::StreamQuantizer) run into a
//! [`VecSink`](crate::VecSink): pass `sink.codes` and `sink.params`.
//!
//! # Reading (no `alloc`, zero-copy)
//!
//! [`DeviceTensor::parse`] validates one record (magic, version, codec, shape against
//! element count, block count, lengths against the bytes present, CRC) and borrows
//! its codes and parameters from the input; [`tensors`] iterates the records of a file
//! and [`find`] looks one up by name. Arbitrary bytes give a [`DeviceError`], never a
//! panic. Validation reads the record once (for the CRC); decoding a group afterwards
//! touches only that group's bytes.
//!
//! # Modules
//!
//! [`DeviceHeader`] and its parts live in `header`, the reader in `read`, the writers
//! in `write`, the record checksum in `crc`.

mod crc;
mod error;
mod header;
mod read;
mod write;

pub use error::DeviceError;
pub use header::{CodecDesc, DeviceCodec, DeviceHeader, RawDtype, SchemeTag, Shape};
pub use read::{DeviceTensor, Tensors, find, tensors};
#[cfg(feature = "alloc")]
pub use write::{append_tensor, write_tensor};
pub use write::{encoded_len, write_tensor_into};

/// The first four bytes of every tensor record.
pub const MAGIC: [u8; 4] = *b"AQDV";
/// The format version this code writes and reads.
pub const VERSION: u16 = 1;
/// Largest number of dimensions a shape may have.
pub const MAX_RANK: usize = 8;
/// Bytes of the CRC-32 that closes every record.
pub const CRC_LEN: usize = 4;

#[cfg(test)]
mod tests;
