//! Reading ArrowQuant Parquet files back: the manifest, streaming dequantization and
//! export to safetensors.
//!
//! Rows are read a few at a time (batches of [`READ_BATCH_ROWS`] rows), so reading
//! never holds more than one row group's compressed column chunks plus a few decoded
//! rows. Every row is checked against the manifest (tensor order, chunk index,
//! element offsets, block counts and byte lengths) before it is decoded; a file that
//! fails a check gives [`AdapterError::BadQuantizedFile`] naming the tensor.
//!
//! Every accessor reads through one scan whose page decoding runs under
//! [`decode_guard`](crate::container::parquet::reader::decode_guard), so corrupt pages on which the parquet crate
//! panics are errors naming the file, whichever accessor reached them. Callers that
//! need the stored codes rather than values (the device format) use
//! [`QuantizedFile::for_each_encoded_tensor`] instead of a Parquet scan of their own.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{UInt8Type, UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrowquant_core::{BlockCodec, bf16, f16};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::container::atomic::AtomicFile;
use crate::container::parquet::reader::decode_guard::guarded;
use crate::container::parquet::schema::{self, StoredTensor, col};
use crate::encode::codec::CodecChoice;
use crate::error::{AdapterError, Result};
use crate::features::equalization::EqualizationTable;
use crate::features::mixed::MixedPrecision;
use crate::features::time_aware::{TimeGroup, TimeGroupTable};
use crate::model::safetensors::StDtype;

/// Rows decoded per record batch while reading.
pub const READ_BATCH_ROWS: usize = 4;

/// Element type of dequantized output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum OutDtype {
    /// IEEE binary32 (exactly what the decoder computes).
    #[default]
    F32,
    /// IEEE binary16, rounded to nearest.
    F16,
    /// bfloat16, rounded to nearest.
    Bf16,
}

impl OutDtype {
    /// Parses `f32`, `f16` or `bf16` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Some(OutDtype::F32),
            "f16" => Some(OutDtype::F16),
            "bf16" => Some(OutDtype::Bf16),
            _ => None,
        }
    }

    /// The safetensors spelling.
    pub fn name(self) -> &'static str {
        match self {
            OutDtype::F32 => "F32",
            OutDtype::F16 => "F16",
            OutDtype::Bf16 => "BF16",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            OutDtype::F32 => 4,
            OutDtype::F16 | OutDtype::Bf16 => 2,
        }
    }
}

/// One decoded chunk handed to a visitor.
#[derive(Clone, Copy, Debug)]
pub enum ChunkData<'a> {
    /// Dequantized values of a quantized tensor.
    F32(&'a [f32]),
    /// The original little-endian bytes of a tensor stored raw.
    Raw(&'a [u8]),
}

/// One quantized tensor's blocks exactly as stored (not dequantized), handed to the
/// visitor of [`QuantizedFile::for_each_encoded_tensor`]: the blocks of all its chunks,
/// in order, which concatenate because only the last chunk may be padded.
#[derive(Clone, Copy, Debug)]
pub struct EncodedTensor<'a> {
    /// The manifest entry.
    pub tensor: &'a StoredTensor,
    /// The codec every chunk was written with (rebuilt from the stored layout id, which
    /// each row repeats and which must equal the manifest's).
    pub codec: CodecChoice,
    /// Blocks over all chunks.
    pub blocks: u64,
    /// Codes of every block: `blocks * codec.codes_len()` bytes.
    pub codes: &'a [u8],
    /// Parameters of every block: `blocks * codec.params_len()` bytes.
    pub params: &'a [u8],
}

/// What [`QuantizedFile::export_safetensors`] wrote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportReport {
    /// The safetensors file.
    pub path: String,
    /// Tensors written.
    pub tensors: usize,
    /// File size in bytes.
    pub bytes: u64,
    /// dtype of dequantized tensors (raw tensors keep theirs).
    pub dtype: OutDtype,
}

/// An open ArrowQuant Parquet file.
#[derive(Debug, Clone)]
pub struct QuantizedFile {
    path: PathBuf,
    tensors: Vec<StoredTensor>,
    config_json: String,
    tool_version: String,
    source_metadata: BTreeMap<String, String>,
    file_size: u64,
    row_group_rows: Vec<u64>,
    time_groups: Option<TimeGroupTable>,
    mixed_precision: Option<MixedPrecision>,
    equalization: Option<EqualizationTable>,
}

/// One row, borrowed from a record batch.
struct RowView<'a> {
    tensor: &'a str,
    chunk: u32,
    element_offset: u64,
    element_count: u64,
    codec: &'a str,
    bits: u8,
    block_len: u32,
    blocks: u64,
    padding: u32,
    codes: &'a [u8],
    params: &'a [u8],
}

