/**
 * A deliberately plain GPT forward in double precision, straight from the model's definition (pre-LN
 * blocks, causal softmax attention, tanh GELU, final LayerNorm, LM head), sharing no code with the
 * engine: the yardstick the engine's prefill, KV-cache steps and eval numbers are checked against.
 */
import { type Architecture, viewsOf } from "../../src/model/layout.ts";

type Mat = Float64Array[];

function layernorm(x: Mat, w: Float32Array, b: Float32Array): Mat {
  return x.map((row) => {
    const n = row.length;
    const mean = row.reduce((a, v) => a + v, 0) / n;
    const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / n;
    const rstd = 1 / Math.sqrt(variance + 1e-5);
    return row.map((v, i) => (v - mean) * rstd * w[i]! + b[i]!);
  });
}

/** y = x·Wᵀ + b with W [out, in]. */
function linear(x: Mat, W: Float32Array, b: Float32Array | undefined, out: number): Mat {
  return x.map((row) => {
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < row.length; i++) s += row[i]! * W[o * row.length + i]!;
      y[o] = s;
    }
    return y;
  });
}

const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

/** Logits [T][V] for every position of `tokens`. */
export function referenceLogits(arch: Architecture, params: Float32Array, tokens: number[]): Float64Array[] {
  const p = viewsOf(params, arch);
  const g = (n: string) => p.get(n)!;
  const { d_model: C, num_heads: H, d_ff: F, vocab_size: V } = arch;
  const hs = C / H;
  let x: Mat = tokens.map((tok, t) => {
    const row = new Float64Array(C);
    for (let c = 0; c < C; c++) row[c] = g("wte")[tok * C + c]! + g("wpe")[t * C + c]!;
    return row;
  });
  for (let l = 0; l < arch.num_layers; l++) {
    const h = `h.${l}`;
    const qkv = linear(layernorm(x, g(`${h}.ln_1.weight`), g(`${h}.ln_1.bias`)), g(`${h}.attn.qkv.weight`), p.get(`${h}.attn.qkv.bias`), 3 * C);
    const att: Mat = qkv.map(() => new Float64Array(C));
    for (let head = 0; head < H; head++) {
      for (let t = 0; t < tokens.length; t++) {
        const scores: number[] = [];
        for (let u = 0; u <= t; u++) {
          let s = 0;
          for (let i = 0; i < hs; i++) s += qkv[t]![head * hs + i]! * qkv[u]![C + head * hs + i]!;
          scores.push(s / Math.sqrt(hs));
        }
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const z = e.reduce((a, v) => a + v, 0);
        for (let u = 0; u <= t; u++) {
          for (let i = 0; i < hs; i++) att[t]![head * hs + i]! += (e[u]! / z) * qkv[u]![2 * C + head * hs + i]!;
        }
      }
    }
    const proj = linear(att, g(`${h}.attn.proj.weight`), p.get(`${h}.attn.proj.bias`), C);
    x = x.map((row, t) => row.map((v, c) => v + proj[t]![c]!));
    const fc = linear(layernorm(x, g(`${h}.ln_2.weight`), g(`${h}.ln_2.bias`)), g(`${h}.mlp.fc.weight`), g(`${h}.mlp.fc.bias`), F);
    const mlp = linear(fc.map((row) => row.map(gelu)), g(`${h}.mlp.proj.weight`), g(`${h}.mlp.proj.bias`), C);
    x = x.map((row, t) => row.map((v, c) => v + mlp[t]![c]!));
  }
  const head = arch.tied_embeddings ? g("wte") : g("lm_head.weight");
  return linear(layernorm(x, g("ln_f.weight"), g("ln_f.bias")), head, undefined, V);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
