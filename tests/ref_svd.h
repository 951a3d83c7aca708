/* Plain-C references for the randomized SVD tests, in double, independent of lamp's code. */
#ifndef LAMP_TEST_REF_SVD_H
#define LAMP_TEST_REF_SVD_H

#include <stddef.h>
#include <stdint.h>

/* Philox4x32-10 written from the paper (Salmon et al., SC11), checked against Random123's
 * known-answer vectors in the tests. */
void ref_svd_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The value lamp's test matrices hold at (row, col) for (seed, stream): dist 0 standard normal
 * (Box-Muller in double on the generator's words), dist 1 a sign. */
double ref_svd_philox_value(uint64_t seed, uint32_t stream, uint64_t row, uint64_t col, int dist);

/* `count` orthonormal vectors of length `len`, stored one after another (count x len,
 * row-major), from a Gaussian matrix (splitmix64 + Box-Muller) by modified Gram-Schmidt twice. */
void ref_svd_orthonormal_rows(size_t count, size_t len, uint64_t seed, double *q);

/* A (m x n, row-major, row stride lda) = X diag(sigma) Y^T, X (m x r) and Y (n x r) orthonormal
 * from seeds seed and seed + 1, rounded to float. r <= min(m, n). */
void ref_svd_matrix_with_spectrum(size_t m, size_t n, size_t r, const double *sigma, uint64_t seed,
                              float *a, size_t lda);

/* Singular values (descending, min(m, n) of them) of the m x n row-major double matrix a by
 * one-sided Jacobi in double; a is overwritten. */
void ref_svd_singular_values(size_t m, size_t n, double *a, double *sigma);

/* max |V V^T - I| over the `count` vectors of length `len`, vector i starting at
 * v + i * step and element j at + j * stride (floats). */
double ref_svd_orthogonality(const float *v, size_t count, size_t len, size_t step, size_t stride);

/* ||A - U diag(s) Vt||_F for A (m x n), U (m x k), Vt (k x n), all row-major dense. */
double ref_svd_lowrank_error(size_t m, size_t n, size_t k, const float *a, const float *u,
                         const float *s, const float *vt);

/* The SRFT sketch lamp computes, evaluated by a direct DFT in double: Y (m x l) for the dense
 * m x n matrix a, times alpha, with transform length fft_n. */
void ref_svd_srft(size_t m, size_t n, size_t l, size_t fft_n, const float *a, double alpha,
              uint64_t seed, double *y);

#endif
