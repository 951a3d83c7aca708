/* Classification metrics from a confusion matrix. */
#include <math.h>
#include <string.h>

#include "lamp/train.h"

lamp_status lamp_metrics_compute(size_t K, const int32_t *gold, const int32_t *pred, size_t n,
                                 lamp_data_metric metric, lamp_metrics *out) {
  if (!out || K < 2 || K > LAMP_DATA_MAX_LABELS || (n && (!gold || !pred)))
    return LAMP_ERR_INVALID_ARGUMENT;
  size_t conf[LAMP_DATA_MAX_LABELS][LAMP_DATA_MAX_LABELS];
  memset(conf, 0, sizeof(conf));
  size_t right = 0;
  for (size_t i = 0; i < n; i++) {
    if (gold[i] < 0 || (size_t)gold[i] >= K || pred[i] < 0 || (size_t)pred[i] >= K)
      return LAMP_ERR_INVALID_ARGUMENT;
    conf[gold[i]][pred[i]]++;
    right += gold[i] == pred[i];
  }
  memset(out, 0, sizeof(*out));
  out->examples = n;
  out->metric = metric;
  out->accuracy = n ? (double)right / (double)n : 0;
  double f1[LAMP_DATA_MAX_LABELS], sum = 0;
  for (size_t k = 0; k < K; k++) {
    double tp = (double)conf[k][k], fp = 0, fn = 0;
    for (size_t j = 0; j < K; j++)
      if (j != k) {
        fp += (double)conf[j][k];
        fn += (double)conf[k][j];
      }
    f1[k] = tp > 0 ? 2 * tp / (2 * tp + fp + fn) : 0;
    sum += f1[k];
  }
  out->macro_f1 = sum / (double)K;
  if (K == 2) {
    out->f1 = f1[1];
    double tp = (double)conf[1][1], tn = (double)conf[0][0], fp = (double)conf[0][1],
           fn = (double)conf[1][0];
    double den = sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
    out->mcc = den > 0 ? (tp * tn - fp * fn) / den : 0;
  }
  switch (metric) {
    case LAMP_DATA_METRIC_F1: out->score = out->f1; break;
    case LAMP_DATA_METRIC_MCC: out->score = out->mcc; break;
    case LAMP_DATA_METRIC_MACRO_F1: out->score = out->macro_f1; break;
    default: out->score = out->accuracy; break;
  }
  return LAMP_OK;
}
