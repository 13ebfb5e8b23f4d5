//! The zero-copy reader: validates a record in place and decodes it group by group.

use super::crc::{CRC_INIT, crc32};
use super::header::{Prefix, check_header};
use super::{CRC_LEN, DeviceCodec, DeviceError, DeviceHeader, MAGIC, RawDtype, VERSION};
use crate::codec::{BlockCodec, GroupCodec};
use crate::format::{GroupFormat, GroupSize};
use crate::kquant::{MAX_BLOCK, TwoLevelCodec};
use crate::preset::AnyCodec;
use crate::search::SearchConfig;
use crate::{Backend, QuantError};

/// Largest block of any device codec: the stack buffer of a padded last block.
const MAX_BLOCK_LEN: usize = if GroupSize::MAX > MAX_BLOCK { GroupSize::MAX } else { MAX_BLOCK };

/// A validated tensor record borrowed from a device file.
#[derive(Clone, Copy, Debug)]
pub struct DeviceTensor<'a> {
    header: DeviceHeader<'a>,
    device_codec: DeviceCodec,
    /// The block decoder; None for raw records.
    codec: Option<AnyCodec>,
    elements: usize,
    groups: usize,
    codes: &'a [u8],
    params: &'a [u8],
}

impl<'a> DeviceTensor<'a> {
    /// Validates the record at the start of `bytes` and returns it with the bytes
    /// that follow it (the next record, if any).
    ///
    /// # Errors
    /// Any [`DeviceError`] describing what is wrong; never panics, whatever `bytes` hold.
    pub fn parse(bytes: &'a [u8]) -> Result<(Self, &'a [u8]), DeviceError> {
        if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(DeviceError::BadMagic);
        }
        let (prefix, _) = postcard::take_from_bytes::<Prefix>(bytes).map_err(|_| DeviceError::BadHeader)?;
        debug_assert_eq!(prefix.magic, MAGIC);
        if prefix.version != VERSION {
            return Err(DeviceError::UnsupportedVersion(prefix.version));
        }
        let (header, body) =
            postcard::take_from_bytes::<DeviceHeader<'a>>(bytes).map_err(|_| DeviceError::BadHeader)?;
        let format = header.codec.codec()?;
        let layout = check_header(&header, format)?;

        let header_len = bytes.len() - body.len();
        let needed = (header_len as u64)
            .checked_add(layout.payload_len)
            .and_then(|n| n.checked_add(CRC_LEN as u64))
            .ok_or(DeviceError::TooLarge)?;
        if (bytes.len() as u64) < needed {
            return Err(DeviceError::Truncated { needed, available: bytes.len() as u64 });
        }
        // `needed <= bytes.len()`, so every length below fits in usize.
        let record_end = needed as usize;
        let crc_at = record_end - CRC_LEN;
        let mut stored = [0u8; CRC_LEN];
        stored.copy_from_slice(&bytes[crc_at..record_end]);
        let stored = u32::from_le_bytes(stored);
        let computed = crc32(CRC_INIT, &bytes[..crc_at]) ^ CRC_INIT;
        if stored != computed {
            return Err(DeviceError::ChecksumMismatch { stored, computed });
        }

