//! Metadata values ([`Value`], [`Array`]) and the ordered key-value list ([`Metadata`]).

use alloc::string::String;
use alloc::vec::Vec;

use super::error::{GgufError, Name};

/// The type id GGUF stores before every metadata value (`enum gguf_type`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// `u8` (id 0).
    U8,
    /// `i8` (id 1).
    I8,
    /// `u16` (id 2).
    U16,
    /// `i16` (id 3).
    I16,
    /// `u32` (id 4).
    U32,
    /// `i32` (id 5).
    I32,
    /// IEEE binary32 (id 6).
    F32,
    /// One byte, 0 or 1 (id 7).
    Bool,
    /// `u64` byte length, then UTF-8 bytes (id 8).
    String,
    /// `u32` element type, `u64` count, then the elements (id 9).
    Array,
    /// `u64` (id 10).
    U64,
    /// `i64` (id 11).
    I64,
    /// IEEE binary64 (id 12).
    F64,
}

impl ValueType {
    /// Every type, in id order.
    pub const ALL: [ValueType; 13] = [
        ValueType::U8,
        ValueType::I8,
        ValueType::U16,
        ValueType::I16,
        ValueType::U32,
        ValueType::I32,
        ValueType::F32,
        ValueType::Bool,
        ValueType::String,
        ValueType::Array,
        ValueType::U64,
        ValueType::I64,
        ValueType::F64,
    ];

    /// The id GGUF stores.
    pub const fn id(self) -> u32 {
        match self {
            ValueType::U8 => 0,
            ValueType::I8 => 1,
            ValueType::U16 => 2,
            ValueType::I16 => 3,
            ValueType::U32 => 4,
            ValueType::I32 => 5,
            ValueType::F32 => 6,
            ValueType::Bool => 7,
            ValueType::String => 8,
            ValueType::Array => 9,
            ValueType::U64 => 10,
            ValueType::I64 => 11,
            ValueType::F64 => 12,
        }
    }

    /// The type with id `id`, if GGUF defines it.
    pub fn from_id(id: u32) -> Option<ValueType> {
        Self::ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// GGUF's name of the type (`uint32`, `string`, ...), as gguf-py and llama.cpp print it.
    pub const fn name(self) -> &'static str {
        match self {
            ValueType::U8 => "uint8",
            ValueType::I8 => "int8",
            ValueType::U16 => "uint16",
            ValueType::I16 => "int16",
            ValueType::U32 => "uint32",
            ValueType::I32 => "int32",
            ValueType::F32 => "float32",
            ValueType::Bool => "bool",
            ValueType::String => "string",
            ValueType::Array => "array",
            ValueType::U64 => "uint64",
            ValueType::I64 => "int64",
            ValueType::F64 => "float64",
        }
    }

    /// Bytes of one value of a fixed-size type; `None` for strings and arrays.
    pub const fn fixed_size(self) -> Option<usize> {
        match self {
            ValueType::U8 | ValueType::I8 | ValueType::Bool => Some(1),
            ValueType::U16 | ValueType::I16 => Some(2),
            ValueType::U32 | ValueType::I32 | ValueType::F32 => Some(4),
            ValueType::U64 | ValueType::I64 | ValueType::F64 => Some(8),
            ValueType::String | ValueType::Array => None,
        }
    }

    /// The fewest bytes one value of this type can take in a file: what the parser
    /// multiplies a count by before it believes it.
    pub(crate) const fn min_encoded_len(self) -> u64 {
        match self.fixed_size() {
            Some(n) => n as u64,
            // A string is at least its u64 length; an array its u32 type and u64 count.
            None => match self {
                ValueType::String => 8,
                _ => 12,
            },
        }
    }
}

impl core::fmt::Display for ValueType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// One metadata value.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `uint8`.
    U8(u8),
    /// `int8`.
    I8(i8),
    /// `uint16`.
    U16(u16),
    /// `int16`.
    I16(i16),
    /// `uint32`.
    U32(u32),
    /// `int32`.
    I32(i32),
    /// `float32`.
    F32(f32),
    /// `bool`.
    Bool(bool),
    /// `string` (UTF-8).
    String(String),
    /// `array`: typed, possibly of arrays.
    Array(Array),
    /// `uint64`.
    U64(u64),
    /// `int64`.
    I64(i64),
    /// `float64`.
    F64(f64),
}

impl Value {
    /// The type id GGUF stores for this value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.into())
    }
}

