/* adamw.c — the optimizer's element-wise kernels: the AdamW step (with the clipping factor folded
 * in, so clipping costs no pass of its own, and optionally clearing the gradients as it reads them,
 * so clearing costs none either) and Σx² (for gradient-norm clipping).
 *
 * AdamW is element-wise: any split over threads gives the same bytes, and plain loops
 * vectorize at every ISA level (sqrt and division included, since errno is off).
 * sum_squares is a reduction: it is cut into fixed chunks of SSQ_CHUNK elements whatever the
 * thread count, each chunk is summed in double in a fixed lane order, and the chunk partials are
 * added in chunk order. The partials live on the caller's stack, one round of SSQ_ROUND chunks at
 * a time, so the kernel needs no allocation for any N. */
#include <math.h>

#include "../kernels.h"
#include "../threads.h"
#include "simd.h"

#define SERIAL_BELOW 32768
#define BLOCK 1024
#define SSQ_CHUNK 16384
#define SSQ_ROUND 64

typedef struct {
  float* params;      /* [N] */
  float* m;           /* [N] first moment */
  float* v;           /* [N] second moment */
  float* grads;       /* [N], set to 0 as it is read when clear */
  int clear;
  int64_t N;
  float lr, beta1, beta2, eps, wd;
  float inv_bc1, inv_bc2; /* 1/(1−β1ᵗ), 1/(1−β2ᵗ) */
  float gscale;           /* gradient clipping factor */
} adamw_ctx;

/* One range of elements; `clear` is a constant in each of the two copies adamw_range makes, so
 * neither loop carries a test per element. */
static inline __attribute__((always_inline)) void adamw_elements(const adamw_ctx* c, int64_t i0, int64_t i1,
                                                                 const int clear) {
  float* restrict p = c->params;
  float* restrict m = c->m;
  float* restrict v = c->v;
  float* restrict g = c->grads;
  const float b1 = c->beta1, b2 = c->beta2, a1 = 1.0f - c->beta1, a2 = 1.0f - c->beta2;
  const float lr = c->lr, eps = c->eps, wd = c->wd, ib1 = c->inv_bc1, ib2 = c->inv_bc2, gs = c->gscale;
  for (int64_t i = i0; i < i1; i++) {
    float gi = g[i] * gs; /* the same float as scaling the gradient in place first */
    if (clear) g[i] = 0.0f;
    float mi = b1 * m[i] + a1 * gi;
    float vi = b2 * v[i] + a2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float update = (mi * ib1) / (sqrtf(vi * ib2) + eps);
    p[i] -= lr * (update + wd * p[i]);
  }
}

static void adamw_range(void* arg, int64_t k0, int64_t k1) {
  const adamw_ctx* c = (const adamw_ctx*)arg;
  int64_t i0 = k0 * BLOCK, i1 = k1 * BLOCK < c->N ? k1 * BLOCK : c->N;
  if (c->clear) adamw_elements(c, i0, i1, 1);
  else adamw_elements(c, i0, i1, 0);
}

void TV_FN(adamw_step)(float* params, float* m, float* v, float* grads, int64_t N, float lr,
                       float beta1, float beta2, float eps, float weight_decay, float grad_scale, int t,
                       int clear_grads) {
  /* Bias corrections in double: for β2 = 0.999 and small t, 1 − β2ᵗ loses digits in float. */
  float inv_bc1 = (float)(1.0 / (1.0 - pow((double)beta1, (double)t)));
  float inv_bc2 = (float)(1.0 / (1.0 - pow((double)beta2, (double)t)));
  adamw_ctx c = {params, m, v, grads, clear_grads, N, lr, beta1, beta2, eps, weight_decay,
                 inv_bc1, inv_bc2, grad_scale};
  int64_t blocks = (N + BLOCK - 1) / BLOCK;
  if (N < SERIAL_BELOW) adamw_range(&c, 0, blocks);
  else tv_parallel_for(blocks, adamw_range, &c);
}

/* Σ x[i]² for i < n in double; the lane order depends only on n and the ISA level. */
static double chunk_sum_squares(const float* x, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
  for (; i + 16 <= n; i += 16) {
    __m512d lo = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
    __m512d hi = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
    a0 = _mm512_fmadd_pd(lo, lo, a0);
    a1 = _mm512_fmadd_pd(hi, hi, a1);
  }
  double s = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
#elif defined(__AVX2__)
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  for (; i + 8 <= n; i += 8) {
    __m256d lo = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
    __m256d hi = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
    a0 = _mm256_fmadd_pd(lo, lo, a0);
    a1 = _mm256_fmadd_pd(hi, hi, a1);
  }
  __m256d a = _mm256_add_pd(a0, a1);
  __m128d h = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  double s = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
#else
  double lane[4] = {0, 0, 0, 0};
  for (; i + 4 <= n; i += 4)
    for (int k = 0; k < 4; k++) lane[k] += (double)x[i + k] * (double)x[i + k];
  double s = (lane[0] + lane[1]) + (lane[2] + lane[3]);
#endif
  for (; i < n; i++) s += (double)x[i] * (double)x[i];
  return s;
}

typedef struct {
  const float* x; /* [N] */
  int64_t N;
  int64_t first_chunk; /* chunk index of partial[0] in this round */
  double* partial;     /* [SSQ_ROUND] */
} ssq_ctx;

static void ssq_chunks(void* arg, int64_t k0, int64_t k1) {
  const ssq_ctx* c = (const ssq_ctx*)arg;
  for (int64_t k = k0; k < k1; k++) {
    int64_t i0 = (c->first_chunk + k) * SSQ_CHUNK;
    int64_t n = c->N - i0 < SSQ_CHUNK ? c->N - i0 : SSQ_CHUNK;
    c->partial[k] = chunk_sum_squares(c->x + i0, n);
  }
}

void TV_FN(sum_squares)(double* out, const float* x, int64_t N) {
  double partial[SSQ_ROUND];
  ssq_ctx c = {x, N, 0, partial};
  int64_t chunks = (N + SSQ_CHUNK - 1) / SSQ_CHUNK;
  double total = 0.0;
  for (int64_t first = 0; first < chunks; first += SSQ_ROUND) {
    int64_t n = chunks - first < SSQ_ROUND ? chunks - first : SSQ_ROUND;
    c.first_chunk = first;
    if (n == 1) ssq_chunks(&c, 0, 1);
    else tv_parallel_for(n, ssq_chunks, &c);
    for (int64_t k = 0; k < n; k++) total += partial[k];
  }
  *out = total;
}
