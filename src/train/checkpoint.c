/* Checkpoints: a prompt's parameters and AdamW moments, the run's position and every option
 * that defines the run, in one safetensors file.
 *
 * Metadata keys are those of the `lamp train` flags ("run.lr", "run.max-tokens", ...), so the
 * files that earlier versions of the tool wrote keep loading: there, an empty run.template,
 * run.words or run.init and a run.pool of 0 mean the task's or the method's default. */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lamp/safetensors.h"
#include "train/trainer_internal.h"

#define LAMP__MAX_META 64

struct lamp_checkpoint {
  lamp_context *ctx;
  lamp_safetensors *st;
  char *path;
  lamp__task_copy task; /* a custom task (task.* keys), else empty */
  char *split;          /* storage for the custom task's '|' lists */
};

/* ---- writing -------------------------------------------------------------------------------- */

typedef struct lamp__meta {
  const char *keys[LAMP__MAX_META];
  char *values[LAMP__MAX_META];
  size_t n;
  int oom;
} lamp__meta;

static void lamp__meta_put(lamp__meta *m, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void lamp__meta_put(lamp__meta *m, const char *key, const char *fmt, ...) {
  if (m->n == LAMP__MAX_META) {
    m->oom = 1;
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *v = len >= 0 ? malloc((size_t)len + 1) : NULL;
  if (!v) {
    m->oom = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(v, (size_t)len + 1, fmt, ap);
  va_end(ap);
  m->keys[m->n] = key;
  m->values[m->n++] = v;
}

static void lamp__meta_free(lamp__meta *m) {
  for (size_t i = 0; i < m->n; i++) free(m->values[i]);
  m->n = 0;
}

/* The shortest text that reads back as the same float ("0.05", not "0.0500000007"). */
static const char *lamp__float_text(float v, char *buf, size_t size) {
  for (int digits = 6; digits <= 9; digits++) {
    snprintf(buf, size, "%.*g", digits, (double)v);
    if (strtof(buf, NULL) == v) break;
  }
  return buf;
}

static const char *lamp__init_name(lamp_prompt_init init) {
  return init == LAMP_PROMPT_INIT_UNIFORM ? "uniform" : init == LAMP_PROMPT_INIT_NONE ? "none"
                                                                                      : "embedding";
}

static const char *lamp__decay_name(lamp_lr_decay d) {
  return d == LAMP_LR_CONSTANT ? "constant" : d == LAMP_LR_COSINE ? "cosine" : "linear";
}

/* "a|b|c" of `n` strings; '|' inside one is refused. */
static int lamp__join(const char *const *s, size_t n, char *out, size_t size) {
  size_t used = 0;
  out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    const char *x = s[i] ? s[i] : "";
    if (strchr(x, '|')) return -1;
    int w = snprintf(out + used, size - used, "%s%s", i ? "|" : "", x);
    if (w < 0 || (size_t)w >= size - used) return -1;
    used += (size_t)w;
  }
  return 0;
}

/* The run options of a classifier and trainer as metadata pairs. */
static lamp_status lamp__meta_run(lamp_context *ctx, const lamp_classifier_options *co,
                                  int builtin, const lamp_trainer_options *to, lamp__meta *m) {
  const lamp_task *t = co->task;
  /* the effective template and words, so that a default and its explicit value compare equal */
  char words[LAMP__WORDS_MAX + 1];
  if (co->words) {
    if (snprintf(words, sizeof(words), "%s", co->words) >= (int)sizeof(words))
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "checkpoint: the label words are longer "
                        "than %zu bytes", sizeof(words) - 1);
  } else if (lamp__join(t->words, t->n_labels, words, sizeof(words)))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "checkpoint: a label word holds '|'");
  lamp__meta_put(m, "run.task", "%s", t->name);
  lamp__meta_put(m, "run.template", "%s", co->template_text ? co->template_text : t->template_text);
  lamp__meta_put(m, "run.words", "%s", words);
  lamp__meta_put(m, "run.max-tokens", "%zu", co->max_tokens);
  lamp__meta_put(m, "run.bos", "%d", co->bos ? 1 : 0);
  const lamp_prompt_options *p = &to->prompt;
  char num[32];
  lamp__meta_put(m, "run.method", "%s", lamp_prompt_method_name(p->method));
  lamp__meta_put(m, "run.length", "%zu", p->length);
  lamp__meta_put(m, "run.rank", "%zu", p->rank);
  lamp__meta_put(m, "run.bottleneck", "%zu", p->bottleneck);
  lamp__meta_put(m, "run.pool", "%zu", p->pool);
  lamp__meta_put(m, "run.init", "%s", lamp__init_name(p->init));
  lamp__meta_put(m, "run.lr", "%s", lamp__float_text(to->adamw.lr, num, sizeof(num)));
  lamp__meta_put(m, "run.warmup", "%llu", (unsigned long long)to->warmup);
  lamp__meta_put(m, "run.schedule", "%s", lamp__decay_name(to->decay));
  lamp__meta_put(m, "run.min-lr", "%s", lamp__float_text(to->min_lr, num, sizeof(num)));
  lamp__meta_put(m, "run.weight-decay", "%s", lamp__float_text(to->adamw.weight_decay, num, sizeof(num)));
  lamp__meta_put(m, "run.beta1", "%s", lamp__float_text(to->adamw.beta1, num, sizeof(num)));
  lamp__meta_put(m, "run.beta2", "%s", lamp__float_text(to->adamw.beta2, num, sizeof(num)));
  lamp__meta_put(m, "run.eps", "%s", lamp__float_text(to->adamw.eps, num, sizeof(num)));
  lamp__meta_put(m, "run.clip", "%s", lamp__float_text(to->clip, num, sizeof(num)));
  lamp__meta_put(m, "run.batch", "%zu", to->batch);
  lamp__meta_put(m, "run.accumulate", "%zu", to->accumulate ? to->accumulate : 1);
  lamp__meta_put(m, "run.ranks", "%zu", to->reducer ? to->reducer->size : 1);
  lamp__meta_put(m, "run.steps", "%llu", (unsigned long long)to->steps);
  lamp__meta_put(m, "run.epochs", "%llu", (unsigned long long)to->epochs);
  lamp__meta_put(m, "run.seed", "%llu", (unsigned long long)p->seed);
  if (!builtin) {
    char buf[2048];
    lamp__meta_put(m, "task.custom", "1");
    lamp__meta_put(m, "task.format", "%s", lamp_data_format_name(t->format));
    lamp__meta_put(m, "task.header", "%d", t->header ? 1 : 0);
    lamp__meta_put(m, "task.columns", "%zu", t->n_columns);
    if (lamp__join(t->fields, t->n_fields, buf, sizeof(buf)))
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "checkpoint: a field name holds '|'");
    lamp__meta_put(m, "task.fields", "%s", buf);
    char cols[LAMP_DATA_MAX_FIELDS * 12 + 1] = ""; /* each "|%d" of an int fits 12 bytes */
    for (size_t f = 0; f < t->n_fields; f++)
      snprintf(cols + strlen(cols), sizeof(cols) - strlen(cols), "%s%d", f ? "|" : "", t->columns[f]);
    lamp__meta_put(m, "task.field-columns", "%s", cols);
    lamp__meta_put(m, "task.label-column", "%d", t->label_column);
    lamp__meta_put(m, "task.label-field", "%s", t->label_field ? t->label_field : "");
    if (lamp__join(t->labels, t->n_labels, buf, sizeof(buf)))
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "checkpoint: a label value holds '|'");
    lamp__meta_put(m, "task.labels", "%s", buf);
    lamp__meta_put(m, "task.metric", "%s", lamp_data_metric_name(t->metric));
  }
  return m->oom ? lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory") : LAMP_OK;
}

