/**
 * The native kernel library, loaded through bun:ffi: one symbol table, typed wrappers that check
 * buffer lengths before any pointer crosses into C, and a clear error when the library is missing.
 *
 * The library is imported `with { type: "file" }` so that `bun build --compile` embeds it in the
 * standalone executable; TRAIN_VOCAB_LIB points at another build (the sanitizer build in tests).
 */
import { dlopen, FFIType, ptr as addressOf } from "bun:ffi";
import { UserError } from "./base/errors.ts";

const { ptr, i32, i64, f32, cstring } = FFIType;

const symbols = {
  tv_isa_best: { args: [], returns: i32 },
  tv_isa_current: { args: [], returns: i32 },
  tv_isa_set: { args: [i32], returns: i32 },
  tv_isa_name: { args: [i32], returns: cstring },
  tv_cpu_features: { args: [], returns: cstring },
  tv_has_bf16: { args: [], returns: i32 },
  tv_threads_set: { args: [i32], returns: i32 },
  tv_threads_get: { args: [], returns: i32 },
  tv_matmul_forward: { args: [ptr, ptr, ptr, ptr, i32, i32, i32], returns: i32 },
  tv_matmul_backward: { args: [ptr, ptr, ptr, ptr, ptr, ptr, i32, i32, i32], returns: i32 },
  tv_pack_panels: { args: [ptr, ptr, i32, i32], returns: i32 },
  tv_matmul_forward_panels: { args: [ptr, ptr, ptr, ptr, i32, i32, i32], returns: i32 },
  tv_matmul_forward_bf16: { args: [ptr, ptr, ptr, ptr, i32, i32, i32], returns: i32 },
  tv_matmul_backward_bf16: { args: [ptr, ptr, ptr, ptr, ptr, ptr, i32, i32, i32], returns: i32 },
  tv_layernorm_forward: { args: [ptr, ptr, ptr, ptr, ptr, ptr, i32, i32], returns: i32 },
  tv_layernorm_backward: {
    args: [ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, i32, i32],
    returns: i32,
  },
  tv_residual_layernorm_forward: { args: [ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, i32, i32], returns: i32 },
  tv_gelu_forward: { args: [ptr, ptr, i64], returns: i32 },
  tv_gelu_backward: { args: [ptr, ptr, ptr, i64], returns: i32 },
  tv_rmsnorm_forward: { args: [ptr, ptr, ptr, ptr, i32, i32, f32], returns: i32 },
  tv_rmsnorm_backward: { args: [ptr, ptr, ptr, ptr, ptr, ptr, i32, i32], returns: i32 },
  tv_rope_forward: { args: [ptr, i32, i32, i32, i32, i32, f32], returns: i32 },
  tv_rope_backward: { args: [ptr, i32, i32, i32, i32, i32, f32], returns: i32 },
  tv_rope_table: { args: [ptr, ptr, i32, i32, f32], returns: i32 },
  tv_rope_forward_rows: { args: [ptr, ptr, ptr, ptr, i32, i32, i32, i32, i32], returns: i32 },
  tv_swiglu_forward: { args: [ptr, ptr, i32, i32], returns: i32 },
  tv_swiglu_backward: { args: [ptr, ptr, ptr, i32, i32], returns: i32 },
  tv_residual_forward: { args: [ptr, ptr, ptr, i64], returns: i32 },
  tv_encoder_forward: { args: [ptr, ptr, ptr, ptr, i32, i32, i32, i32, i32], returns: i32 },
  tv_encoder_backward: { args: [ptr, ptr, ptr, ptr, i32, i32, i32, i32, i32], returns: i32 },
  tv_attention_forward: { args: [ptr, ptr, ptr, i32, i32, i32, i32], returns: i32 },
  tv_attention_backward: { args: [ptr, ptr, ptr, ptr, ptr, i32, i32, i32, i32], returns: i32 },
  tv_attention_forward_bf16: { args: [ptr, ptr, ptr, i32, i32, i32, i32], returns: i32 },
  tv_attention_backward_bf16: { args: [ptr, ptr, ptr, ptr, ptr, i32, i32, i32, i32], returns: i32 },
  tv_attention_decode: { args: [ptr, ptr, ptr, ptr, i32, i32, i32], returns: i32 },
  tv_attention_decode_rows: { args: [ptr, ptr, ptr, ptr, ptr, i32, i32, i32, i32], returns: i32 },
  tv_crossentropy_forward_backward: { args: [ptr, ptr, ptr, ptr, i32, i32, f32], returns: i32 },
  tv_adamw_step: {
    args: [ptr, ptr, ptr, ptr, i64, f32, f32, f32, f32, f32, f32, i32, i32],
    returns: i32,
  },
  tv_sum_squares: { args: [ptr, ptr, i64], returns: i32 },
  tv_axpby: { args: [ptr, ptr, ptr, i64, f32, f32], returns: i32 },
  tv_newton_schulz: { args: [ptr, ptr, ptr, i32, i32, ptr, ptr, i64, i32], returns: i32 },
  tv_argmax: { args: [ptr, ptr, i32], returns: i32 },
  tv_top_k_candidates: { args: [ptr, ptr, ptr, ptr, ptr, i32, i32, FFIType.f64], returns: i32 },
  // tokenizer
  tv_bpe_set_classes: { args: [ptr, i64], returns: i32 },
  tv_bpe_pretokenize: { args: [ptr, i64, ptr, i64], returns: FFIType.i64_fast },
  tv_bpe_safe_cut: { args: [ptr, i64], returns: FFIType.i64_fast },
  tv_bpe_trainer_new: { args: [], returns: ptr },
  tv_bpe_trainer_count: { args: [ptr, ptr, i64], returns: i32 },
  tv_bpe_trainer_stat: { args: [ptr, i32], returns: FFIType.i64_fast },
  tv_bpe_trainer_prepare: { args: [ptr, i32], returns: i32 },
  tv_bpe_trainer_merge: { args: [ptr, ptr, i32, i64], returns: i32 },
  tv_bpe_trainer_free: { args: [ptr], returns: FFIType.void },
  tv_bpe_encoder_new: { args: [ptr, ptr, ptr, ptr, ptr, i32, ptr], returns: ptr },
  tv_bpe_encode: { args: [ptr, ptr, i64, ptr, i64], returns: FFIType.i64_fast },
  tv_bpe_decode: { args: [ptr, ptr, i64, ptr, i64], returns: FFIType.i64_fast },
  tv_bpe_encoder_free: { args: [ptr], returns: FFIType.void },
} as const;

