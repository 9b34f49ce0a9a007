/* mtl core: tensors, errors, memory, random numbers, threads.
 *
 * Conventions (see docs/tensor.md):
 * - Nothing here includes lua.h. Functions never abort, exit or longjmp.
 * - A function that creates a tensor returns a new reference, or NULL with the
 *   error message set (mtl_error_message()). A function that returns int
 *   returns 0 on success and -1 on error, with the message set.
 * - Dimensions and positions are 0-based here; the Lua binding converts.
 * - Tensors are reference counted (mtl_tensor_retain / mtl_tensor_release).
 */
#ifndef MTL_CORE_H
#define MTL_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MTL_MAX_DIMS 8

typedef enum { MTL_F32 = 0, MTL_I64 = 1 } mtl_dtype;

/* ---- errors -------------------------------------------------------------- */
/* Sets the thread's error message (printf-style) and returns -1. */
int mtl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *mtl_error_message(void);
/* Prefixes the current message with "prefix: " (used to name the caller). */
void mtl_error_prefix(const char *prefix);

/* ---- memory -------------------------------------------------------------- */
/* Buffers come from a size-class cache so a training step reuses the memory of
 * the previous one. Returned memory is 64-byte aligned and uninitialized. */
void *mtl_alloc(size_t nbytes);
void mtl_free(void *p, size_t nbytes);
/* Grows a buffer of old_bytes that mtl_alloc served from a mapping of its own
 * (beyond the size classes: more than 64 MiB) to new_bytes by moving its pages
 * (mremap): no copy, no second buffer. The contents up to old_bytes stay, the
 * rest reads zero. Returns the new address, or NULL when the buffer is not
 * such a mapping or the kernel refuses: then nothing changed and no error is
 * set, and the caller copies into a new buffer instead. */
void *mtl_grow_mapping(void *p, size_t old_bytes, size_t new_bytes);
size_t mtl_memory_in_use(void);    /* bytes held by live tensors */
size_t mtl_memory_cached(void);    /* bytes kept in the cache for reuse */
void mtl_memory_release_cache(void);
/* Frees the cached buffers of size classes unused since the previous call. */
void mtl_memory_trim(void);
/* Refuses any single allocation above this many bytes (default: 64 GiB). */
void mtl_memory_set_limit(size_t nbytes);
/* A budget for the calling thread: from now on its allocations may add up to
 * nbytes (frees do not give any back), beyond which they fail with an
 * out-of-memory error; mtl_memory_end_budget ends it and returns the bytes
 * allocated under it. */
void mtl_memory_set_budget(size_t nbytes);
size_t mtl_memory_end_budget(void);

/* ---- storage and tensors ------------------------------------------------- */
/* Reference counts are atomic: serving threads (runtime/serve) share one
 * model's parameter tensors, and a forward pass may retain and release them
 * (views, contiguous copies) from several threads at once. */
typedef struct mtl_bf16_packing mtl_bf16_packing; /* ops/linear_bf16.c */
typedef struct mtl_fp32_packing mtl_fp32_packing; /* ops/linear_fp32.c */
typedef struct mtl_storage {
  void *data;
  size_t nbytes;
  _Atomic int refcount;
  /* A bf16 copy of the data packed for mtl.linear (mtl_bf16_pack), or NULL:
   * a snapshot, freed with the storage; writes to data do not update it. */
  mtl_bf16_packing *bf16;
  /* The data packed into FP32 panels for mtl.linear (mtl_fp32_pack), or NULL:
   * a snapshot like bf16's, freed with the storage. */
  mtl_fp32_packing *fp32;
} mtl_storage;
void mtl_bf16_packing_free(mtl_bf16_packing *p);
void mtl_fp32_packing_free(mtl_fp32_packing *p);

struct mtl_node;

typedef struct mtl_tensor {
  _Atomic int refcount;
  mtl_dtype dtype;
  int ndim;
  int64_t shape[MTL_MAX_DIMS];
  int64_t stride[MTL_MAX_DIMS]; /* in elements */
  int64_t offset;               /* in elements */
  int64_t numel;
  mtl_storage *storage;
  /* autograd */
  bool requires_grad;     /* leaf marked by the user, or result of a tracked op */
  struct mtl_tensor *grad; /* accumulated gradient of a leaf (NULL until first) */
  struct mtl_node *node;   /* the op that produced this tensor (NULL for leaves) */
} mtl_tensor;

size_t mtl_dtype_size(mtl_dtype d);
const char *mtl_dtype_name(mtl_dtype d);

/* A new contiguous tensor; contents uninitialized. */
mtl_tensor *mtl_tensor_new(mtl_dtype dtype, int ndim, const int64_t *shape);
mtl_tensor *mtl_tensor_zeros(mtl_dtype dtype, int ndim, const int64_t *shape);
/* mtl_tensor_new with its errors named after op ("mtl.zeros: out of memory: ..."). */
mtl_tensor *mtl_tensor_new_named(const char *op, mtl_dtype dtype, int ndim, const int64_t *shape);
/* start, start + step, ... up to stop (excluded), like Python's range: a new
 * 1-D tensor of ceil((stop - start) / step) elements (none when that is <= 0),
 * each computed as start + i * step in double. step must be finite and nonzero,
 * the bounds finite. */
