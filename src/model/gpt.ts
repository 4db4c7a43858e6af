/**
 * The GPT-2-style decoder: pre-LN blocks (x + Attn(LN1(x)), then + MLP(LN2(x))), learned positions,
 * GELU, a final LayerNorm and an LM head (tied to wte, or LoopOS's separate matrix).
 *
 * One flat buffer each for parameters and gradients (layout.ts); activations live in one arena sized
 * for the largest batch. Each layer's forward and backward sit side by side below, so the saved
 * tensors each backward step reads are easy to check against what its forward wrote.
 * Backward kernels OVERWRITE the activation gradients they produce (matmul dinp, GELU, attention:
 * no scratch buffer needs clearing first) and ACCUMULATE into parameter gradients and into the
 * residual stream's gradient (LayerNorm backward adds its input gradient to it).
 * Shapes: M = B·T rows, C = d_model, F = d_ff, V = vocab_size, H = num_heads; a linear layer's
 * weight is [out, in], so y = x·Wᵀ + b.
 */
import * as K from "../native.ts";
import { allocateActivations, type Activations, type BlockActivations } from "./activations.ts";
import { type Architecture, parameterCount } from "./layout.ts";
import type { StepProfile } from "./profile.ts";
import { type BlockTensors, modelTensors, type ModelTensors } from "./weights.ts";

/** Product arithmetic: fp32 throughout, or bf16 operands with fp32 accumulation in the matmuls and
 * attention's products (weights, softmax, norms and the optimizer stay fp32). */
export type Precision = "fp32" | "bf16";

/** Every native call of forward and backward, one entry per role (the four linear layers share one
 * kernel), so a profile can time each role under its own label. */
type Ops = ReturnType<typeof opsFor>;

/** What the training benchmark's breakdown reports each role as. */
const LABELS: Record<keyof Ops, string> = {
  encoderForward: "encoder fwd",
  layernormForward: "layernorm fwd",
  qkvForward: "matmul qkv fwd",
  attentionForward: "attention fwd",
  attnProjForward: "matmul attn.proj fwd",
  residualLayernormForward: "residual+layernorm fwd",
  fcForward: "matmul fc fwd",
  geluForward: "gelu fwd",
  mlpProjForward: "matmul mlp.proj fwd",
  lmHeadForward: "lm head fwd",
  crossEntropy: "cross-entropy fwd+bwd",
  lmHeadBackward: "lm head bwd",
  layernormBackward: "layernorm bwd",
  mlpProjBackward: "matmul mlp.proj bwd",
  geluBackward: "gelu bwd",
  fcBackward: "matmul fc bwd",
  attnProjBackward: "matmul attn.proj bwd",
  attentionBackward: "attention bwd",
  qkvBackward: "matmul qkv bwd",
  encoderBackward: "encoder bwd",
};

