//! The optional features that store a section next to the tensors: calibration files,
//! time-aware activation parameters, channel equalization and mixed precision. Each
//! runs before the output is created, so a bad input leaves nothing behind.

pub mod calibration;
pub(crate) mod equalization;
pub(crate) mod mixed;
pub(crate) mod time_aware;