impl QuantizedFile {
    /// Opens a file and reads its manifest (the data is read later, in chunks).
    ///
    /// # Errors
    /// [`AdapterError::Io`], [`AdapterError::Parquet`] for a file that is not Parquet,
    /// [`AdapterError::BadQuantizedFile`] for a Parquet file without our metadata,
    /// columns or a supported format version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| AdapterError::io(path, e))?;
        let file_size = file.metadata().map_err(|e| AdapterError::io(path, e))?.len();
        let b = guarded(path, "reading the footer", || ParquetRecordBatchReaderBuilder::try_new(file))?
            .map_err(|e| AdapterError::parquet(path, e))?;
        let kv: BTreeMap<String, String> = b
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .map(|v| v.iter().filter_map(|k| Some((k.key.clone(), k.value.clone()?))).collect())
            .unwrap_or_default();
        let get = |k: &str| {
            kv.get(k)
                .cloned()
                .ok_or_else(|| AdapterError::bad_file(path, format!("missing key-value metadata `{k}`")))
        };
        let version = get(schema::KEY_FORMAT_VERSION)?;
        if version != schema::FORMAT_VERSION {
            return Err(AdapterError::bad_file(
                path,
                format!(
                    "format version {version} is not supported (this reader knows {})",
                    schema::FORMAT_VERSION
                ),
            ));
        }
        let tensors: Vec<StoredTensor> = serde_json::from_str(&get(schema::KEY_TENSORS)?)
            .map_err(|e| AdapterError::bad_file(path, format!("manifest is not valid: {e}")))?;
        let expected = schema::schema();
        for f in expected.fields() {
            match b.schema().field_with_name(f.name()) {
                Ok(g) if schema::same_column_type(g.data_type(), f.data_type()) => {}
                Ok(g) => {
                    return Err(AdapterError::bad_file(
                        path,
                        format!(
                            "column `{}` has type {} instead of {}",
                            f.name(),
                            g.data_type(),
                            f.data_type()
                        ),
                    ));
                }
                Err(_) => return Err(AdapterError::bad_file(path, format!("missing column `{}`", f.name()))),
            }
        }
        // Which codecs this build decompresses is fixed by the `parquet` crate's
        // features; say so up front instead of failing on the first page read with
        // "Disabled feature at compile time". pyarrow writes SNAPPY by default.
        for g in b.metadata().row_groups() {
            for c in g.columns() {
                // The parquet crate asserts (panics) on a negative page offset or size
                // when it reads the column (`ColumnChunkMetaData::byte_range`): check
                // them here, and that the chunk lies inside the file.
                let start = c.dictionary_page_offset().unwrap_or_else(|| c.data_page_offset());
                let end = u64::try_from(start).ok().zip(u64::try_from(c.compressed_size()).ok());
                if end.and_then(|(s, n)| s.checked_add(n)).is_none_or(|e| e > file_size) {
                    return Err(AdapterError::bad_file(
                        path,
                        format!(
                            "column `{}`: pages at offset {start}, {} bytes, lie outside the file ({file_size} bytes)",
                            c.column_path().string(),
                            c.compressed_size()
                        ),
                    ));
                }
                if !readable_compression(c.compression()) {
                    // `Display` adds the level (`GZIP(GzipLevel(6))`): the name is enough.
                    let codec = c.compression().to_string();
                    let codec = codec.split('(').next().unwrap_or_default();
                    return Err(AdapterError::bad_file(
                        path,
                        format!(
                            "column `{}` is compressed with {codec}, which this build cannot read \
                             (it reads ZSTD and uncompressed pages); rewrite the file with zstd",
                            c.column_path().string()
                        ),
                    ));
                }
            }
        }
        let row_group_rows: Vec<u64> =
            b.metadata().row_groups().iter().map(|g| g.num_rows().max(0) as u64).collect();
        let total_rows: u64 = b.metadata().file_metadata().num_rows().max(0) as u64;
        // The footer states the row count twice (per row group and for the file); both
        // come from the file, so they are summed with a check and must agree before
        // `dequantize_tensor` relies on the row-group counts to find a tensor's rows.
        let group_rows = row_group_rows.iter().try_fold(0u64, |sum, &n| sum.checked_add(n));
        if group_rows != Some(total_rows) {
            let groups = group_rows.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string());
            return Err(AdapterError::bad_file(
                path,
                format!("the row groups hold {groups} rows but the footer says {total_rows}"),
            ));
        }
        // Tensors own consecutive rows in manifest order; checked sums, since the
        // counts come from the file.
        let mut manifest_rows = 0u64;
        for t in &tensors {
            if t.first_row != manifest_rows {
                return Err(AdapterError::bad_file(
                    path,
                    format!(
                        "manifest: tensor `{}` starts at row {}, not {manifest_rows}",
                        t.name, t.first_row
                    ),
                ));
            }
            manifest_rows = manifest_rows.checked_add(t.rows).ok_or_else(|| {
                let why = format!("manifest: tensor `{}`: {} rows is too many", t.name, t.rows);
                AdapterError::bad_file(path, why)
            })?;
        }
        if manifest_rows != total_rows {
            return Err(AdapterError::bad_file(
                path,
                format!("manifest lists {manifest_rows} rows but the file has {total_rows}"),
            ));
        }
        let time_groups = match kv.get(schema::KEY_TIME_GROUPS) {
            None => None,
            Some(s) => {
                let t: TimeGroupTable = serde_json::from_str(s).map_err(|e| {
                    AdapterError::bad_file(path, format!("`{}` is not valid: {e}", schema::KEY_TIME_GROUPS))
                })?;
                t.check().map_err(|e| {
                    AdapterError::bad_file(path, format!("`{}`: {e}", schema::KEY_TIME_GROUPS))
                })?;
                Some(t)
            }
        };
        let mixed_precision = match kv.get(schema::KEY_MIXED_PRECISION) {
            None => None,
            Some(s) => Some(serde_json::from_str(s).map_err(|e| {
                AdapterError::bad_file(path, format!("`{}` is not valid: {e}", schema::KEY_MIXED_PRECISION))
            })?),
        };
        let equalization = match kv.get(schema::KEY_EQUALIZATION) {
            None => None,
            Some(s) => {
                let key = schema::KEY_EQUALIZATION;
                let t: EqualizationTable = serde_json::from_str(s)
                    .map_err(|e| AdapterError::bad_file(path, format!("`{key}` is not valid: {e}")))?;
                t.check().map_err(|e| AdapterError::bad_file(path, format!("`{key}`: {e}")))?;
                for (name, e) in &t.tensors {
                    let ok = tensors
                        .iter()
                        .find(|s| &s.name == name)
                        .is_some_and(|s| s.shape.len() == 2 && s.shape[1] == e.factors.len() as u64);
                    if !ok {
                        return Err(AdapterError::bad_file(
                            path,
                            format!(
                                "`{key}`: {} factors for tensor `{name}`, which is not a 2-D tensor with that many columns",
                                e.factors.len()
                            ),
                        ));
                    }
                }
                Some(t)
            }
        };
        let source_metadata = kv
            .get(schema::KEY_SOURCE_METADATA)
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        Ok(QuantizedFile {
            path: path.to_path_buf(),
            tensors,
            config_json: kv.get(schema::KEY_CONFIG).cloned().unwrap_or_default(),
            tool_version: kv.get(schema::KEY_TOOL_VERSION).cloned().unwrap_or_default(),
            source_metadata,
            file_size,
            row_group_rows,
            time_groups,
            mixed_precision,
            equalization,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tensors, in file order.
    pub fn tensors(&self) -> &[StoredTensor] {
        &self.tensors
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&StoredTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The time-aware activation parameters, if the file was written with a
    /// calibration file (checked on open: every layer's groups cover all timesteps).
    pub fn time_groups(&self) -> Option<&TimeGroupTable> {
        self.time_groups.as_ref()
    }

    /// The activation parameters a runtime uses for calibration layer `layer` at
    /// diffusion timestep `t` (binary search over the layer's groups); None if the file
    /// has no time-aware parameters, no such layer, or `t` is past the last timestep.
    pub fn time_group_params(&self, layer: &str, t: u32) -> Option<&TimeGroup> {
        self.time_groups.as_ref()?.params_for(layer, t)
    }

    /// The channel-equalization table, if equalization ran (it also lists the
    /// calibration layers that were skipped and why).
    pub fn equalization(&self) -> Option<&EqualizationTable> {
        self.equalization.as_ref()
    }

    /// The factors `s` of an equalized tensor (one per input column): its stored codes
    /// decode to `W[o, j] * s[j]`, and a runtime divides activation channel `j` by
    /// `s[j]`. None if the tensor was not equalized.
    pub fn equalization_factors(&self, tensor: &str) -> Option<&[f32]> {
        self.equalization.as_ref()?.factors(tensor)
    }

    /// The mixed-precision plan and what it achieved, if the file was written with
    /// `target_bpw`.
    pub fn mixed_precision(&self) -> Option<&MixedPrecision> {
        self.mixed_precision.as_ref()
    }

    /// The configuration the file was written with, as JSON.
    pub fn config_json(&self) -> &str {
        &self.config_json
    }

    /// The configuration the file was written with, if it parses.
    pub fn config(&self) -> Option<Config> {
        serde_json::from_str(&self.config_json).ok()
    }

    /// The writing tool and version.
    pub fn tool_version(&self) -> &str {
        &self.tool_version
    }

    /// The source model's safetensors `__metadata__`.
    pub fn source_metadata(&self) -> &BTreeMap<String, String> {
        &self.source_metadata
    }

    /// File size in bytes.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// Elements over all tensors.
    pub fn total_elements(&self) -> u64 {
        self.tensors.iter().map(|t| t.elements).sum()
    }

    /// Whole-file bits per weight: file bytes x 8 / elements.
    pub fn bits_per_weight(&self) -> f64 {
        let n = self.total_elements();
        if n == 0 { 0.0 } else { self.file_size as f64 * 8.0 / n as f64 }
    }

    /// Visits every chunk of every tensor in file order: quantized tensors as
    /// dequantized f32, raw tensors as their bytes. `f` gets the tensor, the chunk's
    /// first element and the data.
    ///
    /// # Errors
    /// Read errors, [`AdapterError::BadQuantizedFile`] for rows that contradict the
    /// manifest, or the callback's error.
    pub fn for_each_chunk(
        &self,
        mut f: impl FnMut(&StoredTensor, u64, ChunkData<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut order = Order::starting_at(0);
        let mut buf = Vec::new();
        self.scan(None, |row_index, row| {
            let ti = order.next(self, row_index, &row)?;
            let t = &self.tensors[ti];
            let data = self.decode_row(t, &row, &mut buf)?;
            f(t, row.element_offset, data)
        })?;
        order.finish(self)
    }

    /// Visits every quantized tensor with a quantized row, in file order, with its codes and
    /// parameters as stored (what the device format copies without re-quantizing).
    /// Tensors stored raw are checked like every other row but not visited, nor are
    /// tensors without rows (no elements).
    ///
    /// Every row is checked before its bytes are kept: tensor order, chunk numbers and
    /// element offsets against the manifest, the codec against the manifest's, block
    /// counts against byte lengths, and padding only in a tensor's last chunk (the
    /// chunks' blocks are concatenated). A tensor is visited only once its rows cover
    /// all its elements.
    ///
    /// Memory: one tensor's codes and parameters (the buffers are reused from tensor
    /// to tensor), plus what every scan holds (one row group's compressed column chunks
    /// and [`READ_BATCH_ROWS`] decoded rows).
    ///
    /// The callback's error type only needs to hold an [`AdapterError`], so callers can
    /// return their own errors (for example `anyhow::Error`) through it.
    ///
    /// # Errors
    /// Read errors, [`AdapterError::BadQuantizedFile`] naming the file (and the tensor
    /// where there is one) for corrupt pages and for rows that fail a check, or the
    /// callback's error. Tensors visited before the error stay visited.
    pub fn for_each_encoded_tensor<E: From<AdapterError>>(
        &self,
        mut f: impl FnMut(EncodedTensor<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut order = Order::starting_at(0);
        let mut pending = PendingBlocks::default();
        self.scan(None, |row_index, row| -> std::result::Result<(), E> {
            let ti = order.next(self, row_index, &row)?;
            if pending.tensor != Some(ti) {
                // `order.next` moved on only after checking that the previous
                // tensor's rows cover all its elements.
                pending.emit(self, &mut f)?;
                pending.tensor = Some(ti);
            }
            let t = &self.tensors[ti];
            let Some(codec) = self.check_row(t, &row)? else { return Ok(()) };
            if pending.padded {
                return Err(self.bad(&t.name, format!("chunk {} follows a padded chunk", row.chunk)).into());
            }
            pending.padded = row.padding > 0;
            pending.codec = Some(codec);
            // `check_row` tied `blocks` to the byte lengths, so the sum is bounded by
            // the bytes read; checked all the same, as the counts come from the file.
            pending.blocks = pending
                .blocks
                .checked_add(row.blocks)
                .ok_or_else(|| self.bad(&t.name, format!("chunk {}: block count overflows", row.chunk)))?;
            pending.codes.extend_from_slice(row.codes);
            pending.params.extend_from_slice(row.params);
            Ok(())
        })?;
        order.finish(self)?;
        pending.emit(self, &mut f)
    }

    /// Streams the dequantized values of one tensor, chunk by chunk: `f` gets the
    /// chunk's first element and its values. Tensors stored raw are converted to f32
    /// if they are F32/F16/BF16.
    ///
    /// # Errors
    /// [`AdapterError::NoSuchTensor`], an error for raw non-float tensors, read errors.
    pub fn dequantize_tensor(&self, name: &str, mut f: impl FnMut(u64, &[f32]) -> Result<()>) -> Result<()> {
        let ti = self.tensors.iter().position(|t| t.name == name).ok_or_else(|| {
            AdapterError::NoSuchTensor { path: self.path.clone(), tensor: name.to_string() }
        })?;
        let t = &self.tensors[ti];
        let (groups, group_start) = self.row_groups_of(t)?;
        let (first, last) = (t.first_row, t.first_row + t.rows);
        let mut order = Order::starting_at(ti);
        let mut buf = Vec::new();
        let mut conv = Vec::new();
        let mut seen = 0u64;
        self.scan(Some(groups), |row_index, row| {
            let abs =
                group_start.checked_add(row_index).ok_or_else(|| self.bad(&t.name, "row index overflows"))?;
            if abs < first || abs >= last {
                return Ok(());
            }
            order.next(self, abs, &row)?;
            seen += 1;
            match self.decode_row(t, &row, &mut buf)? {
                ChunkData::F32(v) => f(row.element_offset, v),
                ChunkData::Raw(bytes) => {
                    let dt = StDtype::parse(&t.dtype).and_then(StDtype::quantizable).ok_or_else(|| {
                        AdapterError::bad_file(
                            &self.path,
                            format!("tensor `{}` has dtype {}, not a float", t.name, t.dtype),
                        )
                    })?;
                    conv.clear();
                    conv.resize(bytes.len() / dt.size(), 0f32);
                    let mut s = crate::model::window::AlignedScratch::default();
                    crate::model::window::with_input(dt, bytes, &mut s, |i| i.to_f32(&mut conv));
                    f(row.element_offset, &conv)
                }
            }
        })?;
        if seen != t.rows {
            return Err(AdapterError::bad_file(
                &self.path,
                format!("tensor `{}`: found {seen} of {} rows", t.name, t.rows),
            ));
        }
        Ok(())
    }

    /// The whole dequantized tensor in memory (convenience for small tensors; use
    /// [`dequantize_tensor`](Self::dequantize_tensor) to stream).
    ///
    /// # Errors
    /// As [`dequantize_tensor`](Self::dequantize_tensor).
    pub fn read_tensor_f32(&self, name: &str) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.dequantize_tensor(name, |_, v| {
            out.extend_from_slice(v);
            Ok(())
        })?;
        Ok(out)
    }

    /// Writes a safetensors file with every tensor: quantized ones dequantized to
    /// `dtype`, raw ones byte for byte. Written atomically.
    ///
    /// # Errors
    /// Read or write errors; nothing is left under `out` on error.
    pub fn export_safetensors(&self, out: &Path, dtype: OutDtype) -> Result<ExportReport> {
        let mut header = serde_json::Map::new();
        if !self.source_metadata.is_empty() {
            header.insert(
                "__metadata__".into(),
                serde_json::to_value(&self.source_metadata).unwrap_or_default(),
            );
        }
        let mut offset = 0u64;
        let mut sizes = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let (name, size) = if t.is_quantized() {
                (dtype.name().to_string(), t.elements * dtype.size())
            } else {
                let d = StDtype::parse(&t.dtype).ok_or_else(|| {
                    AdapterError::bad_file(
                        &self.path,
                        format!("tensor `{}`: unknown dtype {}", t.name, t.dtype),
                    )
                })?;
                (t.dtype.clone(), t.elements * d.size())
            };
            header.insert(
                t.name.clone(),
                serde_json::json!({"dtype": name, "shape": t.shape, "data_offsets": [offset, offset + size]}),
            );
            sizes.push(size);
            offset += size;
        }
        let mut text =
            serde_json::to_string(&header).map_err(|e| AdapterError::io(out, std::io::Error::other(e)))?;
        // Pad the header so the data section starts 8-byte aligned, as the reference writer does.
        while (8 + text.len()) % 8 != 0 {
            text.push(' ');
        }
        let file = AtomicFile::create(out)?;
        let mut w = BufWriter::with_capacity(1 << 20, file.writer()?);
        let io = |e| AdapterError::io(out, e);
        w.write_all(&(text.len() as u64).to_le_bytes()).map_err(io)?;
        w.write_all(text.as_bytes()).map_err(io)?;
        let mut bytes = Vec::new();
        self.for_each_chunk(|_, _, data| {
            match data {
                ChunkData::Raw(b) => w.write_all(b).map_err(io)?,
                ChunkData::F32(v) => {
                    bytes.clear();
                    match dtype {
                        OutDtype::F32 => v.iter().for_each(|x| bytes.extend_from_slice(&x.to_le_bytes())),
                        OutDtype::F16 => {
                            v.iter().for_each(|x| bytes.extend_from_slice(&f16::from_f32(*x).to_le_bytes()))
                        }
                        OutDtype::Bf16 => {
                            v.iter().for_each(|x| bytes.extend_from_slice(&bf16::from_f32(*x).to_le_bytes()))
                        }
                    }
                    w.write_all(&bytes).map_err(io)?;
                }
            }
            Ok(())
        })?;
        w.flush().map_err(io)?;
        drop(w);
        file.commit()?;
        let size = std::fs::metadata(out).map_err(io)?.len();
        Ok(ExportReport { path: out.display().to_string(), tensors: self.tensors.len(), bytes: size, dtype })
    }

    /// The row groups holding tensor `t`'s rows and the index of the first of them
    /// in the file. The counts come from the file: sums are checked, and rows the row
    /// groups do not reach are an error naming the tensor (`open` checks both, this
    /// does not rely on it).
    fn row_groups_of(&self, t: &StoredTensor) -> Result<(Vec<usize>, u64)> {
        let overflow = || self.bad(&t.name, "row counts overflow");
        let (first, last) = (t.first_row, t.first_row.checked_add(t.rows).ok_or_else(overflow)?);
        let mut groups = Vec::new();
        let (mut start, mut group_start) = (0u64, 0u64);
        for (g, &n) in self.row_group_rows.iter().enumerate() {
            let end = start.checked_add(n).ok_or_else(overflow)?;
            if start < last && end > first {
                if groups.is_empty() {
                    group_start = start;
                }
                groups.push(g);
            }
            start = end;
        }
        if last > start {
            return Err(self.bad(&t.name, format!("rows {first}..{last} lie past the file's {start} rows")));
        }
        Ok((groups, group_start))
    }

    fn bad(&self, t: &str, msg: impl std::fmt::Display) -> AdapterError {
        AdapterError::bad_file(&self.path, format!("tensor `{t}`: {msg}"))
    }

    /// Checks one row of tensor `t` before its bytes are used: a raw row's byte length
    /// for its element count; a quantized row's codec (the manifest's, and consistent
    /// with the row's bits and block length), block count, byte lengths and padding.
    /// Returns the codec of a quantized row, None for a raw one.
    fn check_row(&self, t: &StoredTensor, row: &RowView<'_>) -> Result<Option<CodecChoice>> {
        if !t.is_quantized() {
            let size = StDtype::parse(&t.dtype).map_or(0, StDtype::size);
            if size == 0 || row.element_count.checked_mul(size) != Some(row.codes.len() as u64) {
                return Err(self.bad(
                    &t.name,
                    format!(
                        "raw chunk {} has {} bytes for {} elements",
                        row.chunk,
                        row.codes.len(),
                        row.element_count
                    ),
                ));
            }
            return Ok(None);
        }
        if row.codec != t.codec || u32::from(row.bits) != t.bits || row.block_len != t.block_len {
            return Err(self.bad(&t.name, format!("chunk {} codec differs from the manifest", row.chunk)));
        }
        let codec = CodecChoice::from_stored(row.codec).map_err(|e| self.bad(&t.name, e))?;
        if codec.bits() != u32::from(row.bits) || codec.block_len() != row.block_len as usize {
            return Err(self.bad(
                &t.name,
                format!("chunk {}: bits or block_len contradict codec `{}`", row.chunk, row.codec),
            ));
        }
        let bl = codec.block_len() as u64;
        let ok = row.blocks.checked_mul(codec.codes_len() as u64) == Some(row.codes.len() as u64)
            && row.blocks.checked_mul(codec.params_len() as u64) == Some(row.params.len() as u64)
            && u64::from(row.padding) < bl
            && row.blocks.checked_mul(bl).and_then(|n| n.checked_sub(u64::from(row.padding)))
                == Some(row.element_count);
        if !ok {
            return Err(self
                .bad(&t.name, format!("chunk {} has inconsistent block counts or byte lengths", row.chunk)));
        }
        Ok(Some(codec))
    }

    fn decode_row<'r>(
        &self,
        t: &StoredTensor,
        row: &RowView<'r>,
        buf: &'r mut Vec<f32>,
    ) -> Result<ChunkData<'r>> {
        let Some(codec) = self.check_row(t, row)? else { return Ok(ChunkData::Raw(row.codes)) };
        let bl = codec.block_len() as u64;
        buf.clear();
        buf.resize((row.blocks * bl) as usize, 0.0);
        codec
            .decode(row.codes, row.params, buf)
            .map_err(|e| self.bad(&t.name, format!("chunk {}: {e}", row.chunk)))?;
        Ok(ChunkData::F32(&buf[..row.element_count as usize]))
    }

    /// Reads rows (optionally only some row groups) and calls `f` with each row's
    /// index (counted from the first selected row group) and contents. Every accessor
    /// reads through here, so all of them decode pages under the guard.
    fn scan<E: From<AdapterError>>(
        &self,
        row_groups: Option<Vec<usize>>,
        mut f: impl FnMut(u64, RowView<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let file = File::open(&self.path).map_err(|e| AdapterError::io(&self.path, e))?;
        let mut b = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| AdapterError::parquet(&self.path, e))?
            .with_batch_size(READ_BATCH_ROWS);
        if let Some(g) = row_groups {
            b = b.with_row_groups(g);
        }
        let mut reader = b.build().map_err(|e| AdapterError::parquet(&self.path, e))?;
        let mut index = 0u64;
        // Page decoding can panic inside the parquet crate on corrupt data (see
        // `decode_guard`); each batch is read under the guard.
        while let Some(batch) = guarded(&self.path, "decoding pages", || reader.next())? {
            let batch = batch.map_err(|e| AdapterError::parquet(&self.path, e))?;
            let cols = Columns::of(&batch).map_err(|m| AdapterError::bad_file(&self.path, m))?;
            for r in 0..batch.num_rows() {
                let row = cols.row(r).map_err(|m| AdapterError::bad_file(&self.path, m))?;
                f(index, row)?;
                index += 1;
            }
        }
        Ok(())
    }
}

