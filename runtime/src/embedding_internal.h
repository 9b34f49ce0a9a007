/* Helpers shared by embedding.c, embedding_lookup.c and optim.c (not API). */
#ifndef MTL_EMBEDDING_INTERNAL_H
#define MTL_EMBEDDING_INTERNAL_H

#include "mtl/embedding.h"

/* Sorts keys ascending (signed), carrying vals along; stable. The _scratch
 * form uses two caller buffers of n entries instead of allocating. */
int mtl_sort_pairs(int64_t n, int64_t *keys, int64_t *vals);
int mtl_sort_pairs_scratch(int64_t n, int64_t *keys, int64_t *vals, int64_t *key_tmp, int64_t *val_tmp);

/* Prefetches every cache line of the n floats at p (rows of big tables are
 * read at random: asking early overlaps the memory latency of several rows).
 * write: with intent to write (the line arrives exclusive).
 * Always inlined: GCC finds a function whose only effect is a prefetch to be
 * const, and then deletes its calls (their result is unused). Helpers that
 * wrap it must be always_inline too. */
#define MTL_ALWAYS_INLINE static inline __attribute__((always_inline))
MTL_ALWAYS_INLINE void mtl_prefetch_floats(const float *p, int64_t n, int write) {
  const char *a = (const char *)((uintptr_t)p & ~(uintptr_t)63), *end = (const char *)(p + n);
  for (; a < end; a += 64) {
    if (write) __builtin_prefetch(a, 1);
    else __builtin_prefetch(a, 0);
  }
}
/* How far ahead id resolution prefetches map slots. */
#define MTL_PREFETCH_MAP 16

/* How many entries ahead loops over random rows prefetch: far enough to
 * cover a DRAM access (~100 ns) with the loop's work per row. A gather
 * copies a row in a few ns; an optimizer spends tens of ns on a row. */
#ifndef MTL_PREFETCH_GATHER
#define MTL_PREFETCH_GATHER 24
#endif
#ifndef MTL_PREFETCH_UPDATE
#define MTL_PREFETCH_UPDATE 8
#endif

/* A table whose rows (with their optimizer state) take this many bytes or
 * more does not stay in the last-level cache: its lookups and updates wait on
 * DRAM and the TLB for every row. Such tables prefetch whole row blocks in
 * lookups (embedding_lookup.c) and split lookups and updates between threads
 * from a few hundred rows on; a cache-resident table's are too quick for a
 * worker's wake-up to pay below several thousand rows (measured: a 5,120-id
 * lookup of a 10^5-row table took 0.16 ms on 2 threads against 0.07 on one). */
#define MTL_EMB_BIG_BYTES ((int64_t)64 << 20)
static inline bool mtl_embedding_is_big(const mtl_embedding *t) {
  return t->row_cap * t->row_stride * (int64_t)sizeof(float) >= MTL_EMB_BIG_BYTES;
}
/* Rows per thread below which lookups (ids, bags) and lazy updates stay on
 * one thread: for big tables, and for the others. */
#define MTL_EMB_PAR_ROWS_BIG 512
#define MTL_EMB_PAR_ROWS_SMALL 16384

/* mtl_embedding_resolve with the caller's name in error messages. */
int mtl_embedding_resolve_named(mtl_embedding *t, const char *fname, int64_t n, const int64_t *ids,
                                int64_t *rows);
/* Drops gradient entries of rows that were freed by eviction. */
void mtl_embedding_grad_drop_free_rows(mtl_embedding *t);

#endif
