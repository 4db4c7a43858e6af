/** LoopOS's LOPOS v1 checkpoints (written here by the test) load, convert and resume, with LoopOS's word vocabulary. */
import { afterAll, beforeAll, expect, test, setDefaultTimeout } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { readCheckpoint, writeLopos } from "../../src/checkpoint/index.ts";
import { initParameters } from "../../src/model/init.ts";
import { type Architecture, viewsOf } from "../../src/model/layout.ts";
import { Xoshiro128 } from "../../src/base/rng.ts";
import { learnableText, runCli, tempFolder, writeText } from "./helpers.ts";

// Each test starts CLI processes that train; a loaded machine can make that slow.
setDefaultTimeout(120_000);

const tmp = tempFolder();
const dir = tmp.dir;
const SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>", "<|user|>", "<|assistant|>"];
const WORDS = [...new Set(learnableText(50).replace(/\./g, " ").split(/\s+/).filter(Boolean))].sort();
const entries = [...SPECIALS, ".", ...WORDS];
const arch: Architecture = {
  d_model: 16, num_heads: 2, num_layers: 2, d_ff: 32, vocab_size: entries.length, max_seq_len: 512,
  tied_embeddings: false, attention_bias: false,
};
const looposCkpt = () => join(dir, "loopos_model.bin");
const looposVocab = () => join(dir, "loopos.vocab");
let data: string;
let params: Float32Array;

function looposVocabText(words: string[]): string {
  return `# Tokenizer Vocabulary\n# Format: token_id word frequency\nvocab_size=${words.length}\nnext_id=${words.length}\ntotal_tokens=1000\n---\n` +
    words.map((w, i) => `${i}\t${w}`).join("\n") + "\n";
}

beforeAll(() => {
  data = writeText(dir, "data.txt", learnableText(300));
  writeFileSync(looposVocab(), looposVocabText(entries));
  params = initParameters(arch, Xoshiro128.fromSeed(5));
  writeLopos(looposCkpt(), arch, params);
});
afterAll(() => tmp.cleanup());

test("a LOPOS v1 file loads: LoopOS's architecture block, then a converted copy with --output", async () => {
  const r = await runCli(["train-vocab", "--resume", looposCkpt(), "--vocab", looposVocab(), "--output", join(dir, "converted")], dir);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`Loaded architecture from checkpoint:\n  d_model:    16\n  num_heads:  2\n  num_layers: 2\n  d_ff:       32\n  vocab_size: ${entries.length}\n`);
  expect(r.stdout).toContain("a LoopOS LOPOS v1 checkpoint holds weights only");
  const converted = readCheckpoint(join(dir, "converted", "model_checkpoint.bin"));
  expect(converted.format).toBe("train-vocab-checkpoint");
  expect(converted.arch).toEqual(arch);
  expect(converted.params).toEqual(params);
  expect(converted.tokenizer?.type).toBe("loopos-word");
});

/** The bytes train-vocab wrote before the LoopOS rename: tokenizer type "seed-word", checksum to match. */
function asWrittenBeforeRename(bytes: Uint8Array): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  const data = bytes.subarray(8 + n);
  const meta = header.__metadata__ as Record<string, string>;
  expect(meta.train_vocab).toContain('"type":"loopos-word"');
  meta.train_vocab = meta.train_vocab!.replace('"type":"loopos-word"', '"type":"seed-word"');
  // xxh64-chain: the metadata string, then each tensor's bytes in file order
  let h = Bun.hash.xxHash64(meta.train_vocab, 0n);
  const spans = Object.entries(header).filter(([k]) => k !== "__metadata__").map(([, e]) => (e as { data_offsets: [number, number] }).data_offsets).sort((a, b) => a[0] - b[0]);
  for (const [b, e] of spans) h = Bun.hash.xxHash64(data.subarray(b, e), h);
  meta.checksum = h.toString(16).padStart(16, "0");
  let text = JSON.stringify(header);
  text += " ".repeat((8 - ((8 + Buffer.byteLength(text)) % 8)) % 8);
  const head = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

test('a checkpoint from before the rename (tokenizer type "seed-word") loads and resumes with its vocabulary; copies say "loopos-word"', async () => {
  const old = join(dir, "old", "model_checkpoint.bin");
  await Bun.write(old, asWrittenBeforeRename(await Bun.file(join(dir, "converted", "model_checkpoint.bin")).bytes()));
  expect(await Bun.file(old).text()).toContain('\\"type\\":\\"seed-word\\"');
  expect(readCheckpoint(old)).toMatchObject({ tokenizer: { type: "loopos-word" }, checksum: { verified: true } });
  const r = await runCli(["train-vocab", "--resume", old, "--vocab", looposVocab(), "--output", join(dir, "old-converted")], dir);
  expect(r.code).toBe(0);
  const copy = await Bun.file(join(dir, "old-converted", "model_checkpoint.bin")).text();
  expect(copy).toContain('\\"type\\":\\"loopos-word\\"');
  expect(copy).not.toContain("seed-word");
});

