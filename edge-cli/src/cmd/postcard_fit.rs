//! What `quantize --format postcard` can write, decided before any work: the device
//! format's reader (`arrowquant_core::device`) decodes plain group codecs and two-level
//! codecs without per-row scales (every preset), so a codec it cannot carry is refused
//! up front (exit 2), not after the whole run.

use anyhow::bail;
use arrowquant_std::{CodecChoice, Config};

/// Checks that the device format can hold the codec `config` asks for. Mixed precision
/// (`target_bpw`) chooses among the presets and plain group formats, all of which it
/// can hold.
///
/// # Errors
/// The refusal, one line naming the codec.
pub fn check(config: &Config) -> anyhow::Result<()> {
    let codec = CodecChoice::from_config(config)?;
    if crate::cmd::export::device_codec(codec.layout().kind).is_none() {
        bail!(
            "--format postcard cannot carry codec `{}`: the device format holds plain group codecs and \
             two-level codecs without per-row scales; use a preset",
            codec.id()
        );
    }
    Ok(())
}
