//! The event model every connaudit stage shares: the three client lifecycle events a broker
//! announces, how a payload becomes one of them, and the catalog of CONNACK and disconnect reasons.

pub mod catalog;
mod checked;
mod error;
mod event;
pub mod formats;
mod known;
mod peek;
mod peer;
mod reason;
mod reasons;
mod time;

pub use catalog::{Category, Protocol, Reason, ReasonKind, ResolvedReason};
pub use error::{Error, Result};
pub use event::{EventType, ParsedEvent, TopicMap};
pub use formats::{Broker, Initiator, SourceFormats};
pub use known::KNOWN;
pub use peek::peek;
pub use peer::{ip_address, ip_text, peer_address};
pub use time::{epoch_ms, now_ms, Unit, MAX_MS, MIN_MS};
