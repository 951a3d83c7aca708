/* Prompt save and load: a round trip for each method gives back the same bits and the same
 * forward output; files of another shape, method or pooling window, files without lamp's
 * metadata, with a tampered tensor shape or truncated, are refused and change nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "ref.h"

static char dir[64];

static int group_setup(void **state) {
  snprintf(dir, sizeof(dir), "/tmp/lamp-prompt-io-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  return fixture_setup(state);
}

static int group_teardown(void **state) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return fixture_teardown(state);
}

static lamp_prompt *make(lamp_context *ctx, lamp_prompt_method m, size_t l, size_t d, size_t r,
                         size_t s) {
  lamp_prompt_options o;
  lamp_prompt_options_init(&o, m, d);
  o.length = l;
  o.rank = r;
  o.bottleneck = r;
  o.pool = s;
  o.seed = 1234;
  o.init = LAMP_PROMPT_INIT_NONE;
  lamp_prompt *p = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_create(ctx, &o, &p));
  return p;
}

/* All parameters, concatenated in lamp_prompt_params order; returns their number. */
static size_t get_params(lamp_context *ctx, lamp_prompt *p, float *out) {
  lamp_param prm[LAMP_PROMPT_MAX_PARAMS];
  size_t n = 0, at = 0;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_params(p, prm, LAMP_PROMPT_MAX_PARAMS, &n));
  for (size_t i = 0; i < n; i++) {
    size_t len = lamp_tensor_numel(&prm[i].value);
    if (out) LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &prm[i].value, out + at, 4 * len));
    at += len;
  }
  return at;
}

static void set_params(lamp_context *ctx, lamp_prompt *p, const float *in) {
  lamp_param prm[LAMP_PROMPT_MAX_PARAMS];
  size_t n = 0, at = 0;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_params(p, prm, LAMP_PROMPT_MAX_PARAMS, &n));
  for (size_t i = 0; i < n; i++) {
    size_t len = lamp_tensor_numel(&prm[i].value);
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &prm[i].value, in + at, 4 * len));
    at += len;
  }
}

static void forward(lamp_context *ctx, lamp_prompt *p, float *out) {
  size_t rows = 0, width = 0;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_output_shape(p, &rows, &width));
  lamp_tensor t;
  size_t ne[2] = {width, rows};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &t));
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_forward(p, &t));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &t, out, 4 * rows * width));
  lamp_tensor_release(&t);
}

static void test_round_trips(void **state) {
  lamp_context *ctx = *state;
  static const lamp_prompt_method ms[] = {LAMP_PROMPT_LAMP, LAMP_PROMPT_PT, LAMP_PROMPT_DPT};
  const size_t l = 13, d = 20, r = 4, s = 3;
  char path[128];
  for (int mi = 0; mi < 3; mi++) {
    snprintf(path, sizeof(path), "%s/%s.safetensors", dir, lamp_prompt_method_name(ms[mi]));
    lamp_prompt *a = make(ctx, ms[mi], l, d, r, s), *b = make(ctx, ms[mi], l, d, r, s);
    size_t n = get_params(ctx, a, NULL);
    float *x = malloc(4 * n), *y = malloc(4 * n), *fa = malloc(4 * l * d), *fb = malloc(4 * l * d);
    ref_fill_uniform(x, n, 40 + mi, -1, 1);
    set_params(ctx, a, x);
    LAMP_OK_OR_FAIL(ctx, lamp_prompt_save(a, path));
    LAMP_OK_OR_FAIL(ctx, lamp_prompt_load(b, path));
    get_params(ctx, b, y);
    assert_memory_equal(x, y, 4 * n);
    forward(ctx, a, fa);
    forward(ctx, b, fb);
    assert_memory_equal(fa, fb, 4 * ((l + s - 1) / s) * d);

    /* the file is plain safetensors with the documented names, shapes and metadata */
    lamp_safetensors *st = NULL;
    LAMP_OK_OR_FAIL(ctx, lamp_safetensors_open(ctx, path, &st));
    assert_string_equal(lamp_safetensors_metadata_get(st, "lamp.method"),
                        lamp_prompt_method_name(ms[mi]));
    assert_string_equal(lamp_safetensors_metadata_get(st, "lamp.length"), "13");
    assert_string_equal(lamp_safetensors_metadata_get(st, "lamp.pool"), "3");
    assert_string_equal(lamp_safetensors_metadata_get(st, "lamp.seed"), "1234");
    const lamp_st_tensor *t = NULL;
    if (ms[mi] == LAMP_PROMPT_LAMP) {
      LAMP_OK_OR_FAIL(ctx, lamp_safetensors_find(st, "V", &t));
      assert_int_equal(t->shape[0], d);
      assert_int_equal(t->shape[1], r);
      /* V (C, R) as stored in the file: element (c, k) */
      float v[80];
      LAMP_OK_OR_FAIL(ctx, lamp_safetensors_read(st, t, v, sizeof(v)));
      assert_memory_equal(v, x + l * r + r, sizeof(v));
    } else if (ms[mi] == LAMP_PROMPT_DPT) {
      LAMP_OK_OR_FAIL(ctx, lamp_safetensors_find(st, "B", &t));
      assert_int_equal(t->shape[0], r);
      assert_int_equal(t->shape[1], d);
    } else {
      LAMP_OK_OR_FAIL(ctx, lamp_safetensors_find(st, "P", &t));
      assert_int_equal(t->shape[0], l);
      assert_int_equal(t->shape[1], d);
    }
    lamp_safetensors_release(st);
    lamp_prompt_release(a);
    lamp_prompt_release(b);
    free(x);
    free(y);
    free(fa);
    free(fb);
  }
}

