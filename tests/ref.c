#include "ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void ref_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi) {
  uint64_t s = seed;
  for (size_t i = 0; i < n; i++) {
    double u = (double)(splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0);
    x[i] = (float)(lo + (hi - lo) * u);
  }
}

void ref_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha,
              const float *a, size_t lda, const float *b, size_t ldb, double beta, float *c,
              size_t ldc) {
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < n; j++) {
      double acc = 0.0;
      for (size_t p = 0; p < k; p++) {
        double av = trans_a ? a[p * lda + i] : a[i * lda + p];
        double bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        acc += av * bv;
      }
      /* beta 0 reads no C, as in BLAS: C may be uninitialised (0 x NaN is NaN) */
      c[i * ldc + j] = (float)(alpha * acc + (beta != 0.0 ? beta * (double)c[i * ldc + j] : 0.0));
    }
}

double ref_max_rel_error(const float *x, const float *y, size_t n) {
  double scale = 1e-30, err = 0.0;
  for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)y[i]));
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)x[i] - (double)y[i]);
    if (isnan(e)) return NAN; /* a later finite error must not hide it */
    if (e > err) err = e;
  }
  return err / scale;
}

void ref_window_free(ref_window *w) {
  free(w->ids);
  free(w->logits);
  w->ids = NULL;
  w->logits = NULL;
}

int ref_window_read(const char *path, ref_window *w) {
  *w = (ref_window){0, 0, 0, NULL, NULL};
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t t2 = 0;
  int ok = fscanf(f, " window %zu tokens %zu", &w->window, &w->tokens) == 2 && w->tokens &&
           w->tokens < 65536 && (w->ids = malloc(w->tokens * sizeof(int32_t)));
  for (size_t t = 0; ok && t < w->tokens; t++) ok = fscanf(f, "%d", &w->ids[t]) == 1;
  ok = ok && fscanf(f, " logits %zu %zu", &t2, &w->vocab) == 2 && t2 == w->tokens &&
       w->vocab && w->vocab < 1u << 20 &&
       (w->logits = malloc(w->tokens * w->vocab * sizeof(float)));
  for (size_t k = 0; ok && k < w->tokens * w->vocab; k++) ok = fscanf(f, "%f", &w->logits[k]) == 1;
  fclose(f);
  if (!ok) ref_window_free(w);
  return ok ? 0 : -1;
}
