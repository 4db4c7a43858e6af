/* gemm_driver.h — what the fp32 (matmul.c) and bf16 (matmul_bf16.c) matrix-product engines share:
 * the description of one product C (+)= A·B (+ bias) in strided layouts, how threads split it, and
 * when it is too small to wake them.
 *
 * Include it after defining MR, NR and GEMM_SLOTS, and after declaring
 *   static void gemm_region(const gemm_args* g, int i_begin, int i_end, int j_begin, int j_end, int slot);
 * (the engine proper: rows [i_begin, i_end) and columns [j_begin, j_end) of C, with packing slot `slot`). */
#ifndef TV_GEMM_DRIVER_H
#define TV_GEMM_DRIVER_H

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
  int split_cols; /* threads take column ranges rather than row ranges */
} gemm_args;

static void gemm_region(const gemm_args* g, int i_begin, int i_end, int j_begin, int j_end, int slot);

static void gemm_job(void* arg, int tid, int nthreads) {
  const gemm_args* g = (const gemm_args*)arg;
  int nt = nthreads < GEMM_SLOTS ? nthreads : GEMM_SLOTS;
  if (tid >= nt) return;
  /* Whole tiles per thread, so no tile straddles two threads (the result would not change if one
   * did, but the edge path would be taken more often). */
  if (g->split_cols) {
    int tiles = (g->n + NR - 1) / NR;
    int t0 = (int)((int64_t)tiles * tid / nt), t1 = (int)((int64_t)tiles * (tid + 1) / nt);
    int j0 = t0 * NR, j1 = t1 * NR < g->n ? t1 * NR : g->n;
    if (j1 > j0) gemm_region(g, 0, g->m, j0, j1, tid);
  } else {
    int tiles = (g->m + MR - 1) / MR;
    int t0 = (int)((int64_t)tiles * tid / nt), t1 = (int)((int64_t)tiles * (tid + 1) / nt);
    int i0 = t0 * MR, i1 = t1 * MR < g->m ? t1 * MR : g->m;
    if (i1 > i0) gemm_region(g, i0, i1, 0, g->n, tid);
  }
}

static void gemm(gemm_args* g) {
  /* Each thread packs the whole of the operand that is not split, so split the larger side. */
  g->split_cols = g->n > g->m;
  if ((int64_t)g->m * g->n * g->k < 32 * 1024) gemm_job(g, 0, 1); /* not worth waking threads */
  else tv_parallel_run(gemm_job, g);
}

#endif
