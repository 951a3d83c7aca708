/* Prompt forward and backward for LAMP, PT and DPT against the plain-C reference (which forms the
 * whole prompt and then pools), the reference gradients against central finite differences,
 * gradient accumulation, parameter counts and argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "ref.h"
#include "ref_prompt.h"

static const lamp_prompt_method methods[] = {LAMP_PROMPT_LAMP, LAMP_PROMPT_PT, LAMP_PROMPT_DPT};

/* A prompt with parameters theta (the reference's flat layout), created without initialisation. */
static lamp_prompt *make_prompt(lamp_context *ctx, lamp_prompt_method method, size_t l, size_t d,
                                size_t r, size_t s, const float *theta) {
  lamp_prompt_options o;
  lamp_prompt_options_init(&o, method, d);
  o.length = l;
  o.rank = r;
  o.bottleneck = r;
  o.pool = s;
  o.init = LAMP_PROMPT_INIT_NONE;
  lamp_prompt *p = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_create(ctx, &o, &p));
  lamp_param params[LAMP_PROMPT_MAX_PARAMS];
  size_t n = 0, at = 0;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_params(p, params, LAMP_PROMPT_MAX_PARAMS, &n));
  for (size_t i = 0; i < n; i++) {
    size_t len = lamp_tensor_numel(&params[i].value);
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &params[i].value, theta + at, 4 * len));
    at += len;
  }
  assert_int_equal(at, ref_prompt_nparams((int)method, l, d, r));
  return p;
}

static float *random_floats(size_t n, uint64_t seed) {
  float *x = malloc(n * sizeof(float));
  assert_non_null(x);
  ref_fill_uniform(x, n, seed, -1, 1);
  return x;
}

static double *to_double(const float *x, size_t n) {
  double *y = malloc(n * sizeof(double));
  assert_non_null(y);
  for (size_t i = 0; i < n; i++) y[i] = x[i];
  return y;
}

static double max_rel_error_d(const float *got, const double *want, size_t n) {
  float *w = malloc(n * sizeof(float));
  assert_non_null(w);
  for (size_t i = 0; i < n; i++) w[i] = (float)want[i];
  double e = ref_max_rel_error(got, w, n);
  free(w);
  return e;
}

/* Forward of one configuration against the reference; returns the error. */
static double check_forward(lamp_context *ctx, lamp_prompt_method m, size_t l, size_t d, size_t r,
                            size_t s) {
  size_t np = ref_prompt_nparams((int)m, l, d, r), lp = (l + s - 1) / s;
  float *theta = random_floats(np, 1000 + l * 7 + d * 13 + r * 17 + s);
  lamp_prompt *p = make_prompt(ctx, m, l, d, r, s, theta);
  size_t rows = 0, width = 0;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_output_shape(p, &rows, &width));
  assert_int_equal(rows, lp);
  assert_int_equal(width, d);
  lamp_tensor out;
  size_t ne[2] = {d, lp};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &out));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_fill(ctx, &out, NAN));
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_forward(p, &out));
  float *got = malloc(lp * d * sizeof(float));
  double *want = malloc(lp * d * sizeof(double)), *th = to_double(theta, np);
  assert_true(got && want);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &out, got, lp * d * sizeof(float)));
  ref_prompt_forward((int)m, l, d, r, s, th, want);
  double err = max_rel_error_d(got, want, lp * d);
  lamp_tensor_release(&out);
  lamp_prompt_release(p);
  free(theta);
  free(th);
  free(got);
  free(want);
  return err;
}

/* The grid of the issue: every method, P in {1, 7, 100, 128}, C in {8, 576, 768},
 * R in {1, 4, 8, 16}, s in {1, 2, 3, 4}. A LAMP rank above min(P, C) must be refused. */
