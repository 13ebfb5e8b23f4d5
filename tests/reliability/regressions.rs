//! Inputs that once crashed a fuzz target, kept as tests (each names its target and
//! the fix; `tests/fuzz/README.md` lists them).