static int lamp__same_text(const char *a, const char *b) {
  return a == b || (a && b && !strcmp(a, b));
}

/* A task is saved by name only when it is the built-in one in every part that reads a file or
 * scores it; the same name with anything else is saved whole, as a custom task. */
static int lamp__is_builtin(const lamp_task *t) {
  const lamp_task *b = NULL;
  if (lamp_task_find(NULL, t->name, &b) != LAMP_OK) return 0; /* not an error: a custom task */
  if (strcmp(b->name, t->name) || b->format != t->format || !b->header != !t->header ||
      b->n_columns != t->n_columns || b->n_fields != t->n_fields || b->n_labels != t->n_labels ||
      b->label_column != t->label_column || b->metric != t->metric ||
      !lamp__same_text(b->label_field ? b->label_field : "label",
                       t->label_field ? t->label_field : "label"))
    return 0;
  for (size_t f = 0; f < t->n_fields; f++)
    if (b->columns[f] != t->columns[f] || !lamp__same_text(b->fields[f], t->fields[f])) return 0;
  for (size_t k = 0; k < t->n_labels; k++)
    if (!lamp__same_text(b->labels[k], t->labels[k])) return 0;
  return 1;
}

/* A hash of every example's label and ids, in order. */
static uint64_t lamp__examples_hash(const lamp_examples *ex, uint64_t h) {
  for (size_t i = 0; i < ex->n; i++) {
    h = lamp__hash64(h, &ex->items[i].label, sizeof(ex->items[i].label));
    h = lamp__hash64(h, ex->items[i].ids, ex->items[i].n * sizeof(int32_t));
  }
  return h;
}

/* The training set as a checkpoint records it: the count and the hash. */
static void lamp__examples_identity(const lamp_examples *ex, char *out, size_t size) {
  snprintf(out, size, "%zu %016llx", ex->n,
           (unsigned long long)lamp__examples_hash(ex, LAMP__HASH_SEED));
}

