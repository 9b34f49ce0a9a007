/* Embedding tables: creation, id -> row resolution for the three kinds, the
 * dynamic table's admission and eviction, optimizer slots, and state export /
 * import for checkpoints. The lookup ops and the sparse gradient are in
 * embedding_lookup.c, the radix sort in embedding_map.c, the id map in
 * id_map.c (mtl/id_map.h, shared with the statistics).
 * See embedding.h and docs/embedding.md. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>
#include <xxhash.h>

#include "embedding_internal.h"
#include "mtl/embedding.h"

/* ---- life cycle ------------------------------------------------------------------ */
const char *mtl_embedding_kind_name(mtl_embedding_kind k) {
  switch (k) {
    case MTL_EMB_FIXED: return "fixed";
    case MTL_EMB_HASHED: return "hashed";
    default: return "dynamic";
  }
}

/* Fills n rows starting at row with the table's initializer: the random
 * stream is drawn row by row, element by element, whatever the layout. */
static void init_rows(mtl_embedding *t, int64_t row, int64_t n) {
  int64_t dim = t->cfg.dim;
  double s = t->cfg.scale;
  for (int64_t r = row; r < row + n; r++) {
    float *w = mtl_embedding_row(t, r);
    switch (t->cfg.init) {
      case MTL_INIT_UNIFORM:
        for (int64_t i = 0; i < dim; i++) w[i] = (float)((2.0 * mtl_rand_uniform() - 1.0) * s);
        break;
      case MTL_INIT_NORMAL:
        for (int64_t i = 0; i < dim; i++) w[i] = (float)(mtl_rand_normal() * s);
        break;
      case MTL_INIT_TRUNCATED_NORMAL:
        for (int64_t i = 0; i < dim; i++) {
          double z;
          do z = mtl_rand_normal(); while (fabs(z) > 2.0);
          w[i] = (float)(z * s);
        }
        break;
      default:
        memset(w, 0, (size_t)dim * sizeof *w);
    }
  }
}

static void fill_floats(float *p, int64_t n, float v) {
  for (int64_t i = 0; i < n; i++) p[i] = v;
}

/* Resets the optimizer state of n rows from row to the fresh values. */
static void reset_slot_rows(mtl_embedding *t, int64_t row, int64_t n) {
  for (int i = 0; i < MTL_EMB_MAX_SLOTS; i++)
    if (t->slot[i])
      for (int64_t r = row; r < row + n; r++) fill_floats(mtl_embedding_slot_row(t, i, r), t->cfg.dim, t->slot_init[i]);
}

/* Asks for transparent huge pages on a big buffer before it is first
 * touched: rows are read at random, and with 4 KiB pages nearly every row of
 * a large table would also miss the TLB. Only a hint; failure is harmless. */
static void advise_huge_pages(mtl_tensor *t) {
#ifdef MADV_HUGEPAGE
  const uintptr_t huge = (uintptr_t)2 << 20;
  uintptr_t a = (uintptr_t)t->storage->data, n = t->storage->nbytes;
  if (n < 4 * huge) return;
  uintptr_t lo = (a + huge - 1) & ~(huge - 1), hi = (a + n) & ~(huge - 1);
  if (hi > lo) madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
  (void)t;
#endif
}

static mtl_tensor *new_rows(int64_t rows, int64_t dim) {
  int64_t shape[2] = {rows, dim};
  mtl_tensor *w = mtl_tensor_new(MTL_F32, 2, shape);
  if (!w) mtl_error_prefix("mtl.Embedding");
  else advise_huge_pages(w);
  return w;
}

/* The row blocks of a table (embedding.h): one new buffer of cap blocks laid
 * out for the slots in use (used[i]), as *weight and slots[i] (NULL when
 * unused) views [cap, dim] with strides {*stride, 1}. Contents uninitialized. */
typedef struct {
  mtl_tensor *weight, *slot[MTL_EMB_MAX_SLOTS];
  int64_t stride;
} row_blocks;

static void blocks_release(row_blocks *b) {
  mtl_tensor_release(b->weight);
  for (int i = 0; i < MTL_EMB_MAX_SLOTS; i++) mtl_tensor_release(b->slot[i]);
  memset(b, 0, sizeof *b);
}