static void test_forward_grid(void **state) {
  lamp_context *ctx = *state;
  static const size_t ls[] = {1, 7, 100, 128}, ds[] = {8, 576, 768}, rs[] = {1, 4, 8, 16};
  double worst = 0;
  for (size_t mi = 0; mi < 3; mi++)
    for (size_t li = 0; li < 4; li++)
      for (size_t di = 0; di < 3; di++)
        for (size_t ri = 0; ri < 4; ri++)
          for (size_t s = 1; s <= 4; s++) {
            lamp_prompt_method m = methods[mi];
            size_t l = ls[li], d = ds[di], r = rs[ri];
            if (m == LAMP_PROMPT_PT && ri > 0) continue; /* PT has no rank */
            /* a simulator takes a third of the grid: partial tiles, windows, ranks all kept */
            if (fixture_simulator() && (li == 3 || di == 2 || ri == 2 || s % 2 == 0)) continue;
            if (m == LAMP_PROMPT_LAMP && (r > l || r > d)) {
              lamp_prompt_options o;
              lamp_prompt *p = NULL;
              lamp_prompt_options_init(&o, m, d);
              o.length = l;
              o.rank = r;
              o.init = LAMP_PROMPT_INIT_NONE;
              assert_int_equal(lamp_prompt_create(ctx, &o, &p), LAMP_ERR_INVALID_ARGUMENT);
              assert_null(p);
              assert_non_null(strstr(lamp_context_error(ctx), "rank"));
              continue;
            }
            double err = check_forward(ctx, m, l, d, r, s);
            if (!(err <= 1e-5))
              fail_msg("forward %s l=%zu d=%zu r=%zu s=%zu: max relative error %.3e",
                       lamp_prompt_method_name(m), l, d, r, s, err);
            if (err > worst) worst = err;
          }
  print_message("forward grid: worst max relative error %.3e\n", worst);
}

/* The output may be a row block of a wider (T, C) buffer: only those rows change. */
static void test_forward_into_view(void **state) {
  lamp_context *ctx = *state;
  const size_t l = 9, d = 40, r = 3, s = 2, lp = 5, rows = 12, first = 4;
  size_t np = ref_prompt_nparams(REF_PROMPT_LAMP, l, d, r);
  float *theta = random_floats(np, 5);
  lamp_prompt *p = make_prompt(ctx, LAMP_PROMPT_LAMP, l, d, r, s, theta);
  lamp_tensor big, view;
  size_t ne[2] = {d + 3, rows}, vne[2] = {d, lp}, vnb[2] = {4, 4 * (d + 3)};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &big));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_fill(ctx, &big, 7.0f));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &big, 4 * first * (d + 3), 2, vne, vnb, &view));
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_forward(p, &view));
  float *got = malloc(4 * rows * (d + 3));
  double *want = malloc(sizeof(double) * lp * d), *th = to_double(theta, np);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &big, got, 4 * rows * (d + 3)));
  ref_prompt_forward(REF_PROMPT_LAMP, l, d, r, s, th, want);
  for (size_t i = 0; i < rows; i++)
    for (size_t c = 0; c < d + 3; c++) {
      float g = got[i * (d + 3) + c];
      if (i >= first && i < first + lp && c < d)
        assert_true(fabs(g - want[(i - first) * d + c]) <= 1e-5 * (1 + fabs(want[0])));
      else
        assert_true(g == 7.0f);
    }
  lamp_tensor_release(&big);
  lamp_prompt_release(p);
  free(theta);
  free(th);
  free(got);
  free(want);
}

/* Reference gradient against central differences of the reference forward, in double. */
static void check_reference_gradient(int m, size_t l, size_t d, size_t r, size_t s) {
  size_t np = ref_prompt_nparams(m, l, d, r), lp = (l + s - 1) / s;
  float *tf = random_floats(np, 31 + s), *gf = random_floats(lp * d, 37 + s);
  double *th = to_double(tf, np), *gout = to_double(gf, lp * d);
  double *grad = malloc(np * sizeof(double)), *out = malloc(lp * d * sizeof(double));
  ref_prompt_backward(m, l, d, r, s, th, gout, grad);
  const double h = 1e-5;
  double scale = 1e-30, err = 0;
  for (size_t i = 0; i < np; i++) scale = fmax(scale, fabs(grad[i]));
  for (size_t i = 0; i < np; i++) {
    double keep = th[i];
    th[i] = keep + h;
    ref_prompt_forward(m, l, d, r, s, th, out);
    double up = ref_dot(out, gout, lp * d);
    th[i] = keep - h;
    ref_prompt_forward(m, l, d, r, s, th, out);
    double down = ref_dot(out, gout, lp * d);
    th[i] = keep;
    err = fmax(err, fabs((up - down) / (2 * h) - grad[i]));
  }
  if (err / scale > 1e-7)
    fail_msg("reference gradient, method %d s=%zu: finite differences differ by %.3e (relative)",
             m, s, err / scale);
  free(tf);
  free(gf);
  free(th);
  free(gout);
  free(grad);
  free(out);
}

