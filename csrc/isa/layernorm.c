/* layernorm.c — layer normalization over the last dimension (eps = 1e-5), forward and backward,
 * and the forward fused with the residual add before it.
 *
 * Forward, per row: mean, then the variance from the centered values (two passes over a row that
 * sits in L1, so no cancellation from E[x²] − mean²), rstd = 1/√(var + eps).
 * Backward, per row, with n = (x − mean)·rstd and g = dout·weight:
 *   dinp += rstd·(g − mean(g) − n·mean(g·n))
 * and over rows dweight += Σ dout·n, dbias += Σ dout. Those two column sums must not depend on the
 * thread count: each thread owns a slice of columns and adds every row into it in row order, while
 * dinp is split by rows. Both halves only read the inputs, so they run in the same job. */
#include <math.h>
#include <stddef.h>

#include "../kernels.h"
#include "../threads.h"
#include "simd.h"

#define LN_EPS 1e-5f
#define SERIAL_BELOW 16384 /* elements (M·C) below which threads do not pay */
#define COL_GROUP 16       /* dweight columns per slice unit: one cache line */
#define COL_BLOCK 1024     /* columns per pass over the rows, so the dweight slice stays in L1 */

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

static void bwd_dinp_rows(const bwd_ctx* c, int64_t r0, int64_t r1) {
  const int C = c->C;
  const float* w = c->weight;
  const float invC = 1.0f / (float)C;
  for (int64_t r = r0; r < r1; r++) {
    const float* x = c->inp + r * C;
    const float* dout = c->dout + r * C;
    float* dinp = c->dinp + r * C;
    const float mu = c->mean[r], s = c->rstd[r];
    float sum_g, sum_gn;
    row_sums(dout, x, w, mu, s, C, &sum_g, &sum_gn);
    const float mg = sum_g * invC, mgn = sum_gn * invC;
    for (int i = 0; i < C; i++) {
      float n = (x[i] - mu) * s;
      dinp[i] += s * (dout[i] * w[i] - mg - n * mgn);
    }
  }
}

/* dweight[c0:c1] += Σ_m dout·n and dbias[c0:c1] += Σ_m dout, rows in order. */
static void bwd_columns(const bwd_ctx* c, int c0, int c1) {
  const int C = c->C;
  for (int b0 = c0; b0 < c1; b0 += COL_BLOCK) {
    int b1 = b0 + COL_BLOCK < c1 ? b0 + COL_BLOCK : c1;
    for (int64_t r = 0; r < c->M; r++) {
      const float* x = c->inp + r * C;
      const float* dout = c->dout + r * C;
      const float mu = c->mean[r], s = c->rstd[r];
      if (c->dweight) {
        float* restrict dw = c->dweight;
        for (int i = b0; i < b1; i++) dw[i] += dout[i] * ((x[i] - mu) * s);
      }
      if (c->dbias) {
        float* restrict db = c->dbias;
        for (int i = b0; i < b1; i++) db[i] += dout[i];
      }
    }
  }
}

static void bwd_job(void* arg, int tid, int nthreads) {
  const bwd_ctx* c = (const bwd_ctx*)arg;
  int64_t r0 = (int64_t)c->M * tid / nthreads, r1 = (int64_t)c->M * (tid + 1) / nthreads;
  if (r1 > r0) bwd_dinp_rows(c, r0, r1);
  if (c->dweight || c->dbias) {
    int64_t groups = (c->C + COL_GROUP - 1) / COL_GROUP;
    int64_t g0 = groups * tid / nthreads, g1 = groups * (tid + 1) / nthreads;
    int c0 = (int)(g0 * COL_GROUP), c1 = (int)(g1 * COL_GROUP < c->C ? g1 * COL_GROUP : c->C);
    if (c1 > c0) bwd_columns(c, c0, c1);
  }
}

void TV_FN(layernorm_backward)(float* dinp, float* dweight, float* dbias, const float* dout,
                               const float* inp, const float* weight, const float* mean,
                               const float* rstd, int M, int C) {
  bwd_ctx c = {dinp, dweight, dbias, dout, inp, weight, mean, rstd, M, C};
  if ((int64_t)M * C < SERIAL_BELOW) bwd_job(&c, 0, 1);
  else tv_parallel_run(bwd_job, &c);
}
