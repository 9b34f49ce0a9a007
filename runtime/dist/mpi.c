/* The MPI transport of mtl.dist (transport.h): the only file with MPI calls,
 * compiled only when CMake finds MPI (MTL_WITH_MPI).
 *
 * Lifecycle. mtl_transport_start runs MPI_Init_thread (FUNNELED: only the
 * main thread calls MPI; OpenBLAS's and mtl's worker threads never do) under
 * a watchdog: MPI_Init waits for every rank, so a rank that never starts
 * would hang the others there; after the timeout the watchdog ends this rank
 * and mpirun stops the run. MPI is finalized when the process exits (on_exit,
 * which sees the exit status; core.so is pinned in memory so the handler
 * outlives lua_close's unloading of C modules):
 *   - status != 0 (a Lua error on this rank): MPI_Abort stops every rank at
 *     once, after a line naming this rank;
 *   - status 0: an exit barrier with the timeout, then MPI_Finalize, so a rank
 *     that ends early waits for the others instead of leaving them hanging.
 *
 * Faults. MPI has no timeouts, so every operation is nonblocking and waited
 * for in a loop with a deadline (mtl_dist_timeout()). The loop also answers
 * status messages from other ranks on a communicator of its own. When the
 * deadline passes, this rank sends its status to every rank (also to those
 * it answered before), collects their answers for a grace period, prints which ranks did not answer (dead, hung,
 * or busy outside mtl.dist) and what the others were doing, and calls
 * MPI_Abort. When several ranks time out together, the lowest reports and
 * the others only stop. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"

struct mtl_transport_request {
  MPI_Request request;
  int counts[]; /* counts and displacements MPI reads until the operation completes */
};

enum { TAG_STATUS = 1, STATUS_LEN = 256 };
#define TIMED_OUT "timed out"

static struct {
  bool initialized, finalized, sent_status;
  int rank, size;
  MPI_Comm comm;   /* the collectives */
  MPI_Comm phase2; /* the ordered allreduce's second operations (dist.c orders them) */
  MPI_Comm ctl;    /* status messages and the exit barrier */
  char status[STATUS_LEN]; /* what this rank is doing, for the others' reports */
  char (*answers)[STATUS_LEN]; /* [size]: the status sent to each rank that asked (once) */
  char (*notices)[STATUS_LEN]; /* [size]: the status sent to each rank on timing out (once) */
  char (*heard)[STATUS_LEN];   /* [size]: each rank's latest status received */
  MPI_Request *sends;          /* [2 size]: the answers', then the notices' */
  char library[96];
} mpi;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int failed(int rc, const char *call) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "error %d", rc);
  return mtl_error("mtl.dist: %s failed on rank %d: %s", call, mpi.rank, text);
}

/* " (step 1200)" when the caller set a context, else "". */
static const char *context_note(char *buf, size_t n) {
  const char *c = mtl_dist_context();
  if (*c) snprintf(buf, n, " (%s)", c);
  else buf[0] = 0;
  return buf;
}

/* ---- status messages ------------------------------------------------------ */

/* Sends this rank's status to rank r, once per box (answers, notices). */
static void tell(char (*box)[STATUS_LEN], MPI_Request *sends, int r) {
  if (r == mpi.rank || box[r][0]) return;
  snprintf(box[r], STATUS_LEN, "%s", mpi.status);
  mpi.sent_status = true;
  MPI_Isend(box[r], STATUS_LEN, MPI_CHAR, r, TAG_STATUS, mpi.ctl, &sends[r]);
}

/* Records the status messages that arrived and answers each sender. */
static void answer_questions(void) {
  for (;;) {
    int flag = 0;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_STATUS, mpi.ctl, &flag, &st) != MPI_SUCCESS || !flag) return;
    int from = st.MPI_SOURCE;
    if (MPI_Recv(mpi.heard[from], STATUS_LEN, MPI_CHAR, from, TAG_STATUS, mpi.ctl, MPI_STATUS_IGNORE) != MPI_SUCCESS)
      return;
    mpi.heard[from][STATUS_LEN - 1] = 0;
    tell(mpi.answers, mpi.sends, from);
  }
}

