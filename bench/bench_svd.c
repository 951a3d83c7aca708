/* Rank-64 randomized SVD through lamp (both sketches, q = 0, 1, 2) against LAPACK's full sgesdd
 * (OpenBLAS) on the same matrix, for 4096 x 4096, 8192 x 1024 and the LAMP initialisation size
 * 100 x 576. The matrices have a known spectrum: A = X diag(sigma) Y^T with X, Y orthonormal
 * (QR of Gaussian matrices in OpenBLAS), sigma_i = 1 / (i + 1) for i < r = min(m, n, 1024), so
 * the error of the top 64 singular values is measured against the exact ones for both. Each lamp
 * configuration runs once untimed (kernel builds, CLBlast's first-use compilation), then the best
 * of 3 timed runs is reported; sgesdd runs once. The share of device time in GEMM, orthonormalisation (QR) and the
 * small SVD comes from lamp's profiler. The measuring code is in bench_svd_lib.c.
 * Usage: bench_svd [--quick]   (--quick: only 100 x 576) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <clFFT.h>

#include "bench_common.h"

int main(int argc, char **argv) {
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  static const int sizes[3][2] = {{100, 576}, {8192, 1024}, {4096, 4096}};
  lamp_context_options copt;
  lamp_context_options_init(&copt);
  copt.profile = 1;
  char err[1024];
  lamp_context *ctx = NULL;
  if (lamp_context_create(&copt, &ctx, err, sizeof(err)) != LAMP_OK) {
    fprintf(stderr, "bench_svd: %s\n", err);
    return 1;
  }
  printf("device: %s (%s), OpenBLAS threads: %d\n", lamp_context_device(ctx)->name,
         lamp_context_device(ctx)->platform_name, openblas_get_num_threads());
  printf("rank k = %d, oversampling p = 10, spectrum sigma_i = 1/(i+1) for i < min(m, n, 1024)\n\n",
         BENCH_SVD_RANK);
  printf("| m x n | method | q | time (s) | sgesdd / this | max rel. error top 16 / top %d | "
         "GEMM | QR | small SVD | other |\n|---|---|---|---|---|---|---|---|---|---|\n",
         BENCH_SVD_RANK);
  for (int c = 0; c < (quick ? 1 : 3); c++) {
    int m = sizes[c][0], n = sizes[c][1], mn = m < n ? m : n;
    bench_svd_problem p;
    bench_svd_problem_init(&p, ctx, m, n);
    float *s_ref = bench_malloc((size_t)mn * sizeof(float)), s[BENCH_SVD_RANK];
    double t_ref = bench_svd_lapack(&p, s_ref);
    printf("| %d x %d | LAPACK sgesdd (full, thin U, Vt) | - | %.3f | 1.0 | %.1e / %.1e | | | | |\n", m,
           n, t_ref, bench_svd_top_error(s_ref, p.sigma, 16),
           bench_svd_top_error(s_ref, p.sigma, BENCH_SVD_RANK));
    fflush(stdout);
    for (int sk = 0; sk < 2; sk++)
      for (unsigned q = 0; q <= 2; q++) {
        bench_svd_shares sh = {0, 0, 0, 0, 0};
        lamp_svd_sketch sketch = sk ? LAMP_SVD_SKETCH_SRFT : LAMP_SVD_SKETCH_GAUSSIAN;
        double t = bench_svd_lamp(ctx, &p, sketch, q, s, &sh);
        double tot = sh.total_ms > 0 ? sh.total_ms : 1;
        printf("| %d x %d | lamp %s | %u | %.3f | %.1f | %.1e / %.1e | %.0f%% | %.0f%% | %.0f%% | "
               "%.0f%% |\n", m, n, sk ? "SRFT" : "Gaussian", q, t, t_ref / t,
               bench_svd_top_error(s, p.sigma, 16), bench_svd_top_error(s, p.sigma, BENCH_SVD_RANK),
               100 * sh.gemm / tot, 100 * sh.qr / tot, 100 * sh.small / tot, 100 * sh.other / tot);
        fflush(stdout);
      }
    bench_svd_problem_release(&p);
    free(s_ref);
  }
  lamp_context_release(ctx);
  /* this program is the host application: it may end clFFT's process-wide state */
  clfftTeardown();
  return 0;
}
