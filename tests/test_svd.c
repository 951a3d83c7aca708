/* lamp_svd_randomized against matrices with a known spectrum, A = X diag(sigma) Y^T with X, Y
 * orthonormalised in double on the host, for both sketches: accuracy of the singular values and
 * of the rank-k approximation, orthonormality, power iterations, rank deficiency, zeros, a
 * single column, m < n, determinism, and the errors and clipping the header documents. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <clFFT.h>

#include "fixture.h"
#include "ref.h"
#include "ref_svd.h"

static const lamp_svd_sketch sketches[2] = {LAMP_SVD_SKETCH_GAUSSIAN, LAMP_SVD_SKETCH_SRFT};
static const char *const sketch_names[2] = {"Gaussian", "SRFT"};

/* One decomposition brought back to the host. */
typedef struct svd_result {
  size_t m, n, k;
  float *u, *s, *vt; /* (m, k), (k), (k, n) */
} svd_result;

static void svd_result_free(svd_result *r) {
  free(r->u);
  free(r->s);
  free(r->vt);
  memset(r, 0, sizeof(*r));
}

static lamp_tensor upload_matrix(lamp_context *ctx, const float *a, size_t m, size_t n) {
  lamp_tensor t;
  size_t ne[2] = {n, m};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &t));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &t, a, m * n * sizeof(float)));
  return t;
}

/* Runs the SVD of the device matrix ta (m x n) and downloads U, S, Vt. */
static svd_result run_svd(lamp_context *ctx, const lamp_tensor *ta, size_t k,
                          lamp_svd_sketch sketch, unsigned q, uint64_t seed) {
  svd_result r = {ta->ne[1], ta->ne[0], k, NULL, NULL, NULL};
  lamp_svd_options opt;
  lamp_svd_options_init(&opt, k);
  opt.sketch = sketch;
  opt.power_iters = q;
  opt.seed = seed;
  lamp_tensor u, s, vt;
  size_t ne_u[2] = {k, r.m}, ne_vt[2] = {r.n, k};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_u, &u));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &k, &s));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_vt, &vt));
  LAMP_OK_OR_FAIL(ctx, lamp_svd_randomized(ctx, ta, &opt, &u, &s, &vt));
  r.u = malloc(r.m * k * sizeof(float));
  r.s = malloc(k * sizeof(float));
  r.vt = malloc(k * r.n * sizeof(float));
  assert_true(r.u && r.s && r.vt);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &u, r.u, r.m * k * sizeof(float)));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &s, r.s, k * sizeof(float)));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &vt, r.vt, k * r.n * sizeof(float)));
  lamp_tensor_release(&u);
  lamp_tensor_release(&s);
  lamp_tensor_release(&vt);
  return r;
}

/* S descending and non-negative, U^T U = I and Vt Vt^T = I to 1e-5. */
static void check_structure(const svd_result *r, const char *what) {
  for (size_t t = 0; t < r->k; t++) {
    if (!(r->s[t] >= 0.0f)) fail_msg("%s: S[%zu] = %g is negative or NaN", what, t, r->s[t]);
    if (t > 0 && r->s[t] > r->s[t - 1])
      fail_msg("%s: S not descending at %zu (%g > %g)", what, t, r->s[t], r->s[t - 1]);
  }
  double ou = ref_svd_orthogonality(r->u, r->k, r->m, 1, r->k);
  double ov = ref_svd_orthogonality(r->vt, r->k, r->n, r->n, 1);
  if (ou > 1e-5 || ov > 1e-5)
    fail_msg("%s: max |U^T U - I| = %.3e, max |Vt Vt^T - I| = %.3e", what, ou, ov);
  print_message("  %-8s %5zu x %-5zu k=%-3zu |U^T U - I| %.1e  |Vt Vt^T - I| %.1e\n", what, r->m,
                r->n, r->k, ou, ov);
}

/* A with spectrum sigma (r values, zeros after) on the host and the device. */
typedef struct test_matrix {
  size_t m, n, r;
  double *sigma; /* min(m, n) values, zeros past r */
  float *a;
  lamp_tensor ta;
} test_matrix;

