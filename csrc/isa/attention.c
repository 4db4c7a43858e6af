/* attention.c — fused causal multi-head self-attention, forward and backward, flash-style.
 *
 * For each batch b and head h (hs = C/H, scale = 1/√hs), with q, k, v the head's slices of qkv:
 *   S = scale·q·kᵀ (causal: key j ≤ query i),  P = softmax(S) per row,  out = P·v,
 *   lse[i] = log Σ_j e^S[i,j].
 * Nothing of size T×T is ever stored. The forward walks key blocks with an online softmax (running
 * max m and sum l per query row, the output accumulator rescaled when m grows), as in FlashAttention.
 * The backward recomputes P = e^(S − lse) block by block and uses D[i] = Σ dout[i]·out[i]
 * (= Σ_j P[i,j]·dP[i,j]) so that dS = P∘(dP − D) needs no row pass:
 *   dv[j] += Σ_i P[i,j]·dout[i],  dk[j] += Σ_i dS[i,j]·scale·q[i],  dq[i] += Σ_j dS[i,j]·scale·k[j].
 *
 * Tiles: bt query rows × bt keys, bt = min(64, 4096/HSP) where HSP is hs rounded up to 16, so
 * every tile holds at most 4096 floats and lives on the stack. Per-head copies live there too
 * (the forward's keys and values, the backward's queries, dout rows and dq accumulator), each at
 * most 128-256 KiB (MAX_STAGED_FLOATS, MAX_STACK_DQ), and in bf16 mode their pair forms (half that
 * each): under 1 MiB in all, well inside the 8 MiB the thread pool gives its threads (and the main
 * thread's usual 8 MiB). Tiles are padded with zeros to whole vectors, so the inner
 * products run on full vectors for any hs. The products inside a tile are small register-blocked
 * kernels written with GCC vector extensions, which become zmm, ymm or xmm code for each ISA
 * level. Whichever operand of a product is reused most is the one transposed into a tile: the
 * queries in the forward (scores are built key-major), the keys and values of the outer key block
 * in the backward.
 * A head dimension above MAX_TILED_HEAD_DIM takes a plain untiled path (slower, no scratch).
 *
 * bf16 mode (--precision bf16, avx512 with AVX512_BF16): the same loops, with every product's
 * operands rounded to bf16 pairs and multiplied by vdpbf16ps (attention_bf16.h); scores, the
 * softmax, P, dS and all accumulators stay fp32.
 *
 * Threads: the forward's work items are (b, h) pairs when there are at least 8 per thread, else
 * (b, h, query block); the backward's are (b, h) pairs, because dk and dv sum over all queries of a
 * head. Threads claim items one at a time from a counter, and each item's arithmetic is the same
 * whichever thread runs it and whichever kind of item it is in: bit-identical for any thread
 * count. */
/* GCC turns copy loops (even whole-vector ones, once a multiply by 1 folds away) into memcpy
 * calls; for the rows of a few dozen floats copied here a call costs more than the copy. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "../kernels.h"
#include "../threads.h"
#include "simd.h"

#define MAX_TILED_HEAD_DIM 256
#define TILE_FLOATS 4096
#define MAX_BT 64
#define MAX_STACK_T 16384 /* longest sequence whose per-head D vector lives on the stack */
#define MAX_STACK_DQ 65536 /* largest per-head dq accumulator (padded rows × hsp floats) on the stack */
#define MAX_STAGED_FLOATS 32768 /* largest per-head copy of one of q, k, v, dout (rows × hsp) on the stack */

#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX2__)
#define VW 8
#else
#define VW 4
#endif
typedef float vf __attribute__((vector_size(VW * 4)));
typedef float vf_u __attribute__((vector_size(VW * 4), aligned(4)));
typedef int vi __attribute__((vector_size(VW * 4)));
static inline vf vload(const float* p) { return *(const vf_u*)p; }
static inline void vstore(float* p, vf v) { *(vf_u*)p = v; }
/* A broadcast that the compiler can fold into the load (0 + x would cost a scalar add first). */
static inline vf vbcast(float x) {
#if defined(__AVX512F__)
  return (vf)_mm512_set1_ps(x);
#elif defined(__AVX2__)
  return (vf)_mm256_set1_ps(x);
#else
  vf r;
  for (int i = 0; i < VW; i++) r[i] = x;
  return r;
#endif
}

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* ---- tile products ---------------------------------------------------------------------------- */

/* s[4][NV·VW] = a[4][hs] · bt[hs][NV·VW]  (a rows lda apart, bt rows ldb apart, s rows lds apart) */
static ALWAYS_INLINE void mk_abt(float* s, int lds, const float* a, int lda, const float* bt, int ldb,
                                 int hs, const int NV) {
  vf c0[4], c1[4], c2[4], c3[4];
  for (int v = 0; v < NV; v++) c0[v] = c1[v] = c2[v] = c3[v] = (vf){0};
  for (int d = 0; d < hs; d++) {
    vf b[4];
    for (int v = 0; v < NV; v++) b[v] = vload(bt + (int64_t)d * ldb + v * VW);
    vf x0 = vbcast(a[d]), x1 = vbcast(a[lda + d]), x2 = vbcast(a[2 * lda + d]), x3 = vbcast(a[3 * lda + d]);
    for (int v = 0; v < NV; v++) {
      c0[v] += x0 * b[v];
      c1[v] += x1 * b[v];
      c2[v] += x2 * b[v];
      c3[v] += x3 * b[v];
    }
  }
  for (int v = 0; v < NV; v++) {
    vstore(s + v * VW, c0[v]);
    vstore(s + lds + v * VW, c1[v]);
    vstore(s + 2 * lds + v * VW, c2[v]);
    vstore(s + 3 * lds + v * VW, c3[v]);
  }
}

/* Which part of a diagonal (query block = key block) tile a product needs. Below the diagonal
 * the probabilities are exactly 0, so their products are skipped rather than computed and masked:
 * CAUSAL_LE: row r needs columns (or terms) ≤ r + 3 of its group of four; CAUSAL_GE: ≥ r rounded
 * down to a vector. Skipped terms would have added exact zeros. */
enum { CAUSAL_NONE = 0, CAUSAL_LE = 1, CAUSAL_GE = 2 };

/* The terms [*m_begin, *m_end) of a W·x product that rows r .. r+mr−1 need, of nm, under a causal
 * mode (for the row-group products, tile_wx and tile_wx_bf16). */
static inline void causal_terms(int r, int mr, int nm, int causal, int* m_begin, int* m_end) {
  *m_begin = 0, *m_end = nm;
  if (causal == CAUSAL_LE && r + mr < nm) *m_end = r + mr;
  if (causal == CAUSAL_GE) *m_begin = r < nm ? r : nm;
}

