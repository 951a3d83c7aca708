/* Plain-C references and helpers shared by the tests. Independent of lamp's device code. */
#ifndef LAMP_TEST_REF_H
#define LAMP_TEST_REF_H

#include <stddef.h>
#include <stdint.h>

/* Deterministic uniform values in [lo, hi) from a 64-bit seed (splitmix64). */
void ref_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi);

/* C (m x n, row stride ldc) = alpha op(A) op(B) + beta C in double, row-major, where
 * op(A) is m x k and op(B) is k x n; lda and ldb are the stored row strides. */
void ref_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha,
              const float *a, size_t lda, const float *b, size_t ldb, double beta, float *c,
              size_t ldc);

/* max_i |x_i - y_i| / max(max_i |y_i|, tiny): error normalised by the reference's scale. */
double ref_max_rel_error(const float *x, const float *y, size_t n);

/* A sequence longer than a model's sliding window and transformers' logits at every position
 * (tests/data/arch/<name>/window.txt, written by tests/gen_arch_models.py --window). */
typedef struct ref_window {
  size_t window, tokens, vocab;
  int32_t *ids;  /* tokens */
  float *logits; /* tokens x vocab */
} ref_window;

/* Reads `path` into w; 0 on success, -1 (w empty) on a missing or malformed file. */
int ref_window_read(const char *path, ref_window *w);
void ref_window_free(ref_window *w);

#endif
