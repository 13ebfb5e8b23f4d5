//! # arrowquant-std
//!
//! The std adapter of ArrowQuant: it streams safetensors models through
//! [`arrowquant_core`] in bounded memory and writes self-describing Parquet files
//! (`docs/FORMAT.md`), reads them back, dequantizes and validates them.
//!
//! | task | entry point |
//! |---|---|
//! | open a model (file, sharded directory, model directory) | [`Model::open`] |
//! | resolve a configuration (profile < file < env < args) | [`Config::resolve`], [`ConfigLayer`] |
//! | quantize a model to Parquet, with quality fallback | [`quantize_model`] -> [`QuantizeReport`] |
//! | read a quantized file, dequantize, export safetensors | [`QuantizedFile`] |
//! | compare original and quantized | [`validate()`] -> [`ValidationReport`] |
//! | quantize an Arrow record batch in memory | [`quantize_batch`] |
//! | time-aware activation parameters from a calibration file | [`time_aware`], [`QuantizedFile::time_group_params`] |
//! | mixed precision under a bits-per-weight budget | [`mixed`] (`target_bpw`) |
//! | channel equalization from per-channel activation absmax | [`equalization`], [`QuantizedFile::equalization_factors`] |
//!
//! # Example
//!
//! ```no_run
//! use arrowquant_std::{Config, ConfigLayer, Model, QuantizedFile, quantize_model, validate};
//! use std::path::Path;
//!
//! let model = Model::open("model.safetensors")?;
//! let config = Config::resolve(None, &ConfigLayer { bit_width: Some(4), ..Default::default() })?;
//! let report = quantize_model(&model, &config, Path::new("model.parquet"), &mut |_p| {})?;
//! println!("{:.2} bits/weight, min cosine {:?}", report.bits_per_weight, report.cosine_min);
//!
//! let q = QuantizedFile::open("model.parquet")?;
//! let v = validate(&model, &q, config.min_accuracy)?;
//! assert!(v.passed);
//! q.export_safetensors(Path::new("dequantized.safetensors"), Default::default())?;
//! # Ok::<(), arrowquant_std::AdapterError>(())
//! ```
//!
//! # Memory
//!
//! Model data is read through short-lived memory maps of one window each
//! ([`window`]); the output of at most one tensor is buffered while its quality is
//! checked; the Parquet writer flushes row groups by size, and the output's pages are
//! sent to disk as they are written ([`atomic::Writeback`]). All three are derived
//! from `max_memory` (default 256 MiB), so peak memory does not depend on the model
//! size. `docs/MEMORY.md` has the measurements.
//!
//! # Errors
//!
//! Every function returns [`AdapterError`], whose messages name the file and, where
//! there is one, the tensor. Malformed safetensors headers give
//! [`AdapterError::Safetensors`] with a [`SafetensorsError`]; outputs are written
//! atomically ([`atomic`]), so an error leaves nothing under the output name.
//!
//! # Crate features
//!
//! - `rayon`: encode row chunks on `num_threads` threads (0 = all cores), each
//!   chunk mapped by the task that encodes it, a window's worth in flight at most;
//!   with two or more threads the Parquet encoding and zstd run on a writer thread.

pub mod atomic;
pub mod batch;
mod batch_writer;
pub mod calibration;
pub mod codec;
pub mod config;
/// Output containers other than Parquet (the GGUF writer).
pub mod container {
    pub mod gguf;
}
pub mod decode_guard;
pub mod equalization;
mod error;
pub mod mixed;
/// Model inputs other than safetensors (GGUF through mmap windows).
pub mod model {
    pub mod gguf;
}
pub mod quantize;
pub mod reader;
pub mod safetensors;
pub mod schema;
pub mod time_aware;
pub mod validate;
pub mod window;
pub mod writer;

pub use arrowquant_core as core;
pub use batch::quantize_batch;
pub use codec::CodecChoice;
pub use config::{Config, ConfigError, ConfigLayer, Modality, Profile, SchemeName, parse_bytes};
pub use error::{AdapterError, Result, SafetensorsError};
pub use quantize::{
    FallbackStep, Progress, ProgressEvent, QuantizeReport, TensorReport, Tuning, quantize_model,
    quantize_model_with,
};
pub use reader::{ChunkData, ExportReport, OutDtype, QuantizedFile};
pub use safetensors::{Model, StDtype, TensorInfo};
pub use schema::StoredTensor;
pub use validate::{TensorValidation, ValidationReport, validate};