        let codes_total = layout.groups * format.codes_len();
        // Decoding never searches: the search knobs only matter to an encoder.
        let codec = match format {
            DeviceCodec::Group(f) => Some(AnyCodec::Group(GroupCodec::new(f))),
            DeviceCodec::TwoLevel(f) => Some(AnyCodec::TwoLevel(TwoLevelCodec::new(f, SearchConfig::FAST))),
            DeviceCodec::Raw(_) => None,
        };
        let codes = &bytes[header_len..header_len + codes_total];
        let params = &bytes[header_len + codes_total..crc_at];
        let tensor = DeviceTensor {
            header,
            device_codec: format,
            codec,
            elements: layout.elements,
            groups: layout.groups,
            codes,
            params,
        };
        Ok((tensor, &bytes[record_end..]))
    }

    /// The decoded header.
    pub fn header(&self) -> &DeviceHeader<'a> {
        &self.header
    }

    /// The tensor name.
    pub fn name(&self) -> &'a str {
        self.header.name
    }

    /// The tensor shape, outermost dimension first.
    pub fn shape(&self) -> &[u64] {
        self.header.shape.dims()
    }

    /// Real elements in the tensor.
    pub fn len(&self) -> usize {
        self.elements
    }

    /// True for a tensor without elements.
    pub fn is_empty(&self) -> bool {
        self.elements == 0
    }

    /// The codec of the blocks.
    pub fn codec(&self) -> DeviceCodec {
        self.device_codec
    }

    /// The group format of the blocks, None for two-level blocks.
    pub fn format(&self) -> Option<GroupFormat> {
        match self.device_codec {
            DeviceCodec::Group(f) => Some(f),
            DeviceCodec::TwoLevel(_) | DeviceCodec::Raw(_) => None,
        }
    }

    /// The element type of a raw (unquantized) record, None for quantized ones.
    pub fn raw_dtype(&self) -> Option<RawDtype> {
        match self.device_codec {
            DeviceCodec::Raw(d) => Some(d),
            _ => None,
        }
    }

    /// Decodes `blocks` of codes and params into `out` (whole blocks).
    fn decode(&self, codes: &[u8], params: &[u8], out: &mut [f32]) -> Result<(), DeviceError> {
        match (self.codec, self.device_codec) {
            (Some(c), _) => Ok(c.decode(codes, params, out)?),
            (None, DeviceCodec::Raw(d)) => {
                for (o, b) in out.iter_mut().zip(codes.chunks_exact(d.size())) {
                    *o = d.to_f32(b).ok_or(DeviceError::NotFloat(d.name()))?;
                }
                Ok(())
            }
            (None, _) => Err(DeviceError::BadHeader),
        }
    }

    /// Code width in bits.
    pub fn bits(&self) -> u8 {
        self.device_codec.bits()
    }

    /// The kernel backend that decodes: the fastest of this CPU for group blocks; the
    /// portable decoder of [`crate::kquant`] for two-level blocks.
    pub fn backend(&self) -> Backend {
        match self.codec {
            Some(AnyCodec::Group(g)) => g.backend(),
            _ => Backend::Scalar,
        }
    }

    /// Elements per group.
    pub fn group_len(&self) -> usize {
        self.device_codec.block_len()
    }

    /// Number of groups (blocks), the last one possibly padded.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// The packed codes of every group (borrowed from the file).
    pub fn codes(&self) -> &'a [u8] {
        self.codes
    }

    /// The parameters of every group (borrowed from the file).
    pub fn params(&self) -> &'a [u8] {
        self.params
    }

    /// Dequantizes group `group` into `out` (exactly [`group_len`](Self::group_len)
    /// values) and returns how many of them are real elements: `group_len` except for a
    /// padded last group.
    ///
    /// # Errors
    /// [`DeviceError::GroupOutOfRange`], [`QuantError::LengthMismatch`] for a wrong
    /// `out` length, [`QuantError::Corrupt`] for non-finite parameters.
    pub fn dequantize_group(&self, group: usize, out: &mut [f32]) -> Result<usize, DeviceError> {
        if group >= self.groups {
            return Err(DeviceError::GroupOutOfRange { group, groups: self.groups });
        }
        let (g, cl, pl) = (self.group_len(), self.device_codec.codes_len(), self.device_codec.params_len());
        if out.len() != g {
            return Err(QuantError::LengthMismatch { expected: g, actual: out.len() }.into());
        }
        let codes = &self.codes[group * cl..(group + 1) * cl];
        let params = &self.params[group * pl..(group + 1) * pl];
        self.decode(codes, params, out)?;
        Ok(g.min(self.elements - group * g))
    }

    /// Dequantizes the whole tensor into `out` (exactly [`len`](Self::len) values).
    ///
    /// # Errors
    /// [`QuantError::LengthMismatch`] for a wrong `out` length, [`QuantError::Corrupt`]
    /// for non-finite parameters.
    pub fn dequantize_into(&self, out: &mut [f32]) -> Result<(), DeviceError> {
        if out.len() != self.elements {
            return Err(QuantError::LengthMismatch { expected: self.elements, actual: out.len() }.into());
        }
        let (g, cl, pl) = (self.group_len(), self.device_codec.codes_len(), self.device_codec.params_len());
        let full = self.elements / g;
        // Whole groups in one call: one kernel dispatch for the buffer.
        self.decode(&self.codes[..full * cl], &self.params[..full * pl], &mut out[..full * g])?;
        let rest = self.elements - full * g;
        if rest > 0 {
            let mut last = [0f32; MAX_BLOCK_LEN];
            self.dequantize_group(full, &mut last[..g])?;
            out[full * g..].copy_from_slice(&last[..rest]);
        }
        Ok(())
    }
}

/// The records of a device file, in order. Yields at most one error, then stops.
#[derive(Clone, Debug)]
pub struct Tensors<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for Tensors<'a> {
    type Item = Result<DeviceTensor<'a>, DeviceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        match DeviceTensor::parse(self.rest) {
            Ok((t, rest)) => {
                self.rest = rest;
                Some(Ok(t))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterates the tensor records of a device file.
pub fn tensors(file: &[u8]) -> Tensors<'_> {
    Tensors { rest: file, failed: false }
}

/// The first record named `name`.
///
/// # Errors
/// [`DeviceError::NotFound`], or the error of a malformed record met before it.
pub fn find<'a>(file: &'a [u8], name: &str) -> Result<DeviceTensor<'a>, DeviceError> {
    for t in tensors(file) {
        let t = t?;
        if t.name() == name {
            return Ok(t);
        }
    }
    Err(DeviceError::NotFound)
}
