//! The record header: its serde types and the consistency checks every reader and
//! writer applies to it.

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{DeviceError, MAGIC, MAX_RANK};
use crate::QuantError;
use crate::format::{GroupFormat, Scheme};
use crate::kquant::TwoLevelFormat;

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
    /// Two-level blocks ([`TwoLevelFormat`], the `int2`/`int4`/`int8` presets'
    /// layout, never per-row): tag 1.
    TwoLevel {
        /// Code width: 2, 4 or 8.
        bits: u8,
        /// Elements per block: 64, 128 or 256.
        block: u16,
        /// Elements per sub-group.
        sub: u16,
        /// Bits of each sub-scale.
        scale_bits: u8,
        /// Bits of each sub-minimum.
        min_bits: u8,
        /// Outliers kept exactly per block.
        outliers: u8,
    },
    /// A tensor stored unquantized: its elements' little-endian bytes: tag 2.
    Raw {
        /// The element type.
        dtype: RawDtype,
    },
}

/// The element type of a raw record (variant order is the stored tag: never reorder).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RawDtype {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16 (the top 16 bits of an f32).
    BF16,
    /// IEEE binary64.
    F64,
    /// Signed 64-bit integers.
    I64,
    /// Signed 32-bit integers.
    I32,
    /// Signed 16-bit integers.
    I16,
    /// Signed 8-bit integers.
    I8,
    /// Unsigned 8-bit integers.
    U8,
    /// Booleans, one byte each.
    Bool,
}

impl RawDtype {
    /// Every dtype, in tag order.
    pub const ALL: [RawDtype; 10] = [
        RawDtype::F32,
        RawDtype::F16,
        RawDtype::BF16,
        RawDtype::F64,
        RawDtype::I64,
        RawDtype::I32,
        RawDtype::I16,
        RawDtype::I8,
        RawDtype::U8,
        RawDtype::Bool,
    ];

    /// The safetensors name (`F32`, `BF16`, `I64`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            RawDtype::F32 => "F32",
            RawDtype::F16 => "F16",
            RawDtype::BF16 => "BF16",
            RawDtype::F64 => "F64",
            RawDtype::I64 => "I64",
            RawDtype::I32 => "I32",
            RawDtype::I16 => "I16",
            RawDtype::I8 => "I8",
            RawDtype::U8 => "U8",
            RawDtype::Bool => "BOOL",
        }
    }

    /// Looks a dtype up by its safetensors name.
    pub fn from_name(name: &str) -> Option<Self> {
        RawDtype::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            RawDtype::F64 | RawDtype::I64 => 8,
            RawDtype::F32 | RawDtype::I32 => 4,
            RawDtype::F16 | RawDtype::BF16 | RawDtype::I16 => 2,
            RawDtype::I8 | RawDtype::U8 | RawDtype::Bool => 1,
        }
    }

    /// The f32 value of one element (`bytes` is exactly [`size`](Self::size) long),
    /// for the float types that widen to f32 exactly: F32, F16, BF16.
    pub fn to_f32(self, bytes: &[u8]) -> Option<f32> {
        match (self, bytes) {
            (RawDtype::F32, &[a, b, c, d]) => Some(f32::from_le_bytes([a, b, c, d])),
            (RawDtype::F16, &[a, b]) => Some(half::f16::from_le_bytes([a, b]).to_f32()),
            (RawDtype::BF16, &[a, b]) => Some(half::bf16::from_le_bytes([a, b]).to_f32()),
            _ => None,
        }
    }
}

/// A codec the device format can hold: what a record's blocks decode with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceCodec {
    /// Min-max group quantization.
    Group(GroupFormat),
    /// Two-level blocks (without per-row scales).
    TwoLevel(TwoLevelFormat),
    /// Unquantized elements: one element per block, no parameters.
    Raw(RawDtype),
}

impl DeviceCodec {
    /// Elements per block.
    pub fn block_len(&self) -> usize {
        match self {
            DeviceCodec::Group(f) => f.group_len(),
            DeviceCodec::TwoLevel(f) => f.block_len(),
            DeviceCodec::Raw(_) => 1,
        }
    }

