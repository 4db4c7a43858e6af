import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeLopos } from "../../src/checkpoint/index.ts";

import { randomParams, runCli, tempDir, tinyModelFiles, tinyTokenizer } from "../generate/fixtures.ts";

const { dir, cleanup } = tempDir();
afterAll(cleanup);
const m = tinyModelFiles(dir);
const otherDir = join(dir, "other");
mkdirSync(otherDir);
const other = tinyTokenizer(otherDir, 290).path;
const base = ["generate", "--checkpoint", m.checkpoint, "--vocab", m.vocab];

describe("generate command", () => {
  test("greedy: deterministic, prompt echoed, new text streamed, tokens/s on stderr", () => {
    const a = runCli([...base, "--prompt", "The cat", "--max-tokens", "8", "--temperature", "0"]);
    const b = runCli([...base, "--prompt", "The cat", "--max-tokens", "8", "--temperature", "0", "--seed", "99"]);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout.startsWith("The cat")).toBe(true);
    expect(a.stderr).toMatch(/\d+ tokens in .* tokens\/s/);
  });

  test("sampling: a seed repeats a run; --no-echo prints only the new text", () => {
    const args = [...base, "--prompt", "The dog", "--max-tokens", "10", "--temperature", "1", "--seed", "5", "--no-echo"];
    const a = runCli(args);
    expect(a.code).toBe(0);
    expect(runCli(args).stdout).toBe(a.stdout);
    expect(a.stdout.startsWith("The dog")).toBe(false);
    expect(a.stderr).toContain("seed 5");
  });

  test("the prompt can come from stdin", () => {
    const a = runCli([...base, "--max-tokens", "4", "--temperature", "0"], { stdin: "The cat" });
    const b = runCli([...base, "--prompt", "The cat", "--max-tokens", "4", "--temperature", "0"]);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
  });

  test("a long prompt is cut with a notice", () => {
    const r = runCli([...base, "--prompt", "The cat sat on the mat. ".repeat(20), "--max-tokens", "2", "--temperature", "0"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("using the last 24");
  });

  test("LoopOS's LOPOS file generates with a vocab of its size", () => {
    const arch = { ...m.arch, tied_embeddings: false, attention_bias: false };
    const lopos = join(dir, "loopos.bin");
    writeLopos(lopos, arch, randomParams(arch, 4));
    const r = runCli(["gen", "--checkpoint", lopos, "--vocab", m.vocab, "--prompt", "The", "--max-tokens", "3", "--temperature", "0"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("3 tokens");
  });

  test("user errors: missing files, wrong vocab, bad flags — one line, exit 2", () => {
    const cases: [string[], RegExp][] = [
      [["generate", "--checkpoint", join(dir, "none.bin"), "--vocab", m.vocab], /Checkpoint file not found: .*none\.bin/],
      [["generate", "--checkpoint", m.checkpoint, "--vocab", join(dir, "none.vocab")], /Vocabulary file not found: .*none\.vocab/],
      [["generate", "--checkpoint", m.checkpoint, "--vocab", other], /is not the vocabulary .* was trained with/],
      [[...base, "--temperature=-1"], /--temperature -1/],
      [[...base, "--top-p", "0"], /--top-p 0/],
      [[...base, "--max-tokens", "x"], /--max-tokens x/],
    ];
    for (const [args, message] of cases) {
      const r = runCli([...args, "--prompt", "x"]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toContain("    at ");
    }
  });

  test("--help names every option with its type and default", () => {
    const r = runCli(["generate", "--help"]);
    for (const s of ["--max-tokens", "--temperature", "--top-k", "--top-p", "--seed", "default: 0.8", "integer"]) expect(r.stdout).toContain(s);
  });
});
