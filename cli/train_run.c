/* The training engine of the CLI: model and tokenizer from a GGUF file, the verbaliser, tokenized
 * splits, training steps, evaluation, checkpoints and the PEFT export.
 *
 * A training step stays on the device: prompt forward, model forward and backward, prompt
 * backward, global-norm clipping and AdamW are enqueued back to back, and the step's loss and
 * gradient norm come back through reads that do not wait. The checkpoint reads the parameters
 * and AdamW moments back and --resume writes them into a fresh optimiser. */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "train_internal.h"

double tr_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void tr_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "lamp %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static int tr_is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int tr_is_file(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The repository holding the executable (its build folder's parent), or "" when unknown. */
static void tr_exe_repo(char *out, size_t size) {
  char exe[PATH_MAX];
  out[0] = '\0';
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return;
  exe[n] = '\0';
  for (int up = 0; up < 2; up++) {
    char *slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = '\0';
  }
  snprintf(out, size, "%s", exe[0] ? exe : "/");
}

int tr_find_data_dir(const char *cmd, const tr_opts *o, const lamp_task *task, char *out,
                     size_t size) {
  char repo[PATH_MAX], cands[6][PATH_MAX + 32];
  size_t n = 0;
  if (o->data_dir[0]) {
    snprintf(out, size, "%s", o->data_dir);
    char sub[PATH_MAX + 64];
    snprintf(sub, sizeof(sub), "%s/%s", o->data_dir, task->folder);
    if (!tr_is_dir(sub)) {
      tr_error(cmd, "--data-dir %s has no folder %s", o->data_dir, task->folder);
      return 1;
    }
    return 0;
  }
  const char *env = getenv("LAMP_DATA_DIR");
  if (env && env[0]) snprintf(cands[n++], sizeof(cands[0]), "%s", env);
  snprintf(cands[n++], sizeof(cands[0]), "../shared/data");
  snprintf(cands[n++], sizeof(cands[0]), "data");
  tr_exe_repo(repo, sizeof(repo));
  if (repo[0]) {
    snprintf(cands[n++], sizeof(cands[0]), "%s/../shared/data", repo);
    snprintf(cands[n++], sizeof(cands[0]), "%s/data", repo);
  }
  for (size_t i = 0; i < n; i++) {
    char sub[PATH_MAX + 64];
    if (snprintf(sub, sizeof(sub), "%s/%s", cands[i], task->folder) >= (int)sizeof(sub)) continue;
    if (tr_is_dir(sub)) {
      snprintf(out, size, "%s", cands[i]);
      return 0;
    }
  }
  tr_error(cmd, "no data folder with %s/ found: tried %s%s../shared/data, data%s; give "
           "--data-dir or set LAMP_DATA_DIR", task->folder, env && env[0] ? env : "",
           env && env[0] ? ", " : "", repo[0] ? " and the same beside the executable's repository" : "");
  return 1;
}

/* ---- model loading ------------------------------------------------------------------------ */

static int tr_fail(const char *cmd, tr_engine *e, lamp_status st, const char *what) {
  tr_error(cmd, "%s: %s: %s", what, lamp_status_name(st), e->ctx ? lamp_context_error(e->ctx) : "");
  return 1;
}

static int tr_open_model(tr_engine *e, const char *cmd) {
  char err[2048];
  const char *path = e->opts.model;
  char alt[PATH_MAX + 600];
  tr_opts def;
  tr_opts_defaults(&def);
  if (!tr_is_file(path) && !strcmp(path, def.model)) {
    char repo[PATH_MAX];
    tr_exe_repo(repo, sizeof(repo));
    snprintf(alt, sizeof(alt), "%s/%s", repo, path);
    if (repo[0] && tr_is_file(alt)) path = alt;
  }
  if (!tr_is_file(path)) {
    tr_error(cmd, "model file %s not found%s", e->opts.model,
             !strcmp(e->opts.model, def.model) ? " (run scripts/fetch-model.sh)" : "");
    return 1;
  }
  lamp_status st = lamp_gguf_open(e->ctx, path, &e->gguf, err, sizeof(err));
  if (st != LAMP_OK) {
    tr_error(cmd, "%s: %s", path, err);
    return 1;
  }
  if ((st = lamp_model_create_gguf(e->ctx, e->gguf, &e->model)) != LAMP_OK)
    return tr_fail(cmd, e, st, path);
  lamp_model_get_config(e->model, &e->cfg);
  st = lamp_tokenizer_from_gguf(e->ctx, e->gguf, &e->tok, err, sizeof(err));
  if (st != LAMP_OK) {
    tr_error(cmd, "%s: tokenizer: %s", path, err);
    return 1;
  }
  return 0;
}

