//! arrowquant-core on a Cortex-M4F (QEMU mps2-an386), no heap.
//!
//! Streams the flash-resident weights through `StreamQuantizer<GroupCodec, 32>`
//! (INT4, group 32, asymmetric) into fixed buffers, checks the reconstruction and
//! compares the codes and parameters with the host's, writes a device record on the
//! device and compares it with the host's, and decodes the host-written device file in
//! flash group by group to the host's dequantized values, bit for bit.

#![no_std]
#![no_main]

use arrowquant_core::device::{self, DeviceError, DeviceTensor};
use arrowquant_core::{
    GroupCodec, GroupFormat, Input, QualityAccumulator, Scheme, SliceSink, StreamQuantizer, f16,
};
use arrowquant_cortex_m::{self as fw, fixture};

/// Elements per group of the quantizer under test.
const G: usize = 32;
/// INT4: two codes a byte.
const CODES: usize = fixture::LEN / 2;
/// Asymmetric: f16 scale and offset per group.
const PARAMS: usize = fixture::LEN / G * 4;

/// The quantizer whose state must fit the 4 KiB budget.
type Quantizer = StreamQuantizer<GroupCodec, G>;

// The budget, checked at compile time as well as reported at run time.
const _: () = assert!(Quantizer::STATE_BYTES <= 4096);

fn int4_g32() -> GroupFormat {
    fw::check(GroupFormat::new(4, G, Scheme::Asymmetric), "format")
}

/// Everything the tests share lives in static RAM (`.bss`), none of it on a heap.
struct State {
    quantizer: &'static mut Quantizer,
    codes: &'static mut [u8; CODES],
    params: &'static mut [u8; PARAMS],
    record: &'static mut [u8; fw::DEVICE_FILE_LEN],
}

/// Quantizes the flash weights in chunks of `chunk` elements; returns the summary.
fn quantize_flash(s: &mut State, chunk: usize) -> arrowquant_core::StreamSummary {
    let mut sink = SliceSink::new(&mut s.codes[..], &mut s.params[..]);
    for part in fw::WEIGHTS.chunks(chunk) {
        fw::check(s.quantizer.feed(Input::F32(part), &mut sink), "feed");
    }
    let summary = fw::check(s.quantizer.finish(&mut sink), "finish");
    defmt::assert_eq!((sink.codes().len(), sink.params().len()), (CODES, PARAMS));
    summary
}

/// Hash of the real elements of a record, decoded one group at a time.
fn hash_groups(t: &DeviceTensor<'_>) -> u64 {
    let mut group = [0f32; 256];
    let out = &mut group[..t.group_len()];
    let mut h = fixture::FNV_OFFSET;
    for i in 0..t.groups() {
        let real = fw::check(t.dequantize_group(i, out), "dequantize_group");
        h = fixture::fnv1a_f32(h, &out[..real]);
    }
    h
}

#[defmt_test::tests]
mod tests {
    use super::*;

    #[init]
    fn init() -> State {
        let q = fw::check(Quantizer::new(GroupCodec::new(int4_g32())), "quantizer");
        let q = q.track_quality(true);
        State {
            quantizer: cortex_m::singleton!(: Quantizer = q).unwrap(),
            codes: cortex_m::singleton!(: [u8; CODES] = [0; CODES]).unwrap(),
            params: cortex_m::singleton!(: [u8; PARAMS] = [0; PARAMS]).unwrap(),
            record: cortex_m::singleton!(: [u8; fw::DEVICE_FILE_LEN] = [0; fw::DEVICE_FILE_LEN]).unwrap(),
        }
    }

    #[test]
    fn quantizer_state_fits_in_4_kib(s: &mut State) {
        defmt::info!(
            "StreamQuantizer<GroupCodec, N>::STATE_BYTES: N=32 {} B, N=64 {} B, N=128 {} B, N=256 {} B",
            StreamQuantizer::<GroupCodec, 32>::STATE_BYTES,
            StreamQuantizer::<GroupCodec, 64>::STATE_BYTES,
            StreamQuantizer::<GroupCodec, 128>::STATE_BYTES,
            StreamQuantizer::<GroupCodec, 256>::STATE_BYTES,
        );
        defmt::assert_eq!(core::mem::size_of_val(&*s.quantizer), Quantizer::STATE_BYTES);
        defmt::assert!(Quantizer::STATE_BYTES <= 4096);
        defmt::assert_eq!(s.quantizer.codec().backend().name(), "scalar");
    }

