/* mtl.dist: ranks and collectives on tensors (runtime/dist, docs/distributed.md).
 *
 * One process is the N = 1 case: rank 0 of 1, every collective returns its
 * input (allreduce leaves the values, allgather and alltoallv copy them). When
 * mtl is built with MPI (CMake found it: MTL_WITH_MPI) and the process was
 * started by mpirun, mtl_dist_start initializes MPI and the collectives run
 * over MPI_COMM_WORLD (runtime/dist/mpi.c, the only file with MPI calls).
 *
 * Conventions:
 * - Ranks are 0..size-1 as in MPI; per-rank arrays have size entries.
 * - Rows are the first dimension (a 1-dimensional tensor's rows are its
 *   elements; a 0-dimensional tensor is one row).
 * - Every collective first checks that all ranks make the same call (the
 *   kind, dtype, shape, op, root); when they differ, every rank returns the
 *   same error naming the first rank whose call differs from rank 0's.
 * - Functions return 0 / a new tensor, or -1 / NULL with the error message
 *   set, like the core. The one exception: a collective that cannot complete
 *   within the timeout (a rank died, hangs or exited) stops every rank
 *   (MPI_Abort) after printing which ranks did not answer, because MPI cannot
 *   cancel a collective and the ranks could not go on.
 * - Only the thread that called mtl_dist_start calls these (MPI_THREAD_FUNNELED).
 */
#ifndef MTL_DIST_H
#define MTL_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mtl/core.h"

typedef enum { MTL_DIST_SUM = 0, MTL_DIST_MEAN, MTL_DIST_MAX, MTL_DIST_MIN } mtl_dist_op;

/* How allreduce sums (docs/distributed.md, "Determinism"):
 * ORDERED: each rank owns 1/N of the values, receives the other ranks' parts
 *   of it (all-to-all), adds them in rank order ((x0 + x1) + x2) + ..., and
 *   the sums are gathered back: every rank gets the same bits, and two runs
 *   at the same N give the same bits, whatever MPI's algorithms. The default.
 * MPI: MPI_Iallreduce; the summation order is the MPI library's choice (it
 *   depends on N, the message size and the library's tuning). */
typedef enum { MTL_DIST_ORDERED = 0, MTL_DIST_MPI } mtl_dist_algorithm;

/* Starts mtl.dist once per process (later calls return 0): reads
 * MTL_DIST_TIMEOUT, and when the launch environment says the process is one
 * of several ranks (mpirun's OMPI_COMM_WORLD_SIZE, or PMI_SIZE), initializes
 * MPI; in a build without MPI that is an error saying how to get it. */
int mtl_dist_start(void);
int mtl_dist_rank(void);
int mtl_dist_size(void);
bool mtl_dist_with_mpi(void);  /* built with MPI */
const char *mtl_dist_library(void); /* "Open MPI v4.1.4, ..." or "none" */

/* A label for messages, e.g. "step 1200" ("" clears it); copied. */
void mtl_dist_set_context(const char *context);
const char *mtl_dist_context(void);
/* Seconds a collective may wait for the other ranks before the run stops. */
int mtl_dist_set_timeout(double seconds);
double mtl_dist_timeout(void);
/* Collectives this rank has entered. */
int64_t mtl_dist_collectives(void);
/* "" with several ranks; with one, a parenthesized note for messages about
 * calls that expect more ranks: how to start several (mpirun), or, in a
 * build without MPI, how to get it. */
const char *mtl_dist_hint(void);

int mtl_dist_barrier(void);
/* t's values from rank root on every rank (in place). */
int mtl_dist_broadcast(mtl_tensor *t, int root);
/* t's values reduced over the ranks (in place); mean is the sum / size. */
int mtl_dist_allreduce(mtl_tensor *t, mtl_dist_op op, mtl_dist_algorithm alg);
/* Every rank's rows, concatenated in rank order; counts[r] = rank r's rows. */
mtl_tensor *mtl_dist_allgather(mtl_tensor *t, int64_t *counts);
/* Sends t's rows to the ranks: the first send_counts[0] rows to rank 0, the
 * next send_counts[1] to rank 1, ...; returns the rows received, in rank
 * order, with recv_counts[r] = the rows that came from rank r. */
mtl_tensor *mtl_dist_alltoallv(mtl_tensor *t, const int64_t *send_counts, int64_t *recv_counts);

/* Nonblocking allreduce of n tensors (in place), packed in order into flat
 * buffers of at most bucket_bytes (one dtype each; a larger tensor gets a
 * buffer of its own); one MPI operation per buffer. The call checks that the
 * ranks agree and starts every buffer; mtl_dist_wait completes them and
 * writes the results into the tensors, which must not be used in between.
 * The request holds references to the tensors. */
typedef struct mtl_dist_request mtl_dist_request;
mtl_dist_request *mtl_dist_iallreduce(mtl_tensor **tensors, int n, mtl_dist_op op, mtl_dist_algorithm alg,
                                      size_t bucket_bytes);
int mtl_dist_wait(mtl_dist_request *r);
/* Progress without blocking; *done once the results are in the tensors. */
int mtl_dist_test(mtl_dist_request *r, bool *done);
int mtl_dist_request_buffers(const mtl_dist_request *r); /* flat buffers (MPI operations) it uses */
/* Frees r; waits for it first if it is still running (the buffers are MPI's
 * until then). */
void mtl_dist_request_free(mtl_dist_request *r);

const char *mtl_dist_op_name(mtl_dist_op op);
const char *mtl_dist_algorithm_name(mtl_dist_algorithm alg);

#endif
