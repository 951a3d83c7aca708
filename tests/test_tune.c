/* GEMM tuning: parameter text, the baseline, the search logic and its decision against the
 * baseline (with model evaluators standing in for the device so the test is fast and its answer
 * known), storage, and application on creation. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fixture.h"
#include "ref.h"
#include "runtime/internal.h" /* lamp__tune_builtin, lamp__tune_clblast_own */

static char dir[256];

static int make_dir(void **state) {
  snprintf(dir, sizeof(dir), "/tmp/lamp-test-tune-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  setenv("LAMP_CACHE_DIR", dir, 1); /* the fixture's context stores and reads here */
  return fixture_setup(state);
}

static int remove_dir(void **state) {
  fixture_teardown(state);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void test_params_text(void **state) {
  (void)state;
  lamp_tune_params p, q;
  assert_int_equal(lamp_tune_params_parse("XgemmDirect:KWID=2,MDIMAD=8,WGD=16", &p), LAMP_OK);
  assert_string_equal(p.kernel, "XgemmDirect");
  assert_int_equal(p.n, 3);
  assert_string_equal(p.names[2], "WGD");
  assert_int_equal(p.values[2], 16);
  char text[256];
  assert_int_equal(lamp_tune_params_format(&p, text, sizeof(text)), LAMP_OK);
  assert_string_equal(text, "XgemmDirect:KWID=2,MDIMAD=8,WGD=16");
  assert_int_equal(lamp_tune_params_parse(text, &q), LAMP_OK);
  assert_memory_equal(&p, &q, sizeof(p));
  const char *bad[] = {"", "Xgemm", "Xgemm:", ":A=1", "Xgemm:A", "Xgemm:A=", "Xgemm:A=-1",
                       "Xgemm:A=1,", "Xgemm:A=1;B=2", "Xg emm:A=1", "Xgemm:A=1x"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (lamp_tune_params_parse(bad[i], &p) != LAMP_ERR_INVALID_ARGUMENT)
      fail_msg("accepted \"%s\"", bad[i]);
}

/* A stand-in for the device: the direct kernel costs 1 + |WGD - wgd_best| / 8 per 1e6
 * multiply-adds and the tiled kernel a fixed 4 ms plus 1 per 4e6 with MWG = mwg_best (2
 * otherwise), so the best configurations and the switch point are known in advance. The optima
 * are never the baseline's values (lamp_tune_baseline), whatever the device. */
typedef struct model_eval {
  unsigned calls;
  int crash_every; /* pretend every n-th single candidate crashed */
  size_t wgd_best, mwg_best;
} model_eval;

static size_t value_of(const lamp_tune_params *p, const char *name) {
  for (size_t i = 0; i < p->n; i++)
    if (!strcmp(p->names[i], name)) return p->values[i];
  return 0;
}

static const lamp_tune_params *set_of(const lamp_tune_config *c, const char *kernel) {
  for (size_t s = 0; s < c->n_sets; s++)
    if (!strcmp(c->sets[s].kernel, kernel)) return &c->sets[s];
  return NULL;
}

static int same_params(const lamp_tune_params *a, const lamp_tune_params *b) {
  if (!a || !b || strcmp(a->kernel, b->kernel) || a->n != b->n) return 0;
  for (size_t i = 0; i < a->n; i++)
    if (value_of(b, a->names[i]) != a->values[i]) return 0;
  return 1;
}

static double mnk_of(const size_t *shape) { return (double)shape[0] * shape[1] * shape[2]; }

/* CLBlast's rule for the configuration: the direct kernel when M N K < S^3. */
static int routes_direct(const lamp_tune_config *c, const size_t *shape) {
  double sw = (double)value_of(set_of(c, "GemmRoutine"), "XGEMM_MIN_INDIRECT_SIZE");
  return mnk_of(shape) < sw * sw * sw;
}

static lamp_status model_evaluate(void *user, const lamp_tune_config *configs, size_t n_configs,
                                  const size_t *shapes, size_t n, double *seconds) {
  model_eval *me = user;
  me->calls++;
  int crashed = me->crash_every && n_configs == 1 && me->calls % (unsigned)me->crash_every == 0;
  for (size_t c = 0; c < n_configs; c++) {
    size_t wgd = value_of(set_of(&configs[c], "XgemmDirect"), "WGD");
    size_t mwg = value_of(set_of(&configs[c], "Xgemm"), "MWG");
    double dw = wgd > me->wgd_best ? (double)(wgd - me->wgd_best) : (double)(me->wgd_best - wgd);
    for (size_t i = 0; i < n; i++) {
      double mnk = mnk_of(&shapes[3 * i]);
      double direct_cost = 1e-3 * mnk / 1e6 * (1 + dw / 8.0);
      double tiled_cost = 4e-3 + 1e-3 * mnk / 4e6 * (mwg == me->mwg_best ? 1 : 2);
      seconds[c * n + i] =
          crashed ? -1 : routes_direct(&configs[c], &shapes[3 * i]) ? direct_cost : tiled_cost;
    }
  }
  return LAMP_OK;
}

static void model_init(lamp_context *ctx, model_eval *me, int crash_every) {
  lamp_tune_params base[3];
  int kind = -1;
  LAMP_OK_OR_FAIL(ctx, lamp_tune_baseline(ctx, base, &kind));
  memset(me, 0, sizeof(*me));
  me->crash_every = crash_every;
  me->wgd_best = value_of(&base[0], "WGD") == 32 ? 64 : 32;
  me->mwg_best = value_of(&base[1], "MWG") == 64 ? 128 : 64;
}

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* The baseline is what a context runs without a stored result: lamp's built-in result for PoCL
 * CPUs, else CLBlast's own parameters, read before lamp first overrode them (the fixture's
 * context applied the built-in result when it was created, yet CLBlast's own are still known). */
static void test_baseline(void **state) {
  lamp_context *ctx = *state;
  lamp_tune_params base[3], own[3], builtin[3];
  int kind = -1;
  LAMP_OK_OR_FAIL(ctx, lamp_tune_baseline(ctx, base, &kind));
  assert_string_equal(base[0].kernel, "XgemmDirect");
  assert_string_equal(base[1].kernel, "Xgemm");
  assert_string_equal(base[2].kernel, "GemmRoutine");
  assert_true(value_of(&base[2], "XGEMM_MIN_INDIRECT_SIZE") > 0);
  size_t n_builtin = 0;
  LAMP_OK_OR_FAIL(ctx, lamp__tune_builtin(ctx, builtin, &n_builtin));
  assert_int_equal(kind, n_builtin ? 2 : 0);
  LAMP_OK_OR_FAIL(ctx, lamp__tune_clblast_own(ctx, own));
  assert_int_equal(own[1].n, 16);
  for (int k = 0; k < 3; k++) {
    if (n_builtin)
      assert_true(same_params(&base[k], &builtin[k]));
    else
      assert_true(same_params(&base[k], &own[k]));
  }
  /* CLBlast's own, not the built-in result the fixture's context applied */
  if (n_builtin) assert_false(same_params(&own[1], &builtin[1]));
  /* an override does not change what is known as CLBlast's own */
  lamp_tune_params other;
  assert_int_equal(lamp_tune_params_parse("GemmRoutine:XGEMM_MIN_INDIRECT_SIZE=77", &other),
                   LAMP_OK);
  LAMP_OK_OR_FAIL(ctx, lamp_tune_params_apply(ctx, &other, 1));
  lamp_tune_params again[3];
  LAMP_OK_OR_FAIL(ctx, lamp__tune_clblast_own(ctx, again));
  for (int k = 0; k < 3; k++) assert_true(same_params(&own[k], &again[k]));
  LAMP_OK_OR_FAIL(ctx, lamp_tune_params_apply(ctx, &base[2], 1));
}

/* With a budget of one, only the baseline is tried: the result is the baseline and nothing is
 * stored, so a short search never leaves the device worse off than it was. */
static void test_budget_one_keeps_the_baseline(void **state) {
  lamp_context *ctx = *state;
  static const size_t shapes[] = {32, 32, 32, 1024, 1024, 1024};
  lamp_tune_options o;
  lamp_tune_options_init(&o);
  o.shapes = shapes;
  o.n_shapes = 2;
  o.budget = 1;
  model_eval me;
  model_init(ctx, &me, 0);
  o.evaluate = model_evaluate;
  o.evaluate_user = &me;
  lamp_tune_report r;
  LAMP_OK_OR_FAIL(ctx, lamp_tune_gemm(ctx, &o, &r));
  assert_int_equal(r.tried, 2);
  assert_int_equal(r.stored, 0);
  assert_false(file_exists(r.path));
  for (int k = 0; k < 3; k++) assert_true(same_params(&r.result[k], &r.baseline_sets[k]));
  for (int i = 0; i < 2; i++) {
    assert_true(r.shapes[i].kept);
    assert_true(r.shapes[i].gflops_after == r.shapes[i].gflops_before);
  }
}

static void test_search_finds_the_model_optimum(void **state) {
  lamp_context *ctx = *state;
  static const size_t shapes[] = {32, 32, 32, 64, 64, 64, 512, 512, 512, 1024, 1024, 1024};
  lamp_tune_options o;
  lamp_tune_options_init(&o);
  o.shapes = shapes;
  o.n_shapes = 4;
  o.budget = 30;
  model_eval me;
  model_init(ctx, &me, 7);
  o.evaluate = model_evaluate;
  o.evaluate_user = &me;
  lamp_tune_report r;
  LAMP_OK_OR_FAIL(ctx, lamp_tune_gemm(ctx, &o, &r));
  assert_int_equal(r.n_shapes, 4);
  assert_true(r.tried > 20);
  assert_true(r.rejected > 0); /* the "crashed" candidates were survived, not fatal */
  assert_string_equal(r.result[0].kernel, "XgemmDirect");
  assert_int_equal(value_of(&r.result[0], "WGD"), me.wgd_best);
  assert_string_equal(r.result[1].kernel, "Xgemm");
  assert_int_equal(value_of(&r.result[1], "MWG"), me.mwg_best);
  /* direct is cheaper below about 5.3e6 multiply-adds (with the best WGD), tiled above: small
   * shapes direct, large ones tiled */
  assert_true(r.shapes[0].direct && r.shapes[1].direct);
  assert_false(r.shapes[2].direct || r.shapes[3].direct);
  for (int i = 0; i < 4; i++) assert_true(r.shapes[i].gflops_after >= r.shapes[i].gflops_before);
  assert_int_equal(r.stored, 1);
  assert_true(file_exists(r.path));

  /* the stored result is applied by the next context on this device */
  lamp_context *c2 = NULL;
  char err[512];
  assert_int_equal(lamp_context_create(NULL, &c2, err, sizeof(err)), LAMP_OK);
  lamp_context_stats stats;
  LAMP_OK_OR_FAIL(c2, lamp_context_get_stats(c2, &stats));
  assert_int_equal(stats.tuning_applied, 1);
  lamp_context_release(c2);
  /* and not when tuning is switched off */
  setenv("LAMP_TUNING", "0", 1);
  assert_int_equal(lamp_context_create(NULL, &c2, err, sizeof(err)), LAMP_OK);
  LAMP_OK_OR_FAIL(c2, lamp_context_get_stats(c2, &stats));
  assert_int_equal(stats.tuning_applied, 0);
  lamp_context_release(c2);
  unsetenv("LAMP_TUNING");
}

/* A device where the baseline is the fastest of all: every other kernel takes twice as long,
 * whichever route a shape takes. */
typedef struct baseline_best {
  lamp_tune_params base[3];
  unsigned first_direct, first_tiled; /* the call that first forced each kernel (1-based) */
  unsigned calls;
  int first_direct_is_base, first_tiled_is_base;
} baseline_best;

static lamp_status baseline_best_evaluate(void *user, const lamp_tune_config *configs,
                                          size_t n_configs, const size_t *shapes, size_t n,
                                          double *seconds) {
  baseline_best *bb = user;
  bb->calls++;
  for (size_t c = 0; c < n_configs; c++) {
    const lamp_tune_params *d = set_of(&configs[c], "XgemmDirect");
    const lamp_tune_params *t = set_of(&configs[c], "Xgemm");
    size_t sw = value_of(set_of(&configs[c], "GemmRoutine"), "XGEMM_MIN_INDIRECT_SIZE");
    if (n_configs == 1 && sw == ((size_t)1 << 20) && !bb->first_direct) {
      bb->first_direct = bb->calls;
      bb->first_direct_is_base = same_params(d, &bb->base[0]);
    }
    if (n_configs == 1 && sw == 1 && !bb->first_tiled) {
      bb->first_tiled = bb->calls;
      bb->first_tiled_is_base = same_params(t, &bb->base[1]);
    }
    for (size_t i = 0; i < n; i++) {
      double mnk = mnk_of(&shapes[3 * i]);
      int direct = routes_direct(&configs[c], &shapes[3 * i]);
      int base = same_params(direct ? d : t, direct ? &bb->base[0] : &bb->base[1]);
      /* both routes cost the same, so no switch beats the baseline's either (the baseline's
       * own switch is CLBlast's default on a device without a built-in entry) */
      seconds[c * n + i] = 1e-9 * mnk * (base ? 1 : 2);
    }
  }
  return LAMP_OK;
}

/* When nothing beats the baseline, nothing is stored and a result stored before is removed:
 * contexts run the baseline again. The baseline's kernels are the first candidates. */
static void test_slower_results_are_never_stored(void **state) {
  lamp_context *ctx = *state;
  static const size_t shapes[] = {32, 32, 32, 64, 64, 64, 512, 512, 512, 1024, 1024, 1024};
  char path[1200];
  LAMP_OK_OR_FAIL(ctx, lamp_tune_path(ctx, path, sizeof(path)));
  assert_true(file_exists(path)); /* from the search test */
  baseline_best bb;
  memset(&bb, 0, sizeof(bb));
  int kind = -1;
  LAMP_OK_OR_FAIL(ctx, lamp_tune_baseline(ctx, bb.base, &kind));
  lamp_tune_options o;
  lamp_tune_options_init(&o);
  o.shapes = shapes;
  o.n_shapes = 4;
  o.budget = 12;
  o.evaluate = baseline_best_evaluate;
  o.evaluate_user = &bb;
  lamp_tune_report r;
  LAMP_OK_OR_FAIL(ctx, lamp_tune_gemm(ctx, &o, &r));
  assert_true(bb.first_direct > 0 && bb.first_direct_is_base);
  assert_true(bb.first_tiled > 0 && bb.first_tiled_is_base);
  assert_true(r.tried > 12);
  assert_int_equal(r.stored, 0);
  assert_int_equal(r.removed_previous, 1);
  assert_false(file_exists(path));
  for (int k = 0; k < 3; k++) assert_true(same_params(&r.result[k], &bb.base[k]));
  for (int i = 0; i < 4; i++) {
    assert_true(r.shapes[i].kept);
    assert_true(r.shapes[i].gflops_after == r.shapes[i].gflops_before);
  }
  lamp_context *c2 = NULL;
  char err[512];
  assert_int_equal(lamp_context_create(NULL, &c2, err, sizeof(err)), LAMP_OK);
  lamp_context_stats stats;
  LAMP_OK_OR_FAIL(c2, lamp_context_get_stats(c2, &stats));
  assert_int_equal(stats.tuning_applied, kind); /* 2: the built-in result, 0: CLBlast's own */
  lamp_context_release(c2);
}

/* The table of forced-route times says the tuned tiled kernel is twice as fast as the
 * baseline's everywhere, but with the switch set between the kernels (the configuration that
 * would be stored) it is three times slower on the largest shape: the check against the
 * baseline catches it and that shape keeps the baseline's kernel. */
typedef struct mismatch {
  lamp_tune_params base[3];
  double largest;
  unsigned checks; /* measurements of two configurations whose switch is not forced */
} mismatch;

static lamp_status mismatch_evaluate(void *user, const lamp_tune_config *configs, size_t n_configs,
                                     const size_t *shapes, size_t n, double *seconds) {
  mismatch *mm = user;
  for (size_t c = 0; c < n_configs; c++) {
    const lamp_tune_params *d = set_of(&configs[c], "XgemmDirect");
    const lamp_tune_params *t = set_of(&configs[c], "Xgemm");
    size_t sw = value_of(set_of(&configs[c], "GemmRoutine"), "XGEMM_MIN_INDIRECT_SIZE");
    int forced = sw == 1 || sw == ((size_t)1 << 20);
    if (c == 1 && !forced) mm->checks++;
    for (size_t i = 0; i < n; i++) {
      double mnk = mnk_of(&shapes[3 * i]);
      int direct = routes_direct(&configs[c], &shapes[3 * i]);
      double f = 1;
      if (direct && !same_params(d, &mm->base[0])) f = 0.5;
      if (!direct && !same_params(t, &mm->base[1])) f = !forced && mnk == mm->largest ? 3 : 0.5;
      seconds[c * n + i] = (direct ? 1e-9 * mnk : 4e-3 + 2.5e-10 * mnk) * f;
    }
  }
  return LAMP_OK;
}

static void test_a_slower_shape_keeps_the_baseline(void **state) {
  lamp_context *ctx = *state;
  static const size_t shapes[] = {32, 32, 32, 64, 64, 64, 512, 512, 512, 1024, 1024, 1024};
  mismatch mm;
  memset(&mm, 0, sizeof(mm));
  mm.largest = 1024.0 * 1024 * 1024;
  int kind = -1;
  LAMP_OK_OR_FAIL(ctx, lamp_tune_baseline(ctx, mm.base, &kind));
  lamp_tune_options o;
  lamp_tune_options_init(&o);
  o.shapes = shapes;
  o.n_shapes = 4;
  o.budget = 6;
  o.evaluate = mismatch_evaluate;
  o.evaluate_user = &mm;
  lamp_tune_report r;
  LAMP_OK_OR_FAIL(ctx, lamp_tune_gemm(ctx, &o, &r));
  assert_true(mm.checks >= 2); /* the first check found the slower shape, the second passed */
  assert_int_equal(r.stored, 1);
  assert_true(r.shapes[3].kept && !r.shapes[3].direct);
  assert_true(same_params(&r.result[1], &mm.base[1]));
  assert_false(same_params(&r.result[0], &mm.base[0])); /* the faster direct kernel stays */
  for (int i = 0; i < 4; i++)
    assert_true(r.shapes[i].gflops_after >= r.shapes[i].gflops_before);
  assert_true(r.shapes[0].gflops_after > 1.9 * r.shapes[0].gflops_before);
}

static void rewrite_line(const char *path, const char *from, const char *to) {
  char *text = NULL;
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  text = calloc(1, (size_t)n + 256);
  assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  char *at = strstr(text, from);
  assert_non_null(at);
  char *rest = strdup(at + strlen(from));
  strcpy(at, to);
  strcat(at, rest);
  f = fopen(path, "wb");
  fputs(text, f);
  fclose(f);
  free(rest);
  free(text);
}

static void test_foreign_and_damaged_results(void **state) {
  lamp_context *ctx = *state; /* the previous test stored a result */
  char path[1200];
  LAMP_OK_OR_FAIL(ctx, lamp_tune_path(ctx, path, sizeof(path)));
  int applied = -1;
  LAMP_OK_OR_FAIL(ctx, lamp_tune_apply(ctx, &applied));
  assert_int_equal(applied, 1);

  /* another driver version: ignored (lamp's built-in result for PoCL CPUs applies instead) */
  const lamp_device_info *dev = lamp_context_device(ctx);
  int builtin = !strcmp(dev->platform_name, "Portable Computing Language") &&
                (dev->type & CL_DEVICE_TYPE_CPU) ? 2 : 0;
  char driver[200];
  snprintf(driver, sizeof(driver), "driver=%s\n", dev->driver_version);
  rewrite_line(path, driver, "driver=0.0-other\n");
  LAMP_OK_OR_FAIL(ctx, lamp_tune_apply(ctx, &applied));
  assert_int_equal(applied, builtin);
  rewrite_line(path, "driver=0.0-other\n", driver);

  /* a damaged parameter line: a clear error, nothing applied, and contexts still start */
  rewrite_line(path, "XgemmDirect:", "XgemmDirect;");
  assert_int_equal(lamp_tune_apply(ctx, &applied), LAMP_ERR_FORMAT);
  assert_int_equal(applied, 0);
  assert_non_null(strstr(lamp_context_error(ctx), "malformed tuning line"));
  lamp_context *c2 = NULL;
  char err[512];
  assert_int_equal(lamp_context_create(NULL, &c2, err, sizeof(err)), LAMP_OK);
  lamp_context_release(c2);
  remove(path);
  LAMP_OK_OR_FAIL(ctx, lamp_tune_apply(ctx, &applied));
  assert_int_equal(applied, builtin);
}

/* The real evaluator on the device: CLBlast's defaults give a positive time, and parameters
 * CLBlast refuses (a set missing most of its values) or computes wrongly with are reported as
 * -1, not as an error. */
static void test_evaluate_on_device(void **state) {
  lamp_context *ctx = *state;
  const size_t shapes[] = {33, 17, 9};
  double t = 0;
  LAMP_OK_OR_FAIL(ctx, lamp_tune_evaluate(ctx, NULL, 0, shapes, 1, &t));
  assert_true(t > 0);
  lamp_tune_params bad;
  assert_int_equal(lamp_tune_params_parse("XgemmDirect:WGD=16", &bad), LAMP_OK);
  LAMP_OK_OR_FAIL(ctx, lamp_tune_evaluate(ctx, &bad, 1, shapes, 1, &t));
  assert_true(t < 0);
  /* parameters CLBlast accepts but computes wrongly with (GEMMK=1 with MWG != NWG) are caught by
   * the transpose probe, whatever the timed shape */
  lamp_tune_params wrong[2];
  assert_int_equal(lamp_tune_params_parse("Xgemm:GEMMK=1,KREG=1,KWG=1,KWI=1,MDIMA=2,MDIMC=2,"
                                          "MWG=16,NDIMB=1,NDIMC=1,NWG=8,SA=0,SB=0,STRM=0,STRN=0,"
                                          "VWM=4,VWN=1", &wrong[0]), LAMP_OK);
  assert_int_equal(lamp_tune_params_parse("GemmRoutine:XGEMM_MIN_INDIRECT_SIZE=1", &wrong[1]),
                   LAMP_OK);
  LAMP_OK_OR_FAIL(ctx, lamp_tune_evaluate(ctx, wrong, 2, shapes, 1, &t));
  assert_true(t < 0);

  /* interleaved: the baseline beside the wrong configuration, on two shapes (one direct, one
   * tiled under the baseline's switch): the baseline's times, and -1 for every shape of the
   * other */
  lamp_tune_config configs[2];
  memset(configs, 0, sizeof(configs));
  int kind = -1;
  LAMP_OK_OR_FAIL(ctx, lamp_tune_baseline(ctx, configs[0].sets, &kind));
  configs[0].n_sets = 3;
  configs[1].sets[0] = wrong[0];
  configs[1].sets[1] = wrong[1];
  configs[1].n_sets = 2;
  const size_t two[] = {33, 17, 9, 300, 200, 100};
  double ts[4] = {0, 0, 0, 0};
  LAMP_OK_OR_FAIL(ctx, lamp_tune_measure(ctx, configs, 2, two, 2, ts));
  assert_true(ts[0] > 0 && ts[1] > 0);
  assert_true(ts[2] < 0 && ts[3] < 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_params_text),
      cmocka_unit_test(test_baseline),
      cmocka_unit_test(test_budget_one_keeps_the_baseline),
      cmocka_unit_test(test_search_finds_the_model_optimum),
      cmocka_unit_test(test_slower_results_are_never_stored),
      cmocka_unit_test(test_a_slower_shape_keeps_the_baseline),
      cmocka_unit_test(test_foreign_and_damaged_results),
      cmocka_unit_test(test_evaluate_on_device),
  };
  return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
