//! Opening a file: the footer, then one named check per promise the rest of the
//! reader relies on (format version, columns, page ranges and codecs, row counts, the
//! manifest's row ranges), then the stored sections.

use std::collections::BTreeMap;
use std::path::Path;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::ParquetMetaData;

use super::QuantizedFile;
use super::decode_guard::guarded;
use crate::container::parquet::schema::{self, StoredTensor};
use crate::error::{AdapterError, Result};
use crate::features::equalization::EqualizationTable;
use crate::features::time_aware::TimeGroupTable;
use crate::model::input::FileKind;

/// The footer's key-value metadata.
type KeyValues = BTreeMap<String, String>;

impl QuantizedFile {
    /// Opens a file and reads its manifest (the data is read later, in chunks).
    ///
    /// # Errors
    /// [`AdapterError::Io`], [`AdapterError::Parquet`] for a file that is not Parquet,
    /// [`AdapterError::BadQuantizedFile`] for a Parquet file without our metadata,
    /// columns or a supported format version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = crate::model::input::open_regular(path).map_err(|e| AdapterError::io(path, e))?;
        let kind = FileKind::sniff(path).map_err(|e| AdapterError::io(path, e))?;
        // An empty or cut file is left to the Parquet reader, which says so.
        if file.metadata().map_err(|e| AdapterError::io(path, e))?.len() >= 9
            && let Some(why) = kind.not_quantized()
        {
            return Err(AdapterError::bad_file(path, why));
        }
        let file_size = file.metadata().map_err(|e| AdapterError::io(path, e))?.len();
        let b = guarded(path, "reading the footer", || ParquetRecordBatchReaderBuilder::try_new(file))?
            .map_err(|e| AdapterError::parquet(path, e))?;
        let kv: KeyValues = b
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
        check_format_version(path, &get(schema::KEY_FORMAT_VERSION)?)?;
        let tensors: Vec<StoredTensor> = serde_json::from_str(&get(schema::KEY_TENSORS)?)
            .map_err(|e| AdapterError::bad_file(path, format!("manifest is not valid: {e}")))?;
        check_columns(path, b.schema())?;
        check_column_chunks(path, b.metadata(), file_size)?;
        let row_group_rows: Vec<u64> =
            b.metadata().row_groups().iter().map(|g| g.num_rows().max(0) as u64).collect();
        let total_rows: u64 = b.metadata().file_metadata().num_rows().max(0) as u64;
        check_row_groups(path, &row_group_rows, total_rows)?;
        check_manifest_rows(path, &tensors, total_rows)?;
        check_manifest_shapes(path, &tensors)?;
        let time_groups = read_time_groups(path, &kv)?;
        let mixed_precision = match kv.get(schema::KEY_MIXED_PRECISION) {
            None => None,
            Some(s) => Some(serde_json::from_str(s).map_err(|e| {
                AdapterError::bad_file(path, format!("`{}` is not valid: {e}", schema::KEY_MIXED_PRECISION))
            })?),
        };
        let equalization = read_equalization(path, &kv, &tensors)?;
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
}

/// The file's format version is the one this reader knows.
fn check_format_version(path: &Path, version: &str) -> Result<()> {
    if version != schema::FORMAT_VERSION {
        return Err(AdapterError::bad_file(
            path,
            format!(
                "format version {version} is not supported (this reader knows {})",
                schema::FORMAT_VERSION
            ),
        ));
    }
    Ok(())
}

/// Every column of [`schema::schema`] is present with its type.
fn check_columns(path: &Path, found: &arrow_schema::Schema) -> Result<()> {
    let expected = schema::schema();
    for f in expected.fields() {
        match found.field_with_name(f.name()) {
            Ok(g) if schema::same_column_type(g.data_type(), f.data_type()) => {}
            Ok(g) => {
                return Err(AdapterError::bad_file(
                    path,
                    format!("column `{}` has type {} instead of {}", f.name(), g.data_type(), f.data_type()),
                ));
            }
            Err(_) => return Err(AdapterError::bad_file(path, format!("missing column `{}`", f.name()))),
        }
    }
    Ok(())
}

