/**
 * Input rules a new user meets first, through the CLI: a config file is checked as strictly as the
 * flags and named as written, a flag or config key given twice is refused, environment overrides
 * are checked, a mistyped command is called one, and messages state the real limits.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseVocabFile } from "../../src/tokenizer/vocab_file.ts";
import { BIN, learnableText, runCli, tempFolder, TINY, writeText, type RunResult } from "../cli/helpers.ts";

setDefaultTimeout(120_000);

const tmp = tempFolder("tv-rules-");
const dir = tmp.dir;
const p = (name: string) => join(dir, name);
const BOM = "\uFEFF";

beforeAll(() => {
  writeText(dir, "data.txt", learnableText(200));
});
afterAll(() => tmp.cleanup());

async function runWithEnv(args: string[], env: Record<string, string>): Promise<RunResult> {
  const proc = Bun.spawn(["bun", "run", BIN, ...args], { cwd: dir, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1", ...env } });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr, out: stdout + stderr };
}

/** Each case must end in exit 2 with a one-line error holding every `says`, and none of `never`. */
async function expectRefused(args: string[], says: string[], never: string[] = [], run = () => runCli(args, dir)): Promise<void> {
  const r = await run();
  const firstLine = r.stderr.trim().split("\n")[0] ?? "";
  expect({ args, code: r.code, says: says.filter((s) => firstLine.includes(s)), never: never.filter((s) => r.out.includes(s)) })
    .toEqual({ args, code: 2, says, never: [] });
  expect(r.out).not.toContain("    at ");
}

describe("--config", () => {
  const cases: [string, string, string[]][] = [
    ["list.json", '{"learning_rate": [0.001, 5]}', ['"learning_rate" (a list): expected a number']],
    ["text.json", '{"d_model": "32"}', ['"d_model" "32": expected a whole number (a JSON number: write it without quotes)']],
    ["word.json", '{"learning_rate": "fast"}', ['"learning_rate" "fast": expected a number.']],
    ["spellings.json", '{"d-model": 32, "d_model": 64}', ['"d-model" and "d_model" are the same option; give it once']],
    ["repeat.json", '{"epochs": 1, "note": "x", "epochs": 2}', ['"epochs" is given twice; give it once']],
    ["huge.json", '{"learning_rate": 1e400}', ['"learning_rate" 1e400: not a finite number']],
    ["huge-int.json", '{"epochs": -1e400}', ['"epochs" -1e400: not a finite number']],
    ["negative.json", '{"learning_rate": -1}', ['"learning_rate" -1: must be greater than 0']],
    ["typo.json", '{"d_modle": 64}', ['unknown option "d_modle"']],
    ["path.json", '{"data": 5}', ['"data" 5: expected a path (a JSON string: write it in quotes)']],
    ["nested.json", '{"epochs": 2, "batch_size": {"a": [1, "}"]}}', ['"batch_size" (an object): expected a whole number']],
    ["bom.json", `${BOM}{"epochs": 0}`, ['"epochs" 0: must be at least 1']],
  ];
  test("values are checked as strictly as flags, each named as written, with the value as written", async () => {
    for (const [name, json, says] of cases) {
      writeFileSync(p(name), json);
      await expectRefused(["--data", p("data.txt"), "--config", p(name)], [`${name}: `, ...says], ["learningRate", "dModel", "batchSize", "null"]);
    }
  });

  test("a flag's value as typed: 1e400 is not a finite number", async () => {
    await expectRefused(["--data", p("data.txt"), "--learning-rate", "1e400"], ["--learning-rate 1e400: not a finite number"]);
    await expectRefused(["--data", p("data.txt"), "--epochs", "1e400"], ["--epochs 1e400: not a finite number"]);
  });

  test("relative paths in a config file are relative to the file's folder, not the current one", async () => {
    const folder = p("project/configs");
    mkdirSync(folder, { recursive: true });
    writeText(folder, "corpus.txt", learnableText(200));
    const model = Object.fromEntries(
      TINY.filter((a) => a.startsWith("--")).map((flag) => [flag.slice(2).replaceAll("-", "_"), Number(TINY[TINY.indexOf(flag) + 1])]),
    );
    writeFileSync(join(folder, "run.json"), JSON.stringify({ data: "corpus.txt", vocab: "tok.vocab", output: "run", ...model, max_steps: 1 }));
    const r = await runCli(["--config", "project/configs/run.json"], dir);
    expect({ code: r.code, out: r.code === 0 ? "" : r.out }).toEqual({ code: 0, out: "" });
    expect(existsSync(join(folder, "tok.vocab"))).toBe(true);
    expect(existsSync(join(folder, "run", "model_checkpoint.bin"))).toBe(true);
    expect(existsSync(p("run"))).toBe(false);
  });
});

test("a flag given twice is an error naming it, for every command", async () => {
  const cases: [string[], string][] = [
    [["--data", "a.txt", "--data", "b.txt"], "--data given twice (a.txt, b.txt); give it once."],
    [["train-vocab", "--data", p("data.txt"), "--epochs", "1", "--epochs", "2", "--epochs", "3"], "--epochs given 3 times (1, 2, 3); give it once."],
    [["--data", p("data.txt"), "--config", "a.json", "--config", "b.json"], "--config given twice (a.json, b.json)"],
    [["resume", "ck.bin", "--learning-rate", "0.1", "--learning-rate", "0.2"], "--learning-rate given twice (0.1, 0.2)"],
    [["generate", "--top-p", "0.5", "--top-p", "0.9"], "--top-p given twice (0.5, 0.9)"],
    [["generate", "--prompt", "a", "--prompt", "b"], "--prompt given twice (a, b)"],
    [["eval", "--data", "a", "--data", "b"], "--data given twice (a, b)"],
    [["inspect", "ck.bin", "--verify", "--verify"], "--verify given twice; give it once."],
    [["export", "ck.bin", "--out", "a", "--out", "b"], "--out given twice (a, b)"],
    [["import", "folder", "--out", "a", "--out", "b"], "--out given twice (a, b)"],
    [["demo", "--threads", "1", "--threads", "2"], "--threads given twice (1, 2)"],
  ];
  for (const [args, message] of cases) await expectRefused(args, [message]);
});

