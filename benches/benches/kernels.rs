//! Kernels per ISA side by side: statistics, quantize+pack, unpack+dequantize.
//!
//! Each group also runs `read_sum` over the same input buffer, so the report shows the
//! kernels' throughput next to what one thread can read from memory. Throughput is in
//! bytes of f32 input (elements x 4) for every input type, so the figures compare.
//!
//! Headline cases use 64M values (256 MB of f32, far beyond the caches); the rest use
//! 4M values to keep the whole run to a few minutes.
//!
//! `cargo bench -p arrowquant-benches --bench kernels`

use std::hint::black_box;
use std::time::Duration;

use arrowquant_benches::{backends, dequantize, format, quant_buffers, quantize, read_sum, weights};
use arrowquant_core::{GroupFormat, GroupStats, Input, Scheme, bf16, f16};
use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};

const BIG: usize = 64 << 20;
const SMALL: usize = 4 << 20;

fn bench_read_sum(g: &mut BenchmarkGroup<'_, WallTime>, x: &[f32]) {
    g.bench_function("read-sum", |b| b.iter(|| read_sum(black_box(x))));
}

/// Every available backend plus the dispatching API (`None`).
fn paths() -> Vec<(String, Option<arrowquant_core::Backend>)> {
    let mut v: Vec<_> = backends().into_iter().map(|b| (b.name().to_string(), Some(b))).collect();
    v.push(("dispatch".to_string(), None));
    v
}

fn quantize_group(c: &mut Criterion, name: &str, f: GroupFormat, x: &[f32], input: Input<'_>) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes((x.len() * 4) as u64));
    bench_read_sum(&mut g, x);
    let (mut codes, mut params) = quant_buffers(f, x.len());
    for (label, backend) in paths() {
        g.bench_function(&label, |b| {
            b.iter(|| quantize(backend, f, black_box(input), &mut codes, &mut params).unwrap())
        });
    }
    g.finish();
}

fn dequantize_group(c: &mut Criterion, name: &str, f: GroupFormat, x: &[f32]) {
    let (mut codes, mut params) = quant_buffers(f, x.len());
    arrowquant_core::quantize(f, Input::F32(x), &mut codes, &mut params).unwrap();
    let mut out = vec![0f32; x.len()];
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes((x.len() * 4) as u64));
    bench_read_sum(&mut g, x);
    for (label, backend) in paths() {
        g.bench_function(&label, |b| {
            b.iter(|| dequantize(backend, f, black_box(&codes), &params, &mut out).unwrap())
        });
    }
    g.finish();
}

fn headline(c: &mut Criterion) {
    let x = weights(BIG, 1);
    let asym = Scheme::Asymmetric;
    quantize_group(c, "quantize/f32-int4-g128-asym/64M", format(4, 128, asym), &x, Input::F32(&x));
    quantize_group(c, "quantize/f32-int8-g128-asym/64M", format(8, 128, asym), &x, Input::F32(&x));
    dequantize_group(c, "dequantize/int4-g128-asym/64M", format(4, 128, asym), &x);
    dequantize_group(c, "dequantize/int8-g128-asym/64M", format(8, 128, asym), &x);
}

fn formats(c: &mut Criterion) {
    let x = weights(SMALL, 2);
    let h: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
    let bh: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
    for bits in [2u8, 4, 8] {
        for (scheme, s) in [(Scheme::Asymmetric, "asym"), (Scheme::Symmetric, "sym")] {
            let f = format(bits, 128, scheme);
            quantize_group(c, &format!("quantize/f32-int{bits}-g128-{s}/4M"), f, &x, Input::F32(&x));
        }
    }
    let f = format(4, 128, Scheme::Asymmetric);
    quantize_group(c, "quantize/f16-int4-g128-asym/4M", f, &x, Input::F16(&h));
    quantize_group(c, "quantize/bf16-int4-g128-asym/4M", f, &x, Input::Bf16(&bh));
    dequantize_group(c, "dequantize/int2-g128-asym/4M", format(2, 128, Scheme::Asymmetric), &x);
    dequantize_group(c, "dequantize/int4-g128-sym/4M", format(4, 128, Scheme::Symmetric), &x);
}

fn stats(c: &mut Criterion) {
    let x = weights(SMALL, 3);
    let mut out = vec![GroupStats::default(); x.len() / 128];
    let mut g = c.benchmark_group("stats/f32-g128/4M");
    g.throughput(Throughput::Bytes((x.len() * 4) as u64));
    bench_read_sum(&mut g, &x);
    for (label, backend) in paths() {
        g.bench_function(&label, |b| {
            b.iter(|| match backend {
                Some(be) => arrowquant_core::group_stats_with(be, Input::F32(black_box(&x)), 128, &mut out),
                None => arrowquant_core::group_stats(Input::F32(black_box(&x)), 128, &mut out),
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = headline, formats, stats }
criterion_main!(benches);
