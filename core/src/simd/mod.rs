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
//!
//! # Structure
//!
//! - `vector`: the `Simd` trait (load, splat, min, max, add, sub, mul, horizontal
//!   reductions, round-to-code, f16/bf16 widening, byte packers), `#[inline(always)]`;
//! - `sse2`, `avx2`, `neon`: its implementations for `__m128`, `__m256` and
//!   `float32x4_t`, on *capability tokens* (`sse2::Sse2`, `avx2::Avx2`,
//!   `neon::Neon`): a token value exists only if the CPU runs that ISA;
//! - the algorithms themselves are written once, generic over the trait, in
//!   `kernels::generic` and `stats::generic`; the per-ISA entry points next to them
//!   are the only functions with `#[target_feature]`.

#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
pub(crate) mod vector;

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub mod neon;
#[cfg(target_arch = "x86_64")]
pub mod sse2;

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
            Backend::Neon => cfg!(all(target_arch = "aarch64", target_feature = "neon")),
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

    /// The capability token of this backend, if this CPU can run it.
    pub(crate) fn isa(self) -> Option<Isa> {
        match self {
            Backend::Scalar => Some(Isa::Scalar),
            #[cfg(target_arch = "x86_64")]
            Backend::Sse2 => sse2::Sse2::new().map(Isa::Sse2),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => avx2::Avx2::new().map(Isa::Avx2),
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            Backend::Neon => neon::Neon::new().map(Isa::Neon),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Every backend this CPU can run.
    pub fn available() -> impl Iterator<Item = Backend> {
        Backend::ALL.into_iter().filter(|b| b.is_available())
    }
}

/// A backend together with the proof that it can run: what the kernels dispatch on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Isa {
    /// The scalar reference.
    Scalar,
    /// SSE2.
    #[cfg(target_arch = "x86_64")]
    Sse2(sse2::Sse2),
    /// AVX2 + F16C.
    #[cfg(target_arch = "x86_64")]
    Avx2(avx2::Avx2),
    /// NEON.
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    Neon(neon::Neon),
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

#[cfg(test)]
mod tests {
    use super::Backend;

    #[test]
    fn detect_picks_the_best_path_of_this_architecture() {
        let b = Backend::detect();
        std::eprintln!("Backend::detect() = {b}");
        if cfg!(target_arch = "aarch64") {
            assert_eq!(b, Backend::Neon);
        } else if cfg!(target_arch = "x86_64") {
            assert!(b == Backend::Avx2 || b == Backend::Sse2, "{b}");
            assert_eq!(b == Backend::Avx2, Backend::Avx2.is_available());
        } else {
            assert_eq!(b, Backend::Scalar);
        }
        assert!(b.is_available() && Backend::Scalar.is_available());
    }

    #[test]
    fn tokens_exist_exactly_for_available_backends() {
        for b in Backend::ALL {
            assert_eq!(b.isa().is_some(), b.is_available(), "{b}");
        }
    }
}
