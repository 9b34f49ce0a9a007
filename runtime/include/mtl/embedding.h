/* Embedding tables (see docs/embedding.md).
 *
 * A table maps 64-bit ids to rows of `dim` floats. Three kinds:
 *   fixed    num_rows rows; id i is row i (0 <= i < num_rows, else an error);
 *   hashed   num_rows buckets; id -> XXH3_64(8 little-endian bytes of id, seed) % num_rows;
 *   dynamic  rows are created as ids arrive (open addressing keyed by id),
 *            with admission after min_count sightings and eviction of ids not
 *            seen for ttl_steps steps.
 * String ids are first turned into 64-bit keys: XXH3_64(bytes, seed 0).
 *
 * Lookups record an autograd node whose backward adds into the table's
 * SPARSE gradient: the unique rows touched and their summed gradient rows
 * (never a buffer the size of the table). Optimizers (optim.h) read it and
 * update only those rows; their per-row state lives in the table's "slots",
 * which grow with the table and are reset when a row is (re)assigned.
 *
 * Memory layout: a row and its optimizer state are one block. The table
 * holds one buffer of row_cap blocks of row_stride floats,
 *   block r = [ weight row r (dim) | slot a row r (dim) | slot b row r ... ]
 * with the slots in use in slot order, so a row-wise update of a table much
 * larger than the caches touches one contiguous block per row (192 bytes
 * for Adam at dim 16) instead of three scattered rows. weight and slot[i]
 * are [row_cap, dim] views of that buffer with strides {row_stride, 1}:
 * weight is contiguous only while no slot is in use. Claiming slots with a
 * different set in use moves the rows into a new buffer (copies, bit-exact).
 *
 * Rows are addressed by "row" (a slot index into weight) inside the runtime
 * and by "id" outside. For fixed and hashed tables row and id-or-bucket agree.
 */
#ifndef MTL_EMBEDDING_H
#define MTL_EMBEDDING_H

#include "mtl/core.h"
#include "mtl/id_map.h"

typedef enum { MTL_EMB_FIXED = 0, MTL_EMB_HASHED = 1, MTL_EMB_DYNAMIC = 2 } mtl_embedding_kind;
typedef enum {
  MTL_INIT_UNIFORM = 0,          /* U(-scale, scale) */
  MTL_INIT_NORMAL = 1,           /* N(0, scale^2) */
  MTL_INIT_TRUNCATED_NORMAL = 2, /* N(0, scale^2) redrawn outside +-2 scale */
  MTL_INIT_ZEROS = 3
} mtl_embedding_init;
typedef enum { MTL_COMBINE_SUM = 0, MTL_COMBINE_MEAN = 1, MTL_COMBINE_SQRTN = 2 } mtl_combiner;

typedef struct {
  mtl_embedding_kind kind;
  int64_t dim;
  int64_t num_rows;         /* fixed: num_buckets; hashed: hash_bucket_size */
  uint64_t hash_seed;       /* hashed: seed of the bucket hash */
  mtl_embedding_init init;
  double scale;
  int64_t initial_capacity; /* dynamic: rows allocated up front */
  int64_t min_count;        /* dynamic: sightings before an id gets a row (>= 1) */
  int64_t ttl_steps;        /* dynamic: evict ids unseen for more steps (0: never) */
  int64_t evict_interval;   /* dynamic: steps between eviction scans (0: ttl_steps) */
  const float *default_row; /* dim values for ids without a row, or NULL (zeros) */
} mtl_embedding_config;

#define MTL_EMB_MAX_SLOTS 3

struct mtl_embedding;
/* Where a dynamic table's training lookups take their sightings from (see
 * mtl_embedding_set_sightings): given the n ids of a lookup, a new int64
 * tensor [m] of the ids to count, or NULL with the error set. */
typedef int (*mtl_embedding_sightings_fn)(void *ctx, int64_t n, const int64_t *ids, mtl_tensor **sightings);

