//! EMQX's shape read without a JSON tree: only the fields connaudit reads are kept (each as
//! the `serde_json::Value` a full parse would hold), the others are checked as strictly as a
//! full parse checks them and skipped. No map, no key is allocated; about half the time of a
//! full parse. A payload of another shape, or one that fails, is read in full by the caller,
//! so errors and other brokers' shapes are exactly `ParsedEvent`'s; `tests/it/mutations.rs`
//! checks on seeded mutations that both readings agree.

use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde::Deserializer;
use serde_json::Value;

use crate::checked::Checked;

/// The fields of EMQX's events connaudit reads (the `events` columns and what decides the
/// type, the time and the region). Reading another from a `Known` payload is a bug.
pub const KNOWN: [&str; 17] = [
    "clientid",
    "event",
    "timestamp",
    "connected_at",
    "disconnected_at",
    "reason_code",
    "reason",
    "proto_ver",
    "proto_name",
    "username",
    "peername",
    "node",
    "keepalive",
    "clean_start",
    "expiry_interval",
    "client_attrs",
    "conn_props",
];

/// A name's place in `KNOWN`, as a match (the compiler's string switch) rather than a search.
fn index(name: &str) -> Option<usize> {
    Some(match name {
        "clientid" => 0,
        "event" => 1,
        "timestamp" => 2,
        "connected_at" => 3,
        "disconnected_at" => 4,
        "reason_code" => 5,
        "reason" => 6,
        "proto_ver" => 7,
        "proto_name" => 8,
        "username" => 9,
        "peername" => 10,
        "node" => 11,
        "keepalive" => 12,
        "clean_start" => 13,
        "expiry_interval" => 14,
        "client_attrs" => 15,
        "conn_props" => 16,
        _ => return None,
    })
}

/// The `KNOWN` fields of one payload, each the last of its name (as a JSON map keeps it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Known([Option<Value>; KNOWN.len()]);

impl Known {
    /// Reads `payload` if it is a JSON object of EMQX's shape (it has a `clientid` key) that a
    /// full parse accepts; `None` otherwise, for the caller to read in full.
    pub fn read(payload: &[u8]) -> Option<Known> {
        // A derived reader also takes a JSON array for an object; only an object is read here.
        if payload.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        // One UTF-8 check of the whole payload instead of one per string; a payload that fails
        // it is left to the full parse, which says why.
        let text = std::str::from_utf8(payload).ok()?;
        let mut de = serde_json::Deserializer::from_str(text);
        let (known, has_clientid) = de.deserialize_map(Fields).ok()?;
        de.end().ok()?;
        has_clientid.then_some(known)
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        let i = index(name);
        debug_assert!(i.is_some(), "`{name}` is not in known::KNOWN");
        self.0[i?].as_ref()
    }

    /// Moves a field's value out.
    pub fn take(&mut self, name: &str) -> Option<Value> {
        let i = index(name);
        debug_assert!(i.is_some(), "`{name}` is not in known::KNOWN");
        self.0[i?].take()
    }
}

struct Fields;

impl<'de> Visitor<'de> for Fields {
    type Value = (Known, bool);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(Known, bool), M::Error> {
        let mut known = Known::default();
        let mut has_clientid = false;
        while let Some(key) = map.next_key_seed(Key)? {
            match key {
                Some(i) => {
                    has_clientid |= i == 0;
                    known.0[i] = Some(map.next_value::<Value>()?);
                }
                None => {
                    map.next_value::<Checked>()?;
                }
            }
        }
        Ok((known, has_clientid))
    }
}

/// A key as its `KNOWN` index, without allocating it.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, s: &str) -> Result<Option<usize>, E> {
        Ok(index(s))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_index_is_each_names_place_in_the_list() {
        for (i, name) in KNOWN.iter().enumerate() {
            assert_eq!(index(name), Some(i), "{name}");
        }
        assert_eq!(index("disconn_props"), None);
    }

    #[test]
    fn keeps_the_known_fields_last_of_each_name_and_skips_the_rest() {
        let k = Known::read(
            br#"{"clientid":"a","x":{"deep":[1,2]},"reason_code":5,"clientid":"b","client_attrs":{"region":"eu"}}"#,
        )
        .unwrap();
        assert_eq!(k.get("clientid"), Some(&json!("b")));
        assert_eq!(k.get("reason_code"), Some(&json!(5)));
        assert_eq!(k.get("client_attrs"), Some(&json!({"region": "eu"})));
        assert_eq!(k.get("username"), None);
    }

    #[test]
    fn other_shapes_and_bad_json_are_left_to_the_full_parse() {
        for p in [
            &br#"{"clientId":"a","eventType":"connected"}"#[..],
            br#"[{"clientid":"a"}]"#,
            br#"{"clientid":"a","x":1e400}"#,
            br#"{"clientid":"a"} trailing"#,
            br#"{"clientid":"a","#,
        ] {
            assert_eq!(Known::read(p), None, "{}", String::from_utf8_lossy(p));
        }
    }
}