static test_matrix make_matrix(lamp_context *ctx, size_t m, size_t n, size_t r,
                               double (*spectrum)(size_t i, size_t k), size_t k, uint64_t seed) {
  test_matrix t = {m, n, r, NULL, NULL, {0}};
  size_t mn = m < n ? m : n;
  t.sigma = calloc(mn, sizeof(double));
  t.a = malloc(m * n * sizeof(float));
  assert_true(t.sigma && t.a);
  for (size_t i = 0; i < r; i++) t.sigma[i] = spectrum(i, k);
  ref_svd_matrix_with_spectrum(m, n, r, t.sigma, seed, t.a, n);
  t.ta = upload_matrix(ctx, t.a, m, n);
  return t;
}

static void free_matrix(test_matrix *t) {
  free(t->sigma);
  free(t->a);
  lamp_tensor_release(&t->ta);
}

static double optimal_error(const test_matrix *t, size_t k) {
  size_t mn = t->m < t->n ? t->m : t->n;
  double e = 0.0;
  for (size_t i = k; i < mn; i++) e += t->sigma[i] * t->sigma[i];
  return sqrt(e);
}

static double spectrum_gapped(size_t i, size_t k) {
  return i < k ? pow(0.95, (double)i) : 0.01 * pow(0.95, (double)i);
}
static double spectrum_fast(size_t i, size_t k) {
  (void)k;
  return pow(0.95, (double)i);
}
static double spectrum_slow(size_t i, size_t k) {
  (void)k;
  return 1.0 / (double)(i + 1);
}

/* (a) gapped spectrum, q = 2: each of the top k within 1e-4 relative of the truth. The largest
 * case, 2048 x 1024 with k = 64. */
static void test_gapped_spectrum(void **state) {
  lamp_context *ctx = *state;
  const size_t m = 2048, n = 1024, k = 64;
  test_matrix t = make_matrix(ctx, m, n, 256, spectrum_gapped, k, 11);
  for (int sk = 0; sk < 2; sk++) {
    svd_result r = run_svd(ctx, &t.ta, k, sketches[sk], 2, 5);
    check_structure(&r, sketch_names[sk]);
    double worst = 0.0;
    for (size_t i = 0; i < k; i++) {
      double rel = fabs(r.s[i] - t.sigma[i]) / t.sigma[i];
      if (!(rel <= 1e-4))
        fail_msg("%s: sigma[%zu] = %.8g, truth %.8g (relative error %.2e)", sketch_names[sk], i,
                 r.s[i], t.sigma[i], rel);
      worst = fmax(worst, rel);
    }
    print_message("  %-8s max relative error of the top %zu: %.2e\n", sketch_names[sk], k, worst);
    svd_result_free(&r);
  }
  free_matrix(&t);
}

/* (b), (c) smooth spectra, q = 2: ||A - U S Vt||_F <= 1.1 times the optimal rank-k error. */
static void test_smooth_spectra(void **state) {
  lamp_context *ctx = *state;
  struct {
    size_t m, n, r, k;
    double (*spectrum)(size_t, size_t);
    const char *name;
  } cases[2] = {{1000, 500, 500, 40, spectrum_fast, "0.95^i"},
                {600, 400, 400, 20, spectrum_slow, "1/(i+1)"}};
  for (int c = 0; c < 2; c++) {
    test_matrix t = make_matrix(ctx, cases[c].m, cases[c].n, cases[c].r, cases[c].spectrum,
                                cases[c].k, 20 + c);
    double opt = optimal_error(&t, cases[c].k);
    for (int sk = 0; sk < 2; sk++) {
      svd_result r = run_svd(ctx, &t.ta, cases[c].k, sketches[sk], 2, 3);
      check_structure(&r, sketch_names[sk]);
      double err = ref_svd_lowrank_error(t.m, t.n, r.k, t.a, r.u, r.s, r.vt);
      if (!(err <= 1.1 * opt))
        fail_msg("%s, spectrum %s: error %.6g > 1.1 x optimal %.6g", sketch_names[sk],
                 cases[c].name, err, opt);
      print_message("  %-8s spectrum %s: error / optimal = %.5f\n", sketch_names[sk],
                    cases[c].name, err / opt);
      svd_result_free(&r);
    }
    free_matrix(&t);
  }
}

