/* The engine through its public API (lamp/train.h) on the tiny random model of
 * tests/data/tiny.gguf: fit and hand-driven steps agree bit for bit, a resumed trainer reaches
 * the same parameters as one never stopped, a checkpoint that does not fit the run is refused
 * before it changes the trainer, cancellation checkpoints, a PEFT adapter scores as
 * the prompt it came from, scoring after a cached prompt matches scoring without the cache, a
 * custom CSV task trains and evaluates, examples that do not fit a classifier are refused,
 * metrics match hand counts,
 * and bad input gets a message naming its cause. Each test makes what it needs. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "fixture.h"
#include "lamp/train.h"
#include "ref_train.h"

typedef struct env {
  lamp_context *ctx;
  lamp_llm *llm;
  char dir[64], train[128], dev[128];
} env;


static int setup(void **state) {
  env *e = calloc(1, sizeof(*e));
  if (!e || fixture_setup((void **)&e->ctx)) return -1;
  snprintf(e->dir, sizeof(e->dir), "/tmp/lamp-test-engine-XXXXXX");
  if (!mkdtemp(e->dir)) return -1;
  snprintf(e->train, sizeof(e->train), "%s/train.tsv", e->dir);
  snprintf(e->dev, sizeof(e->dev), "%s/dev.tsv", e->dir);
  if (ref_train_write_split(e->train, 64, 1) || ref_train_write_split(e->dev, 16, 2)) return -1;
  /* the shared tiny model (tests/gen_tiny_model.c) */
  if (lamp_llm_load(e->ctx, LAMP_TEST_DATA "/tiny.gguf", &e->llm) != LAMP_OK) return -1;
  *state = e;
  return 0;
}

static int teardown(void **state) {
  env *e = *state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", e->dir);
  lamp_llm_release(e->llm);
  lamp_context_release(e->ctx);
  free(e);
  return 0;
}

/* SST-2's layout with a template and the words " a" and " b" (one token each here). */
static lamp_classifier *make_classifier(env *e) {
  const lamp_task *sst2 = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_task_find(e->ctx, "sst2", &sst2));
  lamp_classifier_options co;
  lamp_classifier_options_init(&co, sst2);
  co.template_text = "{sentence} =";
  co.words = " a| b";
  co.max_tokens = 40;
  co.eval_batch = 8;
  lamp_classifier *c = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_classifier_create(e->llm, &co, &c));
  return c;
}

static void small_options(env *e, lamp_trainer_options *to, uint64_t steps) {
  lamp_trainer_options_init(to, e->llm, LAMP_PROMPT_LAMP);
  to->prompt.length = 8;
  to->prompt.rank = 2;
  to->prompt.seed = 3;
  to->batch = 8;
  to->steps = steps;
  to->warmup = 2;
  to->adamw.lr = 0.05f;
}

/* `got` is `want`, and the context's message holds `text`. */
static void expect_error(env *e, lamp_status got, lamp_status want, const char *text) {
  assert_int_equal(got, want);
  if (!strstr(lamp_context_error(e->ctx), text))
    fail_msg("expected \"%s\" in \"%s\"", text, lamp_context_error(e->ctx));
}

/* The trainer's tensors whose names start with `prefix` ("param." for the prompt's values, ""
 * for values and AdamW moments), through a checkpoint named `name`. */
static float *saved(env *e, lamp_trainer *t, const char *name, const char *prefix, size_t *count) {
  char path[256];
  snprintf(path, sizeof(path), "%s/%s.safetensors", e->dir, name);
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_save(t, path, NULL, NULL, 0));
  float *v = ref_train_read_tensors(path, prefix, count);
  assert_non_null(v);
  return v;
}

static void test_fit_equals_steps_and_learns(void **state) {
  env *e = *state;
  lamp_classifier *c = make_classifier(e);
  lamp_examples *train = NULL, *dev = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c, e->train, 0, &train));
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c, e->dev, 0, &dev));
  assert_int_equal(lamp_examples_count(train), 64);
  lamp_trainer_options to;
  small_options(e, &to, 64); /* 8 epochs of 8 batches */
  to.adamw.lr = 0.1f;
  lamp_trainer *a = NULL, *b = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c, &to, train, &a));
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c, &to, train, &b));
  lamp_metrics before, after;
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_evaluate(a, dev, 0, &before));

  /* by hand, two steps deep as fit runs them; batches differ in their class mix, so the
   * first epoch's mean loss is compared with the last's */
  double first = 0, last = 0;
  lamp_step_result r;
  for (uint64_t s = 0; s < 64; s++) {
    LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_step(a));
    if (s) {
      LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_collect(a, &r));
      assert_int_equal(r.step, s);
      if (r.step <= 8) first += r.loss / 8;
      if (r.step > 56) last += r.loss / 8;
    }
  }
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_collect(a, &r));
  assert_int_equal(r.step, 64);
  last += r.loss / 8;
  assert_int_equal(lamp_trainer_step(a), LAMP_ERR_INVALID_ARGUMENT); /* the run is done */
  if (!(last < 0.85 * first)) fail_msg("training loss %.4f -> %.4f did not fall by 15%%", first, last);

  lamp_fit_options fit;
  lamp_fit_options_init(&fit);
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_fit(b, &fit));
  size_t na, nb;
  float *sa = saved(e, a, "by-hand", "", &na), *sb = saved(e, b, "fit", "", &nb);
  assert_int_equal(na, nb);
  assert_memory_equal(sa, sb, na * sizeof(float));
  free(sa);
  free(sb);
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_evaluate(a, dev, 0, &after));
  assert_int_equal(after.examples, 16);
  assert_true(after.loss < before.loss);
  lamp_trainer_state ts;
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_get_state(a, &ts));
  assert_int_equal(ts.trainable, 2 * (8 + 32 + 1)); /* r (P + C + 1) */
  assert_int_equal(ts.prompt_rows, 4);
  lamp_trainer_release(a);
  lamp_trainer_release(b);
  lamp_examples_release(train);
  lamp_examples_release(dev);
  lamp_classifier_release(c);
}

typedef struct counter {
  size_t steps, evals, checkpoints, stop_at;
} counter;

