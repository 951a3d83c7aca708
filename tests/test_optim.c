/* AdamW with per-tensor rates and global-norm clipping against a plain C reference over 20 steps
 * with changing gradients, on a prompt's parameters (one buffer, V a transposed view) plus a
 * tensor in buffers of its own, moments included; saving and restoring the optimiser state
 * continues bit for bit; learning-rate schedules; argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "ref.h"
#include "ref_prompt.h"

#define NP 4

static void test_adamw_and_clipping(void **state) {
  lamp_context *ctx = *state;
  lamp_prompt_options po;
  lamp_prompt_options_init(&po, LAMP_PROMPT_LAMP, 24);
  po.length = 11;
  po.rank = 3;
  po.init = LAMP_PROMPT_INIT_NONE;
  lamp_prompt *prompt = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_create(ctx, &po, &prompt));
  lamp_param params[NP];
  size_t n = 0;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_params(prompt, params, NP, &n));
  assert_int_equal(n, 3);
  /* a fourth tensor, in buffers of its own: a second launch group */
  lamp_tensor xv, xg;
  size_t xne[2] = {5, 3};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, xne, &xv));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, xne, &xg));
  memset(&params[3], 0, sizeof(params[3]));
  strcpy(params[3].name, "X");
  params[3].value = xv;
  params[3].grad = xg;
  params[3].value.owns_buffer = params[3].grad.owns_buffer = 0;

  size_t len[NP], off[NP + 1];
  off[0] = 0;
  for (size_t i = 0; i < NP; i++) {
    len[i] = lamp_tensor_numel(&params[i].value);
    off[i + 1] = off[i] + len[i];
  }
  size_t total = off[NP];
  float *pf = malloc(4 * total), *gf = malloc(4 * total), *got = malloc(4 * total);
  double *p = malloc(8 * total), *m = calloc(total, 8), *v = calloc(total, 8);
  double *g = malloc(8 * total);
  assert_true(pf && gf && got && p && m && v && g);
  ref_fill_uniform(pf, total, 77, -1, 1);
  for (size_t i = 0; i < NP; i++)
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &params[i].value, pf + off[i], 4 * len[i]));
  for (size_t i = 0; i < total; i++) p[i] = pf[i];

  lamp_adamw_options o;
  lamp_adamw_options_init(&o);
  o.lr = 0.05f;
  o.weight_decay = 0.1f;
  lamp_adamw *opt = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_adamw_create(ctx, params, NP, &o, &opt));
  const float lr[NP] = {0.05f, 0.2f, 0.01f, 0.03f}, wd[NP] = {0.1f, 0.0f, 0.1f, 0.5f};
  for (size_t i = 1; i < NP; i++) LAMP_OK_OR_FAIL(ctx, lamp_adamw_set_tensor(opt, i, lr[i], wd[i]));
  lamp_lr_schedule sched = {LAMP_LR_COSINE, 4, 20, 0.1f};
  const float max_norm = 3.0f;
  int clipped = 0, unclipped = 0;
  for (uint64_t step = 0; step < 20; step++) {
    /* gradients change every step, their size too, so clipping acts on some steps only */
    float mag = (float)(0.1 + 0.6 * (double)(step % 4));
    ref_fill_uniform(gf, total, 1000 + step, -mag, mag);
    for (size_t i = 0; i < NP; i++)
      LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &params[i].grad, gf + off[i], 4 * len[i]));
    double norm = 0;
    for (size_t i = 0; i < total; i++) norm += (double)gf[i] * gf[i];
    norm = sqrt(norm);
    double scale = fmin(1.0, max_norm / (norm + 1e-6));
    if (scale < 1) clipped++;
    else unclipped++;
    for (size_t i = 0; i < total; i++) g[i] = gf[i] * scale;

    LAMP_OK_OR_FAIL(ctx, lamp_adamw_clip_grad_norm(opt, max_norm));
    float dev_norm = 0;
    LAMP_OK_OR_FAIL(ctx, lamp_adamw_grad_norm(opt, &dev_norm));
    if (fabs(dev_norm - norm) > 1e-5 * norm)
      fail_msg("step %llu: gradient norm %.8g, want %.8g", (unsigned long long)step, dev_norm,
               norm);
    for (size_t i = 0; i < NP; i++)
      LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &params[i].grad, got + off[i], 4 * len[i]));
    for (size_t i = 0; i < total; i++)
      if (fabs(got[i] - g[i]) > 1e-5 * max_norm)
        fail_msg("step %llu: clipped gradient %zu is %g, want %g", (unsigned long long)step, i,
                 got[i], g[i]);

    float factor = 0;
    LAMP_OK_OR_FAIL(ctx, lamp_lr_schedule_factor(&sched, step, &factor));
    LAMP_OK_OR_FAIL(ctx, lamp_adamw_step(opt, factor));
    for (size_t i = 0; i < NP; i++)
      ref_adamw_step(p + off[i], m + off[i], v + off[i], g + off[i], len[i],
                     (double)lr[i] * factor, o.beta1, o.beta2, o.eps, wd[i], step + 1);
    for (size_t i = 0; i < NP; i++)
      LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &params[i].value, got + off[i], 4 * len[i]));
    for (size_t i = 0; i < total; i++)
      if (fabs(got[i] - p[i]) > 1e-5 * (1 + fabs(p[i])))
        fail_msg("step %llu: parameter %zu is %.8g, want %.8g", (unsigned long long)step, i,
                 got[i], p[i]);
  }
  assert_true(clipped > 0 && unclipped > 0);
  /* the moment views hold the reference moments in the parameters' element order (V is a
   * transposed view, X lives in buffers of its own) */
  for (int which = 0; which < 2; which++) {
    const double *want = which ? v : m;
    for (size_t i = 0; i < NP; i++) {
      lamp_tensor mv;
      LAMP_OK_OR_FAIL(ctx, lamp_adamw_moments(opt, i, which ? NULL : &mv, which ? &mv : NULL));
      assert_int_equal(lamp_tensor_numel(&mv), len[i]);
      LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &mv, got + off[i], 4 * len[i]));
    }
    for (size_t i = 0; i < total; i++)
      if (fabs(got[i] - want[i]) > 1e-5 * fabs(want[i]) + 1e-9)
        fail_msg("%s moment %zu is %.8g, want %.8g", which ? "second" : "first", i, got[i],
                 want[i]);
  }
  uint64_t steps = 0;
  LAMP_OK_OR_FAIL(ctx, lamp_adamw_step_count(opt, &steps));
  assert_int_equal(steps, 20);
  /* the parameters moved: the comparison above is not of two unchanged copies */
  double moved = 0;
  for (size_t i = 0; i < total; i++) moved = fmax(moved, fabs(p[i] - pf[i]));
  assert_true(moved > 0.05);

  lamp_adamw_release(opt);
  lamp_prompt_release(prompt);
  lamp_tensor_release(&xv);
  lamp_tensor_release(&xg);
  free(pf);
  free(gf);
  free(got);
  free(p);
  free(m);
  free(v);
  free(g);
}