async function libraryPath(): Promise<string> {
  const override = process.env.TRAIN_VOCAB_LIB;
  if (override) return override;
  try {
    if (process.platform === "darwin") {
      return (await import("../build/libtrain_vocab.dylib", { with: { type: "file" } })).default;
    }
    return (await import("../build/libtrain_vocab.so", { with: { type: "file" } })).default;
  } catch {
    throw new UserError(
      "The native library build/libtrain_vocab is missing. Build it with `make` in the project folder " +
        "(it needs a C compiler and make), then run the command again.",
    );
  }
}

function open(path: string) {
  try {
    return dlopen(path, symbols);
  } catch (err) {
    throw new UserError(
      `Cannot load the native library ${path}: ${err instanceof Error ? err.message : String(err)}. ` +
        "Rebuild it with `make` in the project folder.",
    );
  }
}

export type Isa = "portable" | "avx2" | "avx512";
export const ISA_LEVELS: readonly Isa[] = ["portable", "avx2", "avx512"];
/** TV_MAX_THREADS in csrc/threads.c. */
const MAX_THREADS = 256;

/** The library reads TRAIN_VOCAB_ISA and TRAIN_VOCAB_THREADS itself and passes over a value it
 * cannot use; a typo there must not run quietly on other settings. */
export function checkEnvironment(env: Record<string, string | undefined> = process.env): void {
  const isa = env.TRAIN_VOCAB_ISA;
  if (isa && !ISA_LEVELS.includes(isa.toLowerCase() as Isa)) {
    throw new UserError(`TRAIN_VOCAB_ISA=${isa}: expected one of ${ISA_LEVELS.join(", ")} (or leave it unset for the best level the CPU supports).`);
  }
  const threads = env.TRAIN_VOCAB_THREADS;
  if (threads && !(/^\s*\d{1,3}\s*$/.test(threads) && Number(threads) >= 1 && Number(threads) <= MAX_THREADS)) {
    throw new UserError(`TRAIN_VOCAB_THREADS=${threads}: expected a whole number from 1 to ${MAX_THREADS} (or leave it unset for every CPU).`);
  }
}

checkEnvironment();
const lib = open(await libraryPath());
const S = lib.symbols;
/** The raw symbol table, for modules that keep their own typed wrappers (src/tokenizer/native_bpe.ts). */
export const nativeSymbols = S;