test("a bad TRAIN_VOCAB_ISA or TRAIN_VOCAB_THREADS is an error naming the variable and what it takes", async () => {
  const cases: [Record<string, string>, string][] = [
    [{ TRAIN_VOCAB_ISA: "bogus" }, "TRAIN_VOCAB_ISA=bogus: expected one of portable, avx2, avx512"],
    [{ TRAIN_VOCAB_THREADS: "0" }, "TRAIN_VOCAB_THREADS=0: expected a whole number from 1 to 256"],
    [{ TRAIN_VOCAB_THREADS: "abc" }, "TRAIN_VOCAB_THREADS=abc: expected a whole number from 1 to 256"],
    [{ TRAIN_VOCAB_THREADS: "4x" }, "TRAIN_VOCAB_THREADS=4x: expected a whole number from 1 to 256"],
  ];
  for (const [env, message] of cases) {
    await expectRefused(["doctor"], [message], [], () => runWithEnv(["doctor"], env));
    await expectRefused(["-v"], [message], [], () => runWithEnv(["-v"], env));
  }
  const ok = await runWithEnv(["doctor", "--json"], { TRAIN_VOCAB_ISA: "Portable", TRAIN_VOCAB_THREADS: "1" });
  expect(ok.code).toBe(0);
  expect(JSON.parse(ok.stdout)).toMatchObject({ isa_in_use: "portable", threads: 1 });
});

test("a mistyped command is reported as an unknown command, with a suggestion, before its options", async () => {
  await expectRefused(["genrate", "--prompt", "hi"], ['Unknown command "genrate" — did you mean `generate`?'], ["Unknown option"]);
  await expectRefused(["train", "--data", p("data.txt")], ['Unknown command "train" — did you mean `train-vocab`?']);
  await expectRefused(["frobnicate", "--frob"], ['Unknown command "frobnicate".', "train_vocab --help"], ["did you mean", "Unknown option"]);
});

test("--version prints what its help promises: version, CPU features, ISA level and threads", async () => {
  const doctor = JSON.parse((await runCli(["doctor", "--json"], dir)).stdout) as Record<string, unknown>;
  for (const flag of ["-v", "--version"]) {
    const r = await runCli([flag], dir);
    expect(r.code).toBe(0);
    for (const part of [`train_vocab ${doctor.version}`, `CPU features: ${doctor.cpu_features}`, `isa ${doctor.isa_in_use}`, `${doctor.threads} threads`]) {
      expect(r.stdout).toContain(part);
    }
  }
});

test("messages state the real limits: open bounds as such, no 5e-324, no largest-number stand-ins", async () => {
  const cases: [string[], string][] = [
    [["generate", "--top-p", "2"], "--top-p 2: expected a number in (0, 1] (1 means off)."],
    [["generate", "--top-p", "0"], "--top-p 0: expected a number in (0, 1]"],
    [["generate", "--temperature", "-1"], "--temperature -1: expected a number in [0, 1000000] (0 means greedy)."],
    [["generate", "--max-tokens", "-1"], "--max-tokens -1: expected a whole number of at least 0."],
    [["generate", "--seed", "1.5"], "--seed 1.5: expected a whole number from 0 to 4294967295."],
    [["demo", "--seconds", "0"], "--seconds 0: expected a number in [1, 86400]."],
  ];
  for (const [args, message] of cases) await expectRefused(args, [message], ["5e-324", "1.7976931348623157e+308", "9007199254740991", "∞"]);
});

describe("a .vocab saved with a UTF-8 byte order mark", () => {
  const LOOPOS_VOCAB = ["# Tokenizer Vocabulary", "vocab_size=9", "---", "0\t<pad>", "1\t<unk>", "2\t<bos>", "3\t<eos>", "4\t<|user|>", "5\t<|assistant|>", "6\tthe", "7\tcat", "8\t.", ""].join("\n");

  test("a LoopOS word vocabulary loads", async () => {
    writeFileSync(p("loopos.vocab"), BOM + LOOPOS_VOCAB);
    writeFileSync(p("sample.txt"), "The cat.");
    const r = await runCli(["tokenizer", "encode", p("sample.txt"), "--vocab", p("loopos.vocab")], dir);
    expect({ code: r.code, out: r.out.trim() }).toEqual({ code: 0, out: "6 7 8" });
  });

  test("our format parses", async () => {
    const r = await runCli(["tokenizer", "train", "--data", p("data.txt"), "--vocab", p("bpe.vocab"), "--vocab-size", "300"], dir);
    expect(r.code).toBe(0);
    const text = readFileSync(p("bpe.vocab"), "utf8");
    expect(parseVocabFile(BOM + text, "bpe.vocab").fingerprint).toBe(parseVocabFile(text, "bpe.vocab").fingerprint);
  });

  test("our format loads through the CLI", async () => {
    writeFileSync(p("bom.vocab"), BOM + readFileSync(p("bpe.vocab"), "utf8"));
    const r = await runCli(["tokenizer", "encode", p("sample.txt"), "--vocab", p("bom.vocab")], dir);
    expect({ code: r.code, err: r.stderr }).toEqual({ code: 0, err: "" });
  });
});
