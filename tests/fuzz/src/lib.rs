//! Shared helpers of the fuzz targets: a byte cursor that turns fuzzer input into
//! choices, a codec chooser covering every codec of the core, and the reference
//! oracle of the NaN/infinity policy.

use arrowquant_core::{
    AnyCodec, Backend, BlockCodec, GroupCodec, GroupFormat, Input, Preset, QuantError, Scheme, SearchConfig,
    SearchedGroupCodec, TwoLevelCodec, TwoLevelFormat,
};

/// Largest finite magnitude the f16 group parameters can hold.
pub const F16_MAX: f32 = 65504.0;

/// Reads choices off the front of the fuzzer's input; past the end every read is 0,
/// so any input, however short, is a valid sequence of choices.
#[derive(Debug)]
pub struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data }
    }

    /// The next byte (0 past the end).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// The next little-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[usize::from(self.byte()) % items.len()]
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.data.split_at(n.min(self.data.len()));
        self.data = b;
        a
    }

    /// Everything that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.data)
    }

    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Picks any codec the core can build: plain group formats on every backend this CPU
/// runs, searched group formats, every preset, and arbitrary two-level formats
/// (invalid knobs fall back to a preset, so every input yields a codec).
pub fn choose_codec(c: &mut Cursor<'_>) -> AnyCodec {
    let bits = c.pick(&[2u8, 4, 8]);
    let group = c.pick(&[32usize, 64, 128, 256]);
    let scheme = c.pick(&[Scheme::Asymmetric, Scheme::Symmetric]);
    let format = GroupFormat::new(bits, group, scheme).expect("valid by construction");
    match c.byte() % 4 {
        0 => {
            let backends: Vec<Backend> = Backend::available().collect();
            let backend = c.pick(&backends);
            AnyCodec::Group(GroupCodec::with_backend(format, backend).expect("available backend"))
        }
        1 => {
            let search = c.pick(&[SearchConfig::FAST, SearchConfig::BALANCED, SearchConfig::FINE]);
            AnyCodec::SearchedGroup(SearchedGroupCodec::new(format, search))
        }
        2 => c.pick(&Preset::ALL).codec(),
        _ => {
            let block = c.pick(&[64usize, 128, 256]);
            let sub = c.pick(&[8usize, 16, 32, 64]);
            let (sb, mb, k) = (c.byte() % 9, c.byte() % 9, usize::from(c.byte() % 8));
            let search = c.pick(&[SearchConfig::FAST, SearchConfig::BALANCED, SearchConfig::FINE]);
            match TwoLevelFormat::new(bits, block, sub, sb, mb).and_then(|f| f.with_outliers(k)) {
                Ok(f) => AnyCodec::TwoLevel(TwoLevelCodec::new(f, search)),
                Err(_) => Preset::Int4.codec(),
            }
        }
    }
}

/// The error the NaN/infinity policy demands for `x` cut into granules of `granule`
/// elements (the last one may be shorter): the first granule holding a bad value is
/// reported, as `NonFinite` at its first non-finite element if it holds one, else as
/// `OutOfRange` at its first `|x| > 65504` element. `None` if every value is accepted.
pub fn expected_rejection(x: &[f32], granule: usize, first_element: u64) -> Option<QuantError> {
    for (g, chunk) in x.chunks(granule).enumerate() {
        let base = first_element + (g * granule) as u64;
        if let Some(i) = chunk.iter().position(|v| !v.is_finite()) {
            return Some(QuantError::NonFinite { element: base + i as u64 });
        }
        if let Some(i) = chunk.iter().position(|v| v.abs() > F16_MAX) {
            return Some(QuantError::OutOfRange { element: base + i as u64 });
        }
    }
    None
}

/// Whether `e` is an error the policy allows for `x` when the scan window is not
/// known (per-row scales scan eight sub-groups at a time): `NonFinite` must name a
/// non-finite element with none before it (out-of-range ones may precede it in the
/// same window); `OutOfRange` must name an out-of-range element with nothing bad before
/// it. `None` is allowed exactly when every value is accepted.
pub fn allowed_rejection(x: &[f32], e: Option<QuantError>) -> bool {
    let bad = |v: &f32| !v.is_finite() || v.abs() > F16_MAX;
    match e {
        None => !x.iter().any(bad),
        Some(QuantError::NonFinite { element }) => {
            let i = element as usize;
            i < x.len() && !x[i].is_finite() && x[..i].iter().all(|v| v.is_finite())
        }
        Some(QuantError::OutOfRange { element }) => {
            let i = element as usize;
            i < x.len() && x[i].is_finite() && x[i].abs() > F16_MAX && !x[..i].iter().any(bad)
        }
        Some(_) => false,
    }
}

