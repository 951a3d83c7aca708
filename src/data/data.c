/* GLUE/SuperGLUE and caller-described tasks: descriptions, loaders (TSV, CSV, JSON lines),
 * templates and epoch orders (lamp/data.h). */
#include "lamp/data.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"
#include "util/json.h"

/* Templates end where the label word follows, so the answer position is the last token. The
 * label words start with a space because they continue the text. */
static const lamp_task lamp__tasks[] = {
    {"sst2", "SST-2", LAMP_DATA_TSV, "train.tsv", "dev.tsv", 1, 2, 1, {"sentence"}, {0}, 1, 2,
     {"0", "1"}, "Review: {sentence}\nSentiment:", {" negative", " positive"},
     LAMP_DATA_METRIC_ACCURACY, NULL},
    {"rte", "RTE", LAMP_DATA_TSV, "train.tsv", "dev.tsv", 1, 4, 2, {"sentence1", "sentence2"},
     {1, 2}, 3, 2, {"entailment", "not_entailment"},
     "{sentence1}\nQuestion: {sentence2} Yes or no?\nAnswer:", {" yes", " no"},
     LAMP_DATA_METRIC_ACCURACY, NULL},
    {"mrpc", "MRPC", LAMP_DATA_TSV, "train.tsv", "dev.tsv", 1, 5, 2, {"sentence1", "sentence2"},
     {3, 4}, 0, 2, {"0", "1"},
     "Sentence 1: {sentence1}\nSentence 2: {sentence2}\nDo both sentences mean the same "
     "thing?\nAnswer:",
     {" no", " yes"}, LAMP_DATA_METRIC_F1, NULL},
    {"cola", "CoLA", LAMP_DATA_TSV, "train.tsv", "dev.tsv", 0, 4, 1, {"sentence"}, {3}, 1, 2,
     {"0", "1"}, "Sentence: {sentence}\nIs this sentence grammatical?\nAnswer:", {" no", " yes"},
     LAMP_DATA_METRIC_MCC, NULL},
    {"boolq", "BoolQ", LAMP_DATA_JSONL, NULL, "val.jsonl", 0, 0, 2, {"passage", "question"},
     {0}, 0, 2, {"false", "true"}, "{passage}\nQuestion: {question}?\nAnswer:", {" no", " yes"},
     LAMP_DATA_METRIC_ACCURACY, NULL},
    {"cb", "CB", LAMP_DATA_JSONL, "train.jsonl", "val.jsonl", 0, 0, 2, {"premise", "hypothesis"},
     {0}, 0, 3, {"entailment", "contradiction", "neutral"},
     "{premise}\nQuestion: {hypothesis} Yes, no, or maybe?\nAnswer:", {" yes", " no", " maybe"},
     LAMP_DATA_METRIC_MACRO_F1, NULL},
    {"copa", "COPA", LAMP_DATA_JSONL, NULL, "val.jsonl", 0, 0, 4,
     {"premise", "question", "choice1", "choice2"}, {0}, 0, 2, {"0", "1"},
     "{premise} What was the {question}?\nA: {choice1}\nB: {choice2}\nAnswer:", {" A", " B"},
     LAMP_DATA_METRIC_ACCURACY, NULL},
    {"wic", "WiC", LAMP_DATA_JSONL, NULL, "val.jsonl", 0, 0, 3, {"word", "sentence1", "sentence2"},
     {0}, 0, 2, {"false", "true"},
     "1: {sentence1}\n2: {sentence2}\nIs \"{word}\" used with the same meaning in 1 and 2?\n"
     "Answer:",
     {" no", " yes"}, LAMP_DATA_METRIC_ACCURACY, NULL},
};

#define LAMP__N_TASKS (sizeof(lamp__tasks) / sizeof(lamp__tasks[0]))

