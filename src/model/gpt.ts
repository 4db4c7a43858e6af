/**
 * The decoder, in two block types chosen once per model:
 * - gpt2: pre-LN blocks (x + Attn(LN1(x)), then + MLP(LN2(x))), learned positions, GELU, biases, a
 *   final LayerNorm;
 * - llama: the same blocks with RMSNorm, rotary positions on q and k (no wpe), a SwiGLU MLP (one
 *   fused gate|up matrix) and no biases, a final RMSNorm.
 * Both share the embedding lookup, attention, the matmuls, the residual stream, the LM head (tied to
 * wte, or a separate matrix) and the loss; what differs is the block type's entries in the ops table.
 *
 * One flat buffer each for parameters and gradients (layout.ts); activations live in one arena sized
 * for the largest batch. Each layer's forward and backward sit side by side below, so the saved
 * tensors each backward step reads are easy to check against what its forward wrote.
 * Backward kernels OVERWRITE the activation gradients they produce (matmul dinp, GELU, SwiGLU,
 * attention: no scratch buffer needs clearing first) and ACCUMULATE into parameter gradients and
 * into the residual stream's gradient (the norms' backward adds its input gradient to it).
 * Shapes: M = B·T rows, C = d_model, F = d_ff, V = vocab_size, H = num_heads; a linear layer's
 * weight is [out, in], so y = x·Wᵀ + b.
 */
import * as K from "../native.ts";
import { allocateActivations, type Activations, type BlockActivations } from "./activations.ts";
import { type Architecture, blockOf, type BlockType, fcRows, LLAMA_NORM_EPS, LLAMA_ROPE_THETA, parameterCount } from "./layout.ts";
import type { StepProfile } from "./profile.ts";
import { type BlockTensors, modelTensors, type ModelTensors } from "./weights.ts";

/** Product arithmetic: fp32 throughout, or bf16 operands with fp32 accumulation in the matmuls and
 * attention's products (weights, softmax, norms and the optimizer stay fp32). */
export type Precision = "fp32" | "bf16";

type F32 = Float32Array;
type Bias = Float32Array | null;

/**
 * Every native call of forward and backward, one entry per role (the four linear layers share one
 * kernel), so a profile can time each role under its own label. The norm entries take LayerNorm's
 * arguments; RMSNorm ignores the mean and the bias (it has neither).
 */
type Ops = {
  encoderForward: typeof K.encoderForward;
  normForward(out: F32, mean: F32, rstd: F32, inp: F32, weight: F32, bias: Bias, M: number, C: number): void;
  qkvForward: typeof K.matmulForward;
  /** Rotary positions, in place on qkv's q and k (llama only). */
  ropeForward?(qkv: F32, B: number, T: number, C: number, H: number): void;
  attentionForward: typeof K.attentionForward;
  attnProjForward: typeof K.matmulForward;
  /** resid = a + b, then out = norm(resid). */
  residualNormForward(resid: F32, out: F32, mean: F32, rstd: F32, a: F32, b: F32, weight: F32, bias: Bias, M: number, C: number): void;
  fcForward: typeof K.matmulForward;
  /** out[M,F] from the fc output inp[M, F or 2F]. */
  actForward(out: F32, inp: F32, M: number, F: number): void;
  mlpProjForward: typeof K.matmulForward;
  lmHeadForward: typeof K.matmulForward;
  crossEntropy: typeof K.crossEntropyForwardBackward;
  lmHeadBackward: typeof K.matmulBackward;
  normBackward(dinp: F32, dweight: F32, dbias: Bias, dout: F32, inp: F32, weight: F32, mean: F32, rstd: F32, M: number, C: number): void;
  mlpProjBackward: typeof K.matmulBackward;
  /** dinp[M, F or 2F] from dout[M,F] (GELU: dinp is dout, turned in place). */
  actBackward(dinp: F32, inp: F32, dout: F32, M: number, F: number): void;
  fcBackward: typeof K.matmulBackward;
  attnProjBackward: typeof K.matmulBackward;
  attentionBackward: typeof K.attentionBackward;
  ropeBackward?(dqkv: F32, B: number, T: number, C: number, H: number): void;
  qkvBackward: typeof K.matmulBackward;
  encoderBackward: typeof K.encoderBackward;
};

