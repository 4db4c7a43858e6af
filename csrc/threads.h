/* threads.h — the one thread pool. Static partitioning: a job is split into the same pieces
 * whatever the thread count, or each piece's result is independent of which thread computes it,
 * so kernels give bit-identical results for any number of threads. */
#ifndef TV_THREADS_H
#define TV_THREADS_H
#include <stdint.h>

/* A job body: called once per thread with its index tid in [0, nthreads). */
typedef void (*tv_job_fn)(void* ctx, int tid, int nthreads);
/* A range body: called with a contiguous, non-empty slice [begin, end) of [0, n). */
typedef void (*tv_range_fn)(void* ctx, int64_t begin, int64_t end);

/* Run fn on every pool thread (the caller is thread 0) and wait for all of them.
 * Called from inside a job, it runs fn(ctx, 0, 1) on the calling thread. */
void tv_parallel_run(tv_job_fn fn, void* ctx);
/* Split [0, n) into contiguous chunks (a few per thread, claimed by whichever thread is free).
 * Callers must make each item's result independent of the chunk it lands in. Runs inline when n is
 * 1, or in one call when only one thread is configured. */
void tv_parallel_for(int64_t n, tv_range_fn fn, void* ctx);

int tv_pool_threads(void);
#endif
