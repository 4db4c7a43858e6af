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

describe("Scheduler, prompts longer than a turn's prompt rows", () => {
  // A context of 150: prompts of 100+ positions go in over two or more turns (64 prompt positions a
  // turn), beside other sequences' decoding rows, and some run out of the turn's budget.
  const wide = tempDir("tv-sched-long-");
  afterAll(wide.cleanup);
  const longFiles = tinyModelFiles(wide.dir, { max_seq_len: 150 }, 3);
  const long = loadModel(longFiles.checkpoint, longFiles.vocab);
  const engineFor = () => new InferenceEngine(long.checkpoint.arch, long.checkpoint.params);
  const text = (n: number) => Array.from({ length: n }, (_, i) => ["the cat", "sat on", "a mat", "and a bird", "sang"][i % 5]).join(" ");

  function run(s: Scheduler, a: Ask) {
    return new Promise<{ text: string; reason: FinishReason; n: number }>((resolve, reject) => {
      let out = "";
      s.submit({
        promptIds: promptTokens(long.tokenizer, a.prompt, long.checkpoint.arch.max_seq_len)!.ids,
        maxTokens: a.maxTokens, ignoreEnd: a.ignoreEnd, stop: [],
        sampling: { temperature: a.temperature, topK: a.topK, topP: a.topP, seed: a.seed },
        onText: (t) => void (out += t),
        onFinish: (reason, n) => resolve({ text: out, reason, n }),
        onError: reject,
      });
    });
  }

  function expected(a: Ask) {
    let out = "";
    const r = generate(engineFor(), long.tokenizer, a.prompt, { ...a, onText: (t) => void (out += t) });
    return { text: out, reason: (r.stop === "end-of-text" ? "stop" : "length") as FinishReason, n: r.generated.length };
  }

  test("each gives exactly what `generate` gives: max_tokens 1 and 2, a slide past the context, greedy and sampled", async () => {
    const s = new Scheduler(engineFor(), long.tokenizer, 6);
    const many: Ask[] = [1, 2, 60, 200, 130, 45].map((maxTokens, i) => ({
      prompt: text(20 + 7 * i), maxTokens, temperature: i % 2 ? 0.8 : 0, topK: i % 3 ? 0 : 20, topP: 0.9, seed: 50 + i, ignoreEnd: true,
    }));
    const lengths = many.map((a) => promptTokens(long.tokenizer, a.prompt, 150)!.ids.length);
    expect(Math.max(...lengths)).toBeGreaterThan(64);
    // One more, cancelled at once: its prompt never finishes going in; its slot must come back.
    const h = s.submit({
      promptIds: promptTokens(long.tokenizer, text(40), 150)!.ids, maxTokens: 10, ignoreEnd: true, stop: [],
      sampling: { temperature: 0, topK: 0, topP: 1, seed: 1 },
      onText: () => {}, onFinish: () => { throw new Error("a cancelled sequence must not finish"); }, onError: () => {},
    });
    const got = Promise.all(many.map((a) => run(s, a)));
    await Bun.sleep(0);
    h.cancel();
    const results = await got;
    many.forEach((a, i) => expect([i, results[i]]).toEqual([i, expected(a)]));
    const st = s.stats();
    expect(st.promptRows).toBeGreaterThan(64 * 2);
    await Bun.sleep(5);
    expect(s.stats().active + s.stats().waiting).toBe(0);
  });

  test("a prompt the engine would refuse is refused at submit, not by failing everyone's pass", () => {
    const s = new Scheduler(engineFor(), long.tokenizer, 2);
    const job = (promptIds: number[]) => ({
      promptIds, maxTokens: 5, ignoreEnd: true, stop: [], sampling: { temperature: 0, topK: 0, topP: 1, seed: 1 },
      onText: () => {}, onFinish: () => {}, onError: () => {},
    });
    expect(() => s.submit(job([]))).toThrow(/1\.\.150/);
    expect(() => s.submit(job(Array.from({ length: 151 }, () => 1)))).toThrow(/151 ids/);
    expect(() => s.submit(job([1, long.checkpoint.arch.vocab_size]))).toThrow(/outside/);
    expect(s.stats().waiting).toBe(0);
  });
});
