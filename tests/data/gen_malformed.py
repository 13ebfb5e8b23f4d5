#!/usr/bin/env python3
"""Generates the malformed-input corpus in tests/data/malformed/ and its manifest
cases.json. Every case is a small file (or directory) the `arrowquant` CLI must answer
with exit code 2 and a one-line error naming the file (and the tensor where there is
one), without panicking and without writing an output file.

    python3 tests/data/gen_malformed.py --arrowquant target/debug/arrowquant

The Parquet cases start from a real file written by `arrowquant quantize` (hence the
binary) and are rewritten with pyarrow, changing one thing each; without
--arrowquant the Parquet cases are kept as they are. Needs numpy-free Python 3 and,
for the Parquet cases, pyarrow.

Manifest fields: `name`; `args`: the CLI arguments, with `{case}` (the case's file or
directory), `{out}` (an output path in a fresh temp dir that must not exist
afterwards) and `{good}` (good.safetensors of the corpus); `env`: extra environment;
`expect`: substrings of the error line; `kind`: which format the case is about.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "malformed")

CASES = []


def case(name, args, expect, kind, env=None, path=None):
    CASES.append({"name": name, "kind": kind, "path": path, "args": args, "env": env or {}, "expect": expect})


def f32_bytes(values):
    return struct.pack("<%df" % len(values), *values)


def weights(n, seed=1):
    """Deterministic small weights in [-0.5, 0.5)."""
    out, s = [], seed
    for _ in range(n):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        out.append(((s >> 8) / float(1 << 24)) - 0.5)
    return out


def st_bytes(header, data):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def st_model(tensors, metadata=None):
    """{name: (dtype, shape, bytes)} laid out back to back."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    return st_bytes(header, data)


def write(rel, data):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return path


def good_tensors():
    return {
        "layer0.weight": ("F32", [8, 64], f32_bytes(weights(512, 1))),
        "layer1.weight": ("F32", [4, 128], f32_bytes(weights(512, 2))),
    }


Q = ["quantize", "{case}", "-o", "{out}"]