/** The kernels for a precision: only the products (linear layers, attention) differ. */
function opsFor(precision: Precision) {
  const bf16 = precision === "bf16";
  const mmF = bf16 ? K.matmulForwardBf16 : K.matmulForward;
  const mmB = bf16 ? K.matmulBackwardBf16 : K.matmulBackward;
  return {
    encoderForward: K.encoderForward,
    layernormForward: K.layernormForward,
    qkvForward: mmF,
    attentionForward: bf16 ? K.attentionForwardBf16 : K.attentionForward,
    attnProjForward: mmF,
    residualLayernormForward: K.residualLayernormForward,
    fcForward: mmF,
    geluForward: K.geluForward,
    mlpProjForward: mmF,
    lmHeadForward: mmF,
    crossEntropy: K.crossEntropyForwardBackward,
    lmHeadBackward: mmB,
    layernormBackward: K.layernormBackward,
    mlpProjBackward: mmB,
    geluBackward: K.geluBackward,
    fcBackward: mmB,
    attnProjBackward: mmB,
    attentionBackward: bf16 ? K.attentionBackwardBf16 : K.attentionBackward,
    qkvBackward: mmB,
    encoderBackward: K.encoderBackward,
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
  /** The kernels, or the same wrapped in timing while a profile is attached. */
  private ops: Ops;
  private stepProfile: StepProfile | null = null;

  constructor(arch: Architecture, params?: Float32Array, options: { precision?: Precision } = {}) {
    this.arch = arch;
    this.precision = options.precision ?? "fp32";
    this.kernels = this.ops = opsFor(this.precision);
    const n = parameterCount(arch);
    if (params && params.length !== n) throw new Error(`GPT: ${params.length} parameters given, the architecture has ${n}`);
    this.params = params ?? new Float32Array(n);
    this.grads = new Float32Array(n);
    this.w = modelTensors(arch, this.params);
    this.g = modelTensors(arch, this.grads);
  }

  /** When set, every native call of forward and backward is timed into it (the training benchmark). */
  get profile(): StepProfile | null {
    return this.stepProfile;
  }

  set profile(p: StepProfile | null) {
    this.stepProfile = p;
    this.ops = p ? p.timed(this.kernels, LABELS) : this.kernels;
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
    ops.encoderForward(a.encoded, a.tokens, w.wte, w.wpe, B, T, C, V, P); // encoded [M,C] = wte[token] + wpe[t]
    // The first LayerNorm reads the embeddings; every later one is fused with the residual add
    // before it (each block ends by writing the next block's ln_1, or ln_f).
    const first = L > 0 ? ln1Of(a.blocks[0]!, w.blocks[0]!) : lnfOf(a, w);
    ops.layernormForward(first.out, first.mean, first.rstd, a.encoded, first.weight, first.bias, M, C);
    for (let l = 0; l < L; l++) {
      const x = l > 0 ? a.blocks[l - 1]!.resid3 : a.encoded;
      const next = l + 1 < L ? ln1Of(a.blocks[l + 1]!, w.blocks[l + 1]!) : lnfOf(a, w);
      blockForward(ops, a.blocks[l]!, w.blocks[l]!, x, next, B, T, C, H, F);
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
    ops.layernormBackward(dRes, g.lnfw, g.lnfb, dLnf, lastX, w.lnfw, a.lnfMean, a.lnfRstd, M, C); // dRes [M,C] +=
    for (let l = L - 1; l >= 0; l--) {
      const x = l > 0 ? a.blocks[l - 1]!.resid3 : a.encoded;
      blockBackward(ops, a, a.blocks[l]!, w.blocks[l]!, g.blocks[l]!, x, B, T, C, H, F);
    }
    ops.encoderBackward(g.wte, g.wpe, dRes, a.tokens, B, T, C, V, P); // g.wte rows of the tokens, g.wpe [T,C] +=
    this.lastHadTargets = false; // the logits now hold gradients; a second backward would be wrong
  }
}

// ---- one transformer block ------------------------------------------------------------------

/** The LayerNorm that follows a block's output: the next block's ln_1, or ln_f after the last. */
interface NextNorm {
  out: Float32Array; mean: Float32Array; rstd: Float32Array;
  weight: Float32Array; bias: Float32Array;
}

const ln1Of = (a: BlockActivations, w: BlockTensors): NextNorm =>
  ({ out: a.ln1, mean: a.ln1Mean, rstd: a.ln1Rstd, weight: w.ln1w, bias: w.ln1b });
const lnfOf = (a: Activations, w: ModelTensors): NextNorm =>
  ({ out: a.lnf, mean: a.lnfMean, rstd: a.lnfRstd, weight: w.lnfw, bias: w.lnfb });

/** Expects a.ln1 = ln_1(x) already written; writes resid2, resid3 and `next` = LN(resid3). */
function blockForward(
  ops: Ops, a: BlockActivations, w: BlockTensors, x: Float32Array, next: NextNorm,
  B: number, T: number, C: number, H: number, F: number,
): void {
  const M = B * T;
  ops.qkvForward(a.qkv, a.ln1, w.qkvW, w.qkvB, M, C, 3 * C); // qkv [M,3C]
  ops.attentionForward(a.atty, a.attLse, a.qkv, B, T, C, H); // atty [M,C], attLse [B,H,T]
  ops.attnProjForward(a.attProj, a.atty, w.attnProjW, w.attnProjB, M, C, C); // attProj [M,C]
  // resid2 = x + attProj; ln2 = LN(resid2)
  ops.residualLayernormForward(a.resid2, a.ln2, a.ln2Mean, a.ln2Rstd, x, a.attProj, w.ln2w, w.ln2b, M, C);
  ops.fcForward(a.fch, a.ln2, w.fcW, w.fcB, M, C, F); // fch [M,F]
  ops.geluForward(a.fchGelu, a.fch, M * F); // fchGelu [M,F]
  ops.mlpProjForward(a.mlpProj, a.fchGelu, w.mlpProjW, w.mlpProjB, M, F, C); // mlpProj [M,C]
  // resid3 = resid2 + mlpProj; next = LN(resid3)
  ops.residualLayernormForward(a.resid3, next.out, next.mean, next.rstd, a.resid2, a.mlpProj, next.weight, next.bias, M, C);
}

/**
 * On entry acts.dResidual holds d(loss)/d(block output); on exit d(loss)/d(block input).
 * A residual add passes its gradient unchanged to both inputs, so the stream's gradient is read as
 * the branch's output gradient and then accumulated into by the branch's LayerNorm backward.
 */
function blockBackward(
  ops: Ops, acts: Activations, a: BlockActivations, w: BlockTensors, g: BlockTensors, x: Float32Array,
  B: number, T: number, C: number, H: number, F: number,
): void {
  const M = B * T;
  const dRes = acts.dResidual.subarray(0, M * C);
  const dLn = acts.dLn.subarray(0, M * C);
  const dFch = acts.dFch.subarray(0, M * F);
  const dAtty = acts.dAtty.subarray(0, M * C);
  const dQkv = acts.dQkv.subarray(0, 3 * M * C);

  // MLP branch: resid3 = resid2 + mlpProj(gelu(fc(ln2(resid2))))
  ops.mlpProjBackward(dFch, g.mlpProjW, g.mlpProjB, dRes, a.fchGelu, w.mlpProjW, M, F, C); // dFch [M,F] = d(fchGelu)
  ops.geluBackward(dFch, a.fch, dFch, M * F); // in place: d(gelu output) becomes d(fc output)
  ops.fcBackward(dLn, g.fcW, g.fcB, dFch, a.ln2, w.fcW, M, C, F); // dLn [M,C] = d(ln2)
  ops.layernormBackward(dRes, g.ln2w, g.ln2b, dLn, a.resid2, w.ln2w, a.ln2Mean, a.ln2Rstd, M, C); // dRes += d(resid2)

  // Attention branch: resid2 = x + attnProj(attention(qkv(ln1(x))))
  ops.attnProjBackward(dAtty, g.attnProjW, g.attnProjB, dRes, a.atty, w.attnProjW, M, C, C); // dAtty [M,C]
  ops.attentionBackward(dQkv, dAtty, a.qkv, a.atty, a.attLse, B, T, C, H); // dQkv [M,3C]
  ops.qkvBackward(dLn, g.qkvW, g.qkvB, dQkv, a.ln1, w.qkvW, M, C, 3 * C); // dLn [M,C] = d(ln1)
  ops.layernormBackward(dRes, g.ln1w, g.ln1b, dLn, x, w.ln1w, a.ln1Mean, a.ln1Rstd, M, C); // dRes += d(x)
}