static int count_events(void *user, const lamp_fit_report *rep) {
  counter *k = user;
  if (rep->event == LAMP_FIT_STEP) {
    assert_int_equal(rep->result->step, ++k->steps);
    assert_true(isfinite(rep->result->loss) && rep->result->step_s > 0);
  }
  if (rep->event == LAMP_FIT_EVAL) {
    k->evals++;
    assert_int_equal(rep->metrics->examples, 8);
  }
  if (rep->event == LAMP_FIT_CHECKPOINT) k->checkpoints++;
  return k->stop_at && k->steps == k->stop_at;
}

/* Two steps in flight that the host sees end together (as Intel's CPU runtime reports them,
 * finishing all flushed work inside clWaitForEvents; here the queue is drained before either is
 * collected): the second step's time is half the pair's, not zero. */
static void test_step_time_of_steps_seen_done_together(void **state) {
  env *e = *state;
  lamp_classifier *c = make_classifier(e);
  lamp_examples *train = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c, e->train, 0, &train));
  lamp_trainer_options to;
  small_options(e, &to, 4);
  lamp_trainer *t = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c, &to, train, &t));
  lamp_step_result r1, r2;
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_step(t));
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_step(t));
  LAMP_OK_OR_FAIL(e->ctx, lamp_context_finish(e->ctx));
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_collect(t, &r1));
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_collect(t, &r2));
  assert_true(r1.step_s > 0);
  if (!(r2.step_s > 0.4 * r1.step_s && r2.step_s < 0.6 * r1.step_s))
    fail_msg("step times %.6f then %.6f s: the second should be half the pair", r1.step_s,
             r2.step_s);
  lamp_trainer_release(t);
  lamp_examples_release(train);
  lamp_classifier_release(c);
}

static void test_resume_is_exact_and_cancel_checkpoints(void **state) {
  env *e = *state;
  lamp_classifier *c = make_classifier(e);
  lamp_examples *train = NULL, *dev = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c, e->train, 0, &train));
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c, e->dev, 0, &dev));
  lamp_trainer_options to;
  small_options(e, &to, 14); /* 8 batches an epoch: crosses an epoch boundary */
  char ckpt[256];
  snprintf(ckpt, sizeof(ckpt), "%s/resume.safetensors", e->dir);

  lamp_trainer *whole = NULL, *part = NULL, *rest = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c, &to, train, &whole));
  lamp_fit_options fit;
  lamp_fit_options_init(&fit);
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_fit(whole, &fit));

  /* the callback asks to stop when step 5 is reported, which is once step 6 is queued: a
   * checkpoint at 6 and LAMP_ERR_CANCELLED */
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c, &to, train, &part));
  counter k = {0, 0, 0, 5};
  fit.dev = dev;
  fit.eval_every = 2;
  fit.eval_max = 8;
  fit.checkpoint = ckpt;
  fit.checkpoint_every = 4;
  fit.callback = count_events;
  fit.user = &k;
  assert_int_equal(lamp_trainer_fit(part, &fit), LAMP_ERR_CANCELLED);
  assert_int_equal(k.evals, 2);       /* steps 2 and 4; none at 6, where the run stops */
  assert_int_equal(k.checkpoints, 2); /* steps 4 and 6 */
  lamp_checkpoint *ck = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_open(e->ctx, ckpt, &ck));
  assert_string_equal(lamp_checkpoint_get(ck, "train.step"), "6");
  /* a new process: options from the checkpoint, then the rest of the run */
  lamp_classifier_options co;
  lamp_trainer_options stored;
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_classifier_options(ck, &co));
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_trainer_options(ck, e->llm, &stored));
  assert_string_equal(co.words, " a| b");
  assert_int_equal(stored.steps, 14);
  assert_true(stored.adamw.lr == to.adamw.lr);
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_check_options(ck, &co, &stored));
  stored.adamw.lr = 0.2f;
  assert_int_equal(lamp_checkpoint_check_options(ck, &co, &stored), LAMP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(lamp_context_error(e->ctx), "run option lr cannot change"));
  stored.adamw.lr = to.adamw.lr;
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c, &stored, train, &rest));
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_resume(rest, ck));
  lamp_checkpoint_release(ck);
  lamp_fit_options_init(&fit);
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_fit(rest, &fit));
  size_t na, nb;
  float *sa = saved(e, whole, "whole", "", &na), *sb = saved(e, rest, "rest", "", &nb);
  assert_int_equal(na, nb);
  assert_memory_equal(sa, sb, na * sizeof(float));
  free(sa);
  free(sb);
  lamp_trainer_release(whole);
  lamp_trainer_release(part);
  lamp_trainer_release(rest);
  lamp_examples_release(train);
  lamp_examples_release(dev);
  lamp_classifier_release(c);
}

static void test_peft_adapter_scores_as_its_prompt(void **state) {
  env *e = *state;
  lamp_classifier *c = make_classifier(e);
  lamp_examples *train = NULL, *dev = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c, e->train, 0, &train));
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c, e->dev, 0, &dev));
  lamp_trainer_options to;
  small_options(e, &to, 6);
  lamp_trainer *t = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c, &to, train, &t));
  lamp_fit_options fit;
  lamp_fit_options_init(&fit);
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_fit(t, &fit));
  char dir[256];
  snprintf(dir, sizeof(dir), "%s/adapter", e->dir);
  LAMP_OK_OR_FAIL(e->ctx, lamp_peft_export(e->llm, lamp_trainer_prompt(t), dir, "org/base-id"));
  char cfg[300];
  snprintf(cfg, sizeof(cfg), "%s/adapter_config.json", dir);
  char *json = ref_train_read_file(cfg, NULL);
  assert_non_null(json);
  assert_non_null(strstr(json, "\"base_model_name_or_path\": \"org/base-id\""));
  assert_non_null(strstr(json, "\"num_virtual_tokens\": 4"));
  free(json);
  lamp_prompt *imported = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_peft_import(e->llm, dir, &imported));
  size_t n = lamp_examples_count(dev), K = lamp_classifier_label_count(c);
  double *sa = malloc(n * K * sizeof(double)), *sb = malloc(n * K * sizeof(double));
  assert_true(sa && sb);
  LAMP_OK_OR_FAIL(e->ctx, lamp_classifier_evaluate(c, lamp_trainer_prompt(t), dev, 0, sa, NULL, NULL));
  LAMP_OK_OR_FAIL(e->ctx, lamp_classifier_evaluate(c, imported, dev, 0, sb, NULL, NULL));
  for (size_t i = 0; i < n * K; i++)
    if (fabs(sa[i] - sb[i]) > 1e-4 * (1 + fabs(sa[i])))
      fail_msg("score %zu: prompt %.6f, its adapter %.6f", i, sa[i], sb[i]);
  free(sa);
  free(sb);
  lamp_prompt_release(imported);
  /* an adapter for another width is refused with the reason */
  lamp_trainer_release(t);
  lamp_examples_release(train);
  lamp_examples_release(dev);
  lamp_classifier_release(c);
}

