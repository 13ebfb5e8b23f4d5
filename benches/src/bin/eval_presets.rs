//! Evaluates every quantization preset on the 2-D tensors of a safetensors file.
//!
//! ```text
//! cargo run --release -p arrowquant-benches --bin eval_presets -- PATH/model.safetensors \\
//!     [--explore] [--only NAME,..] [--custom LAYOUT_ID/KNOBS,..] [--runs N]
//! ```
//!
//! For each preset (and with `--explore` a list of extra layouts and search knobs,
//! including per-row mode) it streams every 2-D tensor through one
//! `StreamQuantizer<AnyCodec, 256>` on one thread, decodes the result and compares it
//! with the original weights (as f32) using `QualityAccumulator`. It prints:
//!
//! - `bpw`: encoded bytes * 8 / elements over all 2-D tensors (per-row mode counts
//!   its 4-byte row headers),
//! - mean and min cosine, mean rel-RMSE and mean SQNR (dB) over the tensors,
//! - encode time per million weights and the rate in M weights/s: thread CPU time
//!   (see `Clock`), median of 3 runs over the whole file; the quality of all runs is
//!   identical.

use std::error::Error;
use std::time::Instant;

use arrowquant_core::{
    AnyCodec, BlockCodec, BlockSink, Input, Preset, QualityAccumulator, RowScales, SearchConfig,
    StreamQuantizer, TwoLevelCodec, TwoLevelFormat, Weighting,
};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

/// One 2-D tensor as f32 (copied out of the map: file offsets need not be aligned).
struct Tensor {
    name: String,
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

fn load(path: &str) -> Result<Vec<Tensor>, Box<dyn Error>> {
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: the file is opened read-only and this tool does not expect it to be
    // modified while it runs (a concurrent writer could change the bytes we read,
    // which would only change the figures).
    let map = unsafe { Mmap::map(&file) }.map_err(|e| format!("{path}: mmap: {e}"))?;
    let st = SafeTensors::deserialize(&map).map_err(|e| format!("{path}: {e}"))?;
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let view = st.tensor(&name).map_err(|e| format!("{path}: {name}: {e}"))?;
        if view.shape().len() != 2 {
            continue;
        }
        let bytes = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => {
                bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            }
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| arrowquant_core::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| arrowquant_core::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                // Integer tensors (e.g. position ids) are not weights.
                eprintln!("skipping {name}: dtype {other:?} is not a float type");
                continue;
            }
        };
        out.push(Tensor { name, rows: view.shape()[0], cols: view.shape()[1], data });
    }
    if out.is_empty() {
        return Err(format!("{path}: no 2-D tensors").into());
    }
    Ok(out)
}

/// A clock for the encode time: this thread's CPU time (Linux
/// `/proc/thread-self/schedstat`, nanoseconds), so that other processes competing for
/// the cores do not inflate the figure; wall time where that file is unavailable.
struct Clock {
    wall: Instant,
    cpu_ns: Option<u64>,
}

fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

impl Clock {
    fn start() -> Clock {
        Clock { wall: Instant::now(), cpu_ns: thread_cpu_ns() }
    }

    fn seconds(&self) -> f64 {
        match (self.cpu_ns, thread_cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 * 1e-9,
            _ => self.wall.elapsed().as_secs_f64(),
        }
    }
}

/// How a configuration quantizes a tensor.
#[derive(Clone, Copy)]
enum Mode {
    /// Whole tensor as one stream.
    Stream(AnyCodec),
    /// One stream per row with per-row super-scales.
    PerRow(TwoLevelCodec),
}

struct Config {
    name: String,
    mode: Mode,
}

struct Row {
    name: String,
    id: String,
    bpw: f64,
    mean_cos: f64,
    min_cos: f64,
    min_cos_tensor: String,
    mean_rel_rmse: f64,
    mean_sqnr: f64,
    ms_per_mw: f64,
}

/// A sink over buffers reused across tensors and runs: after the first run it only
/// overwrites, so the timed loop measures encoding rather than allocation and zeroing.
#[derive(Default)]
struct ReuseSink {
    codes: Vec<u8>,
    params: Vec<u8>,
    codes_used: usize,
    params_used: usize,
}

