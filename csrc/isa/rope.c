/* rope.c — rotary position embedding (HuggingFace's rotate-half convention), in place on the q and
 * k blocks of a qkv buffer, and its inverse for the backward.
 *
 * For head size hs and half = hs/2, channel pairs (i, i + half) of every head turn by the angle
 * pos·theta^(−2i/hs):
 *   y[i] = x[i]·cos − x[i+half]·sin,  y[i+half] = x[i+half]·cos + x[i]·sin
 * The backward applies the transpose, the same turn with −sin.
 *
 * cos and sin are computed on each call, in double (libm, never a vector approximation) and rounded
 * to float once, so every ISA level rotates by the same floats. The work is cut into blocks of
 * positions; a block computes its own table on the stack (each position's once per call, shared by
 * the batch rows and the heads) and rotates the rows at those positions. Every element's result is
 * independent of the block it falls in, so any thread split gives the same bytes.
 *
 * Batched decode turns one row per sequence, each at its own position, by a table made once
 * (rope_table: the same angles in the same floats) instead of recomputing cos and sin per call. */
#include <math.h>
#include <stddef.h>

#include "../kernels.h"
#include "../threads.h"

#define SERIAL_BELOW 16384  /* elements rotated (B·T·2C) below which threads do not pay */
#define TABLE_FLOATS 4096   /* cos (and as many sin) entries per block: positions × half */
#define BLOCK_POSITIONS 16  /* at most, so that short sequences still make several blocks */

typedef struct {
  float* qkv; /* [B,T,3C] */
  int B, T, C, hs;
  int64_t pos0;
  double theta;
  float sign; /* +1 forward, −1 backward */
  int block;  /* positions per block */
} rope_ctx;

/* The angles' frequencies theta^(−2i/hs), i < hs/2. */
static void frequencies(double* inv_freq, int hs, double theta) {
  for (int i = 0; i < hs / 2; i++) inv_freq[i] = pow(theta, -2.0 * i / hs);
}

/* cos and sign·sin of position pos's angles, rounded to float once. */
static inline void angles(float* cs, float* sn, const double* inv_freq, int half, int64_t pos, float sign) {
  for (int i = 0; i < half; i++) {
    const double a = (double)pos * inv_freq[i];
    cs[i] = (float)cos(a);
    sn[i] = sign * (float)sin(a);
  }
}

/* Turn n_heads heads side by side in row (q and k: 2·NH) by one position's cos and sin. */
static inline void turn(float* row, const float* restrict co, const float* restrict si, int n_heads, int hs) {
  const int half = hs / 2;
  for (int h = 0; h < n_heads; h++) {
    float* restrict x0 = row + (int64_t)h * hs;
    float* restrict x1 = x0 + half;
    for (int i = 0; i < half; i++) {
      const float a = x0[i], d = x1[i];
      x0[i] = a * co[i] - d * si[i];
      x1[i] = d * co[i] + a * si[i];
    }
  }
}

static void rope_blocks(void* arg, int64_t k0, int64_t k1) {
  const rope_ctx* c = (const rope_ctx*)arg;
  const int half = c->hs / 2, C = c->C, T = c->T, NH = C / c->hs;
  float cs[TABLE_FLOATS], sn[TABLE_FLOATS];
  double inv_freq[TV_ROPE_MAX_HEAD_DIM / 2];
  frequencies(inv_freq, c->hs, c->theta);
  for (int64_t k = k0; k < k1; k++) {
    const int t0 = (int)(k * c->block), t1 = t0 + c->block < T ? t0 + c->block : T;
    for (int t = t0; t < t1; t++) angles(cs + (t - t0) * half, sn + (t - t0) * half, inv_freq, half, c->pos0 + t, c->sign);
    for (int b = 0; b < c->B; b++)
      for (int t = t0; t < t1; t++)
        turn(c->qkv + ((int64_t)b * T + t) * 3 * C, cs + (t - t0) * half, sn + (t - t0) * half, 2 * NH, c->hs);
  }
}

void TV_FN(rope)(float* qkv, int B, int T, int C, int NH, int pos0, float theta, int backward) {
  const int hs = C / NH, half = hs / 2;
  int block = TABLE_FLOATS / half;
  if (block > BLOCK_POSITIONS) block = BLOCK_POSITIONS;
  rope_ctx c = {qkv, B, T, C, hs, pos0, theta, backward ? -1.0f : 1.0f, block};
  const int64_t blocks = ((int64_t)T + block - 1) / block;
  if ((int64_t)B * T * 2 * C < SERIAL_BELOW) rope_blocks(&c, 0, blocks);
  else tv_parallel_for(blocks, rope_blocks, &c);
}

void TV_FN(rope_table)(float* cos_table, float* sin_table, int P, int hs, float theta) {
  double inv_freq[TV_ROPE_MAX_HEAD_DIM / 2];
  frequencies(inv_freq, hs, theta);
  for (int p = 0; p < P; p++)
    angles(cos_table + (int64_t)p * (hs / 2), sin_table + (int64_t)p * (hs / 2), inv_freq, hs / 2, p, 1.0f);
}

/* Batched decode: one row per sequence, each at its own position, its angles from the table. Little
 * work (one position per row): no threads. */
void TV_FN(rope_rows)(float* qkv, const float* cos_table, const float* sin_table, const int32_t* positions,
                      int B, int q_stride, int C, int NH) {
  const int hs = C / NH, half = hs / 2;
  for (int b = 0; b < B; b++)
    turn(qkv + (int64_t)b * q_stride, cos_table + (int64_t)positions[b] * half,
         sin_table + (int64_t)positions[b] * half, 2 * NH, hs);
}
