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
//! | quantize a model to Parquet, with quality fallback | [`quantize_model`] -> [`QuantizeReport`] ([`QuantizeSummary`]: its `--json` form) |
//! | read a quantized file, dequantize, export safetensors | [`QuantizedFile`] |
//! | compare original and quantized | [`validate()`] -> [`ValidationReport`] |
//! | quantize an Arrow record batch in memory | [`quantize_batch`] |
//! | time-aware activation parameters from a calibration file | [`calibration`], [`TimeGroupTable`], [`QuantizedFile::time_group_params`] |
//! | mixed precision under a bits-per-weight budget | `target_bpw` -> [`MixedPrecision`] |
//! | channel equalization from per-channel activation absmax | [`EqualizationTable`], [`QuantizedFile::equalization_factors`] |
//! | detect a model's modality and its defaults | [`detect_modality`], [`modality_defaults`] |
//! | refuse an output that is an input or not a regular file (every writer does) | [`check_output`], [`files_read`] |
//! | remove this process's temporary files from a signal handler | [`temp_files::remove_all`], [`mapped_files::file_at`] |
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
//! (`model/window.rs`); the output of at most one tensor is buffered while its quality is
//! checked; the Parquet writer flushes row groups by size, and the output's pages are
//! sent to disk as they are written (`container/atomic.rs`). All three are derived
//! from `max_memory` (default 256 MiB), so peak memory does not depend on the model
//! size. `docs/MEMORY.md` has the measurements.
//!
//! # Errors
//!
//! Every function returns [`AdapterError`], whose messages name the file and, where
//! there is one, the tensor. Malformed safetensors headers give
//! [`AdapterError::Safetensors`] with a [`SafetensorsError`]; outputs are written
//! atomically (`container/atomic.rs`), so an error leaves nothing under the output name.
//!
//! # Crate features
//!
//! - `rayon`: encode row chunks on `num_threads` threads (0 = all cores), each
//!   chunk mapped by the task that encodes it, a window's worth in flight at most;
//!   with two or more threads the Parquet encoding and zstd run on a writer thread.
//!
//! # Layout
//!
//! The folders follow the data (`docs/ARCHITECTURE.md`): `config/` (settings,
//! profiles, modality), `model/` (safetensors in, mmap windows), `encode/` (codec,
//! per-tensor engine, passes), `features/` (sections stored beside the tensors),
//! `container/` (one folder per output format), `pipeline.rs` (the run) and
//! `report.rs` (what it reports). Everything but the entry points above is
//! `pub(crate)`.

mod alloc;
mod config;
mod container;
mod encode;
mod error;
mod features;
mod model;
mod pipeline;
mod report;
mod validate;

pub use arrowquant_core as core;
pub use config::modality::{
    Detection, defaults_for as modality_defaults, describe_defaults as describe_modality_defaults,
    detect as detect_modality, metadata_files as model_metadata_files,
    resolve_for_model as resolve_config_for_model,
};
pub use config::{
    Config, ConfigError, ConfigLayer, MIN_MAX_MEMORY, Modality, Profile, SchemeName, parse_bytes,
    quality_preset, unknown_env_warnings,
};
pub use container::atomic::AtomicFile;
pub use container::gguf::{
    GgufExport, GgufSource, ParquetGgufExport, export_parquet as export_parquet_gguf,
    export_safetensors as export_gguf_safetensors, target_type as gguf_target_type, write_gguf,
};
pub use container::output_guard::check_output;
/// Why the decoder panicked, if it did: the panic hook of a binary asks
/// [`decode_guard::in_guarded_decode`] so a guarded decode stays quiet.
pub use container::parquet::reader::decode_guard;
pub use container::parquet::reader::{ChunkData, ExportReport, OutDtype, QuantizedFile};
pub use container::parquet::schema::{StoredTensor, schema};
pub use container::parquet::writer::WriterLimits;
/// The temporary files of this process, for a signal handler to remove.
pub use container::temp_files;
pub use encode::batch::quantize_batch;
pub use encode::codec::CodecChoice;
pub use error::{AdapterError, Result, SafetensorsError};
pub use features::calibration;
pub use features::equalization::{EqualizationOutcome, EqualizationTable};
pub use features::mixed::MixedPrecision;
pub use features::time_aware::{MarkovSummary, TimeAwareOutcome, TimeGroupTable};
pub use model::gguf::{GgufModel, is_gguf};
pub use model::hf::Pooling;
pub use model::input::FileKind;
/// Which input file an address was mapped from, for a SIGBUS handler.
pub use model::mapped as mapped_files;
pub use model::safetensors::{Header, Model, StDtype, TensorInfo, parse_header};
pub use pipeline::{Progress, ProgressEvent, Tuning, files_read, quantize_model, quantize_model_with};
pub use report::{
    FallbackStep, OutputInfo, QUANTIZE_SCHEMA_VERSION, QuantizeReport, QuantizeSummary, TensorReport,
};
pub use validate::{TensorValidation, ValidationReport, validate};

/// The mmap window reader, for `examples/kernel_throughput.rs`, which times the input
/// path on its own. Not part of the API: it may change with any release.
#[doc(hidden)]
pub use model::window;
