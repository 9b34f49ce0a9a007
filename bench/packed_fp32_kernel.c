/* packed_fp32_kernel.c - the experiment behind docs/performance.md's "A packed FP32
 * kernel": an FP32 micro-kernel of the bf16 kernel's design (weights packed once into
 * panels of 16 columns, 8 x 32 tiles, bias as the accumulators' start, ReLU before the
 * one store) against what mtl.linear does in FP32 (bias rows, cblas_sgemm with beta = 1,
 * a ReLU pass), best of 7 for each, on x [1024, k] and W [n, k]:
 *
 *   gcc -O3 -march=native -o /tmp/packed_fp32 bench/packed_fp32_kernel.c -lopenblas
 *   /tmp/packed_fp32 K N REPS        e.g. 232 1024 20 (mmoe's experts' layer 1), 256 128 50
 *
 * N must be a multiple of 32 (this sketch has no tails). */
#include <cblas.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MR 8 /* rows per tile */
#define NP 2 /* panels of 16 columns per tile */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* out[0..MR) x [0..32) = relu(bias + x W^T) for one tile; wp: the tile's first panel */
static void tile(const float *x, long k, const float *wp, long pstride, const float *bias, float *out, long ldo) {
  __m512 acc[MR][NP];
  for (int j = 0; j < NP; j++)
    for (int i = 0; i < MR; i++) acc[i][j] = _mm512_loadu_ps(bias + 16 * j);
  for (long q = 0; q < k; q++) {
    __m512 w0 = _mm512_load_ps(wp + q * 16), w1 = _mm512_load_ps(wp + pstride + q * 16);
    for (int i = 0; i < MR; i++) {
      __m512 a = _mm512_set1_ps(x[i * k + q]);
      acc[i][0] = _mm512_fmadd_ps(a, w0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, w1, acc[i][1]);
    }
  }
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NP; j++) _mm512_storeu_ps(out + i * ldo + 16 * j, _mm512_max_ps(acc[i][j], _mm512_setzero_ps()));
}

/* out [m, n] for m a multiple of MR: 64-row chunks, each over every tile of columns */
static void packed(const float *x, long m, long k, const float *wp, long n, const float *bias, float *out) {
  for (long c0 = 0; c0 < m; c0 += 64)
    for (long p = 0; p < n / 16; p += NP)
      for (long i = c0; i < c0 + 64 && i < m; i += MR) tile(x + i * k, k, wp + p * k * 16, k * 16, bias + p * 16, out + i * n + p * 16, n);
}

/* what mtl.linear does in FP32 */
static void blas(const float *x, long m, long k, const float *w, long n, const float *bias, float *out) {
  for (long i = 0; i < m; i++) memcpy(out + i * n, bias, (size_t)n * sizeof(float));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, x, (int)k, w, (int)k, 1.0f, out, (int)n);
  for (long i = 0; i < m * n; i++) out[i] = out[i] > 0 ? out[i] : 0;
}

static float *floats(long n) { return aligned_alloc(64, (size_t)n * sizeof(float)); }

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s K N REPS\n", argv[0]);
    return 2;
  }
  long m = 1024, k = atol(argv[1]), n = atol(argv[2]);
  int reps = atoi(argv[3]);
  if (k < 1 || n < 32 || n % 32 || reps < 1) {
    fprintf(stderr, "K >= 1, N a multiple of 32, REPS >= 1\n");
    return 2;
  }
  float *x = floats(m * k), *w = floats(n * k), *wp = floats(n * k), *b = floats(n);
  float *o1 = floats(m * n), *o2 = floats(m * n);
  for (long i = 0; i < m * k; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  for (long i = 0; i < n * k; i++) w[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  for (long i = 0; i < n; i++) b[i] = 0.1f;
  for (long p = 0; p < n / 16; p++) /* panel p: for each input q, W[16p .. 16p+15][q] */
    for (long q = 0; q < k; q++)
      for (int j = 0; j < 16; j++) wp[(p * k + q) * 16 + j] = w[(p * 16 + j) * k + q];
  openblas_set_num_threads(1);
  double best[2] = {1e9, 1e9};
  for (int r = 0; r < 7; r++) {
    double t0 = now();
    for (int t = 0; t < reps; t++) blas(x, m, k, w, n, b, o1);
    double t1 = now();
    for (int t = 0; t < reps; t++) packed(x, m, k, wp, n, b, o2);
    double t2 = now();
    if (t1 - t0 < best[0]) best[0] = t1 - t0;
    if (t2 - t1 < best[1]) best[1] = t2 - t1;
  }
  double maxdiff = 0;
  for (long i = 0; i < m * n; i++) {
    double d = o1[i] > o2[i] ? o1[i] - o2[i] : o2[i] - o1[i];
    if (d > maxdiff) maxdiff = d;
  }
  double flops = 2.0 * (double)(m * n * k) * reps;
  printf("k=%ld n=%ld: sgemm + passes %.1f GFLOP/s, packed kernel %.1f GFLOP/s, ratio %.2f (max difference %g)\n", k, n,
         flops / best[0] / 1e9, flops / best[1] / 1e9, best[0] / best[1], maxdiff);
  return 0;
}
