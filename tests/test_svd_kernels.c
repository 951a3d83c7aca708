/* The randomized SVD's kernels one by one against plain C in double: Philox (known answers and
 * the device fill), the input check, the SRFT sketch (clFFT) against a direct DFT, CholeskyQR2
 * and Householder QR, and the one-sided Jacobi small SVD. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <clFFT.h>

#include "fixture.h"
#include "ref.h"
#include "ref_svd.h"
#include "svd/svd_internal.h"

static lamp_tensor upload(lamp_context *ctx, const float *x, size_t rows, size_t cols) {
  lamp_tensor t;
  size_t ne[2] = {cols, rows};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &t));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &t, x, rows * cols * sizeof(float)));
  return t;
}

static float *download(lamp_context *ctx, const lamp_tensor *t) {
  size_t n = lamp_tensor_numel(t);
  float *x = malloc(n * sizeof(float));
  assert_non_null(x);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, t, x, n * sizeof(float)));
  return x;
}

/* Random123's tests/kat_vectors, the three philox4x32 10 lines: counter, key, result. */
static void test_philox_known_answers(void **state) {
  (void)state;
  static const uint32_t kat[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
       0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
       0x94fdcceb, 0x5001e420, 0x24126ea1},
  };
  for (int v = 0; v < 3; v++) {
    uint32_t lib[4], ref[4];
    lamp__philox4x32_10(kat[v], kat[v] + 4, lib);
    ref_svd_philox4x32_10(kat[v], kat[v] + 4, ref);
    for (int i = 0; i < 4; i++) {
      assert_int_equal(lib[i], kat[v][6 + i]);
      assert_int_equal(ref[i], kat[v][6 + i]);
    }
  }
}

/* philox_fill into a padded view: every value matches the reference for its (row, column), and
 * the padding is untouched. */
static void test_philox_fill(void **state) {
  lamp_context *ctx = *state;
  const size_t rows = 37, cols = 11, ld = 14, off = 3;
  const uint64_t seed = 0x0123456789abcdefULL;
  size_t total = off + rows * ld;
  for (int dist = 0; dist < 2; dist++) {
    lamp_tensor buf, view;
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &total, &buf));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_fill(ctx, &buf, 42.0f));
    size_t ne[2] = {cols, rows}, nb[2] = {4, 4 * ld};
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &buf, 4 * off, 2, ne, nb, &view));
    LAMP_OK_OR_FAIL(ctx, lamp__svd_philox_fill(ctx, &view, seed, 5, dist));
    float *got = download(ctx, &buf);
    double worst = 0.0, sum = 0.0, sum2 = 0.0;
    for (size_t i = 0; i < total; i++) {
      if (i < off || (i - off) % ld >= cols) {
        assert_true(got[i] == 42.0f);
        continue;
      }
      size_t r = (i - off) / ld, c = (i - off) % ld;
      double want = ref_svd_philox_value(seed, 5, r, c, dist);
      worst = fmax(worst, fabs(got[i] - want));
      sum += got[i];
      sum2 += (double)got[i] * got[i];
    }
    if (worst > (dist ? 0.0 : 2e-5)) fail_msg("philox_fill dist %d: max error %.3e", dist, worst);
    double mean = sum / (rows * cols), var = sum2 / (rows * cols) - mean * mean;
    assert_true(fabs(mean) < 0.3 && fabs(var - 1.0) < 0.35);
    free(got);
    lamp_tensor_release(&buf);
  }
  /* another seed gives other values */
  lamp_tensor a, b;
  size_t ne[2] = {8, 8};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &a));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &b));
  LAMP_OK_OR_FAIL(ctx, lamp__svd_philox_fill(ctx, &a, 1, 0, 0));
  LAMP_OK_OR_FAIL(ctx, lamp__svd_philox_fill(ctx, &b, 2, 0, 0));
  float *x = download(ctx, &a), *y = download(ctx, &b);
  int same = 0;
  for (int i = 0; i < 64; i++) same += x[i] == y[i];
  assert_true(same < 4);
  free(x);
  free(y);
  lamp_tensor_release(&a);
  lamp_tensor_release(&b);
}

