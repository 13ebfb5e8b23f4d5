//! The streaming quantizer on arbitrary f32/f16/bf16 bit patterns, cut into arbitrary
//! chunks, over every codec (group on each backend, searched group, every preset,
//! two-level with any knobs, per-row two-level). Properties:
//! - no panic;
//! - an error is exactly the one the NaN/infinity policy demands (first bad block,
//!   `NonFinite` before `OutOfRange`, the element counted from the stream start), and
//!   success means every value was finite and `|x| <= 65504`;
//! - the output does not depend on the chunking (compared with a single `feed`);
//! - on success the block and element counts add up and every block decodes to
//!   finite values.
#![no_main]

use arrowquant_core::{
    AnyCodec, BlockCodec, Input, StreamError, StreamQuantizer, StreamSummary, TwoLevelCodec, VecSink,
};
use arrowquant_fuzz::{Cursor, Elements, allowed_rejection, choose_codec, expected_rejection};
use libfuzzer_sys::fuzz_target;

type Outcome = Result<(StreamSummary, VecSink), arrowquant_core::QuantError>;

fn run(codec: AnyCodec, input: Input<'_>, chunks: &[usize], quality: bool) -> Outcome {
    let mut q = StreamQuantizer::<AnyCodec, 256>::new(codec).expect("block fits").track_quality(quality);
    let mut sink = VecSink::new();
    let mut at = 0;
    let mut sizes = chunks.iter().copied().cycle();
    while at < input.len() {
        let n = sizes.next().unwrap_or(input.len()).min(input.len() - at);
        q.feed(input.slice(at, at + n), &mut sink).map_err(unwrap_quant)?;
        at += n;
    }
    let summary = q.finish(&mut sink).map_err(unwrap_quant)?;
    Ok((summary, sink))
}

fn unwrap_quant(e: StreamError<core::convert::Infallible>) -> arrowquant_core::QuantError {
    match e {
        StreamError::Quant(q) => q,
        StreamError::Sink(never) => match never {},
        _ => unreachable!("StreamError has two variants"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let mut codec = choose_codec(&mut c);
    let per_row = c.byte() % 8 == 0;
    let quality = c.byte() & 1 == 1;
    // Chunk sizes: 1..=8 sizes, each 0..=1023 (0 feeds an empty chunk, then 1).
    let n_sizes = usize::from(c.byte() % 8) + 1;
    let mut chunks: Vec<usize> = (0..n_sizes).map(|_| usize::from(c.u16() % 1024)).collect();
    if chunks.iter().all(|&s| s == 0) {
        chunks.push(1);
    }
    let elements = Elements::from_cursor(&mut c, 4096);
    let input = elements.input();
    let x = elements.to_f32();

    if per_row {
        // Per-row two-level mode: row scales first, then blocks. The row pass scans
        // eight sub-groups at a time, so its error is checked without assuming a window.
        let AnyCodec::TwoLevel(t) = codec else { return };
        match t.row_scales(input) {
            Ok(row) => {
                assert!(allowed_rejection(&x, None), "row scales accepted a rejected value");
                codec = AnyCodec::TwoLevel(TwoLevelCodec::with_row(t.format(), t.search(), row));
            }
            Err(e) => {
                assert!(allowed_rejection(&x, Some(e)), "row scales error {e:?}");
                return;
            }
        }
    }

    let b = codec.block_len();
    let expected = expected_rejection(&x, b, 0);
    let chunked = run(codec, input, &chunks, quality);
    let whole = run(codec, input, &[input.len().max(1)], false);
    match (&chunked, &whole) {
        (Ok((s, sink)), Ok((s1, sink1))) => {
            assert_eq!(expected, None, "accepted a value the policy rejects");
            assert_eq!(sink, sink1, "output depends on the chunking");
            assert_eq!((s.elements, s.blocks, s.padding), (s1.elements, s1.blocks, s1.padding));
            let n = x.len();
            assert_eq!(s.elements, n as u64);
            assert_eq!(s.blocks, n.div_ceil(b) as u64);
            assert_eq!(s.padding, s.blocks as usize * b - n);
            assert_eq!(sink.codes.len(), s.blocks as usize * codec.codes_len());
            assert_eq!(sink.params.len(), s.blocks as usize * codec.params_len());
            let mut out = vec![0f32; s.blocks as usize * b];
            codec.decode(&sink.codes, &sink.params, &mut out).expect("own output decodes");
            assert!(out.iter().all(|v| v.is_finite()), "decoded a non-finite value");
            if let Some(q) = s.quality {
                assert_eq!(q.count, n as u64);
                assert!(!q.cosine.is_nan() && !q.rel_rmse.is_nan() && !q.sqnr_db.is_nan(), "quality {q:?}");
            }
        }
        (Err(e), Err(e1)) => {
            assert_eq!(e, e1, "error depends on the chunking");
            assert_eq!(Some(*e), expected, "wrong rejection");
        }
        _ => panic!("chunked {:?} vs whole {:?}", chunked.as_ref().err(), whole.as_ref().err()),
    }
});
