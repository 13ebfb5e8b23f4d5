//! SIMD backends and the detection policy.
//!
//! The policy, stated once:
//! 1. a feature enabled at compile time (`cfg(target_feature = ...)`) is used
//!    unconditionally;
//! 2. otherwise, with the `std` feature, AVX2 (with F16C) is detected at run time;
//! 3. otherwise the baseline is used: SSE2 on x86_64, NEON on aarch64, scalar elsewhere.
//!
//! Dispatch happens once per buffer: each per-ISA entry point loops over all the
//! groups of the buffer it is given.

/// A kernel implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// Portable scalar reference.
    Scalar,
    /// x86_64 SSE2 (always present on x86_64).
    Sse2,
    /// x86_64 AVX2 + F16C (detected at run time with `std`).
    Avx2,
    /// aarch64 NEON (always present on aarch64).
    Neon,
}

impl Backend {
    /// Every backend, in order of preference from slowest to fastest.
    pub const ALL: [Backend; 4] = [Backend::Scalar, Backend::Sse2, Backend::Avx2, Backend::Neon];

    /// A short name for logs and benchmarks.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Sse2 => "sse2",
            Backend::Avx2 => "avx2",
            Backend::Neon => "neon",
        }
    }

    /// Whether this CPU can run the backend (and this build contains it).
    pub fn is_available(self) -> bool {
        match self {
            Backend::Scalar => true,
            Backend::Sse2 => cfg!(target_arch = "x86_64"),
            Backend::Avx2 => avx2_available(),
            Backend::Neon => cfg!(target_arch = "aarch64"),
        }
    }

    /// The fastest backend this CPU can run.
    pub fn detect() -> Backend {
        if Backend::Avx2.is_available() {
            Backend::Avx2
        } else if Backend::Sse2.is_available() {
            Backend::Sse2
        } else if Backend::Neon.is_available() {
            Backend::Neon
        } else {
            Backend::Scalar
        }
    }

    /// Every backend this CPU can run.
    pub fn available() -> impl Iterator<Item = Backend> {
        Backend::ALL.into_iter().filter(|b| b.is_available())
    }
}

impl core::fmt::Display for Backend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2_available() -> bool {
    if cfg!(all(target_feature = "avx2", target_feature = "f16c")) {
        return true;
    }
    #[cfg(feature = "std")]
    {
        extern crate std;
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(feature = "std"))]
    {
        false
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2_available() -> bool {
    false
}
