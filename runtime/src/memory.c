/* Buffer cache: freed buffers are kept in per-size-class free lists so that a
 * training step reuses the previous step's memory instead of calling malloc.
 * Size classes are powers of two from 64 bytes up to 64 MiB, with four steps
 * in between (about 19 % waste at most); larger buffers bypass the cache. */
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#include "mtl/core.h"

/* Under AddressSanitizer (-DMTL_SANITIZE=ON) cached blocks are poisoned, so a
 * use of a tensor's storage after it went back to the cache is reported as a
 * use of free()d memory would be; a block handed out has only the requested
 * bytes unpoisoned, so an overflow into its size class's slack is caught too.
 * A cached block's first word (the free-list link) stays readable: LeakSanitizer
 * does not look into poisoned memory and would take the rest of the list for leaks. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define MIN_SHIFT 6   /* 64 bytes */
#define MAX_SHIFT 26  /* 64 MiB */
#define STEPS 4
#define NCLASS ((MAX_SHIFT - MIN_SHIFT + 1) * STEPS)
#define CACHE_LIMIT ((size_t)1 << 30) /* never keep more than 1 GiB cached */

/* Blocks of at least this many bytes are mapped from the kernel directly and
 * unmapped when the cache lets them go, so their memory leaves the process at
 * once (malloc's heap might keep it, and its mmap threshold moves). */
#define MAP_MIN ((size_t)1 << 20)

typedef struct block { struct block *next; } block;

static block *free_list[NCLASS];
/* allocations served per class since the last mtl_memory_trim */
static unsigned hits[NCLASS];
static size_t in_use, cached;
static size_t limit = (size_t)64 << 30;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Returns the class index and its byte size for a request, or -1 if too big:
 * for lo < n <= 2 lo (lo a power of two) the classes are lo + k lo/STEPS. */
static int size_class(size_t n, size_t *cls_bytes) {
  if (n <= ((size_t)1 << MIN_SHIFT)) { *cls_bytes = (size_t)1 << MIN_SHIFT; return 0; }
  int shift = MIN_SHIFT + 1;
  while (shift <= MAX_SHIFT && ((size_t)1 << shift) < n) shift++;
  if (shift > MAX_SHIFT) return -1;
  size_t lo = (size_t)1 << (shift - 1), step = lo / STEPS;
  int k = (int)((n - lo + step - 1) / step); /* 1..STEPS */
  *cls_bytes = lo + (size_t)k * step;
  return (shift - 1 - MIN_SHIFT) * STEPS + k;
}

void mtl_memory_set_limit(size_t nbytes) { limit = nbytes; }

/* A budget of this thread: while set, the bytes its allocations may add up to
 * (loading an untrusted model directory runs under one). */
static _Thread_local bool budget_on;
static _Thread_local size_t budget, budget_used;

void mtl_memory_set_budget(size_t nbytes) {
  budget_on = true;
  budget = nbytes;
  budget_used = 0;
}

size_t mtl_memory_end_budget(void) {
  budget_on = false;
  return budget_used;
}

static void *block_new(size_t bytes) {
#ifndef MTL_NO_POOLS
  if (bytes >= MAP_MIN) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
  }
#endif
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes) != 0) return NULL;
  return p;
}

static void block_delete(void *p, size_t bytes) {
  (void)bytes; /* only the mmap path needs it */
#ifndef MTL_NO_POOLS
  if (bytes >= MAP_MIN) {
    munmap(p, bytes);
    return;
  }
#endif
  free(p);
}

void *mtl_alloc(size_t nbytes) {
  if (nbytes == 0) nbytes = 1;
  if (nbytes > limit) {
    mtl_error("out of memory: cannot allocate %zu bytes (limit %zu)", nbytes, limit);
    return NULL;
  }
  if (budget_on) {
    if (nbytes > budget - budget_used) {
      mtl_error("out of memory: cannot allocate %zu bytes (%zu of a budget of %zu bytes already allocated)", nbytes,
                budget_used, budget);
      return NULL;
    }
    budget_used += nbytes;
  }
  size_t cls_bytes;
  int c = size_class(nbytes, &cls_bytes);
  pthread_mutex_lock(&lock);
  if (c >= 0) hits[c]++;
  if (c >= 0 && free_list[c]) {
    block *b = free_list[c];
    UNPOISON(b, sizeof *b);
    free_list[c] = b->next;
    cached -= cls_bytes;
    in_use += cls_bytes;
    pthread_mutex_unlock(&lock);
    POISON(b, cls_bytes);
    UNPOISON(b, nbytes);
    return b;
  }
  pthread_mutex_unlock(&lock);
  size_t want = c >= 0 ? cls_bytes : (nbytes + 63) & ~(size_t)63;
  void *p = block_new(want);
  if (!p) {
    mtl_memory_release_cache();
    if (!(p = block_new(want))) {
      mtl_error("out of memory: cannot allocate %zu bytes", nbytes);
      return NULL;
    }
  }
  pthread_mutex_lock(&lock);
  in_use += want;
  pthread_mutex_unlock(&lock);
  POISON(p, want);
  UNPOISON(p, nbytes);
  return p;
}

