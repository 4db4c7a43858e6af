/* decode.c — attention for one new token against a KV cache (generation at batch 1).
 * Each head is independent; within a head an online softmax walks the cached positions once,
 * so no score buffer is needed and the cost is one pass over K and V. */
#include <math.h>

#include "../kernels.h"
#include "../threads.h"

typedef struct {
  float* out;           /* [C] */
  const float* q;       /* [C] */
  const float* k_cache; /* [T, C] */
  const float* v_cache; /* [T, C] */
  int T, C, hs;
} decode_ctx;

static void decode_heads(void* arg, int64_t h0, int64_t h1) {
  const decode_ctx* c = (const decode_ctx*)arg;
  const float scale = 1.0f / sqrtf((float)c->hs);
  float acc[TV_DECODE_MAX_HEAD_DIM];
  for (int64_t h = h0; h < h1; h++) {
    const float* q = c->q + h * c->hs;
    float running_max = -INFINITY, denom = 0.0f;
    for (int i = 0; i < c->hs; i++) acc[i] = 0.0f;
    for (int t = 0; t < c->T; t++) {
      const float* k = c->k_cache + (int64_t)t * c->C + h * c->hs;
      const float* v = c->v_cache + (int64_t)t * c->C + h * c->hs;
      float score = 0.0f;
      for (int i = 0; i < c->hs; i++) score += q[i] * k[i];
      score *= scale;
      if (score > running_max) {
        /* Rescale what has been summed so far to the new maximum. */
        float correction = expf(running_max - score);
        denom *= correction;
        for (int i = 0; i < c->hs; i++) acc[i] *= correction;
        running_max = score;
      }
      float w = expf(score - running_max);
      denom += w;
      for (int i = 0; i < c->hs; i++) acc[i] += w * v[i];
    }
    float* out = c->out + h * c->hs;
    for (int i = 0; i < c->hs; i++) out[i] = acc[i] / denom;
  }
}

void TV_FN(attention_decode)(float* out, const float* q, const float* k_cache, const float* v_cache,
                             int T, int C, int H) {
  decode_ctx ctx = {out, q, k_cache, v_cache, T, C, C / H};
  /* Small work per head: only spread over threads when the cache is long enough to pay for it. */
  if ((int64_t)T * C < 32768) decode_heads(&ctx, 0, H);
  else tv_parallel_for(H, decode_heads, &ctx);
}
