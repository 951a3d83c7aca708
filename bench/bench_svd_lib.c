/* Randomized SVD through lamp against LAPACK's full sgesdd (OpenBLAS) on matrices with a known
 * spectrum, so that both are measured against the exact singular values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "bench_common.h"

/* LAPACK from OpenBLAS, Fortran interface (Debian ships no LAPACKE header for OpenBLAS). */
void sgesdd_(const char *jobz, const int *m, const int *n, float *a, const int *lda, float *s,
             float *u, const int *ldu, float *vt, const int *ldvt, float *work, const int *lwork,
             int *iwork, int *info);
void sgeqrf_(const int *m, const int *n, float *a, const int *lda, float *tau, float *work,
             const int *lwork, int *info);
void sorgqr_(const int *m, const int *n, const int *k, float *a, const int *lda,
             const float *tau, float *work, const int *lwork, int *info);

static uint64_t bench_splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* rows x cols (column-major, rows >= cols) with orthonormal columns. */
static float *bench_orthonormal(int rows, int cols, uint64_t seed) {
  float *q = bench_malloc((size_t)rows * cols * sizeof(float));
  float *tau = bench_malloc((size_t)cols * sizeof(float));
  uint64_t s = seed;
  for (size_t i = 0; i < (size_t)rows * cols; i++) {
    double u1 = ((double)(bench_splitmix(&s) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(bench_splitmix(&s) >> 11) / 9007199254740992.0;
    q[i] = (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
  }
  int info = 0, lwork = -1;
  float wq = 0;
  sgeqrf_(&rows, &cols, q, &rows, tau, &wq, &lwork, &info);
  lwork = (int)wq;
  float *work = bench_malloc((size_t)lwork * sizeof(float));
  sgeqrf_(&rows, &cols, q, &rows, tau, work, &lwork, &info);
  if (info == 0) sorgqr_(&rows, &cols, &cols, q, &rows, tau, work, &lwork, &info);
  if (info != 0) {
    fprintf(stderr, "bench: QR failed (info %d)\n", info);
    exit(1);
  }
  free(work);
  free(tau);
  return q;
}

void bench_svd_problem_init(bench_svd_problem *p, lamp_context *ctx, int m, int n) {
  int mn = m < n ? m : n, r = mn < 1024 ? mn : 1024;
  p->m = m;
  p->n = n;
  p->sigma = bench_malloc((size_t)mn * sizeof(double));
  for (int i = 0; i < mn; i++) p->sigma[i] = i < r ? 1.0 / (i + 1) : 0.0;
  float *x = bench_orthonormal(m, r, 1), *y = bench_orthonormal(n, r, 2);
  for (int t = 0; t < r; t++)
    for (int i = 0; i < m; i++) x[(size_t)t * m + i] *= (float)p->sigma[t];
  p->a = bench_malloc((size_t)m * n * sizeof(float));
  /* row-major A (m x n) = column-major A^T (n x m) = Y (n x r) * (X diag)^T */
  cblas_sgemm(CblasColMajor, CblasNoTrans, CblasTrans, n, m, r, 1.0f, y, n, x, m, 0.0f, p->a, n);
  free(x);
  free(y);
  size_t ne[2] = {(size_t)n, (size_t)m};
  BENCH_CHECK(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &p->ta));
  BENCH_CHECK(ctx, lamp_tensor_upload(ctx, &p->ta, p->a, (size_t)m * n * sizeof(float)));
}

void bench_svd_problem_release(bench_svd_problem *p) {
  lamp_tensor_release(&p->ta);
  free(p->sigma);
  free(p->a);
}

double bench_svd_top_error(const float *s, const double *sigma, int count) {
  double worst = 0.0;
  for (int i = 0; i < count; i++) worst = fmax(worst, fabs(s[i] - sigma[i]) / sigma[i]);
  return worst;
}

double bench_svd_lapack(const bench_svd_problem *p, float *s) {
  /* row-major A is column-major A^T (n x m), with the same singular values */
  int m = p->m, n = p->n, rows = n, cols = m, mn = m < n ? m : n, info = 0, lwork = -1;
  float *at = bench_malloc((size_t)m * n * sizeof(float));
  float *u = bench_malloc((size_t)rows * mn * sizeof(float));
  float *vt = bench_malloc((size_t)mn * cols * sizeof(float));
  int *iwork = bench_malloc(8 * (size_t)mn * sizeof(int));
  memcpy(at, p->a, (size_t)m * n * sizeof(float));
  float wq = 0;
  sgesdd_("S", &rows, &cols, at, &rows, s, u, &rows, vt, &mn, &wq, &lwork, iwork, &info);
  lwork = (int)wq;
  float *work = bench_malloc((size_t)lwork * sizeof(float));
  double t0 = bench_now();
  sgesdd_("S", &rows, &cols, at, &rows, s, u, &rows, vt, &mn, work, &lwork, iwork, &info);
  double dt = bench_now() - t0;
  if (info != 0) {
    fprintf(stderr, "bench: sgesdd failed (info %d)\n", info);
    exit(1);
  }
  free(at);
  free(u);
  free(vt);
  free(iwork);
  free(work);
  return dt;
}

static int bench_starts(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bench_svd_shares bench_svd_read_shares(lamp_context *ctx) {
  lamp_profile_entry e[64];
  size_t count = 0;
  BENCH_CHECK(ctx, lamp_profile_read(ctx, e, 64, &count));
  bench_svd_shares sh = {0, 0, 0, 0, 0};
  for (size_t i = 0; i < count && i < 64; i++) {
    double ms = e[i].total_ms;
    sh.total_ms += ms;
    if (strcmp(e[i].name, "sgemm") == 0)
      sh.gemm += ms;
    else if (bench_starts(e[i].name, "svd_qr"))
      sh.qr += ms;
    else if (strcmp(e[i].name, "svd_jacobi") == 0 || strcmp(e[i].name, "svd_small_orth") == 0)
      sh.small += ms;
    else
      sh.other += ms;
  }
  return sh;
}

double bench_svd_lamp(lamp_context *ctx, const bench_svd_problem *p, lamp_svd_sketch sketch,
                      unsigned q, float *s_host, bench_svd_shares *sh) {
  lamp_svd_options opt;
  lamp_svd_options_init(&opt, BENCH_SVD_RANK);
  opt.sketch = sketch;
  opt.power_iters = q;
  opt.seed = 1;
  lamp_tensor u, s, vt;
  size_t k = BENCH_SVD_RANK, ne_u[2] = {k, (size_t)p->m}, ne_vt[2] = {(size_t)p->n, k};
  BENCH_CHECK(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_u, &u));
  BENCH_CHECK(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &k, &s));
  BENCH_CHECK(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_vt, &vt));
  /* untimed: kernel builds and CLBlast's first-use compilation */
  BENCH_CHECK(ctx, lamp_svd_randomized(ctx, &p->ta, &opt, &u, &s, &vt));
  BENCH_CHECK(ctx, lamp_context_finish(ctx));
  double best = INFINITY;
  for (int rep = 0; rep < BENCH_SVD_REPEATS; rep++) {
    BENCH_CHECK(ctx, lamp_profile_reset(ctx));
    double t0 = bench_now();
    BENCH_CHECK(ctx, lamp_svd_randomized(ctx, &p->ta, &opt, &u, &s, &vt));
    BENCH_CHECK(ctx, lamp_context_finish(ctx));
    double dt = bench_now() - t0;
    if (dt < best) {
      best = dt;
      *sh = bench_svd_read_shares(ctx);
    }
  }
  BENCH_CHECK(ctx, lamp_tensor_download(ctx, &s, s_host, k * sizeof(float)));
  lamp_tensor_release(&u);
  lamp_tensor_release(&s);
  lamp_tensor_release(&vt);
  return best;
}