/** What the training benchmark's breakdown reports each role as. */
function labelsFor(block: BlockType): Record<keyof Ops, string> {
  const norm = block === "llama" ? "rmsnorm" : "layernorm";
  const act = block === "llama" ? "swiglu" : "gelu";
  return {
    encoderForward: "encoder fwd",
    normForward: `${norm} fwd`,
    qkvForward: "matmul qkv fwd",
    ropeForward: "rope fwd",
    attentionForward: "attention fwd",
    attnProjForward: "matmul attn.proj fwd",
    residualNormForward: `residual+${norm} fwd`,
    fcForward: "matmul fc fwd",
    actForward: `${act} fwd`,
    mlpProjForward: "matmul mlp.proj fwd",
    lmHeadForward: "lm head fwd",
    crossEntropy: "cross-entropy fwd+bwd",
    lmHeadBackward: "lm head bwd",
    normBackward: `${norm} bwd`,
    mlpProjBackward: "matmul mlp.proj bwd",
    actBackward: `${act} bwd`,
    fcBackward: "matmul fc bwd",
    attnProjBackward: "matmul attn.proj bwd",
    attentionBackward: "attention bwd",
    ropeBackward: "rope bwd",
    qkvBackward: "matmul qkv bwd",
    encoderBackward: "encoder bwd",
  };
}

// ---- the layers that differ between the block types, each forward beside its backward -------

type NormOps = Pick<Ops, "normForward" | "residualNormForward" | "normBackward">;
type ActOps = Pick<Ops, "actForward" | "actBackward">;
type RopeOps = Required<Pick<Ops, "ropeForward" | "ropeBackward">>;

/** GPT-2's LayerNorm (eps 1e-5 in the kernel), the residual add fused into it. */
const layerNorm: NormOps = {
  normForward: (out, mean, rstd, inp, w, b, M, C) => K.layernormForward(out, mean, rstd, inp, w, b!, M, C),
  residualNormForward: (resid, out, mean, rstd, a, b, w, bias, M, C) => K.residualLayernormForward(resid, out, mean, rstd, a, b, w, bias!, M, C),
  normBackward: K.layernormBackward,
};

/** Llama's RMSNorm: no mean, no bias; the residual add is its own call (no fused kernel yet). */
const rmsNorm = (eps: number): NormOps => ({
  normForward: (out, _mean, rstd, inp, w, _b, M, C) => K.rmsnormForward(out, rstd, inp, w, M, C, eps),
  residualNormForward: (resid, out, _mean, rstd, a, b, w, _bias, M, C) => {
    K.residualForward(resid, a, b, M * C);
    K.rmsnormForward(out, rstd, resid, w, M, C, eps);
  },
  normBackward: (dinp, dw, _db, dout, inp, w, _mean, rstd, M, C) => K.rmsnormBackward(dinp, dw, dout, inp, w, rstd, M, C),
});

const gelu: ActOps = {
  actForward: (out, inp, M, F) => K.geluForward(out, inp, M * F),
  actBackward: (dinp, inp, dout, M, F) => K.geluBackward(dinp, inp, dout, M * F),
};

const swiglu: ActOps = { actForward: K.swigluForward, actBackward: K.swigluBackward };

/** Training windows start at position 0; the backward is the inverse turn. */
const rope = (theta: number): RopeOps => ({
  ropeForward: (qkv, B, T, C, H) => K.ropeForward(qkv, B, T, C, H, 0, theta),
  ropeBackward: (dqkv, B, T, C, H) => K.ropeBackward(dqkv, B, T, C, H, 0, theta),
});

/** The kernels for a block type and a precision: only the products (linear layers, attention)
 * depend on the precision; the norms, the activation and rotary positions on the block type. */
function opsFor(arch: Architecture, precision: Precision): Ops {
  const bf16 = precision === "bf16";
  const mmF = bf16 ? K.matmulForwardBf16 : K.matmulForward;
  const mmB = bf16 ? K.matmulBackwardBf16 : K.matmulBackward;
  const llama = blockOf(arch) === "llama";
  return {
    encoderForward: K.encoderForward,
    qkvForward: mmF,
    attentionForward: bf16 ? K.attentionForwardBf16 : K.attentionForward,
    attnProjForward: mmF,
    fcForward: mmF,
    mlpProjForward: mmF,
    lmHeadForward: mmF,
    crossEntropy: K.crossEntropyForwardBackward,
    lmHeadBackward: mmB,
    mlpProjBackward: mmB,
    fcBackward: mmB,
    attnProjBackward: mmB,
    attentionBackward: bf16 ? K.attentionBackwardBf16 : K.attentionBackward,
    qkvBackward: mmB,
    encoderBackward: K.encoderBackward,
    ...(llama ? rmsNorm(arch.norm_eps ?? LLAMA_NORM_EPS) : layerNorm),
    ...(llama ? swiglu : gelu),
    ...(llama ? rope(arch.rope_theta ?? LLAMA_ROPE_THETA) : {}),
  };
}

