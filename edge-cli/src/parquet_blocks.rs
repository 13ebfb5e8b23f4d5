//! The packed blocks of each tensor of an ArrowQuant Parquet file, as stored (not
//! dequantized): what the device format needs.
//!
//! `arrowquant-std` reads rows back as dequantized values; the device format needs
//! the codes and parameters themselves. Rows are read a few at a time and checked
//! against the manifest of [`QuantizedFile`] (tensor order, chunk numbers, element
//! offsets, codec, block counts and byte lengths, padding only in a tensor's last
//! chunk) before their bytes are used. One tensor's codes and parameters are held
//! in memory at a time.

use std::fs::File;

use anyhow::{Context, anyhow, bail, ensure};
use arrow_array::cast::AsArray;
use arrow_array::types::{UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrowquant_core::GroupFormat;
use arrowquant_core::preset::LayoutKind;
use arrowquant_std::codec::CodecChoice;
use arrowquant_std::schema::col;
use arrowquant_std::{QuantizedFile, StoredTensor};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// One quantized tensor's packed blocks.
#[derive(Debug)]
pub struct EncodedTensor<'a> {
    /// The manifest entry.
    pub tensor: &'a StoredTensor,
    /// The group format its blocks use.
    pub format: GroupFormat,
    /// Codes of every block.
    pub codes: Vec<u8>,
    /// Parameters of every block.
    pub params: Vec<u8>,
}

/// A tensor being collected.
struct Current<'a> {
    tensor: &'a StoredTensor,
    format: Option<GroupFormat>,
    next_chunk: u32,
    next_offset: u64,
    padded: bool,
    codes: Vec<u8>,
    params: Vec<u8>,
}

/// Calls `f` with every quantized tensor's blocks, in file order, and returns the
/// names of tensors stored unquantized (skipped).
///
/// # Errors
/// Read errors, rows that contradict the manifest, codecs other than min-max groups,
/// and `f`'s errors.
pub fn for_each_encoded<'a>(
    q: &'a QuantizedFile,
    mut f: impl FnMut(EncodedTensor<'a>) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<String>> {
    let path = q.path();
    let bad = |t: &str, msg: String| anyhow!("{}: tensor `{t}`: {msg}", path.display());
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(arrowquant_std::reader::READ_BATCH_ROWS).build())
        .with_context(|| format!("{}: reading parquet", path.display()))?;
    let tensors = q.tensors();
    let skipped: Vec<String> = tensors.iter().filter(|t| !t.is_quantized()).map(|t| t.name.clone()).collect();
    let mut cur: Option<Current<'a>> = None;
    let mut next_index = 0usize;
    let finish = |c: Current<'a>, f: &mut dyn FnMut(EncodedTensor<'a>) -> anyhow::Result<()>| {
        if c.next_offset != c.tensor.elements {
            return Err(bad(
                &c.tensor.name,
                format!("rows cover {} of {} elements", c.next_offset, c.tensor.elements),
            ));
        }
        match c.format {
            Some(format) => f(EncodedTensor { tensor: c.tensor, format, codes: c.codes, params: c.params }),
            None => Ok(()),
        }
    };
    for batch in reader {
        let batch = batch.with_context(|| format!("{}: reading parquet", path.display()))?;
        let cols = Columns::of(&batch).map_err(|m| anyhow!("{}: {m}", path.display()))?;
        for r in 0..batch.num_rows() {
            let name = cols.str(cols.tensor, r)?;
            if cur.as_ref().is_none_or(|c| c.tensor.name != name) {
                if let Some(c) = cur.take() {
                    finish(c, &mut f)?;
                }
                // Tensors with no rows (empty tensors) sit between the others.
                while tensors.get(next_index).is_some_and(|t| t.rows == 0 && t.name != name) {
                    next_index += 1;
                }
                let Some(t) = tensors.get(next_index).filter(|t| t.name == name) else {
                    bail!(
                        "{}: row {r} of a batch is tensor `{name}`, which is not next in the manifest",
                        path.display()
                    );
                };
                cur = Some(Current {
                    tensor: t,
                    format: None,
                    next_chunk: 0,
                    next_offset: 0,
                    padded: false,
                    codes: Vec::new(),
                    params: Vec::new(),
                });
                next_index += 1;
            }
            let Some(c) = cur.as_mut() else { continue };
            let t = c.tensor;
            let (chunk, offset, count) = (
                cols.u32(cols.chunk, r)?,
                cols.u64(cols.element_offset, r)?,
                cols.u64(cols.element_count, r)?,
            );
            if chunk != c.next_chunk || offset != c.next_offset {
                return Err(bad(
                    &t.name,
                    format!(
                        "chunk {chunk} at element {offset}, expected chunk {} at {}",
                        c.next_chunk, c.next_offset
                    ),
                ));
            }
            c.next_chunk += 1;
            c.next_offset += count;
            if !t.is_quantized() {
                continue;
            }
            let codec = CodecChoice::from_stored(cols.str(cols.codec, r)?).map_err(|e| bad(&t.name, e))?;
            let layout = codec.codec().layout();
            // Searched group codecs store the same layout as plain ones; two-level
            // layouts have no device encoding yet.
            let LayoutKind::Group(format) = layout.kind else {
                bail!(
                    "{}: tensor `{}`: codec `{}` cannot be written to the device format",
                    path.display(),
                    t.name,
                    t.codec
                );
            };
            ensure!(
                c.format.is_none_or(|f| f == format),
                bad(&t.name, format!("chunk {chunk} uses a different codec than the chunks before it"))
            );
            c.format = Some(format);
            let (blocks, padding) = (cols.u64(cols.blocks, r)?, u64::from(cols.u32(cols.padding, r)?));
            let (codes, params) = (cols.bin(cols.codes, r)?, cols.bin(cols.params, r)?);
            let bl = layout.block_len as u64;
            let consistent = blocks.checked_mul(layout.codes_len as u64) == Some(codes.len() as u64)
                && blocks.checked_mul(layout.params_len as u64) == Some(params.len() as u64)
                && padding < bl
                && blocks.checked_mul(bl).and_then(|n| n.checked_sub(padding)) == Some(count);
            ensure!(
                consistent,
                bad(&t.name, format!("chunk {chunk} has inconsistent block counts or byte lengths"))
            );
            // Blocks of consecutive chunks concatenate only if no chunk but the last is padded.
            ensure!(!c.padded, bad(&t.name, format!("chunk {chunk} follows a padded chunk")));
            c.padded = padding > 0;
            c.codes.extend_from_slice(codes);
            c.params.extend_from_slice(params);
        }
    }
    if let Some(c) = cur.take() {
        finish(c, &mut f)?;
    }
    if let Some(t) = tensors.iter().skip(next_index).find(|t| t.rows > 0) {
        bail!("{}: tensor `{}` has no rows in the file", path.display(), t.name);
    }
    Ok(skipped)
}