/// Owned input elements of one dtype, built from fuzzer bytes.
#[derive(Debug, Clone)]
pub enum Elements {
    /// f32 values.
    F32(Vec<f32>),
    /// f16 values.
    F16(Vec<half::f16>),
    /// bf16 values.
    Bf16(Vec<half::bf16>),
}

impl Elements {
    /// Builds elements of a fuzzer-chosen dtype. Half of the inputs use the raw bit
    /// patterns; the other half map each byte to a small value and escape to a raw
    /// pattern on `0x80`, so that most blocks are accepted and the encoders run.
    pub fn from_cursor(c: &mut Cursor<'_>, max: usize) -> Elements {
        let dtype = c.byte() % 3;
        let raw = c.byte() & 1 == 0;
        let scale = f32::from(c.byte()) * 0.01 + 1e-3;
        let mut v: Vec<f32> = Vec::new();
        let mut h: Vec<u16> = Vec::new();
        while !c.is_empty() && v.len().max(h.len()) < max {
            if dtype == 0 {
                let b = c.byte();
                if raw || b == 0x80 {
                    v.push(f32::from_bits(u32::from_le_bytes([b, c.byte(), c.byte(), c.byte()])));
                } else {
                    v.push(f32::from(b as i8) * scale);
                }
            } else {
                let b = c.byte();
                if raw || b == 0x80 {
                    h.push(u16::from_le_bytes([b, c.byte()]));
                } else {
                    let x = f32::from(b as i8) * scale;
                    h.push(if dtype == 1 {
                        half::f16::from_f32(x).to_bits()
                    } else {
                        half::bf16::from_f32(x).to_bits()
                    });
                }
            }
        }
        match dtype {
            0 => Elements::F32(v),
            1 => Elements::F16(h.into_iter().map(half::f16::from_bits).collect()),
            _ => Elements::Bf16(h.into_iter().map(half::bf16::from_bits).collect()),
        }
    }

    /// Borrowed view.
    pub fn input(&self) -> Input<'_> {
        match self {
            Elements::F32(x) => Input::F32(x),
            Elements::F16(x) => Input::F16(x),
            Elements::Bf16(x) => Input::Bf16(x),
        }
    }

    /// The values widened to f32 (exact).
    pub fn to_f32(&self) -> Vec<f32> {
        let i = self.input();
        let mut out = vec![0f32; i.len()];
        i.to_f32(&mut out);
        out
    }
}

/// Checks the lengths the codec needs for `blocks` blocks.
pub fn block_buffers(codec: &impl BlockCodec, blocks: usize) -> (Vec<u8>, Vec<u8>, Vec<f32>) {
    (
        vec![0u8; blocks * codec.codes_len()],
        vec![0u8; blocks * codec.params_len()],
        vec![0f32; blocks * codec.block_len()],
    )
}

/// A scratch directory for targets that must go through the file system, created once
/// per process (in `/dev/shm` when it exists, so the writes stay in memory).
#[cfg(feature = "std-adapter")]
pub fn scratch_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let b = &mut tempfile::Builder::new();
        b.prefix("arrowquant-fuzz-");
        if shm.is_dir() { b.tempdir_in(shm) } else { b.tempdir() }.expect("scratch dir")
    })
    .path()
}

/// Asserts that an error message is one line and names `path` (how the CLI shows it).
#[cfg(feature = "std-adapter")]
pub fn assert_names_file(e: &arrowquant_std::AdapterError, path: &std::path::Path) {
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "multi-line error: {msg}");
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(msg.contains(&*name), "error does not name {name}: {msg}");
}

/// Lets the panics that `arrowquant_std::decode_guard` catches and turns into errors
/// through, while every other panic still aborts as libFuzzer's hook makes it.
///
/// libfuzzer-sys installs a panic hook that aborts the process on any panic, even one
/// that is caught later: without this, a panic inside the parquet crate that our
/// reader answers with an error would be reported as a crash. Call it at the top of
/// a target; only the first call installs the hook.
#[cfg(feature = "std-adapter")]
pub fn allow_guarded_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !arrowquant_std::decode_guard::in_guarded_decode() {
                fuzzer_hook(info);
            }
        }));
    });
}
