// bun run bench:kernels — matmul throughput against the machine's measured FP32 FMA peak and against
// OpenBLAS sgemm run side by side in the same process, for the shapes a GPT-2-small-like model
// trains with (M = B·T = 2048 rows) in its three layouts, plus matrix-vector products (generation);
// the bf16 kernels (--precision bf16) on the same shapes against the measured BF16 dot-product peak
// and against our fp32; attention forward+backward against the time its matmul FLOPs take at our
// matmul rate; and the layer kernels' time per call. Writes build/bench-kernels.json as well.
//
// OpenBLAS reads OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS when it loads; some machines set the
// core type to Haswell, which halves its speed on AVX-512 CPUs, so the bench re-runs itself with
// SkylakeX and as many threads as ours unless the caller chose otherwise (BENCH_OPENBLAS_ENV=keep).
import { dlopen, FFIType } from "bun:ffi";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { Xoshiro128 } from "../src/base/rng.ts";

const root = join(import.meta.dir, "..");
const buildDir = join(root, "build");

if (process.env.BENCH_OPENBLAS_ENV !== "keep") {
  const threads = process.env.TRAIN_VOCAB_THREADS ?? String(availableParallelism());
  const child = Bun.spawnSync(["bun", "run", import.meta.path, ...process.argv.slice(2)], {
    env: {
      ...process.env,
      OPENBLAS_CORETYPE: "SkylakeX",
      OPENBLAS_NUM_THREADS: threads,
      BENCH_OPENBLAS_ENV: "keep",
    },
    stdio: ["inherit", "inherit", "inherit"],
  });
  process.exit(child.exitCode ?? 1);
}

const native = await import("../src/native.ts");

// ---- the measured peak ------------------------------------------------------------------------

interface Peak {
  lanes: number;
  threads: number;
  gflops_1: number;
  gflops_all: number;
  bf16_gflops_1?: number;
  bf16_gflops_all?: number;
}

function measurePeak(threads: number): Peak | null {
  const features = native.cpuFeatures().split(" ");
  const avx512 = features.includes("avx512f"), bf16 = avx512 && features.includes("avx512bf16");
  const exe = join(buildDir, bf16 ? "peak-avx512bf16" : avx512 ? "peak-avx512" : "peak-avx2");
  const src = join(root, "bench", "peak.c");
  if (!existsSync(exe) || statSync(exe).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(buildDir, { recursive: true });
    const flags = bf16 ? ["-mavx512f", "-mfma", "-mavx512bf16"] : avx512 ? ["-mavx512f", "-mfma"] : ["-mavx2", "-mfma"];
    const cc = Bun.spawnSync([process.env.CC ?? "cc", "-O2", ...flags, src, "-o", exe, "-lpthread"]);
    if (cc.exitCode !== 0) {
      console.log(`(could not build bench/peak.c: ${cc.stderr.toString().trim()})`);
      return null;
    }
  }
  const run = Bun.spawnSync([exe, String(threads)]);
  if (run.exitCode !== 0) return null;
  return JSON.parse(run.stdout.toString()) as Peak;
}

// ---- OpenBLAS through bun:ffi ----------------------------------------------------------------

const { i32, f32, ptr, cstring, void: voidT } = FFIType;
const CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112;

function loadOpenBlas() {
  const names = ["libopenblas.so.0", "libopenblas.so", "/usr/lib/x86_64-linux-gnu/libopenblas.so.0", "libopenblas.dylib"];
  for (const name of names) {
    try {
      return dlopen(name, {
        cblas_sgemm: { args: [i32, i32, i32, i32, i32, i32, f32, ptr, i32, ptr, i32, f32, ptr, i32], returns: voidT },
        cblas_sgemv: { args: [i32, i32, i32, i32, f32, ptr, i32, ptr, i32, f32, ptr, i32], returns: voidT },
        openblas_get_corename: { args: [], returns: cstring },
        openblas_get_config: { args: [], returns: cstring },
        openblas_get_num_threads: { args: [], returns: i32 },
      }).symbols;
    } catch {
      // try the next name
    }
  }
  return null;
}

// ---- timing ----------------------------------------------------------------------------------

/** Best time of one call in seconds: calls repeated for at least `seconds` (and `minReps` calls). */
function bestTime(fn: () => void, seconds: number, minReps = 3): number {
  let best = Infinity;
  const start = Bun.nanoseconds();
  for (let rep = 0; rep < minReps || Bun.nanoseconds() - start < seconds * 1e9; rep++) {
    const t0 = Bun.nanoseconds();
    fn();
    best = Math.min(best, (Bun.nanoseconds() - t0) * 1e-9);
  }
  return best;
}

