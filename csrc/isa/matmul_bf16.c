/* matmul_bf16.c — the linear layer's three products with bf16 operands and fp32 accumulation:
 *   forward  out[M,N]      = bf16(inp)[M,K] · bf16(weight)[N,K]ᵀ (+ bias)
 *   dinp     dinp[M,K]     = bf16(dout)[M,N] · bf16(weight)[N,K]
 *   dweight  dweight[N,K] += bf16(dout)[M,N]ᵀ · bf16(inp)[M,K]
 * Operands are rounded to bfloat16 (round to nearest even) as they are read; every product of two
 * bf16 values is exact in fp32, and sums, bias, and the gradients' existing content stay fp32.
 *
 * Only the avx512 level built with AVX512_BF16 has a real copy; at every other level (and when the
 * CPU lacks BF16, which api.c checks) these entry points are the fp32 kernels. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../kernels.h"
#include "../threads.h"
#include "simd.h"

#if defined(__AVX512BF16__)
#include <immintrin.h>

/* The same Goto/BLIS loop nest as matmul.c, on bf16 pairs. vdpbf16ps takes, per fp32 lane, two
 * bf16 products: acc[j] += a[2q]·b[2q][j] + a[2q+1]·b[2q+1][j]. So the depth is walked in pairs:
 *   B is packed into NR-column micro-panels of pairs, panel[q][j] = (B(2q,j), B(2q+1,j)) as one
 *     32-bit word (the low half the even depth), 16 columns to a vector;
 *   A is packed per MC×KC block into 32-bit pairs (A(i,2q), A(i,2q+1)), one broadcast per row;
 *   an odd depth is padded with a zero, which adds exact zeros.
 * Both operands are rounded to bf16 (nearest even, vcvtne2ps2bf16) while they are packed, so the
 * rounding costs O(MK + NK) against the product's O(MNK), and the packed data is half the bytes.
 * The micro-kernel is 6×64 as in fp32: 24 accumulators, per pair step 4 vector loads of B,
 * 6 broadcasts of A, 24 dot products (768 flops).
 *
 * Determinism: the K blocking depends only on K (even-sized blocks, so pairs never straddle two),
 * every element of C goes through the same pair sums in the same order whatever tile, block or
 * thread computes it, and edge tiles use a padded copy of C with the same micro-kernel. */
#define MR 6
#define NR 64
#define KC 256 /* depth elements per block (even) */
#define KQ (KC / 2)
#define MC 192 /* a multiple of MR and of 16 */
#define NC 2048
#define GEMM_SLOTS 16

static uint32_t pack_a[GEMM_SLOTS][MC * KQ] __attribute__((aligned(64)));
static uint32_t pack_b[GEMM_SLOTS][KQ * NC] __attribute__((aligned(64)));

#define C_LOAD 1
#define C_BIAS 2
/* One part per thread: packing converts to bf16 as it copies, so the re-packing that smaller parts
 * bring costs more than in fp32, more than their balance gains. */
#define GEMM_PARTS_PER_THREAD 1

#include "gemm_driver.h"

/* dst[q*ldd + r] = word q of r[r] for a 16×16 block of 32-bit words, in registers. */
static inline void transpose16_store(__m512i* rr, uint32_t* dst, int64_t ldd) {
  __m512 r[16];
  for (int i = 0; i < 16; i++) r[i] = _mm512_castsi512_ps(rr[i]);
  tv_transpose16(r);
  for (int i = 0; i < 16; i++) _mm512_store_ps((float*)dst + i * ldd, r[i]);
}

/* ---- micro-kernel: C[MR×NR] (+)= Σ_q A pairs ⊗ B pairs ------------------------------------------- */
static inline __attribute__((always_inline)) void micro_kernel_t(
    int kq, const uint32_t* restrict ap, int64_t a_rs, int64_t a_cs, const uint32_t* restrict bp,
    float* c, int64_t ldc, int flags, const float* bias) {
  __m512 acc[MR][4];
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) acc[i][j] = _mm512_setzero_ps();
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) {
    _mm_prefetch((const char*)(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch((const char*)(c + i * ldc + 16), _MM_HINT_T0);
    _mm_prefetch((const char*)(c + i * ldc + 32), _MM_HINT_T0);
    _mm_prefetch((const char*)(c + i * ldc + 48), _MM_HINT_T0);
  }
#pragma GCC unroll 2
  for (int q = 0; q < kq; q++) {
    __m512bh b0 = (__m512bh)_mm512_load_si512(bp), b1 = (__m512bh)_mm512_load_si512(bp + 16);
    __m512bh b2 = (__m512bh)_mm512_load_si512(bp + 32), b3 = (__m512bh)_mm512_load_si512(bp + 48);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
      __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[i * a_rs]);
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a, b1);
      acc[i][2] = _mm512_dpbf16_ps(acc[i][2], a, b2);
      acc[i][3] = _mm512_dpbf16_ps(acc[i][3], a, b3);
    }
    ap += a_cs;
    bp += NR;
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
      __m512 v = acc[i][j];
      if (flags & C_LOAD) v = _mm512_add_ps(_mm512_loadu_ps(c + i * ldc + 16 * j), v);
      if (flags & C_BIAS) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + 16 * j));
      _mm512_storeu_ps(c + i * ldc + 16 * j, v);
    }
  }
}

