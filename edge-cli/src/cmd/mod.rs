//! One module per subcommand. Each `run` returns an [`Outcome`](crate::exit::Outcome)
//! or an error; printing of errors and exit codes is done once, in [`crate::exit`].

pub mod demo;
pub mod dequantize;
pub mod export;
pub mod inspect;
pub mod manual;
pub mod postcard_fit;
pub mod presets;
pub mod quantize;
pub mod quantize_gguf;
pub mod validate;