/** Best times of `ours` and `theirs`, measured in alternating bursts. Bursts, not alternate calls:
 * each library's idle worker threads keep spinning for a while after a call (OpenBLAS's for tens of
 * milliseconds) and would take the cores from the other one. Alternating bursts lets a noisy moment
 * on a shared machine hit both alike; the best time is the least disturbed one. */
function bestTimes(ours: () => void, theirs: (() => void) | null, burst: number, rounds = 3): [number, number] {
  let a = Infinity, b = Infinity;
  for (let round = 0; round < rounds; round++) {
    a = Math.min(a, bestTime(ours, burst));
    if (theirs) b = Math.min(b, bestTime(theirs, burst));
  }
  return [a, b];
}

function randomArray(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  const rng = Xoshiro128.fromSeed(seed);
  for (let i = 0; i < n; i++) a[i] = rng.nextFloat32() - 0.5;
  return a;
}

// ---- the run ------------------------------------------------------------------------------------

type Layout = "forward" | "dinp" | "dweight";
interface Row {
  layout: Layout | "gemv" | "bf16 forward" | "bf16 dinp" | "bf16 dweight";
  M: number;
  K: number;
  N: number;
  ours_gflops: number;
  ours_pct_peak: number | null;
  openblas_gflops: number | null;
  ratio: number | null;
}

const M = 2048;
const SHAPES: [number, number][] = [
  [256, 768], [256, 1024], [256, 8192], [768, 768], [768, 2304], [768, 3072], [1024, 256], [3072, 768],
];
const GEMV_SHAPES: [number, number][] = [[768, 2304], [768, 3072], [3072, 768], [768, 8192]];

const threads = native.getThreads();
const isa = native.isaCurrent();
const peak = measurePeak(threads);
const blas = loadOpenBlas();

console.log(`train-vocab matmul bench — ISA ${isa} (best ${native.isaBest()}), ${threads} threads`);
if (isa !== native.isaBest()) console.log("  note: not the best ISA level; is every kernel of the library built?");
if (peak) {
  console.log(`measured FP32 FMA peak: ${peak.gflops_1.toFixed(0)} GFLOP/s on 1 thread, ` +
    `${peak.gflops_all.toFixed(0)} GFLOP/s on ${peak.threads} threads`);
  if (peak.bf16_gflops_all) {
    console.log(`measured BF16 dot-product peak: ${peak.bf16_gflops_1!.toFixed(0)} GFLOP/s on 1 thread, ` +
      `${peak.bf16_gflops_all.toFixed(0)} GFLOP/s on ${peak.threads} threads`);
  }
}
if (blas) {
  console.log(`OpenBLAS: ${String(blas.openblas_get_config()).trim()} — core ${blas.openblas_get_corename()}, ` +
    `${blas.openblas_get_num_threads()} threads (OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE ?? "unset"})`);
} else {
  console.log("OpenBLAS: not found (install libopenblas-dev to compare); showing ours alone");
}
console.log("");

const pad = (s: string, n: number) => s.padStart(n);
const header = `${"layout".padEnd(8)} ${pad("M", 5)} ${pad("K", 5)} ${pad("N", 5)}  ${pad("ours GF/s", 9)} ${pad("%peak", 6)}  ${pad("OpenBLAS", 9)} ${pad("%peak", 6)}  ${pad("ours/OB", 7)}`;
console.log(header);
console.log("-".repeat(header.length));

const rows: Row[] = [];
const peakAll = peak?.gflops_all ?? null;

function report(row: Row): void {
  rows.push(row);
  const pct = (g: number | null) => (g === null || peakAll === null ? "" : `${((100 * g) / peakAll).toFixed(1)}%`);
  console.log(
    `${row.layout.padEnd(8)} ${pad(String(row.M), 5)} ${pad(String(row.K), 5)} ${pad(String(row.N), 5)}  ` +
      `${pad(row.ours_gflops.toFixed(1), 9)} ${pad(pct(row.ours_gflops), 6)}  ` +
      `${pad(row.openblas_gflops === null ? "-" : row.openblas_gflops.toFixed(1), 9)} ${pad(pct(row.openblas_gflops), 6)}  ` +
      `${pad(row.ratio === null ? "-" : row.ratio.toFixed(2), 7)}`,
  );
}

