/* decode.c — attention for one new token against a KV cache (generation), for one sequence or for
 * B sequences in one call (batched decode: one thread hand-off for all their heads).
 * Each head is independent. Within a head the cached positions are walked in chunks of
 * DECODE_CHUNK: the chunk's scores q·k (vector dot products), its maximum, one rescale of what was
 * summed so far if the maximum grew (an online softmax per chunk rather than per position), the
 * exponentials as one vector pass (simd.h), then the weighted sum of the chunk's values (a block of
 * the head's sums held in registers across the chunk). One pass over K and V, no buffer beyond a
 * chunk of scores on the stack. A batched call with enough sequences gives each task a whole
 * sequence and walks its chunks for all heads at once, and rows that share a cache (a prompt) go in
 * groups that read each chunk once; the per-head arithmetic is the same, so every row has the bytes
 * of a one-sequence call. */
#include <math.h>

#include "../kernels.h"
#include "../threads.h"
#include "simd.h"

#define DECODE_CHUNK 64
#define PREFETCH_AHEAD 8

typedef struct {
  float* out;           /* [C] */
  const float* q;       /* [C] */
  const float* k_cache; /* [T, C] */
  const float* v_cache; /* [T, C] */
  int T, C, hs;
} decode_ctx;

#if defined(__AVX512F__)
/* tv_row_dot(q, k + r*ld, n) for r < 4, the same bytes (its accumulators, tail and reduction), with
 * one reduction for the four rows instead of one each. */
static inline __m128 row_dot4(const float* q, const float* k, int64_t ld, int n) {
  __m512 a0[4], a1[4];
  for (int r = 0; r < 4; r++) a0[r] = a1[r] = _mm512_setzero_ps();
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 q0 = _mm512_loadu_ps(q + i), q1 = _mm512_loadu_ps(q + i + 16);
    for (int r = 0; r < 4; r++) {
      a0[r] = _mm512_fmadd_ps(q0, _mm512_loadu_ps(k + r * ld + i), a0[r]);
      a1[r] = _mm512_fmadd_ps(q1, _mm512_loadu_ps(k + r * ld + i + 16), a1[r]);
    }
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 q0 = _mm512_loadu_ps(q + i);
    for (int r = 0; r < 4; r++) a0[r] = _mm512_fmadd_ps(q0, _mm512_loadu_ps(k + r * ld + i), a0[r]);
  }
  if (i < n) {
    const __mmask16 m = tv_tail_mask(n - i);
    const __m512 q0 = _mm512_maskz_loadu_ps(m, q + i);
    for (int r = 0; r < 4; r++) a1[r] = _mm512_fmadd_ps(q0, _mm512_maskz_loadu_ps(m, k + r * ld + i), a1[r]);
  }
  return tv_reduce_add4(_mm512_add_ps(a0[0], a1[0]), _mm512_add_ps(a0[1], a1[1]), _mm512_add_ps(a0[2], a1[2]),
                        _mm512_add_ps(a0[3], a1[3]));
}
#endif

/* acc[i] += w[j] * v[j*ld + i] for each j in order: per element the sums of a plain loop over j
 * (FMAs, as the compiler contracts it), with a block of acc kept in registers across the positions
 * rather than loaded and stored for each one. The AVX-512 body takes NH heads (1 or 2) side by side:
 * each FMA waits for the one before it on the same sums, so one head's four chains leave the FMA
 * units idle half the time and two heads' eight fill them; each head's sums are the same. */
