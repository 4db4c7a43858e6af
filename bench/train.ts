// bun run bench:train — end-to-end training throughput: one optimizer step (forward, backward,
// gradient norm, AdamW) of GPT models of three shapes, against PyTorch training the same model on
// the same machine in the same run, plus where our step's time goes; and S with the Llama block at
// the same parameter count (S-llama, ours only), against our GPT-2 S in the same rounds.
//
// For each config the parent process runs our side and the peer alternately, each as its own child
// process (so each peak RSS is that process's own), for --rounds rounds, and reports medians:
// tokens/s, MFU (tokens/s × FLOP per token ÷ the FP32 FMA peak measured by bench/peak.c), peak RSS
// and the ratio ours / PyTorch. FLOP per token = 6·N + 12·L·T·C (matmul FLOPs, forward + backward).
// It also measures on S: bf16 matmuls against fp32 (throughput, and the loss after the same steps
// on the same data), 1 thread against 2 (which must give the same loss bit for bit), and a
// per-kernel breakdown of our step. The bf16 and 1-thread runs follow our fp32 run of S within each
// round, and their ratios are also given per round (runs seconds apart share the machine's load).
// Writes build/bench-train.json.
//
//   bun run bench:train                       all configs, 3 rounds (under 5 minutes)
//   bun run bench:train --configs S --rounds 1 --no-peer     a quick look
//   options: --configs S,loopos,W,S-llama  --rounds N  --steps N (timed)  --warmup N  --threads N
//            --peer-steps N (timed steps of the peer; default 5)
//            --peak-gflops G (MFU against this FP32 peak instead of the one measured now)
//            --no-peer  --no-bf16  --no-scaling  --json PATH
//
// The peer is bench/train_torch.py under Debian's /usr/bin/python3 with python3-torch and the
// OpenMP OpenBLAS (libopenblas0-openmp), with the settings its docstring found fastest, and
// jemalloc (libjemalloc2) keeping freed pages when it is installed: without it PyTorch loses about
// half its speed to page faults on virtual machines. When torch is missing the bench tries
// `apt-get install -y python3-torch libopenblas0-openmp libjemalloc2` once (as root), and
// otherwise runs our side alone with a note.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { type Architecture, LLAMA_NORM_EPS, LLAMA_ROPE_THETA, parameterCount } from "../src/model/layout.ts";
import { jemallocPath, peerEnv, preparePeer, PY } from "./torch_peer.ts";

const root = join(import.meta.dir, "..");
const buildDir = join(root, "build");

interface BenchConfig {
  name: string;
  /** Absent: GPT-2's block. */
  block?: "llama";
  vocab_size: number;
  d_model: number;
  num_heads: number;
  num_layers: number;
  d_ff: number;
  seq_len: number;
  batch_size: number;
}

const CONFIGS: Record<string, BenchConfig> = {
  S: { name: "S", vocab_size: 8192, d_model: 256, num_heads: 4, num_layers: 4, d_ff: 1024, seq_len: 256, batch_size: 8 },
  loopos: { name: "loopos", vocab_size: 10000, d_model: 256, num_heads: 8, num_layers: 2, d_ff: 1024, seq_len: 256, batch_size: 16 },
  W: { name: "W", vocab_size: 8192, d_model: 768, num_heads: 12, num_layers: 2, d_ff: 3072, seq_len: 256, batch_size: 8 },
  // S with the Llama block, SwiGLU's width chosen for S's parameter count; ours only (the peer is GPT-2).
  "S-llama": { name: "S-llama", block: "llama", vocab_size: 8192, d_model: 256, num_heads: 4, num_layers: 4, d_ff: 688, seq_len: 256, batch_size: 8 },
};

function archOf(c: BenchConfig): Architecture {
  const common = {
    d_model: c.d_model, num_heads: c.num_heads, num_layers: c.num_layers, d_ff: c.d_ff,
    vocab_size: c.vocab_size, max_seq_len: c.seq_len, tied_embeddings: true,
  };
  return c.block === "llama"
    ? { ...common, attention_bias: false, block: "llama", rope_theta: LLAMA_ROPE_THETA, norm_eps: LLAMA_NORM_EPS }
    : { ...common, attention_bias: true };
}
function paramCount(c: BenchConfig): number {
  return parameterCount(archOf(c));
}
function flopsPerToken(c: BenchConfig): number {
  return 6 * paramCount(c) + 12 * c.num_layers * c.seq_len * c.d_model;
}

