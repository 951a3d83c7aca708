/* Prompt initialisation: token sampling, PT rows copied from f32 and f16 embedding tables, DPT's
 * uniform A and B bit for bit, and LAMP's SVD start, whose rank-R prompt must be as close to P0
 * as the best rank-R approximation (Frobenius error within 1% of an exact SVD's). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "ref.h"
#include "ref_prompt.h"

static void test_sample_tokens(void **state) {
  (void)state;
  uint32_t ids[300], again[300];
  LAMP_OK_OR_FAIL(NULL, lamp_prompt_sample_tokens(7, 5000, 100, ids));
  LAMP_OK_OR_FAIL(NULL, lamp_prompt_sample_tokens(7, 5000, 100, again));
  assert_memory_equal(ids, again, sizeof(uint32_t) * 100);
  for (int i = 0; i < 100; i++) {
    assert_true(ids[i] < 5000);
    for (int j = 0; j < i; j++) assert_true(ids[i] != ids[j]);
  }
  LAMP_OK_OR_FAIL(NULL, lamp_prompt_sample_tokens(8, 5000, 100, again));
  assert_true(memcmp(ids, again, sizeof(uint32_t) * 100) != 0);
  /* more tokens than the pool: every id 3 or 4 times (300 = 3 * 90 + 30) */
  LAMP_OK_OR_FAIL(NULL, lamp_prompt_sample_tokens(9, 90, 300, ids));
  int seen[90] = {0};
  for (int i = 0; i < 300; i++) {
    assert_true(ids[i] < 90);
    seen[ids[i]]++;
  }
  for (int i = 0; i < 90; i++) assert_true(seen[i] == 3 || seen[i] == 4);
  assert_int_equal(lamp_prompt_sample_tokens(1, 0, 5, ids), LAMP_ERR_INVALID_ARGUMENT);
}

/* PT from an f32 table (a padded-row view) and from an f16 table: P holds exactly the rows that
 * lamp_prompt_sample_tokens names, from the first sample_rows rows. */
static void test_pt_from_embeddings(void **state) {
  lamp_context *ctx = *state;
  const size_t vocab = 50, d = 33, l = 7, pool = 20, ld = d + 5;
  float *table = malloc(4 * vocab * ld), *got = malloc(4 * l * d);
  uint16_t *halves = malloc(2 * vocab * d);
  assert_true(table && got && halves);
  for (size_t i = 0; i < vocab * ld; i++) table[i] = (float)((int)(i * 37 % 513) - 256) / 256.0f;
  for (size_t v = 0; v < vocab; v++)
    for (size_t c = 0; c < d; c++) halves[v * d + c] = ref_f32_to_f16(table[v * ld + c]);
  uint32_t ids[7];
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_sample_tokens(3, pool, l, ids));

  lamp_tensor buf, view, t16;
  size_t n = vocab * ld, vne[2] = {d, vocab}, vnb[2] = {4, 4 * ld}, hne[2] = {d, vocab};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &n, &buf));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &buf, table, 4 * n));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &buf, 0, 2, vne, vnb, &view));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F16, 2, hne, &t16));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &t16, halves, 2 * vocab * d));
  for (int half = 0; half < 2; half++) {
    lamp_prompt_options o;
    lamp_prompt_options_init(&o, LAMP_PROMPT_PT, d);
    o.length = l;
    o.seed = 3;
    o.sample_rows = pool;
    o.embedding = half ? &t16 : &view;
    lamp_prompt *p = NULL;
    LAMP_OK_OR_FAIL(ctx, lamp_prompt_create(ctx, &o, &p));
    lamp_param prm[1];
    size_t np = 0;
    LAMP_OK_OR_FAIL(ctx, lamp_prompt_params(p, prm, 1, &np));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &prm[0].value, got, 4 * l * d));
    for (size_t i = 0; i < l; i++)
      for (size_t c = 0; c < d; c++) assert_true(got[i * d + c] == table[ids[i] * ld + c]);
    lamp_prompt_release(p);
  }
  /* a table of the wrong width */
  lamp_prompt_options o;
  lamp_prompt_options_init(&o, LAMP_PROMPT_PT, d + 1);
  o.embedding = &view;
  lamp_prompt *p = NULL;
  assert_int_equal(lamp_prompt_create(ctx, &o, &p), LAMP_ERR_SHAPE);
  assert_non_null(strstr(lamp_context_error(ctx), "width"));
  lamp_tensor_release(&buf);
  lamp_tensor_release(&t16);
  free(table);
  free(got);
  free(halves);
}

