/**
 * Tokenizer benchmark: our BPE training, encoding and decoding against HuggingFace tokenizers (npm)
 * and, if installed, SentencePiece (spm_train), side by side on the same corpus.
 *
 *   bun run bench:tokenizer [corpus.txt]      (default: build/bench/bench50.txt, or $TOKENIZER_BENCH_CORPUS)
 *
 * Each measurement runs in its own process so its peak RSS (VmHWM) is its own.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";

const OUT_DIR = "build/bench";

type Result = { seconds: number; peakMiB: number; extra?: Record<string, number | string> };

function peakMiB(): number {
  const status = require("node:fs").readFileSync("/proc/self/status", "utf8") as string;
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 2 ** 20;
}

async function worker(kind: string, corpus: string, arg: string): Promise<Result> {
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  if (kind === "ours-train") {
    const t = await import("../src/tokenizer/index.ts");
    const tok = t.trainTokenizer({ data: corpus, vocabSize: Number(arg), minFrequency: 2 });
    const seconds = elapsed();
    t.saveTokenizer(tok, join(OUT_DIR, `ours-${arg}.vocab`));
    return { seconds, peakMiB: peakMiB(), extra: { vocab_size: tok.vocabSize } };
  }
  if (kind === "hf-train") {
    const hf = await import("tokenizers");
    const tok = new hf.Tokenizer(hf.BPE.empty());
    tok.setPreTokenizer(hf.byteLevelPreTokenizer(false, true));
    tok.train([corpus]);
    return { seconds: elapsed(), peakMiB: peakMiB(), extra: { vocab_size: tok.getVocabSize() } };
  }
  const bytes = new Uint8Array(await Bun.file(corpus).arrayBuffer());
  if (kind === "ours-encode") {
    const t = await import("../src/tokenizer/index.ts");
    const tok = t.loadTokenizer(arg);
    const t0 = performance.now();
    const ids = t.encodeFile(tok, corpus);
    const encodeS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const back = tok.decodeBytes(ids);
    const decodeS = (performance.now() - t1) / 1000;
    const exact = back.length === bytes.length && Buffer.compare(Buffer.from(back), Buffer.from(bytes)) === 0;
    return {
      seconds: encodeS,
      peakMiB: peakMiB(),
      extra: { encode_MBps: bytes.length / 1e6 / encodeS, decode_MBps: bytes.length / 1e6 / decodeS, tokens: ids.length, round_trip: exact ? "exact" : "MISMATCH" },
    };
  }
  if (kind === "hf-encode") {
    const hf = await import("tokenizers");
    const tok = hf.Tokenizer.fromFile(arg);
    const text = new TextDecoder().decode(bytes);
    const lines = text.split(/(?<=\n)/);
    const t0 = performance.now();
    let tokens = 0;
    for (let i = 0; i < lines.length; i += 20000) {
      const out = await tok.encodeBatch(lines.slice(i, i + 20000), { addSpecialTokens: false });
      for (const e of out) tokens += e.getLength();
    }
    const encodeS = (performance.now() - t0) / 1000;
    return { seconds: encodeS, peakMiB: peakMiB(), extra: { encode_MBps: bytes.length / 1e6 / encodeS, tokens } };
  }
  throw new Error(`unknown worker ${kind}`);
}

async function run(kind: string, corpus: string, arg = ""): Promise<Result | null> {
  const proc = Bun.spawn([process.execPath, import.meta.path, "--worker", kind, corpus, arg], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0) return null;
  return JSON.parse(out.trim().split("\n").pop()!) as Result;
}

async function spm(corpus: string, vocab: number): Promise<Result | null> {
  if (!Bun.which("spm_train")) return null;
  const time = Bun.which("time") ?? (existsSync("/usr/bin/time") ? "/usr/bin/time" : null);
  const args = [`--input=${corpus}`, `--model_prefix=${join(OUT_DIR, "spm")}`, `--vocab_size=${vocab}`, "--model_type=bpe", "--num_threads=1", "--minloglevel=2", "--input_sentence_size=100000000", "--max_sentence_length=100000"];
  const cmd = time ? [time, "-f", "%M", "spm_train", ...args] : ["spm_train", ...args];
  const t0 = performance.now();
  const proc = Bun.spawn(cmd, { stdout: "ignore", stderr: "pipe" });
  const err = await new Response(proc.stderr).text();
  if ((await proc.exited) !== 0) return null;
  const kb = Number(/(\d+)\s*$/.exec(err.trim())?.[1] ?? NaN);
  return { seconds: (performance.now() - t0) / 1000, peakMiB: kb / 1024 };
}

function row(name: string, r: Result | null, fields: string[] = []): string {
  if (!r) return `  ${name.padEnd(34)} (not available)`;
  const extra = fields.map((f) => {
    const v = r.extra?.[f];
    return `${f}=${typeof v === "number" ? (Number.isInteger(v) ? v : v.toFixed(1)) : v}`;
  });
  return `  ${name.padEnd(34)} ${r.seconds.toFixed(2).padStart(7)} s  peak ${r.peakMiB.toFixed(0).padStart(5)} MiB  ${extra.join("  ")}`;
}

async function main(): Promise<void> {
  if (process.argv[2] === "--worker") {
    const [, , , kind, corpus, arg] = process.argv;
    console.log(JSON.stringify(await worker(kind!, corpus!, arg ?? "")));
    return;
  }
  const corpus = process.argv[2] ?? process.env.TOKENIZER_BENCH_CORPUS ?? join(OUT_DIR, "bench50.txt");
  if (!existsSync(corpus)) {
    console.error(`No corpus at ${corpus}. Give a large text file: bun run bench:tokenizer path/to/corpus.txt (the README figures use a 50 MB English corpus).`);
    process.exit(2);
  }
  mkdirSync(OUT_DIR, { recursive: true });
  const mb = statSync(corpus).size / 1e6;
  const threads = (await import("../src/native.ts")).getThreads();
  console.log(`corpus ${corpus}: ${mb.toFixed(1)} MB, ${threads} threads`);
  console.log("training:");
  const hf = await run("hf-train", corpus);
  console.log(row("HuggingFace tokenizers (30000)", hf, ["vocab_size"]));
  const o30 = await run("ours-train", corpus, "30000");
  console.log(row("train-vocab (30000)", o30, ["vocab_size"]));
  const o32 = await run("ours-train", corpus, "32000");
  console.log(row("train-vocab (32000)", o32, ["vocab_size"]));
  const sp = process.env.BENCH_SPM === "0" ? null : await spm(corpus, 32000);
  if (sp) console.log(row("SentencePiece BPE (32000, 1 thread)", sp));
  if (hf && o30) console.log(`  → train-vocab trains ${(hf.seconds / o30.seconds).toFixed(2)}× as fast as HuggingFace at 30000, peak memory ${(o30.peakMiB / hf.peakMiB).toFixed(2)}× theirs`);

  console.log("encoding (same 32000 vocabulary; HF loads our exported tokenizer.json):");
  const vocab = join(OUT_DIR, "ours-32000.vocab");
  if (!existsSync(vocab)) return;
  const t = await import("../src/tokenizer/index.ts");
  const json = join(OUT_DIR, "ours-32000.tokenizer.json");
  t.saveHuggingFace(t.loadTokenizer(vocab), json);
  const ours = await run("ours-encode", corpus, vocab);
  console.log(row("train-vocab encodeFile + decode", ours, ["encode_MBps", "decode_MBps", "tokens", "round_trip"]));
  const hfe = await run("hf-encode", corpus, json);
  console.log(row("HuggingFace encodeBatch", hfe, ["encode_MBps", "tokens"]));
  if (ours && hfe) {
    const a = Number(ours.extra!.encode_MBps), b = Number(hfe.extra!.encode_MBps);
    console.log(`  → encode ${(a / b).toFixed(2)}× HuggingFace; same token count: ${ours.extra!.tokens === hfe.extra!.tokens}`);
  }
}

await main();
