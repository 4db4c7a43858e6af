/* residual.c — the residual connection, out = a + b, and its gradient, which passes dout through
 * unchanged to both branches. Element-wise, so any split over threads gives the same bytes; plain
 * loops, which the compiler vectorizes at every ISA level. */
#include "../kernels.h"
#include "../threads.h"

/* Below this many elements the pool's wake-up costs more than the work. */
#define SERIAL_BELOW 32768
/* Threads get whole blocks so a slice boundary never splits a cache line. */
#define BLOCK 1024

typedef struct {
  float* out;       /* [N] */
  const float* a;   /* [N] */
  const float* b;   /* [N] */
  int64_t N;
} fwd_ctx;

static void fwd_range(void* arg, int64_t k0, int64_t k1) {
  const fwd_ctx* c = (const fwd_ctx*)arg;
  int64_t i0 = k0 * BLOCK, i1 = k1 * BLOCK < c->N ? k1 * BLOCK : c->N;
  /* out may alias a or b: each element is read before it is written, so no restrict here. */
  for (int64_t i = i0; i < i1; i++) c->out[i] = c->a[i] + c->b[i];
}

void TV_FN(residual_forward)(float* out, const float* a, const float* b, int64_t N) {
  fwd_ctx c = {out, a, b, N};
  int64_t blocks = (N + BLOCK - 1) / BLOCK;
  if (N < SERIAL_BELOW) fwd_range(&c, 0, blocks);
  else tv_parallel_for(blocks, fwd_range, &c);
}

typedef struct {
  float* da;         /* [N] or NULL */
  float* db;         /* [N] or NULL */
  const float* dout; /* [N] */
  int64_t N;
} bwd_ctx;

static void bwd_range(void* arg, int64_t k0, int64_t k1) {
  const bwd_ctx* c = (const bwd_ctx*)arg;
  int64_t i0 = k0 * BLOCK, i1 = k1 * BLOCK < c->N ? k1 * BLOCK : c->N;
  const float* dout = c->dout;
  if (c->da) {
    float* da = c->da;
    for (int64_t i = i0; i < i1; i++) da[i] += dout[i];
  }
  if (c->db) {
    float* db = c->db;
    for (int64_t i = i0; i < i1; i++) db[i] += dout[i];
  }
}

void TV_FN(residual_backward)(float* da, float* db, const float* dout, int64_t N) {
  if (!da && !db) return;
  bwd_ctx c = {da, db, dout, N};
  int64_t blocks = (N + BLOCK - 1) / BLOCK;
  if (N < SERIAL_BELOW) bwd_range(&c, 0, blocks);
  else tv_parallel_for(blocks, bwd_range, &c);
}
