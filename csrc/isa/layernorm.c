/* layernorm.c — layer normalization over the last dimension (eps = 1e-5), forward and backward,
 * and the forward fused with the residual add before it.
 *
 * Forward, per row: mean, then the variance from the centered values (two passes over a row that
 * sits in L1, so no cancellation from E[x²] − mean²), rstd = 1/√(var + eps).
 * Backward, per row, with n = (x − mean)·rstd and g = dout·weight:
 *   dinp += rstd·(g − mean(g) − n·mean(g·n))
 * and over rows dweight += Σ dout·n, dbias += Σ dout. All three come from one pass over each row
 * (while it is in L1). The column sums must not depend on the thread count, so the rows are cut
 * into chunks fixed by M and C alone; each chunk sums its rows in order into its own partial rows
 * (from 0), and the partials are then added into dweight and dbias in chunk order. (Summing a slice
 * of columns over all rows per thread instead reads every row a second time, many of them from the
 * other core's cache, which costs more than the second thread saves.) */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "../kernels.h"
#include "../threads.h"
#include "norm_chunks.h"
#include "simd.h"

#define LN_EPS 1e-5f
#define SERIAL_BELOW 16384 /* elements (M·C) below which threads do not pay */
#define PARTIAL_FLOATS (1 << 17) /* the backward's chunk partials of dweight and dbias (512 KiB) */

/* Kernels never allocate, and one kernel runs at a time: the partials are static. */
static float partials[PARTIAL_FLOATS] __attribute__((aligned(64)));

typedef struct {
  float* out;          /* [M,C] */
  float* mean;         /* [M] */
  float* rstd;         /* [M] */
  const float* inp;    /* [M,C] (the fused residual: its output, written first) */
  const float* weight; /* [C] */
  const float* bias;   /* [C] */
  int M, C;
  float* resid;        /* fused residual: resid = ra + rb, written first (resid == inp), or NULL */
  const float* ra;
  const float* rb;
} fwd_ctx;

static void fwd_rows(void* arg, int64_t r0, int64_t r1) {
  const fwd_ctx* c = (const fwd_ctx*)arg;
  const int C = c->C;
  const float* w = c->weight;
  const float* b = c->bias;
  for (int64_t r = r0; r < r1; r++) {
    const float* x = c->inp + r * C;
    float* out = c->out + r * C;
    if (c->resid) {
      /* The residual row is written and then normalized while it is still in L1. */
      float* xr = c->resid + r * C;
      const float* a = c->ra + r * C;
      const float* bb = c->rb + r * C;
      for (int i = 0; i < C; i++) xr[i] = a[i] + bb[i];
    }
    float mu = tv_row_sum(x, C) / (float)C;
    /* The centered row goes to out first; the variance is its dot with itself. */
    for (int i = 0; i < C; i++) out[i] = x[i] - mu;
    float var = tv_row_dot(out, out, C) / (float)C;
    float s = 1.0f / sqrtf(var + LN_EPS);
    for (int i = 0; i < C; i++) out[i] = out[i] * s * w[i] + b[i];
    c->mean[r] = mu;
    c->rstd[r] = s;
  }
}

void TV_FN(layernorm_forward)(float* out, float* mean, float* rstd, const float* inp,
                              const float* weight, const float* bias, int M, int C) {
  fwd_ctx c = {out, mean, rstd, inp, weight, bias, M, C, NULL, NULL, NULL};
  if ((int64_t)M * C < SERIAL_BELOW) fwd_rows(&c, 0, M);
  else tv_parallel_for(M, fwd_rows, &c);
}

/* resid = a + b, then out = layernorm(resid): the residual add and the LayerNorm after it in one
 * pass over the rows (the same arithmetic, so the same bytes, as the two kernels one after the
 * other). resid may alias a or b. */
void TV_FN(residual_layernorm_forward)(float* resid, float* out, float* mean, float* rstd,
                                       const float* a, const float* b, const float* weight,
                                       const float* bias, int M, int C) {
  fwd_ctx c = {out, mean, rstd, resid, weight, bias, M, C, resid, a, b};
  if ((int64_t)M * C < SERIAL_BELOW) fwd_rows(&c, 0, M);
  else tv_parallel_for(M, fwd_rows, &c);
}

typedef struct {
  float* dinp;         /* [M,C] */
  float* dweight;      /* [C] or NULL */
  float* dbias;        /* [C] or NULL */
  const float* dout;   /* [M,C] */
  const float* inp;    /* [M,C] */
  const float* weight; /* [C] */
  const float* mean;   /* [M] */
  const float* rstd;   /* [M] */
  int M, C;
} bwd_ctx;

/* Σ g and Σ g·n over one row, g = dout·w, n = (x − mu)·s. */
static inline void row_sums(const float* dout, const float* x, const float* w, float mu, float s,
                            int C, float* sum_g, float* sum_gn) {
#if defined(__AVX512F__)
  __m512 ag = _mm512_setzero_ps(), agn = _mm512_setzero_ps();
  __m512 vmu = _mm512_set1_ps(mu), vs = _mm512_set1_ps(s);
  int i = 0;
  for (; i + 16 <= C; i += 16) {
    __m512 g = _mm512_mul_ps(_mm512_loadu_ps(dout + i), _mm512_loadu_ps(w + i));
    __m512 n = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmu), vs);
    ag = _mm512_add_ps(ag, g);
    agn = _mm512_fmadd_ps(g, n, agn);
  }
  if (i < C) {
    __mmask16 k = tv_tail_mask(C - i);
    __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, dout + i), _mm512_maskz_loadu_ps(k, w + i));
    __m512 n = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vmu), vs);
    ag = _mm512_add_ps(ag, g);
    agn = _mm512_fmadd_ps(g, n, agn);
  }
  *sum_g = _mm512_reduce_add_ps(ag);
  *sum_gn = _mm512_reduce_add_ps(agn);
