/* matmul.c — the three matrix products of a linear layer, y = x·Wᵀ + b:
 *   forward  out[M,N]      = inp[M,K] · weight[N,K]ᵀ (+ bias)
 *   dinp     dinp[M,K]     = dout[M,N] · weight[N,K]
 *   dweight  dweight[N,K] += dout[M,N]ᵀ · inp[M,K]
 * All three are one GEMM, C(i,j) (+)= Σ_p A(i,p)·B(p,j), with A and B described by strides, so one
 * blocked, register-tiled engine serves them (the Goto/BLIS loop nest):
 *
 *   for jc in N by NC:            B block KC×NC packed (L3 / L2)
 *     for pc in K by KC:          the reduction is blocked; blocks are added to C in order
 *       pack B block
 *       for ic in M by MC:        MC rows of A, read in place (stay in L2)
 *         for jr in NC by NR:     one B micro-panel KC×NR ...
 *           for ir in MC by MR:   ... meets MR-row panels of A in turn
 *             MR×NR micro-kernel, accumulators in registers
 *
 * B is packed into depth-major micro-panels (transposed with 16×16 register transposes where the
 * layout needs it: the forward pass's weight). A is not packed at all (see micro_kernel_a): in every
 * layout one of its strides is 1, and reading it in place costs less than packing it. Edge tiles
 * go through a padded scratch tile and the same micro-kernel, so every element of C sees exactly the
 * same sequence of floating-point operations.
 *
 * Threads: the output is cut into row ranges (or column ranges) of whole tiles, up to two per
 * thread (gemm_driver.h says when), which threads claim one at a time, each with its own packing
 * buffers. The reduction order of an element depends only on K and the fixed KC blocking, never on
 * which part or thread computes it, so results are bit-identical for any thread count. (Buffers
 * are indexed by the pool's thread index: this kernel must not be called from inside another
 * parallel job.) Kernels never allocate: the buffers are static. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../kernels.h"
#include "../threads.h"
#include "simd.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

/* ---- blocking parameters per ISA ------------------------------------------------------------- */
#if defined(__AVX512F__)
/* 6×64: 24 zmm accumulators + 4 B vectors + 1 broadcast = 29 of 32 registers; per k step 24 FMAs
 * (12 cycles at two FMAs per cycle) against 4 vector loads and 6 broadcasts. KC is deeper than a B
 * micro-panel in the 48 KiB L1 would allow: fewer passes over C, and L2 feeds the B stream fast
 * enough. MC = 144 keeps a 216 KiB block of A beside the B stream in the 1 MiB L2 (a larger block
 * did worse on the training shapes). */
#define MR 6
#define NR 64
#define KC 384
#define MC 144
#define NC 2048
#elif defined(__AVX2__)
/* 6×16: 12 ymm accumulators + 2 B vectors + 1 broadcast. */
#define MR 6
#define NR 16
#define KC 256
#define MC 96
#define NC 2048
#else
/* Portable vectors (SSE2 on x86-64, NEON on arm64): 4×8, eight 4-wide accumulators, which with the
 * two B vectors fit the 16 registers of SSE2. */
#define MR 4
#define NR 8
#define KC 256
#define MC 64
#define NC 1024
#endif

/* Packing buffers for at most this many threads; more threads than this leave the rest idle
 * (harmless: the partition never changes results). */
#define GEMM_SLOTS 16

static float pack_a[GEMM_SLOTS][MR * KC] __attribute__((aligned(64)));
static float pack_b[GEMM_SLOTS][KC * NC] __attribute__((aligned(64)));
/* A whole MC×KC block of A as MR-row panels, for the layouts whose in-place reads alias (below). */
static float pack_a_block[GEMM_SLOTS][MC * KC] __attribute__((aligned(64)));

/* What the micro-kernel does with C after summing its KC block. */
#define C_LOAD 1 /* add the existing C (accumulate, or a later K block) */
#define C_BIAS 2 /* add bias[j] (forward, first K block) */

#include "gemm_driver.h"

