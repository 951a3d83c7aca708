/* lamp_gemm against a plain C product: every transpose pair, awkward sizes, offsets, beta,
 * strided batches, and shape errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "ref.h"
#include "runtime/internal.h"

/* A new 1-d device tensor holding host[0..n). */
static void device_copy(lamp_context *ctx, const float *host, size_t n, lamp_tensor *out) {
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &n, out));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, out, host, n * sizeof(float)));
}

/* Runs C = alpha op(A) op(B) + beta C through `gemm` (lamp_gemm or lamp__gemm_few) with A, B,
 * C placed at element offsets inside larger buffers and with padded row strides, then compares
 * with ref_gemm. */
static void check_gemm_by(lamp_context *ctx, lamp__gemm_fn gemm, int ta, int tb, size_t m,
                          size_t n, size_t k, float alpha, float beta, size_t pad) {
  size_t a_rows = ta ? k : m, a_cols = ta ? m : k;
  size_t b_rows = tb ? n : k, b_cols = tb ? k : n;
  size_t lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
  size_t off_a = 3, off_b = 5, off_c = 7;
  size_t na = off_a + a_rows * lda, nb = off_b + b_rows * ldb, nc = off_c + m * ldc;
  float *a = malloc(na * sizeof(float)), *b = malloc(nb * sizeof(float));
  float *c = malloc(nc * sizeof(float)), *want = malloc(nc * sizeof(float));
  float *got = malloc(nc * sizeof(float));
  assert_non_null(a);
  assert_non_null(b);
  assert_non_null(c);
  assert_non_null(want);
  assert_non_null(got);
  ref_fill_uniform(a, na, 1 + m * 31 + k, -1, 1);
  ref_fill_uniform(b, nb, 2 + n * 17 + k, -1, 1);
  ref_fill_uniform(c, nc, 3 + m + n, -1, 1);
  memcpy(want, c, nc * sizeof(float));

  lamp_tensor ba, bb, bc, va, vb, vc;
  device_copy(ctx, a, na, &ba);
  device_copy(ctx, b, nb, &bb);
  device_copy(ctx, c, nc, &bc);
  size_t ne_a[2] = {a_cols, a_rows}, nb_a[2] = {4, 4 * lda};
  size_t ne_b[2] = {b_cols, b_rows}, nb_b[2] = {4, 4 * ldb};
  size_t ne_c[2] = {n, m}, nb_c[2] = {4, 4 * ldc};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &ba, 4 * off_a, 2, ne_a, nb_a, &va));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &bb, 4 * off_b, 2, ne_b, nb_b, &vb));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &bc, 4 * off_c, 2, ne_c, nb_c, &vc));
  LAMP_OK_OR_FAIL(ctx, gemm(ctx, ta ? LAMP_TRANS : LAMP_NO_TRANS,
                            tb ? LAMP_TRANS : LAMP_NO_TRANS, alpha, &va, &vb, beta, &vc));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &bc, got, nc * sizeof(float)));

  ref_gemm(ta, tb, m, n, k, alpha, a + off_a, lda, b + off_b, ldb, beta, want + off_c, ldc);
  double err = ref_max_rel_error(got, want, nc);
  if (!(err <= 1e-5))
    fail_msg("gemm ta=%d tb=%d m=%zu n=%zu k=%zu: max relative error %.3e", ta, tb, m, n, k, err);
  lamp_tensor_release(&ba);
  lamp_tensor_release(&bb);
  lamp_tensor_release(&bc);
  free(a);
  free(b);
  free(c);
  free(want);
  free(got);
}

static void check_gemm(lamp_context *ctx, int ta, int tb, size_t m, size_t n, size_t k,
                       float alpha, float beta, size_t pad) {
  check_gemm_by(ctx, lamp_gemm, ta, tb, m, n, k, alpha, beta, pad);
}

static void test_gemm_sizes_and_transposes(void **state) {
  lamp_context *ctx = *state;
  static const size_t sizes[] = {1, 7, 64, 65, 129, 300};
  const size_t ns = sizeof(sizes) / sizeof(sizes[0]);
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (size_t i = 0; i < ns; i++) {
        /* square, and two rectangular shapes that mix the sizes */
        check_gemm(ctx, ta, tb, sizes[i], sizes[i], sizes[i], 1.0f, 0.0f, 0);
        check_gemm(ctx, ta, tb, sizes[i], sizes[(i + 1) % ns], sizes[(i + 2) % ns], 0.75f, -0.5f,
                   3);
      }
}

