/* lamp_trainer: a prompt, its AdamW state and the epoch order of a training set; steps that
 * stay on the device, collected later; the whole run with evaluations and checkpoints.
 *
 * A step enqueues prompt forward, model forward and backward, prompt backward, global-norm
 * clipping and AdamW back to back, then reads of its loss and gradient norm that do not wait,
 * so the host prepares step n + 1 while the device runs step n. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/trainer_internal.h"

void lamp_trainer_options_init(lamp_trainer_options *o, const lamp_llm *llm,
                               lamp_prompt_method method) {
  memset(o, 0, sizeof(*o));
  lamp_prompt_options_init(&o->prompt, method, llm ? llm->config.n_embd : 0);
  lamp_adamw_options_init(&o->adamw);
  o->adamw.lr = 0.03f;
  o->adamw.weight_decay = 1e-5f;
  o->decay = LAMP_LR_LINEAR;
  o->clip = 1.0f;
  o->batch = 8;
  o->accumulate = 1;
  o->steps = 300;
}

static lamp_status lamp__trainer_order(lamp_trainer *t, uint64_t epoch) {
  const lamp_examples *ex = t->train;
  size_t *lengths = malloc((ex->n ? ex->n : 1) * sizeof(size_t));
  if (!lengths) return lamp__fail(t->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  for (size_t i = 0; i < ex->n; i++) lengths[i] = ex->items[i].n;
  lamp_status st = lamp_data_epoch_order(lengths, ex->n, t->global, t->opts.prompt.seed, epoch,
                                         t->order, t->starts, &t->n_batches);
  free(lengths);
  if (st == LAMP_OK) t->order_epoch = epoch;
  if (st != LAMP_OK)
    return lamp__fail(t->ctx, st, "ordering the examples of epoch %llu%s",
                      (unsigned long long)epoch,
                      st == LAMP_ERR_OUT_OF_MEMORY ? ": out of host memory" : "");
  return LAMP_OK;
}

/* Examples per micro-batch at most: a bound on the workspace's products of sizes. */
#define LAMP__BATCH_MAX (1 << 20)

