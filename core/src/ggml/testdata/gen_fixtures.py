"""Generates the ggml test fixtures of core/src/ggml (run with /work/cache/venv/bin/python).

For each 32-weight type T, two small files:
- golden_<t>.bin: N random blocks (valid f16 scales, edge cases: zero, -0, negative,
  f16 max, subnormal scales; all-0 and all-max codes) followed by what
  gguf.quants.dequantize (bit-exact numpy port of ggml's dequantize_row_*) makes of them,
  as little-endian f32;
- ggml_<t>.bin: ggml's own quantizer (ggml_quantize_chunk in libggml-base.so, no
  imatrix) applied to inputs.f32 (BLOCKS blocks of 32 f32, shared by every type).
Where gguf has a numpy quantizer (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) it must agree with the
library byte for byte; the script checks that. Also checks ggml's C decoder against gguf's
on the golden blocks. Deterministic (fixed seed).

    /work/cache/venv/bin/python core/src/ggml/testdata/gen_fixtures.py
"""
import os
import sys

import numpy as np
import gguf
from gguf.quants import dequantize, quantize

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../../benches/scripts"))
from ggml_lib import Ggml, TYPES  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "IQ4_NL"]
GOLDEN_BLOCKS = 40
BLOCKS = 96
rng = np.random.default_rng(20261207)


def random_f16_bits(n):
    """Finite f16 bit patterns: random normals/subnormals of both signs plus edge values."""
    h = rng.integers(0, 0x7C00, size=n, dtype=np.uint16) | (rng.integers(0, 2, size=n, dtype=np.uint16) << 15)
    # A realistic magnitude for most (|d| in 2^-14 .. 2^0), edge values for the first few.
    mag = (rng.integers(0x0400, 0x3C00, size=n, dtype=np.uint16))
    h = np.where(rng.random(n) < 0.7, (h & 0x8000) | mag, h)
    edges = [0x0000, 0x8000, 0x7BFF, 0xFBFF, 0x0001, 0x83FF, 0x3C00, 0xBC00]
    h[: len(edges)] = edges
    return h.astype(np.uint16)


def golden(name):
    gt = getattr(gguf.GGMLQuantizationType, name)
    _, bl, bs = TYPES[name]
    b = rng.integers(0, 256, size=(GOLDEN_BLOCKS, bs), dtype=np.uint8)
    nscale = 2 if name in ("Q4_1", "Q5_1") else 1
    for k in range(nscale):
        h = random_f16_bits(GOLDEN_BLOCKS)
        if k == 1:
            h = np.roll(h, 3)
        b[:, 2 * k : 2 * k + 2] = h.view(np.uint8).reshape(-1, 2)
    b[8, 2 * nscale :] = 0x00  # all-zero codes
    b[9, 2 * nscale :] = 0xFF  # all-max codes
    b[10, 2 * nscale :] = 0x80 if name == "Q8_0" else 0xFF  # -128 for Q8_0
    y = dequantize(b, gt).astype(np.float32).reshape(-1)
    return b, y


def inputs():
    """BLOCKS blocks of 32: Gaussian, heavy tails, outliers, uniform, constant, zero, tiny."""
    x = rng.standard_normal((BLOCKS, 32)).astype(np.float32) * 0.05
    x[10:20] = rng.standard_t(2, (10, 32)) * 0.02
    x[20:25, 3] = 1.5  # one outlier
    x[25:30] = rng.uniform(-1, 1, (5, 32))
    x[30:35] = rng.uniform(0.2, 0.9, (5, 32))  # one-signed
    x[35] = 0.0
    x[36] = 0.125
    x[37] = -3.0
    x[38] = rng.standard_normal(32) * 1e-6
    x[39] = rng.standard_normal(32) * 1e-20  # below IQ4_NL's GROUP_MAX_EPS
    x[40] = np.linspace(-65504, 65504, 32)
    x[41] = rng.integers(-8, 8, 32) * 0.25  # exactly representable on a Q4_0 grid
    x[42:48] = rng.standard_normal((6, 32)) * 100
    return x.astype(np.float32)


def main():
    g = Ggml()
    x = inputs()
    x.tofile(os.path.join(HERE, "inputs.f32"))
    for name in NAMES:
        gt = getattr(gguf.GGMLQuantizationType, name)
        blocks, y = golden(name)
        # ggml's C decoder must agree with gguf's numpy port (modulo NaN payloads).
        yc = g.dequantize(name, blocks.reshape(-1), y.size)
        same = (yc.view(np.uint32) == y.view(np.uint32)) | (np.isnan(yc) & np.isnan(y))
        assert same.all(), (name, np.flatnonzero(~same)[:5])
        with open(os.path.join(HERE, f"golden_{name.lower()}.bin"), "wb") as f:
            f.write(blocks.tobytes())
            f.write(y.astype("<f4").tobytes())
        q = g.quantize(name, x)
        if name != "IQ4_NL":
            qn = quantize(x, gt).reshape(-1)
            diff = np.flatnonzero(qn != q)
            assert diff.size == 0, (name, "gguf numpy quantizer differs from ggml", diff[:8])
        q.tofile(os.path.join(HERE, f"ggml_{name.lower()}.bin"))
        print(f"{name}: golden {blocks.nbytes + y.nbytes} B, ggml {q.nbytes} B")


if __name__ == "__main__":
    main()
