//! The firmware example on its own, without the test harness: what a device that
//! quantizes weights and reads a device file actually links.
//!
//! Streams the flash weights through `StreamQuantizer<GroupCodec, 32>` (INT4, group
//! 32, asymmetric) into static buffers, checks the codes and parameters against the
//! host's, then decodes the host-written device record in flash one group at a time
//! and checks the values against the host's. Exits 0 when everything matches, 1 if not.
//! Run with `cargo run --release --bin quantize_flash` from `targets/cortex-m`.

#![no_std]
#![no_main]

use arrowquant_core::device::DeviceTensor;
use arrowquant_core::{GroupCodec, GroupFormat, Input, Scheme, SliceSink, StreamQuantizer};
use arrowquant_cortex_m::{self as fw, fixture};
use cortex_m_rt::entry;

const G: usize = 32;
type Quantizer = StreamQuantizer<GroupCodec, G>;

#[entry]
fn main() -> ! {
    // `#[entry]` turns these into `&'static mut` references: static RAM, no heap.
    static mut QUANTIZER: Option<Quantizer> = None;
    static mut CODES: [u8; fixture::LEN / 2] = [0; fixture::LEN / 2];
    static mut PARAMS: [u8; fixture::LEN / G * 4] = [0; fixture::LEN / G * 4];

    let format = fw::check(GroupFormat::new(4, G, Scheme::Asymmetric), "format");
    let q = QUANTIZER.insert(fw::check(Quantizer::new(GroupCodec::new(format)), "quantizer"));
    let mut sink = SliceSink::new(CODES, PARAMS);
    for chunk in fw::WEIGHTS.chunks(100) {
        fw::check(q.feed(Input::F32(chunk), &mut sink), "feed");
    }
    let summary = fw::check(q.finish(&mut sink), "finish");
    let codes_ok = fixture::fnv1a(fixture::FNV_OFFSET, sink.codes()) == fw::HOST_INT4_CODES_FNV
        && fixture::fnv1a(fixture::FNV_OFFSET, sink.params()) == fw::HOST_INT4_PARAMS_FNV;

    let (record, _) = fw::check(DeviceTensor::parse(&fw::DEVICE_FILE[..]), "device record");
    let mut group = [0f32; G];
    let mut h = fixture::FNV_OFFSET;
    for i in 0..record.groups() {
        let real = fw::check(record.dequantize_group(i, &mut group), "dequantize_group");
        h = fixture::fnv1a_f32(h, &group[..real]);
    }
    let decode_ok = h == fw::HOST_RECORDS[0].2;

    defmt::info!(
        "{} elements in {} blocks, state {} B; codes match host: {}; device record decodes like host: {}",
        summary.elements,
        summary.blocks,
        Quantizer::STATE_BYTES,
        codes_ok,
        decode_ok
    );
    semihosting::process::exit(if codes_ok && decode_ok { 0 } else { 1 })
}