static void test_absmax(void **state) {
  lamp_context *ctx = *state;
  const size_t rows = 300, cols = 70, ld = 73;
  float *h = malloc(rows * ld * sizeof(float));
  ref_fill_uniform(h, rows * ld, 9, -2, 2);
  for (size_t i = 0; i < rows; i++) h[i * ld + cols + 1] = 1e9f; /* padding, must be ignored */
  h[123 * ld + 45] = -7.5f;
  lamp_tensor buf = upload(ctx, h, rows, ld), view;
  size_t ne[2] = {cols, rows}, nb[2] = {4, 4 * ld};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &buf, 0, 2, ne, nb, &view));
  float amax = 0;
  int finite = 0;
  LAMP_OK_OR_FAIL(ctx, lamp__svd_absmax(ctx, &view, &amax, &finite));
  assert_true(amax == 7.5f && finite);
  const float bad[2] = {NAN, -INFINITY};
  for (int b = 0; b < 2; b++) {
    h[299 * ld + 69] = bad[b];
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &buf, h, rows * ld * sizeof(float)));
    LAMP_OK_OR_FAIL(ctx, lamp__svd_absmax(ctx, &view, &amax, &finite));
    assert_false(finite);
  }
  free(h);
  lamp_tensor_release(&buf);
}

/* pack + clFFT + gather against a direct DFT in double, for transform lengths with and without
 * padding, odd n, n = 1, and l near the number of real columns. */
static void test_srft_sketch(void **state) {
  lamp_context *ctx = *state;
  static const size_t shapes[][3] = {{5, 1, 1}, {9, 37, 12}, {17, 64, 30}, {6, 100, 100},
                                     {33, 250, 20}};
  for (size_t c = 0; c < sizeof(shapes) / sizeof(shapes[0]); c++) {
    size_t m = shapes[c][0], n = shapes[c][1], l = shapes[c][2];
    size_t fft_n = lamp__svd_fft_length(n);
    assert_true(fft_n >= n && fft_n >= 2 && fft_n % 2 == 0);
    float *a = malloc(m * n * sizeof(float));
    double *want = malloc(m * l * sizeof(double));
    ref_fill_uniform(a, m * n, 100 + c, -1, 1);
    const uint64_t seed = 77 + c;
    lamp_tensor ta = upload(ctx, a, m, n), y, signs;
    size_t ne_y[2] = {l, m}, ne_s = n;
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_y, &y));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &ne_s, &signs));
    LAMP_OK_OR_FAIL(ctx, lamp__svd_srft(ctx, &ta, 0.5f, seed, &signs, &y));
    float *got = download(ctx, &y);
    ref_svd_srft(m, n, l, fft_n, a, 0.5, seed, want);
    double scale = 0.0, err = 0.0;
    for (size_t i = 0; i < m * l; i++) scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < m * l; i++) err = fmax(err, fabs(got[i] - want[i]));
    if (!(err <= 1e-5 * scale * sqrt((double)n) + 1e-7))
      fail_msg("SRFT m=%zu n=%zu l=%zu (N=%zu): error %.3e of scale %.3e", m, n, l, fft_n, err,
               scale);
    free(a);
    free(want);
    free(got);
    lamp_tensor_release(&ta);
    lamp_tensor_release(&y);
    lamp_tensor_release(&signs);
  }
}

/* Checks Q^T Q = I and, when r is given, Q R = X0 (upper triangle of R only). */
static void check_qr(lamp_context *ctx, const float *x0, size_t rows, size_t l,
                     const lamp_tensor *q, const lamp_tensor *r, const char *what) {
  float *hq = download(ctx, q);
  double orth = ref_svd_orthogonality(hq, l, rows, 1, l);
  if (orth > 2e-6) fail_msg("%s: max |Q^T Q - I| = %.3e", what, orth);
  if (r) {
    /* R is a view with row stride ld inside a bigger buffer: read its rows whole */
    float *hr = calloc(l * l, sizeof(float));
    size_t ld = r->nb[1] / 4;
    float *raw = malloc(ld * l * sizeof(float));
    lamp_tensor span;
    size_t ne[2] = {ld, l};
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, r, 0, 2, ne, NULL, &span));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &span, raw, ld * l * sizeof(float)));
    for (size_t i = 0; i < l; i++)
      for (size_t c = i; c < l; c++) hr[i * l + c] = raw[i * ld + c];
    float *qr = malloc(rows * l * sizeof(float));
    ref_gemm(0, 0, rows, l, l, 1.0, hq, l, hr, l, 0.0, qr, l);
    double err = ref_max_rel_error(qr, x0, rows * l);
    if (!(err <= 2e-5)) fail_msg("%s: max |QR - X| / max |X| = %.3e", what, err);
    free(hr);
    free(raw);
    free(qr);
  }
  free(hq);
}

