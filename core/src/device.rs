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
//! header holds the tensor name, its shape, the real element count, the codec (bit
//! width, group size, scheme), the code and parameter bytes per block and the block
//! count. The last block may be padded (see [`crate::stream`]): it decodes to a whole
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

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{BlockCodec, GroupCodec};
use crate::format::{GroupFormat, GroupSize, Scheme};
use crate::{Backend, QuantError};

/// The first four bytes of every tensor record.
pub const MAGIC: [u8; 4] = *b"AQDV";
/// The format version this code writes and reads.
pub const VERSION: u16 = 1;
/// Largest number of dimensions a shape may have.
pub const MAX_RANK: usize = 8;
/// Bytes of the CRC-32 that closes every record.
pub const CRC_LEN: usize = 4;

/// Everything that can be wrong with a device file, or with what is written into one.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// The record does not start with [`MAGIC`].
    BadMagic,
    /// The record was written by another version of the format.
    UnsupportedVersion(u16),
    /// The header is not valid postcard for [`DeviceHeader`] (or is cut short).
    BadHeader,
    /// A shape has more than [`MAX_RANK`] dimensions.
    RankTooLarge(usize),
    /// The product of the shape is not the element count.
    ShapeMismatch {
        /// Product of the shape's dimensions.
        shape_elements: u64,
        /// Element count stored in the header.
        elements: u64,
    },
    /// The block count does not cover the elements exactly (`ceil(elements / group)`).
    BlockCountMismatch {
        /// Blocks the element count needs.
        expected: u64,
        /// Blocks stored in the header.
        actual: u64,
    },
    /// The header's bytes per block disagree with its codec.
    BlockLayoutMismatch {
        /// Code bytes per block stored in the header.
        codes_len: u32,
        /// Parameter bytes per block stored in the header.
        params_len: u32,
    },
    /// The record needs more bytes than the input (or the output buffer) has.
    Truncated {
        /// Bytes the record needs.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// The stored CRC-32 does not match the record's bytes.
    ChecksumMismatch {
        /// CRC stored at the end of the record.
        stored: u32,
        /// CRC of the bytes read.
        computed: u32,
    },
    /// A sizes or counts do not fit in this target's `usize` (or overflow `u64`).
    TooLarge,
    /// A group index past the last group.
    GroupOutOfRange {
        /// The index asked for.
        group: usize,
        /// Groups in the tensor.
        groups: usize,
    },
    /// No record in the file has the requested name.
    NotFound,
    /// The codec description or a buffer length was rejected by the core.
    Quant(QuantError),
}

impl core::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::BadMagic => f.write_str("not an ArrowQuant device record (magic bytes `AQDV` missing)"),
            Self::UnsupportedVersion(v) => {
                write!(f, "device format version {v} is not supported (this build reads {VERSION})")
            }
            Self::BadHeader => f.write_str("device record header is malformed or cut short"),
            Self::RankTooLarge(r) => write!(f, "shape has {r} dimensions, at most {MAX_RANK} are supported"),
            Self::ShapeMismatch { shape_elements, elements } => {
                write!(f, "shape holds {shape_elements} elements but the header says {elements}")
            }
            Self::BlockCountMismatch { expected, actual } => {
                write!(f, "header says {actual} blocks, the element count needs {expected}")
            }
            Self::BlockLayoutMismatch { codes_len, params_len } => write!(
                f,
                "header block layout ({codes_len} code bytes, {params_len} parameter bytes) does not match its codec"
            ),
            Self::Truncated { needed, available } => {
                write!(f, "device record needs {needed} bytes but only {available} are available")
            }
            Self::ChecksumMismatch { stored, computed } => write!(
                f,
                "device record is corrupt: CRC-32 {computed:#010x} does not match the stored {stored:#010x}"
            ),
            Self::TooLarge => f.write_str("device record sizes do not fit in this target's address space"),
            Self::GroupOutOfRange { group, groups } => {
                write!(f, "group {group} is out of range: the tensor has {groups} groups")
            }
            Self::NotFound => f.write_str("no tensor of that name in the device file"),
            Self::Quant(e) => write!(f, "device record: {e}"),
        }
    }
}

impl core::error::Error for DeviceError {}

