/* lamp_classifier: a task's template and verbaliser over a frozen model; tokenized examples;
 * batches for the model; scoring. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lamp/cache.h"
#include "train/train_internal.h"

/* ---- a task's strings, copied --------------------------------------------------------------- */

static size_t lamp__opt_len(const char *s) { return s ? strlen(s) + 1 : 0; }

static const char *lamp__put(char **p, const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  memcpy(*p, s, n);
  const char *r = *p;
  *p += n;
  return r;
}

lamp_status lamp__task_copy_make(lamp_context *ctx, const lamp_task *src, lamp__task_copy *out) {
  memset(out, 0, sizeof(*out));
  size_t n = lamp__opt_len(src->name) + lamp__opt_len(src->folder) +
             lamp__opt_len(src->train_file) + lamp__opt_len(src->dev_file) +
             lamp__opt_len(src->template_text) + lamp__opt_len(src->label_field) + 1;
  for (size_t f = 0; f < LAMP_DATA_MAX_FIELDS; f++) n += lamp__opt_len(src->fields[f]);
  for (size_t k = 0; k < LAMP_DATA_MAX_LABELS; k++)
    n += lamp__opt_len(src->labels[k]) + lamp__opt_len(src->words[k]);
  if (!(out->text = malloc(n))) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  char *p = out->text;
  out->task = *src;
  lamp_task *t = &out->task;
  t->name = lamp__put(&p, src->name);
  t->folder = lamp__put(&p, src->folder);
  t->train_file = lamp__put(&p, src->train_file);
  t->dev_file = lamp__put(&p, src->dev_file);
  t->template_text = lamp__put(&p, src->template_text);
  t->label_field = lamp__put(&p, src->label_field);
  for (size_t f = 0; f < LAMP_DATA_MAX_FIELDS; f++) t->fields[f] = lamp__put(&p, src->fields[f]);
  for (size_t k = 0; k < LAMP_DATA_MAX_LABELS; k++) {
    t->labels[k] = lamp__put(&p, src->labels[k]);
    t->words[k] = lamp__put(&p, src->words[k]);
  }
  return LAMP_OK;
}

void lamp__task_copy_free(lamp__task_copy *c) {
  free(c->text);
  memset(c, 0, sizeof(*c));
}

/* ---- the classifier ------------------------------------------------------------------------- */

void lamp_classifier_options_init(lamp_classifier_options *o, const lamp_task *task) {
  memset(o, 0, sizeof(*o));
  o->task = task;
  o->max_tokens = 256;
  o->eval_batch = 16;
}