/* ---- micro-kernels: C[MR×NR] (ldc) = Σ_p Ap[p][0..MR) ⊗ Bp[p][0..NR) (+ C) (+ bias) ---------- */
#if defined(__AVX512F__)
static inline __attribute__((always_inline)) void micro_kernel_t(
    int kc, const float* restrict ap, int64_t a_rs, int64_t a_cs, const float* restrict bp, float* c,
    int64_t ldc, int flags, const float* bias) {
  __m512 acc[MR][4];
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) acc[i][j] = _mm512_setzero_ps();
  /* C is added after the loop, so its cache lines have the whole loop to arrive. */
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) {
    _mm_prefetch((const char*)(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch((const char*)(c + i * ldc + 16), _MM_HINT_T0);
    _mm_prefetch((const char*)(c + i * ldc + 32), _MM_HINT_T0);
    _mm_prefetch((const char*)(c + i * ldc + 48), _MM_HINT_T0);
  }
#pragma GCC unroll 2
  for (int p = 0; p < kc; p++) {
    __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
    __m512 b2 = _mm512_load_ps(bp + 32), b3 = _mm512_load_ps(bp + 48);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
      __m512 a = _mm512_set1_ps(ap[i * a_rs]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(a, b2, acc[i][2]);
      acc[i][3] = _mm512_fmadd_ps(a, b3, acc[i][3]);
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
#elif defined(__AVX2__)
static inline __attribute__((always_inline)) void micro_kernel_t(
    int kc, const float* restrict ap, int64_t a_rs, int64_t a_cs, const float* restrict bp, float* c,
    int64_t ldc, int flags, const float* bias) {
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (int p = 0; p < kc; p++) {
    __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
      __m256 a = _mm256_broadcast_ss(ap + i * a_rs);
      acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
    }
    ap += a_cs;
    bp += NR;
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) {
#pragma GCC unroll 2
    for (int j = 0; j < 2; j++) {
      __m256 v = acc[i][j];
      if (flags & C_LOAD) v = _mm256_add_ps(_mm256_loadu_ps(c + i * ldc + 8 * j), v);
      if (flags & C_BIAS) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + 8 * j));
      _mm256_storeu_ps(c + i * ldc + 8 * j, v);
    }
  }
}
#else
/* GCC/Clang vector extensions: SSE2 on x86-64, NEON on arm64, scalar code elsewhere. Written with
 * explicit vectors because the compiler, left to itself, vectorized the wrong loop and kept the
 * accumulators in memory. */
typedef float v4f __attribute__((vector_size(16)));
static inline v4f load4(const float* p) {
  v4f v;
  memcpy(&v, p, sizeof(v));
  return v;
}
static inline __attribute__((always_inline)) void micro_kernel_t(
    int kc, const float* restrict ap, int64_t a_rs, int64_t a_cs, const float* restrict bp, float* c,
    int64_t ldc, int flags, const float* bias) {
  v4f acc[MR][NR / 4];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR / 4; j++) acc[i][j] = (v4f){0, 0, 0, 0};
  for (int p = 0; p < kc; p++) {
    v4f b[NR / 4];
    for (int j = 0; j < NR / 4; j++) b[j] = load4(bp + 4 * j);
    for (int i = 0; i < MR; i++) {
      float a = ap[i * a_rs];
      v4f av = {a, a, a, a};
      for (int j = 0; j < NR / 4; j++) acc[i][j] += av * b[j];
    }
    ap += a_cs;
    bp += NR;
  }
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR / 4; j++) {
      v4f v = acc[i][j];
      if (flags & C_LOAD) v = load4(c + i * ldc + 4 * j) + v;
      if (flags & C_BIAS) v = v + load4(bias + 4 * j);
      memcpy(c + i * ldc + 4 * j, &v, sizeof(v));
    }
}
#endif

/* A is never copied: A(i,p) = a[i*rs + p*cs] is read in place, and in every layout here one of the
 * strides is 1. Rows contiguous in depth (forward: inp, dinp: dout) would need a transpose to pack,
 * a large share of the whole product when N is small; dweight's A (dout seen
 * transposed) is contiguous along i, six neighbours per depth step. Either way the MR rows of a
 * panel stream through L1 once per B micro-panel. Only a last partial panel is copied, zero-padded,
 * into a small buffer (rs = 1, cs = MR). */
