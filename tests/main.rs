//! Workspace integration tests: public API, file formats and CLI behaviour.

mod core_api;
mod cli;
mod std_adapter;
mod reliability;
