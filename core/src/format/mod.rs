//! Quantized formats: bit widths, schemes, group sizes, and the packed layout.
//!
//! # Group format
//!
//! A tensor is read as a flat sequence of elements and cut into *groups* of `G`
//! consecutive elements (`G` = 32, 64, 128 or 256). Each group stores `G` unsigned
//! codes `c` of `b` bits (`b` = 2, 4 or 8) and its parameters:
//!
//! | scheme | parameters (little-endian) | dequantized value |
//! |---|---|---|
//! | asymmetric | scale `d`: f16, offset `m`: f16 (4 bytes) | `x = c * d + m` |
//! | symmetric | scale `d`: f16 (2 bytes) | `x = (c - 2^(b-1)) * d` |
//!
//! The asymmetric offset `m` is the zero point expressed in weight units
//! (`m = -d * z`); storing it as a float keeps it exact for groups that do not
//! contain zero. Both products are computed in f32 as a multiply followed by an add
//! (no fused multiply-add), so every CPU path dequantizes bit for bit alike.
//!
//! # Packing layout
//!
//! Codes are packed little-endian within each byte, lowest element first, with no
//! padding between groups (every supported `G` is a multiple of 8):
//!
//! | width | byte `i` holds | bits 0-1 | bits 2-3 | bits 4-5 | bits 6-7 |
//! |---|---|---|---|---|---|
//! | INT2 | elements `4i .. 4i+3` | `c[4i]` | `c[4i+1]` | `c[4i+2]` | `c[4i+3]` |
//! | INT4 | elements `2i, 2i+1` | `c[2i]` (bits 0-3) | | `c[2i+1]` (bits 4-7) | |
//! | INT8 | element `i` | `c[i]` (bits 0-7) | | | |
//!
//! In numpy: INT4 `np.stack([b & 15, b >> 4], -1).reshape(-1)`; INT2
//! `np.stack([(b >> s) & 3 for s in (0, 2, 4, 6)], -1).reshape(-1)`.
//!
//! # Bits per weight
//!
//! `bpw = b + 8 * param_bytes / G`: asymmetric INT4 with `G = 128` is
//! `4 + 32 / 128 = 4.25` bits per weight; symmetric INT8 with `G = 32` is `8.5`.
//! [`GroupFormat::bits_per_weight`] computes it. Whole-file figures add the
//! container's own metadata on top.

mod int2;
mod int4;
mod int8;

pub use int2::{pack_i2, unpack_i2};
pub use int4::{pack_i4, unpack_i4};
pub use int8::{pack_i8, unpack_i8};

use crate::QuantError;

/// Code width in bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bits {
    /// 2-bit codes, four per byte.
    B2,
    /// 4-bit codes, two per byte.
    B4,
    /// 8-bit codes, one per byte.
    B8,
}

impl Bits {
    /// Every supported width, narrowest first.
    pub const ALL: [Bits; 3] = [Bits::B2, Bits::B4, Bits::B8];

    /// Parses a bit width.
    ///
    /// # Errors
    /// [`QuantError::InvalidBitWidth`] for anything but 2, 4 or 8.
    pub const fn new(bits: u8) -> Result<Self, QuantError> {
        match bits {
            2 => Ok(Bits::B2),
            4 => Ok(Bits::B4),
            8 => Ok(Bits::B8),
            other => Err(QuantError::InvalidBitWidth(other)),
        }
    }

    /// The width in bits.
    pub const fn get(self) -> u32 {
        match self {
            Bits::B2 => 2,
            Bits::B4 => 4,
            Bits::B8 => 8,
        }
    }

    /// Largest code: `2^b - 1`.
    pub const fn max_code(self) -> u32 {
        (1 << self.get()) - 1
    }

    /// Codes per packed byte.
    pub const fn per_byte(self) -> usize {
        8 / self.get() as usize
    }

    /// The next wider width, if any (2 -> 4 -> 8).
    pub const fn wider(self) -> Option<Bits> {
        match self {
            Bits::B2 => Some(Bits::B4),
            Bits::B4 => Some(Bits::B8),
            Bits::B8 => None,
        }
    }

