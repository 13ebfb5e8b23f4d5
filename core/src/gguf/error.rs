//! [`GgufError`]: what can be wrong with a GGUF header, read or written, and where.

use core::fmt;

use super::value::ValueType;
use super::{MAX_ARRAY_DEPTH, MAX_DIMS, MAX_NAME_LEN};
use crate::ggml::GgmlType;

/// Bytes of a name kept in an error (names longer than this are cut, at a character
/// boundary, and shown with a trailing `...`).
pub const NAME_CAP: usize = 64;

/// A key or tensor name inside an error: a `Copy` copy of at most [`NAME_CAP`] bytes,
/// so that errors stay small `Copy` values that need no allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name {
    buf: [u8; NAME_CAP],
    len: u8,
    cut: bool,
}

impl Name {
    /// The first [`NAME_CAP`] bytes of `s` (fewer if that would split a character).
    pub fn new(s: &str) -> Name {
        let mut len = s.len().min(NAME_CAP);
        while !s.is_char_boundary(len) {
            len -= 1;
        }
        let mut buf = [0u8; NAME_CAP];
        buf[..len].copy_from_slice(&s.as_bytes()[..len]);
        Name { buf, len: len as u8, cut: len < s.len() }
    }

    /// The name as kept (possibly cut; see [`is_cut`](Self::is_cut)).
    pub fn as_str(&self) -> &str {
        // `new` copied whole characters of a `str`, so this never fails.
        core::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }

    /// True when the name was longer than [`NAME_CAP`] bytes and is shown cut.
    pub fn is_cut(&self) -> bool {
        self.cut
    }
}

impl fmt::Display for Name {
    /// The name in backquotes, control characters escaped (`\n`, `\u{7}`), so that an
    /// error is always one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`")?;
        write_escaped(f, self.as_str())?;
        f.write_str(if self.cut { "...`" } else { "`" })
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Writes `s` with control characters (and the Unicode line and paragraph
/// separators) escaped.
pub(crate) fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            write!(f, "{}", c.escape_default())?;
        } else {
            fmt::Write::write_char(f, c)?;
        }
    }
    Ok(())
}

/// Where in the header an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Item {
    /// The fixed part: magic, version, counts.
    Header,
    /// Key-value pair `index` (from 0), with its key once it has been read.
    Kv {
        /// Position in the file's key-value list.
        index: u64,
        /// The key, if it was read.
        key: Option<Name>,
    },
    /// Tensor info `index` (from 0), with its name once it has been read.
    Tensor {
        /// Position in the file's tensor list.
        index: u64,
        /// The name, if it was read.
        name: Option<Name>,
    },
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Header => f.write_str("header"),
            Item::Kv { index, key: Some(k) } => write!(f, "key-value {index} {k}"),
            Item::Kv { index, key: None } => write!(f, "key-value {index}"),
            Item::Tensor { index, name: Some(n) } => write!(f, "tensor {index} {n}"),
            Item::Tensor { index, name: None } => write!(f, "tensor {index}"),
        }
    }
}

/// What a count counts, in [`GgufError::TooMany`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counted {
    /// The header's key-value count.
    KeyValues,
    /// The header's tensor count.
    Tensors,
    /// An array's element count.
    ArrayElements,
    /// A string's byte length.
    StringBytes,
}

impl Counted {
    fn what(self) -> &'static str {
        match self {
            Counted::KeyValues => "key-value pairs",
            Counted::Tensors => "tensor infos",
            Counted::ArrayElements => "array elements",
            Counted::StringBytes => "string bytes",
        }
    }
}

