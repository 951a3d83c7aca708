/* lamp: classification tasks from GLUE (TSV) and SuperGLUE (JSON lines), and the caller's own
 * tasks on TSV, CSV or JSON-lines files: task descriptions with a text template and a
 * verbaliser, file loaders, template rendering and length-bucketed, seeded batch orders.
 *
 * Library material rather than CLI-only code because a program that trains prompts with lamp
 * needs exactly these pieces for the standard benchmarks, and they are plain host code with
 * no device involved.
 *
 * Errors: functions that read files or user text take a lamp context first, record a message
 * naming the file and line (or the template position) there for lamp_context_error, and return
 * LAMP_ERR_IO (cannot read), LAMP_ERR_FORMAT (malformed line) or LAMP_ERR_INVALID_ARGUMENT (bad
 * template, unknown task or a task description that does not hold together). Nothing here
 * touches the device: the context only carries the message, and it may be NULL, in which case
 * only the status comes back. */
#ifndef LAMP_DATA_H
#define LAMP_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "lamp/context.h"
#include "lamp/export.h"
#include "lamp/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LAMP_DATA_MAX_FIELDS 4
#define LAMP_DATA_MAX_LABELS 4

typedef enum lamp_data_format {
  LAMP_DATA_TSV = 0,   /* tab-separated, one example per line, read by lines (no quoting) */
  LAMP_DATA_JSONL = 1, /* one JSON object per line */
  LAMP_DATA_CSV = 2,   /* comma-separated with RFC 4180 quoting: a field in double quotes may
                        * hold commas, newlines and "" for a quote */
} lamp_data_format;

/* The score a task reports besides accuracy (every task reports accuracy). */
typedef enum lamp_data_metric {
  LAMP_DATA_METRIC_ACCURACY = 0,
  LAMP_DATA_METRIC_F1 = 1,       /* F1 of class 1 (MRPC, as GLUE reports it) */
  LAMP_DATA_METRIC_MCC = 2,      /* Matthews correlation (CoLA) */
  LAMP_DATA_METRIC_MACRO_F1 = 3, /* mean F1 over the classes (CB) */
} lamp_data_metric;

/* One task: where its files are, how to read them, and how to turn an example into text. The
 * built-in tasks are lamp_task_at's; a caller may fill one in for its own file (folder and file
 * names may then stay NULL) and check it with lamp_task_check. "TSV/CSV" below means either. */
typedef struct lamp_task {
  const char *name;       /* "sst2", "rte", "mrpc", "cola", "boolq", "cb", "copa", "wic" */
  const char *folder;     /* folder in the data directory: "SST-2", "BoolQ", ... */
  lamp_data_format format;
  const char *train_file; /* file names in the folder; NULL when the split is not shipped */
  const char *dev_file;
  int header;             /* TSV/CSV: the first record names the columns and is skipped */
  size_t n_columns;       /* TSV/CSV: exact number of columns on every line; 0 with a header:
                           * the header's count */
  size_t n_fields;        /* text fields, named in templates as {name} */
  const char *fields[LAMP_DATA_MAX_FIELDS]; /* JSONL: also the keys of the fields */
  int columns[LAMP_DATA_MAX_FIELDS]; /* TSV/CSV: 0-based column of each field; -1 with a
                                      * header: the column whose header name is fields[f] */
  int label_column;       /* TSV/CSV: column of the label; -1 with a header: the column named
                           * label_field */
  size_t n_labels;        /* K classes */
  const char *labels[LAMP_DATA_MAX_LABELS]; /* label spellings in the file, class order */
  const char *template_text; /* default template, e.g. "Review: {sentence}\nSentiment:" */
  const char *words[LAMP_DATA_MAX_LABELS];  /* default label words, class order (all NULL: the
                                             * caller gives them elsewhere) */
  lamp_data_metric metric;
  const char *label_field; /* JSONL: the label's key (NULL: "label"); TSV/CSV with a header:
                            * the label column's name when label_column is -1 (NULL: "label") */
} lamp_task;

/* Tasks built in, in a fixed order; `index` past the end is LAMP_ERR_NOT_FOUND. */
LAMP_API lamp_status lamp_task_at(size_t index, const lamp_task **task);
LAMP_API size_t lamp_task_count(void);

/* The task called `name`, ignoring case and the characters '-' and '_' ("SST-2" finds "sst2").
 * LAMP_ERR_NOT_FOUND, with the list of names in the message, when there is none. */
LAMP_API lamp_status lamp_task_find(lamp_context *ctx, const char *name, const lamp_task **task);