impl ReuseSink {
    fn clear(&mut self) {
        self.codes_used = 0;
        self.params_used = 0;
    }

    fn codes(&self) -> &[u8] {
        &self.codes[..self.codes_used]
    }

    fn params(&self) -> &[u8] {
        &self.params[..self.params_used]
    }
}

impl BlockSink for ReuseSink {
    type Error = std::convert::Infallible;

    fn reserve(
        &mut self,
        codes_len: usize,
        params_len: usize,
    ) -> Result<(&mut [u8], &mut [u8]), Self::Error> {
        let (c0, p0) = (self.codes_used, self.params_used);
        (self.codes_used, self.params_used) = (c0 + codes_len, p0 + params_len);
        if self.codes.len() < self.codes_used {
            self.codes.resize(self.codes_used, 0);
        }
        if self.params.len() < self.params_used {
            self.params.resize(self.params_used, 0);
        }
        Ok((&mut self.codes[c0..self.codes_used], &mut self.params[p0..self.params_used]))
    }
}

/// Encodes one stream of `x` into `sink`.
fn encode_stream(codec: AnyCodec, x: &[f32], sink: &mut ReuseSink) -> Result<(), Box<dyn Error>> {
    let mut q = StreamQuantizer::<AnyCodec, 256>::new(codec)?;
    for chunk in x.chunks(65536) {
        q.feed(Input::F32(chunk), sink).map_err(|e| format!("{e}"))?;
    }
    q.finish(sink).map_err(|e| format!("{e}"))?;
    Ok(())
}

/// Decodes `sink` and accumulates the comparison with `x` (padding ignored).
fn compare(
    codec: &AnyCodec,
    x: &[f32],
    codes: &[u8],
    params: &[u8],
    acc: &mut QualityAccumulator,
) -> Result<(), Box<dyn Error>> {
    let (b, cl, pl) = (codec.block_len(), codec.codes_len(), codec.params_len());
    let mut out = vec![0f32; b];
    for (i, xb) in x.chunks(b).enumerate() {
        codec.decode(&codes[i * cl..(i + 1) * cl], &params[i * pl..(i + 1) * pl], &mut out)?;
        acc.update(xb, &out[..xb.len()]);
    }
    Ok(())
}

/// Quantizes one tensor: returns (encoded bytes, seconds spent encoding, quality).
fn run_tensor(
    mode: Mode,
    t: &Tensor,
    sink: &mut ReuseSink,
) -> Result<(usize, f64, QualityAccumulator), Box<dyn Error>> {
    let mut acc = QualityAccumulator::new();
    match mode {
        Mode::Stream(codec) => {
            sink.clear();
            let start = Clock::start();
            encode_stream(codec, &t.data, sink)?;
            let secs = start.seconds();
            compare(&codec, &t.data, sink.codes(), sink.params(), &mut acc)?;
            Ok((sink.codes().len() + sink.params().len(), secs, acc))
        }
        Mode::PerRow(base) => {
            // Encode every row (row scales first, then the row's stream) into one sink,
            // timing only that; then decode row by row.
            sink.clear();
            let mut codecs = Vec::with_capacity(t.rows);
            let start = Clock::start();
            for row in t.data.chunks(t.cols) {
                let scales = base.row_scales(Input::F32(row))?;
                let codec = AnyCodec::TwoLevel(TwoLevelCodec::with_row(base.format(), base.search(), scales));
                encode_stream(codec, row, sink)?;
                codecs.push(codec);
            }
            let secs = start.seconds();
            let bytes = sink.codes().len() + sink.params().len() + t.rows * RowScales::BYTES;
            let (mut c0, mut p0) = (0, 0);
            for (row, codec) in t.data.chunks(t.cols).zip(&codecs) {
                let blocks = row.len().div_ceil(codec.block_len());
                let (cl, pl) = (blocks * codec.codes_len(), blocks * codec.params_len());
                compare(codec, row, &sink.codes()[c0..c0 + cl], &sink.params()[p0..p0 + pl], &mut acc)?;
                (c0, p0) = (c0 + cl, p0 + pl);
            }
            Ok((bytes, secs, acc))
        }
    }
}

