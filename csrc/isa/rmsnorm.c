/* rmsnorm.c — RMS normalization over the last dimension (Llama's RMSNorm), forward and backward.
 *
 * Forward, per row: rstd = 1/√(mean(x²) + eps), out = x·rstd·weight (no centering, no bias).
 * Backward, per row, with n = x·rstd and g = dout·weight:
 *   dinp += rstd·(g − n·mean(g·n))
 * and over rows dweight += Σ dout·n, both from one pass over each row. dweight is summed as in
 * layernorm.c, so that it does not depend on the thread count: the rows are cut into chunks fixed
 * by M and C alone (the same chunks as LayerNorm's), each chunk sums its rows in order into its own
 * partial row (from 0), and the partials are then added into dweight in chunk order. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "../kernels.h"
#include "../threads.h"
#include "norm_chunks.h"
#include "simd.h"

#define SERIAL_BELOW 16384 /* elements (M·C) below which threads do not pay */
#define PARTIAL_FLOATS (1 << 16) /* the backward's chunk partials of dweight: one row per chunk */

/* Kernels never allocate, and one kernel runs at a time: the partials are static. */
static float partials[PARTIAL_FLOATS] __attribute__((aligned(64)));

typedef struct {
  float* out;          /* [M,C] */
  float* rstd;         /* [M] */
  const float* inp;    /* [M,C] */
  const float* weight; /* [C] */
  int M, C;
  float eps;
} fwd_ctx;

static void fwd_rows(void* arg, int64_t r0, int64_t r1) {
  const fwd_ctx* c = (const fwd_ctx*)arg;
  const int C = c->C;
  const float* restrict w = c->weight;
  for (int64_t r = r0; r < r1; r++) {
    const float* restrict x = c->inp + r * C;
    float* restrict out = c->out + r * C;
    const float s = 1.0f / sqrtf(tv_row_dot(x, x, C) / (float)C + c->eps);
    for (int i = 0; i < C; i++) out[i] = x[i] * s * w[i];
    c->rstd[r] = s;
  }
}

void TV_FN(rmsnorm_forward)(float* out, float* rstd, const float* inp, const float* weight, int M,
                            int C, float eps) {
  fwd_ctx c = {out, rstd, inp, weight, M, C, eps};
  if ((int64_t)M * C < SERIAL_BELOW) fwd_rows(&c, 0, M);
  else tv_parallel_for(M, fwd_rows, &c);
}

typedef struct {
  float* dinp;         /* [M,C] */
  float* dweight;      /* [C] or NULL */
  const float* dout;   /* [M,C] */
  const float* inp;    /* [M,C] */
  const float* weight; /* [C] */
  const float* rstd;   /* [M] */
  int M, C;
} bwd_ctx;

/* Σ dout·w·x over one row (Σ g·n is this times rstd). */
static inline float row_dot3(const float* dout, const float* w, const float* x, int C) {
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int i = 0;
  for (; i + 32 <= C; i += 32) {
    a0 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_loadu_ps(dout + i), _mm512_loadu_ps(w + i)), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_loadu_ps(dout + i + 16), _mm512_loadu_ps(w + i + 16)),
                         _mm512_loadu_ps(x + i + 16), a1);
  }
  for (; i + 16 <= C; i += 16)
    a0 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_loadu_ps(dout + i), _mm512_loadu_ps(w + i)), _mm512_loadu_ps(x + i), a0);
  if (i < C) {
    __mmask16 k = tv_tail_mask(C - i);
    a1 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, dout + i), _mm512_maskz_loadu_ps(k, w + i)),
                         _mm512_maskz_loadu_ps(k, x + i), a1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
