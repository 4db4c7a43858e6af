/**
 * Everything the forward pass keeps for the backward pass, and the backward pass's scratch, carved
 * out of one Float32Array allocated once for a batch shape (B, T). Running a smaller batch or a
 * shorter sequence through the same arena is fine: kernels only touch the first B·T rows.
 */
import { type Architecture, blockOf, fcRows } from "./layout.ts";

export interface BlockActivations {
  ln1: Float32Array; ln1Mean: Float32Array; ln1Rstd: Float32Array; // [M,C] [M] [M] (RMSNorm: no mean, [0])
  qkv: Float32Array;      // [M,3C]
  atty: Float32Array;     // [M,C]   attention output before the projection
  attLse: Float32Array;   // [B,H,T] log-sum-exp per query row
  attProj: Float32Array;  // [M,C]
  resid2: Float32Array;   // [M,C]   x + attention
  ln2: Float32Array; ln2Mean: Float32Array; ln2Rstd: Float32Array;
  fch: Float32Array;      // [M,F]   before GELU (SwiGLU: [M,2F], gate | up)
  fchAct: Float32Array;   // [M,F]   GELU(fch), or SwiGLU's silu(gate)·up
  mlpProj: Float32Array;  // [M,C]
  resid3: Float32Array;   // [M,C]   block output
}

export interface Activations {
  B: number;
  T: number;
  tokens: Int32Array;     // [M]
  targets: Int32Array;    // [M]
  encoded: Float32Array;  // [M,C]
  blocks: BlockActivations[];
  lnf: Float32Array; lnfMean: Float32Array; lnfRstd: Float32Array;
  /** [M,V]: logits after forward, overwritten in place by their gradient. */
  logits: Float32Array;
  losses: Float32Array;   // [M]
  // backward scratch, reused by every block
  dResidual: Float32Array; // [M,C] gradient flowing down the residual stream
  dLn: Float32Array;       // [M,C]
  dAtty: Float32Array;     // [M,C]
  dQkv: Float32Array;      // [M,3C]
  dFch: Float32Array;      // [M,F] d(gelu output), turned in place into d(fc output); SwiGLU: [M,2F] d(fc output)
  /** [M,F] d(activation output): GELU's is dFch itself (turned in place); SwiGLU's is its own. */
  dAct: Float32Array;
}

/** The arena's float tensors in the order they are carved, with their sizes: one list for both
 * sizing the arena and carving it. */
function arenaSizes(arch: Architecture, B: number, T: number) {
  const { d_model: C, d_ff: F, vocab_size: V, num_heads: H } = arch;
  const M = B * T;
  const llama = blockOf(arch) === "llama";
  const mean = llama ? 0 : M; // RMSNorm keeps only rstd
  const block: Record<keyof BlockActivations, number> = {
    ln1: M * C, ln1Mean: mean, ln1Rstd: M,
    qkv: 3 * M * C, atty: M * C, attLse: B * H * T, attProj: M * C,
    resid2: M * C,
    ln2: M * C, ln2Mean: mean, ln2Rstd: M,
    fch: M * fcRows(arch), fchAct: M * F, mlpProj: M * C, resid3: M * C,
  };
  const rest: Record<Exclude<keyof Activations, "B" | "T" | "tokens" | "targets" | "blocks">, number> = {
    encoded: M * C,
    lnf: M * C, lnfMean: mean, lnfRstd: M,
    logits: M * V, losses: M,
    dResidual: M * C, dLn: M * C, dAtty: M * C, dQkv: 3 * M * C,
    dFch: M * fcRows(arch), dAct: llama ? M * F : 0,
  };
  return { block, rest };
}

const total = (sizes: Record<string, number>) => Object.values(sizes).reduce((a, b) => a + b, 0);

/** Floats in the activation arena for batches of B sequences of T tokens. */
export function activationFloats(arch: Architecture, B: number, T: number): number {
  const { block, rest } = arenaSizes(arch, B, T);
  return arch.num_layers * total(block) + total(rest);
}

export function allocateActivations(arch: Architecture, B: number, T: number): Activations {
  const M = B * T;
  const floats = activationFloats(arch, B, T);
  if (!Number.isSafeInteger(floats) || floats > 2 ** 32) {
    throw new RangeError(`activations for batch ${B} × ${T} need ${floats} floats; use a smaller --batch-size or --max-length`);
  }
  const arena = new Float32Array(floats);
  let offset = 0;
  const carve = <K extends string>(sizes: Record<K, number>): Record<K, Float32Array> => {
    const out = {} as Record<K, Float32Array>;
    for (const name in sizes) out[name] = arena.subarray(offset, (offset += sizes[name]));
    return out;
  };
  const { block, rest } = arenaSizes(arch, B, T);
  const blocks = Array.from({ length: arch.num_layers }, () => carve(block));
  const carved = carve(rest);
  if (blockOf(arch) === "gpt2") carved.dAct = carved.dFch; // GELU's backward runs in place
  return { B, T, tokens: new Int32Array(M), targets: new Int32Array(M), blocks, ...carved };
}