static void micro_kernel(int kq, const uint32_t* ap, int64_t a_rs, int64_t a_cs, const uint32_t* bp,
                         float* c, int64_t ldc, int flags, const float* bias) {
  if (a_cs == 1) micro_kernel_t(kq, ap, a_rs, 1, bp, c, ldc, flags, bias);
  else micro_kernel_t(kq, ap, 1, a_cs, bp, c, ldc, flags, bias);
}

/* An edge tile: the same micro-kernel on a padded copy of C. */
static void edge_kernel(int kq, const uint32_t* ap, int64_t a_rs, int64_t a_cs, const uint32_t* bp,
                        float* c, int64_t ldc, int mr, int nr, int flags, const float* bias) {
  float tile[MR * NR] __attribute__((aligned(64)));
  float bias_pad[NR] __attribute__((aligned(64)));
  memset(tile, 0, sizeof(tile));
  memset(bias_pad, 0, sizeof(bias_pad));
  if (flags & C_LOAD)
    for (int i = 0; i < mr; i++) memcpy(tile + i * NR, c + i * ldc, (size_t)nr * sizeof(float));
  if (flags & C_BIAS) memcpy(bias_pad, bias, (size_t)nr * sizeof(float));
  micro_kernel(kq, ap, a_rs, a_cs, bp, tile, NR, flags, bias_pad);
  for (int i = 0; i < mr; i++) memcpy(c + i * ldc, tile + i * NR, (size_t)nr * sizeof(float));
}

/* ---- packing ------------------------------------------------------------------------------------ */

/* B depth [0,kc) × cols [0,nc) into NR-column micro-panels of kq = ⌈kc/2⌉ pair rows each:
 * panel[q*NR + j]. Columns past nc and the pad of an odd depth are zero. */
static void pack_b_block(uint32_t* restrict dst, const float* b, int64_t rs, int64_t cs, int kc, int nc) {
  const int kq = (kc + 1) / 2;
  for (int j0 = 0; j0 < nc; j0 += NR, dst += (size_t)kq * NR) {
    const int nr = nc - j0 < NR ? nc - j0 : NR;
    if (cs == 1) {
      /* Rows contiguous in j (dinp: weight; dweight: inp): two depth rows interleaved. */
      const float* src = b + j0;
      for (int q = 0; q < kq; q++) {
        const float* r0 = src + (int64_t)(2 * q) * rs;
        const float* r1 = r0 + rs;
        const int odd = 2 * q + 1 < kc;
        for (int v = 0; v < NR / 16; v++) {
          __mmask16 m = tv_lanes(nr - 16 * v);
          __m512 e = _mm512_maskz_loadu_ps(m, r0 + 16 * v);
          __m512 o = odd ? _mm512_maskz_loadu_ps(m, r1 + 16 * v) : _mm512_setzero_ps();
          _mm512_store_si512(dst + (size_t)q * NR + 16 * v, tv_bf16_interleave(e, o));
        }
      }
    } else {
      /* Columns contiguous in depth (forward: weight rows): pairs are neighbours in memory;
       * 16 columns × 16 pairs at a time, transposed in registers. */
      const float* src = b + (int64_t)j0 * cs;
      for (int q0 = 0; q0 < kq; q0 += 16) {
        const int qn = kq - q0 < 16 ? kq - q0 : 16;
        for (int jb = 0; jb < NR; jb += 16) {
          __m512i r[16];
          for (int t = 0; t < 16; t++)
            r[t] = jb + t < nr ? tv_bf16_pairs(src + (int64_t)(jb + t) * cs + 2 * q0, kc - 2 * q0)
                               : _mm512_setzero_si512();
          if (qn == 16) {
            transpose16_store(r, dst + (size_t)q0 * NR + jb, NR);
          } else {
            uint32_t tmp[16 * 16] __attribute__((aligned(64)));
            transpose16_store(r, tmp, 16);
            for (int u = 0; u < qn; u++) memcpy(dst + (size_t)(q0 + u) * NR + jb, tmp + 16 * u, 64);
          }
        }
      }
    }
  }
}

/* A rows [0,mc) × depth [0,kc) into pairs. Depth-contiguous rows (forward: inp, dinp: dout) give
 * dst[i*kq + q] (rows padded with zeros to a multiple of MR); row-contiguous depth (dweight: dout
 * seen transposed) gives dst[q*mcp + i], mcp = mc rounded up to 16. Sets the strides (in words)
 * the micro-kernel reads with. */