    #[test]
    fn int4_g32_stream_from_flash_matches_host(s: &mut State) {
        // 100 is not a multiple of 32: the carry path runs on every chunk boundary.
        let summary = quantize_flash(s, 100);
        defmt::assert_eq!((summary.elements, summary.blocks, summary.padding), (4096, 128, 0));

        // Every element within half a step of its group (plus f32 rounding).
        let format = int4_g32();
        let mut out = [0f32; G];
        let mut quality = QualityAccumulator::new();
        for (i, w) in fw::WEIGHTS.chunks_exact(G).enumerate() {
            let (codes, params) = (&s.codes[i * 16..(i + 1) * 16], &s.params[i * 4..(i + 1) * 4]);
            fw::check(arrowquant_core::dequantize(format, codes, params, &mut out), "dequantize");
            let scale = f16::from_le_bytes([params[0], params[1]]).to_f32();
            for (x, y) in w.iter().zip(&out) {
                let bound = scale * 0.5 * (1.0 + 1e-3) + 4.0 * f32::EPSILON * x.abs();
                defmt::assert!((x - y).abs() <= bound, "group {} error {} > {}", i, (x - y).abs(), bound);
            }
            quality.update(w, &out);
        }
        let q = quality.finish();
        let streamed = summary.quality.unwrap();
        defmt::info!("INT4 g32 on the M4: cosine {}, SQNR {} dB", q.cosine, q.sqnr_db);
        defmt::assert!(q.cosine > 0.99);
        defmt::assert_eq!(streamed.cosine.to_bits(), q.cosine.to_bits());

        // Bit-identical to the host's quantization of the same weights.
        defmt::assert_eq!(fixture::fnv1a(fixture::FNV_OFFSET, &s.codes[..]), fw::HOST_INT4_CODES_FNV);
        defmt::assert_eq!(fixture::fnv1a(fixture::FNV_OFFSET, &s.params[..]), fw::HOST_INT4_PARAMS_FNV);
    }

    #[test]
    fn device_record_written_on_m4_equals_host_record(s: &mut State) {
        quantize_flash(s, 257);
        let n = fw::check(
            device::write_tensor_into(
                &mut s.record[..],
                "flash.int4_g32",
                &[64, 64],
                int4_g32(),
                &s.codes[..],
                &s.params[..],
            ),
            "write_tensor_into",
        );
        defmt::assert_eq!(n, fw::HOST_INT4_RECORD_LEN);
        defmt::assert!(s.record[..n] == fw::DEVICE_FILE[..n], "record differs from the host's");
        let (t, rest) = fw::check(DeviceTensor::parse(&s.record[..n]), "parse");
        defmt::assert!(rest.is_empty());
        defmt::assert_eq!(hash_groups(&t), fw::HOST_RECORDS[0].2);
    }

    #[test]
    fn device_file_in_flash_decodes_to_host_values() {
        let mut seen = 0;
        for (t, &(name, len, hash)) in device::tensors(&fw::DEVICE_FILE[..]).zip(&fw::HOST_RECORDS) {
            let t = fw::check(t, "parse record");
            defmt::assert_eq!(t.name(), name);
            defmt::assert_eq!(t.len(), len);
            defmt::assert_eq!(hash_groups(&t), hash, "{}", name);
            defmt::info!(
                "{}: shape {}, {} groups of {}, {}-bit: bit-identical to the host's dequantize",
                t.name(),
                t.shape(),
                t.groups(),
                t.group_len(),
                t.bits()
            );
            seen += 1;
        }
        defmt::assert_eq!(seen, fw::HOST_RECORDS.len());
        defmt::assert!(device::tensors(&fw::DEVICE_FILE[..]).count() == seen);

        // The INT4 record against the weights: the same quality as the stream.
        let t = fw::check(device::find(&fw::DEVICE_FILE[..], "flash.int4_g32"), "find");
        let mut quality = QualityAccumulator::new();
        let mut out = [0f32; G];
        for (i, w) in fw::WEIGHTS.chunks_exact(G).enumerate() {
            fw::check(t.dequantize_group(i, &mut out), "dequantize_group");
            quality.update(w, &out);
        }
        defmt::assert!(quality.finish().cosine > 0.99);
    }

    #[test]
    fn corrupted_device_file_is_rejected(s: &mut State) {
        let ram = &mut s.record[..];
        ram.copy_from_slice(&fw::DEVICE_FILE[..]);
        defmt::assert!(DeviceTensor::parse(ram).is_ok());

        ram[100] ^= 0x10; // a code byte of the first record
        defmt::assert!(matches!(DeviceTensor::parse(ram), Err(DeviceError::ChecksumMismatch { .. })));
        ram[100] ^= 0x10;

        let cut = &ram[..fw::HOST_INT4_RECORD_LEN - 1];
        defmt::assert!(matches!(DeviceTensor::parse(cut), Err(DeviceError::Truncated { .. })));
        defmt::assert!(matches!(DeviceTensor::parse(&ram[1..]), Err(DeviceError::BadMagic)));
        defmt::assert!(matches!(device::find(ram, "missing"), Err(DeviceError::NotFound)));
    }
}
