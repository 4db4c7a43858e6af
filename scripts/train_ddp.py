#!/usr/bin/env python3
"""Continue training an exported HuggingFace folder with PyTorch DistributedDataParallel, and save it back.

The folder is what `train_vocab export --format hf` writes (GPT2LMHeadModel or LlamaForCausalLM:
config.json, model.safetensors, tokenizer files). The model is the independent PyTorch forward of
scripts/verify_hf_export.py (checked against ours to 1e-4), its tensors made trainable; the data is a
file of little-endian uint32 token ids (`train_vocab tokenizer encode --format u32`). Each process
trains on its own share of the windows, DDP averages the gradients over gloo (CPU), and rank 0 writes
--out with the same files: model.safetensors with the new weights (same names, shapes and order),
every other file copied unchanged, so `train_vocab import` brings the model home.

Two ways to start it:
    # on one machine: the script starts N processes itself (torch.multiprocessing, gloo on 127.0.0.1)
    python3 scripts/train_ddp.py hf_model/ --data ids.u32 --out hf_trained/ --nproc 2 --steps 200
    # on a cluster: torchrun starts the processes and sets RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
    torchrun --nnodes 2 --nproc_per_node 4 --rdzv_endpoint HOST:29500 scripts/train_ddp.py hf_model/ --data ids.u32 --out hf_trained/

Needs PyTorch and NumPy (Debian: apt-get install python3-torch).
"""
import argparse
import json
import math
import os
import shutil
import socket
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verify_hf_export as ref  # noqa: E402  (the independent GPT-2 and Llama forwards)

WEIGHTS = "model.safetensors"


class Trainable(torch.nn.Module):
    """The reference forward with its weight tensors swapped for parameters (HF names kept for saving)."""

    def __init__(self, folder):
        super().__init__()
        net, config, tensors = ref.load_folder(folder)
        self.net, self.config = net, config
        self.names = list(tensors)  # the file's order, kept when saving
        self.params = torch.nn.ParameterList()
        self.key_of = {}
        swap = {}
        gpt2 = isinstance(net, ref.GPT2)
        for name in self.names:
            key = name[len("transformer."):] if gpt2 and name.startswith("transformer.") else name
            if key not in net.w:
                raise SystemExit(f"{folder}: tensor {name} is not one the {'GPT-2' if gpt2 else 'Llama'} forward uses")
            old = net.w[key]
            p = torch.nn.Parameter(old.clone())
            # A GPT-2 without attention biases exports them as zeros: they stay zero, so the model
            # comes home with the architecture it left with.
            if gpt2 and ".attn." in key and key.endswith(".bias") and not bool(old.any()):
                p.requires_grad_(False)
            swap[id(old)] = p
            net.w[key] = p
            self.key_of[name] = key
        head = swap.get(id(net.head))
        if head is None:
            raise SystemExit(f"{folder}: the output head is none of the file's tensors")
        net.head = head
        # A tied folder may still carry an lm_head.weight that nothing reads: it is saved as the embedding.
        self.tied_copy = {n for n in self.names if n == "lm_head.weight" and net.w[self.key_of[n]] is not net.head}
        for name in self.names:
            if name not in self.tied_copy:
                self.params.append(net.w[self.key_of[name]])

    def forward(self, windows):
        """windows [B, T+1] of token ids: mean cross-entropy of predicting each next token."""
        logits = torch.stack([self.net.forward(row[:-1])[0] for row in windows])
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))

    def state(self):
        """HF name -> float32 numpy array, in the file's order."""
        out = {}
        for name in self.names:
            t = self.net.head if name in self.tied_copy else self.net.w[self.key_of[name]]
            out[name] = t.detach().numpy().astype(np.float32)
        return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_ids(path, vocab_size):
    if not os.path.isfile(path):
        raise SystemExit(f"--data {path}: no such file; write one with `train_vocab tokenizer encode FILE --format u32 --out {path}`")
    raw = np.fromfile(path, dtype="<u4")
    if raw.size == 0:
        raise SystemExit(f"--data {path}: no token ids in it")
    if os.path.getsize(path) % 4 != 0:
        raise SystemExit(f"--data {path}: {os.path.getsize(path)} bytes is not a whole number of uint32 ids; write it with `train_vocab tokenizer encode --format u32`")
    top = int(raw.max())
    if top >= vocab_size:
        raise SystemExit(f"--data {path}: token id {top} is outside the model's vocabulary ({vocab_size}); encode with the folder's tokenizer")
    return raw.astype(np.int64)


