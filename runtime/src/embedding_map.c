/* The id map (open addressing, linear probing, backward-shift deletion) and
 * the radix sort of (id, value) pairs used by embedding tables. See
 * embedding_internal.h. */
#include <stdlib.h>
#include <string.h>

#include "embedding_internal.h"

/* ---- the id map -------------------------------------------------------------- */
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

/* Inserts a key known to be absent; the caller sets val (>= 0) and aux. */
mtl_id_entry *mtl_id_map_insert(mtl_id_map *m, int64_t key) {
  if (m->cap == 0 && mtl_id_map_init(m, 16) < 0) return NULL;
  if ((m->count + 1) * 2 > m->cap) {
    mtl_id_map bigger = {0};
    if (mtl_id_map_init(&bigger, m->cap * 2) < 0) return NULL;
    for (int64_t i = 0; i < m->cap; i++) {
      /* a big map's entries land at random places of the new one: ask early */
      if (i + MTL_PREFETCH_MAP * 2 < m->cap && m->e[i + MTL_PREFETCH_MAP * 2].val >= 0)
        mtl_id_map_prefetch(&bigger, m->e[i + MTL_PREFETCH_MAP * 2].key);
      if (m->e[i].val >= 0) *map_slot(&bigger, m->e[i].key) = m->e[i];
    }
    bigger.count = m->count;
    free(m->e);
    *m = bigger;
  }
  mtl_id_entry *e = map_slot(m, key);
  e->key = key;
  e->val = 0;
  e->aux = 0;
  m->count++;
  return e;
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

/* ---- sorting (id, value) pairs by id: LSD radix sort on the varying bits ---- */
int mtl_sort_pairs_scratch(int64_t n, int64_t *keys, int64_t *vals, int64_t *key_tmp, int64_t *val_tmp) {
  if (n <= 1) return 0;
  /* flipping the sign bit makes signed order unsigned order */
  uint64_t *k = (uint64_t *)keys, diff = 0, first = k[0] ^ (1ULL << 63);
  for (int64_t i = 0; i < n; i++) {
    k[i] ^= 1ULL << 63;
    diff |= k[i] ^ first;
  }
  int bits = diff ? 64 - __builtin_clzll(diff) : 0; /* only bits that differ need passes */
  uint64_t *ks = k, *kd = (uint64_t *)key_tmp;
  int64_t *vs = vals, *vd = val_tmp;
  enum { MAX_RADIX = 11, MAX_BUCKETS = 1 << MAX_RADIX };
  int64_t count[MAX_BUCKETS]; /* on the stack: sorts may run in several threads */
  /* as few passes as 11-bit digits allow, with digits of equal width: the
   * bits of ids below 10^7 (24) take 3 passes of 8 bits (256 buckets each)
   * rather than 11 + 11 + 2, which keeps the per-pass bucket work small */
  int passes = (bits + MAX_RADIX - 1) / MAX_RADIX, radix = passes ? (bits + passes - 1) / passes : 0;
  uint64_t mask = ((uint64_t)1 << radix) - 1;
  int64_t buckets = (int64_t)1 << radix;
  for (int shift = 0; shift < bits; shift += radix) {
    memset(count, 0, (size_t)buckets * sizeof count[0]);
    for (int64_t i = 0; i < n; i++) count[(ks[i] >> shift) & mask]++;
    int64_t sum = 0;
    for (int64_t b = 0; b < buckets; b++) {
      int64_t c = count[b];
      count[b] = sum;
      sum += c;
    }
    for (int64_t i = 0; i < n; i++) {
      int64_t d = count[(ks[i] >> shift) & mask]++;
      kd[d] = ks[i];
      vd[d] = vs[i];
    }
    uint64_t *tk = ks; ks = kd; kd = tk;
    int64_t *tv = vs; vs = vd; vd = tv;
  }
  if (ks != k) {
    memcpy(k, ks, (size_t)n * sizeof *k);
    memcpy(vals, vs, (size_t)n * sizeof *vals);
  }
  for (int64_t i = 0; i < n; i++) k[i] ^= 1ULL << 63;
  return 0;
}

int mtl_sort_pairs(int64_t n, int64_t *keys, int64_t *vals) {
  if (n <= 1) return 0;
  int64_t *k2 = malloc((size_t)n * sizeof *k2), *v2 = malloc((size_t)n * sizeof *v2);
  int rc = k2 && v2 ? mtl_sort_pairs_scratch(n, keys, vals, k2, v2)
                    : mtl_error("out of memory (sorting %lld ids)", (long long)n);
  free(k2);
  free(v2);
  return rc;
}