/* Scoring after the prompt's keys and values computed once (the default) gives the scores,
 * predictions and metrics of scoring with the prompt rows in every batch: one-token words (the
 * label head) and words of three tokens (the vocabulary head), batches of 5 with a last one of
 * 1. */
static void test_prompt_cache_scores_as_without(void **state) {
  env *e = *state;
  const lamp_task *sst2 = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_task_find(e->ctx, "sst2", &sst2));
  const char *words[2] = {" a| b", " no| yes"};
  for (int w = 0; w < 2; w++) {
    lamp_classifier *c[2] = {NULL, NULL};
    lamp_examples *dev[2] = {NULL, NULL}, *train = NULL;
    for (int i = 0; i < 2; i++) {
      lamp_classifier_options co;
      lamp_classifier_options_init(&co, sst2);
      co.template_text = "{sentence} =";
      co.words = words[w];
      co.max_tokens = 40;
      co.eval_batch = 5;
      co.no_prompt_cache = i;
      LAMP_OK_OR_FAIL(e->ctx, lamp_classifier_create(e->llm, &co, &c[i]));
      LAMP_OK_OR_FAIL(e->ctx, lamp_classifier_get_options(c[i], &co));
      assert_int_equal(co.no_prompt_cache, i);
      LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c[i], e->dev, 0, &dev[i]));
    }
    size_t tokens = 0;
    assert_non_null(lamp_classifier_word(c[0], 0, &tokens));
    assert_int_equal(tokens, w ? 3 : 1);
    LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c[0], e->train, 0, &train));
    lamp_trainer_options to;
    small_options(e, &to, 4);
    lamp_trainer *t = NULL;
    LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c[0], &to, train, &t));
    lamp_fit_options fit;
    lamp_fit_options_init(&fit);
    LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_fit(t, &fit));
    const size_t n = lamp_examples_count(dev[0]), K = lamp_classifier_label_count(c[0]);
    double *sc[2];
    int32_t *pred[2];
    lamp_metrics m[2];
    for (int i = 0; i < 2; i++) {
      sc[i] = malloc(n * K * sizeof(double));
      pred[i] = malloc(n * sizeof(int32_t));
      assert_true(sc[i] && pred[i]);
      LAMP_OK_OR_FAIL(e->ctx, lamp_classifier_evaluate(c[i], lamp_trainer_prompt(t), dev[i], 0,
                                                       sc[i], pred[i], &m[i]));
    }
    double worst = 0;
    for (size_t j = 0; j < n * K; j++) {
      double d = fabs(sc[0][j] - sc[1][j]) / (1 + fabs(sc[1][j]));
      if (!(d < 1e-5)) fail_msg("words '%s', score %zu: %.7f cached, %.7f not", words[w], j,
                                sc[0][j], sc[1][j]);
      if (d > worst) worst = d;
    }
    for (size_t j = 0; j < n; j++) assert_int_equal(pred[0][j], pred[1][j]);
    assert_int_equal(m[0].examples, n);
    assert_true(m[0].accuracy == m[1].accuracy && m[0].score == m[1].score);
    assert_true(fabs(m[0].loss - m[1].loss) < 1e-5);
    print_message("words '%s': scores within %.2e with and without the prompt cache, accuracy "
                  "%.4f both\n", words[w], worst, m[0].accuracy);
    for (int i = 0; i < 2; i++) {
      free(sc[i]), free(pred[i]);
      lamp_examples_release(dev[i]);
    }
    lamp_trainer_release(t);
    lamp_examples_release(train);
    lamp_classifier_release(c[0]);
    lamp_classifier_release(c[1]);
  }
}

/* A user's CSV file: quoted fields with commas, the label and text columns found by name,
 * labels of the user's own spelling. */
static void rewrite_checkpoint(env *e, const char *from, const char *to, const char *key,
                               const char *value, const char *poison);

