/**
 * Native safety on the TypeScript side: every wrapper over a C entry point that takes buffers checks
 * the sizes it is given against the buffers' lengths and throws before C is reached. Each C symbol
 * is wrapped in a recorder for these tests: a call with any one buffer one element short must throw
 * a RangeError and record no call; the same call with full buffers must reach C. A symbol that takes
 * buffers and has no case here fails the last test, so a new entry point cannot skip its checks.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as N from "../../src/native.ts";
import { nativeSymbols } from "../../src/native.ts";
import { NativeEncoder, NativeTrainer, nativePretokenize, safeCut } from "../../src/tokenizer/native_bpe.ts";

const S = nativeSymbols as unknown as Record<string, (...args: unknown[]) => unknown>;
const originals = new Map<string, (...args: unknown[]) => unknown>();
const calls: string[] = [];

beforeAll(() => {
  for (const name of Object.keys(S)) {
    const original = S[name]!;
    originals.set(name, original);
    S[name] = (...args: unknown[]) => {
      calls.push(name);
      return original(...args);
    };
  }
});
afterAll(() => {
  for (const [name, original] of originals) S[name] = original;
});

const f = (n: number) => new Float32Array(n).map((_, i) => ((i * 7) % 11) / 11 - 0.5);
const ids = (n: number, below: number) => Int32Array.from({ length: n }, (_, i) => i % below);

interface Case {
  symbol: string;
  /** Fresh, correctly sized arguments. */
  args: () => unknown[];
  call: (...args: unknown[]) => unknown;
  /** Positions of the buffers whose length the wrapper must check. */
  buffers: number[];
}

const [M, K, Nn] = [2, 3, 4];
const [B, T, C, H, V, maxT] = [1, 2, 4, 2, 5, 3];
const hyper = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
const call = (fn: (...a: never[]) => unknown) => (...a: unknown[]) => fn(...(a as never[]));

