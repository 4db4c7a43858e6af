/**
 * The file-format fuzzer: `bun run fuzz [--cases N] [--seed S] [--formats a,b] [--jobs 2] [--json]`.
 *
 * For each format (our checkpoints, LOPOS v1, our .vocab, LoopOS's word .vocab, HF tokenizer.json,
 * the train --config JSON, HF config.json and model.safetensors) it mutates a valid file N
 * times, reproducibly from --seed, and loads each mutant through the real reader. Every case must
 * end in a valid load (a loaded vocabulary must also encode anything and round-trip bytes) or a
 * UserError. Anything else is a BUG: another exception, a case slower than the time limit, memory
 * growth far beyond the file's size, a worker that crashes (e.g. in C) or hangs. Cases run in worker
 * processes watched by this one, so a crash or a hang is caught, reported and skipped.
 *
 * Exit status: 0 when no case is a BUG, 1 otherwise. Reproduce one case with
 * `bun run fuzz --formats F --seed S --case I` (prints the error with its stack and keeps the file).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../src/base/errors.ts";
import { buildFormats, type Format, FORMATS, type FormatSpec, hfValidFolder, mutate } from "./formats.ts";
import { caseSeed, rng } from "./mutate.ts";

interface Args {
  cases: number;
  seed: number;
  formats: Format[];
  json: boolean;
  worker: boolean;
  from: number;
  single: number | null;
  timeLimitMs: number;
  hangMs: number;
  /** Worker processes at a time. */
  jobs: number;
}

/**
 * A format that exists to check the runner itself (`--formats selftest`): by the mutated file's
 * first byte it loads, refuses, throws a TypeError, kills its process, or holds 256 MiB for a tiny
 * file, so a test can see that bugs, crashes and runaway allocations are caught and counted.
 */
const SELFTEST: FormatSpec = {
  file: "selftest.bin",
  valid: Uint8Array.of(0, 1, 2, 3),
  mutations: [["first-byte", (r, b) => Uint8Array.of(r.int(0, 4), ...b.subarray(1))]],
  read(path) {
    selftestHeld = null;
    const first = readFileSync(path)[0]! % 5;
    if (first === 1) throw new UserError("refused");
    if (first === 2) throw new TypeError("not a UserError");
    if (first === 3) process.kill(process.pid, "SIGKILL");
    if (first === 4) selftestHeld = new Uint8Array(256 << 20).fill(1); // 256 MiB for a 4-byte file
  },
};
let selftestHeld: Uint8Array | null = null;

function parseArgs(argv: string[]): Args {
  const a: Args = { cases: 1000, seed: 1, formats: [...FORMATS], json: false, worker: false, from: 0, single: null, timeLimitMs: 5000, hangMs: 15_000, jobs: 2 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UserError(`${flag} needs a value`);
      return v;
    };
    const int = () => {
      const v = Number(value());
      if (!Number.isSafeInteger(v) || v < 0) throw new UserError(`${flag} needs a whole number`);
      return v;
    };
    if (flag === "--cases") a.cases = int();
    else if (flag === "--seed") a.seed = int();
    else if (flag === "--from") a.from = int();
    else if (flag === "--case") a.single = int();
    else if (flag === "--time-limit-ms") a.timeLimitMs = int();
    else if (flag === "--hang-ms") a.hangMs = int();
    else if (flag === "--jobs") a.jobs = Math.max(1, int());
    else if (flag === "--json") a.json = true;
    else if (flag === "--worker") a.worker = true;
    else if (flag === "--formats") {
      const names = value().split(",");
      for (const n of names) if (!(FORMATS as readonly string[]).includes(n) && n !== "selftest") throw new UserError(`--formats: unknown format "${n}" (known: ${FORMATS.join(", ")})`);
      a.formats = names as Format[];
    } else throw new UserError(`unknown option ${flag} (use --cases N --seed S --formats ${FORMATS.join(",")} --json)`);
  }
  return a;
}