/* Loads `path` into a fresh prompt of the given kind, expecting `want`, a message fragment and
 * untouched (zero) parameters. */
static void expect_refused(lamp_context *ctx, const char *path, lamp_prompt_method m, size_t l,
                           size_t d, size_t r, size_t s, lamp_status want, const char *fragment) {
  lamp_prompt *p = make(ctx, m, l, d, r, s);
  assert_int_equal(lamp_prompt_load(p, path), want);
  if (!strstr(lamp_context_error(ctx), fragment))
    fail_msg("message \"%s\" lacks \"%s\"", lamp_context_error(ctx), fragment);
  size_t n = get_params(ctx, p, NULL);
  float *x = malloc(4 * n);
  get_params(ctx, p, x);
  for (size_t i = 0; i < n; i++) assert_true(x[i] == 0.0f);
  free(x);
  lamp_prompt_release(p);
}

static void test_refused_files(void **state) {
  lamp_context *ctx = *state;
  char path[128], other[128];
  snprintf(path, sizeof(path), "%s/good.safetensors", dir);
  snprintf(other, sizeof(other), "%s/other.safetensors", dir);
  lamp_prompt *a = make(ctx, LAMP_PROMPT_LAMP, 13, 20, 4, 2);
  size_t n = get_params(ctx, a, NULL);
  float *x = malloc(4 * n);
  ref_fill_uniform(x, n, 9, -1, 1);
  set_params(ctx, a, x);
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_save(a, path));

  expect_refused(ctx, path, LAMP_PROMPT_LAMP, 14, 20, 4, 2, LAMP_ERR_SHAPE, "lamp.length");
  expect_refused(ctx, path, LAMP_PROMPT_LAMP, 13, 21, 4, 2, LAMP_ERR_SHAPE, "lamp.width");
  expect_refused(ctx, path, LAMP_PROMPT_LAMP, 13, 20, 5, 2, LAMP_ERR_SHAPE, "lamp.rank");
  expect_refused(ctx, path, LAMP_PROMPT_LAMP, 13, 20, 4, 3, LAMP_ERR_SHAPE, "lamp.pool");
  expect_refused(ctx, path, LAMP_PROMPT_DPT, 13, 20, 4, 2, LAMP_ERR_SHAPE, "lamp.method");
  expect_refused(ctx, path, LAMP_PROMPT_PT, 13, 20, 4, 2, LAMP_ERR_SHAPE, "lamp.method");

  /* right metadata, tampered shape of U */
  const char *keys[] = {"lamp.format", "lamp.version", "lamp.method", "lamp.length",
                        "lamp.width", "lamp.rank", "lamp.pool"};
  const char *vals[] = {"lamp-prompt", "1", "lamp", "13", "20", "4", "2"};
  uint64_t su[2] = {4, 13}, sq[1] = {4}, sv[2] = {20, 4};
  lamp_st_entry e[3] = {{"U", 2, su, x}, {"q", 1, sq, x}, {"V", 2, sv, x}};
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_write_f32(ctx, other, e, 3, keys, vals, 7));
  expect_refused(ctx, other, LAMP_PROMPT_LAMP, 13, 20, 4, 2, LAMP_ERR_SHAPE, "'U'");
  /* a tensor missing */
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_write_f32(ctx, other, e + 1, 2, keys, vals, 7));
  expect_refused(ctx, other, LAMP_PROMPT_LAMP, 13, 20, 4, 2, LAMP_ERR_FORMAT, "holds 2 tensors");
  /* no lamp metadata */
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_write_f32(ctx, other, e, 3, NULL, NULL, 0));
  expect_refused(ctx, other, LAMP_PROMPT_LAMP, 13, 20, 4, 2, LAMP_ERR_FORMAT, "not a lamp prompt");
  /* truncated */
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  unsigned char buf[4096];
  size_t len = fread(buf, 1, sizeof(buf), f);
  fclose(f);
  f = fopen(other, "wb");
  assert_int_equal(fwrite(buf, 1, len - 7, f), len - 7);
  fclose(f);
  expect_refused(ctx, other, LAMP_PROMPT_LAMP, 13, 20, 4, 2, LAMP_ERR_FORMAT, "outside");
  snprintf(other, sizeof(other), "%s/missing.safetensors", dir);
  expect_refused(ctx, other, LAMP_PROMPT_LAMP, 13, 20, 4, 2, LAMP_ERR_IO, "missing");
  /* saving where no file can be made */
  assert_int_equal(lamp_prompt_save(a, "/proc/lamp-cannot-write/x.safetensors"), LAMP_ERR_IO);
  lamp_prompt_release(a);
  free(x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trips),
      cmocka_unit_test(test_refused_files),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
