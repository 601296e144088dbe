//! The event parser against bad input: a corpus of real-world shapes with the outcome each
//! must get (in `tests/corpus`, listed in `EXPECTED`), and seeded mutations of it on which the
//! parser never panics, names every error with a known kind, and agrees with ingest's `peek`.

mod corpus;
mod formats;
mod mutations;