static void micro_kernel_a(int kc, const float* a, int64_t rs, int64_t cs, const float* bp, float* c,
                           int64_t ldc, int flags, const float* bias) {
  if (cs == 1) micro_kernel_t(kc, a, rs, 1, bp, c, ldc, flags, bias);
  else micro_kernel_t(kc, a, 1, cs, bp, c, ldc, flags, bias);
}

/* An edge tile (nr < NR): run the same micro-kernel on a padded copy of C, so the arithmetic of
 * every element is exactly that of a full tile. */
static void edge_kernel(int kc, const float* a, int64_t rs, int64_t cs, const float* bp, float* c,
                        int64_t ldc, int mr, int nr, int flags, const float* bias) {
  float tile[MR * NR] __attribute__((aligned(64)));
  float bias_pad[NR] __attribute__((aligned(64)));
  memset(tile, 0, sizeof(tile));
  memset(bias_pad, 0, sizeof(bias_pad));
  if (flags & C_LOAD)
    for (int i = 0; i < mr; i++) memcpy(tile + i * NR, c + i * ldc, (size_t)nr * sizeof(float));
  if (flags & C_BIAS) memcpy(bias_pad, bias, (size_t)nr * sizeof(float));
  micro_kernel_a(kc, a, rs, cs, bp, tile, NR, flags, bias_pad);
  for (int i = 0; i < mr; i++) memcpy(c + i * ldc, tile + i * NR, (size_t)nr * sizeof(float));
}

/* ---- packing --------------------------------------------------------------------------------- */

/* The last mr < MR rows of A, depth [0,kc), as one zero-padded panel: dst[p*MR + i]. */
static void pack_a_edge(float* restrict dst, const float* a, int64_t rs, int64_t cs, int mr, int kc) {
  for (int p = 0; p < kc; p++)
    for (int i = 0; i < MR; i++) dst[p * MR + i] = i < mr ? a[i * rs + p * cs] : 0.0f;
}

#if defined(__AVX512F__)
/* dst[q*ldd + r] = src[r*lds + q] for a 16×16 block, in registers: 64 shuffles instead of 256
 * scalar strided stores (the forward pass packs the whole weight matrix this way). */
static inline void transpose16(float* dst, int64_t ldd, const float* src, int64_t lds) {
  __m512 r[16];
  for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
  tv_transpose16(r);
  for (int i = 0; i < 16; i++) _mm512_storeu_ps(dst + i * ldd, r[i]);
}
#endif

/* B block depth [0,kc) × cols [0,nc) into NR-column micro-panels, each depth-major: panel[p*NR + j].
 * Columns past nc are zero. */
static void pack_b_block(float* restrict dst, const float* b, int64_t rs, int64_t cs, int kc, int nc) {
  for (int j0 = 0; j0 < nc; j0 += NR) {
    int nr = nc - j0 < NR ? nc - j0 : NR;
    const float* src = b + (int64_t)j0 * cs;
    if (cs == 1) {
      /* Rows contiguous in j (dinp: weight; dweight: inp): copies of NR floats. */
      for (int p = 0; p < kc; p++) {
        const float* row = src + (int64_t)p * rs;
        float* d = dst + (size_t)p * NR;
        if (nr == NR) {
          for (int j = 0; j < NR; j++) d[j] = row[j];
        } else {
          for (int j = 0; j < nr; j++) d[j] = row[j];
          for (int j = nr; j < NR; j++) d[j] = 0.0f;
        }
      }
    } else if (rs == 1) {
      /* Columns contiguous in depth (forward: weight rows): a transpose. */
#if defined(__AVX512F__)
      if (nr == NR) {
        int p = 0;
        for (; p + 16 <= kc; p += 16)
          for (int j = 0; j < NR; j += 16) transpose16(dst + (size_t)p * NR + j, NR, src + (int64_t)j * cs + p, cs);
        for (; p < kc; p++)
          for (int j = 0; j < NR; j++) dst[p * NR + j] = src[j * cs + p];
        dst += (size_t)NR * kc;
        continue;
      }
#endif
      for (int j = 0; j < nr; j++) {
        const float* col = src + (int64_t)j * cs;
        for (int p = 0; p < kc; p++) dst[p * NR + j] = col[p];
      }
      for (int j = nr; j < NR; j++)
        for (int p = 0; p < kc; p++) dst[p * NR + j] = 0.0f;
    } else {
      for (int p = 0; p < kc; p++)
        for (int j = 0; j < NR; j++) dst[p * NR + j] = j < nr ? src[p * rs + j * cs] : 0.0f;
    }
    dst += (size_t)NR * kc;
  }
}

