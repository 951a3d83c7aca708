/* Rank-64 randomized SVD through lamp (both sketches, q = 0, 1, 2) against LAPACK's full sgesdd
 * (OpenBLAS) on the same matrix, for 4096 x 4096, 8192 x 1024 and the LAMP initialisation size
 * 100 x 576. The matrices have a known spectrum: A = X diag(sigma) Y^T with X, Y orthonormal
 * (QR of Gaussian matrices in OpenBLAS), sigma_i = 1 / (i + 1) for i < r = min(m, n, 1024), so
 * the error of the top 64 singular values is measured against the exact ones for both. Each lamp
 * configuration runs once untimed (kernel builds, CLBlast's first-use compilation), then the best
 * of 3 timed runs is reported; sgesdd runs once. The share of device time in GEMM, orthonormalisation (QR) and the
 * small SVD comes from lamp's profiler.
 * Usage: bench_svd [--quick]   (--quick: only 100 x 576) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#include <clFFT.h>

#include "lamp/lamp.h"

/* LAPACK from OpenBLAS, Fortran interface (Debian ships no LAPACKE header for OpenBLAS). */
void sgesdd_(const char *jobz, const int *m, const int *n, float *a, const int *lda, float *s,
             float *u, const int *ldu, float *vt, const int *ldvt, float *work, const int *lwork,
             int *iwork, int *info);
void sgeqrf_(const int *m, const int *n, float *a, const int *lda, float *tau, float *work,
             const int *lwork, int *info);
void sorgqr_(const int *m, const int *n, const int *k, float *a, const int *lda,
             const float *tau, float *work, const int *lwork, int *info);

#define RANK 64
/* Timed runs of each lamp configuration; the best counts (the machine is shared). */
#define REPEATS 3

