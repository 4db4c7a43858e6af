// bun run bench:kernels — matmul throughput against the machine's measured FP32 FMA peak and against
// OpenBLAS sgemm run side by side in the same process, for the shapes a GPT-2-small-like model
// trains with (M = B·T = 2048 rows) in its three layouts, plus matrix-vector products (generation).
// Writes build/bench-kernels.json as well.
//
// OpenBLAS reads OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS when it loads; some machines set the
// core type to Haswell, which halves its speed on AVX-512 CPUs, so the bench re-runs itself with
// SkylakeX and as many threads as ours unless the caller chose otherwise (BENCH_OPENBLAS_ENV=keep).
import { dlopen, FFIType } from "bun:ffi";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";

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
}

function measurePeak(threads: number): Peak | null {
  const avx512 = native.cpuFeatures().split(" ").includes("avx512f");
  const exe = join(buildDir, avx512 ? "peak-avx512" : "peak-avx2");
  const src = join(root, "bench", "peak.c");
  if (!existsSync(exe) || statSync(exe).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(buildDir, { recursive: true });
    const flags = avx512 ? ["-mavx512f", "-mfma"] : ["-mavx2", "-mfma"];
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
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

// ---- the run ------------------------------------------------------------------------------------

type Layout = "forward" | "dinp" | "dweight";
interface Row {
  layout: Layout | "gemv";
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

const big = rows.filter((r) => r.layout !== "gemv");
const geo = (xs: number[]) => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
console.log("");
console.log(`geometric mean over the ${big.length} training shapes: ours ${geo(big.map((r) => r.ours_gflops)).toFixed(1)} GFLOP/s` +
  (blas ? `, OpenBLAS ${geo(big.map((r) => r.openblas_gflops!)).toFixed(1)} GFLOP/s, ratio ${geo(big.map((r) => r.ratio!)).toFixed(2)}` : ""));

mkdirSync(buildDir, { recursive: true });
writeFileSync(
  join(buildDir, "bench-kernels.json"),
  JSON.stringify({
    date: new Date().toISOString(), isa, threads, peak,
    openblas: blas ? { config: String(blas.openblas_get_config()).trim(), core: String(blas.openblas_get_corename()) } : null,
    rows,
  }, null, 2) + "\n",
);
console.log(`written: build/bench-kernels.json`);
