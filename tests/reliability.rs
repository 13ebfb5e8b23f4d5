//! Reliability of the library: the NaN/infinity policy on every path of the core and
//! the std adapter ([`nonfinite`]).
//!
//! The reliability tests that run the `arrowquant` binary (the malformed-input corpus,
//! crash safety, row-group footers, foreign writers, what the fuzzers found) are the
//! CLI's own tests: `edge-cli/tests/cli/reliability.rs`.

mod integrity;
mod nonfinite;
