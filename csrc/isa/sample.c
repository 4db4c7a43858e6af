/* sample.c — the passes over the vocabulary that picking a token makes (src/generate/sampler.ts):
 * the arg-max, and the k-th largest logit with the ids near it. Each gives exactly what a plain loop
 * over the logits in index order gives (the same comparisons, ties to the lower id, NaNs never
 * greater), whatever the ISA level; the vector code only skips chunks that cannot change the answer. */
#include <math.h>
#include <stdint.h>

#include "../kernels.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* out[0] = the first index of the largest of x[0..n): best = 0, then best = i whenever x[i] > x[best].
 * A NaN is never greater, so a NaN at 0 keeps 0 and NaNs elsewhere are passed over. */
void TV_FN(argmax)(int32_t* out, const float* x, int n) {
  if (isnan(x[0])) {
    out[0] = 0;
    return;
  }
#if defined(__AVX512F__)
  /* The largest non-NaN value, then the first index holding it (x[best] == max for the first such
   * index, and nothing before it is greater). NaN lanes are masked out, not left to vmaxps' order. */
  __m512 m = _mm512_set1_ps(x[0]);
  for (int i = 0; i < n; i += 16) {
    const __mmask16 in = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(in, x + i);
    m = _mm512_mask_max_ps(m, in & _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v, m);
  }
  const __m512 best = _mm512_set1_ps(_mm512_reduce_max_ps(m));
  for (int i = 0; i < n; i += 16) {
    const __mmask16 in = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
    const __mmask16 hit = _mm512_mask_cmp_ps_mask(in, _mm512_maskz_loadu_ps(in, x + i), best, _CMP_EQ_OQ);
    if (hit) {
      out[0] = i + __builtin_ctz(hit);
      return;
    }
  }
  out[0] = 0; /* unreachable: x[0] is not NaN, so the maximum is some lane's value */
#else
  int32_t best = 0;
  float value = x[0];
  for (int i = 1; i < n; i++)
    if (x[i] > value) {
      value = x[i];
      best = i;
    }
  out[0] = best;
#endif
}

static void sift_down(float* heap, int k, int i) {
  for (;;) {
    const int l = 2 * i + 1, r = l + 1;
    int w = i;
    if (l < k && heap[l] < heap[w]) w = l;
    if (r < k && heap[r] < heap[w]) w = r;
    if (w == i) return;
    const float t = heap[i];
    heap[i] = heap[w];
    heap[w] = t;
    i = w;
  }
}

/* kth[0] = the k-th largest of x[0..n) (1 <= k <= n), by a min-heap of k in heap[0..k): the first k
 * values heapified, then each later value greater than the root replaces it. Then ids[0..count) =
 * the indices i, in order, with x[i] >= kth − margin (compared in double). */
void TV_FN(top_k_candidates)(int32_t* ids, int32_t* count, float* kth, float* heap, const float* x,
                             int n, int k, double margin) {
  for (int i = 0; i < k; i++) heap[i] = x[i];
  for (int i = (k >> 1) - 1; i >= 0; i--) sift_down(heap, k, i);
  int i = k;
#if defined(__AVX512F__)
  /* The root only grows, so a chunk with no value above it now changes nothing. */
  for (; i < n && (i & 15); i++)
    if (x[i] > heap[0]) heap[0] = x[i], sift_down(heap, k, 0);
  for (; i + 16 <= n; i += 16) {
    if (!_mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), _mm512_set1_ps(heap[0]), _CMP_GT_OQ)) continue;
    for (int j = i; j < i + 16; j++)
      if (x[j] > heap[0]) heap[0] = x[j], sift_down(heap, k, 0);
  }
#endif
  for (; i < n; i++)
    if (x[i] > heap[0]) heap[0] = x[i], sift_down(heap, k, 0);
  kth[0] = heap[0];
  const double floor = (double)heap[0] - margin;
  int m = 0, j = 0;
#if defined(__AVX512F__)
  /* x >= floor exactly when x >= f, the least float not below floor (floats widen to doubles exactly). */
  float f = (float)floor;
  if ((double)f < floor) f = nextafterf(f, INFINITY);
  const __m512 fv = _mm512_set1_ps(f);
  __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (; j + 16 <= n; j += 16, idx = _mm512_add_epi32(idx, _mm512_set1_epi32(16))) {
    const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + j), fv, _CMP_GE_OQ);
    if (!hit) continue;
    /* Compressed in a register, then a full store: it stays inside ids (m <= j, j + 16 <= n), and
     * a compressing store straight to memory is microcoded and slow on some cores. */
    _mm512_storeu_si512(ids + m, _mm512_maskz_compress_epi32(hit, idx));
    m += __builtin_popcount(hit);
  }
#endif
  for (; j < n; j++)
    if ((double)x[j] >= floor) ids[m++] = j;
  count[0] = m;
}
