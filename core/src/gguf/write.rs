//! The writer: key-values and tensor infos in, a complete header (with offsets and
//! padding) out.

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

use super::value::{encode_str, encode_value};
use super::{
    GgufError, Item, MAGIC, MAX_NAME_LEN, Metadata, Name, TensorInfo, VERSION, Value, align_up, alignment_of,
    first_duplicate, tensor_info,
};
use crate::ggml::GgmlType;

/// Collects the metadata and the tensor infos of a GGUF file; [`finish`](Self::finish)
/// lays the file out.
#[derive(Clone, Debug, Default)]
pub struct GgufWriter {
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
}

impl GgufWriter {
    /// A writer without metadata or tensors.
    pub fn new() -> GgufWriter {
        GgufWriter::default()
    }

    /// A writer starting with `metadata`.
    pub fn with_metadata(metadata: Metadata) -> GgufWriter {
        GgufWriter { metadata, tensors: Vec::new() }
    }

    /// Appends a key-value pair (written in the order pushed). An empty or repeated
    /// key is reported by [`finish`](Self::finish).
    pub fn push_kv(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.metadata.push(key, value);
    }

    /// The metadata so far.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Appends a tensor: `ne` with the row length first (ggml's order), at most 4
    /// dimensions. Its data follows the previous tensor's, aligned.
    ///
    /// # Errors
    /// [`GgufError::BadDimCount`], [`GgufError::ZeroDim`], [`GgufError::ElementsOverflow`],
    /// [`GgufError::RowNotBlockMultiple`], [`GgufError::SizeOverflow`] and
    /// [`GgufError::NameTooLong`] (llama.cpp's 63-byte limit), naming the tensor.
    pub fn push_tensor(
        &mut self,
        name: impl Into<String>,
        ne: &[u64],
        ty: GgmlType,
    ) -> Result<(), GgufError> {
        let name = name.into();
        let item = Item::Tensor { index: self.tensors.len() as u64, name: Some(Name::new(&name)) };
        if name.len() >= MAX_NAME_LEN {
            return Err(GgufError::NameTooLong { item, len: name.len() });
        }
        // Offsets are given by `finish`, once the alignment is known.
        let info = tensor_info(item, name, ne, ty, 0)?;
        self.tensors.push(info);
        Ok(())
    }

    /// Checks everything, gives each tensor its offset and serializes the header.
    ///
    /// # Errors
    /// [`GgufError::EmptyKey`], [`GgufError::DuplicateKey`],
    /// [`GgufError::DuplicateTensor`], [`GgufError::AlignmentType`] and
    /// [`GgufError::BadAlignment`] for `general.alignment`, and
    /// [`GgufError::SizeOverflow`] when the offsets overflow `u64`.
    pub fn finish(self) -> Result<GgufLayout, GgufError> {
        let GgufWriter { metadata, mut tensors } = self;
        if let Some(i) = metadata.kvs.iter().position(|(k, _)| k.is_empty()) {
            return Err(GgufError::EmptyKey { index: i as u64 });
        }
        if let Some((first, i)) = first_duplicate(metadata.kvs.iter().map(|(k, _)| k.as_str())) {
            let key = Name::new(&metadata.kvs[i].0);
            return Err(GgufError::DuplicateKey { index: i as u64, first: first as u64, key });
        }
        if let Some((first, i)) = first_duplicate(tensors.iter().map(|t| t.name())) {
            let name = Name::new(tensors[i].name());
            return Err(GgufError::DuplicateTensor { index: i as u64, first: first as u64, name });
        }
        let alignment = alignment_of(&metadata)?;

        let mut next = 0u64;
        for (i, t) in tensors.iter_mut().enumerate() {
            let item = Item::Tensor { index: i as u64, name: Some(Name::new(&t.name)) };
            t.offset = next;
            next = next
                .checked_add(t.n_bytes)
                .and_then(|end| align_up(end, alignment))
                .ok_or(GgufError::SizeOverflow { item })?;
        }
        let data_len = next;

        let mut header = Vec::new();
        header.extend_from_slice(&MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for (k, v) in &metadata.kvs {
            encode_str(k, &mut header);
            header.extend_from_slice(&v.value_type().id().to_le_bytes());
            encode_value(v, &mut header);
        }
        for t in &tensors {
            encode_str(&t.name, &mut header);
            header.extend_from_slice(&u32::from(t.n_dims).to_le_bytes());
            for n in t.dims() {
                header.extend_from_slice(&n.to_le_bytes());
            }
            header.extend_from_slice(&t.ty.id().to_le_bytes());
            header.extend_from_slice(&t.offset.to_le_bytes());
        }
        let unpadded = header.len() as u64;
        let data_offset =
            align_up(unpadded, alignment).ok_or(GgufError::SizeOverflow { item: Item::Header })?;
        data_offset.checked_add(data_len).ok_or(GgufError::SizeOverflow { item: Item::Header })?;
        let padded =
            usize::try_from(data_offset).map_err(|_| GgufError::SizeOverflow { item: Item::Header })?;
        header.resize(padded, 0);
        Ok(GgufLayout { header, metadata, tensors, alignment, data_len })
    }
}

/// A laid-out GGUF file: the serialized header and where every tensor's data goes.
#[derive(Clone, Debug)]
pub struct GgufLayout {
    header: Vec<u8>,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    alignment: u64,
    data_len: u64,
}

impl GgufLayout {
    /// The header, padded with zeros up to the data section: the first bytes of the file.
    pub fn header_bytes(&self) -> &[u8] {
        &self.header
    }

    /// The header, as [`header_bytes`](Self::header_bytes), without copying.
    pub fn into_header_bytes(self) -> Vec<u8> {
        self.header
    }

    /// The metadata written.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The tensor infos written, in file order, with their offsets.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The alignment of the data section and of every tensor.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// File offset of the data section (the length of [`header_bytes`](Self::header_bytes)).
    pub fn data_offset(&self) -> u64 {
        self.header.len() as u64
    }

    /// Bytes of the data section, padding after the last tensor included.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// Length of the whole file.
    pub fn file_len(&self) -> u64 {
        // `finish` checked that the sum fits.
        self.data_offset() + self.data_len
    }

    /// The file bytes of tensor `i`'s data (without its padding).
    ///
    /// # Panics
    /// If `i` is not a tensor index.
    pub fn tensor_range(&self, i: usize) -> Range<u64> {
        let t = &self.tensors[i];
        let start = self.data_offset() + t.offset;
        start..start + t.n_bytes
    }

    /// Zero bytes to write after tensor `i`'s data: up to the next tensor, or after the
    /// last one up to the end of the file (a multiple of the alignment, as gguf-py and
    /// llama.cpp write it).
    ///
    /// # Panics
    /// If `i` is not a tensor index.
    pub fn padding_after(&self, i: usize) -> u64 {
        let t = &self.tensors[i];
        let end = t.offset + t.n_bytes;
        let next = self.tensors.get(i + 1).map_or(self.data_len, |n| n.offset);
        next - end
    }
}
