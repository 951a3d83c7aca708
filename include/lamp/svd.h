/* lamp: randomized truncated SVD (Halko, Martinsson, Tropp 2011) on the device.
 *
 * For A (m x n) and a target rank k, with l = k + p columns of sketch:
 *   1. Y = A Omega, Omega an n x l random test matrix (Gaussian or SRFT, below);
 *   2. Q = orth(Y); q power iterations: Z = orth(A^T Q), Q = orth(A Z);
 *   3. B^T = A^T Q = Q_b R (orth again), and R^T = W diag(S) V^T by one-sided Jacobi;
 *   4. U = Q W (first k columns), Vt = V^T Q_b^T (first k rows).
 * Everything runs on the context's device; A never comes back to the host. Per call the host
 * reads back only the input check (a few hundred bytes) and one 8-byte flag per
 * orthonormalisation.
 *
 * Orthonormalisation: CholeskyQR2 (CLBlast GEMMs around a one-work-group Cholesky),
 * because it is GEMM-shaped and fast on every device. It is exact to working precision only
 * while cond(Y) stays below about 1/sqrt(eps), and sketches of gapped or rank-deficient matrices
 * (and power iterations on them) routinely exceed that, so each call checks the Cholesky pivots
 * and the orthogonality left by the first pass, and falls back to Householder QR on the device,
 * which yields an orthonormal basis for any input, exactly dependent or zero columns included.
 *
 * Sketches:
 *  - Gaussian: Omega_ij from Philox4x32-10 (Salmon et al. 2011) and Box-Muller, a function of
 *    (seed, i, j) only, generated on the device and applied with one CLBlast GEMM, 2 m n l
 *    flops. AUTO picks it for every shape (see lamp_svd_sketch_auto).
 *  - SRFT: Omega = D F S: random signs D (Philox), a real FFT of each row of A zero-padded to a
 *    length N >= n of the form 2^a 3^b 5^c (clFFT, out of place), then l of the N real columns
 *    of the half spectrum (real and imaginary parts) chosen by a seeded shuffle and scaled. It
 *    costs O(m N log N) instead of O(m n l) and needs two extra float buffers, m x N and
 *    m x (N + 2).
 *
 * clFFT keeps process-wide state: clfftSetup creates it, clfftTeardown destroys it together
 * with every plan and compiled program of the process, the host's own included. lamp therefore
 * calls clfftSetup(NULL) before each SRFT (idempotent and thread-safe in clFFT, and it leaves
 * the host's setup data alone) and never calls clfftTeardown. Its plans live only within one
 * lamp_svd_randomized call. clFFT caches the compiled FFT kernels, keyed by OpenCL context,
 * until clfftTeardown: a host that used the SRFT may call clfftTeardown once it has finished
 * with lamp and with clFFT (e.g. at exit, for a leak checker), never while an SVD is running. */
#ifndef LAMP_SVD_H
#define LAMP_SVD_H

#include <stdint.h>

#include "lamp/export.h"
#include "lamp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lamp_svd_sketch {
  LAMP_SVD_SKETCH_AUTO = 0,     /* lamp_svd_sketch_auto chooses from the shape */
  LAMP_SVD_SKETCH_GAUSSIAN = 1, /* Philox4x32-10 + Box-Muller test matrix, applied by GEMM */
  LAMP_SVD_SKETCH_SRFT = 2,     /* random signs, real FFT of each row (clFFT), sampled columns */
} lamp_svd_sketch;

typedef struct lamp_svd_options {
  size_t rank;          /* k, 1 <= k <= min(m, n) */
  size_t oversample;    /* p, default 10; k + p is clipped to min(m, n) */
  unsigned power_iters; /* q, default 2, at most 64; each costs two products with A */
  lamp_svd_sketch sketch;
  uint64_t seed;        /* the random test matrix depends on this only */
} lamp_svd_options;

/* Defaults for rank k: p = 10, q = 2, automatic sketch, seed 0. */
LAMP_API void lamp_svd_options_init(lamp_svd_options *options, size_t rank);

/* The sketch LAMP_SVD_SKETCH_AUTO stands for, for A of m x n and rank k: at present Gaussian for
 * every shape. The sketch is one of 2q + 2 products with A, so with the default q = 2 the SRFT
 * saves at most a sixth of the GEMM work, and in lamp's benchmark (bench/README-svd.md) it was
 * not reliably faster even at q = 0; the GEMM is the best-tuned kernel on most devices, and the
 * SRFT costs an extra m x (N + 2) buffer and clFFT's process-wide state. Ask for
 * LAMP_SVD_SKETCH_SRFT explicitly where an FFT is known to be cheaper (large n, q = 0). */
LAMP_API lamp_svd_sketch lamp_svd_sketch_auto(size_t m, size_t n, size_t rank);

/* A (m x n, f32, row-major: ne = {n, m}, any row stride; never modified) ~ U diag(S) Vt with
 * U (m x k, ne = {k, m}), S (k, descending, non-negative), Vt (k x n, ne = {n, k}), columns of U
 * and rows of Vt orthonormal. The caller creates U, S and Vt with those shapes (any row stride,
 * and they must not overlap A). Runs asynchronously on the context's queue: the outputs are
 * ready once queued work is done (lamp_context_finish, or a download).
 *
 * Same seed, options and device: the same bits. Different seeds: different test matrices.
 *
 * Requests that cannot be met:
 *  - k == 0 or k > min(m, n): LAMP_ERR_INVALID_ARGUMENT; k + p > min(m, n): p is reduced so that
 *    l = min(m, n) (the sketch then spans everything and the result is exact up to rounding);
 *  - a NaN or infinite entry in A: LAMP_ERR_NUMERIC, outputs untouched;
 *  - A all zeros (or whose largest entry is subnormal, which devices may flush to zero): S = 0
 *    and U, Vt are still orthonormal (some orthonormal basis, deterministic for the seed);
 *  - rank-deficient A: the singular values past the rank come out at rounding level and their
 *    vectors complete the orthonormal bases;
 *  - shapes of U, S, Vt that differ from the above: LAMP_ERR_SHAPE naming the tensor. */
LAMP_API lamp_status lamp_svd_randomized(lamp_context *ctx, const lamp_tensor *a,
                                         const lamp_svd_options *options, lamp_tensor *u,
                                         lamp_tensor *s, lamp_tensor *vt);

#ifdef __cplusplus
}
#endif

#endif