static void test_custom_csv_task_trains_and_evaluates(void **state) {
  env *e = *state;
  char path[256];
  snprintf(path, sizeof(path), "%s/reviews.csv", e->dir);
  size_t cap = 16384, at = 0;
  char *text = malloc(cap);
  assert_non_null(text);
  at += (size_t)snprintf(text, cap, "id,verdict,text\n");
  uint64_t seed = 5;
  for (size_t i = 0; i < 48; i++) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    int good = (seed >> 33) % 2;
    at += (size_t)snprintf(text + at, cap - at, "%zu,%s,\"%c%c, \"\"%c\"\" %s\"\n", i,
                           good ? "good" : "bad", 'c' + (int)((seed >> 40) % 20),
                           'c' + (int)((seed >> 45) % 20), 'c' + (int)((seed >> 50) % 20),
                           good ? "up" : "down");
  }
  assert_int_equal(ref_train_write_file(path, text), 0);
  free(text);
  lamp_task t;
  memset(&t, 0, sizeof(t));
  t.name = "reviews";
  t.folder = "";
  t.format = LAMP_DATA_CSV;
  t.header = 1;
  t.n_fields = 1;
  t.fields[0] = "text";
  t.columns[0] = -1;
  t.label_column = -1;
  t.label_field = "verdict";
  t.n_labels = 2;
  t.labels[0] = "bad";
  t.labels[1] = "good";
  t.template_text = "{text} =";
  t.metric = LAMP_DATA_METRIC_F1;
  lamp_classifier_options co;
  lamp_classifier_options_init(&co, &t);
  co.words = " a| b";
  co.max_tokens = 40;
  lamp_classifier *c = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_classifier_create(e->llm, &co, &c));
  lamp_examples *ex = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c, path, 0, &ex));
  assert_int_equal(lamp_examples_count(ex), 48);
  lamp_trainer_options to;
  small_options(e, &to, 12);
  to.adamw.lr = 0.1f;
  lamp_trainer *tr = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c, &to, ex, &tr));
  lamp_metrics m0, m1;
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_evaluate(tr, ex, 0, &m0));
  char ckpt[256];
  snprintf(ckpt, sizeof(ckpt), "%s/custom.safetensors", e->dir);
  lamp_fit_options fit;
  lamp_fit_options_init(&fit);
  fit.checkpoint = ckpt;
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_fit(tr, &fit));
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_evaluate(tr, ex, 0, &m1));
  assert_int_equal(m1.metric, LAMP_DATA_METRIC_F1);
  assert_true(m1.score == m1.f1);
  assert_true(m1.loss < m0.loss);
  /* the checkpoint carries the custom task: a classifier from it reads the same file */
  lamp_checkpoint *ck = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_open(e->ctx, ckpt, &ck));
  lamp_classifier_options back;
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_classifier_options(ck, &back));
  assert_string_equal(back.task->name, "reviews");
  assert_string_equal(back.task->label_field, "verdict");
  assert_int_equal(back.task->format, LAMP_DATA_CSV);
  lamp_classifier *c2 = NULL;
  lamp_examples *ex2 = NULL;
  lamp_prompt *p = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_classifier_create(e->llm, &back, &c2));
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_prompt(ck, e->llm, &p));
  /* resume compares the custom task's layout as well as the run options */
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_check_options(ck, &co, &to));
  lamp_task swapped = t;
  swapped.labels[0] = "good";
  swapped.labels[1] = "bad";
  lamp_classifier_options co2 = co;
  co2.task = &swapped;
  expect_error(e, lamp_checkpoint_check_options(ck, &co2, &to), LAMP_ERR_INVALID_ARGUMENT,
               "the task's labels cannot change on resume (checkpoint: 'bad|good'");
  lamp_checkpoint_release(ck);
  char bad[256];
  snprintf(bad, sizeof(bad), "%s/custom-bad.safetensors", e->dir);
  rewrite_checkpoint(e, ckpt, bad, "task.label-column", "one", NULL);
  lamp_classifier_options none;
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_open(e->ctx, bad, &ck));
  expect_error(e, lamp_checkpoint_classifier_options(ck, &none), LAMP_ERR_FORMAT,
               "task.label-column holds 'one', not a column");
  lamp_checkpoint_release(ck);
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c2, path, 0, &ex2));
  lamp_metrics m2;
  LAMP_OK_OR_FAIL(e->ctx, lamp_classifier_evaluate(c2, p, ex2, 0, NULL, NULL, &m2));
  assert_true(fabs(m2.loss - m1.loss) < 1e-6 && m2.accuracy == m1.accuracy);
  lamp_prompt_release(p);
  lamp_examples_release(ex2);
  lamp_classifier_release(c2);
  lamp_trainer_release(tr);
  lamp_examples_release(ex);
  lamp_classifier_release(c);
}

/* A text given to predict scores exactly as the same line read from a file: the trailing
 * spaces that the loader strips are stripped here too. */
static void test_added_text_matches_the_file_path(void **state) {
  env *e = *state;
  lamp_classifier *c = make_classifier(e);
  lamp_examples *file = NULL, *added = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c, e->dev, 2, &file));
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_create(c, &added));
  char *text = ref_train_read_file(e->dev, NULL);
  assert_non_null(text);
  char *line = strchr(text, '\n') + 1; /* past the header */
  for (int i = 0; i < 2; i++) {
    char *tab = strchr(line, '\t');
    *tab = '\0';
    const char *fields[1] = {line}; /* ends in a space, as the file's sentences do */
    LAMP_OK_OR_FAIL(e->ctx, lamp_examples_add(c, added, fields, -1));
    line = strchr(tab + 1, '\n') + 1;
  }
  free(text);
  assert_int_equal(lamp_examples_tokens(added), lamp_examples_tokens(file));
  double sa[4], sb[4];
  int32_t pa[2], pb[2];
  LAMP_OK_OR_FAIL(e->ctx, lamp_classifier_evaluate(c, NULL, file, 0, sa, pa, NULL));
  LAMP_OK_OR_FAIL(e->ctx, lamp_classifier_evaluate(c, NULL, added, 0, sb, pb, NULL));
  assert_memory_equal(sa, sb, sizeof(sa));
  assert_memory_equal(pa, pb, sizeof(pa));
  /* a trainer on the same classifier steps on after the classifier scored the bare model */
  lamp_trainer_options to;
  small_options(e, &to, 2);
  to.warmup = 0;
  lamp_trainer *t = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c, &to, file, &t));
  lamp_step_result r;
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_step(t));
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_collect(t, &r));
  LAMP_OK_OR_FAIL(e->ctx, lamp_classifier_evaluate(c, NULL, file, 0, sb, pb, NULL));
  assert_memory_equal(sa, sb, sizeof(sa));
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_step(t));
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_collect(t, &r));
  assert_true(isfinite(r.loss));
  lamp_trainer_release(t);
  /* unknown labels: scores, but no metrics */
  lamp_metrics m;
  assert_int_equal(lamp_classifier_evaluate(c, NULL, added, 0, NULL, NULL, &m),
                   LAMP_ERR_INVALID_ARGUMENT);
  lamp_examples_release(file);
  lamp_examples_release(added);
  lamp_classifier_release(c);
}


/* ||a - b|| <= rel ||a||: the elementwise difference grows faster, since a gradient element
 * that cancels has a large relative error that AdamW's normalised update does not damp. */
static void expect_close(const float *a, const float *b, size_t n, double rel, const char *what) {
  double d = 0, s = 0;
  for (size_t i = 0; i < n; i++) {
    double x = (double)a[i] - (double)b[i];
    d += x * x;
    s += (double)a[i] * (double)a[i];
  }
  if (!(sqrt(d) <= rel * sqrt(s))) fail_msg("%s: parameters differ by %g relative", what, sqrt(d / s));
}

/* Two ranks in one process: threads that meet at a barrier to sum their buffers. Both sum in
 * the same order, so both get the same doubles, as MPI_Allreduce gives every rank. */
typedef struct pair {
  pthread_barrier_t meet;
  double *data[2];
  env *e;
  lamp_prompt_method method;
  float *params[2];
  size_t n_params;
} pair;