/* Records a message in `ctx` (NULL: nothing); the caller returns the status. */
static void lamp__data_msg(lamp_context *ctx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void lamp__data_msg(lamp_context *ctx, const char *fmt, ...) {
  if (!ctx) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  char *msg = malloc((size_t)n + 1);
  if (!msg) {
    lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory for a message");
    return;
  }
  va_start(ap, fmt);
  vsnprintf(msg, (size_t)n + 1, fmt, ap);
  va_end(ap);
  lamp__fail(ctx, LAMP_OK, "%s", msg);
  free(msg);
}

size_t lamp_task_count(void) { return LAMP__N_TASKS; }

lamp_status lamp_task_at(size_t index, const lamp_task **task) {
  if (!task) return LAMP_ERR_INVALID_ARGUMENT;
  *task = NULL;
  if (index >= LAMP__N_TASKS) return LAMP_ERR_NOT_FOUND;
  *task = &lamp__tasks[index];
  return LAMP_OK;
}

/* Lower case without '-' and '_', at most size - 1 bytes. */
static void lamp__task_key(const char *name, char *out, size_t size) {
  size_t n = 0;
  for (; *name && n + 1 < size; name++)
    if (*name != '-' && *name != '_') out[n++] = (char)tolower((unsigned char)*name);
  out[n] = '\0';
}

lamp_status lamp_task_find(lamp_context *ctx, const char *name, const lamp_task **task) {
  if (!name || !task) {
    lamp__data_msg(ctx, "lamp_task_find: NULL argument");
    return LAMP_ERR_INVALID_ARGUMENT;
  }
  *task = NULL;
  char key[64], other[64];
  lamp__task_key(name, key, sizeof(key));
  for (size_t i = 0; i < LAMP__N_TASKS; i++) {
    lamp__task_key(lamp__tasks[i].name, other, sizeof(other));
    if (!strcmp(key, other)) {
      *task = &lamp__tasks[i];
      return LAMP_OK;
    }
  }
  char list[256] = "";
  for (size_t i = 0; i < LAMP__N_TASKS; i++) {
    strncat(list, lamp__tasks[i].name, sizeof(list) - strlen(list) - 1);
    if (i + 1 < LAMP__N_TASKS) strncat(list, ", ", sizeof(list) - strlen(list) - 1);
  }
  lamp__data_msg(ctx, "unknown task '%s' (tasks: %s)", name, list);
  return LAMP_ERR_NOT_FOUND;
}

/* ---- task checks and names ---------------------------------------------------------------- */

/* Indexed by the enum values. */
static const char *const lamp__format_names[] = {"tsv", "jsonl", "csv"};
static const char *const lamp__metric_names[] = {"accuracy", "f1", "mcc", "macro_f1"};
#define LAMP__N_FORMATS (sizeof(lamp__format_names) / sizeof(lamp__format_names[0]))
#define LAMP__N_METRICS (sizeof(lamp__metric_names) / sizeof(lamp__metric_names[0]))

/* Equal ignoring ASCII case, with '-' read as '_' when `dash` is set. */
static int lamp__same_name(const char *a, const char *b, int dash) {
  for (;; a++, b++) {
    int x = tolower((unsigned char)*a), y = tolower((unsigned char)*b);
    if (dash && x == '-') x = '_';
    if (x != y) return 0;
    if (!x) return 1;
  }
}

const char *lamp_data_format_name(lamp_data_format format) {
  /* through size_t so that a negative value is out of range too */
  return (size_t)format < LAMP__N_FORMATS ? lamp__format_names[format] : NULL;
}

lamp_status lamp_data_format_from_name(const char *name, lamp_data_format *out) {
  if (!name || !out) return LAMP_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < LAMP__N_FORMATS; i++)
    if (lamp__same_name(name, lamp__format_names[i], 0)) {
      *out = (lamp_data_format)i;
      return LAMP_OK;
    }
  return LAMP_ERR_INVALID_ARGUMENT;
}

const char *lamp_data_metric_name(lamp_data_metric metric) {
  return (size_t)metric < LAMP__N_METRICS ? lamp__metric_names[metric] : NULL;
}

lamp_status lamp_data_metric_from_name(const char *name, lamp_data_metric *out) {
  if (!name || !out) return LAMP_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < LAMP__N_METRICS; i++)
    if (lamp__same_name(name, lamp__metric_names[i], 1)) {
      *out = (lamp_data_metric)i;
      return LAMP_OK;
    }
  return LAMP_ERR_INVALID_ARGUMENT;
}

static int lamp__by_columns(lamp_data_format format) {
  return format == LAMP_DATA_TSV || format == LAMP_DATA_CSV;
}

/* A TSV/CSV column of the task (`what`: "field 'x'" or "the label"). */
static lamp_status lamp__check_column(const lamp_task *t, const char *what, int column,
                                      lamp_context *ctx) {
  if (column == -1) {
    if (t->header) return LAMP_OK;
    lamp__data_msg(ctx, "task %s: the column of %s is -1 (find it by its name in "
                   "the header), but the task has no header", t->name, what);
    return LAMP_ERR_INVALID_ARGUMENT;
  }
  if (column < -1) {
    lamp__data_msg(ctx, "task %s: the column of %s is %d; a column is 0 or more, "
                   "or -1 to find it by its name in the header", t->name, what, column);
    return LAMP_ERR_INVALID_ARGUMENT;
  }
  if (t->n_columns && (size_t)column >= t->n_columns) {
    lamp__data_msg(ctx, "task %s: the column of %s is %d, past the task's %zu "
                   "columns (0 to %zu)", t->name, what, column, t->n_columns, t->n_columns - 1);
    return LAMP_ERR_INVALID_ARGUMENT;
  }
  return LAMP_OK;
}

