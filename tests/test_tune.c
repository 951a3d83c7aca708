/* GEMM tuning: parameter text, the search logic (with a model evaluator standing in for the
 * device so the test is fast and its answer known), storage, and application on creation. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fixture.h"
#include "ref.h"

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

/* A stand-in for the device: the direct kernel costs 1 + |WGD - 32| / 8 per 1e6 multiply-adds
 * and the tiled kernel a fixed 4 ms plus 1 per 4e6 with MWG = 64 (more otherwise), so the best
 * configurations and the switch point are known in advance. */
typedef struct model_eval {
  unsigned calls;
  int crash_every; /* pretend every n-th candidate crashed */
} model_eval;

static size_t value_of(const lamp_tune_params *p, const char *name) {
  for (size_t i = 0; i < p->n; i++)
    if (!strcmp(p->names[i], name)) return p->values[i];
  return 0;
}

static lamp_status model_evaluate(void *user, const lamp_tune_params *sets, size_t n_sets,
                                  const size_t *shapes, size_t n, double *seconds) {
  model_eval *me = user;
  me->calls++;
  size_t route = 0, wgd = 16, mwg = 32;
  for (size_t s = 0; s < n_sets; s++) {
    if (!strcmp(sets[s].kernel, "GemmRoutine")) route = sets[s].values[0];
    if (!strcmp(sets[s].kernel, "XgemmDirect")) wgd = value_of(&sets[s], "WGD");
    if (!strcmp(sets[s].kernel, "Xgemm")) mwg = value_of(&sets[s], "MWG");
  }
  int crashed = me->crash_every && n_sets == 2 && me->calls % (unsigned)me->crash_every == 0;
  for (size_t i = 0; i < n; i++) {
    double mnk = (double)shapes[3 * i] * shapes[3 * i + 1] * shapes[3 * i + 2];
    int direct = n_sets == 0 ? mnk < 896.0 * 896 * 896 : mnk < (double)route * route * route;
    double direct_cost = 1e-3 * mnk / 1e6 * (1 + (wgd > 32 ? wgd - 32 : 32 - wgd) / 8.0);
    double tiled_cost = 4e-3 + 1e-3 * mnk / 4e6 * (mwg == 64 ? 1 : 2);
    seconds[i] = crashed ? -1 : direct ? direct_cost : tiled_cost;
  }
  return LAMP_OK;
}

static void test_search_finds_the_model_optimum(void **state) {
  lamp_context *ctx = *state;
  static const size_t shapes[] = {32, 32, 32, 64, 64, 64, 512, 512, 512, 1024, 1024, 1024};
  lamp_tune_options o;
  lamp_tune_options_init(&o);
  o.shapes = shapes;
  o.n_shapes = 4;
  o.budget = 30;
  model_eval me = {0, 7};
  o.evaluate = model_evaluate;
  o.evaluate_user = &me;
  lamp_tune_report r;
  LAMP_OK_OR_FAIL(ctx, lamp_tune_gemm(ctx, &o, &r));
  assert_int_equal(r.n_shapes, 4);
  assert_true(r.tried > 20);
  assert_true(r.rejected > 0); /* the "crashed" candidates were survived, not fatal */
  assert_string_equal(r.result[0].kernel, "XgemmDirect");
  assert_int_equal(value_of(&r.result[0], "WGD"), 32);
  assert_string_equal(r.result[1].kernel, "Xgemm");
  assert_int_equal(value_of(&r.result[1], "MWG"), 64);
  /* direct is cheaper below about 2.3e6 multiply-adds (with WGD 32), tiled above: small shapes
   * direct, large ones tiled */
  assert_true(r.shapes[0].direct && r.shapes[1].direct);
  assert_false(r.shapes[2].direct || r.shapes[3].direct);
  for (int i = 0; i < 4; i++) assert_true(r.shapes[i].gflops_after >= r.shapes[i].gflops_before);
  struct stat st;
  assert_int_equal(stat(r.path, &st), 0);

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

/* With a budget of one, only the first seed is tried: on PoCL CPUs that is lamp's built-in
 * result, so a short search can never store less than what such a device gets without one. */
static void test_builtin_is_the_first_seed(void **state) {
  lamp_context *ctx = *state;
  const lamp_device_info *dev = lamp_context_device(ctx);
  if (strcmp(dev->platform_name, "Portable Computing Language") || !(dev->type & CL_DEVICE_TYPE_CPU))
    skip();
  static const size_t shapes[] = {32, 32, 32, 1024, 1024, 1024};
  lamp_tune_options o;
  lamp_tune_options_init(&o);
  o.shapes = shapes;
  o.n_shapes = 2;
  o.budget = 1;
  model_eval me = {0, 0};
  o.evaluate = model_evaluate;
  o.evaluate_user = &me;
  lamp_tune_report r;
  LAMP_OK_OR_FAIL(ctx, lamp_tune_gemm(ctx, &o, &r));
  assert_int_equal(value_of(&r.result[0], "WGD"), 64);
  assert_int_equal(value_of(&r.result[0], "VWMD"), 8);
  assert_int_equal(value_of(&r.result[1], "GEMMK"), 1);
  assert_int_equal(value_of(&r.result[1], "MDIMC"), 2);
  assert_int_equal(value_of(&r.result[1], "VWM"), 8);
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
  lamp_context *ctx = *state;
  char path[1200];
  LAMP_OK_OR_FAIL(ctx, lamp_tune_path(ctx, path, sizeof(path)));
  int applied = -1;
  LAMP_OK_OR_FAIL(ctx, lamp_tune_apply(ctx, &applied));
  assert_int_equal(applied, 1); /* from the search test */

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
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_params_text),
      cmocka_unit_test(test_search_finds_the_model_optimum),
      cmocka_unit_test(test_builtin_is_the_first_seed),
      cmocka_unit_test(test_foreign_and_damaged_results),
      cmocka_unit_test(test_evaluate_on_device),
  };
  return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
