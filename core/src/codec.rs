//! The block codec abstraction: anything that turns fixed-size blocks of weights into
//! packed codes plus parameters, and back.
//!
//! The streaming quantizer is generic over it, so the plain group formats of
//! [`crate::format`] and the searched formats share the same streaming, sinks and
//! metrics.

use crate::QuantError;
use crate::format::GroupFormat;
use crate::input::Input;
use crate::simd::Backend;

/// Encodes and decodes whole blocks of `block_len` elements.
pub trait BlockCodec {
    /// Elements per block (at most the streaming quantizer's capacity).
    fn block_len(&self) -> usize;
    /// Packed code bytes per block.
    fn codes_len(&self) -> usize;
    /// Parameter bytes per block.
    fn params_len(&self) -> usize;

    /// Bits per weight of the encoded blocks, parameters included.
    fn bits_per_weight(&self) -> f64 {
        ((self.codes_len() + self.params_len()) * 8) as f64 / self.block_len() as f64
    }

    /// Encodes `input` (a whole number of blocks) into `codes` and `params`.
    ///
    /// `first_element` is the stream position of `input[0]`, used in error messages.
    ///
    /// # Errors
    /// Length errors and the rejection of non-finite or out-of-range input.
    fn encode(
        &self,
        input: Input<'_>,
        first_element: u64,
        codes: &mut [u8],
        params: &mut [u8],
    ) -> Result<(), QuantError>;

    /// Decodes whole blocks into `out`.
    ///
    /// # Errors
    /// Length errors and [`QuantError::Corrupt`].
    fn decode(&self, codes: &[u8], params: &[u8], out: &mut [f32]) -> Result<(), QuantError>;
}

/// A [`GroupFormat`] bound to a kernel backend: min-max group quantization, the fast default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCodec {
    format: GroupFormat,
    backend: Backend,
}

impl GroupCodec {
    /// The format with the fastest backend of this CPU.
    pub fn new(format: GroupFormat) -> Self {
        GroupCodec { format, backend: Backend::detect() }
    }

    /// The format with a chosen backend.
    ///
    /// # Errors
    /// [`QuantError::BackendUnavailable`] if this CPU cannot run `backend`.
    pub fn with_backend(format: GroupFormat, backend: Backend) -> Result<Self, QuantError> {
        if backend.is_available() {
            Ok(GroupCodec { format, backend })
        } else {
            Err(QuantError::BackendUnavailable)
        }
    }

    /// The format.
    pub fn format(&self) -> GroupFormat {
        self.format
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl BlockCodec for GroupCodec {
    fn block_len(&self) -> usize {
        self.format.group_len()
    }

    fn codes_len(&self) -> usize {
        self.format.codes_len()
    }

    fn params_len(&self) -> usize {
        self.format.params_len()
    }

    fn encode(
        &self,
        input: Input<'_>,
        first_element: u64,
        codes: &mut [u8],
        params: &mut [u8],
    ) -> Result<(), QuantError> {
        crate::kernels::quantize_with(self.backend, self.format, input, codes, params).map_err(|e| match e {
            QuantError::NonFinite { element } => QuantError::NonFinite { element: element + first_element },
            QuantError::OutOfRange { element } => QuantError::OutOfRange { element: element + first_element },
            other => other,
        })
    }

    fn decode(&self, codes: &[u8], params: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
        crate::kernels::dequantize_with(self.backend, self.format, codes, params, out)
    }
}