/// Whether this build decompresses Parquet pages compressed with `c`: the `parquet`
/// dependency is built with only its `zstd` codec (see std-adapter/Cargo.toml).
fn readable_compression(c: parquet::basic::Compression) -> bool {
    use parquet::basic::Compression;
    matches!(c, Compression::UNCOMPRESSED | Compression::ZSTD(_))
}

/// The blocks of the tensor [`QuantizedFile::for_each_encoded_tensor`] is collecting.
#[derive(Default)]
struct PendingBlocks {
    /// Index of the tensor whose rows are being read.
    tensor: Option<usize>,
    /// Its codec, once a quantized row was read (None for raw tensors).
    codec: Option<CodecChoice>,
    /// Whether its last chunk so far was padded (then no further chunk may follow).
    padded: bool,
    blocks: u64,
    codes: Vec<u8>,
    params: Vec<u8>,
}

impl PendingBlocks {
    /// Hands the collected tensor (if quantized) to `f` and empties the buffers,
    /// keeping their capacity for the next tensor.
    fn emit<E>(
        &mut self,
        file: &QuantizedFile,
        f: &mut impl FnMut(EncodedTensor<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let (tensor, codec) = (self.tensor.take(), self.codec.take());
        let r = match (tensor, codec) {
            (Some(ti), Some(codec)) => f(EncodedTensor {
                tensor: &file.tensors[ti],
                codec,
                blocks: self.blocks,
                codes: &self.codes,
                params: &self.params,
            }),
            _ => Ok(()),
        };
        (self.padded, self.blocks) = (false, 0);
        self.codes.clear();
        self.params.clear();
        r
    }
}

/// Checks that rows arrive in manifest order.
struct Order {
    ti: isize,
    rows_seen: u64,
    next_chunk: u32,
    next_offset: u64,
    started: bool,
}

impl Order {
    /// Expects rows from tensor `ti` on.
    fn starting_at(ti: usize) -> Self {
        Order { ti: ti as isize - 1, rows_seen: 0, next_chunk: 0, next_offset: 0, started: false }
    }