#include "attention_bf16.h" /* the same tile products on bf16 pairs (avx512 with AVX512_BF16) */
#if defined(__AVX512BF16__)
#define HAVE_BF16_TILES 1
#else
#define HAVE_BF16_TILES 0
#endif

/* s[nr][bt] = a[nr][hs] · kt[hs][bt]; nr a multiple of 4, bt a multiple of 16. With a causal
 * mode only the needed columns of each row group are written (the others are masked afterwards). */
static void tile_abt(float* s, const float* a, int lda, const float* kt, int hs, int nr, int bt, int causal) {
  for (int r = 0; r < nr; r += 4) {
    int c_begin = 0, c_end = bt;
    if (causal == CAUSAL_LE) c_end = (r + 4 + VW - 1) / VW * VW < bt ? (r + 4 + VW - 1) / VW * VW : bt;
    if (causal == CAUSAL_GE) c_begin = r / VW * VW;
    for (int c = c_begin; c < c_end; c += 4 * VW) {
      int nv = (c_end - c) / VW < 4 ? (c_end - c) / VW : 4;
      float* so = s + r * bt + c;
      const float* ar = a + r * lda;
      switch (nv) {
        case 1: mk_abt(so, bt, ar, lda, kt + c, bt, hs, 1); break;
        case 2: mk_abt(so, bt, ar, lda, kt + c, bt, hs, 2); break;
        case 3: mk_abt(so, bt, ar, lda, kt + c, bt, hs, 3); break;
        default: mk_abt(so, bt, ar, lda, kt + c, bt, hs, 4); break;
      }
    }
  }
}

/* y[MR][NV·VW] += Σ_m w(r, m)·x[m][NV·VW], w(r, m) = w[r·wr + m·wm], for m < nm. */
static ALWAYS_INLINE void mk_wx(float* y, int ldy, const float* w, int wr, int wm, const float* x,
                                int ldx, int nm, const int MR, const int NV) {
  vf acc[8][4];
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NV; v++) acc[i][v] = vload(y + i * ldy + v * VW);
  for (int m = 0; m < nm; m++) {
    vf xv[4];
    for (int v = 0; v < NV; v++) xv[v] = vload(x + (int64_t)m * ldx + v * VW);
    const float* wp = w + (int64_t)m * wm;
    for (int i = 0; i < MR; i++) {
      const vf wi = vbcast(wp[(int64_t)i * wr]);
      for (int v = 0; v < NV; v++) acc[i][v] += wi * xv[v];
    }
  }
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NV; v++) vstore(y + i * ldy + v * VW, acc[i][v]);
}

/* y[ny][hsp] += W·x[nm][hsp] with W(r, m) = w[r·wr + m·wm]: W = P for out and dq (wr = row stride,
 * wm = 1), W = Pᵀ for dv and dk (wr = 1, wm = row stride). ny a multiple of 4, hsp of 16.
 * A causal mode limits each row group's terms m to those where W can be nonzero. */
static void tile_wx(float* y, int ny, int hsp, const float* w, int wr, int wm, const float* x, int nm, int causal) {
  /* Narrow rows (two vectors or fewer) take eight rows at a time, so that enough accumulators
   * share each loaded x vector; ny is always a multiple of 16. */
  const int mr = hsp <= 2 * VW ? 8 : 4;
  for (int r = 0; r < ny; r += mr) {
    int m_begin, m_end;
    causal_terms(r, mr, nm, causal, &m_begin, &m_end);
    if (m_end <= m_begin) continue;
    for (int c = 0; c < hsp; c += 4 * VW) {
      int nv = (hsp - c) / VW < 4 ? (hsp - c) / VW : 4;
      float* yo = y + r * hsp + c;
      const float* wo = w + (int64_t)r * wr + (int64_t)m_begin * wm;
      const float* xo = x + (int64_t)m_begin * hsp + c;
      const int n = m_end - m_begin;
      if (mr == 8) {
        if (nv == 1) mk_wx(yo, hsp, wo, wr, wm, xo, hsp, n, 8, 1);
        else mk_wx(yo, hsp, wo, wr, wm, xo, hsp, n, 8, 2);
        continue;
      }
      switch (nv) {
        case 1: mk_wx(yo, hsp, wo, wr, wm, xo, hsp, n, 4, 1); break;
        case 2: mk_wx(yo, hsp, wo, wr, wm, xo, hsp, n, 4, 2); break;
        case 3: mk_wx(yo, hsp, wo, wr, wm, xo, hsp, n, 4, 3); break;
        default: mk_wx(yo, hsp, wo, wr, wm, xo, hsp, n, 4, 4); break;
      }
    }
  }
}

/* ---- shared setup ---------------------------------------------------------------------------- */

typedef struct {
  float* out;        /* forward: out[B,T,C] */
  float* lse;        /* forward: lse[B,H,T] */
  float* dqkv;       /* backward: dqkv[B,T,3C] (overwritten) */
  const float* dout; /* backward: dout[B,T,C] */
  const float* fout; /* backward: the forward's out[B,T,C] */
  const float* clse; /* backward: lse[B,H,T] */
  const float* qkv;  /* [B,T,3C] */
  int B, T, C, H, hs, hsp, bt, nblocks;
  int whole_heads; /* forward: work items are whole heads rather than query blocks */
  int bf16;        /* the products take bf16 operands (attention_bf16.h) */
  float scale;
  _Atomic int64_t next; /* the next unclaimed work item */
} attn_ctx;

/* Threads take work items one at a time from a shared counter: a thread that is descheduled (on a
 * busy machine) holds up one item, not a fixed share, and uneven items balance themselves. Each
 * item's arithmetic is the same whichever thread runs it, so the bytes never depend on that. */
static inline int64_t claim_item(attn_ctx* c) {
  return atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
}

static void setup(attn_ctx* c, int B, int T, int C, int H) {
  c->B = B, c->T = T, c->C = C, c->H = H;
  c->hs = C / H;
  c->hsp = (c->hs + 15) & ~15;
  c->bt = TILE_FLOATS / c->hsp;
  if (c->bt > MAX_BT) c->bt = MAX_BT;
  c->bt &= ~15;
  if (c->bt < 16) c->bt = 16; /* only for hs > MAX_TILED_HEAD_DIM, whose path has no tiles */
  c->nblocks = (T + c->bt - 1) / c->bt;
  c->scale = 1.0f / sqrtf((float)c->hs);
}

/* d[0..ld) = s[0..hs) times mul, then zeros; ld a multiple of VW. */
static inline void copy_row(float* d, const float* s, int hs, int ld, float mul) {
  const vf m = vbcast(mul);
  int i = 0;
  for (; i + VW <= hs; i += VW) vstore(d + i, vload(s + i) * m);
  if (i < ld) {
    vf t = (vf){0};
    for (int l = 0; i + l < hs; l++) t[l] = s[i + l] * mul;
    vstore(d + i, t);
    for (i += VW; i < ld; i += VW) vstore(d + i, (vf){0});
  }
}

