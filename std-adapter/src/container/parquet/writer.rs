//! The Parquet sink: rows of tensor chunks in, a crash-safe ArrowQuant file out.
//!
//! # Memory
//!
//! Rows are gathered into a record batch of at most `batch_bytes` of payload, handed
//! to the Arrow writer, and the writer's in-progress row group is flushed to disk once
//! it holds `row_group_bytes`. Peak memory is therefore about
//! `batch_bytes + 2 * row_group_bytes` (the encoded row group plus the compressor's
//! output), independent of the model size. With a writer thread (runs with two or more
//! threads, `batch_writer`) one more batch can wait for it: `2 * batch_bytes + 2 *
//! row_group_bytes`.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder, UInt8Builder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::container::atomic::AtomicFile;
use crate::container::parquet::batch_writer::BatchWriter;
use crate::container::parquet::schema::{self, StoredTensor, col};
use crate::error::{AdapterError, Result};

/// Per-tensor quality figures carried on every row of the tensor.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RowMetrics {
    /// Cosine similarity.
    pub cosine: f64,
    /// Relative RMSE.
    pub rel_rmse: f64,
    /// SQNR in dB.
    pub sqnr_db: f64,
    /// Largest absolute error.
    pub max_abs_err: f64,
}

/// What every row of one tensor shares.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRowInfo {
    /// Tensor name.
    pub name: String,
    /// Shape.
    pub shape: Vec<u64>,
    /// Original dtype name.
    pub dtype: String,
    /// Codec layout id or `raw`.
    pub codec: String,
    /// Preset name.
    pub preset: Option<String>,
    /// Width used (0 for raw).
    pub bits: u32,
    /// Width requested (0 for raw).
    pub bits_requested: u32,
    /// Block length (0 for raw).
    pub block_len: u32,
    /// Scheme (None for raw).
    pub scheme: Option<String>,
    /// Code bytes per block (0 for raw).
    pub block_codes_len: u32,
    /// Parameter bytes per block (0 for raw).
    pub block_params_len: u32,
    /// Why the width differs from the request.
    pub fallback_reason: Option<String>,
    /// Why the tensor is stored raw.
    pub raw_reason: Option<String>,
    /// Quality (None for raw).
    pub metrics: Option<RowMetrics>,
}

/// One chunk row.
#[derive(Clone, Copy, Debug)]
pub struct ChunkRow<'a> {
    /// First element of the chunk.
    pub element_offset: u64,
    /// Real elements in the chunk.
    pub element_count: u64,
    /// Blocks in the chunk.
    pub blocks: u64,
    /// Padding elements in the last block.
    pub padding: u32,
    /// Codes or raw bytes.
    pub codes: &'a [u8],
    /// Parameters.
    pub params: &'a [u8],
}

struct Builders {
    tensor: StringBuilder,
    chunk: UInt32Builder,
    element_offset: UInt64Builder,
    element_count: UInt64Builder,
    shape: ListBuilder<Int64Builder>,
    dtype: StringBuilder,
    codec: StringBuilder,
    preset: StringBuilder,
    bits: UInt8Builder,
    bits_requested: UInt8Builder,
    block_len: UInt32Builder,
    scheme: StringBuilder,
    block_codes_len: UInt32Builder,
    block_params_len: UInt32Builder,
    blocks: UInt64Builder,
    padding: UInt32Builder,
    codes: BinaryBuilder,
    params: BinaryBuilder,
    outliers: BinaryBuilder,
    fallback_reason: StringBuilder,
    cosine: Float64Builder,
    rel_rmse: Float64Builder,
    sqnr_db: Float64Builder,
    max_abs_err: Float64Builder,
}

