/* gemm_driver.h — what the fp32 (matmul.c) and bf16 (matmul_bf16.c) matrix-product engines share:
 * the description of one product C (+)= A·B (+ bias) in strided layouts, how threads share it, and
 * when it is too small to wake them.
 *
 * Include it after defining MR, NR and GEMM_SLOTS, and after declaring
 *   static void gemm_region(const gemm_args* g, int i_begin, int i_end, int j_begin, int j_end, int slot);
 * (the engine proper: rows [i_begin, i_end) and columns [j_begin, j_end) of C, with packing slot `slot`). */
#ifndef TV_GEMM_DRIVER_H
#define TV_GEMM_DRIVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "../threads.h"

typedef struct {
  const float* a; /* A(i,p) = a[i*a_rs + p*a_cs] */
  int64_t a_rs, a_cs;
  const float* b; /* B(p,j) = b[p*b_rs + j*b_cs] */
  int64_t b_rs, b_cs;
  float* c; /* C(i,j) = c[i*ldc + j] */
  int64_t ldc;
  const float* bias; /* [n] or NULL */
  int accumulate;    /* C += A·B rather than C = A·B */
  int m, n, k;
  int split_cols; /* parts are column ranges rather than row ranges */
  int parts;      /* how many parts C is cut into */
  _Atomic int next_part;
} gemm_args;

static void gemm_region(const gemm_args* g, int i_begin, int i_end, int j_begin, int j_end, int slot);

/* Parts of C per thread (an engine may set its own before including this file). Threads claim
 * parts one at a time, so a thread that loses its core for a while (another process on a shared
 * machine, a laptop's background work) delays one part while the other threads take the rest,
 * instead of holding up a fixed half of every product. Smaller parts re-pack more of the shared
 * operand: for fp32, 2 per thread cost a little on a quiet machine and gain more beside a busy
 * process; more parts cost more than they gain. */
#ifndef GEMM_PARTS_PER_THREAD
#define GEMM_PARTS_PER_THREAD 2
#endif
#define GEMM_MIN_PART 512

/* Part `part` of `parts`: whole tiles of rows (or of columns), so no tile straddles two parts (the
 * result would not change if one did, but the edge path would be taken more often). */
static void gemm_part(const gemm_args* g, int part, int parts, int slot) {
  if (g->split_cols) {
    int tiles = (g->n + NR - 1) / NR;
    int t0 = (int)((int64_t)tiles * part / parts), t1 = (int)((int64_t)tiles * (part + 1) / parts);
    int j0 = t0 * NR, j1 = t1 * NR < g->n ? t1 * NR : g->n;
    if (j1 > j0) gemm_region(g, 0, g->m, j0, j1, slot);
  } else {
    int tiles = (g->m + MR - 1) / MR;
    int t0 = (int)((int64_t)tiles * part / parts), t1 = (int)((int64_t)tiles * (part + 1) / parts);
    int i0 = t0 * MR, i1 = t1 * MR < g->m ? t1 * MR : g->m;
    if (i1 > i0) gemm_region(g, i0, i1, 0, g->n, slot);
  }
}

static void gemm_job(void* arg, int tid, int nthreads) {
  gemm_args* g = (gemm_args*)arg;
  (void)nthreads;
  if (tid >= GEMM_SLOTS) return; /* packing buffers are per slot; the others' parts are claimed */
  for (int part; (part = atomic_fetch_add_explicit(&g->next_part, 1, memory_order_relaxed)) < g->parts;)
    gemm_part(g, part, g->parts, tid);
}

static void gemm(gemm_args* g) {
  /* Each part packs the whole of the operand that is not split, so split the larger side. */
  g->split_cols = g->n > g->m;
  atomic_store_explicit(&g->next_part, 0, memory_order_relaxed);
  if ((int64_t)g->m * g->n * g->k < 32 * 1024) { /* not worth waking threads */
    g->parts = 1;
    gemm_job(g, 0, 1);
    return;
  }
  /* More parts than threads only while each part keeps GEMM_MIN_PART rows (or columns): every part
   * packs the whole of the other operand, which for a narrow split (dweight with 768 output rows)
   * costs more than the balance gains. */
  const int threads = tv_pool_threads();
  const int extent = g->split_cols ? g->n : g->m;
  int per_thread = threads > 1 ? GEMM_PARTS_PER_THREAD : 1; /* one thread: nothing to balance */
  while (per_thread > 1 && extent / (threads * per_thread) < GEMM_MIN_PART) per_thread--;
  const int tiles = g->split_cols ? (g->n + NR - 1) / NR : (g->m + MR - 1) / MR;
  const int want = threads * per_thread;
  g->parts = want < tiles ? want : tiles;
  tv_parallel_run(gemm_job, g);
}

#endif
