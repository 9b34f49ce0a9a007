/* mtl.dist's collectives on tensors (mtl/dist.h, docs/distributed.md).
 *
 * Compiled in every build: with one rank (no mpirun, or a build without
 * MPI) each collective checks its arguments as with many and returns its
 * input; with several it moves bytes through transport.h (mpi.c). Every
 * collective starts with the ranks' agreement check: each rank's call, as a
 * signature (kind, dtype, shape, op or root), is gathered from all ranks
 * and compared with rank 0's, so that differing calls give the same error on
 * every rank instead of MPI's undefined behaviour. With several ranks that
 * gather is also what makes barrier a barrier. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"

static struct {
  bool started;
  int rank, size;
  double timeout;
  int64_t collectives;
  char context[160];
} dist = {.size = 1, .timeout = 300};

/* ---- start, settings ----------------------------------------------------- */

/* The number of ranks the launcher says this process is one of (0: not
 * started by a launcher). */
static long launch_size(const char **var) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i]);
    if (v && *v) {
      *var = vars[i];
      return strtol(v, NULL, 10);
    }
  }
  return 0;
}

int mtl_dist_start(void) {
  if (dist.started) return 0;
  const char *env = getenv("MTL_DIST_TIMEOUT");
  if (env && *env) {
    char *end;
    double v = strtod(env, &end);
    if (*end || !(v > 0 && v < 1e9))
      return mtl_error("mtl.dist: MTL_DIST_TIMEOUT must be a number of seconds > 0, got '%s'", env);
    dist.timeout = v;
  }
  const char *var = "";
  long n = launch_size(&var);
  if (n > 1) {
#ifdef MTL_WITH_MPI
    if (mtl_transport_start(&dist.rank, &dist.size) < 0) return -1;
#else
    return mtl_error("mtl.dist: this process is one of %ld ranks (%s=%ld: started by mpirun), but this mtl is "
                     "built without MPI (CMake did not find it, or -DMTL_MPI=OFF); install Open MPI "
                     "(apt-get install openmpi-bin libopenmpi-dev) and rebuild (bash tools/setup.sh)",
                     n, var, n);
#endif
  }
  dist.started = true;
  return 0;
}

int mtl_dist_rank(void) { return dist.rank; }
int mtl_dist_size(void) { return dist.size; }
int64_t mtl_dist_collectives(void) { return dist.collectives; }
const char *mtl_dist_context(void) { return dist.context; }
double mtl_dist_timeout(void) { return dist.timeout; }

bool mtl_dist_with_mpi(void) {
#ifdef MTL_WITH_MPI
  return true;
#else
  return false;
#endif
}

const char *mtl_dist_library(void) { return dist.size > 1 ? mtl_transport_library() : "none (one rank)"; }

const char *mtl_dist_hint(void) {
  if (dist.size > 1) return "";
#ifdef MTL_WITH_MPI
  return " (this process runs as the only rank: start several with mpirun -np N)";
#else
  return " (this mtl is built without MPI, so it runs as one rank: apt-get install openmpi-bin "
         "libopenmpi-dev and rebuild with bash tools/setup.sh)";
#endif
}

void mtl_dist_set_context(const char *context) {
  snprintf(dist.context, sizeof dist.context, "%s", context ? context : "");
}

int mtl_dist_set_timeout(double seconds) {
  if (!(seconds > 0 && seconds < 1e9))
    return mtl_error("mtl.dist.set_timeout: expected a number of seconds > 0, got %g", seconds);
  dist.timeout = seconds;
  return 0;
}

static const char *const op_names[] = {"sum", "mean", "max", "min"};
static const char *const algorithm_names[] = {"ordered", "mpi"};
const char *mtl_dist_op_name(mtl_dist_op op) { return (unsigned)op < 4 ? op_names[op] : "?"; }
const char *mtl_dist_algorithm_name(mtl_dist_algorithm a) { return (unsigned)a < 2 ? algorithm_names[a] : "?"; }

/* ---- the ranks' agreement ------------------------------------------------ */