/* Splits "a|b|c" into the label words. */
static int tr_words(tr_engine *e, const char *cmd) {
  const lamp_task *t = e->task;
  const char *w[LAMP_DATA_MAX_LABELS + 1];
  size_t wl[LAMP_DATA_MAX_LABELS + 1], n = 0;
  if (e->opts.words[0]) {
    const char *p = e->opts.words;
    for (;;) {
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
      w[n] = t->words[n];
      wl[n] = strlen(t->words[n]);
    }
  }
  if (n != t->n_labels) {
    tr_error(cmd, "--words gives %zu label words; %s has %zu classes (", n, t->name, t->n_labels);
    for (size_t k = 0; k < t->n_labels; k++)
      fprintf(stderr, "%s%s", t->labels[k], k + 1 < t->n_labels ? ", " : ")\n");
    return 1;
  }
  e->n_labels = n;
  e->single = 1;
  e->max_word = 0;
  for (size_t k = 0; k < n; k++) {
    if (!wl[k] || wl[k] >= sizeof(e->word_text[k])) {
      tr_error(cmd, "label word %zu is empty or longer than %zu bytes", k + 1,
               sizeof(e->word_text[k]) - 1);
      return 1;
    }
    memcpy(e->word_text[k], w[k], wl[k]);
    e->word_text[k][wl[k]] = '\0';
    size_t count = 0;
    lamp_status st = lamp_tokenizer_encode(e->ctx, e->tok, w[k], wl[k], 0, NULL, 0, &count);
    if (st != LAMP_OK || !count) return tr_fail(cmd, e, st ? st : LAMP_ERR_INVALID_ARGUMENT, "label word");
    e->words[k] = malloc(count * sizeof(int32_t));
    if (!e->words[k]) return 1;
    if ((st = lamp_tokenizer_encode(e->ctx, e->tok, w[k], wl[k], 0, e->words[k], count, &count)))
      return tr_fail(cmd, e, st, "label word");
    e->word_len[k] = count;
    if (count > 1) e->single = 0;
    if (count > e->max_word) e->max_word = count;
  }
  for (size_t a = 0; a < n; a++)
    for (size_t b = a + 1; b < n; b++) {
      size_t la = e->single ? 1 : e->word_len[a], lb = e->single ? 1 : e->word_len[b];
      if (la == lb && !memcmp(e->words[a], e->words[b], la * sizeof(int32_t))) {
        tr_error(cmd, "label words '%s' and '%s' encode to the same tokens", e->word_text[a],
                 e->word_text[b]);
        return 1;
      }
    }
  return 0;
}

int tr_engine_open(tr_engine *e, const char *cmd, const tr_opts *o) {
  memset(e, 0, sizeof(*e));
  e->opts = *o;
  char err[2048];
  if (lamp_task_find(o->task, &e->task, err, sizeof(err)) != LAMP_OK) {
    tr_error(cmd, "%s", err);
    return 1;
  }
  e->template_text = o->template_text[0] ? e->opts.template_text : e->task->template_text;
  if (lamp_template_check(e->task, e->template_text, err, sizeof(err)) != LAMP_OK) {
    tr_error(cmd, "%s", err);
    return 1;
  }
  if (o->max_tokens < 2 || o->max_tokens > 8192 || o->batch < 1 || o->eval_batch < 1) {
    tr_error(cmd, "--max-tokens must be 2..8192, --batch and --eval-batch at least 1");
    return 1;
  }
  lamp_status st = lamp_context_create(NULL, &e->ctx, err, sizeof(err));
  if (st != LAMP_OK) {
    tr_error(cmd, "cannot create a context: %s: %s", lamp_status_name(st), err);
    return 1;
  }
  if (tr_open_model(e, cmd) || tr_words(e, cmd)) return 1;

  int train = !strcmp(cmd, "train");
  if (!o->no_prompt) {
    lamp_prompt_method m;
    if (!strcmp(o->method, "lamp")) m = LAMP_PROMPT_LAMP;
    else if (!strcmp(o->method, "pt")) m = LAMP_PROMPT_PT;
    else if (!strcmp(o->method, "dpt")) m = LAMP_PROMPT_DPT;
    else {
      tr_error(cmd, "--method must be lamp, pt or dpt, not '%s'", o->method);
      return 1;
    }
    lamp_prompt_options po;
    lamp_prompt_options_init(&po, m, e->cfg.n_embd);
    po.length = (size_t)o->length;
    po.rank = m == LAMP_PROMPT_DPT ? (size_t)o->bottleneck : (size_t)o->rank;
    po.bottleneck = (size_t)o->bottleneck;
    if (o->pool) po.pool = (size_t)o->pool;
    po.seed = (uint64_t)o->seed;
    if (!strcmp(o->init, "embedding")) po.init = LAMP_PROMPT_INIT_EMBEDDING;
    else if (!strcmp(o->init, "uniform")) po.init = LAMP_PROMPT_INIT_UNIFORM;
    else if (o->init[0]) {
      tr_error(cmd, "--init must be embedding or uniform, not '%s'", o->init);
      return 1;
    }
    lamp_tensor table;
    lamp_model_embedding(e->model, &table);
    po.embedding = &table;
    /* eval and predict load the parameters from the checkpoint: skip the initialisation */
    if (!train) po.init = LAMP_PROMPT_INIT_NONE;
    if ((st = lamp_prompt_create(e->ctx, &po, &e->prompt)) != LAMP_OK)
      return tr_fail(cmd, e, st, "prompt");
    size_t width;
    lamp_prompt_output_shape(e->prompt, &e->prompt_rows, &width);
    lamp_prompt_param_count(e->prompt, &e->trainable);
    if ((st = lamp_prompt_params(e->prompt, e->params, LAMP_PROMPT_MAX_PARAMS, &e->n_params)))
      return tr_fail(cmd, e, st, "prompt parameters");
    size_t state = 0;
    for (size_t i = 0; i < e->n_params; i++) {
      const lamp_tensor *t = &e->params[i].value;
      e->param_len[i] = lamp_tensor_numel(t);
      e->param_ndim[i] = t->ndim;
      e->param_shape[i][0] = t->ndim == 1 ? t->ne[0] : t->ne[1];
      e->param_shape[i][1] = t->ne[0];
      state += e->param_len[i];
    }
    if (!(e->host_state = malloc(3 * state * sizeof(float)))) {
      tr_error(cmd, "out of host memory");
      return 1;
    }
    if (train) {
      lamp_adamw_options ao;
      lamp_adamw_options_init(&ao);
      ao.lr = (float)o->lr;
      ao.beta1 = (float)o->beta1;
      ao.beta2 = (float)o->beta2;
      ao.eps = (float)o->eps;
      ao.weight_decay = (float)o->weight_decay;
      if ((st = lamp_adamw_create(e->ctx, e->params, e->n_params, &ao, &e->opt)) != LAMP_OK)
        return tr_fail(cmd, e, st, "optimiser");
    }
  }

  /* The workspace serves both training batches and evaluation batches. */
  size_t K = e->n_labels, W = e->single ? 1 : e->max_word;
  size_t eval_seqs = (size_t)o->eval_batch * (e->single ? 1 : K);
  e->ws_batch = eval_seqs;
  e->ws_outputs = eval_seqs * W;
  if (train) {
    if ((size_t)o->batch > e->ws_batch) e->ws_batch = (size_t)o->batch;
    if ((size_t)o->batch * W > e->ws_outputs) e->ws_outputs = (size_t)o->batch * W;
  }
  e->ws_tokens = (size_t)o->max_tokens + W - 1;
  lamp_model_shape shape = {e->ws_batch, e->ws_tokens, e->prompt_rows, e->ws_outputs,
                            e->single ? K : 0, o->recompute};
  if ((st = lamp_model_workspace_create(e->model, &shape, &e->ws)) != LAMP_OK)
    return tr_fail(cmd, e, st, "model workspace");
  if (e->single) {
    int32_t ids[LAMP_DATA_MAX_LABELS];
    for (size_t k = 0; k < K; k++) ids[k] = e->words[k][0];
    if ((st = lamp_model_set_labels(e->ws, K, ids)) != LAMP_OK)
      return tr_fail(cmd, e, st, "verbaliser");
  }
  e->ids = malloc(e->ws_batch * e->ws_tokens * sizeof(int32_t));
  e->lengths = malloc(e->ws_batch * sizeof(size_t));
  e->out_seq = malloc(e->ws_outputs * sizeof(size_t));
  e->out_pos = malloc(e->ws_outputs * sizeof(size_t));
  e->targets = malloc(e->ws_outputs * sizeof(int32_t));
  e->host_out = malloc(e->ws_outputs * (e->single ? K : 1) * sizeof(float));
  e->step_losses[0] = malloc(e->ws_outputs * sizeof(float));
  e->step_losses[1] = malloc(e->ws_outputs * sizeof(float));
  if (!e->ids || !e->lengths || !e->out_seq || !e->out_pos || !e->targets || !e->host_out ||
      !e->step_losses[0] || !e->step_losses[1]) {
    tr_error(cmd, "out of host memory");
    return 1;
  }
  return 0;
}