static int new_blocks(int64_t cap, int64_t dim, const bool used[MTL_EMB_MAX_SLOTS], row_blocks *b) {
  memset(b, 0, sizeof *b);
  int k = 0;
  for (int i = 0; i < MTL_EMB_MAX_SLOTS; i++) k += used[i];
  b->stride = dim * (1 + k);
  mtl_tensor *block = new_rows(cap, b->stride);
  if (!block) return -1;
  if (k == 0) {
    b->weight = block;
    return 0;
  }
  int64_t shape[2] = {cap, dim}, stride[2] = {b->stride, 1};
  bool ok = (b->weight = mtl_tensor_view(block, 2, shape, stride, 0)) != NULL;
  for (int i = 0, pos = 1; ok && i < MTL_EMB_MAX_SLOTS; i++)
    if (used[i]) ok = (b->slot[i] = mtl_tensor_view(block, 2, shape, stride, dim * pos++)) != NULL;
  mtl_tensor_release(block); /* the views hold the buffer */
  if (!ok) {
    blocks_release(b);
    mtl_error_prefix("mtl.Embedding");
    return -1;
  }
  return 0;
}

/* Replaces the table's rows by b (taking its references). */
static void install_blocks(mtl_embedding *t, row_blocks *b) {
  mtl_tensor_release(t->weight);
  t->weight = b->weight;
  for (int i = 0; i < MTL_EMB_MAX_SLOTS; i++) {
    mtl_tensor_release(t->slot[i]);
    t->slot[i] = b->slot[i];
  }
  t->row_stride = b->stride;
  memset(b, 0, sizeof *b);
}

static void slots_in_use(const mtl_embedding *t, bool used[MTL_EMB_MAX_SLOTS]) {
  for (int i = 0; i < MTL_EMB_MAX_SLOTS; i++) used[i] = t->slot[i] != NULL;
}

mtl_embedding *mtl_embedding_new(const mtl_embedding_config *cfg) {
  const char *kind = mtl_embedding_kind_name(cfg->kind);
  if (cfg->kind < MTL_EMB_FIXED || cfg->kind > MTL_EMB_DYNAMIC) {
    mtl_error("mtl.Embedding: unknown kind %d", (int)cfg->kind);
    return NULL;
  }
  if (cfg->dim < 1 || cfg->dim > (1 << 20)) {
    mtl_error("mtl.Embedding: dim must be in 1..%d, got %lld", 1 << 20, (long long)cfg->dim);
    return NULL;
  }
  if (cfg->kind != MTL_EMB_DYNAMIC && cfg->num_rows < 1) {
    mtl_error("mtl.Embedding: a %s table needs %s >= 1, got %lld", kind,
              cfg->kind == MTL_EMB_FIXED ? "num_buckets" : "hash_bucket_size", (long long)cfg->num_rows);
    return NULL;
  }
  if (cfg->init < MTL_INIT_UNIFORM || cfg->init > MTL_INIT_ZEROS || !(cfg->scale >= 0) || !isfinite(cfg->scale)) {
    mtl_error("mtl.Embedding: the initializer scale must be finite and >= 0, got %g", cfg->scale);
    return NULL;
  }
  if (cfg->kind == MTL_EMB_DYNAMIC &&
      (cfg->initial_capacity < 1 || cfg->min_count < 1 || cfg->ttl_steps < 0 || cfg->evict_interval < 0)) {
    mtl_error("mtl.Embedding: a dynamic table needs initial_capacity >= 1, min_count >= 1, ttl_steps >= 0 "
              "and evict_interval >= 0, got %lld, %lld, %lld, %lld",
              (long long)cfg->initial_capacity, (long long)cfg->min_count, (long long)cfg->ttl_steps,
              (long long)cfg->evict_interval);
    return NULL;
  }
  int64_t rows = cfg->kind == MTL_EMB_DYNAMIC ? cfg->initial_capacity : cfg->num_rows;
  if (rows > INT64_MAX / 16 / cfg->dim) {
    mtl_error("mtl.Embedding: a table of %lld x %lld is too large", (long long)rows, (long long)cfg->dim);
    return NULL;
  }
  mtl_embedding *t = calloc(1, sizeof *t);
  if (!t) {
    mtl_error("mtl.Embedding: out of memory");
    return NULL;
  }
  t->refcount = 1;
  t->cfg = *cfg;
  t->training = true;
  t->requires_grad = true;
  t->g_coalesced = true;
  t->row_cap = rows;
  row_blocks b;
  bool none[MTL_EMB_MAX_SLOTS] = {0};
  if (new_blocks(rows, cfg->dim, none, &b) < 0) goto fail;
  install_blocks(t, &b);
  if (cfg->default_row) {
    t->default_row = malloc((size_t)cfg->dim * sizeof(float));
    if (!t->default_row) goto oom;
    memcpy(t->default_row, cfg->default_row, (size_t)cfg->dim * sizeof(float));
  }
  t->cfg.default_row = t->default_row;
  if (cfg->kind == MTL_EMB_DYNAMIC) {
    t->ids = malloc((size_t)rows * sizeof *t->ids);
    t->last_seen = malloc((size_t)rows * sizeof *t->last_seen);
    t->free_rows = malloc((size_t)rows * sizeof *t->free_rows);
    if (!t->ids || !t->last_seen || !t->free_rows) goto oom;
    if (mtl_id_map_init(&t->map, 2 * rows) < 0) goto fail;
  } else {
    t->nrows = rows;
    init_rows(t, 0, rows);
  }
  return t;
oom:
  mtl_error("mtl.Embedding: out of memory");
fail:
  mtl_embedding_release(t);
  return NULL;
}

