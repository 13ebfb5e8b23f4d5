//! Which block codec quantizes the tensors, how it is named in files, and how a
//! reader rebuilds it from a row.
//!
//! The pipeline is generic over `BlockCodec`; [`CodecChoice`] wraps the core's
//! [`AnyCodec`] (plain group formats and the named [`Preset`]s) with the preset name,
//! if any. Files store the codec's *layout id* (`g4a128`, `k4b256s32c6m6o0`, see
//! `arrowquant_core::preset`) in the `codec` column, which is all a reader needs to
//! decode a row: search settings change how codes are chosen, not how they decode.

use arrowquant_core::preset::{AnyCodec, LayoutKind, Preset};
use arrowquant_core::{GroupCodec, GroupFormat, QuantError, Scheme};

use crate::config::{Config, ConfigError};

/// The `codec` column value of tensors stored unquantized (raw little-endian bytes).
pub const RAW_CODEC_ID: &str = "raw";

/// A codec the adapter can write and read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CodecChoice {
    codec: AnyCodec,
    preset: Option<Preset>,
}

impl CodecChoice {
    /// The codec a configuration asks for: its preset if set, else the group format of
    /// `bit_width`, `group_size` and `scheme`.
    ///
    /// # Errors
    /// Invalid knobs or an unknown preset.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        if let Some(p) = &config.preset {
            return Self::from_preset(p);
        }
        let bits =
            u8::try_from(config.bit_width).map_err(|_| ConfigError::InvalidBitWidth(config.bit_width))?;
        let f = GroupFormat::new(bits, config.group_size, config.scheme.to_core()).map_err(|e| match e {
            QuantError::InvalidGroupSize(g) => ConfigError::InvalidGroupSize(g),
            _ => ConfigError::InvalidBitWidth(config.bit_width),
        })?;
        Ok(CodecChoice { codec: AnyCodec::Group(GroupCodec::new(f)), preset: None })
    }

    /// The codec of a named preset (`fast`, `int2`, `int4`, ...) or of a ggml type name
    /// standing for one (`Q4_K_M` -> `int4`, [`Preset::from_ggml_name`]).
    ///
    /// # Errors
    /// [`ConfigError::UnknownPreset`] listing the known names.
    pub fn from_preset(name: &str) -> Result<Self, ConfigError> {
        let p = preset_by_name(name).ok_or_else(|| ConfigError::UnknownPreset {
            name: name.to_string(),
            allowed: preset_names().join(", "),
        })?;
        Ok(CodecChoice { codec: p.codec(), preset: Some(p) })
    }

    /// The plain (min-max) group codec of a format.
    pub fn from_format(format: GroupFormat) -> Self {
        CodecChoice { codec: AnyCodec::Group(GroupCodec::new(format)), preset: None }
    }

    /// Rebuilds a decoder from a stored layout id.
    ///
    /// # Errors
    /// A description of what is not recognised.
    pub fn from_stored(layout_id: &str) -> Result<Self, String> {
        AnyCodec::from_layout_id(layout_id, None)
            .map(|codec| CodecChoice { codec, preset: None })
            .ok_or_else(|| format!("unknown or unsupported codec layout `{layout_id}`"))
    }

    /// The core codec.
    pub fn codec(&self) -> &AnyCodec {
        &self.codec
    }

    /// The preset, if the codec came from one.
    pub fn preset(&self) -> Option<Preset> {
        self.preset
    }

    /// The layout id stored in the `codec` column (`g4a128`, `k4b256s32c6m6o0`, ...).
    pub fn id(&self) -> String {
        self.codec.layout().to_string()
    }

    /// Code width in bits.
    pub fn bits(&self) -> u32 {
        self.codec.layout().bits
    }

    /// The group scheme (`asymmetric`/`symmetric`) for group layouts, None otherwise.
    pub fn scheme_name(&self) -> Option<&'static str> {
        match self.codec.layout().kind {
            LayoutKind::Group(g) => Some(match g.scheme {
                Scheme::Asymmetric => "asymmetric",
                Scheme::Symmetric => "symmetric",
            }),
            _ => None,
        }
    }

    /// The same kind of codec at the next wider width, for quality fallback:
    /// group formats 2 -> 4 -> 8 bits; presets `int2` -> `int4` -> `int8`,
    /// `int2-fine` -> `int4-fine` -> `int8`, `fast` -> 8-bit groups of 128.
    pub fn wider(&self) -> Option<Self> {
        if let Some(p) = self.preset {
            let next = match p {
                Preset::Int2 => Preset::Int4,
                Preset::Int2Fine => Preset::Int4Fine,
                Preset::Int4 | Preset::Int4Fine => Preset::Int8,
                Preset::Fast => {
                    let f = GroupFormat::new(8, 128, Scheme::Asymmetric).ok()?;
                    return Some(CodecChoice { codec: AnyCodec::Group(GroupCodec::new(f)), preset: None });
                }
                Preset::Int8 => return None,
            };
            return Some(CodecChoice { codec: next.codec(), preset: Some(next) });
        }
        match self.codec {
            AnyCodec::Group(g) => {
                let f = g.format();
                let bits = f.bits.wider()?;
                let g = GroupCodec::with_backend(GroupFormat { bits, ..f }, g.backend()).ok()?;
                Some(CodecChoice { codec: AnyCodec::Group(g), preset: None })
            }
            _ => None,
        }
    }
}

/// The preset a `preset` value names: its own name, or a ggml type name standing for one.
pub fn preset_by_name(name: &str) -> Option<Preset> {
    Preset::from_name(name).or_else(|| Preset::from_ggml_name(name))
}

/// Names accepted by `preset`.
pub fn preset_names() -> Vec<&'static str> {
    Preset::ALL.iter().map(|p| p.name()).collect()
}

/// A choice is used as its codec: `choice.block_len()`, `choice.encode(..)` are the
/// core's [`AnyCodec`] methods (no forwarding layer), and generic code takes
/// [`CodecChoice::codec`].
impl std::ops::Deref for CodecChoice {
    type Target = AnyCodec;

    fn deref(&self) -> &AnyCodec {
        &self.codec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrowquant_core::BlockCodec;

    #[test]
    fn ids_round_trip_and_fallback_widens() {
        let plain = Config { preset: None, ..Config::default() };
        let c = CodecChoice::from_config(&plain).unwrap();
        assert_eq!(c.id(), "g4a128");
        assert_eq!(CodecChoice::from_stored(&c.id()).unwrap().codec(), c.codec());
        assert_eq!(c.wider().unwrap().id(), "g8a128");
        assert!(c.wider().unwrap().wider().is_none());
        for name in preset_names() {
            let p = CodecChoice::from_preset(name).unwrap();
            let back = CodecChoice::from_stored(&p.id()).unwrap();
            assert_eq!(
                (back.block_len(), back.codes_len(), back.params_len()),
                (p.block_len(), p.codes_len(), p.params_len())
            );
        }
        let p = CodecChoice::from_preset("int2").unwrap();
        assert_eq!((p.bits(), p.wider().unwrap().bits()), (2, 4));
        assert!(matches!(CodecChoice::from_preset("int3"), Err(ConfigError::UnknownPreset { .. })));
        assert_eq!(CodecChoice::from_preset("Q4_K_M").unwrap().preset(), Some(Preset::Int4));
    }
}