impl From<QuantError> for DeviceError {
    fn from(e: QuantError) -> Self {
        DeviceError::Quant(e)
    }
}

/// The scheme as stored in a header (a separate type so the stored tags never change
/// with the core's enums).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchemeTag {
    /// [`Scheme::Asymmetric`]: tag 0.
    Asymmetric,
    /// [`Scheme::Symmetric`]: tag 1.
    Symmetric,
}

/// How the blocks of a record were encoded.
///
/// An enum so that later codecs get new variants (new tags) without a version bump;
/// a reader that does not know a tag rejects the header.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CodecDesc {
    /// Min-max group quantization ([`GroupFormat`]): tag 0.
    Group {
        /// Code width: 2, 4 or 8.
        bits: u8,
        /// Elements per group: 32, 64, 128 or 256.
        group: u16,
        /// Range mapping.
        scheme: SchemeTag,
    },
}

impl CodecDesc {
    /// The description of a group format.
    pub fn from_format(format: GroupFormat) -> Self {
        CodecDesc::Group {
            bits: format.bits.get() as u8,
            group: format.group_len() as u16,
            scheme: match format.scheme {
                Scheme::Asymmetric => SchemeTag::Asymmetric,
                Scheme::Symmetric => SchemeTag::Symmetric,
            },
        }
    }

    /// The group format described.
    ///
    /// # Errors
    /// [`QuantError::InvalidBitWidth`] or [`QuantError::InvalidGroupSize`].
    pub fn format(&self) -> Result<GroupFormat, QuantError> {
        match *self {
            CodecDesc::Group { bits, group, scheme } => {
                let scheme = match scheme {
                    SchemeTag::Asymmetric => Scheme::Asymmetric,
                    SchemeTag::Symmetric => Scheme::Symmetric,
                };
                GroupFormat::new(bits, usize::from(group), scheme)
            }
        }
    }
}

/// A tensor shape of at most [`MAX_RANK`] dimensions, stored inline (no `alloc`).
///
/// Serialized as a sequence of varints, like a `Vec<u64>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    rank: u8,
    dims: [u64; MAX_RANK],
}

impl Shape {
    /// A shape from its dimensions, outermost first.
    ///
    /// # Errors
    /// [`DeviceError::RankTooLarge`] beyond [`MAX_RANK`] dimensions.
    pub fn new(dims: &[u64]) -> Result<Self, DeviceError> {
        if dims.len() > MAX_RANK {
            return Err(DeviceError::RankTooLarge(dims.len()));
        }
        let mut shape = Shape { rank: dims.len() as u8, dims: [0; MAX_RANK] };
        shape.dims[..dims.len()].copy_from_slice(dims);
        Ok(shape)
    }

    /// The dimensions, outermost first.
    pub fn dims(&self) -> &[u64] {
        &self.dims[..usize::from(self.rank)]
    }

    /// The number of elements (1 for a scalar), or `None` on `u64` overflow.
    pub fn elements(&self) -> Option<u64> {
        self.dims().iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
    }
}

impl Serialize for Shape {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.dims())
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShapeVisitor;

        impl<'de> Visitor<'de> for ShapeVisitor {
            type Value = Shape;

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "at most {MAX_RANK} dimensions")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                let mut shape = Shape { rank: 0, dims: [0; MAX_RANK] };
                while let Some(d) = seq.next_element::<u64>()? {
                    let slot = shape
                        .dims
                        .get_mut(usize::from(shape.rank))
                        .ok_or_else(|| A::Error::invalid_length(MAX_RANK + 1, &self))?;
                    *slot = d;
                    shape.rank += 1;
                }
                Ok(shape)
            }
        }

        deserializer.deserialize_seq(ShapeVisitor)
    }
}

/// The postcard-serialized header of a tensor record (field order is the wire order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceHeader<'a> {
    /// [`MAGIC`].
    pub magic: [u8; 4],
    /// [`VERSION`].
    pub version: u16,
    /// The tensor name (borrowed from the file).
    pub name: &'a str,
    /// The tensor shape.
    pub shape: Shape,
    /// Real elements (the product of the shape).
    pub elements: u64,
    /// How the blocks were encoded.
    pub codec: CodecDesc,
    /// Packed code bytes per block.
    pub codes_len: u32,
    /// Parameter bytes per block.
    pub params_len: u32,
    /// Number of blocks: `ceil(elements / group)`.
    pub blocks: u64,
}