void mtl_embedding_retain(mtl_embedding *t) {
  if (t) t->refcount++;
}

void mtl_embedding_release(mtl_embedding *t) {
  if (!t || --t->refcount > 0) return;
  mtl_tensor_release(t->weight);
  for (int i = 0; i < MTL_EMB_MAX_SLOTS; i++) mtl_tensor_release(t->slot[i]);
  free(t->default_row);
  free(t->ids);
  free(t->last_seen);
  free(t->free_rows);
  mtl_id_map_free(&t->map);
  mtl_id_map_free(&t->pending);
  free(t->g_rows);
  free(t->g_vals);
  free(t->g_tmp);
  free(t->g_scratch);
  free(t);
}

/* ---- ids ----------------------------------------------------------------------- */
int64_t mtl_embedding_string_key(const char *s, size_t len) { return (int64_t)XXH3_64bits(s, len); }

static inline int64_t bucket_of(const mtl_embedding *t, int64_t id) {
  unsigned char b[8];
  uint64_t u = (uint64_t)id;
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(u >> (8 * i)); /* little-endian on any host */
  return (int64_t)(XXH3_64bits_withSeed(b, 8, t->cfg.hash_seed) % (uint64_t)t->cfg.num_rows);
}

/* The row blocks of a table grown to cap rows in place: when the table alone
 * holds its row buffer (no view of it was handed out) and the buffer is a
 * mapping of its own, the kernel moves its pages (mtl_grow_mapping): no copy,
 * and no second buffer of twice the size next to the first. Returns 1 with b
 * holding the new views over the grown buffer, 0 when this cannot be done
 * (nothing changed), -1 on error. */
static int grow_in_place(mtl_embedding *t, int64_t cap, row_blocks *b) {
  memset(b, 0, sizeof *b);
  mtl_storage *s = t->weight->storage;
  int views = 1;
  for (int i = 0; i < MTL_EMB_MAX_SLOTS; i++) views += t->slot[i] != NULL;
  if (s->refcount != views || t->weight->offset != 0) return 0;
  size_t bytes = (size_t)(cap * t->row_stride) * sizeof(float);
  void *p = mtl_grow_mapping(s->data, s->nbytes, bytes);
  if (!p) return 0;
  s->data = p; /* the old views stay valid over the larger buffer */
  s->nbytes = bytes;
  int64_t dim = t->cfg.dim, shape[2] = {cap, dim}, stride[2] = {t->row_stride, 1};
  b->stride = t->row_stride;
  bool ok = (b->weight = mtl_tensor_view(t->weight, 2, shape, stride, 0)) != NULL;
  for (int i = 0; ok && i < MTL_EMB_MAX_SLOTS; i++)
    if (t->slot[i]) ok = (b->slot[i] = mtl_tensor_view(t->weight, 2, shape, stride, t->slot[i]->offset)) != NULL;
  if (!ok) {
    blocks_release(b);
    return mtl_error("mtl.Embedding: out of memory growing a dynamic table to %lld rows", (long long)cap);
  }
  return 1;
}

