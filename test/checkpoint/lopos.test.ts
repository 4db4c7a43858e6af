import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readCheckpoint, readCheckpointHeader, writeLopos } from "../../src/checkpoint/index.ts";
import { UserError } from "../../src/base/errors.ts";
import { type Architecture, tensorSpecs, viewsOf } from "../../src/model/layout.ts";
import { filled, paramsFor, looposArch, tempDir, tinyArch } from "./helpers.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);

/** A LoopOS-side model: matrices in LoopOS's own x·W layout, named as in its format description. */
interface LoopOSModel {
  token_embedding: Float32Array; // V×d
  position_embedding: Float32Array; // P×d
  layers: { W_qkv: Float32Array; W_o: Float32Array; W1: Float32Array; b1: Float32Array; W2: Float32Array; b2: Float32Array; n1g: Float32Array; n1b: Float32Array; n2g: Float32Array; n2b: Float32Array }[];
  fg: Float32Array;
  fb: Float32Array;
  output_projection: Float32Array; // d×V
}

function looposModel(a: Architecture): LoopOSModel {
  const { d_model: d, d_ff: f, vocab_size: V, max_seq_len: P } = a;
  let seed = 100;
  const r = (k: number) => filled(k, seed++);
  return {
    token_embedding: r(V * d),
    position_embedding: r(P * d),
    layers: Array.from({ length: a.num_layers }, () => ({
      W_qkv: r(d * 3 * d), W_o: r(d * d), W1: r(d * f), b1: r(f), W2: r(f * d), b2: r(d), n1g: r(d), n1b: r(d), n2g: r(d), n2b: r(d),
    })),
    fg: r(d), fb: r(d), output_projection: r(d * V),
  };
}

/** The LOPOS v1 bytes, built straight from the format description (independent of the writer). */
function looposFile(a: Architecture, m: LoopOSModel): Uint8Array {
  const parts: Uint8Array[] = [];
  const head = new DataView(new ArrayBuffer(33));
  "LOPOS".split("").forEach((ch, i) => head.setUint8(i, ch.charCodeAt(0)));
  head.setUint32(5, 1, true);
  [a.d_model, a.num_heads, a.num_layers, a.d_ff, a.vocab_size, a.max_seq_len].forEach((v, i) => head.setInt32(9 + 4 * i, v, true));
  parts.push(new Uint8Array(head.buffer));
  const mat = (rows: number, cols: number, data: Float32Array) => {
    expect(data.length).toBe(rows * cols);
    const dims = new DataView(new ArrayBuffer(8));
    dims.setUint32(0, rows, true);
    dims.setUint32(4, cols, true);
    parts.push(new Uint8Array(dims.buffer), new Uint8Array(data.slice().buffer));
  };
  const { d_model: d, d_ff: f, vocab_size: V, max_seq_len: P } = a;
  mat(V, d, m.token_embedding);
  mat(P, d, m.position_embedding);
  for (const L of m.layers) {
    mat(d, 3 * d, L.W_qkv); mat(d, d, L.W_o); mat(d, f, L.W1); mat(1, f, L.b1); mat(f, d, L.W2); mat(1, d, L.b2);
    mat(1, d, L.n1g); mat(1, d, L.n1b); mat(1, d, L.n2g); mat(1, d, L.n2b);
  }
  mat(1, d, m.fg); mat(1, d, m.fb);
  mat(d, V, m.output_projection);
  return Buffer.concat(parts);
}

/** y = x·W for LoopOS's [in, out] W. */
function xW(x: Float32Array, W: Float32Array, inDim: number, outDim: number): number[] {
  return Array.from({ length: outDim }, (_, j) => {
    let s = 0;
    for (let i = 0; i < inDim; i++) s += x[i]! * W[i * outDim + j]!;
    return s;
  });
}

/** y = x·Wᵀ for our nn.Linear [out, in] W. */
function xWt(x: Float32Array, W: Float32Array, inDim: number, outDim: number): number[] {
  return Array.from({ length: outDim }, (_, j) => {
    let s = 0;
    for (let i = 0; i < inDim; i++) s += x[i]! * W[j * inDim + i]!;
    return s;
  });
}

