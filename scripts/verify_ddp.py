#!/usr/bin/env python3
"""The road out to PyTorch's distributed training and back, end to end on tiny models (`make verify-ddp`).

For a GPT-2 and then a Llama model:
1. train_vocab trains it for a few steps and exports it (--format hf); the text is encoded to uint32
   ids with the same vocabulary.
2. scripts/train_ddp.py continues it in 2 processes (DDP over gloo on 127.0.0.1): the held-out loss
   must fall, the replicas must agree, and the saved folder must keep every file but the weights
   byte for byte, and the weights' names, shapes and order. Started the way torchrun starts it
   (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), it must give the same weights bit for bit.
3. train_vocab import brings it home: export again gives the DDP weights bit for bit; our logits equal
   the PyTorch reference's on them; generate writes text; resume trains it further here.

Needs PyTorch and NumPy (Debian: apt-get install python3-torch).
"""
import json
import os
import socket
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verify_hf_export as ref  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = ["--d-model", "32", "--num-heads", "2", "--num-layers", "2", "--d-ff", "64", "--max-length", "16",
        "--batch-size", "4", "--threads", "1", "--vocab-size", "300", "--log-every", "1000"]


def learnable_text(sentences, seed=1):
    """Sentences with structure to learn ("the <noun> <verb> the <noun> <place>."), seeded."""
    g = np.random.default_rng(seed)
    nouns, verbs, places = ["cat", "dog", "bird", "fox", "horse"], ["sees", "chases", "likes", "finds"], ["in the park", "on the hill", "by the river"]
    pick = lambda xs: xs[int(g.integers(len(xs)))]
    return "".join(f"the {pick(nouns)} {pick(verbs)} the {pick(nouns)} {pick(places)}.\n" for _ in range(sentences))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def step(label, ok, detail=""):
    print(f"{'OK  ' if ok else 'FAIL'} {label}{': ' + detail if detail else ''}", flush=True)
    return ok