typedef struct mtl_embedding {
  int refcount;
  mtl_embedding_config cfg; /* cfg.default_row points at default_row below */
  float *default_row;       /* owned copy, or NULL */
  bool training;            /* dynamic: admit, count and stamp ids only when training */
  bool requires_grad;       /* lookups record a node */
  int64_t row_cap;          /* rows allocated in weight and the slots */
  int64_t nrows;            /* rows in use */
  int64_t row_stride;       /* floats from one row's block to the next: dim * (1 + slots) */
  mtl_tensor *weight;       /* [row_cap, dim], strides {row_stride, 1} */
  /* Optimizer state per row, owned by one optimizer at a time (slot_owner);
   * views into the row blocks, next to the weights (see above). */
  mtl_tensor *slot[MTL_EMB_MAX_SLOTS]; /* [row_cap, dim], strides {row_stride, 1}, or NULL */
  float slot_init[MTL_EMB_MAX_SLOTS];  /* value of a fresh row's state */
  const void *slot_owner;
  /* dynamic tables */
  int64_t step;             /* advanced by mtl_embedding_tick */
  int64_t last_evict;       /* step of the last eviction scan */
  int64_t next_row;         /* rows [0, next_row) have been handed out */
  int64_t *ids;             /* [row_cap] id of each row */
  int64_t *last_seen;       /* [row_cap] step of last sighting, -1 = free row */
  int64_t *free_rows, nfree;
  mtl_id_map map;           /* id -> row (val), admitted ids */
  mtl_id_map pending;       /* id -> count (val), last seen (aux): not yet admitted */
  uint64_t layout_epoch;    /* bumped when rows are evicted or reloaded */
  mtl_embedding_sightings_fn sightings; /* dynamic: NULL (a lookup counts its own ids) or a hook */
  void *sightings_ctx;
  /* sparse gradient: entries k < g_nnz of row g_rows[k], values g_vals[k*dim ..];
   * once coalesced, one entry per row, in increasing id order */
  int64_t g_nnz, g_cap;
  int64_t *g_rows;
  float *g_vals, *g_tmp;    /* g_tmp: scratch for coalescing */
  int64_t *g_scratch;       /* 4 * g_cap int64 for coalescing (sort keys, positions, temporaries) */
  bool g_coalesced;
} mtl_embedding;

/* ---- life cycle ---------------------------------------------------------- */
/* A new table (refcount 1), rows initialized from mtl's RNG. */
mtl_embedding *mtl_embedding_new(const mtl_embedding_config *cfg);
void mtl_embedding_retain(mtl_embedding *t);
void mtl_embedding_release(mtl_embedding *t);
const char *mtl_embedding_kind_name(mtl_embedding_kind k);

/* ---- ids ------------------------------------------------------------------ */
/* The 64-bit key of a string id. */
int64_t mtl_embedding_string_key(const char *s, size_t len);
/* Maps n ids to rows (-1: no row of its own; the default row is used).
 * Dynamic tables in training mode count, admit and stamp the ids. */
int mtl_embedding_resolve(mtl_embedding *t, int64_t n, const int64_t *ids, int64_t *rows);
/* The row of id without side effects: -1 when it has none (dynamic), -2 with
 * the error set when the id is invalid (fixed: out of range). */
int64_t mtl_embedding_find(mtl_embedding *t, int64_t id);
/* The id of a row (fixed/hashed: the row itself). */
static inline int64_t mtl_embedding_row_id(const mtl_embedding *t, int64_t row) {
  return t->cfg.kind == MTL_EMB_DYNAMIC ? t->ids[row] : row;
}
/* The row of id, creating it in a dynamic table (admission bypassed). */
int64_t mtl_embedding_insert(mtl_embedding *t, int64_t id);
/* Dynamic tables: one step passes; evicts when the interval is due. Returns
 * the number of rows evicted (0 for other kinds), or -1. */
int64_t mtl_embedding_tick(mtl_embedding *t);
/* Evicts now every id unseen for more than ttl_steps steps. */
int64_t mtl_embedding_evict(mtl_embedding *t);
/* Dynamic tables: a training lookup counts, admits and stamps its own ids.
 * With a sightings hook (fn not NULL) it counts, admits and stamps, in order,
 * the ids fn returns for them instead, then reads its own ids as an eval
 * lookup does (a row or the default row) and records its gradient as usual.
 * The core does not know what fn does; mtl.dist gives every rank the same
 * lookup's ids of all ranks, so that replicas of a table admit, stamp and
 * evict alike (runtime/bind/bind_dist.c). fn NULL: back to the default. */
void mtl_embedding_set_sightings(mtl_embedding *t, mtl_embedding_sightings_fn fn, void *ctx);