void tr_engine_close(tr_engine *e) {
  for (size_t k = 0; k < LAMP_DATA_MAX_LABELS; k++) free(e->words[k]);
  if (e->ctx) lamp_context_finish(e->ctx);
  for (size_t slot = 0; slot < 2; slot++) {
    for (size_t r = 0; r < 2; r++)
      if (e->step_events[slot][r]) clReleaseEvent(e->step_events[slot][r]);
    free(e->step_losses[slot]);
  }
  free(e->host_state);
  lamp_adamw_release(e->opt);
  free(e->ids);
  free(e->lengths);
  free(e->out_seq);
  free(e->out_pos);
  free(e->targets);
  free(e->host_out);
  lamp_model_workspace_release(e->ws);
  lamp_prompt_release(e->prompt);
  lamp_model_release(e->model);
  lamp_tokenizer_release(e->tok);
  lamp_gguf_release(e->gguf);
  lamp_context_release(e->ctx);
  memset(e, 0, sizeof(*e));
}

size_t tr_device_bytes(const tr_engine *e) {
  return lamp_model_weight_bytes(e->model) + lamp_model_workspace_bytes(e->ws) +
         (e->opt ? 4 : 2) * sizeof(float) * e->trainable;
}

/* ---- tokenized splits --------------------------------------------------------------------- */

/* Encodes `text`, keeping at most `keep` ids: the end of the text (where the answer cue is), and
 * the BOS id first when asked for. */
