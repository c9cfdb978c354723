//! `serde_json::Value`s that refuse duplicate keys.
//!
//! serde_json keeps the last of two equal keys without a word, and other parsers keep the first,
//! so a signal whose `meta` says two things would be read one way here and another way
//! downstream. Serde derive already refuses a duplicate field of a struct; `meta` is a free-form
//! map, so it is read with [`map`] instead.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Reads a JSON object into a `Map`, like `Map`'s own `Deserialize`, but a duplicate key at any
/// depth is an error (`duplicate key `x``). For `#[serde(deserialize_with = "…")]`.
pub fn map<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Map<String, Value>, D::Error> {
    deserializer.deserialize_map(MapVisitor)
}

struct MapVisitor;

impl<'de> Visitor<'de> for MapVisitor {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Map::new())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key `{}`",
                    crate::envelope::cut_for_error(&key)
                )));
            }
            let value = access.next_value_seed(StrictValue)?;
            map.insert(key, value);
        }
        Ok(map)
    }
}

/// One JSON value, as `Value`'s own `Deserialize` builds it, objects through [`MapVisitor`].
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Value, A::Error> {
        MapVisitor.visit_map(access).map(Value::Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Holder {
        #[serde(deserialize_with = "map")]
        meta: Map<String, Value>,
    }

    #[test]
    fn reads_what_value_reads_and_refuses_duplicates() {
        let same = [
            r#"{"a":1,"b":-2,"c":1.5,"d":"x\n","e":null,"f":true,"g":[1,{"h":[]}],"i":{}}"#,
            r#"{"big":18446744073709551615,"neg":-9223372036854775808,"exp":1e300}"#,
            r#"{}"#,
        ];
        for meta in same {
            let strict = serde_json::from_str::<Holder>(&format!(r#"{{"meta":{meta}}}"#));
            let plain = serde_json::from_str::<Map<String, Value>>(meta);
            match (strict, plain) {
                (Ok(s), Ok(p)) => assert_eq!(s.meta, p, "{meta}"),
                (s, p) => panic!("{meta}: strict {s:?}, plain {p:?}"),
            }
        }
        for (meta, key) in [
            (r#"{"a":1,"a":1}"#, "a"),
            (r#"{"a":{"b":1,"c":{"d":1,"d":2}}}"#, "d"),
            (r#"{"a":[{"x":1},{"y":1,"y":1}]}"#, "y"),
            (r#"{"é":1,"\u00e9":2}"#, "é"),
        ] {
            match serde_json::from_str::<Holder>(&format!(r#"{{"meta":{meta}}}"#)) {
                Ok(h) => panic!("{meta}: duplicate `{key}` accepted as {:?}", h.meta),
                Err(e) => assert!(
                    e.to_string().starts_with(&format!("duplicate key `{key}`")),
                    "{meta}: {e}"
                ),
            }
        }
        assert!(serde_json::from_str::<Holder>(r#"{"meta":[]}"#).is_err());
    }
}
