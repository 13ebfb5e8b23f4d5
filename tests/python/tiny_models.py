"""Tiny Hugging Face model folders for the GGUF converter's tests, one per architecture.

    python tests/python/tiny_models.py OUT_DIR [bert llama qwen2]
    python tests/python/tiny_models.py --hf7b DIR [--layers 32]

Each OUT_DIR/ARCH/ holds what a real checkpoint folder holds: `config.json` with the
fields transformers writes, `tokenizer.json` in the `tokenizers` package's format (trained
with that package on the committed text in tests/data/text/), `tokenizer_config.json`,
and `model.safetensors` with the architecture's real tensor names and layouts, seeded
random values (the same bytes on every run and machine: numpy's PCG64 with a fixed seed).

| arch | architectures | dtype | hidden | layers | heads / kv heads | ffn | vocab | tokenizer |
|---|---|---|---|---|---|---|---|---|
| bert | BertModel (+ sentence-transformers mean pooling) | F32 | 128 | 2 | 4 / 4 | 512 | 1000 | WordPiece, BertNormalizer (lowercase), [CLS] .. [SEP] |
| llama | LlamaForCausalLM | F16 | 256 | 2 | 8 / 2 (GQA) | 640 | 1029 | byte-level BPE, Llama-3's Split regex, ignore_merges, BOS added |
| qwen2 | Qwen2ForCausalLM | BF16 | 256 | 2 | 4 / 2 (GQA) | 768 | 1088 (tokenizer 1027, padded as Qwen pads) | byte-level BPE, Qwen2's regex, NFC |

Row lengths are chosen so that some tensors take 256-blocks (Q4_K) and some fall back:
bert's rows are 128 wide except ffn_down (512); llama's ffn_down rows are 640 wide
(not a multiple of 256); qwen2's are all multiples of 256. llama has an `lm_head`,
qwen2 ties it to the embedding (`tie_word_embeddings`), as Qwen2-0.5B does; qwen2 has
the q/k/v biases Qwen2 has.

The weights are scaled so that the causal models' next-token distributions are far from
uniform (embeddings and lm_head N(0, 0.2^2), projections N(0, 1/fan_in), norms 1 +- 0.1):
KL divergences between quantized files then measure something.

--hf7b writes config.json and tokenizer.json for the 7B-shaped LLaMA folder whose
model.safetensors std-adapter/examples/gen_synthetic.rs writes (benches/scripts/
gen_synthetic_7b.sh hf DIR does both): vocab 32000 (a byte-level BPE trained on the same
text, then extended with merges of existing tokens up to 32000 entries).

Needs numpy and tokenizers.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT_DIR = os.path.join(HERE, "..", "data", "text")
TEXT_FILES = ["prose.txt", "sentences.txt", "tokenizer_lines.txt"]

# The pre-tokenizer regexes as the real tokenizer.json files spell them.
LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
QWEN2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def corpus_lines():
    lines = []
    for name in TEXT_FILES:
        with open(os.path.join(TEXT_DIR, name), encoding="utf-8") as f:
            lines.extend(f.read().split("\n"))
    return lines


# ---------------------------------------------------------------- tokenizers


def byte_level_bpe(regex, trim_offsets, ignore_merges, nfc, vocab_size):
    """An untrained byte-level BPE with the given Split regex, trained on the corpus."""
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=trim_offsets, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=trim_offsets, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    return tok


def extend_merges(tok_json, target):
    """Adds merges of existing tokens (a + b, in a fixed order) until the model's vocab
    has `target` entries: a valid BPE whose size matches a big config's vocab_size."""
    model = tok_json["model"]
    vocab = model["vocab"]
    merges = model["merges"]
    base = sorted(vocab, key=lambda t: vocab[t])
    i = 0
    while len(vocab) < target:
        a = base[i % len(base)]
        b = base[(i // len(base)) % len(base)]
        i += 1
        if a + b in vocab:
            continue
        vocab[a + b] = len(vocab)
        merges.append([a, b] if merges and isinstance(merges[0], list) else f"{a} {b}")
    return tok_json


def llama_tokenizer(n_base=1024, extend_to=None):
    tok = byte_level_bpe(LLAMA3_REGEX, trim_offsets=True, ignore_merges=True, nfc=False, vocab_size=n_base)
    if extend_to is not None:
        tok = Tokenizer.from_str(json.dumps(extend_merges(json.loads(tok.to_str()), extend_to)))
    tok.add_special_tokens(LLAMA3_SPECIALS)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single="<|begin_of_text|> $A",
                pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                special_tokens=[("<|begin_of_text|>", bos)],
            ),
        ]
    )
    return tok


