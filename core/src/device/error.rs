//! [`DeviceError`]: what can be wrong with a device file or a record being written.

use super::{MAX_RANK, VERSION};
use crate::QuantError;

/// Everything that can be wrong with a device file, or with what is written into one.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// The record does not start with [`MAGIC`](super::MAGIC).
    BadMagic,
    /// The record was written by another version of the format.
    UnsupportedVersion(u16),
    /// The header is not valid postcard for [`DeviceHeader`](super::DeviceHeader) (or is cut short).
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
    /// Sizes or counts do not fit in this target's `usize` (or overflow `u64`).
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
    /// A raw record of a non-float dtype has no f32 values (read its bytes instead).
    NotFloat(&'static str),
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
            Self::NotFloat(d) => write!(f, "a raw {d} tensor has no float values: read its bytes"),
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