/* d[0..hs) = s[0..hs) times mul, exactly hs floats written (d is a head's slice of a dqkv row). */
static inline void store_row(float* d, const float* s, int hs, float mul) {
  const vf m = vbcast(mul);
  int i = 0;
  for (; i + VW <= hs; i += VW) vstore(d + i, vload(s + i) * m);
  for (; i < hs; i++) d[i] = s[i] * mul;
}

/* dst[nr][ld] = src rows (stride 3C) columns 0..hs−1 times mul, zero elsewhere up to rows_total. */
static void load_rows(float* dst, int ld, const float* src, int64_t stride, int nr, int rows_total,
                      int hs, float mul) {
  for (int r = 0; r < rows_total; r++) {
    float* d = dst + r * ld;
    if (r < nr) copy_row(d, src + r * stride, hs, ld, mul);
    else
      for (int i = 0; i < ld; i += VW) vstore(d + i, (vf){0});
  }
}


/* dst[hs][bt] = mul · transpose of src rows (stride 3C) columns 0..hs−1, columns ≥ nr zero. */
static void load_transposed(float* dst, int bt, const float* src, int64_t stride, int nr, int hs, float mul) {
#if defined(__AVX512F__)
  /* 16×16 blocks through registers: rows past nr load as zeros, a column tail loads masked. */
  const __m512 vm = _mm512_set1_ps(mul);
  const int nr16 = (nr + 15) & ~15;
  for (int j0 = 0; j0 < nr16; j0 += 16) {
    for (int d0 = 0; d0 < hs; d0 += 16) {
      const int nd = hs - d0 < 16 ? hs - d0 : 16;
      const __mmask16 km = nd == 16 ? (__mmask16)0xffff : tv_tail_mask(nd);
      __m512 r[16];
      for (int i = 0; i < 16; i++)
        r[i] = j0 + i < nr ? _mm512_mul_ps(_mm512_maskz_loadu_ps(km, src + (j0 + i) * stride + d0), vm)
                           : _mm512_setzero_ps();
      tv_transpose16(r);
      for (int i = 0; i < nd; i++) _mm512_storeu_ps(dst + (d0 + i) * bt + j0, r[i]);
    }
  }
  if (nr16 < bt)
    for (int d = 0; d < hs; d++) memset(dst + d * bt + nr16, 0, sizeof(float) * (size_t)(bt - nr16));
#else
  for (int d = 0; d < hs; d++) memset(dst + d * bt + nr, 0, sizeof(float) * (size_t)(bt - nr));
  for (int j = 0; j < nr; j++) {
    const float* s = src + j * stride;
    for (int d = 0; d < hs; d++) dst[d * bt + j] = s[d] * mul;
  }
#endif
}

/* ---- forward --------------------------------------------------------------------------------- */

static inline vf vexp(vf x) {
#if defined(__AVX512F__)
  return (vf)tv_exp512((__m512)x);
#elif defined(__AVX2__)
  return (vf)tv_exp256((__m256)x);
#else
  vf r = x;
  for (int i = 0; i < VW; i++) r[i] = expf(x[i]);
  return r;
#endif
}

/* 2^x, for x <= 0 (scores minus their max, or minus the log-sum-exp, in base-2 units). The tiled
 * paths keep scores in base 2 (the queries carry scale·log2(e)), which saves exp's ln 2 reduction:
 * n = round(x), r = x − n in [−½, ½] exactly, 2^r by its degree-6 Taylor polynomial (error below
 * 1.7e-7 relative), scaled by 2^n: about two thirds of vexp's instructions. The saving is AVX-512's
 * only; the other levels compute e^(x·ln 2) with their vexp. */
