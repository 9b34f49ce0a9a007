/* The core's integer-key hash map: int64 keys to (val, aux), used by the
 * embedding tables (id -> row, pending ids) and the statistics features
 * (keys -> slots, ids -> table rows). Not bound to Lua.
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones); the capacity is a power of two and the load at most 1/2; a
 * key's home slot is its Fibonacci hash (the top bits of key * 2^64/phi).
 * An entry with val < 0 is empty: stored values are >= 0. A zeroed map
 * ({0}) is a valid empty map. Errors (out of memory) return -1 / NULL with
 * the message set, as core.h says. */
#ifndef MTL_ID_MAP_H
#define MTL_ID_MAP_H

#include "mtl/core.h"

typedef struct {
  int64_t key, val, aux;
} mtl_id_entry;
typedef struct {
  mtl_id_entry *e;
  int64_t cap, count;
} mtl_id_map;

int mtl_id_map_init(mtl_id_map *m, int64_t cap); /* empty, room for cap/2 keys (replaces any entries) */
void mtl_id_map_free(mtl_id_map *m);
void mtl_id_map_clear(mtl_id_map *m);
mtl_id_entry *mtl_id_map_find(const mtl_id_map *m, int64_t key); /* NULL: absent */
/* Inserts a key known to be absent, with val = aux = 0 (the caller sets
 * them); grows the map when needed. NULL: out of memory. */
mtl_id_entry *mtl_id_map_insert(mtl_id_map *m, int64_t key);
/* key's entry, inserted as by mtl_id_map_insert when absent (*added then
 * true): one probe instead of a find and an insert. The map may grow even
 * when key is present. NULL: out of memory. */
mtl_id_entry *mtl_id_map_find_or_insert(mtl_id_map *m, int64_t key, bool *added);
void mtl_id_map_remove(mtl_id_map *m, mtl_id_entry *e);

/* The home slot of key (cap must be > 0). */
static inline int64_t mtl_id_map_home(const mtl_id_map *m, int64_t key) {
  uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ULL;
  return (int64_t)(h >> (64 - __builtin_ctzll((unsigned long long)m->cap)));
}
/* Prefetches key's home slot (a lookup in a big map misses the caches); a
 * map with no slots yet has nothing to fetch. Always inlined: GCC finds a
 * function whose only effect is a prefetch to be const and deletes its calls. */
static inline __attribute__((always_inline)) void mtl_id_map_prefetch(const mtl_id_map *m, int64_t key) {
  if (m->cap > 0) __builtin_prefetch(&m->e[mtl_id_map_home(m, key)], 0);
}

#endif
