/* gelu.c — GELU with the tanh approximation (GPT-2's activation) and its derivative.
 *
 *   gelu(x) = ½·x·(1 + tanh(u)),  u = √(2/π)·(x + 0.044715·x³)
 *
 * Every path uses the identity ½·(1 + tanh(u)) = σ(2u) = 1/(1 + e^(−2u)): one exp and one
 * division, and no cancellation (1 + tanh(u) computed as written loses bits when tanh(u) ≈ −1,
 * i.e. for negative x). For the derivative, with s = σ(2u):
 *   gelu'(x) = s + x·2s(1−s)·du/dx,  1 − s = e^(−2u)·s,  du/dx = √(2/π)·(1 + 3·0.044715·x²).
 * The vector paths take exp from simd.h. Element-wise, so any thread split gives the same bytes. */
#include <math.h>
#include <stddef.h>

#include "../kernels.h"
#include "../threads.h"
#include "simd.h"

#define GELU_K0 0.7978845608028654f /* √(2/π) */
#define GELU_K1 0.044715f
#define SERIAL_BELOW 16384
#define BLOCK 1024

typedef struct {
  float* out;        /* forward: out[N]; backward: dinp[N] (overwritten; may alias dout) */
  const float* inp;  /* [N] */
  const float* dout; /* [N], backward only */
  int64_t N;
} gelu_ctx;

#if defined(__AVX512F__)
/* Returns gelu(x); with want_grad, also *grad = gelu'(x). */
static inline __m512 gelu_vec(__m512 x, __m512* grad, int want_grad) {
  __m512 x2 = _mm512_mul_ps(x, x);
  __m512 u = _mm512_mul_ps(x, _mm512_fmadd_ps(x2, _mm512_set1_ps(GELU_K0 * GELU_K1), _mm512_set1_ps(GELU_K0)));
  /* tv_exp512 saturates near FLT_MAX instead of inf, so s and e·s stay finite for very negative x. */
  __m512 e = tv_exp512(_mm512_mul_ps(u, _mm512_set1_ps(-2.0f)));
  __m512 s = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
  if (want_grad) {
    __m512 dudx = _mm512_fmadd_ps(x2, _mm512_set1_ps(3.0f * GELU_K0 * GELU_K1), _mm512_set1_ps(GELU_K0));
    __m512 one_minus_s = _mm512_mul_ps(e, s);
    __m512 t = _mm512_mul_ps(_mm512_mul_ps(_mm512_add_ps(x, x), s), _mm512_mul_ps(one_minus_s, dudx));
    *grad = _mm512_add_ps(s, t);
  }
  return _mm512_mul_ps(x, s);
}
#elif defined(__AVX2__)
static inline __m256 gelu_vec(__m256 x, __m256* grad, int want_grad) {
  __m256 x2 = _mm256_mul_ps(x, x);
  __m256 u = _mm256_mul_ps(x, _mm256_fmadd_ps(x2, _mm256_set1_ps(GELU_K0 * GELU_K1), _mm256_set1_ps(GELU_K0)));
  /* tv_exp256 saturates at e^88.3 instead of inf, so s and e·s stay finite. */
  __m256 e = tv_exp256(_mm256_mul_ps(u, _mm256_set1_ps(-2.0f)));
  __m256 s = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
  if (want_grad) {
    __m256 dudx = _mm256_fmadd_ps(x2, _mm256_set1_ps(3.0f * GELU_K0 * GELU_K1), _mm256_set1_ps(GELU_K0));
    __m256 one_minus_s = _mm256_mul_ps(e, s);
    __m256 t = _mm256_mul_ps(_mm256_mul_ps(_mm256_add_ps(x, x), s), _mm256_mul_ps(one_minus_s, dudx));
    *grad = _mm256_add_ps(s, t);
  }
  return _mm256_mul_ps(x, s);
}
#endif

#if !defined(__AVX512F__) && !defined(__AVX2__)
/* σ(2u) for the scalar path; *e = e^(−2u), its argument capped so that e·σ never is inf·0. */
static inline float sigmoid_2u(float x, float* e) {
  float m2u = -2.0f * GELU_K0 * (x + GELU_K1 * x * x * x);
  *e = expf(m2u < 88.0f ? m2u : 88.0f);
  return 1.0f / (1.0f + *e);
}
#endif

