// Words after a command: the checkpoint of generate, eval and serve may come first (LoopOS's
// `generate [checkpoint]`), and a word no command takes is refused rather than dropped (a dropped
// checkpoint path used to run the default model without a word).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomParams, runCli, tempDir, tinyModelFiles } from "../generate/fixtures.ts";
import { writeCheckpoint } from "../../src/checkpoint/index.ts";

const { dir, cleanup } = tempDir();
afterAll(cleanup);
const m = tinyModelFiles(dir);
// A second model with the same vocabulary and other weights: which one ran shows in the output.
const otherDir = join(dir, "other");
mkdirSync(otherDir);
const other = join(otherDir, "model_checkpoint.bin");
writeCheckpoint(other, { arch: m.arch, tokenizer: { type: m.tok.type, vocab_size: m.tok.vocabSize, fingerprint: m.tok.fingerprint }, training: null, params: randomParams(m.arch, 7) });
const data = join(dir, "heldout.txt");
writeFileSync(data, "The cat sat on the mat. The dog ran in the park. ".repeat(20));
const gen = ["--vocab", m.vocab, "--prompt", "The cat", "--max-tokens", "12", "--temperature", "0"];

const noTrace = (stderr: string) => expect(stderr).not.toMatch(/^\s+at /m);

describe("a checkpoint as the first argument", () => {
  test("generate: the same text as --checkpoint, and another model's text for another path", () => {
    const byFlag = runCli(["generate", "--checkpoint", other, ...gen]);
    const byArgument = runCli(["generate", other, ...gen]);
    const first = runCli(["generate", m.checkpoint, ...gen]);
    expect([byFlag.code, byArgument.code, first.code]).toEqual([0, 0, 0]);
    expect(byArgument.stdout).toBe(byFlag.stdout);
    expect(first.stdout).not.toBe(byArgument.stdout);
  });

  test("eval: the loss of the model named, not of the default one", () => {
    const a = runCli(["eval", other, "--vocab", m.vocab, "--data", data, "--json"]);
    const b = runCli(["eval", "--checkpoint", other, "--vocab", m.vocab, "--data", data, "--json"]);
    const c = runCli(["eval", m.checkpoint, "--vocab", m.vocab, "--data", data, "--json"]);
    expect([a.code, b.code, c.code]).toEqual([0, 0, 0]);
    const loss = (s: string) => (JSON.parse(s) as { mean_loss: number }).mean_loss;
    expect(loss(a.stdout)).toBe(loss(b.stdout));
    expect(loss(c.stdout)).not.toBe(loss(a.stdout));
  });

  test("two different checkpoints are refused; a missing one names the argument, and generate's says where the prompt goes", () => {
    const two = runCli(["generate", m.checkpoint, "--checkpoint", other, ...gen]);
    expect(two.code).toBe(2);
    expect(two.stderr).toContain("Two checkpoints given");
    const same = runCli(["generate", other, "--checkpoint", other, ...gen]);
    expect(same.code).toBe(0);
    const prompt = runCli(["generate", "hello", "--vocab", m.vocab]);
    expect(prompt.code).toBe(2);
    expect(prompt.stderr).toContain("Checkpoint file not found: hello (the first argument");
    expect(prompt.stderr).toContain("--prompt");
    const serve = runCli(["serve", join(dir, "nope.bin"), "--vocab", m.vocab, "--port", "0"]);
    expect(serve.code).toBe(2);
    expect(serve.stderr).toContain("Checkpoint file not found");
    noTrace(serve.stderr);
  });

  test("a missing vocabulary points at the one beside the checkpoint", () => {
    const r = runCli(["generate", other, "--vocab", join(dir, "missing.vocab"), "--prompt", "x"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`Vocabulary file not found: ${join(dir, "missing.vocab")}`);
    expect(r.stderr).toContain(`pass --vocab ${m.vocab}`);
  });
});

describe("words no command takes", () => {
  for (const args of [["inspect", "a.bin", "b.bin"], ["doctor", "extra"], ["export", "a.bin", "b.bin", "--out", "x"], ["resume", "a.bin", "b.bin"], ["tokenizer", "encode", "a", "b"]]) {
    test(`${args.join(" ")}: refused, naming the word`, () => {
      const r = runCli(args, { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("Unexpected argument");
      expect(r.stderr).toContain(`"${args.find((a, i) => i > 1 && a.startsWith("b")) ?? "extra"}"`);
      noTrace(r.stderr);
    });
  }

  test("a switch with a value is refused by its own name (=false would read as off, and ran as on)", () => {
    for (const [args, name] of [[["generate", "--no-echo=false"], "--no-echo"], [["inspect", "a.bin", "--json=false"], "--json"], [["export", "a.bin", "--out", "x", "--overwrite=yes"], "--overwrite"], [["--data", "d.txt", "--overwrite=false"], "--overwrite"]] as const) {
      const r = runCli([...args], { cwd: dir });
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toContain(`${name} is a switch and takes no value`);
    }
  });

  test("dashboard: a file that is not a metrics file is refused, not shown as an empty run", () => {
    const r = runCli(["dashboard", data, "--port", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("is a file but not a metrics file");
  });

  test("a run folder given as the checkpoint: the checkpoint inside it is named, for generate, eval, serve, inspect and resume", () => {
    for (const args of [["generate", otherDir, "--vocab", m.vocab], ["eval", otherDir, "--data", data], ["serve", otherDir, "--port", "0"], ["inspect", otherDir], ["resume", otherDir, "--data", data]]) {
      const r = runCli(args, { cwd: dir });
      expect({ args: args[0], code: r.code }).toEqual({ args: args[0], code: 2 });
      expect(r.stderr).toContain(`${otherDir} is a folder; expected a checkpoint file. Did you mean ${other}?`);
    }
  });

  test("a HuggingFace folder given where a checkpoint goes points at import", () => {
    const hf = join(dir, "hf-folder");
    mkdirSync(hf, { recursive: true });
    writeFileSync(join(hf, "config.json"), "{}");
    const r = runCli(["inspect", hf]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`It looks like a HuggingFace folder: bring it in first with \`train_vocab import ${hf} --out <file>\``);
  });
});