def read_header(path):
    """The safetensors header's metadata, after checking that every tensor is float32 and lies inside the file."""
    size = os.path.getsize(path)
    bad = lambda why: SystemExit(f"{path}: not a readable safetensors file ({why}); re-export the folder with `train_vocab export --format hf`")
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n <= 0 or n > size - 8:
            raise bad(f"a header of {n} bytes in a file of {size}")
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            raise bad(f"its header is not JSON: {e}")
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    meta = header.pop("__metadata__", {})
    for name, t in header.items():
        try:
            begin, end = (int(v) for v in t["data_offsets"])
            count = math.prod(int(d) for d in t["shape"])
            dtype = t["dtype"]
        except (TypeError, KeyError, ValueError):
            raise bad(f"tensor {name} has no dtype, shape and data_offsets")
        if dtype != "F32":
            raise SystemExit(f"{path}: tensor {name} is {dtype}; this script trains float32 folders, as train_vocab exports them")
        if not 0 <= begin <= end <= size - 8 - n or end - begin != 4 * count:
            raise bad(f"tensor {name} does not fit the file")
    return meta


def validate(args, world):
    """Everything that can be wrong with the input, before any process starts training: (meta, config, ids, T, model)."""
    folder, out = args.folder, args.out
    for name in ("config.json", WEIGHTS):
        if not os.path.isfile(os.path.join(folder, name)):
            hint = " (sharded weights: save the model as one model.safetensors first)" if name == WEIGHTS and os.path.exists(os.path.join(folder, WEIGHTS + ".index.json")) else ""
            raise SystemExit(f"{folder}: no {name}{hint}; give a folder written by `train_vocab export --format hf`")
    meta = read_header(os.path.join(folder, WEIGHTS))
    if os.path.exists(os.path.join(out, WEIGHTS)) and os.path.abspath(out) != os.path.abspath(folder):
        raise SystemExit(f"--out {out}: already holds a model; give another folder (or the input folder itself to update it)")
    try:
        with open(os.path.join(folder, "config.json")) as f:
            config = json.load(f)
        context = ref.context_size(config)
        vocab = int(config["vocab_size"])
    except (ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"{os.path.join(folder, 'config.json')}: not a GPT-2 or Llama config ({type(e).__name__}: {e}); re-export the folder")
    try:
        model = Trainable(folder)  # every tensor where the forward expects it, before any process starts
    except SystemExit:
        raise
    except Exception as e:
        raise SystemExit(f"{folder}: cannot be read as a GPT-2 or Llama model ({type(e).__name__}: {e}); re-export it with `train_vocab export --format hf`")
    if args.seq_len > context:
        raise SystemExit(f"--seq-len {args.seq_len}: the model has {context} positions")
    ids = read_ids(args.data, vocab)
    T = args.seq_len or min(64, context)
    count = (len(ids) - 1) // T
    held = max(1, int(count * args.val_fraction))
    if count - held < args.batch_size * world:
        raise SystemExit(f"--data {args.data}: {len(ids):,} ids make {max(0, count - held)} training windows of {T + 1}; a step of {world} "
                         f"process(es) takes {args.batch_size * world} (--batch-size {args.batch_size}): give more data or a smaller --batch-size")
    return meta, config, ids, T, model