static void test_dpt_uniform(void **state) {
  lamp_context *ctx = *state;
  const size_t l = 30, d = 40, b = 10;
  lamp_prompt_options o;
  lamp_prompt_options_init(&o, LAMP_PROMPT_DPT, d);
  o.length = l;
  o.seed = 99;
  lamp_prompt *p = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_create(ctx, &o, &p));
  lamp_param prm[2];
  size_t np = 0;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_params(p, prm, 2, &np));
  assert_int_equal(np, 2);
  float *a = malloc(4 * l * b), *bm = malloc(4 * b * d);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &prm[0].value, a, 4 * l * b));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &prm[1].value, bm, 4 * b * d));
  double mean = 0;
  for (size_t i = 0; i < l * b; i++) {
    assert_true(a[i] == ref_prompt_uniform(99, 0, i, -0.5f, 0.5f));
    assert_true(a[i] >= -0.5f && a[i] < 0.5f);
    mean += a[i];
  }
  for (size_t i = 0; i < b * d; i++) {
    assert_true(bm[i] == ref_prompt_uniform(99, l * b, i, -0.5f, 0.5f));
    mean += bm[i];
  }
  mean /= (double)(l * b + b * d);
  assert_true(fabs(mean) < 0.05);
  lamp_prompt_release(p);
  free(a);
  free(bm);
}

/* Downloads U, q, V of a LAMP prompt and checks: q descending and non-negative, U and V with
 * orthonormal columns. Returns the pooled-free prompt U diag(q) V^T via forward with s = 1. */
static void check_factors(lamp_context *ctx, lamp_prompt *p, size_t l, size_t d, size_t r) {
  lamp_param prm[3];
  size_t np = 0;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_params(p, prm, 3, &np));
  float *u = malloc(4 * l * r), *q = malloc(4 * r), *v = malloc(4 * d * r);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &prm[0].value, u, 4 * l * r));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &prm[1].value, q, 4 * r));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &prm[2].value, v, 4 * d * r));
  for (size_t k = 0; k < r; k++) {
    assert_true(q[k] >= 0);
    if (k) assert_true(q[k] <= q[k - 1] * (1 + 1e-6));
  }
  for (size_t i = 0; i < r; i++)
    for (size_t j = 0; j < r; j++) {
      double uu = 0, vv = 0;
      for (size_t t = 0; t < l; t++) uu += (double)u[t * r + i] * u[t * r + j];
      for (size_t c = 0; c < d; c++) vv += (double)v[c * r + i] * v[c * r + j];
      double want = i == j ? 1.0 : 0.0;
      if (fabs(uu - want) > 1e-4 || fabs(vv - want) > 1e-4)
        fail_msg("U^T U or V^T V at (%zu, %zu): %.3e, %.3e", i, j, uu, vv);
    }
  free(u);
  free(q);
  free(v);
}

/* ||P0 - U diag(q) V^T||_F against the best rank-R error from P0's exact singular values. */
static void check_svd_start(lamp_context *ctx, const lamp_prompt_options *o, const float *p0) {
  size_t l = o->length, d = o->width, r = o->rank;
  lamp_prompt *p = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_create(ctx, o, &p));
  check_factors(ctx, p, l, d, r);
  lamp_tensor out;
  size_t ne[2] = {d, l};
  assert_int_equal(o->pool, 1);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &out));
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_forward(p, &out));
  float *approx = malloc(4 * l * d);
  double *a = malloc(8 * l * d), *sv = malloc(8 * (l < d ? l : d));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &out, approx, 4 * l * d));
  double err = 0;
  for (size_t i = 0; i < l * d; i++) {
    a[i] = p0[i];
    err += ((double)p0[i] - approx[i]) * ((double)p0[i] - approx[i]);
  }
  err = sqrt(err);
  ref_singular_values(a, l, d, sv);
  double best = 0;
  for (size_t i = r; i < (l < d ? l : d); i++) best += sv[i] * sv[i];
  best = sqrt(best);
  print_message("svd start l=%zu d=%zu r=%zu: error %.6g, best rank-%zu error %.6g (ratio %.6f)\n",
                l, d, r, err, r, best, err / best);
  if (!(err <= 1.01 * best)) fail_msg("rank-%zu error %.6g exceeds 1.01 x %.6g", r, err, best);
  lamp_tensor_release(&out);
  lamp_prompt_release(p);
  free(approx);
  free(a);
  free(sv);
}