/** A kernel refused its arguments: a bug in the caller, never user input. */
export class NativeError extends Error {
  constructor(kernel: string, status: number) {
    const what: Record<number, string> = {
      [-1]: "bad sizes",
      [-2]: "a required buffer is missing",
      [-3]: "ISA level not supported",
      [-4]: "an index is out of range",
    };
    super(`${kernel} failed: ${what[status] ?? `status ${status}`}`);
    this.name = "NativeError";
  }
}

function check(kernel: string, status: number): void {
  if (status !== 0) throw new NativeError(kernel, status);
}

function need(kernel: string, name: string, buf: ArrayBufferView | null, elements: number): void {
  if (buf === null) return;
  const length = (buf as Float32Array).length;
  if (length < elements) {
    throw new RangeError(`${kernel}: ${name} holds ${length} elements, needs ${elements}`);
  }
}

function positive(kernel: string, sizes: Record<string, number>): void {
  for (const [name, n] of Object.entries(sizes)) {
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`${kernel}: ${name} = ${n} must be a positive integer`);
  }
}

// ---- runtime ------------------------------------------------------------------------------

export function isaBest(): Isa {
  return ISA_LEVELS[S.tv_isa_best()]!;
}
export function isaCurrent(): Isa {
  return ISA_LEVELS[S.tv_isa_current()]!;
}
/** Switch the kernel table; throws if the CPU or build lacks that level. */
export function setIsa(isa: Isa): void {
  check("tv_isa_set", S.tv_isa_set(ISA_LEVELS.indexOf(isa)));
}
/** Every level this machine can run, lowest first. */
export function supportedIsas(): Isa[] {
  return ISA_LEVELS.slice(0, S.tv_isa_best() + 1);
}
export function cpuFeatures(): string {
  return String(S.tv_cpu_features());
}
export function hasBf16(): boolean {
  return S.tv_has_bf16() === 1;
}
export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) throw new RangeError(`threads must be 1..${MAX_THREADS}, got ${n}`);
  check("tv_threads_set", S.tv_threads_set(n));
}
export function getThreads(): number {
  return S.tv_threads_get();
}

// ---- kernels (shapes as in csrc/train_vocab.h) ----------------------------------------------

/** The matmul pairs (fp32 and bf16) take the same buffers: one check of their sizes. */
function matmulForwardSizes(
  k: string, out: Float32Array, inp: Float32Array, weight: Float32Array, bias: Float32Array | null,
  M: number, K: number, N: number,
): void {
  positive(k, { M, K, N });
  need(k, "out", out, M * N); need(k, "inp", inp, M * K); need(k, "weight", weight, N * K); need(k, "bias", bias, N);
}

function matmulBackwardSizes(
  k: string, dinp: Float32Array | null, dweight: Float32Array | null, dbias: Float32Array | null,
  dout: Float32Array, inp: Float32Array, weight: Float32Array, M: number, K: number, N: number,
): void {
  positive(k, { M, K, N });
  need(k, "dinp", dinp, M * K); need(k, "dweight", dweight, N * K); need(k, "dbias", dbias, N);
  need(k, "dout", dout, M * N); need(k, "inp", inp, M * K); need(k, "weight", weight, N * K);
}

export function matmulForward(
  out: Float32Array, inp: Float32Array, weight: Float32Array, bias: Float32Array | null,
  M: number, K: number, N: number,
): void {
  const k = "matmul_forward";
  matmulForwardSizes(k, out, inp, weight, bias, M, K, N);
  check(k, S.tv_matmul_forward(out, inp, weight, bias, M, K, N));
}

/** Floats the 16-wide panels of an [N, K] weight take (rows past N padded with zeros). */
export function panelsLength(N: number, K: number): number {
  return Math.ceil(N / 16) * 16 * K;
}

/** weight [N, K] repacked into decoding's 16-wide panels (out: panelsLength(N, K) floats). */
export function packPanels(out: Float32Array, weight: Float32Array, N: number, K: number): void {
  const k = "pack_panels";
  positive(k, { N, K });
  need(k, "out", out, panelsLength(N, K)); need(k, "weight", weight, N * K);
  check(k, S.tv_pack_panels(out, weight, N, K));
}

/** out [M, N] = inp [M, K] · weightᵀ + bias from the weight's panels (packPanels): one running sum per
 * element, so each row of out has the bytes of a one-row call whatever M is. */