enum { K_BARRIER = 1, K_BROADCAST, K_ALLREDUCE, K_ALLGATHER, K_ALLTOALLV, K_ALLREDUCE_MANY };
static const char *const kind_names[] = {"?", "barrier", "broadcast", "allreduce", "allgather", "alltoallv",
                                         "allreduce_many"};
/* A signature: SIG_ARG is the op or the root; for allreduce_many SIG_NDIM is
 * the number of tensors, SIG_EXTRA the bucket size and SIG_SHAPE.. the
 * float32 and int64 value counts and a hash of the shapes. */
enum { SIG_KIND, SIG_DTYPE, SIG_ARG, SIG_ALG, SIG_NDIM, SIG_EXTRA, SIG_SHAPE, SIG_LEN = SIG_SHAPE + MTL_MAX_DIMS };

static void signature(int64_t *s, int kind, const mtl_tensor *t, int64_t arg, int64_t alg) {
  memset(s, 0, SIG_LEN * sizeof *s);
  s[SIG_KIND] = kind;
  s[SIG_ARG] = arg;
  s[SIG_ALG] = alg;
  if (t) {
    s[SIG_DTYPE] = t->dtype;
    s[SIG_NDIM] = t->ndim;
    for (int i = 0; i < t->ndim; i++) s[SIG_SHAPE + i] = t->shape[i];
  }
}

static void describe(const int64_t *s, char *buf, size_t n) {
  int kind = s[SIG_KIND] >= K_BARRIER && s[SIG_KIND] <= K_ALLREDUCE_MANY ? (int)s[SIG_KIND] : 0;
  const char *name = kind_names[kind], *dt = mtl_dtype_name((mtl_dtype)s[SIG_DTYPE]);
  char shape[160];
  int nd = s[SIG_NDIM] >= 0 && s[SIG_NDIM] <= MTL_MAX_DIMS ? (int)s[SIG_NDIM] : 0;
  mtl_dims_str(nd, s + SIG_SHAPE, shape, sizeof shape);
  switch (kind) {
  case K_BROADCAST:
    snprintf(buf, n, "%s(%s %s, root %lld)", name, dt, shape, (long long)s[SIG_ARG]);
    break;
  case K_ALLREDUCE:
    snprintf(buf, n, "%s(%s %s, %s, %s)", name, dt, shape, mtl_dist_op_name((mtl_dist_op)s[SIG_ARG]),
             mtl_dist_algorithm_name((mtl_dist_algorithm)s[SIG_ALG]));
    break;
  case K_ALLGATHER:
  case K_ALLTOALLV:
    snprintf(buf, n, "%s(%s %s)", name, dt, shape);
    break;
  case K_ALLREDUCE_MANY:
    snprintf(buf, n, "%s(%lld tensors of %lld float32 and %lld int64 values, %s, %s, buckets of %lld bytes)",
             name, (long long)s[SIG_NDIM], (long long)s[SIG_SHAPE], (long long)s[SIG_SHAPE + 1],
             mtl_dist_op_name((mtl_dist_op)s[SIG_ARG]), mtl_dist_algorithm_name((mtl_dist_algorithm)s[SIG_ALG]),
             (long long)s[SIG_EXTRA]);
    break;
  default:
    snprintf(buf, n, "%s()", name);
  }
}

/* Whether a and b are the same call; allgather and alltoallv rows may differ. */
static bool same_call(const int64_t *a, const int64_t *b) {
  for (int i = 0; i < SIG_LEN; i++) {
    if (i == SIG_SHAPE && (a[SIG_KIND] == K_ALLGATHER || a[SIG_KIND] == K_ALLTOALLV)) continue;
    if (a[i] != b[i]) return false;
  }
  return true;
}

/* "allreduce #12": the current collective, for the messages. */
static void collective_name(int kind, char *buf, size_t n) {
  snprintf(buf, n, "%s #%lld", kind_names[kind], (long long)dist.collectives);
}

/* Counts the collective and, with several ranks, gathers every rank's
 * signature into all (size * SIG_LEN, or NULL) and checks the calls agree. */