def qwen2_tokenizer(n_base=1024):
    tok = byte_level_bpe(QWEN2_REGEX, trim_offsets=False, ignore_merges=False, nfc=True, vocab_size=n_base)
    tok.add_special_tokens(QWEN2_SPECIALS)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    return tok


def bert_tokenizer(vocab_size=1000):
    # tokenizers 0.23's WordPiece (and prefixed BPE) trainers break ties in hash order,
    # so the vocabulary differs from run to run; this one is counted here instead:
    # the specials, every character seen (alone and as `##c`), then the most frequent
    # words and word endings (`##ing`), ties broken by the string.
    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    words = {}
    for line in corpus_lines():
        for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(line)):
            words[w] = words.get(w, 0) + 1
    chars = sorted({c for w in words for c in w})
    pieces = {}
    for w, n in words.items():
        pieces[w] = pieces.get(w, 0) + n
        for k in range(2, min(len(w), 5)):
            p = "##" + w[-k:]
            pieces[p] = pieces.get(p, 0) + n
    ranked = sorted((p for p in pieces if len(p.removeprefix("##")) > 1), key=lambda p: (-pieces[p], p))
    base = BERT_SPECIALS + chars + ["##" + c for c in chars]
    vocab = {t: i for i, t in enumerate(base + ranked[: vocab_size - len(base)])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100))
    tok.add_special_tokens(BERT_SPECIALS)
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return tok


# ---------------------------------------------------------------- safetensors