export function matmulForwardPanels(
  out: Float32Array, inp: Float32Array, panels: Float32Array, bias: Float32Array | null,
  M: number, K: number, N: number,
): void {
  const k = "matmul_forward_panels";
  positive(k, { M, K, N });
  need(k, "out", out, M * N); need(k, "inp", inp, M * K); need(k, "panels", panels, panelsLength(N, K)); need(k, "bias", bias, N);
  check(k, S.tv_matmul_forward_panels(out, inp, panels, bias, M, K, N));
}

export function matmulBackward(
  dinp: Float32Array | null, dweight: Float32Array | null, dbias: Float32Array | null,
  dout: Float32Array, inp: Float32Array, weight: Float32Array, M: number, K: number, N: number,
): void {
  const k = "matmul_backward";
  matmulBackwardSizes(k, dinp, dweight, dbias, dout, inp, weight, M, K, N);
  check(k, S.tv_matmul_backward(dinp, dweight, dbias, dout, inp, weight, M, K, N));
}

/** matmulForward with bf16 operands (rounded to nearest even) and fp32 accumulation; exactly
 * matmulForward where hasBf16() is false. */
export function matmulForwardBf16(
  out: Float32Array, inp: Float32Array, weight: Float32Array, bias: Float32Array | null,
  M: number, K: number, N: number,
): void {
  const k = "matmul_forward_bf16";
  matmulForwardSizes(k, out, inp, weight, bias, M, K, N);
  check(k, S.tv_matmul_forward_bf16(out, inp, weight, bias, M, K, N));
}

/** matmulBackward with bf16 operands and fp32 accumulation (dbias stays fp32); exactly
 * matmulBackward where hasBf16() is false. */
export function matmulBackwardBf16(
  dinp: Float32Array | null, dweight: Float32Array | null, dbias: Float32Array | null,
  dout: Float32Array, inp: Float32Array, weight: Float32Array, M: number, K: number, N: number,
): void {
  const k = "matmul_backward_bf16";
  matmulBackwardSizes(k, dinp, dweight, dbias, dout, inp, weight, M, K, N);
  check(k, S.tv_matmul_backward_bf16(dinp, dweight, dbias, dout, inp, weight, M, K, N));
}

export function layernormForward(
  out: Float32Array, mean: Float32Array, rstd: Float32Array, inp: Float32Array,
  weight: Float32Array, bias: Float32Array, M: number, C: number,
): void {
  const k = "layernorm_forward";
  positive(k, { M, C });
  need(k, "out", out, M * C); need(k, "mean", mean, M); need(k, "rstd", rstd, M);
  need(k, "inp", inp, M * C); need(k, "weight", weight, C); need(k, "bias", bias, C);
  check(k, S.tv_layernorm_forward(out, mean, rstd, inp, weight, bias, M, C));
}

/** resid = a + b, then out = layernorm(resid): the same bytes as residualForward then layernormForward. */
export function residualLayernormForward(
  resid: Float32Array, out: Float32Array, mean: Float32Array, rstd: Float32Array, a: Float32Array, b: Float32Array,
  weight: Float32Array, bias: Float32Array, M: number, C: number,
): void {
  const k = "residual_layernorm_forward";
  positive(k, { M, C });
  need(k, "resid", resid, M * C); need(k, "out", out, M * C); need(k, "mean", mean, M); need(k, "rstd", rstd, M);
  need(k, "a", a, M * C); need(k, "b", b, M * C); need(k, "weight", weight, C); need(k, "bias", bias, C);
  check(k, S.tv_residual_layernorm_forward(resid, out, mean, rstd, a, b, weight, bias, M, C));
}

export function layernormBackward(
  dinp: Float32Array, dweight: Float32Array | null, dbias: Float32Array | null, dout: Float32Array,
  inp: Float32Array, weight: Float32Array, mean: Float32Array, rstd: Float32Array, M: number, C: number,
): void {
  const k = "layernorm_backward";
  positive(k, { M, C });
  need(k, "dinp", dinp, M * C); need(k, "dweight", dweight, C); need(k, "dbias", dbias, C);
  need(k, "dout", dout, M * C); need(k, "inp", inp, M * C); need(k, "weight", weight, C);
  need(k, "mean", mean, M); need(k, "rstd", rstd, M);
  check(k, S.tv_layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, M, C));
}

