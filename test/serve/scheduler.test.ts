/** The continuous-batching scheduler without HTTP: requests submitted together are decoded together,
 * and each gives exactly what `generate` gives; sequences join and leave between steps. */
import { afterAll, describe, expect, test } from "bun:test";
import { InferenceEngine } from "../../src/generate/engine.ts";
import { generate, promptTokens } from "../../src/generate/generate.ts";
import { loadModel } from "../../src/generate/load.ts";
import { type FinishReason, Scheduler } from "../../src/serve/scheduler.ts";
import { tempDir, tinyModelFiles } from "../generate/fixtures.ts";

const { dir, cleanup } = tempDir("tv-sched-");
afterAll(cleanup);
const files = tinyModelFiles(dir);
const { checkpoint, tokenizer } = loadModel(files.checkpoint, files.vocab);
const newEngine = () => new InferenceEngine(checkpoint.arch, checkpoint.params);

interface Ask { prompt: string; maxTokens: number; temperature: number; topK: number; topP: number; seed: number; ignoreEnd: boolean; stop?: string[] }

function submit(s: Scheduler, a: Ask): Promise<{ text: string; reason: FinishReason; n: number }> {
  return new Promise((resolve, reject) => {
    let text = "";
    s.submit({
      promptIds: promptTokens(tokenizer, a.prompt, checkpoint.arch.max_seq_len)!.ids,
      maxTokens: a.maxTokens, ignoreEnd: a.ignoreEnd, stop: a.stop ?? [],
      sampling: { temperature: a.temperature, topK: a.topK, topP: a.topP, seed: a.seed },
      onText: (t) => void (text += t),
      onFinish: (reason, n) => resolve({ text, reason, n }),
      onError: reject,
    });
  });
}

function reference(a: Ask) {
  let text = "";
  const r = generate(newEngine(), tokenizer, a.prompt, { ...a, onText: (t) => void (text += t) });
  const reason: FinishReason = r.stop === "end-of-text" ? "stop" : "length";
  return { text, reason, n: r.generated.length };
}

const asks: Ask[] = [
  { prompt: "The cat", maxTokens: 50, temperature: 0.9, topK: 30, topP: 0.9, seed: 1, ignoreEnd: true },
  { prompt: "A bird sang in the tree, and the cat watched", maxTokens: 40, temperature: 1, topK: 0, topP: 1, seed: 2, ignoreEnd: true },
  { prompt: "", maxTokens: 30, temperature: 0, topK: 0, topP: 1, seed: 3, ignoreEnd: false },
  { prompt: "naïve café", maxTokens: 45, temperature: 0.7, topK: 5, topP: 0.8, seed: 4, ignoreEnd: true },
];

describe("Scheduler", () => {
  test("four requests submitted together are decoded together, each exactly as `generate` writes it (context slides included)", async () => {
    const s = new Scheduler(newEngine(), tokenizer, 8);
    const got = await Promise.all(asks.map((a) => submit(s, a)));
    asks.forEach((a, i) => expect(got[i]).toEqual(reference(a)));
    const st = s.stats();
    // Decoded together: the steps held more than two sequences on average.
    expect(st.rows).toBeGreaterThan(2 * st.steps);
    expect(st.active + st.waiting).toBe(0);
  });

  test("a sequence that joins while others run, and one cancelled mid-way, leave the others' text unchanged", async () => {
    const s = new Scheduler(newEngine(), tokenizer, 8);
    const first = submit(s, asks[0]!);
    let cancel = () => {};
    const leaving = new Promise<void>((resolve) => {
      let pieces = 0;
      const h = s.submit({
        promptIds: [1, 2, 3], maxTokens: 1000, ignoreEnd: true, stop: [],
        sampling: { temperature: 1, topK: 0, topP: 1, seed: 9 },
        onText: () => void (++pieces === 5 && (cancel(), resolve())),
        onFinish: () => { throw new Error("a cancelled sequence must not finish"); },
        onError: () => {},
      });
      cancel = h.cancel;
    });
    await Bun.sleep(0);
    const late = submit(s, asks[3]!);
    await leaving;
    expect(await first).toEqual(reference(asks[0]!));
    expect(await late).toEqual(reference(asks[3]!));
    await Bun.sleep(5);
    expect(s.stats().active).toBe(0);
  });

  test("nine at once: every one ends, with the tokens it asked for", async () => {
    const s = new Scheduler(newEngine(), tokenizer, 16);
    const nine = Array.from({ length: 9 }, (_, i) => ({ ...asks[i % 4]!, seed: 100 + i, ignoreEnd: true, maxTokens: 20 + i }));
    const got = await Promise.all(nine.map((a) => submit(s, a)));
    got.forEach((g, i) => {
      expect(g.n).toBe(20 + i);
      expect(g.reason).toBe("length");
    });
    expect(s.stats().rows).toBeGreaterThan(8 * 19);
  });
});