fn evaluate(cfg: &Config, tensors: &[Tensor], runs: usize) -> Result<Row, Box<dyn Error>> {
    let mut sink = ReuseSink::default();
    let mut times = Vec::new();
    let mut quality = Vec::new();
    let mut bytes = 0usize;
    for run in 0..runs {
        let mut total = 0f64;
        for t in tensors {
            let (b, secs, acc) =
                run_tensor(cfg.mode, t, &mut sink).map_err(|e| format!("{}: {}: {e}", cfg.name, t.name))?;
            total += secs;
            if run == 0 {
                bytes += b;
                quality.push((t.name.clone(), acc.finish()));
            }
        }
        times.push(total);
    }
    times.sort_by(f64::total_cmp);
    let elements: usize = tensors.iter().map(|t| t.rows * t.cols).sum();
    let n = quality.len() as f64;
    let (min_name, min_q) = quality.iter().min_by(|a, b| a.1.cosine.total_cmp(&b.1.cosine)).expect("tensors");
    let id = match cfg.mode {
        Mode::Stream(c) => c.layout().to_string(),
        Mode::PerRow(c) => {
            let fake = AnyCodec::TwoLevel(TwoLevelCodec::with_row(
                c.format(),
                c.search(),
                RowScales { d: arrowquant_core::f16::ONE, dmin: arrowquant_core::f16::ONE },
            ));
            fake.layout().to_string()
        }
    };
    Ok(Row {
        name: cfg.name.clone(),
        id,
        bpw: bytes as f64 * 8.0 / elements as f64,
        mean_cos: quality.iter().map(|q| q.1.cosine).sum::<f64>() / n,
        min_cos: min_q.cosine,
        min_cos_tensor: min_name.clone(),
        mean_rel_rmse: quality.iter().map(|q| q.1.rel_rmse).sum::<f64>() / n,
        mean_sqnr: quality.iter().map(|q| q.1.sqnr_db).sum::<f64>() / n,
        ms_per_mw: times[times.len() / 2] * 1e3 / (elements as f64 / 1e6),
    })
}

/// Extra layouts and search knobs printed with `--explore`.
fn explore_configs() -> Vec<Config> {
    let mut v = Vec::new();
    let two = |bits, block, sub, sb, mb| TwoLevelFormat::new(bits, block, sub, sb, mb).expect("valid");
    let searches = [
        ("fast", SearchConfig::FAST),
        ("fine", SearchConfig::FINE),
        ("fine-mag", SearchConfig { weighting: Weighting::Magnitude, ..SearchConfig::FINE }),
        ("fine-energy", SearchConfig { weighting: Weighting::Energy, ..SearchConfig::FINE }),
    ];
    let layouts = [
        two(2, 256, 16, 4, 4),
        two(2, 256, 32, 6, 6),
        two(2, 256, 16, 4, 4).with_outliers(2).expect("valid"),
        two(4, 256, 32, 6, 6),
        two(4, 256, 32, 4, 4),
        two(4, 256, 16, 4, 4),
        two(8, 256, 32, 6, 6),
        two(8, 256, 64, 8, 8),
    ];
    for f in layouts {
        for (sname, s) in searches {
            let c = AnyCodec::TwoLevel(TwoLevelCodec::new(f, s));
            v.push(Config { name: format!("{}/{sname}", c.layout()), mode: Mode::Stream(c) });
        }
    }
    for f in [two(2, 128, 16, 4, 4), two(4, 128, 32, 6, 6)] {
        for (sname, s) in &searches[..2] {
            v.push(Config { name: format!("row/{sname}"), mode: Mode::PerRow(TwoLevelCodec::new(f, *s)) });
        }
    }
    for (bits, g) in [(2u8, 64usize), (4, 128), (4, 64), (8, 64)] {
        let f =
            arrowquant_core::GroupFormat::new(bits, g, arrowquant_core::Scheme::Asymmetric).expect("valid");
        let c = AnyCodec::SearchedGroup(arrowquant_core::SearchedGroupCodec::new(f, SearchConfig::FINE));
        v.push(Config { name: format!("searched/{}", c.layout()), mode: Mode::Stream(c) });
    }
    v
}