export function geluForward(out: Float32Array, inp: Float32Array, N: number): void {
  const k = "gelu_forward";
  positive(k, { N });
  need(k, "out", out, N); need(k, "inp", inp, N);
  check(k, S.tv_gelu_forward(out, inp, N));
}

export function geluBackward(dinp: Float32Array, inp: Float32Array, dout: Float32Array, N: number): void {
  const k = "gelu_backward";
  positive(k, { N });
  need(k, "dinp", dinp, N); need(k, "inp", inp, N); need(k, "dout", dout, N);
  check(k, S.tv_gelu_backward(dinp, inp, dout, N));
}

/** out[M,C] = inp·rstd·weight, rstd = 1/√(mean(inp²) + eps) per row (saved for the backward). */
export function rmsnormForward(
  out: Float32Array, rstd: Float32Array, inp: Float32Array, weight: Float32Array, M: number, C: number, eps: number,
): void {
  const k = "rmsnorm_forward";
  positive(k, { M, C });
  need(k, "out", out, M * C); need(k, "rstd", rstd, M); need(k, "inp", inp, M * C); need(k, "weight", weight, C);
  check(k, S.tv_rmsnorm_forward(out, rstd, inp, weight, M, C, eps));
}

/** dinp += and dweight += (dweight skipped when null), as layernormBackward. */
export function rmsnormBackward(
  dinp: Float32Array, dweight: Float32Array | null, dout: Float32Array, inp: Float32Array, weight: Float32Array,
  rstd: Float32Array, M: number, C: number,
): void {
  const k = "rmsnorm_backward";
  positive(k, { M, C });
  need(k, "dinp", dinp, M * C); need(k, "dweight", dweight, C); need(k, "dout", dout, M * C);
  need(k, "inp", inp, M * C); need(k, "weight", weight, C); need(k, "rstd", rstd, M);
  check(k, S.tv_rmsnorm_backward(dinp, dweight, dout, inp, weight, rstd, M, C));
}

function ropeSizes(k: string, qkv: Float32Array, B: number, T: number, C: number, NH: number, pos0: number): void {
  positive(k, { B, T, C, NH });
  if (!Number.isInteger(pos0) || pos0 < 0) throw new RangeError(`${k}: pos0 = ${pos0} must be a whole number >= 0`);
  need(k, "qkv", qkv, B * T * 3 * C);
}

/** Rotary embedding in place on the q and k blocks of qkv[B,T,3C]; row (b,t) at position pos0 + t. */
export function ropeForward(qkv: Float32Array, B: number, T: number, C: number, NH: number, pos0: number, theta: number): void {
  const k = "rope_forward";
  ropeSizes(k, qkv, B, T, C, NH, pos0);
  check(k, S.tv_rope_forward(qkv, B, T, C, NH, pos0, theta));
}

/** cosTable[P, hs/2], sinTable[P, hs/2]: the cos and sin ropeForward turns position p < P by. */
export function ropeTable(cosTable: Float32Array, sinTable: Float32Array, P: number, hs: number, theta: number): void {
  const k = "rope_table";
  positive(k, { P, hs });
  need(k, "cos_table", cosTable, P * Math.floor(hs / 2)); need(k, "sin_table", sinTable, P * Math.floor(hs / 2));
  check(k, S.tv_rope_table(cosTable, sinTable, P, hs, theta));
}

/** ropeForward for B rows (qStride apart) each at its own position, by a ropeTable of P positions;
 * each row has the bytes ropeForward(row, 1, 1, C, NH, positions[b], theta) gives it. */
export function ropeForwardRows(
  qkv: Float32Array, cosTable: Float32Array, sinTable: Float32Array, positions: Int32Array,
  P: number, B: number, qStride: number, C: number, NH: number,
): void {
  const k = "rope_forward_rows";
  positive(k, { P, B, qStride, C, NH });
  const half = Math.floor(C / NH / 2);
  need(k, "qkv", qkv, (B - 1) * qStride + 2 * C); need(k, "positions", positions, B);
  need(k, "cos_table", cosTable, P * half); need(k, "sin_table", sinTable, P * half);
  check(k, S.tv_rope_forward_rows(qkv, cosTable, sinTable, positions, P, B, qStride, C, NH));
}

/** The gradient through ropeForward: dqkv's q and k blocks turned back in place. */
export function ropeBackward(dqkv: Float32Array, B: number, T: number, C: number, NH: number, pos0: number, theta: number): void {
  const k = "rope_backward";
  ropeSizes(k, dqkv, B, T, C, NH, pos0);
  check(k, S.tv_rope_backward(dqkv, B, T, C, NH, pos0, theta));
}

