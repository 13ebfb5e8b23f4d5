"""Compares our GGUF decoder with gguf-py's, bit for bit.

`arrowquant dequantize q.gguf -o ours.safetensors` decodes every tensor of a GGUF
file with `arrowquant_core::ggml::dequantize`; this script reads the same GGUF with
`gguf.GGUFReader`, dequantizes every tensor with `gguf.quants.dequantize` (a port of
ggml's `dequantize_row_*`) and checks that both give the same f32 bits.

    python tests/python/check_gguf_dequant.py q.gguf ours.safetensors [TYPE...]

With TYPE names (Q4_K, ...), also checks that at least one tensor of each was seen.
Exit 0 if everything matches, 1 otherwise (each mismatch named on stderr).
"""

import json
import struct
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        assert info["dtype"] == "F32", (name, info["dtype"])
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"])
    return out


def main(gguf_path, ours_path, want):
    ours = read_safetensors(ours_path)
    reader = GGUFReader(gguf_path)
    seen = {}
    bad = 0
    for t in reader.tensors:
        ty = t.tensor_type.name
        ref = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(-1)
        mine = ours.get(t.name)
        if mine is None:
            print(f"{t.name}: missing from {ours_path}", file=sys.stderr)
            bad += 1
            continue
        shape = [int(x) for x in reversed(t.shape.tolist())]
        if list(mine.shape) != shape:
            print(f"{t.name}: shape {list(mine.shape)} vs gguf {shape}", file=sys.stderr)
            bad += 1
            continue
        mine = mine.reshape(-1)
        if ref.size != mine.size or not np.array_equal(ref.view(np.uint32), mine.view(np.uint32)):
            diff = int(np.sum(ref.view(np.uint32) != mine.view(np.uint32))) if ref.size == mine.size else -1
            print(f"{t.name} ({ty}): {diff} of {mine.size} values differ", file=sys.stderr)
            bad += 1
            continue
        seen[ty] = seen.get(ty, 0) + 1
    for ty in want:
        if seen.get(ty, 0) == 0:
            print(f"no tensor of type {ty} in {gguf_path}", file=sys.stderr)
            bad += 1
    summary = ", ".join(f"{k} x{v}" for k, v in sorted(seen.items()))
    print(f"{gguf_path}: {sum(seen.values())} tensors bit-identical ({summary}); {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