/* Where parameter i's value and moments live on the device and on the host. */
static lamp_status lamp__state_tensors(lamp_trainer *t, size_t i, lamp_tensor dev[3]) {
  dev[0] = dev[1] = dev[2] = t->params[i].value;
  return lamp_adamw_moments(t->opt, i, &dev[1], &dev[2]);
}

lamp_status lamp_trainer_save(lamp_trainer *t, const char *path, const char *const *keys,
                              const char *const *values, size_t count) {
  if (!t || !path || (count && (!keys || !values))) return LAMP_ERR_INVALID_ARGUMENT;
  lamp_context *ctx = t->ctx;
  for (size_t i = 0; i < count; i++)
    if (!strncmp(keys[i], "run.", 4) || !strncmp(keys[i], "task.", 5) ||
        !strncmp(keys[i], "train.", 6) || !strncmp(keys[i], "lamp.", 5))
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "checkpoint: metadata key %s is lamp's own",
                        keys[i]);
  while (t->pending) LAMP__TRY(lamp_trainer_collect(t, NULL));
  uint64_t adam_steps = 0;
  LAMP__TRY(lamp_adamw_step_count(t->opt, &adam_steps));
  size_t total = 0;
  for (size_t i = 0; i < t->n_params; i++) total += 3 * t->param_len[i];
  float *host = malloc(total * sizeof(float));
  if (!host) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "checkpoint: out of host memory");
  lamp_st_entry ent[3 * LAMP_PROMPT_MAX_PARAMS];
  char names[3 * LAMP_PROMPT_MAX_PARAMS][64];
  uint64_t shapes[LAMP_PROMPT_MAX_PARAMS][2];
  size_t ne = 0, off = 0;
  lamp_status st = LAMP_OK;
  for (size_t i = 0; i < t->n_params && st == LAMP_OK; i++) {
    static const char *pre[3] = {"param.", "adam.m.", "adam.v."};
    const lamp_tensor *v = &t->params[i].value;
    shapes[i][0] = v->ndim == 1 ? v->ne[0] : v->ne[1];
    shapes[i][1] = v->ne[0];
    lamp_tensor dev[3];
    st = lamp__state_tensors(t, i, dev);
    for (size_t j = 0; j < 3 && st == LAMP_OK; j++) {
      float *dst = host + off;
      off += t->param_len[i];
      st = lamp_tensor_download(ctx, &dev[j], dst, t->param_len[i] * sizeof(float));
      snprintf(names[ne], sizeof(names[ne]), "%s%s", pre[j], t->params[i].name);
      ent[ne] = (lamp_st_entry){names[ne], v->ndim, v->ndim == 1 ? &shapes[i][1] : shapes[i], dst};
      ne++;
    }
  }
  lamp__meta m = {0};
  lamp_classifier_options co;
  lamp_classifier_get_options(t->cls, &co);
  if (st == LAMP_OK) {
    lamp__meta_put(&m, "lamp.format", "%s", LAMP__CKPT_FORMAT);
    lamp__meta_put(&m, "train.step", "%llu", (unsigned long long)t->step);
    lamp__meta_put(&m, "train.epoch", "%llu", (unsigned long long)t->epoch);
    lamp__meta_put(&m, "train.batch", "%llu", (unsigned long long)t->batch_in_epoch);
    lamp__meta_put(&m, "train.adam_steps", "%llu", (unsigned long long)adam_steps);
    char examples[64];
    lamp__examples_identity(t->train, examples, sizeof(examples));
    lamp__meta_put(&m, "train.examples", "%s", examples);
    lamp__meta_put(&m, "prompt.rows", "%zu", t->prompt_rows);
    lamp__meta_put(&m, "prompt.width", "%zu", t->opts.prompt.width);
    st = lamp__meta_run(ctx, &co, lamp__is_builtin(co.task), &t->opts, &m);
  }
  if (st == LAMP_OK && m.n + count > LAMP__MAX_META)
    st = lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "checkpoint: more than %d metadata entries",
                    LAMP__MAX_META);
  if (st == LAMP_OK) {
    const char *ks[LAMP__MAX_META], *vs[LAMP__MAX_META];
    size_t n = 0;
    for (size_t i = 0; i < m.n; i++, n++) {
      ks[n] = m.keys[i];
      vs[n] = m.values[i];
    }
    for (size_t i = 0; i < count; i++, n++) {
      ks[n] = keys[i];
      vs[n] = values[i];
    }
    st = lamp_safetensors_write_f32(ctx, path, ent, ne, ks, vs, n);
  }
  lamp__meta_free(&m);
  free(host);
  return st;
}

