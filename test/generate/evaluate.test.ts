import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { InferenceEngine } from "../../src/generate/engine.ts";
import { evaluate } from "../../src/generate/evaluate.ts";
import { archFor, randomParams, runCli, SAMPLE_TEXT, tempDir, tinyModelFiles, tinyTokenizer } from "./fixtures.ts";
import { referenceLogits } from "./reference.ts";

const { dir, cleanup } = tempDir();
afterAll(cleanup);
const { tok } = tinyTokenizer(dir);

/** Mean loss and bits per byte the long way: windows cut by hand, double-precision forward, log-softmax. */
function straightforward(arch: ReturnType<typeof archFor>, params: Float32Array, ids: number[], T: number) {
  let sum = 0, n = 0, bytes = 0;
  for (let start = 0; start + T < ids.length; start += T) {
    const inputs = ids.slice(start, start + T);
    const targets = ids.slice(start + 1, start + T + 1);
    const logits = referenceLogits(arch, params, inputs);
    targets.forEach((target, t) => {
      const row = logits[t]!;
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      sum += lse - row[target]!;
      n++;
      bytes += tok.decodeBytes([target]).length;
    });
  }
  return { mean: sum / n, n, bpb: sum / Math.LN2 / bytes };
}

describe("evaluate", () => {
  test("loss, perplexity and bits per byte equal a straightforward computation over the training windows", () => {
    const arch = archFor(tok.vocabSize, { max_seq_len: 16 });
    const params = randomParams(arch, 4);
    const ids = tok.encode(SAMPLE_TEXT);
    const r = evaluate(new InferenceEngine(arch, params), tok, ids, 16);
    const ref = straightforward(arch, params, Array.from(ids), 16);
    expect(r.tokens).toBe(ref.n);
    expect(r.windows).toBe(Math.floor((ids.length - 1) / 16));
    expect(Math.abs(r.meanLoss - ref.mean)).toBeLessThan(1e-4);
    expect(Math.abs(r.perplexity - Math.exp(ref.mean)) / r.perplexity).toBeLessThan(1e-4);
    expect(Math.abs(r.bitsPerByte - ref.bpb)).toBeLessThan(1e-4);
    // deterministic
    expect(evaluate(new InferenceEngine(arch, params), tok, ids, 16)).toEqual(r);
  });

  test("CLI: --json gives one object; shorter windows with --max-length; too little data is a clear error", () => {
    const m = tinyModelFiles(dir);
    const data = join(dir, "heldout.txt");
    writeFileSync(data, SAMPLE_TEXT);
    const r = runCli(["eval", "--checkpoint", m.checkpoint, "--vocab", m.vocab, "--data", data, "--json", "--max-length", "8"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    const ids = m.tok.encode(SAMPLE_TEXT);
    const ref = evaluate(new InferenceEngine(m.arch, m.params), m.tok, ids, 8);
    expect(j.seq_len).toBe(8);
    expect(j.tokens).toBe(ref.tokens);
    expect(j.mean_loss).toBeCloseTo(ref.meanLoss, 10);
    expect(j.bits_per_byte).toBeCloseTo(ref.bitsPerByte, 10);
    writeFileSync(join(dir, "tiny.txt"), "hi");
    const short = runCli(["eval", "--checkpoint", m.checkpoint, "--vocab", m.vocab, "--data", join(dir, "tiny.txt")]);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain("too few");
    const missing = runCli(["eval", "--checkpoint", m.checkpoint, "--vocab", m.vocab, "--data", join(dir, "nope.txt")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("nope.txt");
  });
});