/* One row of A (lamp__gemm_few's own kernel on the CPU profile, CLBlast's GEMV on the GPU
 * profile) with beta 0 ignores what C held, NaN included, as the GEMM does. */
static void check_row_ignores_c(lamp_context *ctx) {
  enum { N = 7, K = 5 };
  float a[K], b[N * K], c[N], want[N];
  ref_fill_uniform(a, K, 1, -1, 1);
  ref_fill_uniform(b, N * K, 2, -1, 1);
  for (size_t j = 0; j < N; j++) c[j] = NAN;
  ref_gemm(0, 1, 1, N, K, 1.0, a, K, b, K, 0.0, want, N);
  lamp_tensor va, vb, vc;
  const size_t na[2] = {K, 1}, nb[2] = {K, N}, nc[2] = {N, 1};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, na, &va));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, nb, &vb));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, nc, &vc));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &va, a, sizeof(a)));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &vb, b, sizeof(b)));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &vc, c, sizeof(c)));
  LAMP_OK_OR_FAIL(ctx, lamp__gemm_few(ctx, LAMP_NO_TRANS, LAMP_TRANS, 1.0f, &va, &vb, 0.0f,
                                      &vc));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &vc, c, sizeof(c)));
  assert_true(ref_max_rel_error(c, want, N) < 1e-5);
  lamp_tensor_release(&va), lamp_tensor_release(&vb), lamp_tensor_release(&vc);
}

/* The products of a few rows of A, which lamp__gemm_few does not hand to CLBlast's GEMM: on
 * either side of the kernel's 16 rows, every transpose pair, offsets and padded strides. */
static void test_gemm_few_rows(void **state) {
  lamp_context *ctx = *state;
  static const size_t rows[] = {1, 2, 16, 17};
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        check_gemm_by(ctx, lamp__gemm_few, ta, tb, rows[i], 65, 129, 1.0f, 0.0f, 0);
        check_gemm_by(ctx, lamp__gemm_few, ta, tb, rows[i], 7, 13, 0.75f, -0.5f, 3);
      }
  check_row_ignores_c(ctx);
}

/* The same with the other kernel profile than the context's, so that both routes run. */
static void test_gemm_few_rows_other_profile(void **state) {
  lamp_kernel_profile mine;
  LAMP_OK_OR_FAIL((lamp_context *)*state, lamp_context_get_kernel_profile(*state, &mine));
  lamp_context_options o;
  lamp_context_options_init(&o);
  o.kernel_profile = mine.kind == LAMP_KERNEL_PROFILE_GPU ? LAMP_KERNEL_PROFILE_CPU
                                                          : LAMP_KERNEL_PROFILE_GPU;
  lamp_context *ctx = NULL;
  char err[512];
  assert_int_equal(lamp_context_create(&o, &ctx, err, sizeof(err)), LAMP_OK);
  void *inner = ctx;
  test_gemm_few_rows(&inner);
  lamp_context_release(ctx);
}