static int tr_encode(tr_engine *e, const char *cmd, const char *text, size_t len, tr_item *it) {
  size_t count = 0;
  unsigned flags = e->opts.bos ? LAMP_TOKENIZE_ADD_BOS : 0;
  lamp_status st = lamp_tokenizer_encode(e->ctx, e->tok, text, len, flags, NULL, 0, &count);
  int32_t *ids = st == LAMP_OK ? malloc((count ? count : 1) * sizeof(int32_t)) : NULL;
  if (st == LAMP_OK && !ids) st = LAMP_ERR_OUT_OF_MEMORY;
  if (st == LAMP_OK)
    st = lamp_tokenizer_encode(e->ctx, e->tok, text, len, flags, ids, count, &count);
  if (st != LAMP_OK) {
    free(ids);
    return tr_fail(cmd, e, st, "tokenizer");
  }
  size_t keep = (size_t)e->opts.max_tokens;
  if (count > keep) {
    size_t head = e->opts.bos ? 1 : 0;
    memmove(ids + head, ids + count - (keep - head), (keep - head) * sizeof(int32_t));
    count = keep;
  }
  if (!count) {
    free(ids);
    tr_error(cmd, "an example renders to no tokens");
    return 1;
  }
  it->ids = ids;
  it->n = count;
  return 0;
}

static int tr_render_item(tr_engine *e, const char *cmd, const lamp_example *ex, tr_item *it) {
  size_t len = 0;
  lamp_template_render(e->task, e->template_text, ex, NULL, 0, &len);
  char *text = malloc(len + 1);
  if (!text) return 1;
  lamp_template_render(e->task, e->template_text, ex, text, len + 1, &len);
  int rc = tr_encode(e, cmd, text, len, it);
  free(text);
  it->label = ex->label;
  return rc;
}

int tr_split_load(tr_engine *e, const char *cmd, const char *path, size_t limit, tr_split *s) {
  memset(s, 0, sizeof(*s));
  char err[1024];
  lamp_dataset *d = NULL;
  if (lamp_dataset_load(e->task, path, &d, err, sizeof(err)) != LAMP_OK) {
    tr_error(cmd, "%s", err);
    return 1;
  }
  size_t n = lamp_dataset_size(d);
  if (limit && limit < n) n = limit;
  s->items = calloc(n, sizeof(tr_item));
  int rc = s->items ? 0 : 1;
  for (size_t i = 0; i < n && !rc; i++) {
    rc = tr_render_item(e, cmd, lamp_dataset_example(d, i), &s->items[i]);
    if (!rc) {
      s->n++;
      s->tokens += s->items[i].n;
    }
  }
  lamp_dataset_release(d);
  if (rc) tr_split_free(s);
  return rc;
}

void tr_split_free(tr_split *s) {
  for (size_t i = 0; i < s->n; i++) free(s->items[i].ids);
  free(s->items);
  memset(s, 0, sizeof(*s));
}

int tr_item_from_fields(tr_engine *e, const char *cmd, const char *const *fields, tr_item *it) {
  lamp_example ex;
  memset(&ex, 0, sizeof(ex));
  for (size_t f = 0; f < e->task->n_fields; f++) ex.fields[f] = fields[f];
  memset(it, 0, sizeof(*it));
  return tr_render_item(e, cmd, &ex, it);
}

/* ---- batches ------------------------------------------------------------------------------ */

/* Lays out sequences: for the label head one per item, answer at its last token; for the
 * vocabulary head item + the label word's tokens but the last (`classes` = the gold class only
 * when training, else every class), with outputs where each word token is predicted. */
static int tr_batch(tr_engine *e, const char *cmd, const tr_split *s, const size_t *idx,
                    size_t count, int all_classes, int with_targets, size_t *n_out) {
  size_t K = e->n_labels, n_seq = 0, T = 0, M = 0;
  size_t per = e->single || !all_classes ? 1 : K;
  for (size_t b = 0; b < count; b++) {
    const tr_item *it = &s->items[idx[b]];
    for (size_t c = 0; c < per; c++) {
      size_t k = e->single ? 0 : all_classes ? c : (size_t)it->label;
      size_t extra = e->single ? 0 : e->word_len[k] - 1;
      size_t len = it->n + extra;
      int32_t *row = e->ids + n_seq * e->ws_tokens;
      memcpy(row, it->ids, it->n * sizeof(int32_t));
      if (extra) memcpy(row + it->n, e->words[k], extra * sizeof(int32_t));
      e->lengths[n_seq] = len;
      if (len > T) T = len;
      size_t outs = e->single ? 1 : e->word_len[k];
      for (size_t j = 0; j < outs; j++) {
        e->out_seq[M] = n_seq;
        e->out_pos[M] = it->n - 1 + j;
        e->targets[M] = e->single ? it->label : e->words[k][j];
        M++;
      }
      n_seq++;
    }
  }
  /* compact rows from the workspace stride to T */
  for (size_t q = 1; q < n_seq; q++)
    memmove(e->ids + q * T, e->ids + q * e->ws_tokens, e->lengths[q] * sizeof(int32_t));
  for (size_t q = 0; q < n_seq; q++)
    for (size_t t = e->lengths[q]; t < T; t++) e->ids[q * T + t] = 0;
  double t0 = tr_now();
  lamp_status st = lamp_model_set_tokens(e->ws, n_seq, T, e->ids, e->lengths);
  if (st == LAMP_OK)
    st = lamp_model_set_outputs(e->ws, M, e->out_seq, e->out_pos, with_targets ? e->targets : NULL);
  e->sync_s = tr_now() - t0;
  if (st != LAMP_OK) return tr_fail(cmd, e, st, "batch");
  *n_out = M;
  return 0;
}