/* Doubles the dynamic table's rows (weight, slots, bookkeeping). The
 * bookkeeping arrays grow first, each by realloc (big ones move their pages);
 * then the rows grow in place or move to a new buffer. If memory runs out the
 * table keeps its rows and capacity (an array that already grew is merely
 * roomier). */
static int grow(mtl_embedding *t) {
  int64_t cap = t->row_cap * 2, dim = t->cfg.dim;
  if (cap > INT64_MAX / 16 / dim)
    return mtl_error("mtl.Embedding: a dynamic table cannot grow past %lld rows", (long long)t->row_cap);
  int64_t **arrays[3] = {&t->ids, &t->last_seen, &t->free_rows};
  for (int i = 0; i < 3; i++) {
    int64_t *p = realloc(*arrays[i], (size_t)cap * sizeof *p);
    if (!p) return mtl_error("mtl.Embedding: out of memory growing a dynamic table to %lld rows", (long long)cap);
    *arrays[i] = p;
  }
  row_blocks b;
  int in_place = grow_in_place(t, cap, &b);
  if (in_place == 0) {
    bool used[MTL_EMB_MAX_SLOTS];
    slots_in_use(t, used);
    if (new_blocks(cap, dim, used, &b) == 0) {
      /* same layout: the blocks of the rows handed out so far move as one piece
       * (a new row's state is set when the row is admitted) */
      memcpy(mtl_f32(b.weight), mtl_f32(t->weight), (size_t)(t->next_row * b.stride) * sizeof(float));
    } else {
      in_place = -1;
    }
  }
  if (in_place < 0) return -1;
  install_blocks(t, &b);
  t->row_cap = cap;
  return 0;
}

/* Gives id a fresh row (initialized, optimizer state reset). */
static int64_t admit(mtl_embedding *t, int64_t id) {
  int64_t row;
  if (t->nfree > 0) {
    row = t->free_rows[--t->nfree];
  } else {
    if (t->next_row == t->row_cap && grow(t) < 0) return -1;
    row = t->next_row++;
  }
  mtl_id_entry *e = mtl_id_map_insert(&t->map, id);
  if (!e) {
    t->free_rows[t->nfree++] = row;
    return -1;
  }
  e->val = row;
  t->ids[row] = id;
  t->last_seen[row] = t->step;
  init_rows(t, row, 1);
  reset_slot_rows(t, row, 1);
  t->nrows++;
  return row;
}

static int resolve_dynamic(mtl_embedding *t, int64_t n, const int64_t *ids, int64_t *rows) {
  const mtl_id_map *map = &t->map;
  for (int64_t i = 0; i < MTL_PREFETCH_MAP && i < n; i++) mtl_id_map_prefetch(map, ids[i]);
  if (!t->training) {
    for (int64_t i = 0; i < n; i++) {
      if (i + MTL_PREFETCH_MAP < n) mtl_id_map_prefetch(map, ids[i + MTL_PREFETCH_MAP]);
      mtl_id_entry *e = mtl_id_map_find(map, ids[i]);
      rows[i] = e ? e->val : -1;
    }
    return 0;
  }
  bool admitted_late = false;
  for (int64_t i = 0; i < n; i++) {
    if (i + MTL_PREFETCH_MAP < n) mtl_id_map_prefetch(map, ids[i + MTL_PREFETCH_MAP]);
    if (i + MTL_PREFETCH_MAP / 2 < n) { /* its slot has arrived: ask for the row's clock */
      const mtl_id_entry *a = mtl_id_map_find(map, ids[i + MTL_PREFETCH_MAP / 2]);
      if (a) __builtin_prefetch(&t->last_seen[a->val], 1);
    }
    mtl_id_entry *e = mtl_id_map_find(map, ids[i]);
    if (e) {
      rows[i] = e->val;
      t->last_seen[e->val] = t->step;
      continue;
    }
    if (t->cfg.min_count <= 1) {
      if ((rows[i] = admit(t, ids[i])) < 0) return -1;
      continue;
    }
    /* count the sighting; admit at min_count */
    mtl_id_entry *p = mtl_id_map_find(&t->pending, ids[i]);
    if (!p && !(p = mtl_id_map_insert(&t->pending, ids[i]))) return -1;
    p->val++;
    p->aux = t->step;
    rows[i] = -1;
    if (p->val >= t->cfg.min_count) {
      mtl_id_map_remove(&t->pending, p);
      if ((rows[i] = admit(t, ids[i])) < 0) return -1;
      admitted_late = true;
    }
  }
  /* Earlier occurrences of an id admitted later in the batch get its row too,
   * so one batch sees one value per id. */
  if (admitted_late)
    for (int64_t i = 0; i < n; i++)
      if (rows[i] < 0) {
        mtl_id_entry *e = mtl_id_map_find(&t->map, ids[i]);
        if (e) rows[i] = e->val;
      }
  return 0;
}

