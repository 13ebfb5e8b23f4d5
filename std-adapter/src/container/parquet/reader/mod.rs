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
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::container::parquet::schema::StoredTensor;
use crate::encode::codec::CodecChoice;
use crate::features::equalization::EqualizationTable;
use crate::features::mixed::MixedPrecision;
use crate::features::time_aware::{TimeGroup, TimeGroupTable};

/// Rows decoded per record batch while reading.
pub const READ_BATCH_ROWS: usize = 4;

/// Element type of dequantized output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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

impl QuantizedFile {
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
}

mod export;
mod open;
mod scan;

pub mod decode_guard;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{AdapterError, Result};
    use arrowquant_core::BlockCodec;

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