/* The state a checkpoint holds: values, both moments (per parameter, element order of
 * lamp_tensor_download) and the step count. */
typedef struct saved_state {
  float *val, *m, *v;
  uint64_t steps;
} saved_state;

#define RS_STEPS 12

/* A LAMP prompt (U, q, V; V a transposed view) with an optimiser of per-tensor rates. */
static void resume_setup(lamp_context *ctx, lamp_prompt **prompt, lamp_param *params,
                         lamp_adamw **opt) {
  lamp_prompt_options po;
  lamp_prompt_options_init(&po, LAMP_PROMPT_LAMP, 20);
  po.length = 9;
  po.rank = 3;
  po.init = LAMP_PROMPT_INIT_NONE;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_create(ctx, &po, prompt));
  size_t n = 0;
  LAMP_OK_OR_FAIL(ctx, lamp_prompt_params(*prompt, params, 3, &n));
  assert_int_equal(n, 3);
  lamp_adamw_options o;
  lamp_adamw_options_init(&o);
  o.lr = 0.05f;
  LAMP_OK_OR_FAIL(ctx, lamp_adamw_create(ctx, params, 3, &o, opt));
  LAMP_OK_OR_FAIL(ctx, lamp_adamw_set_tensor(*opt, 1, 0.2f, 0.0f));
}