/** The attention backward's arguments, with out and lse from the matching forward. */
const attentionBackwardArgs = (forward: typeof N.attentionForward) => () => {
  const qkv = f(B * T * 3 * C), out = f(B * T * C), lse = f(B * H * T);
  forward(out, lse, qkv, B, T, C, H);
  return [f(B * T * 3 * C), f(B * T * C), qkv, out, lse, B, T, C, H];
};
const KERNELS: Case[] = [
  { symbol: "tv_matmul_forward", call: call(N.matmulForward), args: () => [f(M * Nn), f(M * K), f(Nn * K), f(Nn), M, K, Nn], buffers: [0, 1, 2, 3] },
  { symbol: "tv_pack_panels", call: call(N.packPanels), args: () => [f(16 * K), f(Nn * K), Nn, K], buffers: [0, 1] },
  { symbol: "tv_matmul_forward_panels", call: call(N.matmulForwardPanels), args: () => [f(M * Nn), f(M * K), f(16 * K), f(Nn), M, K, Nn], buffers: [0, 1, 2, 3] },
  { symbol: "tv_matmul_backward", call: call(N.matmulBackward), args: () => [f(M * K), f(Nn * K), f(Nn), f(M * Nn), f(M * K), f(Nn * K), M, K, Nn], buffers: [0, 1, 2, 3, 4, 5] },
  { symbol: "tv_matmul_forward_bf16", call: call(N.matmulForwardBf16), args: () => [f(M * Nn), f(M * K), f(Nn * K), f(Nn), M, K, Nn], buffers: [0, 1, 2, 3] },
  { symbol: "tv_matmul_backward_bf16", call: call(N.matmulBackwardBf16), args: () => [f(M * K), f(Nn * K), f(Nn), f(M * Nn), f(M * K), f(Nn * K), M, K, Nn], buffers: [0, 1, 2, 3, 4, 5] },
  { symbol: "tv_layernorm_forward", call: call(N.layernormForward), args: () => [f(M * C), f(M), f(M), f(M * C), f(C), f(C), M, C], buffers: [0, 1, 2, 3, 4, 5] },
  {
    symbol: "tv_layernorm_backward", call: call(N.layernormBackward),
    args: () => [f(M * C), f(C), f(C), f(M * C), f(M * C), f(C), f(M), f(M).map(() => 1), M, C], buffers: [0, 1, 2, 3, 4, 5, 6, 7],
  },
  {
    symbol: "tv_residual_layernorm_forward", call: call(N.residualLayernormForward),
    args: () => [f(M * C), f(M * C), f(M), f(M), f(M * C), f(M * C), f(C), f(C), M, C], buffers: [0, 1, 2, 3, 4, 5, 6, 7],
  },
  { symbol: "tv_gelu_forward", call: call(N.geluForward), args: () => [f(5), f(5), 5], buffers: [0, 1] },
  { symbol: "tv_gelu_backward", call: call(N.geluBackward), args: () => [f(5), f(5), f(5), 5], buffers: [0, 1, 2] },
  { symbol: "tv_rmsnorm_forward", call: call(N.rmsnormForward), args: () => [f(M * C), f(M), f(M * C), f(C), M, C, 1e-5], buffers: [0, 1, 2, 3] },
  {
    symbol: "tv_rmsnorm_backward", call: call(N.rmsnormBackward),
    args: () => [f(M * C), f(C), f(M * C), f(M * C), f(C), f(M).map(() => 1), M, C], buffers: [0, 1, 2, 3, 4, 5],
  },
  { symbol: "tv_rope_forward", call: call(N.ropeForward), args: () => [f(B * T * 3 * C), B, T, C, H, 3, 10000], buffers: [0] },
  { symbol: "tv_rope_backward", call: call(N.ropeBackward), args: () => [f(B * T * 3 * C), B, T, C, H, 3, 10000], buffers: [0] },
  { symbol: "tv_rope_table", call: call(N.ropeTable), args: () => [f(maxT * (C / H / 2)), f(maxT * (C / H / 2)), maxT, C / H, 10000], buffers: [0, 1] },
  { symbol: "tv_rope_forward_rows", call: call(N.ropeForwardRows), args: () => [f(3 * C + 2 * C), f(maxT * (C / H / 2)), f(maxT * (C / H / 2)), Int32Array.of(2, 0), maxT, 2, 3 * C, C, H], buffers: [0, 1, 2, 3] },
  { symbol: "tv_swiglu_forward", call: call(N.swigluForward), args: () => [f(M * Nn), f(M * 2 * Nn), M, Nn], buffers: [0, 1] },
  { symbol: "tv_swiglu_backward", call: call(N.swigluBackward), args: () => [f(M * 2 * Nn), f(M * 2 * Nn), f(M * Nn), M, Nn], buffers: [0, 1, 2] },
  { symbol: "tv_residual_forward", call: call(N.residualForward), args: () => [f(5), f(5), f(5), 5], buffers: [0, 1, 2] },
  { symbol: "tv_encoder_forward", call: call(N.encoderForward), args: () => [f(B * T * C), ids(B * T, V), f(V * C), f(maxT * C), B, T, C, V, maxT], buffers: [0, 1, 2, 3] },
  { symbol: "tv_encoder_backward", call: call(N.encoderBackward), args: () => [f(V * C), f(maxT * C), f(B * T * C), ids(B * T, V), B, T, C, V, maxT], buffers: [0, 1, 2, 3] },
  { symbol: "tv_attention_forward", call: call(N.attentionForward), args: () => [f(B * T * C), f(B * H * T), f(B * T * 3 * C), B, T, C, H], buffers: [0, 1, 2] },
  { symbol: "tv_attention_forward_bf16", call: call(N.attentionForwardBf16), args: () => [f(B * T * C), f(B * H * T), f(B * T * 3 * C), B, T, C, H], buffers: [0, 1, 2] },
  { symbol: "tv_attention_backward_bf16", call: call(N.attentionBackwardBf16), args: attentionBackwardArgs(N.attentionForwardBf16), buffers: [0, 1, 2, 3, 4] },
  { symbol: "tv_attention_backward", call: call(N.attentionBackward), args: attentionBackwardArgs(N.attentionForward), buffers: [0, 1, 2, 3, 4] },
  { symbol: "tv_attention_decode", call: call(N.attentionDecode), args: () => [f(C), f(C), f(T * C), f(T * C), T, C, H], buffers: [0, 1, 2, 3] },
  { symbol: "tv_attention_decode_rows", call: call(N.attentionDecodeRows), args: () => [f(2 * C), f(4 * C), [f(C), f(T * C)], [f(C), f(T * C)], Int32Array.of(1, T), 2, C, H, 3 * C], buffers: [0, 1, 2, 3, 4] },
  { symbol: "tv_crossentropy_forward_backward", call: call(N.crossEntropyForwardBackward), args: () => [f(M), f(M * V), f(M * V), ids(M, V), M, V, 1], buffers: [0, 1, 2, 3] },
  { symbol: "tv_newton_schulz", call: call(N.newtonSchulz), args: () => [[f(12), f(35)], Int32Array.of(4, 5), Int32Array.of(3, 7), 5, Float32Array.of(3.4445, -4.775, 2.0315), false], buffers: [0, 1, 2, 4] },
  { symbol: "tv_axpby", call: call(N.axpby), args: () => [f(5), f(5), f(5), 5, 0.5, -2], buffers: [0, 1, 2] },
  { symbol: "tv_argmax", call: call(N.argmax), args: () => [f(9), 9], buffers: [0] },
  { symbol: "tv_top_k_candidates", call: call(N.topKCandidates), args: () => [ids(9, 9), f(3), f(9), 9, 3, 1e-5], buffers: [0, 1, 2] },
  { symbol: "tv_adamw_step", call: (...a) => N.adamwStep(...(a as Parameters<typeof N.adamwStep>)), args: () => [f(6), f(6), f(6).map(Math.abs), f(6), hyper, 1], buffers: [1, 2, 3] },
];

