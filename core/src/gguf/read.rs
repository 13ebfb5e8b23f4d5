//! The parser: a strict, allocation-bounded reader of untrusted GGUF headers.

use alloc::borrow::ToOwned;
use alloc::vec::Vec;
use core::ops::Range;

use super::value::{Array, Value, ValueType};
use super::{
    Counted, GgufError, Item, MAGIC, MAX_ARRAY_DEPTH, MAX_DIMS, Metadata, Name, SUPPORTED_VERSIONS,
    TensorInfo, align_up, alignment_of, first_duplicate, tensor_info,
};
use crate::ggml::GgmlType;

/// Fewest bytes of one key-value pair: a key of one byte (8 + 1), a type id (4), a
/// one-byte value.
const MIN_KV_LEN: u64 = 8 + 1 + 4 + 1;
/// Fewest bytes of one tensor info: an empty name (8), `n_dims` (4), one dimension
/// (8), the type (4), the offset (8).
const MIN_TENSOR_INFO_LEN: u64 = 8 + 4 + 8 + 4 + 8;
/// The fixed part: magic, version, two counts.
const FIXED_LEN: u64 = 4 + 4 + 8 + 8;

/// The result of parsing a window of a file.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    /// The header is complete and valid.
    Header(GgufHeader),
    /// The window ends inside the header: map at least the first `needed` bytes of
    /// the file and parse again (growing the window geometrically, say to
    /// `max(needed, 2 * window)`, keeps the number of attempts logarithmic).
    /// `needed` never exceeds the file length.
    NeedMore {
        /// Bytes from the start of the file that the next item needs.
        needed: u64,
    },
}

/// Parses the GGUF header at the start of `window`, the first bytes of a file of
/// `file_len` bytes (bytes of `window` past `file_len` are ignored).
///
/// # Errors
/// A [`GgufError`] naming what is wrong and where; see the [module docs](super) for
/// every check. Never panics, whatever the input.
pub fn parse(window: &[u8], file_len: u64) -> Result<Parsed, GgufError> {
    let window = match usize::try_from(file_len) {
        Ok(n) if n < window.len() => &window[..n],
        _ => window,
    };
    let mut c = Cursor { buf: window, pos: 0, file_len, item: Item::Header };
    match c.header() {
        Ok(h) => Ok(Parsed::Header(h)),
        Err(Stop::More(needed)) => Ok(Parsed::NeedMore { needed }),
        Err(Stop::Fail(e)) => Err(e),
    }
}

/// A parsed, validated GGUF header.
#[derive(Clone, Debug)]
pub struct GgufHeader {
    version: u32,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    /// Tensor indices sorted by name.
    by_name: Vec<usize>,
    alignment: u64,
    header_len: u64,
    data_offset: u64,
}

impl GgufHeader {
    /// Parses the header of a whole file held in `file`.
    ///
    /// # Errors
    /// As [`parse`].
    pub fn parse(file: &[u8]) -> Result<GgufHeader, GgufError> {
        match parse(file, file.len() as u64)? {
            Parsed::Header(h) => Ok(h),
            // The window is the whole file, so an item that does not fit is `Truncated`.
            Parsed::NeedMore { needed } => {
                Err(GgufError::Truncated { item: Item::Header, needed, file_len: file.len() as u64 })
            }
        }
    }

    /// The file's version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The key-value pairs, in file order.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// The tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor named `name` (binary search).
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        let i = self.by_name.binary_search_by(|&i| self.tensors[i].name().cmp(name)).ok()?;
        Some(&self.tensors[self.by_name[i]])
    }

    /// The alignment of the data section and of every tensor.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Bytes from the start of the file to the end of the tensor infos.
    pub fn header_len(&self) -> u64 {
        self.header_len
    }

    /// File offset of the data section (`header_len` rounded up to the alignment).
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The file bytes of `t`'s data: checked inside the file for every tensor of
    /// this header.
    pub fn data_range(&self, t: &TensorInfo) -> Range<u64> {
        let start = self.data_offset + t.offset();
        start..start + t.n_bytes()
    }

    /// Every tensor info with its file range, in file order.
    pub fn tensor_ranges(&self) -> impl ExactSizeIterator<Item = (&TensorInfo, Range<u64>)> {
        self.tensors.iter().map(|t| (t, self.data_range(t)))
    }
}

