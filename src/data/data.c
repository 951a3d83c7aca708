/* GLUE/SuperGLUE tasks: descriptions, loaders, templates and epoch orders (lamp/data.h). */
#include "lamp/data.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"

/* Templates end where the label word follows, so the answer position is the last token. The
 * label words start with a space because they continue the text. */
static const lamp_task lamp__tasks[] = {
    {"sst2", "SST-2", LAMP_DATA_TSV, "train.tsv", "dev.tsv", 1, 2, 1, {"sentence"}, {0}, 1, 2,
     {"0", "1"}, "Review: {sentence}\nSentiment:", {" negative", " positive"},
     LAMP_METRIC_ACCURACY},
    {"rte", "RTE", LAMP_DATA_TSV, "train.tsv", "dev.tsv", 1, 4, 2, {"sentence1", "sentence2"},
     {1, 2}, 3, 2, {"entailment", "not_entailment"},
     "{sentence1}\nQuestion: {sentence2} Yes or no?\nAnswer:", {" yes", " no"},
     LAMP_METRIC_ACCURACY},
    {"mrpc", "MRPC", LAMP_DATA_TSV, "train.tsv", "dev.tsv", 1, 5, 2, {"sentence1", "sentence2"},
     {3, 4}, 0, 2, {"0", "1"},
     "Sentence 1: {sentence1}\nSentence 2: {sentence2}\nDo both sentences mean the same "
     "thing?\nAnswer:",
     {" no", " yes"}, LAMP_METRIC_F1},
    {"cola", "CoLA", LAMP_DATA_TSV, "train.tsv", "dev.tsv", 0, 4, 1, {"sentence"}, {3}, 1, 2,
     {"0", "1"}, "Sentence: {sentence}\nIs this sentence grammatical?\nAnswer:", {" no", " yes"},
     LAMP_METRIC_MCC},
    {"boolq", "BoolQ", LAMP_DATA_JSONL, NULL, "val.jsonl", 0, 0, 2, {"passage", "question"},
     {0}, 0, 2, {"false", "true"}, "{passage}\nQuestion: {question}?\nAnswer:", {" no", " yes"},
     LAMP_METRIC_ACCURACY},
    {"cb", "CB", LAMP_DATA_JSONL, "train.jsonl", "val.jsonl", 0, 0, 2, {"premise", "hypothesis"},
     {0}, 0, 3, {"entailment", "contradiction", "neutral"},
     "{premise}\nQuestion: {hypothesis} Yes, no, or maybe?\nAnswer:", {" yes", " no", " maybe"},
     LAMP_METRIC_MACRO_F1},
    {"copa", "COPA", LAMP_DATA_JSONL, NULL, "val.jsonl", 0, 0, 4,
     {"premise", "question", "choice1", "choice2"}, {0}, 0, 2, {"0", "1"},
     "{premise} What was the {question}?\nA: {choice1}\nB: {choice2}\nAnswer:", {" A", " B"},
     LAMP_METRIC_ACCURACY},
    {"wic", "WiC", LAMP_DATA_JSONL, NULL, "val.jsonl", 0, 0, 3, {"word", "sentence1", "sentence2"},
     {0}, 0, 2, {"false", "true"},
     "1: {sentence1}\n2: {sentence2}\nIs \"{word}\" used with the same meaning in 1 and 2?\n"
     "Answer:",
     {" no", " yes"}, LAMP_METRIC_ACCURACY},
};

#define LAMP__N_TASKS (sizeof(lamp__tasks) / sizeof(lamp__tasks[0]))

