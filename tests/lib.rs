//! Workspace integration tests: see `main.rs`.