static int agree(const int64_t *sig, int64_t *all) {
  dist.collectives++;
  if (dist.size == 1) {
    if (all) memcpy(all, sig, SIG_LEN * sizeof *sig);
    return 0;
  }
  int64_t *sigs = all ? all : malloc((size_t)dist.size * SIG_LEN * sizeof *sigs);
  if (!sigs) return mtl_error("mtl.dist.%s: out of memory", kind_names[sig[SIG_KIND]]);
  char what[64];
  collective_name((int)sig[SIG_KIND], what, sizeof what);
  mtl_transport_request *r;
  int rc = mtl_transport_allgather(sig, sigs, SIG_LEN * sizeof *sig, &r);
  if (rc == 0) rc = mtl_transport_wait(r, what);
  for (int k = 1; rc == 0 && k < dist.size; k++) {
    if (same_call(sigs, sigs + (size_t)k * SIG_LEN)) continue;
    char a[320], b[320];
    describe(sigs, a, sizeof a);
    describe(sigs + (size_t)k * SIG_LEN, b, sizeof b);
    rc = mtl_error("mtl.dist.%s: the ranks' calls differ at collective #%lld: rank 0 calls %s, rank %d calls %s",
                   kind_names[sig[SIG_KIND]], (long long)dist.collectives, a, k, b);
  }
  if (!all) free(sigs);
  return rc;
}

/* ---- barrier, broadcast -------------------------------------------------- */

static void *data_of(const mtl_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)mtl_dtype_size(t->dtype);
}

int mtl_dist_barrier(void) {
  int64_t sig[SIG_LEN];
  signature(sig, K_BARRIER, NULL, 0, 0);
  return agree(sig, NULL);
}

int mtl_dist_broadcast(mtl_tensor *t, int root) {
  if (root < 0 || root >= dist.size)
    return mtl_error("mtl.dist.broadcast: root %d out of range (the ranks are 0..%d)%s", root, dist.size - 1,
                     mtl_dist_hint());
  int64_t sig[SIG_LEN];
  signature(sig, K_BROADCAST, t, root, 0);
  if (agree(sig, NULL) < 0) return -1;
  if (dist.size == 1 || t->numel == 0) return 0;
  char what[64];
  collective_name(K_BROADCAST, what, sizeof what);
  mtl_tensor *c = mtl_tensor_contiguous_data(t);
  mtl_transport_request *r;
  if (!c) return -1;
  if (mtl_transport_broadcast(data_of(c), c->numel, mtl_dtype_size(c->dtype), root, &r) < 0 ||
      mtl_transport_wait(r, what) < 0 || (c != t && mtl_tensor_copy_into(t, c) < 0))
    goto fail;
  mtl_tensor_release(c);
  return 0;
fail:
  mtl_tensor_release(c);
  return -1;
}

/* ---- allgather, alltoallv ------------------------------------------------ */

/* Bytes of one row (the product of the dims after the first). */
static size_t row_bytes(const mtl_tensor *t) {
  size_t n = mtl_dtype_size(t->dtype);
  for (int i = 1; i < t->ndim; i++) n *= (size_t)t->shape[i];
  return n;
}

/* A new tensor of `rows` rows shaped like t's rows (a 0-dimensional t's rows
 * are single values). */
static mtl_tensor *rows_like(const mtl_tensor *t, int64_t rows) {
  int64_t shape[MTL_MAX_DIMS];
  int nd = t->ndim ? t->ndim : 1;
  for (int i = 1; i < t->ndim; i++) shape[i] = t->shape[i];
  shape[0] = rows;
  return mtl_tensor_new(t->dtype, nd, shape);
}

static int64_t *prefix_sums(const int64_t *counts, int n, int64_t *displs) {
  int64_t s = 0;
  for (int i = 0; i < n; i++) {
    displs[i] = s;
    s += counts[i];
  }
  return displs;
}