static int tr_prompt_in(tr_engine *e, const char *cmd) {
  if (!e->prompt) return 0;
  lamp_tensor pin;
  lamp_status st = lamp_model_prompt(e->ws, &pin);
  if (st == LAMP_OK) st = lamp_prompt_forward(e->prompt, &pin);
  return st == LAMP_OK ? 0 : tr_fail(cmd, e, st, "prompt forward");
}

/* Enqueues a read of `bytes` from `t` into `host` that does not wait; `ev` completes with it. */
static cl_int tr_read_async(tr_engine *e, const lamp_tensor *t, void *host, size_t bytes,
                            cl_event *ev) {
  if (*ev) clReleaseEvent(*ev);
  *ev = NULL;
  return clEnqueueReadBuffer(lamp_context_cl_queue(e->ctx), t->buffer, CL_FALSE, t->offset, bytes,
                             host, 0, NULL, ev);
}

int tr_train_step(tr_engine *e, const char *cmd, const tr_split *s, const size_t *idx,
                  size_t count, float lr_factor) {
  size_t M = 0;
  if (!e->opt) {
    tr_error(cmd, "nothing to train without a prompt");
    return 1;
  }
  if (e->step_pending > 1) {
    tr_error(cmd, "internal: two steps' results are not collected");
    return 1;
  }
  if (tr_batch(e, cmd, s, idx, count, 0, 1, &M) || tr_prompt_in(e, cmd)) return 1;
  lamp_model_head head = e->single ? LAMP_MODEL_HEAD_LABELS : LAMP_MODEL_HEAD_VOCAB;
  lamp_tensor dprompt, losses, norm;
  unsigned slot = e->step_slot ^ 1u;
  lamp_status st = lamp_model_forward(e->ws, head);
  if (st == LAMP_OK) st = lamp_model_backward(e->ws);
  if (st == LAMP_OK) st = lamp_prompt_zero_grad(e->prompt);
  if (st == LAMP_OK) st = lamp_model_prompt_grad(e->ws, &dprompt);
  if (st == LAMP_OK) st = lamp_prompt_backward(e->prompt, &dprompt);
  /* without --clip the norm is still measured for the log; a scale of exactly 1 is skipped */
  if (st == LAMP_OK)
    st = lamp_adamw_clip_grad_norm(e->opt, e->opts.clip > 0 ? (float)e->opts.clip : FLT_MAX);
  if (st == LAMP_OK) st = lamp_adamw_step(e->opt, lr_factor);
  if (st == LAMP_OK) st = lamp_model_losses(e->ws, &losses);
  if (st == LAMP_OK) st = lamp_adamw_grad_norm_tensor(e->opt, &norm);
  if (st != LAMP_OK) return tr_fail(cmd, e, st, "training step");
  cl_int err = tr_read_async(e, &losses, e->step_losses[slot], M * sizeof(float),
                             &e->step_events[slot][0]);
  if (err == CL_SUCCESS)
    err = tr_read_async(e, &norm, &e->step_norm[slot], sizeof(float), &e->step_events[slot][1]);
  /* start the device now rather than at the next blocking call */
  if (err == CL_SUCCESS) err = clFlush(lamp_context_cl_queue(e->ctx));
  if (err != CL_SUCCESS) {
    tr_error(cmd, "training step: reading the loss back: %s", lamp_cl_error_name(err));
    return 1;
  }
  e->step_slot = slot;
  e->step_outputs[slot] = M;
  e->step_pending++;
  return 0;
}

int tr_train_collect(tr_engine *e, const char *cmd, double *loss, double *grad_norm) {
  if (!e->step_pending) {
    tr_error(cmd, "internal: no training step to collect");
    return 1;
  }
  unsigned slot = e->step_pending == 2 ? e->step_slot ^ 1u : e->step_slot;
  e->step_pending--;
  cl_int err = clWaitForEvents(2, e->step_events[slot]);
  if (err != CL_SUCCESS) {
    tr_error(cmd, "reading the training loss: %s", lamp_cl_error_name(err));
    return 1;
  }
  size_t M = e->step_outputs[slot];
  double sum = 0;
  for (size_t m = 0; m < M; m++) sum += e->step_losses[slot][m];
  *loss = sum / (double)M;
  *grad_norm = e->step_norm[slot];
  if (!isfinite(*loss)) {
    tr_error(cmd, "the training loss is not finite (%g); lower --lr", *loss);
    return 1;
  }
  return 0;
}

/* ---- evaluation --------------------------------------------------------------------------- */

static void tr_metrics(const tr_engine *e, const int32_t *gold, const int32_t *pred, size_t n,
                       tr_eval *out) {
  size_t K = e->n_labels, conf[LAMP_DATA_MAX_LABELS][LAMP_DATA_MAX_LABELS];
  memset(conf, 0, sizeof(conf));
  size_t right = 0;
  for (size_t i = 0; i < n; i++) {
    conf[gold[i]][pred[i]]++;
    right += gold[i] == pred[i];
  }
  out->accuracy = n ? (double)right / (double)n : 0;
  out->extra = out->accuracy;
  out->extra_name = "accuracy";
  double f1[LAMP_DATA_MAX_LABELS];
  for (size_t k = 0; k < K; k++) {
    double tp = (double)conf[k][k], fp = 0, fn = 0;
    for (size_t j = 0; j < K; j++)
      if (j != k) {
        fp += (double)conf[j][k];
        fn += (double)conf[k][j];
      }
    f1[k] = tp > 0 ? 2 * tp / (2 * tp + fp + fn) : 0;
  }
  switch (e->task->metric) {
    case LAMP_METRIC_F1:
      out->extra = f1[1];
      out->extra_name = "f1";
      break;
    case LAMP_METRIC_MACRO_F1: {
      double s = 0;
      for (size_t k = 0; k < K; k++) s += f1[k];
      out->extra = s / (double)K;
      out->extra_name = "macro_f1";
      break;
    }
    case LAMP_METRIC_MCC: {
      double tp = (double)conf[1][1], tn = (double)conf[0][0], fp = (double)conf[0][1],
             fn = (double)conf[1][0];
      double den = sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
      out->extra = den > 0 ? (tp * tn - fp * fn) / den : 0;
      out->extra_name = "mcc";
      break;
    }
    default: break;
  }
}