impl Builders {
    fn new() -> Self {
        Builders {
            tensor: StringBuilder::new(),
            chunk: UInt32Builder::new(),
            element_offset: UInt64Builder::new(),
            element_count: UInt64Builder::new(),
            shape: ListBuilder::new(Int64Builder::new()).with_field(Arc::new(Field::new(
                "item",
                DataType::Int64,
                false,
            ))),
            dtype: StringBuilder::new(),
            codec: StringBuilder::new(),
            preset: StringBuilder::new(),
            bits: UInt8Builder::new(),
            bits_requested: UInt8Builder::new(),
            block_len: UInt32Builder::new(),
            scheme: StringBuilder::new(),
            block_codes_len: UInt32Builder::new(),
            block_params_len: UInt32Builder::new(),
            blocks: UInt64Builder::new(),
            padding: UInt32Builder::new(),
            codes: BinaryBuilder::new(),
            params: BinaryBuilder::new(),
            outliers: BinaryBuilder::new(),
            fallback_reason: StringBuilder::new(),
            cosine: Float64Builder::new(),
            rel_rmse: Float64Builder::new(),
            sqnr_db: Float64Builder::new(),
            max_abs_err: Float64Builder::new(),
        }
    }

    fn push(&mut self, t: &TensorRowInfo, chunk: u32, r: &ChunkRow<'_>) {
        self.tensor.append_value(&t.name);
        self.chunk.append_value(chunk);
        self.element_offset.append_value(r.element_offset);
        self.element_count.append_value(r.element_count);
        for &d in &t.shape {
            self.shape.values().append_value(d as i64);
        }
        self.shape.append(true);
        self.dtype.append_value(&t.dtype);
        self.codec.append_value(&t.codec);
        self.preset.append_option(t.preset.as_deref());
        self.bits.append_value(t.bits as u8);
        self.bits_requested.append_value(t.bits_requested as u8);
        self.block_len.append_value(t.block_len);
        self.scheme.append_option(t.scheme.as_deref());
        self.block_codes_len.append_value(t.block_codes_len);
        self.block_params_len.append_value(t.block_params_len);
        self.blocks.append_value(r.blocks);
        self.padding.append_value(r.padding);
        self.codes.append_value(r.codes);
        self.params.append_value(r.params);
        self.outliers.append_null();
        self.fallback_reason.append_option(t.fallback_reason.as_deref());
        let m = t.metrics;
        self.cosine.append_option(m.map(|m| m.cosine));
        self.rel_rmse.append_option(m.map(|m| m.rel_rmse));
        self.sqnr_db.append_option(m.map(|m| m.sqnr_db));
        self.max_abs_err.append_option(m.map(|m| m.max_abs_err));
    }

    fn finish(&mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.tensor.finish()),
            Arc::new(self.chunk.finish()),
            Arc::new(self.element_offset.finish()),
            Arc::new(self.element_count.finish()),
            Arc::new(self.shape.finish()),
            Arc::new(self.dtype.finish()),
            Arc::new(self.codec.finish()),
            Arc::new(self.preset.finish()),
            Arc::new(self.bits.finish()),
            Arc::new(self.bits_requested.finish()),
            Arc::new(self.block_len.finish()),
            Arc::new(self.scheme.finish()),
            Arc::new(self.block_codes_len.finish()),
            Arc::new(self.block_params_len.finish()),
            Arc::new(self.blocks.finish()),
            Arc::new(self.padding.finish()),
            Arc::new(self.codes.finish()),
            Arc::new(self.params.finish()),
            Arc::new(self.outliers.finish()),
            Arc::new(self.fallback_reason.finish()),
            Arc::new(self.cosine.finish()),
            Arc::new(self.rel_rmse.finish()),
            Arc::new(self.sqnr_db.finish()),
            Arc::new(self.max_abs_err.finish()),
        ]
    }
}

/// Gathers rows into record batches (shared by the file sink and the batch API).
pub(crate) struct BatchBuilder {
    b: Builders,
    pub(crate) rows: usize,
    pub(crate) bytes: usize,
}

impl BatchBuilder {
    pub(crate) fn new() -> Self {
        BatchBuilder { b: Builders::new(), rows: 0, bytes: 0 }
    }

    pub(crate) fn push(&mut self, t: &TensorRowInfo, chunk: u32, r: &ChunkRow<'_>) {
        self.b.push(t, chunk, r);
        self.rows += 1;
        self.bytes += r.codes.len() + r.params.len() + t.name.len() + 64;
    }

    pub(crate) fn finish(&mut self) -> std::result::Result<RecordBatch, arrow_schema::ArrowError> {
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(schema::schema(), self.b.finish())
    }
}