/** inp[N,2H] = gate | up per row; out[N,H] = silu(gate)·up. */
export function swigluForward(out: Float32Array, inp: Float32Array, N: number, H: number): void {
  const k = "swiglu_forward";
  positive(k, { N, H });
  need(k, "out", out, N * H); need(k, "inp", inp, N * 2 * H);
  check(k, S.tv_swiglu_forward(out, inp, N, H));
}

/** dinp[N,2H] = [dgate | dup] (overwritten; dinp may be inp itself). */
export function swigluBackward(dinp: Float32Array, inp: Float32Array, dout: Float32Array, N: number, H: number): void {
  const k = "swiglu_backward";
  positive(k, { N, H });
  need(k, "dinp", dinp, N * 2 * H); need(k, "inp", inp, N * 2 * H); need(k, "dout", dout, N * H);
  check(k, S.tv_swiglu_backward(dinp, inp, dout, N, H));
}

export function residualForward(out: Float32Array, a: Float32Array, b: Float32Array, N: number): void {
  const k = "residual_forward";
  positive(k, { N });
  need(k, "out", out, N); need(k, "a", a, N); need(k, "b", b, N);
  check(k, S.tv_residual_forward(out, a, b, N));
}

export function encoderForward(
  out: Float32Array, tokens: Int32Array, wte: Float32Array, wpe: Float32Array,
  B: number, T: number, C: number, V: number, maxT: number,
): void {
  const k = "encoder_forward";
  positive(k, { B, T, C, V, maxT });
  need(k, "out", out, B * T * C); need(k, "tokens", tokens, B * T);
  need(k, "wte", wte, V * C); need(k, "wpe", wpe, maxT * C);
  check(k, S.tv_encoder_forward(out, tokens, wte, wpe, B, T, C, V, maxT));
}

export function encoderBackward(
  dwte: Float32Array | null, dwpe: Float32Array | null, dout: Float32Array, tokens: Int32Array,
  B: number, T: number, C: number, V: number, maxT: number,
): void {
  const k = "encoder_backward";
  positive(k, { B, T, C, V, maxT });
  need(k, "dwte", dwte, V * C); need(k, "dwpe", dwpe, maxT * C);
  need(k, "dout", dout, B * T * C); need(k, "tokens", tokens, B * T);
  check(k, S.tv_encoder_backward(dwte, dwpe, dout, tokens, B, T, C, V, maxT));
}

function attentionForwardSizes(k: string, out: Float32Array, lse: Float32Array, qkv: Float32Array, B: number, T: number, C: number, H: number): void {
  positive(k, { B, T, C, H });
  need(k, "out", out, B * T * C); need(k, "lse", lse, B * H * T); need(k, "qkv", qkv, B * T * 3 * C);
}

function attentionBackwardSizes(
  k: string, dqkv: Float32Array, dout: Float32Array, qkv: Float32Array, out: Float32Array, lse: Float32Array,
  B: number, T: number, C: number, H: number,
): void {
  positive(k, { B, T, C, H });
  need(k, "dqkv", dqkv, B * T * 3 * C); need(k, "dout", dout, B * T * C); need(k, "qkv", qkv, B * T * 3 * C);
  need(k, "out", out, B * T * C); need(k, "lse", lse, B * H * T);
}

export function attentionForward(
  out: Float32Array, lse: Float32Array, qkv: Float32Array, B: number, T: number, C: number, H: number,
): void {
  const k = "attention_forward";
  attentionForwardSizes(k, out, lse, qkv, B, T, C, H);
  check(k, S.tv_attention_forward(out, lse, qkv, B, T, C, H));
}

export function attentionBackward(
  dqkv: Float32Array, dout: Float32Array, qkv: Float32Array, out: Float32Array, lse: Float32Array,
  B: number, T: number, C: number, H: number,
): void {
  const k = "attention_backward";
  attentionBackwardSizes(k, dqkv, dout, qkv, out, lse, B, T, C, H);
  check(k, S.tv_attention_backward(dqkv, dout, qkv, out, lse, B, T, C, H));
}

/** attentionForward with the products on bf16 operands (fp32 accumulation and softmax); exactly
 * attentionForward where hasBf16() is false. */