def to_bf16_bits(x):
    """float32 -> bfloat16 bit patterns (round to nearest even), as uint16."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return b.astype(np.uint16)


def write_safetensors(path, tensors, dtype):
    """tensors: list of (name, float32 array); dtype: F32, F16 or BF16 for every tensor."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    off = 0
    for name, x in tensors:
        if dtype == "F32":
            raw = np.ascontiguousarray(x, dtype="<f4").tobytes()
        elif dtype == "F16":
            raw = np.ascontiguousarray(x, dtype="<f2").tobytes()
        elif dtype == "BF16":
            raw = to_bf16_bits(x).astype("<u2").tobytes()
        else:
            raise ValueError(dtype)
        header[name] = {"dtype": dtype, "shape": list(x.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for raw in blobs:
            f.write(raw)


class Weights:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.out = []

    def normal(self, name, shape, std):
        self.out.append((name, (self.rng.standard_normal(shape) * std).astype(np.float32)))

    def norm(self, name, n):
        self.out.append((name, (1.0 + 0.1 * self.rng.standard_normal(n)).astype(np.float32)))

    def proj(self, name, rows, cols):
        self.normal(name, (rows, cols), 1.0 / np.sqrt(cols))


# ---------------------------------------------------------------- models


def save_tokenizer(tok, folder, extra_config):
    tok.save(os.path.join(folder, "tokenizer.json"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(extra_config, f, indent=2)


def write_config(folder, config):
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


def make_bert(folder):
    tok = bert_tokenizer(1000)
    vocab = tok.get_vocab_size()
    d, ff, layers, heads, max_pos = 128, 512, 2, 4, 128
    w = Weights(18001)
    w.normal("embeddings.word_embeddings.weight", (vocab, d), 0.5)
    w.normal("embeddings.position_embeddings.weight", (max_pos, d), 0.1)
    w.normal("embeddings.token_type_embeddings.weight", (2, d), 0.1)
    w.norm("embeddings.LayerNorm.weight", d)
    w.normal("embeddings.LayerNorm.bias", (d,), 0.02)
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for m in ["query", "key", "value"]:
            w.proj(p + f"attention.self.{m}.weight", d, d)
            w.normal(p + f"attention.self.{m}.bias", (d,), 0.02)
        w.proj(p + "attention.output.dense.weight", d, d)
        w.normal(p + "attention.output.dense.bias", (d,), 0.02)
        w.norm(p + "attention.output.LayerNorm.weight", d)
        w.normal(p + "attention.output.LayerNorm.bias", (d,), 0.02)
        w.proj(p + "intermediate.dense.weight", ff, d)
        w.normal(p + "intermediate.dense.bias", (ff,), 0.02)
        w.proj(p + "output.dense.weight", d, ff)
        w.normal(p + "output.dense.bias", (d,), 0.02)
        w.norm(p + "output.LayerNorm.weight", d)
        w.normal(p + "output.LayerNorm.bias", (d,), 0.02)
    w.proj("pooler.dense.weight", d, d)
    w.normal("pooler.dense.bias", (d,), 0.02)
    write_safetensors(os.path.join(folder, "model.safetensors"), w.out, "F32")
    write_config(
        folder,
        {
            "architectures": ["BertModel"],
            "attention_probs_dropout_prob": 0.1,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "hidden_size": d,
            "initializer_range": 0.02,
            "intermediate_size": ff,
            "layer_norm_eps": 1e-12,
            "max_position_embeddings": max_pos,
            "model_type": "bert",
            "num_attention_heads": heads,
            "num_hidden_layers": layers,
            "pad_token_id": 0,
            "position_embedding_type": "absolute",
            "torch_dtype": "float32",
            "transformers_version": "4.44.0",
            "type_vocab_size": 2,
            "use_cache": True,
            "vocab_size": vocab,
        },
    )
    save_tokenizer(
        tok,
        folder,
        {
            "do_lower_case": True,
            "unk_token": "[UNK]",
            "sep_token": "[SEP]",
            "pad_token": "[PAD]",
            "cls_token": "[CLS]",
            "mask_token": "[MASK]",
            "tokenize_chinese_chars": True,
            "strip_accents": None,
            "tokenizer_class": "BertTokenizer",
            "model_max_length": max_pos,
        },
    )
    # A sentence-transformers folder: mean pooling, as all-MiniLM-L6-v2's.
    with open(os.path.join(folder, "modules.json"), "w") as f:
        json.dump(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
            ],
            f,
            indent=2,
        )
    os.makedirs(os.path.join(folder, "1_Pooling"), exist_ok=True)
    with open(os.path.join(folder, "1_Pooling", "config.json"), "w") as f:
        json.dump(
            {
                "word_embedding_dimension": d,
                "pooling_mode_cls_token": False,
                "pooling_mode_mean_tokens": True,
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
            },
            f,
            indent=2,
        )


def causal_weights(seed, vocab, d, ff, layers, heads, kv_heads, bias, tied):
    hd = d // heads
    w = Weights(seed)
    w.normal("model.embed_tokens.weight", (vocab, d), 0.2)
    for i in range(layers):
        p = f"model.layers.{i}."
        w.norm(p + "input_layernorm.weight", d)
        w.proj(p + "self_attn.q_proj.weight", heads * hd, d)
        if bias:
            w.normal(p + "self_attn.q_proj.bias", (heads * hd,), 0.1)
        w.proj(p + "self_attn.k_proj.weight", kv_heads * hd, d)
        if bias:
            w.normal(p + "self_attn.k_proj.bias", (kv_heads * hd,), 0.1)
        w.proj(p + "self_attn.v_proj.weight", kv_heads * hd, d)
        if bias:
            w.normal(p + "self_attn.v_proj.bias", (kv_heads * hd,), 0.1)
        w.proj(p + "self_attn.o_proj.weight", d, heads * hd)
        w.norm(p + "post_attention_layernorm.weight", d)
        w.proj(p + "mlp.gate_proj.weight", ff, d)
        w.proj(p + "mlp.up_proj.weight", ff, d)
        w.proj(p + "mlp.down_proj.weight", d, ff)
    w.norm("model.norm.weight", d)
    if not tied:
        w.normal("lm_head.weight", (vocab, d), 0.2)
    return w.out


def make_llama(folder):
    tok = llama_tokenizer(1024)
    vocab = tok.get_vocab_size()
    d, ff, layers, heads, kv = 256, 640, 2, 8, 2
    tensors = causal_weights(18002, vocab, d, ff, layers, heads, kv, bias=False, tied=False)
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors, "F16")
    write_config(folder, llama_config(tok, vocab, d, ff, layers, heads, kv, 2048, "float16"))
    save_tokenizer(
        tok,
        folder,
        {
            "bos_token": "<|begin_of_text|>",
            "eos_token": "<|end_of_text|>",
            "clean_up_tokenization_spaces": True,
            "model_max_length": 2048,
            "tokenizer_class": "PreTrainedTokenizerFast",
        },
    )


def llama_config(tok, vocab, d, ff, layers, heads, kv, ctx, dtype, rope_theta=500000.0, eps=1e-5):
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": tok.token_to_id("<|begin_of_text|>"),
        "eos_token_id": tok.token_to_id("<|end_of_text|>"),
        "hidden_act": "silu",
        "hidden_size": d,
        "initializer_range": 0.02,
        "intermediate_size": ff,
        "max_position_embeddings": ctx,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv,
        "pretraining_tp": 1,
        "rms_norm_eps": eps,
        "rope_scaling": None,
        "rope_theta": rope_theta,
        "tie_word_embeddings": False,
        "torch_dtype": dtype,
        "transformers_version": "4.44.0",
        "use_cache": True,
        "vocab_size": vocab,
    }


def make_qwen2(folder):
    tok = qwen2_tokenizer(1024)
    n_tok = tok.get_vocab_size()
    vocab = (n_tok + 63) // 64 * 64  # Qwen2 pads the embedding beyond the tokenizer (151936 > 151646)
    d, ff, layers, heads, kv = 256, 768, 2, 4, 2
    tensors = causal_weights(18003, vocab, d, ff, layers, heads, kv, bias=True, tied=True)
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors, "BF16")
    eot = tok.token_to_id("<|endoftext|>")
    write_config(
        folder,
        {
            "architectures": ["Qwen2ForCausalLM"],
            "attention_dropout": 0.0,
            "bos_token_id": eot,
            "eos_token_id": eot,
            "hidden_act": "silu",
            "hidden_size": d,
            "initializer_range": 0.02,
            "intermediate_size": ff,
            "max_position_embeddings": 4096,
            "max_window_layers": layers,
            "model_type": "qwen2",
            "num_attention_heads": heads,
            "num_hidden_layers": layers,
            "num_key_value_heads": kv,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "sliding_window": 4096,
            "tie_word_embeddings": True,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.44.0",
            "use_cache": True,
            "use_sliding_window": False,
            "vocab_size": vocab,
        },
    )
    save_tokenizer(
        tok,
        folder,
        {
            "bos_token": None,
            "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "errors": "replace",
            "model_max_length": 4096,
            "tokenizer_class": "Qwen2Tokenizer",
        },
    )


