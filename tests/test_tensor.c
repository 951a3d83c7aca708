/* Tensors: round trips through offsets, views and strides; fill; bounds and shape errors;
 * allocation failure; and the profiling records that kernels and GEMMs leave. */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "ref.h"

static void test_contiguous_round_trip(void **state) {
  lamp_context *ctx = *state;
  size_t ne[3] = {5, 4, 3};
  float in[60], out[60];
  ref_fill_uniform(in, 60, 7, -2, 2);
  lamp_tensor t;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 3, ne, &t));
  assert_true(lamp_tensor_is_contiguous(&t));
  assert_int_equal(lamp_tensor_numel(&t), 60);
  assert_int_equal(t.nb[1], 20);
  assert_int_equal(t.nb[2], 80);
  /* fresh tensors start at zero */
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &t, out, sizeof(out)));
  for (int i = 0; i < 60; i++) assert_true(out[i] == 0.0f);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &t, in, sizeof(in)));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &t, out, sizeof(out)));
  assert_memory_equal(in, out, sizeof(in));
  /* a wrong byte count is refused */
  assert_int_equal(lamp_tensor_upload(ctx, &t, in, sizeof(in) - 4), LAMP_ERR_SHAPE);
  lamp_tensor_release(&t);
  assert_null(t.buffer);
}

/* A 3x4 block at row 2, column 1 of an 8x6 matrix: offsets and row strides. */
static void test_view_round_trip(void **state) {
  lamp_context *ctx = *state;
  size_t ne[2] = {6, 8};
  float all[48], block[12], back[48];
  for (int i = 0; i < 48; i++) all[i] = (float)i;
  lamp_tensor t, v;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &t));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &t, all, sizeof(all)));
  size_t vne[2] = {4, 3}, vnb[2] = {4, 24};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &t, 4 * (2 * 6 + 1), 2, vne, vnb, &v));
  assert_false(lamp_tensor_is_contiguous(&v));
  assert_int_equal(v.owns_buffer, 0);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &v, block, sizeof(block)));
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++) assert_true(block[r * 4 + c] == all[(r + 2) * 6 + c + 1]);

  /* writing through the view changes exactly those elements */
  for (int i = 0; i < 12; i++) block[i] = -1.0f - (float)i;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &v, block, sizeof(block)));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &t, back, sizeof(back)));
  for (int r = 0; r < 8; r++)
    for (int c = 0; c < 6; c++) {
      int in_block = r >= 2 && r < 5 && c >= 1 && c < 5;
      float want = in_block ? -1.0f - (float)((r - 2) * 4 + (c - 1)) : all[r * 6 + c];
      assert_true(back[r * 6 + c] == want);
    }
  lamp_tensor_release(&v); /* a view: the buffer stays */
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &t, back, sizeof(back)));
  lamp_tensor_release(&t);
}

/* The transpose of a matrix as a view (element stride = row length), and a 4-d view. */
static void test_transposed_and_4d_views(void **state) {
  lamp_context *ctx = *state;
  size_t ne[2] = {5, 3};
  float m[15], mt[15];
  for (int i = 0; i < 15; i++) m[i] = (float)(i * i);
  lamp_tensor t, tt;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &t));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &t, m, sizeof(m)));
  size_t tne[2] = {3, 5}, tnb[2] = {20, 4};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &t, 0, 2, tne, tnb, &tt));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &tt, mt, sizeof(mt)));
  for (int r = 0; r < 5; r++)
    for (int c = 0; c < 3; c++) assert_true(mt[r * 3 + c] == m[c * 5 + r]);
  lamp_tensor_release(&t);

  size_t ne4[4] = {3, 2, 2, 2};
  float x[24], y[24];
  ref_fill_uniform(x, 24, 3, -1, 1);
  lamp_tensor big, v4;
  size_t nbig = 200;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &nbig, &big));
  size_t nb4[4] = {8, 40, 100, 400};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &big, 12, 4, ne4, nb4, &v4));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &v4, x, sizeof(x)));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &v4, y, sizeof(y)));
  assert_memory_equal(x, y, sizeof(x));
  lamp_tensor_release(&big);
}