    fn next(&mut self, file: &QuantizedFile, row_index: u64, row: &RowView<'_>) -> Result<usize> {
        if !self.started {
            self.started = true;
            self.advance(file)?;
        } else if self.rows_seen == file.tensors[self.ti as usize].rows {
            self.check_complete(file)?;
            self.advance(file)?;
        }
        let t = &file.tensors[self.ti as usize];
        if row.tensor != t.name || row.chunk != self.next_chunk || row.element_offset != self.next_offset {
            return Err(file.bad(
                &t.name,
                format!(
                    "row {row_index} is `{}` chunk {} at element {}, expected chunk {} at element {}",
                    row.tensor, row.chunk, row.element_offset, self.next_chunk, self.next_offset
                ),
            ));
        }
        // Counts from the file: checked, so a huge `element_count` is an error, not a
        // wrap (or an overflow panic with debug assertions).
        self.next_offset = self.next_offset.checked_add(row.element_count).ok_or_else(|| {
            file.bad(&t.name, format!("row {row_index}: element count {} overflows", row.element_count))
        })?;
        self.next_chunk =
            self.next_chunk.checked_add(1).ok_or_else(|| file.bad(&t.name, "too many chunks"))?;
        self.rows_seen += 1;
        Ok(self.ti as usize)
    }

