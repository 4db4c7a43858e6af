/* threads.c — one pool of worker threads shared by every kernel.
 *
 * A job is cut into nthreads parts (part i is what thread i of nthreads computes, so the results do
 * not depend on who runs it). The caller and the workers CLAIM parts from one atomic counter: when
 * a worker is slow to start (asleep, or descheduled on a busy machine), the caller runs its part
 * too instead of waiting for it, and a small job never waits for a wake-up. The counter carries the
 * job's generation, so a worker that wakes late can never claim a part of a finished job.
 * Workers spin briefly between jobs (kernels come back to back during a training step, and a futex
 * wake costs more than most small kernels), then sleep on a condition variable. */
#define _GNU_SOURCE
#include "threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "train_vocab.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define TV_MAX_THREADS 256
#define SPIN_ROUNDS 20000

static struct {
  int nthreads; /* including the calling thread */
  pthread_t workers[TV_MAX_THREADS];
  /* (generation << 32) | next unclaimed part of the current job. */
  _Atomic uint64_t claim;
  uint64_t start_generation; /* the generation new workers start from (set before they are created) */
  _Atomic int done;          /* parts of the current job finished */
  _Atomic int quit;
  _Atomic(tv_job_fn) fn;
  _Atomic(void*) ctx;
  _Atomic int parts;
  pthread_mutex_t mu;
  pthread_cond_t wake;
  int sleepers; /* guarded by mu */
} pool = {.nthreads = 0, .mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static _Thread_local int inside_job = 0;

static inline uint64_t claim_generation(uint64_t c) { return c >> 32; }

/* Claim and run parts of job `gen` until none is left. A claim succeeds only while the counter
 * still shows this generation, i.e. while the job's caller is waiting for it; fn and ctx were
 * published before the counter, so they are the job's own. */
static void run_parts(uint64_t gen) {
  tv_job_fn fn = atomic_load_explicit(&pool.fn, memory_order_acquire);
  void* ctx = atomic_load_explicit(&pool.ctx, memory_order_acquire);
  const int parts = atomic_load_explicit(&pool.parts, memory_order_relaxed);
  uint64_t c = atomic_load_explicit(&pool.claim, memory_order_acquire);
  for (;;) {
    if (claim_generation(c) != gen || (int)(uint32_t)c >= parts) return;
    if (!atomic_compare_exchange_weak_explicit(&pool.claim, &c, c + 1, memory_order_acq_rel,
                                               memory_order_acquire))
      continue;
    inside_job = 1;
    fn(ctx, (int)(uint32_t)c, parts);
    inside_job = 0;
    atomic_fetch_add_explicit(&pool.done, 1, memory_order_acq_rel);
    c = atomic_load_explicit(&pool.claim, memory_order_acquire);
  }
}

static void* worker_main(void* arg) {
  (void)arg;
  /* Not the current generation: a job may already have been posted between pthread_create and
   * here, and a worker that took it for "seen" would skip it. */
  uint64_t seen = pool.start_generation;
  for (;;) {
    uint64_t gen;
    int spins = 0;
    while ((gen = claim_generation(atomic_load_explicit(&pool.claim, memory_order_acquire))) == seen &&
           !atomic_load_explicit(&pool.quit, memory_order_acquire)) {
      if (++spins < SPIN_ROUNDS) {
        cpu_relax();
        continue;
      }
      pthread_mutex_lock(&pool.mu);
      pool.sleepers++;
      while (claim_generation(atomic_load_explicit(&pool.claim, memory_order_acquire)) == seen &&
             !atomic_load_explicit(&pool.quit, memory_order_acquire))
        pthread_cond_wait(&pool.wake, &pool.mu);
      pool.sleepers--;
      pthread_mutex_unlock(&pool.mu);
    }
    if (atomic_load_explicit(&pool.quit, memory_order_acquire)) return NULL;
    seen = gen;
    run_parts(gen);
  }
}

static void stop_workers(void) {
  if (pool.nthreads <= 1) return;
  atomic_store_explicit(&pool.quit, 1, memory_order_release);
  pthread_mutex_lock(&pool.mu);
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.mu);
  for (int i = 1; i < pool.nthreads; i++) pthread_join(pool.workers[i], NULL);
  atomic_store_explicit(&pool.quit, 0, memory_order_release);
}

/* Kernels keep their tiles and per-head copies on the stack (attention's stay under 1 MiB):
 * give workers 8 MiB whatever the C library's default (musl's is 128 KiB). */
#define WORKER_STACK_BYTES ((size_t)8 << 20)

