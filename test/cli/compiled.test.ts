/**
 * The standalone executable (bun build --compile, native library embedded), copied away from the
 * project and run from another folder: it trains, stops and resumes, loads without training, speaks
 * LoopOS's errors, runs the demo from its embedded corpus and serves the dashboard.
 * scripts/run_cli.sh drives the same executable through its subcommands; `make compile` also puts it
 * where the resume guide runs it.
 */
import { afterAll, beforeAll, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { learnableText, runCli, tempFolder, TINY, writeText } from "./helpers.ts";

// Each test starts CLI processes that train; a loaded machine can make that slow.
setDefaultTimeout(120_000);

const ROOT = resolve(import.meta.dir, "../..");
const tmp = tempFolder("tv-exe-");
const exeDir = join(tmp.dir, "bin");
const work = join(tmp.dir, "elsewhere");
const exe = join(exeDir, "train_vocab");
let data: string;

beforeAll(async () => {
  // As `make compile` builds it: the demo's corpus packed and embedded beside the native library.
  const pack = join(tmp.dir, "brown_corpus.zst");
  const packed = Bun.spawnSync(["bun", "run", join(ROOT, "scripts/pack_brown.ts"), pack], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (packed.exitCode !== 0) throw new Error(`scripts/pack_brown.ts failed: ${packed.stderr.toString()}`);
  const build = Bun.spawnSync(["bun", "build", "--compile", join(ROOT, "bin/train-vocab.ts"), "--outfile", exe, pack], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`bun build --compile failed: ${build.stderr.toString()}`);
  Bun.spawnSync(["mkdir", "-p", work]);
  data = writeText(work, "story.txt", learnableText(300));
}, 120_000);
afterAll(() => tmp.cleanup());

test("the compiled executable, run from another folder, trains, stops, resumes exactly and loads", async () => {
  const run = (args: string[]) => runCli(args, work, [exe]);
  const args = ["--data", "story.txt", "--vocab", "outputs/tokenizer.vocab", ...TINY, "--epochs", "1"];
  const straight = await run([...args, "--output", "straight"]);
  expect(straight.code).toBe(0);
  expect(straight.stdout).toContain("Saved vocabulary to outputs/tokenizer.vocab");

  const stopped = await run([...args, "--max-steps", "9"]); // default --output outputs/autoregressive
  expect(stopped.code).toBe(0);
  const ckpt = "outputs/autoregressive/model_checkpoint.bin";
  const resumed = await run(["resume", ckpt, "--data", "story.txt", "--vocab", "outputs/tokenizer.vocab", "--threads", "1"]);
  expect(resumed.code).toBe(0);
  expect(Buffer.compare(readFileSync(join(work, ckpt)), readFileSync(join(work, "straight/model_checkpoint.bin")))).toBe(0);

  const loaded = await run(["--resume", ckpt, "--vocab", "outputs/tokenizer.vocab"]);
  expect(loaded.code).toBe(0);
  expect(loaded.stdout).toContain("Loaded architecture from checkpoint:\n  d_model:    32");
  expect(loaded.stdout).toContain("No training data provided - model loaded but not trained");

  const missing = await run(["resume", "nope.bin", "--vocab", "outputs/tokenizer.vocab"]);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain("Checkpoint file not found: nope.bin");
});

test("the compiled executable's demo runs from a folder without the corpus package: it reads its embedded copy", async () => {
  const r = await runCli(["demo", "--seconds", "1", "--output", "demo", "--threads", "2"], work, [exe]);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("Wrote the Brown corpus as plain text: 500 documents in demo/brown");
  expect(r.stdout).toContain("greedy:  The jury said ▸");
  expect(readFileSync(join(work, "demo/brown/ca01.txt"), "utf8")).toStartWith("The Fulton County Grand Jury said Friday");
});

test("the compiled executable serves the dashboard: the page, its bundled script and a run's metrics", async () => {
  const run = join(work, "dash-run");
  mkdirSync(run, { recursive: true });
  writeFileSync(join(run, "metrics.jsonl"), JSON.stringify({ step: 1, stage: 0, epoch: 1, epochs: 1, loss: 5.5, lr: 0.001, grad_norm: 1, tokens_per_sec: 10 }) + "\n");
  const proc = Bun.spawn([exe, "dashboard", run, "--port", "0"], { cwd: work, stdout: "pipe", stderr: "pipe" });
  try {
    const reader = proc.stdout.getReader();
    let out = "";
    const deadline = Date.now() + 20_000;
    while (!/http:\/\/127\.0\.0\.1:\d+\//.test(out) && Date.now() < deadline) {
      const { value, done } = await Promise.race([reader.read(), Bun.sleep(deadline - Date.now()).then(() => ({ value: undefined, done: true }))]);
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(out)?.[0];
    expect(url).toBeDefined();
    const html = await (await fetch(url!)).text();
    const src = /<script[^>]+src="([^"]+)"/.exec(html)?.[1];
    expect(src).toBeDefined();
    const js = await fetch(new URL(src!, url).href);
    expect(js.status).toBe(200);
    expect(await js.text()).toContain("trainVocabDashboard");
    const metrics = (await (await fetch(`${url}api/runs/0/metrics`)).json()) as { train: { loss: number[] } };
    expect(metrics.train.loss).toEqual([5.5]);
  } finally {
    proc.kill("SIGINT");
    await proc.exited;
  }
});

test("scripts/run_cli.sh: train-vocab, vocab-train, resume, continue, generate and help reach the executable", async () => {
  const script = join(ROOT, "scripts/run_cli.sh");
  const env = { ...process.env, TRAIN_VOCAB_BIN: exe, NO_COLOR: "1" };
  const sh = async (args: string[], cwd = work) => {
    const p = Bun.spawn(["bash", script, ...args], { cwd, env, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { stdout, stderr, code };
  };
  const train = ["--data", data, "--vocab", "sh/tok.vocab", ...TINY, "--epochs", "1", "--output", "sh"];
  expect((await sh(["train-vocab", ...train, "--max-steps", "3"])).code).toBe(0);
  expect((await sh(["vocab-train", ...train, "--max-steps", "3", "--overwrite"])).code).toBe(0);
  const r1 = await sh(["resume", "sh/model_checkpoint.bin", "--data", data, "--vocab", "sh/tok.vocab", "--output", "sh", "--max-steps", "2"]);
  expect(r1.code).toBe(0);
  expect(r1.stdout).toContain("Continuing stage 0");
  const r2 = await sh(["continue", "sh/model_checkpoint.bin", "--vocab", "sh/tok.vocab"]);
  expect(r2.code).toBe(0);
  expect(r2.stdout).toContain("No training data provided - model loaded but not trained");
  const gen = await sh(["gen", "sh/model_checkpoint.bin", "--vocab", "sh/tok.vocab", "--prompt", "the cat", "--max-tokens", "5", "--seed", "1"]);
  expect(gen.code).toBe(0);
  expect(gen.stdout).toStartWith("the cat");
  // without a checkpoint argument, LoopOS's default path (missing in this folder)
  const defaultGen = await sh(["generate", "--vocab", join(work, "sh/tok.vocab"), "--prompt", "x"], exeDir);
  expect(defaultGen.code).toBe(2);
  expect(defaultGen.stderr).toContain("Checkpoint file not found: outputs/autoregressive/model_checkpoint.bin");
  const help = await sh(["help"]);
  expect(help.code).toBe(0);
  expect(help.stdout).toContain("resume <checkpoint> [options]");
  const menuless = await sh([]); // no terminal: the usage instead of the menu
  expect(menuless.stdout).toContain("Usage: scripts/run_cli.sh");
  const bad = await sh(["resume"]);
  expect(bad.code).toBe(2);
  expect(existsSync(join(work, "sh/model_checkpoint.bin"))).toBe(true);
});

test("make compile also puts the executable at build_avx512/train_vocab, where the resume guide's Method 2 runs it", async () => {
  // The Makefile's compile recipe in a scratch folder: the library and packages stubbed as up to date and a "bun"
  // whose build hands over the executable built above, so only the recipe's own steps run.
  const scratch = join(tmp.dir, "make");
  mkdirSync(join(scratch, "build"), { recursive: true });
  mkdirSync(join(scratch, "node_modules"));
  // The packages stubbed as installed: the stamp `make deps` leaves, no older than what it depends on.
  for (const f of ["package.json", "bun.lock", "node_modules/.deps-stamp"]) writeFileSync(join(scratch, f), "");
  writeFileSync(join(scratch, "build", `libtrain_vocab.${process.platform === "darwin" ? "dylib" : "so"}`), "");
  writeFileSync(join(scratch, "build", "brown_corpus.zst"), "");
  const stub = join(scratch, "bun-stub.sh");
  writeFileSync(stub, `#!/bin/sh\n# build --compile <entry> --outfile <out> <embedded files>\ncp "${exe}" "$5"\n`, { mode: 0o755 });
  const make = Bun.spawnSync(["make", "-f", join(ROOT, "Makefile"), "-C", scratch, "compile", `BUN=${stub}`], { stdout: "pipe", stderr: "pipe" });
  expect(make.stderr.toString()).toBe("");
  expect(make.exitCode).toBe(0);
  const guide = join(scratch, "build_avx512", "train_vocab");
  expect(statSync(guide).size).toBe(statSync(join(scratch, "train_vocab")).size);
  const r = await runCli(["inspect", "--help"], scratch, [guide]);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("inspect <checkpoint>");
});
