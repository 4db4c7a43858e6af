// bun run bench:generate — generation speed at batch 1: tokens/s for 256 new tokens after a 16-token
// prompt (KV cache, greedy sampling included), for the default model and a 4-layer 256-wide one,
// side by side with the same weights in PyTorch eager (bench/generate_torch.py, its own KV-cache loop),
// and each step's time against the time to stream the weights it reads from memory once.
//
// PyTorch's OpenBLAS reads OPENBLAS_CORETYPE; some machines pin it to Haswell, which halves its speed
// on AVX-512 CPUs, so the peer runs with SkylakeX. Both sides run with 1 thread and with all of them,
// and each is credited with its faster setting (at batch 1 a second thread can cost more than it gives).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InferenceEngine } from "../src/generate/engine.ts";
import { exportHf } from "../src/hf/export.ts";
import { type Architecture, parameterCount, tensorSpecs } from "../src/model/layout.ts";
import { argmax, getThreads, setThreads, sumSquares } from "../src/native.ts";
import { Xoshiro128 } from "../src/base/rng.ts";

const NEW_TOKENS = 256;
const PROMPT = 16;
const RUNS = 5;
const root = join(import.meta.dir, "..");

const base: Omit<Architecture, "num_layers"> = {
  d_model: 256, num_heads: 8, d_ff: 1024, vocab_size: 10000, max_seq_len: 512, tied_embeddings: true, attention_bias: true,
};
const models: [string, Architecture][] = [
  ["default (2 layers, d_model 256, vocab 10000)", { ...base, num_layers: 2 }],
  ["4 layers, d_model 256, vocab 10000", { ...base, num_layers: 4 }],
];

function initParams(arch: Architecture): Float32Array {
  const rng = Xoshiro128.fromSeed(1);
  const p = new Float32Array(parameterCount(arch));
  for (const s of tensorSpecs(arch)) {
    const norm = s.name.includes("ln_") && s.name.endsWith("weight");
    for (let i = 0; i < s.size; i++) p[s.offset + i] = norm ? 1 : s.shape.length === 1 ? 0 : 0.02 * (2 * rng.nextFloat32() - 1) * Math.sqrt(3);
  }
  return p;
}

/** Best time (s) of 256 greedy steps after a prefill. */
function ours(arch: Architecture, params: Float32Array): number {
  const engine = new InferenceEngine(arch, params);
  const prompt = Array.from({ length: PROMPT }, (_, i) => i % arch.vocab_size);
  let best = Infinity;
  for (let r = 0; r <= RUNS; r++) {
    let logits = engine.prefill(prompt);
    let tok = argmax(logits);
    const t0 = performance.now();
    for (let i = 0; i < NEW_TOKENS; i++) {
      logits = engine.step(tok);
      tok = argmax(logits);
    }
    if (r > 0) best = Math.min(best, (performance.now() - t0) / 1000); // run 0 warms up
  }
  return best;
}

/** Bytes one step reads: every weight except the unused rows of the embeddings (tied: wte is the head). */
function stepBytes(arch: Architecture): number {
  const { d_model: C, max_seq_len: P } = arch;
  return 4 * (parameterCount(arch) - (P - 1) * C);
}

/** Seconds to read `bytes` of a float buffer once, best of many (a streaming reduction in C). */
function streamSeconds(bytes: number): number {
  const buf = new Float32Array(bytes / 4).fill(1);
  let best = Infinity;
  for (let r = 0; r < 50; r++) {
    const t0 = performance.now();
    sumSquares(buf);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

function torchPython(): string | null {
  for (const p of [process.env.PYTHON, "python3", "/usr/bin/python3"]) {
    if (!p) continue;
    const r = Bun.spawnSync([p, "-c", "import torch, numpy"], { stderr: "ignore" });
    if (r.exitCode === 0) return p;
  }
  return null;
}

interface Peer {
  tokens_per_s: number;
  step_ms: number;
  threads: number;
  torch: string;
}

function peer(python: string, arch: Architecture, params: Float32Array, threadCounts: number[]): Peer | string {
  const dir = mkdtempSync(join(tmpdir(), "bench-generate-"));
  try {
    exportHf(arch, params, null, dir);
    let best: Peer | string = "PyTorch peer did not run";
    for (const threads of threadCounts) {
      const p = peerRun(python, dir, threads);
      if (typeof p === "string") return p;
      if (typeof best === "string" || p.tokens_per_s > best.tokens_per_s) best = p;
    }
    return best;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function peerRun(python: string, dir: string, threads: number): Peer | string {
  {
    const r = Bun.spawnSync(
      [python, join(root, "bench", "generate_torch.py"), dir, "--prompt-len", String(PROMPT), "--new", String(NEW_TOKENS), "--threads", String(threads), "--runs", String(RUNS)],
      { env: { ...process.env, OPENBLAS_CORETYPE: "SkylakeX", OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) } },
    );
    if (r.exitCode !== 0) return `PyTorch peer failed: ${r.stderr.toString().trim().split("\n").pop()}`;
    return JSON.parse(r.stdout.toString()) as Peer;
  }
}

/** Our best over the thread counts: [seconds, threads]. */
function oursBest(arch: Architecture, params: Float32Array, threadCounts: number[]): [number, number] {
  let best: [number, number] = [Infinity, 0];
  for (const t of threadCounts) {
    setThreads(t);
    const s = ours(arch, params);
    if (s < best[0]) best = [s, t];
  }
  setThreads(threadCounts[threadCounts.length - 1]!);
  return best;
}

const threads = getThreads();
const threadCounts = threads > 1 ? [1, threads] : [1];
const python = torchPython();
console.log(`generation at batch 1: ${PROMPT}-token prompt, then ${NEW_TOKENS} new tokens (greedy), best of ${RUNS}; threads tried: ${threadCounts.join(", ")}`);
if (!python) console.log("(PyTorch not found: install python3-torch for the side-by-side column)");
const rows: string[][] = [["model", "params", "ours tok/s", "PyTorch tok/s", "ours/PyTorch", "step ms", "stream ms", "step/stream"]];
const cell = (rate: number, th: number) => `${rate.toFixed(0)} (${th}t)`;
for (const [label, arch] of models) {
  const params = initParams(arch);
  const [seconds, oursThreads] = oursBest(arch, params, threadCounts);
  const stepMs = (1000 * seconds) / NEW_TOKENS;
  const streamMs = 1000 * streamSeconds(stepBytes(arch));
  const p = python ? peer(python, arch, params, threadCounts) : "n/a";
  const oursRate = NEW_TOKENS / seconds;
  const peerRate = typeof p === "string" ? null : p.tokens_per_s;
  if (typeof p === "string" && p !== "n/a") console.log(p);
  rows.push([
    label,
    `${(parameterCount(arch) / 1e6).toFixed(2)} M`,
    cell(oursRate, oursThreads),
    typeof p === "string" ? "n/a" : cell(p.tokens_per_s, p.threads),
    peerRate === null ? "n/a" : `${(oursRate / peerRate).toFixed(2)}×`,
    stepMs.toFixed(3),
    streamMs.toFixed(3),
    `${(stepMs / streamMs).toFixed(2)}×`,
  ]);
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const r of rows) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "));
console.log("targets: ours/PyTorch ≥ 3×; step/stream ≤ 2× (stream = reading the weights a step uses once, as a C reduction)");