export function attentionForwardBf16(
  out: Float32Array, lse: Float32Array, qkv: Float32Array, B: number, T: number, C: number, H: number,
): void {
  const k = "attention_forward_bf16";
  attentionForwardSizes(k, out, lse, qkv, B, T, C, H);
  check(k, S.tv_attention_forward_bf16(out, lse, qkv, B, T, C, H));
}

/** attentionBackward with the products on bf16 operands; exactly attentionBackward where
 * hasBf16() is false. */
export function attentionBackwardBf16(
  dqkv: Float32Array, dout: Float32Array, qkv: Float32Array, out: Float32Array, lse: Float32Array,
  B: number, T: number, C: number, H: number,
): void {
  const k = "attention_backward_bf16";
  attentionBackwardSizes(k, dqkv, dout, qkv, out, lse, B, T, C, H);
  check(k, S.tv_attention_backward_bf16(dqkv, dout, qkv, out, lse, B, T, C, H));
}

/** One new token's attention over a KV cache of T positions (the new one last); batch 1. */
export function attentionDecode(
  out: Float32Array, q: Float32Array, kCache: Float32Array, vCache: Float32Array, T: number, C: number, H: number,
): void {
  const k = "attention_decode";
  positive(k, { T, C, H });
  need(k, "out", out, C); need(k, "q", q, C); need(k, "k_cache", kCache, T * C); need(k, "v_cache", vCache, T * C);
  check(k, S.tv_attention_decode(out, q, kCache, vCache, T, C, H));
}

/** attentionDecode for B sequences in one call: row b's query is q[b·qStride ..], its caches
 * kCaches[b], vCaches[b] hold lengths[b] positions, its result goes to out[b·C ..]; each row has the
 * bytes attentionDecode gives it alone. */
export function attentionDecodeRows(
  out: Float32Array, q: Float32Array, kCaches: readonly Float32Array[], vCaches: readonly Float32Array[],
  lengths: Int32Array, B: number, C: number, H: number, qStride: number,
): void {
  const k = "attention_decode_rows";
  positive(k, { B, C, H, qStride });
  need(k, "out", out, B * C); need(k, "q", q, (B - 1) * qStride + C); need(k, "lengths", lengths, B);
  if (kCaches.length < B || vCaches.length < B) throw new RangeError(`${k}: ${B} rows, ${kCaches.length} k_caches and ${vCaches.length} v_caches`);
  const kTable = new BigUint64Array(B), vTable = new BigUint64Array(B);
  for (let b = 0; b < B; b++) {
    const T = lengths[b]!;
    positive(k, { [`lengths[${b}]`]: T });
    void kCaches[b]!.buffer; void vCaches[b]!.buffer; // storage pinned before its address is taken
    need(k, `k_caches[${b}]`, kCaches[b]!, T * C); need(k, `v_caches[${b}]`, vCaches[b]!, T * C);
    kTable[b] = BigInt(addressOf(kCaches[b]!)); vTable[b] = BigInt(addressOf(vCaches[b]!));
  }
  check(k, S.tv_attention_decode_rows(out, q, kTable, vTable, lengths, B, C, H, qStride));
}

/** losses[M] = per-row cross-entropy; dlogits (may be the logits buffer itself) is overwritten with
 * the gradient of dloss·Σ losses, or skipped when null. Targets < 0 are ignored rows. */
export function crossEntropyForwardBackward(
  losses: Float32Array, dlogits: Float32Array | null, logits: Float32Array, targets: Int32Array,
  M: number, V: number, dloss: number,
): void {
  const k = "crossentropy_forward_backward";
  positive(k, { M, V });
  need(k, "losses", losses, M); need(k, "dlogits", dlogits, M * V);
  need(k, "logits", logits, M * V); need(k, "targets", targets, M);
  check(k, S.tv_crossentropy_forward_backward(losses, dlogits, logits, targets, M, V, dloss));
}

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** The gradients are used times this (gradient clipping); 1 when absent. */
  gradScale?: number;
  /** Set the gradients to 0 as they are read (so the next backward starts from zero). */
  clearGrads?: boolean;
}

export function adamwStep(
  params: Float32Array, m: Float32Array, v: Float32Array, grads: Float32Array, h: AdamWHyper, t: number,
): void {
  const k = "adamw_step";
  const N = params.length;
  positive(k, { N, t });
  need(k, "m", m, N); need(k, "v", v, N); need(k, "grads", grads, N);
  check(k, S.tv_adamw_step(params, m, v, grads, N, h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, h.gradScale ?? 1, t,
    h.clearGrads ? 1 : 0));
}

