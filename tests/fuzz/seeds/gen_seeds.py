#!/usr/bin/env python3
"""Writes small valid inputs for the fuzz targets into seeds/<target>/ so the fuzzer
starts past the checksum and the header checks. Run from anywhere:
    python3 tests/fuzz/seeds/gen_seeds.py [--arrowquant target/debug/arrowquant]
With --arrowquant it also writes real ArrowQuant Parquet files (several codecs, raw
tensors, several rows per tensor) for the parquet_reader target."""
import argparse
import json
import os
import struct
import subprocess
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def device_record(name, shape, bits, group, scheme, fill=0x5A):
    """One AQDV record: postcard header, codes, params (f16 d=0.01, m=-1.0), CRC-32."""
    elements = 1
    for d in shape:
        elements *= d
    blocks = -(-elements // group)
    codes_len = group * bits // 8
    params_len = 4 if scheme == 0 else 2
    h = b"AQDV" + varint(1)
    h += varint(len(name)) + name.encode()
    h += varint(len(shape)) + b"".join(varint(d) for d in shape)
    h += varint(elements)
    h += varint(0) + bytes([bits]) + varint(group) + varint(scheme)
    h += varint(codes_len) + varint(params_len) + varint(blocks)
    codes = bytes([fill]) * (blocks * codes_len)
    p = struct.pack("<e", 0.01) + (struct.pack("<e", -1.0) if scheme == 0 else b"")
    params = p * blocks
    body = h + codes + params
    return body + struct.pack("<I", zlib.crc32(body))


def st_file(tensors, pad=0):
    """A safetensors file: {name: (dtype, shape, nbytes)} laid out back to back."""
    header, off = {}, 0
    for name, (dtype, shape, n) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + bytes(off + pad)


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def parquet_seeds(arrowquant):
    """Small models quantized by the CLI with different settings."""
    vals = [((i * 7919) % 1000) / 1000.0 - 0.5 for i in range(64 * 64)]
    f32 = struct.pack("<%df" % len(vals), *vals)
    f16 = struct.pack("<%de" % 1000, *vals[:1000])
    model = {"w.weight": ("F32", [64, 64], f32), "h.weight": ("F16", [10, 100], f16),
             "bias": ("F32", [16], f32[:64]), "ids": ("I64", [2], struct.pack("<2q", 1, 2))}
    with tempfile.TemporaryDirectory() as t:
        src = os.path.join(t, "m.safetensors")
        with open(src, "wb") as f:
            header, off = {}, 0
            for k, (d, s, b) in model.items():
                header[k] = {"dtype": d, "shape": s, "data_offsets": [off, off + len(b)]}
                off += len(b)
            text = json.dumps(header).encode()
            f.write(struct.pack("<Q", len(text)) + text + b"".join(b for _, _, b in model.values()))
        for name, args in [("fast", []), ("int2", ["--preset", "int2"]), ("int8_sym_g32", ["--bits", "8",
                           "--group-size", "32", "--scheme", "symmetric"]), ("int4_preset", ["--preset", "int4"])]:
            out = os.path.join(t, name + ".parquet")
            subprocess.run([arrowquant, "quantize", src, "-o", out, "-q"] + args, check=True)
            write("parquet_reader", name + ".parquet", open(out, "rb").read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arrowquant")
    a = ap.parse_args()
    if a.arrowquant:
        parquet_seeds(os.path.abspath(a.arrowquant))
    # device_reader: first byte 1 = repair the CRC, then the file.
    one = device_record("w", [3, 40], 4, 32, 0)
    two = device_record("layer.0", [64], 2, 64, 1) + device_record("b", [5], 8, 32, 0)
    write("device_reader", "one_record", b"\x01" + one)
    write("device_reader", "two_records", b"\x00" + two)
    write("device_reader", "padded_last_group", b"\x01" + device_record("p", [33], 8, 32, 1))
    # safetensors_header: first byte = extra file length, then the file.
    write("safetensors_header", "two_tensors", b"\x00" + st_file({"a": ("F32", [2, 3], 24), "b": ("F16", [4], 8)}))
    write("safetensors_header", "empty_tensor", b"\x00" + st_file({"e": ("BF16", [0, 7], 0), "u": ("U8", [3], 3)}))
    # sharded_index: u16 index length, the index JSON, then the content of shard c.
    index = {"metadata": {"total_size": 40},
             "weight_map": {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors",
                            "c0": "c.safetensors"}}
    text = json.dumps(index).encode()
    shard_c = st_file({"c0": ("F32", [2], 8)})
    write("sharded_index", "three_shards", struct.pack("<H", len(text)) + text + shard_c)


if __name__ == "__main__":
    main()