static void test_gemm_batched(void **state) {
  lamp_context *ctx = *state;
  const size_t batch = 3, m = 65, n = 7, k = 129;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int shared_b = 0; shared_b < 2; shared_b++) {
        size_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
        size_t nbatch_b = shared_b ? 1 : batch;
        /* batch strides with a gap, so stride handling is visible */
        size_t sa = a_rows * a_cols + 11, sb = b_rows * b_cols + 5, sc = m * n + 2;
        size_t na = batch * sa, nb = nbatch_b * sb, nc = batch * sc;
        float *a = malloc(4 * na), *b = malloc(4 * nb), *c = malloc(4 * nc), *want = malloc(4 * nc);
        float *got = malloc(4 * nc);
        assert_true(a && b && c && want && got);
        ref_fill_uniform(a, na, 10, -1, 1);
        ref_fill_uniform(b, nb, 11, -1, 1);
        ref_fill_uniform(c, nc, 12, -1, 1);
        memcpy(want, c, 4 * nc);
        lamp_tensor ba, bb, bc, va, vb, vc;
        device_copy(ctx, a, na, &ba);
        device_copy(ctx, b, nb, &bb);
        device_copy(ctx, c, nc, &bc);
        size_t ne_a[3] = {a_cols, a_rows, batch}, nb_a[3] = {4, 4 * a_cols, 4 * sa};
        size_t ne_b[3] = {b_cols, b_rows, nbatch_b}, nb_b[3] = {4, 4 * b_cols, 4 * sb};
        size_t ne_c[3] = {n, m, batch}, nb_c[3] = {4, 4 * n, 4 * sc};
        LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &ba, 0, 3, ne_a, nb_a, &va));
        LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &bb, 0, 3, ne_b, nb_b, &vb));
        LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &bc, 0, 3, ne_c, nb_c, &vc));
        LAMP_OK_OR_FAIL(ctx, lamp_gemm(ctx, ta ? LAMP_TRANS : LAMP_NO_TRANS,
                                       tb ? LAMP_TRANS : LAMP_NO_TRANS, 1.5f, &va, &vb, 0.25f,
                                       &vc));
        LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &bc, got, 4 * nc));
        for (size_t i = 0; i < batch; i++)
          ref_gemm(ta, tb, m, n, k, 1.5, a + i * sa, a_cols, b + (shared_b ? 0 : i * sb), b_cols,
                   0.25, want + i * sc, n);
        double err = ref_max_rel_error(got, want, nc);
        if (!(err <= 1e-5))
          fail_msg("batched gemm ta=%d tb=%d shared_b=%d: error %.3e", ta, tb, shared_b, err);
        lamp_tensor_release(&ba);
        lamp_tensor_release(&bb);
        lamp_tensor_release(&bc);
        free(a);
        free(b);
        free(c);
        free(want);
        free(got);
      }
}

static void test_gemm_shape_errors(void **state) {
  lamp_context *ctx = *state;
  lamp_tensor a, b, c;
  size_t sa[2] = {4, 3}, sb[2] = {5, 6}, sc[2] = {5, 3};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, sa, &a));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, sb, &b));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, sc, &c));
  /* A is 3x4, B is 6x5: inner dimensions differ */
  assert_int_equal(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1, &a, &b, 0, &c), LAMP_ERR_SHAPE);
  assert_non_null(strstr(lamp_context_error(ctx), "op(A) is 3x4"));
  /* a column view (element stride 12 bytes) is not something CLBlast can read */
  lamp_tensor col;
  size_t ne[2] = {1, 3}, nb[2] = {12, 16};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &a, 0, 2, ne, nb, &col));
  col.nb[0] = 16;
  assert_int_equal(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1, &col, &b, 0, &c),
                   LAMP_ERR_SHAPE);
  assert_int_equal(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1, NULL, &b, 0, &c),
                   LAMP_ERR_INVALID_ARGUMENT);
  lamp_tensor_release(&a);
  lamp_tensor_release(&b);
  lamp_tensor_release(&c);
}

/* A context lamp made is really gone after lamp_context_release, although CLBlast cached the
 * programs of a product on it (they hold the OpenCL context): only the test's own reference to
 * the OpenCL context is left. */
static void test_released_context_is_released(void **state) {
  (void)state;
  lamp_context *ctx = NULL;
  char err[512];
  if (lamp_context_create(NULL, &ctx, err, sizeof(err)) != LAMP_OK) fail_msg("context: %s", err);
  check_gemm(ctx, 0, 1, 5, 7, 3, 1.0f, 0.0f, 0);
  cl_context cl = lamp_context_cl_context(ctx);
  assert_int_equal(clRetainContext(cl), CL_SUCCESS);
  lamp_context_release(ctx);
  cl_uint refs = 0;
  assert_int_equal(clGetContextInfo(cl, CL_CONTEXT_REFERENCE_COUNT, sizeof(refs), &refs, NULL),
                   CL_SUCCESS);
  assert_int_equal(refs, 1);
  clReleaseContext(cl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gemm_sizes_and_transposes),
      cmocka_unit_test(test_gemm_few_rows),
      cmocka_unit_test(test_gemm_few_rows_other_profile),
      cmocka_unit_test(test_gemm_batched),
      cmocka_unit_test(test_gemm_shape_errors),
      cmocka_unit_test(test_released_context_is_released),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