// ---- options -----------------------------------------------------------------------------------

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}
function intOption(name: string, dflt: number): number {
  const v = option(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} ${v}: expected a whole number`);
    process.exit(2);
  }
  return n;
}

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

// ---- child: our training step ------------------------------------------------------------------

interface OursResult {
  side: "ours";
  config: string;
  precision: string;
  threads: number;
  isa: string;
  bf16_hardware: boolean;
  step_ms: number[];
  median_step_ms: number;
  tokens_per_s: number;
  /** Median ms per step by label over the profiled steps; "TypeScript overhead" is the rest. */
  breakdown: Record<string, number>;
  profiled_step_ms: number;
  final_loss: number;
  losses: number[];
  steps_run: number;
  /** Floats the model needs: parameters, gradients, both moments, the activation arena. */
  model_bytes: number;
  max_rss: number;
}

async function runOurs(
  c: BenchConfig, precision: "fp32" | "bf16", warmup: number, steps: number, profiled: number, extra: number,
): Promise<OursResult> {
  const K = await import("../src/native.ts");
  const { GPT } = await import("../src/model/gpt.ts");
  const { StepProfile } = await import("../src/model/profile.ts");
  const { initParameters } = await import("../src/model/init.ts");
  const { activationFloats } = await import("../src/model/activations.ts");
  const { AdamW } = await import("../src/train/optimizer.ts");
  const { Xoshiro128 } = await import("../src/base/rng.ts");
  const arch = archOf(c);
  const model = new GPT(arch, initParameters(arch, Xoshiro128.fromSeed(1337)), { precision });
  const opt = new AdamW(arch);
  const B = c.batch_size, T = c.seq_len, V = c.vocab_size;
  model.reserve(B, T);
  const { tokens, targets } = model.inputs;

  // Data with something to learn, the same for every run: a random walk over a sparse bigram
  // table (each token has 4 likely successors), so the loss falls well below ln V within a few
  // dozen steps and fp32 and bf16 can be compared on it.
  const rng = Xoshiro128.fromSeed(42);
  const succ = new Int32Array(V * 4);
  for (let i = 0; i < succ.length; i++) succ[i] = rng.below(V);
  const stream = new Int32Array(1 << 18);
  stream[0] = 0;
  for (let i = 1; i < stream.length; i++) {
    stream[i] = rng.below(16) === 0 ? rng.below(V) : succ[stream[i - 1]! * 4 + rng.below(4)]!;
  }
  const fillBatch = (step: number) => {
    for (let b = 0; b < B; b++) {
      const start = ((step * B + b) * 977 * T) % (stream.length - T - 1);
      tokens.set(stream.subarray(start, start + T), b * T);
      targets.set(stream.subarray(start + 1, start + 1 + T), b * T);
    }
  };
  const hyper = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1, grad_clip: 1.0 };
  const lrAt = (s: number) => 1e-3 * Math.min(1, (s + 1) / 5);

  const stepMs: number[] = [];
  const losses: number[] = [];
  const prof = new StepProfile();
  const profiledMs: number[] = [];
  const perLabel: Record<string, number[]> = {};
  const total = warmup + steps + profiled + extra; // extra: untimed steps, for comparing losses further on
  for (let s = 0; s < total; s++) {
    const profiling = s >= warmup + steps && s < warmup + steps + profiled;
    fillBatch(s);
    const p = profiling ? prof : null;
    model.profile = p;
    const t0 = performance.now();
    // As the training loop: the optimizer clears the gradients as it reads them, so only the
    // first step clears them itself.
    if (s === 0) model.zeroGrad();
    const loss = model.forward(B, T, true);
    model.backward();
    p?.begin();
    const norm = AdamW.gradNorm(model.grads);
    p?.end("grad norm");
    p?.begin();
    opt.step(model.params, model.grads, norm, lrAt(s), s + 1, hyper, { clearGrads: true });
    p?.end("adamw");
    const dt = performance.now() - t0;
    losses.push(loss);
    if (profiling) {
      profiledMs.push(dt);
      for (const [k, v] of prof.ms) (perLabel[k] ??= []).push(v);
      (perLabel["TypeScript overhead"] ??= []).push(dt - prof.total());
      prof.reset();
    } else if (s >= warmup && s < warmup + steps) stepMs.push(dt);
  }
  model.profile = null;
  // Medians per label over the profiled steps: a step disturbed by another process moves them little.
  const breakdown: Record<string, number> = {};
  for (const [k, v] of Object.entries(perLabel)) breakdown[k] = median(v);
  const med = median(stepMs);
  const n = model.params.length;
  const arena = activationFloats(arch, B, T);
  return {
    side: "ours", config: c.name, precision, threads: K.getThreads(), isa: K.isaCurrent(), bf16_hardware: K.hasBf16(),
    step_ms: stepMs, median_step_ms: med, tokens_per_s: (B * T) / (med / 1000),
    breakdown, profiled_step_ms: median(profiledMs),
    final_loss: losses[losses.length - 1]!, losses, steps_run: total,
    model_bytes: 4 * (4 * n + arena), max_rss: 0,
  };
}

if (process.env.BENCH_TRAIN_CHILD) {
  const c = CONFIGS[option("config") ?? "S"]!;
  const precision = option("precision") === "bf16" ? "bf16" : "fp32";
  const r = await runOurs(c, precision, intOption("warmup", 2), intOption("steps", 10), intOption("profiled", 0), intOption("extra", 0));
  console.log(JSON.stringify(r));
  process.exit(0);
}

// ---- parent ------------------------------------------------------------------------------------

const threads = intOption("threads", Number(process.env.TRAIN_VOCAB_THREADS ?? availableParallelism()));
const rounds = Math.max(1, intOption("rounds", 3));
const steps = Math.max(1, intOption("steps", 10));
const warmup = intOption("warmup", 2);
// Timed steps of the peer: fewer than ours by default, because its steps are 2-10× slower here and
// ten of them per config and round would take the whole benchmark past five minutes.
const peerSteps = Math.max(1, intOption("peer-steps", 5));
const configNames = (option("configs") ?? "S,loopos,W,S-llama").split(",").map((s) => s.trim()).filter(Boolean);
for (const n of configNames) {
  if (!CONFIGS[n]) {
    console.error(`--configs: unknown config ${n} (known: ${Object.keys(CONFIGS).join(", ")})`);
    process.exit(2);
  }
}
const wantPeer = !flag("no-peer");
const wantBf16 = !flag("no-bf16") && configNames.includes("S");
const wantScaling = !flag("no-scaling") && configNames.includes("S") && threads > 1;
const jsonPath = option("json") ?? join(buildDir, "bench-train.json");
const LOSS_EXTRA = 20; // untimed steps after the timed ones in round 1 of S, fp32 and bf16

// Every child loads one private copy of the native library, so a rebuild of build/ while the bench
// runs cannot give different runs different kernels.
const libSource = process.env.TRAIN_VOCAB_LIB ?? join(buildDir, process.platform === "darwin" ? "libtrain_vocab.dylib" : "libtrain_vocab.so");
if (!existsSync(libSource)) {
  console.error(`${libSource} is missing: build it with \`make lib\` first`);
  process.exit(2);
}
const libDir = mkdtempSync(join(tmpdir(), "bench-train-"));
const libCopy = join(libDir, libSource.slice(libSource.lastIndexOf("/") + 1));
copyFileSync(libSource, libCopy);
process.env.TRAIN_VOCAB_LIB = libCopy;
process.on("exit", () => rmSync(libDir, { recursive: true, force: true }));