mtl_tensor *mtl_dist_allgather(mtl_tensor *t, int64_t *counts) {
  int64_t sig[SIG_LEN];
  signature(sig, K_ALLGATHER, t, 0, 0);
  int64_t *sigs = malloc((size_t)dist.size * (SIG_LEN + 1) * sizeof *sigs);
  if (!sigs) return mtl_error("mtl.dist.allgather: out of memory"), NULL;
  int64_t *displs = sigs + (size_t)dist.size * SIG_LEN;
  mtl_tensor *out = NULL, *c = NULL;
  if (agree(sig, sigs) < 0) goto fail;
  int64_t total = 0;
  for (int r = 0; r < dist.size; r++) total += counts[r] = t->ndim ? sigs[(size_t)r * SIG_LEN + SIG_SHAPE] : 1;
  if (!(out = rows_like(t, total))) goto fail;
  if (dist.size == 1) {
    if (mtl_tensor_copy_into(out, t) < 0) goto fail;
  } else if (out->numel > 0) {
    char what[64];
    collective_name(K_ALLGATHER, what, sizeof what);
    mtl_transport_request *r;
    if (!(c = mtl_tensor_contiguous_data(t)) ||
        mtl_transport_allgatherv(data_of(c), data_of(out), counts, prefix_sums(counts, dist.size, displs),
                                 row_bytes(t), false, &r) < 0 ||
        mtl_transport_wait(r, what) < 0)
      goto fail;
  }
  mtl_tensor_release(c);
  free(sigs);
  return out;
fail:
  mtl_tensor_release(c);
  mtl_tensor_release(out);
  free(sigs);
  return NULL;
}

mtl_tensor *mtl_dist_alltoallv(mtl_tensor *t, const int64_t *send_counts, int64_t *recv_counts) {
  char s[160];
  if (t->ndim == 0)
    return mtl_error("mtl.dist.alltoallv: expected a tensor of rows (1 or more dimensions), got a "
                     "0-dimensional tensor"), NULL;
  int64_t sent = 0;
  for (int r = 0; r < dist.size; r++) {
    if (send_counts[r] < 0)
      return mtl_error("mtl.dist.alltoallv: send count %d (for rank %d) must be >= 0, got %lld", r + 1, r,
                       (long long)send_counts[r]), NULL;
    sent += send_counts[r];
  }
  if (sent != t->shape[0])
    return mtl_error("mtl.dist.alltoallv: the send counts add up to %lld rows but the tensor has %lld (%s)",
                     (long long)sent, (long long)t->shape[0], mtl_shape_str(t, s, sizeof s)), NULL;
  int64_t sig[SIG_LEN];
  signature(sig, K_ALLTOALLV, t, 0, 0);
  mtl_tensor *out = NULL, *c = NULL;
  int64_t *displs = malloc((size_t)dist.size * 2 * sizeof *displs);
  if (!displs) return mtl_error("mtl.dist.alltoallv: out of memory"), NULL;
  if (agree(sig, NULL) < 0) goto fail;
  if (dist.size == 1) {
    recv_counts[0] = t->shape[0];
    if (!(out = rows_like(t, t->shape[0])) || mtl_tensor_copy_into(out, t) < 0) goto fail;
    free(displs);
    return out;
  }
  char what[64];
  collective_name(K_ALLTOALLV, what, sizeof what);
  mtl_transport_request *r;
  if (mtl_transport_alltoall(send_counts, recv_counts, sizeof *send_counts, &r) < 0 ||
      mtl_transport_wait(r, what) < 0)
    goto fail;
  int64_t total = 0;
  for (int k = 0; k < dist.size; k++) total += recv_counts[k];
  if (!(out = rows_like(t, total)) || !(c = mtl_tensor_contiguous_data(t))) goto fail;
  if (row_bytes(t) > 0 &&
      (mtl_transport_alltoallv(data_of(c), send_counts, prefix_sums(send_counts, dist.size, displs), data_of(out),
                               recv_counts, prefix_sums(recv_counts, dist.size, displs + dist.size), row_bytes(t),
                               &r) < 0 ||
       mtl_transport_wait(r, what) < 0))
    goto fail;
  mtl_tensor_release(c);
  free(displs);
  return out;
fail:
  mtl_tensor_release(c);
  mtl_tensor_release(out);
  free(displs);
  return NULL;
}

/* ---- allreduce ----------------------------------------------------------- */

