/* Data-parallel training through `mpirun -np 2 lamp train` on the tiny model: two ranks of 4
 * reach the parameters of one process with batch 8 and of one process accumulating 2 x 4,
 * within 1e-6, for LAMP and PT; a 2-rank checkpoint resumes to the uninterrupted 2-rank result
 * bit for bit (another number of ranks is refused); a rank given a device that does not exist
 * ends the whole job with its message within seconds.
 *
 * Needs lamp built with MPI and mpirun on the PATH; otherwise skipped, or with
 * LAMP_REQUIRE_MPI=1 (which the test script sets when it installed MPI) failed. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <cmocka.h>

#include "fixture.h"
#include "ref_train.h"

typedef struct env {
  char dir[64], data[128], log[128];
} env;

static const char *common =
    "--model " LAMP_TEST_DATA "/tiny.gguf --task sst2 --template '{sentence} =' --words ' a| b' "
    "--max-tokens 40 --length 8 --rank 2 --seed 3 --steps 10 --warmup 2 --lr 0.05 "
    "--eval-every 5 --eval-max 8 --final-eval-max 16";

static int mpi_ready(void) {
#ifdef LAMP_WITH_MPI
  return system("command -v mpirun >/dev/null 2>&1") == 0;
#else
  return 0;
#endif
}

static int setup(void **state) {
  env *e = calloc(1, sizeof(*e));
  if (!e) return -1;
  snprintf(e->dir, sizeof(e->dir), "/tmp/lamp-test-mpi-XXXXXX");
  if (!mkdtemp(e->dir)) return -1;
  snprintf(e->data, sizeof(e->data), "%s/train.tsv", e->dir);
  snprintf(e->log, sizeof(e->log), "%s/log.txt", e->dir);
  /* the class is the last word; 64 examples make 8 global batches of 8 */
  char text[8192];
  size_t at = (size_t)snprintf(text, sizeof(text), "sentence\tlabel\n");
  uint64_t s = 1;
  for (int i = 0; i < 64; i++) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    int label = (s >> 33) % 3 != 0;
    at += (size_t)snprintf(text + at, sizeof(text) - at, "%c%c%c %c%c %s \t%d\n",
                           'c' + (int)((s >> 40) % 20), 'c' + (int)((s >> 45) % 20),
                           'c' + (int)((s >> 50) % 20), 'c' + (int)((s >> 55) % 20),
                           'c' + (int)((s >> 20) % 20), label ? "up" : "down", label);
  }
  if (ref_train_write_file(e->data, text)) return -1;
  *state = e;
  return 0;
}

static int teardown(void **state) {
  env *e = *state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", e->dir);
  free(e);
  return 0;
}

/* Runs `[mpirun -np N] lamp train ARGS` into the log; returns the exit status. */
static int run(env *e, int ranks, const char *fmt, ...) {
  const char *lamp = ref_train_lamp_path();
  if (!lamp) fail_msg("the lamp tool is not built next to the tests");
  char args[2048], cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof(args), fmt, ap);
  va_end(ap);
  const char *mpi = "mpirun --allow-run-as-root --oversubscribe -np";
  if (ranks)
    snprintf(cmd, sizeof(cmd), "%s %d %s %s > %s 2>&1", mpi, ranks, lamp, args, e->log);
  else
    snprintf(cmd, sizeof(cmd), "%s %s > %s 2>&1", lamp, args, e->log);
  int st = system(cmd);
  return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

static void expect_run(env *e, int want, int ranks, const char *args) {
  int rc = run(e, ranks, "%s", args);
  if (rc != want) {
    /* the whole log (cmocka cuts a long failure message), freed before the test ends */
    char *log = ref_train_read_file(e->log, NULL);
    fprintf(stderr, "%d ranks: lamp %s\nexited %d, expected %d:\n%s\n", ranks, args, rc, want,
            log ? log : "");
    free(log);
    fail_msg("%d ranks: lamp exited %d, expected %d (its log above)", ranks, rc, want);
  }
}

static int log_has(env *e, const char *text) {
  char *log = ref_train_read_file(e->log, NULL);
  int has = log && strstr(log, text);
  if (!has) fprintf(stderr, "expected \"%s\" in:\n%s\n", text, log ? log : "(no log)");
  free(log);
  return has;
}


/* ||a - b|| / ||a||, and the largest elementwise difference over the largest value: float sums
 * in another order give a gradient element that cancels a relative error AdamW does not damp
 * (its update is about lr whatever the gradient's size), so the elementwise figure grows
 * faster (PT: 1e-6 after 10 steps here). */
/* The prompt's parameters (param.*) of a run folder's checkpoint. */
static float *params(const char *dir, size_t *count) {
  char path[512];
  snprintf(path, sizeof(path), "%s/checkpoint.safetensors", dir);
  float *v = ref_train_read_tensors(path, "param.", count);
  assert_non_null(v);
  return v;
}

