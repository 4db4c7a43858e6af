/* simd.h — small vector helpers shared by the layer kernels in this folder: exp, and row
 * reductions with a fixed lane order. Included by files compiled once per ISA level, so each
 * level gets its own copy of these static inline functions.
 *
 * exp: range reduction x = n·ln2 + r with |r| <= ln2/2, e^r from the Cephes minimax polynomial
 * (about 1 ulp on that interval), then a multiply by 2^n. Inputs below about −87 return 0 or a
 * subnormal, so exp(−inf) is 0; results stay within ~2e-7 relative of libm's expf. */
#ifndef TV_ISA_SIMD_H
#define TV_ISA_SIMD_H
#include <math.h>
#include <stdint.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#define TV_LOG2E 1.44269504088896341f
#define TV_LN2_HI 0.693359375f
#define TV_LN2_LO (-2.12194440e-4f)
#define TV_EXP_P0 1.9875691500e-4f
#define TV_EXP_P1 1.3981999507e-3f
#define TV_EXP_P2 8.3334519073e-3f
#define TV_EXP_P3 4.1665795894e-2f
#define TV_EXP_P4 1.6666665459e-1f
#define TV_EXP_P5 5.0000001201e-1f

#if defined(__AVX512F__)
#define TV_VW 16 /* floats per vector */

static inline __m512 tv_exp512(__m512 x) {
  /* Clamp first: −inf must not reach the reduction (−inf − n·ln2 is NaN). scalef takes any n,
   * so very negative inputs underflow to exactly 0 without a separate blend. */
  x = _mm512_max_ps(x, _mm512_set1_ps(-110.0f));
  x = _mm512_min_ps(x, _mm512_set1_ps(88.72f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(TV_LOG2E)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(TV_LN2_HI), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(TV_LN2_LO), r);
  __m512 p = _mm512_set1_ps(TV_EXP_P0);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(TV_EXP_P1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(TV_EXP_P2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(TV_EXP_P3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(TV_EXP_P4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(TV_EXP_P5));
  __m512 r2 = _mm512_mul_ps(r, r);
  p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

/* In-register transpose of 16 rows of 16 floats: afterwards r[i][j] is the old r[j][i]. Used
 * wherever a kernel turns rows into columns (attention's tiles, the matmul engines' packing). */
static inline __attribute__((always_inline)) void tv_transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int i = 0; i < 4; i++) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 8; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}

/* _mm512_reduce_add_ps of four vectors at once, with the same additions in the same tree (lane i +
 * lane i+8, then j + j+4, then k + k+2, then 0 + 1), four sums per instruction instead of one. */
static inline __attribute__((always_inline)) __m128 tv_reduce_add4(__m512 a, __m512 b, __m512 c, __m512 d) {
  /* [a.t, b.t], [c.t, d.t] with t[i] = v[i] + v[i+8] */
  __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
  /* [a.u, b.u, c.u, d.u] with u[j] = t[j] + t[j+4] */
  __m512 u = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
  /* lane 0 of each quarter: (u0 + u2) + (u1 + u3) */
  __m512 w = _mm512_add_ps(u, _mm512_permute_ps(u, 0x4E));
  w = _mm512_add_ps(w, _mm512_permute_ps(w, 0xB1));
  return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), w));
}

/* A mask selecting the first n (< 16) lanes, for row tails. */
static inline __mmask16 tv_tail_mask(int n) { return (__mmask16)((1u << n) - 1u); }

/* The first n lanes for any n (all of them from 16 up, none below 1). */
static inline __mmask16 tv_lanes(int n) { return n >= 16 ? 0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

#if defined(__AVX512BF16__)
/* bf16 pairs, the operand form of vdpbf16ps (the bf16 matmul engine and attention's bf16 tiles):
 * 32-bit words holding two values rounded to bf16 (nearest even), the even-indexed one low. */

/* 16 pairs from 32 consecutive floats, of which the first n are read (the rest are zero):
 * word l = bf16(p[2l]) | bf16(p[2l+1]) << 16. */
static inline __m512i tv_bf16_pairs(const float* p, int n) {
  __m512 lo = _mm512_maskz_loadu_ps(tv_lanes(n), p), hi = _mm512_maskz_loadu_ps(tv_lanes(n - 16), p + 16);
  return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

/* 16 pairs from two vectors: word l = bf16(even[l]) | bf16(odd[l]) << 16. */
static inline __m512i tv_bf16_interleave(__m512 even, __m512 odd) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(odd, even));
}
#endif

#elif defined(__AVX2__)
#define TV_VW 8