/* Evaluation order: by length, then position, so a batch pads to neighbours' lengths. */
typedef struct tr_by_len {
  size_t len, index;
} tr_by_len;

static int tr_by_len_cmp(const void *a, const void *b) {
  const tr_by_len *x = a, *y = b;
  if (x->len != y->len) return x->len < y->len ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

int tr_evaluate(tr_engine *e, const char *cmd, const tr_split *s, size_t limit, double *scores,
                tr_eval *out) {
  size_t n = limit && limit < s->n ? limit : s->n, K = e->n_labels;
  size_t E = (size_t)e->opts.eval_batch;
  int32_t *gold = malloc((n ? n : 1) * sizeof(int32_t)), *pred = malloc((n ? n : 1) * sizeof(int32_t));
  size_t *idx = malloc(E * sizeof(size_t));
  tr_by_len *order = malloc((n ? n : 1) * sizeof(tr_by_len));
  if (!gold || !pred || !idx || !order) {
    free(gold);
    free(pred);
    free(idx);
    free(order);
    tr_error(cmd, "out of host memory");
    return 1;
  }
  for (size_t i = 0; i < n; i++) order[i] = (tr_by_len){s->items[i].n, i};
  qsort(order, n, sizeof(*order), tr_by_len_cmp);
  int rc = tr_prompt_in(e, cmd);
  double loss_sum = 0;
  lamp_model_head head = e->single ? LAMP_MODEL_HEAD_LABELS : LAMP_MODEL_HEAD_VOCAB;
  for (size_t b0 = 0; b0 < n && !rc; b0 += E) {
    size_t count = n - b0 < E ? n - b0 : E, M = 0;
    for (size_t b = 0; b < count; b++) idx[b] = order[b0 + b].index;
    if ((rc = tr_batch(e, cmd, s, idx, count, 1, 1, &M))) break;
    lamp_tensor t;
    lamp_status st = lamp_model_forward(e->ws, head);
    if (st == LAMP_OK) {
      if (e->single) {
        st = lamp_model_logits(e->ws, &t);
        if (st == LAMP_OK)
          st = lamp_tensor_download(e->ctx, &t, e->host_out, M * K * sizeof(float));
      } else {
        st = lamp_model_losses(e->ws, &t);
        if (st == LAMP_OK) st = lamp_tensor_download(e->ctx, &t, e->host_out, M * sizeof(float));
      }
    }
    if (st != LAMP_OK) {
      rc = tr_fail(cmd, e, st, "evaluation");
      break;
    }
    size_t m = 0;
    for (size_t b = 0; b < count; b++) {
      double sc[LAMP_DATA_MAX_LABELS] = {0};
      for (size_t k = 0; k < K; k++) {
        if (e->single) {
          sc[k] = e->host_out[b * K + k];
        } else {
          /* log-probability of the whole word: minus its tokens' cross-entropies */
          sc[k] = 0;
          for (size_t j = 0; j < e->word_len[k]; j++) sc[k] -= e->host_out[m++];
        }
      }
      size_t best = 0;
      double mx = sc[0];
      for (size_t k = 1; k < K; k++)
        if (sc[k] > mx) {
          mx = sc[k];
          best = k;
        }
      double z = 0;
      for (size_t k = 0; k < K; k++) z += exp(sc[k] - mx);
      const size_t i = idx[b];
      int32_t g = s->items[i].label;
      loss_sum += log(z) + mx - sc[g];
      gold[i] = g;
      pred[i] = (int32_t)best;
      if (scores)
        for (size_t k = 0; k < K; k++) scores[i * K + k] = sc[k];
    }
  }
  if (!rc) {
    out->examples = n;
    out->loss = n ? loss_sum / (double)n : 0;
    tr_metrics(e, gold, pred, n, out);
  }
  free(gold);
  free(pred);
  free(idx);
  free(order);
  return rc;
}

/* ---- checkpoints -------------------------------------------------------------------------- */

#define TR_MAX_META 96

/* What a checkpoint holds per parameter: its value and, when training, its AdamW moments
 * (t[0..2]), with their host copies in e->host_state (host[0..2]). */
static lamp_status tr_state_tensors(tr_engine *e, size_t i, lamp_tensor t[3], float *host[3]) {
  size_t off = 0;
  for (size_t k = 0; k < i; k++) off += 3 * e->param_len[k];
  for (size_t j = 0; j < 3; j++) host[j] = e->host_state + off + j * e->param_len[i];
  t[0] = t[1] = t[2] = e->params[i].value;
  return e->opt ? lamp_adamw_moments(e->opt, i, &t[1], &t[2]) : LAMP_OK;
}

int tr_checkpoint_save(tr_engine *e, const char *cmd, const char *path, uint64_t step,
                       uint64_t epoch, uint64_t batch_in_epoch) {
  uint64_t adam_steps = 0;
  lamp_status st = e->opt ? lamp_adamw_step_count(e->opt, &adam_steps) : LAMP_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < e->n_params && st == LAMP_OK; i++) {
    lamp_tensor t[3];
    float *host[3];
    st = tr_state_tensors(e, i, t, host);
    for (size_t j = 0; j < 3 && st == LAMP_OK; j++)
      st = lamp_tensor_download(e->ctx, &t[j], host[j], e->param_len[i] * sizeof(float));
  }
  if (st != LAMP_OK) return tr_fail(cmd, e, st, "reading the prompt and optimiser state");
  char **rk = NULL, **rv = NULL;
  size_t nr = 0;
  if (tr_opts_serialize(&e->opts, &rk, &rv, &nr)) {
    tr_error(cmd, "out of host memory");
    return 1;
  }
  const char *keys[TR_MAX_META], *values[TR_MAX_META];
  char nums[6][32];
  size_t nm = 0;
  keys[nm] = "lamp.format";
  values[nm++] = "lamp-train-checkpoint";
  snprintf(nums[0], 32, "%llu", (unsigned long long)step);
  snprintf(nums[1], 32, "%llu", (unsigned long long)epoch);
  snprintf(nums[2], 32, "%llu", (unsigned long long)batch_in_epoch);
  snprintf(nums[3], 32, "%llu", (unsigned long long)adam_steps);
  snprintf(nums[4], 32, "%zu", e->prompt_rows);
  snprintf(nums[5], 32, "%zu", e->cfg.n_embd);
  const char *nk[6] = {"train.step", "train.epoch", "train.batch", "train.adam_steps",
                       "prompt.rows", "prompt.width"};
  for (size_t i = 0; i < 6; i++) {
    keys[nm] = nk[i];
    values[nm++] = nums[i];
  }
  for (size_t i = 0; i < nr && nm < TR_MAX_META; i++) {
    keys[nm] = rk[i];
    values[nm++] = rv[i];
  }
  lamp_st_entry ent[3 * LAMP_PROMPT_MAX_PARAMS];
  char names[3 * LAMP_PROMPT_MAX_PARAMS][48];
  size_t ne = 0;
  for (size_t i = 0; i < e->n_params; i++) {
    const char *pre[3] = {"param.", "adam.m.", "adam.v."};
    lamp_tensor t[3];
    float *src[3];
    (void)tr_state_tensors(e, i, t, src); /* succeeded for the downloads above */
    for (size_t j = 0; j < 3; j++) {
      snprintf(names[ne], sizeof(names[ne]), "%s%s", pre[j], e->params[i].name);
      ent[ne].name = names[ne];
      ent[ne].ndim = e->param_ndim[i];
      ent[ne].shape = e->param_ndim[i] == 1 ? &e->param_shape[i][1] : e->param_shape[i];
      ent[ne].data = src[j];
      ne++;
    }
  }
  st = lamp_safetensors_write_f32(e->ctx, path, ent, ne, keys, values, nm);
  for (size_t i = 0; i < nr; i++) {
    free(rk[i]);
    free(rv[i]);
  }
  free(rk);
  free(rv);
  return st == LAMP_OK ? 0 : tr_fail(cmd, e, st, path);
}

