//! Error types of the core engine.
//!
//! Errors are small `Copy` values with hand-written messages so that they work the
//! same without `alloc`. The std adapter wraps them with file and tensor context.

use core::fmt;

/// Everything that can go wrong while configuring, quantizing or decoding.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantError {
    /// The bit width is not one of 2, 4 or 8.
    InvalidBitWidth(u8),
    /// The group size is not one of the supported sizes.
    InvalidGroupSize(usize),
    /// A buffer has the wrong length for the operation.
    LengthMismatch {
        /// What the operation needed.
        expected: usize,
        /// What it was given.
        actual: usize,
    },
    /// An input length is not a whole number of blocks.
    NotBlockMultiple {
        /// The input length in elements.
        len: usize,
        /// The block length in elements.
        block: usize,
    },
    /// A NaN or an infinity was found (policy: rejected, see the crate docs).
    NonFinite {
        /// Index of the first offending element, counted from the start of the stream.
        element: u64,
    },
    /// A finite value too large for the f16 parameters of its group (|x| > 65504).
    OutOfRange {
        /// Index of the first offending element, counted from the start of the stream.
        element: u64,
    },
    /// A byte slice cannot be viewed as the requested element type.
    Misaligned,
    /// The requested SIMD backend is not available on this CPU.
    BackendUnavailable,
    /// Encoded data is malformed (for example a parameter that decodes to NaN).
    Corrupt,
}

impl fmt::Display for QuantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::InvalidBitWidth(b) => {
                write!(f, "invalid bit width {b}: allowed values are 2, 4, 8")
            }
            Self::InvalidGroupSize(g) => {
                write!(f, "invalid group size {g}: allowed values are 32, 64, 128, 256")
            }
            Self::LengthMismatch { expected, actual } => {
                write!(f, "buffer length {actual} does not match the expected {expected}")
            }
            Self::NotBlockMultiple { len, block } => {
                write!(f, "length {len} is not a multiple of the block length {block}")
            }
            Self::NonFinite { element } => {
                write!(f, "non-finite value (NaN or infinity) at element {element}")
            }
            Self::OutOfRange { element } => {
                write!(f, "value at element {element} is too large for f16 group parameters (|x| > 65504)")
            }
            Self::Misaligned => f.write_str("byte buffer is not aligned for its element type"),
            Self::BackendUnavailable => {
                f.write_str("the requested SIMD backend is not available on this CPU")
            }
            Self::Corrupt => f.write_str("encoded block data is malformed"),
        }
    }
}

impl core::error::Error for QuantError {}

/// A fixed-capacity sink ran out of space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BufferFull;

impl fmt::Display for BufferFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("output buffer full")
    }
}

impl core::error::Error for BufferFull {}

/// An error from the streaming quantizer: either the quantization itself or the sink failed.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamError<E> {
    /// Quantization failed.
    Quant(QuantError),
    /// The sink refused the output.
    Sink(E),
}

impl<E: fmt::Display> fmt::Display for StreamError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Quant(e) => e.fmt(f),
            Self::Sink(e) => write!(f, "sink: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for StreamError<E> {}

impl<E> From<QuantError> for StreamError<E> {
    fn from(e: QuantError) -> Self {
        Self::Quant(e)
    }
}