/* Slow decay: without power iterations the approximation is measurably worse than with q = 2,
 * and q = 0 is still a valid decomposition. */
static void test_power_iterations_help(void **state) {
  lamp_context *ctx = *state;
  const size_t k = 20;
  test_matrix t = make_matrix(ctx, 600, 400, 400, spectrum_slow, k, 21);
  double opt = optimal_error(&t, k);
  for (int sk = 0; sk < 2; sk++) {
    svd_result r0 = run_svd(ctx, &t.ta, k, sketches[sk], 0, 3);
    svd_result r2 = run_svd(ctx, &t.ta, k, sketches[sk], 2, 3);
    check_structure(&r0, sketch_names[sk]);
    double e0 = ref_svd_lowrank_error(t.m, t.n, k, t.a, r0.u, r0.s, r0.vt);
    double e2 = ref_svd_lowrank_error(t.m, t.n, k, t.a, r2.u, r2.s, r2.vt);
    print_message("  %-8s error / optimal: q = 0 %.4f, q = 2 %.4f\n", sketch_names[sk], e0 / opt,
                  e2 / opt);
    if (!(e0 > 1.05 * e2))
      fail_msg("%s: q = 0 error %.6g is not measurably above q = 2 error %.6g (optimal %.6g)",
               sketch_names[sk], e0, e2, opt);
    /* and the top singular value error shrinks too */
    if (!(fabs(r0.s[k - 1] - t.sigma[k - 1]) > fabs(r2.s[k - 1] - t.sigma[k - 1])))
      fail_msg("%s: sigma_k error with q = 0 (%.3e) not above q = 2 (%.3e)", sketch_names[sk],
               fabs(r0.s[k - 1] - t.sigma[k - 1]), fabs(r2.s[k - 1] - t.sigma[k - 1]));
    svd_result_free(&r0);
    svd_result_free(&r2);
  }
  free_matrix(&t);
}

/* (d) exact rank 10 below k = 16: the 6 singular values past the rank below 1e-5 sigma_1, the
 * first 10 right, vectors still orthonormal. */
static void test_rank_below_k(void **state) {
  lamp_context *ctx = *state;
  const size_t k = 16, rank = 10;
  test_matrix t = make_matrix(ctx, 500, 300, rank, spectrum_fast, k, 31);
  for (int sk = 0; sk < 2; sk++) {
    svd_result r = run_svd(ctx, &t.ta, k, sketches[sk], 2, 1);
    check_structure(&r, sketch_names[sk]);
    for (size_t i = 0; i < rank; i++)
      if (!(fabs(r.s[i] - t.sigma[i]) <= 1e-4 * t.sigma[i]))
        fail_msg("%s: sigma[%zu] = %.8g, truth %.8g", sketch_names[sk], i, r.s[i], t.sigma[i]);
    for (size_t i = rank; i < k; i++)
      if (!(r.s[i] < 1e-5 * t.sigma[0]))
        fail_msg("%s: sigma[%zu] = %.3e past the rank, not below 1e-5 sigma_1", sketch_names[sk],
                 i, r.s[i]);
    svd_result_free(&r);
  }
  free_matrix(&t);
}

/* (e) all zeros: S = 0 exactly, U and Vt orthonormal. */
static void test_zero_matrix(void **state) {
  lamp_context *ctx = *state;
  const size_t m = 200, n = 100, k = 8;
  float *a = calloc(m * n, sizeof(float));
  lamp_tensor ta = upload_matrix(ctx, a, m, n);
  for (int sk = 0; sk < 2; sk++) {
    svd_result r = run_svd(ctx, &ta, k, sketches[sk], 2, 0);
    check_structure(&r, sketch_names[sk]);
    for (size_t i = 0; i < k; i++) assert_true(r.s[i] == 0.0f);
    svd_result_free(&r);
  }
  free(a);
  lamp_tensor_release(&ta);
}

