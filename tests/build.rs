//! Records the target triple, so the CLI tests can tell a `target/TRIPLE/PROFILE` layout
//! (a `--target` build, e.g. aarch64 under qemu) from `target/PROFILE`.

fn main() {
    let triple = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=AQ_TARGET_TRIPLE={triple}");
    println!("cargo:rerun-if-changed=build.rs");
}