static void test_orth(void **state) {
  lamp_context *ctx = *state;
  const size_t rows = 203, l = 24;
  lamp__svd_qr_ws ws;
  LAMP_OK_OR_FAIL(ctx, lamp__svd_qr_ws_create(ctx, rows, l, &ws));
  float *x0 = malloc(rows * l * sizeof(float));
  size_t ne[2] = {l, rows};
  lamp_tensor q;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &q));

  /* well conditioned: CholeskyQR2, and R = R2 R1 */
  ref_fill_uniform(x0, rows * l, 3, -1, 1);
  for (int method = 0; method < 2; method++) {
    lamp_tensor x = upload(ctx, x0, rows, l), r;
    lamp__svd_qr_method used;
    LAMP_OK_OR_FAIL(ctx, lamp__svd_orth(ctx, &ws, (lamp__svd_qr_method)method, &x, &q, &r, &used));
    assert_int_equal(used, method);
    check_qr(ctx, x0, rows, l, &q, &r, method ? "Householder, random" : "CholeskyQR2, random");
    lamp_tensor_release(&x);
  }

  /* column 5 zero, column 9 a copy of column 2, column 14 = 1e-6 x a random column added to
   * column 3: Cholesky breaks down, the fallback must still give an orthonormal Q with Q R = X */
  for (size_t i = 0; i < rows; i++) {
    x0[i * l + 5] = 0.0f;
    x0[i * l + 9] = x0[i * l + 2];
    x0[i * l + 14] = x0[i * l + 3] + 1e-6f * x0[i * l + 20];
  }
  lamp_tensor x = upload(ctx, x0, rows, l), r;
  lamp__svd_qr_method used;
  LAMP_OK_OR_FAIL(ctx, lamp__svd_orth(ctx, &ws, LAMP__SVD_QR_AUTO, &x, &q, &r, &used));
  assert_int_equal(used, LAMP__SVD_QR_HOUSEHOLDER);
  check_qr(ctx, x0, rows, l, &q, &r, "rank-deficient");
  lamp_tensor_release(&x);

  /* all zeros */
  memset(x0, 0, rows * l * sizeof(float));
  x = upload(ctx, x0, rows, l);
  LAMP_OK_OR_FAIL(ctx, lamp__svd_orth(ctx, &ws, LAMP__SVD_QR_AUTO, &x, &q, NULL, &used));
  assert_int_equal(used, LAMP__SVD_QR_HOUSEHOLDER);
  check_qr(ctx, x0, rows, l, &q, NULL, "zeros");
  lamp_tensor_release(&x);

  /* columns scaled over 1e-3 (cond ~ 1e3): near the limit of CholeskyQR2; whichever method
   * runs, Q must be orthonormal */
  ref_fill_uniform(x0, rows * l, 4, -1, 1);
  for (size_t i = 0; i < rows; i++)
    for (size_t c = 0; c < l; c++) x0[i * l + c] *= powf(1e-3f, (float)c / (float)(l - 1));
  x = upload(ctx, x0, rows, l);
  LAMP_OK_OR_FAIL(ctx, lamp__svd_orth(ctx, &ws, LAMP__SVD_QR_AUTO, &x, &q, &r, &used));
  check_qr(ctx, x0, rows, l, &q, &r, "graded");
  lamp_tensor_release(&x);

  free(x0);
  lamp_tensor_release(&q);
  lamp__svd_qr_ws_release(&ws);
}

