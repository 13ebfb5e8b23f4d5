"""Writes the malformed GGUF samples `tests/data/malformed/gguf_*.gguf`.

Each file is a small GGUF header broken in exactly one way (the name says how). The
expected error of each is checked by core's test `gguf::tests::malformed_samples`;
the std adapter's GGUF input can reuse them. Run from the repository root with any
Python 3 (no packages needed):

    python3 tests/data/gen_gguf_malformed.py

Deterministic; the files are committed.
"""

import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "malformed")

U8, U32, BOOL, STRING, ARRAY, U64 = 0, 4, 7, 8, 9, 10
F32, Q4_0 = 0, 2


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def s(b):
    if isinstance(b, str):
        b = b.encode()
    return u64(len(b)) + b


def head(n_tensors, n_kv, version=3, magic=b"GGUF"):
    return magic + u32(version) + u64(n_tensors) + u64(n_kv)


def kv_u32(key, v):
    return s(key) + u32(U32) + u32(v)


def tensor(name, ne, ty, offset):
    return s(name) + u32(len(ne)) + b"".join(u64(n) for n in ne) + u32(ty) + u64(offset)


def finish(b, data_len=0, align=32):
    b += b"\0" * (-len(b) % align)
    return b + b"\xab" * data_len


ARCH = kv_u32("general.quantization_version", 2)

CASES = {
    "bad_magic": finish(head(0, 0, magic=b"GGML")),
    "version_1": finish(head(0, 0, version=1)),
    "big_endian": finish(b"GGUF" + struct.pack(">I", 3) + struct.pack(">Q", 0) * 2),
    "truncated_kv": head(0, 2) + ARCH + s("general.name") + u32(U32) + b"\x01\x02",
    "kv_count_absurd": finish(head(0, 2**60) + ARCH),
    "tensor_count_absurd": finish(head(2**40, 1) + ARCH),
    "string_len_absurd": finish(head(0, 1) + u64(2**64 - 1) + b"k" * 16),
    "array_len_absurd": finish(head(0, 1) + s("k") + u32(ARRAY) + u32(U32) + u64(2**50) + b"\0" * 16),
    "key_not_utf8": finish(head(0, 1) + s(b"general.\xff") + u32(U8) + b"\0"),
    "key_empty": finish(head(0, 1) + s(b"") + u32(U8) + b"\0"),
    "duplicate_key": finish(head(0, 3) + ARCH + kv_u32("a", 1) + ARCH),
    "unknown_value_type": finish(head(0, 1) + s("k") + u32(13) + b"\0" * 8),
    "bad_bool": finish(head(0, 1) + s("k") + u32(BOOL) + b"\x02"),
    "array_too_deep": finish(head(0, 1) + s("k") + u32(ARRAY) + (u32(ARRAY) + u64(1)) * 8 + u32(U8) + u64(0)),
    "alignment_not_pow2": finish(head(0, 1) + kv_u32("general.alignment", 48)),
    "alignment_wrong_type": finish(head(0, 1) + s("general.alignment") + u32(U64) + u64(32)),
    "name_not_utf8": finish(head(1, 0) + tensor(b"blk.\xc0.weight", [32], F32, 0), 128),
    "duplicate_tensor": finish(head(2, 0) + tensor("w", [8], F32, 0) + tensor("w", [8], F32, 32), 64),
    "unknown_tensor_type": finish(head(1, 0) + tensor("w", [32], 16, 0), 64),
    "ndims_zero": finish(head(1, 0) + s("w") + u32(0) + u32(F32) + u64(0), 32),
    "ndims_five": finish(head(1, 0) + tensor("w", [1, 1, 1, 1, 1], F32, 0), 32),
    "zero_dim": finish(head(1, 0) + tensor("w", [32, 0], F32, 0), 32),
    "dims_overflow": finish(head(1, 0) + tensor("w", [2**32, 2**32], F32, 0), 32),
    "row_not_block": finish(head(1, 0) + tensor("w", [16, 2], Q4_0, 0), 64),
    "misaligned_offset": finish(head(2, 0) + tensor("a", [4], F32, 0) + tensor("b", [4], F32, 16), 64),
    "data_past_end": finish(head(1, 0) + tensor("w", [64], F32, 0), 255),
    "overlap_out_of_order": finish(
        head(3, 0) + tensor("a", [16], F32, 0) + tensor("b", [8], F32, 128) + tensor("c", [8], F32, 32), 160
    ),
    "name_with_newline": finish(head(2, 0) + tensor("evil\nname", [8], F32, 0) + tensor("evil\nname", [8], F32, 32), 64),
}

if __name__ == "__main__":
    for name, data in CASES.items():
        with open(os.path.join(OUT, f"gguf_{name}.gguf"), "wb") as f:
            f.write(data)
    print(f"{len(CASES)} files in {OUT}")
