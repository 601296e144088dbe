//! `connaudit simulate` (a fleet of MQTT clients as a broker reports them, with its ground
//! truth) and `connaudit demo` (the whole pipeline on embedded brokers).

mod args;
mod demo;
mod embedded;
mod error;
pub mod fleet;
mod payload;
pub mod reasons;
mod report;
mod serving;
mod simulate;
mod sink;
pub mod story;
mod truth;

pub use args::{DemoArgs, FleetArgs, SimulateArgs};
pub use demo::demo;
pub use error::{Error, Result};
pub use simulate::simulate;
pub use truth::{RegionTruth, Truth};
