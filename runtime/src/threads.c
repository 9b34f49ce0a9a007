/* One thread count for every pool: OpenBLAS's and the runtime's own, so that
 * two pools never fight over the cores. */
#include "mtl/core.h"

extern void openblas_set_num_threads(int n);

static int num_threads = 1;

void mtl_set_num_threads(int n) {
  if (n < 1) n = 1;
  num_threads = n;
  openblas_set_num_threads(n);
}

int mtl_get_num_threads(void) { return num_threads; }