#if defined(__AVX512F__)
static inline __attribute__((always_inline)) void add_weighted_values_n(float* const* acc, const float* const* w,
                                                                        const float* const* v, int64_t ld, int n,
                                                                        int hs, const int NH) {
  int i = 0;
  for (; i + 64 <= hs; i += 64) {
    __m512 a[2][4];
    for (int h = 0; h < NH; h++)
      for (int l = 0; l < 4; l++) a[h][l] = _mm512_loadu_ps(acc[h] + i + 16 * l);
    for (int j = 0; j < n; j++) {
      for (int h = 0; h < NH; h++) {
        const __m512 wj = _mm512_set1_ps(w[h][j]);
        const float* vj = v[h] + j * ld + i;
        if (j + PREFETCH_AHEAD < n)
          for (int l = 0; l < 64; l += 16) _mm_prefetch((const char*)(vj + PREFETCH_AHEAD * ld + l), _MM_HINT_T0);
        for (int l = 0; l < 4; l++) a[h][l] = _mm512_fmadd_ps(wj, _mm512_loadu_ps(vj + 16 * l), a[h][l]);
      }
    }
    for (int h = 0; h < NH; h++)
      for (int l = 0; l < 4; l++) _mm512_storeu_ps(acc[h] + i + 16 * l, a[h][l]);
  }
  for (; i < hs; i += 16) {
    const __mmask16 k = hs - i >= 16 ? (__mmask16)0xFFFF : tv_tail_mask(hs - i);
    __m512 a[2];
    for (int h = 0; h < NH; h++) a[h] = _mm512_maskz_loadu_ps(k, acc[h] + i);
    for (int j = 0; j < n; j++)
      for (int h = 0; h < NH; h++)
        a[h] = _mm512_fmadd_ps(_mm512_set1_ps(w[h][j]), _mm512_maskz_loadu_ps(k, v[h] + j * ld + i), a[h]);
    for (int h = 0; h < NH; h++) _mm512_mask_storeu_ps(acc[h] + i, k, a[h]);
  }
}
#endif

static inline void add_weighted_values(float* acc, const float* w, const float* v, int64_t ld, int n, int hs) {
#if defined(__AVX512F__)
  add_weighted_values_n(&acc, &w, &v, ld, n, hs, 1);
#elif defined(__AVX2__)
  int i = 0;
  for (; i + 32 <= hs; i += 32) {
    __m256 a0 = _mm256_loadu_ps(acc + i), a1 = _mm256_loadu_ps(acc + i + 8);
    __m256 a2 = _mm256_loadu_ps(acc + i + 16), a3 = _mm256_loadu_ps(acc + i + 24);
    for (int j = 0; j < n; j++) {
      const __m256 wj = _mm256_set1_ps(w[j]);
      const float* vj = v + j * ld + i;
      a0 = _mm256_fmadd_ps(wj, _mm256_loadu_ps(vj), a0);
      a1 = _mm256_fmadd_ps(wj, _mm256_loadu_ps(vj + 8), a1);
      a2 = _mm256_fmadd_ps(wj, _mm256_loadu_ps(vj + 16), a2);
      a3 = _mm256_fmadd_ps(wj, _mm256_loadu_ps(vj + 24), a3);
    }
    _mm256_storeu_ps(acc + i, a0); _mm256_storeu_ps(acc + i + 8, a1);
    _mm256_storeu_ps(acc + i + 16, a2); _mm256_storeu_ps(acc + i + 24, a3);
  }
  for (; i < hs; i++)
    for (int j = 0; j < n; j++) acc[i] = fmaf(w[j], v[j * ld + i], acc[i]);
#else
  for (int j = 0; j < n; j++) {
    const float wj = w[j];
    const float* restrict vj = v + j * ld;
    for (int i = 0; i < hs; i++) acc[i] += wj * vj[i];
  }
#endif
}

/* Two heads' weighted values: side by side where that fills the FMA units, else one after the other. */
static inline void add_weighted_values2(float* acc0, const float* w0, const float* v0, float* acc1, const float* w1,
                                        const float* v1, int64_t ld, int n, int hs) {
#if defined(__AVX512F__)
  float* acc[2] = {acc0, acc1};
  const float* w[2] = {w0, w1};
  const float* v[2] = {v0, v1};
  add_weighted_values_n(acc, w, v, ld, n, hs, 2);
#else
  add_weighted_values(acc0, w0, v0, ld, n, hs);
  add_weighted_values(acc1, w1, v1, ld, n, hs);
#endif
}

