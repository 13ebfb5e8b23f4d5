//! The NaN and infinity policy through the CLI (every other path:
//! `tests/reliability/nonfinite.rs`): exit 2, one line naming the tensor and element.

use arrowquant_tests::{listing, model_with_bad_value as model_with};

use super::{arrowquant, check_input_error, run};

#[test]
fn the_cli_exits_2_naming_tensor_and_element_with_one_and_several_threads() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_with(dir.path(), f32::NEG_INFINITY, 2049);
    let out = dir.path().join("q.parquet");
    let (m, o) = (model.to_str().unwrap(), out.to_str().unwrap());
    for threads in ["1", "2"] {
        for extra in [&[][..], &["--preset", "int4"], &["--bits", "2", "--min-accuracy", "0.9999"]] {
            let args: Vec<&str> = ["quantize", m, "-o", o].into_iter().chain(extra.iter().copied()).collect();
            let r = run(arrowquant(&args, &[("ARROW_QUANT_NUM_THREADS", threads)]));
            let what = format!("threads {threads} {extra:?}");
            check_input_error(&r, &["m.safetensors", "b.weight", "element 2049", "non-finite"])
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(listing(dir.path()), ["m.safetensors"], "{what}");
        }
    }
}