static char *lamp__dup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* Encodes the label words: "a|b|c" or the task's. */
static lamp_status lamp__classifier_words(lamp_classifier *c, const char *words) {
  lamp_context *ctx = c->ctx;
  const lamp_task *t = &c->task.task;
  size_t bytes = 0;
  if (words) bytes = strlen(words);
  else
    for (size_t k = 0; k < t->n_labels; k++) bytes += (t->words[k] ? strlen(t->words[k]) : 0) + 1;
  if (bytes > LAMP__WORDS_MAX)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "classifier: the label words take %zu "
                      "bytes; at most %d", bytes, LAMP__WORDS_MAX);
  const char *w[LAMP_DATA_MAX_LABELS + 1];
  size_t wl[LAMP_DATA_MAX_LABELS + 1], n = 0;
  if (words) {
    for (const char *p = words;;) {
      const char *bar = strchr(p, '|');
      size_t len = bar ? (size_t)(bar - p) : strlen(p);
      if (n <= LAMP_DATA_MAX_LABELS) {
        w[n] = p;
        wl[n] = len;
      }
      n++;
      if (!bar) break;
      p = bar + 1;
    }
  } else {
    for (; n < t->n_labels; n++) {
      if (!t->words[n])
        return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "task %s has no label word for class "
                          "%zu: give the words", t->name, n + 1);
      w[n] = t->words[n];
      wl[n] = strlen(t->words[n]);
    }
  }
  if (n != t->n_labels)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%zu label words given; task %s has %zu "
                      "classes", n, t->name, t->n_labels);
  c->n_labels = n;
  c->single = 1;
  for (size_t k = 0; k < n; k++) {
    if (!wl[k]) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "label word %zu is empty", k + 1);
    if (!(c->word_text[k] = malloc(wl[k] + 1)))
      return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
    memcpy(c->word_text[k], w[k], wl[k]);
    c->word_text[k][wl[k]] = '\0';
    size_t count = 0;
    /* the word follows the prompt: no SentencePiece prefix of its own */
    LAMP__TRY(lamp_tokenizer_encode(ctx, c->llm->tok, w[k], wl[k], LAMP_TOKENIZE_CONTINUE, NULL,
                                    0, &count));
    if (!count)
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "label word '%s' encodes to no tokens",
                        c->word_text[k]);
    if (!(c->words[k] = malloc(count * sizeof(int32_t))))
      return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
    LAMP__TRY(lamp_tokenizer_encode(ctx, c->llm->tok, w[k], wl[k], LAMP_TOKENIZE_CONTINUE,
                                    c->words[k], count, &count));
    c->word_len[k] = count;
    if (count > 1) c->single = 0;
    if (count > c->max_word) c->max_word = count;
  }
  for (size_t a = 0; a < n; a++)
    for (size_t b = a + 1; b < n; b++) {
      size_t la = c->single ? 1 : c->word_len[a], lb = c->single ? 1 : c->word_len[b];
      if (la == lb && !memcmp(c->words[a], c->words[b], la * sizeof(int32_t)))
        return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "label words '%s' and '%s' encode to "
                          "the same tokens", c->word_text[a], c->word_text[b]);
    }
  /* the words as one "a|b" string, for get_options and checkpoints */
  size_t total = 1;
  for (size_t k = 0; k < n; k++) total += strlen(c->word_text[k]) + 1;
  if (!(c->words_text = malloc(total)))
    return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  c->words_text[0] = '\0';
  for (size_t k = 0; k < n; k++) {
    if (k) strcat(c->words_text, "|");
    strcat(c->words_text, c->word_text[k]);
  }
  return LAMP_OK;
}

lamp_status lamp_classifier_create(lamp_llm *llm, const lamp_classifier_options *o,
                                   lamp_classifier **out) {
  if (!llm || !o || !out) return LAMP_ERR_INVALID_ARGUMENT;
  *out = NULL;
  lamp_context *ctx = llm->ctx;
  if (!o->task) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "classifier: no task given");
  if (lamp_task_check(ctx, o->task) != LAMP_OK) return LAMP_ERR_INVALID_ARGUMENT;
  if (o->max_tokens < 2 || o->max_tokens > 8192 || o->eval_batch < 1)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "classifier: max_tokens must be 2..8192 "
                      "(%zu given) and eval_batch at least 1", o->max_tokens);
  lamp_classifier *c = calloc(1, sizeof(*c));
  if (!c) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  c->llm = llm;
  llm->classifiers++; /* lamp_classifier_release counts it off, on any path */
  c->ctx = ctx;
  c->max_tokens = o->max_tokens;
  c->eval_batch = o->eval_batch;
  c->bos = o->bos;
  c->no_prompt_cache = o->no_prompt_cache;
  lamp_status st = lamp__task_copy_make(ctx, o->task, &c->task);
  const char *tmpl = o->template_text ? o->template_text : o->task->template_text;
  if (st == LAMP_OK && !tmpl)
    st = lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "task %s has no template: give one",
                    o->task->name);
  if (st == LAMP_OK && !(c->template_text = lamp__dup(tmpl)))
    st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  if (st == LAMP_OK && lamp_template_check(ctx, &c->task.task, c->template_text) != LAMP_OK)
    st = LAMP_ERR_INVALID_ARGUMENT;
  if (st == LAMP_OK) st = lamp__classifier_words(c, o->words);
  if (st != LAMP_OK) {
    lamp_classifier_release(c);
    return st;
  }
  *out = c;
  return LAMP_OK;
}

