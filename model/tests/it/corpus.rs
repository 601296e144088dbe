//! Each corpus payload gets the outcome `tests/corpus/EXPECTED` gives it, from `parse` and
//! from `peek` alike.

use std::path::PathBuf;

use connaudit_model::{peek, ParsedEvent, TopicMap};

pub fn dir() -> PathBuf {
    PathBuf::from(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()))
        .join("tests/corpus")
}

/// (file, payload, expected outcome), in EXPECTED's order.
pub fn corpus() -> Vec<(String, Vec<u8>, String)> {
    let expected = std::fs::read_to_string(dir().join("EXPECTED")).expect("tests/corpus/EXPECTED");
    expected
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace();
            let (file, outcome) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
            let payload = std::fs::read(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            (file.to_string(), payload, outcome.to_string())
        })
        .collect()
}

/// `ok:<event type>` or the error's kind.
pub fn outcome(payload: &[u8]) -> String {
    match ParsedEvent::parse(payload, None, &TopicMap::default()) {
        Ok(e) => format!("ok:{}", e.event.as_str()),
        Err(e) => e.kind().to_string(),
    }
}

#[test]
fn every_corpus_payload_gets_its_outcome() {
    let corpus = corpus();
    assert!(corpus.len() >= 20);
    let listed: Vec<&str> = corpus.iter().map(|(f, _, _)| f.as_str()).collect();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(name == "EXPECTED" || listed.contains(&name.as_str()), "{name} is not in EXPECTED");
    }
    for (file, payload, want) in &corpus {
        assert_eq!(&outcome(payload), want, "{file}");
        let peeked = match peek(payload, None, &TopicMap::default()) {
            Ok((event, _)) => format!("ok:{}", event.as_str()),
            Err(e) => e.kind().to_string(),
        };
        assert_eq!(&peeked, want, "{file}: peek");
    }
}