static inline __m256 tv_exp256(__m256 x) {
  /* 2^n is built in the exponent field, which holds n in [−126, 127]: clamp to that range and
   * flush inputs below it to 0 (they would be subnormal, < 1.2e-38). */
  const __m256 lo = _mm256_set1_ps(-87.33f);
  __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_max_ps(x, lo);
  x = _mm256_min_ps(x, _mm256_set1_ps(88.3f));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(TV_LOG2E)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(TV_LN2_HI), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(TV_LN2_LO), r);
  __m256 p = _mm256_set1_ps(TV_EXP_P0);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(TV_EXP_P1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(TV_EXP_P2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(TV_EXP_P3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(TV_EXP_P4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(TV_EXP_P5));
  __m256 r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

/* Lane mask for the first n (< 8) lanes, for masked loads and stores of row tails. */
static inline __m256i tv_tail_mask8(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline float tv_hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
static inline float tv_hmax256(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#else
#define TV_VW 1
#endif

/* ---- row reductions: Σx, Σx·y, max x over n floats --------------------------------------- */
/* The summation order depends only on n and the ISA level, never on threads. */

static inline float tv_row_sum(const float* x, int n) {
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
    a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
  }
  for (; i + 16 <= n; i += 16) a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
  if (i < n) a1 = _mm512_add_ps(a1, _mm512_maskz_loadu_ps(tv_tail_mask(n - i), x + i));
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
#elif defined(__AVX2__)
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
  if (i < n) a1 = _mm256_add_ps(a1, _mm256_maskload_ps(x + i, tv_tail_mask8(n - i)));
  return tv_hsum256(_mm256_add_ps(a0, a1));
#else
  float s = 0.0f;
  for (int i = 0; i < n; i++) s += x[i];
  return s;
#endif
}

static inline float tv_row_dot(const float* x, const float* y, int n) {
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
  }
  for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
  if (i < n) {
    __mmask16 k = tv_tail_mask(n - i);
    a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, y + i), a1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
#elif defined(__AVX2__)
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
  if (i < n) {
    __m256i k = tv_tail_mask8(n - i);
    a1 = _mm256_fmadd_ps(_mm256_maskload_ps(x + i, k), _mm256_maskload_ps(y + i, k), a1);
  }
  return tv_hsum256(_mm256_add_ps(a0, a1));
#else
  float s = 0.0f;
  for (int i = 0; i < n; i++) s += x[i] * y[i];
  return s;
#endif
}

static inline float tv_row_max(const float* x, int n) {
#if defined(__AVX512F__)
  __m512 m = _mm512_set1_ps(-INFINITY);
  int i = 0;
  for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
  if (i < n) m = _mm512_mask_max_ps(m, tv_tail_mask(n - i), m, _mm512_maskz_loadu_ps(tv_tail_mask(n - i), x + i));
  return _mm512_reduce_max_ps(m);
#elif defined(__AVX2__)
  __m256 m = _mm256_set1_ps(-INFINITY);
  int i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
  float s = tv_hmax256(m);
  for (; i < n; i++) s = x[i] > s ? x[i] : s;
  return s;
#else
  float m = -INFINITY;
  for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
#endif
}

/* y[i] = exp(x[i] − shift) for i < n (y may be x, or NULL to only sum); returns Σ exp(x[i] − shift). */
static inline float tv_exp_shift_sum(float* y, const float* x, int n, float shift) {
#if defined(__AVX512F__)
  __m512 s = _mm512_set1_ps(shift), acc = _mm512_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 e = tv_exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), s));
    if (y) _mm512_storeu_ps(y + i, e);
    acc = _mm512_add_ps(acc, e);
  }
  if (i < n) {
    __mmask16 k = tv_tail_mask(n - i);
    __m512 e = _mm512_maskz_mov_ps(k, tv_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), s)));
    if (y) _mm512_mask_storeu_ps(y + i, k, e);
    acc = _mm512_add_ps(acc, e);
  }
  return _mm512_reduce_add_ps(acc);
#elif defined(__AVX2__)
  __m256 s = _mm256_set1_ps(shift), acc = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e = tv_exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
    if (y) _mm256_storeu_ps(y + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  if (i < n) {
    __m256i k = tv_tail_mask8(n - i);
    __m256 e = _mm256_and_ps(_mm256_castsi256_ps(k),
                             tv_exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), s)));
    if (y) _mm256_maskstore_ps(y + i, k, e);
    acc = _mm256_add_ps(acc, e);
  }
  return tv_hsum256(acc);
#else
  float acc = 0.0f;
  for (int i = 0; i < n; i++) {
    float e = expf(x[i] - shift);
    if (y) y[i] = e;
    acc += e;
  }
  return acc;
#endif
}

#endif