lamp_status lamp_trainer_create(lamp_classifier *cls, const lamp_trainer_options *o,
                                const lamp_examples *train, lamp_trainer **out) {
  if (!cls || !o || !train || !out) return LAMP_ERR_INVALID_ARGUMENT;
  *out = NULL;
  lamp_context *ctx = cls->ctx;
  if (o->batch < 1) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "trainer: batch must be at least 1");
  if (!o->steps && !o->epochs)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "trainer: steps or epochs must be positive");
  if (!train->n) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "trainer: no training examples");
  LAMP__TRY(lamp__examples_fit(cls, train));
  for (size_t i = 0; i < train->n; i++)
    if (train->items[i].label < 0)
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "trainer: training example %zu has no "
                        "label", i + 1);
  const lamp_reducer *red = o->reducer;
  if (red && (!red->sum || !red->size || red->rank >= red->size))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "trainer: the reducer needs a sum function "
                      "and rank < size (rank %zu of %zu)", red->rank, red->size);
  if (o->batch > LAMP__BATCH_MAX)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "trainer: batch %zu is more than %d",
                      o->batch, LAMP__BATCH_MAX);
  /* the products below come from options a checkpoint may carry: none may wrap */
  const size_t acc = o->accumulate ? o->accumulate : 1, n_ranks = red ? red->size : 1;
  if (acc > SIZE_MAX / o->batch || n_ranks > SIZE_MAX / (o->batch * acc) ||
      (o->epochs && o->epochs > UINT64_MAX / (train->n / (o->batch * acc * n_ranks) + 1)))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "trainer: a global batch of %zu x %zu "
                      "accumulated x %zu ranks over %zu examples for %llu epochs overflows",
                      o->batch, acc, n_ranks, train->n, (unsigned long long)o->epochs);
  LAMP__TRY(lamp__trainer_fit(cls, o));
  lamp_trainer *t = calloc(1, sizeof(*t));
  if (!t) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  t->cls = cls;
  t->ctx = ctx;
  t->train = train;
  t->opts = *o;
  t->accumulate = o->accumulate ? o->accumulate : 1;
  t->opts.accumulate = t->accumulate;
  t->ranks = red ? red->size : 1;
  t->rank = red ? red->rank : 0;
  t->global = o->batch * t->accumulate * t->ranks;
  t->opts.prompt.width = cls->llm->config.n_embd;
  lamp_status st = LAMP_OK;
  /* the rows an embedding initialisation samples from, as f32 (the model may store them in
   * another format) */
  lamp_tensor table;
  memset(&table, 0, sizeof(table));
  const size_t V = cls->llm->config.n_vocab;
  size_t sample = t->opts.prompt.sample_rows < V ? t->opts.prompt.sample_rows : V;
  size_t ne[2] = {t->opts.prompt.width, sample ? sample : 1};
  if (t->opts.prompt.init == LAMP_PROMPT_INIT_EMBEDDING) {
    st = lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &table);
    if (st == LAMP_OK) st = lamp_model_embedding_rows(cls->llm->model, 0, ne[1], &table);
    if (st == LAMP_OK) t->opts.prompt.embedding = &table;
  }
  if (st == LAMP_OK) st = lamp_prompt_create(ctx, &t->opts.prompt, &t->prompt);
  t->opts.prompt.embedding = NULL;
  lamp_tensor_release(&table);
  size_t width = 0;
  if (st == LAMP_OK) st = lamp_prompt_output_shape(t->prompt, &t->prompt_rows, &width);
  if (st == LAMP_OK) st = lamp_prompt_get_options(t->prompt, &t->opts.prompt);
  if (st == LAMP_OK) t->opts.prompt.embedding = NULL;
  if (st == LAMP_OK) st = lamp_prompt_param_count(t->prompt, &t->trainable);
  if (st == LAMP_OK) st = lamp_prompt_params(t->prompt, t->params, LAMP_PROMPT_MAX_PARAMS, &t->n_params);
  for (size_t i = 0; i < t->n_params && st == LAMP_OK; i++)
    t->param_len[i] = lamp_tensor_numel(&t->params[i].value);
  if (st == LAMP_OK) st = lamp_adamw_create(ctx, t->params, t->n_params, &o->adamw, &t->opt);
  if (st == LAMP_OK) st = lamp__classifier_reserve(cls, t->prompt_rows, o->batch, o->recompute);
  if (st == LAMP_OK) {
    t->order = malloc(train->n * sizeof(size_t));
    t->starts = malloc((train->n / t->global + 2) * sizeof(size_t));
    for (size_t s = 0; s < 2; s++) {
      t->losses[s] = malloc(t->accumulate * cls->ws_outputs * sizeof(float));
      t->events[s] = calloc(t->accumulate + 1, sizeof(cl_event));
      t->n_events[s] = t->accumulate + 1;
    }
    if (red) t->sums = malloc((t->trainable + 3) * sizeof(double));
    if (!t->order || !t->starts || !t->losses[0] || !t->losses[1] || !t->events[0] ||
        !t->events[1] || (red && !t->sums))
      st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  }
  if (st == LAMP_OK) st = lamp__trainer_order(t, 0);
  if (st == LAMP_OK) {
    t->total = o->epochs ? o->epochs * t->n_batches : o->steps;
    t->sched = (lamp_lr_schedule){o->decay, o->warmup, t->total, o->min_lr};
    float probe;
    if (lamp_lr_schedule_factor(&t->sched, 0, &probe) != LAMP_OK || !(o->min_lr >= 0) ||
        o->min_lr > 1)
      st = lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "the schedule needs warm-up (%llu) below "
                      "the step count (%llu) and min_lr in [0, 1]",
                      (unsigned long long)o->warmup, (unsigned long long)t->total);
  }
  if (st != LAMP_OK) {
    lamp_trainer_release(t);
    return st;
  }
  *out = t;
  return LAMP_OK;
}

