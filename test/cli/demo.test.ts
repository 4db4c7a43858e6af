/** The demo: the Brown corpus untagged into plain text, and the whole two-stage run (shortened). */
import { afterAll, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readCheckpoint } from "../../src/checkpoint/index.ts";
import { untag } from "../../src/data/brown.ts";
import { runCli, tempFolder } from "./helpers.ts";

// Each test starts CLI processes that train; a loaded machine can make that slow.
setDefaultTimeout(120_000);

const tmp = tempFolder("tv-demo-");
afterAll(() => tmp.cleanup());

test("Brown's part-of-speech tags are stripped into ordinary text", () => {
  const tagged = "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, 1-1/2/cd miles/nns ./.\n\n\n\tIt/pps was/bedz (/( not/* )/) Atlanta's/np$ fault/nn ./.\n";
  expect(untag(tagged)).toBe('The jury said "no evidence", 1-1/2 miles.\nIt was (not) Atlanta\'s fault.\n');
});

test("demo: trains the default model on Brown, resumes it at a lower learning rate, prints continuations", async () => {
  const out = join(tmp.dir, "demo");
  const r = await runCli(["demo", "--seconds", "1", "--output", out], tmp.dir);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("== Stage 0: the default model from scratch");
  expect(r.stdout).toContain("== Stage 1: resume it for one more epoch at learning rate 0.0005");
  expect(r.stdout).toContain("Loaded architecture from checkpoint:\n  d_model:    256\n  num_heads:  8\n  num_layers: 2\n  d_ff:       688\n  vocab_size: 10000");
  expect(r.stdout).toContain("greedy:  The jury said ▸");
  const ckpt = readCheckpoint(join(out, "model", "model_checkpoint.bin"));
  expect(ckpt.training!.stage).toBe(1);
  expect(ckpt.training!.history!.map((h) => h.peak_lr)).toEqual([0.002, 0.0005]);
  expect(existsSync(join(out, "model", "loss_curve.svg"))).toBe(true);
}, 120_000);
