//! Attributes derived from the username (`--derive-attribute tenant='^([a-z]+)-'`): added to
//! an event's `attributes` unless its payload already names one so.

use std::collections::BTreeMap;

use regex::Regex;

use crate::error::{Error, Result};
use crate::row::Row;

#[derive(Debug, Default)]
pub struct Derived(Vec<(String, Regex)>);

impl Derived {
    /// Compiles the configured patterns; a bad one is a configuration error naming it.
    pub fn new(patterns: &BTreeMap<String, String>) -> Result<Self> {
        let mut out = Vec::with_capacity(patterns.len());
        for (name, pattern) in patterns {
            if name.is_empty() {
                return Err(Error::Config(format!("--derive-attribute `={pattern}` has no name; write NAME=REGEX")));
            }
            let re = Regex::new(pattern).map_err(|e| {
                Error::Config(format!("--derive-attribute {name}: `{pattern}` is not a regular expression: {e}"))
            })?;
            out.push((name.clone(), re));
        }
        Ok(Derived(out))
    }

    /// Adds the derived attributes the row's username gives.
    pub fn apply(&self, row: &mut Row) {
        let Some(username) = row.username.as_deref().filter(|_| !self.0.is_empty()) else { return };
        let found: Vec<(&str, &str)> = self
            .0
            .iter()
            .filter_map(|(name, re)| {
                let caps = re.captures(username)?;
                Some((name.as_str(), caps.get(1).or_else(|| caps.get(0))?.as_str()))
            })
            .collect();
        if found.is_empty() {
            return;
        }
        let mut attrs: BTreeMap<String, String> =
            row.attributes.as_deref().and_then(|a| serde_json::from_str(a).ok()).unwrap_or_default();
        for (name, value) in found {
            attrs.entry(name.to_string()).or_insert_with(|| value.to_string());
        }
        row.attributes = Some(serde_json::to_string(&attrs).expect("strings serialize"));
    }
}

#[cfg(test)]
mod tests {
    use connaudit_model::TopicMap;

    use super::*;
    use crate::regions::RegionMap;
    use crate::row::Origin;

    fn row(json: &str) -> Row {
        Row::parse(json.as_bytes(), &Origin::default(), &TopicMap::default(), &RegionMap::default()).unwrap()
    }

    #[test]
    fn derives_from_the_username_without_overriding_the_payload() {
        let patterns =
            BTreeMap::from([("tenant".to_string(), "^([a-z]+)-".to_string()), ("site".into(), "@(.+)$".into())]);
        let derived = Derived::new(&patterns).unwrap();
        let mut r = row(r#"{"clientid":"c","reason_code":0,"username":"acme-sensor@oslo"}"#);
        derived.apply(&mut r);
        assert_eq!(r.attributes.as_deref(), Some(r#"{"site":"oslo","tenant":"acme"}"#));
        let mut r = row(r#"{"clientid":"c","reason_code":0,"username":"acme-x","client_attrs":{"tenant":"given"}}"#);
        derived.apply(&mut r);
        assert_eq!(r.attributes.as_deref(), Some(r#"{"tenant":"given"}"#));
        let mut r = row(r#"{"clientid":"c","reason_code":0,"username":"NOMATCH"}"#);
        derived.apply(&mut r);
        assert_eq!(r.attributes, None);
        let bad = Derived::new(&BTreeMap::from([("t".to_string(), "([".to_string())])).unwrap_err().to_string();
        assert!(bad.contains("--derive-attribute t") && bad.contains("not a regular expression"), "{bad}");
    }
}