/// The version prefix every header shares, decoded first so that a record of another
/// version is reported as such rather than as a malformed header.
#[derive(Deserialize)]
struct Prefix {
    magic: [u8; 4],
    version: u16,
}

/// A validated tensor record borrowed from a device file.
#[derive(Clone, Copy, Debug)]
pub struct DeviceTensor<'a> {
    header: DeviceHeader<'a>,
    codec: GroupCodec,
    elements: usize,
    groups: usize,
    codes: &'a [u8],
    params: &'a [u8],
}

impl<'a> DeviceTensor<'a> {
    /// Validates the record at the start of `bytes` and returns it with the bytes
    /// that follow it (the next record, if any).
    ///
    /// # Errors
    /// Any [`DeviceError`] describing what is wrong; never panics, whatever `bytes` hold.
    pub fn parse(bytes: &'a [u8]) -> Result<(Self, &'a [u8]), DeviceError> {
        if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(DeviceError::BadMagic);
        }
        let (prefix, _) = postcard::take_from_bytes::<Prefix>(bytes).map_err(|_| DeviceError::BadHeader)?;
        debug_assert_eq!(prefix.magic, MAGIC);
        if prefix.version != VERSION {
            return Err(DeviceError::UnsupportedVersion(prefix.version));
        }
        let (header, body) =
            postcard::take_from_bytes::<DeviceHeader<'a>>(bytes).map_err(|_| DeviceError::BadHeader)?;
        let format = header.codec.format()?;
        let layout = check_header(&header, format)?;

        let header_len = bytes.len() - body.len();
        let needed = (header_len as u64)
            .checked_add(layout.payload_len)
            .and_then(|n| n.checked_add(CRC_LEN as u64))
            .ok_or(DeviceError::TooLarge)?;
        if (bytes.len() as u64) < needed {
            return Err(DeviceError::Truncated { needed, available: bytes.len() as u64 });
        }
        // `needed <= bytes.len()`, so every length below fits in usize.
        let record_end = needed as usize;
        let crc_at = record_end - CRC_LEN;
        let mut stored = [0u8; CRC_LEN];
        stored.copy_from_slice(&bytes[crc_at..record_end]);
        let stored = u32::from_le_bytes(stored);
        let computed = crc32(CRC_INIT, &bytes[..crc_at]) ^ CRC_INIT;
        if stored != computed {
            return Err(DeviceError::ChecksumMismatch { stored, computed });
        }