/* Steps [from, to) with gradients that depend on the step only, clipped on some steps. */
static void resume_run(lamp_context *ctx, lamp_adamw *opt, lamp_param *params, uint64_t from,
                       uint64_t to) {
  lamp_lr_schedule sched = {LAMP_LR_LINEAR, 2, RS_STEPS, 0.0f};
  for (uint64_t step = from; step < to; step++) {
    for (size_t i = 0; i < 3; i++) {
      size_t n = lamp_tensor_numel(&params[i].grad);
      float *g = malloc(4 * n);
      assert_non_null(g);
      float mag = (float)(0.2 + 0.8 * (double)(step % 3));
      ref_fill_uniform(g, n, 500 + 10 * step + i, -mag, mag);
      LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &params[i].grad, g, 4 * n));
      free(g);
    }
    float factor = 0;
    LAMP_OK_OR_FAIL(ctx, lamp_lr_schedule_factor(&sched, step, &factor));
    LAMP_OK_OR_FAIL(ctx, lamp_adamw_clip_grad_norm(opt, 2.0f));
    LAMP_OK_OR_FAIL(ctx, lamp_adamw_step(opt, factor));
  }
}

static void resume_save(lamp_context *ctx, lamp_adamw *opt, const lamp_param *params,
                        size_t total, saved_state *s) {
  s->val = malloc(4 * total);
  s->m = malloc(4 * total);
  s->v = malloc(4 * total);
  assert_true(s->val && s->m && s->v);
  size_t at = 0;
  for (size_t i = 0; i < 3; i++) {
    size_t n = lamp_tensor_numel(&params[i].value);
    lamp_tensor m, v;
    LAMP_OK_OR_FAIL(ctx, lamp_adamw_moments(opt, i, &m, &v));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &params[i].value, s->val + at, 4 * n));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &m, s->m + at, 4 * n));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &v, s->v + at, 4 * n));
    at += n;
  }
  assert_int_equal(at, total);
  LAMP_OK_OR_FAIL(ctx, lamp_adamw_step_count(opt, &s->steps));
}

static void saved_free(saved_state *s) {
  free(s->val);
  free(s->m);
  free(s->v);
}

/* Save after 5 steps, restore into a fresh prompt and optimiser, continue: bit for bit the
 * values and moments of 12 uninterrupted steps. */
