//! The core's own throughput for a codec, in memory, as the yardstick for the
//! end-to-end figures in `docs/MEMORY.md` (no files, no Parquet, no mmap).
//!
//! ```text
//! cargo run --release -p arrowquant-std --example kernel_throughput -- [--bits 4] [--group 128] [--preset NAME] [--mib 256] [--model PATH]
//! ```
//! Generates `--mib` MiB of fp16 values with the distribution of `gen_synthetic`
//! (Laplace, scale 0.02, 0.1% outliers x10), then times, single-threaded, over rows of
//! 2^20 elements:
//! - `encode`: the codec's `encode` alone;
//! - `stream+quality`: `StreamQuantizer` with `track_quality(true)`, i.e. encode plus
//!   the decode-and-compare the adapter does for every tensor.
//!
//! - `zstd1`: zstd level 1 (the Parquet writer's codec and level) over the encoded
//!   codes and parameters of each row, as separate buffers like the two columns, with
//!   the compressed share `zstd1_ratio`.
//!
//! With `--model PATH` (a safetensors file) it also times, over the model's 2-D f16,
//! bf16 and f32 tensors read the way the adapter reads them (`WindowReader` windows
//! of the default budget, rows of 2^20 elements):
//! - `mmap`: mapping every window and reading one byte per 4 KiB page, nothing else;
//! - `mmap+encode`: the same windows encoded, without measuring or writing anything.
//!
//! These are floors for the end-to-end run (`docs/MEMORY.md`): on one thread it cannot
//! be faster than `mmap+encode`, nor than encode and zstd one after the other.
//!
//! Throughput is input megabytes (10^6, bytes of the input dtype) per second; median
//! of 5 runs (3 for the model passes).

use std::time::Instant;

use arrowquant_std::core::{BlockCodec, Input, StreamQuantizer, VecSink, f16};
use arrowquant_std::window::{AlignedScratch, WindowReader, with_input};
use arrowquant_std::{CodecChoice, Config, ConfigLayer, Model, Tuning};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let mut layer = ConfigLayer::default();
    let mut mib = 256usize;
    let mut model = None;
    while let Some(a) = args.next() {
        let v = args.next().ok_or("option needs a value")?;
        match a.as_str() {
            "--bits" => layer.bit_width = Some(v.parse()?),
            "--group" => layer.group_size = Some(v.parse()?),
            "--preset" => layer.preset = Some(v),
            "--mib" => mib = v.parse()?,
            "--model" => model = Some(v),
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
    let mut zstd1 = Vec::new();
    // Every row's codes and parameters, kept for the zstd pass.
    let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut z = zstd::bulk::Compressor::new(1)?;
    let mut zout = Vec::new();
    let (mut raw_bytes, mut packed_bytes) = (0usize, 0usize);
    for run in 0..5 {
        let t = Instant::now();
        for c in data.chunks_exact(row) {
            codec.encode(Input::F16(c), 0, &mut codes, &mut params)?;
        }
        enc.push(mb / t.elapsed().as_secs_f64());
        if run == 0 {
            for c in data.chunks_exact(row) {
                codec.encode(Input::F16(c), 0, &mut codes, &mut params)?;
                encoded.push((codes.clone(), params.clone()));
            }
        }
        let t = Instant::now();
        (raw_bytes, packed_bytes) = (0, 0);
        for (c, p) in &encoded {
            for buf in [c, p] {
                zout.resize(zstd::zstd_safe::compress_bound(buf.len()), 0);
                packed_bytes += z.compress_to_buffer(buf, &mut zout[..])?;
                raw_bytes += buf.len();
            }
        }
        zstd1.push(mb / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut sink = VecSink::new();
        let mut q = StreamQuantizer::<_, 256>::new(*codec.codec())?.track_quality(true);
        for c in data.chunks_exact(row) {
            sink.clear();
            q.feed(Input::F16(c), &mut sink).map_err(|e| e.to_string())?;
        }
        q.finish(&mut sink).map_err(|e| e.to_string())?;
        stream.push(mb / t.elapsed().as_secs_f64());
    }
    let mut line = format!(
        "codec={} backend={} input_MB={mb:.0} encode_MB_s={:.0} stream+quality_MB_s={:.0} zstd1_MB_s={:.0} zstd1_ratio={:.3}",
        codec.id(),
        arrowquant_std::core::Backend::detect().name(),
        median(enc),
        median(stream),
        median(zstd1),
        packed_bytes as f64 / raw_bytes as f64,
    );
    if let Some(path) = model {
        let (map, map_enc) = model_floors(&path, &codec, &config)?;
        line += &format!(" model_MB={:.0} mmap_MB_s={:.0} mmap+encode_MB_s={:.0}", map.0, map.1, map_enc);
    }
    println!("{line}");
    Ok(())
}

/// Input megabytes and the median rates of the two model passes (`mmap`, `mmap+encode`).
fn model_floors(path: &str, codec: &CodecChoice, config: &Config) -> Res<((f64, f64), f64)> {
    let model = Model::open(path)?;
    let window = Tuning::for_config(config).window_bytes;
    let tensors: Vec<_> = model
        .tensors
        .iter()
        .filter(|t| t.shape.len() >= 2)
        .filter_map(|t| Some((t, t.dtype.quantizable()?)))
        .collect();
    let readers = model.files.iter().map(|f| WindowReader::open(f)).collect::<Result<Vec<_>, _>>()?;
    let bytes: u64 = tensors.iter().map(|(t, _)| t.byte_len).sum();
    let mb = bytes as f64 / 1e6;
    let row = 1usize << 20;
    let blocks = row.div_ceil(codec.block_len());
    let (mut codes, mut params) =
        (vec![0u8; blocks * codec.codes_len()], vec![0u8; blocks * codec.params_len()]);
    let mut scratch = AlignedScratch::default();
    let (mut map_rates, mut enc_rates) = (Vec::new(), Vec::new());
    let mut touched = 0u64;
    for _ in 0..3 {
        let t0 = Instant::now();
        for (t, dtype) in &tensors {
            let unit = (row * dtype.size()) as u64;
            readers[t.file].for_each_window(t.offset, t.byte_len, window, unit, |_, b| {
                touched += b.iter().step_by(4096).map(|&x| u64::from(x)).sum::<u64>();
                Ok(())
            })?;
        }
        map_rates.push(mb / t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        for (t, dtype) in &tensors {
            let unit = (row * dtype.size()) as u64;
            readers[t.file].for_each_window(t.offset, t.byte_len, window, unit, |pos, b| {
                with_input(*dtype, b, &mut scratch, |input| -> arrowquant_std::Result<()> {
                    for s in (0..input.len()).step_by(row) {
                        // Whole blocks only (`encode` takes no partial block): a tensor's
                        // last partial block, if any, is left out of this floor.
                        let n = ((s + row).min(input.len()) - s) / codec.block_len();
                        let piece = input.slice(s, s + n * codec.block_len());
                        let (c, p) =
                            (&mut codes[..n * codec.codes_len()], &mut params[..n * codec.params_len()]);
                        codec.encode(piece, pos, c, p).map_err(|source| {
                            arrowquant_std::AdapterError::Quant {
                                path: path.into(),
                                tensor: t.name.clone(),
                                source,
                            }
                        })?;
                    }
                    Ok(())
                })
            })?;
        }
        enc_rates.push(mb / t0.elapsed().as_secs_f64());
    }
    // Printed so the page reads cannot be optimised away.
    eprintln!("kernel_throughput: {} tensors, page checksum {touched}", tensors.len());
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok(((mb, median(map_rates)), median(enc_rates)))
}