static void pack_a_block(uint32_t* restrict dst, const float* a, int64_t rs, int64_t cs, int mc, int kc,
                         int64_t* a_rs, int64_t* a_cs) {
  const int kq = (kc + 1) / 2;
  if (cs == 1) {
    const int mcp = (mc + MR - 1) / MR * MR;
    for (int i = 0; i < mcp; i++) {
      uint32_t* d = dst + (size_t)i * kq;
      if (i < mc) {
        const float* src = a + (int64_t)i * rs;
        int q0 = 0;
        for (; q0 + 16 <= kq; q0 += 16) _mm512_storeu_si512(d + q0, tv_bf16_pairs(src + 2 * q0, kc - 2 * q0));
        if (q0 < kq) _mm512_mask_storeu_epi32(d + q0, tv_lanes(kq - q0), tv_bf16_pairs(src + 2 * q0, kc - 2 * q0));
      } else {
        memset(d, 0, (size_t)kq * sizeof(uint32_t));
      }
    }
    *a_rs = kq;
    *a_cs = 1;
  } else {
    const int mcp = (mc + 15) / 16 * 16;
    for (int q = 0; q < kq; q++) {
      const float* r0 = a + (int64_t)(2 * q) * cs;
      const float* r1 = r0 + cs;
      const int odd = 2 * q + 1 < kc;
      for (int i0 = 0; i0 < mcp; i0 += 16) {
        __mmask16 m = tv_lanes(mc - i0);
        __m512 e = _mm512_maskz_loadu_ps(m, r0 + i0);
        __m512 o = odd ? _mm512_maskz_loadu_ps(m, r1 + i0) : _mm512_setzero_ps();
        _mm512_store_si512(dst + (size_t)q * mcp + i0, tv_bf16_interleave(e, o));
      }
    }
    *a_rs = 1;
    *a_cs = mcp;
  }
}

/* ---- the loop nest ---------------------------------------------------------------------------- */

/* Depth blocks of nearly equal, even size, at most KC: a function of K alone. */
static int k_block(int k) {
  int nblocks = (k + KC - 1) / KC;
  int kb = (k + nblocks - 1) / nblocks;
  return (kb + 1) & ~1;
}

/* Packing A reads its source once, and for the big operands (dout of the LM head: M·V floats) that
 * is from memory; done as a phase of its own, the dot products wait for it. So while one block's
 * products run, the next block's source lines are requested a few per micro-kernel call, and
 * packing it then reads from cache (the fp32 engine reads most of A in place and gains nothing from
 * the same). The cursor walks the block's source as
 * `outer` runs of `lines` cache lines (64 bytes = 16 floats). */
typedef struct {
  const float* base;
  int64_t stride; /* floats between runs */
  int outer, lines;
  int run, line;  /* the next line to request */
  int per_call;
} a_prefetch;

/* Aim the cursor at A's rows [ic, ic+mc) × depth [pc, pc+kc), spread over `calls` calls. */
static void a_prefetch_start(a_prefetch* p, const gemm_args* g, int ic, int mc, int pc, int kc, int calls) {
  p->base = g->a + (int64_t)ic * g->a_rs + (int64_t)pc * g->a_cs;
  if (g->a_cs == 1) p->stride = g->a_rs, p->outer = mc, p->lines = (kc + 15) / 16;
  else p->stride = g->a_cs, p->outer = kc, p->lines = (mc + 15) / 16;
  p->run = p->line = 0;
  p->per_call = (int)(((int64_t)p->outer * p->lines + calls - 1) / calls);
}

static inline void a_prefetch_some(a_prefetch* p) {
  for (int n = 0; n < p->per_call && p->run < p->outer; n++) {
    _mm_prefetch((const char*)(p->base + p->run * p->stride + p->line * 16), _MM_HINT_T1);
    if (++p->line == p->lines) p->line = 0, p->run++;
  }
}