    fn advance(&mut self, file: &QuantizedFile) -> Result<()> {
        loop {
            self.ti += 1;
            let Some(t) = file.tensors.get(self.ti as usize) else {
                return Err(AdapterError::bad_file(&file.path, "more rows than the manifest lists"));
            };
            (self.rows_seen, self.next_chunk, self.next_offset) = (0, 0, 0);
            if t.rows > 0 {
                return Ok(());
            }
        }
    }

    fn check_complete(&self, file: &QuantizedFile) -> Result<()> {
        let t = &file.tensors[self.ti as usize];
        if self.next_offset != t.elements {
            return Err(
                file.bad(&t.name, format!("rows cover {} of {} elements", self.next_offset, t.elements))
            );
        }
        Ok(())
    }

    fn finish(&self, file: &QuantizedFile) -> Result<()> {
        if self.started {
            self.check_complete(file)?;
        }
        let last = if self.started { self.ti + 1 } else { 0 };
        if let Some(t) = file.tensors.iter().skip(last as usize).find(|t| t.rows > 0) {
            return Err(file.bad(&t.name, "has no rows in the file"));
        }
        Ok(())
    }
}

/// Typed views of the columns of one batch.
struct Columns<'a> {
    tensor: &'a arrow_array::StringArray,
    chunk: &'a arrow_array::UInt32Array,
    element_offset: &'a arrow_array::UInt64Array,
    element_count: &'a arrow_array::UInt64Array,
    codec: &'a arrow_array::StringArray,
    bits: &'a arrow_array::UInt8Array,
    block_len: &'a arrow_array::UInt32Array,
    blocks: &'a arrow_array::UInt64Array,
    padding: &'a arrow_array::UInt32Array,
    codes: &'a arrow_array::BinaryArray,
    params: &'a arrow_array::BinaryArray,
}