typedef struct pair_rank {
  pair *p;
  size_t rank;
} pair_rank;

static int pair_sum(void *user, double *data, size_t count) {
  pair_rank *r = user;
  pair *p = r->p;
  p->data[r->rank] = data;
  double *sum = malloc(count * sizeof(double));
  if (!sum) return 1;
  pthread_barrier_wait(&p->meet);
  for (size_t i = 0; i < count; i++) sum[i] = p->data[0][i] + p->data[1][i];
  pthread_barrier_wait(&p->meet); /* both have read both buffers */
  memcpy(data, sum, count * sizeof(double));
  free(sum);
  return 0;
}

static void small_run(env *e, lamp_trainer_options *to, lamp_prompt_method method) {
  lamp_trainer_options_init(to, e->llm, method);
  to->prompt.length = 8;
  to->prompt.rank = 2;
  to->prompt.seed = 3;
  to->steps = 10; /* past an epoch of 8 global batches */
  to->warmup = 2;
  to->adamw.lr = 0.05f;
}

static void *pair_thread(void *arg) {
  pair_rank *r = arg;
  pair *p = r->p;
  /* a rank is a process of its own in real use: its own context, model and data */
  lamp_context *ctx = NULL;
  lamp_llm *llm = NULL;
  lamp_classifier *c = NULL;
  lamp_examples *train = NULL;
  lamp_trainer *t = NULL;
  char err[512], path[256];
  const lamp_task *sst2 = NULL;
  lamp_reducer red = {r->rank, 2, pair_sum, r};
  lamp_classifier_options co;
  lamp_trainer_options to;
  lamp_fit_options fit;
  int ok = lamp_context_create(NULL, &ctx, err, sizeof(err)) == LAMP_OK &&
           lamp_llm_load(ctx, LAMP_TEST_DATA "/tiny.gguf", &llm) == LAMP_OK &&
           lamp_task_find(ctx, "sst2", &sst2) == LAMP_OK;
  if (ok) {
    lamp_classifier_options_init(&co, sst2);
    co.template_text = "{sentence} =";
    co.words = " a| b";
    co.max_tokens = 40;
    ok = lamp_classifier_create(llm, &co, &c) == LAMP_OK &&
         lamp_examples_load(c, p->e->train, 0, &train) == LAMP_OK;
  }
  if (ok) {
    env fake = *p->e;
    fake.llm = llm;
    small_run(&fake, &to, p->method);
    to.batch = 4;
    to.reducer = &red;
    lamp_fit_options_init(&fit);
    snprintf(path, sizeof(path), "%s/rank%zu.safetensors", p->e->dir, r->rank);
    fit.checkpoint = path;
    ok = lamp_trainer_create(c, &to, train, &t) == LAMP_OK && lamp_trainer_fit(t, &fit) == LAMP_OK;
  }
  if (!ok) fprintf(stderr, "rank %zu: %s\n", r->rank, ctx ? lamp_context_error(ctx) : err);
  if (ok) {
    env fake = *p->e;
    fake.ctx = ctx;
    char name[32];
    snprintf(name, sizeof(name), "rank%zu-params", r->rank);
    p->params[r->rank] = saved(&fake, t, name, "param.", &p->n_params);
  }
  lamp_trainer_release(t);
  lamp_examples_release(train);
  lamp_classifier_release(c);
  lamp_llm_release(llm);
  lamp_context_release(ctx);
  return NULL;
}

/* One optimiser step over 8 examples is the same whether they are one batch, two accumulated
 * micro-batches of 4, or two ranks of 4 whose gradients are summed; for LAMP and PT. */
static void test_accumulation_and_ranks_equal_one_batch(void **state) {
  env *e = *state;
  lamp_prompt_method methods[2] = {LAMP_PROMPT_LAMP, LAMP_PROMPT_PT};
  for (int mi = 0; mi < 2; mi++) {
    lamp_classifier *c = make_classifier(e);
    lamp_examples *train = NULL;
    LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c, e->train, 0, &train));
    lamp_trainer_options one, acc;
    small_run(e, &one, methods[mi]);
    acc = one;
    one.batch = 8;
    acc.batch = 4;
    acc.accumulate = 2;
    lamp_trainer *t1 = NULL, *t2 = NULL;
    lamp_fit_options fit;
    lamp_fit_options_init(&fit);
    LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c, &one, train, &t1));
    LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_fit(t1, &fit));
    LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c, &acc, train, &t2));
    lamp_trainer_state s2;
    LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_get_state(t2, &s2));
    assert_int_equal(s2.batches, 8); /* 64 examples in global batches of 8 */
    LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_fit(t2, &fit));
    size_t n1, n2;
    float *p1 = saved(e, t1, "one", "param.", &n1), *p2 = saved(e, t2, "acc", "param.", &n2);
    assert_int_equal(n1, n2);
    expect_close(p1, p2, n1, 1e-6, "accumulate 2 x 4 against batch 8");

    pair p;
    memset(&p, 0, sizeof(p));
    p.e = e;
    p.method = methods[mi];
    pthread_barrier_init(&p.meet, NULL, 2);
    pair_rank r0 = {&p, 0}, r1 = {&p, 1};
    pthread_t th[2];
    assert_int_equal(pthread_create(&th[0], NULL, pair_thread, &r0), 0);
    assert_int_equal(pthread_create(&th[1], NULL, pair_thread, &r1), 0);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    pthread_barrier_destroy(&p.meet);
    assert_non_null(p.params[0]);
    assert_non_null(p.params[1]);
    assert_int_equal(p.n_params, n1);
    assert_memory_equal(p.params[0], p.params[1], n1 * sizeof(float)); /* the ranks agree */
    expect_close(p1, p.params[0], n1, 1e-6, "2 ranks x 4 against batch 8");
    free(p.params[0]);
    free(p.params[1]);
    free(p1);
    free(p2);
    lamp_trainer_release(t1);
    lamp_trainer_release(t2);
    lamp_examples_release(train);
    lamp_classifier_release(c);
  }
}

/* Rewrites checkpoint `from` into `to` through lamp's writer, with metadata key `key` set to
 * `value` (NULL: unchanged) and element 0 of tensor `poison` (NULL: none) set to NaN. The
 * writer stores fresh checksums, so what the reader must catch is the change itself. */
