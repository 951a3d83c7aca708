/* lamp: randomized truncated SVD (Halko, Martinsson, Tropp 2011) on the device. */
#ifndef LAMP_SVD_H
#define LAMP_SVD_H

#include <stdint.h>

#include "lamp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lamp_svd_sketch {
  LAMP_SVD_SKETCH_AUTO = 0,     /* chosen from the shape; see lamp_svd_randomized */
  LAMP_SVD_SKETCH_GAUSSIAN = 1, /* Philox4x32-10 + Box-Muller test matrix, applied by GEMM */
  LAMP_SVD_SKETCH_SRFT = 2,     /* random signs, real FFT of each row (clFFT), sampled columns */
} lamp_svd_sketch;

typedef struct lamp_svd_options {
  size_t rank;          /* k, 1 <= k <= min(m, n) */
  size_t oversample;    /* p, default 10; k + p is clipped to min(m, n) */
  unsigned power_iters; /* q, default 2 */
  lamp_svd_sketch sketch;
  uint64_t seed;
} lamp_svd_options;

/* Defaults for rank k: p = 10, q = 2, automatic sketch, seed 0. */
void lamp_svd_options_init(lamp_svd_options *options, size_t rank);

/* A (m x n, f32, row-major: ne = {n, m}; never modified) ~ U diag(S) Vt with
 * U (m x k, ne = {k, m}), S (k, descending, non-negative), Vt (k x n, ne = {n, k}).
 * The caller creates U, S and Vt with those shapes. Same seed and device: same bits. */
lamp_status lamp_svd_randomized(lamp_context *ctx, const lamp_tensor *a,
                                const lamp_svd_options *options, lamp_tensor *u, lamp_tensor *s,
                                lamp_tensor *vt);

#ifdef __cplusplus
}
#endif

#endif
