//! The NaN and infinity policy of `arrowquant_core` (crate docs): a NaN or an infinity
//! is rejected with `NonFinite`, a finite `|x| > 65504` with `OutOfRange`, each naming
//! the first offending element of the first block that holds one (`NonFinite` first
//! within a block); subnormal values are quantized like any other. Checked on every
//! path: the streaming quantizer with odd chunkings over every backend this CPU runs,
//! searched formats and every preset, each input dtype; the std adapter with several
//! chunks per tensor, sequential and (with the `rayon` feature) parallel, with and
//! without the bit-width fallback (the CLI: `edge-cli/tests/cli/reliability/nonfinite.rs`).

use std::convert::Infallible;

use arrowquant_core::{
    AnyCodec, Backend, BlockCodec, GroupCodec, GroupFormat, Input, Preset, QuantError, Scheme, SearchConfig,
    SearchedGroupCodec, StreamError, StreamQuantizer, VecSink, bf16, f16,
};
use arrowquant_std::{AdapterError, Config, Model};
use arrowquant_std::{Tuning, WriterLimits, quantize_model_with};

use arrowquant_tests::{listing, model_with_bad_value as model_with, weights};

/// Elements of the test stream: not a multiple of any block, so the last block is padded.
const N: usize = 1000;

/// Every codec the policy must hold for: each group format on each backend, the
/// searched group codec, and every preset.
fn codecs() -> Vec<(String, AnyCodec)> {
    let mut v = Vec::new();
    for (bits, group, scheme) in
        [(4, 128, Scheme::Asymmetric), (2, 32, Scheme::Symmetric), (8, 256, Scheme::Asymmetric)]
    {
        let f = GroupFormat::new(bits, group, scheme).unwrap();
        for b in Backend::available() {
            v.push((
                format!("g{bits}/{group}/{scheme:?}/{b}"),
                GroupCodec::with_backend(f, b).unwrap().into(),
            ));
        }
        v.push((format!("searched g{bits}/{group}"), SearchedGroupCodec::new(f, SearchConfig::FINE).into()));
    }
    for p in Preset::ALL {
        v.push((format!("preset {p}"), p.codec()));
    }
    v
}

#[derive(Clone, Copy, Debug)]
enum Dt {
    F32,
    F16,
    Bf16,
}

/// Streams `x` (converted to `dt`) in chunks cycling through `chunks`; returns the error
/// or the decoded values of the real elements.
fn stream(codec: AnyCodec, x: &[f32], dt: Dt, chunks: &[usize]) -> Result<Vec<f32>, QuantError> {
    let h16: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
    let hb: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
    let input = match dt {
        Dt::F32 => Input::F32(x),
        Dt::F16 => Input::F16(&h16),
        Dt::Bf16 => Input::Bf16(&hb),
    };
    let mut q = StreamQuantizer::<AnyCodec, 256>::new(codec).unwrap().track_quality(true);
    let mut sink = VecSink::new();
    let unwrap = |e: StreamError<Infallible>| match e {
        StreamError::Quant(q) => q,
        other => panic!("sink error {other:?}"),
    };
    let mut at = 0;
    for &n in chunks.iter().cycle() {
        if at >= x.len() {
            break;
        }
        let end = (at + n).min(x.len());
        q.feed(input.slice(at, end), &mut sink).map_err(unwrap)?;
        at = end;
    }
    let s = q.finish(&mut sink).map_err(unwrap)?;
    let mut out = vec![0f32; s.blocks as usize * codec.block_len()];
    codec.decode(&sink.codes, &sink.params, &mut out).expect("own output decodes");
    out.truncate(x.len());
    Ok(out)
}

const CHUNKINGS: [&[usize]; 6] = [&[1], &[3], &[7, 1, 250], &[31], &[257], &[N]];

/// Runs every codec, dtype and chunking on `x` and checks the outcome with `expect`
/// (which gets the codec's block length and the dtype).
fn check_all(what: &str, x: &[f32], expect: impl Fn(usize, Dt) -> Option<QuantError>) {
    for (name, codec) in codecs() {
        for dt in [Dt::F32, Dt::F16, Dt::Bf16] {
            let want = expect(codec.block_len(), dt);
            for chunks in CHUNKINGS {
                let got = stream(codec, x, dt, chunks);
                match (&got, want) {
                    (Err(e), Some(w)) => assert_eq!(*e, w, "{what}: {name} {dt:?} chunks {chunks:?}"),
                    (Ok(y), None) => {
                        assert!(y.iter().all(|v| v.is_finite()), "{what}: {name} {dt:?}: non-finite output")
                    }
                    _ => {
                        panic!("{what}: {name} {dt:?} chunks {chunks:?}: got {:?}, want {want:?}", got.err())
                    }
                }
            }
        }
    }
}

#[test]
fn a_single_nan_or_infinity_is_rejected_naming_its_element_on_every_path() {
    for bad in [f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        // First element, a block boundary, mid-stream, and inside the padded last block.
        for at in [0, 255, 256, 517, N - 1] {
            let mut x = weights(N, at as u64);
            x[at] = bad;
            check_all(&format!("{bad} at {at}"), &x, |_, _| {
                Some(QuantError::NonFinite { element: at as u64 })
            });
        }
    }
}

