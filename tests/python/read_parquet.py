#!/usr/bin/env python3
"""An independent ArrowQuant reader: pyarrow + numpy and docs/FORMAT.md, nothing else.

Usage:
    read_parquet.py QUANTIZED.parquet REFERENCE.safetensors
    read_parquet.py --time-groups QUANTIZED.parquet
    read_parquet.py --equalization QUANTIZED.parquet

Dequantizes every tensor of QUANTIZED.parquet following docs/FORMAT.md and compares the
result bit for bit with REFERENCE.safetensors (the F32 export written by the Rust
reader, `QuantizedFile::export_safetensors`). Tensors stored raw must match byte for
byte in their original dtype. Exit status 0 if everything matches, 1 otherwise.
Rows are read a few at a time, so memory stays bounded by one tensor's output.

With --time-groups, reads the time-aware activation parameters (FORMAT.md, "Time-aware
activation parameters"), checks that every layer's groups cover 0..timesteps in order,
and prints one JSON object: {layer: [[scale, zero_point] for t in 0..timesteps]}, found
by binary search on t_end as a runtime would. Exit status 1 if the table is malformed.

With --equalization, reads the channel-equalization factors (FORMAT.md, "Channel
equalization"), checks that each equalized tensor is 2-D with one positive factor per
input column, dequantizes it (the stored codes decode to W * s) and divides column j by
s_j, as a runtime folding the factors back would. Prints one JSON object:
{tensor: {"layer", "alpha", "factors", "unscaled_absmax": [max_o |W'[o, j] / s_j| per j]}}.
"""
import bisect
import json
import re
import struct
import sys

import numpy as np
import pyarrow.parquet as pq


def unpack_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """Unpack codes, lowest element in the lowest bits of each byte (FORMAT.md, "Packing")."""
    if bits == 8:
        return packed
    if bits == 4:
        return np.stack([packed & 15, packed >> 4], -1).reshape(-1)
    if bits == 2:
        return np.stack([(packed >> s) & 3 for s in (0, 2, 4, 6)], -1).reshape(-1)
    raise ValueError(f"unsupported bits {bits}")


def dequantize_row(row) -> np.ndarray:
    """Decode one group row (`g4a128`, ...) to float32 (FORMAT.md, "Decoding a group row")."""
    bits, g, blocks = row["bits"], row["block_len"], row["blocks"]
    q = unpack_codes(np.frombuffer(row["codes"], np.uint8), bits)
    q = q.reshape(blocks, g).astype(np.float32)
    p = np.frombuffer(row["params"], "<f2").astype(np.float32)
    if row["scheme"] == "asymmetric":
        p = p.reshape(blocks, 2)
        x = q * p[:, 0:1] + p[:, 1:2]  # multiply, then add, both in float32
    elif row["scheme"] == "symmetric":
        x = (q - np.float32(2 ** (bits - 1))) * p.reshape(blocks, 1)
    else:
        raise ValueError(f"unknown scheme {row['scheme']}")
    return x.reshape(-1)[: row["element_count"]]


def bit_stream(buf: np.ndarray, n: int, k: int) -> np.ndarray:
    """Values of k bits, value j at bits j*k.. of a little-endian bit stream (per block row)."""
    bits = np.unpackbits(buf, axis=-1, bitorder="little")[..., : n * k]
    bits = bits.reshape(*buf.shape[:-1], n, k).astype(np.uint32)
    return (bits << np.arange(k, dtype=np.uint32)).sum(-1).astype(np.float32)


def dequantize_two_level(row, bits, block, sub, sb, mb, k) -> np.ndarray:
    """Decode one two-level row (FORMAT.md, "Decoding a two-level row")."""
    blocks, n = row["blocks"], block // sub
    q = unpack_codes(np.frombuffer(row["codes"], np.uint8), bits).reshape(blocks, n, sub).astype(np.float32)
    p = np.frombuffer(row["params"], np.uint8).reshape(blocks, -1)
    d = p[:, 0:2].copy().view("<f2").astype(np.float32)
    dmin = p[:, 2:4].copy().view("<f2").astype(np.float32)
    scl, mcl = (n * sb + 7) // 8, (n * mb + 7) // 8
    sc = bit_stream(p[:, 4 : 4 + scl], n, sb)
    mc = bit_stream(p[:, 4 + scl : 4 + scl + mcl], n, mb)
    scale = (d * sc)[:, :, None]
    minimum = (dmin * mc)[:, :, None]
    x = (q * scale - minimum).reshape(blocks, block)
    out = p[:, 4 + scl + mcl :]
    for o in range(k):
        value = out[:, 3 * o : 3 * o + 2].copy().view("<f2").astype(np.float32)[:, 0]
        index = out[:, 3 * o + 2].astype(np.int64)
        x[np.arange(blocks), index] = value
    return x.reshape(-1)[: row["element_count"]]