void mtl_free(void *p, size_t nbytes) {
  if (!p) return;
  if (nbytes == 0) nbytes = 1;
  size_t cls_bytes;
  int c = size_class(nbytes, &cls_bytes);
  size_t have = c >= 0 ? cls_bytes : (nbytes + 63) & ~(size_t)63;
  pthread_mutex_lock(&lock);
  in_use -= have;
#ifdef MTL_NO_POOLS /* sanitizer builds: freed memory goes back at once, so use-after-free is seen */
  c = -1;
#endif
  if (c >= 0 && cached + cls_bytes <= CACHE_LIMIT) {
    block *b = p;
    UNPOISON(b, sizeof *b);
    b->next = free_list[c];
    free_list[c] = b;
    cached += cls_bytes;
    POISON((char *)b + sizeof *b, cls_bytes - sizeof *b);
    pthread_mutex_unlock(&lock);
    return;
  }
  pthread_mutex_unlock(&lock);
  UNPOISON(p, have);
  block_delete(p, have);
}

void *mtl_grow_mapping(void *p, size_t old_bytes, size_t new_bytes) {
#ifdef MTL_NO_POOLS
  (void)p, (void)old_bytes, (void)new_bytes;
  return NULL; /* sanitizer builds: every buffer comes from posix_memalign */
#else
  size_t cls;
  if (!p || new_bytes <= old_bytes || new_bytes > limit || size_class(old_bytes, &cls) >= 0) return NULL;
  size_t have = (old_bytes + 63) & ~(size_t)63, want = (new_bytes + 63) & ~(size_t)63;
  if (have < MAP_MIN) return NULL;
  void *q = mremap(p, have, want, MREMAP_MAYMOVE);
  if (q == MAP_FAILED) return NULL;
  pthread_mutex_lock(&lock);
  in_use += want - have;
  pthread_mutex_unlock(&lock);
  return q;
#endif
}

/* Read under the lock: serving threads allocate while another thread's heap
 * tracking reads the count (ThreadSanitizer reported the unlocked read). */
size_t mtl_memory_in_use(void) {
  pthread_mutex_lock(&lock);
  size_t n = in_use;
  pthread_mutex_unlock(&lock);
  return n;
}

size_t mtl_memory_cached(void) {
  pthread_mutex_lock(&lock);
  size_t n = cached;
  pthread_mutex_unlock(&lock);
  return n;
}

static size_t class_bytes(int c) {
  size_t lo = (size_t)1 << (MIN_SHIFT + (c - 1) / STEPS);
  return c == 0 ? ((size_t)1 << MIN_SHIFT) : lo + (size_t)((c - 1) % STEPS + 1) * (lo / STEPS);
}

/* Frees the cached blocks of class c (lock held). */
static void drop_class(int c) {
  size_t bytes = class_bytes(c);
  while (free_list[c]) {
    block *b = free_list[c];
    UNPOISON(b, sizeof *b);
    free_list[c] = b->next;
    block_delete(b, bytes);
    cached -= bytes;
  }
}

void mtl_memory_release_cache(void) {
  pthread_mutex_lock(&lock);
  for (int c = 0; c < NCLASS; c++) drop_class(c);
  cached = 0;
  pthread_mutex_unlock(&lock);
}

/* Gives back the cached blocks of every size class that served no allocation
 * for TRIM_AGE seconds (as seen at the trims): a training step keeps reusing
 * its classes, while the buffers of one-off work (building optimizer state, a
 * snapshot, loading data) leave the process instead of staying resident. The
 * heap tracker of the Lua binding calls this after each full collection,
 * which a large-batch step may run several times: with "unused since the
 * previous trim" a class that a step uses once (a backward-only shape) was
 * given back in the middle of the step and mapped afresh in the next one,
 * EasyRec's mmoe_on_taobao at batch 4096 took ~50,000 page faults a step
 * (docs/performance.md). Time makes the rule independent of how often the
 * collector runs. */
#define TRIM_AGE 2.0
static double last_used[NCLASS]; /* the latest trim that saw the class used */

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void mtl_memory_trim(void) {
  double now = now_seconds();
  pthread_mutex_lock(&lock);
  for (int c = 0; c < NCLASS; c++) {
    if (hits[c] > 0) last_used[c] = now;
    else if (now - last_used[c] >= TRIM_AGE) drop_class(c);
    hits[c] = 0;
  }
  pthread_mutex_unlock(&lock);
}