static void rewrite_checkpoint(env *e, const char *from, const char *to, const char *key,
                               const char *value, const char *poison) {
  lamp_safetensors *st = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_safetensors_open(e->ctx, from, &st));
  size_t n = lamp_safetensors_count(st), nm = lamp_safetensors_metadata_count(st), k = 0;
  lamp_st_entry ent[16];
  float *data[16];
  assert_true(n <= 16);
  for (size_t i = 0; i < n; i++) {
    const lamp_st_tensor *t = &lamp_safetensors_tensors(st)[i];
    data[i] = malloc(t->size);
    assert_non_null(data[i]);
    LAMP_OK_OR_FAIL(e->ctx, lamp_safetensors_read(st, t, data[i], t->size));
    if (poison && !strcmp(t->name, poison)) data[i][0] = NAN;
    ent[i] = (lamp_st_entry){t->name, t->ndim, t->shape, data[i]};
  }
  const char **keys = malloc(nm * sizeof(char *)), **vals = malloc(nm * sizeof(char *));
  assert_true(keys && vals);
  for (size_t i = 0; i < nm; i++) {
    const char *mk, *mv;
    LAMP_OK_OR_FAIL(e->ctx, lamp_safetensors_metadata_at(st, i, &mk, &mv));
    if (!strncmp(mk, "lamp.fnv1a64.", 13)) continue;
    keys[k] = mk;
    vals[k++] = key && !strcmp(mk, key) ? value : mv;
  }
  LAMP_OK_OR_FAIL(e->ctx, lamp_safetensors_write_f32(e->ctx, to, ent, n, keys, vals, k));
  for (size_t i = 0; i < n; i++) free(data[i]);
  free(keys);
  free(vals);
  lamp_safetensors_release(st);
}

/* What a damaged or foreign checkpoint gives: the cause in the message, never LAMP_OK. */
static void test_damaged_checkpoints_are_refused(void **state) {
  env *e = *state;
  lamp_classifier *c = make_classifier(e);
  lamp_examples *train = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c, e->train, 0, &train));
  lamp_trainer_options to;
  small_options(e, &to, 3);
  lamp_trainer *t = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c, &to, train, &t));
  char good[256], bad[256];
  snprintf(good, sizeof(good), "%s/good.safetensors", e->dir);
  snprintf(bad, sizeof(bad), "%s/bad.safetensors", e->dir);
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_save(t, good, NULL, NULL, 0));
  lamp_checkpoint *ck = NULL;
  lamp_prompt *p = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_open(e->ctx, good, &ck));
  assert_true(lamp_checkpoint_checksummed(ck));
  lamp_checkpoint_release(ck);

  /* a NaN in the parameters, with a valid checksum over it */
  rewrite_checkpoint(e, good, bad, NULL, NULL, "param.U");
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_open(e->ctx, bad, &ck));
  expect_error(e, lamp_checkpoint_prompt(ck, e->llm, &p), LAMP_ERR_NUMERIC, "param.U holds nan");
  lamp_checkpoint_release(ck);
  /* a method this lamp does not know */
  rewrite_checkpoint(e, good, bad, "run.method", "lora", NULL);
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_open(e->ctx, bad, &ck));
  expect_error(e, lamp_checkpoint_prompt(ck, e->llm, &p), LAMP_ERR_FORMAT,
               "run.method 'lora' is not lamp, pt or dpt");
  lamp_checkpoint_release(ck);
  /* a rate no float holds */
  rewrite_checkpoint(e, good, bad, "run.lr", "1e300", NULL);
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_open(e->ctx, bad, &ck));
  expect_error(e, lamp_checkpoint_prompt(ck, e->llm, &p), LAMP_ERR_FORMAT,
               "run.lr is '1e300', not a float");
  lamp_checkpoint_release(ck);
  /* a prompt for a model of another width */
  rewrite_checkpoint(e, good, bad, "prompt.width", "64", NULL);
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_open(e->ctx, bad, &ck));
  expect_error(e, lamp_checkpoint_prompt(ck, e->llm, &p), LAMP_ERR_SHAPE,
               "a prompt 64 wide; this model is 32 wide");
  lamp_checkpoint_release(ck);
  /* a file cut short */
  size_t size = 0;
  char *bytes = ref_train_read_file(good, &size);
  assert_non_null(bytes);
  FILE *f = fopen(bad, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(bytes, 1, size - 100, f), size - 100);
  fclose(f);
  free(bytes);
  assert_int_not_equal(lamp_checkpoint_open(e->ctx, bad, &ck), LAMP_OK);
  assert_non_null(strstr(lamp_context_error(e->ctx), "bad.safetensors"));
  assert_null(strstr(lamp_context_error(e->ctx), "LAMP_ERR"));
  assert_null(p);
  lamp_trainer_release(t);
  lamp_examples_release(train);
  lamp_classifier_release(c);
}

/* `n` steps by hand, each collected before the next. */
static void run_steps(env *e, lamp_trainer *t, int n) {
  for (int i = 0; i < n; i++) {
    LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_step(t));
    LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_collect(t, NULL));
  }
}

/* A checkpoint that does not fit this run is refused before it changes the trainer: a
 * position its epochs cannot have, another training set, a bad tensor after good ones. */
