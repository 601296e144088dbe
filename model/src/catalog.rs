//! The reason catalog: every CONNACK and disconnect reason connaudit knows, what it means, and
//! how a raw `reason_code` or `reason` value from any broker resolves to one of them.

use std::borrow::Cow;

use serde_json::Value;

pub use crate::reason::{Category, Protocol, Reason, ReasonKind};
use crate::reasons::REASONS;

impl Reason {
    /// Every entry, CONNACK reasons first.
    pub fn all() -> &'static [Reason] {
        REASONS
    }
}

/// A raw reason after lookup. Unknown reasons keep their original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedReason {
    /// The catalog's name (borrowed), or an unknown reason's own text.
    pub name: Cow<'static, str>,
    pub code: Option<u8>,
    pub category: Category,
    pub is_failure: bool,
    /// The catalog entry, or `None` when the reason is unknown.
    pub entry: Option<&'static Reason>,
}

impl ResolvedReason {
    fn known(entry: &'static Reason) -> Self {
        ResolvedReason {
            name: Cow::Borrowed(entry.name),
            code: entry.code,
            category: entry.category,
            is_failure: entry.is_failure,
            entry: Some(entry),
        }
    }

    /// An unknown reason counts as a failure, so it shows in failure rates instead of hiding.
    fn unknown(name: String, code: Option<u8>) -> Self {
        ResolvedReason { name: Cow::Owned(name), code, category: Category::Unknown, is_failure: true, entry: None }
    }
}

/// Resolves a CONNACK `reason_code`: a name (`not_authorized`), a number (135, 5), or a number
/// in a string (`"0x87"`). `proto_ver` (3, 4 or 5) picks between the 3.1.1 and 5.0 tables
/// where both have the value.
pub fn resolve_connack(raw: &Value, proto_ver: Option<u8>) -> ResolvedReason {
    resolve(ReasonKind::Connack, raw, proto_ver)
}

/// The reason of a CONNACK that names none (an AWS `connect_failed` without
/// `connectFailureReason`, a broker's event with the field missing or null): its outcome is
/// not known, so it is not a success; it counts with the unknown reasons.
pub fn connack_without_code() -> ResolvedReason {
    ResolvedReason::unknown(NO_REASON_CODE.to_string(), None)
}

/// The reason name of [`connack_without_code`].
pub const NO_REASON_CODE: &str = "no_reason_code";

/// Resolves a disconnect `reason`: a broker's name (`keepalive_timeout`) or an MQTT 5.0
/// DISCONNECT reason code.
pub fn resolve_disconnect(raw: &Value) -> ResolvedReason {
    resolve(ReasonKind::Disconnect, raw, Some(5))
}

fn resolve(kind: ReasonKind, raw: &Value, proto_ver: Option<u8>) -> ResolvedReason {
    // A code as a JSON number (EMQX's `reason_code`) is looked up as is, not printed first.
    if let Some(code) = raw.as_u64().and_then(|c| u8::try_from(c).ok()) {
        return by_code(kind, code, proto_ver)
            .map(ResolvedReason::known)
            .unwrap_or_else(|| ResolvedReason::unknown(code.to_string(), Some(code)));
    }
    // Borrowed: only an unknown reason keeps its text.
    let text = match raw {
        Value::String(s) => Cow::Borrowed(s.trim()),
        other => Cow::Owned(other.to_string()),
    };
    match parse_code(&text) {
        Some(code) => by_code(kind, code, proto_ver)
            .map(ResolvedReason::known)
            .unwrap_or_else(|| ResolvedReason::unknown(text.into_owned(), Some(code))),
        None => by_name(kind, &text, proto_ver)
            .map(ResolvedReason::known)
            .unwrap_or_else(|| ResolvedReason::unknown(text.into_owned(), None)),
    }
}

fn parse_code(text: &str) -> Option<u8> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn preferred_protocol(kind: ReasonKind, proto_ver: Option<u8>) -> Protocol {
    match (kind, proto_ver) {
        (ReasonKind::Connack, Some(3 | 4)) => Protocol::Mqtt311,
        _ => Protocol::Mqtt5,
    }
}

fn by_code(kind: ReasonKind, code: u8, proto_ver: Option<u8>) -> Option<&'static Reason> {
    let mut candidates = REASONS.iter().filter(|r| r.kind == kind && r.code == Some(code));
    let first = candidates.next()?;
    let preferred = preferred_protocol(kind, proto_ver);
    Some(std::iter::once(first).chain(candidates).find(|r| r.protocol == preferred).unwrap_or(first))
}

fn by_name(kind: ReasonKind, text: &str, proto_ver: Option<u8>) -> Option<&'static Reason> {
    let wanted = normalize(text);
    let preferred = preferred_protocol(kind, proto_ver);
    let named = |r: &&Reason| r.kind == kind && r.name == wanted;
    let aliased = |r: &&Reason| r.kind == kind && r.aliases.contains(&&*wanted);
    let all = || REASONS.iter();
    all()
        .filter(|r| named(r) || aliased(r))
        .find(|r| r.protocol == preferred || r.protocol == Protocol::Broker)
        .or_else(|| all().find(named))
        .or_else(|| all().find(aliased))
}

/// `Not Authorized`, `not-authorized`, `NOT_AUTHORIZED` and `NotAuthorized` are one name.
/// A name already in that form (what EMQX sends) is returned as it is, not copied.
fn normalize(text: &str) -> Cow<'_, str> {
    let text = text.trim();
    if text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(rewrite(text))
}

/// `normalize` for a name not already in its form.
fn rewrite(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    let mut previous: Option<char> = None;
    for c in text.trim().chars() {
        // A capital after a small letter or digit starts a word (Azure's CamelCase).
        if c.is_ascii_uppercase() && previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit()) {
            out.push('_');
        }
        out.push(match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        });
        previous = Some(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_already_normalized_are_borrowed_and_the_rest_rewritten() {
        let names = REASONS.iter().flat_map(|r| std::iter::once(r.name).chain(r.aliases.iter().copied()));
        for name in names {
            assert!(matches!(normalize(name), Cow::Borrowed(n) if n == name), "{name}");
            assert_eq!(rewrite(name), name, "the rewrite leaves {name} as it is");
        }
        for text in [
            "  keepalive_timeout ",
            "Not Authorized",
            "not-authorized",
            "NOT_AUTHORIZED",
            "NotAuthorized",
            "x9Y",
            "é_a",
            "",
        ] {
            assert_eq!(normalize(text), rewrite(text), "{text:?}");
        }
    }

    #[test]
    fn a_code_as_a_number_resolves_as_its_text_does() {
        use serde_json::json;
        for kind in [ReasonKind::Connack, ReasonKind::Disconnect] {
            for proto_ver in [Some(4), Some(5), None] {
                for n in [json!(0), json!(5), json!(135), json!(200), json!(255), json!(256), json!(-1), json!(5.0)] {
                    let as_text = resolve(kind, &json!(n.to_string()), proto_ver);
                    assert_eq!(resolve(kind, &n, proto_ver), as_text, "{kind:?} {n} v{proto_ver:?}");
                }
            }
        }
        assert!(matches!(resolve(ReasonKind::Connack, &json!(5), Some(4)).name, Cow::Borrowed("not_authorized")));
    }
}