#elif defined(__AVX2__)
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= C; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(dout + i), _mm256_loadu_ps(w + i)), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(dout + i + 8), _mm256_loadu_ps(w + i + 8)),
                         _mm256_loadu_ps(x + i + 8), a1);
  }
  for (; i + 8 <= C; i += 8)
    a0 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(dout + i), _mm256_loadu_ps(w + i)), _mm256_loadu_ps(x + i), a0);
  if (i < C) {
    __m256i k = tv_tail_mask8(C - i);
    a1 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_maskload_ps(dout + i, k), _mm256_maskload_ps(w + i, k)),
                         _mm256_maskload_ps(x + i, k), a1);
  }
  return tv_hsum256(_mm256_add_ps(a0, a1));
#else
  float s = 0.0f;
  for (int i = 0; i < C; i++) s += dout[i] * w[i] * x[i];
  return s;
#endif
}

/* Rows [r0, r1): dinp, and when pdw is given, its column sums over these rows in order. */
static void bwd_rows(const bwd_ctx* c, int64_t r0, int64_t r1, float* restrict pdw) {
  const int C = c->C;
  const float* restrict w = c->weight;
  const float invC = 1.0f / (float)C;
  for (int64_t r = r0; r < r1; r++) {
    const float* restrict x = c->inp + r * C;
    const float* restrict dout = c->dout + r * C;
    float* restrict dinp = c->dinp + r * C;
    const float s = c->rstd[r];
    const float mgn = row_dot3(dout, w, x, C) * s * invC;
    /* One loop; the test of pdw does not vary in it, and -O3 hoists it out (unswitching). */
    for (int i = 0; i < C; i++) {
      const float n = x[i] * s;
      dinp[i] += s * (dout[i] * w[i] - n * mgn);
      if (pdw) pdw[i] += dout[i] * n;
    }
  }
}

typedef struct {
  const bwd_ctx* c;
  int64_t chunk_rows;
  int64_t stride; /* floats between partial rows: C rounded up to a cache line, so chunks share none */
} bwd_chunks;

static void bwd_chunk_range(void* arg, int64_t k0, int64_t k1) {
  const bwd_chunks* b = (const bwd_chunks*)arg;
  const bwd_ctx* c = b->c;
  for (int64_t k = k0; k < k1; k++) {
    float* pdw = partials + k * b->stride;
    memset(pdw, 0, sizeof(float) * (size_t)c->C);
    const int64_t r0 = k * b->chunk_rows, r1 = r0 + b->chunk_rows < c->M ? r0 + b->chunk_rows : c->M;
    bwd_rows(c, r0, r1, pdw);
  }
}

static void bwd_dinp_range(void* arg, int64_t r0, int64_t r1) { bwd_rows((const bwd_ctx*)arg, r0, r1, NULL); }

void TV_FN(rmsnorm_backward)(float* dinp, float* dweight, const float* dout, const float* inp,
                             const float* weight, const float* rstd, int M, int C) {
  bwd_ctx c = {dinp, dweight, dout, inp, weight, rstd, M, C};
  const int serial = (int64_t)M * C < SERIAL_BELOW;
  if (!dweight) {
    if (serial) bwd_rows(&c, 0, M, NULL);
    else tv_parallel_for(M, bwd_dinp_range, &c);
    return;
  }
  /* The chunking is a function of M and C alone (never of the threads). */
  const int64_t stride = ((int64_t)C + 15) & ~(int64_t)15;
  const int64_t max_chunks = PARTIAL_FLOATS / stride;
  if (max_chunks < 1) { /* C above 65520: one pass, summed straight into the result */
    bwd_rows(&c, 0, M, dweight);
    return;
  }
  const int64_t chunk_rows = norm_chunk_rows(M, max_chunks);
  const int64_t chunks = (M + chunk_rows - 1) / chunk_rows;
  bwd_chunks b = {&c, chunk_rows, stride};
  if (serial) bwd_chunk_range(&b, 0, chunks);
  else tv_parallel_for(chunks, bwd_chunk_range, &b);
  for (int64_t k = 0; k < chunks; k++)
    for (int i = 0; i < C; i++) dweight[i] += partials[k * stride + i];
}
