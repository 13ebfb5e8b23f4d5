"""The Python half of benches/scripts/llama_cpp_checks.sh (issue 18's Must-show checks).

    python llama_cpp_checks.py tokenize LLAMA_BIN MODEL.gguf tokenizer.json LINES.txt...
    python llama_cpp_checks.py embed LLAMA_BIN MODEL.gguf SENTENCES.txt REF.npy [LABEL]
    python llama_cpp_checks.py same-types A.gguf B.gguf
    python llama_cpp_checks.py kld LABEL LOG...

tokenize: every non-empty line of the LINES files, alone, through `llama-tokenize --ids
--log-disable --no-escape` (BOS/EOS as the model's GGUF says, no special-token parsing)
and through the `tokenizers` package (`encode(line, add_special_tokens=True)`, no
padding or truncation); prints one row: lines equal / total, and the first mismatches.
Exit 1 if any line differs.

embed: `llama-embedding` (pooling and normalization as the GGUF says; raw output) on
SENTENCES.txt, one embedding per non-empty line, against REF.npy (bert_reference.py);
prints the cosine per sentence to LABEL.cos.txt beside REF.npy when a LABEL is given,
and a table row: mean, min cosine, and the file's bits per weight.

same-types: reads both files with gguf.GGUFReader; prints each file's bits per weight
(all tensor bytes * 8 / all elements) and every tensor whose type or shape differs.
Exit 1 if the tensor lists, types or shapes differ.

kld: parses `llama-perplexity --kl-divergence` logs; prints mean KLD and same-top-p.
"""

import os
import re
import subprocess
import sys

import numpy as np


def lines_of(paths):
    out = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            out.extend(line for line in f.read().split("\n") if line.strip())
    return out


def cmd_tokenize(bin_dir, gguf_path, tok_path, *line_files):
    import tempfile

    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tok_path)
    tok.no_padding()
    tok.no_truncation()
    lines = lines_of(line_files)
    equal = 0
    bad = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "line.txt")
        for line in lines:
            with open(path, "w", encoding="utf-8") as f:
                f.write(line)
            r = subprocess.run(
                [os.path.join(bin_dir, "llama-tokenize"), "-m", gguf_path, "-f", path, "--ids", "--log-disable",
                 "--no-escape"],
                capture_output=True,
                text=True,
            )
            if r.returncode != 0:
                sys.exit(f"llama-tokenize failed on {gguf_path}:\n{r.stderr[-2000:]}")
            theirs = [int(x) for x in re.findall(r"-?\d+", r.stdout.strip().splitlines()[-1])]
            ours = tok.encode(line, add_special_tokens=True).ids
            if theirs == ours:
                equal += 1
            else:
                bad.append((line, ours, theirs))
    name = os.path.basename(gguf_path)
    print(f"| {name} | {equal} / {len(lines)} |")
    for line, ours, theirs in bad[:5]:
        print(f"  differs: {line!r}\n    tokenizers: {ours}\n    llama.cpp:  {theirs}", file=sys.stderr)
    return 0 if equal == len(lines) else 1


def bits_per_weight(reader):
    n = sum(int(t.n_elements) for t in reader.tensors)
    b = sum(int(t.n_bytes) for t in reader.tensors)
    return 8.0 * b / n


def llama_embeddings(bin_dir, gguf_path, sentences):
    r = subprocess.run(
        [os.path.join(bin_dir, "llama-embedding"), "-m", gguf_path, "-f", sentences, "--embd-output-format", "raw",
         "-t", str(min(2, os.cpu_count() or 1))],
        capture_output=True,
        text=True,
        env=dict(os.environ, LD_PRELOAD=os.environ.get("AQ_DRAIN_SO", "")),
    )
    if r.returncode != 0:
        sys.exit(f"llama-embedding failed on {gguf_path}:\n{r.stderr[-3000:]}")
    rows = []
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) > 8 and all(re.fullmatch(r"-?\d+\.\d+", p) for p in parts):
            rows.append([float(p) for p in parts])
    return np.array(rows, dtype=np.float64)


def cmd_embed(bin_dir, gguf_path, sentences, ref_path, label=None):
    from gguf import GGUFReader

    ref = np.load(ref_path)
    # llama.cpp logs from a worker thread and may exit before the last lines are out:
    # run again (at most 3 times) until every embedding is there.
    for _ in range(3):
        emb = llama_embeddings(bin_dir, gguf_path, sentences)
        if emb.shape == ref.shape:
            break
    if emb.shape != ref.shape:
        sys.exit(f"{gguf_path}: llama-embedding gave {emb.shape} embeddings, the reference has {ref.shape}")
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    cos = (emb * ref).sum(1)
    if label:
        np.savetxt(os.path.join(os.path.dirname(ref_path), f"{label}.cos.txt"), cos, fmt="%.8f")
    bpw = bits_per_weight(GGUFReader(gguf_path))
    worst = int(np.argmin(cos))
    print(f"| {label or os.path.basename(gguf_path)} | {bpw:.3f} | {cos.mean():.6f} | {cos.min():.6f} (line {worst + 1}) | "
          f"{int((cos >= 0.9999).sum())} / {len(cos)} |")
    return 0


def cmd_same_types(a_path, b_path):
    from gguf import GGUFReader

    a, b = GGUFReader(a_path), GGUFReader(b_path)
    ta = {t.name: (t.tensor_type.name, [int(x) for x in t.shape]) for t in a.tensors}
    tb = {t.name: (t.tensor_type.name, [int(x) for x in t.shape]) for t in b.tensors}
    bad = 0
    for name in sorted(set(ta) | set(tb)):
        if ta.get(name) != tb.get(name):
            print(f"  {name}: {ta.get(name)} vs {tb.get(name)}", file=sys.stderr)
            bad += 1
    types = {}
    for ty, _ in ta.values():
        types[ty] = types.get(ty, 0) + 1
    mix = ", ".join(f"{k} x{v}" for k, v in sorted(types.items()))
    print(f"same tensors and types: {'yes' if bad == 0 else f'NO ({bad} differ)'}; "
          f"bpw {bits_per_weight(a):.4f} vs {bits_per_weight(b):.4f}; types {mix}")
    return 0 if bad == 0 else 1


def cmd_kld(label, *logs):
    for log in logs:
        text = open(log, encoding="utf-8", errors="replace").read()
        kld = re.search(r"Mean\s+KLD:\s*(-?[\d.]+)\s*±\s*([\d.]+)", text)
        top = re.search(r"Same top p:\s*([\d.]+)\s*±\s*([\d.]+)", text)
        ppl = re.search(r"Mean PPL\(Q\)\s*:\s*([\d.]+)", text)
        if not kld or not top:
            sys.exit(f"{log}: no 'Mean KLD' / 'Same top p' line (llama-perplexity failed?)\n{text[-2000:]}")
        print(f"| {label} | {os.path.basename(log).removesuffix('.log')} | {kld.group(1)} ± {kld.group(2)} | "
              f"{top.group(1)} ± {top.group(2)} % | {ppl.group(1) if ppl else '?'} |")
    return 0


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {"tokenize": cmd_tokenize, "embed": cmd_embed, "same-types": cmd_same_types, "kld": cmd_kld}.get(cmd)
    if fn is None:
        sys.exit(__doc__)
    sys.exit(fn(*args))


if __name__ == "__main__":
    main()