// The measured FP32 FMA peak, as bench/kernels.ts measures it.
interface Peak { lanes: number; threads: number; gflops_1: number; gflops_all: number }
function measurePeak(n: number): Peak | null {
  const avx512 = readFileSync("/proc/cpuinfo", "utf8").includes(" avx512f");
  const exe = join(buildDir, avx512 ? "peak-avx512" : "peak-avx2");
  const src = join(root, "bench", "peak.c");
  if (!existsSync(exe) || statSync(exe).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(buildDir, { recursive: true });
    const flags = avx512 ? ["-mavx512f", "-mfma"] : ["-mavx2", "-mfma"];
    const cc = Bun.spawnSync([process.env.CC ?? "cc", "-O2", ...flags, src, "-o", exe, "-lpthread"]);
    if (cc.exitCode !== 0) return null;
  }
  const run = Bun.spawnSync([exe, String(n)]);
  if (run.exitCode !== 0) return null;
  return JSON.parse(run.stdout.toString()) as Peak;
}

function childOurs(c: BenchConfig, precision: "fp32" | "bf16", nthreads: number, profiled: number, extra = 0): OursResult | null {
  const r = Bun.spawnSync(
    ["bun", "run", import.meta.path, "--config", c.name, "--precision", precision,
      "--warmup", String(warmup), "--steps", String(steps), "--profiled", String(profiled), "--extra", String(extra)],
    { env: { ...process.env, BENCH_TRAIN_CHILD: "1", TRAIN_VOCAB_THREADS: String(nthreads) }, stderr: "pipe" },
  );
  if (r.exitCode !== 0) {
    console.log(`  ours ${c.name} ${precision} failed: ${r.stderr.toString().trim().split("\n").slice(-3).join(" | ")}`);
    return null;
  }
  const out = JSON.parse(r.stdout.toString().trim().split("\n").pop()!) as OursResult;
  out.max_rss = r.resourceUsage?.maxRSS ?? 0;
  return out;
}