static void test_lamp_svd_start_from_embeddings(void **state) {
  lamp_context *ctx = *state;
  /* a table with a decaying spectrum plus noise, so the best rank-8 error is neither 0 nor flat */
  const size_t vocab = 1000, d = 576, k = 48, l = 100, r = 8;
  float *x = malloc(4 * vocab * k), *y = malloc(4 * k * d), *noise = malloc(4 * vocab * d);
  float *table = malloc(4 * vocab * d), *p0 = malloc(4 * l * d);
  assert_true(x && y && noise && table && p0);
  ref_fill_uniform(x, vocab * k, 501, -1, 1);
  ref_fill_uniform(y, k * d, 502, -1, 1);
  ref_fill_uniform(noise, vocab * d, 503, -0.01f, 0.01f);
  for (size_t i = 0; i < k; i++)
    for (size_t c = 0; c < d; c++) y[i * d + c] *= (float)pow(0.7, (double)i);
  for (size_t v = 0; v < vocab; v++)
    for (size_t c = 0; c < d; c++) {
      double acc = noise[v * d + c];
      for (size_t i = 0; i < k; i++) acc += (double)x[v * k + i] * y[i * d + c];
      table[v * d + c] = (float)acc;
    }
  lamp_tensor emb;
  size_t ne[2] = {d, vocab};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &emb));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &emb, table, 4 * vocab * d));
  lamp_prompt_options o;
  lamp_prompt_options_init(&o, LAMP_PROMPT_LAMP, d);
  o.length = l;
  o.rank = r;
  o.pool = 1;
  o.seed = 11;
  o.embedding = &emb;
  uint32_t ids[100];
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_sample_tokens(o.seed, 1000, l, ids));
  for (size_t i = 0; i < l; i++) memcpy(p0 + i * d, table + ids[i] * d, 4 * d);
  check_svd_start(ctx, &o, p0);
  lamp_tensor_release(&emb);
  free(x);
  free(y);
  free(noise);
  free(table);
  free(p0);
}

static void test_lamp_svd_start_uniform(void **state) {
  lamp_context *ctx = *state;
  const size_t l = 60, d = 96;
  lamp_prompt_options o;
  lamp_prompt_options_init(&o, LAMP_PROMPT_LAMP, d);
  o.length = l;
  o.rank = 4;
  o.pool = 1;
  o.seed = 5;
  o.init = LAMP_PROMPT_INIT_UNIFORM;
  o.uniform_range = 0.25f;
  float *p0 = malloc(4 * l * d);
  for (size_t i = 0; i < l * d; i++) p0[i] = ref_prompt_uniform(5, 0, i, -0.25f, 0.25f);
  check_svd_start(ctx, &o, p0);
  free(p0);
}

static void test_init_names(void **state) {
  (void)state;
  const char *bad[] = {"", "random", "embeddings", NULL};
  FIXTURE_CHECK_NAMES(lamp_prompt_init, lamp_prompt_init_name, lamp_prompt_init_from_name,
                      LAMP_PROMPT_INIT_EMBEDDING, LAMP_PROMPT_INIT_NONE, 3, bad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_init_names),
      cmocka_unit_test(test_sample_tokens),
      cmocka_unit_test(test_pt_from_embeddings),
      cmocka_unit_test(test_dpt_uniform),
      cmocka_unit_test(test_lamp_svd_start_from_embeddings),
      cmocka_unit_test(test_lamp_svd_start_uniform),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