lamp_status lamp_trainer_fingerprint(lamp_trainer *t, uint64_t *out) {
  if (!t || !out) return LAMP_ERR_INVALID_ARGUMENT;
  while (t->pending) LAMP__TRY(lamp_trainer_collect(t, NULL));
  lamp_classifier_options co;
  lamp_classifier_get_options(t->cls, &co);
  lamp__meta m = {0};
  lamp_status st = lamp__meta_run(t->ctx, &co, lamp__is_builtin(co.task), &t->opts, &m);
  uint64_t h = LAMP__HASH_SEED;
  for (size_t i = 0; i < m.n; i++) {
    h = lamp__hash64(h, m.keys[i], strlen(m.keys[i]) + 1);
    h = lamp__hash64(h, m.values[i], strlen(m.values[i]) + 1);
  }
  lamp__meta_free(&m);
  h = lamp__examples_hash(t->train, h);
  for (size_t i = 0; i < t->n_params && st == LAMP_OK; i++) {
    float *v = malloc(t->param_len[i] * sizeof(float));
    st = v ? lamp_tensor_download(t->ctx, &t->params[i].value, v, t->param_len[i] * sizeof(float))
           : lamp__fail(t->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
    if (st == LAMP_OK) h = lamp__hash64(h, v, t->param_len[i] * sizeof(float));
    free(v);
  }
  if (st == LAMP_OK) *out = h;
  return st;
}

/* ---- reading -------------------------------------------------------------------------------- */

lamp_status lamp_checkpoint_open(lamp_context *ctx, const char *path, lamp_checkpoint **out) {
  if (!ctx || !path || !out) return LAMP_ERR_INVALID_ARGUMENT;
  *out = NULL;
  lamp_checkpoint *c = calloc(1, sizeof(*c));
  if (!c || !(c->path = malloc(strlen(path) + 1))) {
    free(c);
    return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  }
  strcpy(c->path, path);
  c->ctx = ctx;
  lamp_status st = lamp_safetensors_open(ctx, path, &c->st);
  if (st == LAMP_OK) {
    const char *fmt = lamp_safetensors_metadata_get(c->st, "lamp.format");
    if (!fmt || strcmp(fmt, LAMP__CKPT_FORMAT))
      st = lamp__fail(ctx, LAMP_ERR_FORMAT, "%s is not a lamp training checkpoint (lamp.format "
                      "is %s)", path, fmt ? fmt : "missing");
  }
  if (st != LAMP_OK) {
    lamp_checkpoint_release(c);
    return st;
  }
  *out = c;
  return LAMP_OK;
}

void lamp_checkpoint_release(lamp_checkpoint *c) {
  if (!c) return;
  lamp_safetensors_release(c->st);
  lamp__task_copy_free(&c->task);
  free(c->split);
  free(c->path);
  free(c);
}

int lamp_checkpoint_checksummed(const lamp_checkpoint *c) {
  return c ? lamp_safetensors_checksummed(c->st) : 0;
}

const char *lamp_checkpoint_get(const lamp_checkpoint *c, const char *key) {
  return c && key ? lamp_safetensors_metadata_get(c->st, key) : NULL;
}

static lamp_status lamp__need(lamp_checkpoint *c, const char *key, const char **v) {
  *v = lamp_checkpoint_get(c, key);
  if (!*v)
    return lamp__fail(c->ctx, LAMP_ERR_FORMAT, "%s: the checkpoint lacks the run option %s",
                      c->path, key);
  return LAMP_OK;
}

static lamp_status lamp__get_u64(lamp_checkpoint *c, const char *key, uint64_t *out) {
  const char *v;
  LAMP__TRY(lamp__need(c, key, &v));
  char *end = NULL;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (errno || end == v || *end || v[0] == '-')
    return lamp__fail(c->ctx, LAMP_ERR_FORMAT, "%s: %s is '%s', not a count", c->path, key, v);
  *out = x;
  return LAMP_OK;
}

static lamp_status lamp__get_size(lamp_checkpoint *c, const char *key, size_t *out) {
  uint64_t v;
  LAMP__TRY(lamp__get_u64(c, key, &v));
  *out = (size_t)v;
  return LAMP_OK;
}

static lamp_status lamp__get_float(lamp_checkpoint *c, const char *key, float *out) {
  const char *v;
  LAMP__TRY(lamp__need(c, key, &v));
  char *end = NULL;
  errno = 0;
  double x = strtod(v, &end);
  if (errno || end == v || *end || !isfinite(x) || fabs(x) > FLT_MAX)
    return lamp__fail(c->ctx, LAMP_ERR_FORMAT, "%s: %s is '%s', not a float", c->path, key, v);
  *out = (float)x;
  return LAMP_OK;
}

/* A column index of a custom task: -1 (found by header name) or 0 and up. */
static lamp_status lamp__column(lamp_checkpoint *c, const char *key, const char *v, int *out) {
  char *end = NULL;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || end == v || *end || x < -1 || x > INT_MAX)
    return lamp__fail(c->ctx, LAMP_ERR_FORMAT, "%s: %s holds '%s', not a column", c->path, key, v);
  *out = (int)x;
  return LAMP_OK;
}