/* A training lookup of a dynamic table with a sightings hook: the hook's
 * ids are counted, admitted and stamped, then the lookup's own ids are read
 * without side effects. */
static int resolve_sightings(mtl_embedding *t, int64_t n, const int64_t *ids, int64_t *rows) {
  mtl_tensor *seen = NULL;
  if (t->sightings(t->sightings_ctx, n, ids, &seen) < 0) return -1;
  if (!seen || seen->dtype != MTL_I64 || !mtl_tensor_is_contiguous(seen)) {
    mtl_tensor_release(seen);
    return mtl_error("mtl.Embedding: the sightings hook returned no contiguous int64 ids");
  }
  int64_t m = seen->numel;
  int64_t *scratch = malloc((size_t)(m ? m : 1) * sizeof *scratch);
  int rc = scratch ? resolve_dynamic(t, m, mtl_i64(seen), scratch) : mtl_error("mtl.Embedding: out of memory");
  free(scratch);
  mtl_tensor_release(seen);
  if (rc < 0) return -1;
  t->training = false;
  rc = resolve_dynamic(t, n, ids, rows);
  t->training = true;
  return rc;
}

void mtl_embedding_set_sightings(mtl_embedding *t, mtl_embedding_sightings_fn fn, void *ctx) {
  t->sightings = fn;
  t->sightings_ctx = ctx;
}

int mtl_embedding_resolve_named(mtl_embedding *t, const char *fname, int64_t n, const int64_t *ids,
                                int64_t *rows) {
  switch (t->cfg.kind) {
    case MTL_EMB_FIXED:
      for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->cfg.num_rows)
          return mtl_error("%s: id %lld out of range for a fixed table of %lld rows (valid ids: 0..%lld)",
                           fname, (long long)ids[i], (long long)t->cfg.num_rows,
                           (long long)t->cfg.num_rows - 1);
        rows[i] = ids[i];
      }
      return 0;
    case MTL_EMB_HASHED:
      for (int64_t i = 0; i < n; i++) rows[i] = bucket_of(t, ids[i]);
      return 0;
    default:
      return t->training && t->sightings ? resolve_sightings(t, n, ids, rows) : resolve_dynamic(t, n, ids, rows);
  }
}

int mtl_embedding_resolve(mtl_embedding *t, int64_t n, const int64_t *ids, int64_t *rows) {
  return mtl_embedding_resolve_named(t, "mtl.Embedding.resolve", n, ids, rows);
}

int64_t mtl_embedding_find(mtl_embedding *t, int64_t id) {
  switch (t->cfg.kind) {
    case MTL_EMB_FIXED:
      if (id < 0 || id >= t->cfg.num_rows)
        return mtl_error("mtl.Embedding: id %lld out of range for a fixed table of %lld rows (valid ids: 0..%lld)",
                         (long long)id, (long long)t->cfg.num_rows, (long long)t->cfg.num_rows - 1) - 1;
      return id;
    case MTL_EMB_HASHED:
      return bucket_of(t, id);
    default: {
      mtl_id_entry *e = mtl_id_map_find(&t->map, id);
      return e ? e->val : -1;
    }
  }
}

int64_t mtl_embedding_insert(mtl_embedding *t, int64_t id) {
  int64_t row = mtl_embedding_find(t, id);
  if (row != -1 || t->cfg.kind != MTL_EMB_DYNAMIC) return row < -1 ? -1 : row;
  mtl_id_entry *p = mtl_id_map_find(&t->pending, id);
  if (p) mtl_id_map_remove(&t->pending, p);
  return admit(t, id);
}