/** A byte-level vocabulary: 256 bytes, one special, one merge ("ab"). */
function vocabArrays(): { kinds: Uint8Array; left: Int32Array; right: Int32Array; bytes: Uint8Array; offsets: BigInt64Array } {
  const n = 258;
  const kinds = new Uint8Array(n), left = new Int32Array(n).fill(-1), right = new Int32Array(n).fill(-1);
  const parts: number[] = [];
  const offsets = new BigInt64Array(n + 1);
  for (let b = 0; b < 256; b++) parts.push(b);
  kinds[256] = 2;
  parts.push(...new TextEncoder().encode("<s>"));
  kinds[257] = 1;
  left[257] = 97;
  right[257] = 98;
  parts.push(97, 98);
  for (let i = 0; i < 256; i++) offsets[i + 1] = BigInt(i + 1);
  offsets[257] = 259n;
  offsets[258] = 261n;
  return { kinds, left, right, bytes: Uint8Array.from(parts), offsets };
}

describe("every kernel wrapper checks buffer lengths before C", () => {
  for (const c of KERNELS) {
    test(`${c.symbol}: each buffer one element short is refused, full buffers reach C`, () => {
      for (const i of c.buffers) {
        const args = c.args();
        const buf = args[i] as Float32Array | Int32Array | Float32Array[];
        // A list of buffers (one per row): its last buffer one element short.
        args[i] = Array.isArray(buf) ? [...buf.slice(0, -1), buf.at(-1)!.subarray(0, buf.at(-1)!.length - 1)] : buf.subarray(0, buf.length - 1);
        calls.length = 0;
        expect(() => c.call(...args)).toThrow(RangeError);
        expect({ buffer: i, reachedC: calls.includes(c.symbol) }).toEqual({ buffer: i, reachedC: false });
      }
      calls.length = 0;
      c.call(...c.args());
      expect(calls).toContain(c.symbol);
    });
  }

  test("sizes that are not positive integers are refused before C", () => {
    calls.length = 0;
    expect(() => N.matmulForward(f(8), f(8), f(8), null, 2, 0, 2)).toThrow(RangeError);
    expect(() => N.geluForward(f(8), f(8), 2.5)).toThrow(RangeError);
    expect(() => N.attentionForward(f(8), f(8), f(24), 1, 2, 4, -2)).toThrow(RangeError);
    expect(() => N.adamwStep(f(4), f(4), f(4), f(4), hyper, 0)).toThrow(RangeError);
    expect(() => N.ropeForward(f(24), 1, 2, 4, 2, -1, 10000)).toThrow(RangeError);
    expect(() => N.ropeBackward(f(24), 1, 2, 4, 2, 0.5, 10000)).toThrow(RangeError);
    expect(() => N.swigluForward(f(8), f(16), 2, 0)).toThrow(RangeError);
    expect(() => N.setThreads(0)).toThrow(RangeError);
    expect(calls.filter((s) => s !== "tv_threads_set")).toEqual([]);
  });

  test("sumSquares takes its size from the buffer itself", () => {
    calls.length = 0;
    expect(N.sumSquares(Float32Array.of(3, 4))).toBe(25);
    expect(calls).toEqual(["tv_sum_squares"]);
  });
});

