/* Data-parallel failures through the library (lamp/train.h's lamp_reducer, lamp/mpi.h), on the
 * tiny model: ctest runs this program as `mpirun -np 2` in a -DLAMP_FAULT_INJECTION=ON build
 * with MPI, and every rank runs the same tests in the same order.
 *
 * A rank whose step, evaluation or checkpoint fails must not leave the other waiting in the
 * exchange: rank 1's next host allocation is made to fail (runtime/fault.h counts each process
 * on its own), or rank 0 is given a checkpoint path under a file. The failing rank
 * returns its own cause, the other LAMP_ERR_IO saying another rank failed; no rank takes the
 * failed step, and taking it again on both ranks ends bit for bit where a run without the
 * failure ends. A loss that is not finite on every rank ends lamp_trainer_fit on both. Before
 * the failure was exchanged, rank 0 waited in the gradient sum forever: ctest's timeout fails a
 * run where a rank waits. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <mpi.h>

#include "lamp/lamp.h"
#include "lamp/mpi.h"
#include "lamp/train.h"
#include "runtime/fault.h"

enum { STEPS = 6 };

typedef struct env {
  MPI_Comm comm;
  lamp_reducer red;
  int rank;
  char dir[64], tsv[128];
  lamp_context *ctx;
  lamp_llm *llm;
  lamp_classifier *cls;
  lamp_examples *train;
} env;

static env *the_env;

static void check(const env *e, lamp_status st, const char *what) {
  if (st != LAMP_OK)
    fail_msg("rank %d: %s: %s: %s", e->rank, what, lamp_status_name(st), lamp_context_error(e->ctx));
}

static int setup(void **state) {
  env *e = the_env;
  snprintf(e->dir, sizeof(e->dir), "/tmp/lamp-test-mpi-fault-XXXXXX");
  if (!mkdtemp(e->dir)) return -1;
  snprintf(e->tsv, sizeof(e->tsv), "%s/train.tsv", e->dir);
  FILE *f = fopen(e->tsv, "w");
  if (!f) return -1;
  /* 32 examples: 4 global batches of 2 ranks x 4, so a run of STEPS crosses an epoch */
  fprintf(f, "sentence\tlabel\n");
  for (int i = 0; i < 32; i++)
    fprintf(f, "it went %s and %s %d\t%d\n", i % 2 ? "up" : "down", i % 3 ? "on" : "off", i % 5,
            i % 2);
  fclose(f);
  char msg[512];
  const lamp_task *task = NULL;
  lamp_status st = lamp_context_create(NULL, &e->ctx, msg, sizeof(msg));
  if (st != LAMP_OK) {
    fprintf(stderr, "rank %d: lamp_context_create: %s\n", e->rank, msg);
    return -1;
  }
  if (st == LAMP_OK) st = lamp_llm_load(e->ctx, LAMP_TEST_DATA "/tiny.gguf", &e->llm);
  if (st == LAMP_OK) st = lamp_task_find(e->ctx, "sst2", &task);
  lamp_classifier_options co;
  if (st == LAMP_OK) {
    lamp_classifier_options_init(&co, task);
    co.template_text = "{sentence} =";
    co.words = " a| b";
    co.max_tokens = 40;
    st = lamp_classifier_create(e->llm, &co, &e->cls);
  }
  if (st == LAMP_OK) st = lamp_examples_load(e->cls, e->tsv, 0, &e->train);
  if (st == LAMP_OK) st = lamp_mpi_reducer_init(&e->red, &e->comm);
  if (st != LAMP_OK) {
    fprintf(stderr, "rank %d: setup: %s\n", e->rank, lamp_context_error(e->ctx));
    return -1;
  }
  *state = e;
  return 0;
}

static int teardown(void **state) {
  env *e = *state;
  lamp_examples_release(e->train);
  lamp_classifier_release(e->cls);
  lamp_llm_release(e->llm);
  lamp_context_release(e->ctx);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", e->dir);
  return 0;
}

static lamp_trainer *make_trainer(env *e, float lr) {
  lamp_trainer_options to;
  lamp_trainer_options_init(&to, e->llm, LAMP_PROMPT_LAMP);
  to.prompt.length = 8;
  to.prompt.rank = 2;
  to.prompt.seed = 3;
  to.adamw.lr = lr;
  to.batch = 4;
  to.steps = STEPS;
  to.reducer = &e->red;
  lamp_trainer *tr = NULL;
  check(e, lamp_trainer_create(e->cls, &to, e->train, &tr), "lamp_trainer_create");
  return tr;
}

static void step(env *e, lamp_trainer *tr, double *loss) {
  lamp_step_result r;
  check(e, lamp_trainer_step(tr), "lamp_trainer_step");
  check(e, lamp_trainer_collect(tr, &r), "lamp_trainer_collect");
  *loss = r.loss;
}

/* Rank 1's next allocation by lamp fails; rank 0's do not. */
static void arm_rank1(const env *e) {
  if (e->rank == 1) lamp__fault_host_fail_at(lamp__fault_host_count() + 1);
}

/* The call failed on both ranks, each saying why: rank 1 out of memory (the injected failure
 * was reached), rank 0 that another rank failed `what`. */