/* ---- the loop nest over one thread's part of C ------------------------------------------------ */

/* The K blocking depends only on K: blocks of nearly equal size, at most KC deep. */
static int k_block(int k) {
  int nblocks = (k + KC - 1) / KC;
  return (k + nblocks - 1) / nblocks;
}

static void gemm_region(const gemm_args* g, int i_begin, int i_end, int j_begin, int j_end, int slot) {
  float* pa = pack_a[slot];
  float* pb = pack_b[slot];
  const int kb = k_block(g->k);
  /* dweight reads A (dout seen transposed) in place with a stride of N floats per depth step. When
   * that stride is a multiple of 4 KiB (N = 1024, 3072, 8192, …) every depth step of a panel falls in
   * the same L1 set, the panel cannot stay in L1, and it is fetched again from L2 for every B
   * micro-panel: there, copy each MC-row block of A into panels once per B block, when enough B
   * micro-panels (n ≥ 8·NR) share the copy to pay for it. The copy changes no arithmetic, so results
   * are the same bytes either way. */
  const int pack_all = g->a_rs == 1 && g->a_cs % 1024 == 0 && g->n >= 8 * NR;
  float* pa_block = pack_a_block[slot];
  for (int jc = j_begin; jc < j_end; jc += NC) {
    int nc = j_end - jc < NC ? j_end - jc : NC;
    for (int pc = 0; pc < g->k; pc += kb) {
      int kc = g->k - pc < kb ? g->k - pc : kb;
      int flags = (pc > 0 || g->accumulate) ? C_LOAD : 0;
      if (pc == 0 && g->bias) flags |= C_BIAS;
      pack_b_block(pb, g->b + pc * g->b_rs + jc * g->b_cs, g->b_rs, g->b_cs, kc, nc);
      /* MC rows of A at a time, so the part of A that meets every B micro-panel stays in L2. */
      for (int ic = i_begin; ic < i_end; ic += MC) {
        int mc = i_end - ic < MC ? i_end - ic : MC;
        int full = mc / MR * MR;
        if (pack_all) {
          for (int ir = 0; ir < mc; ir += MR)
            pack_a_edge(pa_block + (size_t)ir * kc, g->a + (int64_t)(ic + ir) * g->a_rs + (int64_t)pc * g->a_cs,
                        g->a_rs, g->a_cs, mc - ir < MR ? mc - ir : MR, kc);
        } else if (full < mc)
          pack_a_edge(pa, g->a + (int64_t)(ic + full) * g->a_rs + (int64_t)pc * g->a_cs, g->a_rs,
                      g->a_cs, mc - full, kc);
        for (int jr = 0; jr < nc; jr += NR) {
          int nr = nc - jr < NR ? nc - jr : NR;
          const float* bp = pb + (size_t)jr * kc;
          const float* bias = g->bias ? g->bias + jc + jr : NULL;
          for (int ir = 0; ir < mc; ir += MR) {
            float* c = g->c + (int64_t)(ic + ir) * g->ldc + jc + jr;
            if (pack_all) {
              const float* ap = pa_block + (size_t)ir * kc;
              int mr = mc - ir < MR ? mc - ir : MR;
              if (mr == MR && nr == NR) micro_kernel_a(kc, ap, 1, MR, bp, c, g->ldc, flags, bias);
              else edge_kernel(kc, ap, 1, MR, bp, c, g->ldc, mr, nr, flags, bias);
            } else if (ir < full) {
              const float* a = g->a + (int64_t)(ic + ir) * g->a_rs + (int64_t)pc * g->a_cs;
              if (nr == NR) micro_kernel_a(kc, a, g->a_rs, g->a_cs, bp, c, g->ldc, flags, bias);
              else edge_kernel(kc, a, g->a_rs, g->a_cs, bp, c, g->ldc, MR, nr, flags, bias);
            } else {
              edge_kernel(kc, pa, 1, MR, bp, c, g->ldc, mc - full, nr, flags, bias);
            }
          }
        }
      }
    }
  }
}