/// Sizes that bound the writer's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterLimits {
    /// Payload bytes gathered before a record batch is handed to the writer.
    pub batch_bytes: usize,
    /// Encoded bytes after which a row group is flushed to disk.
    pub row_group_bytes: usize,
}

impl WriterLimits {
    /// Limits for a memory budget: batches of budget/32, row groups of budget/16.
    pub fn for_budget(max_memory: u64) -> Self {
        let m = usize::try_from(max_memory).unwrap_or(usize::MAX);
        WriterLimits {
            batch_bytes: (m / 32).clamp(1 << 20, 16 << 20),
            row_group_bytes: (m / 16).clamp(2 << 20, 64 << 20),
        }
    }
}

/// Writes an ArrowQuant Parquet file row by row.
pub struct ParquetSink {
    out: Option<AtomicFile>,
    writer: Option<BatchWriter>,
    batch: BatchBuilder,
    limits: WriterLimits,
    path: PathBuf,
    rows: u64,
    manifest: Vec<StoredTensor>,
    current: Option<(TensorRowInfo, u32)>,
    extra: Vec<KeyValue>,
}

impl std::fmt::Debug for ParquetSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSink").field("path", &self.path).field("rows", &self.rows).finish()
    }
}

/// Writer properties of ArrowQuant files: zstd (or no compression), no dictionary or
/// statistics on the large binary columns (they would copy megabytes into page headers).
pub fn writer_properties(kv: Vec<KeyValue>, compression: crate::config::Compression) -> WriterProperties {
    let compression = match compression {
        // Level 1: packed codes are nearly incompressible, so higher levels cost time
        // for almost nothing; the scale/offset and string columns still shrink well.
        crate::config::Compression::Zstd => Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()),
        crate::config::Compression::None => Compression::UNCOMPRESSED,
    };
    let mut b = WriterProperties::builder()
        .set_compression(compression)
        .set_dictionary_enabled(false)
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(None)
        .set_key_value_metadata(Some(kv))
        .set_created_by(format!("arrowquant-std {}", env!("CARGO_PKG_VERSION")));
    for c in [col::CODES, col::PARAMS, col::OUTLIERS] {
        b = b.set_column_statistics_enabled(ColumnPath::from(c), EnabledStatistics::None);
    }
    for c in [col::TENSOR, col::DTYPE, col::CODEC, col::PRESET, col::SCHEME, col::FALLBACK_REASON] {
        b = b.set_column_dictionary_enabled(ColumnPath::from(c), true);
    }
    b.build()
}

