/* Task loaders, templates and epoch orders (lamp/data.h): small files the test writes, with the
 * exact messages for malformed lines, tasks the caller describes (CSV quoting, columns found by
 * header names, a JSONL label key, lamp_task_check's complaints, format and metric names), and
 * the real GLUE/SuperGLUE copies when they are present (../shared/data beside the repository,
 * or $LAMP_DATA_DIR). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fixture.h"
#include "lamp/data.h"
#include "ref_train.h"

static char tmpdir[64];
/* The messages go to a context, as for every lamp call; nothing here runs on its device. */
static lamp_context *ctx;

static int setup(void **state) {
  if (fixture_setup(state)) return -1;
  ctx = *state;
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/lamp-test-data-XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  int rc = system(cmd) == 0 ? 0 : -1;
  fixture_teardown(state);
  ctx = NULL;
  return rc;
}

static const lamp_task *task(const char *name) {
  const lamp_task *t = NULL;
  if (lamp_task_find(ctx, name, &t) != LAMP_OK) fail_msg("%s", lamp_context_error(ctx));
  return t;
}

/* Writes `text` to <tmp>/<name> and loads it as task `t`; returns the status (the message is
 * the context's). */
static lamp_status load_as(const lamp_task *t, const char *name, const char *text,
                           lamp_dataset **d) {
  char path[256];
  snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
  assert_int_equal(ref_train_write_file(path, text), 0);
  return lamp_dataset_load(ctx, t, path, d);
}

static lamp_status load(const char *task_name, const char *name, const char *text,
                        lamp_dataset **d) {
  return load_as(task(task_name), name, text, d);
}

static void expect_error_as(const lamp_task *t, const char *name, const char *text,
                            lamp_status want, const char *message) {
  lamp_dataset *d = NULL;
  char full[512];
  assert_int_equal(load_as(t, name, text, &d), want);
  assert_null(d);
  snprintf(full, sizeof(full), "%s/%s%s", tmpdir, name, message);
  const char *err = lamp_context_error(ctx);
  if (strcmp(err, full)) fail_msg("message '%s', expected '%s'", err, full);
  /* without a context: the same status, nothing else */
  char path[256];
  snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
  assert_int_equal(lamp_dataset_load(NULL, t, path, &d), want);
  assert_null(d);
}

static void expect_error(const char *task_name, const char *name, const char *text,
                         lamp_status want, const char *message) {
  expect_error_as(task(task_name), name, text, want, message);
}

static void test_task_lookup(void **state) {
  (void)state;
  assert_string_equal(task("SST-2")->name, "sst2");
  assert_string_equal(task("boolq")->folder, "BoolQ");
  assert_string_equal(task("Co_LA")->name, "cola");
  assert_int_equal(lamp_task_count(), 8);
  const lamp_task *t = NULL;
  assert_int_equal(lamp_task_find(ctx, "mnli", &t), LAMP_ERR_NOT_FOUND);
  assert_null(t);
  assert_string_equal(lamp_context_error(ctx),
                      "unknown task 'mnli' (tasks: sst2, rte, mrpc, cola, boolq, cb, copa, wic)");
  assert_int_equal(lamp_task_find(NULL, "mnli", &t), LAMP_ERR_NOT_FOUND); /* status only */
  assert_int_equal(lamp_task_find(NULL, "sst2", &t), LAMP_OK);
  assert_int_equal(lamp_task_at(8, &t), LAMP_ERR_NOT_FOUND);
  /* every built-in template uses only its task's fields, and has a word per class */
  for (size_t i = 0; i < lamp_task_count(); i++) {
    assert_int_equal(lamp_task_at(i, &t), LAMP_OK);
    assert_int_equal(lamp_template_check(ctx, t, t->template_text), LAMP_OK);
    for (size_t k = 0; k < t->n_labels; k++) assert_non_null(t->words[k]);
  }
}