/// `v` as the stream sees it after conversion to `dt`.
fn as_dtype(v: f32, dt: Dt) -> f32 {
    match dt {
        Dt::F32 => v,
        Dt::F16 => f16::from_f32(v).to_f32(),
        Dt::Bf16 => bf16::from_f32(v).to_f32(),
    }
}

/// The policy's verdict on one value at element `at`.
fn verdict(v: f32, at: usize) -> Option<QuantError> {
    let element = at as u64;
    if !v.is_finite() {
        Some(QuantError::NonFinite { element })
    } else if v.abs() > 65504.0 {
        Some(QuantError::OutOfRange { element })
    } else {
        None
    }
}

#[test]
fn huge_finite_values_are_rejected_out_of_range_and_the_f16_limit_is_accepted() {
    for (v, at) in [(1.0e6f32, 3usize), (-65520.0, 300), (f32::MAX, N - 1), (70000.0, 128)] {
        let mut x = weights(N, 7);
        x[at] = v;
        check_all(&format!("{v} at {at}"), &x, |_, dt| {
            // f16 input cannot hold a finite value above 65504 (it arrives as infinity),
            // nor bf16 f32::MAX: the converted value decides.
            let want = verdict(as_dtype(v, dt), at);
            assert!(want.is_some());
            want
        });
    }
    let mut x = weights(N, 8);
    x[10] = 65504.0;
    x[700] = -65504.0;
    // bf16 rounds 65504 up to 65536, which is out of range.
    check_all("+-65504", &x, |_, dt| verdict(as_dtype(65504.0, dt), 10));
}

#[test]
fn nonfinite_wins_within_a_block_and_the_first_bad_block_wins_across_blocks() {
    let mut x = weights(N, 9);
    x[280] = 1.0e6;
    x[300] = f32::NAN;
    check_all("huge at 280, NaN at 300", &x, |b, dt| {
        let first = verdict(as_dtype(1.0e6, dt), 280);
        if matches!(first, Some(QuantError::NonFinite { .. })) {
            first
        } else if 280 / b == 300 / b {
            Some(QuantError::NonFinite { element: 300 })
        } else {
            first
        }
    });
}

#[test]
fn subnormal_weights_are_quantized_like_any_other() {
    let tiny = f32::MIN_POSITIVE / 8.0; // subnormal in f32
    assert!(tiny.is_subnormal());
    let mut x: Vec<f32> = weights(N, 10).iter().map(|v| v * tiny).collect();
    x[0] = -0.0;
    x[1] = f32::from_bits(1); // the smallest subnormal
    check_all("f32 subnormals", &x, |_, _| None);
    for (name, codec) in codecs() {
        let y = stream(codec, &x, Dt::F32, &[13]).unwrap();
        // Parameters are f16, whose smallest step is 2^-24: the error is within a few.
        let err = x.iter().zip(&y).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err <= 4.0 * f16::from_bits(1).to_f32(), "{name}: error {err} on subnormal input");
    }
    // Subnormal f16 values next to normal weights.
    let mut x = weights(N, 11);
    for v in x.iter_mut().step_by(3) {
        *v = f16::from_bits(0x0001).to_f32() * 7.0;
    }
    check_all("f16 subnormals", &x, |_, _| None);
}

#[test]
fn the_std_adapter_rejects_naming_tensor_and_element_sequential_parallel_and_fallback() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, at) in [(f32::NAN, 4321usize), (f32::INFINITY, 0), (3.0e5, 5119)] {
        let model = Model::open(model_with(dir.path(), bad, at)).unwrap();
        let want = if bad.is_finite() {
            QuantError::OutOfRange { element: at as u64 }
        } else {
            QuantError::NonFinite { element: at as u64 }
        };
        for threads in [1, 2] {
            for preset in [None, Some("int2"), Some("int4-fine"), Some("int8")] {
                for min_accuracy in [0.0, 0.99999] {
                    let mut c = Config::default();
                    c.bit_width = 2;
                    c.num_threads = threads;
                    c.preset = preset.map(str::to_string);
                    c.min_accuracy = min_accuracy;
                    // Several chunks per tensor and several windows, so the bad element
                    // is found in a later chunk than the first.
                    let tuning = Tuning {
                        chunk_elements: 512,
                        window_bytes: 4096,
                        buffer_bytes: 1 << 20,
                        raw_chunk_bytes: 4096,
                        writer: WriterLimits::for_budget(32 << 20),
                    };
                    let out = dir.path().join("q.parquet");
                    let r = quantize_model_with(&model, &c, tuning, &out, &mut |_| {});
                    let what =
                        format!("{bad} at {at}, threads {threads}, {preset:?}, min_accuracy {min_accuracy}");
                    match r {
                        Err(AdapterError::Quant { tensor, source, .. }) => {
                            assert_eq!((tensor.as_str(), source), ("b.weight", want), "{what}")
                        }
                        other => panic!("{what}: {:?}", other.map(|_| ())),
                    }
                    assert!(!out.exists(), "{what}: output left behind");
                    assert_eq!(listing(dir.path()), ["m.safetensors"], "{what}");
                }
            }
        }
    }
}