/// Typed views of the columns this module reads.
struct Columns<'a> {
    tensor: &'a arrow_array::StringArray,
    chunk: &'a arrow_array::UInt32Array,
    element_offset: &'a arrow_array::UInt64Array,
    element_count: &'a arrow_array::UInt64Array,
    codec: &'a arrow_array::StringArray,
    blocks: &'a arrow_array::UInt64Array,
    padding: &'a arrow_array::UInt32Array,
    codes: &'a arrow_array::BinaryArray,
    params: &'a arrow_array::BinaryArray,
}

impl<'a> Columns<'a> {
    fn of(b: &'a RecordBatch) -> Result<Self, String> {
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
            blocks: c(col::BLOCKS)?.as_primitive_opt::<UInt64Type>().ok_or_else(|| wrong(col::BLOCKS))?,
            padding: c(col::PADDING)?.as_primitive_opt::<UInt32Type>().ok_or_else(|| wrong(col::PADDING))?,
            codes: c(col::CODES)?.as_binary_opt::<i32>().ok_or_else(|| wrong(col::CODES))?,
            params: c(col::PARAMS)?.as_binary_opt::<i32>().ok_or_else(|| wrong(col::PARAMS))?,
        })
    }

    fn null(name: &str, r: usize) -> anyhow::Error {
        anyhow!("column `{name}` is null in row {r}")
    }

    fn str(&self, a: &'a arrow_array::StringArray, r: usize) -> anyhow::Result<&'a str> {
        if a.is_null(r) { Err(Self::null("string", r)) } else { Ok(a.value(r)) }
    }

    fn bin(&self, a: &'a arrow_array::BinaryArray, r: usize) -> anyhow::Result<&'a [u8]> {
        if a.is_null(r) { Err(Self::null("binary", r)) } else { Ok(a.value(r)) }
    }

    fn u32(&self, a: &arrow_array::UInt32Array, r: usize) -> anyhow::Result<u32> {
        if a.is_null(r) { Err(Self::null("u32", r)) } else { Ok(a.value(r)) }
    }

    fn u64(&self, a: &arrow_array::UInt64Array, r: usize) -> anyhow::Result<u64> {
        if a.is_null(r) { Err(Self::null("u64", r)) } else { Ok(a.value(r)) }
    }
}