/// Why reading stopped.
enum Stop {
    /// The window is too short: the file's first `.0` bytes are needed.
    More(u64),
    Fail(GgufError),
}

impl From<GgufError> for Stop {
    fn from(e: GgufError) -> Self {
        Stop::Fail(e)
    }
}

struct Cursor<'a> {
    /// The window (never longer than the file).
    buf: &'a [u8],
    /// Position in the window and in the file (the window starts the file).
    pos: usize,
    file_len: u64,
    /// What is being read, for errors.
    item: Item,
}

macro_rules! read_le {
    ($name:ident, $t:ty) => {
        fn $name(&mut self) -> Result<$t, Stop> {
            let mut b = [0u8; size_of::<$t>()];
            b.copy_from_slice(self.take(size_of::<$t>() as u64)?);
            Ok(<$t>::from_le_bytes(b))
        }
    };
}

/// Decodes little-endian values of a fixed size from `bytes` (a whole number of them).
macro_rules! decode_le {
    ($bytes:expr, $t:ty) => {
        $bytes
            .chunks_exact(size_of::<$t>())
            .map(|c| {
                let mut b = [0u8; size_of::<$t>()];
                b.copy_from_slice(c);
                <$t>::from_le_bytes(b)
            })
            .collect::<Vec<$t>>()
    };
}

impl<'a> Cursor<'a> {
    /// Bytes of the file after the current position.
    fn left_in_file(&self) -> u64 {
        // The window is a prefix of the file, so pos <= file_len.
        self.file_len - self.pos as u64
    }