/* What one head has summed so far: acc[hs] (weighted values), the running maximum and denominator. */
typedef struct {
  float* acc;
  float running_max, denom;
} head_sums;

/* Positions [t0, t0+n) of head h: their softmax weights into w (the chunk's scores, rescaling what
 * was summed before if the maximum grew) and their sum into the denominator. With decode_chunk and
 * decode_chunk2, the steps every entry point shares, so a batched call gives the bytes of separate
 * ones whatever order heads and chunks are visited in. */
static inline void decode_weights(const decode_ctx* c, int64_t h, int t0, int n, head_sums* s, float* w) {
  const int hs = c->hs;
  const float scale = 1.0f / sqrtf((float)hs);
  const float* q = c->q + h * hs;
  float chunk_max = -INFINITY;
  const float* k = c->k_cache + (int64_t)t0 * c->C + h * hs;
  int j = 0;
#if defined(__AVX512F__)
  for (; j + 4 <= n; j += 4)
    _mm_storeu_ps(w + j, _mm_mul_ps(row_dot4(q, k + (int64_t)j * c->C, c->C, hs), _mm_set1_ps(scale)));
#endif
  for (; j < n; j++) w[j] = tv_row_dot(q, k + (int64_t)j * c->C, hs) * scale;
  for (j = 0; j < n; j++) chunk_max = w[j] > chunk_max ? w[j] : chunk_max;
  if (chunk_max > s->running_max) {
    /* Rescale what has been summed so far to the new maximum (by 0 the first time). */
    float correction = expf(s->running_max - chunk_max);
    s->denom *= correction;
    for (int i = 0; i < hs; i++) s->acc[i] *= correction;
    s->running_max = chunk_max;
  }
  s->denom += tv_exp_shift_sum(w, w, n, s->running_max);
}

/* Positions [t0, t0+n) of head h into its sums. */
static inline void decode_chunk(const decode_ctx* c, int64_t h, int t0, int n, head_sums* s) {
  float w[DECODE_CHUNK];
  decode_weights(c, h, t0, n, s, w);
  add_weighted_values(s->acc, w, c->v_cache + (int64_t)t0 * c->C + h * c->hs, c->C, n, c->hs);
}

/* The same for heads h and h + 1, their values summed side by side. */
static inline void decode_chunk2(const decode_ctx* c, int64_t h, int t0, int n, head_sums* s0, head_sums* s1) {
  float w0[DECODE_CHUNK], w1[DECODE_CHUNK];
  decode_weights(c, h, t0, n, s0, w0);
  decode_weights(c, h + 1, t0, n, s1, w1);
  const float* v = c->v_cache + (int64_t)t0 * c->C + h * c->hs;
  add_weighted_values2(s0->acc, w0, v, s1->acc, w1, v + c->hs, c->C, n, c->hs);
}

static inline void decode_finish(const decode_ctx* c, int64_t h, const head_sums* s) {
  float* out = c->out + h * c->hs;
  const float inv = 1.0f / s->denom;
  for (int i = 0; i < c->hs; i++) out[i] = s->acc[i] * inv;
}

/* Heads [h0, h1) of one sequence, two at a time. */
static void decode_heads_of(const decode_ctx* c, int64_t h0, int64_t h1) {
  float acc[2][TV_DECODE_MAX_HEAD_DIM];
  for (int64_t h = h0; h < h1; h += 2) {
    const int pair = h + 1 < h1;
    head_sums s[2] = {{acc[0], -INFINITY, 0.0f}, {acc[1], -INFINITY, 0.0f}};
    for (int i = 0; i < c->hs; i++) acc[0][i] = acc[1][i] = 0.0f;
    for (int t0 = 0; t0 < c->T; t0 += DECODE_CHUNK) {
      const int n = c->T - t0 < DECODE_CHUNK ? c->T - t0 : DECODE_CHUNK;
      if (pair) decode_chunk2(c, h, t0, n, &s[0], &s[1]);
      else decode_chunk(c, h, t0, n, &s[0]);
    }
    decode_finish(c, h, &s[0]);
    if (pair) decode_finish(c, h + 1, &s[1]);
  }
}