def safetensors_cases():
    good = st_model(good_tensors(), {"format": "pt"})
    write("good.safetensors", good)
    w = f32_bytes(weights(16))

    def st(name, data, expect, args=Q):
        write(name + ".safetensors", data)
        case(name, list(args), [name + ".safetensors"] + expect, "safetensors", path=name + ".safetensors")

    st("st_zero_length", b"", ["too short"])
    st("st_short_prefix", b"\x10\x00\x00", ["too short"])
    st("st_header_past_end", struct.pack("<Q", 1000) + b'{"a":1}', ["header"])
    st("st_absurd_header_len", struct.pack("<Q", 2**64 - 1) + b"{}", ["header"])
    st("st_header_not_utf8", st_bytes(b'{"a\xff\xfe":{}}', b""), ["UTF-8"])
    st("st_header_not_json", st_bytes(b"{not json!", b""), ["JSON"])
    st("st_header_is_array", st_bytes(b"[1,2,3]", b""), ["JSON"])
    st("st_unknown_dtype", st_bytes({"w": {"dtype": "F33", "shape": [16], "data_offsets": [0, 64]}}, w),
       ["`w`", "F33"])
    st("st_offsets_out_of_bounds",
       st_bytes({"w": {"dtype": "F32", "shape": [32], "data_offsets": [0, 128]}}, w), ["`w`"])
    st("st_offsets_reversed",
       st_bytes({"w": {"dtype": "F32", "shape": [0], "data_offsets": [64, 0]}}, w), ["`w`"])
    st("st_overlapping",
       st_bytes({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
                 "b": {"dtype": "F32", "shape": [8], "data_offsets": [16, 48]}}, w), ["`a`", "`b`"])
    # An empty tensor between two overlapping ones in offset order (only neighbours
    # were compared, and empty tensors skipped).
    st("st_overlap_around_empty",
       st_bytes({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
                 "z": {"dtype": "F32", "shape": [0], "data_offsets": [16, 16]},
                 "b": {"dtype": "F32", "shape": [8], "data_offsets": [16, 48]}}, w), ["`a`", "`b`", "overlap"])
    st("st_entry_duplicate_key",
       st_bytes(b'{"w":{"dtype":"F32","dtype":"I32","shape":[16],"data_offsets":[0,64]}}', w),
       ["`w`", "`dtype` appears twice"])
    st("st_wrong_byte_length",
       st_bytes({"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 60]}}, w), ["`w`", "60"])
    st("st_shape_overflow",
       st_bytes({"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 64]}}, w), ["`w`"])
    st("st_negative_dim",
       st_bytes({"w": {"dtype": "F32", "shape": [-1, 16], "data_offsets": [0, 64]}}, w), ["`w`"])
    st("st_duplicate_names",
       st_bytes(b'{"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]},'
                b'"w":{"dtype":"F32","shape":[8],"data_offsets":[32,64]}}', w), ["`w`"])
    st("st_unknown_entry_field",
       st_bytes({"w": {"dtype": "F32", "shape": [16], "data_offsets": [0, 64], "extra": 1}}, w),
       ["`w`", "extra"])
    st("st_missing_offsets", st_bytes({"w": {"dtype": "F32", "shape": [16]}}, w), ["`w`", "data_offsets"])
    st("st_metadata_not_strings",
       st_bytes({"__metadata__": {"n": 5}, "w": {"dtype": "F32", "shape": [16], "data_offsets": [0, 64]}}, w),
       ["__metadata__"])
    st("st_truncated_data", good[: len(good) - 100], ["layer1.weight"])
    st("st_float_offsets",
       st_bytes({"w": {"dtype": "F32", "shape": [16], "data_offsets": [0.0, 64.5]}}, w), ["`w`"])
    # The NaN/infinity policy through the CLI: exit 2 naming tensor and element.
    bad = weights(512, 3)
    bad[300] = float("nan")
    st("st_nan_weight", st_model({"ok.weight": ("F32", [8, 64], f32_bytes(weights(512))),
                                  "nan.weight": ("F32", [8, 64], f32_bytes(bad))}),
       ["nan.weight", "element 300"])
    bad = weights(512, 4)
    bad[7] = float("-inf")
    st("st_inf_weight", st_model({"inf.weight": ("F32", [8, 64], f32_bytes(bad))}), ["inf.weight", "element 7"])
    bad = weights(512, 5)
    bad[129] = 1.0e6
    st("st_huge_weight", st_model({"huge.weight": ("F32", [8, 64], f32_bytes(bad))}),
       ["huge.weight", "element 129"])
    h = list(struct.pack("<%de" % 256, *weights(256, 6)))
    h[2 * 200: 2 * 200 + 2] = [0x00, 0x7C]  # f16 +inf at element 200
    st("st_f16_inf_weight", st_model({"half.weight": ("F16", [4, 64], bytes(h))}),
       ["half.weight", "element 200"])


def index_cases():
    def shard(tensors):
        return st_model({n: ("F32", [4, 64], f32_bytes(weights(256, i + 10))) for i, n in enumerate(tensors)})

    def model(name, index_text, shards, expect):
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        write(os.path.join(name, "model.safetensors.index.json"), index_text)
        for fname, tensors in shards.items():
            write(os.path.join(name, fname), shard(tensors))
        case(name, Q, expect, "index.json", path=name)

    def idx(weight_map):
        return json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}, indent=1)

    two = {"model-00001-of-00002.safetensors": ["a.weight"], "model-00002-of-00002.safetensors": ["b.weight"]}
    wm = {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"}
    model("idx_bad_json", '{"weight_map": {"a.weight": ', two, ["model.safetensors.index.json"])
    model("idx_no_weight_map", json.dumps({"metadata": {}}), two, ["model.safetensors.index.json", "weight_map"])
    model("idx_empty_weight_map", idx({}), two, ["model.safetensors.index.json", "empty"])
    model("idx_missing_shard", idx(dict(wm, **{"c.weight": "model-00003-of-00003.safetensors"})), two,
          ["model-00003-of-00003.safetensors"])
    model("idx_tensor_in_two_shards", idx(wm),
          {"model-00001-of-00002.safetensors": ["a.weight"],
           "model-00002-of-00002.safetensors": ["b.weight", "a.weight"]}, ["a.weight"])
    model("idx_tensor_not_in_shard", idx(dict(wm, **{"ghost.weight": "model-00001-of-00002.safetensors"})), two,
          ["model.safetensors.index.json", "ghost.weight"])
    model("idx_wrong_shard", idx({"a.weight": "model-00002-of-00002.safetensors",
                                  "b.weight": "model-00002-of-00002.safetensors"}), two,
          ["model.safetensors.index.json", "a.weight"])
    model("idx_shard_escapes_dir", idx(dict(wm, **{"a.weight": "../good.safetensors"})), two,
          ["model.safetensors.index.json", "../good.safetensors"])
    model("idx_absolute_shard", idx(dict(wm, **{"a.weight": "/etc/hostname"})), two,
          ["model.safetensors.index.json", "/etc/hostname"])
    model("idx_shard_not_string", json.dumps({"weight_map": {"a.weight": 7}}), two,
          ["model.safetensors.index.json"])
    bad_shard = {"model-00001-of-00002.safetensors": ["a.weight"]}
    model("idx_bad_shard_header", idx(wm), bad_shard, ["model-00002-of-00002.safetensors"])
    # The second shard exists but is not safetensors.
    write(os.path.join("idx_bad_shard_header", "model-00002-of-00002.safetensors"), b"\x05\x00\x00\x00\x00\x00\x00\x00[1,2")


def yaml_cases():
    def y(name, text, expect):
        write(name + ".yaml", text)
        case(name, ["quantize", "{good}", "-o", "{out}", "--config", "{case}"], expect, "yaml", path=name + ".yaml")

    y("yaml_bad_bit_width", "bit_width: 3\n", ["bit width 3 is not supported", "2, 4, 8"])
    y("yaml_bad_group_size", "group_size: 100\n", ["group size 100", "32, 64, 128, 256"])
    y("yaml_bad_accuracy", "min_accuracy: 1.5\n", ["min accuracy 1.5", "0.0 to 1.0"])
    y("yaml_unknown_key", "bit_widht: 4\n", ["yaml_unknown_key.yaml", "bit_widht", "line 1, column 1"])
    y("yaml_unknown_nested_key", "thermodynamic:\n  validation:\n    threshold: 1\n",
      ["yaml_unknown_nested_key.yaml", "threshold", "line 3, column 5"])
    y("yaml_wrong_type", "bit_width: four\n", ["yaml_wrong_type.yaml", "bit_width"])
    y("yaml_not_yaml", "bit_width: [4\n", ["yaml_not_yaml.yaml"])
    y("yaml_top_level_list", "- bit_width: 4\n", ["yaml_top_level_list.yaml"])
    y("yaml_time_groups_zero", "num_time_groups: 0\n", ["num_time_groups 0", "1 to 100"])
    y("yaml_tiny_memory", "max_memory: 1M\n", ["max memory 1048576 bytes", "32M"])
    y("yaml_bad_profile", "deployment_profile: huge\n", ["yaml_bad_profile.yaml", "huge"])
    y("yaml_unknown_preset", "preset: nonsense\n", ["preset `nonsense` is unknown", "int4"])
    y("yaml_empty_pattern", "include: ['']\n", ["pattern is empty"])
    y("yaml_quoted_number", 'bit_width: "4"\n', ["yaml_quoted_number.yaml", "bit_width", "remove the quotes"])
    y("yaml_quoted_bool", "fail_fast: 'yes'\n", ["yaml_quoted_bool.yaml", "fail_fast", "remove the quotes"])
    y("yaml_negative_accuracy", "min_accuracy: -0.1\n", ["min accuracy -0.1"])


def env_cases():
    def e(name, var, value, expect):
        case(name, ["quantize", "{good}", "-o", "{out}"], expect, "env", {var: value})

    e("env_bit_width_3", "ARROW_QUANT_BIT_WIDTH", "3", ["bit width 3 is not supported", "2, 4, 8"])
    e("env_bit_width_abc", "ARROW_QUANT_BIT_WIDTH", "abc", ["ARROW_QUANT_BIT_WIDTH", "abc"])
    e("env_bit_width_negative", "ARROW_QUANT_BIT_WIDTH", "-4", ["ARROW_QUANT_BIT_WIDTH", "-4"])
    e("env_bit_width_overflow", "ARROW_QUANT_BIT_WIDTH", "99999999999", ["ARROW_QUANT_BIT_WIDTH", "99999999999"])
    e("env_min_accuracy_1_5", "ARROW_QUANT_MIN_ACCURACY", "1.5", ["min accuracy 1.5"])
    e("env_min_accuracy_nan", "ARROW_QUANT_MIN_ACCURACY", "NaN", ["min accuracy NaN"])
    e("env_group_size_100", "ARROW_QUANT_GROUP_SIZE", "100", ["group size 100"])
    e("env_max_memory_words", "ARROW_QUANT_MAX_MEMORY", "lots", ["ARROW_QUANT_MAX_MEMORY", "lots"])
    e("env_max_memory_overflow", "ARROW_QUANT_MAX_MEMORY", "99999999999T", ["ARROW_QUANT_MAX_MEMORY"])
    e("env_profile_unknown", "ARROW_QUANT_DEPLOYMENT_PROFILE", "mars", ["ARROW_QUANT_DEPLOYMENT_PROFILE", "mars"])
    e("env_fail_fast_maybe", "ARROW_QUANT_FAIL_FAST", "maybe", ["ARROW_QUANT_FAIL_FAST", "maybe"])
    e("env_calibration_empty", "ARROW_QUANT_CALIBRATION", "", ["ARROW_QUANT_CALIBRATION", "path"])
    e("env_time_groups_zero", "ARROW_QUANT_NUM_TIME_GROUPS", "0", ["num_time_groups 0"])


def calibration_cases():
    def c(name, text, expect):
        write(name + ".json", text)
        case(name, ["quantize", "{good}", "-o", "{out}", "--calibration", "{case}"], [name + ".json"] + expect,
             "calibration", path=name + ".json")

    # 85 bytes claiming four billion timesteps: refused before anything is sized by it.
    c("cal_claims_huge_timesteps",
      '{"format": "arrowquant-calibration", "version": 1, "timesteps": 4000000000, "layers": []}',
      ["4000000000 timesteps"])
    c("cal_claims_more_timesteps_than_values",
      '{"format":"arrowquant-calibration","version":1,"timesteps":100000,'
      '"layers":[{"name":"layer0.weight","min":[0],"max":[1],"mean":[0.5],"std":[0.1]}]}',
      ["100000 timesteps"])


def pattern_cases():
    def p(name, flag, pattern):
        case(name, ["quantize", "{good}", "-o", "{out}", flag, pattern], ["good.safetensors", pattern], "args")

    p("include_matches_nothing", "--include", "decoder.*")
    p("exclude_matches_nothing", "--exclude", "*.bias")
    case("include_one_matches_nothing",
         ["quantize", "{good}", "-o", "{out}", "--include", "layer0.*", "--include", "layer9.*"],
         ["layer9.*"], "args")


def sniff_cases():
    """Files of other formats given where a model or a quantized file goes: the error
    names what the file is and what to do instead of failing inside a parser."""
    def s(name, data, args, expect):
        write(name, data)
        case(name.replace(".", "_"), args, [name] + expect, "sniff", path=name)

    q = ["quantize", "{case}", "-o", "{out}"]
    s("sniff_torch_zip.pt", b"PK\x03\x04" + b"\x00" * 60, q, ["PyTorch checkpoint", "save_file"])
    s("sniff_torch_pickle.bin", b"\x80\x02}q\x00(X\x06\x00\x00\x00weight" + b"\x00" * 40, q,
      ["PyTorch checkpoint"])
    s("sniff_numpy.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }" +
      b" " * 50 + b"\n" + b"\x00" * 16, q, ["NumPy"])
    s("sniff_gguf_as_parquet_target.gguf", b"GGUF\x03\x00\x00\x00" + b"\x00" * 24, q, ["GGUF", "--format gguf"])
    # Our own output given as the model, and validate's arguments swapped.
    case("sniff_parquet_as_model", q, ["pq_base.parquet", "arrowquant dequantize"], "sniff", path="pq_base.parquet")
    case("sniff_validate_swapped", ["validate", "{case}", "{good}"], ["pq_base.parquet", "Parquet file"], "sniff",
         path="pq_base.parquet")
    case("sniff_safetensors_as_quantized", ["dequantize", "{good}", "-o", "{out}"],
         ["good.safetensors", "safetensors model, not a quantized Parquet file"], "sniff")


def parquet_cases(arrowquant):
    import pyarrow as pa
    import pyarrow.parquet as pq

    good_st = os.path.join(OUT, "good.safetensors")
    base = os.path.join(OUT, "pq_base.parquet")
    with tempfile.TemporaryDirectory() as t:
        tmp = os.path.join(t, "q.parquet")
        subprocess.run([arrowquant, "quantize", good_st, "-o", tmp, "-q", "--bits", "4", "--group-size", "64"],
                       check=True)
        shutil.copy(tmp, base)
    table = pq.read_table(base)
    # Our key-value metadata is file-level; pyarrow writes a table's schema metadata there.
    meta = dict(pq.read_metadata(base).metadata)
    tensors = json.loads(meta[b"arrowquant.tensors"])

    def rewrite(name, tbl, metadata, expect, args=("dequantize", "{case}", "-o", "{out}")):
        tbl = tbl.replace_schema_metadata(metadata)
        # Keep the list item name `item` that our writer uses (pyarrow's default is `element`).
        pq.write_table(tbl, os.path.join(OUT, name + ".parquet"), use_compliant_nested_type=False,
                       compression="zstd")
        case(name, list(args), [name + ".parquet"] + expect, "parquet", path=name + ".parquet")

    def set_col(tbl, name, values):
        i = tbl.schema.get_field_index(name)
        return tbl.set_column(i, tbl.schema.field(i), pa.array(values, type=tbl.schema.field(i).type))

    raw = open(base, "rb").read()
    for name, data, expect in [
        ("pq_truncated", raw[: len(raw) // 2], []),
        ("pq_footer_cut", raw[:-9], []),
        ("pq_not_parquet", b"PAR1 this is not a parquet file PAR1", []),
        ("pq_empty", b"", []),
    ]:
        write(name + ".parquet", data)
        case(name, ["inspect", "{case}"], [name + ".parquet"] + expect, "parquet", path=name + ".parquet")

    m = {k: v for k, v in meta.items() if k != b"arrowquant.tensors"}
    rewrite("pq_missing_manifest", table, m, ["arrowquant.tensors"], ("inspect", "{case}"))
    m = {**meta, b"arrowquant.format_version": b"99"}
    rewrite("pq_future_version", table, m, ["version 99"], ("inspect", "{case}"))
    m = {**meta, b"arrowquant.tensors": b"[{not json"}
    rewrite("pq_manifest_not_json", table, m, ["manifest"], ("inspect", "{case}"))
    rewrite("pq_missing_column", table.drop_columns(["params"]), meta, ["params"], ("inspect", "{case}"))
    i = table.schema.get_field_index("bits")
    wrong = table.set_column(i, pa.field("bits", pa.int32(), False), table.column("bits").cast(pa.int32()))
    rewrite("pq_wrong_column_type", wrong, meta, ["bits"], ("inspect", "{case}"))
    t2 = [dict(x) for x in tensors]
    t2[-1]["rows"] += 1
    m = {**meta, b"arrowquant.tensors": json.dumps(t2).encode()}
    rewrite("pq_manifest_row_count", table, m, ["rows"], ("inspect", "{case}"))

    # Row counts whose sum overflows u64 (and wraps to the true count).
    t2 = [dict(x) for x in tensors]
    t2[0]["rows"] = 2**64 - 1
    t2[1]["first_row"] = 2**64 - 1
    t2[1]["rows"] = tensors[0]["rows"] + tensors[1]["rows"] + 1
    m = {**meta, b"arrowquant.tensors": json.dumps(t2).encode()}
    rewrite("pq_manifest_rows_overflow", table, m, [tensors[1]["name"], "too many"], ("inspect", "{case}"))
    t2 = [dict(x) for x in tensors]
    t2[0]["first_row"] = 2**64 - 1
    m = {**meta, b"arrowquant.tensors": json.dumps(t2).encode()}
    rewrite("pq_manifest_first_row_overflow", table, m, [tensors[0]["name"], "starts at row"], ("inspect", "{case}"))

    # A shape edited in the manifest: the element count no longer fits it.
    t2 = [dict(x) for x in tensors]
    t2[0]["shape"] = [t2[0]["shape"][0] + 1] + t2[0]["shape"][1:]
    m = {**meta, b"arrowquant.tensors": json.dumps(t2).encode()}
    rewrite("pq_manifest_shape_edited", table, m, [tensors[0]["name"], "shape"])
    t2 = [dict(x) for x in tensors]
    t2[1]["name"] = t2[0]["name"]
    m = {**meta, b"arrowquant.tensors": json.dumps(t2).encode()}
    rewrite("pq_manifest_name_twice", table, m, [tensors[0]["name"], "twice"])

    first = tensors[0]["name"]
    codecs = table.column("codec").to_pylist()
    t = set_col(table, "codec", ["g3a64"] * len(codecs))
    t2 = [dict(x, codec="g3a64") for x in tensors]
    m = {**meta, b"arrowquant.tensors": json.dumps(t2).encode()}
    rewrite("pq_bad_codec_id", t, m, [first])
    codes = table.column("codes").to_pylist()
    rewrite("pq_codes_length_mismatch", set_col(table, "codes", [c[:-1] for c in codes]), meta, [first])
    params = table.column("params").to_pylist()
    nan_params = [b"\x00\x7e" * (len(p) // 2) for p in params]
    rewrite("pq_nan_params", set_col(table, "params", nan_params), meta, [first])
    offsets = table.column("element_offset").to_pylist()
    rewrite("pq_element_offset_wrong", set_col(table, "element_offset", [o + 5 for o in offsets]), meta, [first])
    names = table.column("tensor").to_pylist()
    rewrite("pq_unknown_tensor_row", set_col(table, "tensor", ["ghost"] * len(names)), meta, [first])
    blocks = table.column("blocks").to_pylist()
    rewrite("pq_block_count_mismatch", set_col(table, "blocks", [b + 1 for b in blocks]), meta, [first])
    # A stored configuration validate cannot use: the error names the file.
    cfg = json.loads(meta[b"arrowquant.config"])
    cfg["min_accuracy"] = 1.5
    m = {**meta, b"arrowquant.config": json.dumps(cfg).encode()}
    rewrite("pq_stored_config_invalid", table, m, ["stored configuration", "min accuracy 1.5"],
            ("validate", "{good}", "{case}"))
    rewrite("pq_validate_truncated", table, meta, ["pq_validate_truncated.parquet"],
            ("validate", "{good}", "{case}"))
    # Overwrite that last one with a cut copy: validate must name the Parquet file.
    write("pq_validate_truncated.parquet", raw[: len(raw) - 200])

    # pyarrow's defaults: SNAPPY pages (this build reads ZSTD and uncompressed only) and
    # the list item named `element`. The SNAPPY file must be refused up front, naming the
    # codec; the same table with ZSTD pages is a good file
    # (tests/data/pyarrow_default_zstd.parquet, read by edge-cli/tests/cli/reliability/foreign_writer.rs).
    snappy = table.replace_schema_metadata(meta)
    pq.write_table(snappy, os.path.join(OUT, "pq_pyarrow_snappy.parquet"))
    case("pq_pyarrow_snappy", ["inspect", "{case}"], ["pq_pyarrow_snappy.parquet", "SNAPPY", "zstd"], "parquet",
         path="pq_pyarrow_snappy.parquet")
    pq.write_table(snappy, os.path.join(os.path.dirname(OUT), "pyarrow_default_zstd.parquet"), compression="zstd")


def output_cases():
    """Outputs that would destroy a file the command reads (issue 16): refused, exit 2."""
    reads = "which this run reads"
    case("out_is_the_model", ["quantize", "{good}", "-o", "{good}"], ["good.safetensors", reads], "output")
    case("out_is_the_dequantize_input", ["dequantize", "{case}", "-o", "{case}"], ["pq_base.parquet", reads],
         "output", path="pq_base.parquet")
    case("out_is_the_export_input", ["export", "{case}", "--format", "safetensors", "-o", "{case}"],
         ["pq_base.parquet", reads], "output", path="pq_base.parquet")
    case("out_is_the_postcard_input", ["export", "{case}", "--format", "postcard", "-o", "{case}"],
         ["pq_base.parquet", reads], "output", path="pq_base.parquet")
    # The device format is read back before it is kept: it cannot stream to stdout.
    case("out_is_dash_postcard", ["quantize", "{good}", "--format", "postcard", "-o", "-"],
         ["-o -", "read back"], "output")



# A distinctive part of the error core's GGUF parser gives for each sample of
# gen_gguf_malformed.py (the whole messages: core's test gguf::tests::malformed_samples).
GGUF_EXPECT = {
    "bad_magic": "llama.cpp's format from before GGUF",  # the sample's magic is GGML
    "version_1": "GGUF version 1 is not supported",
    "big_endian": "may be big-endian",
    "truncated_kv": "truncated",
    "kv_count_absurd": "key-value pairs cannot fit",
    "tensor_count_absurd": "tensor infos cannot fit",
    "string_len_absurd": "string bytes cannot fit",
    "array_len_absurd": "array elements cannot fit",
    "key_not_utf8": "not valid UTF-8",
    "key_empty": "the key is empty",
    "duplicate_key": "duplicate key `general.quantization_version`",
    "unknown_value_type": "unknown value type 13",
    "bad_bool": "neither 0 nor 1",
    "array_too_deep": "nested deeper than 8 levels",
    "alignment_not_pow2": "not a power of two",
    "alignment_wrong_type": "must be of type uint32",
    "name_not_utf8": "tensor 0: string at byte 32 is not valid UTF-8",
    "duplicate_tensor": "duplicate tensor name `w`",
    "unknown_tensor_type": "tensor type 16 is not one this build knows",
    "ndims_zero": "0 dimensions, expected 1 to 4",
    "ndims_five": "5 dimensions, expected 1 to 4",
    "zero_dim": "dimension ne1 is 0",
    "dims_overflow": "element count overflows",
    "row_not_block": "not a multiple of the Q4_0 block",
    "misaligned_offset": "not a multiple of the alignment 32",
    "data_past_end": "past the end of the file",
    "overlap_out_of_order": "overlaps tensor 0",
    "name_with_newline": "duplicate tensor name `evil\\nname`",
}


def gguf_cases():
    """The GGUF header samples as inputs of `quantize --format gguf`: exit 2, one line
    naming the file and what is wrong, nothing written."""
    names = sorted(f for f in os.listdir(OUT) if f.startswith("gguf_") and f.endswith(".gguf"))
    missing = sorted(set(GGUF_EXPECT) - {f[len("gguf_"):-len(".gguf")] for f in names})
    if missing:
        sys.exit(f"run tests/data/gen_gguf_malformed.py first (missing: {missing})")
    for f in names:
        stem = f[len("gguf_"):-len(".gguf")]
        case("gguf_in_" + stem, ["quantize", "{case}", "--format", "gguf", "-o", "{out}"],
             [f, GGUF_EXPECT[stem]], "gguf", path=f)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arrowquant", help="the arrowquant binary (needed to regenerate the Parquet cases)")
    a = ap.parse_args()
    keep_parquet = []
    if os.path.isdir(OUT):
        if not a.arrowquant:
            old = json.load(open(os.path.join(OUT, "cases.json")))["cases"]
            keep_parquet = [c for c in old if c["kind"] == "parquet"]
        for f in os.listdir(OUT):
            p = os.path.join(OUT, f)
            if f.startswith("gguf_"):
                continue  # written by gen_gguf_malformed.py
            if a.arrowquant or not f.startswith("pq_"):
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    os.makedirs(OUT, exist_ok=True)
    safetensors_cases()
    index_cases()
    yaml_cases()
    env_cases()
    calibration_cases()
    pattern_cases()
    sniff_cases()
    if a.arrowquant:
        parquet_cases(os.path.abspath(a.arrowquant))
    else:
        CASES.extend(keep_parquet)
    output_cases()
    gguf_cases()
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"about": "generated by tests/data/gen_malformed.py; see its docstring", "cases": CASES},
                  f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(OUT) for fn in fns)
    print(f"{len(CASES)} cases, {total} bytes in {OUT}")
    if total >= 1 << 20:
        sys.exit("corpus is over 1 MB")


if __name__ == "__main__":
    main()
