//! Encodes raw little-endian f32 weights into a ggml block type through
//! [`GgmlCodec`] (one thread), decodes them back, and reports the encode time.
//!
//! ```text
//! cargo run --release -p arrowquant-core --example ggml_roundtrip -- \
//!     <TYPE> <in.f32> <decoded_out.f32> [<blocks_out.bin>] [--repeat N] [--effort fast|best]
//! ```
//!
//! Prints one line: `type=<T> status=ok weights=<n> encode_s=<best of N> bpw=<bits>`,
//! or `status=unsupported` when the type's encoder is not there yet (exit code 0, so a
//! driver can report it), or `status=error msg=...` (exit code 2). The input length
//! must be a whole number of the type's blocks (the driver passes whole rows).
//! Used by `benches/scripts/ggml_quality.py`.

use std::process::ExitCode;
use std::time::Instant;

use arrowquant_core::ggml::{Effort, GgmlCodec, GgmlType};
use arrowquant_core::{BlockCodec, Input, QuantError};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut repeat = 1usize;
    let mut effort = Effort::Best;
    let mut pos = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--repeat" {
            repeat = it.next().and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
        } else if a == "--effort" {
            effort = match it.next().map(String::as_str) {
                Some("fast") => Effort::Fast,
                Some("best") => Effort::Best,
                other => {
                    eprintln!("--effort takes fast or best, not {other:?}");
                    return ExitCode::from(2);
                }
            };
        } else {
            pos.push(a.as_str());
        }
    }
    let [ty, input, decoded, rest @ ..] = pos.as_slice() else {
        eprintln!(
            "usage: ggml_roundtrip <TYPE> <in.f32> <decoded_out.f32> [<blocks_out.bin>] [--repeat N] [--effort fast|best]"
        );
        return ExitCode::from(2);
    };
    match run(ty, input, decoded, rest.first().copied(), repeat, effort) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            println!("type={ty} status=error msg={msg}");
            ExitCode::from(2)
        }
    }
}

fn run(
    name: &str,
    input: &str,
    decoded: &str,
    blocks_out: Option<&str>,
    repeat: usize,
    effort: Effort,
) -> Result<(), String> {
    let ty = GgmlType::from_name(name).ok_or_else(|| format!("unknown ggml type {name}"))?;
    let codec = GgmlCodec::with_effort(ty, effort).ok_or_else(|| format!("{ty} is not a block type"))?;
    let bytes = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
    if bytes.len() % 4 != 0 {
        return Err(format!("{input}: length {} is not a multiple of 4", bytes.len()));
    }
    // Little-endian f32, decoded portably (no alignment assumption on the Vec<u8>).
    let x: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let n = x.len();
    let blocks = n / ty.block_len();
    let mut codes = vec![0u8; blocks * ty.type_size()];
    let mut best = f64::INFINITY;
    for _ in 0..repeat {
        let t0 = Instant::now();
        match codec.encode(Input::F32(&x), 0, &mut codes, &mut []) {
            Ok(()) => {}
            Err(QuantError::BackendUnavailable) => {
                println!("type={ty} status=unsupported");
                return Ok(());
            }
            Err(e) => return Err(e.to_string()),
        }
        best = best.min(t0.elapsed().as_secs_f64());
    }
    let mut y = vec![0.0f32; n];
    codec.decode(&codes, &[], &mut y).map_err(|e| e.to_string())?;
    let out: Vec<u8> = y.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(decoded, out).map_err(|e| format!("{decoded}: {e}"))?;
    if let Some(p) = blocks_out {
        std::fs::write(p, &codes).map_err(|e| format!("{p}: {e}"))?;
    }
    println!("type={ty} status=ok weights={n} encode_s={best:.6} bpw={}", codec.bits_per_weight());
    Ok(())
}