        let codes_total = layout.groups * format.codes_len();
        let codes = &bytes[header_len..header_len + codes_total];
        let params = &bytes[header_len + codes_total..crc_at];
        let tensor = DeviceTensor {
            header,
            codec: GroupCodec::new(format),
            elements: layout.elements,
            groups: layout.groups,
            codes,
            params,
        };
        Ok((tensor, &bytes[record_end..]))
    }

    /// The decoded header.
    pub fn header(&self) -> &DeviceHeader<'a> {
        &self.header
    }

    /// The tensor name.
    pub fn name(&self) -> &'a str {
        self.header.name
    }

    /// The tensor shape, outermost dimension first.
    pub fn shape(&self) -> &[u64] {
        self.header.shape.dims()
    }

    /// Real elements in the tensor.
    pub fn len(&self) -> usize {
        self.elements
    }

    /// True for a tensor without elements.
    pub fn is_empty(&self) -> bool {
        self.elements == 0
    }

    /// The group format of the blocks.
    pub fn format(&self) -> GroupFormat {
        self.codec.format()
    }

    /// The kernel backend that decodes (the fastest of this CPU).
    pub fn backend(&self) -> Backend {
        self.codec.backend()
    }

    /// Elements per group.
    pub fn group_len(&self) -> usize {
        self.codec.block_len()
    }

    /// Number of groups (blocks), the last one possibly padded.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// The packed codes of every group (borrowed from the file).
    pub fn codes(&self) -> &'a [u8] {
        self.codes
    }

    /// The parameters of every group (borrowed from the file).
    pub fn params(&self) -> &'a [u8] {
        self.params
    }

    /// Dequantizes group `group` into `out` (exactly [`group_len`](Self::group_len)
    /// values) and returns how many of them are real elements: `group_len` except for a
    /// padded last group.
    ///
    /// # Errors
    /// [`DeviceError::GroupOutOfRange`], [`QuantError::LengthMismatch`] for a wrong
    /// `out` length, [`QuantError::Corrupt`] for non-finite parameters.
    pub fn dequantize_group(&self, group: usize, out: &mut [f32]) -> Result<usize, DeviceError> {
        if group >= self.groups {
            return Err(DeviceError::GroupOutOfRange { group, groups: self.groups });
        }
        let (g, cl, pl) = (self.group_len(), self.codec.codes_len(), self.codec.params_len());
        if out.len() != g {
            return Err(QuantError::LengthMismatch { expected: g, actual: out.len() }.into());
        }
        let codes = &self.codes[group * cl..(group + 1) * cl];
        let params = &self.params[group * pl..(group + 1) * pl];
        self.codec.decode(codes, params, out)?;
        Ok(g.min(self.elements - group * g))
    }

    /// Dequantizes the whole tensor into `out` (exactly [`len`](Self::len) values).
    ///
    /// # Errors
    /// [`QuantError::LengthMismatch`] for a wrong `out` length, [`QuantError::Corrupt`]
    /// for non-finite parameters.
    pub fn dequantize_into(&self, out: &mut [f32]) -> Result<(), DeviceError> {
        if out.len() != self.elements {
            return Err(QuantError::LengthMismatch { expected: self.elements, actual: out.len() }.into());
        }
        let (g, cl, pl) = (self.group_len(), self.codec.codes_len(), self.codec.params_len());
        let full = self.elements / g;
        // Whole groups in one call: one kernel dispatch for the buffer.
        self.codec.decode(&self.codes[..full * cl], &self.params[..full * pl], &mut out[..full * g])?;
        let rest = self.elements - full * g;
        if rest > 0 {
            let mut last = [0f32; GroupSize::MAX];
            self.dequantize_group(full, &mut last[..g])?;
            out[full * g..].copy_from_slice(&last[..rest]);
        }
        Ok(())
    }
}

/// The records of a device file, in order. Yields at most one error, then stops.
#[derive(Clone, Debug)]
pub struct Tensors<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for Tensors<'a> {
    type Item = Result<DeviceTensor<'a>, DeviceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        match DeviceTensor::parse(self.rest) {
            Ok((t, rest)) => {
                self.rest = rest;
                Some(Ok(t))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterates the tensor records of a device file.
pub fn tensors(file: &[u8]) -> Tensors<'_> {
    Tensors { rest: file, failed: false }
}

/// The first record named `name`.
///
/// # Errors
/// [`DeviceError::NotFound`], or the error of a malformed record met before it.
pub fn find<'a>(file: &'a [u8], name: &str) -> Result<DeviceTensor<'a>, DeviceError> {
    for t in tensors(file) {
        let t = t?;
        if t.name() == name {
            return Ok(t);
        }
    }
    Err(DeviceError::NotFound)
}

/// Sizes derived from a header once it is checked.
struct Layout {
    elements: usize,
    groups: usize,
    payload_len: u64,
}

/// Checks a header's internal consistency; the sizes it returns fit in `usize`.
fn check_header(header: &DeviceHeader<'_>, format: GroupFormat) -> Result<Layout, DeviceError> {
    if header.magic != MAGIC {
        return Err(DeviceError::BadMagic);
    }
    if header.codes_len as usize != format.codes_len() || header.params_len as usize != format.params_len() {
        return Err(DeviceError::BlockLayoutMismatch {
            codes_len: header.codes_len,
            params_len: header.params_len,
        });
    }
    let shape_elements = header.shape.elements().ok_or(DeviceError::TooLarge)?;
    if shape_elements != header.elements {
        return Err(DeviceError::ShapeMismatch { shape_elements, elements: header.elements });
    }
    let expected = header.elements.div_ceil(format.group_len() as u64);
    if header.blocks != expected {
        return Err(DeviceError::BlockCountMismatch { expected, actual: header.blocks });
    }
    let payload_len = header.blocks.checked_mul(format.block_bytes() as u64).ok_or(DeviceError::TooLarge)?;
    let too_large = |_| DeviceError::TooLarge;
    // Every byte of the payload must be addressable, and then so are the counts.
    usize::try_from(payload_len).map_err(too_large)?;
    Ok(Layout {
        elements: usize::try_from(header.elements).map_err(too_large)?,
        groups: usize::try_from(header.blocks).map_err(too_large)?,
        payload_len,
    })
}