lamp_status lamp_task_check(lamp_context *ctx, const lamp_task *task) {
  if (!task) {
    lamp__data_msg(ctx, "lamp_task_check: NULL argument");
    return LAMP_ERR_INVALID_ARGUMENT;
  }
  const lamp_task *t = task;
  const lamp_status bad = LAMP_ERR_INVALID_ARGUMENT;
  if (!t->name || !t->name[0]) {
    lamp__data_msg(ctx, "task: no name");
    return bad;
  }
  const char *tn = t->name;
  if (!lamp_data_format_name(t->format)) {
    lamp__data_msg(ctx, "task %s: unknown format %d (tsv, csv or jsonl)", tn,
                   (int)t->format);
    return bad;
  }
  if (t->n_fields < 1 || t->n_fields > LAMP_DATA_MAX_FIELDS) {
    lamp__data_msg(ctx, "task %s: %zu text fields; a task has 1 to %d", tn,
                   t->n_fields, LAMP_DATA_MAX_FIELDS);
    return bad;
  }
  for (size_t f = 0; f < t->n_fields; f++) {
    const char *name = t->fields[f];
    if (!name || !name[0]) {
      lamp__data_msg(ctx, "task %s: text field %zu has no name", tn, f);
      return bad;
    }
    /* a template names a field as {name}, so a brace in the name could never be named */
    if (strchr(name, '{') || strchr(name, '}')) {
      lamp__data_msg(ctx, "task %s: text field '%s' has a brace in its name", tn,
                     name);
      return bad;
    }
    for (size_t g = 0; g < f; g++)
      if (!strcmp(t->fields[g], name)) {
        lamp__data_msg(ctx, "task %s: text field '%s' is named twice", tn, name);
        return bad;
      }
  }
  if (t->n_labels < 2 || t->n_labels > LAMP_DATA_MAX_LABELS) {
    lamp__data_msg(ctx, "task %s: %zu labels; a task has 2 to %d", tn, t->n_labels,
                   LAMP_DATA_MAX_LABELS);
    return bad;
  }
  size_t n_words = 0;
  for (size_t k = 0; k < t->n_labels; k++) {
    if (!t->labels[k]) {
      lamp__data_msg(ctx, "task %s: label %zu has no spelling", tn, k);
      return bad;
    }
    for (size_t j = 0; j < k; j++)
      if (!strcmp(t->labels[j], t->labels[k])) {
        lamp__data_msg(ctx, "task %s: label '%s' is given twice", tn,
                       t->labels[k]);
        return bad;
      }
    n_words += t->words[k] != NULL;
  }
  if (n_words && n_words < t->n_labels)
    for (size_t k = 0; k < t->n_labels; k++)
      if (!t->words[k]) {
        lamp__data_msg(ctx, "task %s: label '%s' has no word (give a word for "
                       "every label or for none)", tn, t->labels[k]);
        return bad;
      }
  if (!t->template_text) {
    lamp__data_msg(ctx, "task %s: no template", tn);
    return bad;
  }
  if (lamp_template_check(ctx, t, t->template_text) != LAMP_OK) {
    if (ctx) { /* prefix the template's message with the task */
      char *why = malloc(strlen(lamp_context_error(ctx)) + 1);
      if (why) strcpy(why, lamp_context_error(ctx));
      lamp__data_msg(ctx, "task %s: %s", tn, why ? why : "bad template");
      free(why);
    }
    return bad;
  }
  if (t->label_field && !t->label_field[0]) {
    lamp__data_msg(ctx, "task %s: the label's name is empty", tn);
    return bad;
  }
  if (lamp__by_columns(t->format)) {
    if (!t->n_columns && !t->header) {
      lamp__data_msg(ctx, "task %s: 0 columns, which only a header can count "
                     "(set n_columns or header)", tn);
      return bad;
    }
    char what[96];
    for (size_t f = 0; f < t->n_fields; f++) {
      snprintf(what, sizeof(what), "field '%.64s'", t->fields[f]);
      if (lamp__check_column(t, what, t->columns[f], ctx) != LAMP_OK) return bad;
    }
    if (lamp__check_column(t, "the label", t->label_column, ctx) != LAMP_OK)
      return bad;
  }
  if (!lamp_data_metric_name(t->metric)) {
    lamp__data_msg(ctx, "task %s: unknown metric %d (accuracy, f1, mcc or "
                   "macro_f1)", tn, (int)t->metric);
    return bad;
  }
  if ((t->metric == LAMP_DATA_METRIC_F1 || t->metric == LAMP_DATA_METRIC_MCC) && t->n_labels != 2) {
    lamp__data_msg(ctx, "task %s: the metric %s needs exactly 2 labels, the task "
                   "has %zu", tn, lamp_data_metric_name(t->metric), t->n_labels);
    return bad;
  }
  return LAMP_OK;
}

/* ---- datasets ----------------------------------------------------------------------------- */

struct lamp_dataset {
  const lamp_task *task;
  lamp_example *examples;
  size_t n, cap;
  char **blocks; /* one allocation per example holding its field texts */
};

void lamp_dataset_release(lamp_dataset *data) {
  if (!data) return;
  for (size_t i = 0; i < data->n; i++) free(data->blocks[i]);
  free(data->blocks);
  free(data->examples);
  free(data);
}

size_t lamp_dataset_size(const lamp_dataset *data) { return data ? data->n : 0; }

const lamp_example *lamp_dataset_example(const lamp_dataset *data, size_t index) {
  return data && index < data->n ? &data->examples[index] : NULL;
}