/* ---- small M (generation): out = W·x is a matrix-vector product, bound by reading W once ------ */

typedef struct {
  float* out;
  const float* inp;
  const float* weight;
  const float* bias;
  int M, K, N;
} gemv_args;

#define GEMV_MAX_M 4
#define GEMV_LANES 32

#if defined(__AVX512F__)
/* One output row block at a time (4 rows of W, then single rows), all M inputs against it while those
 * rows are in cache, so W is read from memory once. Each dot product keeps two accumulators (k and
 * k+16) whatever block it is in, so an element's arithmetic does not depend on the split. */
static void gemv_rows(void* arg, int64_t n0, int64_t n1) {
  const gemv_args* g = (const gemv_args*)arg;
  const int K = g->K, k32 = K & ~31, rem = K - k32;
  const __mmask16 m0 = rem >= 16 ? 0xFFFF : (__mmask16)((1u << rem) - 1);
  const __mmask16 m1 = rem > 16 ? (__mmask16)((1u << (rem - 16)) - 1) : 0;
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) {
    const float* w = g->weight + n * K;
    for (int m = 0; m < g->M; m++) {
      const float* x = g->inp + (int64_t)m * K;
      __m512 acc[4][2];
      for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
      for (int k = 0; k < k32; k += 32) {
        __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
          acc[r][0] = _mm512_fmadd_ps(_mm512_loadu_ps(w + r * K + k), x0, acc[r][0]);
          acc[r][1] = _mm512_fmadd_ps(_mm512_loadu_ps(w + r * K + k + 16), x1, acc[r][1]);
        }
      }
      if (rem) {
        __m512 x0 = _mm512_maskz_loadu_ps(m0, x + k32), x1 = _mm512_maskz_loadu_ps(m1, x + k32 + 16);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
          acc[r][0] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, w + r * K + k32), x0, acc[r][0]);
          acc[r][1] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, w + r * K + k32 + 16), x1, acc[r][1]);
        }
      }
      for (int r = 0; r < 4; r++) {
        float v = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
        g->out[(int64_t)m * g->N + n + r] = g->bias ? v + g->bias[n + r] : v;
      }
    }
  }
  for (; n < n1; n++) {
    const float* w = g->weight + n * K;
    for (int m = 0; m < g->M; m++) {
      const float* x = g->inp + (int64_t)m * K;
      __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
      for (int k = 0; k < k32; k += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + k), _mm512_loadu_ps(x + k), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + k + 16), _mm512_loadu_ps(x + k + 16), a1);
      }
      if (rem) {
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, w + k32), _mm512_maskz_loadu_ps(m0, x + k32), a0);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, w + k32 + 16), _mm512_maskz_loadu_ps(m1, x + k32 + 16), a1);
      }
      float v = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
      g->out[(int64_t)m * g->N + n] = g->bias ? v + g->bias[n] : v;
    }
  }
}
#else
/* Dot products with GEMV_LANES independent partial sums (vectorizable without reassociation),
 * folded in a fixed order. */
static void gemv_rows(void* arg, int64_t n0, int64_t n1) {
  const gemv_args* g = (const gemv_args*)arg;
  const int K = g->K, kv = K / GEMV_LANES * GEMV_LANES;
  for (int64_t n = n0; n < n1; n++) {
    const float* w = g->weight + n * K;
    for (int m = 0; m < g->M; m++) {
      const float* x = g->inp + (int64_t)m * K;
      float part[GEMV_LANES];
      for (int l = 0; l < GEMV_LANES; l++) part[l] = 0.0f;
      for (int k = 0; k < kv; k += GEMV_LANES)
        for (int l = 0; l < GEMV_LANES; l++) part[l] += w[k + l] * x[k + l];
      for (int k = kv; k < K; k++) part[k - kv] += w[k] * x[k];
      for (int width = GEMV_LANES / 2; width > 0; width /= 2)
        for (int l = 0; l < width; l++) part[l] += part[l + width];
      g->out[(int64_t)m * g->N + n] = g->bias ? part[0] + g->bias[n] : part[0];
    }
  }
}
#endif

/* ---- entry points ------------------------------------------------------------------------------ */