/* ---- eviction -------------------------------------------------------------------- */
int64_t mtl_embedding_evict(mtl_embedding *t) {
  if (t->cfg.kind != MTL_EMB_DYNAMIC || t->cfg.ttl_steps <= 0) return 0;
  int64_t ttl = t->cfg.ttl_steps, evicted = 0;
  /* pending ids expire as well: survivors go into a fresh map */
  if (t->pending.count > 0) {
    mtl_id_map fresh = {0};
    if (mtl_id_map_init(&fresh, t->pending.cap) < 0) return -1;
    for (int64_t i = 0; i < t->pending.cap; i++) {
      mtl_id_entry *e = &t->pending.e[i];
      if (e->val >= 0 && t->step - e->aux <= ttl) *mtl_id_map_insert(&fresh, e->key) = *e;
    }
    mtl_id_map_free(&t->pending);
    t->pending = fresh;
  }
  t->last_evict = t->step;
  for (int64_t r = 0; r < t->next_row; r++)
    if (t->last_seen[r] >= 0 && t->step - t->last_seen[r] > ttl) evicted++;
  if (evicted == 0) return 0;
  /* the new id map is allocated before anything changes */
  mtl_id_map m = {0};
  if (mtl_id_map_init(&m, 2 * (t->nrows - evicted + 1)) < 0) return -1;
  for (int64_t r = t->next_row - 1; r >= 0; r--) { /* descending: freed rows are reused lowest first */
    if (t->last_seen[r] < 0) continue;
    if (t->step - t->last_seen[r] > ttl) {
      t->last_seen[r] = -1;
      t->free_rows[t->nfree++] = r;
    } else {
      mtl_id_map_insert(&m, t->ids[r])->val = r; /* cannot fail: sized above */
    }
  }
  mtl_id_map_free(&t->map);
  t->map = m;
  t->nrows -= evicted;
  t->layout_epoch++;
  mtl_embedding_grad_drop_free_rows(t);
  return evicted;
}

int64_t mtl_embedding_tick(mtl_embedding *t) {
  if (t->cfg.kind != MTL_EMB_DYNAMIC) return 0;
  t->step++;
  if (t->cfg.ttl_steps <= 0) return 0;
  int64_t interval = t->cfg.evict_interval > 0 ? t->cfg.evict_interval : t->cfg.ttl_steps;
  if (t->step - t->last_evict < interval) return 0;
  return mtl_embedding_evict(t);
}

/* ---- optimizer slots ---------------------------------------------------------------- */
int mtl_embedding_claim_slots(mtl_embedding *t, const void *owner, int n, const bool *used,
                              const float *init) {
  bool want[MTL_EMB_MAX_SLOTS], same = true;
  for (int i = 0; i < MTL_EMB_MAX_SLOTS; i++) {
    want[i] = i < n && used[i];
    same = same && want[i] == (t->slot[i] != NULL);
    if (want[i]) t->slot_init[i] = init[i];
  }
  if (!same) {
    /* a new layout: the weights move into new blocks, one row at a time */
    row_blocks b;
    if (new_blocks(t->row_cap, t->cfg.dim, want, &b) < 0) return -1;
    int64_t rows = t->cfg.kind == MTL_EMB_DYNAMIC ? t->next_row : t->row_cap;
    size_t bytes = (size_t)t->cfg.dim * sizeof(float);
    for (int64_t r = 0; r < rows; r++)
      memcpy(mtl_f32(b.weight) + r * b.stride, mtl_embedding_row(t, r), bytes);
    install_blocks(t, &b);
  }
  reset_slot_rows(t, 0, t->row_cap);
  t->slot_owner = owner;
  return 0;
}

void mtl_embedding_drop_slots(mtl_embedding *t, const void *owner) {
  if (t->slot_owner == owner) t->slot_owner = NULL; /* the rows stay where they are */
}

