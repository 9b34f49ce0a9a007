/* The radix sort of (id, value) pairs used by embedding tables (see
 * embedding_internal.h); their id maps are mtl/id_map.h's (id_map.c). */
#include <stdlib.h>
#include <string.h>

#include "embedding_internal.h"

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
