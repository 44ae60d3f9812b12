//! What ingress reads of a body before it is stored.
//!
//! Ingress must refuse a body that is not JSON and read a few fields (the
//! event's action, a delivery id, a handshake), but the router formats the
//! stored body later, so building a whole `Value` of an 8 KB payload at
//! ingress only to drop it cost about a fifth of the gateway's CPU. A view is one
//! validating pass over the body that keeps only the top-level fields the
//! source's descriptor reads; everything else is checked and skipped.

use std::fmt;

use chorus_core::Source;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The body as ingress reads it: the whole payload for a source whose
/// descriptor does not list what it reads (and for a body that is not a
/// JSON object), else an object of just the listed top-level fields. Every
/// byte is validated either way, by the rules of a whole parse: an error
/// means a whole parse would refuse the body too.
///
/// # Errors
/// The body is not valid UTF-8 JSON.
pub fn ingress_view(source: Source, body: &[u8]) -> serde_json::Result<Value> {
    let fields = if crate::detects(source) { None } else { crate::of(source).ingress_fields() };
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    match fields {
        Some(fields) if is_object => {
            // Skipped strings are checked for escapes, not for UTF-8.
            let text = std::str::from_utf8(body).map_err(|e| de::Error::custom(e.to_string()))?;
            let mut de = serde_json::Deserializer::from_str(text);
            let view = Kept(fields).deserialize(&mut de)?;
            de.end()?;
            Ok(view)
        }
        _ => serde_json::from_slice(body),
    }
}

/// Keeps the values of these top-level keys of an object.
struct Kept(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Kept {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Kept {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(wanted) = map.next_key_seed(Wanted(self.0))? {
            match wanted {
                // A repeated key keeps its last value, as a whole parse does.
                Some(name) => {
                    kept.insert(name.to_owned(), map.next_value::<Value>()?);
                }
                None => map.next_value_seed(Skip)?,
            }
        }
        Ok(Value::Object(kept))
    }
}

/// Reads a value and keeps nothing of it. Not serde's `IgnoredAny`:
/// serde_json skips an ignored number without converting it (so `1e999`
/// would pass where a whole parse refuses it as out of range) and an
/// ignored array or object without its depth limit. Reading each value as
/// a whole parse does keeps the two in step; strings are still borrowed
/// from the body, not copied.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

/// A key, as the listed name it matches (without allocating), if any.
struct Wanted(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Wanted {
    type Value = Option<&'static str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Wanted {
    type Value = Option<&'static str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().copied().find(|name| *name == key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_keeps_the_listed_fields_and_refuses_what_a_whole_parse_refuses() {
        let body = br#" {"action": "opened", "repository": {"name": "x", "list": [1, {"a": null}]},
                         "action": "closed", "number": 7} "#;
        let view = ingress_view(Source::Github, body).unwrap();
        assert_eq!(view, serde_json::json!({"action": "closed"}));
        // A source that lists nothing (the generic one recognises senders
        // by any field) gets the whole payload.
        let whole = ingress_view(Source::Generic, body).unwrap();
        assert_eq!(whole, serde_json::from_slice::<Value>(body).unwrap());
        // Not an object: read whole.
        assert_eq!(ingress_view(Source::Github, b"[1, 2]").unwrap(), serde_json::json!([1, 2]));

        let bad: [&[u8]; 12] = [
            b"",
            b"{",
            br#"{"action": "a"} trailing"#,
            br#"{"other": "\q"}"#,
            br#"{"other": [1, 2,]}"#,
            b"{\"other\": \"\xff\"}",
            b"{\"other\": \"\x01\"}",
            br#"{"other": 01}"#,
            br#"{"action": "a", "other": tru}"#,
            // Out of f64's range: a whole parse refuses it.
            br#"{"other": 91e3999}"#,
            br#"{"other": [{"deeper": -1e400}]}"#,
            br#"{"other": {"1e999": "key, then", "n": 2e308}}"#,
        ];
        for body in bad {
            assert!(serde_json::from_slice::<Value>(body).is_err(), "{body:?} is bad JSON");
            assert!(ingress_view(Source::Github, body).is_err(), "{body:?} must be refused");
        }
        // Small and huge numbers inside the range are taken, as a whole
        // parse takes them.
        let edge = br#"{"other": [1.7976931348623157e308, 5e-324, 1e-400, -0, 18446744073709551616]}"#;
        assert!(serde_json::from_slice::<Value>(edge).is_ok());
        assert_eq!(ingress_view(Source::Github, edge).unwrap(), serde_json::json!({}));
        // Nesting meets serde_json's limit of 128 in a skipped field as in
        // a kept one.
        let deep = |key: &str, depth: usize| {
            format!("{{\"{key}\": {}{}}}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
        };
        for key in ["other", "action"] {
            assert!(serde_json::from_slice::<Value>(&deep(key, 126)).is_ok());
            assert!(ingress_view(Source::Github, &deep(key, 126)).is_ok(), "{key}");
            assert!(serde_json::from_slice::<Value>(&deep(key, 200)).is_err());
            assert!(ingress_view(Source::Github, &deep(key, 200)).is_err(), "{key}");
        }
    }
}
