/**
 * The per-token forward, as direct calls into the kernel table. At batch 1 a step is ~25 kernel
 * calls that each take microseconds, so the checked wrappers of src/native.ts (argument objects,
 * length checks, subarray views for every call) would cost a large share of the step. Here every
 * buffer's address is taken once: the sizes were fixed and checked when the engine was built (the
 * weights by modelTensors, the caches and scratch by the engine), so only the position and the
 * token vary, and both are checked by the engine before each step.
 *
 * Addresses stay valid because this object holds every array it points into for its whole life, and
 * each array's storage is pinned before its address is taken: JavaScriptCore keeps small typed arrays
 * inline in the garbage-collected heap and moves their data out the first time a view or the
 * ArrayBuffer is asked for, which would leave an earlier address dangling. Asking for `.buffer`
 * first makes that move happen before, never after.
 */
import { ptr } from "bun:ffi";
import type { Architecture } from "../model/layout.ts";
import type { ModelTensors } from "../model/weights.ts";
import { NativeError, nativeSymbols as S } from "../native.ts";

type Pointer = ReturnType<typeof ptr>;
const F32 = 4;

interface BlockPointers {
  ln1w: Pointer; ln1b: Pointer; qkvW: Pointer; qkvB: Pointer | null;
  attnProjW: Pointer; attnProjB: Pointer | null; ln2w: Pointer; ln2b: Pointer;
  fcW: Pointer; fcB: Pointer; mlpProjW: Pointer; mlpProjB: Pointer;
  k: Float32Array; v: Float32Array; kp: Pointer; vp: Pointer;
}

/** One row of activations. */
export interface RowScratch {
  x: Float32Array; xn: Float32Array; qkv: Float32Array; att: Float32Array; tmp: Float32Array;
  fc: Float32Array; fcg: Float32Array; mean: Float32Array; rstd: Float32Array;
}

/** The address of `a`'s data, after pinning its storage (see above). */
function addressOf(a: Float32Array): Pointer {
  void a.buffer;
  return ptr(a);
}

function ok(kernel: string, status: number): void {
  if (status !== 0) throw new NativeError(kernel, status);
}

export class DecodeStep {
  private readonly blocks: BlockPointers[];
  private readonly p: Record<keyof RowScratch, Pointer>;
  private readonly wte: Pointer;
  private readonly wpe: Pointer;
  private readonly lnfw: Pointer;
  private readonly lnfb: Pointer;
  private readonly lmHead: Pointer;
  private readonly logitsP: Pointer;
  private readonly qkvK: Float32Array;
  private readonly qkvV: Float32Array;

  constructor(
    private readonly arch: Architecture,
    private readonly weights: ModelTensors,
    kCache: Float32Array[],
    vCache: Float32Array[],
    private readonly s: RowScratch,
    private readonly logits: Float32Array,
  ) {
    const C = arch.d_model;
    const opt = (a: Float32Array | null) => (a ? addressOf(a) : null);
    this.blocks = weights.blocks.map((w, l) => ({
      ln1w: addressOf(w.ln1w), ln1b: addressOf(w.ln1b), qkvW: addressOf(w.qkvW), qkvB: opt(w.qkvB),
      attnProjW: addressOf(w.attnProjW), attnProjB: opt(w.attnProjB), ln2w: addressOf(w.ln2w), ln2b: addressOf(w.ln2b),
      fcW: addressOf(w.fcW), fcB: addressOf(w.fcB), mlpProjW: addressOf(w.mlpProjW), mlpProjB: addressOf(w.mlpProjB),
      k: kCache[l]!, v: vCache[l]!, kp: addressOf(kCache[l]!), vp: addressOf(vCache[l]!),
    }));
    this.p = {
      x: addressOf(s.x), xn: addressOf(s.xn), qkv: addressOf(s.qkv), att: addressOf(s.att), tmp: addressOf(s.tmp),
      fc: addressOf(s.fc), fcg: addressOf(s.fcg), mean: addressOf(s.mean), rstd: addressOf(s.rstd),
    };
    this.wte = addressOf(weights.wte);
    this.wpe = addressOf(weights.wpe);
    this.lnfw = addressOf(weights.lnfw);
    this.lnfb = addressOf(weights.lnfb);
    this.lmHead = addressOf(weights.lmHead);
    this.logitsP = addressOf(logits);
    this.qkvK = s.qkv.subarray(C, 2 * C);
    this.qkvV = s.qkv.subarray(2 * C, 3 * C);
  }

  /** Token `token` at position `pos` (both already checked); the caches hold positions 0..pos−1. */
  run(token: number, pos: number): Float32Array {
    const { d_model: C, num_heads: H, d_ff: F, vocab_size: V } = this.arch;
    const p = this.p;
    // x = wte[token] + wpe[pos], read in place through offset addresses.
    ok("residual_forward", S.tv_residual_forward(p.x, (this.wte + token * C * F32) as Pointer, (this.wpe + pos * C * F32) as Pointer, C));
    for (const l of this.blocks) {
      ok("layernorm_forward", S.tv_layernorm_forward(p.xn, p.mean, p.rstd, p.x, l.ln1w, l.ln1b, 1, C));
      ok("matmul_forward", S.tv_matmul_forward(p.qkv, p.xn, l.qkvW, l.qkvB, 1, C, 3 * C));
      l.k.set(this.qkvK, pos * C);
      l.v.set(this.qkvV, pos * C);
      ok("attention_decode", S.tv_attention_decode(p.att, p.qkv, l.kp, l.vp, pos + 1, C, H));
      ok("matmul_forward", S.tv_matmul_forward(p.tmp, p.att, l.attnProjW, l.attnProjB, 1, C, C));
      ok("residual_forward", S.tv_residual_forward(p.x, p.x, p.tmp, C));
      ok("layernorm_forward", S.tv_layernorm_forward(p.xn, p.mean, p.rstd, p.x, l.ln2w, l.ln2b, 1, C));
      ok("matmul_forward", S.tv_matmul_forward(p.fc, p.xn, l.fcW, l.fcB, 1, C, F));
      ok("gelu_forward", S.tv_gelu_forward(p.fcg, p.fc, F));
      ok("matmul_forward", S.tv_matmul_forward(p.tmp, p.fcg, l.mlpProjW, l.mlpProjB, 1, F, C));
      ok("residual_forward", S.tv_residual_forward(p.x, p.x, p.tmp, C));
    }
    ok("layernorm_forward", S.tv_layernorm_forward(p.xn, p.mean, p.rstd, p.x, this.lnfw, this.lnfb, 1, C));
    ok("matmul_forward", S.tv_matmul_forward(this.logitsP, p.xn, this.lmHead, null, 1, C, V));
    return this.logits;
  }
}
