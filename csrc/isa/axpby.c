/* axpby.c — out = a·x + b·y, element-wise: the scaled sums between Muon's matrix products
 * (momentum, the Newton–Schulz polynomial, the update), which would otherwise be loops in
 * TypeScript. Element-wise, so any split over threads gives the same bytes; a plain loop, which the
 * compiler vectorizes at every ISA level. */
#include "../kernels.h"
#include "../threads.h"

/* Below this many elements the pool's wake-up costs more than the work. */
#define SERIAL_BELOW 32768
/* Threads get whole blocks so a slice boundary never splits a cache line. */
#define BLOCK 1024

typedef struct {
  float* out;     /* [N] */
  const float* x; /* [N] */
  const float* y; /* [N] */
  int64_t N;
  float a, b;
} axpby_ctx;

static void axpby_range(void* arg, int64_t k0, int64_t k1) {
  const axpby_ctx* c = (const axpby_ctx*)arg;
  int64_t i0 = k0 * BLOCK, i1 = k1 * BLOCK < c->N ? k1 * BLOCK : c->N;
  const float a = c->a, b = c->b;
  /* out may alias x or y: each element is read before it is written, so no restrict here. */
  for (int64_t i = i0; i < i1; i++) c->out[i] = a * c->x[i] + b * c->y[i];
}

void TV_FN(axpby)(float* out, const float* x, const float* y, int64_t N, float a, float b) {
  axpby_ctx c = {out, x, y, N, a, b};
  int64_t blocks = (N + BLOCK - 1) / BLOCK;
  if (N < SERIAL_BELOW) axpby_range(&c, 0, blocks);
  else tv_parallel_for(blocks, axpby_range, &c);
}
