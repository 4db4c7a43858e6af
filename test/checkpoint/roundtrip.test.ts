import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CHECKPOINT_FORMAT,
  CHECKSUM_ALGORITHM,
  readCheckpoint,
  readCheckpointHeader,
  toCheckpointData,
  writeCheckpoint,
} from "../../src/checkpoint/index.ts";
import { type Architecture, parameterCount, tensorSpecs } from "../../src/model/layout.ts";
import { filled, paramsFor, parseSafetensors, looposArch, tempDir, tinyArch, tokenizer, trainingState } from "./helpers.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

describe("checkpoint round trip", () => {
  const n = parameterCount(tinyArch);
  const params = paramsFor(tinyArch, 7);
  // Values that a lossy path would mangle: -0, subnormals, extremes, infinities, a NaN payload.
  params.set([-0, 1e-45, -3.4028235e38, Infinity, -Infinity], 0);
  new Uint32Array(params.buffer)[5] = 0x7fc01234;
  const adam = { m: filled(n, 8), v: filled(n, 9).map(Math.abs) };
  const path = join(tmp.dir, "model_checkpoint.bin");
  writeCheckpoint(path, { arch: tinyArch, tokenizer, training: trainingState(), params, adam });

  test("reads back the same architecture, identity, training state and exact float bits", () => {
    const ck = readCheckpoint(path);
    expect(ck.format).toBe(CHECKPOINT_FORMAT);
    expect(ck.version).toBe(1);
    expect(ck.arch).toEqual(tinyArch);
    expect(ck.tokenizer).toEqual(tokenizer);
    expect(ck.training).toEqual(trainingState());
    expect(bitsEqual(ck.params, params)).toBe(true);
    expect(ck.adam).not.toBeNull();
    expect(bitsEqual(ck.adam!.m, adam.m)).toBe(true);
    expect(bitsEqual(ck.adam!.v, adam.v)).toBe(true);
    expect(ck.checksum).toMatchObject({ algorithm: CHECKSUM_ALGORITHM, verified: true });
    expect(ck.checksum.value).toMatch(/^[0-9a-f]{16}$/);
    expect(ck.fileSize).toBe(readFileSync(path).byteLength);
  });

  test("re-writing what was read gives identical bytes", () => {
    const ck = readCheckpoint(path);
    const again = join(tmp.dir, "again.bin");
    writeCheckpoint(again, { arch: ck.arch, tokenizer: ck.tokenizer, training: ck.training, params: ck.params, adam: ck.adam });
    expect(Buffer.compare(readFileSync(again), readFileSync(path))).toBe(0);
  });

  test("header-only read gives the metadata without loading or checking tensors", () => {
    // Damage the data: a full read would fail its checksum; the header read never looks there.
    const bytes = new Uint8Array(readFileSync(path));
    bytes[bytes.length - 3]! ^= 0xff;
    const damaged = join(tmp.dir, "header-only.bin");
    writeFileSync(damaged, bytes);
    const h = readCheckpointHeader(damaged);
    expect(h.arch).toEqual(tinyArch);
    expect(h.training?.global_step).toBe(120);
    expect(h.hasAdam).toBe(true);
    expect(h.checksum.verified).toBeNull();
    expect("params" in h).toBe(false);
  });

  test("verify: false skips the checksum", () => {
    const ck = readCheckpoint(path, { verify: false });
    expect(ck.checksum.verified).toBeNull();
    expect(bitsEqual(ck.params, params)).toBe(true);
  });

  test("named views cover weights and moments", () => {
    const data = toCheckpointData(readCheckpoint(path));
    const specs = tensorSpecs(tinyArch);
    expect(data.tensors.size).toBe(3 * specs.length);
    const wte = specs.find((s) => s.name === "wte")!;
    expect(bitsEqual(data.tensors.get("wte")!, params.subarray(wte.offset, wte.offset + wte.size))).toBe(true);
    expect(data.tensors.get("adam.v.ln_f.bias")!.length).toBe(tinyArch.d_model);
  });
});

