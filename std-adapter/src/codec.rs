//! Which block codec quantizes the tensors, how it is named in files, and how a
//! reader rebuilds it from a row.
//!
//! The pipeline is generic over [`BlockCodec`]; [`CodecChoice`] is the closed set the
//! adapter can write and read back. Each choice has a stable string id stored in the
//! `codec` column, plus its bits, block length and scheme, so a reader can decode a
//! row without the configuration.

use arrowquant_core::{Bits, BlockCodec, GroupCodec, GroupFormat, Input, QuantError};

use crate::config::{Config, ConfigError, SchemeName};

/// The `codec` column value of min-max group quantization ([`GroupCodec`]).
pub const GROUP_CODEC_ID: &str = "group";
/// The `codec` column value of tensors stored unquantized (raw little-endian bytes).
pub const RAW_CODEC_ID: &str = "raw";

/// A codec the adapter can write and read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecChoice {
    /// Min-max group quantization (layout in `arrowquant_core::format`).
    Group(GroupCodec),
}

impl CodecChoice {
    /// The codec a configuration asks for: its preset if set, else the group format of
    /// `bit_width`, `group_size` and `scheme`.
    ///
    /// # Errors
    /// Invalid knobs or an unknown preset.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        if let Some(p) = &config.preset {
            return Self::from_preset(p, config);
        }
        let bits =
            u8::try_from(config.bit_width).map_err(|_| ConfigError::InvalidBitWidth(config.bit_width))?;
        let f = GroupFormat::new(bits, config.group_size, config.scheme.to_core()).map_err(|e| match e {
            QuantError::InvalidGroupSize(g) => ConfigError::InvalidGroupSize(g),
            _ => ConfigError::InvalidBitWidth(config.bit_width),
        })?;
        Ok(CodecChoice::Group(GroupCodec::new(f)))
    }

    /// The codec of a named preset.
    ///
    /// # Errors
    /// [`ConfigError::UnknownPreset`] listing the known names.
    pub fn from_preset(name: &str, _config: &Config) -> Result<Self, ConfigError> {
        Err(ConfigError::UnknownPreset { name: name.to_string(), allowed: preset_names().join(", ") })
    }

    /// Rebuilds the codec of a stored row.
    ///
    /// # Errors
    /// A description of what is not recognised.
    pub fn from_stored(codec: &str, bits: u32, block_len: usize, scheme: &str) -> Result<Self, String> {
        match codec {
            GROUP_CODEC_ID => {
                let scheme = match scheme {
                    "asymmetric" => SchemeName::Asymmetric,
                    "symmetric" => SchemeName::Symmetric,
                    other => return Err(format!("unknown scheme `{other}`")),
                };
                let bits = u8::try_from(bits).map_err(|_| format!("invalid bit width {bits}"))?;
                let f = GroupFormat::new(bits, block_len, scheme.to_core()).map_err(|e| e.to_string())?;
                Ok(CodecChoice::Group(GroupCodec::new(f)))
            }
            other => Err(format!("unknown codec `{other}`")),
        }
    }

    /// The stable id stored in the `codec` column.
    pub fn id(&self) -> &'static str {
        match self {
            CodecChoice::Group(_) => GROUP_CODEC_ID,
        }
    }

    /// Code width in bits.
    pub fn bits(&self) -> u32 {
        match self {
            CodecChoice::Group(g) => g.format().bits.get(),
        }
    }

    /// The scheme name stored in the `scheme` column.
    pub fn scheme_name(&self) -> &'static str {
        match self {
            CodecChoice::Group(g) => match g.format().scheme {
                arrowquant_core::Scheme::Asymmetric => "asymmetric",
                arrowquant_core::Scheme::Symmetric => "symmetric",
            },
        }
    }

    /// The same codec at the next wider bit width (2 -> 4 -> 8), for quality fallback.
    pub fn wider(&self) -> Option<Self> {
        match self {
            CodecChoice::Group(g) => {
                let f = g.format();
                let bits = f.bits.wider()?;
                Some(CodecChoice::Group(
                    GroupCodec::with_backend(GroupFormat { bits, ..f }, g.backend()).ok()?,
                ))
            }
        }
    }

    /// The code width as the core type.
    pub fn core_bits(&self) -> Bits {
        match self {
            CodecChoice::Group(g) => g.format().bits,
        }
    }
}

/// Names accepted by `preset` in this build.
pub fn preset_names() -> Vec<&'static str> {
    Vec::new()
}

impl BlockCodec for CodecChoice {
    fn block_len(&self) -> usize {
        match self {
            CodecChoice::Group(g) => g.block_len(),
        }
    }

    fn codes_len(&self) -> usize {
        match self {
            CodecChoice::Group(g) => g.codes_len(),
        }
    }

    fn params_len(&self) -> usize {
        match self {
            CodecChoice::Group(g) => g.params_len(),
        }
    }

    fn encode(
        &self,
        input: Input<'_>,
        first_element: u64,
        codes: &mut [u8],
        params: &mut [u8],
    ) -> Result<(), QuantError> {
        match self {
            CodecChoice::Group(g) => g.encode(input, first_element, codes, params),
        }
    }

    fn decode(&self, codes: &[u8], params: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
        match self {
            CodecChoice::Group(g) => g.decode(codes, params, out),
        }
    }
}
