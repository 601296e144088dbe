//! An event's fingerprint: what a redelivered copy shares with the original and two distinct
//! events do not. A copy (a broker's redelivery, a webhook sender's retry) carries the same
//! payload bytes as the first delivery, so the fingerprint is XXH64 of the event type and the
//! payload; XXH64 is a fixed function, so a fingerprint written today matches one computed by
//! any later version.

use twox_hash::XxHash64;

use crate::EventType;

/// XXH64 (seed 0) of the event type's name, a zero byte and the payload, as a signed 64-bit
/// integer (the `events.fingerprint` column).
pub fn fingerprint(event: EventType, payload: &[u8]) -> i64 {
    let mut hasher = XxHash64::with_seed(0);
    std::hash::Hasher::write(&mut hasher, event.as_str().as_bytes());
    std::hash::Hasher::write(&mut hasher, &[0]);
    std::hash::Hasher::write(&mut hasher, payload);
    std::hash::Hasher::finish(&hasher) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_match_and_lookalikes_do_not() {
        let a = br#"{"clientid":"c1","reason_code":0,"timestamp":1700000000000}"#;
        let b = br#"{"clientid":"c1","reason_code":5,"timestamp":1700000000000}"#;
        let copy = a.to_vec();
        assert_eq!(fingerprint(EventType::Connack, a), fingerprint(EventType::Connack, &copy));
        assert_ne!(fingerprint(EventType::Connack, a), fingerprint(EventType::Connack, b));
        assert_ne!(fingerprint(EventType::Connack, a), fingerprint(EventType::Connected, a));
        // Pinned (XXH64 of "client.connack\0{}", checked against Python's xxhash): the function
        // must never change, or a window rebuilt from the warehouse would miss older copies.
        assert_eq!(fingerprint(EventType::Connack, b"{}"), -1_335_904_435_400_640_501);
    }
}
