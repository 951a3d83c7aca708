/* Average pooling over tokens: forward against a plain C loop on strided (B, T, C) views,
 * backward against central finite differences of that loop, overwrite and accumulate modes, and
 * shape errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "ref.h"

/* y (B, ceil(T / s), C) from x (B, T, C), dense, in double. */
static void ref_pool(const double *x, size_t b, size_t t, size_t c, size_t s, double *y) {
  size_t tp = (t + s - 1) / s;
  for (size_t bi = 0; bi < b; bi++)
    for (size_t j = 0; j < tp; j++)
      for (size_t ci = 0; ci < c; ci++) {
        size_t t0 = j * s, t1 = t0 + s < t ? t0 + s : t;
        double acc = 0;
        for (size_t ti = t0; ti < t1; ti++) acc += x[(bi * t + ti) * c + ci];
        y[(bi * tp + j) * c + ci] = acc / (double)(t1 - t0);
      }
}

/* A (B, T, C) view with padded rows and batch gaps inside a larger buffer. */
static void make_view(lamp_context *ctx, size_t b, size_t t, size_t c, lamp_tensor *buf,
                      lamp_tensor *view) {
  size_t ld = c + 3, bs = ld * t + 5, n = 2 + bs * b;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &n, buf));
  size_t ne[3] = {c, t, b}, nb[3] = {4, 4 * ld, 4 * bs};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, buf, 8, 3, ne, nb, view));
}

static void check_pool(lamp_context *ctx, size_t b, size_t t, size_t c, size_t s) {
  size_t tp = (t + s - 1) / s, nx = b * t * c, ny = b * tp * c;
  float *x = malloc(4 * nx), *dy = malloc(4 * ny), *got = malloc(4 * (nx > ny ? nx : ny));
  float *dx0 = malloc(4 * nx);
  double *xd = malloc(8 * nx), *yd = malloc(8 * ny), *dyd = malloc(8 * ny);
  assert_true(x && dy && got && dx0 && xd && yd && dyd);
  ref_fill_uniform(x, nx, 100 + t + s, -1, 1);
  ref_fill_uniform(dy, ny, 200 + t + s, -1, 1);
  ref_fill_uniform(dx0, nx, 300 + t + s, -1, 1);
  for (size_t i = 0; i < nx; i++) xd[i] = x[i];
  for (size_t i = 0; i < ny; i++) dyd[i] = dy[i];

  lamp_tensor bx, vx, by, vy;
  make_view(ctx, b, t, c, &bx, &vx);
  make_view(ctx, b, tp, c, &by, &vy);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_fill(ctx, &by, 9.0f));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &vx, x, 4 * nx));
  LAMP_OK_OR_FAIL(ctx, lamp_pool_avg_forward(ctx, &vy, &vx, s));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &vy, got, 4 * ny));
  ref_pool(xd, b, t, c, s, yd);
  for (size_t i = 0; i < ny; i++)
    if (!(fabs(got[i] - yd[i]) <= 1e-6 * (1 + fabs(yd[i]))))
      fail_msg("pool forward B=%zu T=%zu C=%zu s=%zu: element %zu is %g, want %g", b, t, c, s, i,
               got[i], yd[i]);
  /* padding outside the view is untouched */
  float first;
  size_t one = 1;
  lamp_tensor pad;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &by, 0, 1, &one, NULL, &pad));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &pad, &first, 4));
  assert_true(first == 9.0f);

  /* backward: the gradient of L = sum dy . pool(x) by central differences on the reference */
  double *fd = malloc(8 * nx);
  assert_non_null(fd);
  const double h = 1e-4;
  for (size_t i = 0; i < nx; i++) {
    double keep = xd[i], up = 0, down = 0;
    xd[i] = keep + h;
    ref_pool(xd, b, t, c, s, yd);
    for (size_t k = 0; k < ny; k++) up += dyd[k] * yd[k];
    xd[i] = keep - h;
    ref_pool(xd, b, t, c, s, yd);
    for (size_t k = 0; k < ny; k++) down += dyd[k] * yd[k];
    xd[i] = keep;
    fd[i] = (up - down) / (2 * h);
  }
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &vy, dy, 4 * ny));
  for (int accumulate = 0; accumulate < 2; accumulate++) {
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &vx, dx0, 4 * nx));
    LAMP_OK_OR_FAIL(ctx, lamp_pool_avg_backward(ctx, &vx, &vy, s, accumulate));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &vx, got, 4 * nx));
    for (size_t i = 0; i < nx; i++) {
      double want = fd[i] + (accumulate ? dx0[i] : 0.0);
      if (!(fabs(got[i] - want) <= 1e-5 * (1 + fabs(want))))
        fail_msg("pool backward (accumulate=%d) B=%zu T=%zu C=%zu s=%zu: element %zu is %g, "
                 "want %g", accumulate, b, t, c, s, i, got[i], want);
    }
  }
  lamp_tensor_release(&bx);
  lamp_tensor_release(&by);
  free(x);
  free(dy);
  free(got);
  free(dx0);
  free(xd);
  free(yd);
  free(dyd);
  free(fd);
}

static void test_pool_forward_backward(void **state) {
  lamp_context *ctx = *state;
  static const size_t ts[] = {1, 2, 7, 13};
  for (size_t i = 0; i < 4; i++)
    for (size_t s = 1; s <= 5; s++) check_pool(ctx, 2, ts[i], 5, s);
  check_pool(ctx, 1, 100, 70, 2);
  check_pool(ctx, 3, 31, 9, 4);
  /* a window near 2^32, past T: one row of all T (the kernel's 32-bit sums must not wrap) */
  check_pool(ctx, 2, 10, 5, 0xFFFFFFF8u);
}

static void test_pool_errors(void **state) {
  lamp_context *ctx = *state;
  lamp_tensor x, y, y16;
  size_t nx[3] = {4, 7, 2}, ny[3] = {4, 3, 2};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 3, nx, &x));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 3, ny, &y));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F16, 3, ny, &y16));
  /* ceil(7 / 2) = 4 rows, not 3 */
  assert_int_equal(lamp_pool_avg_forward(ctx, &y, &x, 2), LAMP_ERR_SHAPE);
  assert_non_null(strstr(lamp_context_error(ctx), "(2, 4, 4)"));
  LAMP_OK_OR_FAIL(ctx, lamp_pool_avg_forward(ctx, &y, &x, 3));
  assert_int_equal(lamp_pool_avg_forward(ctx, &y, &x, 0), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_pool_avg_backward(ctx, &x, &y, 2, 0), LAMP_ERR_SHAPE);
  assert_int_equal(lamp_pool_avg_forward(ctx, &y16, &x, 3), LAMP_ERR_UNSUPPORTED);
  assert_int_equal(lamp_pool_avg_forward(ctx, NULL, &x, 3), LAMP_ERR_INVALID_ARGUMENT);
  lamp_tensor_release(&x);
  lamp_tensor_release(&y);
  lamp_tensor_release(&y16);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pool_forward_backward),
      cmocka_unit_test(test_pool_errors),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