/// Every column chunk lies inside the file and uses a codec this build decompresses.
///
/// Which codecs this build decompresses is fixed by the `parquet` crate's features;
/// say so up front instead of failing on the first page read with "Disabled feature at
/// compile time". pyarrow writes SNAPPY by default.
fn check_column_chunks(path: &Path, meta: &ParquetMetaData, file_size: u64) -> Result<()> {
    for g in meta.row_groups() {
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
    Ok(())
}

/// The footer states the row count twice (per row group and for the file); both come
/// from the file, so they are summed with a check and must agree before
/// `dequantize_tensor` relies on the row-group counts to find a tensor's rows.
fn check_row_groups(path: &Path, row_group_rows: &[u64], total_rows: u64) -> Result<()> {
    let group_rows = row_group_rows.iter().try_fold(0u64, |sum, &n| sum.checked_add(n));
    if group_rows != Some(total_rows) {
        let groups = group_rows.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string());
        return Err(AdapterError::bad_file(
            path,
            format!("the row groups hold {groups} rows but the footer says {total_rows}"),
        ));
    }
    Ok(())
}

/// Tensors own consecutive rows in manifest order, covering the file; checked sums,
/// since the counts come from the file.
fn check_manifest_rows(path: &Path, tensors: &[StoredTensor], total_rows: u64) -> Result<()> {
    let mut manifest_rows = 0u64;
    for t in tensors {
        if t.first_row != manifest_rows {
            return Err(AdapterError::bad_file(
                path,
                format!("manifest: tensor `{}` starts at row {}, not {manifest_rows}", t.name, t.first_row),
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
    Ok(())
}

/// Each tensor's shape holds exactly its element count (the rows are checked against
/// the count as they are read, so together the shape written out is the data read),
/// and no name is listed twice (a reader looks tensors up by name).
fn check_manifest_shapes(path: &Path, tensors: &[StoredTensor]) -> Result<()> {
    let mut names = std::collections::HashSet::new();
    for t in tensors {
        if !names.insert(t.name.as_str()) {
            return Err(AdapterError::bad_file(
                path,
                format!("manifest: tensor `{}` is listed twice", t.name),
            ));
        }
        let product = t.shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        if product != Some(t.elements) {
            let shape: Vec<String> = t.shape.iter().map(u64::to_string).collect();
            return Err(AdapterError::bad_file(
                path,
                format!(
                    "manifest: tensor `{}` has shape [{}] but {} elements",
                    t.name,
                    shape.join(", "),
                    t.elements
                ),
            ));
        }
    }
    Ok(())
}

/// The time-aware section, parsed and checked (None if the file has none).
fn read_time_groups(path: &Path, kv: &KeyValues) -> Result<Option<TimeGroupTable>> {
    let Some(s) = kv.get(schema::KEY_TIME_GROUPS) else { return Ok(None) };
    let t: TimeGroupTable = serde_json::from_str(s).map_err(|e| {
        AdapterError::bad_file(path, format!("`{}` is not valid: {e}", schema::KEY_TIME_GROUPS))
    })?;
    t.check().map_err(|e| AdapterError::bad_file(path, format!("`{}`: {e}", schema::KEY_TIME_GROUPS)))?;
    Ok(Some(t))
}

/// The equalization section, parsed and checked against the manifest: each factor
/// list belongs to a 2-D tensor with that many columns (None if the file has none).
fn read_equalization(
    path: &Path,
    kv: &KeyValues,
    tensors: &[StoredTensor],
) -> Result<Option<EqualizationTable>> {
    let Some(s) = kv.get(schema::KEY_EQUALIZATION) else { return Ok(None) };
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
    Ok(Some(t))
}

/// Whether this build decompresses Parquet pages compressed with `c`: the `parquet`
/// dependency is built with only its `zstd` codec (see std-adapter/Cargo.toml).
fn readable_compression(c: parquet::basic::Compression) -> bool {
    use parquet::basic::Compression;
    matches!(c, Compression::UNCOMPRESSED | Compression::ZSTD(_))
}