static void test_tsv(void **state) {
  (void)state;
  lamp_dataset *d = NULL;
  /* SST-2: header, trailing spaces, quotes that must not be read as CSV quoting, a blank line */
  assert_int_equal(load("sst2", "sst.tsv",
                        "sentence\tlabel\nit 's \"great\" \t1\n\n\"unclosed quote \t0\r\n",
                        &d), LAMP_OK);
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
                        &d), LAMP_OK);
  assert_int_equal(lamp_dataset_size(d), 2);
  assert_string_equal(lamp_dataset_example(d, 1)->fields[0], "Bad it.");
  assert_int_equal(lamp_dataset_example(d, 1)->label, 0);
  lamp_dataset_release(d);
  /* MRPC: byte-order mark before the header, label in the first column */
  assert_int_equal(load("mrpc", "mrpc.tsv",
                        "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                        "1\t1\t2\tA man.\tA person.\n", &d), LAMP_OK);
  assert_int_equal(lamp_dataset_size(d), 1);
  e = lamp_dataset_example(d, 0);
  assert_string_equal(e->fields[0], "A man.");
  assert_string_equal(e->fields[1], "A person.");
  assert_int_equal(e->label, 1);
  lamp_dataset_release(d);
  /* RTE: string labels */
  assert_int_equal(load("rte", "rte.tsv",
                        "index\tsentence1\tsentence2\tlabel\n0\tP.\tH.\tnot_entailment\n",
                        &d), LAMP_OK);
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
  assert_int_equal(lamp_dataset_load(ctx, task("sst2"), "/nonexistent/x.tsv", &d), LAMP_ERR_IO);
  assert_string_equal(lamp_context_error(ctx),
                      "cannot open /nonexistent/x.tsv: No such file or directory");
}

static void test_jsonl(void **state) {
  (void)state;
  lamp_dataset *d = NULL;
  assert_int_equal(load("boolq", "boolq.jsonl",
                        "{\"question\": \"is it\", \"passage\": \"P \\u00e9\", \"label\": \"true\"}\n"
                        "\n{\"question\": \"q\", \"passage\": \"p\", \"label\": false}\n",
                        &d), LAMP_OK);
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
                        "\"question\": \"effect\", \"label\": 1, \"idx\": 0}\n", &d), LAMP_OK);
  assert_int_equal(lamp_dataset_example(d, 0)->label, 1);
  assert_string_equal(lamp_dataset_example(d, 0)->fields[1], "effect");
  lamp_dataset_release(d);
  assert_int_equal(load("cb", "cb.jsonl",
                        "{\"premise\": \"a\", \"hypothesis\": \"b\", \"label\": \"neutral\"}",
                        &d), LAMP_OK);
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
  char prefix[256];
  assert_int_equal(load("cb", "broken.jsonl", "\n\n{\"premise\": \"a\n", &d), LAMP_ERR_FORMAT);
  snprintf(prefix, sizeof(prefix), "%s/broken.jsonl:3: ", tmpdir);
  const char *err = lamp_context_error(ctx);
  assert_true(!strncmp(err, prefix, strlen(prefix)) && strlen(err) > strlen(prefix));
}

/* A caller's task: one text field and two labels, in CSV with a header (columns 0 and 1). */
static lamp_task csv_task(void) {
  lamp_task t = {.name = "reviews", .format = LAMP_DATA_CSV, .header = 1, .n_columns = 2,
                 .n_fields = 1, .fields = {"text"}, .columns = {0}, .label_column = 1,
                 .n_labels = 2, .labels = {"pos", "neg"}, .template_text = "Review: {text}\nIt was",
                 .words = {" good", " bad"}, .metric = LAMP_DATA_METRIC_ACCURACY};
  return t;
}