impl<'a> Columns<'a> {
    fn of(b: &'a RecordBatch) -> std::result::Result<Self, String> {
        let c = |name: &str| b.column_by_name(name).ok_or_else(|| format!("missing column `{name}`"));
        let wrong = |name: &str| format!("column `{name}` has the wrong type");
        Ok(Columns {
            tensor: c(col::TENSOR)?.as_string_opt::<i32>().ok_or_else(|| wrong(col::TENSOR))?,
            chunk: c(col::CHUNK)?.as_primitive_opt::<UInt32Type>().ok_or_else(|| wrong(col::CHUNK))?,
            element_offset: c(col::ELEMENT_OFFSET)?
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(|| wrong(col::ELEMENT_OFFSET))?,
            element_count: c(col::ELEMENT_COUNT)?
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(|| wrong(col::ELEMENT_COUNT))?,
            codec: c(col::CODEC)?.as_string_opt::<i32>().ok_or_else(|| wrong(col::CODEC))?,
            bits: c(col::BITS)?.as_primitive_opt::<UInt8Type>().ok_or_else(|| wrong(col::BITS))?,
            block_len: c(col::BLOCK_LEN)?
                .as_primitive_opt::<UInt32Type>()
                .ok_or_else(|| wrong(col::BLOCK_LEN))?,
            blocks: c(col::BLOCKS)?.as_primitive_opt::<UInt64Type>().ok_or_else(|| wrong(col::BLOCKS))?,
            padding: c(col::PADDING)?.as_primitive_opt::<UInt32Type>().ok_or_else(|| wrong(col::PADDING))?,
            codes: c(col::CODES)?.as_binary_opt::<i32>().ok_or_else(|| wrong(col::CODES))?,
            params: c(col::PARAMS)?.as_binary_opt::<i32>().ok_or_else(|| wrong(col::PARAMS))?,
        })
    }