def make_hf7b(folder, layers):
    """config.json and tokenizer.json for gen_synthetic's 7B-shaped LLaMA (vocab 32000)."""
    tok = llama_tokenizer(1024, extend_to=32000 - len(LLAMA3_SPECIALS))
    assert tok.get_vocab_size() == 32000, tok.get_vocab_size()
    os.makedirs(folder, exist_ok=True)
    cfg = llama_config(tok, 32000, 4096, 11008, layers, 32, 32, 4096, "float16", rope_theta=10000.0)
    write_config(folder, cfg)
    save_tokenizer(
        tok,
        folder,
        {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "tokenizer_class": "PreTrainedTokenizerFast"},
    )


MAKERS = {"bert": make_bert, "llama": make_llama, "qwen2": make_qwen2}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="output folder (one sub-folder per architecture), or the 7B folder with --hf7b")
    ap.add_argument("archs", nargs="*", default=list(MAKERS), help="bert llama qwen2 (default: all)")
    ap.add_argument("--hf7b", action="store_true", help="write the 7B folder's config.json and tokenizer.json")
    ap.add_argument("--layers", type=int, default=32, help="layers of the 7B-shaped model (with --hf7b)")
    args = ap.parse_args()
    if args.hf7b:
        make_hf7b(args.out, args.layers)
        print(f"wrote {args.out}/config.json, tokenizer.json")
        return
    for arch in args.archs:
        if arch not in MAKERS:
            sys.exit(f"unknown architecture {arch!r} (have {', '.join(MAKERS)})")
        folder = os.path.join(args.out, arch)
        os.makedirs(folder, exist_ok=True)
        MAKERS[arch](folder)
        print(f"wrote {folder}")


if __name__ == "__main__":
    main()