describe("the file is a standard safetensors container", () => {
  test("independent parse: length, JSON, F32 entries tiling the data section, 8-aligned", () => {
    const path = join(tmp.dir, "standard.bin");
    const params = paramsFor(tinyArch, 3);
    const n = params.length;
    writeCheckpoint(path, { arch: tinyArch, tokenizer, training: trainingState(), params, adam: { m: filled(n, 4), v: filled(n, 5) } });
    const bytes = new Uint8Array(readFileSync(path));
    const { headerLength, json, data } = parseSafetensors(bytes);
    expect((8 + headerLength) % 8).toBe(0);
    const meta = json.__metadata__ as Record<string, string>;
    expect(meta.format).toBe(CHECKPOINT_FORMAT);
    expect(meta.checksum_algorithm).toBe(CHECKSUM_ALGORITHM);
    expect(JSON.parse(meta.train_vocab!).arch).toEqual(tinyArch);
    for (const v of Object.values(meta)) expect(typeof v).toBe("string");

    const entries = Object.entries(json).filter(([k]) => k !== "__metadata__") as [string, { dtype: string; shape: number[]; data_offsets: [number, number] }][];
    const specs = tensorSpecs(tinyArch);
    expect(entries.map(([k]) => k)).toEqual([...specs.map((s) => s.name), ...specs.map((s) => `adam.m.${s.name}`), ...specs.map((s) => `adam.v.${s.name}`)]);
    let end = 0;
    for (const [, e] of entries) {
      expect(e.dtype).toBe("F32");
      expect(e.data_offsets[0]).toBe(end);
      expect(e.data_offsets[0] % 8).toBe(0);
      end = e.data_offsets[1];
      expect(end - e.data_offsets[0]).toBe(4 * e.shape.reduce((a, b) => a * b, 1));
    }
    expect(end).toBe(data.byteLength);
    // The tensor bytes are the flat buffer itself, in order.
    const [, wpe] = entries.find(([k]) => k === "wpe")!;
    const got = new Float32Array(data.slice(wpe.data_offsets[0], wpe.data_offsets[1]).buffer);
    const spec = specs.find((s) => s.name === "wpe")!;
    expect(Array.from(got)).toEqual(Array.from(params.subarray(spec.offset, spec.offset + spec.size)));
  });

  test("odd sizes stay contiguous (the spec forbids holes) and still round-trip", () => {
    const odd: Architecture = { ...looposArch, d_model: 5, num_heads: 1, d_ff: 7, vocab_size: 3 };
    const path = join(tmp.dir, "odd.bin");
    const params = paramsFor(odd, 11);
    writeCheckpoint(path, { arch: odd, tokenizer: null, training: null, params });
    const { json, data } = parseSafetensors(new Uint8Array(readFileSync(path)));
    const offsets = Object.entries(json).filter(([k]) => k !== "__metadata__").map(([, e]) => (e as { data_offsets: number[] }).data_offsets);
    offsets.forEach(([b], i) => expect(b).toBe(i === 0 ? 0 : offsets[i - 1]![1]));
    expect(offsets[offsets.length - 1]![1]).toBe(data.byteLength);
    const ck = readCheckpoint(path);
    expect(bitsEqual(ck.params, params)).toBe(true);
  });
});

describe("weights-only checkpoints", () => {
  test("no tokenizer, no training state, no moments", () => {
    const path = join(tmp.dir, "weights-only.bin");
    const params = paramsFor(looposArch, 21);
    writeCheckpoint(path, { arch: looposArch, tokenizer: null, training: null, params });
    const ck = readCheckpoint(path);
    expect(ck.adam).toBeNull();
    expect(ck.hasAdam).toBe(false);
    expect(ck.tokenizer).toBeNull();
    expect(ck.training).toBeNull();
    expect(bitsEqual(ck.params, params)).toBe(true);
    expect(readFileSync(path).byteLength).toBeLessThan(4 * params.length + 4096);
  });

  test("writing invalid metadata is refused as a bug, not written", () => {
    const bad = trainingState();
    bad.plan.peak_lr = Number.NaN;
    const path = join(tmp.dir, "never.bin");
    expect(() => writeCheckpoint(path, { arch: tinyArch, tokenizer, training: bad, params: paramsFor(tinyArch) })).toThrow(/peak_lr/);
    expect(() => readFileSync(path)).toThrow();
  });

  test("a params buffer of the wrong length is refused", () => {
    expect(() => writeCheckpoint(join(tmp.dir, "x.bin"), { arch: tinyArch, tokenizer, training: null, params: new Float32Array(3) })).toThrow(/params has 3/);
  });
});
