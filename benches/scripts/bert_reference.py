"""Reference sentence embeddings of a BERT model, in numpy (float64), without torch.

    python benches/scripts/bert_reference.py MODEL_DIR SENTENCES.txt OUT.npy

MODEL_DIR is a Hugging Face BertModel folder (config.json, tokenizer.json, an F32 / F16
/ BF16 model.safetensors; all-MiniLM-L6-v2's model/ folder, or a tiny model from
tests/python/tiny_models.py). Each line of SENTENCES.txt is tokenized on its own with
the `tokenizers` package (the folder's tokenizer.json, [CLS] .. [SEP], no padding or
truncation), run through the encoder as transformers' BertModel does (post-LayerNorm
layers, exact erf GELU, token type 0, absolute positions), mean-pooled over the tokens
([CLS] and [SEP] included, as sentence-transformers' mean pooling over the attention
mask does) and L2-normalized. OUT.npy holds one row per line, float64.
"""

import json
import math
import os
import struct
import sys

import numpy as np
from tokenizers import Tokenizer

_erf = np.frompyfunc(math.erf, 1, 1)


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[a:b]
        dt = info["dtype"]
        if dt == "F32":
            x = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            x = np.frombuffer(raw, dtype="<f2")
        elif dt == "BF16":
            x = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            continue  # position_ids (I64) and the like
        out[name] = x.astype(np.float64).reshape(info["shape"])
    return out


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


class Bert:
    def __init__(self, folder):
        with open(os.path.join(folder, "config.json")) as f:
            self.cfg = json.load(f)
        w = read_safetensors(os.path.join(folder, "model.safetensors"))
        # Some checkpoints prefix every name with "bert.".
        self.w = {k.removeprefix("bert."): v for k, v in w.items()}
        self.tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        self.tok.no_padding()
        self.tok.no_truncation()

    def embed(self, text):
        c, w = self.cfg, self.w
        ids = self.tok.encode(text).ids
        n = len(ids)
        eps = c["layer_norm_eps"]
        heads = c["num_attention_heads"]
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][:n] + w["embeddings.token_type_embeddings.weight"][0]
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        d = x.shape[1]
        hd = d // heads
        for i in range(c["num_hidden_layers"]):
            p = f"encoder.layer.{i}."

            def lin(name, h):
                return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q = lin("attention.self.query", x).reshape(n, heads, hd).transpose(1, 0, 2)
            k = lin("attention.self.key", x).reshape(n, heads, hd).transpose(1, 0, 2)
            v = lin("attention.self.value", x).reshape(n, heads, hd).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(1, 0, 2).reshape(n, d)
            x = layer_norm(
                x + lin("attention.output.dense", ctx),
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                eps,
            )
            h = gelu(lin("intermediate.dense", x))
            x = layer_norm(
                x + lin("output.dense", h), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps
            )
        e = x.mean(0)
        return e / np.linalg.norm(e)


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [line for line in f.read().split("\n") if line.strip()]


def main(folder, sentences, out):
    model = Bert(folder)
    emb = np.stack([model.embed(s) for s in read_lines(sentences)])
    np.save(out, emb)
    print(f"{out}: {emb.shape[0]} embeddings of {emb.shape[1]}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
