//! Seeded mutations of the corpus, the ways payloads really break (cut off, bytes flipped or
//! lost, a field of another type, a key twice, deep nesting, other time units): the parser
//! never panics, names every failure with one of its kinds, agrees with `peek` on the outcome
//! and the client id and with a full parse (`parse_in_full`) on every field it reads, and every
//! event it accepts has a client id and plausible times.
//! `CONNAUDIT_MUTATIONS` sets how many (default 20,000; the seed is printed on failure).

use connaudit_model::{peek, Error, ParsedEvent, TopicMap, KNOWN, MAX_MS, MIN_MS};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::corpus::corpus;

fn mutate(rng: &mut ChaCha8Rng, payload: &[u8]) -> Vec<u8> {
    let mut p = payload.to_vec();
    let at = |rng: &mut ChaCha8Rng, p: &[u8]| rng.random_range(0..=p.len());
    match rng.random_range(0..9) {
        0 => p.truncate(at(rng, &p)),
        1 if !p.is_empty() => {
            let i = rng.random_range(0..p.len());
            p[i] = rng.random();
        }
        2 if !p.is_empty() => {
            p.remove(rng.random_range(0..p.len()));
        }
        3 => {
            let i = at(rng, &p);
            let b = *b"{}[]\",:0\\".get(rng.random_range(0..9)).unwrap_or(&b'x');
            p.insert(i, b);
        }
        4 => return retype(rng, &p).unwrap_or(p),
        5 if p.first() == Some(&b'{') => {
            // A key twice: brokers' templates sometimes repeat one.
            let key = ["clientid", "event", "timestamp", "reason_code"][rng.random_range(0..4)];
            let value = [r#""dup""#, "7", "null", r#"{"a":1}"#][rng.random_range(0..4)];
            p.splice(1..1, format!(r#""{key}":{value},"#).into_bytes());
        }
        6 => {
            let depth = rng.random_range(1..400);
            p = format!("{}{}{}", "[".repeat(depth), String::from_utf8_lossy(&p), "]".repeat(depth)).into_bytes();
        }
        7 => return retime(rng, &p).unwrap_or(p),
        _ => p.extend_from_slice(b" trailing"),
    }
    p
}

/// One field of the object replaced by a value of another JSON type.
fn retype(rng: &mut ChaCha8Rng, payload: &[u8]) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(payload).ok()?;
    let map = v.as_object_mut()?;
    let key = map.keys().nth(rng.random_range(0..map.len().max(1)))?.clone();
    let other = [json!(null), json!(true), json!(-1), json!(1.5e300), json!("12"), json!([1]), json!({"k": "v"})];
    map.insert(key, other[rng.random_range(0..other.len())].clone());
    serde_json::to_vec(&v).ok()
}

/// The times in another unit (seconds, microseconds, nanoseconds) or as text.
fn retime(rng: &mut ChaCha8Rng, payload: &[u8]) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(payload).ok()?;
    let map = v.as_object_mut()?;
    for key in ["timestamp", "connected_at", "disconnected_at"] {
        if let Some(ms) = map.get(key).and_then(Value::as_i64) {
            let new = match rng.random_range(0..4) {
                0 => json!(ms / 1000),
                1 => json!(ms.saturating_mul(1000)),
                2 => json!(ms.saturating_mul(1_000_000)),
                _ => json!(ms.to_string()),
            };
            map.insert(key.to_string(), new);
        }
    }
    serde_json::to_vec(&v).ok()
}

/// `parse` (EMQX's shape read without a JSON tree) and `parse_in_full` give the same event, or
/// the same error.
fn agree(
    lean: &connaudit_model::Result<ParsedEvent>,
    full: &connaudit_model::Result<ParsedEvent>,
    context: &dyn Fn() -> String,
) {
    match (lean, full) {
        (Ok(a), Ok(b)) => {
            assert_eq!((a.event, &a.clientid, a.broker), (b.event, &b.clientid, b.broker), "{}", context());
            assert_eq!((a.reason(), a.initiator()), (b.reason(), b.initiator()), "{}", context());
            for name in KNOWN {
                assert_eq!(a.field(name), b.field(name), "{name}: {}", context());
            }
            for name in ["timestamp", "connected_at", "disconnected_at"] {
                assert_eq!(a.time_field(name), b.time_field(name), "{name}: {}", context());
            }
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{}", context()),
        _ => panic!("parse says {lean:?}, parse_in_full says {full:?} on {}", context()),
    }
}

#[test]
fn mutated_payloads_never_panic_and_parse_agrees_with_peek_and_a_full_parse() {
    let runs: u64 = std::env::var("CONNAUDIT_MUTATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let seed: u64 = std::env::var("CONNAUDIT_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or(0x5eed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let corpus = corpus();
    let topics = TopicMap::default();
    let (mut accepted, mut kinds) = (0, std::collections::BTreeMap::<&str, u64>::new());
    for run in 0..runs {
        let (file, original, _) = &corpus[rng.random_range(0..corpus.len())];
        let mut payload = mutate(&mut rng, original);
        if rng.random_bool(0.3) {
            payload = mutate(&mut rng, &payload);
        }
        let context = || format!("run {run} (seed {seed}) from {file}: {}", String::from_utf8_lossy(&payload));
        let parsed = std::panic::catch_unwind(|| ParsedEvent::parse(&payload, None, &topics))
            .unwrap_or_else(|_| panic!("parse panicked on {}", context()));
        let peeked = std::panic::catch_unwind(|| peek(&payload, None, &topics))
            .unwrap_or_else(|_| panic!("peek panicked on {}", context()));
        let in_full = ParsedEvent::parse_in_full(&payload, None, None, &topics);
        agree(&parsed, &in_full, &context);
        match (&parsed, &peeked) {
            (Ok(e), Ok((event, clientid))) => {
                assert_eq!((&e.event, &e.clientid), (event, clientid), "{}", context());
                assert!(!e.clientid.is_empty(), "{}", context());
                for field in ["timestamp", "connected_at", "disconnected_at"] {
                    if let Some((ms, _)) = e.time_field(field) {
                        assert!((MIN_MS..=MAX_MS).contains(&ms), "{field} {ms}: {}", context());
                    }
                }
                accepted += 1;
            }
            (Err(a), Err(b)) => {
                assert_eq!(a.kind(), b.kind(), "{}", context());
                assert!(Error::KINDS.contains(&a.kind()));
                *kinds.entry(a.kind()).or_default() += 1;
            }
            _ => panic!("parse says {parsed:?}, peek says {peeked:?} on {}", context()),
        }
    }
    // The mutations reach every kind of failure and still leave valid events.
    assert!(accepted > runs / 20, "{accepted} accepted of {runs}");
    // Every kind but `wrong_format`, which only a topic's `--source-format` gives.
    for kind in Error::KINDS.into_iter().filter(|k| *k != "wrong_format") {
        assert!(kinds.get(kind).copied().unwrap_or(0) > 0, "no mutation gave {kind}: {kinds:?}");
    }
}