/* Appends an example whose fields are copied (trailing whitespace removed) into one block. */
static lamp_status lamp__dataset_add(lamp_dataset *d, const char *const *texts,
                                     const size_t *lengths, int32_t label, size_t line) {
  if (d->n == d->cap) {
    size_t cap = d->cap ? 2 * d->cap : 256;
    lamp_example *e = realloc(d->examples, cap * sizeof(*e));
    if (!e) return LAMP_ERR_OUT_OF_MEMORY;
    d->examples = e;
    char **b = realloc(d->blocks, cap * sizeof(*b));
    if (!b) return LAMP_ERR_OUT_OF_MEMORY;
    d->blocks = b;
    d->cap = cap;
  }
  size_t nf = d->task->n_fields, total = 0, len[LAMP_DATA_MAX_FIELDS];
  for (size_t f = 0; f < nf; f++) {
    len[f] = lengths[f];
    while (len[f] && isspace((unsigned char)texts[f][len[f] - 1])) len[f]--;
    total += len[f] + 1;
  }
  char *block = malloc(total ? total : 1);
  if (!block) return LAMP_ERR_OUT_OF_MEMORY;
  lamp_example *e = &d->examples[d->n];
  memset(e, 0, sizeof(*e));
  char *p = block;
  for (size_t f = 0; f < nf; f++) {
    memcpy(p, texts[f], len[f]);
    p[len[f]] = '\0';
    e->fields[f] = p;
    p += len[f] + 1;
  }
  e->label = label;
  e->line = line;
  d->blocks[d->n++] = block;
  return LAMP_OK;
}

/* The class of a label spelling, or -1. */
static int32_t lamp__label_index(const lamp_task *t, const char *s, size_t n) {
  for (size_t k = 0; k < t->n_labels; k++)
    if (strlen(t->labels[k]) == n && !memcmp(t->labels[k], s, n)) return (int32_t)k;
  return -1;
}

static void lamp__label_list(const lamp_task *t, char *out, size_t size) {
  out[0] = '\0';
  for (size_t k = 0; k < t->n_labels; k++) {
    strncat(out, t->labels[k], size - strlen(out) - 1);
    if (k + 1 < t->n_labels) strncat(out, ", ", size - strlen(out) - 1);
  }
}

static lamp_status lamp__bad_label(const lamp_task *t, const char *path, size_t line,
                                   const char *s, size_t n, lamp_context *ctx) {
  char list[128];
  lamp__label_list(t, list, sizeof(list));
  lamp__data_msg(ctx, "%s:%zu: label '%.*s' is not one of %s", path, line,
                 (int)(n > 64 ? 64 : n), s, list);
  return LAMP_ERR_FORMAT;
}

/* A run of bytes in the loaded text. */
typedef struct lamp__span {
  const char *s;
  size_t n;
} lamp__span;

/* The loader's place in the file and the columns of the record it read last. */
typedef struct lamp__reader {
  const char *path;
  char *text; /* the whole file, NUL-terminated; CSV fields are unquoted in place */
  size_t size, pos;
  size_t line; /* 1-based line at pos */
  lamp__span *cols;
  size_t n_cols, cap;
} lamp__reader;

/* Where the fields and the label are: the task's columns with the header's names resolved. */
typedef struct lamp__layout {
  size_t n_columns;
  size_t columns[LAMP_DATA_MAX_FIELDS];
  size_t label_column;
} lamp__layout;

static lamp_status lamp__push_col(lamp__reader *r, const char *s, size_t n) {
  if (r->n_cols == r->cap) {
    size_t cap = r->cap ? 2 * r->cap : 16;
    lamp__span *c = realloc(r->cols, cap * sizeof(*c));
    if (!c) return LAMP_ERR_OUT_OF_MEMORY;
    r->cols = c;
    r->cap = cap;
  }
  r->cols[r->n_cols].s = s;
  r->cols[r->n_cols].n = n;
  r->n_cols++;
  return LAMP_OK;
}

static lamp_status lamp__tsv_split(lamp__reader *r, const char *line, size_t n) {
  r->n_cols = 0;
  const char *start = line;
  for (size_t i = 0; i <= n; i++)
    if (i == n || line[i] == '\t') {
      if (lamp__push_col(r, start, (size_t)(line + i - start)) != LAMP_OK)
        return LAMP_ERR_OUT_OF_MEMORY;
      start = line + i + 1;
    }
  return LAMP_OK;
}

/* Reads the CSV record at r->pos (its first line is `line_no`) into r->cols and moves past it.
 * Quoted fields are unquoted in place: a field's text never outgrows its source, so writing
 * it from the field's first byte on leaves the earlier fields and the later source intact. */