for (const layout of ["forward", "dinp", "dweight"] as const) {
  for (const [K, N] of SHAPES) {
    const inp = randomArray(M * K, 1), weight = randomArray(N * K, 2), dout = randomArray(M * N, 3);
    const out = new Float32Array(M * N), dinp = new Float32Array(M * K), dweight = new Float32Array(N * K);
    const flops = 2 * M * N * K;
    let ours: () => void;
    let theirs: (() => void) | null = null;
    if (layout === "forward") {
      ours = () => native.matmulForward(out, inp, weight, null, M, K, N);
      if (blas) theirs = () => blas.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, inp, K, weight, K, 0, out, N);
    } else if (layout === "dinp") {
      ours = () => native.matmulBackward(dinp, null, null, dout, inp, weight, M, K, N);
      if (blas) theirs = () => blas.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, N, 1, dout, N, weight, K, 1, dinp, K);
    } else {
      ours = () => native.matmulBackward(null, dweight, null, dout, inp, weight, M, K, N);
      if (blas) theirs = () => blas.cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M, 1, dout, N, inp, K, 1, dweight, K);
    }
    const [tOurs, tTheirs] = bestTimes(ours, theirs, 0.2);
    const g = flops / tOurs * 1e-9;
    const gb = theirs ? flops / tTheirs * 1e-9 : null;
    report({
      layout, M, K, N, ours_gflops: g, ours_pct_peak: peakAll ? g / peakAll : null,
      openblas_gflops: gb, ratio: gb ? g / gb : null,
    });
  }
}

// Generation: one row, out = W·x, bound by reading W (N·K floats) once.
for (const [K, N] of GEMV_SHAPES) {
  const x = randomArray(K, 4), weight = randomArray(N * K, 5), y = new Float32Array(N);
  const ours = () => native.matmulForward(y, x, weight, null, 1, K, N);
  const theirs = blas ? () => blas.cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1, weight, K, x, 1, 0, y, 1) : null;
  const [tOurs, tTheirs] = bestTimes(ours, theirs, 0.15);
  const flops = 2 * N * K;
  const g = flops / tOurs * 1e-9, gb = theirs ? flops / tTheirs * 1e-9 : null;
  report({ layout: "gemv", M: 1, K, N, ours_gflops: g, ours_pct_peak: null, openblas_gflops: gb, ratio: gb ? g / gb : null });
  console.log(`${"".padEnd(8)} weight read at ${(4 * N * K / tOurs * 1e-9).toFixed(1)} GB/s` +
    (gb ? ` (OpenBLAS sgemv ${(4 * N * K / tTheirs * 1e-9).toFixed(1)} GB/s)` : ""));
}

const big = rows.filter((r) => r.layout === "forward" || r.layout === "dinp" || r.layout === "dweight");
const geo = (xs: number[]) => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
const oursGeo = geo(big.map((r) => r.ours_gflops));
console.log("");
console.log(`geometric mean over the ${big.length} training shapes: ours ${oursGeo.toFixed(1)} GFLOP/s` +
  (blas ? `, OpenBLAS ${geo(big.map((r) => r.openblas_gflops!)).toFixed(1)} GFLOP/s, ratio ${geo(big.map((r) => r.ratio!)).toFixed(2)}` : ""));
if (blas) {
  const slower = big.filter((r) => r.ratio! < 1);
  console.log(slower.length === 0 ? "ours ≥ OpenBLAS on every training shape" :
    `slower than OpenBLAS on ${slower.length}: ` + slower.map((r) => `${r.layout} K=${r.K} N=${r.N} (${r.ratio!.toFixed(2)})`).join(", "));
}

