/* newton_schulz.h — Muon's Newton–Schulz iteration for many matrices in one call, each matrix whole
 * on one thread with that thread's packing slot, on the engine that includes this file (matmul.c:
 * fp32 operands; matmul_bf16.c: bf16 operands). Hidden matrices of a few hundred rows run at about
 * two thirds of the engine's speed when every product is split across the threads (each part
 * re-packs the other operand, and there are 15 hand-offs per matrix); one matrix per thread keeps
 * both cores on whole products and a matrix's iterates in its core's cache.
 *
 * Per matrix, the iteration muon.ts describes: X ← X/‖X‖_F, then `steps` times A = X·Xᵀ (Xᵀ·X when
 * tall), B = bA + cA², X ← aX + B·X (X·B when tall). The products are gemm_region's, whose result
 * does not depend on how C is cut, and the sums are axpby's: the same bytes as the iteration made
 * of separate kernel calls, on any number of threads.
 *
 * Include after gemm_driver.h and the declaration of gemm_region, with NS_FORWARD_SMALL(out, a, b,
 * M, K, N) defined: the engine's own path for x·Wᵀ products it does not give to gemm (1 if taken). */
#ifndef TV_NEWTON_SCHULZ_H
#define TV_NEWTON_SCHULZ_H

#include <math.h>
#include <string.h>

_Static_assert(GEMM_SLOTS >= TV_NS_MAX_THREADS, "a packing slot for every thread that takes matrices");

typedef struct {
  float* const* xs;
  const int32_t* rows;
  const int32_t* cols;
  int count;
  int steps;
  float qa, qb, qc;
  float* scratch;     /* per thread: a[side²], a2[side²], y[elements] */
  int64_t per_thread; /* floats of scratch each thread owns */
  int64_t side2;
  _Atomic int next;
} ns_batch;

/* out[M×N] = a[M×K]·b[N×K]ᵀ (tv_matmul_forward's layout). */
static void ns_xwt(float* out, const float* a, const float* b, int M, int K, int N, int slot) {
  if (NS_FORWARD_SMALL(out, a, b, M, K, N)) return;
  gemm_args g = {.a = a, .a_rs = K, .a_cs = 1, .b = b, .b_rs = 1, .b_cs = K,
                 .c = out, .ldc = N, .bias = NULL, .accumulate = 0, .m = M, .n = N, .k = K};
  gemm_region(&g, 0, M, 0, N, slot);
}

/* out[M×K] = a[M×N]·b[N×K] (tv_matmul_backward's dinp). */
static void ns_xw(float* out, const float* a, const float* b, int M, int K, int N, int slot) {
  gemm_args g = {.a = a, .a_rs = N, .a_cs = 1, .b = b, .b_rs = K, .b_cs = 1,
                 .c = out, .ldc = K, .bias = NULL, .accumulate = 0, .m = M, .n = K, .k = N};
  gemm_region(&g, 0, M, 0, K, slot);
}

/* out[N×K] += a[M×N]ᵀ·b[M×K] (tv_matmul_backward's dweight). */
static void ns_xtw(float* out, const float* a, const float* b, int M, int K, int N, int slot) {
  gemm_args g = {.a = a, .a_rs = 1, .a_cs = N, .b = b, .b_rs = K, .b_cs = 1,
                 .c = out, .ldc = K, .bias = NULL, .accumulate = 1, .m = N, .n = K, .k = M};
  gemm_region(&g, 0, N, 0, K, slot);
}

static void ns_one(const ns_batch* b, float* x, int rows, int cols, float* a, float* a2, float* y,
                   int slot) {
  const int64_t n = (int64_t)rows * cols;
  const int s = rows < cols ? rows : cols;
  const int64_t ss = (int64_t)s * s;
  double sq;
  TV_FN(sum_squares)(&sq, x, n);
  TV_FN(axpby)(x, x, x, n, (float)(1.0 / (sqrt(sq) + 1e-7)), 0.0f);
  for (int k = 0; k < b->steps; k++) {
    if (rows <= cols) ns_xwt(a, x, x, rows, cols, rows, slot); /* A = X·Xᵀ */
    else {
      memset(a, 0, (size_t)ss * sizeof(float));
      ns_xtw(a, x, x, rows, cols, cols, slot); /* A = Xᵀ·X */
    }
    ns_xwt(a2, a, a, s, s, s, slot); /* A·Aᵀ = A² (A is symmetric) */
    TV_FN(axpby)(a2, a, a2, ss, b->qb, b->qc);
    if (rows <= cols) ns_xw(y, a2, x, rows, cols, rows, slot); /* Y = B·X */
    else ns_xwt(y, x, a2, rows, cols, cols, slot);            /* Y = X·Bᵀ = X·B */
    TV_FN(axpby)(x, x, y, n, b->qa, 1.0f);
  }
}

static void ns_job(void* arg, int tid, int nthreads) {
  ns_batch* b = (ns_batch*)arg;
  (void)nthreads;
  if (tid >= GEMM_SLOTS) return; /* packing buffers are per slot; the others' matrices are claimed */
  float* a = b->scratch + (int64_t)tid * b->per_thread;
  float* a2 = a + b->side2;
  float* y = a2 + b->side2;
  for (int i; (i = atomic_fetch_add_explicit(&b->next, 1, memory_order_relaxed)) < b->count;)
    ns_one(b, b->xs[i], b->rows[i], b->cols[i], a, a2, y, tid);
}

/* Matrices are claimed in the order given: largest first balances the threads best. */
static void ns_run(float* const* xs, const int32_t* rows, const int32_t* cols, int count, int steps,
                   const float* coefficients, float* scratch, int64_t side2, int64_t per_thread) {
  ns_batch b = {.xs = xs, .rows = rows, .cols = cols, .count = count, .steps = steps,
                .qa = coefficients[0], .qb = coefficients[1], .qc = coefficients[2],
                .scratch = scratch, .per_thread = per_thread, .side2 = side2};
  atomic_store_explicit(&b.next, 0, memory_order_relaxed);
  if (count == 1) ns_job(&b, 0, 1);
  else tv_parallel_run(ns_job, &b);
}

#endif