static void test_resume_checks_before_it_changes(void **state) {
  env *e = *state;
  lamp_classifier *c = make_classifier(e);
  lamp_examples *train = NULL, *fewer = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c, e->train, 0, &train));
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c, e->train, 48, &fewer));
  lamp_trainer_options to;
  small_options(e, &to, 10);
  lamp_trainer *ran = NULL, *t = NULL, *other = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c, &to, train, &ran));
  run_steps(e, ran, 3);
  char good[256], bad[256];
  snprintf(good, sizeof(good), "%s/step3.safetensors", e->dir);
  snprintf(bad, sizeof(bad), "%s/step3-bad.safetensors", e->dir);
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_save(ran, good, NULL, NULL, 0));
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c, &to, train, &t));
  size_t n0, n1;
  float *before = saved(e, t, "before", "", &n0);
  lamp_checkpoint *ck = NULL;
  /* 64 examples in batches of 8: step 3 is epoch 0, batch 3 */
  static const char *const position[][3] = {{"train.batch", "99", "batch 99"},
                                            {"train.batch", "2", "batch 2"},
                                            {"train.epoch", "1", "epoch 1 x 8 batches"},
                                            {"train.adam_steps", "4", "4 AdamW steps in 3"}};
  for (size_t i = 0; i < 4; i++) {
    rewrite_checkpoint(e, good, bad, position[i][0], position[i][1], NULL);
    LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_open(e->ctx, bad, &ck));
    expect_error(e, lamp_trainer_resume(t, ck), LAMP_ERR_FORMAT, position[i][2]);
    lamp_checkpoint_release(ck);
  }
  /* the moments of U come after its value: neither may reach the trainer */
  rewrite_checkpoint(e, good, bad, NULL, NULL, "adam.v.U");
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_open(e->ctx, bad, &ck));
  expect_error(e, lamp_trainer_resume(t, ck), LAMP_ERR_NUMERIC, "adam.v.U holds nan");
  lamp_checkpoint_release(ck);
  float *after = saved(e, t, "after", "", &n1);
  assert_int_equal(n0, n1);
  assert_memory_equal(before, after, n0 * sizeof(float));
  lamp_trainer_state ts;
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_get_state(t, &ts));
  assert_int_equal(ts.step, 0);
  /* 48 examples make 6 batches, so step 3 is a place their run has; the examples differ */
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c, &to, fewer, &other));
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_open(e->ctx, good, &ck));
  expect_error(e, lamp_trainer_resume(other, ck), LAMP_ERR_INVALID_ARGUMENT,
               "resume needs the same training set");
  /* the trainer refused all of these resumes the good checkpoint */
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_resume(t, ck));
  lamp_checkpoint_release(ck);
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_get_state(t, &ts));
  assert_int_equal(ts.step, 3);
  /* at an epoch's end (step 8 = batch 8 of 8, epoch 0) the resumed run goes on bit for bit */
  lamp_trainer *boundary = NULL;
  run_steps(e, ran, 5);
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_save(ran, good, NULL, NULL, 0));
  LAMP_OK_OR_FAIL(e->ctx, lamp_checkpoint_open(e->ctx, good, &ck));
  assert_string_equal(lamp_checkpoint_get(ck, "train.batch"), "8");
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_create(c, &to, train, &boundary));
  LAMP_OK_OR_FAIL(e->ctx, lamp_trainer_resume(boundary, ck));
  lamp_checkpoint_release(ck);
  run_steps(e, ran, 2);
  run_steps(e, boundary, 2);
  size_t na, nb;
  float *sa = saved(e, ran, "ran10", "", &na), *sb = saved(e, boundary, "boundary10", "", &nb);
  assert_int_equal(na, nb);
  assert_memory_equal(sa, sb, na * sizeof(float));
  free(sa);
  free(sb);
  lamp_trainer_release(boundary);
  free(before);
  free(after);
  lamp_trainer_release(ran);
  lamp_trainer_release(t);
  lamp_trainer_release(other);
  lamp_examples_release(train);
  lamp_examples_release(fewer);
  lamp_classifier_release(c);
}

/* Examples are checked against the classifier that scores or trains on them: longer than its
 * max_tokens, or a label past its classes, is refused. */
static void test_examples_must_fit_their_classifier(void **state) {
  env *e = *state;
  lamp_classifier *c = make_classifier(e), *shorter = NULL, *three = NULL;
  const lamp_task *sst2 = NULL, *cb = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_task_find(e->ctx, "sst2", &sst2));
  LAMP_OK_OR_FAIL(e->ctx, lamp_task_find(e->ctx, "cb", &cb));
  lamp_classifier_options co;
  lamp_classifier_options_init(&co, sst2);
  co.template_text = "{sentence} =";
  co.words = " a| b";
  co.max_tokens = 4;
  LAMP_OK_OR_FAIL(e->ctx, lamp_classifier_create(e->llm, &co, &shorter));
  lamp_classifier_options_init(&co, cb);
  co.template_text = "{premise} {hypothesis} =";
  co.words = " a| b| c";
  co.max_tokens = 40;
  LAMP_OK_OR_FAIL(e->ctx, lamp_classifier_create(e->llm, &co, &three));
  /* label words a checkpoint could not record are refused at once, not at the first save */
  char long_words[1100];
  memset(long_words, 'x', sizeof(long_words) - 1);
  long_words[1] = '|';
  long_words[sizeof(long_words) - 1] = '\0';
  lamp_classifier *wordy = NULL;
  lamp_classifier_options_init(&co, sst2);
  co.words = long_words;
  expect_error(e, lamp_classifier_create(e->llm, &co, &wordy), LAMP_ERR_INVALID_ARGUMENT,
               "the label words take 1099 bytes; at most 1023");
  assert_null(wordy);
  lamp_examples *train = NULL, *third = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c, e->train, 8, &train));
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_create(three, &third));
  const int32_t ids[3] = {5, 6, 7};
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_add_tokens(three, third, ids, 3, 2));
  lamp_metrics m;
  expect_error(e, lamp_classifier_evaluate(shorter, NULL, train, 0, NULL, NULL, &m),
               LAMP_ERR_INVALID_ARGUMENT, "this classifier takes 4");
  expect_error(e, lamp_classifier_evaluate(c, NULL, third, 0, NULL, NULL, &m),
               LAMP_ERR_INVALID_ARGUMENT, "examples with label 2; this classifier has 2 classes");
  lamp_trainer_options to;
  small_options(e, &to, 2);
  lamp_trainer *t = NULL;
  expect_error(e, lamp_trainer_create(c, &to, third, &t), LAMP_ERR_INVALID_ARGUMENT,
               "label 2");
  assert_null(t);
  LAMP_OK_OR_FAIL(e->ctx, lamp_classifier_evaluate(three, NULL, third, 0, NULL, NULL, &m));
  lamp_examples_release(train);
  lamp_examples_release(third);
  lamp_classifier_release(c);
  lamp_classifier_release(shorter);
  lamp_classifier_release(three);
}

