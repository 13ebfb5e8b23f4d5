//! The Parquet output's page compression setting (`compression`, `--compression`,
//! `ARROW_QUANT_COMPRESSION`).

use serde::{Deserialize, Serialize};

/// Page compression of the Parquet output (readers see the same values either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// zstd level 1: the parameter and string columns shrink; packed codes barely do.
    #[default]
    Zstd,
    /// Uncompressed pages: the file size shows the payload, and no time goes to zstd.
    None,
}

impl Compression {
    /// Whether this is the default (zstd).
    pub fn is_default(&self) -> bool {
        *self == Compression::Zstd
    }

    /// Parses `zstd` or `none` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zstd" => Some(Compression::Zstd),
            "none" => Some(Compression::None),
            _ => None,
        }
    }
}