export type Outcome = "ok" | "error" | "bug";

interface CaseResult {
  format: string;
  index: number;
  steps: string[];
  size: number;
  outcome: Outcome;
  /** For bugs: what went wrong. For errors: the first line of the message. */
  detail?: string;
  ms: number;
}

/** Growth of the resident set allowed for one case: the readers may hold a few copies of the file. */
function memoryAllowance(size: number): number {
  return 96 * 1024 * 1024 + 32 * size;
}

function runCase(format: string, spec: FormatSpec, seed: number, index: number, work: string, timeLimitMs: number, verbose = false): CaseResult {
  const r = rng(caseSeed(seed, format, index));
  const { bytes, steps } = mutate(spec, r);
  const hf = format === "hf-config" || format === "hf-weights";
  const path = join(work, spec.file);
  writeFileSync(path, bytes);
  const rssBefore = process.memoryUsage.rss();
  const t0 = performance.now();
  let outcome: Outcome = "ok";
  let detail: string | undefined;
  try {
    spec.read(path);
  } catch (err) {
    if (err instanceof UserError) {
      outcome = "error";
      detail = err.message.split("\n")[0]!.slice(0, 300);
    } else {
      outcome = "bug";
      const e = err as Error;
      detail = `${e?.name ?? typeof err}: ${String(e?.message ?? err).slice(0, 300)}`;
      if (verbose) console.error(e?.stack ?? err);
    }
  }
  const ms = performance.now() - t0;
  const grew = process.memoryUsage.rss() - rssBefore;
  if (outcome !== "bug" && ms > timeLimitMs) {
    outcome = "bug";
    detail = `took ${ms.toFixed(0)} ms (limit ${timeLimitMs} ms)`;
  }
  if (outcome !== "bug" && grew > memoryAllowance(bytes.length)) {
    outcome = "bug";
    detail = `resident memory grew by ${(grew / 2 ** 20).toFixed(0)} MiB for a ${bytes.length}-byte file`;
  }
  if (hf || outcome === "bug") writeFileSync(path, spec.valid); // the next case starts from a valid folder
  return { format, index, steps, size: bytes.length, outcome, detail, ms };
}

