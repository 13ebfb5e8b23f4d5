//! Workspace integration tests: public API, file formats and CLI behaviour.

mod cli;
mod core_api;
mod diffusion;
mod reliability;
mod std_adapter;