describe("reading LoopOS's LOPOS v1 files", () => {
  const a: Architecture = { ...looposArch, max_seq_len: 512 };
  const m = looposModel(a);
  const path = join(tmp.dir, "loopos.bin");
  writeFileSync(path, looposFile(a, m));

  test("architecture: no attention bias, untied head, the header's values", () => {
    const h = readCheckpointHeader(path);
    expect(h.format).toBe("lopos");
    expect(h.version).toBe(1);
    expect(h.arch).toEqual({ ...looposArch, max_seq_len: 512, tied_embeddings: false, attention_bias: false });
    expect(h.tokenizer).toBeNull();
    expect(h.training).toBeNull();
    expect(h.hasAdam).toBe(false);
    expect(h.checksum).toEqual({ algorithm: "none", value: "", verified: null });
  });

  test("every tensor lands under our name, linear weights transposed to [out, in]", () => {
    const ck = readCheckpoint(path);
    expect(ck.adam).toBeNull();
    const t = viewsOf(ck.params, ck.arch);
    const { d_model: d, d_ff: f, vocab_size: V } = a;
    expect(Array.from(t.get("wte")!)).toEqual(Array.from(m.token_embedding));
    expect(Array.from(t.get("wpe")!)).toEqual(Array.from(m.position_embedding));
    const x = filled(Math.max(d, f), 999);
    const xd = x.subarray(0, d);
    const close = (p: number[], q: number[]) => p.forEach((v, i) => expect(v).toBeCloseTo(q[i]!, 4));
    m.layers.forEach((L, l) => {
      const h = `h.${l}`;
      // Same function of x on both sides: the transposes are right, and Q|K|V stay in order.
      close(xWt(xd, t.get(`${h}.attn.qkv.weight`)!, d, 3 * d), xW(xd, L.W_qkv, d, 3 * d));
      close(xWt(xd, t.get(`${h}.attn.proj.weight`)!, d, d), xW(xd, L.W_o, d, d));
      close(xWt(xd, t.get(`${h}.mlp.fc.weight`)!, d, f), xW(xd, L.W1, d, f));
      close(xWt(x.subarray(0, f), t.get(`${h}.mlp.proj.weight`)!, f, d), xW(x.subarray(0, f), L.W2, f, d));
      // And element for element: ours[j][i] = W[i][j].
      expect(t.get(`${h}.attn.qkv.weight`)![(2 * d + 1) * d + 3]).toBe(L.W_qkv[3 * 3 * d + 2 * d + 1]!);
      expect(Array.from(t.get(`${h}.mlp.fc.bias`)!)).toEqual(Array.from(L.b1));
      expect(Array.from(t.get(`${h}.mlp.proj.bias`)!)).toEqual(Array.from(L.b2));
      expect(Array.from(t.get(`${h}.ln_1.weight`)!)).toEqual(Array.from(L.n1g));
      expect(Array.from(t.get(`${h}.ln_1.bias`)!)).toEqual(Array.from(L.n1b));
      expect(Array.from(t.get(`${h}.ln_2.weight`)!)).toEqual(Array.from(L.n2g));
      expect(Array.from(t.get(`${h}.ln_2.bias`)!)).toEqual(Array.from(L.n2b));
    });
    expect(Array.from(t.get("ln_f.weight")!)).toEqual(Array.from(m.fg));
    expect(Array.from(t.get("ln_f.bias")!)).toEqual(Array.from(m.fb));
    close(xWt(xd, t.get("lm_head.weight")!, d, V), xW(xd, m.output_projection, d, V));
  });

  test("our writer produces the same bytes as the format description", () => {
    const ck = readCheckpoint(path);
    const out = join(tmp.dir, "rewritten.bin");
    writeLopos(out, ck.arch, ck.params);
    expect(Buffer.compare(readFileSync(out), readFileSync(path))).toBe(0);
    // And from named tensors.
    const out2 = join(tmp.dir, "rewritten2.bin");
    writeLopos(out2, ck.arch, viewsOf(ck.params, ck.arch));
    expect(Buffer.compare(readFileSync(out2), readFileSync(path))).toBe(0);
  });
});