static void test_adamw_resume_is_exact(void **state) {
  lamp_context *ctx = *state;
  lamp_prompt *pa = NULL, *pb = NULL;
  lamp_param qa[3], qb[3];
  lamp_adamw *oa = NULL, *ob = NULL;
  resume_setup(ctx, &pa, qa, &oa);
  size_t total = 0;
  for (size_t i = 0; i < 3; i++) total += lamp_tensor_numel(&qa[i].value);
  float *init = malloc(4 * total);
  assert_non_null(init);
  ref_fill_uniform(init, total, 31, -1, 1);
  size_t at = 0;
  for (size_t i = 0; i < 3; i++) {
    size_t n = lamp_tensor_numel(&qa[i].value);
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &qa[i].value, init + at, 4 * n));
    at += n;
  }
  resume_run(ctx, oa, qa, 0, 5);
  saved_state mid, whole, resumed;
  resume_save(ctx, oa, qa, total, &mid);
  assert_int_equal(mid.steps, 5);
  resume_run(ctx, oa, qa, 5, RS_STEPS);
  resume_save(ctx, oa, qa, total, &whole);
  assert_int_equal(whole.steps, RS_STEPS);

  resume_setup(ctx, &pb, qb, &ob);
  at = 0;
  for (size_t i = 0; i < 3; i++) {
    size_t n = lamp_tensor_numel(&qb[i].value);
    lamp_tensor m, v;
    LAMP_OK_OR_FAIL(ctx, lamp_adamw_moments(ob, i, &m, &v));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &qb[i].value, mid.val + at, 4 * n));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &m, mid.m + at, 4 * n));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &v, mid.v + at, 4 * n));
    at += n;
  }
  LAMP_OK_OR_FAIL(ctx, lamp_adamw_set_step_count(ob, mid.steps));
  resume_run(ctx, ob, qb, 5, RS_STEPS);
  resume_save(ctx, ob, qb, total, &resumed);
  assert_int_equal(resumed.steps, RS_STEPS);
  assert_memory_equal(resumed.val, whole.val, 4 * total);
  assert_memory_equal(resumed.m, whole.m, 4 * total);
  assert_memory_equal(resumed.v, whole.v, 4 * total);
  /* the second half did change the state: the comparison is not of two copies of `mid` */
  assert_true(memcmp(whole.val, mid.val, 4 * total) != 0);
  assert_true(memcmp(whole.v, mid.v, 4 * total) != 0);

  /* the norm view holds what lamp_adamw_grad_norm reads */
  lamp_tensor nt;
  float norm = -1, viewed = -2;
  LAMP_OK_OR_FAIL(ctx, lamp_adamw_grad_norm_tensor(ob, &nt));
  assert_int_equal(lamp_tensor_numel(&nt), 1);
  LAMP_OK_OR_FAIL(ctx, lamp_adamw_grad_norm(ob, &norm));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &nt, &viewed, sizeof(viewed)));
  assert_true(norm > 0 && norm == viewed);

  lamp_tensor m;
  assert_int_equal(lamp_adamw_moments(ob, 3, &m, NULL), LAMP_ERR_INVALID_ARGUMENT);
  saved_free(&mid);
  saved_free(&whole);
  saved_free(&resumed);
  free(init);
  lamp_adamw_release(oa);
  lamp_adamw_release(ob);
  lamp_prompt_release(pa);
  lamp_prompt_release(pb);
}

static void expect_factor(const lamp_lr_schedule *s, uint64_t step, double want, double tol) {
  float f = -1;
  LAMP_OK_OR_FAIL(NULL, lamp_lr_schedule_factor(s, step, &f));
  if (!(fabs(f - want) <= tol))
    fail_msg("schedule %d, step %llu: factor %.8g, want %.8g", (int)s->decay,
             (unsigned long long)step, f, want);
}

static void test_schedules(void **state) {
  (void)state;
  float f = 0;
  lamp_lr_schedule s = {LAMP_LR_CONSTANT, 4, 0, 0.0f};
  expect_factor(&s, 0, 0.25f, 1e-7);
  expect_factor(&s, 3, 1.0f, 1e-7);
  expect_factor(&s, 1000, 1.0f, 1e-7);

  s = (lamp_lr_schedule){LAMP_LR_LINEAR, 10, 110, 0.0f};
  expect_factor(&s, 4, 0.5f, 1e-7);
  expect_factor(&s, 10, 1.0f, 1e-7);
  expect_factor(&s, 35, 0.75f, 1e-6);
  expect_factor(&s, 110, 0.0f, 1e-7);
  expect_factor(&s, 500, 0.0f, 1e-7);

  s = (lamp_lr_schedule){LAMP_LR_COSINE, 0, 100, 0.2f};
  expect_factor(&s, 0, 1.0f, 1e-7);
  expect_factor(&s, 50, 0.6f, 1e-6);
  expect_factor(&s, 25, 0.2f + 0.8f * 0.5f * (1.0f + (float)cos(atan(1.0))), 1e-6);
  expect_factor(&s, 100, 0.2f, 1e-6);

  s.total_steps = 0;
  assert_int_equal(lamp_lr_schedule_factor(&s, 1, &f), LAMP_ERR_INVALID_ARGUMENT);
  s.total_steps = 10;
  s.min_factor = 1.5f;
  assert_int_equal(lamp_lr_schedule_factor(&s, 1, &f), LAMP_ERR_INVALID_ARGUMENT);
  s.min_factor = 0;
  s.decay = (lamp_lr_decay)7;
  assert_int_equal(lamp_lr_schedule_factor(&s, 1, &f), LAMP_ERR_INVALID_ARGUMENT);
}

