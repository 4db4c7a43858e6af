/* crossentropy.c — softmax, cross-entropy loss and the logits gradient in one pass per row:
 *   loss[m]    = logsumexp(x) − x[target],   x = logits[m,:]
 *   dlogits[m] = (softmax(x) − onehot(target))·dloss   (overwritten, may alias logits)
 * Per row: the max (so exp never overflows), then one pass writing e = exp(x − max) into dlogits
 * while summing it, then one pass scaling by dloss/Σe. The target's logit is read before the row
 * is overwritten, which is what makes dlogits == logits safe. Rows are independent, so any thread
 * split gives the same bytes. */
#include <math.h>
#include <string.h>

#include "../kernels.h"
#include "../threads.h"
#include "simd.h"

#define SERIAL_BELOW 65536 /* elements (M·V) below which threads do not pay */

typedef struct {
  float* losses;          /* [M] */
  float* dlogits;         /* [M,V] or NULL */
  const float* logits;    /* [M,V] */
  const int32_t* targets; /* [M] */
  int V;
  float dloss;
} ce_ctx;

static inline void scale_row(float* y, int n, float s) {
#if defined(__AVX512F__)
  __m512 vs = _mm512_set1_ps(s);
  int i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), vs));
  if (i < n) {
    __mmask16 k = tv_tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, y + i), vs));
  }
#else
  for (int i = 0; i < n; i++) y[i] *= s;
#endif
}

static void ce_rows(void* arg, int64_t r0, int64_t r1) {
  const ce_ctx* c = (const ce_ctx*)arg;
  const int V = c->V;
  for (int64_t r = r0; r < r1; r++) {
    const int32_t t = c->targets[r];
    float* d = c->dlogits ? c->dlogits + r * V : NULL;
    if (t < 0) { /* ignored row */
      c->losses[r] = 0.0f;
      if (d) memset(d, 0, sizeof(float) * (size_t)V);
      continue;
    }
    const float* x = c->logits + r * V;
    const float xt = x[t];
    const float mx = tv_row_max(x, V);
    const float sum = tv_exp_shift_sum(d, x, V, mx);
    c->losses[r] = (logf(sum) + mx) - xt;
    if (d) {
      scale_row(d, V, c->dloss / sum);
      d[t] -= c->dloss;
    }
  }
}

void TV_FN(crossentropy_forward_backward)(float* losses, float* dlogits, const float* logits,
                                          const int32_t* targets, int M, int V, float dloss) {
  ce_ctx c = {losses, dlogits, logits, targets, V, dloss};
  if ((int64_t)M * V < SERIAL_BELOW) ce_rows(&c, 0, M);
  else tv_parallel_for(M, ce_rows, &c);
}
