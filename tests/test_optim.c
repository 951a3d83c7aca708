/* AdamW with per-tensor rates and global-norm clipping against a plain C reference over 20 steps
 * with changing gradients, on a prompt's parameters (one buffer, V a transposed view) plus a
 * tensor in buffers of its own; learning-rate schedules; argument errors. */
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

static void test_schedules(void **state) {
  (void)state;
  float f = 0;
  lamp_lr_schedule s = {LAMP_LR_CONSTANT, 4, 0, 0.0f};
  LAMP_OK_OR_FAIL(NULL, lamp_lr_schedule_factor(&s, 0, &f));
  assert_float_equal(f, 0.25f, 1e-7);
  LAMP_OK_OR_FAIL(NULL, lamp_lr_schedule_factor(&s, 3, &f));
  assert_float_equal(f, 1.0f, 1e-7);
  LAMP_OK_OR_FAIL(NULL, lamp_lr_schedule_factor(&s, 1000, &f));
  assert_float_equal(f, 1.0f, 1e-7);

  s = (lamp_lr_schedule){LAMP_LR_LINEAR, 10, 110, 0.0f};
  LAMP_OK_OR_FAIL(NULL, lamp_lr_schedule_factor(&s, 4, &f));
  assert_float_equal(f, 0.5f, 1e-7);
  LAMP_OK_OR_FAIL(NULL, lamp_lr_schedule_factor(&s, 10, &f));
  assert_float_equal(f, 1.0f, 1e-7);
  LAMP_OK_OR_FAIL(NULL, lamp_lr_schedule_factor(&s, 35, &f));
  assert_float_equal(f, 0.75f, 1e-6);
  LAMP_OK_OR_FAIL(NULL, lamp_lr_schedule_factor(&s, 110, &f));
  assert_float_equal(f, 0.0f, 1e-7);
  LAMP_OK_OR_FAIL(NULL, lamp_lr_schedule_factor(&s, 500, &f));
  assert_float_equal(f, 0.0f, 1e-7);

  s = (lamp_lr_schedule){LAMP_LR_COSINE, 0, 100, 0.2f};
  LAMP_OK_OR_FAIL(NULL, lamp_lr_schedule_factor(&s, 0, &f));
  assert_float_equal(f, 1.0f, 1e-7);
  LAMP_OK_OR_FAIL(NULL, lamp_lr_schedule_factor(&s, 50, &f));
  assert_float_equal(f, 0.6f, 1e-6);
  LAMP_OK_OR_FAIL(NULL, lamp_lr_schedule_factor(&s, 25, &f));
  assert_float_equal(f, 0.2f + 0.8f * 0.5f * (1.0f + (float)cos(atan(1.0))), 1e-6);
  LAMP_OK_OR_FAIL(NULL, lamp_lr_schedule_factor(&s, 100, &f));
  assert_float_equal(f, 0.2f, 1e-6);

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_adamw_and_clipping),
      cmocka_unit_test(test_schedules),
      cmocka_unit_test(test_adamw_errors),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