static void test_csv(void **state) {
  (void)state;
  lamp_task t = csv_task();
  lamp_dataset *d = NULL;
  /* quoted commas, doubled quotes, a newline inside quotes, a plain quote in an unquoted field,
   * CRLF endings (also inside quotes, read as "\n"), an empty quoted field, a blank line */
  assert_int_equal(load_as(&t, "q.csv",
                           "text,label\n"
                           "\"Hello, world\",pos\n"
                           "\"She said \"\"hi\"\"\",neg\r\n"
                           "\"two\nlines, here\",pos\n"
                           "it's \"fine\" ,neg\n"
                           "\n"
                           "\"crlf\r\ninside\",pos\r\n"
                           "\"\",neg", &d), LAMP_OK);
  assert_int_equal(lamp_dataset_size(d), 6);
  static const struct {
    const char *text;
    int32_t label;
    size_t line;
  } want[] = {{"Hello, world", 0, 2}, {"She said \"hi\"", 1, 3}, {"two\nlines, here", 0, 4},
              {"it's \"fine\"", 1, 6},  {"crlf\ninside", 0, 8},  {"", 1, 10}};
  for (size_t i = 0; i < 6; i++) {
    const lamp_example *e = lamp_dataset_example(d, i);
    assert_string_equal(e->fields[0], want[i].text);
    assert_int_equal(e->label, want[i].label);
    assert_int_equal(e->line, want[i].line);
  }
  lamp_dataset_release(d);
  /* no header: the first line is an example */
  t.header = 0;
  assert_int_equal(load_as(&t, "nohead.csv", "a,pos\n\"b,c\",neg\n", &d),
                   LAMP_OK);
  assert_int_equal(lamp_dataset_size(d), 2);
  assert_string_equal(lamp_dataset_example(d, 1)->fields[0], "b,c");
  assert_int_equal(lamp_dataset_example(d, 1)->line, 2);
  lamp_dataset_release(d);
}

static void test_csv_errors(void **state) {
  (void)state;
  lamp_task t = csv_task();
  /* a record spanning lines 2-4: the error on the next record names its own line, 5 */
  expect_error_as(&t, "after.csv", "text,label\n\"a\nb\nc\",pos\nbad,maybe\n", LAMP_ERR_FORMAT,
                  ":5: label 'maybe' is not one of pos, neg");
  /* an error in a record spanning lines names the line where it starts */
  expect_error_as(&t, "span.csv", "text,label\nok,pos\n\"x\ny\",pos,extra\n", LAMP_ERR_FORMAT,
                  ":3: expected 2 comma-separated columns, found 3");
  expect_error_as(&t, "open.csv", "text,label\nok,pos\n\"never closed,pos\nmore,neg\n",
                  LAMP_ERR_FORMAT, ":3: a quoted field is not closed before the end of the file");
  expect_error_as(&t, "after_quote.csv", "text,label\n\"a\"b,pos\n", LAMP_ERR_FORMAT,
                  ":2: text after a closing quote (a quote inside a quoted field is written \"\")");
  /* the header is a record too: its quotes are checked */
  expect_error_as(&t, "head.csv", "\"text,label\nok,pos\n", LAMP_ERR_FORMAT,
                  ":1: a quoted field is not closed before the end of the file");
  expect_error_as(&t, "nothing.csv", "text,label\n\n", LAMP_ERR_FORMAT, ": no examples");
}