export class GPT {
  readonly arch: Architecture;
  readonly params: Float32Array;
  readonly grads: Float32Array;
  private readonly w: ModelTensors;
  private readonly g: ModelTensors;
  private acts: Activations | null = null;
  /** Rows (B·T) and tokens of the last forward, for backward. */
  private lastB = 0;
  private lastT = 0;
  private lastHadTargets = false;

  readonly precision: Precision;
  private readonly kernels: Ops;
  private readonly labels: Record<keyof Ops, string>;
  /** wpe, or zeros for a Llama model: the encoder kernel adds a position row, and rotary
   * positions are applied to q and k instead. */
  private readonly positions: Float32Array;
  /** The kernels, or the same wrapped in timing while a profile is attached. */
  private ops: Ops;
  private stepProfile: StepProfile | null = null;

  constructor(arch: Architecture, params?: Float32Array, options: { precision?: Precision } = {}) {
    this.arch = arch;
    this.precision = options.precision ?? "fp32";
    this.kernels = this.ops = opsFor(arch, this.precision);
    this.labels = labelsFor(blockOf(arch));
    if (blockOf(arch) === "llama" && (arch.d_model / arch.num_heads) % 2 !== 0) {
      throw new Error(`GPT: rotary positions need an even head size; d_model ${arch.d_model} / num_heads ${arch.num_heads} is odd`);
    }
    const n = parameterCount(arch);
    if (params && params.length !== n) throw new Error(`GPT: ${params.length} parameters given, the architecture has ${n}`);
    this.params = params ?? new Float32Array(n);
    this.grads = new Float32Array(n);
    this.w = modelTensors(arch, this.params);
    this.g = modelTensors(arch, this.grads);
    this.positions = this.w.wpe ?? new Float32Array(arch.max_seq_len * arch.d_model);
  }

  /** When set, every native call of forward and backward is timed into it (the training benchmark). */
  get profile(): StepProfile | null {
    return this.stepProfile;
  }

  set profile(p: StepProfile | null) {
    this.stepProfile = p;
    this.ops = p ? p.timed(this.kernels, this.labels) : this.kernels;
  }

  /** Make room for batches of up to B sequences of up to T tokens (allocates once per shape). */
  reserve(B: number, T: number): void {
    if (T > this.arch.max_seq_len) throw new RangeError(`sequence length ${T} exceeds max_seq_len ${this.arch.max_seq_len}`);
    if (this.acts && this.acts.B >= B && this.acts.T >= T && this.acts.B * this.acts.T >= B * T) return;
    this.acts = allocateActivations(this.arch, B, T);
  }

  /** Input ids [B·T] (row-major) go here before forward; targets too (−1 ignores a position). */
  get inputs(): { tokens: Int32Array; targets: Int32Array } {
    if (!this.acts) throw new Error("GPT: reserve(B, T) first");
    return { tokens: this.acts.tokens, targets: this.acts.targets };
  }

  /** Logits [B·T, V] of the last forward without targets (after a forward with targets, they hold dlogits). */
  get logits(): Float32Array {
    if (!this.acts) throw new Error("GPT: reserve(B, T) first");
    return this.acts.logits;
  }