/* The dim weights of row / of slot i's state for row (slot i in use). */
static inline float *mtl_embedding_row(const mtl_embedding *t, int64_t row) {
  return mtl_f32(t->weight) + row * t->row_stride;
}
static inline float *mtl_embedding_slot_row(const mtl_embedding *t, int i, int64_t row) {
  return mtl_f32(t->slot[i]) + row * t->row_stride;
}

/* ---- lookups (ops, recorded on the tape) ---------------------------------- */
/* ids: int64 of any shape -> float [ids.shape..., dim]. */
mtl_tensor *mtl_embedding_lookup(mtl_embedding *t, mtl_tensor *ids);
/* Bags: ids int64 [n], offsets int64 [B] (start of each bag; offsets[0] ==
 * base, nondecreasing, <= n + base), weights float [n] or NULL.
 * -> [B, dim]: sum / mean / sqrtn of the (weighted) rows; empty bag -> zeros. */
mtl_tensor *mtl_embedding_bag(mtl_embedding *t, mtl_tensor *ids, mtl_tensor *offsets, int64_t base,
                              mtl_tensor *weights, mtl_combiner combiner);

const char *mtl_combiner_name(mtl_combiner c);

/* ---- the sparse gradient ---------------------------------------------------- */
void mtl_embedding_zero_grad(mtl_embedding *t);
/* Sums the entries of equal rows and sorts them by id (a no-op when already
 * done). Everything that reads the gradient calls it first. */
int mtl_embedding_grad_coalesce(mtl_embedding *t);
/* Appends an entry for row: returns its dim values (uninitialized), or NULL. */
float *mtl_embedding_grad_append(mtl_embedding *t, int64_t row);
/* Adds a sparse gradient: keys int64 [n] (any shape, n values) as the
 * gradient reports them (mtl_embedding_row_id: the id of a fixed or dynamic
 * table, the bucket of a hashed one) and values float32 [n, dim]; entries
 * accumulate as a lookup's backward does (equal keys are summed in the
 * order given when the gradient is next coalesced). Every key must have a
 * row (a dynamic table's id without one, or a key out of range, is an
 * error, and nothing is added). */
int mtl_embedding_grad_add(mtl_embedding *t, const mtl_tensor *ids, const mtl_tensor *values);

/* ---- optimizer slots ---------------------------------------------------------- */
/* Makes owner the table's optimizer: slot i (i < n) is in use and filled
 * with init[i] when used[i], dropped otherwise. When the set in use changes,
 * the rows move into a new buffer laid out for it (weights copied): views of
 * the old weight (weight(), a state_dict) no longer share the table's memory. */
int mtl_embedding_claim_slots(mtl_embedding *t, const void *owner, int n, const bool *used,
                              const float *init);
/* owner no longer updates the table. The slots keep their room in the row
 * blocks (the rows do not move) until the next claim or the table's release. */
void mtl_embedding_drop_slots(mtl_embedding *t, const void *owner);

/* ---- inspection and state ------------------------------------------------------- */
/* Live rows sorted by id: *ids int64 [n] and (if rows_out) the row indices. */
int mtl_embedding_sorted_rows(mtl_embedding *t, mtl_tensor **ids, int64_t **rows_out);
/* Copies of rows (by row index) of weight (src NULL) or of a slot tensor
 * (any [rows, dim] view with unit inner stride). */
mtl_tensor *mtl_embedding_gather_rows(mtl_embedding *t, const mtl_tensor *src, int64_t n,
                                      const int64_t *rows);
/* Replaces the contents: n rows with the given ids (dynamic; ignored
 * otherwise) and values [n, dim]; fixed/hashed need n == num_rows. Pending
 * ids (may be NULL): ids, counts, last seen. Resets grad and slots. */
int mtl_embedding_load(mtl_embedding *t, const mtl_tensor *ids, const mtl_tensor *values,
                       const mtl_tensor *last_seen, const mtl_tensor *pending_ids,
                       const mtl_tensor *pending_counts, const mtl_tensor *pending_seen,
                       int64_t step); /* 1-D tensors must be contiguous */
/* Pending (not yet admitted) ids, sorted by id, with counts and last seen. */
int mtl_embedding_pending(mtl_embedding *t, mtl_tensor **ids, mtl_tensor **counts,
                          mtl_tensor **seen);

#endif