static void test_header_names(void **state) {
  (void)state;
  lamp_dataset *d = NULL;
  /* TSV: the fields in another order than the file's columns, the count from the header */
  lamp_task t = {.name = "qa", .format = LAMP_DATA_TSV, .header = 1, .n_columns = 0,
                 .n_fields = 2, .fields = {"context", "question"}, .columns = {-1, -1},
                 .label_column = -1, .label_field = "answer", .n_labels = 2,
                 .labels = {"no", "yes"}, .template_text = "{context}\n{question}?",
                 .words = {" no", " yes"}, .metric = LAMP_DATA_METRIC_MCC};
  assert_int_equal(lamp_task_check(ctx, &t), LAMP_OK);
  assert_int_equal(load_as(&t, "qa.tsv", "id\tanswer\tquestion\tcontext\n"
                                         "7\tyes\tIs it wet\tIt rains.\n", &d), LAMP_OK);
  const lamp_example *e = lamp_dataset_example(d, 0);
  assert_string_equal(e->fields[0], "It rains.");
  assert_string_equal(e->fields[1], "Is it wet");
  assert_int_equal(e->label, 1);
  lamp_dataset_release(d);
  /* every line must have the header's count */
  expect_error_as(&t, "qa_short.tsv", "id\tanswer\tquestion\tcontext\n1\tno\tq\tc\n2\tno\tq\n",
                  LAMP_ERR_FORMAT, ":3: expected 4 tab-separated columns, found 3");
  /* a name the header lacks: file, line 1, the name and the header's names */
  expect_error_as(&t, "qa_miss.tsv", "id\tanswer\tquestion\n1\tno\tq\n", LAMP_ERR_FORMAT,
                  ":1: no column named 'context' (a text field) in the header; its columns are "
                  "'id', 'answer', 'question'");
  /* the label's name defaults to "label" */
  t.label_field = NULL;
  expect_error_as(&t, "qa_nolabel.tsv", "context\tquestion\tanswer\nc\tq\tno\n", LAMP_ERR_FORMAT,
                  ":1: no column named 'label' (the label) in the header; its columns are "
                  "'context', 'question', 'answer'");
  /* a count given too must match the header */
  t.label_field = "answer";
  t.n_columns = 3;
  expect_error_as(&t, "qa_count.tsv", "id\tanswer\tquestion\tcontext\n1\tno\tq\tc\n",
                  LAMP_ERR_FORMAT, ":1: the header has 4 columns, the task expects 3");

  /* CSV: names with spaces around them, one field by name and one by number, a byte-order mark,
   * a quoted header name */
  lamp_task c = {.name = "pairs", .format = LAMP_DATA_CSV, .header = 1, .n_fields = 2,
                 .fields = {"b", "a"}, .columns = {-1, 3}, .label_column = -1,
                 .label_field = "gold", .n_labels = 3, .labels = {"x", "y", "z"},
                 .template_text = "{a} / {b}", .metric = LAMP_DATA_METRIC_MACRO_F1};
  assert_int_equal(load_as(&c, "pairs.csv", "\xEF\xBB\xBF\"gold\", b ,id,a\n"
                                            "z,\"B, text\",1,A text\n", &d), LAMP_OK);
  e = lamp_dataset_example(d, 0);
  assert_string_equal(e->fields[0], "B, text");
  assert_string_equal(e->fields[1], "A text");
  assert_int_equal(e->label, 2);
  lamp_dataset_release(d);
  expect_error_as(&c, "pairs_miss.csv", "gold,id,a\nz,1,A\n", LAMP_ERR_FORMAT,
                  ":1: no column named 'b' (a text field) in the header; its columns are "
                  "'gold', 'id', 'a'");
  /* a numbered column past the header's count */
  expect_error_as(&c, "pairs_few.csv", "gold,b,id\nz,B,1\n", LAMP_ERR_FORMAT,
                  ":1: the header has 3 columns, so none is column 3 (field a)");
}