def dequantize(row) -> np.ndarray:
    codec = row["codec"]
    if codec.startswith("g"):
        return dequantize_row(row)
    m = re.fullmatch(r"k(\d+)b(\d+)s(\d+)c(\d+)m(\d+)o(\d+)", codec)
    if m is None:
        raise ValueError(f"{row['tensor']}: unknown codec {codec}")
    return dequantize_two_level(row, *map(int, m.groups()))


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, np.uint8, mode="r", offset=8 + n)
    header.pop("__metadata__", None)
    return header, data


def main(parquet_path, reference_path):
    header, data = read_safetensors(reference_path)
    pf = pq.ParquetFile(parquet_path)
    meta = pf.metadata.metadata
    assert meta[b"arrowquant.format_version"] == b"1", meta.get(b"arrowquant.format_version")
    manifest = json.loads(meta[b"arrowquant.tensors"])
    parts, current, checked, elements, bad = [], None, 0, 0, 0

    def finish(name, parts):
        nonlocal checked, elements, bad
        ref = header[name]
        b, e = ref["data_offsets"]
        raw = bytes(data[b:e])
        got = b"".join(parts)
        if got != raw:
            bad += 1
            print(f"MISMATCH {name}: {len(got)} bytes decoded vs {len(raw)} in the reference")
        checked += 1
        elements += int(np.prod(ref["shape"], dtype=np.int64))

    for batch in pf.iter_batches(batch_size=8):
        for row in batch.to_pylist():
            name = row["tensor"]
            if name != current:
                if current is not None:
                    finish(current, parts)
                current, parts = name, []
                ref = header[name]
                assert list(ref["shape"]) == list(row["shape"]), (name, ref["shape"], row["shape"])
            if row["codec"] == "raw":
                assert ref["dtype"] == row["dtype"], (name, ref["dtype"], row["dtype"])
                parts.append(row["codes"])
            else:
                assert ref["dtype"] == "F32", (name, ref["dtype"])
                parts.append(dequantize(row).astype("<f4").tobytes())
    if current is not None:
        finish(current, parts)
    if checked != len(manifest):
        print(f"MISMATCH: {checked} tensors in rows, {len(manifest)} in the manifest")
        bad += 1
    print(f"python reader: {checked} tensors, {elements} elements, {bad} mismatches")
    return 0 if bad == 0 else 1


def time_groups(parquet_path):
    meta = pq.ParquetFile(parquet_path).metadata.metadata
    key = b"arrowquant.time_groups"
    if key not in meta:
        print("no time-aware parameters in this file")
        return 1
    table = json.loads(meta[key])
    assert table["version"] == 1, table["version"]
    qmax = 2 ** table["activation_bits"] - 1
    out = {}
    for layer in table["layers"]:
        groups = layer["groups"]
        start = 0
        for g in groups:
            if g["t_start"] != start or g["t_end"] <= g["t_start"] or not 0 <= g["zero_point"] <= qmax:
                print(f"BAD GROUP in {layer['layer']}: {g}")
                return 1
            start = g["t_end"]
        if start != table["timesteps"]:
            print(f"BAD COVER in {layer['layer']}: ends at {start}")
            return 1
        ends = [g["t_end"] for g in groups]
        picks = []
        for t in range(table["timesteps"]):
            g = groups[bisect.bisect_right(ends, t)]
            picks.append([g["scale"], g["zero_point"]])
        out[layer["layer"]] = picks
    print(json.dumps(out))
    return 0


def equalization(parquet_path):
    pf = pq.ParquetFile(parquet_path)
    meta = pf.metadata.metadata
    key = b"arrowquant.equalization"
    if key not in meta:
        print("no channel-equalization factors in this file")
        return 1
    table = json.loads(meta[key])
    assert table["version"] == 1, table["version"]
    shapes = {t["name"]: t["shape"] for t in json.loads(meta[b"arrowquant.tensors"])}
    out = {}
    for name, entry in table["tensors"].items():
        shape = shapes.get(name)
        s = np.asarray(entry["factors"], dtype=np.float32)
        if shape is None or len(shape) != 2 or shape[1] != len(s) or not np.all(s > 0):
            print(f"BAD FACTORS for {name}: shape {shape}, {len(s)} factors")
            return 1
        out[name] = {"layer": entry["layer"], "alpha": entry["alpha"], "factors": s.tolist(),
                     "unscaled_absmax": np.zeros(len(s), dtype=np.float32)}
    parts = {name: [] for name in out}
    for batch in pf.iter_batches(batch_size=8):
        for row in batch.to_pylist():
            if row["tensor"] in parts:
                parts[row["tensor"]].append((row["element_offset"], dequantize(row)))
    for name, rows in parts.items():
        s = np.asarray(out[name]["factors"], dtype=np.float32)
        flat = np.concatenate([v for _, v in sorted(rows, key=lambda r: r[0])])
        w = flat.reshape(-1, len(s)) / s
        out[name]["unscaled_absmax"] = np.abs(w).max(axis=0).tolist()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--time-groups":
        sys.exit(time_groups(sys.argv[2]))
    if len(sys.argv) == 3 and sys.argv[1] == "--equalization":
        sys.exit(equalization(sys.argv[2]))
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