// ---- the peer ----------------------------------------------------------------------------------

const peerScript = join(import.meta.dir, "train_torch.py");

interface PeerResult { tokens_per_s: number; median_step_ms: number; final_loss: number; max_rss: number; torch: string }
function childPeer(c: BenchConfig, nthreads: number): PeerResult | null {
  const args = [PY, peerScript, "--vocab-size", c.vocab_size, "--d-model", c.d_model, "--num-heads", c.num_heads,
    "--num-layers", c.num_layers, "--d-ff", c.d_ff, "--seq-len", c.seq_len, "--batch-size", c.batch_size,
    "--steps", peerSteps, "--warmup", Math.max(warmup, 3), "--threads", nthreads].map(String);
  const env: Record<string, string | undefined> = { ...process.env, ...peerEnv(nthreads) };
  delete env.OPENBLAS_NUM_THREADS;
  const r = Bun.spawnSync(args, { env, stderr: "pipe" });
  if (r.exitCode !== 0) {
    console.log(`  peer ${c.name} failed: ${r.stderr.toString().trim().split("\n").slice(-2).join(" | ")}`);
    return null;
  }
  const j = JSON.parse(r.stdout.toString().trim().split("\n").pop()!);
  return { tokens_per_s: j.tokens_per_s, median_step_ms: j.median_step_ms, final_loss: j.final_loss, torch: j.torch, max_rss: r.resourceUsage?.maxRSS ?? 0 };
}

// ---- run ---------------------------------------------------------------------------------------

const peak = measurePeak(threads);
// --peak-gflops G: MFU against a peak measured elsewhere (bench/peak.c on the idle machine),
// since on a busy machine the peak measured here is low and MFU comes out high.
const peakOverride = option("peak-gflops") !== undefined ? Number(option("peak-gflops")) : null;
const peakGflops = peakOverride ?? peak?.gflops_all ?? null;
const peak1 = peakOverride !== null ? peakOverride / threads : peak?.gflops_1 ?? null;
const probe = Bun.spawnSync(["bun", "-e", `const K = await import(${JSON.stringify(join(root, "src/native.ts"))}); console.log(K.isaBest(), K.hasBf16(), K.cpuFeatures())`]);
const [isa, bf16hw] = probe.stdout.toString().trim().split(" ");
console.log(`bench:train  ${cpus()[0]?.model ?? "cpu"}, ${threads} threads, ISA ${isa}, bf16 ${bf16hw === "true" ? "yes" : "no"}`);
if (peak) console.log(`measured FP32 FMA peak: ${peak.gflops_1.toFixed(0)} GFLOP/s on 1 thread, ${peak.gflops_all.toFixed(0)} GFLOP/s on ${peak.threads}`);
if (peakOverride !== null) console.log(`MFU against --peak-gflops ${peakOverride}`);
else if (!peak) console.log("(could not build or run bench/peak.c: no MFU)");
const peerNote = wantPeer ? preparePeer() : "PyTorch peer skipped (--no-peer)";
if (peerNote) console.log(peerNote);
else if (!jemallocPath()) console.log("note: libjemalloc2 is not installed, so PyTorch runs on glibc malloc (much slower on virtual machines)");
console.log(`${rounds} round(s), ${warmup} warm-up + ${steps} timed steps per run (peer: ${Math.max(warmup, 3)} + ${peerSteps}), ours and the peer alternating\n`);

