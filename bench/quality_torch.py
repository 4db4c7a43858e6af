#!/usr/bin/python3
"""Peer of `bun run bench:quality`: train a GPT for a fixed wall-clock budget with PyTorch (Debian's
python3-torch) and report the validation loss against training time.

The nanoGPT recipe at train-vocab's shape: GPT-2 blocks (pre-LN, learned positions, GELU tanh, biases,
tied head, no dropout), AdamW (betas 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices only), linear
warmup (5% of the steps, at most 200: train-vocab's rule) then cosine to lr/10, gradient clipping 1.0.
The step count is planned from measured step times so that the cosine ends at the budget: after 5
steps (median of steps 2-5), and again at 20%, 40%, 60% and 80% of the budget (median of the last 20).

Data: little-endian uint32 token ids (`train_vocab tokenizer encode --format u32`), cut as train-vocab
cuts them: window i is ids[i*T : i*T+T+1]; training windows are shuffled per epoch; validation is the
mean loss over every window of the validation ids, every --eval-every steps and at the end, outside the
training clock.

The default learning rate, 2e-3, is the best of a sweep on Brown (docs/performance.md, "Time to
quality", carries it): final validation loss after 283 steps, what 2 minutes give this peer in fp32 on
a quiet machine (a fixed step count because the machine was busy; `bench/quality.ts --corpora brown
--minutes 2 --no-ours --peer-lr 1e-3,2e-3,4e-3,8e-3 --peer-steps 283 --peer-omp-wait passive`):
  lr 1e-3 5.792 | 2e-3 5.775 | 4e-3 5.938 | 8e-3 6.208
The default precision, bf16 autocast, reaches the lower loss: its steps were 1.29-1.42x faster than
fp32's in alternating runs (256-309 against 363-400 ms), and at lr 2e-3 its 380 steps (2 minutes at
that rate) end at 5.700 against fp32's 5.775 after 283.

Run it through bench/quality.ts, which sets the environment the peer is fastest in (jemalloc without
purging, the OpenMP OpenBLAS, OMP_NUM_THREADS, OMP_WAIT_POLICY=ACTIVE; see bench/train_torch.py for why).
Prints JSON lines {"elapsed_s", "step", "val_loss", "train_loss"} and a final {"summary": ...}.
"""
import argparse, json, math, os, statistics, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt import GPT  # noqa: E402  (the peers' one model)

p = argparse.ArgumentParser()
p.add_argument("--train-ids", required=True)
p.add_argument("--val-ids", required=True)
for k, v in dict(vocab_size=8192, d_model=256, num_heads=4, num_layers=4, d_ff=1024, seq_len=256,
                 batch_size=8, eval_every=50, threads=2, seed=1337, eval_batch=16).items():
    p.add_argument("--" + k.replace("_", "-"), type=int, default=v)
p.add_argument("--budget-s", type=float, required=True)
p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
# A fixed step count instead of the budget's: a learning-rate sweep on a busy machine at the steps a
# budget gives on a quiet one.
p.add_argument("--steps", type=int, default=0)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
C, T, B = a.d_model, a.seq_len, a.batch_size




def windows(path):
    ids = torch.from_numpy(np.fromfile(path, dtype="<u4").astype(np.int64))
    n = (len(ids) - 1) // T
    return ids, n


train_ids, n_train = windows(a.train_ids)
val_ids, n_val = windows(a.val_ids)
if n_train < B or n_val < 1:
    raise SystemExit(f"too few tokens: {n_train} training windows, {n_val} validation windows of {T + 1}")
offsets = torch.arange(T + 1)


def gather(ids, starts):
    w = ids[(starts[:, None] * T + offsets[None, :])]
    return w[:, :-1], w[:, 1:]


model = GPT(a.vocab_size, a.d_model, a.num_heads, a.num_layers, a.d_ff, a.seq_len)
decay = [w for w in model.parameters() if w.dim() >= 2]
no_decay = [w for w in model.parameters() if w.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                        lr=a.lr, betas=(0.9, 0.95), eps=1e-8, foreach=True)
autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if a.precision == "bf16" else None


def evaluate():
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for first in range(0, n_val, a.eval_batch):
            starts = torch.arange(first, min(first + a.eval_batch, n_val))
            x, y = gather(val_ids, starts)
            if autocast:
                with autocast():
                    loss = model(x, y)
            else:
                loss = model(x, y)
            total += loss.item() * len(starts)
            count += len(starts)
    model.train()
    return total / count


def plan(step_s, done):
    total = max(done + 1, done + int((a.budget_s - clock) / step_s))
    return total, min(200, math.ceil(0.05 * total))


def lr_at(s, total, warmup):
    if s < warmup:
        return a.lr * (s + 1) / warmup
    progress = min(1.0, (s - warmup) / max(1, total - warmup))
    return a.lr / 10 + 0.5 * (a.lr - a.lr / 10) * (1 + math.cos(math.pi * progress))


rng = np.random.default_rng(a.seed)
order, pos = rng.permutation(n_train), 0
clock, step, step_times, recent_losses = 0.0, 0, [], []
# Until the first plan: a warmup of 20 steps (a plan a few steps later changes it smoothly).
total_steps, warmup = 10**9, 20
checkpoints = [0.2, 0.4, 0.6, 0.8]
if a.steps:
    total_steps, warmup = a.steps, min(200, math.ceil(0.05 * a.steps))


def emit(**kw):
    print(json.dumps(kw), flush=True)


while step < total_steps:
    t0 = time.perf_counter()
    if pos + B > len(order):
        order, pos = rng.permutation(n_train), 0
    x, y = gather(train_ids, torch.from_numpy(order[pos:pos + B]))
    pos += B
    for g in opt.param_groups:
        g["lr"] = lr_at(step, total_steps, warmup)
    if autocast:
        with autocast():
            loss = model(x, y)
    else:
        loss = model(x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    recent_losses.append(loss.item())
    dt = time.perf_counter() - t0
    clock += dt
    step += 1
    step_times.append(dt)
    if step == 5 and not a.steps:
        total_steps, warmup = plan(statistics.median(step_times[1:]), step)
    elif not a.steps and step > 5 and clock >= checkpoints[0] * a.budget_s:
        # Planned again at 20%, 40%, 60% and 80% of the budget from the recent pace: the first steps
        # run slower (allocator and thread warm-up), and a plan from them alone leaves time unused.
        checkpoints.pop(0)
        total_steps, warmup = plan(statistics.median(step_times[-20:]), step)
        if not checkpoints:
            checkpoints.append(float("inf"))
    if step % a.eval_every == 0 or step == total_steps:
        emit(elapsed_s=round(clock, 3), step=step, val_loss=evaluate(), train_loss=statistics.mean(recent_losses))
        recent_losses = []

emit(summary=dict(peer="pytorch", torch=torch.__version__, threads=torch.get_num_threads(), precision=a.precision,
                  lr=a.lr, steps=step, warmup=warmup, elapsed_s=round(clock, 3), budget_s=a.budget_s,
                  median_step_ms=round(1e3 * statistics.median(step_times[1:] or step_times), 1),
                  train_windows=n_train, val_windows=n_val))