/** Worker mode: run cases from..cases-1 of each format, one JSON line per case. */
function worker(a: Args): void {
  const base = mkdtempSync(join(tmpdir(), "tv-fuzz-"));
  try {
    const onlySelftest = a.formats.every((f) => (f as string) === "selftest");
    const formats: Record<string, FormatSpec> = { ...(onlySelftest ? {} : buildFormats(join(base, "valid"))), selftest: SELFTEST };
    process.stdout.write(JSON.stringify({ ready: true }) + "\n");
    for (const format of a.formats) {
      const spec = formats[format]!;
      const work = format === "hf-config" || format === "hf-weights" ? hfValidFolder(join(base, "valid")) : join(base, format);
      mkdirSync(work, { recursive: true });
      const first = a.single ?? a.from;
      const end = a.single !== null ? a.single + 1 : a.cases;
      for (let i = first; i < end; i++) {
        const res = runCase(format, spec, a.seed, i, work, a.timeLimitMs, a.single !== null);
        if (a.single !== null) {
          const keep = join(tmpdir(), `tv-fuzz-${format}-${a.seed}-${i}-${spec.file}`);
          writeFileSync(keep, mutate(spec, rng(caseSeed(a.seed, format, i))).bytes);
          console.error(`mutated file kept as ${keep}`);
        }
        process.stdout.write(JSON.stringify(res) + "\n");
        // Keep the heap from carrying one case's garbage into the next case's memory measurement.
        if (i % 50 === 49) Bun.gc(true);
      }
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

interface Tally {
  ok: number;
  error: number;
  bug: number;
}

/** Parent mode: one worker per format, restarted after a crash or a hang at the case that caused it. */
async function parent(a: Args): Promise<number> {
  const started = performance.now();
  const tallies = new Map<Format, Tally>(a.formats.map((f) => [f, { ok: 0, error: 0, bug: 0 }]));
  const bugs: CaseResult[] = [];
  const hangMs = a.hangMs;
  const runFormat = async (format: Format) => {
    let next = 0;
    while (next < a.cases) {
      const proc = Bun.spawn(
        [process.execPath, import.meta.path, "--worker", "--formats", format, "--seed", String(a.seed), "--from", String(next), "--cases", String(a.cases), "--time-limit-ms", String(a.timeLimitMs), "--hang-ms", String(a.hangMs)],
        { stdout: "pipe", stderr: "pipe", env: process.env },
      );
      const errText = new Response(proc.stderr).text();
      let buffer = "";
      let lastLine = Date.now();
      let hung = false;
      let ready = false;
      const watchdog = setInterval(() => {
        if (Date.now() - lastLine > hangMs) {
          hung = true;
          proc.kill("SIGKILL");
        }
      }, 500);
      const decoder = new TextDecoder();
      for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          lastLine = Date.now();
          const parsed = JSON.parse(line) as CaseResult | { ready: true };
          if ("ready" in parsed) {
            ready = true;
            continue;
          }
          const res = parsed;
          tallies.get(format)![res.outcome]++;
          if (res.outcome === "bug") bugs.push(res);
          next = res.index + 1;
        }
      }
      clearInterval(watchdog);
      const code = await proc.exited;
      const stderr = await errText;
      if (code === 0 && !hung) break;
      if (!ready) {
        // Not a case's fault: the worker could not even build its valid files (e.g. no native library).
        throw new UserError(`a fuzz worker failed before its first case (exit ${code}):\n${stderr.trim().split("\n").slice(-8).join("\n")}`);
      }
      if (next >= a.cases) break;
      // The case after the last reported one crashed the worker or hung in it.
      tallies.get(format)!.bug++;
      bugs.push({
        format, index: next, steps: [], size: 0, outcome: "bug", ms: 0,
        detail: hung ? `no answer for ${hangMs / 1000} s (hang)` : `worker died (${proc.signalCode ?? `exit ${code}`}): ${stderr.trim().split("\n").slice(-3).join(" | ").slice(0, 300)}`,
      });
      next++;
    }
  };
  // Two workers at a time: the machines this runs on have at least two cores.
  const queue = [...a.formats];
  await Promise.all(Array.from({ length: Math.min(a.jobs, queue.length) }, async () => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) await runFormat(f);
  }));
  const seconds = (performance.now() - started) / 1000;
  const total = [...tallies.values()].reduce((s, t) => s + t.ok + t.error + t.bug, 0);
  if (a.json) {
    console.log(JSON.stringify({ seed: a.seed, cases: a.cases, seconds, formats: Object.fromEntries(tallies), bugs }));
  } else {
    console.log(`fuzz: seed ${a.seed}, ${a.cases} cases per format, ${total} in all, ${seconds.toFixed(1)} s`);
    console.log("format          valid load   clear error   BUG");
    for (const [f, t] of tallies) console.log(`${f.padEnd(15)} ${String(t.ok).padStart(10)}   ${String(t.error).padStart(11)}   ${String(t.bug).padStart(3)}`);
    for (const b of bugs.slice(0, 30)) {
      console.log(`BUG ${b.format} case ${b.index} [${b.steps.join("+")}]: ${b.detail}\n    reproduce: bun run fuzz --formats ${b.format} --seed ${a.seed} --case ${b.index}`);
    }
    if (bugs.length > 30) console.log(`… and ${bugs.length - 30} more`);
  }
  return bugs.length === 0 ? 0 : 1;
}

try {
  const args = parseArgs(process.argv.slice(2));
  if (args.worker || args.single !== null) worker(args);
  else process.exitCode = await parent(args);
} catch (err) {
  if (!(err instanceof UserError)) throw err;
  console.error(`error: ${err.message}`);
  process.exitCode = 2;
}
