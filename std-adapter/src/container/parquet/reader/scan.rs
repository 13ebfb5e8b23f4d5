//! Reading rows back: the row scan over record batches in file order, each row checked
//! against the manifest (`Order`) and decoded under the panic guard, the columns of a
//! batch (`Columns`), and the encoded blocks of whole tensors.

use std::fs::File;

use arrow_array::cast::AsArray;
use arrow_array::types::{UInt8Type, UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrowquant_core::BlockCodec;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::decode_guard::guarded;
use super::{ChunkData, EncodedTensor, QuantizedFile, READ_BATCH_ROWS};
use crate::container::parquet::schema::{RowFields, StoredTensor, col, row_checksum};
use crate::encode::codec::CodecChoice;
use crate::error::{AdapterError, Result};
use crate::model::safetensors::StDtype;

/// One row, borrowed from a record batch.
pub(super) struct RowView<'a> {
    pub(super) tensor: &'a str,
    pub(super) chunk: u32,
    pub(super) element_offset: u64,
    pub(super) element_count: u64,
    pub(super) codec: &'a str,
    pub(super) bits: u8,
    pub(super) block_len: u32,
    pub(super) blocks: u64,
    pub(super) padding: u32,
    pub(super) codes: &'a [u8],
    pub(super) params: &'a [u8],
}

impl QuantizedFile {
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

    /// The row groups holding tensor `t`'s rows and the index of the first of them
    /// in the file. The counts come from the file: sums are checked, and rows the row
    /// groups do not reach are an error naming the tensor (`open` checks both, this
    /// does not rely on it).
    pub(super) fn row_groups_of(&self, t: &StoredTensor) -> Result<(Vec<usize>, u64)> {
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

    pub(super) fn bad(&self, t: &str, msg: impl std::fmt::Display) -> AdapterError {
        AdapterError::bad_file(&self.path, format!("tensor `{t}`: {msg}"))
    }

    /// Checks one row of tensor `t` before its bytes are used: a raw row's byte length
    /// for its element count; a quantized row's codec (the manifest's, and consistent
    /// with the row's bits and block length), block count, byte lengths and padding.
    /// Returns the codec of a quantized row, None for a raw one.
    pub(super) fn check_row(&self, t: &StoredTensor, row: &RowView<'_>) -> Result<Option<CodecChoice>> {
        self.verify_checksum(t, row)?;
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

    /// `e` (a page that failed to decode while reading from row `row` on) with the
    /// tensor that row belongs to named in it.
    fn naming_tensor_at(&self, row: u64, e: AdapterError) -> AdapterError {
        let Some(t) = self.tensors.iter().find(|t| row >= t.first_row && row - t.first_row < t.rows) else {
            return e;
        };
        let name = |m: String| format!("tensor `{}` (reading from row {row}): {m}", t.name);
        match e {
            AdapterError::Parquet { path, message } => AdapterError::Parquet { path, message: name(message) },
            AdapterError::BadQuantizedFile { path, reason } => {
                AdapterError::BadQuantizedFile { path, reason: name(reason) }
            }
            other => other,
        }
    }

    /// The row's bytes are the ones written: its [`row_checksum`] is the manifest's.
    fn verify_checksum(&self, t: &StoredTensor, row: &RowView<'_>) -> Result<()> {
        let sum = row_checksum(&RowFields {
            chunk: row.chunk,
            element_offset: row.element_offset,
            element_count: row.element_count,
            blocks: row.blocks,
            padding: row.padding,
            codes: row.codes,
            params: row.params,
        });
        match t.checksums.get(row.chunk as usize) {
            Some(&expected) if expected == sum => Ok(()),
            Some(_) => Err(self.bad(
                &t.name,
                format!(
                    "chunk {}: checksum mismatch, the file is corrupt (its data changed after writing)",
                    row.chunk
                ),
            )),
            // Checked here rather than at open, so `inspect` still lists such a file;
            // its data is never decoded.
            None => Err(self.bad(
                &t.name,
                format!(
                    "chunk {} has no checksum (the manifest lists {} for {} rows), so its data cannot be trusted",
                    row.chunk,
                    t.checksums.len(),
                    t.rows
                ),
            )),
        }
    }

    pub(super) fn decode_row<'r>(
        &self,
        t: &StoredTensor,
        row: &RowView<'r>,
        buf: &'r mut Vec<f32>,
    ) -> Result<ChunkData<'r>> {
        let Some(codec) = self.check_row(t, row)? else { return Ok(ChunkData::Raw(row.codes)) };
        let bl = codec.block_len() as u64;
        buf.clear();
        let what = || format!("tensor `{}` chunk {}", t.name, row.chunk);
        let len = usize::try_from(row.blocks.saturating_mul(bl)).unwrap_or(usize::MAX);
        crate::alloc::resize(buf, len, 0.0, &self.path, what)?;
        codec
            .decode(row.codes, row.params, buf)
            .map_err(|e| self.bad(&t.name, format!("chunk {}: {e}", row.chunk)))?;
        Ok(ChunkData::F32(&buf[..row.element_count as usize]))
    }

    /// Reads rows (optionally only some row groups) and calls `f` with each row's
    /// index (counted from the first selected row group) and contents. Every accessor
    /// reads through here, so all of them decode pages under the guard.
    pub(super) fn scan<E: From<AdapterError>>(
        &self,
        row_groups: Option<Vec<usize>>,
        mut f: impl FnMut(u64, RowView<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let file = File::open(&self.path).map_err(|e| AdapterError::io(&self.path, e))?;
        let mut b = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| AdapterError::parquet(&self.path, e))?
            .with_batch_size(READ_BATCH_ROWS);
        // The file's row number of the first row read, to name the tensor a bad page holds.
        let mut base = 0u64;
        if let Some(g) = row_groups {
            let before = g.first().and_then(|&f| self.row_group_rows.get(..f)).unwrap_or_default();
            base = before.iter().sum();
            b = b.with_row_groups(g);
        }
        let mut reader = b.build().map_err(|e| AdapterError::parquet(&self.path, e))?;
        let mut index = 0u64;
        // Page decoding can panic inside the parquet crate on corrupt data (see
        // `decode_guard`); each batch is read under the guard.
        let at = |index: u64, e: AdapterError| self.naming_tensor_at(base.saturating_add(index), e);
        while let Some(batch) =
            guarded(&self.path, "decoding pages", || reader.next()).map_err(|e| at(index, e))?
        {
            let batch = batch.map_err(|e| at(index, AdapterError::parquet(&self.path, e)))?;
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
pub(super) struct Order {
    ti: isize,
    rows_seen: u64,
    next_chunk: u32,
    next_offset: u64,
    started: bool,
}

impl Order {
    /// Expects rows from tensor `ti` on.
    pub(super) fn starting_at(ti: usize) -> Self {
        Order { ti: ti as isize - 1, rows_seen: 0, next_chunk: 0, next_offset: 0, started: false }
    }

    pub(super) fn next(&mut self, file: &QuantizedFile, row_index: u64, row: &RowView<'_>) -> Result<usize> {
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

    pub(super) fn advance(&mut self, file: &QuantizedFile) -> Result<()> {
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

    pub(super) fn check_complete(&self, file: &QuantizedFile) -> Result<()> {
        let t = &file.tensors[self.ti as usize];
        if self.next_offset != t.elements {
            return Err(
                file.bad(&t.name, format!("rows cover {} of {} elements", self.next_offset, t.elements))
            );
        }
        Ok(())
    }

    pub(super) fn finish(&self, file: &QuantizedFile) -> Result<()> {
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
