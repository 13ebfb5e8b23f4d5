#!/usr/bin/env python3
"""Writes the golden decoder vectors of the 256-weight ggml types (k_<type>.bin).

Each file is BLOCKS blocks of random bytes (with finite f16 super-scales, edge values
included: +-0, subnormals, +-65504) followed by what gguf's numpy port of ggml's
dequantize_row_* makes of them, as little-endian f32. Rerun with the venv:

    /work/cache/venv/bin/python core/src/ggml/testdata/k_golden.py
"""
import os

import numpy as np
from gguf.constants import GGMLQuantizationType as T
from gguf.quants import dequantize

BLOCKS = 5
# type, block bytes, offsets of its f16 fields
TYPES = {
    "q2_k": (T.Q2_K, 84, [80, 82]),
    "q3_k": (T.Q3_K, 110, [108]),
    "q4_k": (T.Q4_K, 144, [0, 2]),
    "q5_k": (T.Q5_K, 176, [0, 2]),
    "q6_k": (T.Q6_K, 210, [208]),
    "iq4_xs": (T.IQ4_XS, 136, [0]),
}
EDGE = np.array([0.0, -0.0, 65504.0, -65504.0, 2.0**-24, -(2.0**-14), 1.0, 0.5], dtype=np.float16)


def main():
    rng = np.random.default_rng(20261207)
    here = os.path.dirname(os.path.abspath(__file__))
    for name, (qtype, size, f16_at) in TYPES.items():
        raw = rng.integers(0, 256, size=(BLOCKS, size), dtype=np.uint8)
        raw[0, :] = 0xFF  # every code and scale field at its largest
        raw[1, :] = 0x00
        for b in range(BLOCKS):
            for k, at in enumerate(f16_at):
                if b < 2:
                    v = np.float16(0.75 - 0.5 * k)
                elif b < 4:
                    v = EDGE[(2 * (b - 2) + k) % len(EDGE)]
                else:
                    v = np.float16(rng.standard_normal() * 0.01)
                raw[b, at:at + 2] = np.frombuffer(np.float16(v).tobytes(), dtype=np.uint8)
        y = dequantize(raw.reshape(-1), qtype).astype("<f4")
        assert y.size == BLOCKS * 256 and np.all(np.isfinite(y))
        with open(os.path.join(here, f"k_{name}.bin"), "wb") as f:
            f.write(raw.tobytes())
            f.write(y.tobytes())


if __name__ == "__main__":
    main()
