//! The JSON of a safetensors header, read strictly: the top-level entries in order
//! with repeated names kept (so they can be reported), and no key repeated inside an
//! entry (serde_json's `Value` keeps the last of two `dtype`s without a word).

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

/// Collects a JSON object's entries in order, keeping duplicates so they can be reported.
/// Each value is read as a [`StrictValue`]: a key repeated inside an entry (`dtype`
/// twice) is an error naming the tensor, as in the `safetensors` crate, instead of the
/// last one silently winning.
pub(crate) struct Entries(pub(crate) Vec<(String, serde_json::Value)>);

/// A JSON value whose objects, at any depth, repeat no key.
struct StrictValue(serde_json::Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::{Error, SeqAccess};
        use serde_json::Value;
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrictValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E: Error>(self, v: bool) -> std::result::Result<StrictValue, E> {
                Ok(StrictValue(Value::Bool(v)))
            }
            fn visit_i64<E: Error>(self, v: i64) -> std::result::Result<StrictValue, E> {
                Ok(StrictValue(v.into()))
            }
            fn visit_u64<E: Error>(self, v: u64) -> std::result::Result<StrictValue, E> {
                Ok(StrictValue(v.into()))
            }
            fn visit_f64<E: Error>(self, v: f64) -> std::result::Result<StrictValue, E> {
                Ok(StrictValue(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)))
            }
            fn visit_str<E: Error>(self, v: &str) -> std::result::Result<StrictValue, E> {
                Ok(StrictValue(Value::String(v.to_string())))
            }
            fn visit_string<E: Error>(self, v: String) -> std::result::Result<StrictValue, E> {
                Ok(StrictValue(Value::String(v)))
            }
            fn visit_unit<E: Error>(self) -> std::result::Result<StrictValue, E> {
                Ok(StrictValue(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> std::result::Result<StrictValue, A::Error> {
                let mut v = Vec::new();
                while let Some(StrictValue(x)) = s.next_element()? {
                    v.push(x);
                }
                Ok(StrictValue(Value::Array(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> std::result::Result<StrictValue, A::Error> {
                let mut map = serde_json::Map::new();
                while let Some(k) = m.next_key::<String>()? {
                    let StrictValue(v) = m.next_value()?;
                    if map.contains_key(&k) {
                        return Err(A::Error::custom(format!("key `{k}` appears twice")));
                    }
                    map.insert(k, v);
                }
                Ok(StrictValue(Value::Object(map)))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object mapping tensor names to entries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> std::result::Result<Entries, A::Error> {
                let mut v = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    let StrictValue(val) = m
                        .next_value()
                        .map_err(|e: A::Error| serde::de::Error::custom(format!("tensor `{k}`: {e}")))?;
                    v.push((k, val));
                }
                Ok(Entries(v))
            }
        }
        d.deserialize_map(V)
    }
}
