/* swiglu.c — the SwiGLU gate of a Llama-style MLP, forward and backward.
 *
 * Each row of inp[N,2H] holds gate | up (one matmul makes both); out[N,H] = silu(gate)·up with
 * silu(x) = x·σ(x), σ(x) = 1/(1 + e^(−x)). Backward, with s = σ(gate) and 1 − s = e^(−gate)·s
 * (no cancellation where s ≈ 1):
 *   dgate = dout·up·s·(1 + gate·(1 − s)),  dup = dout·gate·s
 * As in gelu.c, the vector paths take exp from simd.h and the portable path is a plain loop on
 * expf. Element-wise, so any thread split gives the same bytes. */
#include <math.h>
#include <stddef.h>

#include "../kernels.h"
#include "../threads.h"
#include "simd.h"

#define SERIAL_BELOW 16384 /* elements (N·H) below which threads do not pay */

typedef struct {
  float* out;        /* forward: out[N,H]; backward: dinp[N,2H] (overwritten; may be inp) */
  const float* inp;  /* [N,2H] */
  const float* dout; /* [N,H], backward only */
  int H;
} swiglu_ctx;

#if defined(__AVX512F__)
/* s = σ(x); *e = e^(−x), saturating near FLT_MAX instead of inf, so e·s stays finite. */
static inline __m512 sigmoid_vec(__m512 x, __m512* e) {
  *e = tv_exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
  return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), *e));
}
#elif defined(__AVX2__)
static inline __m256 sigmoid_vec(__m256 x, __m256* e) {
  *e = tv_exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
  return _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), *e));
}
#else
/* The scalar path caps the argument so that e·s never is inf·0. */
static inline float sigmoid_1(float x, float* e) {
  *e = expf(-x < 88.0f ? -x : 88.0f);
  return 1.0f / (1.0f + *e);
}
#endif

static void fwd_rows(void* arg, int64_t r0, int64_t r1) {
  const swiglu_ctx* c = (const swiglu_ctx*)arg;
  const int H = c->H;
  for (int64_t r = r0; r < r1; r++) {
    const float* gate = c->inp + r * 2 * H;
    const float* up = gate + H;
    float* out = c->out + r * H;
    int i = 0;
#if defined(__AVX512F__)
    __m512 e;
    for (; i + 16 <= H; i += 16) {
      __m512 g = _mm512_loadu_ps(gate + i);
      __m512 s = sigmoid_vec(g, &e);
      _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_mul_ps(g, s), _mm512_loadu_ps(up + i)));
    }
    if (i < H) {
      __mmask16 k = tv_tail_mask(H - i);
      __m512 g = _mm512_maskz_loadu_ps(k, gate + i);
      __m512 s = sigmoid_vec(g, &e);
      _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(_mm512_mul_ps(g, s), _mm512_maskz_loadu_ps(k, up + i)));
    }
#elif defined(__AVX2__)
    __m256 e;
    for (; i + 8 <= H; i += 8) {
      __m256 g = _mm256_loadu_ps(gate + i);
      __m256 s = sigmoid_vec(g, &e);
      _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(g, s), _mm256_loadu_ps(up + i)));
    }
    if (i < H) {
      __m256i k = tv_tail_mask8(H - i);
      __m256 g = _mm256_maskload_ps(gate + i, k);
      __m256 s = sigmoid_vec(g, &e);
      _mm256_maskstore_ps(out + i, k, _mm256_mul_ps(_mm256_mul_ps(g, s), _mm256_maskload_ps(up + i, k)));
    }
#else
    for (; i < H; i++) {
      float e;
      out[i] = gate[i] * sigmoid_1(gate[i], &e) * up[i];
    }
#endif
  }
}

