"""ctypes access to ggml's own quantizer and decoder (libggml-base.so).

Shared by core/src/ggml/testdata/gen_fixtures.py and benches/scripts/ggml_quality.py.
The library path comes from $GGML_LIB (default: /work/cache/llama-build/bin/libggml-base.so).
"""
import ctypes
import os

import numpy as np

TYPES = {  # name -> (ggml_type id, weights per block, bytes per block)
    "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q5_0": (6, 32, 22), "Q5_1": (7, 32, 24),
    "Q8_0": (8, 32, 34), "Q2_K": (10, 256, 84), "Q3_K": (11, 256, 110), "Q4_K": (12, 256, 144),
    "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210), "IQ4_NL": (20, 32, 18), "IQ4_XS": (23, 256, 136),
}

_TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


class _Traits(ctypes.Structure):  # struct ggml_type_traits (ggml.h)
    _fields_ = [
        ("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
        ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
        ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p), ("from_float_ref", ctypes.c_void_p),
    ]


class Ggml:
    def __init__(self, path=None):
        path = path or os.environ.get("GGML_LIB", "/work/cache/llama-build/bin/libggml-base.so")
        self.lib = ctypes.CDLL(path)
        self.lib.ggml_quantize_chunk.restype = ctypes.c_size_t
        self.lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                                 ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
        self.lib.ggml_get_type_traits.restype = ctypes.POINTER(_Traits)
        self.lib.ggml_get_type_traits.argtypes = [ctypes.c_int]

    def quantize(self, name, x):
        """ggml_quantize_chunk on a 2-D f32 array (rows, n_per_row), imatrix NULL."""
        tid, bl, bs = TYPES[name]
        x = np.ascontiguousarray(x, dtype=np.float32)
        rows, n = x.shape
        out = np.zeros(rows * n // bl * bs, dtype=np.uint8)
        got = self.lib.ggml_quantize_chunk(tid, x.ctypes.data, out.ctypes.data, 0, rows, n, None)
        assert got == out.size, (got, out.size)
        return out

    def dequantize(self, name, blocks, n):
        """ggml's to_float (dequantize_row_*) of n weights."""
        tid, _, _ = TYPES[name]
        t = self.lib.ggml_get_type_traits(tid).contents
        f = _TO_FLOAT(t.to_float)
        blocks = np.ascontiguousarray(blocks, dtype=np.uint8)
        y = np.zeros(n, dtype=np.float32)
        f(blocks.ctypes.data, y.ctypes.data, n)
        return y