/// Parses `--custom` specs: `LAYOUT_ID[/g{steps}r{iters}n{0|1}b{refits}]`, e.g.
/// `k4b256s32c6m6o0/g0r1n1b1` (search knobs default to FAST).
fn custom_config(spec: &str) -> Result<Config, Box<dyn Error>> {
    let (id, knobs) = spec.split_once('/').unwrap_or((spec, ""));
    let mut search = SearchConfig::FAST;
    let mut rest = knobs;
    while let Some(tag) = rest.chars().next() {
        let digits = rest[1..].find(|c: char| !c.is_ascii_digit()).map_or(rest.len(), |i| i + 1);
        let v: u8 = rest[1..digits].parse().map_err(|_| format!("bad search knobs in {spec}"))?;
        match tag {
            'g' => search.grid_steps = v,
            'r' => search.refit_iters = v,
            'n' => search.neighbors = v != 0,
            'b' => search.block_refits = v,
            _ => return Err(format!("unknown search knob {tag} in {spec}").into()),
        }
        rest = &rest[digits..];
    }
    let row = id
        .ends_with('r')
        .then_some(RowScales { d: arrowquant_core::f16::ONE, dmin: arrowquant_core::f16::ONE });
    let codec = AnyCodec::from_layout_id(id, row).ok_or_else(|| format!("bad layout id {id}"))?;
    let mode = match codec {
        AnyCodec::TwoLevel(c) if row.is_some() => Mode::PerRow(TwoLevelCodec::new(c.format(), search)),
        AnyCodec::TwoLevel(c) => Mode::Stream(AnyCodec::TwoLevel(TwoLevelCodec::new(c.format(), search))),
        AnyCodec::Group(g) => Mode::Stream(AnyCodec::SearchedGroup(
            arrowquant_core::SearchedGroupCodec::new(g.format(), search),
        )),
        other => Mode::Stream(other),
    };
    Ok(Config { name: spec.to_string(), mode })
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.iter().find(|a| !a.starts_with("--")).ok_or(
        "usage: eval_presets PATH/model.safetensors [--explore] [--only NAME,..] [--custom SPEC,..] [--runs N]",
    )?;
    let explore = args.iter().any(|a| a == "--explore");
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
    let only: Option<Vec<&str>> = value("--only").map(|s| s.split(',').collect());
    let runs: usize = value("--runs").map(|s| s.parse()).transpose()?.unwrap_or(3);

    let tensors = load(path)?;
    let elements: usize = tensors.iter().map(|t| t.rows * t.cols).sum();
    println!(
        "{path}: {} 2-D tensors, {elements} weights; encode single-threaded, median of {runs} runs",
        tensors.len()
    );
    let mut configs: Vec<Config> = Preset::ALL
        .iter()
        .map(|p| Config { name: p.name().to_string(), mode: Mode::Stream(p.codec()) })
        .collect();
    if explore {
        configs.extend(explore_configs());
    }
    if let Some(only) = &only {
        configs.retain(|c| only.iter().any(|o| c.name == *o));
    }
    if let Some(specs) = value("--custom") {
        for spec in specs.split(',') {
            configs.push(custom_config(spec)?);
        }
    }
    println!();
    println!(
        "| preset | layout id | bpw | mean cosine | min cosine | mean rel-RMSE | mean SQNR dB | ms / M weights | M weights/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut worst = Vec::new();
    for cfg in &configs {
        let r = evaluate(cfg, &tensors, runs)?;
        println!(
            "| {} | {} | {:.4} | {:.6} | {:.6} | {:.4} | {:.2} | {:.2} | {:.1} |",
            r.name,
            r.id,
            r.bpw,
            r.mean_cos,
            r.min_cos,
            r.mean_rel_rmse,
            r.mean_sqnr,
            r.ms_per_mw,
            1e3 / r.ms_per_mw
        );
        worst.push((r.name, r.min_cos_tensor));
    }
    println!();
    for (name, t) in worst {
        println!("{name}: lowest cosine on {t}");
    }
    Ok(())
}
