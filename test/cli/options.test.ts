/** Flags and config files: one schema, clear errors naming the flag, flags over the file, example configs valid. */
import { expect, test, setDefaultTimeout } from "bun:test";
import { readdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { optionsFromConfigFile, resolveOptions } from "../../src/train/options.ts";
import { learnableText, runCli, tempFolder, TINY, writeText } from "./helpers.ts";

// Each test starts CLI processes that train; a loaded machine can make that slow.
setDefaultTimeout(120_000);

test("every bad flag is a one-line error that names it (type, range, divisibility)", async () => {
  const { dir, cleanup } = tempFolder();
  try {
    const cases: [string[], string][] = [
      [["--data", "x", "--d-model", "250"], "--d-model 250 must be a multiple of --num-heads 8"],
      [["--data", "x", "--epochs", "0"], "--epochs 0: must be at least 1"],
      [["--data", "x", "--learning-rate", "fast"], '--learning-rate "fast": expected a number'],
      [["--data", "x", "--batch-size", "2.5"], "--batch-size 2.5: expected a whole number"],
      [["--data", "x", "--val-fraction", "0.9"], "--val-fraction 0.9: must be at most 0.5"],
      [["--data", "x", "--threads", "0"], "--threads 0: must be at least 1"],
      [["--data", "x", "--config", "missing.json"], "--config missing.json: file not found"],
      [["--epochs", "2"], "--data is required"],
      [["--data", "nowhere.txt", "--vocab", "v.vocab"], "--data nowhere.txt: no such file or directory"],
      [["trian", "--data", "x"], 'Unknown command "trian"'],
      [["--data", "x", "--epoch", "2"], "Unknown option `--epoch`"],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args, dir);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toContain(message);
      expect(r.stderr).not.toContain("    at ");
    }
  } finally {
    cleanup();
  }
});

test("a config file's keys mirror the flags in any spelling; flags win; given options are known", () => {
  const { dir, cleanup } = tempFolder();
  try {
    const file = join(dir, "run.json");
    writeFileSync(file, JSON.stringify({ d_model: 64, "num-heads": 4, numLayers: 3, learning_rate: 0.01, epochs: 5 }));
    const r = resolveOptions({ config: file, epochs: "7", data: "x" });
    expect(r.values).toMatchObject({ dModel: 64, numHeads: 4, numLayers: 3, learningRate: 0.01, epochs: 7, dFf: 688, arch: "llama", optimizer: "muon", batchSize: 16, maxLength: 256 });
    // Without --d-ff, the Llama block gets GPT-2's MLP parameter count at --d-ff 1024; GPT-2 keeps 1024.
    expect(resolveOptions({ data: "x", arch: "gpt2" }).values.dFf).toBe(1024);
    expect(resolveOptions({ data: "x", arch: "llama", dFf: "1024" }).values.dFf).toBe(1024);
    expect([...r.given].sort()).toEqual(["dModel", "data", "epochs", "learningRate", "numHeads", "numLayers"]);
    writeFileSync(file, JSON.stringify({ d_modle: 64 }));
    expect(() => resolveOptions({ config: file })).toThrow(/unknown option "d_modle"/);
    writeFileSync(file, JSON.stringify({ epochs: -1 }));
    expect(() => resolveOptions({ config: file })).toThrow(/"epochs" -1: must be at least 1/);
  } finally {
    cleanup();
  }
});

test("relative paths in a config file resolve from its folder; flags stay as typed; one value per option", () => {
  const { dir, cleanup } = tempFolder();
  try {
    const file = join(dir, "run.json");
    writeFileSync(file, JSON.stringify({ data: "corpus", vocab: "/abs/tok.vocab", output: "out", resume: "../ck.bin" }));
    expect(resolveOptions({ config: file }).values).toMatchObject({
      data: join(dir, "corpus"), vocab: "/abs/tok.vocab", output: join(dir, "out"), resume: join(dir, "..", "ck.bin"),
    });
    expect(resolveOptions({ config: file, output: "here" }).values.output).toBe("here");
    expect(() => resolveOptions({ data: ["a", "b"] })).toThrow("--data given twice (a, b); give it once.");
    expect(() => resolveOptions({ config: [file, file] })).toThrow("--config given twice");
  } finally {
    cleanup();
  }
});

test("the example configs in configs/ are valid", () => {
  const folder = resolve(import.meta.dir, "../../configs");
  const files = readdirSync(folder).filter((f) => f.endsWith(".json"));
  expect(files.length).toBeGreaterThan(0);
  for (const f of files) expect(() => optionsFromConfigFile(join(folder, f))).not.toThrow();
});

test("a second run reuses the cached token ids; the output folder has metrics and a loss curve", async () => {
  const { dir, cleanup } = tempFolder();
  try {
    const data = writeText(dir, "data.txt", learnableText(150));
    const args = ["--data", data, "--vocab", join(dir, "tok.vocab"), ...TINY, "--epochs", "1", "--output", join(dir, "out")];
    const first = await runCli(args, dir);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain("(tokenized; ids cached in");
    const second = await runCli([...args, "--overwrite"], dir); // a fresh run again: it replaces the first's model
    expect(second.code).toBe(0);
    expect(second.stdout).toContain("(cached ids");
    const files = readdirSync(join(dir, "out")).sort();
    expect(files).toContain("metrics.jsonl");
    expect(files).toContain("loss_curve.svg");
    expect(files).toContain("model_checkpoint.bin");
    const svg = await Bun.file(join(dir, "out", "loss_curve.svg")).text();
    expect(svg).toStartWith("<svg");
    expect(svg).toContain("<polyline");
  } finally {
    cleanup();
  }
});
