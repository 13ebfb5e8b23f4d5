//! Borrowed input element slices: f32, f16 or bf16.
//!
//! Kernels convert f16/bf16 to f32 group by group on the stack; no f32 copy of a
//! tensor is ever allocated.

use half::{bf16, f16};

use crate::QuantError;

/// Element type of a weight tensor as stored (little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary16.
    F16,
    /// bfloat16 (the top half of an f32).
    Bf16,
}

impl Dtype {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::Bf16 => 2,
        }
    }

    /// The safetensors spelling (`F32`, `F16`, `BF16`).
    pub const fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::Bf16 => "BF16",
        }
    }
}

/// A borrowed run of input elements.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// f32 elements.
    F32(&'a [f32]),
    /// f16 elements.
    F16(&'a [f16]),
    /// bf16 elements.
    Bf16(&'a [bf16]),
}

impl<'a> Input<'a> {
    /// Views little-endian bytes as elements of `dtype` without copying.
    ///
    /// # Errors
    /// [`QuantError::Misaligned`] if `bytes` is not aligned for the element type or
    /// its length is not a multiple of the element size, and on big-endian hosts
    /// (the stored data is little-endian).
    pub fn from_le_bytes(dtype: Dtype, bytes: &'a [u8]) -> Result<Self, QuantError> {
        if cfg!(target_endian = "big") {
            return Err(QuantError::Misaligned);
        }
        let bad = |_| QuantError::Misaligned;
        Ok(match dtype {
            Dtype::F32 => Input::F32(bytemuck::try_cast_slice(bytes).map_err(bad)?),
            Dtype::F16 => Input::F16(bytemuck::try_cast_slice(bytes).map_err(bad)?),
            Dtype::Bf16 => Input::Bf16(bytemuck::try_cast_slice(bytes).map_err(bad)?),
        })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Input::F32(x) => x.len(),
            Input::F16(x) => x.len(),
            Input::Bf16(x) => x.len(),
        }
    }

    /// The little-endian bytes of elements `start..start + n`.
    ///
    /// # Panics
    /// If the range is out of bounds.
    pub fn bytes(&self, start: usize, n: usize) -> &'a [u8] {
        match *self {
            Input::F32(x) => bytemuck::cast_slice(&x[start..start + n]),
            Input::F16(x) => bytemuck::cast_slice(&x[start..start + n]),
            Input::Bf16(x) => bytemuck::cast_slice(&x[start..start + n]),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        match self {
            Input::F32(_) => Dtype::F32,
            Input::F16(_) => Dtype::F16,
            Input::Bf16(_) => Dtype::Bf16,
        }
    }

    /// Splits at element `mid`.
    ///
    /// # Panics
    /// If `mid > self.len()`.
    pub fn split_at(&self, mid: usize) -> (Input<'a>, Input<'a>) {
        match *self {
            Input::F32(x) => {
                let (a, b) = x.split_at(mid);
                (Input::F32(a), Input::F32(b))
            }
            Input::F16(x) => {
                let (a, b) = x.split_at(mid);
                (Input::F16(a), Input::F16(b))
            }
            Input::Bf16(x) => {
                let (a, b) = x.split_at(mid);
                (Input::Bf16(a), Input::Bf16(b))
            }
        }
    }

    /// Elements `start..end`.
    ///
    /// # Panics
    /// If the range is out of bounds.
    pub fn slice(&self, start: usize, end: usize) -> Input<'a> {
        match *self {
            Input::F32(x) => Input::F32(&x[start..end]),
            Input::F16(x) => Input::F16(&x[start..end]),
            Input::Bf16(x) => Input::Bf16(&x[start..end]),
        }
    }

    /// Converts all elements to f32 into `out` (exact for every input type).
    ///
    /// # Panics
    /// If `out.len() != self.len()`.
    pub fn to_f32(&self, out: &mut [f32]) {
        assert_eq!(out.len(), self.len(), "output length must equal input length");
        match *self {
            Input::F32(x) => out.copy_from_slice(x),
            // Inlined exact widenings: `half`'s own conversion is an out-of-line call
            // per element without `std`, and this runs for every element the
            // streaming quantizer measures.
            Input::F16(x) => {
                for (o, v) in out.iter_mut().zip(x) {
                    *o = crate::params::f16_to_f32_exact(*v);
                }
            }
            Input::Bf16(x) => {
                for (o, v) in out.iter_mut().zip(x) {
                    *o = f32::from_bits(u32::from(v.to_bits()) << 16);
                }
            }
        }
    }

    /// Element `i` as f32.
    ///
    /// # Panics
    /// If `i` is out of bounds.
    pub fn get(&self, i: usize) -> f32 {
        match *self {
            Input::F32(x) => x[i],
            Input::F16(x) => x[i].to_f32(),
            Input::Bf16(x) => x[i].to_f32(),
        }
    }
}

impl<'a> From<&'a [f32]> for Input<'a> {
    fn from(x: &'a [f32]) -> Self {
        Input::F32(x)
    }
}

impl<'a> From<&'a [f16]> for Input<'a> {
    fn from(x: &'a [f16]) -> Self {
        Input::F16(x)
    }
}

impl<'a> From<&'a [bf16]> for Input<'a> {
    fn from(x: &'a [bf16]) -> Self {
        Input::Bf16(x)
    }
}
