// tv_layernorm_forward / tv_layernorm_backward on every ISA level: against the float64 reference,
// against finite differences of the reference forward, the += and NULL-skipping contract,
// bit-identical results for 1 and 2 threads, and refused sizes.
import { describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import * as ref from "./reference.ts";
import { RandomData } from "./random_data.ts";

const SHAPES: [number, number][] = [[1, 1], [2, 3], [3, 17], [5, 31], [7, 64], [4, 97], [64, 300]];

function inputs(M: number, C: number, seed: number) {
  const r = new RandomData(seed);
  // An offset in the input checks that the variance does not suffer from cancellation.
  const inp = Float32Array.from(r.floats(M * C, -2, 2), (x) => x + 3);
  return { r, inp, weight: r.floats(C, 0.5, 1.5), bias: r.floats(C, -0.5, 0.5), dout: r.floats(M * C) };
}

describe("layernorm", () => {
  test("forward and backward match the float64 reference on every ISA level", () => {
    ref.forEachIsa((isa) => {
      for (const [M, C] of SHAPES) {
        const { r, inp, weight, bias, dout } = inputs(M, C, M * 1000 + C);
        const out = new Float32Array(M * C), mean = new Float32Array(M), rstd = new Float32Array(M);
        native.layernormForward(out, mean, rstd, inp, weight, bias, M, C);
        const want = ref.layernormForward(inp, weight, bias, M, C);
        const label = `${isa} M=${M} C=${C}`;
        ref.within(ref.worst(out, want.out, 1e-5, 1e-4), `${label} out`);
        ref.within(ref.worst(mean, want.mean, 1e-6, 1e-5), `${label} mean`);
        ref.within(ref.worst(rstd, want.rstd, 1e-6, 1e-4), `${label} rstd`);

        // Backward accumulates on top of whatever the gradients hold.
        const base = { dinp: r.floats(M * C), dweight: r.floats(C), dbias: r.floats(C) };
        const dinp = base.dinp.slice(), dweight = base.dweight.slice(), dbias = base.dbias.slice();
        native.layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, M, C);
        const g = ref.layernormBackward(dout, inp, weight, M, C);
        const scale = 1e-5 * (1 + ref.maxAbs(g.dinp));
        ref.within(ref.worst(dinp, g.dinp, scale, 1e-4, base.dinp), `${label} dinp`);
        ref.within(ref.worst(dweight, g.dweight, 1e-5 * Math.sqrt(M) * (1 + ref.maxAbs(g.dweight)), 1e-4, base.dweight), `${label} dweight`);
        ref.within(ref.worst(dbias, g.dbias, 1e-5 * Math.sqrt(M) * (1 + ref.maxAbs(g.dbias)), 1e-4, base.dbias), `${label} dbias`);
      }
    });
  });

  test("backward matches finite differences of the reference forward (loss = Σ out·R)", () => {
    ref.forEachIsa((isa) => {
      for (const [M, C] of [[1, 3], [3, 17], [4, 33]] as const) {
        const label = `${isa} M=${M} C=${C}`;
        const { r, inp, weight, bias } = inputs(M, C, 7 * C + M);
        const R = r.floats(M * C); // dout = R
        const out = new Float32Array(M * C), mean = new Float32Array(M), rstd = new Float32Array(M);
        native.layernormForward(out, mean, rstd, inp, weight, bias, M, C);
        const dinp = new Float32Array(M * C), dweight = new Float32Array(C), dbias = new Float32Array(C);
        native.layernormBackward(dinp, dweight, dbias, R, inp, weight, mean, rstd, M, C);
        const rand = () => r.next();
        const fdInp = ref.finiteDiff((x) => ref.layernormForward(x, weight, bias, M, C).out, inp, R, ref.sampleIndices(M * C, 40, rand));
        const fdW = ref.finiteDiff((w) => ref.layernormForward(inp, w, bias, M, C).out, weight, R, ref.sampleIndices(C, 20, rand));
        const fdB = ref.finiteDiff((b) => ref.layernormForward(inp, weight, b, M, C).out, bias, R, ref.sampleIndices(C, 20, rand));
        ref.within(ref.worstFd(dinp, fdInp, 1e-4, 1e-3), `${label} dinp vs finite differences`);
        ref.within(ref.worstFd(dweight, fdW, 1e-4, 1e-3), `${label} dweight vs finite differences`);
        ref.within(ref.worstFd(dbias, fdB, 1e-4, 1e-3), `${label} dbias vs finite differences`);
      }
    });
  });

  test("NULL dweight/dbias are skipped and dinp is unchanged by skipping them", () => {
    ref.forEachIsa(() => {
      const [M, C] = [9, 45];
      const { inp, weight, bias, dout } = inputs(M, C, 99);
      const out = new Float32Array(M * C), mean = new Float32Array(M), rstd = new Float32Array(M);
      native.layernormForward(out, mean, rstd, inp, weight, bias, M, C);
      const full = new Float32Array(M * C), dw = new Float32Array(C), db = new Float32Array(C);
      native.layernormBackward(full, dw, db, dout, inp, weight, mean, rstd, M, C);
      const only = new Float32Array(M * C), dw2 = new Float32Array(C);
      native.layernormBackward(only, null, null, dout, inp, weight, mean, rstd, M, C);
      expect(ref.sameBytes(full, only)).toBe(true);
      native.layernormBackward(only.fill(0), dw2, null, dout, inp, weight, mean, rstd, M, C);
      expect(ref.sameBytes(dw, dw2)).toBe(true);
    });
  });

  test("1 and 2 threads give identical bytes", () => {
    ref.forEachIsa(() => {
      const [M, C] = [131, 389];
      const { inp, weight, bias, dout } = inputs(M, C, 5);
      const run = () => {
        const out = new Float32Array(M * C), mean = new Float32Array(M), rstd = new Float32Array(M);
        native.layernormForward(out, mean, rstd, inp, weight, bias, M, C);
        const dinp = new Float32Array(M * C).fill(0.25), dw = new Float32Array(C).fill(1), db = new Float32Array(C).fill(-1);
        native.layernormBackward(dinp, dw, db, dout, inp, weight, mean, rstd, M, C);
        return [out, mean, rstd, dinp, dw, db];
      };
      const a = ref.withThreads(1, run), b = ref.withThreads(2, run);
      for (let i = 0; i < a.length; i++) expect(ref.sameBytes(a[i]!, b[i]!)).toBe(true);
    });
  });

  test("backward row chunks against the reference, and the same bytes on 1 and 2 threads", () => {
    // The column sums go through fixed chunks of rows: several here, and one pass above C = 65520.
    for (const [M, C] of [[600, 389], [3, 70000]] as const) {
      const { inp, weight, bias, dout } = inputs(M, C, M + C);
      const run = () => {
        const out = new Float32Array(M * C), mean = new Float32Array(M), rstd = new Float32Array(M);
        native.layernormForward(out, mean, rstd, inp, weight, bias, M, C);
        const dinp = new Float32Array(M * C).fill(0.5), dw = new Float32Array(C).fill(1), db = new Float32Array(C).fill(-1);
        native.layernormBackward(dinp, dw, db, dout, inp, weight, mean, rstd, M, C);
        return [dinp, dw, db];
      };
      const [dinp, dw, db] = ref.withThreads(2, run);
      const g = ref.layernormBackward(dout, inp, weight, M, C);
      const label = `M=${M} C=${C}`;
      const base = (v: number, n: number) => new Float32Array(n).fill(v);
      ref.within(ref.worst(dinp!, g.dinp, 1e-5 * (1 + ref.maxAbs(g.dinp)), 1e-4, base(0.5, M * C)), `${label} dinp`);
      ref.within(ref.worst(dw!, g.dweight, 1e-5 * Math.sqrt(M) * (1 + ref.maxAbs(g.dweight)), 1e-4, base(1, C)), `${label} dweight`);
      ref.within(ref.worst(db!, g.dbias, 1e-5 * Math.sqrt(M) * (1 + ref.maxAbs(g.dbias)), 1e-4, base(-1, C)), `${label} dbias`);
      const one = ref.withThreads(1, run);
      for (let i = 0; i < one.length; i++) expect(ref.sameBytes(one[i]!, [dinp, dw, db][i]!), label).toBe(true);
    }
  });

  test("backward dbias is exactly the documented chunked sum: serial, parallel and widened chunks, any thread count", () => {
    // dbias has no products, so its fp32 sum replays exactly: chunks of clamp(⌈M/16⌉, 16, 128) rows,
    // more when 2 partial rows of C (rounded up to 16) per chunk would overflow 2¹⁷ floats; each chunk
    // sums its rows from 0 in order; the partials are added to dbias in chunk order. This catches a
    // chunking, or an order, that differs between the serial and the threaded paths.
    const f = Math.fround;
    const replay = (db0: Float32Array, dout: Float32Array, M: number, C: number): Float32Array => {
      const out = db0.slice();
      const maxChunks = Math.floor((1 << 17) / (2 * Math.ceil(C / 16) * 16));
      let rows = Math.min(128, Math.max(16, Math.ceil(M / 16)));
      if (Math.ceil(M / rows) > maxChunks) rows = Math.ceil(M / maxChunks);
      for (let r0 = 0; r0 < M; r0 += rows) {
        const part = new Float32Array(C);
        for (let r = r0; r < Math.min(M, r0 + rows); r++) for (let i = 0; i < C; i++) part[i] = f(part[i]! + dout[r * C + i]!);
        for (let i = 0; i < C; i++) out[i] = f(out[i]! + part[i]!);
      }
      return out;
    };
    ref.forEachIsa((isa) => {
      // serial (M·C below the threading threshold); several chunks; 16-row chunks; widened chunks
      for (const [M, C] of [[100, 16], [600, 389], [40, 700], [300, 30000]] as const) {
        const r = new RandomData(M * 3 + C);
        const inp = r.floats(M * C), dout = r.floats(M * C), w = r.floats(C), mean = r.floats(M), rstd = r.floats(M, 0.5, 2);
        const db0 = r.floats(C), want = replay(db0, dout, M, C);
        for (const n of [1, 2]) {
          const db = db0.slice();
          ref.withThreads(n, () => native.layernormBackward(new Float32Array(M * C), new Float32Array(C), db, dout, inp, w, mean, rstd, M, C));
          expect(ref.sameBytes(db, want), `${isa} M=${M} C=${C} threads=${n}`).toBe(true);
        }
      }
    });
  });

  test("bad sizes and missing buffers are refused", () => {
    const f = new Float32Array(16);
    expect(() => native.layernormForward(f, f, f, f, f, f, 0, 4)).toThrow(RangeError);
    expect(() => native.layernormForward(f, f, f, f, f, f, 2, 9)).toThrow(RangeError);
    const S = native.nativeSymbols;
    expect(S.tv_layernorm_forward(f, f, f, f, f, f, -1, 4)).toBe(-1);
    expect(S.tv_layernorm_forward(f, f, f, f, null, f, 2, 4)).toBe(-2);
    expect(S.tv_layernorm_backward(f, null, null, f, f, f, f, f, 2, 0)).toBe(-1);
    expect(S.tv_layernorm_backward(null, null, null, f, f, f, f, f, 2, 4)).toBe(-2);
  });
});