const sumSquaresOut = new Float64Array(1);
/** Σ x² in double, thread-count independent. */
export function sumSquares(x: Float32Array): number {
  if (x.length === 0) return 0;
  check("sum_squares", S.tv_sum_squares(sumSquaresOut, x, x.length));
  return sumSquaresOut[0]!;
}

/** Scratch for newtonSchulz, grown as needed and kept. */
let nsScratch = new Float32Array(0);
const NS_MAX_THREADS = 16;

/**
 * Newton–Schulz on every matrix of xs in place (xs[i] is rows[i]×cols[i]): normalised, then `steps`
 * times X ← c0·X + (c1·A + c2·A²)·X with A = X·Xᵀ (the transposed form when tall), each matrix whole on
 * one thread, in the order given. With bf16, the products take bf16 operands (where the CPU has them).
 */
export function newtonSchulz(
  xs: readonly Float32Array[], rows: Int32Array, cols: Int32Array, steps: number, coefficients: Float32Array, bf16: boolean,
): void {
  const k = "newton_schulz";
  const count = xs.length;
  positive(k, { count });
  need(k, "rows", rows, count); need(k, "cols", cols, count); need(k, "coefficients", coefficients, 3);
  const table = new BigUint64Array(count);
  let side2 = 1, elements = 1;
  for (let i = 0; i < count; i++) {
    const r = rows[i]!, c = cols[i]!;
    positive(k, { [`rows[${i}]`]: r, [`cols[${i}]`]: c });
    need(k, `xs[${i}]`, xs[i]!, r * c);
    void xs[i]!.buffer; // storage pinned before its address is taken
    table[i] = BigInt(addressOf(xs[i]!));
    side2 = Math.max(side2, Math.min(r, c) ** 2);
    elements = Math.max(elements, r * c);
  }
  const round16 = (n: number) => Math.ceil(n / 16) * 16;
  const floats = Math.min(getThreads(), NS_MAX_THREADS) * (2 * round16(side2) + round16(elements));
  if (nsScratch.length < floats) nsScratch = new Float32Array(floats);
  check(k, S.tv_newton_schulz(table, rows, cols, count, steps, coefficients, nsScratch, nsScratch.length, bf16 ? 1 : 0));
}

/** out[i] = a·x[i] + b·y[i] over N elements; out may be x or y. */
export function axpby(out: Float32Array, x: Float32Array, y: Float32Array, N: number, a: number, b: number): void {
  const k = "axpby";
  positive(k, { N });
  need(k, "out", out, N); need(k, "x", x, N); need(k, "y", y, N);
  check(k, S.tv_axpby(out, x, y, N, a, b));
}

// ---- picking a token ----------------------------------------------------------------------

const argmaxOut = new Int32Array(1);
void argmaxOut.buffer; // storage pinned before its address is taken

/** The first index of the largest of x[0..n) (a plain scan keeping the first strict maximum; a NaN
 * is never greater). */
export function argmax(x: Float32Array, n = x.length): number {
  if (!Number.isInteger(n) || n < 1 || n > x.length) throw new RangeError(`argmax: n = ${n} must be within 1..${x.length}`);
  check("argmax", S.tv_argmax(argmaxOut, x, n));
  return argmaxOut[0]!;
}

const candidateOut = new Int32Array(1), kthOut = new Float32Array(1);
void candidateOut.buffer; void kthOut.buffer;

/**
 * The k-th largest of x[0..n) (heap: k floats of scratch), and in ids (n of them) every index i,
 * ascending, with x[i] >= kth − margin (compared in double; margin within 0..1e30); returns the
 * k-th largest and the count of ids.
 */
export function topKCandidates(
  ids: Int32Array, heap: Float32Array, x: Float32Array, n: number, k: number, margin: number,
): { kth: number; count: number } {
  const name = "top_k_candidates";
  if (!Number.isInteger(n) || n < 1 || n > x.length) throw new RangeError(`${name}: n = ${n} must be within 1..${x.length}`);
  if (!Number.isInteger(k) || k < 1 || k > n) throw new RangeError(`${name}: k = ${k} must be within 1..${n}`);
  need(name, "ids", ids, n); need(name, "heap", heap, k);
  check(name, S.tv_top_k_candidates(ids, candidateOut, kthOut, heap, x, n, k, margin));
  return { kth: kthOut[0]!, count: candidateOut[0]! };
}
