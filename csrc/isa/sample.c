/* sample.c — the passes over the vocabulary that picking a token makes (src/generate/sampler.ts):
 * the arg-max, and the k-th largest logit with the ids near it. Each gives what a plain loop over the
 * logits in index order gives (the same comparisons, ties to the lower id, NaNs never greater),
 * whatever the ISA level; the vector code only skips values that cannot change the answer (the k-th
 * largest without NaNs is a value, so a zero's sign may differ from the loop's). */
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

/* The smaller child is picked by selects, not branches: which one it is is a coin toss for the
 * branch predictor, and this runs a few hundred times per token. */
static void sift_down(float* heap, int k, int i) {
  const float v = heap[i];
  for (;;) {
    const int l = 2 * i + 1, r = l + 1;
    if (l >= k) break;
    const float lv = heap[l], rv = r < k ? heap[r] : lv;
    int w = lv < v ? l : i;
    const float wv = lv < v ? lv : v;
    w = r < k && rv < wv ? r : w;
    if (w == i) break;
    heap[i] = heap[w];
    i = w;
  }
  heap[i] = v;
}

/* The k-th largest of x[0..n) by a min-heap of k in heap[0..k): the first k values heapified, then
 * each later value greater than the root replaces it. */
static float kth_by_heap(float* heap, const float* x, int n, int k) {
  for (int i = 0; i < k; i++) heap[i] = x[i];
  for (int i = (k >> 1) - 1; i >= 0; i--) sift_down(heap, k, i);
  int i = k;
#if defined(__AVX512F__)
  /* The root only grows, so a chunk with no value above it now changes nothing. */
  for (; i < n && (i & 15); i++)
    if (x[i] > heap[0]) heap[0] = x[i], sift_down(heap, k, 0);
  for (; i + 16 <= n; i += 16) {
    /* Only the lanes above the root at the chunk's start can pass it later, in index order. */
    for (uint32_t hit = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), _mm512_set1_ps(heap[0]), _CMP_GT_OQ); hit; hit &= hit - 1) {
      const int j = i + __builtin_ctz(hit);
      if (x[j] > heap[0]) heap[0] = x[j], sift_down(heap, k, 0);
    }
  }
#endif
  for (; i < n; i++)
    if (x[i] > heap[0]) heap[0] = x[i], sift_down(heap, k, 0);
  return heap[0];
}

#if defined(__AVX512F__)
/* Maxima of groups of x's elements that the k-th largest is sought among: the k-th largest of them
 * is at most x's (each is an element of x, and k of them are at least it), and at least as large as
 * all but a few of x's other values, so the values at or above it are the k largest and a few more. */
#define BOUND_MAXIMA 128

/* x's k-th largest when x has no NaN, k <= BOUND_MAXIMA and n is long enough to gain: the k-th
 * largest t of BOUND_MAXIMA lane-wise group maxima, then the heap over the values >= t only (in
 * index order, gathered into `scratch`, n floats). Returns 0 where it does not apply. */
static int kth_by_bound(float* out, float* heap, float* scratch, const float* x, int n, int k) {
  const int vectors = n / 16, groups = BOUND_MAXIMA / 16;
  if (k > BOUND_MAXIMA || vectors < 4 * groups) return 0;
  float maxima[BOUND_MAXIMA];
  const int per = (vectors + groups - 1) / groups;
  __mmask16 nan = 0;
  for (int g = 0; g < groups; g++) {
    const int v0 = g * per, v1 = v0 + per < vectors ? v0 + per : vectors;
    __m512 m = _mm512_set1_ps(-INFINITY);
    for (int v = v0; v < v1; v++) {
      const __m512 xv = _mm512_loadu_ps(x + 16 * v);
      nan |= _mm512_cmp_ps_mask(xv, xv, _CMP_UNORD_Q);
      m = _mm512_max_ps(m, xv);
    }
    _mm512_storeu_ps(maxima + 16 * g, m);
  }
  for (int i = 16 * vectors; i < n; i++) nan |= isnan(x[i]);
  /* A group past the last vector keeps -inf: still a lower bound (every value is at least -inf). */
  if (nan) return 0;
  const float t = kth_by_heap(heap, maxima, BOUND_MAXIMA, k);
  const __m512 tv = _mm512_set1_ps(t);
  int m = 0, i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 xv = _mm512_loadu_ps(x + i);
    const __mmask16 keep = _mm512_cmp_ps_mask(xv, tv, _CMP_GE_OQ);
    if (!keep) continue;
    _mm512_storeu_ps(scratch + m, _mm512_maskz_compress_ps(keep, xv));
    m += __builtin_popcount(keep);
  }
  for (; i < n; i++)
    if (x[i] >= t) scratch[m++] = x[i];
  *out = kth_by_heap(heap, scratch, m, k);
  return 1;
}
#endif

/* kth[0] = the k-th largest of x[0..n) (1 <= k <= n), the value a min-heap of k over x in index order
 * gives (for NaN-free x, the k-th largest value: a zero may come back as either sign). Then
 * ids[0..count) = the indices i, in order, with x[i] >= kth − margin (compared in double). `ids` is
 * also the work space of the bound (n of them). */
void TV_FN(top_k_candidates)(int32_t* ids, int32_t* count, float* kth, float* heap, const float* x,
                             int n, int k, double margin) {
#if defined(__AVX512F__)
  if (!kth_by_bound(&heap[0], heap, (float*)ids, x, n, k)) heap[0] = kth_by_heap(heap, x, n, k);
#else
  heap[0] = kth_by_heap(heap, x, n, k);
#endif
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