/* (f) a single column (m x 1, k = 1): S = ||a||, U = +-a / ||a||, Vt = +-1, with the signs
 * matching. Also a single row (1 x n). */
static void test_single_column(void **state) {
  lamp_context *ctx = *state;
  const size_t len = 300;
  float *a = malloc(len * sizeof(float));
  ref_fill_uniform(a, len, 41, -3, 3);
  double norm = 0.0;
  for (size_t i = 0; i < len; i++) norm += (double)a[i] * a[i];
  norm = sqrt(norm);
  for (int row = 0; row < 2; row++) {
    lamp_tensor ta = upload_matrix(ctx, a, row ? 1 : len, row ? len : 1);
    for (int sk = 0; sk < 2; sk++) {
      svd_result r = run_svd(ctx, &ta, 1, sketches[sk], 2, 7);
      check_structure(&r, sketch_names[sk]);
      if (fabs(r.s[0] - norm) > 1e-5 * norm)
        fail_msg("%s: S = %.8g, ||a|| = %.8g", sketch_names[sk], r.s[0], norm);
      const float *vec = row ? r.vt : r.u, one = row ? r.u[0] : r.vt[0];
      assert_true(fabs(fabs(one) - 1.0f) < 1e-6f);
      for (size_t i = 0; i < len; i++)
        if (fabs(vec[i] * one - a[i] / norm) > 1e-6)
          fail_msg("%s: singular vector entry %zu is %.8g, want %.8g", sketch_names[sk], i,
                   vec[i] * one, a[i] / norm);
      svd_result_free(&r);
    }
    lamp_tensor_release(&ta);
  }
  free(a);
}

/* (g) m < n: error bound, singular values, orthonormality. */
static void test_wide_matrix(void **state) {
  lamp_context *ctx = *state;
  const size_t k = 32;
  test_matrix t = make_matrix(ctx, 300, 900, 300, spectrum_fast, k, 51);
  double opt = optimal_error(&t, k);
  for (int sk = 0; sk < 2; sk++) {
    svd_result r = run_svd(ctx, &t.ta, k, sketches[sk], 2, 9);
    check_structure(&r, sketch_names[sk]);
    double err = ref_svd_lowrank_error(t.m, t.n, k, t.a, r.u, r.s, r.vt);
    if (!(err <= 1.1 * opt))
      fail_msg("%s: error %.6g > 1.1 x optimal %.6g", sketch_names[sk], err, opt);
    for (size_t i = 0; i < 8; i++)
      if (!(fabs(r.s[i] - t.sigma[i]) <= 1e-4 * t.sigma[i]))
        fail_msg("%s: sigma[%zu] = %.8g, truth %.8g", sketch_names[sk], i, r.s[i], t.sigma[i]);
    svd_result_free(&r);
  }
  free_matrix(&t);
}

static int same_bits(const svd_result *x, const svd_result *y) {
  return memcmp(x->u, y->u, x->m * x->k * sizeof(float)) == 0 &&
         memcmp(x->s, y->s, x->k * sizeof(float)) == 0 &&
         memcmp(x->vt, y->vt, x->k * x->n * sizeof(float)) == 0;
}

/* Same seed: the same bits. Another seed: another sketch, so other bits, same accuracy. */
static void test_determinism_and_seeds(void **state) {
  lamp_context *ctx = *state;
  const size_t k = 12;
  test_matrix t = make_matrix(ctx, 400, 300, 300, spectrum_slow, k, 61);
  double opt = optimal_error(&t, k);
  for (int sk = 0; sk < 2; sk++) {
    svd_result a = run_svd(ctx, &t.ta, k, sketches[sk], 1, 1234);
    svd_result b = run_svd(ctx, &t.ta, k, sketches[sk], 1, 1234);
    svd_result c = run_svd(ctx, &t.ta, k, sketches[sk], 1, 1235);
    if (!same_bits(&a, &b)) fail_msg("%s: same seed, different bits", sketch_names[sk]);
    if (same_bits(&a, &c)) fail_msg("%s: seeds 1234 and 1235 gave the same bits", sketch_names[sk]);
    double ea = ref_svd_lowrank_error(t.m, t.n, k, t.a, a.u, a.s, a.vt);
    double ec = ref_svd_lowrank_error(t.m, t.n, k, t.a, c.u, c.s, c.vt);
    assert_true(ea <= 1.2 * opt && ec <= 1.2 * opt);
    svd_result_free(&a);
    svd_result_free(&b);
    svd_result_free(&c);
  }
  free_matrix(&t);
}

