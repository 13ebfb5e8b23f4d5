//! Our own large allocations fail as errors naming what was being allocated, not
//! with an abort (exit 134) that leaves the temporary output behind.

use std::os::unix::process::CommandExt;

use arrowquant_tests::diffusion::write_model;
use arrowquant_tests::listing;

use super::{arrowquant, check_input_error, run};

#[test]
fn a_calibration_file_claiming_billions_of_timesteps_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    write_model(&model);
    // 85 bytes that claim 4e9 timesteps and hold no layer: the time-group search
    // would need (groups + 2) x (T + 1) f64 of scratch, hundreds of GB.
    let cal = dir.path().join("cal.json");
    std::fs::write(
        &cal,
        r#"{"format":"arrowquant-calibration","version":1,"timesteps":4000000000,"layers":[]}"#,
    )
    .unwrap();
    let out = dir.path().join("q.parquet");
    let (m, c, o) = (model.to_str().unwrap(), cal.to_str().unwrap(), out.to_str().unwrap());
    let mut cmd = arrowquant(&["quantize", m, "-o", o, "--calibration", c, "-q"], &[]);
    // A 4 GiB address space, so the reservation fails whatever the machine's
    // overcommit policy (as under `ulimit -v`).
    // SAFETY: runs in the child between fork and exec; `setrlimit` is async-signal-safe
    // and only reads the struct it is given.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 4 << 30, rlim_max: 4 << 30 };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let r = run(cmd);
    // The claim is now refused against the file's size before anything is reserved;
    // the reservation itself uses try_reserve (unit tests in std-adapter's `alloc`).
    // Either way: one line naming the file and the claim, exit 2, no abort, no debris.
    check_input_error(&r, &["cal.json", "4000000000 timesteps"]).unwrap();
    assert_eq!(listing(dir.path()), ["cal.json", "m.safetensors"], "{r:?}");
}