/* ---- inspection and state -------------------------------------------------------------- */
int mtl_embedding_sorted_rows(mtl_embedding *t, mtl_tensor **ids_out, int64_t **rows_out) {
  int64_t n = t->nrows;
  mtl_tensor *ids = mtl_tensor_new(MTL_I64, 1, &n);
  int64_t *rows = malloc((size_t)(n ? n : 1) * sizeof *rows);
  if (!ids || !rows) {
    mtl_tensor_release(ids);
    free(rows);
    return mtl_error("mtl.Embedding: out of memory listing %lld rows", (long long)n);
  }
  int64_t *id = mtl_i64(ids);
  if (t->cfg.kind != MTL_EMB_DYNAMIC) {
    for (int64_t r = 0; r < n; r++) id[r] = rows[r] = r;
  } else {
    int64_t k = 0;
    for (int64_t r = 0; r < t->next_row; r++)
      if (t->last_seen[r] >= 0) {
        id[k] = t->ids[r];
        rows[k++] = r;
      }
    if (mtl_sort_pairs(n, id, rows) < 0) {
      mtl_tensor_release(ids);
      free(rows);
      return -1;
    }
  }
  *ids_out = ids;
  if (rows_out) *rows_out = rows;
  else free(rows);
  return 0;
}

mtl_tensor *mtl_embedding_gather_rows(mtl_embedding *t, const mtl_tensor *src, int64_t n,
                                      const int64_t *rows) {
  int64_t dim = t->cfg.dim;
  mtl_tensor *out = new_rows(n, dim);
  if (!out) return NULL;
  if (!src) src = t->weight;
  const float *s = mtl_f32(src);
  int64_t stride = src->stride[0];
  float *o = mtl_f32(out);
  for (int64_t k = 0; k < n; k++) memcpy(o + k * dim, s + rows[k] * stride, (size_t)dim * sizeof *o);
  return out;
}

int mtl_embedding_pending(mtl_embedding *t, mtl_tensor **ids_out, mtl_tensor **counts_out,
                          mtl_tensor **seen_out) {
  int64_t n = t->pending.count;
  mtl_tensor *ids = mtl_tensor_new(MTL_I64, 1, &n), *counts = mtl_tensor_new(MTL_I64, 1, &n),
             *seen = mtl_tensor_new(MTL_I64, 1, &n);
  int64_t *pos = malloc((size_t)(n ? n : 1) * sizeof *pos);
  if (!ids || !counts || !seen || !pos) goto fail;
  int64_t k = 0;
  for (int64_t i = 0; i < t->pending.cap; i++)
    if (t->pending.e[i].val >= 0) {
      mtl_i64(ids)[k] = t->pending.e[i].key;
      pos[k++] = i;
    }
  if (mtl_sort_pairs(n, mtl_i64(ids), pos) < 0) goto fail;
  for (k = 0; k < n; k++) {
    mtl_i64(counts)[k] = t->pending.e[pos[k]].val;
    mtl_i64(seen)[k] = t->pending.e[pos[k]].aux;
  }
  free(pos);
  *ids_out = ids;
  *counts_out = counts;
  *seen_out = seen;
  return 0;
fail:
  mtl_tensor_release(ids);
  mtl_tensor_release(counts);
  mtl_tensor_release(seen);
  free(pos);
  return mtl_error("mtl.Embedding: out of memory listing pending ids");
}

static int check_vector(const char *what, const mtl_tensor *v, mtl_dtype dt, int64_t n) {
  if (v->dtype != dt || v->ndim != 1 || v->shape[0] != n || !mtl_tensor_is_contiguous(v)) {
    char s[64];
    return mtl_error("mtl.Embedding.load_state_dict: expected %s to be a contiguous %s [%lld], got %s %s", what,
                     mtl_dtype_name(dt), (long long)n, mtl_dtype_name(v->dtype), mtl_shape_str(v, s, sizeof s));
  }
  return 0;
}