static lamp_status lamp__csv_record(lamp__reader *r, size_t line_no, lamp_context *ctx) {
  char *t = r->text;
  size_t p = r->pos, size = r->size;
  r->n_cols = 0;
  for (;;) {
    char *start = t + p, *out = start;
    if (p < size && t[p] == '"') {
      for (p++;; p++) {
        if (p >= size) {
          lamp__data_msg(ctx, "%s:%zu: a quoted field is not closed before the "
                         "end of the file", r->path, line_no);
          return LAMP_ERR_FORMAT;
        }
        char c = t[p];
        if (c == '"') {
          if (p + 1 < size && t[p + 1] == '"') {
            *out++ = '"';
            p++;
            continue;
          }
          p++;
          break;
        }
        if (c == '\0') goto nul;
        if (c == '\r' && p + 1 < size && t[p + 1] == '\n') continue; /* "\r\n" reads as "\n" */
        if (c == '\n') r->line++;
        *out++ = c;
      }
      if (p < size && t[p] == '\r' && (p + 1 == size || t[p + 1] == '\n')) p++;
      if (p < size && t[p] != ',' && t[p] != '\n') {
        lamp__data_msg(ctx, "%s:%zu: text after a closing quote (a quote inside "
                       "a quoted field is written \"\")", r->path, line_no);
        return LAMP_ERR_FORMAT;
      }
    } else {
      /* unquoted: a quote here is a plain character, as lenient readers take it */
      while (p < size && t[p] != ',' && t[p] != '\n') {
        if (t[p] == '\0') goto nul;
        p++;
      }
      out = t + p;
      if (out > start && out[-1] == '\r' && (p == size || t[p] == '\n')) out--;
    }
    if (lamp__push_col(r, start, (size_t)(out - start)) != LAMP_OK) {
      lamp__data_msg(ctx, "%s:%zu: out of memory", r->path, line_no);
      return LAMP_ERR_OUT_OF_MEMORY;
    }
    if (p < size && t[p] == ',') {
      p++;
      continue;
    }
    if (p < size) { /* the newline that ends the record */
      p++;
      r->line++;
    }
    r->pos = p;
    return LAMP_OK;
  }
nul:
  lamp__data_msg(ctx, "%s:%zu: the line holds a NUL byte", r->path, line_no);
  return LAMP_ERR_FORMAT;
}

/* A header name without the spaces around it, which hand-written headers often have. */
static lamp__span lamp__trimmed(lamp__span c) {
  while (c.n && isspace((unsigned char)c.s[0])) c.s++, c.n--;
  while (c.n && isspace((unsigned char)c.s[c.n - 1])) c.n--;
  return c;
}

/* The column named `name` in the header, or -1. */
static long lamp__header_find(const lamp__span *names, size_t n, const char *name) {
  size_t len = strlen(name);
  for (size_t i = 0; i < n; i++) {
    lamp__span c = lamp__trimmed(names[i]);
    if (c.n == len && !memcmp(c.s, name, len)) return (long)i;
  }
  return -1;
}

static lamp_status lamp__header_missing(const lamp__reader *r, const lamp__span *names, size_t n,
                                        const char *what, const char *name, lamp_context *ctx) {
  char list[256] = "";
  for (size_t i = 0; i < n; i++) {
    lamp__span c = lamp__trimmed(names[i]);
    size_t used = strlen(list);
    snprintf(list + used, sizeof(list) - used, "%s'%.*s'", i ? ", " : "",
             (int)(c.n > 48 ? 48 : c.n), c.s);
  }
  lamp__data_msg(ctx, "%s:1: no column named '%s' (%s) in the header; its columns "
                 "are %s", r->path, name, what, list);
  return LAMP_ERR_FORMAT;
}

/* Resolves the columns given as -1 by their names in the header just read (r->cols), and the
 * column count when the task leaves it to the header. */
static lamp_status lamp__layout_from_header(const lamp_task *t, const lamp__reader *r,
                                            lamp__layout *l, lamp_context *ctx) {
  const lamp__span *names = r->cols;
  size_t n = r->n_cols;
  if (t->n_columns && n != t->n_columns) {
    lamp__data_msg(ctx, "%s:1: the header has %zu columns, the task expects %zu",
                   r->path, n, t->n_columns);
    return LAMP_ERR_FORMAT;
  }
  l->n_columns = n;
  for (size_t f = 0; f <= t->n_fields; f++) {
    int label = f == t->n_fields;
    int column = label ? t->label_column : t->columns[f];
    const char *name = label ? (t->label_field ? t->label_field : "label") : t->fields[f];
    size_t *at = label ? &l->label_column : &l->columns[f];
    if (column >= 0) {
      /* in range of n_columns by lamp_task_check; with n_columns 0 only the header tells */
      if ((size_t)column >= n) {
        lamp__data_msg(ctx, "%s:1: the header has %zu columns, so none is column "
                       "%d (%s %s)", r->path, n, column, label ? "the label" : "field", name);
        return LAMP_ERR_FORMAT;
      }
      *at = (size_t)column;
      continue;
    }
    long found = lamp__header_find(names, n, name);
    if (found < 0)
      return lamp__header_missing(r, names, n, label ? "the label" : "a text field", name, ctx);
    *at = (size_t)found;
  }
  return LAMP_OK;
}

static lamp_status lamp__columns_record(lamp_dataset *d, const lamp__layout *l,
                                        const lamp__reader *r, size_t line_no, lamp_context *ctx) {
  const lamp_task *t = d->task;
  const lamp__span *col = r->cols;
  if (r->n_cols != l->n_columns) {
    lamp__data_msg(ctx, "%s:%zu: expected %zu %s columns, found %zu", r->path,
                   line_no, l->n_columns,
                   t->format == LAMP_DATA_CSV ? "comma-separated" : "tab-separated", r->n_cols);
    return LAMP_ERR_FORMAT;
  }
  lamp__span lab = col[l->label_column];
  int32_t label = lamp__label_index(t, lab.s, lab.n);
  if (label < 0) return lamp__bad_label(t, r->path, line_no, lab.s, lab.n, ctx);
  const char *texts[LAMP_DATA_MAX_FIELDS];
  size_t lens[LAMP_DATA_MAX_FIELDS];
  for (size_t f = 0; f < t->n_fields; f++) {
    texts[f] = col[l->columns[f]].s;
    lens[f] = col[l->columns[f]].n;
  }
  if (lamp__dataset_add(d, texts, lens, label, line_no) != LAMP_OK) {
    lamp__data_msg(ctx, "%s:%zu: out of memory", r->path, line_no);
    return LAMP_ERR_OUT_OF_MEMORY;
  }
  return LAMP_OK;
}

