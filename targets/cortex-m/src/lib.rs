//! Cortex-M4F firmware support for the arrowquant-core tests in `tests/on_m4.rs`.
//!
//! - [`WEIGHTS`]: 4096 f32 weights in flash (a `static` evaluated at compile time).
//! - [`DEVICE_FILE`]: a device file (see `arrowquant_core::device`) written by the
//!   host build of the core in `build.rs`, embedded in flash.
//! - The `HOST_*` constants: hashes of the host's results the firmware must reproduce.
//! - The defmt logger (semihosting), the panic handlers (exit status 1) and the links
//!   to `cortex-m` (critical section) and `cortex-m-rt` (vector table, reset).
//!
//! No heap: the core is built without `alloc`.

#![no_std]

use cortex_m as _; // links the single-core critical-section implementation
use cortex_m_rt as _; // links the vector table and the reset handler
use defmt_semihosting as _; // the global defmt logger: frames go to semihosting stdout

pub mod fixture;

include!(concat!(env!("OUT_DIR"), "/expected.rs"));

/// The weights to quantize, in flash.
pub static WEIGHTS: [f32; fixture::LEN] = fixture::weights();

/// The device file written on the host, in flash.
pub static DEVICE_FILE: &[u8; DEVICE_FILE_LEN] = include_bytes!(concat!(env!("OUT_DIR"), "/flash.aqd"));

/// Unwraps a result, or fails the running test with the error's message.
pub fn check<T, E: core::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => defmt::panic!("{}: {}", what, defmt::Display2Format(&e)),
    }
}

/// Exits QEMU with status 1 so the test run fails.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("{}", defmt::Display2Format(info));
    semihosting::process::exit(1)
}

/// defmt's `panic!`/`assert!` end here: exit status 1.
#[defmt::panic_handler]
fn defmt_panic() -> ! {
    semihosting::process::exit(1)
}
