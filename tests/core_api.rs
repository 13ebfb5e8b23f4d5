//! The core's public API used as a downstream crate would use it.

use arrowquant_core::{GroupCodec, GroupFormat, Input, Scheme, StreamQuantizer, VecSink};

#[test]
fn stream_matches_one_shot_quantize() {
    let w: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    let f = GroupFormat::new(4, 64, Scheme::Asymmetric).unwrap();
    let mut q = StreamQuantizer::<_, 256>::new(GroupCodec::new(f)).unwrap();
    let mut sink = VecSink::new();
    for chunk in w[..960].chunks(13) {
        q.feed(Input::F32(chunk), &mut sink).unwrap();
    }
    let s = q.finish(&mut sink).unwrap();
    assert_eq!(s.elements, 960);
    let mut codes = vec![0u8; 15 * f.codes_len()];
    let mut params = vec![0u8; 15 * f.params_len()];
    arrowquant_core::quantize(f, Input::F32(&w[..960]), &mut codes, &mut params).unwrap();
    assert_eq!(sink.codes, codes);
    assert_eq!(sink.params, params);
}