mtl_tensor *mtl_tensor_arange(double start, double stop, double step, mtl_dtype dtype);
/* A new tensor shaped like t (contiguous), uninitialized / zeroed. */
mtl_tensor *mtl_tensor_empty_like(const mtl_tensor *t);
mtl_tensor *mtl_tensor_zeros_like(const mtl_tensor *t);
/* A view sharing t's storage (no autograd link). */
mtl_tensor *mtl_tensor_view(mtl_tensor *t, int ndim, const int64_t *shape,
                            const int64_t *stride, int64_t offset);
/* An alias of t: same storage, shape and strides, no autograd link. */
mtl_tensor *mtl_tensor_alias(mtl_tensor *t);
void mtl_tensor_retain(mtl_tensor *t);
void mtl_tensor_release(mtl_tensor *t); /* NULL: nothing */
/* mtl_tensor_release of each of n tensors (an op's temporaries). */
void mtl_tensor_release_all(int n, mtl_tensor *const *ts);

bool mtl_tensor_is_contiguous(const mtl_tensor *t);
/* XXH3-64 of the elements' bytes in row-major order (any strides), with the
 * dtype and shape hashed in: equal for equal tensors, whatever their layout. */
uint64_t mtl_tensor_checksum(const mtl_tensor *t);
/* Contiguous copy of values (no autograd link); returns a new reference to t
 * itself when it already is contiguous. */
mtl_tensor *mtl_tensor_contiguous_data(mtl_tensor *t);
/* Copies src's values into dst (same numel; shapes may differ; any strides). */
int mtl_tensor_copy_into(mtl_tensor *dst, const mtl_tensor *src);
int mtl_tensor_fill(mtl_tensor *t, double v);

static inline float *mtl_f32(const mtl_tensor *t) {
  return (float *)t->storage->data + t->offset;
}
static inline int64_t *mtl_i64(const mtl_tensor *t) {
  return (int64_t *)t->storage->data + t->offset;
}
/* Element at a 0-based multi-index (no checks). */
double mtl_tensor_get_at(const mtl_tensor *t, const int64_t *idx);
void mtl_tensor_set_at(mtl_tensor *t, const int64_t *idx, double v);

/* Writes "[4,3]" into buf; returns buf. */
char *mtl_shape_str(const mtl_tensor *t, char *buf, size_t n);
char *mtl_dims_str(int ndim, const int64_t *shape, char *buf, size_t n);
/* Checks shape sizes: non-negative, product fits; returns numel or -1. */
int64_t mtl_shape_numel(const char *op, int ndim, const int64_t *shape);

/* ---- random numbers (one seeded stream: init, shuffling, dropout) -------- */
void mtl_seed(uint64_t seed);
uint64_t mtl_rand_u64(void);
double mtl_rand_uniform(void); /* [0, 1) */
double mtl_rand_normal(void);
/* New tensors of draws from the stream, one per element in row-major order:
 * uniform in [0, 1) (mtl.rand) and standard normal (mtl.randn). Random
 * tensors are float32: another dtype is an error. */
mtl_tensor *mtl_tensor_rand(mtl_dtype dtype, int ndim, const int64_t *shape);
mtl_tensor *mtl_tensor_randn(mtl_dtype dtype, int ndim, const int64_t *shape);
/* The generator's whole state, for checkpoints (4 words). */
void mtl_rand_get_state(uint64_t state[4]);
void mtl_rand_set_state(const uint64_t state[4]);

/* ---- matrix-product statistics (profiling) ------------------------------- */
/* While on, every sgemm call is timed and counted by its shape: m, n, k and
 * the operands' transpose flags ('N' or 'T'), row-major as in the call.
 * Turning it on clears the table; a table of MTL_GEMM_STATS_MAX shapes keeps
 * the first shapes seen and counts the others nowhere. Thread-safe. */
#define MTL_GEMM_STATS_MAX 256
typedef struct {
  int64_t m, n, k;
  char ta, tb;
  int64_t calls;
  double seconds;
} mtl_gemm_stat;
void mtl_gemm_stats_enable(bool on);
/* Copies up to max entries (in first-seen order) into out; returns how many. */
int mtl_gemm_stats(mtl_gemm_stat *out, int max);

/* ---- threads ------------------------------------------------------------- */
/* One count for OpenBLAS's threads (the matrix products) and mtl's worker
 * pool (large element loops). Default 1. */
void mtl_set_num_threads(int n);
int mtl_get_num_threads(void);
/* Runs fn(ctx, begin, end) over contiguous parts of [0, n), at most one part
 * per thread and parts of at least grain items; returns when all are done.
 * Part k always goes to the same thread, so results depend only on the
 * thread count. Runs serially with one thread, when called from inside a
 * part, or while another thread's job holds the pool. */
typedef void (*mtl_task_fn)(void *ctx, int64_t begin, int64_t end);
void mtl_parallel_for(int64_t n, int64_t grain, mtl_task_fn fn, void *ctx);

#endif