/* A number label as text: an integer in decimal, anything else as the shortest %g that reads
 * back exactly, so 1, 1.0 and 1e0 all match the spelling "1" and 0.1 matches "0.1". */
static void lamp__number_text(double v, char *out, size_t size) {
  /* the range test first: casting a double outside long long's range is undefined */
  if (v >= -9007199254740992.0 && v <= 9007199254740992.0 && v == (double)(long long)v) {
    snprintf(out, size, "%lld", (long long)v);
    return;
  }
  for (int digits = 1; digits <= 17; digits++) {
    snprintf(out, size, "%.*g", digits, v);
    if (strtod(out, NULL) == v) return;
  }
}

static lamp_status lamp__jsonl_line(lamp_dataset *d, const char *path, size_t line_no,
                                    const char *line, size_t n, lamp_context *ctx) {
  const lamp_task *t = d->task;
  lamp__json *doc = NULL;
  char why[256];
  lamp_status st = lamp__json_parse(line, n, &doc, why, sizeof(why));
  if (st != LAMP_OK) {
    lamp__data_msg(ctx, "%s:%zu: %s", path, line_no, why);
    return st;
  }
  if (lamp__json_kind_of(doc, 0) != LAMP__JSON_OBJECT) {
    lamp__data_msg(ctx, "%s:%zu: expected a JSON object", path, line_no);
    st = LAMP_ERR_FORMAT;
    goto done;
  }
  const char *texts[LAMP_DATA_MAX_FIELDS];
  size_t lens[LAMP_DATA_MAX_FIELDS];
  for (size_t f = 0; f < t->n_fields; f++) {
    size_t node = lamp__json_get(doc, 0, t->fields[f]);
    texts[f] = lamp__json_string(doc, node, &lens[f]);
    if (!texts[f]) {
      lamp__data_msg(ctx, "%s:%zu: \"%s\" is %s, expected a string", path,
                     line_no, t->fields[f], node == LAMP__JSON_NONE ? "missing" : "not a string");
      st = LAMP_ERR_FORMAT;
      goto done;
    }
  }
  const char *key = t->label_field ? t->label_field : "label";
  size_t node = lamp__json_get(doc, 0, key);
  char num[40];
  const char *ls = NULL;
  size_t ln = 0;
  switch (lamp__json_kind_of(doc, node)) {
    case LAMP__JSON_STRING: ls = lamp__json_string(doc, node, &ln); break;
    case LAMP__JSON_BOOL: ls = lamp__json_bool(doc, node) ? "true" : "false"; break;
    case LAMP__JSON_NUMBER:
      lamp__number_text(lamp__json_number(doc, node), num, sizeof(num));
      ls = num;
      break;
    default: break;
  }
  if (!ls) {
    lamp__data_msg(ctx, "%s:%zu: \"%s\" is %s, expected a string, number or "
                   "boolean", path, line_no, key,
                   node == LAMP__JSON_NONE ? "missing" : "of another kind");
    st = LAMP_ERR_FORMAT;
    goto done;
  }
  if (!ln) ln = strlen(ls);
  int32_t label = lamp__label_index(t, ls, ln);
  if (label < 0) {
    st = lamp__bad_label(t, path, line_no, ls, ln, ctx);
    goto done;
  }
  if (lamp__dataset_add(d, texts, lens, label, line_no) != LAMP_OK) {
    lamp__data_msg(ctx, "%s:%zu: out of memory", path, line_no);
    st = LAMP_ERR_OUT_OF_MEMORY;
  }
done:
  lamp__json_free(doc);
  return st;
}

static lamp_status lamp__slurp(const char *path, char **text, size_t *size, lamp_context *ctx) {
  *text = NULL;
  *size = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    lamp__data_msg(ctx, "cannot open %s: %s", path, strerror(errno));
    return LAMP_ERR_IO;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    if (n + 1 >= cap) {
      char *b = realloc(buf, cap * 2);
      if (!b) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = b;
      cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - 1 - n, f);
    n += got;
    if (got == 0) break;
  }
  int failed = ferror(f);
  fclose(f);
  if (!buf) {
    lamp__data_msg(ctx, "out of memory reading %s", path);
    return LAMP_ERR_OUT_OF_MEMORY;
  }
  if (failed) {
    free(buf);
    lamp__data_msg(ctx, "cannot read %s", path);
    return LAMP_ERR_IO;
  }
  buf[n] = '\0';
  *text = buf;
  *size = n;
  return LAMP_OK;
}

