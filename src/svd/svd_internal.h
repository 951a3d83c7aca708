/* Internals of the randomized SVD, shared by src/svd*.c and the SVD kernel tests. Not installed.
 *
 * Matrices here are f32 row-major tensors: an R x C matrix has ne = {C, R}. l = k + p is the
 * sketch width (rank plus oversampling, clipped to min(m, n)). */
#ifndef LAMP_SVD_INTERNAL_H
#define LAMP_SVD_INTERNAL_H

#include <stdint.h>

#include "runtime/internal.h"
#include "lamp/svd.h"

/* Philox4x32-10 (Salmon et al. 2011) on the host: the same generator as kernels/philox_fill.cl. */
void lamp__philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Streams: independent sequences drawn from one seed. */
enum {
  LAMP__SVD_STREAM_GAUSS = 0, /* the Gaussian test matrix */
  LAMP__SVD_STREAM_SIGNS = 1, /* the SRFT's random signs */
  LAMP__SVD_STREAM_PICK = 2,  /* the SRFT's choice of frequency columns (host) */
};

/* Distributions of philox_fill. */
enum { LAMP__PHILOX_NORMAL = 0, LAMP__PHILOX_SIGN = 1 };

/* Fills the matrix t (rows x cols, any row stride) with values that depend only on (seed,
 * stream, row, column): standard normal by Box-Muller, or +-1. */
lamp_status lamp__svd_philox_fill(lamp_context *ctx, lamp_tensor *t, uint64_t seed,
                                  uint32_t stream, int dist);

/* Largest |a_ij| of the m x n matrix a, and whether every entry is finite. Reads the partial
 * results of the reduction back to the host (a few hundred bytes). */
lamp_status lamp__svd_absmax(lamp_context *ctx, const lamp_tensor *a, float *amax, int *finite);

/* SRFT: the FFT length used for n columns (smallest 2^a 3^b 5^c >= max(n, 2) with a >= 1) and
 * the l real columns chosen, as offsets into a row of clFFT's interleaved half spectrum
 * (2 * bin for a real part, 2 * bin + 1 for an imaginary part) and their scale factors. */
size_t lamp__svd_fft_length(size_t n);
lamp_status lamp__svd_srft_columns(lamp_context *ctx, uint64_t seed, size_t fft_n, size_t l,
                                   int32_t *offsets, float *scales);

/* Y (m x l) = alpha * A D F S: random signs D, a real FFT of each zero-padded row, the chosen
 * columns S scaled. `signs` holds at least n floats of scratch. */
lamp_status lamp__svd_srft(lamp_context *ctx, const lamp_tensor *a, float alpha, uint64_t seed,
                           lamp_tensor *signs, lamp_tensor *y);

/* Scratch for orthonormalisation and the small SVD, for sketch width l and up to `rows` rows. */
typedef struct lamp__svd_qr_ws {
  size_t rows, l;
  lamp_tensor t;     /* (rows, l) first CholeskyQR pass */
  lamp_tensor small; /* 6 (l, l) blocks: G, R1, R1^-1, R2, R2^-1, R2 R1; then l taus, 4 flags */
} lamp__svd_qr_ws;

lamp_status lamp__svd_qr_ws_create(lamp_context *ctx, size_t rows, size_t l, lamp__svd_qr_ws *ws);
void lamp__svd_qr_ws_release(lamp__svd_qr_ws *ws);

typedef enum lamp__svd_qr_method {
  LAMP__SVD_QR_AUTO = 0,        /* CholeskyQR2, Householder when it cannot be trusted */
  LAMP__SVD_QR_HOUSEHOLDER = 1, /* Householder only (tests) */
} lamp__svd_qr_method;

/* Q (rows x l) = an orthonormal basis holding the columns of X (rows x l, rows >= l), which is
 * overwritten. When r is not NULL it becomes a view of an upper triangular R (l x l; entries
 * below the diagonal are not part of it) with X = Q R; the view lives in X or in ws. `used`
 * (may be NULL) reports the method that produced Q. */
lamp_status lamp__svd_orth(lamp_context *ctx, lamp__svd_qr_ws *ws, lamp__svd_qr_method method,
                           lamp_tensor *x, lamp_tensor *q, lamp_tensor *r,
                           lamp__svd_qr_method *used);

/* Work buffer of the small SVD: 4 (l, l) blocks and 3 vectors of l. */
size_t lamp__svd_small_floats(size_t l);

/* SVD of M = R^T for the upper triangle of r (l x l) by one-sided Jacobi in one work-group
 * (svd_jacobi), then both sets of vectors completed to orthonormal bases (svd_small_orth).
 * On return, inside `work`: rows 0..l-1 of the block at lamp__svd_small_left are the left
 * singular vectors of M, those at lamp__svd_small_right its right singular vectors, both in
 * descending order of the singular values, which go (times `scale`) into the first k entries of
 * s. The vectors are orthonormal to working precision even where singular values vanish. */
lamp_status lamp__svd_small(lamp_context *ctx, const lamp_tensor *r, size_t l, lamp_tensor *work,
                            float scale, lamp_tensor *s, size_t k);
size_t lamp__svd_small_left(size_t l);  /* float offset of the left vectors in `work` */
size_t lamp__svd_small_right(size_t l); /* float offset of the right vectors */
size_t lamp__svd_small_sigma(size_t l); /* float offset of the l sorted singular values */

#endif
