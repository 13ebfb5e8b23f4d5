//! # arrowquant-std
//!
//! The std adapter of ArrowQuant: it streams safetensors models through
//! [`arrowquant_core`] and writes Parquet.

pub use arrowquant_core as core;
