/* residual.c — the residual connection, out = a + b. (Its gradient passes dout through unchanged
 * to both branches, so the model reads the stream's gradient in place and needs no kernel for it.)
 * Element-wise, so any split over threads gives the same bytes; a plain loop, which the compiler
 * vectorizes at every ISA level. */
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