impl ParquetSink {
    /// Starts a file at `path` (written under a temporary name until [`finish`](Self::finish)).
    /// With `threaded`, Parquet encoding and compression run on a writer thread of
    /// their own, overlapping with the caller's work (see `batch_writer`).
    ///
    /// # Errors
    /// [`AdapterError::Io`] or [`AdapterError::Parquet`].
    pub fn create(
        path: &Path,
        config_json: &str,
        source_metadata_json: &str,
        limits: WriterLimits,
        threaded: bool,
        compression: crate::config::Compression,
    ) -> Result<Self> {
        let out = AtomicFile::create(path)?;
        let file = out.writer()?;
        let kv = vec![
            KeyValue::new(schema::KEY_FORMAT_VERSION.to_string(), schema::FORMAT_VERSION.to_string()),
            KeyValue::new(
                schema::KEY_TOOL_VERSION.to_string(),
                format!("arrowquant-std {}", env!("CARGO_PKG_VERSION")),
            ),
            KeyValue::new(schema::KEY_CONFIG.to_string(), config_json.to_string()),
            KeyValue::new(schema::KEY_SOURCE_METADATA.to_string(), source_metadata_json.to_string()),
        ];
        let writer = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            schema::schema(),
            Some(writer_properties(kv, compression)),
        )
        .map_err(|e| AdapterError::parquet(path, e))?;
        let writer = BatchWriter::new(writer, limits.row_group_bytes, path, threaded)?;
        Ok(ParquetSink {
            out: Some(out),
            writer: Some(writer),
            batch: BatchBuilder::new(),
            limits,
            path: path.to_path_buf(),
            rows: 0,
            manifest: Vec::new(),
            current: None,
            extra: Vec::new(),
        })
    }

    /// Starts a tensor; its rows follow with [`push_chunk`](Self::push_chunk).
    pub fn begin_tensor(&mut self, info: TensorRowInfo, elements: u64) {
        self.manifest.push(StoredTensor {
            name: info.name.clone(),
            dtype: info.dtype.clone(),
            shape: info.shape.clone(),
            elements,
            codec: info.codec.clone(),
            preset: info.preset.clone(),
            bits: info.bits,
            bits_requested: info.bits_requested,
            block_len: info.block_len,
            scheme: info.scheme.clone(),
            first_row: self.rows,
            rows: 0,
            stored_bytes: 0,
            raw_reason: info.raw_reason.clone(),
            fallback_reason: info.fallback_reason.clone(),
            cosine: info.metrics.and_then(|m| schema::finite(m.cosine)),
            rel_rmse: info.metrics.and_then(|m| schema::finite(m.rel_rmse)),
            sqnr_db: info.metrics.and_then(|m| schema::finite(m.sqnr_db)),
            max_abs_err: info.metrics.and_then(|m| schema::finite(m.max_abs_err)),
            checksums: Vec::new(),
        });
        self.current = Some((info, 0));
    }

    /// Appends the next chunk of the current tensor.
    ///
    /// # Errors
    /// [`AdapterError::Parquet`] if a batch cannot be written.
    pub fn push_chunk(&mut self, row: &ChunkRow<'_>) -> Result<()> {
        let Some((info, chunk)) = self.current.as_mut() else {
            return Err(AdapterError::bad_file(&self.path, "chunk written before begin_tensor"));
        };
        self.batch.push(info, *chunk, row);
        let sum = schema::row_checksum(&schema::RowFields {
            chunk: *chunk,
            element_offset: row.element_offset,
            element_count: row.element_count,
            blocks: row.blocks,
            padding: row.padding,
            codes: row.codes,
            params: row.params,
        });
        *chunk += 1;
        if let Some(m) = self.manifest.last_mut() {
            m.rows += 1;
            m.stored_bytes += (row.codes.len() + row.params.len()) as u64;
            m.checksums.push(sum);
        }
        self.rows += 1;
        if self.batch.bytes >= self.limits.batch_bytes {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<()> {
        if self.batch.rows == 0 {
            return Ok(());
        }
        let batch = self.batch.finish().map_err(|e| AdapterError::parquet(&self.path, e))?;
        let w = self.writer.as_mut().ok_or_else(|| AdapterError::parquet(&self.path, "writer closed"))?;
        w.write(batch)
    }

    /// The manifest so far.
    pub fn manifest(&self) -> &[StoredTensor] {
        &self.manifest
    }

    /// Adds a key-value metadata entry, written with the footer by [`finish`](Self::finish).
    pub fn add_key_value(&mut self, key: &str, value: String) {
        self.extra.push(KeyValue::new(key.to_string(), value));
    }

    /// Writes the manifest and footer, syncs, and renames the file into place.
    /// Returns the file size.
    ///
    /// # Errors
    /// [`AdapterError::Parquet`] or [`AdapterError::Io`]; nothing is left under the
    /// final name.
    pub fn finish(mut self) -> Result<u64> {
        self.flush_batch()?;
        let w = self.writer.take().ok_or_else(|| AdapterError::parquet(&self.path, "writer closed"))?;
        let mut w = w.finish()?;
        let manifest =
            serde_json::to_string(&self.manifest).map_err(|e| AdapterError::parquet(&self.path, e))?;
        w.append_key_value_metadata(KeyValue::new(schema::KEY_TENSORS.to_string(), manifest));
        for kv in self.extra.drain(..) {
            w.append_key_value_metadata(kv);
        }
        let buf = w.into_inner().map_err(|e| AdapterError::parquet(&self.path, e))?;
        let file = buf.into_inner().map_err(|e| AdapterError::io(&self.path, e.into_error()))?;
        let size = file.written();
        drop(file);
        let out = self.out.take().ok_or_else(|| AdapterError::parquet(&self.path, "file closed"))?;
        out.commit()?;
        Ok(size)
    }
}
