/* decode.c — attention for one new token against a KV cache (generation), for one sequence or for
 * B sequences in one call (batched decode: one thread hand-off for all their heads).
 * Each head is independent. Within a head the cached positions are walked in chunks of
 * DECODE_CHUNK: the chunk's scores q·k (vector dot products), its maximum, one rescale of what was
 * summed so far if the maximum grew (an online softmax per chunk rather than per position), the
 * exponentials as one vector pass (simd.h), then the weighted sum of the chunk's values. One pass
 * over K and V, no buffer beyond a chunk of scores on the stack. */
#include <math.h>

#include "../kernels.h"
#include "../threads.h"
#include "simd.h"

#define DECODE_CHUNK 64

typedef struct {
  float* out;           /* [C] */
  const float* q;       /* [C] */
  const float* k_cache; /* [T, C] */
  const float* v_cache; /* [T, C] */
  int T, C, hs;
} decode_ctx;

/* One head h of one sequence: the arithmetic both entry points share, so a batched call gives the
 * bytes of separate ones. */
static void decode_head(const decode_ctx* c, int64_t h) {
  const int hs = c->hs;
  const float scale = 1.0f / sqrtf((float)hs);
  float acc[TV_DECODE_MAX_HEAD_DIM];
  float scores[DECODE_CHUNK];
  const float* q = c->q + h * hs;
  float running_max = -INFINITY, denom = 0.0f;
  for (int i = 0; i < hs; i++) acc[i] = 0.0f;
  for (int t0 = 0; t0 < c->T; t0 += DECODE_CHUNK) {
    const int n = c->T - t0 < DECODE_CHUNK ? c->T - t0 : DECODE_CHUNK;
    float chunk_max = -INFINITY;
    for (int j = 0; j < n; j++) {
      float s = tv_row_dot(q, c->k_cache + (int64_t)(t0 + j) * c->C + h * hs, hs) * scale;
      scores[j] = s;
      chunk_max = s > chunk_max ? s : chunk_max;
    }
    if (chunk_max > running_max) {
      /* Rescale what has been summed so far to the new maximum (by 0 the first time). */
      float correction = expf(running_max - chunk_max);
      denom *= correction;
      for (int i = 0; i < hs; i++) acc[i] *= correction;
      running_max = chunk_max;
    }
    denom += tv_exp_shift_sum(scores, scores, n, running_max);
    for (int j = 0; j < n; j++) {
      const float w = scores[j];
      const float* restrict v = c->v_cache + (int64_t)(t0 + j) * c->C + h * hs;
      for (int i = 0; i < hs; i++) acc[i] += w * v[i];
    }
  }
  float* out = c->out + h * hs;
  const float inv = 1.0f / denom;
  for (int i = 0; i < hs; i++) out[i] = acc[i] * inv;
}

static void decode_heads(void* arg, int64_t h0, int64_t h1) {
  const decode_ctx* c = (const decode_ctx*)arg;
  for (int64_t h = h0; h < h1; h++) decode_head(c, h);
}

void TV_FN(attention_decode)(float* out, const float* q, const float* k_cache, const float* v_cache,
                             int T, int C, int H) {
  decode_ctx ctx = {out, q, k_cache, v_cache, T, C, C / H};
  /* Small work per head: only spread over threads when the cache is long enough to pay for it. */
  if ((int64_t)T * C < 32768) decode_heads(&ctx, 0, H);
  else tv_parallel_for(H, decode_heads, &ctx);
}

typedef struct {
  float* out;
  const float* q;
  const float* const* k_caches;
  const float* const* v_caches;
  const int32_t* lengths;
  int C, H, q_stride;
} decode_rows_ctx;

/* Task i is head i % H of sequence i / H. */
static void decode_rows_tasks(void* arg, int64_t i0, int64_t i1) {
  const decode_rows_ctx* r = (const decode_rows_ctx*)arg;
  for (int64_t i = i0; i < i1; i++) {
    const int64_t b = i / r->H;
    decode_ctx c = {r->out + b * r->C, r->q + b * r->q_stride, r->k_caches[b], r->v_caches[b],
                    r->lengths[b], r->C, r->C / r->H};
    decode_head(&c, i % r->H);
  }
}

void TV_FN(attention_decode_rows)(float* out, const float* q, const float* const* k_caches,
                                  const float* const* v_caches, const int32_t* lengths, int B,
                                  int C, int H, int q_stride) {
  decode_rows_ctx ctx = {out, q, k_caches, v_caches, lengths, C, H, q_stride};
  int64_t positions = 0;
  for (int b = 0; b < B; b++) positions += lengths[b];
  /* One hand-off for all B·H heads, and none when the whole batch is too little work to pay for it. */
  if (positions * C < 32768) decode_rows_tasks(&ctx, 0, (int64_t)B * H);
  else tv_parallel_for((int64_t)B * H, decode_rows_tasks, &ctx);
}
