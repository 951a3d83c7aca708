/* Dataset loaders and templates: a task (built in, or described by the input: TSV, CSV or JSON
 * lines, with or without a header, columns by number or by header name, a label key), the
 * file's content, and a template, from one input:
 *
 *   byte 0   task: bits 0-3 pick a built-in task (0-7) or a described one (8-15); bit 7: the
 *            described task's column numbers come raw from bytes 2-5 (lamp_task_check's
 *            refusals get fuzzed too)
 *   byte 1   described task: bits 0-1 format (tsv, jsonl, csv, csv), bit 2 header, bit 3
 *            columns by header name, bit 4 label key "y", bit 5 three labels, bit 6 two
 *            fields, bit 7 metric f1 (else accuracy)
 *   byte 2   label spellings (digits, booleans, words); raw: n_columns
 *   bytes 3-5 raw: field columns and label column (signed); byte 5 also the batch of the
 *            epoch order
 *   then     the file, optionally followed by a NUL and a template (after the last NUL)
 *
 * Every example is rendered with the task's template and with the input's (when it checks),
 * through the length-only, exact and too-small buffer contracts, and the examples get an
 * epoch order. */
#include "fuzz_common.h"

#define MAX_EXAMPLES 2000

static void render(const lamp_task *task, const char *tmpl, const lamp_example *ex,
                   size_t *out_len) {
  size_t len = 0;
  FUZZ_CHECK(lamp_template_render(task, tmpl, ex, NULL, 0, &len) == LAMP_OK);
  char *buf = malloc(len + 1);
  if (!buf) return;
  size_t got = 0;
  FUZZ_CHECK(lamp_template_render(task, tmpl, ex, buf, len + 1, &got) == LAMP_OK && got == len);
  FUZZ_CHECK(buf[len] == '\0');
  FUZZ_CHECK(lamp_template_render(task, tmpl, ex, buf, len, &got) == LAMP_OK && got == len);
  if (len)
    FUZZ_CHECK(lamp_template_render(task, tmpl, ex, buf, len - 1, &got) ==
                   LAMP_ERR_INVALID_ARGUMENT &&
               got == len);
  free(buf);
  if (out_len) *out_len = len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 6) return 0;
  lamp_context *ctx = fuzz_ctx();
  uint8_t b0 = data[0], b1 = data[1], b2 = data[2];
  int8_t b3 = (int8_t)data[3], b4 = (int8_t)data[4], b5 = (int8_t)data[5];
  char *content, *tmpl;
  size_t content_len, tmpl_len;
  fuzz_split(data + 6, size - 6, "", 1, &content, &content_len, &tmpl, &tmpl_len);

  lamp_task custom;
  const lamp_task *task = NULL;
  if ((b0 & 15) < 8) {
    if (lamp_task_at((size_t)(b0 & 15) % lamp_task_count(), &task) != LAMP_OK) task = NULL;
  } else {
    static const char *const label_sets[3][3] = {
        {"0", "1", "2"}, {"false", "true", "maybe"}, {"bad", "good", " meh "}};
    static const char *const words[3] = {" no", " yes", " maybe"};
    memset(&custom, 0, sizeof(custom));
    custom.name = "fuzz";
    custom.format = (b1 & 3) == 3 ? LAMP_DATA_CSV : (lamp_data_format)(b1 & 3);
    custom.header = (b1 & 4) != 0;
    int by_name = (b1 & 8) != 0;
    custom.label_field = (b1 & 16) ? "y" : NULL;
    custom.n_labels = (b1 & 32) ? 3 : 2;
    custom.n_fields = (b1 & 64) ? 2 : 1;
    custom.metric = (b1 & 128) ? LAMP_DATA_METRIC_F1 : LAMP_DATA_METRIC_ACCURACY;
    custom.fields[0] = "text";
    custom.fields[1] = "extra";
    for (size_t k = 0; k < custom.n_labels; k++) {
      custom.labels[k] = label_sets[(b2 & 127) % 3][k];
      custom.words[k] = (b2 & 128) ? words[k] : NULL;
    }
    custom.template_text = custom.n_fields == 2 ? "{text} / {extra}:" : "Text: {text}\nLabel:";
    if (b0 & 128) {
      custom.n_columns = b2 % 6;
      custom.columns[0] = b3;
      custom.columns[1] = b4;
      custom.label_column = b5;
    } else if (by_name) {
      custom.n_columns = 0;
      custom.columns[0] = custom.columns[1] = -1;
      custom.label_column = -1;
    } else {
      custom.n_columns = custom.n_fields + 1;
      custom.columns[0] = 0;
      custom.columns[1] = 1;
      custom.label_column = (int)custom.n_fields;
    }
    task = &custom;
  }
  if (!task) goto done;

  int task_ok = lamp_task_check(ctx, task) == LAMP_OK;
  if (!task_ok) fuzz_message();
  int tmpl_ok = 0;
  if (tmpl) {
    tmpl_ok = lamp_template_check(ctx, task, tmpl) == LAMP_OK;
    if (!tmpl_ok) fuzz_message();
    /* the same text as a task, format and metric name */
    const lamp_task *found = NULL;
    if (lamp_task_find(ctx, tmpl, &found) != LAMP_OK) fuzz_message();
    lamp_data_format fmt;
    lamp_data_metric met;
    if (lamp_data_format_from_name(tmpl, &fmt) == LAMP_OK)
      FUZZ_CHECK(lamp_data_format_name(fmt) != NULL);
    if (lamp_data_metric_from_name(tmpl, &met) == LAMP_OK)
      FUZZ_CHECK(lamp_data_metric_name(met) != NULL);
  }

  const char *path = fuzz_file((const uint8_t *)content, content_len);
  if (!path) goto done;
  lamp_dataset *ds = NULL;
  lamp_status st = lamp_dataset_load(ctx, task, path, &ds);
  if (st != LAMP_OK) {
    FUZZ_CHECK(ds == NULL);
    fuzz_message();
    goto done;
  }
  FUZZ_CHECK(task_ok); /* the loader checks the task first */
  size_t n = lamp_dataset_size(ds);
  FUZZ_CHECK(n > 0);
  if (n > MAX_EXAMPLES) n = MAX_EXAMPLES;
  size_t *lengths = malloc(n * sizeof(size_t));
  for (size_t i = 0; lengths && i < n; i++) {
    const lamp_example *ex = lamp_dataset_example(ds, i);
    FUZZ_CHECK(ex != NULL);
    FUZZ_CHECK(ex->label >= 0 && (size_t)ex->label < task->n_labels);
    FUZZ_CHECK(ex->line >= 1);
    for (size_t f = 0; f < task->n_fields; f++) {
      FUZZ_CHECK(ex->fields[f] != NULL);
      (void)strlen(ex->fields[f]);
    }
    render(task, task->template_text, ex, &lengths[i]);
    if (tmpl_ok) render(task, tmpl, ex, NULL);
  }
  FUZZ_CHECK(lamp_dataset_example(ds, lamp_dataset_size(ds)) == NULL);
  if (lengths) {
    size_t batch = (size_t)(uint8_t)b5 % 8 + 1;
    size_t *order = malloc(n * sizeof(size_t));
    size_t *starts = malloc((n / batch + 2) * sizeof(size_t));
    size_t nb = 0;
    if (order && starts &&
        lamp_data_epoch_order(lengths, n, batch, (uint64_t)b2, (uint64_t)(uint8_t)b3, order, starts,
                              &nb) == LAMP_OK) {
      /* a permutation, cut into batches of `batch` with only the last one short */
      char *seen = calloc(n, 1);
      FUZZ_CHECK(starts[0] == 0 && starts[nb] == n);
      for (size_t b = 0; b < nb; b++) FUZZ_CHECK(starts[b + 1] - starts[b] <= batch);
      for (size_t i = 0; seen && i < n; i++) {
        FUZZ_CHECK(order[i] < n && !seen[order[i]]);
        seen[order[i]] = 1;
      }
      free(seen);
    }
    free(order);
    free(starts);
  }
  free(lengths);
  lamp_dataset_release(ds);
done:
  free(content);
  free(tmpl);
  return 0;
}
