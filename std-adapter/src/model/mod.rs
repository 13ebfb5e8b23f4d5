//! The model in: safetensors headers (one file, shards, an index) and short-lived
//! memory maps of one window of tensor data at a time.

pub(crate) mod gguf;
mod header_json;
pub(crate) mod hf;
mod index;
pub(crate) mod input;
pub mod mapped;
pub(crate) mod safetensors;
pub mod window;