static double rel_l2(const float *a, const float *b, size_t n, double *elementwise) {
  double d = 0, s = 0, worst = 0, scale = 0;
  for (size_t i = 0; i < n; i++) {
    double x = (double)a[i] - (double)b[i];
    d += x * x;
    s += (double)a[i] * (double)a[i];
    worst = fmax(worst, fabs(x));
    scale = fmax(scale, fabs((double)a[i]));
  }
  *elementwise = worst / scale;
  return sqrt(d / s);
}

static void need_mpi(void) {
  if (mpi_ready()) return;
  const char *req = getenv("LAMP_REQUIRE_MPI");
  if (req && !strcmp(req, "1")) fail_msg("lamp without MPI, or no mpirun: cannot test ranks");
  print_message("skipped: lamp built without MPI or no mpirun\n");
  skip();
}

static void test_two_ranks_equal_one_process(void **state) {
  env *e = *state;
  need_mpi();
  const char *methods[2] = {"lamp", "pt"};
  for (int m = 0; m < 2; m++) {
    char a[4096], dir[3][128];
    const char *shape[3] = {"--batch 8", "--batch 4 --accumulate 2", "--batch 4"};
    int ranks[3] = {0, 0, 2};
    for (int k = 0; k < 3; k++) {
      snprintf(dir[k], sizeof(dir[k]), "%s/%s-%d", e->dir, methods[m], k);
      snprintf(a, sizeof(a), "train %s --method %s %s --train-file %s --dev-file %s --out %s",
               common, methods[m], shape[k], e->data, e->data, dir[k]);
      expect_run(e, 0, ranks[k], a);
    }
    assert_true(log_has(e, "ranks: 2, each a micro-batch of 4"));
    size_t n[3];
    float *p[3];
    for (int k = 0; k < 3; k++) p[k] = params(dir[k], &n[k]);
    assert_true(n[0] == n[1] && n[0] == n[2]);
    double acc_e, par_e, acc = rel_l2(p[0], p[1], n[0], &acc_e), par = rel_l2(p[0], p[2], n[0], &par_e);
    print_message("%s after 10 steps, relative to batch 8: accumulate 2 x 4 %.2e (elementwise "
                  "%.2e), 2 ranks x 4 %.2e (%.2e)\n", methods[m], acc, acc_e, par, par_e);
    if (!(acc <= 1e-6 && par <= 1e-6)) fail_msg("%s: relative differences %g, %g", methods[m], acc, par);
    for (int k = 0; k < 3; k++) free(p[k]);
  }
}

static void test_two_rank_checkpoint_resumes(void **state) {
  env *e = *state;
  need_mpi();
  char a[4096], whole[128], part[128];
  snprintf(whole, sizeof(whole), "%s/whole", e->dir);
  snprintf(part, sizeof(part), "%s/part", e->dir);
  snprintf(a, sizeof(a), "train %s --batch 4 --train-file %s --dev-file %s --out %s", common,
           e->data, e->data, whole);
  expect_run(e, 0, 2, a);
  snprintf(a, sizeof(a), "train %s --batch 4 --train-file %s --dev-file %s --out %s --stop-after 4",
           common, e->data, e->data, part);
  expect_run(e, 0, 2, a);
  assert_true(log_has(e, "stopped at step 4 of 10"));
  /* another number of ranks makes other global batches: refused */
  snprintf(a, sizeof(a), "train --model %s/tiny.gguf --train-file %s --dev-file %s --out %s --resume",
           LAMP_TEST_DATA, e->data, e->data, part);
  expect_run(e, 2, 0, a);
  assert_true(log_has(e, "run option ranks cannot change on resume (checkpoint: '2', given: '1')"));
  expect_run(e, 0, 2, a);
  assert_true(log_has(e, "resuming"));
  size_t na, nb;
  float *pa = params(whole, &na), *pb = params(part, &nb);
  assert_int_equal(na, nb);
  assert_memory_equal(pa, pb, na * sizeof(float));
  free(pa);
  free(pb);
}

static void test_failing_rank_ends_the_job(void **state) {
  env *e = *state;
  need_mpi();
  const char *lamp = ref_train_lamp_path();
  char args[2048], cmd[6144];
  snprintf(args, sizeof(args), "train %s --batch 4 --train-file %s --dev-file %s --out %s/fail",
           common, e->data, e->data, e->dir);
  snprintf(cmd, sizeof(cmd), "mpirun --allow-run-as-root --oversubscribe -np 1 %s %s : -np 1 "
           "env LAMP_DEVICE=no-such-device %s %s > %s 2>&1", lamp, args, lamp, args, e->log);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int st = system(cmd);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0);
  assert_true(log_has(e, "[rank 1 of 2]"));
  assert_true(log_has(e, "no-such-device"));
  print_message("the job ended %.1f s after it started\n", s);
  if (s > 60) fail_msg("the failing rank took %.0f s to end the job", s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_two_ranks_equal_one_process),
      cmocka_unit_test(test_two_rank_checkpoint_resumes),
      cmocka_unit_test(test_failing_rank_ends_the_job),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