static void fwd_range(void* arg, int64_t k0, int64_t k1) {
  const gelu_ctx* c = (const gelu_ctx*)arg;
  int64_t i = k0 * BLOCK, i1 = k1 * BLOCK < c->N ? k1 * BLOCK : c->N;
  const float* inp = c->inp;
  float* out = c->out;
#if defined(__AVX512F__)
  for (; i + 16 <= i1; i += 16) _mm512_storeu_ps(out + i, gelu_vec(_mm512_loadu_ps(inp + i), NULL, 0));
  if (i < i1) {
    __mmask16 k = tv_tail_mask((int)(i1 - i));
    _mm512_mask_storeu_ps(out + i, k, gelu_vec(_mm512_maskz_loadu_ps(k, inp + i), NULL, 0));
  }
#elif defined(__AVX2__)
  for (; i + 8 <= i1; i += 8) _mm256_storeu_ps(out + i, gelu_vec(_mm256_loadu_ps(inp + i), NULL, 0));
  if (i < i1) {
    __m256i k = tv_tail_mask8((int)(i1 - i));
    _mm256_maskstore_ps(out + i, k, gelu_vec(_mm256_maskload_ps(inp + i, k), NULL, 0));
  }
#else
  for (; i < i1; i++) {
    float x = inp[i], e;
    out[i] = x * sigmoid_2u(x, &e);
  }
#endif
}

static void bwd_range(void* arg, int64_t k0, int64_t k1) {
  const gelu_ctx* c = (const gelu_ctx*)arg;
  int64_t i = k0 * BLOCK, i1 = k1 * BLOCK < c->N ? k1 * BLOCK : c->N;
  const float* inp = c->inp;
  const float* dout = c->dout;
  float* dinp = c->out;
#if defined(__AVX512F__)
  __m512 g;
  for (; i + 16 <= i1; i += 16) {
    gelu_vec(_mm512_loadu_ps(inp + i), &g, 1);
    _mm512_storeu_ps(dinp + i, _mm512_mul_ps(g, _mm512_loadu_ps(dout + i)));
  }
  if (i < i1) {
    __mmask16 k = tv_tail_mask((int)(i1 - i));
    gelu_vec(_mm512_maskz_loadu_ps(k, inp + i), &g, 1);
    _mm512_mask_storeu_ps(dinp + i, k,
                          _mm512_mul_ps(g, _mm512_maskz_loadu_ps(k, dout + i)));
  }
#elif defined(__AVX2__)
  __m256 g;
  for (; i + 8 <= i1; i += 8) {
    gelu_vec(_mm256_loadu_ps(inp + i), &g, 1);
    _mm256_storeu_ps(dinp + i, _mm256_mul_ps(g, _mm256_loadu_ps(dout + i)));
  }
  if (i < i1) {
    __m256i k = tv_tail_mask8((int)(i1 - i));
    gelu_vec(_mm256_maskload_ps(inp + i, k), &g, 1);
    _mm256_maskstore_ps(dinp + i, k,
                        _mm256_mul_ps(g, _mm256_maskload_ps(dout + i, k)));
  }
#else
  for (; i < i1; i++) {
    float x = inp[i], e;
    float s = sigmoid_2u(x, &e);
    float dudx = GELU_K0 * (1.0f + 3.0f * GELU_K1 * x * x);
    dinp[i] = (s + 2.0f * x * s * (e * s) * dudx) * dout[i];
  }
#endif
}

void TV_FN(gelu_forward)(float* out, const float* inp, int64_t N) {
  gelu_ctx c = {out, inp, NULL, N};
  int64_t blocks = (N + BLOCK - 1) / BLOCK;
  if (N < SERIAL_BELOW) fwd_range(&c, 0, blocks);
  else tv_parallel_for(blocks, fwd_range, &c);
}

void TV_FN(gelu_backward)(float* dinp, const float* inp, const float* dout, int64_t N) {
  gelu_ctx c = {dinp, inp, dout, N};
  int64_t blocks = (N + BLOCK - 1) / BLOCK;
  if (N < SERIAL_BELOW) bwd_range(&c, 0, blocks);
  else tv_parallel_for(blocks, bwd_range, &c);
}