/* One flat buffer of the request: the values of tensors [first, first+count). */
typedef struct bucket {
  struct mtl_dist_request *owner;
  struct bucket *queued; /* ordered, until its gather is posted: the next bucket in the queue */
  mtl_tensor *values;  /* 1-D; a view of the tensor itself when it is alone and contiguous */
  bool packed;         /* values is a copy: the results go back into the tensors */
  int first, count;
  int phase;           /* EXCHANGE, GATHER (ordered only), DONE */
  bool native;         /* run as MPI's allreduce (algorithm "mpi", or ordered_natively) */
  mtl_transport_request *pending;
  /* ordered: seg[0..size) this rank's part of every rank's values (the
   * segment counts), seg[size..2size) their offsets, seg[2size..3size) the
   * received counts (all this rank's segment), seg[3size..) their offsets */
  int64_t *seg;
  mtl_tensor *received; /* ordered: this rank's segment from every rank, in rank order */
} bucket;

enum { EXCHANGE, GATHER, DONE };

struct mtl_dist_request {
  mtl_dist_op op;
  mtl_dist_algorithm alg;
  int n, nbuckets;
  mtl_tensor **tensors;
  bucket *buckets;
  bool done, failed;
  char what[64];
};

int mtl_dist_request_buffers(const mtl_dist_request *r) { return r->nbuckets; }

/* The ordered buckets whose exchange has been posted and whose gather has
 * not, in the order they were started: the same order on every rank. MPI
 * matches the collectives of a communicator in the order each rank posts
 * them, and a gather is posted once its exchange completes, which happens at
 * different times on different ranks (after more or fewer h:test() calls);
 * so the gathers go to a communicator of their own (second_phase) and only
 * the queue's head may post its gather: they are posted in the start order
 * on every rank, whatever the timing. */
static struct {
  bucket *head, *tail;
} exchanges;

static void enqueue(bucket *b) {
  b->queued = NULL;
  if (exchanges.tail) exchanges.tail->queued = b;
  else exchanges.head = b;
  exchanges.tail = b;
}

/* Takes b out of the queue (it is the head, or its request is being freed). */
static void dequeue(bucket *b) {
  bucket **p = &exchanges.head, *prev = NULL;
  while (*p && *p != b) {
    prev = *p;
    p = &(*p)->queued;
  }
  if (!*p) return;
  *p = b->queued;
  if (exchanges.tail == b) exchanges.tail = prev;
  b->queued = NULL;
}

/* The ordered reduction of this rank's segment: rank 0's values, then each
 * next rank's added (or compared) in rank order; mean divides the sum. */
static void reduce_segment(const mtl_dist_request *q, bucket *b) {
  int64_t m = b->seg[dist.rank], at = b->seg[dist.size + dist.rank];
  if (b->values->dtype == MTL_F32) {
    float *o = (float *)data_of(b->values) + at;
    const float *in = data_of(b->received);
    memcpy(o, in, (size_t)m * sizeof *o);
    for (int r = 1; r < dist.size; r++) {
      const float *x = in + (size_t)r * (size_t)m;
      if (q->op == MTL_DIST_SUM || q->op == MTL_DIST_MEAN)
        for (int64_t i = 0; i < m; i++) o[i] += x[i];
      else if (q->op == MTL_DIST_MAX) /* NaN wins either way */
        for (int64_t i = 0; i < m; i++) o[i] = x[i] > o[i] || x[i] != x[i] ? x[i] : o[i];
      else
        for (int64_t i = 0; i < m; i++) o[i] = x[i] < o[i] || x[i] != x[i] ? x[i] : o[i];
    }
    if (q->op == MTL_DIST_MEAN)
      for (int64_t i = 0; i < m; i++) o[i] /= (float)dist.size;
  } else {
    int64_t *o = (int64_t *)data_of(b->values) + at;
    const int64_t *in = data_of(b->received);
    memcpy(o, in, (size_t)m * sizeof *o);
    for (int r = 1; r < dist.size; r++) {
      const int64_t *x = in + (size_t)r * (size_t)m;
      if (q->op == MTL_DIST_SUM) /* wraps around like MPI's, without C's undefined overflow */
        for (int64_t i = 0; i < m; i++) o[i] = (int64_t)((uint64_t)o[i] + (uint64_t)x[i]);
      else if (q->op == MTL_DIST_MAX)
        for (int64_t i = 0; i < m; i++) o[i] = x[i] > o[i] ? x[i] : o[i];
      else
        for (int64_t i = 0; i < m; i++) o[i] = x[i] < o[i] ? x[i] : o[i];
    }
  }
}

