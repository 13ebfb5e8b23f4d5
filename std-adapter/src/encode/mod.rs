//! Encoding: the codec a configuration names, the per-tensor engine (raw or encoded,
//! with the quality fallback), the passes over a tensor's chunks, and the Arrow batch
//! API built on the same pieces.

pub(crate) mod batch;
pub(crate) mod chunk;
pub(crate) mod codec;
pub(crate) mod engine;
pub(crate) mod passes;