describe("writing LOPOS v1", () => {
  test("write → read round trip is exact", () => {
    const params = paramsFor(looposArch, 77);
    const path = join(tmp.dir, "rt.bin");
    writeLopos(path, looposArch, params);
    const ck = readCheckpoint(path);
    expect(ck.arch).toEqual(looposArch);
    expect(Buffer.compare(Buffer.from(ck.params.buffer), Buffer.from(params.buffer))).toBe(0);
  });

  test("a tied model is written with wteᵀ as its output projection", () => {
    const arch: Architecture = { ...tinyArch, attention_bias: false };
    const params = paramsFor(arch, 5);
    const path = join(tmp.dir, "tied.bin");
    writeLopos(path, arch, params);
    const ck = readCheckpoint(path);
    expect(ck.arch).toEqual({ ...arch, tied_embeddings: false });
    const t = viewsOf(ck.params, ck.arch);
    expect(Array.from(t.get("lm_head.weight")!)).toEqual(Array.from(t.get("wte")!));
  });

  test("attention biases cannot be stored", () => {
    expect(() => writeLopos(join(tmp.dir, "b.bin"), tinyArch, paramsFor(tinyArch))).toThrow(UserError);
    expect(() => writeLopos(join(tmp.dir, "b.bin"), tinyArch, paramsFor(tinyArch))).toThrow(/no attention biases/);
  });
});

describe("damaged LOPOS files", () => {
  const params = paramsFor(looposArch, 31);
  const good = join(tmp.dir, "lopos-good.bin");
  writeLopos(good, looposArch, params);
  const bytes = new Uint8Array(readFileSync(good));
  const path = join(tmp.dir, "lopos-bad.bin");

  function expectUserError(fn: () => unknown, pattern: RegExp): void {
    let caught: unknown;
    try {
      fn();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UserError);
    expect((caught as Error).message).toContain(path);
    expect((caught as Error).message).toMatch(pattern);
  }

  test("truncated at many points", () => {
    for (let cut = 5; cut < bytes.length; cut += 37) {
      writeFileSync(path, bytes.subarray(0, cut));
      expectUserError(() => readCheckpoint(path), cut < 33 ? /shorter than the 33-byte header/ : /needs exactly \d+ bytes but the file has \d+ \(the file is truncated/);
      expectUserError(() => readCheckpointHeader(path), /^Cannot read LoopOS checkpoint .*\(LOPOS\): /);
    }
  });

  test("extra bytes, bad version, impossible header values", () => {
    writeFileSync(path, Buffer.concat([bytes, new Uint8Array(4)]));
    expectUserError(() => readCheckpoint(path), /extra bytes/);
    const edit = (at: number, value: number) => {
      const b = bytes.slice();
      new DataView(b.buffer).setInt32(at, value, true);
      writeFileSync(path, b);
    };
    edit(5, 2);
    expectUserError(() => readCheckpoint(path), /format version 2 is not supported/);
    edit(9, -6);
    expectUserError(() => readCheckpoint(path), /d_model is -6, it must be positive/);
    edit(13, 4); // num_heads 4 does not divide d_model 6
    expectUserError(() => readCheckpoint(path), /d_model must be a multiple of num_heads/);
    edit(17, 0x7fffffff); // num_layers beyond any real model
    expectUserError(() => readCheckpoint(path), /architecture is impossible: num_layers/);
    edit(17, 1000); // plausible, but the implied length is far larger than the file
    expectUserError(() => readCheckpoint(path), /needs exactly \d+ bytes but the file has/);
    edit(25, 1_000_000); // vocab_size
    expectUserError(() => readCheckpoint(path), /needs exactly/);
  });

  test("a matrix whose rows/cols disagree with the architecture (same byte count)", () => {
    const { d_model: d, vocab_size: V, max_seq_len: P } = looposArch;
    // layer 0 W_qkv header sits right after the two embeddings.
    const at = 33 + 8 + 4 * V * d + 8 + 4 * P * d;
    const b = bytes.slice();
    const dv = new DataView(b.buffer);
    expect([dv.getUint32(at, true), dv.getUint32(at + 4, true)]).toEqual([d, 3 * d]);
    dv.setUint32(at, 3 * d, true);
    dv.setUint32(at + 4, d, true);
    writeFileSync(path, b);
    expectUserError(() => readCheckpoint(path), new RegExp(`layer 0 W_qkv at byte ${at} is 18×6 but the header's architecture needs 6×18`));
  });

  test("tensor specs and the LOPOS list agree on every size", () => {
    // Guards the converter against a layout change: the reader fills exactly parameterCount floats.
    const names = new Set(tensorSpecs(looposArch).map((s) => s.name));
    const ck = readCheckpoint(good);
    expect(new Set(viewsOf(ck.params, ck.arch).keys())).toEqual(names);
  });
});