static void lamp__data_msg(char *error, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void lamp__data_msg(char *error, size_t size, const char *fmt, ...) {
  if (!error || !size) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(error, size, fmt, ap);
  va_end(ap);
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

lamp_status lamp_task_find(const char *name, const lamp_task **task, char *error,
                           size_t error_size) {
  if (!name || !task) {
    lamp__data_msg(error, error_size, "lamp_task_find: NULL argument");
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
  lamp__data_msg(error, error_size, "unknown task '%s' (tasks: %s)", name, list);
  return LAMP_ERR_NOT_FOUND;
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
                                   const char *s, size_t n, char *error, size_t error_size) {
  char list[128];
  lamp__label_list(t, list, sizeof(list));
  lamp__data_msg(error, error_size, "%s:%zu: label '%.*s' is not one of %s", path, line,
                 (int)(n > 64 ? 64 : n), s, list);
  return LAMP_ERR_FORMAT;
}

static lamp_status lamp__tsv_line(lamp_dataset *d, const char *path, size_t line_no,
                                  const char *line, size_t n, char *error, size_t error_size) {
  const lamp_task *t = d->task;
  const char *col[16];
  size_t col_len[16], n_cols = 0;
  const char *start = line;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || line[i] == '\t') {
      if (n_cols < 16) {
        col[n_cols] = start;
        col_len[n_cols] = (size_t)(line + i - start);
      }
      n_cols++;
      start = line + i + 1;
    }
  }
  if (n_cols != t->n_columns) {
    lamp__data_msg(error, error_size, "%s:%zu: expected %zu tab-separated columns, found %zu",
                   path, line_no, t->n_columns, n_cols);
    return LAMP_ERR_FORMAT;
  }
  int32_t label = lamp__label_index(t, col[t->label_column], col_len[t->label_column]);
  if (label < 0)
    return lamp__bad_label(t, path, line_no, col[t->label_column], col_len[t->label_column],
                           error, error_size);
  const char *texts[LAMP_DATA_MAX_FIELDS];
  size_t lens[LAMP_DATA_MAX_FIELDS];
  for (size_t f = 0; f < t->n_fields; f++) {
    texts[f] = col[t->columns[f]];
    lens[f] = col_len[t->columns[f]];
  }
  if (lamp__dataset_add(d, texts, lens, label, line_no) != LAMP_OK) {
    lamp__data_msg(error, error_size, "%s:%zu: out of memory", path, line_no);
    return LAMP_ERR_OUT_OF_MEMORY;
  }
  return LAMP_OK;
}

static lamp_status lamp__jsonl_line(lamp_dataset *d, const char *path, size_t line_no,
                                    const char *line, size_t n, char *error, size_t error_size) {
  const lamp_task *t = d->task;
  lamp__json *doc = NULL;
  char why[256];
  lamp_status st = lamp__json_parse(line, n, &doc, why, sizeof(why));
  if (st != LAMP_OK) {
    lamp__data_msg(error, error_size, "%s:%zu: %s", path, line_no, why);
    return st;
  }
  if (lamp__json_kind_of(doc, 0) != LAMP__JSON_OBJECT) {
    lamp__data_msg(error, error_size, "%s:%zu: expected a JSON object", path, line_no);
    st = LAMP_ERR_FORMAT;
    goto done;
  }
  const char *texts[LAMP_DATA_MAX_FIELDS];
  size_t lens[LAMP_DATA_MAX_FIELDS];
  for (size_t f = 0; f < t->n_fields; f++) {
    size_t node = lamp__json_get(doc, 0, t->fields[f]);
    texts[f] = lamp__json_string(doc, node, &lens[f]);
    if (!texts[f]) {
      lamp__data_msg(error, error_size, "%s:%zu: \"%s\" is %s, expected a string", path,
                     line_no, t->fields[f], node == LAMP__JSON_NONE ? "missing" : "not a string");
      st = LAMP_ERR_FORMAT;
      goto done;
    }
  }
  size_t node = lamp__json_get(doc, 0, "label");
  char num[32];
  const char *ls = NULL;
  size_t ln = 0;
  switch (lamp__json_kind_of(doc, node)) {
    case LAMP__JSON_STRING: ls = lamp__json_string(doc, node, &ln); break;
    case LAMP__JSON_BOOL: ls = lamp__json_bool(doc, node) ? "true" : "false"; break;
    case LAMP__JSON_NUMBER: {
      double v = lamp__json_number(doc, node);
      if (v == (double)(long long)v) snprintf(num, sizeof(num), "%lld", (long long)v);
      else snprintf(num, sizeof(num), "%g", v);
      ls = num;
      break;
    }
    default: break;
  }
  if (!ls) {
    lamp__data_msg(error, error_size, "%s:%zu: \"label\" is %s, expected a string, number or "
                   "boolean", path, line_no, node == LAMP__JSON_NONE ? "missing" : "of another kind");
    st = LAMP_ERR_FORMAT;
    goto done;
  }
  if (!ln) ln = strlen(ls);
  int32_t label = lamp__label_index(t, ls, ln);
  if (label < 0) {
    st = lamp__bad_label(t, path, line_no, ls, ln, error, error_size);
    goto done;
  }
  if (lamp__dataset_add(d, texts, lens, label, line_no) != LAMP_OK) {
    lamp__data_msg(error, error_size, "%s:%zu: out of memory", path, line_no);
    st = LAMP_ERR_OUT_OF_MEMORY;
  }
done:
  lamp__json_free(doc);
  return st;
}

static lamp_status lamp__slurp(const char *path, char **text, size_t *size, char *error,
                               size_t error_size) {
  *text = NULL;
  *size = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    lamp__data_msg(error, error_size, "cannot open %s: %s", path, strerror(errno));
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
    lamp__data_msg(error, error_size, "out of memory reading %s", path);
    return LAMP_ERR_OUT_OF_MEMORY;
  }
  if (failed) {
    free(buf);
    lamp__data_msg(error, error_size, "cannot read %s", path);
    return LAMP_ERR_IO;
  }
  buf[n] = '\0';
  *text = buf;
  *size = n;
  return LAMP_OK;
}

