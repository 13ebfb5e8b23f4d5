//! Which codec preset a resolved configuration names: each profile's default is the
//! quality preset of its bit width, and the user's most specific choice wins (see the
//! module docs of [`crate::config`]).

use arrowquant_core::preset::Preset;

use super::{Config, ConfigLayer};

/// The quality preset of a bit width: `int2`, `int4` or `int8` (None for other widths,
/// which validation refuses).
pub fn quality_preset(bit_width: u32) -> Option<Preset> {
    match bit_width {
        2 => Some(Preset::Int2),
        4 => Some(Preset::Int4),
        8 => Some(Preset::Int8),
        _ => None,
    }
}

impl Config {
    /// The quality preset of `bit_width`, what every profile quantizes with unless a
    /// layer names a preset or the plain group knobs.
    pub(super) fn with_preset_of_width(mut self) -> Self {
        self.preset = quality_preset(self.bit_width).map(|p| p.name().to_string());
        self
    }
}

/// Settles `c.preset` after `layers` were applied: a ggml type name is recorded as the
/// preset it stands for; a named preset stays; the plain group knobs (`group_size`,
/// `scheme`) give the plain group codec; otherwise the quality preset of the width.
pub(super) fn settle(c: &mut Config, layers: &[ConfigLayer]) {
    if let Some(p) = c.preset.as_deref().filter(|p| Preset::from_name(p).is_none())
        && let Some(alias) = Preset::from_ggml_name(p)
    {
        c.preset = Some(alias.name().to_string());
    }
    if layers.iter().all(|l| l.preset.is_none()) {
        if layers.iter().any(|l| l.group_size.is_some() || l.scheme.is_some()) {
            c.preset = None;
        } else {
            c.preset = quality_preset(c.bit_width).map(|p| p.name().to_string());
        }
    }
}
