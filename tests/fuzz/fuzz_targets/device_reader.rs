//! The zero-copy device-format reader on arbitrary bytes. Raw input rarely passes the
//! CRC, so half of the runs first repair the checksum of a record whose header
//! decodes: the decoding paths behind the CRC are fuzzed too. Properties: no panic;
//! a parsed record's parts lie inside the input and agree with its header; every
//! group and the whole tensor decode (or report `Corrupt`) consistently; `find`
//! agrees with `tensors`.
#![no_main]

use arrowquant_core::device::{self, DeviceError, DeviceHeader, DeviceTensor};
use arrowquant_core::{BlockCodec, GroupCodec, QuantError};
use arrowquant_fuzz::Cursor;
use libfuzzer_sys::fuzz_target;

/// Decoding budget per input, so a huge valid header does not dominate the run.
const MAX_ELEMENTS: usize = 1 << 16;

/// Writes the checksum the reader computed where the record stores it.
fn repair_crc(bytes: &mut [u8]) {
    let Ok((h, body)) = postcard::take_from_bytes::<DeviceHeader<'_>>(bytes) else { return };
    let header_len = bytes.len() - body.len();
    let block = u64::from(h.codes_len) + u64::from(h.params_len);
    let Some(end) = h.blocks.checked_mul(block).and_then(|p| p.checked_add(header_len as u64 + 4)) else {
        return;
    };
    let Ok(end) = usize::try_from(end) else { return };
    if end > bytes.len() {
        return;
    }
    if let Err(DeviceError::ChecksumMismatch { computed, .. }) = DeviceTensor::parse(bytes) {
        bytes[end - 4..end].copy_from_slice(&computed.to_le_bytes());
    }
}

fn exercise(t: &DeviceTensor<'_>, file: &[u8]) {
    let c = t.codec();
    assert_eq!(t.groups(), t.len().div_ceil(t.group_len()));
    assert_eq!(t.codes().len(), t.groups() * c.codes_len());
    assert_eq!(t.params().len(), t.groups() * c.params_len());
    assert_eq!(t.shape().iter().product::<u64>(), t.len() as u64);
    // Raw records of integer dtypes have bytes, not values.
    if t.len() > MAX_ELEMENTS || t.raw_dtype().is_some_and(|d| d.to_f32(&[0; 8][..d.size()]).is_none()) {
        return;
    }
    let mut whole = vec![0f32; t.len()];
    let r = t.dequantize_into(&mut whole);
    let mut any_corrupt = false;
    let mut group = vec![0f32; t.group_len()];
    for g in 0..t.groups() {
        match t.dequantize_group(g, &mut group) {
            Ok(real) => {
                assert_eq!(real, t.group_len().min(t.len() - g * t.group_len()));
                if r.is_ok() {
                    let at = g * t.group_len();
                    let same =
                        whole[at..at + real].iter().zip(&group).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "group {g} decodes differently alone");
                }
            }
            Err(DeviceError::Quant(QuantError::Corrupt)) => any_corrupt = true,
            Err(e) => panic!("group {g}: {e:?}"),
        }
    }
    match r {
        Ok(()) => assert!(!any_corrupt, "whole tensor decoded but a group is corrupt"),
        Err(DeviceError::Quant(QuantError::Corrupt)) => {
            assert!(any_corrupt, "whole tensor corrupt, no group")
        }
        Err(e) => panic!("dequantize_into: {e:?}"),
    }
    let mut wrong = vec![0f32; t.group_len() + 1];
    assert!(t.dequantize_group(0, &mut wrong).is_err());
    assert!(t.dequantize_group(t.groups(), &mut group).is_err());
    let _ = device::find(file, t.name());
    // The scalar codec decodes the borrowed arrays like the reader (group records).
    let Some(f) = t.format() else { return };
    let scalar = GroupCodec::with_backend(f, arrowquant_core::Backend::Scalar).unwrap();
    let mut out = vec![0f32; t.groups() * t.group_len()];
    let rs = scalar.decode(t.codes(), t.params(), &mut out);
    assert_eq!(rs.is_ok(), !any_corrupt);
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let repair = c.byte() & 1 == 1;
    let mut bytes = c.rest().to_vec();
    if repair {
        repair_crc(&mut bytes);
    }
    let mut names = Vec::new();
    for t in device::tensors(&bytes) {
        match t {
            Ok(t) => {
                exercise(&t, &bytes);
                names.push(t.name().to_owned());
            }
            Err(_) => break,
        }
    }
    if let Some(first) = names.first() {
        assert_eq!(
            device::find(&bytes, first).map(|t| t.name().to_owned()).ok().as_deref(),
            Some(&first[..])
        );
    }
});
