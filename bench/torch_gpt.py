"""The PyTorch peers' model (bench/train_torch.py, bench/quality_torch.py): GPT-2 shaped like
train-vocab's — pre-LN blocks, learned positions, GELU (tanh), biases, the LM head tied to the token
embedding, no dropout — with GPT-2's initialisation (normal 0.02, residual projections scaled by
1/sqrt(2 * layers))."""
import math
import torch, torch.nn as nn, torch.nn.functional as F


class Block(nn.Module):
    def __init__(s, C, num_heads, d_ff, T):
        super().__init__()
        s.C, s.num_heads, s.T = C, num_heads, T
        s.ln1, s.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        s.qkv, s.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        s.fc, s.fc_proj = nn.Linear(C, d_ff), nn.Linear(d_ff, C)
        s.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)).view(1, 1, T, T))

    def attn(s, x):
        n, C, T, H = x.shape[0], s.C, s.T, s.num_heads
        q, k, v = s.qkv(x).split(C, dim=2)
        q, k, v = [t.view(n, T, H, C // H).transpose(1, 2) for t in (q, k, v)]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(~s.mask, float("-inf")).softmax(dim=-1)
        return s.proj((att @ v).transpose(1, 2).contiguous().view(n, T, C))

    def forward(s, x):
        x = x + s.attn(s.ln1(x))
        return x + s.fc_proj(F.gelu(s.fc(s.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(s, vocab_size, d_model, num_heads, num_layers, d_ff, seq_len):
        super().__init__()
        s.T = seq_len
        s.wte, s.wpe = nn.Embedding(vocab_size, d_model), nn.Embedding(seq_len, d_model)
        s.blocks = nn.ModuleList([Block(d_model, num_heads, d_ff, seq_len) for _ in range(num_layers)])
        s.ln_f = nn.LayerNorm(d_model)
        for n, w in s.named_parameters():
            if w.dim() >= 2:
                std = 0.02 / math.sqrt(2 * num_layers) if n.endswith(("proj.weight", "fc_proj.weight")) else 0.02
                nn.init.normal_(w, 0.0, std)
            elif n.endswith("bias"):
                nn.init.zeros_(w)

    def forward(s, idx, tgt):
        x = s.wte(idx) + s.wpe(torch.arange(s.T))
        for b in s.blocks:
            x = b(x)
        logits = s.ln_f(x) @ s.wte.weight.t()
        # The loss in fp32 under autocast too.
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), tgt.reshape(-1))
