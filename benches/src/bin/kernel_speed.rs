//! Compact kernel speed table for the README: GB/s of f32-equivalent input (elements x 4)
//! per path, and the ratio to a single-thread read-sum of the same buffer measured in
//! the same run. Every kernel run is paired with a read-sum run just before it, so the
//! ratio compares like with like even when the machine's load changes. Columns: median
//! GB/s and its ratio to the read-sum's median, best GB/s and its ratio to the best
//! read-sum, and that best read-sum in GB/s. On a busy machine the best runs are the
//! closer estimate of the kernel's own speed.
//!
//! `cargo run --release -p arrowquant-benches --bin kernel_speed [-- --values 67108864 --runs 7]`
//!
//! `--only TEXT` keeps the rows whose "case path" contains TEXT (for profiling one kernel).

use std::hint::black_box;
use std::time::Instant;

use arrowquant_benches::{backends, dequantize, format, quant_buffers, quantize, read_sum, weights};
use arrowquant_core::{Backend, GroupFormat, GroupStats, Input, Scheme, bf16, f16};

struct Opts {
    values: usize,
    runs: usize,
    only: Option<String>,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts { values: 64 << 20, runs: 7, only: None };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            let v = args.next().ok_or(format!("{name} needs a value"))?;
            v.parse().map_err(|e| format!("{name} {v}: {e}"))
        };
        match a.as_str() {
            "--values" => o.values = num("--values")? / 256 * 256,
            "--runs" => o.runs = num("--runs")?.max(1),
            "--only" => o.only = Some(args.next().ok_or("--only needs a value")?),
            other => return Err(format!("unknown argument {other} (use --values N --runs N --only TEXT)")),
        }
    }
    if o.values == 0 {
        return Err("--values must be at least 256".into());
    }
    Ok(o)
}

/// Times `f` and a read-sum of `x` alternately, `runs` times each after a warm-up, so
/// that both see the same machine state; returns the kernel's and the read-sum's
/// (median, best) in seconds.
fn time_paired(runs: usize, x: &[f32], mut f: impl FnMut()) -> ((f64, f64), (f64, f64)) {
    let read = || {
        black_box(read_sum(black_box(x)));
    };
    f();
    read();
    let (mut tf, mut tr) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let s = Instant::now();
        read();
        tr.push(s.elapsed().as_secs_f64());
        let s = Instant::now();
        f();
        tf.push(s.elapsed().as_secs_f64());
    }
    let stats = |mut t: Vec<f64>| {
        t.sort_by(f64::total_cmp);
        (t[t.len() / 2], t[0])
    };
    (stats(tf), stats(tr))
}

struct Table<'a> {
    x: &'a [f32],
    runs: usize,
    only: Option<String>,
}

impl Table<'_> {
    fn row(&self, case: &str, path: &str, f: impl FnMut()) {
        if let Some(only) = &self.only
            && !format!("{case} {path}").contains(only.as_str())
        {
            return;
        }
        let bytes = (self.x.len() * 4) as f64;
        let ((median, min), (read_median, read_min)) = time_paired(self.runs, self.x, f);
        let gbs = |t: f64| bytes / t / 1e9;
        println!(
            "{case:<34} {path:<9} {:>7.2} {:>8.2} {:>7.2} {:>8.2} {:>7.2}",
            gbs(median),
            read_median / median,
            gbs(min),
            read_min / min,
            gbs(read_min)
        );
    }
}

fn paths() -> Vec<(&'static str, Option<Backend>)> {
    let mut v: Vec<_> = backends().into_iter().map(|b| (b.name(), Some(b))).collect();
    v.push(("dispatch", None));
    v
}

fn quantize_rows(t: &Table, case: &str, f: GroupFormat, input: Input<'_>) {
    let (mut codes, mut params) = quant_buffers(f, input.len());
    for (name, b) in paths() {
        t.row(case, name, || quantize(b, f, black_box(input), &mut codes, &mut params).unwrap());
    }
}

fn dequantize_rows(t: &Table, case: &str, f: GroupFormat, x: &[f32], out: &mut [f32]) {
    let (mut codes, mut params) = quant_buffers(f, x.len());
    arrowquant_core::quantize(f, Input::F32(x), &mut codes, &mut params).unwrap();
    for (name, b) in paths() {
        t.row(case, name, || dequantize(b, f, black_box(&codes), &params, out).unwrap());
    }
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("kernel_speed: {e}");
            std::process::exit(2);
        }
    };
    let x = weights(o.values, 1);
    let t = Table { x: &x, runs: o.runs, only: o.only.clone() };
    println!(
        "{} values ({} MB of f32), median and best of {} runs, single thread, detected backend: {}",
        o.values,
        (o.values * 4) >> 20,
        o.runs,
        Backend::detect()
    );
    println!(
        "{:<34} {:<9} {:>7} {:>8} {:>7} {:>8} {:>7}",
        "case (GB/s of f32 input)", "path", "median", "x read", "best", "x read", "read"
    );
    let asym = Scheme::Asymmetric;
    quantize_rows(&t, "quantize f32 -> INT4 g128 asym", format(4, 128, asym), Input::F32(&x));
    quantize_rows(&t, "quantize f32 -> INT8 g128 asym", format(8, 128, asym), Input::F32(&x));
    quantize_rows(&t, "quantize f32 -> INT2 g128 asym", format(2, 128, asym), Input::F32(&x));
    quantize_rows(&t, "quantize f32 -> INT4 g128 sym", format(4, 128, Scheme::Symmetric), Input::F32(&x));
    {
        let h: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
        quantize_rows(&t, "quantize f16 -> INT4 g128 asym", format(4, 128, asym), Input::F16(&h));
    }
    {
        let h: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
        quantize_rows(&t, "quantize bf16 -> INT4 g128 asym", format(4, 128, asym), Input::Bf16(&h));
    }
    let mut out = vec![0f32; x.len()];
    dequantize_rows(&t, "dequantize INT4 g128 asym -> f32", format(4, 128, asym), &x, &mut out);
    dequantize_rows(&t, "dequantize INT8 g128 asym -> f32", format(8, 128, asym), &x, &mut out);
    dequantize_rows(&t, "dequantize INT2 g128 asym -> f32", format(2, 128, asym), &x, &mut out);
    drop(out);
    let mut stats = vec![GroupStats::default(); x.len() / 128];
    for (name, b) in paths() {
        t.row("stats f32 g128", name, || {
            let r = match b {
                Some(b) => arrowquant_core::group_stats_with(b, Input::F32(black_box(&x)), 128, &mut stats),
                None => arrowquant_core::group_stats(Input::F32(black_box(&x)), 128, &mut stats),
            };
            r.unwrap()
        });
    }
}
