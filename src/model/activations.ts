/**
 * Everything the forward pass keeps for the backward pass, and the backward pass's scratch, carved
 * out of one Float32Array allocated once for a batch shape (B, T). Running a smaller batch or a
 * shorter sequence through the same arena is fine: kernels only touch the first B·T rows.
 */
import type { Architecture } from "./layout.ts";

export interface BlockActivations {
  ln1: Float32Array; ln1Mean: Float32Array; ln1Rstd: Float32Array; // [M,C] [M] [M]
  qkv: Float32Array;      // [M,3C]
  atty: Float32Array;     // [M,C]   attention output before the projection
  attLse: Float32Array;   // [B,H,T] log-sum-exp per query row
  attProj: Float32Array;  // [M,C]
  resid2: Float32Array;   // [M,C]   x + attention
  ln2: Float32Array; ln2Mean: Float32Array; ln2Rstd: Float32Array;
  fch: Float32Array;      // [M,F]   before GELU
  fchGelu: Float32Array;  // [M,F]
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
  dFch: Float32Array;      // [M,F] d(gelu output), turned in place into d(fc output)
}

/** Floats in the activation arena for batches of B sequences of T tokens. */
export function activationFloats(arch: Architecture, B: number, T: number): number {
  const { d_model: C, d_ff: F, vocab_size: V, num_heads: H } = arch;
  const M = B * T;
  const block = [M * C, M, M, 3 * M * C, M * C, B * H * T, M * C, M * C, M * C, M, M, M * F, M * F, M * C, M * C];
  const tail = [M * C, M * C, M, M, M * V, M, M * C, M * C, M * C, 3 * M * C, M * F, M * F];
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return arch.num_layers * sum(block) + sum(tail);
}

export function allocateActivations(arch: Architecture, B: number, T: number): Activations {
  const { d_model: C, d_ff: F, vocab_size: V, num_heads: H } = arch;
  const M = B * T;
  const total = activationFloats(arch, B, T);
  if (!Number.isSafeInteger(total) || total > 2 ** 32) {
    throw new RangeError(`activations for batch ${B} × ${T} need ${total} floats; use a smaller --batch-size or --max-length`);
  }
  const arena = new Float32Array(total);
  let offset = 0;
  const take = (n: number) => arena.subarray(offset, (offset += n));
  const blocks: BlockActivations[] = [];
  for (let l = 0; l < arch.num_layers; l++) {
    blocks.push({
      ln1: take(M * C), ln1Mean: take(M), ln1Rstd: take(M),
      qkv: take(3 * M * C), atty: take(M * C), attLse: take(B * H * T), attProj: take(M * C),
      resid2: take(M * C),
      ln2: take(M * C), ln2Mean: take(M), ln2Rstd: take(M),
      fch: take(M * F), fchGelu: take(M * F), mlpProj: take(M * C), resid3: take(M * C),
    });
  }
  return {
    B, T,
    tokens: new Int32Array(M),
    targets: new Int32Array(M),
    encoded: take(M * C),
    blocks,
    lnf: take(M * C), lnfMean: take(M), lnfRstd: take(M),
    logits: take(M * V), losses: take(M),
    dResidual: take(M * C), dLn: take(M * C), dAtty: take(M * C), dQkv: take(3 * M * C),
    dFch: take(M * F),
  };
}