static int start_workers(int n) {
  pool.nthreads = 1;
  pool.start_generation = claim_generation(atomic_load_explicit(&pool.claim, memory_order_acquire));
  pthread_attr_t attr;
  const int have_attr = pthread_attr_init(&attr) == 0;
  if (have_attr) pthread_attr_setstacksize(&attr, WORKER_STACK_BYTES);
  for (int i = 1; i < n; i++) {
    if (pthread_create(&pool.workers[i], have_attr ? &attr : NULL, worker_main, (void*)(intptr_t)i) != 0) break;
    pool.nthreads = i + 1;
  }
  if (have_attr) pthread_attr_destroy(&attr);
  return pool.nthreads;
}

static int default_threads(void) {
  const char* env = getenv("TRAIN_VOCAB_THREADS");
  if (env && *env) {
    int n = atoi(env);
    if (n >= 1 && n <= TV_MAX_THREADS) return n;
  }
#ifdef __linux__
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n >= 1) return n > TV_MAX_THREADS ? TV_MAX_THREADS : n;
  }
#endif
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  return n > TV_MAX_THREADS ? TV_MAX_THREADS : (int)n;
}

static void ensure_pool(void) {
  if (pool.nthreads == 0) start_workers(default_threads());
}

int tv_threads_set(int n) {
  if (n < 1 || n > TV_MAX_THREADS) return TV_E_SIZE;
  pthread_mutex_lock(&run_lock);
  if (pool.nthreads != n) {
    stop_workers();
    start_workers(n);
  }
  pthread_mutex_unlock(&run_lock);
  return TV_OK;
}

int tv_threads_get(void) {
  pthread_mutex_lock(&run_lock);
  ensure_pool();
  int n = pool.nthreads;
  pthread_mutex_unlock(&run_lock);
  return n;
}

int tv_pool_threads(void) { return inside_job ? pool.nthreads : tv_threads_get(); }

void tv_parallel_run(tv_job_fn fn, void* ctx) {
  if (inside_job) {
    fn(ctx, 0, 1);
    return;
  }
  pthread_mutex_lock(&run_lock);
  ensure_pool();
  if (pool.nthreads == 1) {
    pthread_mutex_unlock(&run_lock);
    inside_job = 1;
    fn(ctx, 0, 1);
    inside_job = 0;
    return;
  }
  const uint64_t gen = (claim_generation(atomic_load_explicit(&pool.claim, memory_order_relaxed)) + 1) & 0xffffffffu;
  atomic_store_explicit(&pool.fn, fn, memory_order_relaxed);
  atomic_store_explicit(&pool.ctx, ctx, memory_order_relaxed);
  atomic_store_explicit(&pool.parts, pool.nthreads, memory_order_relaxed);
  atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
  atomic_store_explicit(&pool.claim, gen << 32, memory_order_release); /* publishes the job */
  pthread_mutex_lock(&pool.mu);
  if (pool.sleepers) pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.mu);
  run_parts(gen);
  /* Every part is claimed; wait for the ones other threads are still running (yielding the core
   * now and then, in case the thread running one is waiting for it). */
  for (int spins = 0; atomic_load_explicit(&pool.done, memory_order_acquire) < pool.nthreads; spins++) {
    if ((spins & 1023) == 1023) sched_yield();
    else cpu_relax();
  }
  pthread_mutex_unlock(&run_lock);
}

/* tv_parallel_for hands out [0, n) in chunks, RANGE_CHUNKS per thread, claimed from a counter: a
 * thread that stalls (descheduled on a busy machine) holds up one chunk rather than its whole share,
 * and the others take the rest. Callers make every item's result independent of its chunk. */
#define RANGE_CHUNKS 4

typedef struct {
  tv_range_fn fn;
  void* ctx;
  int64_t n;
  _Atomic int64_t next;
} range_job;

static void range_body(void* arg, int tid, int nthreads) {
  range_job* job = (range_job*)arg;
  (void)tid;
  const int64_t chunk = nthreads > 1 ? (job->n + (int64_t)nthreads * RANGE_CHUNKS - 1) / ((int64_t)nthreads * RANGE_CHUNKS) : job->n;
  for (;;) {
    int64_t begin = atomic_fetch_add_explicit(&job->next, chunk, memory_order_relaxed);
    if (begin >= job->n) return;
    int64_t end = begin + chunk < job->n ? begin + chunk : job->n;
    job->fn(job->ctx, begin, end);
  }
}

void tv_parallel_for(int64_t n, tv_range_fn fn, void* ctx) {
  if (n <= 0) return;
  if (n == 1 || inside_job) {
    fn(ctx, 0, n);
    return;
  }
  range_job job = {fn, ctx, n, 0};
  tv_parallel_run(range_body, &job);
}