static void test_jsonl_label_key(void **state) {
  (void)state;
  lamp_task t = {.name = "nli", .format = LAMP_DATA_JSONL, .n_fields = 2,
                 .fields = {"premise", "hypothesis"}, .label_field = "gold", .n_labels = 3,
                 .labels = {"0", "1", "0.5"}, .template_text = "{premise}? {hypothesis}",
                 .words = {" no", " yes", " maybe"}, .metric = LAMP_DATA_METRIC_MACRO_F1};
  lamp_dataset *d = NULL;
  /* the key "label" is just another member here; numbers match by their text, 1.0 as "1" */
  assert_int_equal(load_as(&t, "gold.jsonl",
                           "{\"premise\": \"p\", \"hypothesis\": \"h\", \"label\": 9, "
                           "\"gold\": 1.0}\n"
                           "{\"premise\": \"p\", \"hypothesis\": \"h\", \"gold\": 0.5}\n"
                           "{\"premise\": \"p\", \"hypothesis\": \"h\", \"gold\": \"0\"}\n",
                           &d), LAMP_OK);
  assert_int_equal(lamp_dataset_size(d), 3);
  assert_int_equal(lamp_dataset_example(d, 0)->label, 1);
  assert_int_equal(lamp_dataset_example(d, 1)->label, 2);
  assert_int_equal(lamp_dataset_example(d, 2)->label, 0);
  lamp_dataset_release(d);
  expect_error_as(&t, "gold_miss.jsonl",
                  "{\"premise\": \"p\", \"hypothesis\": \"h\", \"label\": 1}\n",
                  LAMP_ERR_FORMAT, ":1: \"gold\" is missing, expected a string, number or boolean");
  expect_error_as(&t, "gold_bad.jsonl",
                  "{\"premise\": \"p\", \"hypothesis\": \"h\", \"gold\": 0.25}\n",
                  LAMP_ERR_FORMAT, ":1: label '0.25' is not one of 0, 1, 0.5");
}

/* lamp_task_check on `t` fails with exactly `message`. */
static void expect_task_check(const lamp_task *t, const char *message) {
  assert_int_equal(lamp_task_check(ctx, t), LAMP_ERR_INVALID_ARGUMENT);
  const char *err = lamp_context_error(ctx);
  if (strcmp(err, message)) fail_msg("message '%s', expected '%s'", err, message);
  assert_int_equal(lamp_task_check(NULL, t), LAMP_ERR_INVALID_ARGUMENT); /* status only */
}

