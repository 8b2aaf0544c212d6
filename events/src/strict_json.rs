//! JSON that refuses duplicate keys. serde_json keeps the last of two equal
//! keys, so `"participant":"P01","participant":"P02"` would be stored for
//! P02 without a word; an event with two values for one field is invalid.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::invalid::Invalid;

/// Why a text is not one strict JSON value.
#[derive(Debug)]
pub enum StrictError {
    /// Not JSON at all.
    Syntax(serde_json::Error),
    /// A key appears twice in one object: `field` is its path within the
    /// event (`participant`, `data.scores.pain`), `index` the event's place
    /// in a top-level array.
    Duplicate { index: Option<usize>, field: String },
}

impl StrictError {
    /// The problem report for the event at `index` (of the array, when the
    /// duplicate was found in one).
    pub fn invalid(&self, index: usize, line: Option<usize>, event_id: Option<String>) -> Invalid {
        match self {
            StrictError::Syntax(e) => Invalid::new(index, line, event_id, "", &format!("not valid JSON: {e}")),
            StrictError::Duplicate { index: at, field } => Invalid::new(
                at.unwrap_or(index),
                line,
                event_id,
                field,
                "duplicate key: a field may be given once",
            ),
        }
    }
}

/// One JSON value (an NDJSON line).
pub fn value(bytes: &[u8]) -> Result<Value, StrictError> {
    let found = RefCell::new(None);
    let seed = Seed {
        path: String::new(),
        found: &found,
    };
    parse(bytes, seed, &found)
}

/// A top-level JSON array, each element checked as an event of its own.
pub fn array(bytes: &[u8]) -> Result<Vec<Value>, StrictError> {
    let found = RefCell::new(None);
    parse(bytes, Elements { found: &found }, &found)
}

fn parse<'a, S>(
    bytes: &'a [u8],
    seed: S,
    found: &RefCell<Option<(Option<usize>, String)>>,
) -> Result<S::Value, StrictError>
where
    S: DeserializeSeed<'a>,
{
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = seed
        .deserialize(&mut deserializer)
        .and_then(|v| deserializer.end().map(|()| v));
    parsed.map_err(|e| match found.borrow_mut().take() {
        Some((index, field)) => StrictError::Duplicate { index, field },
        None => StrictError::Syntax(e),
    })
}

type Found = RefCell<Option<(Option<usize>, String)>>;

struct Seed<'a> {
    path: String,
    found: &'a Found,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
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
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Seed {
            path: format!("{}[{}]", self.path, items.len()),
            found: self.found,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if object.contains_key(&key) {
                *self.found.borrow_mut() = Some((None, path));
                return Err(A::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(Seed {
                path,
                found: self.found,
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// The elements of a top-level array, each with paths of its own.
struct Elements<'a> {
    found: &'a Found,
}

impl<'de> DeserializeSeed<'de> for Elements<'_> {
    type Value = Vec<Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Value>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
        let mut items = Vec::new();
        loop {
            let seed = Seed {
                path: String::new(),
                found: self.found,
            };
            match seq.next_element_seed(seed) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(items),
                Err(e) => {
                    if let Some((index, _)) = self.found.borrow_mut().as_mut() {
                        *index = Some(items.len());
                    }
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duplicate(text: &str) -> Option<(Option<usize>, String)> {
        let result = if text.starts_with('[') {
            array(text.as_bytes()).map(Value::Array)
        } else {
            value(text.as_bytes())
        };
        match result {
            Err(StrictError::Duplicate { index, field }) => Some((index, field)),
            _ => None,
        }
    }

    #[test]
    fn a_repeated_key_is_named_by_its_path() {
        assert_eq!(
            duplicate(r#"{"participant":"P01","participant":"P02"}"#),
            Some((None, "participant".into()))
        );
        assert_eq!(
            duplicate(r#"{"data":{"scores":{"pain":1,"pain":2}}}"#),
            Some((None, "data.scores.pain".into()))
        );
        assert_eq!(
            duplicate(r#"[{"a":1},{"b":[{"c":1,"c":1}]}]"#),
            Some((Some(1), "b[0].c".into()))
        );
    }

    #[test]
    fn equal_keys_in_different_objects_are_fine() {
        let parsed = value(br#"{"a":{"x":1},"b":{"x":[1,2.5,"s",null,true]}}"#).expect("valid");
        assert_eq!(parsed["b"]["x"][1], serde_json::json!(2.5));
        assert!(matches!(value(b"{\"a\":1} x"), Err(StrictError::Syntax(_))));
        assert!(matches!(array(b"{\"a\":1}"), Err(StrictError::Syntax(_))));
    }
}
