/* One seeded random stream (xoshiro256** generator, seeded via splitmix64).
 * Every random draw in mtl (initialization, shuffling, dropout, sampling)
 * comes from here, so mtl_seed(n) makes a run reproducible. Also the
 * tensors of draws (mtl.rand, mtl.randn). */
#include <math.h>

#include "mtl/core.h"

static uint64_t s[4] = {0x9e3779b97f4a7c15ULL, 0xbf58476d1ce4e5b9ULL, 0x94d049bb133111ebULL,
                        0x2545f4914f6cdd1dULL};
static int have_spare;
static double spare;

static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void mtl_seed(uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) s[i] = splitmix(&x);
  have_spare = 0;
}

uint64_t mtl_rand_u64(void) {
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double mtl_rand_uniform(void) { return (double)(mtl_rand_u64() >> 11) * 0x1.0p-53; }

/* Box-Muller, keeping the second value of each pair. */
double mtl_rand_normal(void) {
  if (have_spare) {
    have_spare = 0;
    return spare;
  }
  double u, v;
  do u = mtl_rand_uniform(); while (u <= 0.0);
  v = mtl_rand_uniform();
  double r = sqrt(-2.0 * log(u)), th = 2.0 * M_PI * v;
  spare = r * sin(th);
  have_spare = 1;
  return r * cos(th);
}

static mtl_tensor *random_tensor(const char *op, bool normal, mtl_dtype dtype, int ndim, const int64_t *shape) {
  if (dtype != MTL_F32)
    return (void)mtl_error("%s: random tensors are float32, got %s", op, mtl_dtype_name(dtype)), NULL;
  mtl_tensor *t = mtl_tensor_new_named(op, MTL_F32, ndim, shape);
  if (!t) return NULL;
  float *p = mtl_f32(t);
  for (int64_t i = 0; i < t->numel; i++) {
    float v = (float)(normal ? mtl_rand_normal() : mtl_rand_uniform());
    /* a uniform double within 2^-25 of 1 rounds to 1.0f (about once in 2^24
     * draws): keep rand in [0, 1), as its users index with floor(u * n) */
    p[i] = normal || v < 1.0f ? v : 0x1.fffffep-1f;
  }
  return t;
}

mtl_tensor *mtl_tensor_rand(mtl_dtype dtype, int ndim, const int64_t *shape) {
  return random_tensor("mtl.rand", false, dtype, ndim, shape);
}

mtl_tensor *mtl_tensor_randn(mtl_dtype dtype, int ndim, const int64_t *shape) {
  return random_tensor("mtl.randn", true, dtype, ndim, shape);
}

void mtl_rand_get_state(uint64_t state[4]) {
  for (int i = 0; i < 4; i++) state[i] = s[i];
}

void mtl_rand_set_state(const uint64_t state[4]) {
  for (int i = 0; i < 4; i++) s[i] = state[i];
  have_spare = 0;
}
