-- mtl.metrics: evaluation metrics computed in C (runtime/src/metrics.c).
--   mtl.metrics.auc(pred, label[, mask])     exact ROC AUC, ties averaged
--   mtl.metrics.gauc(pred, label, groups[, reduction]) -> gauc, groups used
--       reduction: "mean" | "mean_by_sample_num" | "mean_by_positive_num"
--   mtl.metrics.logloss(pred, label[, mask]) p clipped to [1e-7, 1-1e-7]
--   mtl.metrics.calibration(pred, label[, mask])  mean prediction / label rate
-- pred and label are float32 vectors; label 0/1; mask 0/1 selects rows
-- (e.g. the CVR AUC over clicked rows: auc(p_cvr, is_pay, is_click)).
return function(mtl, core)
  mtl.metrics = {
    auc = core.metric_auc,
    gauc = core.metric_gauc,
    logloss = core.metric_logloss,
    calibration = core.metric_calibration,
  }
end