/* A as a view with padded rows at an offset: the result matches the dense copy's bits, and A
 * and its padding are not modified. */
static void test_strided_input_untouched(void **state) {
  lamp_context *ctx = *state;
  const size_t m = 150, n = 90, ld = 97, off = 5, k = 10;
  test_matrix t = make_matrix(ctx, m, n, 90, spectrum_fast, k, 71);
  size_t total = off + m * ld;
  float *padded = malloc(total * sizeof(float)), *after = malloc(total * sizeof(float));
  ref_fill_uniform(padded, total, 72, -100, 100);
  for (size_t i = 0; i < m; i++) memcpy(padded + off + i * ld, t.a + i * n, n * sizeof(float));
  lamp_tensor buf, view;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &total, &buf));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &buf, padded, total * sizeof(float)));
  size_t ne[2] = {n, m}, nb[2] = {4, 4 * ld};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &buf, 4 * off, 2, ne, nb, &view));
  for (int sk = 0; sk < 2; sk++) {
    svd_result dense = run_svd(ctx, &t.ta, k, sketches[sk], 2, 3);
    svd_result strided = run_svd(ctx, &view, k, sketches[sk], 2, 3);
    if (!same_bits(&dense, &strided))
      fail_msg("%s: a strided view of A gives other bits than the dense copy", sketch_names[sk]);
    svd_result_free(&dense);
    svd_result_free(&strided);
  }
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &buf, after, total * sizeof(float)));
  assert_memory_equal(padded, after, total * sizeof(float));
  free(padded);
  free(after);
  lamp_tensor_release(&buf);
  free_matrix(&t);
}

/* k + p beyond min(m, n) is clipped: l = min(m, n), the sketch spans everything and the result
 * is the exact truncated SVD up to rounding. */
static void test_oversampling_clipped(void **state) {
  lamp_context *ctx = *state;
  const size_t k = 75;
  test_matrix t = make_matrix(ctx, 80, 200, 80, spectrum_slow, k, 81);
  for (int sk = 0; sk < 2; sk++) {
    svd_result r = run_svd(ctx, &t.ta, k, sketches[sk], 0, 4);
    check_structure(&r, sketch_names[sk]);
    for (size_t i = 0; i < k; i++)
      if (!(fabs(r.s[i] - t.sigma[i]) <= 1e-4 * t.sigma[i]))
        fail_msg("%s: sigma[%zu] = %.8g, truth %.8g", sketch_names[sk], i, r.s[i], t.sigma[i]);
    svd_result_free(&r);
  }
  free_matrix(&t);
}

