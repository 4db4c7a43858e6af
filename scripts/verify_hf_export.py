#!/usr/bin/env python3
"""Check train_vocab's HuggingFace GPT-2 and Llama exports against an independent implementation.

GPT-2 (GPT2LMHeadModel) and Llama (LlamaForCausalLM) are written here from their definitions in
plain PyTorch (no transformers), built from nothing but an exported folder's config.json and
model.safetensors, and run on the tokens train_vocab generated; their logits must equal the ones
train_vocab sampled from (dumped with `generate --dump-logits`) to --tol. That checks the tensor
names, the layouts (GPT-2's Conv1D transposes, Llama's split q/k/v and gate/up and its rotate-half
rotary positions), the config and our KV-cache inference in one go.

Without --checkpoint it first makes its own folders with random weights (GPT-2 tied with attention
biases and untied with zero biases, as LoopOS's models export; Llama tied and untied, with different
rotary bases and RMSNorm epsilons), imports them with `train_vocab import`, exports them back, and
requires the exported tensors to equal the originals bit for bit before comparing logits.

    python3 scripts/verify_hf_export.py                                   # self-made models
    python3 scripts/verify_hf_export.py --checkpoint run/model_checkpoint.bin --vocab run/tokenizer.vocab

Needs PyTorch and NumPy (Debian: apt-get install python3-torch). The module also serves
bench/generate_torch.py, which times this GPT-2 with its own KV cache.
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    """name -> (numpy array, metadata dict): the 8-byte length, the JSON header, the data."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n :]
    out = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
    return out, meta


def write_safetensors(path, tensors, meta):
    header, offset, blobs = {"__metadata__": meta}, 0, []
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def cached_attention(q, k, v, cache, l):
    """Causal attention of T new positions (q, k, v: [heads, T, hs]) after the layer's cached keys and
    values, which it extends; returns [T, heads·hs]."""
    if cache[l] is not None:
        k = torch.cat([cache[l][0], k], dim=1)
        v = torch.cat([cache[l][1], v], dim=1)
    cache[l] = (k, v)
    T, total = q.shape[1], k.shape[1]
    scores = (q @ k.transpose(1, 2)) / math.sqrt(q.shape[2])
    mask = torch.ones(T, total, dtype=torch.bool).tril(diagonal=total - T)
    scores = scores.masked_fill(~mask, float("-inf"))
    return (torch.softmax(scores, dim=-1) @ v).transpose(0, 1).reshape(T, -1)


