import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type TrainingState, writeCheckpoint, writeLopos } from "../../src/checkpoint/index.ts";
import { parameterCount } from "../../src/model/layout.ts";
import { archFor, randomParams, runCli, tempDir } from "../generate/fixtures.ts";

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const arch = archFor(40);
const training: TrainingState = {
  global_step: 120, stage: 1, epoch: 2, step_in_epoch: 20, tokens_seen: 2880, rng_state: "00ff", stage_complete: false,
  plan: {
    data_fingerprint: "data-fp", epochs: 3, peak_lr: 3e-4, min_lr: 3e-5, warmup_steps: 10, total_steps: 150, steps_per_epoch: 50,
    batch_size: 4, seq_len: 6, weight_decay: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8, grad_clip: 1, seed: 42, schedule: "cosine",
  },
};
const ours = join(dir, "ours.bin");
const n = parameterCount(arch);
writeCheckpoint(ours, {
  arch, tokenizer: { type: "bpe", vocab_size: 40, fingerprint: "feedbeef" }, training,
  params: randomParams(arch), adam: { m: new Float32Array(n), v: new Float32Array(n) },
});
const looposArch = archFor(40, { tied_embeddings: false, attention_bias: false });
const lopos = join(dir, "loopos.bin");
writeLopos(lopos, looposArch, randomParams(looposArch));

describe("inspect", () => {
  test("our checkpoint: format, architecture, parameters, training state, plan, tokenizer (text)", () => {
    const r = runCli(["inspect", ours]);
    expect(r.code).toBe(0);
    for (const s of ["train-vocab-checkpoint v1", "d_model 32", "num_layers 2", `${n.toLocaleString("en-US")}`, "AdamW state stored", "step 120", "fp32 products · AdamW",
      "epoch 3/3 (step 20 of 50)", "tokens seen 2,880", "peak 0.0003", "warmup 10 of 150", "fingerprint feedbeef", "not checked"]) {
      expect(r.stdout).toContain(s);
    }
  });

  test("--json is one object with the same facts; --verify checks the checksum", () => {
    const r = runCli(["inspect", ours, "--json", "--verify"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.format).toBe("train-vocab-checkpoint");
    expect(j.arch).toEqual(arch);
    expect(j.parameter_count).toBe(n);
    expect(j.file_size).toBe(readFileSync(ours).length);
    expect(j.training.plan.peak_lr).toBe(3e-4);
    expect(j.checksum.verified).toBe(true);
  });

  test("LoopOS's LOPOS v1 file: architecture from its header, nothing else recorded", () => {
    const r = runCli(["inspect", lopos, "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.format).toBe("lopos");
    expect(j.version).toBe(1);
    expect(j.arch).toEqual(looposArch);
    expect(j.training).toBeNull();
    expect(j.checksum.verified).toBeNull();
    const t = runCli(["inspect", lopos, "--verify"]);
    expect(t.code).toBe(0);
    expect(t.stdout).toContain("LOPOS v1");
  });

  test("a damaged tensor is reported as a failed checksum (exit 2); without --verify the header still reads", () => {
    const damaged = join(dir, "damaged.bin");
    const bytes = new Uint8Array(readFileSync(ours));
    bytes[bytes.length - 100]! ^= 0x40;
    writeFileSync(damaged, bytes);
    expect(runCli(["inspect", damaged]).code).toBe(0);
    const r = runCli(["inspect", damaged, "--verify"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain("FAILED");
  });

  test("a missing file is named, with a hint", () => {
    const r = runCli(["inspect", join(dir, "missing.bin")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Checkpoint file not found");
    expect(r.stderr).toContain("missing.bin");
    expect(r.stderr).not.toContain("    at ");
  });
});
