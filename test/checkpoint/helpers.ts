/** Small architectures, deterministic data and file surgery shared by the checkpoint tests. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Xoshiro128 } from "../../src/base/rng.ts";
import type { Architecture } from "../../src/model/layout.ts";
import { parameterCount } from "../../src/model/layout.ts";
import type { TokenizerIdentity, TrainingState } from "../../src/checkpoint/index.ts";

export const tinyArch: Architecture = {
  d_model: 8, num_heads: 2, num_layers: 2, d_ff: 16, vocab_size: 11, max_seq_len: 6,
  tied_embeddings: true, attention_bias: true,
};

/** Shaped like LoopOS's models: untied head, no attention biases. */
export const looposArch: Architecture = {
  d_model: 6, num_heads: 2, num_layers: 2, d_ff: 10, vocab_size: 7, max_seq_len: 5,
  tied_embeddings: false, attention_bias: false,
};

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "tv-ckpt-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Reproducible values with varied exponents and signs. */
export function filled(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  const rng = Xoshiro128.fromSeed(seed);
  for (let i = 0; i < n; i++) {
    const s = rng.nextU32();
    out[i] = ((s / 0x100000000) - 0.5) * 2 ** ((s % 17) - 8);
  }
  return out;
}

export function paramsFor(arch: Architecture, seed = 1): Float32Array {
  return filled(parameterCount(arch), seed);
}

export const tokenizer: TokenizerIdentity = { type: "bpe", vocab_size: 11, fingerprint: "abc123" };

export function trainingState(): TrainingState {
  return {
    global_step: 120, stage: 1, epoch: 2, step_in_epoch: 20, tokens_seen: 120 * 4 * 6,
    rng_state: "0123456789abcdef0123456789abcdef", stage_complete: false,
    plan: {
      data_fingerprint: "d4t4", epochs: 3, peak_lr: 3e-4, min_lr: 3e-5, warmup_steps: 10,
      total_steps: 150, steps_per_epoch: 50, batch_size: 4, seq_len: 6, weight_decay: 0.1,
      beta1: 0.9, beta2: 0.95, eps: 1e-8, grad_clip: 1, seed: 42, schedule: "cosine",
    },
    history: [{ stage: 0, data_fingerprint: "f1rst", epochs: 1, peak_lr: 6e-4 }],
  };
}

/** Independent minimal safetensors parse: 8-byte length, JSON, and the data section. */
export function parseSafetensors(bytes: Uint8Array): { headerLength: number; json: Record<string, unknown>; data: Uint8Array } {
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const json = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, unknown>;
  return { headerLength, json, data: bytes.subarray(8 + headerLength) };
}

/** Rewrite a checkpoint's JSON header (re-padded, fresh length field), keeping the data section. */
export function editHeader(path: string, edit: (json: Record<string, unknown>) => void): void {
  const { json, data } = parseSafetensors(new Uint8Array(readFileSync(path)));
  edit(json);
  writeRaw(path, JSON.stringify(json), data);
}

/** Same, for the train_vocab metadata object inside the header. */
export function editMetadata(path: string, edit: (meta: Record<string, unknown>) => void): void {
  editHeader(path, (json) => {
    const m = json.__metadata__ as Record<string, string>;
    const meta = JSON.parse(m.train_vocab!) as Record<string, unknown>;
    edit(meta);
    m.train_vocab = JSON.stringify(meta);
  });
}

export function writeRaw(path: string, headerText: string, data: Uint8Array): void {
  const text = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + text.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.byteLength), true);
  out.set(text, 8);
  out.set(data, 8 + text.byteLength);
  writeFileSync(path, out);
}