const ours: Record<string, OursResult[]> = {};
const peer: Record<string, PeerResult[]> = {};
const variants: Record<string, OursResult[]> = { "S bf16": [], "S 1 thread": [] };
// The bf16 and 1-thread runs of S follow our fp32 run of S in the same round, so that each ratio can
// be taken within a round (runs a few seconds apart share the machine's load) as well as across.
const pairs: { fp32: OursResult; bf16?: OursResult; one?: OursResult }[] = [];
function runVariants(round: number, fp32: OursResult | null): void {
  const pair = fp32 ? { fp32 } as (typeof pairs)[number] : null;
  if (wantBf16) {
    const b = childOurs(CONFIGS.S!, "bf16", threads, 0, round === 0 ? LOSS_EXTRA + 5 : 0);
    if (b) variants["S bf16"]!.push(b), console.log(`round ${round + 1} S bf16  ours ${b.tokens_per_s.toFixed(0)} tok/s`);
    if (b && pair) pair.bf16 = b;
  }
  if (wantScaling) {
    const s1 = childOurs(CONFIGS.S!, "fp32", 1, 0);
    if (s1) variants["S 1 thread"]!.push(s1), console.log(`round ${round + 1} S 1 thread  ours ${s1.tokens_per_s.toFixed(0)} tok/s`);
    if (s1 && pair) pair.one = s1;
  }
  if (pair) pairs.push(pair);
}
for (let round = 0; round < rounds; round++) {
  for (const name of configNames) {
    const c = CONFIGS[name]!;
    // Round 1 also profiles S (or the first config) and runs S further for the bf16 loss comparison.
    const o = childOurs(c, "fp32", threads, round === 0 ? 5 : 0, round === 0 && name === "S" && wantBf16 ? LOSS_EXTRA : 0);
    if (o) (ours[name] ??= []).push(o);
    if (o) console.log(`round ${round + 1} ${name.padEnd(4)}  ours ${o.tokens_per_s.toFixed(0)} tok/s`);
    else console.log(`round ${round + 1} ${name.padEnd(4)}  ours failed`);
    if (name === "S") runVariants(round, o);
    if (!peerNote && !c.block) {
      const p = childPeer(c, threads);
      if (p) (peer[name] ??= []).push(p), console.log(`round ${round + 1} ${name.padEnd(4)}  pytorch ${p.tokens_per_s} tok/s`);
    }
  }
  if (!configNames.includes("S")) runVariants(round, null);
}

// ---- report ------------------------------------------------------------------------------------

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const pad = (s: string, n: number) => s.padStart(n);
const mfu = (tps: number, c: BenchConfig, g: number | null) => (g ? (tps * flopsPerToken(c)) / (g * 1e9) : null);
const pct = (x: number | null) => (x === null ? "" : `${(100 * x).toFixed(1)}%`);

