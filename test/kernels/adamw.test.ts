// tv_adamw_step and tv_sum_squares on every ISA level: AdamW against the float64 step over several
// steps (bias correction at small t), sum_squares in double against the exact sum with sizes around
// its chunk boundaries, the folded gradient scale, 1 vs 2 threads, and refused sizes.
import { describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import * as ref from "./reference.ts";
import { RandomData } from "./random_data.ts";

const H = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
// The kernel takes float32 hyperparameters: the reference uses the same rounded values (1 − β2 for
// β2 = 0.999 differs by 1.3e-5 relative between float32 and float64 β2).
const H32 = Object.fromEntries(Object.entries(H).map(([k, v]) => [k, Math.fround(v)])) as typeof H;

describe("adamw", () => {
  test("several AdamW steps match the float64 reference on every ISA level", () => {
    ref.forEachIsa((isa) => {
      for (const N of [1, 3, 17, 31, 1000, 33_333]) {
        const r = new RandomData(N);
        const p = r.floats(N), m = new Float32Array(N), v = new Float32Array(N);
        let p64: ArrayLike<number> = Float64Array.from(p), m64: ArrayLike<number> = new Float64Array(N), v64: ArrayLike<number> = new Float64Array(N);
        for (let t = 1; t <= 4; t++) {
          const g = r.floats(N, -2, 2);
          native.adamwStep(p, m, v, g, H, t);
          // Step the reference from the kernel's own state, so errors do not compound.
          const next = ref.adamwStep(p64, m64, v64, g, H32, t);
          const label = `${isa} N=${N} t=${t}`;
          ref.within(ref.worst(m, next.m, 1e-7, 1e-5), `${label} m`);
          ref.within(ref.worst(v, next.v, 1e-9, 1e-5), `${label} v`);
          ref.within(ref.worst(p, next.params, 1e-7, 1e-6), `${label} params`);
          p64 = Float64Array.from(p), m64 = Float64Array.from(m), v64 = Float64Array.from(v);
        }
      }
    });
  });

  test("sum_squares is the double sum for sizes around the chunk boundaries", () => {
    ref.forEachIsa((isa) => {
      for (const N of [1, 2, 15, 17, 16383, 16384, 16385, 100_003, 16384 * 64, 16384 * 130 + 7]) {
        const x = new RandomData(N).floats(N, -3, 3);
        const got = native.sumSquares(x);
        const want = ref.sumSquares(x);
        ref.within(Math.abs(got - want) / (1e-12 * want + 1e-300), `${isa} N=${N}`);
      }
    });
  });

  test("a gradient scale gives the bytes of scaling the gradients first, and leaves them unchanged", () => {
    ref.forEachIsa(() => {
      const N = 40000 + 3;
      const r = new RandomData(4);
      const p = r.floats(N), g = r.floats(N);
      const s = Math.fround(0.37);
      const a = p.slice(), am = new Float32Array(N), av = new Float32Array(N);
      const gs = Float32Array.from(g, (v) => v * s); // each product rounded once to float32, as C does
      native.adamwStep(a, am, av, gs, H, 3);
      const b = p.slice(), bm = new Float32Array(N), bv = new Float32Array(N);
      const gb = g.slice();
      native.adamwStep(b, bm, bv, gb, { ...H, gradScale: s }, 3);
      expect(ref.sameBytes(a, b)).toBe(true);
      expect(ref.sameBytes(am, bm)).toBe(true);
      expect(ref.sameBytes(av, bv)).toBe(true);
      expect(ref.sameBytes(gb, g)).toBe(true);
    });
  });

  test("clearGrads gives the same update and leaves every gradient at 0", () => {
    ref.forEachIsa(() => {
      for (const N of [7, 40000 + 3]) {
        const r = new RandomData(N);
        const p = r.floats(N), g = r.floats(N), m0 = r.floats(N, 0, 0.1), v0 = r.floats(N, 0, 0.1);
        const a = p.slice(), am = m0.slice(), av = v0.slice(), ga = g.slice();
        native.adamwStep(a, am, av, ga, { ...H, gradScale: 0.5 }, 4);
        const b = p.slice(), bm = m0.slice(), bv = v0.slice(), gb = g.slice();
        native.adamwStep(b, bm, bv, gb, { ...H, gradScale: 0.5, clearGrads: true }, 4);
        expect(ref.sameBytes(a, b) && ref.sameBytes(am, bm) && ref.sameBytes(av, bv)).toBe(true);
        expect(ref.sameBytes(ga, g)).toBe(true); // without the flag: untouched
        expect(gb.every((x) => Object.is(x, 0))).toBe(true);
      }
    });
  });

  test("1 and 2 threads give identical bytes", () => {
    ref.forEachIsa(() => {
      const N = 16384 * 70 + 5; // more than one round of sum_squares partials
      const r = new RandomData(1);
      const p = r.floats(N), g = r.floats(N);
      const go = () => {
        const pp = p.slice(), m = new Float32Array(N), v = new Float32Array(N);
        native.adamwStep(pp, m, v, g, H, 1);
        native.adamwStep(pp, m, v, g, H, 2);
        const ss = new Float64Array([native.sumSquares(pp)]);
        return [pp, m, v, ss];
      };
      const a = ref.withThreads(1, go), b = ref.withThreads(2, go);
      for (let i = 0; i < a.length; i++) expect(ref.sameBytes(a[i]!, b[i]!)).toBe(true);
    });
  });

  test("bad sizes are refused", () => {
    const f = new Float32Array(8);
    expect(() => native.adamwStep(f, f, f, f, H, 0)).toThrow(RangeError);
    expect(() => native.adamwStep(f, new Float32Array(4), f, f, H, 1)).toThrow(RangeError);
    expect(native.nativeSymbols.tv_adamw_step(f, f, f, f, 8, 1e-3, 0.9, 0.999, 1e-8, 0, 1, 0, 0)).toBe(-1);
    expect(native.nativeSymbols.tv_sum_squares(new Float64Array(1), f, 0)).toBe(-1);
    expect(native.sumSquares(new Float32Array(0))).toBe(0);
  });
});