/// Builds and checks the header of a record for `codes` and `params`.
fn header_for<'n>(
    name: &'n str,
    shape: &[u64],
    format: GroupFormat,
    codes: &[u8],
    params: &[u8],
) -> Result<DeviceHeader<'n>, DeviceError> {
    let shape = Shape::new(shape)?;
    let elements = shape.elements().ok_or(DeviceError::TooLarge)?;
    let header = DeviceHeader {
        magic: MAGIC,
        version: VERSION,
        name,
        shape,
        elements,
        codec: CodecDesc::from_format(format),
        codes_len: format.codes_len() as u32,
        params_len: format.params_len() as u32,
        blocks: elements.div_ceil(format.group_len() as u64),
    };
    let layout = check_header(&header, format)?;
    let (want_codes, want_params) = (layout.groups * format.codes_len(), layout.groups * format.params_len());
    if codes.len() != want_codes {
        return Err(QuantError::LengthMismatch { expected: want_codes, actual: codes.len() }.into());
    }
    if params.len() != want_params {
        return Err(QuantError::LengthMismatch { expected: want_params, actual: params.len() }.into());
    }
    Ok(header)
}

/// Bytes of the record [`write_tensor_into`] writes for a tensor of this name, shape
/// and format.
///
/// # Errors
/// [`DeviceError::RankTooLarge`] or [`DeviceError::TooLarge`].
pub fn encoded_len(name: &str, shape: &[u64], format: GroupFormat) -> Result<usize, DeviceError> {
    let shape = Shape::new(shape)?;
    let elements = shape.elements().ok_or(DeviceError::TooLarge)?;
    let groups =
        usize::try_from(elements.div_ceil(format.group_len() as u64)).map_err(|_| DeviceError::TooLarge)?;
    let header = DeviceHeader {
        magic: MAGIC,
        version: VERSION,
        name,
        shape,
        elements,
        codec: CodecDesc::from_format(format),
        codes_len: format.codes_len() as u32,
        params_len: format.params_len() as u32,
        blocks: groups as u64,
    };
    let header_len = postcard::serialize_with_flavor(&header, postcard::ser_flavors::Size::default())
        .map_err(|_| DeviceError::BadHeader)?;
    groups
        .checked_mul(format.block_bytes())
        .and_then(|p| p.checked_add(header_len + CRC_LEN))
        .ok_or(DeviceError::TooLarge)
}