#define CHECK(ctx, call)                                                                    \
  do {                                                                                      \
    lamp_status st_ = (call);                                                               \
    if (st_ != LAMP_OK) {                                                                   \
      fprintf(stderr, "bench_svd: %s -> %s: %s\n", #call, lamp_status_name(st_),            \
              lamp_context_error(ctx));                                                     \
      exit(1);                                                                              \
    }                                                                                       \
  } while (0)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void *xmalloc(size_t bytes) {
  void *p = malloc(bytes);
  if (!p) {
    fprintf(stderr, "bench_svd: out of memory (%zu bytes)\n", bytes);
    exit(1);
  }
  return p;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* rows x cols (column-major, rows >= cols) with orthonormal columns. */
static float *orthonormal(int rows, int cols, uint64_t seed) {
  float *q = xmalloc((size_t)rows * cols * sizeof(float)), *tau = xmalloc(cols * sizeof(float));
  uint64_t s = seed;
  for (size_t i = 0; i < (size_t)rows * cols; i++) {
    double u1 = ((double)(splitmix(&s) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(splitmix(&s) >> 11) / 9007199254740992.0;
    q[i] = (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
  }
  int info = 0, lwork = -1;
  float wq = 0;
  sgeqrf_(&rows, &cols, q, &rows, tau, &wq, &lwork, &info);
  lwork = (int)wq;
  float *work = xmalloc((size_t)lwork * sizeof(float));
  sgeqrf_(&rows, &cols, q, &rows, tau, work, &lwork, &info);
  if (info == 0) sorgqr_(&rows, &cols, &cols, q, &rows, tau, work, &lwork, &info);
  if (info != 0) {
    fprintf(stderr, "bench_svd: QR failed (info %d)\n", info);
    exit(1);
  }
  free(work);
  free(tau);
  return q;
}

/* Row-major m x n A = X diag(sigma) Y^T; sigma gets min(m, n) values (zeros past r). */
static float *make_matrix(int m, int n, double *sigma) {
  int mn = m < n ? m : n, r = mn < 1024 ? mn : 1024;
  for (int i = 0; i < mn; i++) sigma[i] = i < r ? 1.0 / (i + 1) : 0.0;
  float *x = orthonormal(m, r, 1), *y = orthonormal(n, r, 2);
  for (int t = 0; t < r; t++)
    for (int i = 0; i < m; i++) x[(size_t)t * m + i] *= (float)sigma[t];
  float *a = xmalloc((size_t)m * n * sizeof(float));
  /* row-major A (m x n) = column-major A^T (n x m) = Y (n x r) * (X diag)^T */
  cblas_sgemm(CblasColMajor, CblasNoTrans, CblasTrans, n, m, r, 1.0f, y, n, x, m, 0.0f, a, n);
  free(x);
  free(y);
  return a;
}

static double top_error(const float *s, const double *sigma, int count) {
  double worst = 0.0;
  for (int i = 0; i < count; i++) worst = fmax(worst, fabs(s[i] - sigma[i]) / sigma[i]);
  return worst;
}

/* Full SVD by sgesdd (thin U and Vt): time and singular values. A is copied, not destroyed. */
static double run_sgesdd(const float *a, int m, int n, float *s) {
  /* row-major A is column-major A^T (n x m), with the same singular values */
  int rows = n, cols = m, mn = m < n ? m : n, info = 0, lwork = -1;
  float *at = xmalloc((size_t)m * n * sizeof(float));
  float *u = xmalloc((size_t)rows * mn * sizeof(float)), *vt = xmalloc((size_t)mn * cols * sizeof(float));
  int *iwork = xmalloc(8 * (size_t)mn * sizeof(int));
  memcpy(at, a, (size_t)m * n * sizeof(float));
  float wq = 0;
  sgesdd_("S", &rows, &cols, at, &rows, s, u, &rows, vt, &mn, &wq, &lwork, iwork, &info);
  lwork = (int)wq;
  float *work = xmalloc((size_t)lwork * sizeof(float));
  double t0 = now();
  sgesdd_("S", &rows, &cols, at, &rows, s, u, &rows, vt, &mn, work, &lwork, iwork, &info);
  double dt = now() - t0;
  if (info != 0) {
    fprintf(stderr, "bench_svd: sgesdd failed (info %d)\n", info);
    exit(1);
  }
  free(at);
  free(u);
  free(vt);
  free(iwork);
  free(work);
  return dt;
}

typedef struct shares {
  double gemm, qr, small, other, total_ms;
} shares;

static int starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static shares read_shares(lamp_context *ctx) {
  lamp_profile_entry e[64];
  size_t count = 0;
  CHECK(ctx, lamp_profile_read(ctx, e, 64, &count));
  shares sh = {0, 0, 0, 0, 0};
  for (size_t i = 0; i < count && i < 64; i++) {
    double ms = e[i].total_ms;
    sh.total_ms += ms;
    if (strcmp(e[i].name, "sgemm") == 0)
      sh.gemm += ms;
    else if (starts(e[i].name, "svd_qr"))
      sh.qr += ms;
    else if (strcmp(e[i].name, "svd_jacobi") == 0 || strcmp(e[i].name, "svd_small_orth") == 0)
      sh.small += ms;
    else
      sh.other += ms;
  }
  return sh;
}

static double run_lamp(lamp_context *ctx, const lamp_tensor *ta, int m, int n,
                       lamp_svd_sketch sketch, unsigned q, float *s_host, shares *sh) {
  lamp_svd_options opt;
  lamp_svd_options_init(&opt, RANK);
  opt.sketch = sketch;
  opt.power_iters = q;
  opt.seed = 1;
  lamp_tensor u, s, vt;
  size_t k = RANK, ne_u[2] = {k, (size_t)m}, ne_vt[2] = {(size_t)n, k};
  CHECK(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_u, &u));
  CHECK(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &k, &s));
  CHECK(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_vt, &vt));
  CHECK(ctx, lamp_svd_randomized(ctx, ta, &opt, &u, &s, &vt)); /* builds, first-use compiles */
  CHECK(ctx, lamp_context_finish(ctx));
  double best = INFINITY;
  for (int rep = 0; rep < REPEATS; rep++) {
    CHECK(ctx, lamp_profile_reset(ctx));
    double t0 = now();
    CHECK(ctx, lamp_svd_randomized(ctx, ta, &opt, &u, &s, &vt));
    CHECK(ctx, lamp_context_finish(ctx));
    double dt = now() - t0;
    if (dt < best) {
      best = dt;
      *sh = read_shares(ctx);
    }
  }
  CHECK(ctx, lamp_tensor_download(ctx, &s, s_host, k * sizeof(float)));
  lamp_tensor_release(&u);
  lamp_tensor_release(&s);
  lamp_tensor_release(&vt);
  return best;
}

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
         RANK);
  printf("| m x n | method | q | time (s) | sgesdd / this | max rel. error top 16 / top %d | "
         "GEMM | QR | small SVD | other |\n|---|---|---|---|---|---|---|---|---|---|\n", RANK);
  for (int c = 0; c < (quick ? 1 : 3); c++) {
    int m = sizes[c][0], n = sizes[c][1], mn = m < n ? m : n;
    double *sigma = xmalloc(mn * sizeof(double));
    float *a = make_matrix(m, n, sigma);
    float *s_ref = xmalloc(mn * sizeof(float)), s[RANK];
    double t_ref = run_sgesdd(a, m, n, s_ref);
    printf("| %d x %d | LAPACK sgesdd (full, thin U, Vt) | - | %.3f | 1.0 | %.1e / %.1e | | | | |\n", m,
           n, t_ref, top_error(s_ref, sigma, 16), top_error(s_ref, sigma, RANK));
    fflush(stdout);
    lamp_tensor ta;
    size_t ne[2] = {(size_t)n, (size_t)m};
    CHECK(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &ta));
    CHECK(ctx, lamp_tensor_upload(ctx, &ta, a, (size_t)m * n * sizeof(float)));
    for (int sk = 0; sk < 2; sk++)
      for (unsigned q = 0; q <= 2; q++) {
        shares sh = {0, 0, 0, 0, 0};
        lamp_svd_sketch sketch = sk ? LAMP_SVD_SKETCH_SRFT : LAMP_SVD_SKETCH_GAUSSIAN;
        double t = run_lamp(ctx, &ta, m, n, sketch, q, s, &sh);
        double tot = sh.total_ms > 0 ? sh.total_ms : 1;
        printf("| %d x %d | lamp %s | %u | %.3f | %.1f | %.1e / %.1e | %.0f%% | %.0f%% | %.0f%% | "
               "%.0f%% |\n", m, n, sk ? "SRFT" : "Gaussian", q, t, t_ref / t,
               top_error(s, sigma, 16), top_error(s, sigma, RANK),
               100 * sh.gemm / tot, 100 * sh.qr / tot, 100 * sh.small / tot, 100 * sh.other / tot);
        fflush(stdout);
      }
    lamp_tensor_release(&ta);
    free(sigma);
    free(a);
    free(s_ref);
  }
  lamp_context_release(ctx);
  /* this program is the host application: it may end clFFT's process-wide state */
  clfftTeardown();
  return 0;
}