describe("the tokenizer's native wrappers check sizes before C", () => {
  test("NativeEncoder: arrays of different lengths, offsets past the bytes, a short output buffer", () => {
    const good = vocabArrays();
    calls.length = 0;
    for (const key of ["left", "right", "offsets"] as const) {
      const v = vocabArrays();
      (v as Record<string, unknown>)[key] = v[key].subarray(0, v[key].length - 1);
      expect(() => new NativeEncoder(v)).toThrow(RangeError);
    }
    expect(() => new NativeEncoder({ ...vocabArrays(), bytes: good.bytes.subarray(0, good.bytes.length - 1) })).toThrow(RangeError);
    expect(calls.filter((s) => s === "tv_bpe_encoder_new")).toEqual([]);

    const enc = new NativeEncoder(good);
    expect(calls).toContain("tv_bpe_encoder_new");
    const text = new TextEncoder().encode("abc ab");
    calls.length = 0;
    expect(() => enc.encode(text, new Uint32Array(text.length - 1))).toThrow(RangeError);
    expect(calls).toEqual([]);
    const idsOut = enc.encode(text, new Uint32Array(text.length));
    expect(calls).toContain("tv_bpe_encode");
    expect(new TextDecoder().decode(enc.decodeBytes(Uint32Array.from(idsOut)))).toBe("abc ab");
    expect(calls).toContain("tv_bpe_decode");
    // Ids outside the vocabulary are C's to refuse (it knows the size): an error, not a read past the end.
    expect(() => enc.decodeBytes(Uint32Array.of(0, 258))).toThrow(/out of range/);
  });

  test("NativeTrainer.merge: a count that is not a positive integer is refused before C", () => {
    const t = new NativeTrainer();
    try {
      t.count(new TextEncoder().encode("aa aa aa bb bb"));
      t.prepare(257);
      calls.length = 0;
      for (const max of [0, -1, 1.5, 2 ** 31, Number.NaN]) expect(() => t.merge(max, 2)).toThrow(RangeError);
      expect(() => t.merge(1, 0)).toThrow(RangeError);
      expect(calls).toEqual([]);
      expect(t.merge(1, 2).length).toBe(2);
      expect(calls).toContain("tv_bpe_trainer_merge");
    } finally {
      t.free();
    }
  });

  test("pretokenize and safe-cut size their calls from the text", () => {
    calls.length = 0;
    expect(nativePretokenize(new TextEncoder().encode("hello world"))).toEqual([5, 11]);
    expect(safeCut(new TextEncoder().encode("hello world"))).toBeGreaterThan(0);
    expect(calls).toContain("tv_bpe_pretokenize");
    expect(calls).toContain("tv_bpe_safe_cut");
  });
});

test("every C entry point that takes buffers has a case here", () => {
  const covered = new Set([
    ...KERNELS.map((c) => c.symbol),
    "tv_sum_squares", "tv_bpe_encoder_new", "tv_bpe_encode", "tv_bpe_decode", "tv_bpe_trainer_merge",
    "tv_bpe_trainer_count", "tv_bpe_pretokenize", "tv_bpe_safe_cut",
  ]);
  // Entry points without caller-sized buffers: scalars, handles, or tables the wrapper builds itself.
  const noBuffers = new Set([
    "tv_isa_best", "tv_isa_current", "tv_isa_set", "tv_isa_name", "tv_cpu_features", "tv_has_bf16", "tv_threads_set", "tv_threads_get",
    "tv_bpe_set_classes", "tv_bpe_trainer_new", "tv_bpe_trainer_stat", "tv_bpe_trainer_prepare", "tv_bpe_trainer_free", "tv_bpe_encoder_free",
  ]);
  const missing = [...originals.keys()].filter((s) => !covered.has(s) && !noBuffers.has(s));
  expect(missing).toEqual([]);
});