// ---- bf16 (--precision bf16): the same shapes, against the BF16 dot-product peak and our fp32 ------
interface Bf16Row {
  layout: Layout;
  M: number;
  K: number;
  N: number;
  bf16_gflops: number;
  bf16_pct_peak: number | null;
  fp32_gflops: number;
  speedup: number;
}
const bf16Rows: Bf16Row[] = [];
const bf16Peak = peak?.bf16_gflops_all ?? null;
console.log("");
if (!native.hasBf16()) {
  console.log("bf16: this CPU (or ISA level) has no AVX512_BF16; the bf16 kernels are the fp32 ones");
} else {
  const h = `${"bf16".padEnd(8)} ${pad("M", 5)} ${pad("K", 5)} ${pad("N", 5)}  ${pad("bf16 GF/s", 9)} ${pad("%bf16pk", 7)}  ${pad("fp32 GF/s", 9)}  ${pad("bf16/fp32", 9)}`;
  console.log(h);
  console.log("-".repeat(h.length));
  for (const layout of ["forward", "dinp", "dweight"] as const) {
    for (const [K, N] of SHAPES) {
      const inp = randomArray(M * K, 1), weight = randomArray(N * K, 2), dout = randomArray(M * N, 3);
      const out = new Float32Array(M * N), dinp = new Float32Array(M * K), dweight = new Float32Array(N * K);
      const flops = 2 * M * N * K;
      const [f32, bf] = layout === "forward"
        ? [() => native.matmulForward(out, inp, weight, null, M, K, N), () => native.matmulForwardBf16(out, inp, weight, null, M, K, N)]
        : layout === "dinp"
        ? [() => native.matmulBackward(dinp, null, null, dout, inp, weight, M, K, N), () => native.matmulBackwardBf16(dinp, null, null, dout, inp, weight, M, K, N)]
        : [() => native.matmulBackward(null, dweight, null, dout, inp, weight, M, K, N), () => native.matmulBackwardBf16(null, dweight, null, dout, inp, weight, M, K, N)];
      const [tBf, tF32] = bestTimes(bf, f32, 0.15);
      const row: Bf16Row = {
        layout, M, K, N, bf16_gflops: flops / tBf * 1e-9, bf16_pct_peak: bf16Peak ? flops / tBf * 1e-9 / bf16Peak : null,
        fp32_gflops: flops / tF32 * 1e-9, speedup: tF32 / tBf,
      };
      bf16Rows.push(row);
      console.log(`${layout.padEnd(8)} ${pad(String(M), 5)} ${pad(String(K), 5)} ${pad(String(N), 5)}  ` +
        `${pad(row.bf16_gflops.toFixed(1), 9)} ${pad(row.bf16_pct_peak === null ? "" : `${(100 * row.bf16_pct_peak).toFixed(1)}%`, 7)}  ` +
        `${pad(row.fp32_gflops.toFixed(1), 9)}  ${pad(row.speedup.toFixed(2), 9)}`);
    }
  }
  console.log(`bf16 geometric mean: ${geo(bf16Rows.map((r) => r.bf16_gflops)).toFixed(1)} GFLOP/s, ` +
    `${geo(bf16Rows.map((r) => r.speedup)).toFixed(2)}× our fp32`);
}

// ---- attention forward + backward against the time of its matmul FLOPs at our matmul rate --------
// Causal attention does QKᵀ and P·V forward and four products of the same size backward, each over
// half the T×T square: 6·B·T²·C FLOPs in all. "Matmul-FLOP time" is that count at the geometric-mean
// rate of our fp32 matmuls just measured; the target is attention within 2× of it. Where the CPU has
// BF16, the bf16 kernels (--precision bf16) are timed beside, as a ratio to fp32.
interface AttentionRow {
  B: number; T: number; C: number; H: number; seconds: number; matmul_flop_seconds: number; ratio: number;
  bf16_seconds: number | null; bf16_speedup: number | null;
}
const attentionRows: AttentionRow[] = [];
console.log("");
console.log(`attention forward+backward vs its matmul FLOPs at our matmul rate (${oursGeo.toFixed(0)} GFLOP/s):`);
for (const [B, T, C, H] of [[8, 256, 256, 8], [8, 256, 768, 12], [4, 512, 256, 8]] as const) {
  const qkv = randomArray(B * T * 3 * C, 6), dout = randomArray(B * T * C, 7);
  const out = new Float32Array(B * T * C), lse = new Float32Array(B * H * T), dqkv = new Float32Array(B * T * 3 * C);
  const seconds = bestTimes(() => {
    native.attentionForward(out, lse, qkv, B, T, C, H);
    native.attentionBackward(dqkv, dout, qkv, out, lse, B, T, C, H);
  }, null, 0.3)[0];
  const bf16Seconds = native.hasBf16()
    ? bestTimes(() => {
      native.attentionForwardBf16(out, lse, qkv, B, T, C, H);
      native.attentionBackwardBf16(dqkv, dout, qkv, out, lse, B, T, C, H);
    }, null, 0.3)[0]
    : null;
  const matmulSeconds = 6 * B * T * T * C / (oursGeo * 1e9);
  const row: AttentionRow = {
    B, T, C, H, seconds, matmul_flop_seconds: matmulSeconds, ratio: seconds / matmulSeconds,
    bf16_seconds: bf16Seconds, bf16_speedup: bf16Seconds === null ? null : seconds / bf16Seconds,
  };
  attentionRows.push(row);
  console.log(`  B=${B} T=${T} C=${C} H=${H}: ${(1000 * seconds).toFixed(2)} ms, matmul-FLOP time ${(1000 * matmulSeconds).toFixed(2)} ms, ` +
    `${row.ratio.toFixed(2)}× (target ≤ 2×)` +
    (bf16Seconds === null ? "" : `; bf16 ${(1000 * bf16Seconds).toFixed(2)} ms = ${row.bf16_speedup!.toFixed(2)}× faster`));
}

