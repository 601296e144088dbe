//! The event model every connaudit stage shares: the three client lifecycle events a broker
//! announces, how a payload becomes one of them, and the catalog of CONNACK and disconnect reasons.

pub mod catalog;
mod error;
mod event;
mod peek;
mod reasons;

pub use catalog::{Category, Protocol, Reason, ReasonKind, ResolvedReason};
pub use error::{Error, Result};
pub use event::{EventType, ParsedEvent, TopicMap};
pub use peek::peek;
