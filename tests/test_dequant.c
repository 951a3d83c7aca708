/* The dequantising kernels of kernels/dequant.cl against the host decoders of src/io/gguf.c
 * (which test_gguf checks against the independent reference in ref_gguf.c), bit for bit, for
 * every format lamp decodes: row ranges, gathered rows and the embedding with a prompt; and the
 * product that decodes as it reads, against the host-decoded rows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "fixture.h"
#include "ref_gguf.h"

#define ROWS 5
#define COLS 512 /* two K-quant blocks per row */

static const lamp_ggml_type all_types[] = {
    LAMP_GGML_F32,  LAMP_GGML_F16,  LAMP_GGML_BF16, LAMP_GGML_Q4_0, LAMP_GGML_Q4_1, LAMP_GGML_Q5_0,
    LAMP_GGML_Q5_1, LAMP_GGML_Q8_0, LAMP_GGML_Q4_K, LAMP_GGML_Q5_K, LAMP_GGML_Q6_K};
#define N_TYPES (sizeof(all_types) / sizeof(all_types[0]))

static uint64_t rng_state;
static uint32_t rng(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(rng_state >> 33);
}

/* Random blocks whose half-precision scales are finite: moderate normals, and in one block of
 * four subnormals (exponent 0), which take the decoders' other branch. */
static unsigned char *random_rows(lamp_ggml_type type, size_t *bytes) {
  size_t be = lamp_ggml_block_elements(type), bb = lamp_ggml_block_bytes(type);
  size_t blocks = ROWS * COLS / be;
  *bytes = blocks * bb;
  unsigned char *src = malloc(*bytes);
  assert_non_null(src);
  for (size_t i = 0; i < *bytes; i++) src[i] = (unsigned char)rng();
  size_t h_at[2] = {0, 0}, n_h = 0;
  switch (type) {
    case LAMP_GGML_Q4_0: case LAMP_GGML_Q5_0: case LAMP_GGML_Q8_0: h_at[0] = 0, n_h = 1; break;
    case LAMP_GGML_Q4_1: case LAMP_GGML_Q5_1: case LAMP_GGML_Q4_K: case LAMP_GGML_Q5_K:
      h_at[0] = 0, h_at[1] = 2, n_h = 2;
      break;
    case LAMP_GGML_Q6_K: h_at[0] = 208, n_h = 1; break;
    default: break;
  }
  for (size_t blk = 0; blk < blocks; blk++)
    for (size_t k = 0; k < n_h; k++) {
      uint16_t exp = blk % 4 == 3 ? 0 : (uint16_t)(5 + rng() % 16);
      uint16_t h = (uint16_t)((rng() & 0x83FF) | exp << 10);
      src[blk * bb + h_at[k]] = (unsigned char)h;
      src[blk * bb + h_at[k] + 1] = (unsigned char)(h >> 8);
    }
  /* plain floats: exponents below all-ones, so no infinity or NaN */
  if (type == LAMP_GGML_F16 || type == LAMP_GGML_BF16)
    for (size_t i = 0; i < ROWS * COLS; i++) src[2 * i + 1] &= 0xBF;
  if (type == LAMP_GGML_F32)
    for (size_t i = 0; i < ROWS * COLS; i++) src[4 * i + 3] &= 0xBF;
  return src;
}

/* The rows uploaded as one stored part, at a byte offset that is not 0. */
typedef struct stored {
  cl_mem buffer;
  lamp__part part;
  float *host; /* (ROWS, COLS) decoded on the host */
} stored;

static void stored_make(lamp_context *ctx, lamp_ggml_type type, stored *s) {
  size_t bytes = 0;
  unsigned char *src = random_rows(type, &bytes);
  s->host = malloc(ROWS * COLS * sizeof(float));
  assert_non_null(s->host);
  LAMP_OK_OR_FAIL(ctx, lamp_ggml_dequantize(ctx, type, src, bytes, s->host, ROWS * COLS));
  const size_t at = 256;
  cl_int err;
  s->buffer = clCreateBuffer(lamp_context_cl_context(ctx), CL_MEM_READ_WRITE, at + bytes, NULL,
                             &err);
  assert_int_equal(err, CL_SUCCESS);
  assert_int_equal(clEnqueueWriteBuffer(lamp_context_cl_queue(ctx), s->buffer, CL_TRUE, at, bytes,
                                        src, 0, NULL, NULL),
                   CL_SUCCESS);
  free(src);
  memset(&s->part, 0, sizeof(s->part));
  s->part.raw.buffer = s->buffer;
  s->part.raw.offset = at;
  s->part.type = type;
  s->part.rows = ROWS;
  s->part.row_bytes = lamp__model_type_bytes(type, 1, COLS);
}