static void test_bad_requests(void **state) {
  lamp_context *ctx = *state;
  const size_t m = 40, n = 30;
  float *a = malloc(m * n * sizeof(float));
  ref_fill_uniform(a, m * n, 91, -1, 1);
  lamp_tensor ta = upload_matrix(ctx, a, m, n), u, s, vt, u_bad;
  size_t k = 5, ne_u[2] = {k, m}, ne_vt[2] = {n, k}, ne_bad[2] = {k, m + 1};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_u, &u));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &k, &s));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_vt, &vt));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_bad, &u_bad));
  lamp_svd_options opt;

  lamp_svd_options_init(&opt, 5);
  assert_int_equal(opt.rank, 5);
  assert_int_equal(opt.oversample, 10);
  assert_int_equal(opt.power_iters, 2);
  assert_int_equal(opt.sketch, LAMP_SVD_SKETCH_AUTO);
  assert_int_equal(opt.seed, 0);
  lamp_svd_sketch chosen = lamp_svd_sketch_auto(m, n, k);
  assert_true(chosen == LAMP_SVD_SKETCH_GAUSSIAN || chosen == LAMP_SVD_SKETCH_SRFT);

  lamp_svd_options_init(&opt, 0);
  assert_int_equal(lamp_svd_randomized(ctx, &ta, &opt, &u, &s, &vt), LAMP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(lamp_context_error(ctx), "at least 1"));
  lamp_svd_options_init(&opt, 31);
  assert_int_equal(lamp_svd_randomized(ctx, &ta, &opt, &u, &s, &vt), LAMP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(lamp_context_error(ctx), "exceeds min(m, n) = 30"));
  lamp_svd_options_init(&opt, 5);
  opt.sketch = (lamp_svd_sketch)7;
  assert_int_equal(lamp_svd_randomized(ctx, &ta, &opt, &u, &s, &vt), LAMP_ERR_INVALID_ARGUMENT);
  lamp_svd_options_init(&opt, 5);
  assert_int_equal(lamp_svd_randomized(ctx, &ta, &opt, &u_bad, &s, &vt), LAMP_ERR_SHAPE);
  assert_non_null(strstr(lamp_context_error(ctx), "U must be m x k"));
  assert_int_equal(lamp_svd_randomized(ctx, &ta, &opt, &u, &s, &u), LAMP_ERR_SHAPE);
  assert_int_equal(lamp_svd_randomized(ctx, &ta, NULL, &u, &s, &vt), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_svd_randomized(ctx, &ta, &opt, NULL, &s, &vt),
                   LAMP_ERR_INVALID_ARGUMENT);

  /* non-finite input: a clear error and untouched outputs, for both sketches */
  const float bad[2] = {NAN, INFINITY};
  float sentinel = 123.0f, got = 0.0f;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_fill(ctx, &s, sentinel));
  for (int b = 0; b < 2; b++) {
    a[17 * n + 3] = bad[b];
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &ta, a, m * n * sizeof(float)));
    for (int sk = 0; sk < 2; sk++) {
      opt.sketch = sketches[sk];
      assert_int_equal(lamp_svd_randomized(ctx, &ta, &opt, &u, &s, &vt), LAMP_ERR_NUMERIC);
      assert_non_null(strstr(lamp_context_error(ctx), "NaN or infinite"));
    }
  }
  lamp_tensor first;
  size_t one = 1;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &s, 0, 1, &one, NULL, &first));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &first, &got, sizeof(got)));
  assert_true(got == sentinel);

  free(a);
  lamp_tensor_release(&ta);
  lamp_tensor_release(&u);
  lamp_tensor_release(&s);
  lamp_tensor_release(&vt);
  lamp_tensor_release(&u_bad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_requests),
      cmocka_unit_test(test_gapped_spectrum),
      cmocka_unit_test(test_smooth_spectra),
      cmocka_unit_test(test_power_iterations_help),
      cmocka_unit_test(test_rank_below_k),
      cmocka_unit_test(test_zero_matrix),
      cmocka_unit_test(test_single_column),
      cmocka_unit_test(test_wide_matrix),
      cmocka_unit_test(test_determinism_and_seeds),
      cmocka_unit_test(test_strided_input_untouched),
      cmocka_unit_test(test_oversampling_clipped),
  };
  /* the cases up to 200 x 100 with ranks up to 10: every kernel of the SVD, both sketches */
  const struct CMUnitTest small[] = {
      cmocka_unit_test(test_bad_requests),
      cmocka_unit_test(test_zero_matrix),
      cmocka_unit_test(test_single_column),
      cmocka_unit_test(test_strided_input_untouched),
  };
  int failed = fixture_simulator()
                   ? cmocka_run_group_tests(small, fixture_setup, fixture_teardown)
                   : cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
  /* this program is the host application: it may end clFFT's process-wide state (lamp never does) */
  clfftTeardown();
  return failed;
}