static void bwd_rows(void* arg, int64_t r0, int64_t r1) {
  const swiglu_ctx* c = (const swiglu_ctx*)arg;
  const int H = c->H;
  for (int64_t r = r0; r < r1; r++) {
    /* dinp may be inp: every element is read before the same element is written. */
    const float* gate = c->inp + r * 2 * H;
    const float* up = gate + H;
    const float* dout = c->dout + r * H;
    float* dgate = c->out + r * 2 * H;
    float* dup = dgate + H;
    int i = 0;
#if defined(__AVX512F__)
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 e;
    for (; i + 16 <= H; i += 16) {
      __m512 g = _mm512_loadu_ps(gate + i), u = _mm512_loadu_ps(up + i), d = _mm512_loadu_ps(dout + i);
      __m512 s = sigmoid_vec(g, &e);
      __m512 ds = _mm512_mul_ps(d, s);
      __m512 dsilu = _mm512_fmadd_ps(g, _mm512_mul_ps(e, s), one);
      _mm512_storeu_ps(dgate + i, _mm512_mul_ps(_mm512_mul_ps(ds, u), dsilu));
      _mm512_storeu_ps(dup + i, _mm512_mul_ps(ds, g));
    }
    if (i < H) {
      __mmask16 k = tv_tail_mask(H - i);
      __m512 g = _mm512_maskz_loadu_ps(k, gate + i), u = _mm512_maskz_loadu_ps(k, up + i);
      __m512 d = _mm512_maskz_loadu_ps(k, dout + i);
      __m512 s = sigmoid_vec(g, &e);
      __m512 ds = _mm512_mul_ps(d, s);
      __m512 dsilu = _mm512_fmadd_ps(g, _mm512_mul_ps(e, s), one);
      _mm512_mask_storeu_ps(dgate + i, k, _mm512_mul_ps(_mm512_mul_ps(ds, u), dsilu));
      _mm512_mask_storeu_ps(dup + i, k, _mm512_mul_ps(ds, g));
    }
#elif defined(__AVX2__)
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e;
    for (; i + 8 <= H; i += 8) {
      __m256 g = _mm256_loadu_ps(gate + i), u = _mm256_loadu_ps(up + i), d = _mm256_loadu_ps(dout + i);
      __m256 s = sigmoid_vec(g, &e);
      __m256 ds = _mm256_mul_ps(d, s);
      __m256 dsilu = _mm256_fmadd_ps(g, _mm256_mul_ps(e, s), one);
      _mm256_storeu_ps(dgate + i, _mm256_mul_ps(_mm256_mul_ps(ds, u), dsilu));
      _mm256_storeu_ps(dup + i, _mm256_mul_ps(ds, g));
    }
    if (i < H) {
      __m256i k = tv_tail_mask8(H - i);
      __m256 g = _mm256_maskload_ps(gate + i, k), u = _mm256_maskload_ps(up + i, k);
      __m256 d = _mm256_maskload_ps(dout + i, k);
      __m256 s = sigmoid_vec(g, &e);
      __m256 ds = _mm256_mul_ps(d, s);
      __m256 dsilu = _mm256_fmadd_ps(g, _mm256_mul_ps(e, s), one);
      _mm256_maskstore_ps(dgate + i, k, _mm256_mul_ps(_mm256_mul_ps(ds, u), dsilu));
      _mm256_maskstore_ps(dup + i, k, _mm256_mul_ps(ds, g));
    }
#else
    for (; i < H; i++) {
      const float g = gate[i], u = up[i], d = dout[i];
      float e;
      const float s = sigmoid_1(g, &e);
      const float ds = d * s;
      dgate[i] = ds * u * (1.0f + g * (e * s));
      dup[i] = ds * g;
    }
#endif
  }
}

void TV_FN(swiglu_forward)(float* out, const float* inp, int N, int H) {
  swiglu_ctx c = {out, inp, NULL, H};
  if ((int64_t)N * H < SERIAL_BELOW) fwd_rows(&c, 0, N);
  else tv_parallel_for(N, fwd_rows, &c);
}

void TV_FN(swiglu_backward)(float* dinp, const float* inp, const float* dout, int N, int H) {
  swiglu_ctx c = {dinp, inp, dout, H};
  if ((int64_t)N * H < SERIAL_BELOW) bwd_rows(&c, 0, N);
  else tv_parallel_for(N, bwd_rows, &c);
}