static void stored_free(stored *s) {
  clReleaseMemObject(s->buffer);
  free(s->host);
}

static float *download(lamp_context *ctx, const lamp_tensor *t) {
  size_t n = lamp_tensor_numel(t);
  float *x = malloc(n * sizeof(float));
  assert_non_null(x);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, t, x, n * sizeof(float)));
  return x;
}

static cl_mem ints(lamp_context *ctx, const int *v, size_t n) {
  cl_int err;
  cl_mem m = clCreateBuffer(lamp_context_cl_context(ctx), CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                            n * sizeof(cl_int), (void *)v, &err);
  assert_int_equal(err, CL_SUCCESS);
  return m;
}

/* Bit equality, element by element, naming the first that differs. */
static void expect_bits(lamp_ggml_type type, const char *what, const float *got,
                        const float *want, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (memcmp(&got[i], &want[i], sizeof(float)))
      fail_msg("%s %s element %zu: device %.9g, host %.9g", lamp_ggml_type_name(type), what, i,
               got[i], want[i]);
}

static void test_rows(void **state) {
  lamp_context *ctx = *state;
  rng_state = 11;
  for (size_t t = 0; t < N_TYPES; t++) {
    stored s;
    stored_make(ctx, all_types[t], &s);
    /* rows 1 .. 3 into a tensor at a float offset of one row */
    lamp_tensor out;
    size_t ne[2] = {COLS, 4};
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &out));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_fill(ctx, &out, -1.0f));
    LAMP_OK_OR_FAIL(ctx, lamp__dequant_rows(ctx, out.buffer, out.offset / 4 + COLS, &s.part, 1, 3,
                                            COLS));
    float *got = download(ctx, &out);
    for (size_t i = 0; i < COLS; i++) assert_true(got[i] == -1.0f); /* row 0 left alone */
    expect_bits(all_types[t], "rows", got + COLS, s.host + COLS, 3 * COLS);
    free(got);
    lamp_tensor_release(&out);
    stored_free(&s);
  }
}

static void test_gather(void **state) {
  lamp_context *ctx = *state;
  rng_state = 12;
  const int idx[4] = {4, 0, 2, 4};
  cl_mem ib = ints(ctx, idx, 4);
  for (size_t t = 0; t < N_TYPES; t++) {
    stored s;
    stored_make(ctx, all_types[t], &s);
    lamp_tensor out;
    size_t ne[2] = {COLS, 4};
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &out));
    LAMP_OK_OR_FAIL(ctx, lamp__dequant_gather(ctx, &out, &s.part, ib));
    float *got = download(ctx, &out);
    for (size_t m = 0; m < 4; m++)
      expect_bits(all_types[t], "gathered row", got + m * COLS, s.host + (size_t)idx[m] * COLS,
                  COLS);
    free(got);
    lamp_tensor_release(&out);
    stored_free(&s);
  }
  clReleaseMemObject(ib);
}

/* Two prompt rows, then sequences of 3 tokens with lengths 3 and 1: padding must be zero. */
static void test_embedding(void **state) {
  lamp_context *ctx = *state;
  rng_state = 13;
  const size_t P = 2, B = 2, T = 3, N = P + B * T;
  const int ids[6] = {3, 1, 4, 0, 2, 2}, lengths[2] = {3, 1};
  cl_mem idb = ints(ctx, ids, 6), lb = ints(ctx, lengths, 2);
  float prompt[2 * COLS];
  for (size_t i = 0; i < 2 * COLS; i++) prompt[i] = (float)(rng() % 1000) / 250.0f - 2.0f;
  lamp_tensor pt;
  size_t pne[2] = {COLS, P};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, pne, &pt));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &pt, prompt, sizeof(prompt)));
  float *want = calloc(N * COLS, sizeof(float));
  assert_non_null(want);
  for (size_t t = 0; t < N_TYPES; t++) {
    stored s;
    stored_make(ctx, all_types[t], &s);
    memcpy(want, prompt, sizeof(prompt));
    for (size_t b = 0; b < B; b++)
      for (size_t i = 0; i < T; i++) {
        float *row = want + (P + b * T + i) * COLS;
        if ((int)i < lengths[b]) memcpy(row, s.host + (size_t)ids[b * T + i] * COLS,
                                        COLS * sizeof(float));
        else memset(row, 0, COLS * sizeof(float));
      }
    lamp_tensor x;
    size_t ne[2] = {COLS, N};
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &x));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_fill(ctx, &x, 7.0f));
    LAMP_OK_OR_FAIL(ctx, lamp__dequant_embedding(ctx, &x, &s.part, &pt, idb, lb, B, T, P, ROWS));
    float *got = download(ctx, &x);
    expect_bits(all_types[t], "embedding", got, want, N * COLS);
    free(got);
    /* a shape that does not match is refused */
    assert_int_equal(lamp__dequant_embedding(ctx, &x, &s.part, &pt, idb, lb, B, T + 1, P, ROWS),
                     LAMP_ERR_SHAPE);
    lamp_tensor_release(&x);
    stored_free(&s);
  }
  free(want);
  lamp_tensor_release(&pt);
  clReleaseMemObject(idb);
  clReleaseMemObject(lb);
}