void lamp_trainer_release(lamp_trainer *t) {
  if (!t) return;
  lamp_context_finish(t->ctx);
  for (size_t s = 0; s < 2; s++) {
    for (size_t r = 0; t->events[s] && r < t->n_events[s]; r++)
      if (t->events[s][r]) clReleaseEvent(t->events[s][r]);
    free(t->events[s]);
    free(t->losses[s]);
  }
  free(t->sums);
  lamp_adamw_release(t->opt);
  lamp_prompt_release(t->prompt);
  free(t->order);
  free(t->starts);
  free(t);
}

lamp_prompt *lamp_trainer_prompt(const lamp_trainer *t) { return t ? t->prompt : NULL; }

lamp_status lamp_trainer_get_options(const lamp_trainer *t, lamp_trainer_options *o) {
  if (!t || !o) return LAMP_ERR_INVALID_ARGUMENT;
  *o = t->opts;
  return LAMP_OK;
}

size_t lamp__trainer_device_bytes(const lamp_trainer *t) {
  return lamp_model_weight_bytes(t->cls->llm->model) + lamp_model_workspace_bytes(t->cls->ws) +
         4 * sizeof(float) * t->trainable;
}

lamp_status lamp_trainer_get_state(const lamp_trainer *t, lamp_trainer_state *s) {
  if (!t || !s) return LAMP_ERR_INVALID_ARGUMENT;
  s->step = t->step;
  s->total = t->total;
  s->epoch = t->epoch;
  s->batch = t->batch_in_epoch;
  s->batches = t->n_batches;
  s->pending = t->pending;
  s->trainable = t->trainable;
  s->prompt_rows = t->prompt_rows;
  s->device_bytes = lamp__trainer_device_bytes(t);
  return LAMP_OK;
}

/* Enqueues a read that does not wait; `ev` completes with it. */
static cl_int lamp__read_async(lamp_trainer *t, const lamp_tensor *x, void *host, size_t bytes,
                               cl_event *ev) {
  if (*ev) clReleaseEvent(*ev);
  *ev = NULL;
  return clEnqueueReadBuffer(lamp_context_cl_queue(t->ctx), x->buffer, CL_FALSE, x->offset, bytes,
                             host, 0, NULL, ev);
}

/* Scored positions of an example: one with one-token label words, else its gold word's tokens. */
static size_t lamp__positions(const lamp_classifier *c, const lamp__item *it) {
  return c->single ? 1 : c->word_len[it->label];
}

lamp_status lamp__reducer_agree(lamp_context *ctx, const lamp_reducer *red, lamp_status st,
                                const char *what) {
  double failed = st != LAMP_OK;
  int lost = red->sum(red->user, &failed, 1) != 0;
  if (st != LAMP_OK) return st;
  if (lost)
    return lamp__fail(ctx, LAMP_ERR_IO, "rank %zu of %zu: the ranks could not exchange the "
                      "status of %s", red->rank, red->size, what);
  if (failed > 0)
    return lamp__fail(ctx, LAMP_ERR_IO, "rank %zu of %zu: %.0f of the ranks failed %s (each "
                      "reports its own cause)", red->rank, red->size, failed, what);
  return LAMP_OK;
}

/* The ranks' sum of every prompt gradient and of `*loss_sum`, written back to the device. A rank
 * whose step failed before (`st`) joins the sum all the same with its failure marked, so that no
 * rank waits for it; then no rank takes the step. */