static void test_adamw_errors(void **state) {
  lamp_context *ctx = *state;
  lamp_tensor a, b, c;
  size_t ne[2] = {4, 3}, ne2[2] = {3, 4};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &a));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &b));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne2, &c));
  lamp_param p[2];
  memset(p, 0, sizeof(p));
  p[0].value = a;
  p[0].grad = c; /* shape differs */
  lamp_adamw *opt = NULL;
  assert_int_equal(lamp_adamw_create(ctx, p, 1, NULL, &opt), LAMP_ERR_SHAPE);
  p[0].grad = a; /* the gradient is the parameter */
  assert_int_equal(lamp_adamw_create(ctx, p, 1, NULL, &opt), LAMP_ERR_INVALID_ARGUMENT);
  p[0].grad = b;
  p[1] = p[0]; /* the same tensor twice */
  assert_int_equal(lamp_adamw_create(ctx, p, 2, NULL, &opt), LAMP_ERR_INVALID_ARGUMENT);
  /* a view with gaps between rows is not a dense range */
  size_t vne[2] = {3, 3}, vnb[2] = {4, 16};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &a, 0, 2, vne, vnb, &p[0].value));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &b, 0, 2, vne, vnb, &p[0].grad));
  assert_int_equal(lamp_adamw_create(ctx, p, 1, NULL, &opt), LAMP_ERR_SHAPE);
  p[0].value = a;
  p[0].grad = b;
  lamp_adamw_options o;
  lamp_adamw_options_init(&o);
  o.beta2 = 1.0f;
  assert_int_equal(lamp_adamw_create(ctx, p, 1, &o, &opt), LAMP_ERR_INVALID_ARGUMENT);
  assert_null(opt);
  LAMP_OK_OR_FAIL(ctx, lamp_adamw_create(ctx, p, 1, NULL, &opt));
  assert_int_equal(lamp_adamw_set_tensor(opt, 1, 0.1f, 0), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_adamw_set_tensor(opt, 0, -0.1f, 0), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_adamw_step(opt, NAN), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_adamw_clip_grad_norm(opt, 0.0f), LAMP_ERR_INVALID_ARGUMENT);
  /* zero gradients: the norm is 0 and nothing is scaled */
  LAMP_OK_OR_FAIL(ctx, lamp_adamw_clip_grad_norm(opt, 1.0f));
  float norm = -1;
  LAMP_OK_OR_FAIL(ctx, lamp_adamw_grad_norm(opt, &norm));
  assert_true(norm == 0.0f);
  lamp_adamw_release(opt);
  lamp_adamw_release(NULL);
  lamp_tensor_release(&a);
  lamp_tensor_release(&b);
  lamp_tensor_release(&c);
}

static void test_decay_names(void **state) {
  (void)state;
  const char *bad[] = {"", "exponential", "cos", NULL};
  FIXTURE_CHECK_NAMES(lamp_lr_decay, lamp_lr_decay_name, lamp_lr_decay_from_name,
                      LAMP_LR_CONSTANT, LAMP_LR_COSINE, 3, bad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decay_names),
      cmocka_unit_test(test_adamw_and_clipping),
      cmocka_unit_test(test_adamw_resume_is_exact),
      cmocka_unit_test(test_schedules),
      cmocka_unit_test(test_adamw_errors),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