/* Whether an ordered float sum (or mean) can be MPI's own allreduce: at 2
 * ranks every element is one addition of the two ranks' values, and a + b =
 * b + a exactly, so any algorithm MPI picks gives the ordered result (rank
 * 0's value plus rank 1's) on both ranks, bit for bit, about 3x faster than
 * the exchange and gather (1.55 MB: 0.32 against 1.0 ms). Not for max and
 * min (NaN), int64 (overflow is C's undefined behaviour inside MPI), or 3
 * ranks and more (the grouping of the sums would be MPI's). */
static bool ordered_natively(const mtl_dist_request *q, const bucket *b) {
  return dist.size == 2 && b->values->dtype == MTL_F32 && (q->op == MTL_DIST_SUM || q->op == MTL_DIST_MEAN);
}

/* Starts a bucket's first operation. */
static int start_bucket(mtl_dist_request *q, bucket *b) {
  int64_t n = b->values->numel;
  b->phase = EXCHANGE;
  b->owner = q;
  b->native = q->alg == MTL_DIST_MPI || ordered_natively(q, b);
  if (b->native) return mtl_transport_allreduce(data_of(b->values), n, b->values->dtype, q->op, &b->pending);
  enqueue(b);
  int p = dist.size;
  if (!(b->seg = malloc((size_t)p * 4 * sizeof *b->seg))) return mtl_error("%s: out of memory", q->what);
  for (int r = 0; r < p; r++) b->seg[r] = n / p + (r < n % p);
  prefix_sums(b->seg, p, b->seg + p);
  int64_t mine = b->seg[dist.rank], shape = mine * p;
  for (int r = 0; r < p; r++) b->seg[2 * p + r] = mine;
  prefix_sums(b->seg + 2 * p, p, b->seg + 3 * p);
  if (!(b->received = mtl_tensor_new(b->values->dtype, 1, &shape))) return -1;
  return mtl_transport_alltoallv(data_of(b->values), b->seg, b->seg + p, data_of(b->received), b->seg + 2 * p,
                                 b->seg + 3 * p, mtl_dtype_size(b->values->dtype), &b->pending);
}

/* Moves a bucket through its phases; waits when block, else stops at the
 * first operation still running. An ordered bucket posts its gather only at
 * the head of the queue: before, it moves the buckets ahead of it (waiting
 * for them when block). */
static int advance(mtl_dist_request *q, bucket *b, bool block) {
  while (b->phase != DONE) {
    if (b->pending) {
      mtl_transport_request *r = b->pending;
      bool done = true;
      b->pending = NULL; /* both calls free it when it completes or fails */
      if (block ? mtl_transport_wait(r, q->what) < 0 : mtl_transport_test(r, &done) < 0) return -1;
      if (!done) {
        b->pending = r;
        return 0;
      }
    }
    if (b->phase == EXCHANGE && !b->native) {
      while (exchanges.head != b) { /* the gathers of buckets started earlier first */
        bucket *h = exchanges.head;
        if (advance(h->owner, h, block) < 0) return -1;
        if (exchanges.head == h) return 0; /* (not block) h still exchanging */
      }
      reduce_segment(q, b);
      dequeue(b);
      b->phase = GATHER;
      if (mtl_transport_allgatherv(NULL, data_of(b->values), b->seg, b->seg + dist.size,
                                   mtl_dtype_size(b->values->dtype), true, &b->pending) < 0)
        return -1;
    } else {
      if (b->native && q->op == MTL_DIST_MEAN) {
        float *v = data_of(b->values);
        for (int64_t i = 0; i < b->values->numel; i++) v[i] /= (float)dist.size;
      }
      b->phase = DONE;
    }
  }
  return 0;
}