/* Device gradients: starting from random gradients g0, backward must leave g0 + reference. */
static void check_backward(lamp_context *ctx, lamp_prompt_method m, size_t l, size_t d, size_t r,
                           size_t s) {
  size_t np = ref_prompt_nparams((int)m, l, d, r), lp = (l + s - 1) / s;
  float *theta = random_floats(np, 41 + l + d + r + s), *gf = random_floats(lp * d, 43 + s);
  float *g0 = random_floats(np, 47 + s);
  lamp_prompt *p = make_prompt(ctx, m, l, d, r, s, theta);
  lamp_param params[LAMP_PROMPT_MAX_PARAMS];
  size_t n = 0, at = 0;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_params(p, params, LAMP_PROMPT_MAX_PARAMS, &n));
  for (size_t i = 0; i < n; i++) {
    size_t len = lamp_tensor_numel(&params[i].grad);
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &params[i].grad, g0 + at, 4 * len));
    at += len;
  }
  lamp_tensor dout;
  size_t ne[2] = {d, lp};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &dout));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &dout, gf, 4 * lp * d));
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_backward(p, &dout));

  double *th = to_double(theta, np), *gout = to_double(gf, lp * d);
  double *want = malloc(np * sizeof(double));
  float *got = malloc(np * sizeof(float));
  ref_prompt_backward((int)m, l, d, r, s, th, gout, want);
  at = 0;
  for (size_t i = 0; i < n; i++) {
    size_t len = lamp_tensor_numel(&params[i].grad);
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &params[i].grad, got, 4 * len));
    /* compare the accumulated part only, so the test sees errors at the gradient's scale */
    for (size_t j = 0; j < len; j++) got[j] -= g0[at + j];
    double err = max_rel_error_d(got, want + at, len);
    if (!(err <= 1e-4))
      fail_msg("backward %s l=%zu d=%zu r=%zu s=%zu, d%s: max relative error %.3e",
               lamp_prompt_method_name(m), l, d, r, s, params[i].name, err);
    at += len;
  }

  /* zero_grad overwrites */
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_zero_grad(p));
  for (size_t i = 0; i < n; i++) {
    size_t len = lamp_tensor_numel(&params[i].grad);
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &params[i].grad, got, 4 * len));
    for (size_t j = 0; j < len; j++) assert_true(got[j] == 0.0f);
  }
  lamp_tensor_release(&dout);
  lamp_prompt_release(p);
  free(theta);
  free(gf);
  free(g0);
  free(th);
  free(gout);
  free(want);
  free(got);
}

static void test_reference_gradients_by_finite_differences(void **state) {
  (void)state;
  for (int m = 0; m < 3; m++)
    for (size_t s = 1; s <= 4; s++) check_reference_gradient(m, 7, 6, 3, s);
}

static void test_backward(void **state) {
  lamp_context *ctx = *state;
  for (size_t mi = 0; mi < 3; mi++)
    for (size_t s = 1; s <= 4; s++) {
      check_backward(ctx, methods[mi], 7, 6, 3, s);
      check_backward(ctx, methods[mi], 37, 40, 5, s);
      check_backward(ctx, methods[mi], 100, 576, 8, s);
    }
  check_backward(ctx, LAMP_PROMPT_LAMP, 128, 768, 16, 3);
  check_backward(ctx, LAMP_PROMPT_DPT, 128, 768, 16, 2);
  check_backward(ctx, LAMP_PROMPT_LAMP, 1, 8, 1, 4);
}

static void test_param_counts(void **state) {
  lamp_context *ctx = *state;
  static const size_t cases[][3] = {{100, 576, 8}, {100, 768, 8}, {400, 4096, 16}, {7, 5, 3}};
  for (size_t i = 0; i < 4; i++) {
    size_t l = cases[i][0], d = cases[i][1], r = cases[i][2];
    for (size_t mi = 0; mi < 3; mi++) {
      lamp_prompt_options o;
      lamp_prompt_options_init(&o, methods[mi], d);
      o.length = l;
      o.rank = r;
      o.init = LAMP_PROMPT_INIT_NONE;
      size_t n = 0, want = methods[mi] == LAMP_PROMPT_LAMP ? r * (l + d + 1)
                           : methods[mi] == LAMP_PROMPT_PT ? l * d
                                                           : 10 * (l + d); /* b = 10 default */
      LAMP_OK_OR_FAIL(ctx, lamp_prompt_options_param_count(&o, &n));
      assert_int_equal(n, want);
      if (l * d > 100000) continue; /* the big case only by formula */
      lamp_prompt *p = NULL;
      LAMP_OK_OR_FAIL(ctx, lamp_prompt_create(ctx, &o, &p));
      LAMP_OK_OR_FAIL(ctx, lamp_prompt_param_count(p, &n));
      assert_int_equal(n, want);
      lamp_param params[LAMP_PROMPT_MAX_PARAMS];
      size_t np = 0, sum = 0;
      LAMP_OK_OR_FAIL(ctx, lamp_prompt_params(p, params, LAMP_PROMPT_MAX_PARAMS, &np));
      for (size_t j = 0; j < np; j++) sum += lamp_tensor_numel(&params[j].value);
      assert_int_equal(sum, want);
      lamp_prompt_release(p);
    }
  }
  /* the paper's T5-Base example: 76,800 prompt values against 6,952 for LAMP r = 8 */
  lamp_prompt_options o;
  size_t n = 0;
  lamp_prompt_options_init(&o, LAMP_PROMPT_PT, 768);
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_options_param_count(&o, &n));
  assert_int_equal(n, 76800);
  lamp_prompt_options_init(&o, LAMP_PROMPT_LAMP, 768);
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_options_param_count(&o, &n));
  assert_int_equal(n, 6952);
}

