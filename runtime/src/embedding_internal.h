/* Helpers shared by embedding.c, embedding_lookup.c and optim.c (not API). */
#ifndef MTL_EMBEDDING_INTERNAL_H
#define MTL_EMBEDDING_INTERNAL_H

#include "mtl/embedding.h"

/* id maps (embedding.h: mtl_id_map) */
int mtl_id_map_init(mtl_id_map *m, int64_t cap); /* empty, room for cap/2 keys */
void mtl_id_map_free(mtl_id_map *m);
void mtl_id_map_clear(mtl_id_map *m);
mtl_id_entry *mtl_id_map_find(const mtl_id_map *m, int64_t key);
mtl_id_entry *mtl_id_map_insert(mtl_id_map *m, int64_t key); /* key absent; NULL: out of memory */
void mtl_id_map_remove(mtl_id_map *m, mtl_id_entry *e);

/* Sorts keys ascending (signed), carrying vals along; stable. The _scratch
 * form uses two caller buffers of n entries instead of allocating. */
int mtl_sort_pairs(int64_t n, int64_t *keys, int64_t *vals);
int mtl_sort_pairs_scratch(int64_t n, int64_t *keys, int64_t *vals, int64_t *key_tmp, int64_t *val_tmp);

/* Prefetches the cache lines of n floats at p (rows of big tables are read at
 * random: asking early overlaps the memory latency of several rows). */
static inline void mtl_prefetch_floats(const float *p, int64_t n, int write) {
  for (int64_t j = 0; j < n; j += 16) {
    if (write) __builtin_prefetch(p + j, 1);
    else __builtin_prefetch(p + j, 0);
  }
}
#define MTL_PREFETCH_AHEAD 8

/* mtl_embedding_resolve with the caller's name in error messages. */
int mtl_embedding_resolve_named(mtl_embedding *t, const char *fname, int64_t n, const int64_t *ids,
                                int64_t *rows);
/* Drops gradient entries of rows that were freed by eviction. */
void mtl_embedding_grad_drop_free_rows(mtl_embedding *t);

#endif
