/* Metrics: exact AUC by rank sums, group AUC, log loss, calibration. */
#include "mtl/metrics.h"

#include <math.h>
#include <stdlib.h>

#include "mtl/core.h"

typedef struct {
  float score;
  float label;
  int64_t group;
} row;

static int by_score(const void *a, const void *b) {
  float x = ((const row *)a)->score, y = ((const row *)b)->score;
  return (x > y) - (x < y);
}

static int by_group_score(const void *a, const void *b) {
  const row *x = a, *y = b;
  if (x->group != y->group) return (x->group > y->group) - (x->group < y->group);
  return (x->score > y->score) - (x->score < y->score);
}

/* AUC of rows sorted by score: (sum of positives' average ranks - P(P+1)/2) / (P N). */
static double sorted_auc(const row *r, int64_t n, int64_t *npos_out) {
  double rank_sum = 0;
  int64_t npos = 0;
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    int64_t pos_in_tie = 0;
    while (j < n && r[j].score == r[i].score) {
      if (r[j].label > 0.5f) pos_in_tie++;
      j++;
    }
    /* ranks i+1 .. j share their average */
    rank_sum += (double)pos_in_tie * ((double)(i + 1) + (double)j) / 2.0;
    npos += pos_in_tie;
    i = j;
  }
  *npos_out = npos;
  int64_t nneg = n - npos;
  if (npos == 0 || nneg == 0) return NAN;
  return (rank_sum - (double)npos * ((double)npos + 1) / 2.0) / ((double)npos * (double)nneg);
}

static int check_scores(const char *fn, const float *s, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (isnan(s[i])) return mtl_error("%s: prediction %lld is NaN", fn, (long long)i + 1);
  return 0;
}

int mtl_metric_auc(const float *score, const float *label, const float *mask, int64_t n, double *auc) {
  if (check_scores("mtl.metrics.auc", score, n) < 0) return -1;
  row *r = malloc((size_t)(n > 0 ? n : 1) * sizeof *r);
  if (!r) return mtl_error("mtl.metrics.auc: out of memory for %lld rows", (long long)n);
  int64_t m = 0;
  for (int64_t i = 0; i < n; i++) {
    if (mask && !(mask[i] > 0.5f)) continue;
    r[m].score = score[i];
    r[m].label = label[i];
    r[m].group = 0;
    m++;
  }
  qsort(r, (size_t)m, sizeof *r, by_score);
  int64_t npos;
  *auc = sorted_auc(r, m, &npos);
  free(r);
  return 0;
}

int mtl_metric_gauc(const float *score, const float *label, const int64_t *group, int64_t n,
                    mtl_gauc_reduction red, double *gauc, int64_t *groups_used) {
  if (check_scores("mtl.metrics.gauc", score, n) < 0) return -1;
  row *r = malloc((size_t)(n > 0 ? n : 1) * sizeof *r);
  if (!r) return mtl_error("mtl.metrics.gauc: out of memory for %lld rows", (long long)n);
  for (int64_t i = 0; i < n; i++) r[i] = (row){score[i], label[i], group[i]};
  qsort(r, (size_t)n, sizeof *r, by_group_score);
  double num = 0, den = 0;
  int64_t used = 0;
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    while (j < n && r[j].group == r[i].group) j++;
    int64_t npos;
    double a = sorted_auc(r + i, j - i, &npos);
    if (!isnan(a)) { /* single-class groups are skipped */
      double w = red == MTL_GAUC_MEAN ? 1.0 : red == MTL_GAUC_MEAN_BY_SAMPLES ? (double)(j - i) : (double)npos;
      num += w * a;
      den += w;
      used++;
    }
    i = j;
  }
  free(r);
  *gauc = den > 0 ? num / den : NAN;
  *groups_used = used;
  return 0;
}

int mtl_metric_logloss(const float *p, const float *label, const float *mask, int64_t n, double *loss) {
  double s = 0;
  int64_t m = 0;
  for (int64_t i = 0; i < n; i++) {
    if (mask && !(mask[i] > 0.5f)) continue;
    double q = p[i];
    if (isnan(q)) return mtl_error("mtl.metrics.logloss: prediction %lld is NaN", (long long)i + 1);
    q = q < 1e-7 ? 1e-7 : q > 1 - 1e-7 ? 1 - 1e-7 : q;
    s += label[i] > 0.5f ? -log(q) : -log(1 - q);
    m++;
  }
  *loss = m ? s / (double)m : NAN;
  return 0;
}

int mtl_metric_calibration(const float *p, const float *label, const float *mask, int64_t n, double *ratio) {
  double sp = 0, sl = 0;
  for (int64_t i = 0; i < n; i++) {
    if (mask && !(mask[i] > 0.5f)) continue;
    sp += p[i];
    sl += label[i] > 0.5f ? 1.0 : 0.0;
  }
  *ratio = sl > 0 ? sp / sl : NAN;
  return 0;
}