static void test_metrics_match_hand_counts(void **state) {
  (void)state;
  /* gold/pred: tp 3, fn 1, fp 2, tn 4 for class 1 */
  int32_t gold[10] = {1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
  int32_t pred[10] = {1, 1, 1, 0, 1, 1, 0, 0, 0, 0};
  lamp_metrics m;
  assert_int_equal(lamp_metrics_compute(2, gold, pred, 10, LAMP_DATA_METRIC_MCC, &m), LAMP_OK);
  assert_true(fabs(m.accuracy - 0.7) < 1e-12);
  double f1 = 2.0 * 3 / (2 * 3 + 2 + 1), f0 = 2.0 * 4 / (2 * 4 + 1 + 2);
  assert_true(fabs(m.f1 - f1) < 1e-12);
  assert_true(fabs(m.macro_f1 - (f0 + f1) / 2) < 1e-12);
  double mcc = (3.0 * 4 - 2.0 * 1) / sqrt(5.0 * 4 * 6 * 5);
  assert_true(fabs(m.mcc - mcc) < 1e-12 && m.score == m.mcc);
  /* three classes: macro-F1 only; F1 and MCC are binary */
  int32_t g3[6] = {0, 1, 2, 2, 1, 0}, p3[6] = {0, 2, 2, 2, 1, 1};
  assert_int_equal(lamp_metrics_compute(3, g3, p3, 6, LAMP_DATA_METRIC_MACRO_F1, &m), LAMP_OK);
  double c0 = 2.0 / 3, c1 = 2.0 * 1 / (2 + 1 + 1), c2 = 2.0 * 2 / (4 + 1);
  assert_true(fabs(m.macro_f1 - (c0 + c1 + c2) / 3) < 1e-12 && m.score == m.macro_f1);
  assert_true(m.f1 == 0 && m.mcc == 0);
  p3[0] = 3;
  assert_int_equal(lamp_metrics_compute(3, g3, p3, 6, LAMP_DATA_METRIC_ACCURACY, &m),
                   LAMP_ERR_INVALID_ARGUMENT);
}

static void test_bad_input_names_its_cause(void **state) {
  env *e = *state;
  lamp_llm *none = NULL;
  expect_error(e, lamp_llm_load(e->ctx, "/nonexistent/model.gguf", &none), LAMP_ERR_IO,
               "/nonexistent/model.gguf not found");
  assert_null(none);
  const lamp_task *sst2 = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_task_find(e->ctx, "sst2", &sst2));
  lamp_classifier_options co;
  lamp_classifier_options_init(&co, sst2);
  co.words = " a";
  lamp_classifier *c = NULL;
  expect_error(e, lamp_classifier_create(e->llm, &co, &c), LAMP_ERR_INVALID_ARGUMENT,
               "1 label words given; task sst2 has 2 classes");
  co.words = " a| a";
  expect_error(e, lamp_classifier_create(e->llm, &co, &c), LAMP_ERR_INVALID_ARGUMENT,
               "encode to the same tokens");
  co.words = " a| b";
  co.template_text = "{premise} =";
  expect_error(e, lamp_classifier_create(e->llm, &co, &c), LAMP_ERR_INVALID_ARGUMENT,
               "{premise}");
  assert_null(c);
  c = make_classifier(e);
  char bad[256];
  snprintf(bad, sizeof(bad), "%s/bad.tsv", e->dir);
  assert_int_equal(ref_train_write_file(bad, "sentence\tlabel\nfine\t1\nbroken\t7\n"), 0);
  lamp_examples *ex = NULL;
  expect_error(e, lamp_examples_load(c, bad, 0, &ex), LAMP_ERR_FORMAT, "bad.tsv:3");
  assert_null(ex);
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_create(c, &ex));
  lamp_trainer_options to;
  small_options(e, &to, 4);
  lamp_trainer *t = NULL;
  expect_error(e, lamp_trainer_create(c, &to, ex, &t), LAMP_ERR_INVALID_ARGUMENT,
               "no training examples");
  lamp_examples_release(ex);
  LAMP_OK_OR_FAIL(e->ctx, lamp_examples_load(c, e->train, 0, &ex));
  to.warmup = 10;
  expect_error(e, lamp_trainer_create(c, &to, ex, &t), LAMP_ERR_INVALID_ARGUMENT,
               "the schedule needs warm-up (10) below the step count (4)");
  assert_null(t);
  /* options as a damaged checkpoint could carry them: the global batch would wrap */
  to.warmup = 2;
  to.batch = SIZE_MAX / 2;
  expect_error(e, lamp_trainer_create(c, &to, ex, &t), LAMP_ERR_INVALID_ARGUMENT,
               "is more than 1048576");
  to.batch = 1 << 20;
  to.accumulate = SIZE_MAX / 4;
  expect_error(e, lamp_trainer_create(c, &to, ex, &t), LAMP_ERR_INVALID_ARGUMENT, "overflows");
  to.batch = 8;
  to.accumulate = 1;
  to.epochs = UINT64_MAX / 2;
  expect_error(e, lamp_trainer_create(c, &to, ex, &t), LAMP_ERR_INVALID_ARGUMENT, "overflows");
  assert_null(t);
  lamp_checkpoint *ck = NULL;
  expect_error(e, lamp_checkpoint_open(e->ctx, bad, &ck), LAMP_ERR_FORMAT, "bad.tsv");
  lamp_prompt *p = NULL;
  expect_error(e, lamp_peft_import(e->llm, e->dir, &p), LAMP_ERR_IO, "adapter_model.safetensors");
  lamp_examples_release(ex);
  lamp_classifier_release(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fit_equals_steps_and_learns),
      cmocka_unit_test(test_step_time_of_steps_seen_done_together),
      cmocka_unit_test(test_resume_is_exact_and_cancel_checkpoints),
      cmocka_unit_test(test_peft_adapter_scores_as_its_prompt),
      cmocka_unit_test(test_prompt_cache_scores_as_without),
      cmocka_unit_test(test_custom_csv_task_trains_and_evaluates),
      cmocka_unit_test(test_added_text_matches_the_file_path),
      cmocka_unit_test(test_accumulation_and_ranks_equal_one_batch),
      cmocka_unit_test(test_damaged_checkpoints_are_refused),
      cmocka_unit_test(test_resume_checks_before_it_changes),
      cmocka_unit_test(test_examples_must_fit_their_classifier),
      cmocka_unit_test(test_metrics_match_hand_counts),
      cmocka_unit_test(test_bad_input_names_its_cause),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