int mtl_embedding_load(mtl_embedding *t, const mtl_tensor *ids, const mtl_tensor *values,
                       const mtl_tensor *last_seen, const mtl_tensor *pending_ids,
                       const mtl_tensor *pending_counts, const mtl_tensor *pending_seen, int64_t step) {
  const char *fn = "mtl.Embedding.load_state_dict";
  int64_t dim = t->cfg.dim, n = values->ndim == 2 ? values->shape[0] : -1;
  char s[64];
  if (values->dtype != MTL_F32 || values->ndim != 2 || values->shape[1] != dim ||
      (t->cfg.kind != MTL_EMB_DYNAMIC && n != t->cfg.num_rows))
    return mtl_error("%s: expected weight float32 [%s, %lld], got %s %s", fn,
                     t->cfg.kind == MTL_EMB_DYNAMIC ? "n" : "num_rows", (long long)dim,
                     mtl_dtype_name(values->dtype), mtl_shape_str(values, s, sizeof s));
  if (t->cfg.kind != MTL_EMB_DYNAMIC) {
    if (mtl_tensor_copy_into(t->weight, values) < 0) return -1;
  } else {
    if (!ids || check_vector("ids", ids, MTL_I64, n) < 0) return ids ? -1 : mtl_error("%s: ids missing", fn);
    if (last_seen && check_vector("last_seen", last_seen, MTL_I64, n) < 0) return -1;
    int64_t np = pending_ids ? pending_ids->numel : 0;
    if (pending_ids && (check_vector("pending_ids", pending_ids, MTL_I64, np) < 0 || !pending_counts ||
                        check_vector("pending_counts", pending_counts, MTL_I64, np) < 0 ||
                        (pending_seen && check_vector("pending_seen", pending_seen, MTL_I64, np) < 0)))
      return pending_counts ? -1 : mtl_error("%s: pending_counts missing", fn);
    /* build everything new, then swap in */
    int64_t cap = t->cfg.initial_capacity;
    while (cap < n) cap *= 2;
    bool used[MTL_EMB_MAX_SLOTS];
    slots_in_use(t, used);
    row_blocks b = {0};
    bool have_blocks = new_blocks(cap, dim, used, &b) == 0;
    int64_t *nid = malloc((size_t)cap * sizeof *nid), *seen = malloc((size_t)cap * sizeof *seen);
    int64_t *fr = malloc((size_t)cap * sizeof *fr);
    mtl_id_map map = {0}, pend = {0};
    bool ok = have_blocks && nid && seen && fr && mtl_id_map_init(&map, 2 * n) == 0 &&
              mtl_id_map_init(&pend, 2 * np) == 0;
    if (!ok) mtl_error("%s: out of memory for %lld rows", fn, (long long)n);
    const int64_t *pi = ok ? mtl_i64(ids) : NULL; /* 1-D int64 (checked), contiguous (bind) */
    for (int64_t k = 0; ok && k < n; k++) {
      if (mtl_id_map_find(&map, pi[k])) {
        mtl_error("%s: id %lld appears twice", fn, (long long)pi[k]);
        ok = false;
        break;
      }
      mtl_id_map_insert(&map, pi[k])->val = k;
      nid[k] = pi[k];
      seen[k] = last_seen ? mtl_i64(last_seen)[k] : step;
      if (seen[k] < 0) {
        mtl_error("%s: last_seen must be >= 0, got %lld for id %lld", fn, (long long)seen[k], (long long)pi[k]);
        ok = false;
      }
    }
    for (int64_t k = 0; ok && k < np; k++) {
      int64_t id = mtl_i64(pending_ids)[k], c = mtl_i64(pending_counts)[k];
      if (mtl_id_map_find(&map, id) || mtl_id_map_find(&pend, id) || c < 1) {
        mtl_error("%s: pending id %lld is repeated, admitted, or has count %lld < 1", fn, (long long)id,
                  (long long)c);
        ok = false;
        break;
      }
      mtl_id_entry *e = mtl_id_map_insert(&pend, id);
      e->val = c;
      e->aux = pending_seen ? mtl_i64(pending_seen)[k] : step;
    }
    if (ok && n > 0) {
      int64_t shape[2] = {n, dim};
      mtl_tensor *head = mtl_tensor_view(b.weight, 2, shape, b.weight->stride, b.weight->offset);
      ok = head && mtl_tensor_copy_into(head, values) == 0;
      mtl_tensor_release(head);
    }
    if (!ok) {
      blocks_release(&b);
      free(nid);
      free(seen);
      free(fr);
      mtl_id_map_free(&map);
      mtl_id_map_free(&pend);
      return -1;
    }
    install_blocks(t, &b);
    free(t->ids);
    free(t->last_seen);
    free(t->free_rows);
    t->ids = nid;
    t->last_seen = seen;
    t->free_rows = fr;
    t->nfree = 0;
    mtl_id_map_free(&t->map);
    mtl_id_map_free(&t->pending);
    t->map = map;
    t->pending = pend;
    t->row_cap = cap;
    t->next_row = t->nrows = n;
    t->step = step;
    t->last_evict = step;
  }
  t->layout_epoch++;
  mtl_embedding_zero_grad(t);
  reset_slot_rows(t, 0, t->row_cap);
  return 0;
}