    fn row(&self, r: usize) -> std::result::Result<RowView<'a>, String> {
        let null = |name: &str| format!("column `{name}` is null in row {r}");
        macro_rules! req {
            ($a:expr, $n:expr) => {{
                if $a.is_null(r) {
                    return Err(null($n));
                }
                $a.value(r)
            }};
        }
        Ok(RowView {
            tensor: req!(self.tensor, col::TENSOR),
            chunk: req!(self.chunk, col::CHUNK),
            element_offset: req!(self.element_offset, col::ELEMENT_OFFSET),
            element_count: req!(self.element_count, col::ELEMENT_COUNT),
            codec: req!(self.codec, col::CODEC),
            bits: req!(self.bits, col::BITS),
            block_len: req!(self.block_len, col::BLOCK_LEN),
            blocks: req!(self.blocks, col::BLOCKS),
            padding: req!(self.padding, col::PADDING),
            codes: req!(self.codes, col::CODES),
            params: req!(self.params, col::PARAMS),
        })
    }
}

pub mod decode_guard;

#[cfg(test)]
mod tests {
    use super::*;

    /// A real file (the corpus' base file) whose first tensor's rows and row-group
    /// counts are then replaced, as if `open` had not checked them, so that
    /// `dequantize_tensor`'s own checks are what stands between them and a panic.
    fn file_with(tensor_rows: (u64, u64), row_group_rows: Vec<u64>) -> QuantizedFile {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/malformed/pq_base.parquet");
        let mut f = QuantizedFile::open(path).unwrap();
        (f.tensors[0].first_row, f.tensors[0].rows) = tensor_rows;
        f.row_group_rows = row_group_rows;
        f
    }