/* The host copies of a batch, sized with the workspace. */
static void lamp__classifier_free_scratch(lamp_classifier *c) {
  free(c->ids);
  free(c->targets);
  free(c->lengths);
  free(c->out_seq);
  free(c->out_pos);
  free(c->host_out);
  c->ids = c->targets = NULL;
  c->lengths = c->out_seq = c->out_pos = NULL;
  c->host_out = NULL;
}

void lamp_classifier_release(lamp_classifier *c) {
  if (!c) return;
  c->llm->classifiers--;
  lamp_model_workspace_release(c->ws);
  for (size_t k = 0; k < LAMP_DATA_MAX_LABELS; k++) {
    free(c->words[k]);
    free(c->word_text[k]);
  }
  lamp__classifier_free_scratch(c);
  free(c->template_text);
  free(c->words_text);
  lamp__task_copy_free(&c->task);
  free(c);
}

lamp_status lamp_classifier_get_options(const lamp_classifier *c, lamp_classifier_options *o) {
  if (!c || !o) return LAMP_ERR_INVALID_ARGUMENT;
  o->task = &c->task.task;
  o->template_text = c->template_text;
  o->words = c->words_text;
  o->max_tokens = c->max_tokens;
  o->bos = c->bos;
  o->eval_batch = c->eval_batch;
  o->no_prompt_cache = c->no_prompt_cache;
  return LAMP_OK;
}

size_t lamp_classifier_label_count(const lamp_classifier *c) { return c ? c->n_labels : 0; }

const char *lamp_classifier_word(const lamp_classifier *c, size_t k, size_t *tokens) {
  if (!c || k >= c->n_labels) return NULL;
  if (tokens) *tokens = c->word_len[k];
  return c->word_text[k];
}

lamp_model_head lamp__classifier_head(const lamp_classifier *c) {
  return c->single ? LAMP_MODEL_HEAD_LABELS : LAMP_MODEL_HEAD_VOCAB;
}

/* ---- the workspace -------------------------------------------------------------------------- */

void lamp__classifier_shape(const lamp_classifier *c, size_t prompt_rows, size_t batch,
                            int recompute, lamp_model_shape *shape) {
  size_t K = c->n_labels, W = c->single ? 1 : c->max_word;
  size_t eval_seqs = c->eval_batch * (c->single ? 1 : K);
  size_t need_batch = eval_seqs, need_out = eval_seqs * W, need_tokens = c->max_tokens + W - 1;
  if (batch > need_batch) need_batch = batch;
  if (batch * W > need_out) need_out = batch * W;
  *shape = (lamp_model_shape){need_batch, need_tokens, prompt_rows, need_out, c->single ? K : 0,
                              recompute};
}

lamp_status lamp__classifier_reserve(lamp_classifier *c, size_t prompt_rows, size_t batch,
                                     int recompute) {
  lamp_model_shape shape;
  lamp__classifier_shape(c, prompt_rows, batch, recompute, &shape);
  size_t need_batch = shape.batch, need_out = shape.outputs, need_tokens = shape.tokens;
  const size_t K = c->n_labels;
  if (c->ws && c->ws_prompt == prompt_rows && c->ws_batch >= need_batch &&
      c->ws_outputs >= need_out && c->ws_tokens >= need_tokens && c->ws_recompute == recompute)
    return LAMP_OK;
  if (c->ws) {
    /* a larger shape keeps what the old one served */
    if (c->ws_batch > need_batch) need_batch = c->ws_batch;
    if (c->ws_outputs > need_out) need_out = c->ws_outputs;
  }
  lamp_model_workspace_release(c->ws);
  c->ws = NULL;
  lamp__classifier_free_scratch(c);
  LAMP__TRY(lamp__llm_check(c->llm));
  shape.batch = need_batch;
  shape.outputs = need_out;
  /* the workspace and its scratch are kept only whole, so that a failure here leaves no shape
   * that the next call would trust */
  lamp_model_workspace *ws = NULL;
  LAMP__TRY(lamp_model_workspace_create(c->llm->model, &shape, &ws));
  lamp_status st = LAMP_OK;
  if (c->single) {
    int32_t ids[LAMP_DATA_MAX_LABELS];
    for (size_t k = 0; k < K; k++) ids[k] = c->words[k][0];
    st = lamp_model_set_labels(ws, K, ids);
  }
  c->ids = malloc(need_batch * need_tokens * sizeof(int32_t));
  c->lengths = malloc(need_batch * sizeof(size_t));
  c->out_seq = malloc(need_out * sizeof(size_t));
  c->out_pos = malloc(need_out * sizeof(size_t));
  c->targets = malloc(need_out * sizeof(int32_t));
  c->host_out = malloc(need_out * (c->single ? K : 1) * sizeof(float));
  if (st == LAMP_OK &&
      (!c->ids || !c->lengths || !c->out_seq || !c->out_pos || !c->targets || !c->host_out))
    st = lamp__fail(c->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory for batches of %zu",
                    need_batch);
  if (st != LAMP_OK) {
    lamp_model_workspace_release(ws);
    lamp__classifier_free_scratch(c);
    return st;
  }
  c->ws = ws;
  c->ws_batch = need_batch;
  c->ws_tokens = need_tokens;
  c->ws_outputs = need_out;
  c->ws_prompt = prompt_rows;
  c->ws_recompute = recompute;
  return LAMP_OK;
}