/* Head pairs [p0, p1). */
static void decode_head_pairs(void* arg, int64_t p0, int64_t p1) {
  const decode_ctx* c = (const decode_ctx*)arg;
  const int64_t H = c->C / c->hs;
  decode_heads_of(c, 2 * p0, 2 * p1 < H ? 2 * p1 : H);
}

void TV_FN(attention_decode)(float* out, const float* q, const float* k_cache, const float* v_cache,
                             int T, int C, int H) {
  decode_ctx ctx = {out, q, k_cache, v_cache, T, C, C / H};
  /* Small work per head: only spread over threads when the cache is long enough to pay for it. */
  if ((int64_t)T * C < 32768) decode_head_pairs(&ctx, 0, (H + 1) / 2);
  else tv_parallel_for((H + 1) / 2, decode_head_pairs, &ctx);
}

/* A task's rows walk the cache a chunk of positions at a time for all their heads, so it is read
 * row after row (whole rows, which the prefetchers follow) rather than once per head in strides.
 * Rows that share one cache (a prompt's positions, fed as rows) are walked together, up to
 * GROUP_ROWS at a time: each chunk is read once for all of them and stays in L1 while each row
 * takes its own decode_chunk steps, the steps it takes alone (its chunks start at the same
 * positions), so the bytes do not change; read row by row, a long prompt would read its cache once
 * per position. The rows' sums live on the stack: GROUP_FLOATS floats and GROUP_SUMS heads in all. */
#define GROUP_ROWS 8
#define GROUP_FLOATS 8192
#define GROUP_SUMS 4096

typedef struct {
  float* out;
  const float* q;
  const float* const* k_caches;
  const float* const* v_caches;
  const int32_t* lengths;
  int C, H, q_stride;
  int by_sequence;
  /* Tasks as row ranges: task i is rows [first[i], first[i+1]) (one row, or a group of rows that
   * share a cache), all heads when by_sequence, else a pair of heads at a time (pair i % P of range
   * i / P, P = (H + 1) / 2). */
  const int32_t* first;
} decode_rows_ctx;

/* How many rows' sums fit the stack buffers at once (0: not even one row's). */
static int group_rows(int C, int H) {
  int rows = GROUP_ROWS;
  while (rows > 0 && ((int64_t)rows * C > GROUP_FLOATS || (int64_t)rows * H > GROUP_SUMS)) rows--;
  return rows;
}

/* Rows [b0, b1) sharing one cache, heads [h0, h1), a chunk at a time for all of them. */
static void decode_group(const decode_rows_ctx* r, int b0, int b1, int h0, int h1) {
  float acc[GROUP_FLOATS];
  head_sums s[GROUP_SUMS];
  decode_ctx c[GROUP_ROWS];
  int longest = 0;
  const int hs = r->C / r->H, rows = b1 - b0;
  for (int g = 0; g < rows; g++) {
    const int b = b0 + g;
    c[g] = (decode_ctx){r->out + (int64_t)b * r->C, r->q + (int64_t)b * r->q_stride, r->k_caches[b],
                        r->v_caches[b], r->lengths[b], r->C, hs};
    for (int h = h0; h < h1; h++) {
      float* a = acc + (int64_t)g * r->C + h * hs;
      for (int i = 0; i < hs; i++) a[i] = 0.0f;
      s[g * r->H + h] = (head_sums){a, -INFINITY, 0.0f};
    }
    if (r->lengths[b] > longest) longest = r->lengths[b];
  }
  for (int t0 = 0; t0 < longest; t0 += DECODE_CHUNK)
    for (int h = h0; h < h1; h += 2)
      for (int g = 0; g < rows; g++) {
        const int T = c[g].T, n = T - t0 < DECODE_CHUNK ? T - t0 : DECODE_CHUNK;
        if (t0 >= T) continue;
        if (h + 1 < h1) decode_chunk2(&c[g], h, t0, n, &s[g * r->H + h], &s[g * r->H + h + 1]);
        else decode_chunk(&c[g], h, t0, n, &s[g * r->H + h]);
      }
  for (int g = 0; g < rows; g++)
    for (int h = h0; h < h1; h++) decode_finish(&c[g], h, &s[g * r->H + h]);
}