static void test_fill_strided(void **state) {
  lamp_context *ctx = *state;
  size_t ne[2] = {7, 6};
  float out[42];
  lamp_tensor t, v;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &t));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_fill(ctx, &t, 0.5f));
  /* every other column of rows 1..4 */
  size_t vne[2] = {3, 4}, vnb[2] = {8, 28};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &t, 28 + 4, 2, vne, vnb, &v));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_fill(ctx, &v, -3.0f));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &t, out, sizeof(out)));
  for (int r = 0; r < 6; r++)
    for (int c = 0; c < 7; c++) {
      int hit = r >= 1 && r <= 4 && (c == 1 || c == 3 || c == 5);
      assert_true(out[r * 7 + c] == (hit ? -3.0f : 0.5f));
    }
  lamp_tensor_release(&t);
}

/* Scaling a strided view touches its elements only, each multiplied exactly (a power of two
 * and a factor whose products the host computes in the same float arithmetic). */
static void test_scale_strided(void **state) {
  lamp_context *ctx = *state;
  size_t ne[2] = {7, 6};
  float in[42], out[42];
  ref_fill_uniform(in, 42, 5, -2, 2);
  lamp_tensor t, v;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &t));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &t, in, sizeof(in)));
  size_t vne[2] = {3, 4}, vnb[2] = {8, 28};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &t, 28 + 4, 2, vne, vnb, &v));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_scale(ctx, &v, 0.375f));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &t, out, sizeof(out)));
  for (int r = 0; r < 6; r++)
    for (int c = 0; c < 7; c++) {
      int hit = r >= 1 && r <= 4 && (c == 1 || c == 3 || c == 5);
      float want = hit ? in[r * 7 + c] * 0.375f : in[r * 7 + c];
      assert_true(out[r * 7 + c] == want);
    }
  size_t ne16[1] = {4};
  lamp_tensor h;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F16, 1, ne16, &h));
  assert_int_equal(lamp_tensor_scale(ctx, &h, 2.0f), LAMP_ERR_UNSUPPORTED);
  lamp_tensor_release(&h);
  lamp_tensor_release(&t);
}

static void test_wrap_and_view_bounds(void **state) {
  lamp_context *ctx = *state;
  cl_int err;
  cl_mem buf = clCreateBuffer(lamp_context_cl_context(ctx), CL_MEM_READ_WRITE, 64, NULL, &err);
  assert_int_equal(err, CL_SUCCESS);
  lamp_tensor t, v;
  size_t ne = 16, ne_big = 17, ne2[2] = {4, 4};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_wrap(ctx, buf, 0, LAMP_DTYPE_F32, 1, &ne, NULL, &t));
  assert_int_equal(t.owns_buffer, 0);
  assert_int_equal(lamp_tensor_wrap(ctx, buf, 0, LAMP_DTYPE_F32, 1, &ne_big, NULL, &v),
                   LAMP_ERR_SHAPE);
  assert_non_null(strstr(lamp_context_error(ctx), "64-byte buffer"));
  assert_int_equal(lamp_tensor_wrap(ctx, buf, 4, LAMP_DTYPE_F32, 1, &ne, NULL, &v), LAMP_ERR_SHAPE);
  assert_int_equal(lamp_tensor_wrap(ctx, buf, 2, LAMP_DTYPE_F32, 1, &ne_big, NULL, &v) != LAMP_OK, 1);
  size_t nb_bad[2] = {4, 20};
  assert_int_equal(lamp_tensor_view(ctx, &t, 0, 2, ne2, nb_bad, &v), LAMP_ERR_SHAPE);
  size_t nb_odd[2] = {3, 16};
  assert_int_equal(lamp_tensor_view(ctx, &t, 0, 2, ne2, nb_odd, &v), LAMP_ERR_SHAPE);
  assert_int_equal(lamp_tensor_view(ctx, &t, 0, 5, ne2, NULL, &v), LAMP_ERR_SHAPE);
  lamp_tensor_release(&t); /* must not free the host's buffer */
  size_t size = 0;
  assert_int_equal(clGetMemObjectInfo(buf, CL_MEM_SIZE, sizeof(size), &size, NULL), CL_SUCCESS);
  assert_int_equal(size, 64);
  clReleaseMemObject(buf);
}