/* The flat view of tensor k's values inside its bucket. */
static int unpack(mtl_dist_request *q) {
  for (int i = 0; i < q->nbuckets; i++) {
    bucket *b = &q->buckets[i];
    int64_t at = 0;
    for (int k = b->first; b->packed && k < b->first + b->count; k++) {
      mtl_tensor *t = q->tensors[k], *v = mtl_tensor_view(b->values, t->ndim, t->shape, NULL, at);
      int rc = v ? mtl_tensor_copy_into(t, v) : -1;
      mtl_tensor_release(v);
      if (rc < 0) return -1;
      at += t->numel;
    }
  }
  return 0;
}

static int finish(mtl_dist_request *q, bool block) {
  if (q->done) return 0;
  if (q->failed) return mtl_error("%s: this request failed before", q->what);
  bool all = true;
  for (int i = 0; i < q->nbuckets; i++) {
    if (advance(q, &q->buckets[i], block) < 0) {
      q->failed = true;
      return -1;
    }
    all = all && q->buckets[i].phase == DONE;
  }
  if (!all) return 0;
  if (unpack(q) < 0) {
    q->failed = true;
    return -1;
  }
  q->done = true;
  /* The buffers go back now, not when the request is freed (a Lua request
   * waits for the collector): a step's next request then reuses them from
   * the buffer cache instead of faulting in fresh pages (1.55 MB packed: 1.3
   * against 0.3 ms at 2 ranks). */
  for (int i = 0; i < q->nbuckets; i++) {
    bucket *b = &q->buckets[i];
    mtl_tensor_release(b->values);
    mtl_tensor_release(b->received);
    free(b->seg);
    b->values = b->received = NULL;
    b->seg = NULL;
  }
  return 0;
}

/* Packs tensors [first, first + count) into a new bucket (or views the one
 * contiguous tensor) and starts it. */
static int add_bucket(mtl_dist_request *q, int first, int count, int64_t numel) {
  bucket *b = &q->buckets[q->nbuckets++];
  memset(b, 0, sizeof *b);
  b->first = first;
  b->count = count;
  b->phase = DONE;
  mtl_tensor *t = q->tensors[first];
  int64_t one = 1;
  if (count == 1 && mtl_tensor_is_contiguous(t)) {
    b->values = mtl_tensor_view(t, 1, &numel, &one, t->offset);
  } else {
    b->packed = true;
    if (!(b->values = mtl_tensor_new(t->dtype, 1, &numel))) return -1;
    int64_t at = 0;
    for (int k = first; k < first + count; k++) {
      mtl_tensor *x = q->tensors[k], *v = mtl_tensor_view(b->values, x->ndim, x->shape, NULL, at);
      int rc = v ? mtl_tensor_copy_into(v, x) : -1;
      mtl_tensor_release(v);
      if (rc < 0) return -1;
      at += x->numel;
    }
  }
  if (!b->values) return -1;
  return start_bucket(q, b);
}

