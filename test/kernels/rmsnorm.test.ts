// tv_rmsnorm_forward / tv_rmsnorm_backward on every ISA level: against the float64 reference,
// against finite differences of the reference forward, the += and NULL-skipping contract, the
// chunked dweight sum replayed exactly, bit-identical results for 1 and 2 threads, and refused sizes.
import { describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import * as ref from "./reference.ts";
import { RandomData } from "./random_data.ts";

const SHAPES: [number, number][] = [[1, 1], [2, 3], [3, 17], [5, 31], [7, 64], [4, 97], [64, 300]];
const EPS = 1e-5;

function inputs(M: number, C: number, seed: number) {
  const r = new RandomData(seed);
  // An offset in the input: RMSNorm does not center, so the mean square is dominated by it.
  const inp = Float32Array.from(r.floats(M * C, -2, 2), (x) => x + 1);
  return { r, inp, weight: r.floats(C, 0.5, 1.5), dout: r.floats(M * C) };
}

describe("rmsnorm", () => {
  test("forward and backward match the float64 reference on every ISA level", () => {
    ref.forEachIsa((isa) => {
      for (const [M, C] of SHAPES) {
        for (const eps of [EPS, 1e-6]) {
          const { r, inp, weight, dout } = inputs(M, C, M * 1000 + C);
          if (M > 1) inp.fill(0, 0, C); // a zero row: rstd = 1/√eps, out = 0
          const out = new Float32Array(M * C), rstd = new Float32Array(M);
          native.rmsnormForward(out, rstd, inp, weight, M, C, eps);
          const want = ref.rmsnormForward(inp, weight, M, C, eps);
          const label = `${isa} M=${M} C=${C} eps=${eps}`;
          ref.within(ref.worst(out, want.out, 1e-5, 1e-4), `${label} out`);
          ref.within(ref.worst(rstd, want.rstd, 1e-6, 1e-5), `${label} rstd`);

          // Backward accumulates on top of whatever the gradients hold.
          const base = { dinp: r.floats(M * C), dweight: r.floats(C) };
          const dinp = base.dinp.slice(), dweight = base.dweight.slice();
          native.rmsnormBackward(dinp, dweight, dout, inp, weight, rstd, M, C);
          const g = ref.rmsnormBackward(dout, inp, weight, M, C, eps);
          ref.within(ref.worst(dinp, g.dinp, 1e-5 * (1 + ref.maxAbs(g.dinp)), 1e-4, base.dinp), `${label} dinp`);
          ref.within(ref.worst(dweight, g.dweight, 1e-5 * Math.sqrt(M) * (1 + ref.maxAbs(g.dweight)), 1e-4, base.dweight), `${label} dweight`);
        }
      }
    });
  });

  test("backward matches finite differences of the reference forward (loss = Σ out·R)", () => {
    ref.forEachIsa((isa) => {
      for (const [M, C] of [[1, 3], [3, 17], [4, 33]] as const) {
        const label = `${isa} M=${M} C=${C}`;
        const { r, inp, weight } = inputs(M, C, 7 * C + M);
        const R = r.floats(M * C);
        const out = new Float32Array(M * C), rstd = new Float32Array(M);
        native.rmsnormForward(out, rstd, inp, weight, M, C, EPS);
        const dinp = new Float32Array(M * C), dweight = new Float32Array(C);
        native.rmsnormBackward(dinp, dweight, R, inp, weight, rstd, M, C);
        const rand = () => r.next();
        const fdInp = ref.finiteDiff((x) => ref.rmsnormForward(x, weight, M, C, EPS).out, inp, R, ref.sampleIndices(M * C, 40, rand));
        const fdW = ref.finiteDiff((w) => ref.rmsnormForward(inp, w, M, C, EPS).out, weight, R, ref.sampleIndices(C, 20, rand));
        ref.within(ref.worstFd(dinp, fdInp, 1e-4, 1e-3), `${label} dinp vs finite differences`);
        ref.within(ref.worstFd(dweight, fdW, 1e-4, 1e-3), `${label} dweight vs finite differences`);
      }
    });
  });

  test("a NULL dweight is skipped and dinp is unchanged by skipping it", () => {
    ref.forEachIsa(() => {
      for (const [M, C] of [[9, 45], [300, 200]] as const) { // serial, and threaded
        const { inp, weight, dout } = inputs(M, C, 99);
        const out = new Float32Array(M * C), rstd = new Float32Array(M);
        native.rmsnormForward(out, rstd, inp, weight, M, C, EPS);
        const full = new Float32Array(M * C), dw = new Float32Array(C);
        native.rmsnormBackward(full, dw, dout, inp, weight, rstd, M, C);
        const only = new Float32Array(M * C);
        native.rmsnormBackward(only, null, dout, inp, weight, rstd, M, C);
        expect(ref.sameBytes(full, only)).toBe(true);
      }
    });
  });

  test("1 and 2 threads give identical bytes", () => {
    ref.forEachIsa(() => {
      const [M, C] = [131, 389];
      const { inp, weight, dout } = inputs(M, C, 5);
      const run = () => {
        const out = new Float32Array(M * C), rstd = new Float32Array(M);
        native.rmsnormForward(out, rstd, inp, weight, M, C, EPS);
        const dinp = new Float32Array(M * C).fill(0.25), dw = new Float32Array(C).fill(1);
        native.rmsnormBackward(dinp, dw, dout, inp, weight, rstd, M, C);
        return [out, rstd, dinp, dw];
      };
      const a = ref.withThreads(1, run), b = ref.withThreads(2, run);
      for (let i = 0; i < a.length; i++) expect(ref.sameBytes(a[i]!, b[i]!)).toBe(true);
    });
  });

  test("backward row chunks against the reference, and the same bytes on 1 and 2 threads", () => {
    // Several chunks of rows here, and one pass above C = 65520.
    for (const [M, C] of [[600, 389], [3, 70000]] as const) {
      const { inp, weight, dout } = inputs(M, C, M + C);
      const run = () => {
        const out = new Float32Array(M * C), rstd = new Float32Array(M);
        native.rmsnormForward(out, rstd, inp, weight, M, C, EPS);
        const dinp = new Float32Array(M * C).fill(0.5), dw = new Float32Array(C).fill(1);
        native.rmsnormBackward(dinp, dw, dout, inp, weight, rstd, M, C);
        return [dinp, dw];
      };
      const [dinp, dw] = ref.withThreads(2, run);
      const g = ref.rmsnormBackward(dout, inp, weight, M, C, EPS);
      const label = `M=${M} C=${C}`;
      const base = (v: number, n: number) => new Float32Array(n).fill(v);
      ref.within(ref.worst(dinp!, g.dinp, 1e-5 * (1 + ref.maxAbs(g.dinp)), 1e-4, base(0.5, M * C)), `${label} dinp`);
      ref.within(ref.worst(dw!, g.dweight, 1e-5 * Math.sqrt(M) * (1 + ref.maxAbs(g.dweight)), 1e-4, base(1, C)), `${label} dweight`);
      const one = ref.withThreads(1, run);
      for (let i = 0; i < one.length; i++) expect(ref.sameBytes(one[i]!, [dinp, dw][i]!), label).toBe(true);
    }
  });

  test("backward dweight is exactly the documented chunked sum: serial, parallel and widened chunks, any thread count", () => {
    // With rstd = 1 and inputs that are ±powers of two, every product dout·x is exact in fp32, so
    // the sum replays exactly (fused multiply-adds or not): chunks of clamp(⌈M/16⌉, 16, 128) rows,
    // more when a partial row of C (rounded up to 16) per chunk would overflow 2¹⁶ floats (LayerNorm's
    // chunks); each chunk sums its rows from 0 in order; the partials are added to dweight in order.
    const f = Math.fround;
    const replay = (dw0: Float32Array, dout: Float32Array, x: Float32Array, M: number, C: number): Float32Array => {
      const out = dw0.slice();
      const maxChunks = Math.floor((1 << 16) / (Math.ceil(C / 16) * 16));
      let rows = Math.min(128, Math.max(16, Math.ceil(M / 16)));
      if (Math.ceil(M / rows) > maxChunks) rows = Math.ceil(M / maxChunks);
      for (let r0 = 0; r0 < M; r0 += rows) {
        const part = new Float32Array(C);
        for (let r = r0; r < Math.min(M, r0 + rows); r++)
          for (let i = 0; i < C; i++) part[i] = f(part[i]! + dout[r * C + i]! * x[r * C + i]!);
        for (let i = 0; i < C; i++) out[i] = f(out[i]! + part[i]!);
      }
      return out;
    };
    ref.forEachIsa((isa) => {
      for (const [M, C] of [[100, 16], [600, 389], [40, 700], [300, 30000]] as const) {
        const r = new RandomData(M * 3 + C);
        const x = Float32Array.from({ length: M * C }, () => [1, -1, 0.5, -0.5, 2, -2][Math.floor(r.next() * 6)]!);
        const dout = r.floats(M * C), w = r.floats(C), rstd = new Float32Array(M).fill(1);
        const dw0 = r.floats(C), want = replay(dw0, dout, x, M, C);
        for (const n of [1, 2]) {
          const dw = dw0.slice();
          ref.withThreads(n, () => native.rmsnormBackward(new Float32Array(M * C), dw, dout, x, w, rstd, M, C));
          expect(ref.sameBytes(dw, want), `${isa} M=${M} C=${C} threads=${n}`).toBe(true);
        }
      }
    });
  });

  test("bad sizes, a bad eps and missing buffers are refused", () => {
    const f = new Float32Array(16);
    expect(() => native.rmsnormForward(f, f, f, f, 0, 4, EPS)).toThrow(RangeError);
    expect(() => native.rmsnormForward(f, f, f, f, 2, 9, EPS)).toThrow(RangeError);
    expect(() => native.rmsnormBackward(f, f, f, f, f, f.subarray(0, 1), 2, 4)).toThrow(RangeError);
    const S = native.nativeSymbols;
    expect(S.tv_rmsnorm_forward(f, f, f, f, -1, 4, EPS)).toBe(-1);
    expect(S.tv_rmsnorm_forward(f, f, f, null, 2, 4, EPS)).toBe(-2);
    expect(S.tv_rmsnorm_forward(f, f, f, f, 2, 4, -1e-5)).toBe(-4);
    expect(S.tv_rmsnorm_forward(f, f, f, f, 2, 4, NaN)).toBe(-4);
    expect(() => native.rmsnormForward(f, f, f, f, 2, 4, Infinity)).toThrow(native.NativeError);
    expect(S.tv_rmsnorm_backward(f, null, f, f, f, f, 2, 0)).toBe(-1);
    expect(S.tv_rmsnorm_backward(null, null, f, f, f, f, 2, 4)).toBe(-2);
  });
});
