/* Task loaders, templates and epoch orders (lamp/data.h): small files the test writes, with the
 * exact messages for malformed lines, and the real GLUE/SuperGLUE copies when they are present
 * (../shared/data beside the repository, or $LAMP_DATA_DIR). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lamp/data.h"
#include "ref_train.h"

static char tmpdir[64];

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/lamp-test-data-XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

static const lamp_task *task(const char *name) {
  const lamp_task *t = NULL;
  char err[256];
  if (lamp_task_find(name, &t, err, sizeof(err)) != LAMP_OK) fail_msg("%s", err);
  return t;
}

/* Writes `text` to <tmp>/<name> and loads it; returns the status and the message. */
static lamp_status load(const char *task_name, const char *name, const char *text,
                        lamp_dataset **d, char *err, size_t size) {
  char path[256];
  snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
  assert_int_equal(ref_train_write_file(path, text), 0);
  err[0] = '\0';
  return lamp_dataset_load(task(task_name), path, d, err, size);
}

static void expect_error(const char *task_name, const char *name, const char *text,
                         lamp_status want, const char *message) {
  lamp_dataset *d = NULL;
  char err[512], full[512];
  assert_int_equal(load(task_name, name, text, &d, err, sizeof(err)), want);
  assert_null(d);
  snprintf(full, sizeof(full), "%s/%s%s", tmpdir, name, message);
  if (strcmp(err, full)) fail_msg("message '%s', expected '%s'", err, full);
}

static void test_task_lookup(void **state) {
  (void)state;
  assert_string_equal(task("SST-2")->name, "sst2");
  assert_string_equal(task("boolq")->folder, "BoolQ");
  assert_string_equal(task("Co_LA")->name, "cola");
  assert_int_equal(lamp_task_count(), 8);
  const lamp_task *t = NULL;
  char err[256];
  assert_int_equal(lamp_task_find("mnli", &t, err, sizeof(err)), LAMP_ERR_NOT_FOUND);
  assert_null(t);
  assert_string_equal(err, "unknown task 'mnli' (tasks: sst2, rte, mrpc, cola, boolq, cb, copa, wic)");
  assert_int_equal(lamp_task_at(8, &t), LAMP_ERR_NOT_FOUND);
  /* every built-in template uses only its task's fields, and has a word per class */
  for (size_t i = 0; i < lamp_task_count(); i++) {
    assert_int_equal(lamp_task_at(i, &t), LAMP_OK);
    assert_int_equal(lamp_template_check(t, t->template_text, err, sizeof(err)), LAMP_OK);
    for (size_t k = 0; k < t->n_labels; k++) assert_non_null(t->words[k]);
  }
}

static void test_tsv(void **state) {
  (void)state;
  lamp_dataset *d = NULL;
  char err[512];
  /* SST-2: header, trailing spaces, quotes that must not be read as CSV quoting, a blank line */
  assert_int_equal(load("sst2", "sst.tsv",
                        "sentence\tlabel\nit 's \"great\" \t1\n\n\"unclosed quote \t0\r\n",
                        &d, err, sizeof(err)), LAMP_OK);
  assert_int_equal(lamp_dataset_size(d), 2);
  const lamp_example *e = lamp_dataset_example(d, 0);
  assert_string_equal(e->fields[0], "it 's \"great\"");
  assert_int_equal(e->label, 1);
  assert_int_equal(e->line, 2);
  e = lamp_dataset_example(d, 1);
  assert_string_equal(e->fields[0], "\"unclosed quote");
  assert_int_equal(e->label, 0);
  assert_int_equal(e->line, 4);
  assert_null(lamp_dataset_example(d, 2));
  lamp_dataset_release(d);
  /* CoLA: no header, 4 columns, no final newline */
  assert_int_equal(load("cola", "cola.tsv", "gj04\t1\t\tThe sailors rode.\nx\t0\t*\tBad it.",
                        &d, err, sizeof(err)), LAMP_OK);
  assert_int_equal(lamp_dataset_size(d), 2);
  assert_string_equal(lamp_dataset_example(d, 1)->fields[0], "Bad it.");
  assert_int_equal(lamp_dataset_example(d, 1)->label, 0);
  lamp_dataset_release(d);
  /* MRPC: byte-order mark before the header, label in the first column */
  assert_int_equal(load("mrpc", "mrpc.tsv",
                        "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                        "1\t1\t2\tA man.\tA person.\n",
                        &d, err, sizeof(err)), LAMP_OK);
  assert_int_equal(lamp_dataset_size(d), 1);
  e = lamp_dataset_example(d, 0);
  assert_string_equal(e->fields[0], "A man.");
  assert_string_equal(e->fields[1], "A person.");
  assert_int_equal(e->label, 1);
  lamp_dataset_release(d);
  /* RTE: string labels */
  assert_int_equal(load("rte", "rte.tsv",
                        "index\tsentence1\tsentence2\tlabel\n0\tP.\tH.\tnot_entailment\n",
                        &d, err, sizeof(err)), LAMP_OK);
  assert_int_equal(lamp_dataset_example(d, 0)->label, 1);
  lamp_dataset_release(d);
}

