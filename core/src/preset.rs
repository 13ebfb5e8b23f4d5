//! Named presets: points on the size/quality curve, and [`AnyCodec`], one codec type
//! that can hold any of them.
//!
//! | preset | layout id | bpw | what it is |
//! |---|---|---|---|
//! | `fast` | `g4a128` | 4.25 | plain min-max INT4, group 128 (the fast default, [`GroupCodec`]) |
//! | `int2` | `k2b256s16c4m4o0` | 2.625 | two-level INT2, sub-groups of 16, cheap search |
//! | `int2-fine` | `k2b256s16c4m4o0` | 2.625 | same layout, full search |
//! | `int4` | `k4b256s32c6m6o0` | 4.5 | two-level INT4, sub-groups of 32, cheap search |
//! | `int4-fine` | `k4b256s32c6m6o0` | 4.5 | same layout, full search |
//! | `int8` | `k8b256s32c6m6o0` | 8.5 | two-level INT8, sub-groups of 32 |
//!
//! The raw knobs stay reachable: build a [`GroupFormat`](crate::GroupFormat) or a
//! [`TwoLevelFormat`] and wrap it with [`AnyCodec::from`].
//!
//! # Layout ids
//!
//! Every codec has a stable layout id ([`CodecLayout`], `Display`) that says how to
//! *decode* its bytes; the search knobs do not appear because they do not change
//! the layout. [`AnyCodec::from_layout_id`] rebuilds a decoder from it.
//!
//! - `g{b}{a|s}{G}`: [`GroupFormat`](crate::GroupFormat) with `b`-bit codes,
//!   asymmetric or symmetric, groups of `G` (`g4a128`).
//! - `k{b}b{B}s{S}c{sb}m{mb}o{k}` and a trailing `r` in per-row mode:
//!   [`TwoLevelFormat`] (`k4b256s32c6m6o0`).
//!
//! # Measured quality
//!
//! See [Quality against ggml](#quality-against-ggml) below.
#![doc = include_str!("../../docs/QUALITY.md")]

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
    /// Two-level INT2 with a cheap search (2.625 bpw).
    Int2,
    /// Two-level INT2 with the full search (2.625 bpw).
    Int2Fine,
    /// Two-level INT4 with a cheap search (4.5 bpw).
    Int4,
    /// Two-level INT4 with the full search (4.5 bpw).
    Int4Fine,
    /// Two-level INT8 (8.5 bpw).
    Int8,
}

/// Search of the `int2` preset.
const INT2_SEARCH: SearchConfig = SearchConfig { grid_steps: 6, neighbors: true, ..SearchConfig::FAST };
/// Search of the `int4` preset.
const INT4_SEARCH: SearchConfig = SearchConfig::FAST;
/// Search of the `int8` preset.
const INT8_SEARCH: SearchConfig = SearchConfig { refit_iters: 1, block_refits: 1, ..SearchConfig::FAST };

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
            Preset::Int2 => "two-level INT2, sub-groups of 16 with 4-bit scales and mins, cheap search",
            Preset::Int2Fine => "two-level INT2, sub-groups of 16 with 4-bit scales and mins, full search",
            Preset::Int4 => "two-level INT4, sub-groups of 32 with 6-bit scales and mins, cheap search",
            Preset::Int4Fine => "two-level INT4, sub-groups of 32 with 6-bit scales and mins, full search",
            Preset::Int8 => "two-level INT8, sub-groups of 32 with 6-bit scales and mins",
        }
    }

    /// The codec of this preset.
    pub fn codec(self) -> AnyCodec {
        let two = |bits, sub, sb, mb, search| {
            let f = TwoLevelFormat::new(bits, 256, sub, sb, mb).expect("preset formats are valid");
            AnyCodec::TwoLevel(TwoLevelCodec::new(f, search))
        };
        match self {
            Preset::Fast => {
                let f = GroupFormat::new(4, 128, Scheme::Asymmetric).expect("preset formats are valid");
                AnyCodec::Group(GroupCodec::new(f))
            }
            Preset::Int2 => two(2, 16, 4, 4, INT2_SEARCH),
            Preset::Int2Fine => two(2, 16, 4, 4, SearchConfig::FINE),
            Preset::Int4 => two(4, 32, 6, 6, INT4_SEARCH),
            Preset::Int4Fine => two(4, 32, 6, 6, SearchConfig::FINE),
            Preset::Int8 => two(8, 32, 6, 6, INT8_SEARCH),
        }
    }

    /// Bits per weight of the preset's blocks.
    pub fn bits_per_weight(self) -> f64 {
        self.codec().bits_per_weight()
    }
}

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
fn field<'a>(s: &'a str, tag: char) -> Option<(usize, &'a str)> {
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