// The peer's spread between runs is wide (its step times swing with the machine's load far more
// than ours), so besides the median ratio of the rounds the table shows our median against the
// peer's best round: the harder comparison, and "the best you find" for PyTorch.
console.log(`\n${"config".padEnd(6)} ${pad("params", 7)} ${pad("MFLOP/tok", 9)} | ${pad("ours tok/s", 10)} ${pad("MFU", 6)} ${pad("RSS", 8)} | ${pad("torch tok/s", 11)} ${pad("best", 6)} ${pad("MFU", 6)} ${pad("RSS", 8)} | ${pad("ours/torch", 10)} ${pad("vs best", 7)}`);
const summary: Record<string, unknown>[] = [];
for (const name of configNames) {
  const c = CONFIGS[name]!;
  const o = ours[name] ?? [];
  const p = peer[name] ?? [];
  const oT = median(o.map((r) => r.tokens_per_s));
  const pT = p.length ? median(p.map((r) => r.tokens_per_s)) : null;
  const oR = median(o.map((r) => r.max_rss));
  const pR = p.length ? median(p.map((r) => r.max_rss)) : null;
  const ratios = o.map((r, i) => (p[i] ? r.tokens_per_s / p[i]!.tokens_per_s : NaN)).filter(Number.isFinite);
  const ratio = ratios.length ? median(ratios) : null;
  const pBest = p.length ? Math.max(...p.map((r) => r.tokens_per_s)) : null;
  console.log(
    `${name.padEnd(6)} ${pad(`${(paramCount(c) / 1e6).toFixed(1)}M`, 7)} ${pad((flopsPerToken(c) / 1e6).toFixed(1), 9)} | ` +
      `${pad(oT.toFixed(0), 10)} ${pad(pct(mfu(oT, c, peakGflops)), 6)} ${pad(mib(oR), 8)} | ` +
      `${pad(pT === null ? "-" : pT.toFixed(0), 11)} ${pad(pBest === null ? "-" : pBest.toFixed(0), 6)} ${pad(pT === null ? "" : pct(mfu(pT, c, peakGflops)), 6)} ${pad(pR === null ? "-" : mib(pR), 8)} | ` +
      `${pad(ratio === null ? "-" : `${ratio.toFixed(2)}x`, 10)} ${pad(pBest === null ? "-" : `${(oT / pBest).toFixed(2)}x`, 7)}`,
  );
  summary.push({
    config: c, params: paramCount(c), flops_per_token: flopsPerToken(c),
    ours_tokens_per_s: oT, ours_mfu: mfu(oT, c, peakGflops), ours_max_rss: oR, ours_model_bytes: o[0]?.model_bytes ?? null,
    ours_runs: o.map((r) => r.tokens_per_s),
    torch_tokens_per_s: pT, torch_mfu: pT === null ? null : mfu(pT, c, peakGflops), torch_max_rss: pR,
    torch_runs: p.map((r) => r.tokens_per_s), torch_best_tokens_per_s: pBest, ratio_median_of_rounds: ratio,
    ratio_vs_torch_best: pBest === null ? null : oT / pBest,
  });
}
for (const name of configNames) {
  const o = ours[name]?.[0];
  if (!o) continue;
  console.log(`${name}: peak RSS ${mib(median(ours[name]!.map((r) => r.max_rss)))} = ${(median(ours[name]!.map((r) => r.max_rss)) / o.model_bytes).toFixed(2)} x the model's own memory (params + grads + moments + activations = ${mib(o.model_bytes)})`);
}

// The Llama block against GPT-2's at the same parameter count: run seconds apart in each round.
const llamaRatios = (ours["S-llama"] ?? []).map((r, i) => (ours.S?.[i] ? r.tokens_per_s / ours.S[i]!.tokens_per_s : NaN)).filter(Number.isFinite);
if (llamaRatios.length) {
  console.log(`S-llama / S (GPT-2): ${median(llamaRatios).toFixed(2)}x tokens/s, median of the rounds' ratios (${llamaRatios.map((x) => x.toFixed(2)).join(", ")})`);
}

const sOurs = ours.S ?? [];
let bf16: Record<string, unknown> | null = null;
if (wantBf16 && variants["S bf16"]!.length && sOurs.length) {
  const b = variants["S bf16"]!;
  const bT = median(b.map((r) => r.tokens_per_s)), fT = median(sOurs.map((r) => r.tokens_per_s));
  const inRound = pairs.filter((p) => p.bf16).map((p) => p.bf16!.tokens_per_s / p.fp32.tokens_per_s);
  // The same step of both runs (same initial weights, same batches, same learning rates).
  const k = Math.min(b[0]!.losses.length, sOurs[0]!.losses.length);
  const lb = b[0]!.losses[k - 1]!, lf = sOurs[0]!.losses[k - 1]!;
  const rr = inRound.length ? `, ${median(inRound).toFixed(2)}x as the median of the rounds' own ratios (${inRound.map((x) => x.toFixed(2)).join(", ")})` : "";
  console.log(`\nS bf16: ${bT.toFixed(0)} tok/s = ${(bT / fT).toFixed(2)}x fp32${rr} (bf16 hardware: ${b[0]!.bf16_hardware ? "yes" : "no, fp32 fallback"}); ` +
    `loss after ${k} steps ${lb.toFixed(4)} vs fp32 ${lf.toFixed(4)} (${(100 * (lb - lf) / lf).toFixed(2)}%)`);
  bf16 = { tokens_per_s: bT, ratio_vs_fp32: bT / fT, ratio_per_round: inRound, ratio_median_of_rounds: inRound.length ? median(inRound) : null, loss_bf16: lb, loss_fp32: lf, steps: k, hardware: b[0]!.bf16_hardware };
}
let scaling: Record<string, unknown> | null = null;
if (wantScaling && variants["S 1 thread"]!.length && sOurs.length) {
  const s1 = variants["S 1 thread"]!;
  const t1 = median(s1.map((r) => r.tokens_per_s)), tN = median(sOurs.map((r) => r.tokens_per_s));
  const inRound = pairs.filter((p) => p.one).map((p) => p.fp32.tokens_per_s / p.one!.tokens_per_s);
  const rr = inRound.length ? `, ${median(inRound).toFixed(2)}x as the median of the rounds' own ratios (${inRound.map((x) => x.toFixed(2)).join(", ")})` : "";
  const ref = sOurs[0]!.losses;
  const same = s1.every((r) => r.losses.every((l, i) => i >= ref.length || Object.is(l, ref[i])));
  console.log(`S scaling: 1 thread ${t1.toFixed(0)} tok/s (MFU ${pct(mfu(t1, CONFIGS.S!, peak1))} of one core), ${threads} threads ${tN.toFixed(0)} tok/s = ${(tN / t1).toFixed(2)}x${rr}; ` +
    `losses of every step ${same ? "bit-identical" : "DIFFERENT"} across thread counts`);
  scaling = { tokens_per_s_1: t1, tokens_per_s_n: tN, threads, speedup: tN / t1, speedup_per_round: inRound, speedup_median_of_rounds: inRound.length ? median(inRound) : null, identical_losses: same };
}