/// A typed metadata array: every element has the array's element type. An array of
/// arrays holds inner arrays that each carry their own element type and length.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    /// `uint8` elements.
    U8(Vec<u8>),
    /// `int8` elements.
    I8(Vec<i8>),
    /// `uint16` elements.
    U16(Vec<u16>),
    /// `int16` elements.
    I16(Vec<i16>),
    /// `uint32` elements.
    U32(Vec<u32>),
    /// `int32` elements.
    I32(Vec<i32>),
    /// `float32` elements.
    F32(Vec<f32>),
    /// `bool` elements.
    Bool(Vec<bool>),
    /// `string` elements.
    String(Vec<String>),
    /// `array` elements (llama.cpp refuses these; gguf-py reads them).
    Array(Vec<Array>),
    /// `uint64` elements.
    U64(Vec<u64>),
    /// `int64` elements.
    I64(Vec<i64>),
    /// `float64` elements.
    F64(Vec<f64>),
}

impl Array {
    /// The element type.
    pub fn element_type(&self) -> ValueType {
        match self {
            Array::U8(_) => ValueType::U8,
            Array::I8(_) => ValueType::I8,
            Array::U16(_) => ValueType::U16,
            Array::I16(_) => ValueType::I16,
            Array::U32(_) => ValueType::U32,
            Array::I32(_) => ValueType::I32,
            Array::F32(_) => ValueType::F32,
            Array::Bool(_) => ValueType::Bool,
            Array::String(_) => ValueType::String,
            Array::Array(_) => ValueType::Array,
            Array::U64(_) => ValueType::U64,
            Array::I64(_) => ValueType::I64,
            Array::F64(_) => ValueType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    /// True for an array without elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty array of element type `ty`, with room for `capacity` elements.
    pub(crate) fn with_capacity(ty: ValueType, capacity: usize) -> Array {
        match ty {
            ValueType::U8 => Array::U8(Vec::with_capacity(capacity)),
            ValueType::I8 => Array::I8(Vec::with_capacity(capacity)),
            ValueType::U16 => Array::U16(Vec::with_capacity(capacity)),
            ValueType::I16 => Array::I16(Vec::with_capacity(capacity)),
            ValueType::U32 => Array::U32(Vec::with_capacity(capacity)),
            ValueType::I32 => Array::I32(Vec::with_capacity(capacity)),
            ValueType::F32 => Array::F32(Vec::with_capacity(capacity)),
            ValueType::Bool => Array::Bool(Vec::with_capacity(capacity)),
            ValueType::String => Array::String(Vec::with_capacity(capacity)),
            ValueType::Array => Array::Array(Vec::with_capacity(capacity)),
            ValueType::U64 => Array::U64(Vec::with_capacity(capacity)),
            ValueType::I64 => Array::I64(Vec::with_capacity(capacity)),
            ValueType::F64 => Array::F64(Vec::with_capacity(capacity)),
        }
    }
}

/// Metadata: key-value pairs in file order. Keys are unique and non-empty in every
/// [`Metadata`] that a parse returns; the writer checks the same when it finishes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    pub(crate) kvs: Vec<(String, Value)>,
}

macro_rules! typed_getter {
    ($(#[$doc:meta])* $name:ident, $variant:ident, $t:ty) => {
        $(#[$doc])*
        ///
        /// # Errors
        /// [`GgufError::MissingKey`], or [`GgufError::WrongType`] naming the stored type.
        pub fn $name(&self, key: &str) -> Result<$t, GgufError> {
            match self.require(key)? {
                Value::$variant(v) => Ok(*v),
                other => Err(GgufError::WrongType {
                    key: Name::new(key),
                    expected: ValueType::$variant,
                    found: other.value_type(),
                    in_array: false,
                }),
            }
        }
    };
}

impl Metadata {
    /// An empty list.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Appends `key = value`. Keys are checked (non-empty, unique) by
    /// [`GgufWriter::finish`](super::GgufWriter::finish), which names the offending pair.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.kvs.push((key.into(), value.into()));
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.kvs.len()
    }

    /// True without pairs.
    pub fn is_empty(&self) -> bool {
        self.kvs.is_empty()
    }

    /// The pairs in file order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.kvs.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.kvs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn require(&self, key: &str) -> Result<&Value, GgufError> {
        self.get(key).ok_or(GgufError::MissingKey { key: Name::new(key) })
    }

    typed_getter!(
        /// The `uint8` value of `key`.
        get_u8, U8, u8
    );
    typed_getter!(
        /// The `int8` value of `key`.
        get_i8, I8, i8
    );
    typed_getter!(
        /// The `uint16` value of `key`.
        get_u16, U16, u16
    );
    typed_getter!(
        /// The `int16` value of `key`.
        get_i16, I16, i16
    );
    typed_getter!(
        /// The `uint32` value of `key`.
        get_u32, U32, u32
    );
    typed_getter!(
        /// The `int32` value of `key`.
        get_i32, I32, i32
    );
    typed_getter!(
        /// The `float32` value of `key`.
        get_f32, F32, f32
    );
    typed_getter!(
        /// The `bool` value of `key`.
        get_bool, Bool, bool
    );
    typed_getter!(
        /// The `uint64` value of `key`.
        get_u64, U64, u64
    );
    typed_getter!(
        /// The `int64` value of `key`.
        get_i64, I64, i64
    );
    typed_getter!(
        /// The `float64` value of `key`.
        get_f64, F64, f64
    );

    /// The `string` value of `key`.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], or [`GgufError::WrongType`] naming the stored type.
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        match self.require(key)? {
            Value::String(s) => Ok(s),
            other => Err(GgufError::WrongType {
                key: Name::new(key),
                expected: ValueType::String,
                found: other.value_type(),
                in_array: false,
            }),
        }
    }

