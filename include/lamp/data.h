/* lamp: classification tasks from GLUE (TSV) and SuperGLUE (JSON lines): task descriptions with
 * a text template and a verbaliser, file loaders, template rendering and length-bucketed,
 * seeded batch orders.
 *
 * Library material rather than CLI-only code because a program that trains prompts with lamp
 * needs exactly these pieces for the standard benchmarks, and they are plain host code with
 * no device involved.
 *
 * Errors: functions that read files or user text write a message naming the file and line (or
 * the template position) to `error` (error_size bytes, NUL-terminated) and return LAMP_ERR_IO
 * (cannot read), LAMP_ERR_FORMAT (malformed line) or LAMP_ERR_INVALID_ARGUMENT (bad template,
 * unknown task). */
#ifndef LAMP_DATA_H
#define LAMP_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "lamp/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LAMP_DATA_MAX_FIELDS 4
#define LAMP_DATA_MAX_LABELS 4

typedef enum lamp_data_format {
  LAMP_DATA_TSV = 0,   /* tab-separated, one example per line, read by lines (no quoting) */
  LAMP_DATA_JSONL = 1, /* one JSON object per line */
} lamp_data_format;

/* The score a task reports besides accuracy (every task reports accuracy). */
typedef enum lamp_data_metric {
  LAMP_METRIC_ACCURACY = 0,
  LAMP_METRIC_F1 = 1,       /* F1 of class 1 (MRPC, as GLUE reports it) */
  LAMP_METRIC_MCC = 2,      /* Matthews correlation (CoLA) */
  LAMP_METRIC_MACRO_F1 = 3, /* mean F1 over the classes (CB) */
} lamp_data_metric;

/* One task: where its files are, how to read them, and how to turn an example into text. */
typedef struct lamp_task {
  const char *name;       /* "sst2", "rte", "mrpc", "cola", "boolq", "cb", "copa", "wic" */
  const char *folder;     /* folder in the data directory: "SST-2", "BoolQ", ... */
  lamp_data_format format;
  const char *train_file; /* file names in the folder; NULL when the split is not shipped */
  const char *dev_file;
  int header;             /* TSV: the first line names the columns and is skipped */
  size_t n_columns;       /* TSV: exact number of columns on every line */
  size_t n_fields;        /* text fields, named in templates as {name} */
  const char *fields[LAMP_DATA_MAX_FIELDS];
  int columns[LAMP_DATA_MAX_FIELDS]; /* TSV: column of each field */
  int label_column;       /* TSV: column of the label; JSONL reads the key "label" */
  size_t n_labels;        /* K classes */
  const char *labels[LAMP_DATA_MAX_LABELS]; /* label spellings in the file, class order */
  const char *template_text; /* default template, e.g. "Review: {sentence}\nSentiment:" */
  const char *words[LAMP_DATA_MAX_LABELS];  /* default label words, class order */
  lamp_data_metric metric;
} lamp_task;

/* Tasks built in, in a fixed order; `index` past the end is LAMP_ERR_NOT_FOUND. */
lamp_status lamp_task_at(size_t index, const lamp_task **task);
size_t lamp_task_count(void);

/* The task called `name`, ignoring case and the characters '-' and '_' ("SST-2" finds "sst2").
 * LAMP_ERR_NOT_FOUND with the list of names in `error` when there is none. */
lamp_status lamp_task_find(const char *name, const lamp_task **task, char *error,
                           size_t error_size);

/* One example: pointers into the dataset's storage, valid until lamp_dataset_release. */
typedef struct lamp_example {
  const char *fields[LAMP_DATA_MAX_FIELDS]; /* task field order, trailing whitespace removed */
  int32_t label;                            /* class index into task->labels */
  size_t line;                              /* 1-based line in the file */
} lamp_example;

typedef struct lamp_dataset lamp_dataset;

/* Reads every example of `path` in the task's format. TSV: an optional UTF-8 byte-order mark;
 * the header line (when the task has one) is skipped; blank lines are skipped; a trailing "\r"
 * is dropped; each line must have exactly n_columns columns. JSONL: blank lines skipped; each
 * other line is an object with a string for every field and a "label" that is a string, a
 * number or a boolean (true/false read as "true"/"false", so both SuperGLUE spellings work).
 * An unknown label, a missing field or a wrong column count is LAMP_ERR_FORMAT with
 * "<path>:<line>: <what>". An empty file is an error too. */
lamp_status lamp_dataset_load(const lamp_task *task, const char *path, lamp_dataset **out,
                              char *error, size_t error_size);

void lamp_dataset_release(lamp_dataset *data);

size_t lamp_dataset_size(const lamp_dataset *data);

/* Example `index`, or NULL past the end. */
const lamp_example *lamp_dataset_example(const lamp_dataset *data, size_t index);

/* Checks that every {name} in `template_text` names a field of the task ("{{" and "}}" are
 * literal braces). A message names the placeholder and its byte offset. */
lamp_status lamp_template_check(const lamp_task *task, const char *template_text, char *error,
                                size_t error_size);

/* Renders an example: placeholders replaced by its fields. Writes at most `capacity` bytes
 * with a NUL when there is room, sets *length to the bytes needed (without the NUL) and returns
 * LAMP_ERR_INVALID_ARGUMENT when they do not fit, except that `out` NULL with `capacity` 0
 * asks for the length only. */
lamp_status lamp_template_render(const lamp_task *task, const char *template_text,
                                 const lamp_example *example, char *out, size_t capacity,
                                 size_t *length);

/* An order for one epoch of `n` examples with token counts `lengths`, batched by `batch`:
 * the examples are shuffled with (seed, epoch), cut into buckets of 32 batches, each bucket is
 * sorted by length (so a batch pads little), cut into batches, and the batches are shuffled.
 * Writes the permutation to `order` (n) and the batch boundaries to `starts` (n_batches + 1,
 * capacity n / batch + 2 suffices): batch b is order[starts[b] .. starts[b + 1] - 1]. Buckets are
 * whole multiples of the batch, so only the last batch of the epoch may be short. The same
 * arguments give the same order everywhere. */
lamp_status lamp_data_epoch_order(const size_t *lengths, size_t n, size_t batch, uint64_t seed,
                                  uint64_t epoch, size_t *order, size_t *starts,
                                  size_t *n_batches);

#ifdef __cplusplus
}
#endif

#endif
