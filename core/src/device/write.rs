//! The writers: one record into a caller's buffer (no `alloc`) or appended to a `Vec`.

use super::crc::{CRC_INIT, crc32};
use super::header::check_header;
use super::{CRC_LEN, DeviceCodec, DeviceError, DeviceHeader, MAGIC, Shape, VERSION};
use crate::QuantError;

/// Builds and checks the header of a record for `codes` and `params`.
fn header_for<'n>(
    name: &'n str,
    shape: &[u64],
    format: impl Into<DeviceCodec>,
    codes: &[u8],
    params: &[u8],
) -> Result<DeviceHeader<'n>, DeviceError> {
    let format: DeviceCodec = format.into();
    let shape = Shape::new(shape)?;
    let elements = shape.elements().ok_or(DeviceError::TooLarge)?;
    let header = DeviceHeader {
        magic: MAGIC,
        version: VERSION,
        name,
        shape,
        elements,
        codec: format.desc(),
        codes_len: format.codes_len() as u32,
        params_len: format.params_len() as u32,
        blocks: elements.div_ceil(format.block_len() as u64),
    };
    let layout = check_header(&header, format)?;
    let (want_codes, want_params) = (layout.groups * format.codes_len(), layout.groups * format.params_len());
    if codes.len() != want_codes {
        return Err(QuantError::LengthMismatch { expected: want_codes, actual: codes.len() }.into());
    }
    if params.len() != want_params {
        return Err(QuantError::LengthMismatch { expected: want_params, actual: params.len() }.into());
    }
    Ok(header)
}

/// Bytes of the record [`write_tensor_into`] writes for a tensor of this name, shape
/// and format.
///
/// # Errors
/// [`DeviceError::RankTooLarge`] or [`DeviceError::TooLarge`].
pub fn encoded_len(name: &str, shape: &[u64], format: impl Into<DeviceCodec>) -> Result<usize, DeviceError> {
    let format: DeviceCodec = format.into();
    let shape = Shape::new(shape)?;
    let elements = shape.elements().ok_or(DeviceError::TooLarge)?;
    let groups =
        usize::try_from(elements.div_ceil(format.block_len() as u64)).map_err(|_| DeviceError::TooLarge)?;
    let header = DeviceHeader {
        magic: MAGIC,
        version: VERSION,
        name,
        shape,
        elements,
        codec: format.desc(),
        codes_len: format.codes_len() as u32,
        params_len: format.params_len() as u32,
        blocks: groups as u64,
    };
    let header_len = postcard::serialize_with_flavor(&header, postcard::ser_flavors::Size::default())
        .map_err(|_| DeviceError::BadHeader)?;
    groups
        .checked_mul(format.codes_len() + format.params_len())
        .and_then(|p| p.checked_add(header_len + CRC_LEN))
        .ok_or(DeviceError::TooLarge)
}

/// Writes one tensor record into `buf` without `alloc` and returns its length.
///
/// `shape` is the tensor's shape (its product is the element count), `codes` and
/// `params` the packed blocks as [`crate::quantize`] or a sink produce them: exactly
/// `ceil(elements / group)` blocks, the last one padded if the group does not divide
/// the element count.
///
/// # Errors
/// [`QuantError::LengthMismatch`] for `codes`/`params` of the wrong length,
/// [`DeviceError::RankTooLarge`], and [`DeviceError::Truncated`] if `buf` is too small.
pub fn write_tensor_into(
    buf: &mut [u8],
    name: &str,
    shape: &[u64],
    format: impl Into<DeviceCodec>,
    codes: &[u8],
    params: &[u8],
) -> Result<usize, DeviceError> {
    let format: DeviceCodec = format.into();
    let header = header_for(name, shape, format, codes, params)?;
    let needed = encoded_len(name, shape, format)?;
    if buf.len() < needed {
        return Err(DeviceError::Truncated { needed: needed as u64, available: buf.len() as u64 });
    }
    let header_len = postcard::to_slice(&header, buf).map_err(|_| DeviceError::BadHeader)?.len();
    let mut at = header_len;
    for part in [codes, params] {
        buf[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    let crc = crc32(CRC_INIT, &buf[..at]) ^ CRC_INIT;
    buf[at..at + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(at + CRC_LEN)
}

/// Appends one tensor record to `out` (a device file being built).
///
/// # Errors
/// As [`write_tensor_into`], except that the buffer grows.
#[cfg(feature = "alloc")]
pub fn append_tensor(
    out: &mut alloc::vec::Vec<u8>,
    name: &str,
    shape: &[u64],
    format: impl Into<DeviceCodec>,
    codes: &[u8],
    params: &[u8],
) -> Result<(), DeviceError> {
    let format: DeviceCodec = format.into();
    let start = out.len();
    let len = encoded_len(name, shape, format)?;
    out.resize(start + len, 0);
    match write_tensor_into(&mut out[start..], name, shape, format, codes, params) {
        Ok(written) => {
            debug_assert_eq!(written, len);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// A device file holding one tensor record.
///
/// # Errors
/// As [`write_tensor_into`].
#[cfg(feature = "alloc")]
pub fn write_tensor(
    name: &str,
    shape: &[u64],
    format: impl Into<DeviceCodec>,
    codes: &[u8],
    params: &[u8],
) -> Result<alloc::vec::Vec<u8>, DeviceError> {
    let format: DeviceCodec = format.into();
    let mut out = alloc::vec::Vec::new();
    append_tensor(&mut out, name, shape, format, codes, params)?;
    Ok(out)
}