/// Everything that can be wrong with a GGUF header being parsed or written. Every
/// variant says where (an [`Item`]) and what value was found; the message is one line.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgufError {
    /// The file does not start with `GGUF`.
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A version other than 2 and 3.
    UnsupportedVersion(u32),
    /// The file ends inside the header.
    Truncated {
        /// What was being read.
        item: Item,
        /// Bytes from the start of the file that reading it needs.
        needed: u64,
        /// Length of the file.
        file_len: u64,
    },
    /// A count or length larger than the rest of the file can hold (each item needs
    /// at least a known number of bytes), refused before anything is allocated.
    TooMany {
        /// Where.
        item: Item,
        /// What is counted.
        what: Counted,
        /// The count read.
        count: u64,
        /// The largest count the bytes left could hold.
        max: u64,
    },
    /// A key, tensor name or string value that is not UTF-8.
    NotUtf8 {
        /// Where.
        item: Item,
        /// File offset of the string's first byte.
        at: u64,
    },
    /// An empty key.
    EmptyKey {
        /// Position of the pair.
        index: u64,
    },
    /// A key that an earlier pair already has.
    DuplicateKey {
        /// Position of the second pair.
        index: u64,
        /// Position of the first pair.
        first: u64,
        /// The key.
        key: Name,
    },
    /// A tensor name that an earlier tensor already has.
    DuplicateTensor {
        /// Position of the second tensor.
        index: u64,
        /// Position of the first tensor.
        first: u64,
        /// The name.
        name: Name,
    },
    /// A value type id GGUF does not define.
    UnknownValueType {
        /// Where.
        item: Item,
        /// The id read.
        id: u32,
    },
    /// Arrays nested deeper than [`MAX_ARRAY_DEPTH`].
    ArrayTooDeep {
        /// Where.
        item: Item,
    },
    /// A `bool` byte other than 0 and 1.
    BadBool {
        /// Where.
        item: Item,
        /// The byte read.
        value: u8,
    },
    /// `general.alignment` is not a `uint32`.
    AlignmentType {
        /// The type it has.
        found: ValueType,
    },
    /// `general.alignment` is 0 or not a power of two.
    BadAlignment {
        /// The value.
        alignment: u32,
    },
    /// A tensor type id that is not one of [`GgmlType::ALL`].
    UnknownTensorType {
        /// Where.
        item: Item,
        /// The id read.
        id: u32,
    },
    /// A tensor with no dimensions or more than [`MAX_DIMS`].
    BadDimCount {
        /// Where.
        item: Item,
        /// The dimension count.
        n_dims: u32,
    },
    /// A dimension of 0.
    ZeroDim {
        /// Where.
        item: Item,
        /// Which dimension (0 = `ne0`, innermost).
        dim: u32,
    },
    /// The element count overflows `i64` (ggml counts elements in `int64_t`).
    ElementsOverflow {
        /// Where.
        item: Item,
    },
    /// The row length `ne0` is not a multiple of the type's block.
    RowNotBlockMultiple {
        /// Where.
        item: Item,
        /// The type.
        ty: GgmlType,
        /// The row length.
        ne0: u64,
    },
    /// A size or offset overflows `u64`.
    SizeOverflow {
        /// Where.
        item: Item,
    },
    /// A tensor offset that is not a multiple of the alignment.
    Misaligned {
        /// Where.
        item: Item,
        /// The offset, relative to the data section.
        offset: u64,
        /// The alignment.
        alignment: u64,
    },
    /// A tensor whose data ends past the end of the file.
    OutOfBounds {
        /// Where.
        item: Item,
        /// File offset one past the tensor's last byte.
        end: u64,
        /// Length of the file.
        file_len: u64,
    },
    /// Two tensors whose data overlap.
    Overlap {
        /// The tensor that starts later.
        item: Item,
        /// Index of the tensor that starts first (its name is in the file's tensor list).
        other: u64,
        /// Where `other`'s data ends, relative to the data section.
        other_end: u64,
        /// Where `item`'s data starts, relative to the data section.
        offset: u64,
    },
    /// A tensor name of [`MAX_NAME_LEN`] bytes or more (the writer only: llama.cpp
    /// refuses such names).
    NameTooLong {
        /// Where.
        item: Item,
        /// The name's length in bytes.
        len: usize,
    },
    /// A key the caller asked for is missing.
    MissingKey {
        /// The key.
        key: Name,
    },
    /// A key the caller asked for has another type.
    WrongType {
        /// The key.
        key: Name,
        /// The type asked for.
        expected: ValueType,
        /// The type stored.
        found: ValueType,
        /// True when the types are an array's element types.
        in_array: bool,
    },
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadMagic { found } => {
                f.write_str("not a GGUF file: magic is ")?;
                for b in found {
                    write!(f, "{}", core::ascii::escape_default(b))?;
                }
                f.write_str(", expected GGUF")
            }
            Self::UnsupportedVersion(v) => {
                write!(f, "GGUF version {v} is not supported (this parser reads versions 2 and 3)")?;
                if v != 0 && v & 0xFFFF == 0 {
                    f.write_str("; the file may be big-endian, which is not supported")?;
                }
                Ok(())
            }
            Self::Truncated { item, needed, file_len } => {
                write!(f, "{item}: truncated: the header needs {needed} bytes but the file has {file_len}")
            }
            Self::TooMany { item, what, count, max } => write!(
                f,
                "{item}: {count} {} cannot fit in the rest of the file (at most {max})",
                what.what()
            ),
            Self::NotUtf8 { item, at } => write!(f, "{item}: string at byte {at} is not valid UTF-8"),
            Self::EmptyKey { index } => write!(f, "key-value {index}: the key is empty"),
            Self::DuplicateKey { index, first, key } => {
                write!(f, "key-value {index}: duplicate key {key} (first at key-value {first})")
            }
            Self::DuplicateTensor { index, first, name } => {
                write!(f, "tensor {index}: duplicate tensor name {name} (first at tensor {first})")
            }
            Self::UnknownValueType { item, id } => {
                write!(f, "{item}: unknown value type {id} (GGUF defines 0 to 12)")
            }
            Self::ArrayTooDeep { item } => {
                write!(f, "{item}: arrays nested deeper than {MAX_ARRAY_DEPTH} levels")
            }
            Self::BadBool { item, value } => write!(f, "{item}: bool byte {value} is neither 0 nor 1"),
            Self::AlignmentType { found } => {
                write!(f, "general.alignment must be of type uint32 but is {found}")
            }
            Self::BadAlignment { alignment } => {
                write!(f, "general.alignment {alignment} is not a power of two")
            }
            Self::UnknownTensorType { item, id } => {
                write!(f, "{item}: tensor type {id} is not one this build knows (")?;
                for (i, t) in GgmlType::ALL.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{t}={}", t.id())?;
                }
                f.write_str(")")
            }
            Self::BadDimCount { item, n_dims } => {
                write!(f, "{item}: {n_dims} dimensions, expected 1 to {MAX_DIMS}")
            }
            Self::ZeroDim { item, dim } => write!(f, "{item}: dimension ne{dim} is 0"),
            Self::ElementsOverflow { item } => {
                write!(f, "{item}: the element count overflows a signed 64-bit integer")
            }
            Self::RowNotBlockMultiple { item, ty, ne0 } => write!(
                f,
                "{item}: row length ne0 = {ne0} is not a multiple of the {ty} block ({})",
                ty.block_len()
            ),
            Self::SizeOverflow { item } => write!(f, "{item}: size or offset overflows 64 bits"),
            Self::Misaligned { item, offset, alignment } => {
                write!(f, "{item}: data offset {offset} is not a multiple of the alignment {alignment}")
            }
            Self::OutOfBounds { item, end, file_len } => {
                write!(f, "{item}: data ends at byte {end}, past the end of the file ({file_len} bytes)")
            }
            Self::Overlap { item, other, other_end, offset } => write!(
                f,
                "{item}: data at offset {offset} overlaps tensor {other}, which ends at offset {other_end}"
            ),
            Self::NameTooLong { item, len } => {
                write!(f, "{item}: tensor name of {len} bytes, llama.cpp allows at most {}", MAX_NAME_LEN - 1)
            }
            Self::MissingKey { key } => write!(f, "metadata key {key} is missing"),
            Self::WrongType { key, expected, found, in_array } => {
                if in_array {
                    write!(f, "metadata key {key} is an array of {found}, expected an array of {expected}")
                } else {
                    write!(f, "metadata key {key} is of type {found}, expected {expected}")
                }
            }
        }
    }
}

impl core::error::Error for GgufError {}