#define LN2 0.6931471805599453f
static inline vf vexp2(vf x) {
#if defined(__AVX512F__)
  __m512 v = _mm512_max_ps((__m512)x, _mm512_set1_ps(-160.0f)); /* −inf must not reach r (NaN) */
  __m512 n = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_sub_ps(v, n);
  __m512 p = _mm512_set1_ps(1.5403530393381608e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3333558146428443e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.618129107628477e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.550410866482158e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.2402265069591007f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.6931471805599453f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return (vf)_mm512_scalef_ps(p, n); /* n down to −160 gives exactly 0 */
#else
  return vexp(x * vbcast(LN2));
#endif
}

static inline vf vmax(vf a, vf b) {
#if defined(__AVX512F__)
  return (vf)_mm512_max_ps((__m512)a, (__m512)b);
#elif defined(__AVX2__)
  return (vf)_mm256_max_ps((__m256)a, (__m256)b);
#else
  vf r = a;
  for (int i = 0; i < VW; i++) r[i] = a[i] > b[i] ? a[i] : b[i];
  return r;
#endif
}

/* One block of bt queries against every key block up to the diagonal. The scores are computed
 * transposed, St[key][query] = k·(scale·q), so the queries are transposed once per block and the
 * keys are used as rows straight from qkv (a transpose per key block would cost as much as the
 * products); the online softmax then runs down the columns, bt queries per vector. */
static void forward_block(const attn_ctx* c, int b, int h, int qb, const float* kh, const float* vh,
                          const uint32_t* k32h, const uint32_t* vi32h) {
  const int bf = HAVE_BF16_TILES && c->bf16; /* bf16 products (below) */
  float qt[bf ? 1 : TILE_FLOATS] __attribute__((aligned(64))); /* [hs][bt] scaled queries, transposed */
  float o[TILE_FLOATS] __attribute__((aligned(64)));       /* [bt][hsp] output accumulator */
  float kbuf[kh ? 1 : TILE_FLOATS] __attribute__((aligned(64))); /* [bt][hsp] keys, unless staged */
  float vbuf[kh ? 1 : TILE_FLOATS] __attribute__((aligned(64))); /* [bt][hsp] values, unless staged */
  float st[MAX_BT * MAX_BT] __attribute__((aligned(64)));  /* [bt keys][bt queries] scores, then P */
  float mrow[MAX_BT] __attribute__((aligned(64)));         /* running max per query */
  float lrow[MAX_BT] __attribute__((aligned(64)));         /* running Σ e^(S − max) per query */
  float corr[MAX_BT] __attribute__((aligned(64)));         /* this block's rescaling per query */
  const int T = c->T, C = c->C, hs = c->hs, hsp = c->hsp, bt = c->bt;
  const int64_t stride = 3 * (int64_t)C;
  const float* base = c->qkv + (int64_t)b * T * stride + (int64_t)h * hs;
  const int i0 = qb * bt, nq = T - i0 < bt ? T - i0 : bt;

  /* In a whole-head job the next item is the next query block: load its rows while this one runs. */
  if (c->whole_heads)
    for (int r = i0 + bt; r < T && r < i0 + 2 * bt; r++)
      for (int i = 0; i < hs; i += 16) __builtin_prefetch(base + (int64_t)r * stride + i);
  /* qt[d][r] = scale·log2(e)·q[i0 + r][d] (scores in base 2, see vexp2); padding queries r >= nq
   * are zero and their results dropped. In bf16 mode (attention_bf16.h) the queries are
   * qt32[d pair][query] instead, the keys k32[key][d pair] and the values vi32[key pair][d],
   * staged per head (k32h, vi32h) or converted per key block. */
  const int hq = hsp / 2;
  uint32_t qt32[bf ? hq * bt : 1], tmp32[bf ? bt * hq : 1], pw[bf ? bt * bt / 2 : 1];
  uint32_t k32b[bf && !k32h ? bt * hq : 1], vi32b[bf && !k32h ? bt * hq : 1];
  if (!bf) load_transposed(qt, bt, base + i0 * stride, stride, nq, hs, c->scale * TV_LOG2E);
  else {
    load_rows(o, hsp, base + i0 * stride, stride, nq, bt, hs, c->scale * TV_LOG2E); /* o is free until below */
    rows_to_pairs(tmp32, hq, o, hsp, bt, hsp);
    words_transpose(qt32, bt, tmp32, hq, bt, hq);
  }
  memset(o, 0, sizeof(float) * (size_t)(bt * hsp));
  /* The output rows (C floats apart) are written only at the end: ask for them now. */
  for (int r = 0; r < nq; r++)
    for (int i = 0; i < hs; i += 16) __builtin_prefetch(c->out + ((int64_t)b * T + i0 + r) * C + (int64_t)h * hs + i, 1);
  for (int r = 0; r < bt; r++) mrow[r] = -INFINITY, lrow[r] = 0.0f;

  for (int j0 = 0; j0 < i0 + nq; j0 += bt) {
    const int nk = i0 + nq - j0 < bt ? i0 + nq - j0 : bt;
    const int nk4 = (nk + 3) & ~3; /* the products take key rows four at a time */
    const float *kb, *vb;
    if (kh) { /* staged for the whole head (rows past T are zero) */
      kb = kh + (int64_t)j0 * hsp;
      vb = vh + (int64_t)j0 * hsp;
    } else {
      /* The next key block's rows are 3C floats apart, too far apart for the hardware prefetcher:
       * ask for them now, so they arrive while this block's products run. */
      const int jn0 = j0 + bt, jn1 = i0 + nq < jn0 + bt ? i0 + nq : jn0 + bt;
      for (int j = jn0; j < jn1; j++)
        for (int i = 0; i < hs; i += 16) {
          __builtin_prefetch(base + C + (int64_t)j * stride + i);
          __builtin_prefetch(base + 2 * C + (int64_t)j * stride + i);
        }
      load_rows(kbuf, hsp, base + C + j0 * stride, stride, nk, nk4, hs, 1.0f);
      load_rows(vbuf, hsp, base + 2 * C + j0 * stride, stride, nk, nk4, hs, 1.0f);
      kb = kbuf, vb = vbuf;
    }
    const int diag = j0 == i0; /* the block on the diagonal: key jj only for queries r >= jj */
    const uint32_t *k32 = NULL, *vi32 = NULL;
    if (!bf) tile_abt(st, kb, hsp, qt, hs, nk4, bt, diag ? CAUSAL_GE : CAUSAL_NONE);
    else {
      if (k32h) {
        k32 = k32h + (int64_t)j0 * hq, vi32 = vi32h + (int64_t)(j0 / 2) * hsp;
      } else { /* kb, vb: nk4 rows, zero past nk */
        rows_to_pairs(k32b, hq, kb, hsp, nk4, hsp);
        rows_interleave(vi32b, hsp, vb, hsp, (nk + 1) & ~1, hsp);
        k32 = k32b, vi32 = vi32b;
      }
      tile_abt_bf16(st, k32, hq, qt32, hq, nk4, bt, diag ? CAUSAL_GE : CAUSAL_NONE);
    }
    /* Causal mask, only where the block reaches past the diagonal: key j0+jj hidden from query i0+r < j0+jj. */
    if (j0 + nk - 1 > i0)
      for (int jj = 0; jj < nk; jj++) {
        const int lim = j0 + jj - i0 < bt ? j0 + jj - i0 : bt;
        int r = 0;
        for (; r + VW <= lim; r += VW) vstore(st + jj * bt + r, vbcast(-INFINITY));
        for (; r < lim; r++) st[jj * bt + r] = -INFINITY;
      }
    for (int v = 0; v < bt; v += VW) {
      /* On the diagonal, keys past this vector's last query are all masked; the P·v product
       * below reads no further than that either. */
      const int jn = diag && v + VW < nk ? v + VW : nk;
      vf m_old = vload(mrow + v), mx = m_old;
      for (int jj = 0; jj < jn; jj++) mx = vmax(mx, vload(st + jj * bt + v));
      /* Every real query sees key 0 in the first block, so mx is finite from then on; m_old = −inf
       * gives a factor of 0 on an accumulator that is still 0. */
      vf f = vexp2(m_old - mx), sum = (vf){0};
      for (int jj = 0; jj < jn; jj++) {
        vf p = vexp2(vload(st + jj * bt + v) - mx);
        vstore(st + jj * bt + v, p);
        sum += p;
      }
      vstore(lrow + v, vload(lrow + v) * f + sum);
      vstore(mrow + v, mx);
      vstore(corr + v, f);
    }
    for (int r = 0; r < nq; r++) {
      if (corr[r] == 1.0f) continue;
      float* orow = o + r * hsp;
      const vf f = vbcast(corr[r]);
      for (int i = 0; i < hsp; i += VW) vstore(orow + i, vload(orow + i) * f);
    }
    /* o[r] += Σ_j P[r][j]·v[j], P[r][j] = st[j·bt + r] */
    if (!bf) tile_wx(o, bt, hsp, st, 1, bt, vb, nk, diag ? CAUSAL_LE : CAUSAL_NONE);
    else {
      probs_to_pairs(pw, st, bt, nk, i0 - j0);
      tile_wx_bf16(o, bt, hsp, pw, 1, bt, vi32, nk, diag ? CAUSAL_LE : CAUSAL_NONE);
    }
  }

  for (int r = 0; r < nq; r++) {
    float* out = c->out + ((int64_t)b * T + i0 + r) * C + (int64_t)h * hs;
    const float inv = 1.0f / lrow[r];
    for (int i = 0; i < hs; i++) out[i] = o[r * hsp + i] * inv;
    c->lse[((int64_t)b * c->H + h) * T + i0 + r] = (mrow[r] + log2f(lrow[r])) * LN2; /* natural log */
  }
}

/* Untiled fallback for large heads: one query row at a time with an online softmax, the output
 * row itself as the accumulator. */
static void forward_row(const attn_ctx* c, int b, int h, int i) {
  const int T = c->T, C = c->C, hs = c->hs;
  const int64_t stride = 3 * (int64_t)C;
  const float* base = c->qkv + (int64_t)b * T * stride + (int64_t)h * hs;
  const float* q = base + i * stride;
  float* out = c->out + ((int64_t)b * T + i) * C + (int64_t)h * hs;
  float m = -INFINITY, l = 0.0f;
  for (int d = 0; d < hs; d++) out[d] = 0.0f;
  for (int j = 0; j <= i; j++) {
    const float* k = base + C + j * stride;
    const float* v = base + 2 * C + j * stride;
    float sc = tv_row_dot(q, k, hs) * c->scale;
    if (sc > m) {
      float corr = expf(m - sc);
      l *= corr;
      for (int d = 0; d < hs; d++) out[d] *= corr;
      m = sc;
    }
    float p = expf(sc - m);
    l += p;
    for (int d = 0; d < hs; d++) out[d] += p * v[d];
  }
  for (int d = 0; d < hs; d++) out[d] /= l;
  c->lse[((int64_t)b * c->H + h) * T + i] = m + logf(l);
}

static void forward_job(void* arg, int tid, int nthreads) {
  attn_ctx* c = (attn_ctx*)arg;
  (void)tid, (void)nthreads;
  if (c->hs > MAX_TILED_HEAD_DIM) {
    int64_t n = (int64_t)c->B * c->H * c->T;
    for (int64_t it; (it = claim_item(c)) < n;)
      forward_row(c, (int)(it / ((int64_t)c->H * c->T)), (int)(it / c->T % c->H), (int)(it % c->T));
    return;
  }
  const int64_t heads = (int64_t)c->B * c->H;
  if (c->whole_heads) {
    /* One head per item, its query blocks in order. Every query block re-reads the keys and values
     * before it, and in qkv their rows are 3C floats apart (which maps them onto a few L1 sets):
     * when they fit, copy them once per head into contiguous rows instead of once per block. */
    const int64_t rows = (int64_t)c->nblocks * c->bt;
    const int staged = rows * c->hsp <= MAX_STAGED_FLOATS;
    float kh[staged ? rows * c->hsp : 1] __attribute__((aligned(64)));
    float vh[staged ? rows * c->hsp : 1] __attribute__((aligned(64)));
    const int bf = HAVE_BF16_TILES && c->bf16 && staged; /* and their bf16 pairs */
    uint32_t k32h[bf ? rows * c->hsp / 2 : 1], vi32h[bf ? rows * c->hsp / 2 : 1];
    const int64_t stride = 3 * (int64_t)c->C;
    for (int64_t bh; (bh = claim_item(c)) < heads;) {
      const int b = (int)(bh / c->H), h = (int)(bh % c->H);
      if (staged) {
        const float* base = c->qkv + (int64_t)b * c->T * stride + (int64_t)h * c->hs;
        load_rows(kh, c->hsp, base + c->C, stride, c->T, (int)rows, c->hs, 1.0f);
        load_rows(vh, c->hsp, base + 2 * c->C, stride, c->T, (int)rows, c->hs, 1.0f);
        if (bf) {
          rows_to_pairs(k32h, c->hsp / 2, kh, c->hsp, (int)rows, c->hsp);
          rows_interleave(vi32h, c->hsp, vh, c->hsp, (int)rows, c->hsp);
        }
      }
      for (int qb = 0; qb < c->nblocks; qb++)
        forward_block(c, b, h, qb, staged ? kh : NULL, staged ? vh : NULL, bf ? k32h : NULL, bf ? vi32h : NULL);
    }
    return;
  }
  /* Few heads: items are query blocks. A block's cost grows with its index (causal): the costliest
   * blocks (last) go first, so the cheap ones at the end even out the threads. */
  const int64_t n = heads * c->nblocks;
  for (int64_t it; (it = claim_item(c)) < n;) {
    int qb = c->nblocks - 1 - (int)(it / heads);
    int64_t bh = it % heads;
    forward_block(c, (int)(bh / c->H), (int)(bh % c->H), qb, NULL, NULL, NULL, NULL);
  }
}

static void attention_forward(float* out, float* lse, const float* qkv, int B, int T, int C, int H, int bf16) {
  attn_ctx c = {0};
  setup(&c, B, T, C, H);
  c.out = out, c.lse = lse, c.qkv = qkv, c.bf16 = bf16;
  c.whole_heads = (int64_t)B * H >= 8 * (int64_t)tv_pool_threads();
  if ((int64_t)B * H * c.nblocks == 1) forward_job(&c, 0, 1);
  else tv_parallel_run(forward_job, &c);
}

void TV_FN(attention_forward)(float* out, float* lse, const float* qkv, int B, int T, int C, int H) {
  attention_forward(out, lse, qkv, B, T, C, H, 0);
}

/* The bf16 products where the level has them (api.c calls this only on CPUs with AVX512_BF16);
 * elsewhere exactly the fp32 kernel. */
void TV_FN(attention_forward_bf16)(float* out, float* lse, const float* qkv, int B, int T, int C, int H) {
  attention_forward(out, lse, qkv, B, T, C, H, 1);
}

/* ---- backward -------------------------------------------------------------------------------- */

/* Zero this head's slice of the first `parts` of q|k|v in dqkv (rows `stride` floats apart), for
 * the paths that sum into dqkv rather than store: the kernel overwrites dqkv, and only the head's
 * own work item touches its slice. */
static void clear_head(float* dbase, int64_t stride, int T, int hs, int parts) {
  const int64_t C = stride / 3;
  for (int i = 0; i < T; i++)
    for (int part = 0; part < parts; part++) memset(dbase + i * stride + part * C, 0, sizeof(float) * (size_t)hs);
}

/* Arrays only the bf16 products use: a single element on levels without them. */
#define BF16_ONLY(n) (HAVE_BF16_TILES ? (n) : 1)
#define A64 __attribute__((aligned(64)))

/* One key block of bt keys (a thread's, reused for every block): the forms the products take the
 * keys and values in, and the dk and dv rows it sums over the query blocks that see it. */
typedef struct {
  float k[TILE_FLOATS] A64;  /* [bt][hsp] keys: dq's x operand */
  float dk[TILE_FLOATS] A64; /* [bt][hsp] */
  float dv[TILE_FLOATS] A64; /* [bt][hsp] */
  union {                    /* the b operand of S and dP, as the mode needs it */
    struct {
      float kt[TILE_FLOATS] A64; /* [hs][bt] keys, transposed */
      float vt[TILE_FLOATS] A64; /* [hs][bt] values, transposed */
    };
    struct {                                         /* bf16 mode */
      uint32_t kt32[BF16_ONLY(TILE_FLOATS / 2)] A64; /* [d pair][key] */
      uint32_t vt32[BF16_ONLY(TILE_FLOATS / 2)] A64; /* [d pair][key] */
      uint32_t ki32[BF16_ONLY(TILE_FLOATS / 2)] A64; /* [key pair][d]: dq's x operand */
      uint32_t tmp32[BF16_ONLY(TILE_FLOATS / 2)] A64;
      float vrows[BF16_ONLY(TILE_FLOATS)] A64; /* [bt][hsp] values */
    };
  };
} key_block;

/* One (key block, query block) pair, query-major (a thread's, reused for every pair). */
typedef struct {
  float s[MAX_BT * MAX_BT] A64;  /* [bt][bt] scores S, then P in place */
  float dp[MAX_BT * MAX_BT] A64; /* [bt][bt] dP, then dS in place */
  /* bf16 mode: P and dS as pairs of query rows (the w of dv and dk), dS as pairs along its rows (dq's) */
  uint32_t pw[BF16_ONLY(MAX_BT * MAX_BT / 2)] A64;
  uint32_t dsw[BF16_ONLY(MAX_BT * MAX_BT / 2)] A64;
  uint32_t dsc[BF16_ONLY(MAX_BT * MAX_BT / 2)] A64;
} pair_tiles;

/* The query side of the heads a thread runs, and the modes, the same for every head of a call.
 * Its rows are a whole head's (T rounded up to whole blocks, zero past T) when staged, else one
 * query block's. */
typedef struct {
  /* Every query block is read again for each key block before it, from rows 3C (q) and C (dout)
   * floats apart: when they fit, a head's scaled queries and dout rows are copied once, contiguous. */
  int staged;
  /* dq of the whole head summed in place across key blocks and stored in dqkv once: dqkv rows are
   * 3C floats apart, so a read-modify-write per pair costs more in cache misses than the products
   * that feed it. When it does not fit, each pair's dq is summed into dqkv. */
  int head_dq;
  int bf;                 /* the products take bf16 pairs (attention_bf16.h) */
  float *q, *dout;        /* [rows][hsp] queries times scale·log2(e) (base-2 scores), dout rows */
  uint32_t *q32, *do32;   /* bf16: as pairs along a row (the a operand of S and dP) */
  uint32_t *qi32, *doi32; /* bf16: as pairs of rows (the x operand of dk and dv) */
  float* dq;              /* [head's rows, or bt][hsp] dq, still to be multiplied by scale */
  float* D;               /* [T] dout·out per query when T <= MAX_STACK_T, else NULL */
} query_side;

/* One query block's operands (views of the query side), its dq rows and its per-query values. */
typedef struct {
  const float *q, *dout;
  const uint32_t *q32, *do32, *qi32, *doi32;
  float* dq;
  float lse[MAX_BT]; /* in base 2, as the recomputed scores */
  float D[MAX_BT];
} query_block;

/* The bf16 pair forms of the query side's rows [0, n). */
static void query_pairs(query_side* qs, int hsp, int n) {
  const int hq = hsp / 2;
  rows_to_pairs(qs->q32, hq, qs->q, hsp, n, hsp);
  rows_to_pairs(qs->do32, hq, qs->dout, hsp, n, hsp);
  rows_interleave(qs->qi32, hsp, qs->q, hsp, n, hsp);
  rows_interleave(qs->doi32, hsp, qs->dout, hsp, n, hsp);
}

/* Start head (b, h): D of its queries (every key block's pass needs it for the same queries), its
 * staged rows, and its dq cleared where it is summed. */
static void begin_head(const attn_ctx* c, query_side* qs, int b, int h) {
  const int T = c->T, C = c->C, hs = c->hs, hsp = c->hsp, rows = c->nblocks * c->bt;
  const int64_t stride = 3 * (int64_t)C, hoff = (int64_t)h * hs;
  if (qs->D)
    for (int i = 0; i < T; i++) {
      const int64_t row = ((int64_t)b * T + i) * C + hoff;
      qs->D[i] = tv_row_dot(c->dout + row, c->fout + row, hs);
    }
  if (qs->head_dq) memset(qs->dq, 0, sizeof(float) * (size_t)rows * hsp);
  else clear_head(c->dqkv + (int64_t)b * T * stride + hoff, stride, T, hs, 1);
  if (qs->staged) {
    load_rows(qs->q, hsp, c->qkv + (int64_t)b * T * stride + hoff, stride, T, rows, hs, c->scale * TV_LOG2E);
    load_rows(qs->dout, hsp, c->dout + (int64_t)b * T * C + hoff, C, T, rows, hs, 1.0f);
    if (qs->bf) query_pairs(qs, hsp, rows);
  }
}

/* Key block j0 (nk keys, zero rows after) in the forms the products take; its dk and dv zeroed. */
static void load_key_block(const attn_ctx* c, key_block* kb, const float* base, int j0, int nk, int bf) {
  const int T = c->T, C = c->C, hs = c->hs, hsp = c->hsp, bt = c->bt, hq = hsp / 2;
  const int64_t stride = 3 * (int64_t)C;
  /* The next key block's keys and values (rows 3C floats apart): ask for them now. */
  for (int j = j0 + bt; j < T && j < j0 + 2 * bt; j++)
    for (int i = 0; i < hs; i += 16) {
      __builtin_prefetch(base + C + (int64_t)j * stride + i);
      __builtin_prefetch(base + 2 * C + (int64_t)j * stride + i);
    }
  load_rows(kb->k, hsp, base + C + j0 * stride, stride, nk, bt, hs, 1.0f);
  if (!bf) {
    load_transposed(kb->kt, bt, base + C + j0 * stride, stride, nk, hs, 1.0f);
    load_transposed(kb->vt, bt, base + 2 * C + j0 * stride, stride, nk, hs, 1.0f);
  } else {
    load_rows(kb->vrows, hsp, base + 2 * C + j0 * stride, stride, nk, bt, hs, 1.0f);
    rows_to_pairs(kb->tmp32, hq, kb->k, hsp, bt, hsp);
    words_transpose(kb->kt32, bt, kb->tmp32, hq, bt, hq);
    rows_to_pairs(kb->tmp32, hq, kb->vrows, hsp, bt, hsp);
    words_transpose(kb->vt32, bt, kb->tmp32, hq, bt, hq);
    rows_interleave(kb->ki32, hsp, kb->k, hsp, bt, hsp);
  }
  memset(kb->dk, 0, sizeof(float) * (size_t)(bt * hsp));
  memset(kb->dv, 0, sizeof(float) * (size_t)(bt * hsp));
}

/* The rows query block i0 reads and writes where they are 3C floats apart in qkv and dqkv (and C
 * in dout): ask for them while the block before it runs. */
static void prefetch_query_block(const attn_ctx* c, const query_side* qs, int b, int h, int i0) {
  if (i0 >= c->T || (qs->staged && qs->head_dq)) return;
  const int T = c->T, C = c->C, hs = c->hs, n = T - i0 < c->bt ? T - i0 : c->bt;
  const int64_t stride = 3 * (int64_t)C, hoff = (int64_t)h * hs;
  const float* base = c->qkv + (int64_t)b * T * stride + hoff;
  const float* dbase = c->dqkv + (int64_t)b * T * stride + hoff;
  for (int r = 0; r < n; r++) {
    const int64_t row = (int64_t)(i0 + r);
    for (int i = 0; i < hs; i += 16) {
      if (!qs->staged) __builtin_prefetch(base + row * stride + i);
      if (!qs->head_dq) __builtin_prefetch(dbase + row * stride + i, 1);
      if (!qs->staged) __builtin_prefetch(c->dout + ((int64_t)b * T + row) * C + hoff + i);
    }
  }
}

/* Query block i0 (nq queries, zero rows after): its operands, views of the staged head or loaded
 * (and converted) now; its dq rows, cleared when they hold only this pair's; its lse and D. */
static void load_query_block(const attn_ctx* c, query_side* qs, query_block* q, int b, int h, int i0, int nq) {
  const int T = c->T, C = c->C, hs = c->hs, hsp = c->hsp, bt = c->bt, hq = hsp / 2;
  const int64_t stride = 3 * (int64_t)C, hoff = (int64_t)h * hs;
  int64_t at = 0; /* the block's first row in the query side */
  q->q32 = q->do32 = q->qi32 = q->doi32 = NULL;
  if (qs->staged) at = i0;
  else {
    load_rows(qs->q, hsp, c->qkv + ((int64_t)b * T + i0) * stride + hoff, stride, nq, bt, hs, c->scale * TV_LOG2E);
    load_rows(qs->dout, hsp, c->dout + ((int64_t)b * T + i0) * C + hoff, C, nq, bt, hs, 1.0f);
    if (qs->bf) query_pairs(qs, hsp, bt);
  }
  q->q = qs->q + at * hsp, q->dout = qs->dout + at * hsp;
  if (qs->bf) {
    q->q32 = qs->q32 + at * hq, q->do32 = qs->do32 + at * hq;
    q->qi32 = qs->qi32 + at / 2 * hsp, q->doi32 = qs->doi32 + at / 2 * hsp;
  }
  if (qs->head_dq) q->dq = qs->dq + (int64_t)i0 * hsp;
  else {
    q->dq = qs->dq;
    memset(q->dq, 0, sizeof(float) * (size_t)(bt * hsp));
  }
  const float* lse = c->clse + ((int64_t)b * c->H + h) * T + i0;
  for (int r = 0; r < nq; r++) {
    const int64_t row = ((int64_t)b * T + i0 + r) * C + hoff;
    q->D[r] = qs->D ? qs->D[i0 + r] : tv_row_dot(c->dout + row, c->fout + row, hs);
    q->lse[r] = lse[r] * TV_LOG2E;
  }
}

/* S = q·kᵀ and dP = dout·vᵀ. On the diagonal block query r sees keys j <= r only. */
static void scores_and_dp(const attn_ctx* c, pair_tiles* pt, const key_block* kb, const query_block* q, int diag,
                          int bf) {
  const int hs = c->hs, hq = c->hsp / 2, bt = c->bt, causal = diag ? CAUSAL_LE : CAUSAL_NONE;
  if (!bf) {
    tile_abt(pt->s, q->q, c->hsp, kb->kt, hs, bt, bt, causal);
    tile_abt(pt->dp, q->dout, c->hsp, kb->vt, hs, bt, bt, causal);
  } else {
    tile_abt_bf16(pt->s, q->q32, hq, kb->kt32, hq, bt, bt, causal);
    tile_abt_bf16(pt->dp, q->do32, hq, kb->vt32, hq, bt, bt, causal);
  }
}

/* P = 2^(S − lse) and dS = P∘(dP − D), in place, in one pass of whole vectors. Row r has `valid`
 * keys (up to nk; on the diagonal, off = i0 − j0 = 0, up to r); in its last vector the lanes past
 * them (never computed on the diagonal) are cleared with a mask, and the rest of the row zeroed. */
static void probs_and_ds(pair_tiles* pt, const query_block* q, int bt, int nq, int nk, int off) {
  for (int r = 0; r < bt; r++) {
    float* p = pt->s + r * bt;
    float* ds = pt->dp + r * bt;
    int valid = r < nq ? off + r + 1 : 0;
    if (valid > nk) valid = nk;
    int j = 0;
    if (valid > 0) {
      const vf L = vbcast(q->lse[r]), Dv = vbcast(q->D[r]);
      for (; j + VW <= valid; j += VW) {
        const vf e = vexp2(vload(p + j) - L);
        vstore(p + j, e);
        vstore(ds + j, e * (vload(ds + j) - Dv));
      }
      if (j < valid) {
        vi lane;
        for (int l = 0; l < VW; l++) lane[l] = l;
        const vi keep = lane < (valid - j);
        const vf e = vexp2(vload(p + j) - L);
        vstore(p + j, (vf)((vi)e & keep));
        vstore(ds + j, (vf)((vi)(e * (vload(ds + j) - Dv)) & keep));
        j += VW;
      }
    }
    if (j < bt) {
      memset(p + j, 0, sizeof(float) * (size_t)(bt - j));
      memset(ds + j, 0, sizeof(float) * (size_t)(bt - j));
    }
  }
}

/* dv += Pᵀ·dout and dk += dSᵀ·q (rows of the key block, summed over the queries), dq += dS·k
 * (rows of the query block, summed over the keys). */
static void accumulate_grads(const attn_ctx* c, pair_tiles* pt, key_block* kb, const query_block* q, int diag,
                             int bf) {
  const int hsp = c->hsp, bt = c->bt;
  const int ge = diag ? CAUSAL_GE : CAUSAL_NONE, le = diag ? CAUSAL_LE : CAUSAL_NONE;
  if (!bf) {
    tile_wx(kb->dv, bt, hsp, pt->s, 1, bt, q->dout, bt, ge);
    tile_wx(kb->dk, bt, hsp, pt->dp, 1, bt, q->q, bt, ge);
    tile_wx(q->dq, bt, hsp, pt->dp, bt, 1, kb->k, bt, le);
  } else {
    rows_interleave(pt->pw, bt, pt->s, bt, bt, bt);
    rows_interleave(pt->dsw, bt, pt->dp, bt, bt, bt);
    rows_to_pairs(pt->dsc, bt / 2, pt->dp, bt, bt, bt);
    tile_wx_bf16(kb->dv, bt, hsp, pt->pw, 1, bt, q->doi32, bt, ge);
    tile_wx_bf16(kb->dk, bt, hsp, pt->dsw, 1, bt, q->qi32, bt, ge);
    tile_wx_bf16(q->dq, bt, hsp, pt->dsc, bt / 2, 1, kb->ki32, bt, le);
  }
}

/* Head (b, h), key block by key block, each against the query blocks at or after it: the ones
 * that see any of its keys. Kept out of line: inlined into backward_job, its loops ran slower. */
static __attribute__((noinline)) void backward_head(const attn_ctx* c, query_side* qs, key_block* kb, pair_tiles* pt, int b, int h) {
  const int T = c->T, C = c->C, hs = c->hs, hsp = c->hsp, bt = c->bt;
  const int64_t stride = 3 * (int64_t)C, hoff = (int64_t)h * hs;
  const float* base = c->qkv + (int64_t)b * T * stride + hoff;
  float* dbase = c->dqkv + (int64_t)b * T * stride + hoff;
  query_block q;
  begin_head(c, qs, b, h);
  for (int j0 = 0; j0 < T; j0 += bt) {
    const int nk = T - j0 < bt ? T - j0 : bt;
    load_key_block(c, kb, base, j0, nk, qs->bf);
    for (int i0 = j0; i0 < T; i0 += bt) {
      const int nq = T - i0 < bt ? T - i0 : bt;
      prefetch_query_block(c, qs, b, h, i0 + bt);
      load_query_block(c, qs, &q, b, h, i0, nq);
      scores_and_dp(c, pt, kb, &q, i0 == j0, qs->bf);
      probs_and_ds(pt, &q, bt, nq, nk, i0 - j0);
      accumulate_grads(c, pt, kb, &q, i0 == j0, qs->bf);
      if (!qs->head_dq)
        for (int r = 0; r < nq; r++) {
          float* g = dbase + (int64_t)(i0 + r) * stride;
          for (int i = 0; i < hs; i++) g[i] += q.dq[r * hsp + i] * c->scale;
        }
    }
    /* Every key of the head is in exactly one key block: its dk and dv rows are final here. */
    for (int j = 0; j < nk; j++) {
      store_row(dbase + C + (int64_t)(j0 + j) * stride, kb->dk + j * hsp, hs, LN2); /* q carried log2(e) */
      store_row(dbase + 2 * C + (int64_t)(j0 + j) * stride, kb->dv + j * hsp, hs, 1.0f);
    }
  }
  if (qs->head_dq)
    for (int i = 0; i < T; i++) store_row(dbase + (int64_t)i * stride, qs->dq + (int64_t)i * hsp, hs, c->scale);
}

/* Untiled fallback for large heads: every (i, j ≤ i) pair in turn, summed straight into dqkv. */
static void backward_head_untiled(const attn_ctx* c, int b, int h) {
  const int T = c->T, C = c->C, hs = c->hs;
  const int64_t stride = 3 * (int64_t)C;
  const int64_t hoff = (int64_t)h * hs;
  const float* base = c->qkv + (int64_t)b * T * stride + hoff;
  float* dbase = c->dqkv + (int64_t)b * T * stride + hoff;
  clear_head(dbase, stride, T, hs, 3);
  const float* lse_bh = c->clse + ((int64_t)b * c->H + h) * T;
  for (int i = 0; i < T; i++) {
    const int64_t row = ((int64_t)b * T + i) * C + hoff;
    const float* g = c->dout + row;
    const float Di = tv_row_dot(g, c->fout + row, hs);
    const float* q = base + i * stride;
    float* dq = dbase + i * stride;
    for (int j = 0; j <= i; j++) {
      const float* k = base + C + j * stride;
      const float* v = base + 2 * C + j * stride;
      float p = expf(tv_row_dot(q, k, hs) * c->scale - lse_bh[i]);
      float ds = p * (tv_row_dot(g, v, hs) - Di) * c->scale;
      float* dk = dbase + C + j * stride;
      float* dv = dbase + 2 * C + j * stride;
      for (int d = 0; d < hs; d++) {
        dq[d] += ds * k[d];
        dk[d] += ds * q[d];
        dv[d] += p * g[d];
      }
    }
  }
}

static void backward_job(void* arg, int tid, int nthreads) {
  attn_ctx* c = (attn_ctx*)arg;
  (void)tid, (void)nthreads;
  const int64_t heads = (int64_t)c->B * c->H;
  if (c->hs > MAX_TILED_HEAD_DIM) {
    for (int64_t it; (it = claim_item(c)) < heads;) backward_head_untiled(c, (int)(it / c->H), (int)(it % c->H));
    return;
  }
  /* This thread's buffers, for every head it claims: the query side, sized by the modes, and the tiles. */
  const int64_t rows = (int64_t)c->nblocks * c->bt; /* a head's query rows, in whole blocks */
  query_side qs = {0};
  qs.staged = rows * c->hsp <= MAX_STAGED_FLOATS;
  qs.head_dq = rows * c->hsp <= MAX_STACK_DQ;
  qs.bf = HAVE_BF16_TILES && c->bf16;
  const int64_t q_floats = (qs.staged ? rows : c->bt) * c->hsp, dq_floats = (qs.head_dq ? rows : c->bt) * c->hsp;
  const int64_t pair_words = qs.bf ? q_floats / 2 : 1;
  float q[q_floats] A64, dout[q_floats] A64, dq[dq_floats] A64, D[c->T <= MAX_STACK_T ? c->T : 1];
  uint32_t q32[pair_words] A64, do32[pair_words] A64, qi32[pair_words] A64, doi32[pair_words] A64;
  qs.q = q, qs.dout = dout, qs.dq = dq, qs.D = c->T <= MAX_STACK_T ? D : NULL;
  qs.q32 = q32, qs.do32 = do32, qs.qi32 = qi32, qs.doi32 = doi32;
  key_block kb;
  pair_tiles pt;
  for (int64_t it; (it = claim_item(c)) < heads;) backward_head(c, &qs, &kb, &pt, (int)(it / c->H), (int)(it % c->H));
}

static void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                               const float* lse, int B, int T, int C, int H, int bf16) {
  attn_ctx c = {0};
  setup(&c, B, T, C, H);
  c.dqkv = dqkv, c.dout = dout, c.fout = out, c.clse = lse, c.qkv = qkv, c.bf16 = bf16;
  if ((int64_t)B * H == 1) backward_job(&c, 0, 1);
  else tv_parallel_run(backward_job, &c);
}

void TV_FN(attention_backward)(float* dqkv, const float* dout, const float* qkv, const float* out,
                               const float* lse, int B, int T, int C, int H) {
  attention_backward(dqkv, dout, qkv, out, lse, B, T, C, H, 0);
}

/* The bf16 products where the level has them (api.c calls this only on CPUs with AVX512_BF16);
 * elsewhere exactly the fp32 kernel. */
void TV_FN(attention_backward_bf16)(float* dqkv, const float* dout, const float* qkv, const float* out,
                                    const float* lse, int B, int T, int C, int H) {
  attention_backward(dqkv, dout, qkv, out, lse, B, T, C, H, 1);
}
