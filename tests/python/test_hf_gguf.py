"""The Hugging Face -> GGUF conversion (issue 18), checked with gguf-py, without llama.cpp.

    python tests/python/test_hf_gguf.py

Generates the tiny bert / llama / qwen2 folders (tiny_models.py), converts each with
`arrowquant quantize FOLDER --format gguf --gguf-type F16|Q8_0|Q4_K` ($ARROWQUANT_BIN,
default target/debug/arrowquant: the test build) and reads the files with
gguf.GGUFReader. Checked against the folder itself (config.json, tokenizer.json,
model.safetensors), with the names, keys and layouts llama.cpp's convert_hf_to_gguf.py
writes written out here independently of the converter:

- general.architecture and the hyper-parameter keys llama.cpp reads, with their values;
- every tensor's name, shape (ggml order) and type: 1-D tensors, bert's position_embd
  and token_types in F32; Q4_K where the row is a multiple of 256, else Q5_0;
- the F16 file's data equals the source weights rounded to f16, with llama's Q/K rows
  in llama.cpp's RoPE order (convert_hf_to_gguf's LlamaModel.permute), qwen2's not
  permuted;
- the quantized files: gguf.quants.dequantize gives the same f32 bits as our decoder
  (`arrowquant dequantize`), and Q8_0 is within cosine 0.999 of the source per tensor
  (so each block went to the right place);
- the tokenizer keys: model and pre-tokenizer names, token count = config vocab_size,
  the token list round-trips to tokenizer.json's vocabulary (WordPiece `##x` <-> `x`,
  `y` <-> `\u2581y` as llama.cpp's BERT vocabulary spells them; Qwen's padding as
  `[PAD{id}]`), token types, merges, special ids and add_bos/add_eos.

Exit 0 if every check passes, 1 otherwise (each failure printed).
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import check_gguf_dequant  # noqa: E402
import tiny_models  # noqa: E402

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print(f"FAIL: {what}", file=sys.stderr)


def field(reader, key):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


# ---------------------------------------------------------------- expected layout


def gguf_name(arch, hf):
    """llama.cpp's tensor name of a Hugging Face tensor (None: not written)."""
    if arch == "bert":
        fixed = {
            "embeddings.word_embeddings.weight": "token_embd.weight",
            "embeddings.position_embeddings.weight": "position_embd.weight",
            "embeddings.token_type_embeddings.weight": "token_types.weight",
            "embeddings.LayerNorm.weight": "token_embd_norm.weight",
            "embeddings.LayerNorm.bias": "token_embd_norm.bias",
        }
        if hf in fixed:
            return fixed[hf]
        if hf.startswith("pooler."):
            return None  # llama.cpp pools by pooling_type; its converter drops the pooler
        _, _, i, rest = hf.split(".", 3)
        per = {
            "attention.self.query": "attn_q",
            "attention.self.key": "attn_k",
            "attention.self.value": "attn_v",
            "attention.output.dense": "attn_output",
            "attention.output.LayerNorm": "attn_output_norm",
            "intermediate.dense": "ffn_up",
            "output.dense": "ffn_down",
            "output.LayerNorm": "layer_output_norm",
        }
        mod, kind = rest.rsplit(".", 1)
        return f"blk.{i}.{per[mod]}.{kind}"
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    if hf in fixed:
        return fixed[hf]
    _, _, i, rest = hf.split(".", 3)
    mod, kind = rest.rsplit(".", 1)
    per = {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    return f"blk.{i}.{per[mod]}.{kind}"


def expected_type(name, shape, target):
    if len(shape) == 1 or name in ("position_embd.weight", "token_types.weight"):
        return "F32"
    if target == "Q4_K" and shape[-1] % 256 != 0:
        return "Q5_0"
    return target


def llama_permute(w, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute: HF's rotate-half rows to ggml's RoPE order."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def read_source(folder, arch, cfg):
    sys.path.insert(0, os.path.join(ROOT, "benches", "scripts"))
    from bert_reference import read_safetensors

    out = {}
    for name, x in read_safetensors(os.path.join(folder, "model.safetensors")).items():
        x = x.astype(np.float32)
        if arch == "llama" and name.endswith("self_attn.q_proj.weight"):
            x = llama_permute(x, cfg["num_attention_heads"])
        if arch == "llama" and name.endswith("self_attn.k_proj.weight"):
            x = llama_permute(x, cfg["num_key_value_heads"])
        out[name] = x
    return out


# ---------------------------------------------------------------- checks


def check_hparams(r, arch, cfg):
    check(field(r, "general.architecture") == arch, f"{arch}: general.architecture = {field(r, 'general.architecture')}")
    want = {
        "block_count": cfg["num_hidden_layers"],
        "context_length": cfg["max_position_embeddings"],
        "embedding_length": cfg["hidden_size"],
        "feed_forward_length": cfg["intermediate_size"],
        "attention.head_count": cfg["num_attention_heads"],
    }
    if arch == "bert":
        want["attention.layer_norm_epsilon"] = cfg["layer_norm_eps"]
        want["attention.causal"] = False
        want["pooling_type"] = 1  # mean, from 1_Pooling/config.json
    else:
        want["attention.head_count_kv"] = cfg["num_key_value_heads"]
        want["attention.layer_norm_rms_epsilon"] = cfg["rms_norm_eps"]
        want["rope.freq_base"] = cfg["rope_theta"]
    for k, v in want.items():
        got = field(r, f"{arch}.{k}")
        ok = got is not None and (np.isclose(got, v, rtol=1e-6) if isinstance(v, float) else got == v)
        check(ok, f"{arch}: {arch}.{k} = {got}, config.json says {v}")


def check_tokenizer(r, arch, folder, cfg):
    with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type")
    n = cfg["vocab_size"]
    check(tokens is not None and len(tokens) == n, f"{arch}: {len(tokens or [])} tokens, vocab_size {n}")
    check(types is not None and len(types) == n, f"{arch}: {len(types or [])} token types, vocab_size {n}")
    if not tokens or not types or len(tokens) != n:
        return
    vocab = dict(tj["model"]["vocab"])
    special = {}
    for t in tj["added_tokens"]:
        vocab[t["content"]] = t["id"]
        if t["special"]:
            special[t["id"]] = t["content"]
    by_id = {i: t for t, i in vocab.items()}
    model = field(r, "tokenizer.ggml.model")
    if arch == "bert":
        check(model == "bert", f"bert: tokenizer.ggml.model = {model}")

        def spell(t):  # llama.cpp's BERT vocabulary: `##x` -> `x`, `x` -> `\u2581x`, [SPECIAL] kept
            if t.startswith("[") and t.endswith("]"):
                return t
            return t[2:] if t.startswith("##") else "\u2581" + t
    else:
        want_pre = {"llama": "llama-bpe", "qwen2": "qwen2"}[arch]
        check(model == "gpt2", f"{arch}: tokenizer.ggml.model = {model}")
        check(field(r, "tokenizer.ggml.pre") == want_pre, f"{arch}: tokenizer.ggml.pre = {field(r, 'tokenizer.ggml.pre')}")

        def spell(t):
            return t

    bad = [i for i in range(n) if tokens[i] != (spell(by_id[i]) if i in by_id else f"[PAD{i}]")]
    check(not bad, f"{arch}: {len(bad)} tokens differ from tokenizer.json, first id {bad[:1]}: "
                   f"{[tokens[i] for i in bad[:3]]} vs {[by_id.get(i) for i in bad[:3]]}")
    want_types = [3 if i in special else (1 if i in by_id else 5) for i in range(n)]  # CONTROL, NORMAL, UNUSED
    bad = [i for i in range(n) if types[i] != want_types[i]]
    check(not bad, f"{arch}: {len(bad)} token types differ, first ids {bad[:5]}: "
                   f"{[types[i] for i in bad[:5]]} vs {[want_types[i] for i in bad[:5]]}")
    if arch != "bert":
        merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
        check(field(r, "tokenizer.ggml.merges") == merges, f"{arch}: tokenizer.ggml.merges differ from tokenizer.json")
    if arch == "bert":
        ids = {"bos_token_id": vocab["[CLS]"], "eos_token_id": vocab["[SEP]"], "unknown_token_id": vocab["[UNK]"],
               "padding_token_id": vocab["[PAD]"], "add_bos_token": True, "add_eos_token": True}
    elif arch == "llama":
        ids = {"bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"], "add_bos_token": True}
    else:
        ids = {"eos_token_id": cfg["eos_token_id"], "add_bos_token": False}
    for k, v in ids.items():
        got = field(r, f"tokenizer.ggml.{k}")
        check(got == v, f"{arch}: tokenizer.ggml.{k} = {got}, want {v}")


def check_tensors(r, arch, cfg, src, target, gguf_path, aq, tmp):
    want = {}
    for hf, x in src.items():
        g = gguf_name(arch, hf)
        if g is not None:
            want[g] = (hf, x)
    if arch == "qwen2" and cfg.get("tie_word_embeddings"):
        check("output.weight" not in {t.name for t in r.tensors}, "qwen2: tied embeddings, yet output.weight written")
    got = {t.name: t for t in r.tensors}
    check(set(got) == set(want), f"{arch} {target}: tensors missing {sorted(set(want) - set(got))[:5]}, "
                                 f"extra {sorted(set(got) - set(want))[:5]}")
    for name, (hf, x) in want.items():
        t = got.get(name)
        if t is None:
            continue
        shape = [int(v) for v in t.shape]
        check(shape == list(reversed(x.shape)), f"{arch} {target}: {name} shape {shape}, source {list(x.shape)} reversed")
        ty = expected_type(name, x.shape, target)
        check(t.tensor_type.name == ty, f"{arch} {target}: {name} is {t.tensor_type.name}, want {ty}")
        if t.tensor_type.name in ("F32", "F16"):
            data = np.asarray(t.data).reshape(-1)
            ref = x.reshape(-1).astype(np.float16 if t.tensor_type.name == "F16" else np.float32)
            check(data.dtype == ref.dtype and np.array_equal(data.view(np.uint8), ref.view(np.uint8)),
                  f"{arch} {target}: {name} data differs from the source ({t.tensor_type.name})")
        elif target == "Q8_0":
            d = dequantize(t.data, t.tensor_type).reshape(-1).astype(np.float64)
            s = x.reshape(-1).astype(np.float64)
            cos = d @ s / max(np.linalg.norm(d) * np.linalg.norm(s), 1e-30)
            check(cos > 0.999, f"{arch} Q8_0: {name} cosine to the source {cos:.5f}")
    if target != "F16":
        ours = os.path.join(tmp, f"{arch}-{target}.safetensors")
        p = subprocess.run([aq, "dequantize", gguf_path, "-o", ours], capture_output=True, text=True)
        check(p.returncode == 0, f"{arch} {target}: arrowquant dequantize failed: {p.stderr[-500:]}")
        if p.returncode == 0:
            rc = check_gguf_dequant.main(gguf_path, ours, [target])
            check(rc == 0, f"{arch} {target}: gguf.quants.dequantize differs from arrowquant dequantize")


def main():
    aq = os.environ.get("ARROWQUANT_BIN") or os.path.join(ROOT, "target", "debug", "arrowquant")
    if not os.access(aq, os.X_OK):
        print(f"no arrowquant binary at {aq} (build it, or set ARROWQUANT_BIN)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        models = os.path.join(tmp, "models")
        for arch in ["bert", "llama", "qwen2"]:
            folder = os.path.join(models, arch)
            os.makedirs(folder)
            tiny_models.MAKERS[arch](folder)
            with open(os.path.join(folder, "config.json")) as f:
                cfg = json.load(f)
            src = read_source(folder, arch, cfg)
            for target in ["F16", "Q8_0", "Q4_K"]:
                out = os.path.join(tmp, f"{arch}-{target}.gguf")
                p = subprocess.run([aq, "quantize", folder, "--format", "gguf", "--gguf-type", target, "-o", out, "-q"],
                                   capture_output=True, text=True)
                check(p.returncode == 0, f"{arch} {target}: arrowquant quantize failed: {p.stderr[-800:]}")
                if p.returncode != 0:
                    continue
                r = GGUFReader(out)
                if target == "F16":
                    check_hparams(r, arch, cfg)
                    check_tokenizer(r, arch, folder, cfg)
                check_tensors(r, arch, cfg, src, target, out, aq, tmp)
            print(f"{arch}: checked F16, Q8_0, Q4_K")
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed", file=sys.stderr)
        return 1
    print("test_hf_gguf: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
