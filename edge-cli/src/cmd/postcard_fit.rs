//! What `quantize --format postcard` can write, decided before any work: the device
//! format's reader (`arrowquant_core::device`) decodes plain group codecs only, so a
//! codec it cannot carry is refused up front (exit 2), not after the whole run.

use anyhow::bail;
use arrowquant_core::preset::LayoutKind;
use arrowquant_std::{CodecChoice, Config};

/// Fits `config` to the device format. A preset the user named (flag, environment or
/// file: `named`) that the format cannot carry, or mixed precision (whose candidates
/// include two-level presets), is an error; a profile's default quality preset gives
/// way to the plain group codec of the same width, and the returned note says so.
///
/// # Errors
/// The refusal, one line naming the preset and what to use instead.
pub fn fit(config: &mut Config, named: bool) -> anyhow::Result<Option<String>> {
    if config.target_bpw.is_some() {
        bail!(
            "--format postcard cannot take --target-bpw: mixed precision chooses two-level presets, \
             which the device format cannot hold; write Parquet, or drop --target-bpw"
        );
    }
    let codec = CodecChoice::from_config(config)?;
    if matches!(codec.layout().kind, LayoutKind::Group(_)) {
        return Ok(None);
    }
    let preset = config.preset.take().unwrap_or_default();
    if named {
        bail!(
            "--format postcard cannot carry preset `{preset}` (two-level blocks, `{}`): the device \
             format holds plain group codecs; use --preset fast, or --bits/--group-size",
            codec.id()
        );
    }
    Ok(Some(format!(
        "--format postcard: the device format holds plain group codecs, so this run uses {}-bit groups \
         of {} instead of the {} profile's `{preset}` preset",
        config.bit_width,
        config.group_size,
        config.deployment_profile.name()
    )))
}