static void nap(double seconds) {
  struct timespec t = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  nanosleep(&t, NULL);
}

/* Appends ", r" to a list of ranks. */
static void list_rank(char *list, size_t n, int r) {
  size_t len = strlen(list);
  if (len + 16 < n) snprintf(list + len, n - len, "%s%d", len ? ", " : "", r);
}

/* The deadline passed while this rank waited in `what` (exiting: in the exit
 * barrier, its status saying it has exited): report and stop. */
static _Noreturn void fault(const char *what, double waited, bool exiting) {
  char note[192];
  double timeout = mtl_dist_timeout(), grace = timeout < 2 ? timeout : 2;
  context_note(note, sizeof note);
  if (!exiting) snprintf(mpi.status, STATUS_LEN, TIMED_OUT " in %s%s after %.3g s", what, note, waited);
  for (int r = 0; r < mpi.size; r++) tell(mpi.notices, mpi.sends + mpi.size, r);
  int missing = mpi.size - 1;
  for (double until = now() + grace; missing > 0 && now() < until; nap(1e-3)) {
    answer_questions();
    missing = 0;
    for (int r = 0; r < mpi.size; r++) missing += r != mpi.rank && !mpi.heard[r][0];
  }
  /* one report: by the lowest rank that timed out in a collective */
  for (int r = 0; r < mpi.size; r++) {
    if ((r >= mpi.rank && !exiting) || r == mpi.rank || strncmp(mpi.heard[r], TIMED_OUT, strlen(TIMED_OUT)) != 0)
      continue;
    fprintf(stderr, "mtl.dist: rank %d of %d%s: %s did not complete within %g s either; rank %d reports\n",
            mpi.rank, mpi.size, note, what, timeout, r);
    for (double until = now() + 2 * grace; now() < until; nap(1e-3)) answer_questions();
    MPI_Abort(MPI_COMM_WORLD, 1);
    _exit(1);
  }
  char silent[STATUS_LEN] = "", exited[STATUS_LEN] = "";
  for (int r = 0; r < mpi.size; r++) {
    if (r != mpi.rank && !mpi.heard[r][0]) list_rank(silent, sizeof silent, r);
    if (r != mpi.rank && !strncmp(mpi.heard[r], "has exited", 10)) list_rank(exited, sizeof exited, r);
  }
  fprintf(stderr, "mtl.dist: rank %d of %d%s stops the run: %s did not complete within %g s (MTL_DIST_TIMEOUT)",
          mpi.rank, mpi.size, note, what, timeout);
  if (*silent) fprintf(stderr, "; no answer from rank%s %s", strchr(silent, ',') ? "s" : "", silent);
  if (*exited) fprintf(stderr, "; rank%s %s exited", strchr(exited, ',') ? "s" : "", exited);
  fprintf(stderr, "\n");
  for (int r = 0; r < mpi.size; r++) {
    if (r == mpi.rank) continue;
    if (mpi.heard[r][0])
      fprintf(stderr, "mtl.dist:   rank %d %s\n", r, mpi.heard[r]);
    else
      fprintf(stderr, "mtl.dist:   rank %d: no answer within %g s (dead, hung, or busy outside mtl.dist)\n", r,
              grace);
  }
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  _exit(1); /* not reached */
}

/* Waits for *req until it completes; answers status messages meanwhile.
 * Spins first (collectives on one machine take microseconds), then yields,
 * then sleeps up to 1 ms between tests. */
