/* encoder.c — token + position embedding: out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:].
 *
 * Backward has two reductions that must not depend on the thread count:
 *   dwpe[t,:] += Σ_b dout[b,t,:]      split over positions t; each sums b = 0..B−1 in order;
 *   dwte[v,:] += Σ_{tokens[b,t]=v} dout[b,t,:]
 *                                     a token may appear many times, so positions cannot be split
 *                                     between threads; instead each thread owns a slice of columns
 *                                     and walks every position in order for that slice.
 * Token ids were range-checked by the caller. */
#include "../kernels.h"
#include "../threads.h"

#define SERIAL_BELOW 32768 /* elements of out below which threads do not pay */
#define COL_GROUP 16       /* columns per slice unit: one 64-byte line, no false sharing between threads */

typedef struct {
  float* out;            /* [B,T,C] */
  const int32_t* tokens; /* [B,T] */
  const float* wte;      /* [V,C] */
  const float* wpe;      /* [maxT,C] */
  int T, C;
} fwd_ctx;

static void fwd_rows(void* arg, int64_t r0, int64_t r1) {
  const fwd_ctx* c = (const fwd_ctx*)arg;
  const int C = c->C;
  for (int64_t r = r0; r < r1; r++) {
    float* out = c->out + r * C;
    const float* te = c->wte + (int64_t)c->tokens[r] * C;
    const float* pe = c->wpe + (r % c->T) * C;
    for (int i = 0; i < C; i++) out[i] = te[i] + pe[i];
  }
}

void TV_FN(encoder_forward)(float* out, const int32_t* tokens, const float* wte, const float* wpe,
                            int B, int T, int C) {
  fwd_ctx c = {out, tokens, wte, wpe, T, C};
  int64_t rows = (int64_t)B * T;
  if (rows * C < SERIAL_BELOW) fwd_rows(&c, 0, rows);
  else tv_parallel_for(rows, fwd_rows, &c);
}

typedef struct {
  float* dwte;           /* [V,C] or NULL */
  float* dwpe;           /* [maxT,C] or NULL */
  const float* dout;     /* [B,T,C] */
  const int32_t* tokens; /* [B,T] */
  int B, T, C;
} bwd_ctx;

static void bwd_wpe(void* arg, int64_t t0, int64_t t1) {
  const bwd_ctx* c = (const bwd_ctx*)arg;
  const int C = c->C;
  for (int64_t t = t0; t < t1; t++) {
    float* d = c->dwpe + t * C;
    for (int b = 0; b < c->B; b++) {
      const float* g = c->dout + ((int64_t)b * c->T + t) * C;
      for (int i = 0; i < C; i++) d[i] += g[i];
    }
  }
}

static void bwd_wte(void* arg, int64_t g0, int64_t g1) {
  const bwd_ctx* c = (const bwd_ctx*)arg;
  const int C = c->C;
  int c0 = (int)(g0 * COL_GROUP), c1 = (int)(g1 * COL_GROUP < C ? g1 * COL_GROUP : C);
  int64_t rows = (int64_t)c->B * c->T;
  for (int64_t r = 0; r < rows; r++) {
    float* d = c->dwte + (int64_t)c->tokens[r] * C;
    const float* g = c->dout + r * C;
    for (int i = c0; i < c1; i++) d[i] += g[i];
  }
}

void TV_FN(encoder_backward)(float* dwte, float* dwpe, const float* dout, const int32_t* tokens,
                             int B, int T, int C, int V) {
  bwd_ctx c = {dwte, dwpe, dout, tokens, B, T, C};
  int serial = (int64_t)B * T * C < SERIAL_BELOW;
  if (dwpe) {
    if (serial) bwd_wpe(&c, 0, T);
    else tv_parallel_for(T, bwd_wpe, &c);
  }
  if (dwte) {
    int64_t groups = (C + COL_GROUP - 1) / COL_GROUP;
    if (serial) bwd_wte(&c, 0, groups);
    else tv_parallel_for(groups, bwd_wte, &c);
  }
}