#elif defined(__AVX2__)
  __m256 ag = _mm256_setzero_ps(), agn = _mm256_setzero_ps();
  __m256 vmu = _mm256_set1_ps(mu), vs = _mm256_set1_ps(s);
  int i = 0;
  for (; i + 8 <= C; i += 8) {
    __m256 g = _mm256_mul_ps(_mm256_loadu_ps(dout + i), _mm256_loadu_ps(w + i));
    __m256 n = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmu), vs);
    ag = _mm256_add_ps(ag, g);
    agn = _mm256_fmadd_ps(g, n, agn);
  }
  float sg = tv_hsum256(ag), sgn = tv_hsum256(agn);
  for (; i < C; i++) {
    float g = dout[i] * w[i];
    sg += g;
    sgn += g * ((x[i] - mu) * s);
  }
  *sum_g = sg;
  *sum_gn = sgn;
#else
  float sg = 0.0f, sgn = 0.0f;
  for (int i = 0; i < C; i++) {
    float g = dout[i] * w[i];
    sg += g;
    sgn += g * ((x[i] - mu) * s);
  }
  *sum_g = sg;
  *sum_gn = sgn;
#endif
}

/* Rows [r0, r1): dinp, and when pdw/pdb are given, their column sums over these rows in order. */
static void bwd_rows(const bwd_ctx* c, int64_t r0, int64_t r1, float* restrict pdw, float* restrict pdb) {
  const int C = c->C;
  const float* w = c->weight;
  const float invC = 1.0f / (float)C;
  for (int64_t r = r0; r < r1; r++) {
    const float* restrict x = c->inp + r * C;
    const float* restrict dout = c->dout + r * C;
    float* restrict dinp = c->dinp + r * C;
    const float mu = c->mean[r], s = c->rstd[r];
    float sum_g, sum_gn;
    row_sums(dout, x, w, mu, s, C, &sum_g, &sum_gn);
    const float mg = sum_g * invC, mgn = sum_gn * invC;
    /* One loop; the tests of pdw and pdb do not vary in it, and -O3 hoists them out (unswitching). */
    for (int i = 0; i < C; i++) {
      const float n = (x[i] - mu) * s;
      dinp[i] += s * (dout[i] * w[i] - mg - n * mgn);
      if (pdw) pdw[i] += dout[i] * n;
      if (pdb) pdb[i] += dout[i];
    }
  }
}

typedef struct {
  const bwd_ctx* c;
  int64_t chunk_rows;
  int64_t stride; /* floats between partial rows: C rounded up to a cache line, so chunks share none */
} bwd_chunks;

/* Chunks [k0, k1): each into its own partial rows (dweight's, then dbias's). */
static void bwd_chunk_range(void* arg, int64_t k0, int64_t k1) {
  const bwd_chunks* b = (const bwd_chunks*)arg;
  const bwd_ctx* c = b->c;
  const int C = c->C;
  for (int64_t k = k0; k < k1; k++) {
    float* pdw = c->dweight ? partials + k * 2 * b->stride : NULL;
    float* pdb = c->dbias ? partials + k * 2 * b->stride + b->stride : NULL;
    if (pdw) memset(pdw, 0, sizeof(float) * (size_t)C);
    if (pdb) memset(pdb, 0, sizeof(float) * (size_t)C);
    const int64_t r0 = k * b->chunk_rows, r1 = r0 + b->chunk_rows < c->M ? r0 + b->chunk_rows : c->M;
    bwd_rows(c, r0, r1, pdw, pdb);
  }
}

static void bwd_dinp_range(void* arg, int64_t r0, int64_t r1) { bwd_rows((const bwd_ctx*)arg, r0, r1, NULL, NULL); }

void TV_FN(layernorm_backward)(float* dinp, float* dweight, float* dbias, const float* dout,
                               const float* inp, const float* weight, const float* mean,
                               const float* rstd, int M, int C) {
  bwd_ctx c = {dinp, dweight, dbias, dout, inp, weight, mean, rstd, M, C};
  const int serial = (int64_t)M * C < SERIAL_BELOW;
  if (!dweight && !dbias) {
    if (serial) bwd_rows(&c, 0, M, NULL, NULL);
    else tv_parallel_for(M, bwd_dinp_range, &c);
    return;
  }
  /* The chunking is a function of M and C alone (never of the threads). */
  const int64_t stride = ((int64_t)C + 15) & ~(int64_t)15;
  const int64_t max_chunks = PARTIAL_FLOATS / (2 * stride);
  if (max_chunks < 1) { /* C above 65520: one pass, summed straight into the result */
    bwd_rows(&c, 0, M, dweight, dbias);
    return;
  }
  const int64_t chunk_rows = norm_chunk_rows(M, max_chunks);
  const int64_t chunks = (M + chunk_rows - 1) / chunk_rows;
  bwd_chunks b = {&c, chunk_rows, stride};
  if (serial) bwd_chunk_range(&b, 0, chunks);
  else tv_parallel_for(chunks, bwd_chunk_range, &b);
  for (int64_t k = 0; k < chunks; k++) {
    if (dweight)
      for (int i = 0; i < C; i++) dweight[i] += partials[k * 2 * stride + i];
    if (dbias)
      for (int i = 0; i < C; i++) dbias[i] += partials[k * 2 * stride + stride + i];
  }
}