static void decode_rows_tasks(void* arg, int64_t i0, int64_t i1) {
  const decode_rows_ctx* r = (const decode_rows_ctx*)arg;
  for (int64_t i = i0; i < i1; i++) {
    const int P = (r->H + 1) / 2;
    const int64_t range = r->by_sequence ? i : i / P;
    const int b0 = r->first[range], b1 = r->first[range + 1];
    const int h0 = r->by_sequence ? 0 : 2 * (int)(i % P), h1 = r->by_sequence ? r->H : h0 + 2 < r->H ? h0 + 2 : r->H;
    if (group_rows(r->C, r->H) > 0) {
      decode_group(r, b0, b1, h0, h1);
      continue;
    }
    /* A row too wide for the buffers: head by head, each with its own sums. */
    decode_ctx c = {r->out + (int64_t)b0 * r->C, r->q + (int64_t)b0 * r->q_stride, r->k_caches[b0],
                    r->v_caches[b0], r->lengths[b0], r->C, r->C / r->H};
    decode_heads_of(&c, h0, h1);
  }
}

/* Rows cut into tasks: consecutive rows with the same caches go together, as many as
 * decode_group's buffers hold (up to GROUP_ROWS); returns the number of ranges. */
static int64_t row_ranges(int32_t* first, const float* const* k_caches, const float* const* v_caches,
                          int B, int C, int H) {
  const int group = group_rows(C, H) > 1 ? group_rows(C, H) : 1;
  int64_t n = 0;
  for (int b = 0; b < B;) {
    int e = b + 1;
    while (e < B && e - b < group && k_caches[e] == k_caches[b] && v_caches[e] == v_caches[b]) e++;
    first[n++] = b;
    b = e;
  }
  first[n] = B;
  return n;
}

#define RANGES_ON_STACK 512

void TV_FN(attention_decode_rows)(float* out, const float* q, const float* const* k_caches,
                                  const float* const* v_caches, const int32_t* lengths, int B,
                                  int C, int H, int q_stride) {
  int64_t positions = 0;
  for (int b = 0; b < B; b++) positions += lengths[b];
  /* Larger batches go in slices, so the task table stays on the stack. */
  if (B > RANGES_ON_STACK) {
    for (int b = 0; b < B; b += RANGES_ON_STACK) {
      const int n = B - b < RANGES_ON_STACK ? B - b : RANGES_ON_STACK;
      TV_FN(attention_decode_rows)(out + (int64_t)b * C, q + (int64_t)b * q_stride, k_caches + b,
                                   v_caches + b, lengths + b, n, C, H, q_stride);
    }
    return;
  }
  int32_t first[RANGES_ON_STACK + 1];
  const int64_t ranges = row_ranges(first, k_caches, v_caches, B, C, H);
  /* Whole ranges per task when there are enough of them to keep every thread busy; each head on
   * its own otherwise. */
  decode_rows_ctx ctx = {out, q, k_caches, v_caches, lengths, C, H, q_stride,
                         ranges >= 4 * tv_pool_threads(), first};
  const int64_t tasks = ctx.by_sequence ? ranges : ranges * ((H + 1) / 2);
  /* One hand-off for the whole batch, and none when it is too little work to pay for it. */
  if (positions * C < 32768) decode_rows_tasks(&ctx, 0, tasks);
  else tv_parallel_for(tasks, decode_rows_tasks, &ctx);
}