static void test_tsv_errors(void **state) {
  (void)state;
  expect_error("sst2", "cols.tsv", "sentence\tlabel\nok\t1\ntoo\tmany\t1\n", LAMP_ERR_FORMAT,
               ":3: expected 2 tab-separated columns, found 3");
  expect_error("sst2", "label.tsv", "sentence\tlabel\nok\tpositive\n", LAMP_ERR_FORMAT,
               ":2: label 'positive' is not one of 0, 1");
  expect_error("rte", "rte_bad.tsv", "h\th\th\th\n1\ta\tb\tmaybe\n", LAMP_ERR_FORMAT,
               ":2: label 'maybe' is not one of entailment, not_entailment");
  expect_error("cola", "empty.tsv", "\n\n", LAMP_ERR_FORMAT, ": no examples");
  lamp_dataset *d = NULL;
  char err[512];
  assert_int_equal(lamp_dataset_load(task("sst2"), "/nonexistent/x.tsv", &d, err, sizeof(err)),
                   LAMP_ERR_IO);
  assert_string_equal(err, "cannot open /nonexistent/x.tsv: No such file or directory");
}

static void test_jsonl(void **state) {
  (void)state;
  lamp_dataset *d = NULL;
  char err[512];
  assert_int_equal(load("boolq", "boolq.jsonl",
                        "{\"question\": \"is it\", \"passage\": \"P \\u00e9\", \"label\": \"true\"}\n"
                        "\n{\"question\": \"q\", \"passage\": \"p\", \"label\": false}\n",
                        &d, err, sizeof(err)), LAMP_OK);
  assert_int_equal(lamp_dataset_size(d), 2);
  const lamp_example *e = lamp_dataset_example(d, 0);
  assert_string_equal(e->fields[0], "P \xC3\xA9"); /* passage first: the task's field order */
  assert_string_equal(e->fields[1], "is it");
  assert_int_equal(e->label, 1);
  assert_int_equal(lamp_dataset_example(d, 1)->label, 0);
  assert_int_equal(lamp_dataset_example(d, 1)->line, 3);
  lamp_dataset_release(d);
  assert_int_equal(load("copa", "copa.jsonl",
                        "{\"premise\": \"a\", \"choice1\": \"b\", \"choice2\": \"c\", "
                        "\"question\": \"effect\", \"label\": 1, \"idx\": 0}\n",
                        &d, err, sizeof(err)), LAMP_OK);
  assert_int_equal(lamp_dataset_example(d, 0)->label, 1);
  assert_string_equal(lamp_dataset_example(d, 0)->fields[1], "effect");
  lamp_dataset_release(d);
  assert_int_equal(load("cb", "cb.jsonl",
                        "{\"premise\": \"a\", \"hypothesis\": \"b\", \"label\": \"neutral\"}",
                        &d, err, sizeof(err)), LAMP_OK);
  assert_int_equal(lamp_dataset_example(d, 0)->label, 2);
  lamp_dataset_release(d);
}