// ---- the layer kernels: time per call, forward and backward, GPT-2 (LayerNorm, GELU) beside Llama ----
// (RMSNorm, RoPE, SwiGLU) at M = 2048 rows, C = 768, 12 heads; GELU on the 4C MLP width, SwiGLU on
// H = 2048 (the 8/3·C Llama width, rounded up).
interface LayerRow { kernel: string; shape: string; forward_us: number; backward_us: number }
const layerRows: LayerRow[] = [];
{
  const [B, T, C, NH, H] = [8, 256, 768, 12, 2048];
  const rows = B * T;
  const inp = randomArray(rows * C, 8), dout = randomArray(rows * C, 9), w = randomArray(C, 10), b = randomArray(C, 11);
  const out = new Float32Array(rows * C), dinp = new Float32Array(rows * C), dw = new Float32Array(C), db = new Float32Array(C);
  const mean = new Float32Array(rows), rstd = new Float32Array(rows);
  const qkv = randomArray(rows * 3 * C, 12);
  const fc = randomArray(rows * 4 * C, 13), fcOut = new Float32Array(rows * 4 * C);
  const gateUp = randomArray(rows * 2 * H, 14), glu = new Float32Array(rows * H), dglu = randomArray(rows * H, 15);
  const dGateUp = new Float32Array(rows * 2 * H);
  const cases: [string, string, () => void, () => void][] = [
    ["layernorm", `M=${rows} C=${C}`, () => native.layernormForward(out, mean, rstd, inp, w, b, rows, C),
      () => native.layernormBackward(dinp, dw, db, dout, inp, w, mean, rstd, rows, C)],
    ["rmsnorm", `M=${rows} C=${C}`, () => native.rmsnormForward(out, rstd, inp, w, rows, C, 1e-5),
      () => native.rmsnormBackward(dinp, dw, dout, inp, w, rstd, rows, C)],
    ["rope", `B=${B} T=${T} C=${C} NH=${NH}`, () => native.ropeForward(qkv, B, T, C, NH, 0, 10_000),
      () => native.ropeBackward(qkv, B, T, C, NH, 0, 10_000)],
    ["gelu", `N=${rows}·${4 * C}`, () => native.geluForward(fcOut, fc, rows * 4 * C),
      () => native.geluBackward(fcOut, fc, fcOut, rows * 4 * C)],
    ["swiglu", `N=${rows} H=${H}`, () => native.swigluForward(glu, gateUp, rows, H),
      () => native.swigluBackward(dGateUp, gateUp, dglu, rows, H)],
  ];
  console.log("");
  console.log("layer kernels, time per call:");
  for (const [kernel, shape, fwd, bwd] of cases) {
    const [f, g] = bestTimes(fwd, bwd, 0.15);
    layerRows.push({ kernel, shape, forward_us: f * 1e6, backward_us: g * 1e6 });
    console.log(`  ${kernel.padEnd(9)} ${shape.padEnd(24)} forward ${pad((f * 1e6).toFixed(0), 6)} µs  backward ${pad((g * 1e6).toFixed(0), 6)} µs`);
  }
}

mkdirSync(buildDir, { recursive: true });
writeFileSync(
  join(buildDir, "bench-kernels.json"),
  JSON.stringify({
    date: new Date().toISOString(), isa, threads, peak,
    openblas: blas ? { config: String(blas.openblas_get_config()).trim(), core: String(blas.openblas_get_corename()) } : null,
    rows, bf16: bf16Rows, attention: attentionRows, layers: layerRows,
  }, null, 2) + "\n",
);
console.log(`written: build/bench-kernels.json`);