const prof = (ours.S ?? ours[configNames[0]!] ?? [])[0];
if (prof) {
  const total = Object.values(prof.breakdown).reduce((a, b) => a + b, 0);
  console.log(`\nwhere a ${prof.config} step goes (${prof.profiled_step_ms.toFixed(1)} ms per profiled step, ${prof.threads} threads, ISA ${prof.isa}):`);
  const rows = Object.entries(prof.breakdown).sort((a, b) => b[1] - a[1]);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(24)} ${pad(v.toFixed(2), 8)} ms ${pad(((100 * v) / total).toFixed(1), 5)}%`);
  // Attention against the rate the step's matmuls reach: the time its FLOPs would take at that rate.
  const c = CONFIGS[prof.config]!;
  const M = c.batch_size * c.seq_len, C = c.d_model, F = c.d_ff, V = c.vocab_size, L = c.num_layers;
  const mmFlops = 3 * 2 * M * (L * (C * 3 * C + C * C + 2 * C * F) + C * V); // forward + 2x backward
  const mmMs = rows.filter(([k]) => k.startsWith("matmul") || k.startsWith("lm head")).reduce((a, [, v]) => a + v, 0);
  const attFlops = 3 * L * 2 * c.batch_size * c.seq_len * c.seq_len * C; // causal QKᵀ and P·V, fwd + 2x bwd
  const attMs = (prof.breakdown["attention fwd"] ?? 0) + (prof.breakdown["attention bwd"] ?? 0);
  if (mmMs > 0 && attMs > 0) {
    const mmRate = mmFlops / (mmMs / 1000), attRate = attFlops / (attMs / 1000);
    console.log(`  matmuls ${(mmRate / 1e9).toFixed(0)} GFLOP/s, attention ${(attRate / 1e9).toFixed(0)} GFLOP/s: ` +
      `attention takes ${(mmRate / attRate).toFixed(2)}x its matmul-FLOP time`);
  }
}

mkdirSync(buildDir, { recursive: true });
writeFileSync(jsonPath, JSON.stringify({
  date: new Date().toISOString(), cpu: cpus()[0]?.model, threads, isa, peak, peak_gflops_for_mfu: peakGflops, rounds, steps, warmup,
  peer: peerNote ?? `pytorch (bench/train_torch.py, OpenMP OpenBLAS, OPENBLAS_CORETYPE=SkylakeX, OMP_WAIT_POLICY=ACTIVE, ${jemallocPath() ? "jemalloc without purging" : "glibc malloc"})`,
  configs: summary, llama_vs_gpt2: llamaRatios.length ? median(llamaRatios) : null, bf16, scaling, breakdown: prof ? { config: prof.config, step_ms: prof.profiled_step_ms, ms: prof.breakdown } : null,
  runs: { ours, peer, variants },
}, null, 2) + "\n");
console.log(`\nwrote ${jsonPath}`);