static int wait_for(MPI_Request *req, const char *what, bool keep_status) {
  char note[192];
  if (!keep_status)
    snprintf(mpi.status, STATUS_LEN, "waits in %s%s", what, context_note(note, sizeof note));
  double start = now(), timeout = mtl_dist_timeout(), sleep = 1e-6;
  for (long spins = 0;; spins++) {
    int done = 0, rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return failed(rc, what);
    if (done) return 0;
    answer_questions();
    double waited = now() - start;
    if (waited > timeout) fault(what, waited, keep_status);
    if (spins < 2000) continue;
    if (waited < 0.01) {
      sched_yield();
      continue;
    }
    nap(sleep);
    if (sleep < 1e-3) sleep *= 2;
  }
}

/* ---- start and exit ------------------------------------------------------- */

static struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool done;
} init_watch = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};

static void *watch_init(void *arg) {
  double timeout = *(const double *)arg;
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += (time_t)timeout;
  deadline.tv_nsec += (long)((timeout - (double)(time_t)timeout) * 1e9);
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&init_watch.lock);
  int rc = 0;
  while (!init_watch.done && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&init_watch.cond, &init_watch.lock, &deadline);
  bool done = init_watch.done;
  pthread_mutex_unlock(&init_watch.lock);
  if (!done) {
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    fprintf(stderr,
            "mtl.dist: rank %s: MPI_Init did not complete within %g s (MTL_DIST_TIMEOUT): a rank of the run did not "
            "start mtl.dist (it died, hangs, or never requires \"mtl\"); stopping\n",
            rank ? rank : "?", timeout);
    _exit(1);
  }
  return NULL;
}

static void at_exit(int status, void *arg);

/* Keeps this library mapped to the end of the process: the exit handler and
 * MPI live in it, and lua_close unloads C modules before exit runs. */
static void pin_self(void) {
  Dl_info info;
  if (dladdr((void *)&pin_self, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE); /* never closed: that is the pin */
}

int mtl_transport_start(int *rank, int *size) {
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
#ifdef OPEN_MPI
    /* Open MPI's non-blocking allreduce (libnbc) picks a binomial tree (reduce
     * to a root, then broadcast) where Rabenseifner's reduce-scatter and
     * allgather move half the bytes: 1.55 MB at 2 ranks took 0.31 ms against
     * 0.14 ms (the blocking MPI_Allreduce's time; docs/distributed.md). libnbc
     * falls back by itself where the algorithm does not apply (fewer values
     * than ranks). An algorithm the user sets in the environment wins. */
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "3", 0);
#endif
    double timeout = mtl_dist_timeout();
    pthread_t watcher;
    bool watching = pthread_create(&watcher, NULL, watch_init, &timeout) == 0;
    int provided = 0, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    pthread_mutex_lock(&init_watch.lock);
    init_watch.done = true;
    pthread_cond_signal(&init_watch.cond);
    pthread_mutex_unlock(&init_watch.lock);
    if (watching) pthread_join(watcher, NULL);
    if (rc != MPI_SUCCESS) return mtl_error("mtl.dist: MPI_Init_thread failed (error %d)", rc);
    mpi.initialized = true; /* then this process finalizes it */
  }
  int rc = MPI_Comm_dup(MPI_COMM_WORLD, &mpi.comm);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_dup(MPI_COMM_WORLD, &mpi.phase2);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_dup(MPI_COMM_WORLD, &mpi.ctl);
  if (rc != MPI_SUCCESS) return failed(rc, "MPI_Comm_dup");
  MPI_Comm_set_errhandler(mpi.comm, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(mpi.phase2, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(mpi.ctl, MPI_ERRORS_RETURN);
  MPI_Comm_rank(mpi.comm, &mpi.rank);
  MPI_Comm_size(mpi.comm, &mpi.size);
  mpi.answers = calloc((size_t)mpi.size, sizeof *mpi.answers);
  mpi.notices = calloc((size_t)mpi.size, sizeof *mpi.notices);
  mpi.heard = calloc((size_t)mpi.size, sizeof *mpi.heard);
  mpi.sends = calloc((size_t)mpi.size * 2, sizeof *mpi.sends);
  if (!mpi.answers || !mpi.notices || !mpi.heard || !mpi.sends) return mtl_error("mtl.dist: out of memory");
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(version, &len);
  version[strcspn(version, ",\n")] = 0; /* "Open MPI v4.1.4" */
  snprintf(mpi.library, sizeof mpi.library, "%.95s", version);
  snprintf(mpi.status, STATUS_LEN, "is running (no collective yet)");
  if (mpi.initialized) {
    pin_self();
    on_exit(at_exit, NULL);
  }
  *rank = mpi.rank;
  *size = mpi.size;
  return 0;
}

const char *mtl_transport_library(void) { return mpi.library; }

static void at_exit(int status, void *arg) {
  (void)arg;
  if (!mpi.initialized || mpi.finalized) return;
  mpi.finalized = true;
  char note[192];
  context_note(note, sizeof note);
  if (status != 0) {
    fprintf(stderr, "mtl.dist: rank %d of %d%s exits with status %d: stopping all ranks\n", mpi.rank, mpi.size,
            note, status);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, status);
    return;
  }
  snprintf(mpi.status, STATUS_LEN, "has exited (status 0) after %lld collective%s%s",
           (long long)mtl_dist_collectives(), mtl_dist_collectives() == 1 ? "" : "s", note);
  MPI_Request barrier;
  if (MPI_Ibarrier(mpi.ctl, &barrier) == MPI_SUCCESS) wait_for(&barrier, "the exit barrier", true);
  MPI_Comm_free(&mpi.comm);
  MPI_Comm_free(&mpi.phase2);
  MPI_Comm_free(&mpi.ctl);
  MPI_Finalize();
  if (!mpi.sent_status) { /* else MPI may still read them */
    free(mpi.answers);
    free(mpi.notices);
    free(mpi.sends);
  }
  free(mpi.heard);
}