    #[test]
    fn encoded_tensors_decode_to_the_dequantized_values_and_pass_the_callers_error() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/malformed/pq_base.parquet");
        let f = QuantizedFile::open(path).unwrap();
        let mut seen = Vec::new();
        f.for_each_encoded_tensor(|e| -> Result<()> {
            let t = e.tensor;
            assert_eq!(e.codes.len() as u64, e.blocks * e.codec.codes_len() as u64, "{}", t.name);
            assert_eq!(e.params.len() as u64, e.blocks * e.codec.params_len() as u64, "{}", t.name);
            let mut values = vec![0f32; e.blocks as usize * e.codec.block_len()];
            e.codec.decode(e.codes, e.params, &mut values).unwrap();
            values.truncate(t.elements as usize);
            let expected = f.read_tensor_f32(&t.name)?;
            assert!(values.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()), "{}", t.name);
            assert_eq!(values.len(), expected.len(), "{}", t.name);
            seen.push(t.name.clone());
            Ok(())
        })
        .unwrap();
        let quantized: Vec<String> =
            f.tensors().iter().filter(|t| t.is_quantized() && t.rows > 0).map(|t| t.name.clone()).collect();
        assert!(!quantized.is_empty());
        assert_eq!(seen, quantized);

        // A callback with its own error type: the first error ends the visit, unchanged.
        #[derive(Debug, PartialEq)]
        enum Mine {
            Stop(String),
            Adapter(String),
        }
        impl From<AdapterError> for Mine {
            fn from(e: AdapterError) -> Self {
                Mine::Adapter(e.to_string())
            }
        }
        let mut calls = 0;
        let r = f.for_each_encoded_tensor(|e| {
            calls += 1;
            Err(Mine::Stop(e.tensor.name.clone()))
        });
        assert_eq!((r, calls), (Err(Mine::Stop(quantized[0].clone())), 1));
    }

    #[test]
    fn out_of_range_rows_are_an_error_naming_the_tensor() {
        let cases = [
            ((0, 1), vec![u64::MAX, 1, 1], "row counts overflow"),
            ((u64::MAX, 2), vec![3], "row counts overflow"),
            ((2, 5), vec![3, 1], "rows 2..7 lie past the file's 4 rows"),
        ];
        for (rows, groups, expect) in cases {
            let f = file_with(rows, groups.clone());
            let name = f.tensors[0].name.clone();
            let e = f.dequantize_tensor(&name, |_, _| Ok(())).unwrap_err().to_string();
            let named = e.contains("pq_base.parquet") && e.contains(&format!("tensor `{name}`"));
            assert!(named && e.contains(expect), "{groups:?}: {e}");
        }
    }
}
