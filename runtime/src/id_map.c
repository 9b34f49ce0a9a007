/* The core's integer-key hash map (mtl/id_map.h): open addressing, linear
 * probing, backward-shift deletion. Used by embedding tables and stats.c. */
#include <stdbool.h>
#include <stdlib.h>

#include "mtl/id_map.h"

/* How far ahead a rehash prefetches the slots of the entries it moves. */
#define REHASH_PREFETCH 32

int mtl_id_map_init(mtl_id_map *m, int64_t cap) {
  int64_t c = 16;
  while (c < cap) c *= 2;
  mtl_id_entry *e = malloc((size_t)c * sizeof *e);
  if (!e) return mtl_error("out of memory (id map of %lld entries)", (long long)c);
  for (int64_t i = 0; i < c; i++) e[i].val = -1;
  free(m->e);
  m->e = e;
  m->cap = c;
  m->count = 0;
  return 0;
}

void mtl_id_map_free(mtl_id_map *m) {
  free(m->e);
  m->e = NULL;
  m->cap = m->count = 0;
}

void mtl_id_map_clear(mtl_id_map *m) {
  for (int64_t i = 0; i < m->cap; i++) m->e[i].val = -1;
  m->count = 0;
}

mtl_id_entry *mtl_id_map_find(const mtl_id_map *m, int64_t key) {
  if (m->count == 0) return NULL;
  int64_t mask = m->cap - 1;
  for (int64_t i = mtl_id_map_home(m, key);; i = (i + 1) & mask) {
    mtl_id_entry *e = &m->e[i];
    if (e->val < 0) return NULL;
    if (e->key == key) return e;
  }
}

static mtl_id_entry *map_slot(mtl_id_map *m, int64_t key) {
  int64_t mask = m->cap - 1, i = mtl_id_map_home(m, key);
  while (m->e[i].val >= 0) i = (i + 1) & mask;
  return &m->e[i];
}

/* Makes room for one more key: the map starts at 16 slots and doubles when
 * the load would pass 1/2. */
static int reserve_one(mtl_id_map *m) {
  if (m->cap == 0) return mtl_id_map_init(m, 16);
  if ((m->count + 1) * 2 <= m->cap) return 0;
  mtl_id_map bigger = {0};
  if (mtl_id_map_init(&bigger, m->cap * 2) < 0) return -1;
  for (int64_t i = 0; i < m->cap; i++) {
    /* a big map's entries land at random places of the new one: ask early */
    if (i + REHASH_PREFETCH < m->cap && m->e[i + REHASH_PREFETCH].val >= 0)
      mtl_id_map_prefetch(&bigger, m->e[i + REHASH_PREFETCH].key);
    if (m->e[i].val >= 0) *map_slot(&bigger, m->e[i].key) = m->e[i];
  }
  bigger.count = m->count;
  free(m->e);
  *m = bigger;
  return 0;
}

static mtl_id_entry *fill(mtl_id_map *m, mtl_id_entry *e, int64_t key) {
  e->key = key;
  e->val = 0;
  e->aux = 0;
  m->count++;
  return e;
}

/* Inserts a key known to be absent; the caller sets val (>= 0) and aux. */
mtl_id_entry *mtl_id_map_insert(mtl_id_map *m, int64_t key) {
  if (reserve_one(m) < 0) return NULL;
  return fill(m, map_slot(m, key), key);
}

mtl_id_entry *mtl_id_map_find_or_insert(mtl_id_map *m, int64_t key, bool *added) {
  if (reserve_one(m) < 0) return NULL;
  int64_t mask = m->cap - 1;
  for (int64_t i = mtl_id_map_home(m, key);; i = (i + 1) & mask) {
    mtl_id_entry *e = &m->e[i];
    *added = e->val < 0;
    if (*added) return fill(m, e, key);
    if (e->key == key) return e;
  }
}

/* Removes an entry by backward shifting the entries after it, so linear
 * probing needs no tombstones. */
void mtl_id_map_remove(mtl_id_map *m, mtl_id_entry *hole) {
  int64_t mask = m->cap - 1, i = hole - m->e;
  for (int64_t j = (i + 1) & mask; m->e[j].val >= 0; j = (j + 1) & mask) {
    int64_t home = mtl_id_map_home(m, m->e[j].key);
    /* the entry at j may move to i unless its home lies cyclically in (i, j] */
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!stays) {
      m->e[i] = m->e[j];
      i = j;
    }
  }
  m->e[i].val = -1;
  m->count--;
}