def save_folder(model, folder, out, meta):
    """--out: every file of the input folder but the weights copied unchanged, then the weights, atomically."""
    os.makedirs(out, exist_ok=True)
    if os.path.abspath(out) != os.path.abspath(folder):
        for name in sorted(os.listdir(folder)):
            src = os.path.join(folder, name)
            if name != WEIGHTS and os.path.isfile(src):
                shutil.copyfile(src, os.path.join(out, name))
    tmp = os.path.join(out, f".{WEIGHTS}.tmp-{os.getpid()}")
    ref.write_safetensors(tmp, model.state(), meta)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(out, WEIGHTS))


def save(model, args, meta, rank, world):
    """Every rank: check that the replicas agree (DDP keeps them equal; checked, not trusted); rank 0 writes --out."""
    digest = torch.tensor([float(sum(p.detach().double().sum() for p in model.params))], dtype=torch.float64)
    gathered = [torch.zeros_like(digest) for _ in range(world)]
    dist.all_gather(gathered, digest)
    if not all(bool(torch.equal(x, gathered[0])) for x in gathered):
        raise SystemExit("the processes' weights differ; nothing was saved")
    if rank == 0:
        save_folder(model, args.folder, args.out, meta)
    return True


def mean_loss(model, windows, batch, group_sum):
    """Mean loss over `windows` (this rank's share), summed over ranks by group_sum."""
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(windows), batch):
            w = windows[i : i + batch]
            total += float(model(w)) * len(w)
            count += len(w)
    s = group_sum(torch.tensor([total, float(count)], dtype=torch.float64))
    return float(s[0] / s[1]) if s[1] > 0 else float("nan")