static void expect_rank1_failed(const env *e, lamp_status st, const char *what) {
  if (e->rank == 1) {
    if (st != LAMP_ERR_OUT_OF_MEMORY || lamp__fault_injected() != 1)
      fail_msg("rank 1: %s: %s (%llu failures injected), not out of memory", what,
               lamp_status_name(st), (unsigned long long)lamp__fault_injected());
    lamp__fault_reset();
  } else if (st != LAMP_ERR_IO || !strstr(lamp_context_error(e->ctx), what) ||
             !strstr(lamp_context_error(e->ctx), "1 of the ranks failed")) {
    fail_msg("rank 0: %s: %s: %s", what, lamp_status_name(st), lamp_context_error(e->ctx));
  }
}

static void test_a_failed_step_fails_on_every_rank(void **state) {
  env *e = *state;
  double clean[STEPS], again[STEPS];
  uint64_t fp_clean = 0, fp_again = 0;
  lamp_metrics m_clean, m_again;
  lamp_trainer *tr = make_trainer(e, 0.05f);
  for (int s = 0; s < STEPS; s++) step(e, tr, &clean[s]);
  check(e, lamp_trainer_fingerprint(tr, &fp_clean), "lamp_trainer_fingerprint");
  check(e, lamp_trainer_evaluate(tr, e->train, 0, &m_clean), "lamp_trainer_evaluate");
  lamp_trainer_release(tr);

  tr = make_trainer(e, 0.05f);
  step(e, tr, &again[0]);
  arm_rank1(e);
  expect_rank1_failed(e, lamp_trainer_step(tr), "step 2");
  lamp_trainer_state ts;
  check(e, lamp_trainer_get_state(tr, &ts), "lamp_trainer_get_state");
  assert_int_equal(ts.step, 1);
  assert_int_equal(ts.pending, 0);
  for (int s = 1; s < STEPS; s++) step(e, tr, &again[s]);
  for (int s = 0; s < STEPS; s++)
    if (memcmp(&clean[s], &again[s], sizeof(double)))
      fail_msg("rank %d: step %d: loss %.17g after the failed step, %.17g without", e->rank,
               s + 1, again[s], clean[s]);
  check(e, lamp_trainer_fingerprint(tr, &fp_again), "lamp_trainer_fingerprint");
  assert_true(fp_again == fp_clean);

  arm_rank1(e);
  expect_rank1_failed(e, lamp_trainer_evaluate(tr, e->train, 0, &m_again), "the evaluation");
  check(e, lamp_trainer_evaluate(tr, e->train, 0, &m_again), "lamp_trainer_evaluate");
  assert_true(m_again.accuracy == m_clean.accuracy && m_again.loss == m_clean.loss);
  lamp_trainer_release(tr);
}

static void test_a_failed_checkpoint_ends_fit_on_every_rank(void **state) {
  env *e = *state;
  char ckpt[160];
  snprintf(ckpt, sizeof(ckpt), "%s/checkpoint.safetensors", e->tsv); /* under a file */
  lamp_trainer *tr = make_trainer(e, 0.05f);
  lamp_fit_options fo;
  lamp_fit_options_init(&fo);
  fo.checkpoint = e->rank == 0 ? ckpt : NULL; /* as lamp train: rank 0 alone writes */
  fo.checkpoint_every = 2;
  lamp_status st = lamp_trainer_fit(tr, &fo);
  const char *msg = lamp_context_error(e->ctx);
  if (st == LAMP_OK) fail_msg("rank %d: fit wrote %s", e->rank, ckpt);
  if (e->rank == 0 && !strstr(msg, "train.tsv"))
    fail_msg("rank 0: the checkpoint's error does not name its path: %s", msg);
  if (e->rank == 1 && (st != LAMP_ERR_IO || !strstr(msg, "the checkpoint")))
    fail_msg("rank 1: %s: %s", lamp_status_name(st), msg);
  lamp_trainer_state ts;
  check(e, lamp_trainer_get_state(tr, &ts), "lamp_trainer_get_state");
  assert_int_equal(ts.step, 2);
  lamp_trainer_release(tr);
}

/* Every rank sees the same summed loss, so a loss that is not finite ends fit on every rank
 * with LAMP_ERR_NUMERIC, whichever exchange comes next. */
static void test_a_diverged_run_ends_fit_on_every_rank(void **state) {
  env *e = *state;
  lamp_trainer *tr = make_trainer(e, 1e30f);
  lamp_fit_options fo;
  lamp_fit_options_init(&fo);
  lamp_status st = lamp_trainer_fit(tr, &fo);
  if (st != LAMP_ERR_NUMERIC)
    fail_msg("rank %d: fit at lr 1e30: %s: %s", e->rank, lamp_status_name(st),
             lamp_context_error(e->ctx));
  lamp_trainer_release(tr);
}

int main(int argc, char **argv) {
  if (MPI_Init(&argc, &argv) != MPI_SUCCESS) return 1;
  static env e;
  e.comm = MPI_COMM_WORLD;
  MPI_Comm_rank(e.comm, &e.rank);
  int size = 0;
  MPI_Comm_size(e.comm, &size);
  if (size != 2) {
    fprintf(stderr, "test_mpi_fault runs on 2 ranks (mpirun -np 2), not %d\n", size);
    MPI_Finalize();
    return 1;
  }
  the_env = &e;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_failed_step_fails_on_every_rank),
      cmocka_unit_test(test_a_failed_checkpoint_ends_fit_on_every_rank),
      cmocka_unit_test(test_a_diverged_run_ends_fit_on_every_rank),
  };
  int failed = cmocka_run_group_tests(tests, setup, teardown);
  MPI_Finalize();
  return failed ? 1 : 0;
}