static const char *tr_meta_get(void *user, const char *key) {
  return lamp_safetensors_metadata_get(user, key);
}

int tr_checkpoint_options(const char *cmd, const char *path, tr_opts *o) {
  lamp_safetensors *st = NULL;
  lamp_context *none = NULL;
  lamp_status s = lamp_safetensors_open(none, path, &st);
  if (s != LAMP_OK) {
    tr_error(cmd, "cannot read the checkpoint %s: %s", path,
             s == LAMP_ERR_IO ? "missing or unreadable" : lamp_status_name(s));
    return 1;
  }
  const char *fmt = lamp_safetensors_metadata_get(st, "lamp.format");
  int rc = 0;
  if (!fmt || strcmp(fmt, "lamp-train-checkpoint")) {
    tr_error(cmd, "%s is not a lamp training checkpoint (lamp.format is %s)", path,
             fmt ? fmt : "missing");
    rc = 1;
  } else {
    rc = tr_opts_restore(o, tr_meta_get, st);
  }
  lamp_safetensors_release(st);
  return rc;
}

static int tr_meta_u64(lamp_safetensors *st, const char *key, uint64_t *v) {
  const char *s = lamp_safetensors_metadata_get(st, key);
  char *end = NULL;
  if (!s) return 1;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 10);
  if (errno || !end || *end || end == s) return 1;
  *v = x;
  return 0;
}

