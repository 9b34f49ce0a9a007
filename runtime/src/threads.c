/* One thread count for everything (mtl_set_num_threads): OpenBLAS's threads
 * run the matrix products, and mtl's own pool runs the large element loops
 * (linear's bias, activation and gradient passes, mix) between them.
 *
 * The pool: num_threads - 1 workers plus the calling thread. A job is cut into
 * at most num_threads contiguous parts, part k always run by thread k, so the
 * split (and any per-part rounding) depends only on the thread count. Workers
 * poll for a short while after a job (a step issues its loops close together),
 * then sleep on a condition variable, so they do not hold a core that
 * OpenBLAS's threads need for the next product. One job runs at a time: a
 * caller that finds the pool busy (another thread's job, or a job started from
 * inside a part) runs its loop serially. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "mtl/core.h"

extern void openblas_set_num_threads(int n);

#define MAX_THREADS 64
#define SPIN_ROUNDS 2000 /* ~10-20 us of polling before a worker sleeps */

static int num_threads = 1;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;
static _Atomic unsigned generation; /* bumped for each job */
static _Atomic int pending;         /* workers that have not finished the current job */
static _Atomic int sleepers;
static int workers; /* started so far (they never exit) */

static struct {
  mtl_task_fn fn;
  void *ctx;
  int64_t n;
  int parts;
} job;

static _Thread_local bool in_job;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static void run_part(int k) {
  int64_t b = job.n * k / job.parts, e = job.n * (k + 1) / job.parts;
  if (b < e) job.fn(job.ctx, b, e);
}

/* The generation a worker starts from: read when it is created (pool_lock
 * held, before the job that needs it is published), not when the thread gets
 * to run, which may be after that job. */
static unsigned start_generation[MAX_THREADS];

static void *worker_main(void *arg) {
  int id = (int)(intptr_t)arg;
  in_job = true; /* a part that calls mtl_parallel_for runs it serially */
  unsigned seen = start_generation[id];
  for (;;) {
    unsigned g;
    int spins = 0;
    while ((g = atomic_load(&generation)) == seen) {
      if (++spins < SPIN_ROUNDS) {
        cpu_relax();
        continue;
      }
      pthread_mutex_lock(&wake_lock);
      atomic_fetch_add(&sleepers, 1);
      while ((g = atomic_load(&generation)) == seen) pthread_cond_wait(&wake_cond, &wake_lock);
      atomic_fetch_sub(&sleepers, 1);
      pthread_mutex_unlock(&wake_lock);
      break;
    }
    seen = g;
    if (id < job.parts) run_part(id);
    atomic_fetch_sub(&pending, 1);
  }
  return NULL;
}

/* Starts workers up to n (pool_lock held). Returns how many run. */
static int ensure_workers(int n) {
  if (n > MAX_THREADS - 1) n = MAX_THREADS - 1;
  while (workers < n) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    start_generation[workers + 1] = atomic_load(&generation);
    int rc = pthread_create(&t, &attr, worker_main, (void *)(intptr_t)(workers + 1));
    pthread_attr_destroy(&attr);
    if (rc != 0) break; /* fewer threads: the job still runs, in fewer parts */
    workers++;
  }
  return workers;
}

void mtl_parallel_for(int64_t n, int64_t grain, mtl_task_fn fn, void *ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int t = num_threads;
  int64_t most = n / grain; /* parts of at least grain items */
  if (t > most) t = (int)most;
  if (t <= 1 || in_job || pthread_mutex_trylock(&pool_lock) != 0) {
    fn(ctx, 0, n);
    return;
  }
  int w = ensure_workers(t - 1);
  if (t > w + 1) t = w + 1;
  job.fn = fn;
  job.ctx = ctx;
  job.n = n;
  job.parts = t;
  atomic_store(&pending, w);
  atomic_fetch_add(&generation, 1); /* publishes the job */
  if (atomic_load(&sleepers) > 0) {
    pthread_mutex_lock(&wake_lock);
    pthread_cond_broadcast(&wake_cond);
    pthread_mutex_unlock(&wake_lock);
  }
  in_job = true;
  run_part(0);
  in_job = false;
  for (int spins = 0; atomic_load(&pending) > 0; spins++) {
    if (spins < SPIN_ROUNDS) cpu_relax();
    else sched_yield(); /* a worker lost its core: let it finish */
  }
  pthread_mutex_unlock(&pool_lock);
}

void mtl_set_num_threads(int n) {
  if (n < 1) n = 1;
  if (n > MAX_THREADS) n = MAX_THREADS;
  num_threads = n;
  openblas_set_num_threads(n);
}

int mtl_get_num_threads(void) { return num_threads; }