describe("residual + layernorm forward (fused)", () => {
  test("the same bytes as residual_forward then layernorm_forward, on every ISA level, aliasing included", () => {
    ref.forEachIsa((isa) => {
      for (const [M, C] of [...SHAPES, [300, 256] as [number, number]]) {
        const { r, inp, weight, bias } = inputs(M, C, M * 7 + C);
        const other = r.floats(M * C);
        const resid = new Float32Array(M * C), out = new Float32Array(M * C);
        const mean = new Float32Array(M), rstd = new Float32Array(M);
        native.residualLayernormForward(resid, out, mean, rstd, inp, other, weight, bias, M, C);
        const resid2 = new Float32Array(M * C), out2 = new Float32Array(M * C);
        const mean2 = new Float32Array(M), rstd2 = new Float32Array(M);
        native.residualForward(resid2, inp, other, M * C);
        native.layernormForward(out2, mean2, rstd2, resid2, weight, bias, M, C);
        const label = `${isa} M=${M} C=${C}`;
        expect(ref.sameBytes(resid, resid2), `${label} resid`).toBe(true);
        expect(ref.sameBytes(out, out2), `${label} out`).toBe(true);
        expect(ref.sameBytes(mean, mean2), `${label} mean`).toBe(true);
        expect(ref.sameBytes(rstd, rstd2), `${label} rstd`).toBe(true);
        // Against the float64 reference of layernorm(a + b).
        const sum = Float32Array.from(inp, (x, i) => x + other[i]!);
        ref.within(ref.worst(out, ref.layernormForward(sum, weight, bias, M, C).out, 1e-5, 1e-4), `${label} reference`);
        // resid may be one of the inputs (the residual stream updated in place).
        const a = inp.slice();
        native.residualLayernormForward(a, out, mean, rstd, a, other, weight, bias, M, C);
        expect(ref.sameBytes(a, resid2), `${label} in place`).toBe(true);
      }
    });
  });

  test("1 and 2 threads give identical bytes", () => {
    ref.forEachIsa(() => {
      const M = 333, C = 200;
      const { r, inp, weight, bias } = inputs(M, C, 11);
      const other = r.floats(M * C);
      const go = () => {
        const resid = new Float32Array(M * C), out = new Float32Array(M * C), mean = new Float32Array(M), rstd = new Float32Array(M);
        native.residualLayernormForward(resid, out, mean, rstd, inp, other, weight, bias, M, C);
        return [resid, out, mean, rstd];
      };
      const a = ref.withThreads(1, go), b = ref.withThreads(2, go);
      for (let i = 0; i < a.length; i++) expect(ref.sameBytes(a[i]!, b[i]!)).toBe(true);
    });
  });

  test("refuses missing buffers and bad sizes", () => {
    const f = new Float32Array(8);
    expect(() => native.residualLayernormForward(f, f, f, f, f, f, f, f, 2, 8)).toThrow(RangeError);
    expect(native.nativeSymbols.tv_residual_layernorm_forward(null, f, f, f, f, f, f, f, 1, 8)).toBe(-2);
    expect(native.nativeSymbols.tv_residual_layernorm_forward(f, f, f, f, f, f, f, f, 0, 8)).toBe(-1);
  });
});