def lr_at(step, args):
    """Linear warmup, then cosine to a tenth of --lr."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    p = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def train(rank, world, args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // world))
    meta, config, ids, T, model = validate(args, world)  # every rank: the same input, the same verdict
    count = (len(ids) - 1) // T
    # Windows of T + 1 ids starting every T ids: views of the id array, not copies.
    windows = torch.from_numpy(ids).as_strided((count, T + 1), (T, 1))
    held = max(1, int(count * args.val_fraction))
    train_w, val_w = windows[: count - held], windows[count - held :]
    my_val = val_w[rank::world]

    def group_sum(t):
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    ddp = DistributedDataParallel(model)
    decay = [p for p in model.params if p.requires_grad and p.dim() >= 2]
    other = [p for p in model.params if p.requires_grad and p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay}, {"params": other, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))
    before = mean_loss(model, my_val, args.batch_size, group_sum)
    log = (lambda m: print(m, flush=True)) if rank == 0 else (lambda m: None)
    log(f"{world} processes (gloo), {sum(p.numel() for p in model.params):,} parameters, {len(train_w):,} training windows of {T} tokens, "
        f"{held:,} held out; held-out loss {before:.4f}")
    metrics = None
    if rank == 0 and args.metrics:
        os.makedirs(os.path.dirname(os.path.abspath(args.metrics)), exist_ok=True)
        metrics = open(args.metrics, "w")
    started = time.time()
    first = last = None
    g = np.random.default_rng(args.seed)
    order, at = g.permutation(len(train_w)), 0
    for step in range(args.steps):
        # Every rank draws the same order and takes its own slice of each global batch.
        need = args.batch_size * world
        if at + need > len(order):
            order, at = g.permutation(len(train_w)), 0
        take = order[at : at + need][rank * args.batch_size : (rank + 1) * args.batch_size]
        at += need
        lr = lr_at(step, args)
        for group in opt.param_groups:
            group["lr"] = lr
        t0 = time.time()
        loss = ddp(train_w[torch.from_numpy(take)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_([p for p in model.params if p.requires_grad], args.grad_clip))
        opt.step()
        mean = float(group_sum(loss.detach().double().clone())) / world
        first = mean if first is None else first
        last = mean
        rate = need * T / max(1e-9, time.time() - t0)
        if metrics:
            metrics.write(json.dumps({"step": step + 1, "stage": 1, "epoch": 1, "epochs": 1, "loss": mean, "lr": lr, "grad_norm": norm,
                                      "tokens_per_sec": round(rate), "elapsed_s": round(time.time() - started, 3)}) + "\n")
            metrics.flush()
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            log(f"step {step + 1}/{args.steps}  loss {mean:.4f}  lr {lr:.2e}  {rate:,.0f} tokens/s")
        if args.save_every and (step + 1) % args.save_every == 0 and step + 1 < args.steps:
            save(model, args, meta, rank, world)
            log(f"saved {args.out} at step {step + 1}")
    after = mean_loss(model, my_val, args.batch_size, group_sum)
    if metrics:
        metrics.write(json.dumps({"step": args.steps, "stage": 1, "epoch": 1, "epochs": 1, "val_loss": after, "elapsed_s": round(time.time() - started, 3)}) + "\n")
        metrics.close()
    in_sync = save(model, args, meta, rank, world)
    if rank == 0:
        seconds = time.time() - started
        log(f"held-out loss {before:.4f} -> {after:.4f} after {args.steps} steps ({seconds:.1f} s); saved {args.out}")
        if args.summary:
            with open(args.summary, "w") as f:
                json.dump({"world_size": world, "steps": args.steps, "seq_len": T, "batch_per_rank": args.batch_size, "loss_before": before,
                           "loss_after": after, "first_train_loss": first, "last_train_loss": last, "in_sync": in_sync, "seconds": seconds}, f)
    dist.barrier()


def worker(rank, world, port, args):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        train(rank, world, args)
    finally:
        dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", help="the HuggingFace folder to continue (train_vocab export --format hf)")
    ap.add_argument("--data", required=True, help="token ids, little-endian uint32 (train_vocab tokenizer encode --format u32)")
    ap.add_argument("--out", required=True, help="the folder to write (the input folder itself to update it in place)")
    ap.add_argument("--nproc", type=int, default=2, help="processes to start on this machine when not under torchrun (default: %(default)s)")
    ap.add_argument("--steps", type=int, default=100, help="optimizer steps (default: %(default)s)")
    ap.add_argument("--batch-size", type=int, default=8, help="windows per process per step (default: %(default)s)")
    ap.add_argument("--seq-len", type=int, default=0, help="tokens per window (default: the model's positions, at most 64)")
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=0, help="warmup steps (default: %(default)s)")
    ap.add_argument("--weight-decay", type=float, default=0.1, help="AdamW weight decay on matrices (default: %(default)s)")
    ap.add_argument("--grad-clip", type=float, default=1.0, help="gradient norm clip (default: %(default)s)")
    ap.add_argument("--val-fraction", type=float, default=0.1, help="windows held out for the loss before and after (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=1, help="data order seed (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per process (default: CPUs / processes)")
    ap.add_argument("--log-every", type=int, default=10, help="print every N steps (default: %(default)s)")
    ap.add_argument("--save-every", type=int, default=100, help="also save --out every N steps, so a crash loses at most N (0: only at the end; default: %(default)s)")
    ap.add_argument("--metrics", help="write metrics.jsonl lines here (train_vocab dashboard reads them)")
    ap.add_argument("--summary", help="write a JSON summary here: losses before and after, processes, time")
    args = ap.parse_args()
    if args.save_every < 0:
        ap.error("--save-every must be 0 or more")
    for name in ("nproc", "steps", "batch_size"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 < args.val_fraction < 1:
        ap.error("--val-fraction must be between 0 and 1")
    if args.seq_len < 0:
        ap.error("--seq-len must be 0 (the default) or more")
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        # Under torchrun (or any launcher that sets the env:// variables).
        dist.init_process_group("gloo")
        try:
            train(dist.get_rank(), dist.get_world_size(), args)
        finally:
            dist.destroy_process_group()
        return
    validate(args, args.nproc)  # here, so a bad input is one message rather than one per process
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # one machine: stay on loopback
    mp.spawn(worker, args=(args.nproc, free_port(), args), nprocs=args.nproc, join=True)


if __name__ == "__main__":
    main()