static void test_jsonl_errors(void **state) {
  (void)state;
  expect_error("cb", "miss.jsonl", "{\"premise\": \"a\", \"hypothesis\": \"b\", \"label\": \"neutral\"}\n"
               "{\"premise\": \"a\", \"label\": \"neutral\"}\n", LAMP_ERR_FORMAT,
               ":2: \"hypothesis\" is missing, expected a string");
  expect_error("cb", "kind.jsonl", "{\"premise\": 3, \"hypothesis\": \"b\", \"label\": \"neutral\"}\n",
               LAMP_ERR_FORMAT, ":1: \"premise\" is not a string, expected a string");
  expect_error("cb", "lab.jsonl", "{\"premise\": \"a\", \"hypothesis\": \"b\", \"label\": \"unsure\"}\n",
               LAMP_ERR_FORMAT, ":1: label 'unsure' is not one of entailment, contradiction, neutral");
  expect_error("cb", "nolab.jsonl", "{\"premise\": \"a\", \"hypothesis\": \"b\"}\n", LAMP_ERR_FORMAT,
               ":1: \"label\" is missing, expected a string, number or boolean");
  expect_error("cb", "arr.jsonl", "[1, 2]\n", LAMP_ERR_FORMAT, ":1: expected a JSON object");
  /* a broken line: the JSON reader's own message after file and line */
  lamp_dataset *d = NULL;
  char err[512], prefix[256];
  assert_int_equal(load("cb", "broken.jsonl", "\n\n{\"premise\": \"a\n", &d, err, sizeof(err)),
                   LAMP_ERR_FORMAT);
  snprintf(prefix, sizeof(prefix), "%s/broken.jsonl:3: ", tmpdir);
  assert_true(!strncmp(err, prefix, strlen(prefix)) && strlen(err) > strlen(prefix));
}