mtl_dist_request *mtl_dist_iallreduce(mtl_tensor **tensors, int n, mtl_dist_op op, mtl_dist_algorithm alg,
                                      size_t bucket_bytes) {
  const char *fname = n == 1 ? "mtl.dist.allreduce" : "mtl.dist.allreduce_many";
  if ((unsigned)op > MTL_DIST_MIN || (unsigned)alg > MTL_DIST_MPI || n < 0 || bucket_bytes == 0)
    return mtl_error("%s: bad arguments", fname), NULL;
  int64_t totals[2] = {0, 0};
  uint64_t hash = 1469598103934665603ull; /* FNV-1a of the dtypes and shapes */
  for (int k = 0; k < n; k++) {
    mtl_tensor *t = tensors[k];
    if (op == MTL_DIST_MEAN && t->dtype != MTL_F32)
      return mtl_error("%s: mean needs float32 tensors, got %s%s", fname, mtl_dtype_name(t->dtype),
                       n == 1 ? "" : " (in the list)"), NULL;
    if (t->numel > INT32_MAX)
      return mtl_error("%s: a tensor of %lld values is more than one MPI operation takes (2^31 - 1)", fname,
                       (long long)t->numel), NULL;
    totals[t->dtype] += t->numel;
    int64_t words[MTL_MAX_DIMS + 2] = {t->dtype, t->ndim};
    for (int i = 0; i < t->ndim; i++) words[i + 2] = t->shape[i];
    for (int i = 0; i < t->ndim + 2; i++) hash = (hash ^ (uint64_t)words[i]) * 1099511628211ull;
  }
  int64_t sig[SIG_LEN];
  if (n == 1) {
    signature(sig, K_ALLREDUCE, tensors[0], op, alg);
  } else {
    signature(sig, K_ALLREDUCE_MANY, NULL, op, alg);
    sig[SIG_NDIM] = n;
    sig[SIG_EXTRA] = (int64_t)bucket_bytes;
    sig[SIG_SHAPE] = totals[MTL_F32];
    sig[SIG_SHAPE + 1] = totals[MTL_I64];
    sig[SIG_SHAPE + 2] = (int64_t)(hash >> 1);
  }
  mtl_dist_request *q = calloc(1, sizeof *q);
  if (!q || (n && !(q->tensors = malloc((size_t)n * sizeof *q->tensors))) ||
      (n && !(q->buckets = malloc((size_t)n * sizeof *q->buckets)))) {
    mtl_dist_request_free(q);
    return mtl_error("%s: out of memory", fname), NULL;
  }
  q->op = op;
  q->alg = alg;
  for (int k = 0; k < n; k++) mtl_tensor_retain(q->tensors[q->n++] = tensors[k]);
  if (agree(sig, NULL) < 0) {
    mtl_dist_request_free(q);
    return NULL;
  }
  collective_name(n == 1 ? K_ALLREDUCE : K_ALLREDUCE_MANY, q->what, sizeof q->what);
  q->done = dist.size == 1; /* one rank: the values are the result (mean: divided by 1) */
  /* buckets: consecutive tensors of one dtype, up to bucket_bytes (and one
   * MPI operation's 2^31 - 1 values) each */
  for (int k = 0; !q->done && k < n;) {
    int first = k;
    mtl_dtype dt = tensors[k]->dtype;
    int64_t numel = tensors[k]->numel, most = (int64_t)(bucket_bytes / mtl_dtype_size(dt));
    for (k++; k < n && tensors[k]->dtype == dt && numel + tensors[k]->numel <= most &&
              numel + tensors[k]->numel <= INT32_MAX;
         k++)
      numel += tensors[k]->numel;
    if (add_bucket(q, first, k - first, numel) < 0) {
      q->failed = true;
      mtl_dist_request_free(q);
      return NULL;
    }
  }
  return q;
}

int mtl_dist_wait(mtl_dist_request *r) { return finish(r, true); }

int mtl_dist_test(mtl_dist_request *r, bool *done) {
  if (finish(r, false) < 0) return -1;
  *done = r->done;
  return 0;
}

void mtl_dist_request_free(mtl_dist_request *r) {
  if (!r) return;
  /* the other ranks wait for this rank's part of every phase, and MPI owns
   * the buffers of started operations until they complete */
  if (!r->done && !r->failed) finish(r, true);
  for (int i = 0; i < r->nbuckets; i++) {
    if (r->buckets[i].pending) mtl_transport_wait(r->buckets[i].pending, r->what);
    dequeue(&r->buckets[i]); /* (a failed request's) */
  }
  for (int i = 0; i < r->nbuckets; i++) {
    mtl_tensor_release(r->buckets[i].values);
    mtl_tensor_release(r->buckets[i].received);
    free(r->buckets[i].seg);
  }
  for (int k = 0; k < r->n; k++) mtl_tensor_release(r->tensors[k]);
  free(r->buckets);
  free(r->tensors);
  free(r);
}

int mtl_dist_allreduce(mtl_tensor *t, mtl_dist_op op, mtl_dist_algorithm alg) {
  mtl_dist_request *r = mtl_dist_iallreduce(&t, 1, op, alg, (size_t)-1);
  int rc = r ? mtl_dist_wait(r) : -1;
  mtl_dist_request_free(r);
  return rc;
}