void TV_FN(matmul_forward)(float* out, const float* inp, const float* weight, const float* bias,
                           int M, int K, int N) {
  if (M <= GEMV_MAX_M) {
    gemv_args g = {out, inp, weight, bias, M, K, N};
    if ((int64_t)N * K < 65536) gemv_rows(&g, 0, N);
    else tv_parallel_for(N, gemv_rows, &g);
    return;
  }
  /* C = out[M,N], A = inp (row i, depth p: inp[i*K + p]), B(p,j) = weight[j*K + p]. */
  gemm_args g = {.a = inp, .a_rs = K, .a_cs = 1, .b = weight, .b_rs = 1, .b_cs = K,
                 .c = out, .ldc = N, .bias = bias, .accumulate = 0, .m = M, .n = N, .k = K};
  gemm(&g);
}

typedef struct {
  float* dbias;
  const float* dout;
  int M, N;
} dbias_args;

#define DBIAS_COLS 64

/* Column sums, one chunk of columns at a time; rows are summed in order for every column. */
static void dbias_cols(void* arg, int64_t c0, int64_t c1) {
  const dbias_args* g = (const dbias_args*)arg;
  for (int64_t chunk = c0; chunk < c1; chunk++) {
    int64_t j0 = chunk * DBIAS_COLS;
    int w = g->N - j0 < DBIAS_COLS ? (int)(g->N - j0) : DBIAS_COLS;
    float acc[DBIAS_COLS];
    for (int j = 0; j < DBIAS_COLS; j++) acc[j] = 0.0f;
    for (int m = 0; m < g->M; m++) {
      const float* row = g->dout + (int64_t)m * g->N + j0;
      if (w == DBIAS_COLS)
        for (int j = 0; j < DBIAS_COLS; j++) acc[j] += row[j];
      else
        for (int j = 0; j < w; j++) acc[j] += row[j];
    }
    for (int j = 0; j < w; j++) g->dbias[j0 + j] += acc[j];
  }
}

void TV_FN(matmul_backward)(float* dinp, float* dweight, float* dbias, const float* dout,
                            const float* inp, const float* weight, int M, int K, int N) {
  if (dinp) {
    /* C = dinp[M,K], depth N: A(i,p) = dout[i*N + p], B(p,j) = weight[p*K + j]. Overwritten: the
     * first depth block stores, so the caller need not clear a scratch gradient first. */
    gemm_args g = {.a = dout, .a_rs = N, .a_cs = 1, .b = weight, .b_rs = K, .b_cs = 1,
                   .c = dinp, .ldc = K, .bias = NULL, .accumulate = 0, .m = M, .n = K, .k = N};
    gemm(&g);
  }
  if (dweight) {
    /* C = dweight[N,K], depth M: A(i,p) = dout[p*N + i], B(p,j) = inp[p*K + j]. */
    gemm_args g = {.a = dout, .a_rs = 1, .a_cs = N, .b = inp, .b_rs = K, .b_cs = 1,
                   .c = dweight, .ldc = K, .bias = NULL, .accumulate = 1, .m = N, .n = K, .k = M};
    gemm(&g);
  }
  if (dbias) {
    dbias_args g = {dbias, dout, M, N};
    int64_t chunks = (N + DBIAS_COLS - 1) / DBIAS_COLS;
    if ((int64_t)M * N < 65536) dbias_cols(&g, 0, chunks);
    else tv_parallel_for(chunks, dbias_cols, &g);
  }
}

/* Newton–Schulz's x·Wᵀ products take tv_matmul_forward's path, gemv for a few rows. */
static int ns_forward_gemv(float* out, const float* a, const float* b, int M, int K, int N) {
  if (M > GEMV_MAX_M) return 0;
  gemv_args g = {out, a, b, NULL, M, K, N};
  gemv_rows(&g, 0, N);
  return 1;
}
#define NS_FORWARD_SMALL ns_forward_gemv
#include "newton_schulz.h"

void TV_FN(newton_schulz)(float* const* xs, const int32_t* rows, const int32_t* cols, int count,
                          int steps, const float* coefficients, float* scratch, int64_t side2,
                          int64_t per_thread) {
  ns_run(xs, rows, cols, count, steps, coefficients, scratch, side2, per_thread);
}