lamp_status lamp_dataset_load(const lamp_task *task, const char *path, lamp_dataset **out,
                              char *error, size_t error_size) {
  if (!task || !path || !out) {
    lamp__data_msg(error, error_size, "lamp_dataset_load: NULL argument");
    return LAMP_ERR_INVALID_ARGUMENT;
  }
  *out = NULL;
  char *text = NULL;
  size_t size = 0;
  lamp_status st = lamp__slurp(path, &text, &size, error, error_size);
  if (st != LAMP_OK) return st;
  lamp_dataset *d = calloc(1, sizeof(*d));
  if (!d) {
    free(text);
    lamp__data_msg(error, error_size, "out of memory loading %s", path);
    return LAMP_ERR_OUT_OF_MEMORY;
  }
  d->task = task;
  size_t pos = 0, line_no = 0;
  if (size >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) pos = 3;
  while (pos < size && st == LAMP_OK) {
    const char *nl = memchr(text + pos, '\n', size - pos);
    size_t end = nl ? (size_t)(nl - text) : size, n = end - pos;
    const char *line = text + pos;
    pos = end + 1;
    line_no++;
    if (n && line[n - 1] == '\r') n--;
    if (task->format == LAMP_DATA_TSV && task->header && line_no == 1) continue;
    size_t blank = 0;
    while (blank < n && isspace((unsigned char)line[blank])) blank++;
    if (blank == n) continue;
    if (memchr(line, '\0', n)) {
      lamp__data_msg(error, error_size, "%s:%zu: the line holds a NUL byte", path, line_no);
      st = LAMP_ERR_FORMAT;
      break;
    }
    st = task->format == LAMP_DATA_TSV
             ? lamp__tsv_line(d, path, line_no, line, n, error, error_size)
             : lamp__jsonl_line(d, path, line_no, line, n, error, error_size);
  }
  free(text);
  if (st == LAMP_OK && d->n == 0) {
    lamp__data_msg(error, error_size, "%s: no examples", path);
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
                                       size_t *length, char *error, size_t error_size) {
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
        lamp__data_msg(error, error_size, "template: '{' at byte %zu is not closed",
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
        lamp__data_msg(error, error_size, "template: unknown placeholder {%.*s} at byte %zu; "
                       "%s has %s", (int)(len > 40 ? 40 : len), p + 1, (size_t)(p - tmpl),
                       task->name, list);
        return LAMP_ERR_INVALID_ARGUMENT;
      }
      if (ex) LAMP__EMIT(ex->fields[f], strlen(ex->fields[f]));
      p = close + 1;
    } else if (*p == '}') {
      lamp__data_msg(error, error_size, "template: lone '}' at byte %zu (write '}}')",
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
      lamp__data_msg(error, error_size, "template: the text needs %zu bytes, %zu given", n,
                     capacity);
      return LAMP_ERR_INVALID_ARGUMENT;
    }
    out[n] = '\0';
  }
  return LAMP_OK;
}

lamp_status lamp_template_check(const lamp_task *task, const char *template_text, char *error,
                                size_t error_size) {
  if (!task || !template_text) {
    lamp__data_msg(error, error_size, "lamp_template_check: NULL argument");
    return LAMP_ERR_INVALID_ARGUMENT;
  }
  return lamp__template_walk(task, template_text, NULL, NULL, 0, NULL, error, error_size);
}

lamp_status lamp_template_render(const lamp_task *task, const char *template_text,
                                 const lamp_example *example, char *out, size_t capacity,
                                 size_t *length) {
  if (!task || !template_text || !example || !length || (!out && capacity))
    return LAMP_ERR_INVALID_ARGUMENT;
  return lamp__template_walk(task, template_text, example, out, capacity, length, NULL, 0);
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
  size_t *tmp = malloc(n * sizeof(size_t));
  if (!tmp) return LAMP_ERR_OUT_OF_MEMORY;
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
  size_t *perm = malloc(nb * sizeof(size_t));
  size_t *bs = malloc((nb + 1) * sizeof(size_t));
  if (!perm || !bs) {
    free(tmp);
    free(perm);
    free(bs);
    return LAMP_ERR_OUT_OF_MEMORY;
  }
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