/* ---- operations ----------------------------------------------------------- */

static mtl_transport_request *request_new(int ncounts) {
  mtl_transport_request *r = calloc(1, sizeof *r + (size_t)ncounts * sizeof(int));
  if (!r) mtl_error("mtl.dist: out of memory");
  return r;
}

/* Copies n int64 values into int, checking each fits one MPI count. */
static int to_ints(const int64_t *v, int n, int *out, const char *what) {
  for (int i = 0; i < n; i++) {
    if (v[i] < 0 || v[i] > INT_MAX)
      return mtl_error("mtl.dist.%s: %lld items are more than one MPI operation takes (2^31 - 1)", what,
                       (long long)v[i]);
    out[i] = (int)v[i];
  }
  return 0;
}

/* A datatype of `unit` bytes (rows move as one item each). */
static int unit_type(size_t unit, MPI_Datatype *t, const char *what) {
  if (unit > INT_MAX) return mtl_error("mtl.dist.%s: rows of %zu bytes are too large for MPI", what, unit);
  int rc = MPI_Type_contiguous((int)unit, MPI_BYTE, t);
  if (rc == MPI_SUCCESS) rc = MPI_Type_commit(t);
  return rc == MPI_SUCCESS ? 0 : failed(rc, "MPI_Type_commit");
}

/* Finishes starting r: frees what the operation no longer needs, or r on failure. */
static int started(int rc, mtl_transport_request *r, mtl_transport_request **out, MPI_Datatype *type,
                   const char *call) {
  if (type) MPI_Type_free(type); /* MPI keeps it until the operation completes */
  if (rc != MPI_SUCCESS) {
    free(r);
    return failed(rc, call);
  }
  *out = r;
  return 0;
}

int mtl_transport_allgather(const void *send, void *recv, size_t bytes, mtl_transport_request **out) {
  mtl_transport_request *r = request_new(0);
  if (!r) return -1;
  return started(MPI_Iallgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, mpi.comm, &r->request), r,
                 out, NULL, "MPI_Iallgather");
}

int mtl_transport_alltoall(const void *send, void *recv, size_t bytes, mtl_transport_request **out) {
  mtl_transport_request *r = request_new(0);
  if (!r) return -1;
  return started(MPI_Ialltoall(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, mpi.comm, &r->request), r,
                 out, NULL, "MPI_Ialltoall");
}