    /// The `array` value of `key`, of any element type.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], or [`GgufError::WrongType`] naming the stored type.
    pub fn get_array(&self, key: &str) -> Result<&Array, GgufError> {
        match self.require(key)? {
            Value::Array(a) => Ok(a),
            other => Err(GgufError::WrongType {
                key: Name::new(key),
                expected: ValueType::Array,
                found: other.value_type(),
                in_array: false,
            }),
        }
    }

    fn array_of(&self, key: &str, expected: ValueType) -> Result<&Array, GgufError> {
        let a = self.get_array(key)?;
        if a.element_type() != expected {
            return Err(GgufError::WrongType {
                key: Name::new(key),
                expected,
                found: a.element_type(),
                in_array: true,
            });
        }
        Ok(a)
    }

    /// The array of strings of `key` (a vocabulary, for example).
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], or [`GgufError::WrongType`] when the value is not an
    /// array of strings.
    pub fn get_str_array(&self, key: &str) -> Result<&[String], GgufError> {
        match self.array_of(key, ValueType::String)? {
            Array::String(v) => Ok(v),
            _ => unreachable!("array_of checked the element type"),
        }
    }

    /// The array of `int32` of `key` (token types, for example).
    ///
    /// # Errors
    /// As [`get_str_array`](Self::get_str_array).
    pub fn get_i32_array(&self, key: &str) -> Result<&[i32], GgufError> {
        match self.array_of(key, ValueType::I32)? {
            Array::I32(v) => Ok(v),
            _ => unreachable!("array_of checked the element type"),
        }
    }

    /// The array of `uint32` of `key`.
    ///
    /// # Errors
    /// As [`get_str_array`](Self::get_str_array).
    pub fn get_u32_array(&self, key: &str) -> Result<&[u32], GgufError> {
        match self.array_of(key, ValueType::U32)? {
            Array::U32(v) => Ok(v),
            _ => unreachable!("array_of checked the element type"),
        }
    }

    /// The array of `float32` of `key` (token scores, for example).
    ///
    /// # Errors
    /// As [`get_str_array`](Self::get_str_array).
    pub fn get_f32_array(&self, key: &str) -> Result<&[f32], GgufError> {
        match self.array_of(key, ValueType::F32)? {
            Array::F32(v) => Ok(v),
            _ => unreachable!("array_of checked the element type"),
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant(v)
            }
        })*
    };
}

value_from!(
    u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32, f32 => F32,
    bool => Bool, String => String, Array => Array, u64 => U64, i64 => I64, f64 => F64,
);

macro_rules! array_from {
    ($($t:ty => $variant:ident),* $(,)?) => {
        $(impl From<Vec<$t>> for Array {
            fn from(v: Vec<$t>) -> Self {
                Array::$variant(v)
            }
        })*
    };
}

array_from!(
    u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32, f32 => F32,
    bool => Bool, String => String, Array => Array, u64 => U64, i64 => I64, f64 => F64,
);

/// Appends the GGUF encoding of `value` (without its type id) to `out`, little-endian.
pub(crate) fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::U8(v) => out.push(*v),
        Value::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Bool(v) => out.push(u8::from(*v)),
        Value::String(s) => encode_str(s, out),
        Value::Array(a) => encode_array(a, out),
        Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
    }
}

/// A GGUF string: `u64` byte length, then the bytes.
pub(crate) fn encode_str(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn encode_array(a: &Array, out: &mut Vec<u8>) {
    out.extend_from_slice(&a.element_type().id().to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! le {
        ($v:expr) => {
            for x in $v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        Array::U8(v) => out.extend_from_slice(v),
        Array::I8(v) => le!(v),
        Array::U16(v) => le!(v),
        Array::I16(v) => le!(v),
        Array::U32(v) => le!(v),
        Array::I32(v) => le!(v),
        Array::F32(v) => le!(v),
        Array::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        Array::String(v) => v.iter().for_each(|s| encode_str(s, out)),
        Array::Array(v) => v.iter().for_each(|a| encode_array(a, out)),
        Array::U64(v) => le!(v),
        Array::I64(v) => le!(v),
        Array::F64(v) => le!(v),
    }
}