lamp_status lamp_dataset_load(lamp_context *ctx, const lamp_task *task, const char *path,
                              lamp_dataset **out) {
  if (!task || !path || !out) {
    lamp__data_msg(ctx, "lamp_dataset_load: NULL argument");
    return LAMP_ERR_INVALID_ARGUMENT;
  }
  *out = NULL;
  /* every later step relies on the description's bounds (fields, labels, columns) */
  lamp_status st = lamp_task_check(ctx, task);
  if (st != LAMP_OK) return st;
  char *text = NULL;
  size_t size = 0;
  st = lamp__slurp(path, &text, &size, ctx);
  if (st != LAMP_OK) return st;
  lamp_dataset *d = calloc(1, sizeof(*d));
  if (!d) {
    free(text);
    lamp__data_msg(ctx, "out of memory loading %s", path);
    return LAMP_ERR_OUT_OF_MEMORY;
  }
  d->task = task;
  int by_columns = lamp__by_columns(task->format), csv = task->format == LAMP_DATA_CSV;
  /* the header is only read when it names something; otherwise it is skipped, as before */
  int named = by_columns && task->header && (!task->n_columns || task->label_column == -1);
  lamp__layout layout = {task->n_columns, {0}, (size_t)task->label_column};
  for (size_t f = 0; f < task->n_fields; f++) {
    named |= by_columns && task->header && task->columns[f] == -1;
    layout.columns[f] = (size_t)task->columns[f];
  }
  lamp__reader r = {path, text, size, 0, 1, NULL, 0, 0};
  if (size >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) r.pos = 3;
  while (r.pos < r.size && st == LAMP_OK) {
    size_t line_no = r.line;
    char *line = r.text + r.pos;
    const char *nl = memchr(line, '\n', r.size - r.pos);
    size_t n = nl ? (size_t)(nl - line) : r.size - r.pos, len = n;
    if (len && line[len - 1] == '\r') len--;
    int header = by_columns && task->header && line_no == 1;
    size_t blank = 0;
    while (blank < len && isspace((unsigned char)line[blank])) blank++;
    /* a CSV record may run over lines, so lamp__csv_record moves past it; the other records
     * are lines */
    if (!csv || (blank == len && !header)) {
      r.pos += n + (nl != NULL);
      r.line++;
    }
    if (blank == len && !header) continue;
    if (csv) {
      /* a CSV header is read even when unused, as a quoted name may hold a newline */
      st = lamp__csv_record(&r, line_no, ctx);
    } else if (header && !named) {
      continue;
    } else if (memchr(line, '\0', len)) {
      lamp__data_msg(ctx, "%s:%zu: the line holds a NUL byte", path, line_no);
      st = LAMP_ERR_FORMAT;
    } else if (!by_columns) {
      st = lamp__jsonl_line(d, path, line_no, line, len, ctx);
      continue;
    } else if (lamp__tsv_split(&r, line, len) != LAMP_OK) {
      lamp__data_msg(ctx, "%s:%zu: out of memory", path, line_no);
      st = LAMP_ERR_OUT_OF_MEMORY;
    }
    if (st != LAMP_OK) break;
    if (header) {
      if (named) st = lamp__layout_from_header(task, &r, &layout, ctx);
      continue;
    }
    st = lamp__columns_record(d, &layout, &r, line_no, ctx);
  }
  free(r.cols);
  free(text);
  if (st == LAMP_OK && d->n == 0) {
    lamp__data_msg(ctx, "%s: no examples", path);
    st = LAMP_ERR_FORMAT;
  }
  if (st != LAMP_OK) {
    lamp_dataset_release(d);
    return st;
  }
  *out = d;
  return LAMP_OK;
}

/* ---- templates ---------------------------------------------------------------------------- */

/* Walks the template, copying literal text and (with an example) each field's text into `out`
 * while there is room, and counting the bytes needed. */
static lamp_status lamp__template_walk(const lamp_task *task, const char *tmpl,
                                       const lamp_example *ex, char *out, size_t capacity,
                                       size_t *length, lamp_context *ctx) {
  size_t n = 0;
#define LAMP__EMIT(src, len)                                              \
  do {                                                                    \
    size_t l_ = (len);                                                    \
    if (out && n + l_ <= capacity) memcpy(out + n, (src), l_);            \
    n += l_;                                                              \
  } while (0)
  for (const char *p = tmpl; *p;) {
    if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
      LAMP__EMIT(p, 1);
      p += 2;
    } else if (*p == '{') {
      const char *close = strchr(p, '}');
      if (!close) {
        lamp__data_msg(ctx, "template: '{' at byte %zu is not closed",
                       (size_t)(p - tmpl));
        return LAMP_ERR_INVALID_ARGUMENT;
      }
      size_t len = (size_t)(close - p - 1);
      size_t f = 0;
      while (f < task->n_fields &&
             !(strlen(task->fields[f]) == len && !memcmp(task->fields[f], p + 1, len)))
        f++;
      if (f == task->n_fields) {
        char list[128] = "";
        for (size_t i = 0; i < task->n_fields; i++) {
          strncat(list, "{", sizeof(list) - strlen(list) - 1);
          strncat(list, task->fields[i], sizeof(list) - strlen(list) - 1);
          strncat(list, i + 1 < task->n_fields ? "}, " : "}", sizeof(list) - strlen(list) - 1);
        }
        lamp__data_msg(ctx, "template: unknown placeholder {%.*s} at byte %zu; "
                       "%s has %s", (int)(len > 40 ? 40 : len), p + 1, (size_t)(p - tmpl),
                       task->name, list);
        return LAMP_ERR_INVALID_ARGUMENT;
      }
      if (ex) LAMP__EMIT(ex->fields[f], strlen(ex->fields[f]));
      p = close + 1;
    } else if (*p == '}') {
      lamp__data_msg(ctx, "template: lone '}' at byte %zu (write '}}')",
                     (size_t)(p - tmpl));
      return LAMP_ERR_INVALID_ARGUMENT;
    } else {
      LAMP__EMIT(p, 1);
      p++;
    }
  }