/// Writes one tensor record into `buf` without `alloc` and returns its length.
///
/// `shape` is the tensor's shape (its product is the element count), `codes` and
/// `params` the packed blocks as [`crate::quantize`] or a sink produce them: exactly
/// `ceil(elements / group)` blocks, the last one padded if the group does not divide
/// the element count.
///
/// # Errors
/// [`QuantError::LengthMismatch`] for `codes`/`params` of the wrong length,
/// [`DeviceError::RankTooLarge`], and [`DeviceError::Truncated`] if `buf` is too small.
pub fn write_tensor_into(
    buf: &mut [u8],
    name: &str,
    shape: &[u64],
    format: GroupFormat,
    codes: &[u8],
    params: &[u8],
) -> Result<usize, DeviceError> {
    let header = header_for(name, shape, format, codes, params)?;
    let needed = encoded_len(name, shape, format)?;
    if buf.len() < needed {
        return Err(DeviceError::Truncated { needed: needed as u64, available: buf.len() as u64 });
    }
    let header_len = postcard::to_slice(&header, buf).map_err(|_| DeviceError::BadHeader)?.len();
    let mut at = header_len;
    for part in [codes, params] {
        buf[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    let crc = crc32(CRC_INIT, &buf[..at]) ^ CRC_INIT;
    buf[at..at + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(at + CRC_LEN)
}

/// Appends one tensor record to `out` (a device file being built).
///
/// # Errors
/// As [`write_tensor_into`], except that the buffer grows.
#[cfg(feature = "alloc")]
pub fn append_tensor(
    out: &mut alloc::vec::Vec<u8>,
    name: &str,
    shape: &[u64],
    format: GroupFormat,
    codes: &[u8],
    params: &[u8],
) -> Result<(), DeviceError> {
    let start = out.len();
    let len = encoded_len(name, shape, format)?;
    out.resize(start + len, 0);
    match write_tensor_into(&mut out[start..], name, shape, format, codes, params) {
        Ok(written) => {
            debug_assert_eq!(written, len);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// A device file holding one tensor record.
///
/// # Errors
/// As [`write_tensor_into`].
#[cfg(feature = "alloc")]
pub fn write_tensor(
    name: &str,
    shape: &[u64],
    format: GroupFormat,
    codes: &[u8],
    params: &[u8],
) -> Result<alloc::vec::Vec<u8>, DeviceError> {
    let mut out = alloc::vec::Vec::new();
    append_tensor(&mut out, name, shape, format, codes, params)?;
    Ok(out)
}

const CRC_INIT: u32 = 0xFFFF_FFFF;

/// Continues a CRC-32 (IEEE 802.3, reflected polynomial `0xEDB88320`) over `bytes`.
/// Start with [`CRC_INIT`] and XOR the result with it. Bitwise: no table, so it costs no
/// flash on a microcontroller.
fn crc32(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use std::vec;
    use std::vec::Vec;

    use super::*;
    use crate::format::Bits;
    use crate::{Input, StreamQuantizer, VecSink};

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

    fn all_formats() -> impl Iterator<Item = GroupFormat> {
        Bits::ALL.into_iter().flat_map(|b| {
            GroupSize::ALLOWED.into_iter().flat_map(move |g| {
                [Scheme::Asymmetric, Scheme::Symmetric]
                    .into_iter()
                    .map(move |s| GroupFormat::new(b.get() as u8, g, s).unwrap())
            })
        })
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
        // 300 elements: a padded last group for every group size.
        let w = weights(300, 1);
        for f in all_formats() {
            let sink = stream(f, &w);
            let file = write_tensor("t", &[3, 100], f, &sink.codes, &sink.params).unwrap();
            assert_eq!(&file[..5], b"AQDV\x01");
            let (t, rest) = DeviceTensor::parse(&file).unwrap();
            assert!(rest.is_empty());
            assert_eq!((t.name(), t.shape(), t.len(), t.format()), ("t", &[3u64, 100][..], 300, f));
            assert_eq!((t.codes(), t.params()), (&sink.codes[..], &sink.params[..]));

            // The oracle: the core's own decode of the same codes and parameters.
            let g = f.group_len();
            let mut expected = vec![0f32; t.groups() * g];
            crate::dequantize(f, &sink.codes, &sink.params, &mut expected).unwrap();

            let mut group = vec![0f32; g];
            for i in 0..t.groups() {
                let real = t.dequantize_group(i, &mut group).unwrap();
                assert_eq!(real, g.min(300 - i * g), "{f:?} group {i}");
                assert_eq!(bits(&group), bits(&expected[i * g..(i + 1) * g]), "{f:?} group {i}");
            }
            let mut all = vec![0f32; 300];
            t.dequantize_into(&mut all).unwrap();
            assert_eq!(bits(&all), bits(&expected[..300]), "{f:?}");
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
        assert_eq!((b_read.format(), b_read.groups(), b_read.len()), (f2, 8, 1000));
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
        for i in 0..file.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
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
        let huge =
            DeviceHeader { shape: Shape::new(&[u64::MAX]).unwrap(), elements: u64::MAX, blocks, ..good };
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
        for n in 0..3000usize {
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
        assert_eq!(
            t.dequantize_group(4, &mut out),
            Err(DeviceError::GroupOutOfRange { group: 4, groups: 4 })
        );
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
        assert_eq!(Backend::detect(), Backend::Neon);
        let file = sample_file();
        assert_eq!(find(&file, "blk.0.w").unwrap().backend(), Backend::Neon);
    }
}
