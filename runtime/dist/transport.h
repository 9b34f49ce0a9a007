/* What dist.c (the collectives on tensors, every build) asks of mpi.c (the
 * MPI calls, only in builds with MPI): nonblocking operations on byte
 * buffers over all ranks, and a wait with a deadline. In a build without MPI
 * the size is always 1 and dist.c never calls the operations; the stubs
 * below keep it linking. */
#ifndef MTL_DIST_TRANSPORT_H
#define MTL_DIST_TRANSPORT_H

#include "mtl/dist.h"

typedef struct mtl_transport_request mtl_transport_request;

#ifdef MTL_WITH_MPI
/* Initializes MPI (the process was launched by mpirun); sets rank and size. */
int mtl_transport_start(int *rank, int *size);
const char *mtl_transport_library(void);
/* Each rank's `bytes` bytes, in rank order, into recv (size * bytes). */
int mtl_transport_allgather(const void *send, void *recv, size_t bytes, mtl_transport_request **r);
/* send holds `bytes` bytes for each rank in rank order; recv gets each
 * rank's bytes for this rank, in rank order. */
int mtl_transport_alltoall(const void *send, void *recv, size_t bytes, mtl_transport_request **r);
/* Variable counts of `unit`-byte items; displacements in items. The arrays
 * are copied. In place (send == NULL) for allgatherv: this rank's items are
 * already at their place in recv. second_phase: on the communicator of the
 * ordered allreduce's second operations, which dist.c posts in an order of
 * its own (MPI matches collectives per communicator, in the order posted). */
int mtl_transport_allgatherv(const void *send, void *recv, const int64_t *counts, const int64_t *displs,
                             size_t unit, bool second_phase, mtl_transport_request **r);
int mtl_transport_alltoallv(const void *send, const int64_t *send_counts, const int64_t *send_displs, void *recv,
                            const int64_t *recv_counts, const int64_t *recv_displs, size_t unit,
                            mtl_transport_request **r);
/* MPI's own allreduce, in place. */
int mtl_transport_allreduce(void *buf, int64_t count, mtl_dtype dtype, mtl_dist_op op, mtl_transport_request **r);
int mtl_transport_broadcast(void *buf, int64_t count, size_t unit, int root, mtl_transport_request **r);
/* Waits for r and frees it. `what` ("allreduce #12") names the wait in the
 * messages. After mtl_dist_timeout() seconds it asks the other ranks what
 * they are doing, prints which did not answer, and stops all ranks. */
int mtl_transport_wait(mtl_transport_request *r, const char *what);
/* *done (and r freed) once complete; never blocks. */
int mtl_transport_test(mtl_transport_request *r, bool *done);
#else
static inline int mtl_transport_unavailable(void) { return mtl_error("mtl.dist: this mtl is built without MPI"); }
static inline int mtl_transport_start(int *rank, int *size) {
  *rank = 0;
  *size = 1;
  return mtl_transport_unavailable();
}
static inline const char *mtl_transport_library(void) { return "none"; }
static inline int mtl_transport_allgather(const void *s, void *r, size_t b, mtl_transport_request **q) {
  (void)s, (void)r, (void)b, (void)q;
  return mtl_transport_unavailable();
}
static inline int mtl_transport_alltoall(const void *s, void *r, size_t b, mtl_transport_request **q) {
  (void)s, (void)r, (void)b, (void)q;
  return mtl_transport_unavailable();
}
static inline int mtl_transport_allgatherv(const void *s, void *r, const int64_t *c, const int64_t *d, size_t u,
                                           bool second, mtl_transport_request **q) {
  (void)s, (void)r, (void)c, (void)d, (void)u, (void)second, (void)q;
  return mtl_transport_unavailable();
}
static inline int mtl_transport_alltoallv(const void *s, const int64_t *sc, const int64_t *sd, void *r,
                                          const int64_t *rc, const int64_t *rd, size_t u, mtl_transport_request **q) {
  (void)s, (void)sc, (void)sd, (void)r, (void)rc, (void)rd, (void)u, (void)q;
  return mtl_transport_unavailable();
}
static inline int mtl_transport_allreduce(void *b, int64_t c, mtl_dtype d, mtl_dist_op o, mtl_transport_request **q) {
  (void)b, (void)c, (void)d, (void)o, (void)q;
  return mtl_transport_unavailable();
}
static inline int mtl_transport_broadcast(void *b, int64_t n, size_t u, int root, mtl_transport_request **q) {
  (void)b, (void)n, (void)u, (void)root, (void)q;
  return mtl_transport_unavailable();
}
static inline int mtl_transport_wait(mtl_transport_request *r, const char *what) {
  (void)r, (void)what;
  return mtl_transport_unavailable();
}
static inline int mtl_transport_test(mtl_transport_request *r, bool *done) {
  (void)r, (void)done;
  return mtl_transport_unavailable();
}
#endif

#endif
