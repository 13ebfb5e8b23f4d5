"""Reads the GGUF file that our writer produced with gguf-py's reader and checks it.

`core/src/gguf/testdata/ours.gguf` is written by core's test
`gguf::tests::writer_is_deterministic_and_matches_the_committed_file` (which fails
when the writer's output changes; `GGUF_BLESS=1` rewrites the file). This script
checks that gguf-py (the `gguf` package, the reference Python reader) sees what we
meant to write: every metadata value with its type, every tensor's name, shape, type,
offset and data bytes.

    python tests/python/test_gguf_writer.py [path]     # exit 0 if all checks pass
"""

import math
import os
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType as T, GGMLQuantizationType as Q

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT = os.path.join(ROOT, "core", "src", "gguf", "testdata", "ours.gguf")


def scalar(field):
    return field.parts[field.data[0]][0].item()


def string(field, i=0):
    return bytes(field.parts[field.data[i]]).decode("utf-8")


def check(path):
    r = GGUFReader(path)
    f = r.fields
    assert scalar(f["GGUF.version"]) == 3
    expected_types = {
        "general.architecture": [T.STRING],
        "t.u8": [T.UINT8],
        "t.i8": [T.INT8],
        "t.u16": [T.UINT16],
        "t.i16": [T.INT16],
        "t.u32": [T.UINT32],
        "t.i32": [T.INT32],
        "t.f32": [T.FLOAT32],
        "t.bool": [T.BOOL],
        "t.str": [T.STRING],
        "t.u64": [T.UINT64],
        "t.i64": [T.INT64],
        "t.f64": [T.FLOAT64],
        "t.arr_u32": [T.ARRAY, T.UINT32],
        "t.arr_str": [T.ARRAY, T.STRING],
        "t.arr_f32": [T.ARRAY, T.FLOAT32],
        "t.arr_bool": [T.ARRAY, T.BOOL],
        "t.arr_empty": [T.ARRAY, T.INT64],
        "t.nested": [T.ARRAY, T.ARRAY, T.INT32],
        "general.file_type": [T.UINT32],
        "general.quantization_version": [T.UINT32],
    }
    keys = [k for k in f if not k.startswith("GGUF.")]
    assert keys == list(expected_types), keys
    for k, types in expected_types.items():
        if k == "t.arr_empty":
            # gguf-py lists no element type for an empty array; read the stored id.
            assert f[k].types == [T.ARRAY] and int(f[k].parts[3][0]) == T.INT64, f[k].parts
            continue
        assert f[k].types == types, (k, f[k].types)
    assert string(f["general.architecture"]) == "llama"
    assert scalar(f["t.u8"]) == 200
    assert scalar(f["t.i8"]) == -100
    assert scalar(f["t.u16"]) == 60000
    assert scalar(f["t.i16"]) == -30000
    assert scalar(f["t.u32"]) == 4000000000
    assert scalar(f["t.i32"]) == -2000000000
    assert scalar(f["t.f32"]) == 1.5
    assert scalar(f["t.bool"]) is True
    assert string(f["t.str"]) == "h\u00e9llo"
    assert scalar(f["t.u64"]) == 2**63 + 5
    assert scalar(f["t.i64"]) == -(2**62)
    assert scalar(f["t.f64"]) == -0.25
    assert [f["t.arr_u32"].parts[i][0] for i in f["t.arr_u32"].data] == [1, 2, 3]
    assert [string(f["t.arr_str"], i) for i in range(3)] == ["a", "", "ccc"]
    assert [f["t.arr_f32"].parts[i][0] for i in f["t.arr_f32"].data] == [0.5, -1.0]
    assert [bool(f["t.arr_bool"].parts[i][0]) for i in f["t.arr_bool"].data] == [True, False]
    assert f["t.arr_empty"].data == []
    assert scalar(f["general.file_type"]) == 7
    assert scalar(f["general.quantization_version"]) == 2

    # Tensor data: byte i + 1 for tensor i (see the Rust test's file_of).
    want = [
        ("a.weight", [3, 2], Q.F32, 24),
        ("b.weight", [32], Q.F16, 64),
        ("c.weight", [32, 2], Q.Q8_0, 68),
        ("d.weight", [256, 2, 1, 3], Q.Q4_K, 864),
    ]
    assert len(r.tensors) == len(want)
    size = os.path.getsize(path)
    for i, (t, (name, shape, ty, nbytes)) in enumerate(zip(r.tensors, want)):
        assert t.name == name, t.name
        assert list(t.shape) == shape, (name, t.shape)
        assert t.tensor_type == ty, (name, t.tensor_type)
        assert t.n_bytes == nbytes, (name, t.n_bytes)
        assert t.data_offset % 32 == 0, (name, t.data_offset)
        raw = np.frombuffer(r.data[t.data_offset : t.data_offset + nbytes], dtype=np.uint8)
        assert (raw == i + 1).all(), name
    last = r.tensors[-1]
    assert size == last.data_offset + last.n_bytes and size % 32 == 0
    assert not math.isnan(scalar(f["t.f32"]))
    print(f"ok: {path}: {len(keys)} key-values, {len(r.tensors)} tensors read by gguf-py")


if __name__ == "__main__":
    check(sys.argv[1] if len(sys.argv) > 1 else DEFAULT)
