#!/usr/bin/env python3
"""PyTorch peer for bench/generate.ts: the same exported GPT-2 (scripts/verify_hf_export.py's plain
PyTorch GPT-2, eager mode) with its own KV-cache loop: prefill the prompt, then one token per step,
greedy. Prints one JSON line: {"tokens_per_s": ..., "step_ms": ..., "threads": ...}.

    python3 bench/generate_torch.py HF_FOLDER --prompt-len 16 --new 256 --threads 2 --runs 3
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import torch  # noqa: E402
from verify_hf_export import load_folder  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, config, _ = load_folder(args.folder)
    prompt = torch.arange(args.prompt_len) % config["vocab_size"]
    best = float("inf")
    with torch.inference_mode():
        for _ in range(args.runs + 1):  # the first run warms up
            logits, cache = model.forward(prompt)
            tok = int(torch.argmax(logits[-1]))
            start = time.perf_counter()
            for _ in range(args.new):
                logits, cache = model.forward(torch.tensor([tok]), cache)
                tok = int(torch.argmax(logits[-1]))
            best = min(best, time.perf_counter() - start)
    print(json.dumps({"tokens_per_s": args.new / best, "step_ms": 1000 * best / args.new, "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
