import { afterAll, describe, expect, test } from "bun:test";
import { InferenceEngine } from "../../src/generate/engine.ts";
import { generate, type GenerateOptions } from "../../src/generate/generate.ts";
import { argmax } from "../../src/native.ts";
import { viewsOf } from "../../src/model/layout.ts";
import { archFor, randomParams, tempDir, tinyTokenizer } from "./fixtures.ts";

const { dir, cleanup } = tempDir();
afterAll(cleanup);
const { tok } = tinyTokenizer(dir);
const arch = archFor(tok.vocabSize, { max_seq_len: 16 });
const params = randomParams(arch, 3);
const greedy: GenerateOptions = { maxTokens: 10, temperature: 0, topK: 0, topP: 1, seed: 0 };

function run(prompt: string, opts: Partial<GenerateOptions> = {}, p = params) {
  let text = "";
  const notices: string[] = [];
  const result = generate(new InferenceEngine(arch, p), tok, prompt, { ...greedy, ...opts, onText: (s) => (text += s), onNotice: (m) => notices.push(m) });
  return { result, text, notices };
}

describe("generate", () => {
  test("greedy output is deterministic and equals argmax over full-prefix recomputation", () => {
    const a = run("The cat sat");
    const b = run("The cat sat");
    expect(a.result.generated).toEqual(b.result.generated);
    expect(a.text).toBe(b.text);
    const full = new InferenceEngine(arch, params);
    const seq = [...a.result.promptIds];
    for (const id of a.result.generated) {
      expect(id).toBe(argmax(full.prefill(seq), tok.vocabSize));
      seq.push(id);
    }
    expect(a.result.generated.length).toBe(10);
    expect(a.result.stop).toBe("max-tokens");
  });

  test("streamed text is exactly the decoding of the generated ids", () => {
    const { result, text } = run("Über den", { temperature: 1.5, topK: 0, seed: 11, maxTokens: 12 });
    expect(text).toBe(tok.decode(result.generated));
  });

  test("the same seed repeats a sampled output; other seeds give others", () => {
    const opts = { temperature: 1.2, topK: 50, topP: 0.95, maxTokens: 12 };
    const a = run("The dog", { ...opts, seed: 1 }).result.generated;
    expect(run("The dog", { ...opts, seed: 1 }).result.generated).toEqual(a);
    const others = [2, 3, 4].map((seed) => run("The dog", { ...opts, seed }).result.generated);
    expect(others.some((o) => o.join() !== a.join())).toBe(true);
  });

  test("stops at end-of-text", () => {
    // Make end-of-text the certain choice: the final norm outputs a constant that only its head row sees.
    const untied = { ...arch, tied_embeddings: false };
    const p = randomParams(untied, 3);
    const v = viewsOf(p, untied);
    v.get("ln_f.weight")!.fill(0);
    v.get("ln_f.bias")!.fill(0)[0] = 1;
    v.get("lm_head.weight")!.fill(0)[tok.endOfTextId! * untied.d_model] = 10;
    const result = generate(new InferenceEngine(untied, p), tok, "The cat", greedy);
    expect(result.stop).toBe("end-of-text");
    expect(result.generated).toEqual([]);
  });

  test("a prompt longer than the context is cut from the left, with a notice", () => {
    const long = "The cat sat on the mat. ".repeat(10);
    const ids = Array.from(tok.encode(long));
    const { result, notices } = run(long, { maxTokens: 1 });
    expect(ids.length).toBeGreaterThan(arch.max_seq_len);
    expect(result.promptIds).toEqual(ids.slice(ids.length - arch.max_seq_len));
    expect(notices[0]).toContain(`using the last ${arch.max_seq_len}`);
  });

  test("output longer than the context continues from the recent half", () => {
    const { result, notices } = run("The", { maxTokens: 40 });
    expect(result.generated.length).toBe(40);
    expect(notices.some((n) => n.includes("continuing from the last 8"))).toBe(true);
  });

  test("an empty prompt starts from end-of-text; recorded logits predict each token", () => {
    const { result } = run("", { maxTokens: 5, recordLogits: true });
    expect(result.promptIds).toEqual([tok.endOfTextId!]);
    expect(result.logits.length).toBe(5);
    result.logits.forEach((l, i) => expect(argmax(l, tok.vocabSize)).toBe(result.generated[i]!));
  });

  test("max-tokens 0 generates nothing", () => {
    expect(run("The", { maxTokens: 0 }).result.generated).toEqual([]);
  });
});