int tr_checkpoint_load(tr_engine *e, const char *cmd, const char *path, uint64_t *step,
                       uint64_t *epoch, uint64_t *batch_in_epoch) {
  lamp_safetensors *st = NULL;
  lamp_status s = lamp_safetensors_open(e->ctx, path, &st);
  if (s != LAMP_OK) return tr_fail(cmd, e, s, path);
  int rc = 0;
  uint64_t adam = 0, rows = 0;
  if (tr_meta_u64(st, "train.step", step) || tr_meta_u64(st, "train.epoch", epoch) ||
      tr_meta_u64(st, "train.batch", batch_in_epoch) ||
      tr_meta_u64(st, "train.adam_steps", &adam) || tr_meta_u64(st, "prompt.rows", &rows)) {
    tr_error(cmd, "%s: a train.* or prompt.* metadata entry is missing or not a number", path);
    rc = 1;
  } else if (rows != e->prompt_rows) {
    tr_error(cmd, "%s: prompt of %llu rows, this run makes %zu", path, (unsigned long long)rows,
             e->prompt_rows);
    rc = 1;
  }
  for (size_t i = 0; i < e->n_params && !rc; i++) {
    const char *pre[3] = {"param.", "adam.m.", "adam.v."};
    lamp_tensor dev[3];
    float *dst[3];
    if ((s = tr_state_tensors(e, i, dev, dst)) != LAMP_OK) rc = tr_fail(cmd, e, s, path);
    for (size_t j = 0; j < 3 && !rc; j++) {
      char name[48];
      snprintf(name, sizeof(name), "%s%s", pre[j], e->params[i].name);
      const lamp_st_tensor *t = NULL;
      if ((s = lamp_safetensors_find(st, name, &t)) != LAMP_OK) {
        rc = tr_fail(cmd, e, s, path);
      } else if (t->dtype != LAMP_ST_F32 || t->numel != e->param_len[i]) {
        tr_error(cmd, "%s: tensor %s has %llu elements, this prompt needs %zu f32", path, name,
                 (unsigned long long)t->numel, e->param_len[i]);
        rc = 1;
      } else if ((s = lamp_safetensors_read(st, t, dst[j], t->size)) != LAMP_OK) {
        rc = tr_fail(cmd, e, s, path);
      } else if ((j == 0 || e->opt) &&
                 (s = lamp_tensor_upload(e->ctx, &dev[j], dst[j], t->size)) != LAMP_OK) {
        rc = tr_fail(cmd, e, s, "restoring the prompt and optimiser state");
      }
    }
  }
  lamp_safetensors_release(st);
  if (rc) return rc;
  if (e->opt && (s = lamp_adamw_set_step_count(e->opt, adam)) != LAMP_OK)
    return tr_fail(cmd, e, s, path);
  return 0;
}

/* ---- PEFT export -------------------------------------------------------------------------- */

static void tr_json_string(FILE *f, const char *s, size_t n) {
  fputc('"', f);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

int tr_export_peft(tr_engine *e, const char *cmd, const char *dir) {
  if (!e->prompt) return 0;
  size_t rows = e->prompt_rows, C = e->cfg.n_embd;
  float *host = malloc(rows * C * sizeof(float));
  if (!host) return 1;
  lamp_tensor pin;
  lamp_status st = lamp_model_prompt(e->ws, &pin);
  if (st == LAMP_OK) st = lamp_prompt_forward(e->prompt, &pin);
  if (st == LAMP_OK) st = lamp_tensor_download(e->ctx, &pin, host, rows * C * sizeof(float));
  char path[PATH_MAX + 64];
  if (st == LAMP_OK) {
    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    uint64_t shape[2] = {rows, C};
    lamp_st_entry ent = {"prompt_embeddings", 2, shape, host};
    const char *k[1] = {"format"}, *v[1] = {"pt"};
    st = lamp_safetensors_write_f32(e->ctx, path, &ent, 1, k, v, 1);
  }
  free(host);
  if (st != LAMP_OK) return tr_fail(cmd, e, st, "PEFT export");
  const char *base = NULL;
  size_t base_len = 0;
  if (lamp_gguf_get_string(NULL, e->gguf, "general.name", &base, &base_len) != LAMP_OK) {
    base = e->opts.model;
    base_len = strlen(base);
  }
  char tmp[PATH_MAX + 80], final[PATH_MAX + 64];
  snprintf(final, sizeof(final), "%s/adapter_config.json", dir);
  snprintf(tmp, sizeof(tmp), "%s.tmp", final);
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    tr_error(cmd, "cannot write %s: %s", tmp, strerror(errno));
    return 1;
  }
  fputs("{\n  \"peft_type\": \"PROMPT_TUNING\",\n  \"task_type\": \"CAUSAL_LM\",\n", f);
  fputs("  \"base_model_name_or_path\": ", f);
  tr_json_string(f, base, base_len);
  fprintf(f, ",\n  \"num_virtual_tokens\": %zu,\n  \"token_dim\": %zu,\n", rows, C);
  fprintf(f, "  \"num_transformer_submodules\": 1,\n  \"num_attention_heads\": %zu,\n"
             "  \"num_layers\": %zu,\n", e->cfg.n_heads, e->cfg.n_layers);
  fputs("  \"prompt_tuning_init\": \"RANDOM\",\n  \"prompt_tuning_init_text\": null,\n"
        "  \"tokenizer_name_or_path\": null,\n  \"inference_mode\": true,\n"
        "  \"revision\": null\n}\n", f);
  int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, final) != 0) {
    tr_error(cmd, "cannot write %s: %s", final, strerror(errno));
    remove(tmp);
    return 1;
  }
  return 0;
}