static void test_errors(void **state) {
  lamp_context *ctx = *state;
  lamp_prompt_options o;
  lamp_prompt *p = NULL;
  lamp_prompt_options_init(&o, LAMP_PROMPT_LAMP, 16);
  o.length = 10;
  /* embedding initialisation without a table */
  assert_int_equal(lamp_prompt_create(ctx, &o, &p), LAMP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(lamp_context_error(ctx), "embedding"));
  o.init = LAMP_PROMPT_INIT_NONE;
  o.pool = 0;
  assert_int_equal(lamp_prompt_create(ctx, &o, &p), LAMP_ERR_INVALID_ARGUMENT);
  o.pool = 3;
  o.width = 0;
  assert_int_equal(lamp_prompt_create(ctx, &o, &p), LAMP_ERR_INVALID_ARGUMENT);
  o.width = 16;
  o.method = (lamp_prompt_method)9;
  assert_int_equal(lamp_prompt_create(ctx, &o, &p), LAMP_ERR_INVALID_ARGUMENT);
  o.method = LAMP_PROMPT_DPT;
  o.init = LAMP_PROMPT_INIT_EMBEDDING;
  assert_int_equal(lamp_prompt_create(ctx, &o, &p), LAMP_ERR_INVALID_ARGUMENT);
  o.init = LAMP_PROMPT_INIT_UNIFORM;
  o.uniform_range = -1;
  assert_int_equal(lamp_prompt_create(ctx, &o, &p), LAMP_ERR_INVALID_ARGUMENT);
  assert_null(p);
  o.method = LAMP_PROMPT_LAMP;
  o.init = LAMP_PROMPT_INIT_NONE;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_create(ctx, &o, &p));

  /* wrong output shapes: rows must be ceil(10 / 3) = 4 */
  lamp_tensor t, t16;
  size_t ne[2] = {16, 5}, ne16[2] = {16, 4};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &t));
  assert_int_equal(lamp_prompt_forward(p, &t), LAMP_ERR_SHAPE);
  assert_non_null(strstr(lamp_context_error(ctx), "(4, 16)"));
  assert_int_equal(lamp_prompt_backward(p, &t), LAMP_ERR_SHAPE);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F16, 2, ne16, &t16));
  assert_int_equal(lamp_prompt_forward(p, &t16), LAMP_ERR_UNSUPPORTED);
  assert_int_equal(lamp_prompt_forward(p, NULL), LAMP_ERR_INVALID_ARGUMENT);
  /* a column-strided output is refused */
  lamp_tensor col;
  size_t cne[2] = {16, 4}, cnb[2] = {4, 64};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &t, 0, 2, cne, cnb, &col));
  col.nb[0] = 8;
  assert_int_equal(lamp_prompt_forward(p, &col), LAMP_ERR_SHAPE);
  lamp_param params[1];
  size_t n = 0;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_params(p, params, 1, &n));
  assert_int_equal(n, 3); /* the count is the total even when capacity is smaller */
  assert_string_equal(params[0].name, "U");
  lamp_tensor_release(&t);
  lamp_tensor_release(&t16);
  lamp_prompt_release(p);
  lamp_prompt_release(NULL);
}

static void test_method_names(void **state) {
  (void)state;
  const char *bad[] = {"", "lora", "lamp ", "p", NULL};
  FIXTURE_CHECK_NAMES(lamp_prompt_method, lamp_prompt_method_name, lamp_prompt_method_from_name,
                      LAMP_PROMPT_LAMP, LAMP_PROMPT_DPT, 3, bad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_method_names),
      cmocka_unit_test(test_forward_grid),
      cmocka_unit_test(test_forward_into_view),
      cmocka_unit_test(test_reference_gradients_by_finite_differences),
      cmocka_unit_test(test_backward),
      cmocka_unit_test(test_param_counts),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
