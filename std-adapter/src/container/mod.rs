//! The containers written: one folder per output format, and the atomic file they all
//! write through (nothing under the output name until it is complete).

pub(crate) mod atomic;
pub(crate) mod gguf;
pub(crate) mod output_guard;
pub(crate) mod parquet;
pub mod temp_files;
