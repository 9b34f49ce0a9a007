/* Evaluation metrics over score/label arrays (see docs/training.md).
 * Labels are 0/1 floats (> 0.5 counts as positive). Each function returns 0,
 * or -1 with the error message set; a metric that is undefined (no positive
 * or no negative) yields NAN, not an error. */
#ifndef MTL_METRICS_H
#define MTL_METRICS_H

#include <stdint.h>

/* Exact ROC AUC, tied scores get their average rank. mask (may be NULL):
 * only rows with mask > 0.5 count (e.g. CVR AUC over clicked rows). */
int mtl_metric_auc(const float *score, const float *label, const float *mask, int64_t n, double *auc);

typedef enum {
  MTL_GAUC_MEAN = 0,            /* plain mean over groups */
  MTL_GAUC_MEAN_BY_SAMPLES = 1, /* weighted by each group's row count */
  MTL_GAUC_MEAN_BY_POSITIVES = 2 /* weighted by each group's positives */
} mtl_gauc_reduction;

/* Group AUC: AUC within each group (e.g. user), groups with a single class
 * skipped, then reduced. *groups_used receives the number of groups counted. */
int mtl_metric_gauc(const float *score, const float *label, const int64_t *group, int64_t n,
                    mtl_gauc_reduction red, double *gauc, int64_t *groups_used);

/* Mean binary log loss with p clipped to [1e-7, 1 - 1e-7]. */
int mtl_metric_logloss(const float *p, const float *label, const float *mask, int64_t n, double *loss);

/* Calibration: mean prediction / label rate (NAN when no positive). */
int mtl_metric_calibration(const float *p, const float *label, const float *mask, int64_t n, double *ratio);

#endif