  /**
   * Forward pass over `inputs.tokens`. With `withTargets`, returns the mean cross-entropy over the
   * positions whose target is >= 0 and leaves d(mean loss)/d(logits) in the logits buffer, ready for
   * backward; otherwise returns NaN and leaves the logits.
   */
  forward(B: number, T: number, withTargets: boolean): number {
    const a = this.acts;
    if (!a || B * T > a.B * a.T || T > a.T) throw new Error(`GPT: forward(${B}, ${T}) needs reserve(${B}, ${T}) first`);
    const { d_model: C, vocab_size: V, max_seq_len: P, num_heads: H, d_ff: F, num_layers: L } = this.arch;
    const M = B * T;
    const w = this.w, ops = this.ops;
    ops.encoderForward(a.encoded, a.tokens, w.wte, this.positions, B, T, C, V, P); // encoded [M,C] = wte[token] + wpe[t]
    // The first norm reads the embeddings; every later one follows the residual add before it
    // (each block ends by writing the next block's ln_1, or ln_f).
    const first = L > 0 ? ln1Of(a.blocks[0]!, w.blocks[0]!) : lnfOf(a, w);
    ops.normForward(first.out, first.mean, first.rstd, a.encoded, first.weight, first.bias, M, C);
    for (let l = 0; l < L; l++) {
      const x = l > 0 ? a.blocks[l - 1]!.resid3 : a.encoded;
      const next = l + 1 < L ? ln1Of(a.blocks[l + 1]!, w.blocks[l + 1]!) : lnfOf(a, w);
      blockForward(ops, a.blocks[l]!, w.blocks[l]!, x, next, B, T, C, H, F, fcRows(this.arch));
    }
    ops.lmHeadForward(a.logits, a.lnf, w.lmHead, null, M, C, V); // logits [M,V] = lnf [M,C] · lmHeadᵀ
    this.lastB = B;
    this.lastT = T;
    this.lastHadTargets = withTargets;
    if (!withTargets) return NaN;

    let counted = 0;
    for (let i = 0; i < M; i++) if (a.targets[i]! >= 0) counted++;
    if (counted === 0) return NaN;
    // Overwrites the logits with the gradient of the MEAN loss: dloss = 1/counted per row.
    ops.crossEntropy(a.losses, a.logits, a.logits, a.targets, M, V, 1 / counted); // losses [M], dlogits [M,V]
    let sum = 0;
    for (let i = 0; i < M; i++) sum += a.losses[i]!;
    return sum / counted;
  }

  /** Mean loss without touching the gradients (validation). */
  evaluate(B: number, T: number): { sum: number; count: number } {
    const a = this.acts!;
    this.forward(B, T, false);
    const { vocab_size: V } = this.arch;
    const M = B * T;
    K.crossEntropyForwardBackward(a.losses, null, a.logits, a.targets, M, V, 1);
    let sum = 0, count = 0;
    for (let i = 0; i < M; i++) {
      if (a.targets[i]! < 0) continue;
      sum += a.losses[i]!;
      count++;
    }
    return { sum, count };
  }

  zeroGrad(): void {
    this.grads.fill(0);
  }

  /** Accumulate d(mean loss)/d(params) into `grads` from the last forward (which had targets). */
  backward(): void {
    if (!this.lastHadTargets) throw new Error("GPT: backward() needs a forward with targets");
    const a = this.acts!;
    const B = this.lastB, T = this.lastT, M = B * T;
    const { d_model: C, vocab_size: V, max_seq_len: P, num_heads: H, d_ff: F, num_layers: L } = this.arch;
    const w = this.w, g = this.g, ops = this.ops;
    const dLnf = a.dLn.subarray(0, M * C);
    const dRes = a.dResidual.subarray(0, M * C);
    const lastX = L > 0 ? a.blocks[L - 1]!.resid3 : a.encoded;

    // LM head: with tied embeddings g.lmHead is g.wte, which the encoder's scatter adds to below.
    ops.lmHeadBackward(dLnf, g.lmHead, null, a.logits, a.lnf, w.lmHead, M, C, V); // dLnf [M,C]; g.lmHead += [V,C]
    dRes.fill(0);
    ops.normBackward(dRes, g.lnfw, g.lnfb, dLnf, lastX, w.lnfw, a.lnfMean, a.lnfRstd, M, C); // dRes [M,C] +=
    for (let l = L - 1; l >= 0; l--) {
      const x = l > 0 ? a.blocks[l - 1]!.resid3 : a.encoded;
      blockBackward(ops, a, a.blocks[l]!, w.blocks[l]!, g.blocks[l]!, x, B, T, C, H, F, fcRows(this.arch));
    }
    ops.encoderBackward(g.wte, g.wpe, dRes, a.tokens, B, T, C, V, P); // g.wte rows of the tokens, g.wpe [T,C] += (none for llama)
    this.lastHadTargets = false; // the logits now hold gradients; a second backward would be wrong
  }
}

// ---- one transformer block ------------------------------------------------------------------

/** The norm that follows a block's output: the next block's ln_1, or ln_f after the last. */
interface NextNorm {
  out: Float32Array; mean: Float32Array; rstd: Float32Array;
  weight: Float32Array; bias: Bias;
}

const ln1Of = (a: BlockActivations, w: BlockTensors): NextNorm =>
  ({ out: a.ln1, mean: a.ln1Mean, rstd: a.ln1Rstd, weight: w.ln1w, bias: w.ln1b });
const lnfOf = (a: Activations, w: ModelTensors): NextNorm =>
  ({ out: a.lnf, mean: a.lnfMean, rstd: a.lnfRstd, weight: w.lnfw, bias: w.lnfb });