/* Jacobi on R^T for random upper triangular R, one with two zero rows (rank l - 2), and zero:
 * sigma against the double reference, W and V orthonormal, R^T V = W diag(sigma). */
static void test_small_svd(void **state) {
  lamp_context *ctx = *state;
  const size_t l = 21, k = 15, ld = 23;
  for (int variant = 0; variant < 3; variant++) {
    float *r = calloc(l * ld, sizeof(float));
    ref_fill_uniform(r, l * ld, 50 + variant, -1, 1);
    for (size_t i = 0; i < l; i++)
      for (size_t c = 0; c < ld; c++)
        if (variant == 2 || (variant == 1 && (i == 4 || i == 11))) r[i * ld + c] = 0.0f;
    lamp_tensor tr = upload(ctx, r, l, ld), view, work, s;
    size_t ne_r[2] = {l, l}, nb_r[2] = {4, 4 * ld}, ne_w = lamp__svd_small_floats(l) + 5;
    size_t ne_s = 2 * k + 2;
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &tr, 0, 2, ne_r, nb_r, &view));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &ne_w, &work));
    lamp_tensor s_buf, work_view;
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &ne_s, &s_buf));
    size_t ne_sv = k, nb_sv = 8, ne_wv = lamp__svd_small_floats(l);
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &s_buf, 4, 1, &ne_sv, &nb_sv, &s));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &work, 20, 1, &ne_wv, NULL, &work_view));
    LAMP_OK_OR_FAIL(ctx, lamp__svd_small(ctx, &view, l, &work_view, 2.0f, &s, k));
    float *w = download(ctx, &work), *hs = download(ctx, &s_buf);
    const float *ws = w + 5 + lamp__svd_small_left(l), *vs = w + 5 + lamp__svd_small_right(l);
    const float *sig = w + 5 + lamp__svd_small_sigma(l);

    double *m = malloc(l * l * sizeof(double)), want[32];
    for (size_t i = 0; i < l; i++) /* M = R^T, upper triangle of R */
      for (size_t c = 0; c < l; c++) m[i * l + c] = c <= i ? r[c * ld + i] : 0.0;
    ref_svd_singular_values(l, l, m, want);
    for (size_t t = 0; t < l; t++) {
      if (fabs(sig[t] - want[t]) > 2e-6 * want[0] + 1e-30)
        fail_msg("variant %d: sigma[%zu] = %.8g, want %.8g", variant, t, sig[t], want[t]);
      if (t > 0) assert_true(sig[t] <= sig[t - 1]);
    }
    for (size_t t = 0; t < k; t++) assert_true(hs[1 + 2 * t] == 2.0f * sig[t]);
    assert_true(hs[0] == 0.0f && hs[2] == 0.0f); /* stride respected */
    double ow = ref_svd_orthogonality(ws, l, l, l, 1), ov = ref_svd_orthogonality(vs, l, l, l, 1);
    if (ow > 2e-6 || ov > 2e-6) fail_msg("variant %d: orthogonality W %.3e V %.3e", variant, ow, ov);
    /* residual of M v_t = sigma_t w_t */
    double res = 0.0;
    for (size_t t = 0; t < l; t++)
      for (size_t i = 0; i < l; i++) {
        double acc = 0.0;
        for (size_t c = 0; c <= i; c++) acc += (double)r[c * ld + i] * vs[t * l + c];
        res = fmax(res, fabs(acc - sig[t] * ws[t * l + i]));
      }
    if (res > 3e-6 * (want[0] + 1e-30) && !(variant == 2 && res == 0.0))
      fail_msg("variant %d: max |M v - sigma w| = %.3e", variant, res);
    free(r);
    free(w);
    free(hs);
    free(m);
    lamp_tensor_release(&tr);
    lamp_tensor_release(&work);
    lamp_tensor_release(&s_buf);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_philox_known_answers), cmocka_unit_test(test_philox_fill),
      cmocka_unit_test(test_absmax),               cmocka_unit_test(test_srft_sketch),
      cmocka_unit_test(test_orth),                 cmocka_unit_test(test_small_svd),
  };
  int failed = cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
  /* this program is the host application: it may end clFFT's process-wide state (lamp never does) */
  clfftTeardown();
  return failed;
}