static void test_task_check(void **state) {
  (void)state;
  const lamp_task *b = NULL;
  for (size_t i = 0; i < lamp_task_count(); i++) {
    assert_int_equal(lamp_task_at(i, &b), LAMP_OK);
    if (lamp_task_check(ctx, b) != LAMP_OK) fail_msg("%s: %s", b->name, lamp_context_error(ctx));
  }
  const lamp_task good = csv_task();
  assert_int_equal(lamp_task_check(ctx, &good), LAMP_OK);
  assert_int_equal(lamp_task_check(ctx, NULL), LAMP_ERR_INVALID_ARGUMENT);
  assert_string_equal(lamp_context_error(ctx), "lamp_task_check: NULL argument");
  lamp_task t;
#define CASE(change, message) \
  do {                        \
    t = good;                 \
    change;                   \
    expect_task_check(&t, message); \
  } while (0)
  CASE(t.name = NULL, "task: no name");
  CASE(t.name = "", "task: no name");
  CASE(t.format = (lamp_data_format)7, "task reviews: unknown format 7 (tsv, csv or jsonl)");
  CASE(t.n_fields = 0, "task reviews: 0 text fields; a task has 1 to 4");
  CASE(t.n_fields = 5, "task reviews: 5 text fields; a task has 1 to 4");
  CASE((t.n_fields = 2, t.fields[1] = NULL), "task reviews: text field 1 has no name");
  CASE(t.fields[0] = "", "task reviews: text field 0 has no name");
  CASE((t.n_fields = 2, t.fields[1] = "text"), "task reviews: text field 'text' is named twice");
  CASE(t.fields[0] = "a}b", "task reviews: text field 'a}b' has a brace in its name");
  CASE(t.n_labels = 1, "task reviews: 1 labels; a task has 2 to 4");
  CASE(t.n_labels = 5, "task reviews: 5 labels; a task has 2 to 4");
  CASE(t.labels[1] = NULL, "task reviews: label 1 has no spelling");
  CASE(t.labels[1] = "pos", "task reviews: label 'pos' is given twice");
  CASE(t.words[1] = NULL,
       "task reviews: label 'neg' has no word (give a word for every label or for none)");
  CASE(t.template_text = NULL, "task reviews: no template");
  CASE(t.template_text = "{sentence}:",
       "task reviews: template: unknown placeholder {sentence} at byte 0; reviews has {text}");
  CASE(t.label_field = "", "task reviews: the label's name is empty");
  CASE((t.header = 0, t.n_columns = 0),
       "task reviews: 0 columns, which only a header can count (set n_columns or header)");
  CASE((t.header = 0, t.columns[0] = -1),
       "task reviews: the column of field 'text' is -1 (find it by its name in the header), but "
       "the task has no header");
  CASE(t.columns[0] = -2, "task reviews: the column of field 'text' is -2; a column is 0 or "
                          "more, or -1 to find it by its name in the header");
  CASE(t.columns[0] = 2,
       "task reviews: the column of field 'text' is 2, past the task's 2 columns (0 to 1)");
  CASE((t.format = LAMP_DATA_TSV, t.header = 0, t.label_column = -1),
       "task reviews: the column of the label is -1 (find it by its name in the header), but the "
       "task has no header");
  CASE(t.label_column = 5,
       "task reviews: the column of the label is 5, past the task's 2 columns (0 to 1)");
  CASE(t.metric = (lamp_data_metric)9,
       "task reviews: unknown metric 9 (accuracy, f1, mcc or macro_f1)");
  CASE((t.metric = LAMP_DATA_METRIC_MCC, t.n_labels = 3, t.labels[2] = "meh", t.words[2] = " meh"),
       "task reviews: the metric mcc needs exactly 2 labels, the task has 3");
  CASE((t.metric = LAMP_DATA_METRIC_F1, t.n_labels = 3, t.labels[2] = "meh", t.words[2] = " meh"),
       "task reviews: the metric f1 needs exactly 2 labels, the task has 3");
#undef CASE
  /* allowed: no words at all, macro F1 over 3 labels, and columns that JSONL does not use */
  t = good;
  t.words[0] = t.words[1] = NULL;
  t.metric = LAMP_DATA_METRIC_MACRO_F1;
  t.n_labels = 3;
  t.labels[2] = "meh";
  assert_int_equal(lamp_task_check(ctx, &t), LAMP_OK);
  t.format = LAMP_DATA_JSONL;
  t.header = 0;
  t.n_columns = 0;
  t.columns[0] = -7;
  assert_int_equal(lamp_task_check(ctx, &t), LAMP_OK);
  /* the loader checks the task before it reads the file */
  t = good;
  t.n_labels = 1;
  lamp_dataset *d = NULL;
  assert_int_equal(lamp_dataset_load(ctx, &t, "/nonexistent/x.csv", &d), LAMP_ERR_INVALID_ARGUMENT);
  assert_null(d);
  assert_string_equal(lamp_context_error(ctx), "task reviews: 1 labels; a task has 2 to 4");
}

