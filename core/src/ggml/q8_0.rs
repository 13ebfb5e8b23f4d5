//! ggml's `Q8_0` block: placeholder until its encoder and decoder land (being written now).

use crate::QuantError;
use crate::input::Input;

/// Encodes whole `Q8_0` blocks of `input` into `out`.
pub(crate) fn encode(_input: Input<'_>, _first_element: u64, _out: &mut [u8]) -> Result<(), QuantError> {
    Err(QuantError::BackendUnavailable)
}

/// Decodes whole `Q8_0` blocks into `out`.
pub(crate) fn decode(_blocks: &[u8], _out: &mut [f32]) -> Result<(), QuantError> {
    Err(QuantError::BackendUnavailable)
}