test("a LOPOS v1 file with a vocabulary of another size: LoopOS's message", async () => {
  const other = join(dir, "other.vocab");
  writeFileSync(other, looposVocabText([...entries, "extra"]));
  const r = await runCli(["resume", looposCkpt(), "--vocab", other, "--data", data], dir);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`Vocabulary size mismatch! Checkpoint expects ${entries.length} but vocab file has ${entries.length + 1}`);
});

test("--resume on a LOPOS v1 file trains the whole untied model and lowers its loss", async () => {
  const out = join(dir, "resumed");
  const r = await runCli(
    ["resume", looposCkpt(), "--data", data, "--vocab", looposVocab(), "--output", out, "--epochs", "2", "--learning-rate", "0.003",
      "--max-length", "16", "--batch-size", "4", "--threads", "1", "--log-every", "1000"],
    dir,
  );
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("Stage 0: 2 epochs");
  const after = readCheckpoint(join(out, "model_checkpoint.bin"));
  expect(after.arch).toEqual(arch);
  expect(after.training!.stage_complete).toBe(true);
  expect(after.adam).not.toBeNull();
  // every tensor moved: the separate LM head, attention, norms and embeddings are all trained
  const was = viewsOf(params, arch);
  for (const [name, now] of viewsOf(after.params, arch)) {
    if (name === "wpe") continue; // only the first 16 of 512 positions are used: checked just below
    expect({ name, changed: !now.every((x, i) => x === was.get(name)![i]) }).toEqual({ name, changed: true });
  }
  const usedPositions = 16 * arch.d_model;
  expect(viewsOf(after.params, arch).get("wpe")!.subarray(0, usedPositions)).not.toEqual(was.get("wpe")!.subarray(0, usedPositions));
  const lines = (await Bun.file(join(out, "metrics.jsonl")).text()).trim().split("\n").map((l) => JSON.parse(l) as { loss?: number; val_loss?: number });
  const losses = lines.filter((l) => l.loss !== undefined).map((l) => l.loss!);
  const head = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
  const tail = losses.slice(-5).reduce((a, b) => a + b) / 5;
  expect(tail).toBeLessThan(head * 0.6);
  // and the LoopOS file itself was never touched
  expect(readCheckpoint(looposCkpt()).params).toEqual(params);
});

test("--arch gpt2 --attention-bias false trains LoopOS's block: it exports to LOPOS v1 and comes back with the same weights; with biases it is refused", async () => {
  const { TINY } = await import("./helpers.ts");
  const vocab = join(dir, "own.vocab");
  const run = join(dir, "own-block");
  const r = await runCli(["--data", data, "--vocab", vocab, ...TINY, "--arch", "gpt2", "--attention-bias", "false", "--optimizer", "adamw", "--epochs", "1", "--output", run], dir);
  expect(r.code).toBe(0);
  const trained = readCheckpoint(join(run, "model_checkpoint.bin"));
  expect(trained.arch.attention_bias).toBe(false);
  expect([...viewsOf(trained.params, trained.arch).keys()].some((n) => n.includes("attn.qkv.bias"))).toBe(false);
  const out = join(dir, "own-block.lopos");
  const e = await runCli(["export", join(run, "model_checkpoint.bin"), "--vocab", vocab, "--format", "lopos", "--out", out], dir);
  expect(e.code).toBe(0);
  // LOPOS v1 has no tied head: the token embedding goes out as the output projection too.
  const back = readCheckpoint(out);
  expect(back.arch).toEqual({ ...trained.arch, tied_embeddings: false });
  const was = viewsOf(trained.params, trained.arch), now = viewsOf(back.params, back.arch);
  for (const [name, w] of was) expect({ name, same: now.get(name)!.every((x, i) => x === w[i]) }).toEqual({ name, same: true });
  expect([...now.keys()].filter((n) => !was.has(n))).toEqual(["lm_head.weight"]);
  expect(now.get("lm_head.weight")).toEqual(was.get("wte")!);

  const biased = join(dir, "biased");
  expect((await runCli(["--data", data, "--vocab", vocab, ...TINY, "--arch", "gpt2", "--epochs", "1", "--max-steps", "2", "--output", biased], dir)).code).toBe(0);
  const refused = await runCli(["export", join(biased, "model_checkpoint.bin"), "--vocab", vocab, "--format", "lopos", "--out", join(dir, "biased.lopos")], dir);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain("--attention-bias false");

  const llama = await runCli(["--data", data, "--vocab", vocab, ...TINY, "--attention-bias", "true", "--output", join(dir, "llama-bias")], dir);
  expect(llama.code).toBe(2);
  expect(llama.stderr).toContain("a Llama block has no biases");
});