/* ---- examples ------------------------------------------------------------------------------- */

/* Encodes `text`, keeping at most max_tokens ids: the end of the text (where the answer cue is),
 * with the BOS id first when asked for. */
static lamp_status lamp__encode(lamp_classifier *c, const char *text, size_t len, lamp__item *it) {
  size_t count = 0;
  unsigned flags = c->bos ? LAMP_TOKENIZE_ADD_BOS : 0;
  LAMP__TRY(lamp_tokenizer_encode(c->ctx, c->llm->tok, text, len, flags, NULL, 0, &count));
  if (!count) return lamp__fail(c->ctx, LAMP_ERR_INVALID_ARGUMENT, "an example renders to no tokens");
  int32_t *ids = malloc(count * sizeof(int32_t));
  if (!ids) return lamp__fail(c->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  lamp_status st = lamp_tokenizer_encode(c->ctx, c->llm->tok, text, len, flags, ids, count, &count);
  if (st != LAMP_OK) {
    free(ids);
    return st;
  }
  size_t keep = c->max_tokens;
  if (count > keep) {
    size_t head = c->bos ? 1 : 0;
    memmove(ids + head, ids + count - (keep - head), (keep - head) * sizeof(int32_t));
    count = keep;
  }
  it->ids = ids;
  it->n = count;
  return LAMP_OK;
}

/* Counts item n, the one just filled in. */
static void lamp__examples_note(lamp_examples *ex, const lamp__item *it) {
  if (it->n > ex->longest) ex->longest = it->n;
  if (it->label > ex->top_label) ex->top_label = it->label;
  for (size_t i = 0; i < it->n; i++)
    if (it->ids[i] > ex->top_id) ex->top_id = it->ids[i];
  ex->tokens += it->n;
  ex->n++;
}

lamp_status lamp__examples_fit(lamp_classifier *c, const lamp_examples *ex) {
  if (ex->longest > c->max_tokens)
    return lamp__fail(c->ctx, LAMP_ERR_INVALID_ARGUMENT, "examples of up to %zu tokens; this "
                      "classifier takes %zu (they were made by another classifier)", ex->longest,
                      c->max_tokens);
  if (ex->top_label >= (int32_t)c->n_labels)
    return lamp__fail(c->ctx, LAMP_ERR_INVALID_ARGUMENT, "examples with label %d; this "
                      "classifier has %zu classes (they were made by another classifier)",
                      (int)ex->top_label, c->n_labels);
  if (ex->top_id >= 0 && (size_t)ex->top_id >= c->llm->config.n_vocab)
    return lamp__fail(c->ctx, LAMP_ERR_INVALID_ARGUMENT, "examples with token id %d; this "
                      "model's vocabulary has %zu (they were made for another model)",
                      (int)ex->top_id, c->llm->config.n_vocab);
  return LAMP_OK;
}

/* Room for one more item. */
static lamp_status lamp__examples_grow(lamp_classifier *c, lamp_examples *ex) {
  if (ex->n < ex->cap) return LAMP_OK;
  size_t cap = ex->cap ? 2 * ex->cap : 64;
  lamp__item *items = realloc(ex->items, cap * sizeof(*items));
  if (!items) return lamp__fail(c->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  ex->items = items;
  ex->cap = cap;
  return LAMP_OK;
}

static lamp_status lamp__examples_push(lamp_classifier *c, lamp_examples *ex,
                                       const lamp_example *e) {
  LAMP__TRY(lamp__examples_grow(c, ex));
  size_t len = 0;
  lamp_template_render(&c->task.task, c->template_text, e, NULL, 0, &len);
  char *text = malloc(len + 1);
  if (!text) return lamp__fail(c->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  lamp_template_render(&c->task.task, c->template_text, e, text, len + 1, &len);
  lamp__item *it = &ex->items[ex->n];
  lamp_status st = lamp__encode(c, text, len, it);
  free(text);
  if (st != LAMP_OK) return st;
  it->label = e->label;
  lamp__examples_note(ex, it);
  return LAMP_OK;
}

lamp_status lamp_examples_create(lamp_classifier *c, lamp_examples **out) {
  if (!c || !out) return LAMP_ERR_INVALID_ARGUMENT;
  if (!(*out = calloc(1, sizeof(**out))))
    return lamp__fail(c->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  (*out)->top_label = (*out)->top_id = -1;
  return LAMP_OK;
}

lamp_status lamp_examples_load(lamp_classifier *c, const char *path, size_t limit,
                               lamp_examples **out) {
  if (!c || !path || !out) return LAMP_ERR_INVALID_ARGUMENT;
  *out = NULL;
  lamp_dataset *d = NULL;
  lamp_status st = lamp_dataset_load(c->ctx, &c->task.task, path, &d); /* names file:line */
  if (st != LAMP_OK) return st;
  lamp_examples *ex = NULL;
  st = lamp_examples_create(c, &ex);
  size_t n = lamp_dataset_size(d);
  if (limit && limit < n) n = limit;
  for (size_t i = 0; i < n && st == LAMP_OK; i++) {
    const lamp_example *e = lamp_dataset_example(d, i);
    if ((st = lamp__examples_push(c, ex, e)) != LAMP_OK) {
      char detail[1024];
      snprintf(detail, sizeof(detail), "%s", lamp_context_error(c->ctx));
      lamp__fail(c->ctx, st, "%s:%zu: %s", path, e->line, detail);
    }
  }
  lamp_dataset_release(d);
  if (st != LAMP_OK) {
    lamp_examples_release(ex);
    return st;
  }
  *out = ex;
  return LAMP_OK;
}

lamp_status lamp_examples_add(lamp_classifier *c, lamp_examples *ex, const char *const *fields,
                              int32_t label) {
  if (!c || !ex || !fields) return LAMP_ERR_INVALID_ARGUMENT;
  const lamp_task *t = &c->task.task;
  if (label < -1 || label >= (int32_t)t->n_labels)
    return lamp__fail(c->ctx, LAMP_ERR_INVALID_ARGUMENT, "label %d out of range for %zu classes",
                      (int)label, t->n_labels);
  /* the fields as the file loader keeps them: trailing whitespace removed */
  size_t total = 0, len[LAMP_DATA_MAX_FIELDS];
  for (size_t f = 0; f < t->n_fields; f++) {
    if (!fields[f])
      return lamp__fail(c->ctx, LAMP_ERR_INVALID_ARGUMENT, "field %s is missing", t->fields[f]);
    len[f] = strlen(fields[f]);
    while (len[f] && isspace((unsigned char)fields[f][len[f] - 1])) len[f]--;
    total += len[f] + 1;
  }
  char *block = malloc(total ? total : 1);
  if (!block) return lamp__fail(c->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  lamp_example e;
  memset(&e, 0, sizeof(e));
  char *p = block;
  for (size_t f = 0; f < t->n_fields; f++) {
    memcpy(p, fields[f], len[f]);
    p[len[f]] = '\0';
    e.fields[f] = p;
    p += len[f] + 1;
  }
  e.label = label;
  lamp_status st = lamp__examples_push(c, ex, &e);
  free(block);
  return st;
}

lamp_status lamp_examples_add_tokens(lamp_classifier *c, lamp_examples *ex, const int32_t *ids,
                                     size_t count, int32_t label) {
  if (!c || !ex || (!ids && count)) return LAMP_ERR_INVALID_ARGUMENT;
  if (!count) return lamp__fail(c->ctx, LAMP_ERR_INVALID_ARGUMENT, "an example of no tokens");
  if (label < -1 || label >= (int32_t)c->n_labels)
    return lamp__fail(c->ctx, LAMP_ERR_INVALID_ARGUMENT, "label %d out of range for %zu classes",
                      (int)label, c->n_labels);
  for (size_t i = 0; i < count; i++)
    if (ids[i] < 0 || (size_t)ids[i] >= c->llm->config.n_vocab)
      return lamp__fail(c->ctx, LAMP_ERR_INVALID_ARGUMENT, "token %zu is id %d, outside the "
                        "model's %zu-token vocabulary", i, (int)ids[i], c->llm->config.n_vocab);
  LAMP__TRY(lamp__examples_grow(c, ex));
  size_t keep = count > c->max_tokens ? c->max_tokens : count;
  int32_t *copy = malloc(keep * sizeof(int32_t));
  if (!copy) return lamp__fail(c->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  memcpy(copy, ids + (count - keep), keep * sizeof(int32_t));
  ex->items[ex->n] = (lamp__item){copy, keep, label};
  lamp__examples_note(ex, &ex->items[ex->n]);
  return LAMP_OK;
}

size_t lamp_examples_count(const lamp_examples *ex) { return ex ? ex->n : 0; }
size_t lamp_examples_tokens(const lamp_examples *ex) { return ex ? ex->tokens : 0; }

void lamp_examples_release(lamp_examples *ex) {
  if (!ex) return;
  for (size_t i = 0; i < ex->n; i++) free(ex->items[i].ids);
  free(ex->items);
  free(ex);
}

/* ---- batches and scoring -------------------------------------------------------------------- */

lamp_status lamp__classifier_batch(lamp_classifier *c, const lamp_examples *ex,
                                   const size_t *idx, size_t count, int all_classes,
                                   int with_targets, size_t *n_out) {
  size_t K = c->n_labels, n_seq = 0, T = 0, M = 0;
  size_t per = c->single || !all_classes ? 1 : K;
  for (size_t b = 0; b < count; b++) {
    const lamp__item *it = &ex->items[idx[b]];
    for (size_t q = 0; q < per; q++) {
      size_t k = c->single ? 0 : all_classes ? q : (size_t)it->label;
      size_t extra = c->single ? 0 : c->word_len[k] - 1;
      size_t len = it->n + extra;
      int32_t *row = c->ids + n_seq * c->ws_tokens;
      memcpy(row, it->ids, it->n * sizeof(int32_t));
      if (extra) memcpy(row + it->n, c->words[k], extra * sizeof(int32_t));
      c->lengths[n_seq] = len;
      if (len > T) T = len;
      size_t outs = c->single ? 1 : c->word_len[k];
      for (size_t j = 0; j < outs; j++) {
        c->out_seq[M] = n_seq;
        c->out_pos[M] = it->n - 1 + j;
        c->targets[M] = c->single ? it->label : c->words[k][j];
        M++;
      }
      n_seq++;
    }
  }
  /* compact rows from the workspace stride to T */
  for (size_t q = 1; q < n_seq; q++)
    memmove(c->ids + q * T, c->ids + q * c->ws_tokens, c->lengths[q] * sizeof(int32_t));
  for (size_t q = 0; q < n_seq; q++)
    for (size_t t = c->lengths[q]; t < T; t++) c->ids[q * T + t] = 0;
  double t0 = lamp__now_seconds();
  lamp_status st = lamp_model_set_tokens(c->ws, n_seq, T, c->ids, c->lengths);
  if (st == LAMP_OK)
    st = lamp_model_set_outputs(c->ws, M, c->out_seq, c->out_pos, with_targets ? c->targets : NULL);
  c->sync_s = lamp__now_seconds() - t0;
  *n_out = M;
  return st;
}

lamp_status lamp__classifier_prompt_in(lamp_classifier *c, lamp_prompt *prompt) {
  if (!prompt) return LAMP_OK;
  lamp_tensor pin;
  LAMP__TRY(lamp_model_prompt(c->ws, &pin));
  return lamp_prompt_forward(prompt, &pin);
}

/* Scoring order: by length, then position, so a batch pads to neighbours' lengths. */
typedef struct lamp__by_len {
  size_t len, index;
} lamp__by_len;

static int lamp__by_len_cmp(const void *a, const void *b) {
  const lamp__by_len *x = a, *y = b;
  if (x->len != y->len) return x->len < y->len ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* A cache holding the keys and values of the prompt rows in the workspace (filled by
 * lamp__classifier_prompt_in): the prefix of every batch of one evaluation. */
static lamp_status lamp__classifier_prefix(lamp_classifier *c, lamp_model_cache **out) {
  lamp_tensor pin;
  LAMP__TRY(lamp_model_prompt(c->ws, &pin));
  LAMP__TRY(lamp_model_cache_create(c->llm->model, c->ws_prompt, out));
  lamp_status st = lamp_model_cache_append(*out, &pin, NULL, 0, NULL);
  if (st != LAMP_OK) {
    lamp_model_cache_release(*out);
    *out = NULL;
  }
  return st;
}

lamp_status lamp__classifier_evaluate(lamp_classifier *c, lamp_prompt *prompt,
                                      const lamp_examples *ex, size_t limit, double *scores,
                                      int32_t *pred, lamp_metrics *metrics,
                                      const lamp_reducer *red, int prompt_cache) {
  if (!c || !ex) return LAMP_ERR_INVALID_ARGUMENT;
  LAMP__TRY(lamp__examples_fit(c, ex));
  size_t n = limit && limit < ex->n ? limit : ex->n, K = c->n_labels, E = c->eval_batch;
  if (metrics)
    for (size_t i = 0; i < n; i++)
      if (ex->items[i].label < 0)
        return lamp__fail(c->ctx, LAMP_ERR_INVALID_ARGUMENT, "metrics need every label: "
                          "example %zu has none", i + 1);
  size_t rows = 0, width;
  if (prompt) LAMP__TRY(lamp_prompt_output_shape(prompt, &rows, &width));
  if (prompt && width != c->llm->config.n_embd)
    return lamp__fail(c->ctx, LAMP_ERR_SHAPE, "the prompt is %zu wide, the model %zu", width,
                      c->llm->config.n_embd);
  /* keep a training workspace's batch rows when the prompt is the same */
  lamp_status st = lamp__classifier_reserve(c, rows, 0, c->ws && c->ws_prompt == rows ? c->ws_recompute : 0);
  double *sc_all = NULL;
  int32_t *gold = NULL, *best_k = NULL;
  size_t *idx = NULL;
  lamp__by_len *order = NULL;
  if (st == LAMP_OK) {
    sc_all = calloc((n ? n : 1) * K, sizeof(double));
    gold = malloc((n ? n : 1) * sizeof(int32_t));
    best_k = malloc((n ? n : 1) * sizeof(int32_t));
    idx = malloc(E * sizeof(size_t));
    order = malloc((n ? n : 1) * sizeof(lamp__by_len));
    if (!sc_all || !gold || !best_k || !idx || !order)
      st = lamp__fail(c->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  }
  for (size_t i = 0; i < n && st == LAMP_OK; i++) order[i] = (lamp__by_len){ex->items[i].n, i};
  if (st == LAMP_OK) {
    qsort(order, n, sizeof(*order), lamp__by_len_cmp);
    st = lamp__classifier_prompt_in(c, prompt);
  }
  lamp_model_cache *prefix = NULL;
  if (st == LAMP_OK && prompt && prompt_cache) st = lamp__classifier_prefix(c, &prefix);
  const lamp_model_head head = lamp__classifier_head(c);
  /* with ranks, batch b is rank b mod R's: the same batches as one process, shared out */
  size_t ranks = red ? red->size : 1, rank = red ? red->rank : 0;
  for (size_t b0 = 0; b0 < n && st == LAMP_OK; b0 += E) {
    if ((b0 / E) % ranks != rank) continue;
    size_t count = n - b0 < E ? n - b0 : E, M = 0;
    for (size_t b = 0; b < count; b++) idx[b] = order[b0 + b].index;
    lamp_tensor t;
    st = lamp__classifier_batch(c, ex, idx, count, 1, 1, &M);
    if (st == LAMP_OK)
      st = prefix ? lamp_model_forward_prefixed(c->ws, prefix, head)
                  : lamp_model_forward(c->ws, head);
    if (st == LAMP_OK && c->single) {
      st = lamp_model_logits(c->ws, &t);
      if (st == LAMP_OK) st = lamp_tensor_download(c->ctx, &t, c->host_out, M * K * sizeof(float));
    } else if (st == LAMP_OK) {
      st = lamp_model_losses(c->ws, &t);
      if (st == LAMP_OK) st = lamp_tensor_download(c->ctx, &t, c->host_out, M * sizeof(float));
    }
    size_t m = 0;
    for (size_t b = 0; b < count && st == LAMP_OK; b++) {
      double *sc = sc_all + idx[b] * K;
      for (size_t k = 0; k < K; k++) {
        if (c->single) {
          sc[k] = c->host_out[b * K + k];
        } else {
          /* log-probability of the whole word: minus its tokens' cross-entropies */
          for (size_t j = 0; j < c->word_len[k]; j++) sc[k] -= c->host_out[m++];
        }
      }
    }
  }
  if (red) st = lamp__reducer_agree(c->ctx, red, st, "the evaluation");
  if (st == LAMP_OK && red && red->sum(red->user, sc_all, n * K) != 0)
    st = lamp__fail(c->ctx, LAMP_ERR_IO, "rank %zu of %zu: gathering the evaluation failed",
                    rank, ranks);
  double loss_sum = 0;
  for (size_t i = 0; i < n && st == LAMP_OK; i++) {
    const double *sc = sc_all + i * K;
    size_t best = 0;
    for (size_t k = 1; k < K; k++)
      if (sc[k] > sc[best]) best = k;
    double z = 0;
    for (size_t k = 0; k < K; k++) z += exp(sc[k] - sc[best]);
    int32_t g = ex->items[i].label;
    if (g >= 0) loss_sum += log(z) + sc[best] - sc[g];
    gold[i] = g;
    best_k[i] = (int32_t)best;
  }
  if (st == LAMP_OK && scores) memcpy(scores, sc_all, n * K * sizeof(double));
  if (st == LAMP_OK && pred) memcpy(pred, best_k, n * sizeof(int32_t));
  if (st == LAMP_OK && metrics) {
    st = lamp_metrics_compute(K, gold, best_k, n, c->task.task.metric, metrics);
    metrics->loss = n ? loss_sum / (double)n : 0;
  }
  lamp_model_cache_release(prefix);
  free(sc_all);
  free(gold);
  free(best_k);
  free(idx);
  free(order);
  return st;
}

lamp_status lamp_classifier_evaluate(lamp_classifier *c, lamp_prompt *prompt,
                                     const lamp_examples *ex, size_t limit, double *scores,
                                     int32_t *pred, lamp_metrics *metrics) {
  if (!c) return LAMP_ERR_INVALID_ARGUMENT;
  return lamp__classifier_evaluate(c, prompt, ex, limit, scores, pred, metrics, NULL,
                                   !c->no_prompt_cache);
}