static void test_names(void **state) {
  (void)state;
  static const lamp_data_format formats[] = {LAMP_DATA_TSV, LAMP_DATA_CSV, LAMP_DATA_JSONL};
  static const char *const format_names[] = {"tsv", "csv", "jsonl"};
  for (size_t i = 0; i < 3; i++) {
    lamp_data_format f = (lamp_data_format)-1;
    assert_string_equal(lamp_data_format_name(formats[i]), format_names[i]);
    assert_int_equal(lamp_data_format_from_name(format_names[i], &f), LAMP_OK);
    assert_int_equal(f, formats[i]);
  }
  static const lamp_data_metric metrics[] = {LAMP_DATA_METRIC_ACCURACY, LAMP_DATA_METRIC_F1,
                                             LAMP_DATA_METRIC_MCC, LAMP_DATA_METRIC_MACRO_F1};
  static const char *const metric_names[] = {"accuracy", "f1", "mcc", "macro_f1"};
  for (size_t i = 0; i < 4; i++) {
    lamp_data_metric m = (lamp_data_metric)-1;
    assert_string_equal(lamp_data_metric_name(metrics[i]), metric_names[i]);
    assert_int_equal(lamp_data_metric_from_name(metric_names[i], &m), LAMP_OK);
    assert_int_equal(m, metrics[i]);
  }
  lamp_data_format f = LAMP_DATA_TSV;
  lamp_data_metric m = LAMP_DATA_METRIC_ACCURACY;
  assert_int_equal(lamp_data_format_from_name("CSV", &f), LAMP_OK);
  assert_int_equal(f, LAMP_DATA_CSV);
  assert_int_equal(lamp_data_format_from_name("JsonL", &f), LAMP_OK);
  assert_int_equal(f, LAMP_DATA_JSONL);
  assert_int_equal(lamp_data_metric_from_name("Macro-F1", &m), LAMP_OK);
  assert_int_equal(m, LAMP_DATA_METRIC_MACRO_F1);
  assert_int_equal(lamp_data_metric_from_name("MCC", &m), LAMP_OK);
  assert_int_equal(m, LAMP_DATA_METRIC_MCC);
  /* unknown names leave the output alone */
  assert_int_equal(lamp_data_format_from_name("json", &f), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_data_format_from_name("", &f), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_data_format_from_name("tsv-", &f), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(f, LAMP_DATA_JSONL);
  assert_int_equal(lamp_data_metric_from_name("f2", &m), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_data_metric_from_name("macro f1", &m), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_data_metric_from_name("acc", &m), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(m, LAMP_DATA_METRIC_MCC);
  assert_int_equal(lamp_data_format_from_name(NULL, &f), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_data_format_from_name("tsv", NULL), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_data_metric_from_name(NULL, &m), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_data_metric_from_name("f1", NULL), LAMP_ERR_INVALID_ARGUMENT);
  assert_null(lamp_data_format_name((lamp_data_format)3));
  assert_null(lamp_data_format_name((lamp_data_format)-1));
  assert_null(lamp_data_metric_name((lamp_data_metric)4));
}

static void test_templates(void **state) {
  (void)state;
  const lamp_task *t = task("rte");
  lamp_example ex = {{"It rains.", "It is wet."}, 0, 1};
  char out[128];
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
  assert_int_equal(lamp_template_check(ctx, t, "{premise} x"), LAMP_ERR_INVALID_ARGUMENT);
  assert_string_equal(lamp_context_error(ctx), "template: unknown placeholder {premise} at byte 0; "
                                               "rte has {sentence1}, {sentence2}");
  assert_int_equal(lamp_template_check(ctx, t, "x {sentence1"), LAMP_ERR_INVALID_ARGUMENT);
  assert_string_equal(lamp_context_error(ctx), "template: '{' at byte 2 is not closed");
  assert_int_equal(lamp_template_check(ctx, t, "a } b"), LAMP_ERR_INVALID_ARGUMENT);
  assert_string_equal(lamp_context_error(ctx), "template: lone '}' at byte 2 (write '}}')");
  assert_int_equal(lamp_template_check(NULL, t, "a } b"), LAMP_ERR_INVALID_ARGUMENT);
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
    FIXTURE_NEED("LAMP_REQUIRE_DATA", dir, "the project's GLUE and SuperGLUE copy, ../shared/data");
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
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s/%s", dir, t->folder, cases[c].file);
    lamp_dataset *d = NULL;
    LAMP_OK_OR_FAIL(ctx, lamp_dataset_load(ctx, t, path, &d));
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
      cmocka_unit_test(test_jsonl_errors), cmocka_unit_test(test_csv),
      cmocka_unit_test(test_csv_errors),  cmocka_unit_test(test_header_names),
      cmocka_unit_test(test_jsonl_label_key), cmocka_unit_test(test_task_check),
      cmocka_unit_test(test_names),       cmocka_unit_test(test_templates),
      cmocka_unit_test(test_epoch_order), cmocka_unit_test(test_real_data),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