#undef LAMP__EMIT
  if (length) *length = n;
  if (out) {
    if (n >= capacity) {
      if (n == capacity) return LAMP_OK; /* fits without the NUL */
      lamp__data_msg(ctx, "template: the text needs %zu bytes, %zu given", n,
                     capacity);
      return LAMP_ERR_INVALID_ARGUMENT;
    }
    out[n] = '\0';
  }
  return LAMP_OK;
}

lamp_status lamp_template_check(lamp_context *ctx, const lamp_task *task,
                                const char *template_text) {
  if (!task || !template_text) {
    lamp__data_msg(ctx, "lamp_template_check: NULL argument");
    return LAMP_ERR_INVALID_ARGUMENT;
  }
  return lamp__template_walk(task, template_text, NULL, NULL, 0, NULL, ctx);
}

lamp_status lamp_template_render(const lamp_task *task, const char *template_text,
                                 const lamp_example *example, char *out, size_t capacity,
                                 size_t *length) {
  if (!task || !template_text || !example || !length || (!out && capacity))
    return LAMP_ERR_INVALID_ARGUMENT;
  return lamp__template_walk(task, template_text, example, out, capacity, length, NULL);
}

/* ---- epoch orders ------------------------------------------------------------------------- */

#define LAMP__BUCKET_BATCHES 32

static uint64_t lamp__mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/* Fisher-Yates with draws from a counter stream; the modulo bias is below 2^-40 for the sizes
 * lamp sees and does not matter for a shuffle. */
static void lamp__shuffle(size_t *a, size_t n, uint64_t key) {
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)(lamp__mix64(key ^ lamp__mix64(i)) % i);
    size_t t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
  }
}

/* Merge sort of indices by (length, index), stable and deterministic; qsort would need the
 * lengths in a global. */
static void lamp__sort_by_length(size_t *a, size_t n, const size_t *lengths, size_t *tmp) {
  if (n < 2) return;
  size_t h = n / 2;
  lamp__sort_by_length(a, h, lengths, tmp);
  lamp__sort_by_length(a + h, n - h, lengths, tmp);
  size_t i = 0, j = h, k = 0;
  while (i < h && j < n) {
    size_t x = a[i], y = a[j];
    int le = lengths[x] < lengths[y] || (lengths[x] == lengths[y] && x <= y);
    tmp[k++] = le ? a[i++] : a[j++];
  }
  while (i < h) tmp[k++] = a[i++];
  while (j < n) tmp[k++] = a[j++];
  memcpy(a, tmp, n * sizeof(*a));
}

lamp_status lamp_data_epoch_order(const size_t *lengths, size_t n, size_t batch, uint64_t seed,
                                  uint64_t epoch, size_t *order, size_t *starts,
                                  size_t *n_batches) {
  if (!lengths || !order || !starts || !n_batches || !n || !batch)
    return LAMP_ERR_INVALID_ARGUMENT;
  /* all the room first: a failure leaves order and starts untouched */
  size_t most = n / batch + 1;
  size_t *tmp = malloc(n * sizeof(size_t));
  size_t *perm = malloc(most * sizeof(size_t));
  size_t *bs = malloc((most + 1) * sizeof(size_t));
  if (!tmp || !perm || !bs) {
    free(tmp);
    free(perm);
    free(bs);
    return LAMP_ERR_OUT_OF_MEMORY;
  }
  uint64_t key = lamp__mix64(seed ^ lamp__mix64(epoch + 0x1234567ULL));
  for (size_t i = 0; i < n; i++) order[i] = i;
  lamp__shuffle(order, n, key);
  size_t bucket = batch * LAMP__BUCKET_BATCHES, nb = 0;
  for (size_t b0 = 0; b0 < n; b0 += bucket) {
    size_t len = n - b0 < bucket ? n - b0 : bucket;
    lamp__sort_by_length(order + b0, len, lengths, tmp);
    for (size_t s = 0; s < len; s += batch) starts[nb++] = b0 + s;
  }
  /* Shuffle whole batches: copy them out in a shuffled batch order. */
  starts[nb] = n;
  memcpy(bs, starts, (nb + 1) * sizeof(size_t));
  for (size_t b = 0; b < nb; b++) perm[b] = b;
  lamp__shuffle(perm, nb, lamp__mix64(key + 1));
  memcpy(tmp, order, n * sizeof(size_t));
  size_t at = 0;
  for (size_t b = 0; b < nb; b++) {
    size_t from = bs[perm[b]], count = bs[perm[b] + 1] - from;
    starts[b] = at;
    memcpy(order + at, tmp + from, count * sizeof(size_t));
    at += count;
  }
  starts[nb] = n;
  *n_batches = nb;
  free(tmp);
  free(perm);
  free(bs);
  return LAMP_OK;
}