static void test_templates(void **state) {
  (void)state;
  const lamp_task *t = task("rte");
  lamp_example ex = {{"It rains.", "It is wet."}, 0, 1};
  char out[128], err[256];
  size_t len = 0;
  assert_int_equal(lamp_template_render(t, "A {sentence1} {{x}} B {sentence2}", &ex, NULL, 0, &len),
                   LAMP_OK);
  assert_int_equal(len, strlen("A It rains. {x} B It is wet."));
  assert_int_equal(lamp_template_render(t, "A {sentence1} {{x}} B {sentence2}", &ex, out,
                                        sizeof(out), &len), LAMP_OK);
  assert_string_equal(out, "A It rains. {x} B It is wet.");
  assert_int_equal(lamp_template_render(t, "{sentence1}", &ex, out, 4, &len),
                   LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(len, 9);
  assert_int_equal(lamp_template_check(t, "{premise} x", err, sizeof(err)),
                   LAMP_ERR_INVALID_ARGUMENT);
  assert_string_equal(err, "template: unknown placeholder {premise} at byte 0; rte has "
                           "{sentence1}, {sentence2}");
  assert_int_equal(lamp_template_check(t, "x {sentence1", err, sizeof(err)),
                   LAMP_ERR_INVALID_ARGUMENT);
  assert_string_equal(err, "template: '{' at byte 2 is not closed");
  assert_int_equal(lamp_template_check(t, "a } b", err, sizeof(err)), LAMP_ERR_INVALID_ARGUMENT);
  assert_string_equal(err, "template: lone '}' at byte 2 (write '}}')");
}

static void test_epoch_order(void **state) {
  (void)state;
  enum { N = 1000, B = 8 };
  size_t lengths[N], order[N], again[N], other[N], starts[N / B + 2], s2[N / B + 2], nb = 0, nb2;
  for (size_t i = 0; i < N; i++) lengths[i] = 5 + (i * 7919) % 97;
  assert_int_equal(lamp_data_epoch_order(lengths, N, B, 42, 0, order, starts, &nb), LAMP_OK);
  assert_int_equal(nb, (N + B - 1) / B);
  /* a permutation, cut into full batches except at most one */
  unsigned char seen[N] = {0};
  for (size_t i = 0; i < N; i++) {
    assert_true(order[i] < N && !seen[order[i]]);
    seen[order[i]] = 1;
  }
  assert_int_equal(starts[0], 0);
  assert_int_equal(starts[nb], N);
  size_t short_batches = 0, spread = 0;
  for (size_t b = 0; b < nb; b++) {
    size_t n = starts[b + 1] - starts[b], lo = 1000, hi = 0;
    assert_true(n >= 1 && n <= B);
    short_batches += n < B;
    for (size_t i = starts[b]; i < starts[b + 1]; i++) {
      if (lengths[order[i]] < lo) lo = lengths[order[i]];
      if (lengths[order[i]] > hi) hi = lengths[order[i]];
    }
    spread += hi - lo;
  }
  assert_true(short_batches <= 1);
  /* bucketing: lengths within a batch are close (random batches would spread about 70) */
  assert_true(spread / nb < 15);
  /* the same arguments give the same order; another epoch or seed another */
  assert_int_equal(lamp_data_epoch_order(lengths, N, B, 42, 0, again, s2, &nb2), LAMP_OK);
  assert_memory_equal(order, again, sizeof(order));
  assert_memory_equal(starts, s2, (nb + 1) * sizeof(size_t));
  assert_int_equal(lamp_data_epoch_order(lengths, N, B, 42, 1, other, s2, &nb2), LAMP_OK);
  assert_true(memcmp(order, other, sizeof(order)) != 0);
  assert_int_equal(lamp_data_epoch_order(lengths, N, B, 43, 0, other, s2, &nb2), LAMP_OK);
  assert_true(memcmp(order, other, sizeof(order)) != 0);
  assert_int_equal(lamp_data_epoch_order(lengths, 0, B, 1, 0, order, starts, &nb),
                   LAMP_ERR_INVALID_ARGUMENT);
}

/* The shared copies: counts and label distributions as the data folder's SOURCES.md gives. */
static void test_real_data(void **state) {
  (void)state;
  char dir[1024];
  const char *env = getenv("LAMP_DATA_DIR");
  if (env && env[0]) snprintf(dir, sizeof(dir), "%s", env);
  else {
    /* beside the repository: CMake compiles this file by its absolute path */
    snprintf(dir, sizeof(dir), "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    strncat(dir, "/../../shared/data", sizeof(dir) - strlen(dir) - 1);
  }
  struct stat sb;
  if (stat(dir, &sb) != 0) {
    fprintf(stderr, "no shared data at %s: skipped\n", dir);
    skip();
  }
  static const struct {
    const char *task, *file;
    size_t n, class1;
  } cases[] = {
      {"sst2", "train.tsv", 67349, 37569}, {"sst2", "dev.tsv", 872, 444},
      {"rte", "train.tsv", 2490, 1241},    {"rte", "dev.tsv", 277, 131},
      {"cola", "train.tsv", 8551, 6023},   {"cola", "dev.tsv", 1043, 721},
      {"mrpc", "train.tsv", 3668, 2474},   {"mrpc", "dev.tsv", 408, 279},
      {"cb", "train.jsonl", 250, 119},     {"cb", "val.jsonl", 56, 28},
      {"boolq", "val.jsonl", 3270, 2033},  {"copa", "val.jsonl", 100, 45},
      {"wic", "val.jsonl", 638, 319},
  };
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    const lamp_task *t = task(cases[c].task);
    char path[1200], err[512];
    snprintf(path, sizeof(path), "%s/%s/%s", dir, t->folder, cases[c].file);
    lamp_dataset *d = NULL;
    if (lamp_dataset_load(t, path, &d, err, sizeof(err)) != LAMP_OK) fail_msg("%s", err);
    size_t ones = 0, n = lamp_dataset_size(d);
    for (size_t i = 0; i < n; i++) {
      const lamp_example *e = lamp_dataset_example(d, i);
      ones += e->label == 1;
      for (size_t f = 0; f < t->n_fields; f++) assert_non_null(e->fields[f]);
    }
    if (n != cases[c].n || ones != cases[c].class1)
      fail_msg("%s: %zu examples, %zu of class 1; expected %zu and %zu", path, n, ones,
               cases[c].n, cases[c].class1);
    lamp_dataset_release(d);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_task_lookup), cmocka_unit_test(test_tsv),
      cmocka_unit_test(test_tsv_errors),  cmocka_unit_test(test_jsonl),
      cmocka_unit_test(test_jsonl_errors), cmocka_unit_test(test_templates),
      cmocka_unit_test(test_epoch_order), cmocka_unit_test(test_real_data),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