def main():
    ok = True
    for arch in ("gpt2", "llama"):
        print(f"== {arch}", flush=True)
        with tempfile.TemporaryDirectory(prefix="verify-ddp-") as work:
            ok &= round_trip(arch, work)
    print("verify-ddp: " + ("all checks passed" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


def damaged_inputs(p, cmd):
    """train_ddp.py on damaged folders and data: one message naming the file, exit non-zero, no traceback."""
    import shutil
    ok = True
    weights = open(p("hf", "model.safetensors"), "rb").read()
    n = int.from_bytes(weights[:8], "little")
    cases = {
        "weights cut short": ("model.safetensors", weights[: len(weights) // 2]),
        "weights' header damaged": ("model.safetensors", weights[:8] + weights[8:20].replace(b'"', b"'") + weights[20:]),
        "header length past the end": ("model.safetensors", (len(weights) * 2).to_bytes(8, "little") + weights[8:]),
        "a tensor's offsets past the end": ("model.safetensors", weights[:8] + weights[8 : 8 + n].replace(b'"data_offsets":[0,', b'"data_offsets":[9,') + weights[8 + n :]),
        "config not JSON": ("config.json", b"{n_embd: 32"),
        "config without its sizes": ("config.json", b'{"model_type": "gpt2"}'),
    }
    for label, (name, data) in cases.items():
        bad = p("bad")
        shutil.rmtree(bad, ignore_errors=True)
        shutil.copytree(p("hf"), bad)
        with open(os.path.join(bad, name), "wb") as f:
            f.write(data)
        args = [a if a != p("hf") else bad for a in cmd]
        args[args.index("--out") + 1] = p("bad_out")
        r = subprocess.run(args, capture_output=True, text=True, timeout=120)
        last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
        ok &= step(f"damaged input refused: {label}", r.returncode != 0 and "Traceback" not in r.stderr and bad in last and not os.path.exists(p("bad_out")), last[:150])
    return ok


def round_trip(arch, work):
    ok = True
    p = lambda *names: os.path.join(work, *names)
    with open(p("text.txt"), "w") as f:
        f.write(learnable_text(1500))
    ref.cli("--data", p("text.txt"), "--vocab", p("tokenizer.vocab"), *TINY, "--arch", arch, "--epochs", "1", "--max-steps", "10", "--learning-rate", "0.003", "--output", p("run"))
    ref.cli("export", p("run", "model_checkpoint.bin"), "--vocab", p("tokenizer.vocab"), "--format", "hf", "--out", p("hf"))
    ref.cli("tokenizer", "encode", p("text.txt"), "--vocab", p("tokenizer.vocab"), "--format", "u32", "--out", p("ids.u32"))

    cmd = [sys.executable, os.path.join(HERE, "train_ddp.py"), p("hf"), "--data", p("ids.u32"), "--out", p("hf_ddp"), "--nproc", "2",
           "--steps", "40", "--batch-size", "8", "--seq-len", "16", "--lr", "0.003", "--threads", "1", "--log-every", "20", "--save-every", "15",
           "--summary", p("summary.json"), "--metrics", p("metrics.jsonl")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{r.stderr}")
    # The same training started the way torchrun starts it (RANK, WORLD_SIZE, MASTER_ADDR/PORT: env://)
    # must give the same weights, bit for bit.
    env_cmd = [a if a != p("hf_ddp") else p("hf_env") for a in cmd if a not in ("--nproc", "2")]
    env_cmd = env_cmd[: env_cmd.index("--summary")]
    port = str(free_port())
    procs = [subprocess.Popen(env_cmd, env={**os.environ, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
                                            "MASTER_PORT": port, "GLOO_SOCKET_IFNAME": "lo"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for r in range(2)]
    codes = [proc.wait(timeout=600) for proc in procs]
    if any(codes):
        sys.exit(f"FAILED: {' '.join(env_cmd)} under RANK/WORLD_SIZE\n{procs[0].stderr.read()}")
    same = open(p("hf_env", "model.safetensors"), "rb").read() == open(p("hf_ddp", "model.safetensors"), "rb").read()
    ok &= step("started as torchrun starts it (env://), the same weights bit for bit", same)
    if arch == "gpt2":
        ok &= damaged_inputs(p, cmd)
    s = json.load(open(p("summary.json")))
    ok &= step("2 processes trained", s["world_size"] == 2, f"{s['steps']} steps in {s['seconds']:.1f} s")
    ok &= step("the held-out loss fell", s["loss_after"] < s["loss_before"] - 0.05, f"{s['loss_before']:.4f} -> {s['loss_after']:.4f}")
    ok &= step("the replicas agree", s["in_sync"] is True)
    lines = [json.loads(l) for l in open(p("metrics.jsonl"))]
    ok &= step("metrics.jsonl has a line per step", sum("loss" in l for l in lines) == s["steps"])

    # Same layout: every file but the weights unchanged; the weights' names, shapes and order kept.
    kept = sorted(os.listdir(p("hf")))
    ok &= step("the same files", sorted(os.listdir(p("hf_ddp"))) == kept, ", ".join(kept))
    same_files = all(open(p("hf", n), "rb").read() == open(p("hf_ddp", n), "rb").read() for n in kept if n != "model.safetensors")
    ok &= step("config and tokenizer files unchanged", same_files)
    before, _ = ref.read_safetensors(p("hf", "model.safetensors"))
    after, meta = ref.read_safetensors(p("hf_ddp", "model.safetensors"))
    ok &= step("the same tensors in the same order", list(before) == list(after) and all(before[k].shape == after[k].shape for k in before))
    ok &= step("the weights changed", any(not np.array_equal(before[k], after[k]) for k in before))
    ok &= step("safetensors metadata kept", meta.get("format") == "pt")

    # Home: import, export again (bit for bit), logits against PyTorch, generate, resume.
    ref.cli("import", p("hf_ddp"), "--out", p("home", "model_checkpoint.bin"), "--vocab-out", p("home", "tokenizer.vocab"))
    ref.cli("export", p("home", "model_checkpoint.bin"), "--vocab", p("home", "tokenizer.vocab"), "--format", "hf", "--out", p("back"))
    back, _ = ref.read_safetensors(p("back", "model.safetensors"))
    ok &= step("import -> export gives the DDP weights bit for bit", set(back) == set(after) and all(np.array_equal(back[k], after[k]) for k in after))
    ok &= ref.compare_logits(f"imported DDP {arch} model", p("hf_ddp"), p("home", "model_checkpoint.bin"), p("home", "tokenizer.vocab"),
                             "the cat sees", 8, 1e-4, work)
    g = ref.cli("generate", "--checkpoint", p("home", "model_checkpoint.bin"), "--vocab", p("home", "tokenizer.vocab"),
                "--prompt", "the dog", "--max-tokens", "12", "--seed", "1")
    ok &= step("the imported model generates", g.stdout.startswith("the dog") and len(g.stdout.strip()) > len("the dog"), repr(g.stdout.strip()[:80]))
    ref.cli("resume", p("home", "model_checkpoint.bin"), "--data", p("text.txt"), "--vocab", p("home", "tokenizer.vocab"),
            "--epochs", "1", "--max-steps", "3", "--threads", "1", "--batch-size", "4", "--max-length", "16", "--output", p("home2"))
    ok &= step("resume trains it here", os.path.isfile(p("home2", "model_checkpoint.bin")))
    return ok


if __name__ == "__main__":
    main()
