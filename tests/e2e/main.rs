//! End-to-end tests of the built `connaudit` binary against real brokers.

mod alert_rules;
mod bad_input;
mod brokers;
mod demo_serve;
mod deploy;
mod explain;
mod faults;
mod ingest_cli;
mod pipeline;
mod transform_cli;
