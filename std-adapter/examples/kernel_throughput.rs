//! The core's own throughput for a codec, in memory, as the yardstick for the
//! end-to-end figures in `docs/MEMORY.md` (no files, no Parquet, no mmap).
//!
//! ```text
//! cargo run --release -p arrowquant-std --example kernel_throughput -- [--bits 4] [--group 128] [--preset NAME] [--mib 256]
//! ```
//! Generates `--mib` MiB of fp16 values with the distribution of `gen_synthetic`
//! (Laplace, scale 0.02, 0.1% outliers x10), then times, single-threaded, over rows of
//! 2^20 elements:
//! - `encode`: the codec's `encode` alone;
//! - `stream+quality`: `StreamQuantizer` with `track_quality(true)`, i.e. encode plus
//!   the decode-and-compare the adapter does for every tensor.
//!
//! Throughput is input megabytes (10^6, fp16 bytes) per second; median of 5 runs.

use std::time::Instant;

use arrowquant_std::core::{BlockCodec, Input, StreamQuantizer, VecSink, f16};
use arrowquant_std::{CodecChoice, Config, ConfigLayer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut layer = ConfigLayer::default();
    let mut mib = 256usize;
    while let Some(a) = args.next() {
        let v = args.next().ok_or("option needs a value")?;
        match a.as_str() {
            "--bits" => layer.bit_width = Some(v.parse()?),
            "--group" => layer.group_size = Some(v.parse()?),
            "--preset" => layer.preset = Some(v),
            "--mib" => mib = v.parse()?,
            _ => return Err(format!("unknown option {a}").into()),
        }
    }
    let config = Config::from_layers(&[layer])?;
    let codec = CodecChoice::from_config(&config)?;
    let n = mib << 19;
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<f16> = (0..n)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let r = s.wrapping_mul(0x2545_f491_4f6c_dd1d);
            let u = ((r >> 40) as f32 + 1.0) / (1u64 << 24) as f32;
            let mut x = -0.02 * u.ln() * if r & 1 == 0 { 1.0 } else { -1.0 };
            if (r >> 1).is_multiple_of(1000) {
                x *= 10.0;
            }
            f16::from_f32(x)
        })
        .collect();
    let row = 1 << 20;
    let blocks = row / codec.block_len();
    let mut codes = vec![0u8; blocks * codec.codes_len()];
    let mut params = vec![0u8; blocks * codec.params_len()];
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mb = (n * 2) as f64 / 1e6;
    let mut enc = Vec::new();
    let mut stream = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for c in data.chunks_exact(row) {
            codec.encode(Input::F16(c), 0, &mut codes, &mut params)?;
        }
        enc.push(mb / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut sink = VecSink::new();
        let mut q = StreamQuantizer::<_, 256>::new(codec)?.track_quality(true);
        for c in data.chunks_exact(row) {
            sink.clear();
            q.feed(Input::F16(c), &mut sink).map_err(|e| e.to_string())?;
        }
        q.finish(&mut sink).map_err(|e| e.to_string())?;
        stream.push(mb / t.elapsed().as_secs_f64());
    }
    println!(
        "codec={} backend={} input_MB={mb:.0} encode_MB_s={:.0} stream+quality_MB_s={:.0}",
        codec.id(),
        arrowquant_std::core::Backend::detect().name(),
        median(enc),
        median(stream)
    );
    Ok(())
}