    fn left_in_window(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], Stop> {
        let needed = (self.pos as u64).saturating_add(n);
        if needed > self.file_len {
            return Err(GgufError::Truncated { item: self.item, needed, file_len: self.file_len }.into());
        }
        let end = match usize::try_from(needed) {
            Ok(end) if end <= self.buf.len() => end,
            _ => return Err(Stop::More(needed)),
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    read_le!(u8, u8);
    read_le!(u32, u32);
    read_le!(u64, u64);

    /// Checks `count` items of at least `min_len` bytes each against the rest of the
    /// file, and returns a capacity to reserve that the window can back.
    fn count(&self, count: u64, min_len: u64, what: Counted) -> Result<usize, Stop> {
        let max = self.left_in_file() / min_len;
        if count > max {
            return Err(GgufError::TooMany { item: self.item, what, count, max }.into());
        }
        let backed = self.left_in_window() as u64 / min_len;
        Ok(count.min(backed) as usize)
    }

    fn string(&mut self) -> Result<&'a str, Stop> {
        let len = self.u64()?;
        self.count(len, 1, Counted::StringBytes)?;
        let at = self.pos as u64;
        let bytes = self.take(len)?;
        core::str::from_utf8(bytes).map_err(|_| GgufError::NotUtf8 { item: self.item, at }.into())
    }

    fn value_type(&mut self) -> Result<ValueType, Stop> {
        let id = self.u32()?;
        ValueType::from_id(id).ok_or_else(|| GgufError::UnknownValueType { item: self.item, id }.into())
    }

    fn bool(&self, b: u8) -> Result<bool, Stop> {
        match b {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(GgufError::BadBool { item: self.item, value }.into()),
        }
    }

    fn value(&mut self, ty: ValueType) -> Result<Value, Stop> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.u8()?),
            ValueType::I8 => Value::I8(self.u8()? as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array2()?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array2()?)),
            ValueType::U32 => Value::U32(self.u32()?),
            ValueType::I32 => Value::I32(self.u32()? as i32),
            ValueType::F32 => Value::F32(f32::from_bits(self.u32()?)),
            ValueType::Bool => {
                let b = self.u8()?;
                Value::Bool(self.bool(b)?)
            }
            ValueType::String => Value::String(self.string()?.to_owned()),
            ValueType::Array => Value::Array(self.array(1)?),
            ValueType::U64 => Value::U64(self.u64()?),
            ValueType::I64 => Value::I64(self.u64()? as i64),
            ValueType::F64 => Value::F64(f64::from_bits(self.u64()?)),
        })
    }

    fn array2(&mut self) -> Result<[u8; 2], Stop> {
        let mut b = [0u8; 2];
        b.copy_from_slice(self.take(2)?);
        Ok(b)
    }

    /// An array at nesting depth `depth` (1 for a key's value).
    fn array(&mut self, depth: u32) -> Result<Array, Stop> {
        if depth > MAX_ARRAY_DEPTH {
            return Err(GgufError::ArrayTooDeep { item: self.item }.into());
        }
        let ty = self.value_type()?;
        let n = self.u64()?;
        let cap = self.count(n, ty.min_encoded_len(), Counted::ArrayElements)?;
        if let Some(size) = ty.fixed_size() {
            // `count` checked n * size <= the bytes left, so this cannot overflow.
            let bytes = self.take(n * size as u64)?;
            return Ok(match ty {
                ValueType::U8 => Array::U8(bytes.to_vec()),
                ValueType::I8 => Array::I8(bytes.iter().map(|&b| b as i8).collect()),
                ValueType::U16 => Array::U16(decode_le!(bytes, u16)),
                ValueType::I16 => Array::I16(decode_le!(bytes, i16)),
                ValueType::U32 => Array::U32(decode_le!(bytes, u32)),
                ValueType::I32 => Array::I32(decode_le!(bytes, i32)),
                ValueType::F32 => Array::F32(decode_le!(bytes, f32)),
                ValueType::Bool => {
                    Array::Bool(bytes.iter().map(|&b| self.bool(b)).collect::<Result<_, _>>()?)
                }
                ValueType::U64 => Array::U64(decode_le!(bytes, u64)),
                ValueType::I64 => Array::I64(decode_le!(bytes, i64)),
                ValueType::F64 => Array::F64(decode_le!(bytes, f64)),
                ValueType::String | ValueType::Array => unreachable!("fixed_size is None for these"),
            });
        }
        let mut a = Array::with_capacity(ty, cap);
        for _ in 0..n {
            match &mut a {
                Array::String(v) => v.push(self.string()?.to_owned()),
                Array::Array(v) => v.push(self.array(depth + 1)?),
                _ => unreachable!("only strings and arrays have no fixed size"),
            }
        }
        Ok(a)
    }

    fn header(&mut self) -> Result<GgufHeader, Stop> {
        // The magic is judged on four bytes (fewer only if the file is shorter), so a
        // short window gives the same error as the whole file.
        let magic_len = MAGIC.len().min(usize::try_from(self.file_len).unwrap_or(MAGIC.len()));
        let Some(head) = self.buf.get(..magic_len) else {
            return Err(Stop::More(magic_len as u64));
        };
        if head != &MAGIC[..magic_len] {
            let mut found = [0u8; 4];
            found[..head.len()].copy_from_slice(head);
            return Err(GgufError::BadMagic { found }.into());
        }
        self.take(4)?;
        let version = self.u32()?;
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(GgufError::UnsupportedVersion(version).into());
        }
        let n_tensors = self.u64()?;
        let n_kv = self.u64()?;
        debug_assert_eq!(self.pos as u64, FIXED_LEN);
        let kv_cap = self.count(n_kv, MIN_KV_LEN, Counted::KeyValues)?;
        // Both lists must fit: the tensor infos in what the smallest key-values leave.
        let after_kvs = self.left_in_file() - n_kv * MIN_KV_LEN;
        let max_tensors = after_kvs / MIN_TENSOR_INFO_LEN;
        if n_tensors > max_tensors {
            let (what, count, max) = (Counted::Tensors, n_tensors, max_tensors);
            return Err(GgufError::TooMany { item: Item::Header, what, count, max }.into());
        }

        let mut kvs = Vec::with_capacity(kv_cap);
        for index in 0..n_kv {
            self.item = Item::Kv { index, key: None };
            let key = self.string()?;
            if key.is_empty() {
                return Err(GgufError::EmptyKey { index }.into());
            }
            self.item = Item::Kv { index, key: Some(Name::new(key)) };
            let ty = self.value_type()?;
            let value = self.value(ty)?;
            kvs.push((key.to_owned(), value));
        }
        let metadata = Metadata { kvs };
        if let Some((first, i)) = first_duplicate(metadata.kvs.iter().map(|(k, _)| k.as_str())) {
            let key = Name::new(&metadata.kvs[i].0);
            return Err(GgufError::DuplicateKey { index: i as u64, first: first as u64, key }.into());
        }
        let alignment = alignment_of(&metadata)?;

        let tensor_cap = self.count(n_tensors, MIN_TENSOR_INFO_LEN, Counted::Tensors)?;
        let mut tensors = Vec::with_capacity(tensor_cap);
        for index in 0..n_tensors {
            self.item = Item::Tensor { index, name: None };
            let name = self.string()?;
            self.item = Item::Tensor { index, name: Some(Name::new(name)) };
            let n_dims = self.u32()?;
            if n_dims == 0 || n_dims as usize > MAX_DIMS {
                return Err(GgufError::BadDimCount { item: self.item, n_dims }.into());
            }
            let mut ne = [0u64; MAX_DIMS];
            for d in &mut ne[..n_dims as usize] {
                *d = self.u64()?;
            }
            let id = self.u32()?;
            let ty = GgmlType::from_id(id).ok_or(GgufError::UnknownTensorType { item: self.item, id })?;
            let offset = self.u64()?;
            tensors.push(tensor_info(self.item, name.to_owned(), &ne[..n_dims as usize], ty, offset)?);
        }

        if let Some((first, i)) = first_duplicate(tensors.iter().map(|t| t.name())) {
            let name = Name::new(tensors[i].name());
            return Err(GgufError::DuplicateTensor { index: i as u64, first: first as u64, name }.into());
        }

        let header_len = self.pos as u64;
        self.item = Item::Header;
        let data_offset =
            align_up(header_len, alignment).ok_or(GgufError::SizeOverflow { item: self.item })?;
        for (i, t) in tensors.iter().enumerate() {
            let item = Item::Tensor { index: i as u64, name: Some(Name::new(t.name())) };
            if !t.offset().is_multiple_of(alignment) {
                return Err(GgufError::Misaligned { item, offset: t.offset(), alignment }.into());
            }
            let end = data_offset
                .checked_add(t.offset())
                .and_then(|s| s.checked_add(t.n_bytes()))
                .ok_or(GgufError::SizeOverflow { item })?;
            if end > self.file_len {
                return Err(GgufError::OutOfBounds { item, end, file_len: self.file_len }.into());
            }
        }
        // Overlaps, whatever the order in the file: sort by offset, then neighbours
        // suffice (every tensor has at least one byte).
        let mut by_offset: Vec<usize> = (0..tensors.len()).collect();
        by_offset.sort_by_key(|&i| (tensors[i].offset(), i));
        for w in by_offset.windows(2) {
            let (a, b) = (&tensors[w[0]], &tensors[w[1]]);
            // Both ends were checked inside the file above, so no overflow.
            let a_end = a.offset() + a.n_bytes();
            if a_end > b.offset() {
                let item = Item::Tensor { index: w[1] as u64, name: Some(Name::new(b.name())) };
                let other = w[0] as u64;
                return Err(GgufError::Overlap { item, other, other_end: a_end, offset: b.offset() }.into());
            }
        }
        let mut by_name: Vec<usize> = (0..tensors.len()).collect();
        by_name.sort_by(|&a, &b| tensors[a].name().cmp(tensors[b].name()));
        Ok(GgufHeader { version, metadata, tensors, by_name, alignment, header_len, data_offset })
    }
}