int mtl_transport_allgatherv(const void *send, void *recv, const int64_t *counts, const int64_t *displs, size_t unit,
                             bool second_phase, mtl_transport_request **out) {
  int p = mpi.size;
  mtl_transport_request *r = request_new(2 * p);
  MPI_Datatype type;
  if (!r) return -1;
  if (to_ints(counts, p, r->counts, "allgather") < 0 || to_ints(displs, p, r->counts + p, "allgather") < 0 ||
      unit_type(unit, &type, "allgather") < 0) {
    free(r);
    return -1;
  }
  int rc = MPI_Iallgatherv(send ? send : MPI_IN_PLACE, send ? r->counts[mpi.rank] : 0, type, recv, r->counts,
                           r->counts + p, type, second_phase ? mpi.phase2 : mpi.comm, &r->request);
  return started(rc, r, out, &type, "MPI_Iallgatherv");
}

int mtl_transport_alltoallv(const void *send, const int64_t *send_counts, const int64_t *send_displs, void *recv,
                            const int64_t *recv_counts, const int64_t *recv_displs, size_t unit,
                            mtl_transport_request **out) {
  int p = mpi.size;
  mtl_transport_request *r = request_new(4 * p);
  MPI_Datatype type;
  if (!r) return -1;
  int *c = r->counts;
  if (to_ints(send_counts, p, c, "alltoallv") < 0 || to_ints(send_displs, p, c + p, "alltoallv") < 0 ||
      to_ints(recv_counts, p, c + 2 * p, "alltoallv") < 0 || to_ints(recv_displs, p, c + 3 * p, "alltoallv") < 0 ||
      unit_type(unit, &type, "alltoallv") < 0) {
    free(r);
    return -1;
  }
  int rc = MPI_Ialltoallv(send, c, c + p, type, recv, c + 2 * p, c + 3 * p, type, mpi.comm, &r->request);
  return started(rc, r, out, &type, "MPI_Ialltoallv");
}

int mtl_transport_allreduce(void *buf, int64_t count, mtl_dtype dtype, mtl_dist_op op, mtl_transport_request **out) {
  static const MPI_Op ops[] = {[MTL_DIST_SUM] = MPI_SUM, [MTL_DIST_MEAN] = MPI_SUM, [MTL_DIST_MAX] = MPI_MAX,
                               [MTL_DIST_MIN] = MPI_MIN};
  int n = 0;
  if (to_ints(&count, 1, &n, "allreduce") < 0) return -1;
  mtl_transport_request *r = request_new(0);
  if (!r) return -1;
  int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, n, dtype == MTL_F32 ? MPI_FLOAT : MPI_INT64_T, ops[op], mpi.comm,
                          &r->request);
  return started(rc, r, out, NULL, "MPI_Iallreduce");
}

int mtl_transport_broadcast(void *buf, int64_t count, size_t unit, int root, mtl_transport_request **out) {
  int n = 0;
  MPI_Datatype type;
  if (to_ints(&count, 1, &n, "broadcast") < 0) return -1;
  mtl_transport_request *r = request_new(0);
  if (!r) return -1;
  if (unit_type(unit, &type, "broadcast") < 0) {
    free(r);
    return -1;
  }
  return started(MPI_Ibcast(buf, n, type, root, mpi.comm, &r->request), r, out, &type, "MPI_Ibcast");
}

int mtl_transport_wait(mtl_transport_request *r, const char *what) {
  int rc = wait_for(&r->request, what, false);
  free(r);
  return rc;
}

int mtl_transport_test(mtl_transport_request *r, bool *done) {
  int flag = 0, rc = MPI_Test(&r->request, &flag, MPI_STATUS_IGNORE);
  answer_questions();
  *done = flag != 0;
  if (rc != MPI_SUCCESS || flag) free(r);
  return rc == MPI_SUCCESS ? 0 : failed(rc, "MPI_Test");
}