/* Splits "a|b|c" in c->split storage into at most `max` strings. */
static lamp_status lamp__split(lamp_checkpoint *c, const char *key, char *text, const char **out,
                               size_t max, size_t *n) {
  *n = 0;
  for (char *p = text;;) {
    char *bar = strchr(p, '|');
    if (*n == max)
      return lamp__fail(c->ctx, LAMP_ERR_FORMAT, "%s: %s lists more than %zu entries", c->path,
                        key, max);
    out[(*n)++] = p;
    if (!bar) break;
    *bar = '\0';
    p = bar + 1;
  }
  return LAMP_OK;
}

/* A custom task from the task.* keys. */
static lamp_status lamp__custom_task(lamp_checkpoint *c, const char *name, const lamp_task **out) {
  const char *fmt, *fields, *cols, *labels, *metric, *label_field;
  size_t header, n_columns;
  LAMP__TRY(lamp__need(c, "task.format", &fmt));
  LAMP__TRY(lamp__need(c, "task.fields", &fields));
  LAMP__TRY(lamp__need(c, "task.field-columns", &cols));
  LAMP__TRY(lamp__need(c, "task.labels", &labels));
  LAMP__TRY(lamp__need(c, "task.metric", &metric));
  LAMP__TRY(lamp__need(c, "task.label-field", &label_field));
  LAMP__TRY(lamp__get_size(c, "task.header", &header));
  LAMP__TRY(lamp__get_size(c, "task.columns", &n_columns));
  const char *lc;
  LAMP__TRY(lamp__need(c, "task.label-column", &lc));
  size_t total = strlen(fields) + strlen(cols) + strlen(labels) + 3;
  free(c->split);
  if (!(c->split = malloc(total))) return lamp__fail(c->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  char *f_text = c->split, *c_text = f_text + strlen(fields) + 1, *l_text = c_text + strlen(cols) + 1;
  strcpy(f_text, fields);
  strcpy(c_text, cols);
  strcpy(l_text, labels);
  lamp_task t;
  memset(&t, 0, sizeof(t));
  t.name = name;
  t.folder = "";
  t.header = header != 0;
  t.n_columns = n_columns;
  LAMP__TRY(lamp__column(c, "task.label-column", lc, &t.label_column));
  t.label_field = label_field[0] ? label_field : NULL;
  if (lamp_data_format_from_name(fmt, &t.format) != LAMP_OK ||
      lamp_data_metric_from_name(metric, &t.metric) != LAMP_OK)
    return lamp__fail(c->ctx, LAMP_ERR_FORMAT, "%s: task.format '%s' or task.metric '%s' is "
                      "unknown", c->path, fmt, metric);
  const char *col_s[LAMP_DATA_MAX_FIELDS];
  size_t n_cols = 0;
  LAMP__TRY(lamp__split(c, "task.fields", f_text, t.fields, LAMP_DATA_MAX_FIELDS, &t.n_fields));
  LAMP__TRY(lamp__split(c, "task.field-columns", c_text, col_s, LAMP_DATA_MAX_FIELDS, &n_cols));
  LAMP__TRY(lamp__split(c, "task.labels", l_text, t.labels, LAMP_DATA_MAX_LABELS, &t.n_labels));
  if (n_cols != t.n_fields)
    return lamp__fail(c->ctx, LAMP_ERR_FORMAT, "%s: task.field-columns has %zu entries for %zu "
                      "fields", c->path, n_cols, t.n_fields);
  for (size_t f = 0; f < n_cols; f++)
    LAMP__TRY(lamp__column(c, "task.field-columns", col_s[f], &t.columns[f]));
  /* a template is the classifier's; the task only needs one to pass its check */
  const char *tmpl = lamp_checkpoint_get(c, "run.template");
  t.template_text = tmpl;
  lamp__task_copy_free(&c->task);
  LAMP__TRY(lamp__task_copy_make(c->ctx, &t, &c->task));
  *out = &c->task.task;
  return LAMP_OK;
}

lamp_status lamp_checkpoint_classifier_options(lamp_checkpoint *c, lamp_classifier_options *o) {
  if (!c || !o) return LAMP_ERR_INVALID_ARGUMENT;
  const char *task, *tmpl, *words, *custom = lamp_checkpoint_get(c, "task.custom");
  LAMP__TRY(lamp__need(c, "run.task", &task));
  LAMP__TRY(lamp__need(c, "run.template", &tmpl));
  LAMP__TRY(lamp__need(c, "run.words", &words));
  const lamp_task *t = NULL;
  if (custom && !strcmp(custom, "1")) {
    LAMP__TRY(lamp__custom_task(c, task, &t));
  } else {
    if (lamp_task_find(c->ctx, task, &t) != LAMP_OK) {
      char err[1024];
      snprintf(err, sizeof(err), "%s", lamp_context_error(c->ctx));
      return lamp__fail(c->ctx, LAMP_ERR_FORMAT, "%s: run.task: %s", c->path, err);
    }
  }
  lamp_classifier_options_init(o, t);
  o->template_text = tmpl[0] ? tmpl : NULL;
  o->words = words[0] ? words : NULL;
  LAMP__TRY(lamp__get_size(c, "run.max-tokens", &o->max_tokens));
  size_t bos;
  LAMP__TRY(lamp__get_size(c, "run.bos", &bos));
  o->bos = bos != 0;
  return LAMP_OK;
}

lamp_status lamp_checkpoint_trainer_options(lamp_checkpoint *c, const lamp_llm *llm,
                                            lamp_trainer_options *o) {
  if (!c || !llm || !o) return LAMP_ERR_INVALID_ARGUMENT;
  const char *method, *init, *sched;
  LAMP__TRY(lamp__need(c, "run.method", &method));
  lamp_prompt_method m;
  if (!strcasecmp(method, "lamp")) m = LAMP_PROMPT_LAMP;
  else if (!strcasecmp(method, "pt")) m = LAMP_PROMPT_PT;
  else if (!strcasecmp(method, "dpt")) m = LAMP_PROMPT_DPT;
  else
    return lamp__fail(c->ctx, LAMP_ERR_FORMAT, "%s: run.method '%s' is not lamp, pt or dpt: the "
                      "checkpoint is damaged or from a newer lamp", c->path, method);
  lamp_trainer_options_init(o, llm, m);
  lamp_prompt_options *p = &o->prompt;
  size_t pool;
  LAMP__TRY(lamp__get_size(c, "run.length", &p->length));
  LAMP__TRY(lamp__get_size(c, "run.rank", &p->rank));
  LAMP__TRY(lamp__get_size(c, "run.bottleneck", &p->bottleneck));
  LAMP__TRY(lamp__get_size(c, "run.pool", &pool));
  if (pool) p->pool = pool;
  LAMP__TRY(lamp__need(c, "run.init", &init));
  if (!strcmp(init, "embedding")) p->init = LAMP_PROMPT_INIT_EMBEDDING;
  else if (!strcmp(init, "uniform")) p->init = LAMP_PROMPT_INIT_UNIFORM;
  else if (!strcmp(init, "none")) p->init = LAMP_PROMPT_INIT_NONE;
  else if (init[0])
    return lamp__fail(c->ctx, LAMP_ERR_FORMAT, "%s: run.init '%s' is unknown", c->path, init);
  LAMP__TRY(lamp__get_u64(c, "run.seed", &p->seed));
  LAMP__TRY(lamp__get_float(c, "run.lr", &o->adamw.lr));
  LAMP__TRY(lamp__get_u64(c, "run.warmup", &o->warmup));
  LAMP__TRY(lamp__need(c, "run.schedule", &sched));
  if (!strcmp(sched, "constant")) o->decay = LAMP_LR_CONSTANT;
  else if (!strcmp(sched, "linear")) o->decay = LAMP_LR_LINEAR;
  else if (!strcmp(sched, "cosine")) o->decay = LAMP_LR_COSINE;
  else return lamp__fail(c->ctx, LAMP_ERR_FORMAT, "%s: run.schedule '%s' is unknown", c->path, sched);
  LAMP__TRY(lamp__get_float(c, "run.min-lr", &o->min_lr));
  LAMP__TRY(lamp__get_float(c, "run.weight-decay", &o->adamw.weight_decay));
  LAMP__TRY(lamp__get_float(c, "run.beta1", &o->adamw.beta1));
  LAMP__TRY(lamp__get_float(c, "run.beta2", &o->adamw.beta2));
  LAMP__TRY(lamp__get_float(c, "run.eps", &o->adamw.eps));
  LAMP__TRY(lamp__get_float(c, "run.clip", &o->clip));
  LAMP__TRY(lamp__get_size(c, "run.batch", &o->batch));
  /* absent from checkpoints of before accumulation: one micro-batch */
  if (lamp_checkpoint_get(c, "run.accumulate"))
    LAMP__TRY(lamp__get_size(c, "run.accumulate", &o->accumulate));
  LAMP__TRY(lamp__get_u64(c, "run.steps", &o->steps));
  LAMP__TRY(lamp__get_u64(c, "run.epochs", &o->epochs));
  return LAMP_OK;
}

lamp_status lamp_checkpoint_check_options(lamp_checkpoint *c, const lamp_classifier_options *co,
                                          const lamp_trainer_options *to) {
  if (!c || !co || !to) return LAMP_ERR_INVALID_ARGUMENT;
  lamp_classifier_options sc;
  lamp_trainer_options st;
  lamp_llm fake;
  memset(&fake, 0, sizeof(fake));
  fake.config.n_embd = to->prompt.width;
  LAMP__TRY(lamp_checkpoint_classifier_options(c, &sc));
  LAMP__TRY(lamp_checkpoint_trainer_options(c, &fake, &st));
  /* both sides through the same writer, compared key by key */
  lamp__meta a = {0}, b = {0};
  /* the ranks are the run's too: a global batch is batch x accumulate x ranks */
  const char *ranks = lamp_checkpoint_get(c, "run.ranks");
  lamp_reducer stored_ranks = {0, 1, NULL, NULL};
  if (ranks) {
    uint64_t r = 1;
    LAMP__TRY(lamp__get_u64(c, "run.ranks", &r));
    stored_ranks.size = (size_t)r;
  }
  st.reducer = &stored_ranks;
  /* a custom task's layout is compared too (task.* after run.*) */
  lamp_status s = lamp__meta_run(c->ctx, &sc, lamp__is_builtin(sc.task), &st, &a);
  if (s == LAMP_OK) s = lamp__meta_run(c->ctx, co, lamp__is_builtin(co->task), to, &b);
  if (s == LAMP_OK && a.n != b.n)
    s = lamp__fail(c->ctx, LAMP_ERR_INVALID_ARGUMENT, "the task cannot change on resume: the "
                   "checkpoint's %s is %s, the one given %s", sc.task->name,
                   a.n > b.n ? "custom" : "built in", a.n > b.n ? "built in" : "custom");
  for (size_t i = 0; s == LAMP_OK && i < a.n; i++)
    if (strcmp(a.keys[i], b.keys[i]) || strcmp(a.values[i], b.values[i])) {
      const int run = !strncmp(a.keys[i], "run.", 4);
      s = lamp__fail(c->ctx, LAMP_ERR_INVALID_ARGUMENT, "%s %s cannot change on resume "
                     "(checkpoint: '%s', given: '%s')", run ? "run option" : "the task's",
                     a.keys[i] + (run ? 4 : 5), a.values[i], b.values[i]);
    }
  lamp__meta_free(&a);
  lamp__meta_free(&b);
  return s;
}

/* Reads tensor <pre[j]><name>, `numel` f32, into `host`: a missing tensor, another size and a
 * value that is not finite are refused before anything reaches the device. */
static lamp_status lamp__read_param(lamp_checkpoint *c, const char *name, size_t j, size_t numel,
                                    float *host) {
  static const char *pre[3] = {"param.", "adam.m.", "adam.v."};
  char key[80];
  snprintf(key, sizeof(key), "%s%s", pre[j], name);
  const lamp_st_tensor *t = NULL;
  lamp_status st = lamp_safetensors_find(c->st, key, &t);
  if (st != LAMP_OK)
    return lamp__fail(c->ctx, st, "%s: tensor %s is missing", c->path, key);
  if (t->dtype != LAMP_ST_F32 || t->numel != numel)
    return lamp__fail(c->ctx, LAMP_ERR_SHAPE, "%s: tensor %s has %llu elements, this prompt "
                      "needs %zu f32", c->path, key, (unsigned long long)t->numel, numel);
  LAMP__TRY(lamp_safetensors_read(c->st, t, host, t->size));
  for (size_t i = 0; i < numel; i++)
    if (!isfinite(host[i]))
      return lamp__fail(c->ctx, LAMP_ERR_NUMERIC, "%s: tensor %s holds %g at element %zu: the "
                        "checkpoint is damaged", c->path, key, (double)host[i], i);
  return LAMP_OK;
}

static lamp_status lamp__check_rows(lamp_checkpoint *c, size_t rows, size_t width) {
  uint64_t r = 0, w = 0;
  LAMP__TRY(lamp__get_u64(c, "prompt.rows", &r));
  if (r != rows)
    return lamp__fail(c->ctx, LAMP_ERR_SHAPE, "%s: a prompt of %llu rows; these options make %zu",
                      c->path, (unsigned long long)r, rows);
  if (lamp_checkpoint_get(c, "prompt.width")) {
    LAMP__TRY(lamp__get_u64(c, "prompt.width", &w));
    if (w != width)
      return lamp__fail(c->ctx, LAMP_ERR_SHAPE, "%s: a prompt %llu wide; this model is %zu wide",
                        c->path, (unsigned long long)w, width);
  }
  return LAMP_OK;
}

/* Where the checkpoint stands in its run must be a place this trainer's run has: a step within
 * it, a batch within an epoch, and step = epoch x batches + batch (every epoch has the same
 * number of batches). */
static lamp_status lamp__check_position(lamp_checkpoint *c, const lamp_trainer *t, uint64_t step,
                                        uint64_t epoch, uint64_t batch) {
  if (step > t->total)
    return lamp__fail(t->ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: step %llu is past the run's %llu",
                      c->path, (unsigned long long)step, (unsigned long long)t->total);
  if (batch > t->n_batches || batch > step || epoch > (step - batch) / t->n_batches ||
      epoch * t->n_batches + batch != step)
    return lamp__fail(t->ctx, LAMP_ERR_FORMAT, "%s: step %llu is not epoch %llu x %zu batches + "
                      "batch %llu: the checkpoint is damaged or its epochs had other batches",
                      c->path, (unsigned long long)step, (unsigned long long)epoch, t->n_batches,
                      (unsigned long long)batch);
  const char *saved = lamp_checkpoint_get(c, "train.examples");
  if (!saved) return LAMP_OK; /* written before lamp recorded the training set */
  char have[64];
  lamp__examples_identity(t->train, have, sizeof(have));
  if (strcmp(saved, have))
    return lamp__fail(t->ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: the run trained on examples '%s' "
                      "(count, hash), these are '%s': resume needs the same training set",
                      c->path, saved, have);
  return LAMP_OK;
}

lamp_status lamp_trainer_resume(lamp_trainer *t, lamp_checkpoint *c) {
  if (!t || !c) return LAMP_ERR_INVALID_ARGUMENT;
  if (t->pending || t->step)
    return lamp__fail(t->ctx, LAMP_ERR_INVALID_ARGUMENT, "resume: the trainer has already stepped");
  uint64_t step, epoch, batch, adam;
  LAMP__TRY(lamp__get_u64(c, "train.step", &step));
  LAMP__TRY(lamp__get_u64(c, "train.epoch", &epoch));
  LAMP__TRY(lamp__get_u64(c, "train.batch", &batch));
  LAMP__TRY(lamp__get_u64(c, "train.adam_steps", &adam));
  LAMP__TRY(lamp__check_rows(c, t->prompt_rows, t->opts.prompt.width));
  LAMP__TRY(lamp__check_position(c, t, step, epoch, batch));
  if (adam > step) /* one AdamW step per training step at most */
    return lamp__fail(t->ctx, LAMP_ERR_FORMAT, "%s: %llu AdamW steps in %llu training steps: "
                      "the checkpoint is damaged", c->path, (unsigned long long)adam,
                      (unsigned long long)step);
  /* every tensor is read and checked before the first upload, so a refused checkpoint leaves
   * the trainer as it was */
  size_t total = 0;
  for (size_t i = 0; i < t->n_params; i++) total += 3 * t->param_len[i];
  float *host = malloc((total ? total : 1) * sizeof(float));
  if (!host) return lamp__fail(t->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  lamp_status st = LAMP_OK;
  size_t off = 0;
  for (size_t i = 0; i < t->n_params && st == LAMP_OK; i++)
    for (size_t j = 0; j < 3 && st == LAMP_OK; j++, off += t->param_len[i])
      st = lamp__read_param(c, t->params[i].name, j, t->param_len[i], host + off);
  off = 0;
  for (size_t i = 0; i < t->n_params && st == LAMP_OK; i++) {
    lamp_tensor dev[3];
    st = lamp__state_tensors(t, i, dev);
    for (size_t j = 0; j < 3 && st == LAMP_OK; j++, off += t->param_len[i])
      st = lamp_tensor_upload(t->ctx, &dev[j], host + off, t->param_len[i] * sizeof(float));
  }
  free(host);
  LAMP__TRY(st);
  LAMP__TRY(lamp_adamw_set_step_count(t->opt, adam));
  t->step = step;
  t->epoch = epoch;
  t->batch_in_epoch = batch;
  if (epoch != t->order_epoch) t->order_epoch = (uint64_t)-1; /* the next step orders the epoch */
  return LAMP_OK;
}

lamp_status lamp_checkpoint_prompt(lamp_checkpoint *c, const lamp_llm *llm, lamp_prompt **out) {
  if (!c || !llm || !out) return LAMP_ERR_INVALID_ARGUMENT;
  *out = NULL;
  lamp_trainer_options to;
  LAMP__TRY(lamp_checkpoint_trainer_options(c, llm, &to));
  to.prompt.init = LAMP_PROMPT_INIT_NONE;
  to.prompt.width = llm->config.n_embd;
  lamp_prompt *p = NULL;
  LAMP__TRY(lamp_prompt_create(c->ctx, &to.prompt, &p));
  size_t rows, width, n = 0;
  lamp_param params[LAMP_PROMPT_MAX_PARAMS];
  lamp_status st = lamp_prompt_output_shape(p, &rows, &width);
  if (st == LAMP_OK) st = lamp__check_rows(c, rows, width);
  if (st == LAMP_OK) st = lamp_prompt_params(p, params, LAMP_PROMPT_MAX_PARAMS, &n);
  for (size_t i = 0; i < n && st == LAMP_OK; i++) {
    size_t len = lamp_tensor_numel(&params[i].value);
    float *host = malloc(len * sizeof(float));
    st = host ? lamp__read_param(c, params[i].name, 0, len, host)
              : lamp__fail(c->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
    if (st == LAMP_OK) st = lamp_tensor_upload(c->ctx, &params[i].value, host, len * sizeof(float));
    free(host);
  }
  if (st != LAMP_OK) {
    lamp_prompt_release(p);
    return st;
  }
  *out = p;
  return LAMP_OK;
}