    /// Packed code bytes per block.
    pub fn codes_len(&self) -> usize {
        match self {
            DeviceCodec::Group(f) => f.codes_len(),
            DeviceCodec::TwoLevel(f) => f.codes_len(),
            DeviceCodec::Raw(d) => d.size(),
        }
    }

    /// Parameter bytes per block.
    pub fn params_len(&self) -> usize {
        match self {
            DeviceCodec::Group(f) => f.params_len(),
            DeviceCodec::TwoLevel(f) => f.params_len(false),
            DeviceCodec::Raw(_) => 0,
        }
    }

    /// Code width in bits.
    pub fn bits(&self) -> u8 {
        match self {
            DeviceCodec::Group(f) => f.bits.get() as u8,
            DeviceCodec::TwoLevel(f) => f.bits.get() as u8,
            DeviceCodec::Raw(d) => (d.size() * 8) as u8,
        }
    }

    /// The header's description of this codec.
    pub fn desc(&self) -> CodecDesc {
        match *self {
            DeviceCodec::Group(f) => CodecDesc::from_format(f),
            DeviceCodec::TwoLevel(f) => CodecDesc::TwoLevel {
                bits: f.bits.get() as u8,
                block: f.block_len() as u16,
                sub: f.sub_len() as u16,
                scale_bits: f.scale_bits() as u8,
                min_bits: f.min_bits() as u8,
                outliers: f.outliers() as u8,
            },
            DeviceCodec::Raw(dtype) => CodecDesc::Raw { dtype },
        }
    }
}

impl From<GroupFormat> for DeviceCodec {
    fn from(f: GroupFormat) -> Self {
        DeviceCodec::Group(f)
    }
}

impl From<TwoLevelFormat> for DeviceCodec {
    fn from(f: TwoLevelFormat) -> Self {
        DeviceCodec::TwoLevel(f)
    }
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

    /// The codec described.
    ///
    /// # Errors
    /// [`QuantError::InvalidBitWidth`] or [`QuantError::InvalidGroupSize`] for knobs
    /// out of range.
    pub fn codec(&self) -> Result<DeviceCodec, QuantError> {
        match *self {
            CodecDesc::Group { bits, group, scheme } => {
                let scheme = match scheme {
                    SchemeTag::Asymmetric => Scheme::Asymmetric,
                    SchemeTag::Symmetric => Scheme::Symmetric,
                };
                GroupFormat::new(bits, usize::from(group), scheme).map(DeviceCodec::Group)
            }
            CodecDesc::TwoLevel { bits, block, sub, scale_bits, min_bits, outliers } => {
                TwoLevelFormat::new(bits, usize::from(block), usize::from(sub), scale_bits, min_bits)
                    .and_then(|f| f.with_outliers(usize::from(outliers)))
                    .map(DeviceCodec::TwoLevel)
            }
            CodecDesc::Raw { dtype } => Ok(DeviceCodec::Raw(dtype)),
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
    /// [`VERSION`](super::VERSION).
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
pub(super) struct Prefix {
    pub(super) magic: [u8; 4],
    pub(super) version: u16,
}

/// Sizes derived from a header once it is checked.
pub(super) struct Layout {
    pub(super) elements: usize,
    pub(super) groups: usize,
    pub(super) payload_len: u64,
}

/// Checks a header's internal consistency; the sizes it returns fit in `usize`.
pub(super) fn check_header(header: &DeviceHeader<'_>, format: DeviceCodec) -> Result<Layout, DeviceError> {
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
    let expected = header.elements.div_ceil(format.block_len() as u64);
    if header.blocks != expected {
        return Err(DeviceError::BlockCountMismatch { expected, actual: header.blocks });
    }
    let block_bytes = (format.codes_len() + format.params_len()) as u64;
    let payload_len = header.blocks.checked_mul(block_bytes).ok_or(DeviceError::TooLarge)?;
    let too_large = |_| DeviceError::TooLarge;
    // Every byte of the payload must be addressable, and then so are the counts.
    usize::try_from(payload_len).map_err(too_large)?;
    Ok(Layout {
        elements: usize::try_from(header.elements).map_err(too_large)?,
        groups: usize::try_from(header.blocks).map_err(too_large)?,
        payload_len,
    })
}