/** Expects a.ln1 = ln_1(x) already written; writes resid2, resid3 and `next` = norm(resid3).
 * FC = mlp.fc's rows: F (GELU) or 2F (SwiGLU's gate | up). */
function blockForward(
  ops: Ops, a: BlockActivations, w: BlockTensors, x: Float32Array, next: NextNorm,
  B: number, T: number, C: number, H: number, F: number, FC: number,
): void {
  const M = B * T;
  ops.qkvForward(a.qkv, a.ln1, w.qkvW, w.qkvB, M, C, 3 * C); // qkv [M,3C]
  ops.ropeForward?.(a.qkv, B, T, C, H); // q, k turned in place: attention's backward reads them so
  ops.attentionForward(a.atty, a.attLse, a.qkv, B, T, C, H); // atty [M,C], attLse [B,H,T]
  ops.attnProjForward(a.attProj, a.atty, w.attnProjW, w.attnProjB, M, C, C); // attProj [M,C]
  // resid2 = x + attProj; ln2 = norm(resid2)
  ops.residualNormForward(a.resid2, a.ln2, a.ln2Mean, a.ln2Rstd, x, a.attProj, w.ln2w, w.ln2b, M, C);
  ops.fcForward(a.fch, a.ln2, w.fcW, w.fcB, M, C, FC); // fch [M,FC]
  ops.actForward(a.fchAct, a.fch, M, F); // fchAct [M,F]
  ops.mlpProjForward(a.mlpProj, a.fchAct, w.mlpProjW, w.mlpProjB, M, F, C); // mlpProj [M,C]
  // resid3 = resid2 + mlpProj; next = norm(resid3)
  ops.residualNormForward(a.resid3, next.out, next.mean, next.rstd, a.resid2, a.mlpProj, next.weight, next.bias, M, C);
}

/**
 * On entry acts.dResidual holds d(loss)/d(block output); on exit d(loss)/d(block input).
 * A residual add passes its gradient unchanged to both inputs, so the stream's gradient is read as
 * the branch's output gradient and then accumulated into by the branch's norm backward.
 */
function blockBackward(
  ops: Ops, acts: Activations, a: BlockActivations, w: BlockTensors, g: BlockTensors, x: Float32Array,
  B: number, T: number, C: number, H: number, F: number, FC: number,
): void {
  const M = B * T;
  const dRes = acts.dResidual.subarray(0, M * C);
  const dLn = acts.dLn.subarray(0, M * C);
  const dFch = acts.dFch.subarray(0, M * FC);
  const dAct = acts.dAct.subarray(0, M * F); // GELU: the start of dFch itself
  const dAtty = acts.dAtty.subarray(0, M * C);
  const dQkv = acts.dQkv.subarray(0, 3 * M * C);

  // MLP branch: resid3 = resid2 + mlpProj(act(fc(ln2(resid2))))
  ops.mlpProjBackward(dAct, g.mlpProjW, g.mlpProjB, dRes, a.fchAct, w.mlpProjW, M, F, C); // dAct [M,F] = d(fchAct)
  ops.actBackward(dFch, a.fch, dAct, M, F); // dFch [M,FC] = d(fc output)
  ops.fcBackward(dLn, g.fcW, g.fcB, dFch, a.ln2, w.fcW, M, C, FC); // dLn [M,C] = d(ln2)
  ops.normBackward(dRes, g.ln2w, g.ln2b, dLn, a.resid2, w.ln2w, a.ln2Mean, a.ln2Rstd, M, C); // dRes += d(resid2)

  // Attention branch: resid2 = x + attnProj(attention(rope(qkv(ln1(x)))))
  ops.attnProjBackward(dAtty, g.attnProjW, g.attnProjB, dRes, a.atty, w.attnProjW, M, C, C); // dAtty [M,C]
  ops.attentionBackward(dQkv, dAtty, a.qkv, a.atty, a.attLse, B, T, C, H); // dQkv [M,3C]
  ops.ropeBackward?.(dQkv, B, T, C, H); // back to the gradient of the unturned q, k
  ops.qkvBackward(dLn, g.qkvW, g.qkvB, dQkv, a.ln1, w.qkvW, M, C, 3 * C); // dLn [M,C] = d(ln1)
  ops.normBackward(dRes, g.ln1w, g.ln1b, dLn, x, w.ln1w, a.ln1Mean, a.ln1Rstd, M, C); // dRes += d(x)
}