static void test_create_errors(void **state) {
  lamp_context *ctx = *state;
  lamp_tensor t;
  size_t zero[2] = {3, 0};
  assert_int_equal(lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, zero, &t), LAMP_ERR_SHAPE);
  assert_non_null(strstr(lamp_context_error(ctx), "dimension 1"));
  size_t one = 1;
  assert_int_equal(lamp_tensor_create(ctx, LAMP_DTYPE_F32, 0, &one, &t), LAMP_ERR_SHAPE);
  assert_int_equal(lamp_tensor_create(ctx, (lamp_dtype)9, 1, &one, &t), LAMP_ERR_INVALID_ARGUMENT);
  /* more than the device can allocate: a clear out-of-memory error, not a crash */
  const lamp_device_info *dev = lamp_context_device(ctx);
  size_t huge[2] = {(size_t)(dev->max_alloc_bytes / 4 / 1024) + 1024, 1024};
  assert_int_equal(lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, huge, &t), LAMP_ERR_OUT_OF_MEMORY);
  assert_non_null(strstr(lamp_context_error(ctx), "largest allocation"));
  size_t overflow[4] = {SIZE_MAX / 2, 4, 1, 1};
  assert_int_equal(lamp_tensor_create(ctx, LAMP_DTYPE_F32, 4, overflow, &t), LAMP_ERR_SHAPE);
  /* fill refuses f16 for now, clearly */
  size_t n2 = 8;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F16, 1, &n2, &t));
  assert_int_equal(lamp_tensor_fill(ctx, &t, 1.0f), LAMP_ERR_UNSUPPORTED);
  lamp_tensor_release(&t);
}

static void test_profile_records(void **state) {
  (void)state;
  lamp_context_options o;
  lamp_context_options_init(&o);
  o.profile = 1;
  lamp_context *ctx = NULL;
  char err[512];
  assert_int_equal(lamp_context_create(&o, &ctx, err, sizeof(err)), LAMP_OK);
  assert_true(lamp_profile_enabled(ctx));
  size_t ne[2] = {32, 32};
  lamp_tensor a, c;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &a));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &c));
  for (int i = 0; i < 3; i++) LAMP_OK_OR_FAIL(ctx, lamp_tensor_fill(ctx, &a, 1.0f));
  LAMP_OK_OR_FAIL(ctx, lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1, &a, &a, 0, &c));
  LAMP_OK_OR_FAIL(ctx, lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_TRANS, 1, &a, &a, 0, &c));
  lamp_profile_entry e[8];
  size_t n = 0;
  LAMP_OK_OR_FAIL(ctx, lamp_profile_read(ctx, e, 8, &n));
  assert_int_equal(n, 2);
  double share = 0;
  int seen_fill = 0, seen_gemm = 0;
  for (size_t i = 0; i < n; i++) {
    share += e[i].share;
    assert_true(e[i].total_ms > 0);
    if (!strcmp(e[i].name, "tensor_fill_f32")) seen_fill = e[i].calls == 3;
    if (!strcmp(e[i].name, "sgemm")) seen_gemm = e[i].calls == 2;
  }
  assert_true(seen_fill && seen_gemm);
  assert_true(share > 0.999 && share < 1.001);
  assert_true(e[0].total_ms >= e[1].total_ms);
  LAMP_OK_OR_FAIL(ctx, lamp_profile_reset(ctx));
  LAMP_OK_OR_FAIL(ctx, lamp_profile_read(ctx, e, 8, &n));
  assert_int_equal(n, 0);
  float out[1024];
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &c, out, sizeof(out)));
  assert_true(out[0] == 32.0f);
  lamp_tensor_release(&a);
  lamp_tensor_release(&c);
  lamp_context_release(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_contiguous_round_trip),
      cmocka_unit_test(test_view_round_trip),
      cmocka_unit_test(test_transposed_and_4d_views),
      cmocka_unit_test(test_fill_strided),
      cmocka_unit_test(test_scale_strided),
      cmocka_unit_test(test_wrap_and_view_bounds),
      cmocka_unit_test(test_create_errors),
      cmocka_unit_test(test_profile_records),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