/* dequant_gemm_rows against the host-decoded rows in double: A of 1 and 3 rows (one at a row
 * stride wider than its columns) into columns 2 .. 6 of a wider C, whose other columns must be
 * left alone; shapes the kernel does not take are refused. */
static void test_product(void **state) {
  lamp_context *ctx = *state;
  /* a GPU whose compiled kernel allows fewer than its 32 x 4 items takes the expanding path */
  if (!lamp__dequant_product_takes(ctx, LAMP_GGML_Q8_0, 16, COLS)) {
    print_message("dequant_gemm_rows: this device's kernel takes no 32 x 4 groups; skipped\n");
    skip();
  }
  rng_state = 14;
  enum { M = 3, LDA = COLS + 8, NC = ROWS + 3, FIRST = 2 };
  float *av = malloc(M * LDA * sizeof(float));
  assert_non_null(av);
  for (size_t i = 0; i < M * LDA; i++) av[i] = (float)(rng() % 2000) / 1000.0f - 1.0f;
  lamp_tensor abuf, cbuf;
  size_t ane[2] = {LDA, M}, cne[2] = {NC, M};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ane, &abuf));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &abuf, av, M * LDA * sizeof(float)));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, cne, &cbuf));
  for (size_t t = 0; t < N_TYPES; t++)
    for (size_t m = 1; m <= M; m += M - 1) {
      stored s;
      stored_make(ctx, all_types[t], &s);
      lamp_tensor a = abuf, c = cbuf;
      a.ne[0] = COLS, a.ne[1] = m, c.ne[1] = m;
      LAMP_OK_OR_FAIL(ctx, lamp_tensor_fill(ctx, &cbuf, -7.0f));
      LAMP_OK_OR_FAIL(ctx, lamp__dequant_product(ctx, &c, FIRST, &a, &s.part));
      float *got = download(ctx, &cbuf);
      for (size_t i = 0; i < m; i++)
        for (size_t n = 0; n < NC; n++) {
          const float g = got[i * NC + n];
          if (n < FIRST || n >= FIRST + ROWS) {
            if (g != -7.0f) fail_msg("%s m=%zu: C(%zu, %zu) = %g was overwritten",
                                     lamp_ggml_type_name(all_types[t]), m, i, n, g);
            continue;
          }
          double want = 0.0, mag = 0.0;
          for (size_t k = 0; k < COLS; k++) {
            const double x = (double)av[i * LDA + k] * s.host[(n - FIRST) * COLS + k];
            want += x;
            mag += fabs(x);
          }
          if (!(fabs(g - want) <= 1e-5 * mag + 1e-30))
            fail_msg("%s m=%zu: C(%zu, %zu) = %.9g, want %.9g", lamp_ggml_type_name(all_types[t]),
                     m, i, n, g, want);
        }
      free(got);
      /* more rows than the kernel keeps accumulators for, or a column count off its units */
      lamp_tensor wide = cbuf;
      assert_true(lamp__dequant_product_takes(ctx, all_types[t], 16, COLS));
      assert_false(lamp__dequant_product_takes(ctx, all_types[t], 17, COLS));
      assert_false(lamp__dequant_product_takes(ctx, all_types[t], 1, COLS + 4));
      a.ne[0] = COLS - 4;
      assert_int_equal(lamp__dequant_product(ctx, &wide, FIRST, &a, &s.part), LAMP_ERR_SHAPE);
      a.ne[0] = COLS;
      assert_int_equal(lamp__dequant_product(ctx, &wide, NC - 1, &a, &s.part), LAMP_ERR_SHAPE);
      stored_free(&s);
    }
  free(av);
  lamp_tensor_release(&abuf);
  lamp_tensor_release(&cbuf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rows),
      cmocka_unit_test(test_gather),
      cmocka_unit_test(test_embedding),
      cmocka_unit_test(test_product),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