/* Checks a task description, such as one a caller filled in for its own file: a name; 1 to
 * LAMP_DATA_MAX_FIELDS text fields with distinct, non-empty names without braces; 2 to
 * LAMP_DATA_MAX_LABELS distinct labels; a word for every label or for none; a template that
 * lamp_template_check accepts; for TSV/CSV, columns and the label column inside n_columns (when
 * it is not 0), -1 (find by name) and n_columns 0 only with a header; a known metric, and
 * exactly 2 labels for F1 and MCC. LAMP_ERR_INVALID_ARGUMENT with a message naming the task and
 * the problem. The built-in tasks pass. */
LAMP_API lamp_status lamp_task_check(lamp_context *ctx, const lamp_task *task);

/* Names of formats ("tsv", "csv", "jsonl") and metrics ("accuracy", "f1", "mcc", "macro_f1");
 * NULL for a value outside the enum. The parsers ignore case, also accept "macro-f1", and return
 * LAMP_ERR_INVALID_ARGUMENT (leaving *out alone) for anything else. */
LAMP_API const char *lamp_data_format_name(lamp_data_format format);
LAMP_API lamp_status lamp_data_format_from_name(const char *name, lamp_data_format *out);
LAMP_API const char *lamp_data_metric_name(lamp_data_metric metric);
LAMP_API lamp_status lamp_data_metric_from_name(const char *name, lamp_data_metric *out);

/* One example: pointers into the dataset's storage, valid until lamp_dataset_release. */
typedef struct lamp_example {
  const char *fields[LAMP_DATA_MAX_FIELDS]; /* task field order, trailing whitespace removed */
  int32_t label;                            /* class index into task->labels */
  size_t line;                              /* 1-based line in the file */
} lamp_example;

typedef struct lamp_dataset lamp_dataset;

/* Reads every example of `path` in the task's format, after checking the task (lamp_task_check,
 * whose message is then given as is). Every format: an optional UTF-8 byte-order mark; blank
 * lines are skipped. TSV: the header line (when the task has one) is skipped; a trailing "\r"
 * is dropped; each line must have exactly n_columns columns. CSV: the same by records, which
 * end at a newline outside quotes ("\r\n" too, also inside quotes where it is read as "\n");
 * a quote opens a quoted field only as the field's first character, and after its closing
 * quote only a comma or the record's end may follow; an example's line, and the line in an
 * error, is the line where its record starts. TSV/CSV: columns and the label column given as -1
 * are found by name in the header (the first name that matches, surrounding spaces ignored); a
 * name the header lacks is "<path>:1: ..." with the header's names. JSONL: each other line is an
 * object with a string for every field and a label (key label_field) that is a string, a number
 * or a boolean (true/false read as "true"/"false", so both SuperGLUE spellings work; a number as
 * its shortest exact decimal text, 1.0 as "1"). An unknown label, a missing field or a wrong
 * column count is LAMP_ERR_FORMAT with "<path>:<line>: <what>". An empty file is an error
 * too. */
LAMP_API lamp_status lamp_dataset_load(lamp_context *ctx, const lamp_task *task,
                                       const char *path, lamp_dataset **out);

LAMP_API void lamp_dataset_release(lamp_dataset *data);

LAMP_API size_t lamp_dataset_size(const lamp_dataset *data);

/* Example `index`, or NULL past the end. */
LAMP_API const lamp_example *lamp_dataset_example(const lamp_dataset *data, size_t index);

/* Checks that every {name} in `template_text` names a field of the task ("{{" and "}}" are
 * literal braces). A message names the placeholder and its byte offset. */
LAMP_API lamp_status lamp_template_check(lamp_context *ctx, const lamp_task *task,
                                         const char *template_text);

/* Renders an example: placeholders replaced by its fields. Writes at most `capacity` bytes
 * with a NUL when there is room, sets *length to the bytes needed (without the NUL) and returns
 * LAMP_ERR_INVALID_ARGUMENT when they do not fit, except that `out` NULL with `capacity` 0
 * asks for the length only. */
LAMP_API lamp_status lamp_template_render(const lamp_task *task, const char *template_text,
                                          const lamp_example *example, char *out,
                                          size_t capacity, size_t *length);

/* An order for one epoch of `n` examples with token counts `lengths`, batched by `batch`:
 * the examples are shuffled with (seed, epoch), cut into buckets of 32 batches, each bucket is
 * sorted by length (so a batch pads little), cut into batches, and the batches are shuffled.
 * Writes the permutation to `order` (n) and the batch boundaries to `starts` (n_batches + 1,
 * capacity n / batch + 2 suffices): batch b is order[starts[b] .. starts[b + 1] - 1]. Buckets are
 * whole multiples of the batch, so only the last batch of the epoch may be short. The same
 * arguments give the same order everywhere. */
LAMP_API lamp_status lamp_data_epoch_order(const size_t *lengths, size_t n, size_t batch,
                                           uint64_t seed, uint64_t epoch, size_t *order,
                                           size_t *starts, size_t *n_batches);

#ifdef __cplusplus
}
#endif

#endif