static lamp_status lamp__trainer_reduce(lamp_trainer *t, lamp_status st, double *loss_sum,
                                        double *exchange_s) {
  const lamp_reducer *red = t->opts.reducer;
  size_t n = 0, most = 0;
  for (size_t i = 0; i < t->n_params; i++) {
    n += t->param_len[i];
    if (t->param_len[i] > most) most = t->param_len[i];
  }
  float *f = st == LAMP_OK ? malloc(most * sizeof(float)) : NULL;
  if (st == LAMP_OK && !f) st = lamp__fail(t->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  size_t at = 0;
  for (size_t i = 0; i < t->n_params && st == LAMP_OK; i++) {
    st = lamp_tensor_download(t->ctx, &t->params[i].grad, f, t->param_len[i] * sizeof(float));
    for (size_t k = 0; k < t->param_len[i] && st == LAMP_OK; k++) t->sums[at++] = f[k];
  }
  if (st != LAMP_OK) memset(t->sums, 0, n * sizeof(double));
  t->sums[n] = st == LAMP_OK ? *loss_sum : 0;
  t->sums[n + 1] = st == LAMP_OK && t->stop_request ? 1 : 0;
  t->sums[n + 2] = st != LAMP_OK;
  double e0 = lamp__now_seconds();
  int lost = red->sum(red->user, t->sums, n + 3) != 0;
  *exchange_s = lamp__now_seconds() - e0;
  if (st == LAMP_OK && lost)
    st = lamp__fail(t->ctx, LAMP_ERR_IO, "rank %zu of %zu: summing the gradients over the ranks "
                    "failed", t->rank, t->ranks);
  else if (st == LAMP_OK && t->sums[n + 2] > 0)
    st = lamp__fail(t->ctx, LAMP_ERR_IO, "rank %zu of %zu: %.0f of the ranks failed step %llu "
                    "before the gradient exchange (each reports its own cause); no rank took it",
                    t->rank, t->ranks, t->sums[n + 2], (unsigned long long)t->step + 1);
  at = 0;
  for (size_t i = 0; i < t->n_params && st == LAMP_OK; i++) {
    for (size_t k = 0; k < t->param_len[i]; k++) f[k] = (float)t->sums[at++];
    st = lamp_tensor_upload(t->ctx, &t->params[i].grad, f, t->param_len[i] * sizeof(float));
  }
  if (st == LAMP_OK) {
    *loss_sum = t->sums[n];
    if (t->sums[n + 1] > 0) t->stop_agreed = 1;
  }
  free(f);
  return st;
}

lamp_status lamp_trainer_step(lamp_trainer *t) {
  if (!t) return LAMP_ERR_INVALID_ARGUMENT;
  if (t->step >= t->total)
    return lamp__fail(t->ctx, LAMP_ERR_INVALID_ARGUMENT, "the run's %llu steps are done",
                      (unsigned long long)t->total);
  if (t->pending > 1)
    return lamp__fail(t->ctx, LAMP_ERR_INVALID_ARGUMENT, "two steps are pending: collect one first");
  double t0 = lamp__now_seconds();
  lamp_status st = LAMP_OK;
  if (t->batch_in_epoch == t->n_batches) {
    st = lamp__trainer_order(t, t->epoch + 1);
    if (st == LAMP_OK) {
      t->epoch++;
      t->batch_in_epoch = 0;
    }
  } else if (t->order_epoch != t->epoch) {
    st = lamp__trainer_order(t, t->epoch);
  }
  lamp_classifier *c = t->cls;
  /* the classifier may have scored for another prompt (or none) since the last step */
  if (st == LAMP_OK)
    st = lamp__classifier_reserve(c, t->prompt_rows, t->opts.batch, t->opts.recompute);
  if (st != LAMP_OK) {
    double unused = 0, exchange_s = 0;
    return t->opts.reducer ? lamp__trainer_reduce(t, st, &unused, &exchange_s) : st;
  }
  const size_t *idx = t->order + t->starts[t->batch_in_epoch];
  size_t count = t->starts[t->batch_in_epoch + 1] - t->starts[t->batch_in_epoch];
  unsigned slot = t->slot ^ 1u;
  lamp_step_result *r = &t->results[slot];
  memset(r, 0, sizeof(*r));
  r->step = t->step + 1;
  r->epoch = t->epoch;
  r->examples = count;
  size_t positions = 0;
  for (size_t b = 0; b < count; b++) {
    r->tokens += t->train->items[idx[b]].n;
    positions += lamp__positions(c, &t->train->items[idx[b]]);
  }
  float factor = 1;
  lamp_lr_schedule_factor(&t->sched, t->step, &factor);
  r->lr = (double)t->opts.adamw.lr * factor;

  /* this rank's micro-batches of the global batch, each gradient weighted by its share of the
   * global batch's scored positions (exactly 1 with one micro-batch in all) */
  int split = t->accumulate * t->ranks > 1;
  size_t B = t->opts.batch, M_here = 0;
  double reduce_s = 0; /* waiting for this rank's gradient and the others': not host work */
  st = lamp_prompt_zero_grad(t->prompt);
  cl_int err = CL_SUCCESS;
  for (size_t j = 0; j < t->accumulate && st == LAMP_OK && err == CL_SUCCESS; j++) {
    size_t lo = (t->rank * t->accumulate + j) * B, hi = lo + B < count ? lo + B : count, M = 0;
    if (lo >= hi) { /* a short last batch leaves the last micro-batches empty */
      if (t->events[slot][1 + j]) clReleaseEvent(t->events[slot][1 + j]);
      t->events[slot][1 + j] = NULL;
      continue;
    }
    lamp_tensor dprompt, losses;
    st = lamp__classifier_batch(c, t->train, idx + lo, hi - lo, 0, 1, &M);
    if (st == LAMP_OK) st = lamp__classifier_prompt_in(c, t->prompt);
    if (st == LAMP_OK) st = lamp_model_forward(c->ws, lamp__classifier_head(c));
    if (st == LAMP_OK) st = lamp_model_backward(c->ws);
    if (st == LAMP_OK) st = lamp_model_prompt_grad(c->ws, &dprompt);
    if (st == LAMP_OK && split) st = lamp_tensor_scale(t->ctx, &dprompt, (float)M / (float)positions);
    if (st == LAMP_OK) st = lamp_prompt_backward(t->prompt, &dprompt);
    if (st == LAMP_OK) st = lamp_model_losses(c->ws, &losses);
    if (st == LAMP_OK)
      err = lamp__read_async(t, &losses, t->losses[slot] + M_here, M * sizeof(float),
                             &t->events[slot][1 + j]);
    M_here += M;
  }
  if (t->opts.reducer) {
    /* every rank's gradient summed before clipping, so the global norm is clipped */
    for (size_t e = 1; e <= t->accumulate && st == LAMP_OK && err == CL_SUCCESS; e++)
      if (t->events[slot][e]) err = clWaitForEvents(1, &t->events[slot][e]);
    if (st == LAMP_OK && err != CL_SUCCESS)
      st = lamp__fail(t->ctx, LAMP_ERR_OPENCL, "training step: reading the loss back: %s",
                      lamp_cl_error_name(err));
    double loss_sum = 0;
    for (size_t m = 0; m < M_here && st == LAMP_OK; m++) loss_sum += t->losses[slot][m];
    double r0 = lamp__now_seconds();
    st = lamp__trainer_reduce(t, st, &loss_sum, &r->exchange_s);
    reduce_s = lamp__now_seconds() - r0;
    r->loss = loss_sum / (double)positions;
  }
  lamp_tensor norm;
  /* without clipping the norm is still measured for the log; a scale of exactly 1 is skipped */
  if (st == LAMP_OK && err == CL_SUCCESS)
    st = lamp_adamw_clip_grad_norm(t->opt, t->opts.clip > 0 ? t->opts.clip : FLT_MAX);
  if (st == LAMP_OK && err == CL_SUCCESS) st = lamp_adamw_step(t->opt, factor);
  if (st == LAMP_OK && err == CL_SUCCESS) st = lamp_adamw_grad_norm_tensor(t->opt, &norm);
  if (st == LAMP_OK && err == CL_SUCCESS)
    err = lamp__read_async(t, &norm, &t->norms[slot], sizeof(float), &t->events[slot][0]);
  /* start the device now rather than at the next blocking call */
  if (st == LAMP_OK && err == CL_SUCCESS) err = clFlush(lamp_context_cl_queue(t->ctx));
  if (st != LAMP_OK) return st;
  if (err != CL_SUCCESS)
    return lamp__fail(t->ctx, LAMP_ERR_OPENCL, "training step: reading the loss back: %s",
                      lamp_cl_error_name(err));
  r->host_s = lamp__now_seconds() - t0 - c->sync_s - reduce_s;
  t->started[slot] = t0;
  t->outputs[slot] = M_here;
  t->positions[slot] = positions;
  t->reduced[slot] = t->opts.reducer != NULL;
  t->slot = slot;
  t->pending++;
  t->step++;
  t->batch_in_epoch++;
  return LAMP_OK;
}

lamp_status lamp_trainer_collect(lamp_trainer *t, lamp_step_result *result) {
  if (!t) return LAMP_ERR_INVALID_ARGUMENT;
  if (!t->pending) return lamp__fail(t->ctx, LAMP_ERR_INVALID_ARGUMENT, "no step to collect");
  unsigned slot = t->pending == 2 ? t->slot ^ 1u : t->slot;
  t->pending--;
  cl_int err = CL_SUCCESS;
  for (size_t e = 0; e < t->n_events[slot] && err == CL_SUCCESS; e++)
    if (t->events[slot][e]) err = clWaitForEvents(1, &t->events[slot][e]);
  if (err != CL_SUCCESS)
    return lamp__fail(t->ctx, LAMP_ERR_OPENCL, "reading the training loss: %s",
                      lamp_cl_error_name(err));
  double done = lamp__now_seconds();
  lamp_step_result *r = &t->results[slot];
  if (!t->reduced[slot]) {
    size_t M = t->outputs[slot];
    double sum = 0;
    for (size_t m = 0; m < M; m++) sum += t->losses[slot][m];
    r->loss = t->positions[slot] ? sum / (double)t->positions[slot] : 0;
  }
  r->grad_norm = t->norms[slot];
  /* A step's period runs from where the previous step was seen done (or from its own start)
   * to where it is seen done. With two steps in flight a runtime may report both done at once
   * (Intel's CPU runtime finishes all flushed work inside clWaitForEvents), which made every
   * other step seem to take no time; step_s is therefore the mean of the last two periods,
   * whose sum is right either way. */
  double from = t->started[slot] > t->last_done ? t->started[slot] : t->last_done;
  double period = done - from;
  r->step_s = t->last_period > 0 ? 0.5 * (period + t->last_period) : period;
  t->last_period = period;
  t->last_done = done;
  if (result) *result = *r;
  if (!isfinite(r->loss))
    return lamp__fail(t->ctx, LAMP_ERR_NUMERIC, "step %llu: the training loss is not finite (%g); "
                      "lower the learning rate", (unsigned long long)r->step, r->loss);
  return LAMP_OK;
}

lamp_status lamp_trainer_evaluate(lamp_trainer *t, const lamp_examples *ex, size_t limit,
                                  lamp_metrics *metrics) {
  if (!t) return LAMP_ERR_INVALID_ARGUMENT;
  lamp_status st = LAMP_OK;
  while (t->pending && st == LAMP_OK) st = lamp_trainer_collect(t, NULL);
  if (st != LAMP_OK)
    return t->opts.reducer ? lamp__reducer_agree(t->ctx, t->opts.reducer, st, "the evaluation") : st;
  /* the prompt rows in every batch, as before the prompt cache: the results grid's
   * fingerprint (scripts/results.sh) and finished cells hold these evaluations' numbers */
  return lamp__classifier_evaluate(t->cls, t->prompt, ex, limit, NULL, NULL, metrics,
                                   t->opts.reducer, 0);
}

/* ---- the whole run -------------------------------------------------------------------------- */

void lamp_fit_options_init(lamp_fit_options *o) { memset(o, 0, sizeof(*o)); }

/* A callback's wish to stop: at once in one process; with ranks, sent with the next step's sums
 * so that all stop after the same step. */
static void lamp__fit_wish(lamp_trainer *t, const lamp_fit_options *o, const lamp_fit_report *rep,
                           int *stop) {
  if (o->callback && o->callback(o->user, rep)) {
    if (t->opts.reducer) t->stop_request = 1;
    else *stop = 1;
  }
}

static lamp_status lamp__fit_report(lamp_trainer *t, const lamp_fit_options *o, int *stop) {
  lamp_step_result r;
  LAMP__TRY(lamp_trainer_collect(t, &r));
  lamp_fit_report rep = {LAMP_FIT_STEP, r.step, &r, NULL};
  lamp__fit_wish(t, o, &rep, stop);
  return LAMP_OK;
}

/* With ranks, a rank that could not collect a step's result joins the exchange the others
 * reach next, the status of an evaluation or checkpoint (`agreement`) or else the next step's
 * sum, marked as failed: they then fail too instead of waiting for it. */
static lamp_status lamp__fit_leave(lamp_trainer *t, lamp_status st, int agreement) {
  if (!t->opts.reducer) return st;
  if (agreement) return lamp__reducer_agree(t->ctx, t->opts.reducer, st, "collecting a step");
  double unused = 0, exchange_s = 0;
  return lamp__trainer_reduce(t, st, &unused, &exchange_s);
}

lamp_status lamp_trainer_fit(lamp_trainer *t, const lamp_fit_options *o) {
  if (!t || !o) return LAMP_ERR_INVALID_ARGUMENT;
  if (o->eval_every && !o->dev)
    return lamp__fail(t->ctx, LAMP_ERR_INVALID_ARGUMENT, "fit: eval_every needs dev examples");
  int stop = 0;
  uint64_t done_here = 0;
  while (t->step < t->total) {
    LAMP__TRY(lamp_trainer_step(t));
    done_here++;
    if (t->stop_agreed) stop = 1;
    /* step n is reported once step n + 1 is queued behind it */
    lamp_status st = t->pending == 2 ? lamp__fit_report(t, o, &stop) : LAMP_OK;
    uint64_t step = t->step;
    int stop_now = stop || (o->stop_after && done_here >= o->stop_after);
    /* a run asked to stop saves at once rather than evaluating first */
    int eval_now = o->eval_every && step % o->eval_every == 0 && step < t->total && !stop_now;
    /* with ranks every rank keeps the checkpoints' times, also those that write none, to learn
     * whether the writing rank succeeded */
    int ckpt_now = (o->checkpoint || t->opts.reducer) &&
                   ((o->checkpoint_every && step % o->checkpoint_every == 0) || stop_now ||
                    step == t->total);
    if (eval_now || ckpt_now || stop_now || step == t->total)
      while (t->pending && st == LAMP_OK) st = lamp__fit_report(t, o, &stop);
    if (st != LAMP_OK) return lamp__fit_leave(t, st, eval_now || ckpt_now);
    if (eval_now) {
      lamp_metrics m;
      LAMP__TRY(lamp_trainer_evaluate(t, o->dev, o->eval_max, &m));
      lamp_fit_report rep = {LAMP_FIT_EVAL, step, NULL, &m};
      lamp__fit_wish(t, o, &rep, &stop);
    }
    if (ckpt_now) {
      st = o->checkpoint ? lamp_trainer_save(t, o->checkpoint, NULL, NULL, 0) : LAMP_OK;
      if (t->opts.reducer) st = lamp__reducer_agree(t->ctx, t->opts.reducer, st, "the checkpoint");
      LAMP__TRY(st);
      lamp_fit_report rep = {LAMP_FIT_CHECKPOINT, step, NULL, NULL};
      if (o->checkpoint) lamp__fit_wish(t, o, &rep, &stop);
    }
    if ((stop_now || stop) && step < t->total) {
      if (!ckpt_now && o->checkpoint) LAMP__TRY(lamp_trainer_save(t, o->checkpoint, NULL, NULL, 0));
      return LAMP_ERR_CANCELLED;
    }
  }
  return LAMP_OK;
}