    /// Packs `codes` (each `< 2^b`) into `out`.
    ///
    /// # Errors
    /// [`QuantError::LengthMismatch`] unless `out.len() * per_byte == codes.len()`.
    pub fn pack(self, codes: &[u8], out: &mut [u8]) -> Result<(), QuantError> {
        match self {
            Bits::B2 => pack_i2(codes, out),
            Bits::B4 => pack_i4(codes, out),
            Bits::B8 => pack_i8(codes, out),
        }
    }

    /// Unpacks `packed` into one code per byte in `out`.
    ///
    /// # Errors
    /// [`QuantError::LengthMismatch`] unless `packed.len() * per_byte == out.len()`.
    pub fn unpack(self, packed: &[u8], out: &mut [u8]) -> Result<(), QuantError> {
        match self {
            Bits::B2 => unpack_i2(packed, out),
            Bits::B4 => unpack_i4(packed, out),
            Bits::B8 => unpack_i8(packed, out),
        }
    }
}

/// How a group's range is mapped to codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Scale and offset: the codes span `[min, max]` of the group.
    Asymmetric,
    /// Scale only: codes are centred on zero.
    Symmetric,
}

/// Number of elements per quantization group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupSize(u16);

impl GroupSize {
    /// The sizes the configuration guide allows.
    pub const ALLOWED: [usize; 4] = [32, 64, 128, 256];
    /// Largest supported group.
    pub const MAX: usize = 256;

    /// Validates a group size.
    ///
    /// # Errors
    /// [`QuantError::InvalidGroupSize`] unless the size is 32, 64, 128 or 256.
    pub const fn new(size: usize) -> Result<Self, QuantError> {
        match size {
            32 | 64 | 128 | 256 => Ok(GroupSize(size as u16)),
            other => Err(QuantError::InvalidGroupSize(other)),
        }
    }

    /// The size in elements.
    pub const fn get(self) -> usize {
        self.0 as usize
    }
}

/// A complete group format: code width, group size and scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupFormat {
    /// Code width.
    pub bits: Bits,
    /// Elements per group.
    pub group: GroupSize,
    /// Range mapping.
    pub scheme: Scheme,
}

impl GroupFormat {
    /// Builds and validates a format from raw knobs.
    ///
    /// # Errors
    /// [`QuantError::InvalidBitWidth`] or [`QuantError::InvalidGroupSize`].
    pub const fn new(bits: u8, group: usize, scheme: Scheme) -> Result<Self, QuantError> {
        let bits = match Bits::new(bits) {
            Ok(b) => b,
            Err(e) => return Err(e),
        };
        let group = match GroupSize::new(group) {
            Ok(g) => g,
            Err(e) => return Err(e),
        };
        Ok(GroupFormat { bits, group, scheme })
    }

    /// Elements per group.
    pub const fn group_len(&self) -> usize {
        self.group.get()
    }

    /// Packed code bytes per group.
    pub const fn codes_len(&self) -> usize {
        self.group.get() * self.bits.get() as usize / 8
    }

    /// Parameter bytes per group: 4 (asymmetric) or 2 (symmetric).
    pub const fn params_len(&self) -> usize {
        match self.scheme {
            Scheme::Asymmetric => 4,
            Scheme::Symmetric => 2,
        }
    }

    /// Bytes per group, codes and parameters together.
    pub const fn block_bytes(&self) -> usize {
        self.codes_len() + self.params_len()
    }

    /// Bits per weight, parameters included.
    pub fn bits_per_weight(&self) -> f64 {
        (self.block_bytes() * 8) as f64 / self.group_len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_knobs_are_errors() {
        assert_eq!(Bits::new(3), Err(QuantError::InvalidBitWidth(3)));
        assert_eq!(GroupSize::new(100), Err(QuantError::InvalidGroupSize(100)));
        assert_eq!(GroupSize::new(0), Err(QuantError::InvalidGroupSize(0)));
        assert!(GroupFormat::new(4, 128, Scheme::Asymmetric).is_ok());
    }

    #[test]
    fn bits_per_weight_counts_parameters() {
        let f = GroupFormat::new(4, 128, Scheme::Asymmetric).unwrap();
        assert_eq!(f.bits_per_weight(), 4.25);
        let f = GroupFormat::new(8, 32, Scheme::Symmetric).unwrap();
        assert_eq!(f.bits_per_weight(), 8.5);
        let f = GroupFormat::new(2, 64, Scheme::Asymmetric).unwrap();
        assert_eq!(f.bits_per_weight(), 2.5);
        assert_eq!(f.codes_len(), 16);
    }
}