class GPT2:
    """GPT-2 from its definition. Linear layers are Conv1D: y = x @ W + b with W [in, out]."""

    def __init__(self, config, tensors, dtype=torch.float32):
        self.n_head = config["n_head"]
        self.n_layer = config["n_layer"]
        self.eps = config.get("layer_norm_epsilon", 1e-5)
        assert config.get("activation_function", "gelu_new") == "gelu_new"
        w = {k[len("transformer.") :] if k.startswith("transformer.") else k: torch.tensor(np.array(v), dtype=dtype) for k, v in tensors.items()}
        self.w = w
        tied = config.get("tie_word_embeddings", True)
        self.head = w["wte.weight"] if tied or "lm_head.weight" not in w else w["lm_head.weight"]

    def ln(self, x, name):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], self.w[name + ".weight"], self.w[name + ".bias"], self.eps)

    def lin(self, x, name):
        return x @ self.w[name + ".weight"] + self.w[name + ".bias"]

    @staticmethod
    def gelu_new(x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

    def forward(self, ids, cache=None):
        """ids: 1-D LongTensor of new tokens. cache: per layer (K, V) of [H, T, hs], grown in place of a
        list. Returns logits [len(ids), V] and the cache."""
        start = 0 if cache is None else cache[0][0].shape[1]
        cache = cache if cache is not None else [None] * self.n_layer
        T = ids.shape[0]
        x = self.w["wte.weight"][ids] + self.w["wpe.weight"][start : start + T]
        C = x.shape[-1]
        hs = C // self.n_head
        for l in range(self.n_layer):
            p = f"h.{l}"
            qkv = self.lin(self.ln(x, p + ".ln_1"), p + ".attn.c_attn")
            q, k, v = (t.view(T, self.n_head, hs).transpose(0, 1) for t in qkv.split(C, dim=1))
            att = cached_attention(q, k, v, cache, l)
            x = x + self.lin(att, p + ".attn.c_proj")
            x = x + self.lin(self.gelu_new(self.lin(self.ln(x, p + ".ln_2"), p + ".mlp.c_fc")), p + ".mlp.c_proj")
        return self.ln(x, "ln_f") @ self.head.T, cache


class Llama:
    """Llama from LlamaConfig's meaning: pre-RMSNorm blocks, rotary q/k (rotate_half: channel pairs
    (i, i + head/2)), SwiGLU MLP, no biases, nn.Linear layers (y = x @ W.T with W [out, in])."""

    def __init__(self, config, tensors, dtype=torch.float32):
        self.n_head = config["num_attention_heads"]
        self.n_layer = config["num_hidden_layers"]
        self.eps = config["rms_norm_eps"]
        self.theta = config.get("rope_theta", 10000.0)
        assert config.get("hidden_act", "silu") == "silu"
        assert config.get("num_key_value_heads", self.n_head) == self.n_head and not config.get("rope_scaling")
        assert not config.get("attention_bias", False) and not config.get("mlp_bias", False)
        self.w = {k: torch.tensor(np.array(v), dtype=dtype) for k, v in tensors.items()}
        tied = config.get("tie_word_embeddings", False)
        self.head = self.w["model.embed_tokens.weight"] if tied else self.w["lm_head.weight"]
        self.dtype = dtype

    def norm(self, x, name):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(self.dtype) * self.w[name + ".weight"]

    def lin(self, x, name):
        return x @ self.w[name + ".weight"].T

    def rope(self, x, start):
        """x [H, T, hs] at positions start..start+T-1."""
        hs, T = x.shape[-1], x.shape[1]
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, hs, 2, dtype=torch.float64) / hs))
        angles = torch.outer(torch.arange(start, start + T, dtype=torch.float64), inv_freq)
        cos = torch.cat([angles.cos(), angles.cos()], dim=-1).to(self.dtype)
        sin = torch.cat([angles.sin(), angles.sin()], dim=-1).to(self.dtype)
        x1, x2 = x[..., : hs // 2], x[..., hs // 2 :]
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin

    def forward(self, ids, cache=None):
        """As GPT2.forward: logits [len(ids), V] and the per-layer (K, V) cache, K already rotated."""
        start = 0 if cache is None else cache[0][0].shape[1]
        cache = cache if cache is not None else [None] * self.n_layer
        T = ids.shape[0]
        x = self.w["model.embed_tokens.weight"][ids]
        C = x.shape[-1]
        hs = C // self.n_head
        for l in range(self.n_layer):
            p = f"model.layers.{l}"
            h = self.norm(x, p + ".input_layernorm")
            q, k, v = (self.lin(h, f"{p}.self_attn.{n}_proj").view(T, self.n_head, hs).transpose(0, 1) for n in "qkv")
            q, k = self.rope(q, start), self.rope(k, start)
            att = cached_attention(q, k, v, cache, l)
            x = x + self.lin(att, p + ".self_attn.o_proj")
            h = self.norm(x, p + ".post_attention_layernorm")
            x = x + self.lin(torch.nn.functional.silu(self.lin(h, p + ".mlp.gate_proj")) * self.lin(h, p + ".mlp.up_proj"), p + ".mlp.down_proj")
        return self.norm(x, "model.norm") @ self.head.T, cache


def is_llama(config):
    return config.get("model_type") == "llama"


def context_size(config):
    return config["max_position_embeddings"] if is_llama(config) else config["n_positions"]


def load_folder(folder, dtype=torch.float32):
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    tensors, meta = read_safetensors(os.path.join(folder, "model.safetensors"))
    assert meta.get("format") == "pt", "transformers needs __metadata__.format == 'pt'"
    return (Llama if is_llama(config) else GPT2)(config, tensors, dtype), config, tensors


def bytes_to_unicode():
    """GPT-2's printable stand-in for every byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def make_random_folder(folder, tied, biases, seed):
    """A small GPT-2 with random weights and a byte-level BPE tokenizer (bytes, <|endoftext|>, a few merges)."""
    g = np.random.default_rng(seed)
    C, H, L, F, V, P = 64, 4, 2, 96, 300, 32
    t = {"transformer.wte.weight": 0.5 * g.standard_normal((V, C)), "transformer.wpe.weight": 0.5 * g.standard_normal((P, C))}
    for l in range(L):
        h = f"transformer.h.{l}"
        for ln in ("ln_1", "ln_2"):
            t[f"{h}.{ln}.weight"] = 1 + 0.2 * g.standard_normal(C)
            t[f"{h}.{ln}.bias"] = 0.1 * g.standard_normal(C)
        for name, (i, o) in {"attn.c_attn": (C, 3 * C), "attn.c_proj": (C, C), "mlp.c_fc": (C, F), "mlp.c_proj": (F, C)}.items():
            t[f"{h}.{name}.weight"] = 0.2 * g.standard_normal((i, o))
            zero = name.startswith("attn") and not biases
            t[f"{h}.{name}.bias"] = np.zeros(o) if zero else 0.1 * g.standard_normal(o)
    t["transformer.ln_f.weight"] = 1 + 0.2 * g.standard_normal(C)
    t["transformer.ln_f.bias"] = 0.1 * g.standard_normal(C)
    if not tied:
        t["lm_head.weight"] = 0.3 * g.standard_normal((V, C))
    config = {
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": V, "n_positions": P, "n_embd": C,
        "n_layer": L, "n_head": H, "n_inner": F, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
        "tie_word_embeddings": tied, "bos_token_id": 256, "eos_token_id": 256,
    }
    return write_folder(folder, t, config)


def make_random_llama_folder(folder, tied, theta, eps, seed):
    """A small Llama with random weights (norm weights away from 1, so a misread epsilon or a skipped
    norm shows) and the same tokenizer."""
    g = np.random.default_rng(seed)
    C, H, L, F, V, P = 64, 4, 2, 96, 300, 32
    t = {"model.embed_tokens.weight": 0.5 * g.standard_normal((V, C))}
    for l in range(L):
        h = f"model.layers.{l}"
        for norm in ("input_layernorm", "post_attention_layernorm"):
            t[f"{h}.{norm}.weight"] = 1 + 0.2 * g.standard_normal(C)
        shapes = {"self_attn.q_proj": (C, C), "self_attn.k_proj": (C, C), "self_attn.v_proj": (C, C), "self_attn.o_proj": (C, C),
                  "mlp.gate_proj": (F, C), "mlp.up_proj": (F, C), "mlp.down_proj": (C, F)}
        for name, shape in shapes.items():
            t[f"{h}.{name}.weight"] = 0.2 * g.standard_normal(shape)
    t["model.norm.weight"] = 1 + 0.2 * g.standard_normal(C)
    if not tied:
        t["lm_head.weight"] = 0.3 * g.standard_normal((V, C))
    config = {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": V, "hidden_size": C, "intermediate_size": F,
        "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": H, "max_position_embeddings": P,
        "hidden_act": "silu", "rms_norm_eps": eps, "rope_theta": theta, "rope_scaling": None, "attention_bias": False,
        "mlp_bias": False, "tie_word_embeddings": tied, "bos_token_id": 256, "eos_token_id": 256,
    }
    return write_folder(folder, t, config)


def write_folder(folder, t, config):
    """model.safetensors, config.json and a byte-level BPE tokenizer (bytes, <|endoftext|>, a few merges)."""
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "model.safetensors"), {k: v.astype(np.float32) for k, v in t.items()}, {"format": "pt"})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("a", "t"), ("Ġ", "c")]
    for i, (a, b) in enumerate(merges):
        vocab[a + b] = 257 + i
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tok = {
        "version": "1.0", "added_tokens": [{"id": 256, "content": "<|endoftext|>", "special": True}], "normalizer": None,
        "pre_tokenizer": byte_level, "decoder": byte_level,
        "model": {"type": "BPE", "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        json.dump(tok, f)
    return {k: v.astype(np.float32) for k, v in t.items()}


def cli(*args):
    cmd = ["bun", "run", os.path.join(REPO, "bin", "train-vocab.ts"), *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{r.stderr}")
    return r


def compare_logits(label, folder, ckpt, vocab, prompt, max_tokens, tol, work):
    dump = os.path.join(work, re.sub(r"\W+", "_", label) + ".logits.safetensors")
    cli("generate", "--checkpoint", ckpt, "--vocab", vocab, "--prompt", prompt, "--max-tokens", str(max_tokens),
        "--temperature", "0", "--ignore-end", "--no-echo", "--dump-logits", dump)
    got, meta = read_safetensors(dump)
    tokens, ours = got["tokens"].astype(np.int64), got["logits"]
    first = int(meta["first_position"])
    model, config, _ = load_folder(folder)
    ids = torch.tensor(tokens[: context_size(config)])
    with torch.no_grad():
        full, _ = model.forward(ids)
    ref = full[first : first + ours.shape[0]].numpy()
    diff = float(np.abs(ref - ours).max())
    scale = float(np.abs(ref).max())
    ok = diff <= tol
    print(f"{label}: {ours.shape[0]} positions × {ours.shape[1]} logits (|logit| up to {scale:.2f}), max |ours − PyTorch| = {diff:.2e} "
          f"{'≤' if ok else '>'} {tol:g}  {'OK' if ok else 'FAIL'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="a train_vocab checkpoint to export and check (default: self-made random models)")
    ap.add_argument("--vocab", help="its vocabulary (with --checkpoint)")
    ap.add_argument("--prompt", default="the cat sat on the mat", help="text to run (default: %(default)s)")
    ap.add_argument("--max-tokens", type=int, default=12, help="greedy tokens to generate after the prompt (default: %(default)s)")
    ap.add_argument("--tol", type=float, default=1e-4, help="largest allowed |logit difference| (default: %(default)s)")
    args = ap.parse_args()
    torch.manual_seed(0)
    ok = True
    with tempfile.TemporaryDirectory(prefix="verify-hf-") as work:
        if args.checkpoint:
            if not args.vocab:
                sys.exit("--vocab is required with --checkpoint")
            out = os.path.join(work, "hf")
            cli("export", args.checkpoint, "--vocab", args.vocab, "--format", "hf", "--out", out)
            ok = compare_logits("checkpoint", out, args.checkpoint, args.vocab, args.prompt, args.max_tokens, args.tol, work)
        else:
            models = [
                ("gpt2 tied+biases", lambda src: make_random_folder(src, True, True, seed=11)),
                ("gpt2 untied+zero-attention-biases", lambda src: make_random_folder(src, False, False, seed=28)),
                ("llama tied", lambda src: make_random_llama_folder(src, True, 10000.0, 1e-5, seed=7)),
                ("llama untied, rope_theta 500000, rms_norm_eps 1e-6", lambda src: make_random_llama_folder(src, False, 500000.0, 1e-6, seed=8)),
            ]
            for i, (label, make) in enumerate(models):
                src = os.path.join(work, str(i), "src")
                original = make(src)
                ckpt, vocab, out = (os.path.join(work, str(i), n) for n in ("model.bin", "tokenizer.vocab", "hf"))
                cli("import", src, "--out", ckpt, "--vocab-out", vocab)
                cli("export", ckpt, "--vocab", vocab, "--format", "hf", "--out", out)
                exported, _ = read_safetensors(os.path.join(out, "model.safetensors"))
                same = set(exported) == set(original) and all(np.array_equal(exported[k], original[k]) for k in original)
                print(f"{label}: import → export gives {'identical' if same else 'DIFFERENT'} tensors ({len(original)} of them)")
                ok &= same
                ok &= compare_logits(label, out, ckpt, vocab, args.prompt, args.max_tokens, args.tol, work)
    print("verify-hf: " + ("all checks passed" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