static void gemm_region(const gemm_args* g, int i_begin, int i_end, int j_begin, int j_end, int slot) {
  uint32_t* pa = pack_a[slot];
  uint32_t* pb = pack_b[slot];
  const int kb = k_block(g->k);
  for (int jc = j_begin; jc < j_end; jc += NC) {
    const int nc = j_end - jc < NC ? j_end - jc : NC;
    for (int pc = 0; pc < g->k; pc += kb) {
      const int kc = g->k - pc < kb ? g->k - pc : kb, kq = (kc + 1) / 2;
      int flags = (pc > 0 || g->accumulate) ? C_LOAD : 0;
      if (pc == 0 && g->bias) flags |= C_BIAS;
      pack_b_block(pb, g->b + pc * g->b_rs + jc * g->b_cs, g->b_rs, g->b_cs, kc, nc);
      for (int ic = i_begin; ic < i_end; ic += MC) {
        const int mc = i_end - ic < MC ? i_end - ic : MC;
        int64_t a_rs, a_cs;
        pack_a_block(pa, g->a + (int64_t)ic * g->a_rs + (int64_t)pc * g->a_cs, g->a_rs, g->a_cs, mc, kc,
                     &a_rs, &a_cs);
        /* The block packed next: the next rows, else the first rows of the next depth block. */
        a_prefetch pf;
        const int calls = (nc + NR - 1) / NR * ((mc + MR - 1) / MR);
        if (ic + MC < i_end) {
          const int ic2 = ic + MC;
          a_prefetch_start(&pf, g, ic2, i_end - ic2 < MC ? i_end - ic2 : MC, pc, kc, calls);
        } else {
          const int pc2 = pc + kb < g->k ? pc + kb : 0;
          a_prefetch_start(&pf, g, i_begin, i_end - i_begin < MC ? i_end - i_begin : MC, pc2,
                           g->k - pc2 < kb ? g->k - pc2 : kb, calls);
        }
        for (int jr = 0; jr < nc; jr += NR) {
          const int nr = nc - jr < NR ? nc - jr : NR;
          const uint32_t* bp = pb + (size_t)jr * kq;
          const float* bias = g->bias ? g->bias + jc + jr : NULL;
          for (int ir = 0; ir < mc; ir += MR) {
            const int mr = mc - ir < MR ? mc - ir : MR;
            const uint32_t* ap = pa + ir * a_rs;
            a_prefetch_some(&pf);
            float* c = g->c + (int64_t)(ic + ir) * g->ldc + jc + jr;
            if (mr == MR && nr == NR) micro_kernel(kq, ap, a_rs, a_cs, bp, c, g->ldc, flags, bias);
            else edge_kernel(kq, ap, a_rs, a_cs, bp, c, g->ldc, mr, nr, flags, bias);
          }
        }
      }
    }
  }
}

void TV_FN(matmul_forward_bf16)(float* out, const float* inp, const float* weight, const float* bias,
                                int M, int K, int N) {
  gemm_args g = {.a = inp, .a_rs = K, .a_cs = 1, .b = weight, .b_rs = 1, .b_cs = K,
                 .c = out, .ldc = N, .bias = bias, .accumulate = 0, .m = M, .n = N, .k = K};
  gemm(&g);
}

void TV_FN(matmul_backward_bf16)(float* dinp, float* dweight, float* dbias, const float* dout,
                                 const float* inp, const float* weight, int M, int K, int N) {
  if (dinp) {
    gemm_args g = {.a = dout, .a_rs = N, .a_cs = 1, .b = weight, .b_rs = K, .b_cs = 1,
                   .c = dinp, .ldc = K, .bias = NULL, .accumulate = 0, .m = M, .n = K, .k = N};
    gemm(&g);
  }
  if (dweight) {
    gemm_args g = {.a = dout, .a_rs = 1, .a_cs = N, .b = inp, .b_rs = K, .b_cs = 1,
                   .c = dweight, .ldc = K, .bias = NULL, .accumulate = 1, .m = N, .n = K, .k = M};
    gemm(&g);
  }
  /* The bias gradient has no products: the fp32 column sums. */
  if (dbias) TV_FN(matmul_backward)(NULL, NULL, dbias, dout, inp, weight, M, K, N);
}

#define NS_FORWARD_SMALL(out, a, b, M, K, N) 0 /* tv_matmul_forward_bf16 has no gemv path */
#include "newton_schulz.h"

void TV_FN(newton_schulz_bf16)(float* const* xs, const int32_t* rows, const int32_t* cols,
                               int count, int steps, const float* coefficients, float* scratch,
                               int64_t side2, int64_t per_thread) {
  ns_run(xs, rows, cols, count, steps, coefficients, scratch, side2, per_thread);
}

#else

void TV_FN(matmul_forward_bf16)(float* out, const float* inp, const float* weight, const float* bias,
                                int M, int K, int N) {
  TV_FN(matmul_forward)(out, inp, weight, bias, M, K, N);
}

void TV_FN(matmul_backward_bf16)(float* dinp, float* dweight, float* dbias, const float* dout,
                                 const float* inp, const float* weight, int M, int K, int N) {
  TV_FN(matmul_backward)(dinp, dweight, dbias, dout, inp, weight, M, K, N);
}

void TV_FN(newton_schulz_bf16)(float* const* xs, const int32_t* rows, const int32_t* cols,
                               int count, int steps, const float* coefficients, float* scratch,
                               int64_t side2, int64_t per_thread) {
  TV_FN(newton_schulz)(xs, rows, cols, count, steps, coefficients, scratch, side2, per_thread);
}

#endif
