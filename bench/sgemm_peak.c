/* Copied unchanged (apart from this note) from the shared benchmark kit,
 * ../shared/bench/sgemm_peak.c, so that bench/compare.sh does not depend on
 * ../shared. bench/compare.sh builds it into /tmp and takes the sgemm bound from it. */
/*
 * sgemm_peak.c - OpenBLAS cblas_sgemm throughput for the benchmark's shapes.
 *
 * For each shape and each thread count (openblas_set_num_threads 1 and 2,
 * or the counts given with -t) it runs cblas_sgemm (row-major, fp32,
 * alpha=1, beta=0) repeatedly and reports the best-of-reps GFLOP/s, where
 * one call counts 2*M*N*K flops.  Each timing "rep" is a loop of enough
 * calls to last >= 20 ms; the best of 7 reps is printed (after 1 untimed
 * warm-up rep).  Inputs are filled deterministically (LCG, values in
 * [-0.5, 0.5)).
 *
 * Shapes (M x K) * (K x N):
 *   fwd   1024 x 256 x 232  NT  Linear forward  Y[M,N] = X[M,K] * W[N,K]^T
 *   fwd   1024 x 128 x 256  NT  Linear forward
 *   sq    1024 x 1024 x 1024 NN  large square reference
 *   dX    1024 x 232 x 256  NN  Linear backward dX[M,K] = dY[M,N] * W[N,K]
 *   dW     256 x 232 x 1024 TN  Linear backward dW[N,K] = dY[M,N]^T * X[M,K]
 *   (and the same for the 256x128 layer and for batch 256 in the first shape)
 *
 * Build:  gcc -O2 -o sgemm_peak sgemm_peak.c -lopenblas
 *         (Debian: libopenblas-dev; cblas.h from the openblas alternative)
 * Run:    ./sgemm_peak            # threads 1 and 2
 *         ./sgemm_peak -t 1,2,4   # other thread counts
 * Output: one line per (shape, threads), then a JSON line with all figures.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern void openblas_set_num_threads(int);
extern char *openblas_get_corename(void);
extern char *openblas_get_config(void);
extern int openblas_get_num_procs(void);

typedef struct {
    const char *name;
    int M, N, K;
    int ta, tb; /* transpose flags for A and B (row-major storage) */
} shape_t;

static const shape_t SHAPES[] = {
    {"fwd_b1024_232x256", 1024, 256, 232, 0, 1},
    {"fwd_b1024_256x128", 1024, 128, 256, 0, 1},
    {"square_1024", 1024, 1024, 1024, 0, 0},
    {"dX_b1024_232x256", 1024, 232, 256, 0, 0},
    {"dW_b1024_232x256", 256, 232, 1024, 1, 0},
    {"dX_b1024_256x128", 1024, 256, 128, 0, 0},
    {"dW_b1024_256x128", 128, 256, 1024, 1, 0},
    {"fwd_b256_232x256", 256, 256, 232, 0, 1},
};
#define NSHAPES (int)(sizeof(SHAPES) / sizeof(SHAPES[0]))

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fill(float *p, size_t n, unsigned *state) {
    for (size_t i = 0; i < n; i++) {
        *state = *state * 1664525u + 1013904223u;
        p[i] = (float)((*state >> 8) / 16777216.0 - 0.5);
    }
}

static double bench(const shape_t *s) {
    int M = s->M, N = s->N, K = s->K;
    float *A = aligned_alloc(64, sizeof(float) * (size_t)M * K + 64);
    float *B = aligned_alloc(64, sizeof(float) * (size_t)K * N + 64);
    float *C = aligned_alloc(64, sizeof(float) * (size_t)M * N + 64);
    unsigned st = 12345u;
    fill(A, (size_t)M * K, &st);
    fill(B, (size_t)K * N, &st);
    memset(C, 0, sizeof(float) * (size_t)M * N);
    /* row-major leading dimensions of the stored (untransposed) arrays */
    int lda = s->ta ? M : K; /* A stored K x M when transposed */
    int ldb = s->tb ? K : N; /* B stored N x K when transposed */
    enum CBLAS_TRANSPOSE TA = s->ta ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE TB = s->tb ? CblasTrans : CblasNoTrans;
    double flops = 2.0 * M * N * K;
    /* calibrate the number of calls per rep (>= 20 ms) */
    int calls = 1;
    for (;;) {
        double t0 = now();
        for (int i = 0; i < calls; i++)
            cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
        double dt = now() - t0;
        if (dt >= 0.02) break;
        calls *= 2;
    }
    double best = 0.0;
    for (int r = 0; r < 7; r++) {
        double t0 = now();
        for (int i = 0; i < calls; i++)
            cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
        double g = flops * calls / (now() - t0) / 1e9;
        if (g > best) best = g;
    }
    volatile float sink = C[0];
    (void)sink;
    free(A);
    free(B);
    free(C);
    return best;
}

int main(int argc, char **argv) {
    int threads[8] = {1, 2};
    int nt = 2;
    if (argc > 2 && strcmp(argv[1], "-t") == 0) {
        nt = 0;
        char *tok = strtok(argv[2], ",");
        while (tok && nt < 8) {
            threads[nt++] = atoi(tok);
            tok = strtok(NULL, ",");
        }
    }
    printf("openblas core: %s\nopenblas config: %s\nprocs: %d\n", openblas_get_corename(),
           openblas_get_config(), openblas_get_num_procs());
    double res[NSHAPES][8];
    for (int i = 0; i < NSHAPES; i++) {
        for (int t = 0; t < nt; t++) {
            openblas_set_num_threads(threads[t]);
            res[i][t] = bench(&SHAPES[i]);
            printf("%-20s M=%4d N=%4d K=%4d %s%s threads=%d  %8.1f GFLOP/s\n", SHAPES[i].name,
                   SHAPES[i].M, SHAPES[i].N, SHAPES[i].K, SHAPES[i].ta ? "T" : "N",
                   SHAPES[i].tb ? "T" : "N", threads[t], res[i][t]);
            fflush(stdout);
        }
    }
    printf("{\"core\": \"%s\", \"results\": [", openblas_get_corename());
    for (int i = 0; i < NSHAPES; i++)
        for (int t = 0; t < nt; t++)
            printf("%s{\"shape\": \"%s\", \"M\": %d, \"N\": %d, \"K\": %d, \"threads\": %d, "
                   "\"gflops\": %.1f}",
                   (i || t) ? ", " : "", SHAPES[i].name, SHAPES[i].M, SHAPES[i].N, SHAPES[i].K,
                   threads[t], res[i][t]);
    printf("]}\n");
    return 0;
}
