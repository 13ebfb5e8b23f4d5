//! Workspace integration tests: the public API and the file formats (the CLI's
//! behaviour is tested in `edge-cli/tests`). Shared fixtures: `lib.rs`.

mod core_api;
mod diffusion;
mod reliability;
mod std_adapter;
