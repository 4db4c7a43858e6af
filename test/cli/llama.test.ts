/**
 * --arch llama through the CLI as a user runs it: a tiny model learns; the checkpoint records the
 * block, rope_theta and norm_eps; a run stopped by --max-steps and resumed gives the bytes of the
 * run that was never stopped (fp32, and bf16 where the CPU has it); an untied head; generate, eval
 * and inspect read it; export refuses it; bad values name their flag.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readCheckpointHeader } from "../../src/checkpoint/index.ts";
import { hasBf16 } from "../../src/native.ts";
import { resolveOptions } from "../../src/train/options.ts";
import { learnableText, runCli, tempFolder, TINY, withFlags, writeText } from "./helpers.ts";

setDefaultTimeout(120_000);

const tmp = tempFolder("tv-llama-");
const dir = tmp.dir;
let data: string;
const vocab = () => join(dir, "tok.vocab");
// fp32 spelled out: the default precision may follow the CPU.
const common = () => ["--data", data, "--vocab", vocab(), ...TINY, "--arch", "llama", "--epochs", "2", "--save-every", "7", "--precision", "fp32"];
const ckpt = (folder: string) => join(dir, folder, "model_checkpoint.bin");
const same = (a: string, b: string) => Buffer.compare(readFileSync(ckpt(a)), readFileSync(ckpt(b))) === 0;

/** The loss log without its wall-clock fields. */
function lossLog(folder: string): Record<string, unknown>[] {
  return readFileSync(join(dir, folder, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => {
    const { tokens_per_sec: _rate, elapsed_s: _clock, ...rest } = JSON.parse(l) as Record<string, unknown>;
    return rest;
  });
}

let straight: Awaited<ReturnType<typeof runCli>>;
beforeAll(async () => {
  data = writeText(dir, "data.txt", learnableText(400));
  straight = await runCli([...common(), "--output", join(dir, "straight")], dir);
});
afterAll(() => tmp.cleanup());

test("a tiny llama learns, and its checkpoint records the block", () => {
  expect(straight.code).toBe(0);
  expect(straight.stdout).toMatch(/Model: [\d,]+ parameters \(llama: d_model 32, .*d_ff 64 \(SwiGLU\), .*rope_theta 10000, LM head tied\)/);
  const losses = lossLog("straight").filter((r) => typeof r.loss === "number").map((r) => r.loss as number);
  expect(losses[0]!).toBeGreaterThan(0.8 * Math.log(300));
  expect(losses.at(-1)!).toBeLessThan(1.5); // half of each sentence is predictable
  const val = lossLog("straight").filter((r) => typeof r.val_loss === "number").map((r) => r.val_loss as number);
  expect(val.at(-1)!).toBeLessThan(1.5);
  const arch = readCheckpointHeader(ckpt("straight")).arch;
  expect(arch).toMatchObject({ block: "llama", rope_theta: 10000, norm_eps: 1e-5, tied_embeddings: true, attention_bias: false });
});

test("--max-steps then resume: the uninterrupted run's bytes and loss log; architecture flags on resume are ignored", async () => {
  const out = join(dir, "steps");
  expect((await runCli([...common(), "--output", out, "--max-steps", "23"], dir)).code).toBe(0);
  const resumed = await runCli(
    ["resume", ckpt("steps"), "--data", data, "--vocab", vocab(), "--output", out, "--threads", "1", "--arch", "gpt2", "--rope-theta", "5", "--tie-embeddings", "false"],
    dir,
  );
  expect(resumed.code).toBe(0);
  expect(resumed.stderr).toContain("Warning: --arch, --rope-theta, --tie-embeddings ignored with --resume");
  expect(resumed.stdout).toContain("Continuing stage 0 at epoch 1/2, step 23/");
  expect(same("steps", "straight")).toBe(true);
  expect(lossLog("steps")).toEqual(lossLog("straight"));
});

test("--precision bf16: stopped and resumed on another thread count, the same bytes", async () => {
  const bf16 = withFlags(common(), "--precision", "bf16");
  const twoThreads = bf16.filter((a, i, all) => a !== "--threads" && all[i - 1] !== "--threads");
  const out = join(dir, "bf16-steps");
  expect((await runCli([...twoThreads, "--output", join(dir, "bf16-straight")], dir)).code).toBe(0);
  expect((await runCli([...bf16, "--output", out, "--max-steps", "23"], dir)).code).toBe(0);
  expect((await runCli(["resume", ckpt("bf16-steps"), "--data", data, "--vocab", vocab(), "--output", out, "--threads", "1"], dir)).code).toBe(0);
  expect(same("bf16-steps", "bf16-straight")).toBe(true);
  expect(lossLog("bf16-steps")).toEqual(lossLog("bf16-straight"));
  if (hasBf16()) expect(lossLog("bf16-straight")).not.toEqual(lossLog("straight"));
});

test("--tie-embeddings false: a separate lm_head.weight, trained and resumed exactly", async () => {
  const untied = [...common(), "--tie-embeddings", "false", "--rope-theta", "500000"];
  const r = await runCli([...untied, "--output", join(dir, "untied")], dir);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("rope_theta 500000, LM head untied");
  const h = readCheckpointHeader(ckpt("untied"));
  expect(h.arch).toMatchObject({ block: "llama", rope_theta: 500000, tied_embeddings: false });
  expect((await runCli([...untied, "--output", join(dir, "untied-steps"), "--max-steps", "30"], dir)).code).toBe(0);
  expect((await runCli(["resume", ckpt("untied-steps"), "--data", data, "--vocab", vocab(), "--output", join(dir, "untied-steps")], dir)).code).toBe(0);
  expect(same("untied-steps", "untied")).toBe(true);
  const losses = lossLog("untied").filter((x) => typeof x.loss === "number").map((x) => x.loss as number);
  expect(losses.at(-1)!).toBeLessThan(losses[0]! / 2);
});

test("inspect, generate and eval read a llama checkpoint", async () => {
  const inspect = await runCli(["inspect", ckpt("straight")], dir);
  expect(inspect.code).toBe(0);
  expect(inspect.stdout).toContain("llama blocks: RMSNorm (eps 1e-5), rotary positions (rope_theta 10000), SwiGLU · LM head tied to the token embedding · no biases");
  const json = JSON.parse((await runCli(["inspect", ckpt("straight"), "--json"], dir)).stdout);
  expect(json.block).toBe("llama");
  const gen = await runCli(["generate", "--checkpoint", ckpt("straight"), "--vocab", vocab(), "--prompt", "the cat", "--max-tokens", "12", "--temperature", "0"], dir);
  expect(gen.code).toBe(0);
  expect(gen.stdout).toMatch(/^the cat \w+/);
  const ev = await runCli(["eval", "--checkpoint", ckpt("straight"), "--vocab", vocab(), "--data", data, "--max-length", "16"], dir);
  expect(ev.code).toBe(0);
  const loss = Number(/mean loss\s+([\d.]+)/.exec(ev.stdout)?.[1]);
  expect(loss).toBeLessThan(1.5);
});

test("export writes a llama model as a HuggingFace Llama folder; LOPOS v1 refuses it, writing nothing", async () => {
  const hf = await runCli(["export", ckpt("straight"), "--vocab", vocab(), "--out", join(dir, "hf")], dir);
  expect(hf.code).toBe(0);
  expect(hf.out).toContain("LlamaForCausalLM.from_pretrained");
  expect(JSON.parse(readFileSync(join(dir, "hf", "config.json"), "utf8")).model_type).toBe("llama");
  const lopos = await runCli(["export", ckpt("straight"), "--format", "lopos", "--out", join(dir, "m.lopos")], dir);
  expect(lopos.code).toBe(2);
  expect(lopos.stderr).toContain("LOPOS v1 holds only GPT-style models");
  expect(() => readFileSync(join(dir, "m.lopos"))).toThrow();
});

test("bad values are clear errors naming the flag", async () => {
  const cases: [string[], string][] = [
    [["--arch", "gpt3"], '--arch "gpt3": expected gpt2 or llama.'],
    [["--rope-theta", "0"], "--rope-theta 0: must be greater than 0."],
    [["--tie-embeddings", "maybe"], '--tie-embeddings "maybe": expected true or false.'],
    [["--arch", "gpt2", "--rope-theta", "500"], "--rope-theta 500: only --arch llama has rotary positions"],
    [["--num-heads", "2", "--d-model", "18"], "--arch llama: rotary positions turn channel pairs, so the head size must be even"],
  ];
  for (const [flags, message] of cases) {
    const r = await runCli([...withFlags(common(), ...flags), "--output", join(dir, "bad")], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toContain("    at ");
  }
});

test("a config file sets them as JSON values (a boolean, or its text); the defaults are the Llama block", () => {
  const file = writeText(dir, "llama.json", JSON.stringify({ arch: "llama", rope_theta: 20000, tie_embeddings: false }));
  expect(resolveOptions({ config: file }).values).toMatchObject({ arch: "llama", ropeTheta: 20000, tieEmbeddings: false });
  const text = writeText(dir, "text.json", JSON.stringify({ tie_embeddings: "true" }));
  expect(resolveOptions({ config: text }).values.tieEmbeddings).toBe(true);
  expect(resolveOptions({}).values).toMatchObject({ arch: "llama", ropeTheta: 10000, tieEmbeddings: true });
  const bad = writeText(dir, "bad.json", JSON.stringify({ tie_embeddings: 1 }));
  expect(() => resolveOptions({ config: bad })).toThrow(/"tie_embeddings" 1: expected true or false/);
});
