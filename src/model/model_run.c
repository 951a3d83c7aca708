/* The frozen Llama-family model at work: workspaces, batches, forward, backward to the prompt. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/llama_ops.h"
#include "model/model_internal.h"

static lamp_status lamp__int_buffer(lamp_context *ctx, size_t count, const char *what,
                                    cl_mem *out) {
  return lamp__buffer_create(ctx, CL_MEM_READ_WRITE, (count ? count : 1) * sizeof(cl_int), NULL,
                             what, out);
}

static lamp_status lamp__write_ints(lamp_context *ctx, cl_mem buf, const cl_int *v, size_t n) {
  if (n) LAMP__CL(ctx, clEnqueueWriteBuffer(ctx->queue, buf, CL_TRUE, 0, n * sizeof(cl_int), v, 0,
                                            NULL, NULL));
  return LAMP_OK;
}

/* Waits until the writes from staging area `i` have run, so it may be refilled. */
static lamp_status lamp__stage_wait(lamp_model_workspace *ws, int i) {
  if (!ws->staged[i]) return LAMP_OK;
  cl_int err = clWaitForEvents(1, &ws->staged[i]);
  clReleaseEvent(ws->staged[i]);
  ws->staged[i] = NULL;
  if (err != CL_SUCCESS)
    return lamp__fail(ws->ctx, lamp__status_from_cl(err), "model batch: an earlier input copy "
                      "failed: %s", lamp_cl_error_name(err));
  return LAMP_OK;
}

/* Enqueues copies of the (buffer, first, count) triples from staging area `i` without waiting;
 * the queue is in order, so the last copy's event covers them all. */
static lamp_status lamp__stage_write(lamp_model_workspace *ws, int i, const cl_mem *bufs,
                                     const cl_int *const *src, const size_t *counts, size_t n) {
  lamp_context *ctx = ws->ctx;
  for (size_t k = 0; k < n; k++) {
    cl_event *ev = k + 1 == n ? &ws->staged[i] : NULL;
    LAMP__CL(ctx, clEnqueueWriteBuffer(ctx->queue, bufs[k], CL_FALSE, 0,
                                       counts[k] * sizeof(cl_int), src[k], 0, NULL, ev));
  }
  return LAMP_OK;
}

/* GEMM operands hold their rows rounded up to a multiple of 64: when M is a multiple of the
 * tile, CLBlast multiplies in place instead of copying A and C into padded temporaries (10-17%
 * of the model's GEMM time on PoCL at 1074 rows). The extra rows only ever meet other extra
 * rows (a product's row i depends on row i of A alone), and start as zeros. */
static size_t lamp__gemm_rows(size_t n) { return (n + 63) / 64 * 64; }

/* A workspace buffer, zeroed so that rows no kernel writes hold finite numbers. */
static lamp_status lamp__workspace_alloc(lamp_context *ctx, size_t bytes, const char *what,
                                         cl_mem *out) {
  LAMP__TRY(lamp__model_alloc(ctx, bytes, what, out));
  const cl_float zero = 0.0f;
  LAMP__CL(ctx, clEnqueueFillBuffer(ctx->queue, *out, &zero, sizeof(zero), 0,
                                    bytes ? bytes : LAMP__MODEL_ALIGN, 0, NULL, NULL));
  return LAMP_OK;
}

/* Where a workspace's regions go: one after another in buffers of at most `limit` bytes (the
 * device's largest allocation). A region that does not fit in what is left of its buffer
 * starts the next one, and each group (the scratch, one block's activations) starts a buffer of
 * its own. No buffer exceeds the limit unless one region alone does; allocating that one then
 * fails naming the device's limit, and the plan says it does not fit. */
typedef struct lamp__pack {
  size_t limit;
  size_t n, cap;          /* regions placed, and room for as many regions and buffers */
  lamp__region **where;   /* each region */
  size_t *buffer_of;      /* its buffer */
  size_t n_buffers;
  size_t *bytes;          /* each buffer's size */
  const char **what;      /* each buffer's name, for errors */
  const char *group;      /* the open group's name; NULL once its first buffer is started */
  int out_of_memory;      /* on the host, while placing */
} lamp__pack;

static void lamp__pack_release(lamp__pack *p) {
  free(p->where);
  free(p->buffer_of);
  free(p->bytes);
  free(p->what);
  memset(p, 0, sizeof(*p));
}

static void lamp__pack_group(lamp__pack *p, const char *what) { p->group = what; }

static void lamp__pack_place(lamp__pack *p, lamp__region *r, size_t floats) {
  if (p->out_of_memory) return;
  if (p->n == p->cap) {
    size_t cap = p->cap ? 2 * p->cap : 32;
    lamp__region **where = realloc(p->where, cap * sizeof(*where));
    if (where) p->where = where;
    size_t *buffer_of = realloc(p->buffer_of, cap * sizeof(*buffer_of));
    if (buffer_of) p->buffer_of = buffer_of;
    size_t *bytes = realloc(p->bytes, cap * sizeof(*bytes));
    if (bytes) p->bytes = bytes;
    const char **what = realloc(p->what, cap * sizeof(*what));
    if (what) p->what = what;
    if (!where || !buffer_of || !bytes || !what) {
      p->out_of_memory = 1;
      return;
    }
    p->cap = cap;
  }
  const size_t size = (floats * 4 + LAMP__MODEL_ALIGN - 1) / LAMP__MODEL_ALIGN * LAMP__MODEL_ALIGN;
  const size_t b = p->n_buffers;
  const size_t used = p->group ? 0 : p->bytes[b - 1];
  if (p->group || (used && (used >= p->limit || size > p->limit - used))) {
    p->what[b] = p->group ? p->group : p->what[b - 1];
    p->bytes[b] = 0;
    p->n_buffers++;
    p->group = NULL;
  }
  r->buffer = NULL;
  r->offset = p->bytes[p->n_buffers - 1];
  p->bytes[p->n_buffers - 1] += size;
  p->where[p->n] = r;
  p->buffer_of[p->n++] = p->n_buffers - 1;
}

/* RoPE tables a workspace keeps: cos and sin, and another pair for local layers of a base of
 * their own (Gemma 3). */
static uint64_t lamp__rope_table_count(const lamp_model_config *c) {
  return lamp__model_rope_split(c) ? 4 : 2;
}

/* Plans a workspace of shape s in ws (its xs and slots arrays allocated) into p: first the
 * inputs, scratch and the final rows, then each block's inputs and what it keeps; the RoPE
 * tables get buffers of their own. Returns the total bytes, with the tables and the integer
 * inputs, and sets the scratch's bytes and one table's; 0 when out of host memory. */
static uint64_t lamp__workspace_layout(lamp_model_workspace *ws, const lamp_model_config *c,
                                       const lamp_model_shape *shape, size_t limit,
                                       lamp__pack *p, uint64_t *scratch_bytes,
                                       size_t *rope_bytes_out) {
  const lamp_model_shape s = *shape;
  const size_t C = c->n_embd, D = c->head_dim, H = c->n_heads, HD = H * D;
  const size_t W = HD + 2 * c->n_kv_heads * D, F = c->n_ff, M = s.outputs;
  /* the prompt rows are stored once for the whole batch (llama_ops.h) */
  const size_t S = s.prompt + s.tokens, N = s.prompt + s.batch * s.tokens, L = c->n_layers;
  const size_t NG = lamp__gemm_rows(N);
  const size_t VK = c->n_vocab > s.labels ? c->n_vocab : s.labels;
  const size_t n_slots = s.recompute ? 1 : L;
  const size_t sandwich = lamp__arch_gemma(c->arch) ? 1 : 0; /* Gemma's extra norms */
  const size_t QK = lamp__arch_qk_norm(c->arch) ? c->n_heads + c->n_kv_heads : 0;
  memset(p, 0, sizeof(*p));
  p->limit = limit ? limit : SIZE_MAX;
  lamp__pack_group(p, "the model workspace's scratch");
  const struct {
    lamp__region *r;
    size_t floats;
  } scratch[] = {
      {&ws->prompt, s.prompt * C}, {&ws->dprompt, s.prompt * C}, {&ws->h, NG * C},
      {&ws->tmp, NG * C},          {&ws->dr, NG * C},            {&ws->a, NG * F},
      {&ws->dgu, NG * 2 * F},      {&ws->dqkv, NG * W},          {&ws->dout, NG * HD},
      {&ws->delta, N * H},         {&ws->xsel, M * C},           {&ws->tsel, M * C},
      {&ws->xl, M * C},            {&ws->hf, M * C},             {&ws->dhf, M * C},
      {&ws->dxl, M * C},           {&ws->rstdf, M},              {&ws->wlab, s.labels * C},
      {&ws->logits, M * VK},       {&ws->dlogits, M * VK},       {&ws->loss, M},
      {&ws->lse_ce, M}};
  for (size_t i = 0; i < sizeof(scratch) / sizeof(scratch[0]); i++)
    lamp__pack_place(p, scratch[i].r, scratch[i].floats);
  const size_t n_scratch = p->n_buffers;
  for (size_t l = 0; l < L; l++) {
    lamp__pack_group(p, "the model workspace's activations of one block");
    lamp__pack_place(p, &ws->xs[l], N * C);
    if (l < n_slots) {
      lamp__slot *sl = &ws->slots[l];
      lamp__pack_place(p, &sl->qkv, NG * W);
      lamp__pack_place(p, &sl->o, NG * HD);
      lamp__pack_place(p, &sl->lse, N * H);
      lamp__pack_place(p, &sl->xmid, N * C);
      lamp__pack_place(p, &sl->gu, NG * 2 * F);
      lamp__pack_place(p, &sl->rstd1, N);
      lamp__pack_place(p, &sl->rstd2, N);
      lamp__pack_place(p, &sl->pa, sandwich * NG * C);
      lamp__pack_place(p, &sl->pf, sandwich * NG * C);
      lamp__pack_place(p, &sl->rstd3, sandwich * N);
      lamp__pack_place(p, &sl->rstd4, sandwich * N);
      lamp__pack_place(p, &sl->qk, N * QK * D);
      lamp__pack_place(p, &sl->rstd_qk, N * QK);
    }
  }
  if (p->out_of_memory) return 0;
  uint64_t total = 0;
  *scratch_bytes = 0;
  for (size_t b = 0; b < p->n_buffers; b++) {
    total += p->bytes[b];
    if (b < n_scratch) *scratch_bytes += p->bytes[b];
  }
  const size_t rope_bytes = S * (D / 2) * 4;
  *rope_bytes_out = rope_bytes;
  /* Planned sizes stay far below SIZE_MAX: batch and tokens are at most 65536 each. */
  return total + lamp__rope_table_count(c) * rope_bytes +
         (uint64_t)(s.batch * s.tokens + 2 * s.batch + 2 * M + (s.labels ? s.labels : 1)) * 4;
}

void lamp__workspace_plan(const lamp_model_config *c, const lamp_model_shape *shape, size_t limit,
                          uint64_t *workspace, uint64_t *kept_full, uint64_t *kept_recompute,
                          uint64_t *largest) {
  lamp_model_workspace ws;
  memset(&ws, 0, sizeof(ws));
  const size_t L = c->n_layers;
  ws.xs = calloc(L, sizeof(*ws.xs));
  ws.slots = calloc(L, sizeof(*ws.slots));
  *workspace = *kept_full = *kept_recompute = *largest = 0;
  if (ws.xs && ws.slots) {
    lamp_model_shape s = *shape;
    uint64_t scratch = 0;
    size_t rope = 0;
    for (int r = 0; r < 2; r++) {
      s.recompute = r;
      lamp__pack p;
      uint64_t total = lamp__workspace_layout(&ws, c, &s, limit, &p, &scratch, &rope);
      /* the integer inputs count as activations: they are per batch like them */
      *(r ? kept_recompute : kept_full) = total - scratch - lamp__rope_table_count(c) * rope;
      for (size_t b = 0; b < p.n_buffers; b++)
        if (p.bytes[b] > *largest) *largest = p.bytes[b];
      if (rope > *largest) *largest = rope;
      lamp__pack_release(&p);
    }
    *workspace = scratch + lamp__rope_table_count(c) * rope;
  }
  free(ws.xs);
  free(ws.slots);
}

lamp_status lamp_model_workspace_create(lamp_model *model, const lamp_model_shape *shape,
                                        lamp_model_workspace **out) {
  lamp_context *ctx = model ? model->ctx : NULL;
  if (!model || !shape || !out)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_workspace_create: NULL argument");
  *out = NULL;
  const lamp_model_config *c = &model->cfg;
  const lamp_model_shape s = *shape;
  if (!s.batch || !s.tokens || !s.outputs)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model workspace: batch %zu, tokens %zu and "
                      "outputs %zu must be positive", s.batch, s.tokens, s.outputs);
  if (s.batch > 65536 || s.tokens > 65536 || s.prompt > 65536 || s.labels > c->n_vocab ||
      s.outputs > s.batch * s.tokens)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model workspace: batch %zu, tokens %zu, "
                      "prompt %zu, outputs %zu or labels %zu out of range", s.batch, s.tokens,
                      s.prompt, s.outputs, s.labels);
  /* attention within Mistral's and Gemma's windows; elsewhere only up to one */
  if (!lamp__model_windowed(c))
    LAMP__TRY(lamp__model_check_window(ctx, c, s.prompt + s.tokens,
                                       "model workspace (prompt rows and tokens)"));
  const size_t M = s.outputs, S = s.prompt + s.tokens, N = s.prompt + s.batch * s.tokens;
  const size_t L = c->n_layers;
  lamp_model_workspace *ws = calloc(1, sizeof(*ws));
  if (!ws) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory for a workspace");
  ws->model = model;
  ws->ctx = ctx;
  ws->shape = s;
  size_t n_slots = s.recompute ? 1 : L;
  ws->xs = calloc(L, sizeof(*ws->xs));
  ws->slots = calloc(n_slots, sizeof(*ws->slots));
  lamp_status st = LAMP_OK;
  lamp__pack pack = {0};
  if (!ws->xs || !ws->slots) {
    st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory for a workspace");
    goto done;
  }

  uint64_t scratch_bytes = 0;
  size_t rope_bytes = 0;
  const uint64_t total = lamp__workspace_layout(ws, c, &s, ctx->info.max_alloc_bytes, &pack,
                                                &scratch_bytes, &rope_bytes);
  if (!total) {
    st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory for a workspace");
    goto done;
  }
  const uint64_t global = ctx->info.global_mem_bytes, weights = model->bytes;
  if (global && (total > global || weights > global - total)) {
    char need[64], have[64], held[64];
    st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "cannot allocate %s on the device (%s) for the "
                    "model workspace of %zu sequences of %zu tokens (%zu prompt rows%s): the "
                    "device has %s of global memory, %s of it for the model's weights; use a "
                    "smaller batch or shorter texts%s", lamp__bytes_text(total, need, sizeof(need)),
                    ctx->info.name, s.batch, s.tokens, s.prompt,
                    s.recompute ? ", recomputing blocks" : "",
                    lamp__bytes_text(global, have, sizeof(have)),
                    lamp__bytes_text(weights, held, sizeof(held)),
                    s.recompute ? "" : ", or recompute blocks in the backward");
    goto done;
  }
  ws->buffers = calloc(pack.n_buffers + 4, sizeof(cl_mem));
  if (!ws->buffers) {
    st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory for a workspace");
    goto done;
  }

  /* the host's copies of the batch, sized by it */
  ws->lengths = calloc(s.batch, sizeof(size_t));
  ws->targets = calloc(M, sizeof(int32_t));
  ws->stage_tokens = calloc(s.batch * s.tokens + 2 * s.batch, sizeof(cl_int));
  ws->stage_outputs = calloc(2 * M, sizeof(cl_int));
  ws->row_chosen = calloc(N, 1);
  if (!ws->lengths || !ws->targets || !ws->stage_tokens || !ws->stage_outputs ||
      !ws->row_chosen) {
    st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory for a workspace of %zu "
                    "sequences of %zu tokens", s.batch, s.tokens);
    goto done;
  }
  if ((st = lamp__int_buffer(ctx, s.batch * s.tokens, "the model workspace's token ids",
                             &ws->ids)) ||
      (st = lamp__int_buffer(ctx, s.batch, "the model workspace's sequence lengths",
                             &ws->lengths_dev)) ||
      (st = lamp__int_buffer(ctx, s.batch, "the model workspace's valid rows", &ws->valid)) ||
      (st = lamp__int_buffer(ctx, M, "the model workspace's output rows", &ws->out_rows)) ||
      (st = lamp__int_buffer(ctx, M, "the model workspace's targets", &ws->targets_dev)) ||
      (st = lamp__int_buffer(ctx, s.labels, "the model workspace's label ids", &ws->label_ids)))
    goto done;
  ws->bytes = (s.batch * s.tokens + 2 * s.batch + 2 * M + (s.labels ? s.labels : 1)) *
              sizeof(cl_int);
  for (size_t b = 0; b < pack.n_buffers; b++) {
    if ((st = lamp__workspace_alloc(ctx, pack.bytes[b], pack.what[b], &ws->buffers[b])))
      goto done;
    ws->n_buffers++;
    ws->bytes += pack.bytes[b];
  }
  for (size_t i = 0; i < pack.n; i++) pack.where[i]->buffer = ws->buffers[pack.buffer_of[i]];
  /* the RoPE tables in buffers of their own: the kernel reads them from offset 0 */
  lamp__region *tables[] = {&ws->cos_t, &ws->sin_t, &ws->cos_l, &ws->sin_l};
  for (size_t i = 0; i < lamp__rope_table_count(c); i++) {
    cl_mem tb = NULL;
    if ((st = lamp__model_alloc(ctx, rope_bytes, "the model workspace's RoPE tables", &tb)))
      goto done;
    ws->buffers[ws->n_buffers++] = tb;
    ws->bytes += rope_bytes;
    *tables[i] = (lamp__region){tb, 0};
  }
  st = lamp__model_rope_tables(ctx, c, (double)c->rope_base, S, ws->cos_t, ws->sin_t);
  if (st == LAMP_OK && lamp__model_rope_split(c))
    st = lamp__model_rope_tables(ctx, c, (double)c->rope_base_local, S, ws->cos_l, ws->sin_l);
done:
  lamp__pack_release(&pack);
  if (st != LAMP_OK) {
    lamp_model_workspace_release(ws);
    return st;
  }
  *out = ws;
  return LAMP_OK;
}

void lamp_model_workspace_release(lamp_model_workspace *ws) {
  if (!ws) return;
  clFinish(ws->ctx->queue);
  for (int i = 0; i < 2; i++)
    if (ws->staged[i]) clReleaseEvent(ws->staged[i]);
  for (size_t i = 0; i < ws->n_buffers; i++) clReleaseMemObject(ws->buffers[i]);
  cl_mem ints[] = {ws->ids, ws->lengths_dev, ws->valid, ws->out_rows, ws->targets_dev,
                   ws->label_ids};
  for (size_t i = 0; i < 6; i++)
    if (ints[i]) clReleaseMemObject(ints[i]);
  free(ws->buffers);
  free(ws->xs);
  free(ws->slots);
  free(ws->lengths);
  free(ws->targets);
  free(ws->stage_tokens);
  free(ws->stage_outputs);
  free(ws->row_chosen);
  free(ws);
}

size_t lamp_model_workspace_bytes(const lamp_model_workspace *ws) { return ws ? ws->bytes : 0; }

lamp_status lamp_model_set_tokens(lamp_model_workspace *ws, size_t batch, size_t tokens,
                                  const int32_t *ids, const size_t *lengths) {
  if (!ws || !ids || !lengths)
    return lamp__fail(ws ? ws->ctx : NULL, LAMP_ERR_INVALID_ARGUMENT,
                      "lamp_model_set_tokens: NULL argument");
  lamp_context *ctx = ws->ctx;
  if (!batch || batch > ws->shape.batch || !tokens || tokens > ws->shape.tokens)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "model batch: %zu sequences of %zu tokens, the "
                      "workspace holds at most %zu of %zu", batch, tokens, ws->shape.batch,
                      ws->shape.tokens);
  size_t n = batch * tokens;
  ws->batch = 0;
  ws->n_out = 0;
  ws->forward_done = 0;
  LAMP__TRY(lamp__stage_wait(ws, 0));
  cl_int *buf = ws->stage_tokens;
  lamp_status st = LAMP_OK;
  for (size_t b = 0; b < batch && st == LAMP_OK; b++) {
    if (lengths[b] > tokens)
      st = lamp__fail(ctx, LAMP_ERR_SHAPE, "model batch: sequence %zu has %zu tokens, more than "
                      "%zu", b, lengths[b], tokens);
    for (size_t t = 0; t < tokens && st == LAMP_OK; t++) {
      int32_t id = t < lengths[b] ? ids[b * tokens + t] : 0;
      if (id < 0 || (size_t)id >= ws->model->cfg.n_vocab)
        st = lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model batch: token %zu of sequence %zu "
                        "is %ld, outside the vocabulary 0 .. %zu", t, b, (long)id,
                        ws->model->cfg.n_vocab - 1);
      buf[b * tokens + t] = id;
    }
    buf[n + b] = (cl_int)lengths[b];
    buf[n + batch + b] = (cl_int)(lengths[b] + ws->shape.prompt);
  }
  if (st == LAMP_OK) {
    const cl_mem bufs[3] = {ws->ids, ws->lengths_dev, ws->valid};
    const cl_int *src[3] = {buf, buf + n, buf + n + batch};
    const size_t counts[3] = {n, batch, batch};
    st = lamp__stage_write(ws, 0, bufs, src, counts, 3);
  }
  if (st != LAMP_OK) return st;
  ws->batch = batch;
  ws->tokens = tokens;
  for (size_t b = 0; b < batch; b++) ws->lengths[b] = lengths[b];
  return LAMP_OK;
}

lamp_status lamp_model_set_outputs(lamp_model_workspace *ws, size_t count, const size_t *seq,
                                   const size_t *pos, const int32_t *targets) {
  if (!ws || !seq || !pos)
    return lamp__fail(ws ? ws->ctx : NULL, LAMP_ERR_INVALID_ARGUMENT,
                      "lamp_model_set_outputs: NULL argument");
  lamp_context *ctx = ws->ctx;
  if (!ws->batch) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model outputs: no batch set");
  if (!count || count > ws->shape.outputs)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "model outputs: %zu positions, the workspace holds 1 "
                      "to %zu", count, ws->shape.outputs);
  const size_t N = ws->shape.prompt + ws->batch * ws->tokens;
  ws->n_out = 0;
  ws->forward_done = 0;
  LAMP__TRY(lamp__stage_wait(ws, 1));
  cl_int *buf = ws->stage_outputs;
  unsigned char *seen = ws->row_chosen;
  memset(seen, 0, N);
  lamp_status st = LAMP_OK;
  size_t with_target = 0;
  for (size_t m = 0; m < count && st == LAMP_OK; m++) {
    if (seq[m] >= ws->batch || pos[m] >= ws->lengths[seq[m]]) {
      st = lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model output %zu: sequence %zu position "
                      "%zu is not a token of the batch", m, seq[m], pos[m]);
      break;
    }
    size_t row = ws->shape.prompt + seq[m] * ws->tokens + pos[m];
    if (seen[row]) {
      st = lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model output %zu: sequence %zu position "
                      "%zu is chosen twice", m, seq[m], pos[m]);
      break;
    }
    seen[row] = 1;
    buf[m] = (cl_int)row;
    int32_t t = targets ? targets[m] : -1;
    if (t < -1 || (t >= 0 && (size_t)t >= ws->model->cfg.n_vocab)) {
      st = lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model output %zu: target %ld outside "
                      "-1 .. %zu", m, (long)t, ws->model->cfg.n_vocab - 1);
      break;
    }
    buf[count + m] = t;
    with_target += t >= 0;
  }
  if (st == LAMP_OK) {
    const cl_mem bufs[2] = {ws->out_rows, ws->targets_dev};
    const cl_int *src[2] = {buf, buf + count};
    const size_t counts[2] = {count, count};
    st = lamp__stage_write(ws, 1, bufs, src, counts, 2);
  }
  if (st == LAMP_OK) {
    for (size_t m = 0; m < count; m++) ws->targets[m] = buf[count + m];
    ws->n_out = count;
    ws->n_targets = with_target;
    ws->has_targets = targets != NULL;
  }
  return st;
}

lamp_status lamp_model_set_labels(lamp_model_workspace *ws, size_t count, const int32_t *ids) {
  if (!ws || !ids)
    return lamp__fail(ws ? ws->ctx : NULL, LAMP_ERR_INVALID_ARGUMENT,
                      "lamp_model_set_labels: NULL argument");
  lamp_context *ctx = ws->ctx;
  if (!count || count > ws->shape.labels)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "model labels: %zu label words, the workspace holds 1 "
                      "to %zu", count, ws->shape.labels);
  cl_int *buf = malloc(count * sizeof(cl_int));
  if (!buf) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  lamp_status st = LAMP_OK;
  for (size_t k = 0; k < count && st == LAMP_OK; k++) {
    if (ids[k] < 0 || (size_t)ids[k] >= ws->model->cfg.n_vocab)
      st = lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model label %zu: token %ld outside the "
                      "vocabulary 0 .. %zu", k, (long)ids[k], ws->model->cfg.n_vocab - 1);
    buf[k] = ids[k];
  }
  if (st == LAMP_OK) st = lamp__write_ints(ctx, ws->label_ids, buf, count);
  free(buf);
  ws->n_labels = 0;
  ws->forward_done = 0;
  if (st != LAMP_OK) return st;
  const size_t C = ws->model->cfg.n_embd;
  lamp_tensor wlab = lamp__model_mat(ws->wlab, C, count);
  LAMP__TRY(lamp__model_rows(ws->model, &ws->model->output, &wlab, ws->label_ids));
  ws->n_labels = count;
  return LAMP_OK;
}

lamp_status lamp_model_prompt(lamp_model_workspace *ws, lamp_tensor *prompt) {
  if (!ws || !prompt) return LAMP_ERR_INVALID_ARGUMENT;
  if (!ws->shape.prompt)
    return lamp__fail(ws->ctx, LAMP_ERR_INVALID_ARGUMENT, "model workspace has no prompt rows");
  *prompt = lamp__model_mat(ws->prompt, ws->model->cfg.n_embd, ws->shape.prompt);
  return LAMP_OK;
}

lamp_status lamp_model_prompt_grad(lamp_model_workspace *ws, lamp_tensor *dprompt) {
  if (!ws || !dprompt) return LAMP_ERR_INVALID_ARGUMENT;
  if (!ws->shape.prompt)
    return lamp__fail(ws->ctx, LAMP_ERR_INVALID_ARGUMENT, "model workspace has no prompt rows");
  *dprompt = lamp__model_mat(ws->dprompt, ws->model->cfg.n_embd, ws->shape.prompt);
  return LAMP_OK;
}

/* Columns of the current head's logits. */
static size_t lamp__head_width(const lamp_model_workspace *ws, lamp_model_head head) {
  return head == LAMP_MODEL_HEAD_LABELS ? ws->n_labels : ws->model->cfg.n_vocab;
}

lamp_status lamp_model_logits(lamp_model_workspace *ws, lamp_tensor *logits) {
  if (!ws || !logits) return LAMP_ERR_INVALID_ARGUMENT;
  if (!ws->forward_done)
    return lamp__fail(ws->ctx, LAMP_ERR_INVALID_ARGUMENT, "model logits: no forward since the "
                      "batch was set");
  *logits = lamp__model_mat(ws->logits, lamp__head_width(ws, ws->last_head), ws->n_out);
  return LAMP_OK;
}

lamp_status lamp_model_losses(lamp_model_workspace *ws, lamp_tensor *losses) {
  if (!ws || !losses) return LAMP_ERR_INVALID_ARGUMENT;
  if (!ws->forward_done || !ws->has_targets)
    return lamp__fail(ws->ctx, LAMP_ERR_INVALID_ARGUMENT, "model losses: no forward with "
                      "targets since the batch was set");
  *losses = lamp__model_mat(ws->loss, ws->n_out, 1);
  return LAMP_OK;
}

/* Everything of one run that the block functions share. */
typedef struct lamp__run {
  lamp_model_workspace *ws;
  lamp_context *ctx;
  const lamp_model_config *c;
  size_t N, NG, S, W, HD; /* NG: the rows GEMMs see (lamp__gemm_rows) */
  /* A prefixed forward (lamp_model_forward_prefixed) computes the token rows only, r0 = P on,
   * and takes the prompt rows' keys and values from `prefix`; otherwise r0 = 0. */
  size_t r0, NA; /* NA: the rows the workspace holds for GEMMs */
  const lamp_model_cache *prefix;
  int sandwich;           /* Gemma's block (lamp__arch_gemma) */
} lamp__run;

/* Rows r0 .. N - 1 of a region `cols` wide; with `gemm` as many as a product sees, rounded up
 * like NG within the workspace's rows. With r0 = 0 these are the run's N or NG rows. */
static lamp_tensor lamp__run_mat(const lamp__run *r, lamp__region reg, size_t cols, int gemm) {
  size_t n = r->N - r->r0;
  if (gemm) {
    n = lamp__gemm_rows(n);
    if (n > r->NA - r->r0) n = r->NA - r->r0;
  }
  reg.offset += r->r0 * cols * 4;
  return lamp__model_mat(reg, cols, n);
}

/* Entries r0 .. N - 1 of a per-row vector (rstd). */
static lamp_tensor lamp__run_vec(const lamp__run *r, lamp__region reg) {
  reg.offset += r->r0 * 4;
  return lamp__model_mat(reg, r->N - r->r0, 1);
}

static lamp__slot *lamp__slot_of(lamp__run *r, size_t l) {
  return &r->ws->slots[r->ws->shape.recompute ? 0 : l];
}

/* The RoPE tables of layer l: the local layers' own when their base differs. */
static void lamp__rope_of(const lamp__run *r, size_t l, lamp_tensor *cs, lamp_tensor *sn) {
  const lamp_model_config *c = r->c;
  int local = lamp__model_rope_split(c) && lamp__model_layer_local(c, l);
  *cs = lamp__model_mat(local ? r->ws->cos_l : r->ws->cos_t, c->head_dim / 2, r->S);
  *sn = lamp__model_mat(local ? r->ws->sin_l : r->ws->sin_t, c->head_dim / 2, r->S);
}

/* Block l from its normalised input h (rstd1 already saved) up to the gate/up projection:
 * qkv, RoPE, attention, output projection (Gemma: into pa, then its post-attention norm),
 * residual add fused with the second norm, gate/up. Leaves the second norm's output in h and
 * the attention branch (after the output projection, or its norm) in tmp. */
static lamp_status lamp__block_front(lamp__run *r, size_t l) {
  lamp_model_workspace *ws = r->ws;
  const lamp_model_config *c = r->c;
  const lamp__layer *y = &ws->model->layers[l];
  lamp__slot *sl = lamp__slot_of(r, l);
  const size_t C = c->n_embd, F = c->n_ff, N = r->N;
  lamp_tensor h = lamp__run_mat(r, ws->h, C, 0), tmp = lamp__run_mat(r, ws->tmp, C, 0);
  /* RoPE and attention see every row: the prompt rows hold the cache's keys and values */
  lamp_tensor qkv = lamp__model_mat(sl->qkv, r->W, N), o = lamp__model_mat(sl->o, r->HD, N);
  lamp_tensor qkvr = lamp__run_mat(r, sl->qkv, r->W, 0);
  lamp_tensor hg = lamp__run_mat(r, ws->h, C, 1), tmpg = lamp__run_mat(r, ws->tmp, C, 1);
  lamp_tensor qkvg = lamp__run_mat(r, sl->qkv, r->W, 1), og = lamp__run_mat(r, sl->o, r->HD, 1);
  lamp_tensor lse = lamp__model_mat(sl->lse, c->n_heads, N);
  lamp_tensor gug = lamp__run_mat(r, sl->gu, 2 * F, 1), w;
  lamp_tensor xin = lamp__run_mat(r, ws->xs[l], C, 0), xmid = lamp__run_mat(r, sl->xmid, C, 0);
  lamp_tensor rstd2 = lamp__run_vec(r, sl->rstd2), fn = lamp__model_mat(y->ffn_norm, C, 1);
  lamp_tensor cs, sn;
  lamp__rope_of(r, l, &cs, &sn);
  LAMP__TRY(lamp__model_weight(ws->model, &y->wqkv, &w));
  LAMP__TRY(lamp_gemm(r->ctx, LAMP_NO_TRANS, LAMP_TRANS, 1.0f, &hg, &w, 0.0f, &qkvg));
  LAMP__TRY(lamp__model_qkv_bias(ws->model, l, &qkvr));
  if (lamp__arch_qk_norm(c->arch)) {
    /* every row, like RoPE: a prefixed forward's prompt rows are replaced by the cache's */
    const size_t QK = c->n_heads + c->n_kv_heads;
    lamp_tensor qk = lamp__model_mat(sl->qk, QK * c->head_dim, N);
    lamp_tensor rq = lamp__model_mat(sl->rstd_qk, QK, N);
    lamp_tensor wq = lamp__model_mat(y->q_norm, c->head_dim, 1);
    lamp_tensor wk = lamp__model_mat(y->k_norm, c->head_dim, 1);
    LAMP__TRY(lamp__llama_rmsnorm_heads_forward(r->ctx, &qkv, &qk, &rq, &wq, &wk, c->n_heads, QK,
                                                c->head_dim, c->norm_eps));
  }
  const size_t P = ws->shape.prompt, T = ws->tokens;
  LAMP__TRY(lamp__llama_rope(r->ctx, &qkv, c->n_heads + c->n_kv_heads, c->head_dim, P, T, &cs,
                             &sn, 0));
  if (r->prefix) LAMP__TRY(lamp__cache_prefix_copy(r->prefix, l, &qkv, P));
  LAMP__TRY(lamp__llama_attention_forward(r->ctx, &o, &lse, &qkv, ws->valid, ws->batch, P, T,
                                          c->n_heads, c->n_kv_heads, c->head_dim,
                                          lamp__model_query_scale(c), c->attn_softcap,
                                          lamp__model_layer_window(c, l)));
  LAMP__TRY(lamp__model_weight(ws->model, &y->wo, &w));
  if (r->sandwich) {
    lamp_tensor pag = lamp__run_mat(r, sl->pa, C, 1), pa = lamp__run_mat(r, sl->pa, C, 0);
    lamp_tensor r3 = lamp__run_vec(r, sl->rstd3);
    lamp_tensor pn = lamp__model_mat(y->post_attn_norm, C, 1);
    LAMP__TRY(lamp_gemm(r->ctx, LAMP_NO_TRANS, LAMP_TRANS, 1.0f, &og, &w, 0.0f, &pag));
    LAMP__TRY(lamp__llama_rmsnorm_forward(r->ctx, &tmp, &r3, &pa, &pn, c->norm_eps));
  } else {
    LAMP__TRY(lamp_gemm(r->ctx, LAMP_NO_TRANS, LAMP_TRANS, 1.0f, &og, &w, 0.0f, &tmpg));
  }
  LAMP__TRY(lamp__llama_rmsnorm_add_forward(r->ctx, &xmid, &h, &rstd2, &xin, &tmp, &fn,
                                            c->norm_eps));
  LAMP__TRY(lamp__model_weight(ws->model, &y->wgu, &w));
  return lamp_gemm(r->ctx, LAMP_NO_TRANS, LAMP_TRANS, 1.0f, &hg, &w, 0.0f, &gug);
}

/* Gemma's MLP after the gate/up projection: GeGLU into a, the down projection into pf and its
 * post-feedforward norm into tmp (rstd4 saved). */
static lamp_status lamp__block_down(lamp__run *r, size_t l) {
  lamp_model_workspace *ws = r->ws;
  const lamp_model_config *c = r->c;
  const lamp__layer *y = &ws->model->layers[l];
  lamp__slot *sl = lamp__slot_of(r, l);
  const size_t C = c->n_embd, F = c->n_ff;
  lamp_tensor gu = lamp__run_mat(r, sl->gu, 2 * F, 0), a = lamp__run_mat(r, ws->a, F, 0);
  lamp_tensor ag = lamp__run_mat(r, ws->a, F, 1), tmp = lamp__run_mat(r, ws->tmp, C, 0);
  lamp_tensor pfg = lamp__run_mat(r, sl->pf, C, 1), pf = lamp__run_mat(r, sl->pf, C, 0);
  lamp_tensor r4 = lamp__run_vec(r, sl->rstd4);
  lamp_tensor pn = lamp__model_mat(y->post_ffn_norm, C, 1), w;
  LAMP__TRY(lamp__llama_geglu_forward(r->ctx, &a, &gu));
  LAMP__TRY(lamp__model_weight(ws->model, &y->wdown, &w));
  LAMP__TRY(lamp_gemm(r->ctx, LAMP_NO_TRANS, LAMP_TRANS, 1.0f, &ag, &w, 0.0f, &pfg));
  return lamp__llama_rmsnorm_forward(r->ctx, &tmp, &r4, &pf, &pn, c->norm_eps);
}

static lamp_status lamp__run_init(lamp__run *r, lamp_model_workspace *ws) {
  r->ws = ws;
  r->ctx = ws->ctx;
  r->c = &ws->model->cfg;
  r->S = ws->shape.prompt + ws->tokens;
  r->N = ws->shape.prompt + ws->batch * ws->tokens;
  r->NG = lamp__gemm_rows(r->N);
  r->r0 = 0;
  r->NA = lamp__gemm_rows(ws->shape.prompt + ws->shape.batch * ws->shape.tokens);
  r->prefix = NULL;
  r->HD = r->c->n_heads * r->c->head_dim;
  r->W = r->HD + 2 * r->c->n_kv_heads * r->c->head_dim;
  r->sandwich = lamp__arch_gemma(r->c->arch);
  if (!ws->batch || !ws->n_out)
    return lamp__fail(ws->ctx, LAMP_ERR_INVALID_ARGUMENT, "model: set the batch and its output "
                      "positions before running");
  return LAMP_OK;
}

/* lamp_model_forward, or with `prefix` lamp_model_forward_prefixed (checked by the caller). */
static lamp_status lamp__forward(lamp_model_workspace *ws, lamp_model_head head,
                                 const lamp_model_cache *prefix) {
  lamp__run r;
  LAMP__TRY(lamp__run_init(&r, ws));
  if (prefix) {
    r.r0 = ws->shape.prompt;
    r.prefix = prefix;
  }
  lamp_context *ctx = ws->ctx;
  const lamp_model_config *c = r.c;
  if (head != LAMP_MODEL_HEAD_VOCAB && head != LAMP_MODEL_HEAD_LABELS)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model forward: unknown head %d", (int)head);
  if (head == LAMP_MODEL_HEAD_LABELS) {
    if (!ws->n_labels)
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model forward: the label head needs "
                        "lamp_model_set_labels first");
    for (size_t m = 0; m < ws->n_out; m++)
      if (ws->targets[m] >= (int32_t)ws->n_labels)
        return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model forward: target %ld of output "
                          "%zu is not one of the %zu labels", (long)ws->targets[m], m,
                          ws->n_labels);
  }
  ws->forward_done = 0;
  const size_t C = c->n_embd, F = c->n_ff, N = r.N, M = ws->n_out, L = c->n_layers;
  const size_t P = prefix ? 0 : ws->shape.prompt; /* the prompt rows embedded */
  lamp_tensor x0 = lamp__run_mat(&r, ws->xs[0], C, 0);
  lamp_tensor prompt = lamp__model_mat(ws->prompt, C, P ? P : 1);
  LAMP__TRY(lamp__model_embed(ws->model, &x0, P ? &prompt : NULL, ws->ids, ws->lengths_dev,
                              ws->batch, ws->tokens, P));
  if (r.sandwich) {
    /* Gemma 3's embedding module scales the token rows only, Gemma 2's model every row; a
     * prefixed forward has embedded its token rows alone */
    lamp__region tok = ws->xs[0];
    size_t first = r.r0 + (lamp__arch_prompt_scaled(c->arch) ? 0 : P);
    tok.offset += first * C * sizeof(float);
    lamp_tensor xt = lamp__model_mat(tok, C, N - first);
    LAMP__TRY(lamp_tensor_scale(ctx, &xt, lamp__model_embed_scale(c)));
  }
  lamp_tensor h = lamp__run_mat(&r, ws->h, C, 0), tmp = lamp__run_mat(&r, ws->tmp, C, 0);
  lamp_tensor a = lamp__run_mat(&r, ws->a, F, 0), ag = lamp__run_mat(&r, ws->a, F, 1);
  lamp_tensor tmpg = lamp__run_mat(&r, ws->tmp, C, 1);
  lamp_tensor rstd1 = lamp__run_vec(&r, lamp__slot_of(&r, 0)->rstd1);
  lamp_tensor an0 = lamp__model_mat(ws->model->layers[0].attn_norm, C, 1);
  LAMP__TRY(lamp__llama_rmsnorm_forward(ctx, &h, &rstd1, &x0, &an0, c->norm_eps));
  for (size_t l = 0; l < L; l++) {
    const lamp__layer *y = &ws->model->layers[l];
    lamp__slot *sl = lamp__slot_of(&r, l);
    LAMP__TRY(lamp__block_front(&r, l));
    lamp_tensor gu = lamp__run_mat(&r, sl->gu, 2 * F, 0), xmid = lamp__run_mat(&r, sl->xmid, C, 0);
    if (r.sandwich) {
      LAMP__TRY(lamp__block_down(&r, l));
    } else {
      lamp_tensor wdown;
      LAMP__TRY(lamp__llama_swiglu_forward(ctx, &a, &gu));
      LAMP__TRY(lamp__model_weight(ws->model, &y->wdown, &wdown));
      LAMP__TRY(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_TRANS, 1.0f, &ag, &wdown, 0.0f, &tmpg));
    }
    if (l + 1 < L) {
      lamp_tensor xn = lamp__run_mat(&r, ws->xs[l + 1], C, 0);
      lamp_tensor r1 = lamp__run_vec(&r, lamp__slot_of(&r, l + 1)->rstd1);
      lamp_tensor an = lamp__model_mat(ws->model->layers[l + 1].attn_norm, C, 1);
      LAMP__TRY(lamp__llama_rmsnorm_add_forward(ctx, &xn, &h, &r1, &xmid, &tmp, &an,
                                                c->norm_eps));
    } else {
      /* Only the chosen rows go on: the last residual add and the final norm run on M rows.
       * The chosen rows count from the first prompt row. */
      lamp_tensor xsel = lamp__model_mat(ws->xsel, C, M), tsel = lamp__model_mat(ws->tsel, C, M);
      lamp_tensor xl = lamp__model_mat(ws->xl, C, M), hf = lamp__model_mat(ws->hf, C, M);
      lamp_tensor rf = lamp__model_mat(ws->rstdf, M, 1);
      lamp_tensor on = lamp__model_mat(ws->model->out_norm, C, 1);
      lamp_tensor xall = lamp__model_mat(sl->xmid, C, N), tall = lamp__model_mat(ws->tmp, C, N);
      LAMP__TRY(lamp__llama_gather(ctx, &xsel, &xall, ws->out_rows));
      LAMP__TRY(lamp__llama_gather(ctx, &tsel, &tall, ws->out_rows));
      LAMP__TRY(lamp__llama_rmsnorm_add_forward(ctx, &xl, &hf, &rf, &xsel, &tsel, &on,
                                                c->norm_eps));
    }
  }
  size_t width = head == LAMP_MODEL_HEAD_LABELS ? ws->n_labels : c->n_vocab;
  lamp_tensor hf = lamp__model_mat(ws->hf, C, M), logits = lamp__model_mat(ws->logits, width, M);
  if (head == LAMP_MODEL_HEAD_LABELS) {
    lamp_tensor out = lamp__model_mat(ws->wlab, C, width);
    LAMP__TRY(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_TRANS, 1.0f, &hf, &out, 0.0f, &logits));
  } else {
    LAMP__TRY(lamp__model_head_forward(ws->model, &hf, &logits, 0));
  }
  if (c->final_softcap > 0.0f)
    LAMP__TRY(lamp__llama_softcap_forward(ctx, &logits, c->final_softcap));
  if (ws->has_targets) {
    lamp_tensor loss = lamp__model_mat(ws->loss, M, 1), lse = lamp__model_mat(ws->lse_ce, M, 1);
    LAMP__TRY(lamp__llama_cross_entropy_forward(ctx, &loss, &lse, &logits, ws->targets_dev));
  }
  ws->last_head = head;
  ws->forward_done = 1;
  ws->prefixed = prefix != NULL;
  return LAMP_OK;
}

lamp_status lamp_model_forward(lamp_model_workspace *ws, lamp_model_head head) {
  if (!ws) return LAMP_ERR_INVALID_ARGUMENT;
  return lamp__forward(ws, head, NULL);
}

lamp_status lamp_model_forward_prefixed(lamp_model_workspace *ws, const lamp_model_cache *prefix,
                                        lamp_model_head head) {
  if (!ws || !prefix)
    return lamp__fail(ws ? ws->ctx : NULL, LAMP_ERR_INVALID_ARGUMENT,
                      "lamp_model_forward_prefixed: NULL argument");
  LAMP__TRY(lamp__cache_prefix_check(prefix, ws));
  return lamp__forward(ws, head, prefix);
}

lamp_status lamp_model_backward(lamp_model_workspace *ws) {
  if (!ws) return LAMP_ERR_INVALID_ARGUMENT;
  lamp__run r;
  LAMP__TRY(lamp__run_init(&r, ws));
  lamp_context *ctx = ws->ctx;
  const lamp_model_config *c = r.c;
  if (!ws->forward_done || !ws->has_targets || !ws->shape.prompt)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model backward needs a prompt and a "
                      "forward with targets on the current batch");
  if (ws->prefixed)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "model backward: the last forward took the "
                      "prompt's keys and values from a cache, which keeps no gradient path to "
                      "the prompt; run lamp_model_forward");
  const size_t C = c->n_embd, F = c->n_ff, N = r.N, NG = r.NG, M = ws->n_out, L = c->n_layers;
  const size_t P = ws->shape.prompt, H = c->n_heads;
  const lamp_model_head head = ws->last_head;
  const size_t width = lamp__head_width(ws, head);
  /* d(mean loss): rows without a target get no gradient; no target at all gives zeros. */
  float scale = ws->n_targets ? 1.0f / (float)ws->n_targets : 0.0f;
  lamp_tensor logits = lamp__model_mat(ws->logits, width, M);
  lamp_tensor dlogits = lamp__model_mat(ws->dlogits, width, M);
  lamp_tensor lse = lamp__model_mat(ws->lse_ce, M, 1);
  LAMP__TRY(lamp__llama_cross_entropy_backward(ctx, &dlogits, &logits, &lse, ws->targets_dev,
                                               scale));
  if (c->final_softcap > 0.0f)
    LAMP__TRY(lamp__llama_softcap_backward(ctx, &dlogits, &logits, c->final_softcap));
  lamp_tensor dhf = lamp__model_mat(ws->dhf, C, M), dxl = lamp__model_mat(ws->dxl, C, M);
  lamp_tensor xl = lamp__model_mat(ws->xl, C, M), rf = lamp__model_mat(ws->rstdf, M, 1);
  lamp_tensor on = lamp__model_mat(ws->model->out_norm, C, 1);
  if (head == LAMP_MODEL_HEAD_LABELS) {
    lamp_tensor out = lamp__model_mat(ws->wlab, C, width);
    LAMP__TRY(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, &dlogits, &out, 0.0f, &dhf));
  } else {
    LAMP__TRY(lamp__model_head_backward(ws->model, &dlogits, &dhf));
  }
  LAMP__TRY(lamp__llama_rmsnorm_backward(ctx, &dxl, &dhf, &xl, &rf, &on, 0));
  lamp_tensor dr = lamp__model_mat(ws->dr, C, N);
  LAMP__TRY(lamp_tensor_fill(ctx, &dr, 0.0f));
  LAMP__TRY(lamp__llama_scatter(ctx, &dr, &dxl, ws->out_rows));

  lamp_tensor h = lamp__model_mat(ws->h, C, N), dh = lamp__model_mat(ws->tmp, C, N);
  lamp_tensor da = lamp__model_mat(ws->a, F, N), dgu = lamp__model_mat(ws->dgu, 2 * F, N);
  lamp_tensor dout = lamp__model_mat(ws->dout, r.HD, N), dqkv = lamp__model_mat(ws->dqkv, r.W, N);
  lamp_tensor drg = lamp__model_mat(ws->dr, C, NG), dhg = lamp__model_mat(ws->tmp, C, NG);
  lamp_tensor dag = lamp__model_mat(ws->a, F, NG), dgug = lamp__model_mat(ws->dgu, 2 * F, NG);
  lamp_tensor doutg = lamp__model_mat(ws->dout, r.HD, NG);
  lamp_tensor dqkvg = lamp__model_mat(ws->dqkv, r.W, NG);
  lamp_tensor delta = lamp__model_mat(ws->delta, H, N);
  for (size_t l = L; l-- > 0;) {
    const lamp__layer *y = &ws->model->layers[l];
    lamp__slot *sl = lamp__slot_of(&r, l);
    lamp_tensor xin = lamp__model_mat(ws->xs[l], C, N);
    lamp_tensor rstd1 = lamp__model_mat(sl->rstd1, N, 1), rstd2 = lamp__model_mat(sl->rstd2, N, 1);
    lamp_tensor an = lamp__model_mat(y->attn_norm, C, 1), fn = lamp__model_mat(y->ffn_norm, C, 1);
    if (ws->shape.recompute) {
      LAMP__TRY(lamp__llama_rmsnorm_forward(ctx, &h, &rstd1, &xin, &an, c->norm_eps));
      LAMP__TRY(lamp__block_front(&r, l));
      if (r.sandwich) LAMP__TRY(lamp__block_down(&r, l));
    }
    lamp_tensor gu = lamp__model_mat(sl->gu, 2 * F, N), xmid = lamp__model_mat(sl->xmid, C, N);
    lamp_tensor qkv = lamp__model_mat(sl->qkv, r.W, N), o = lamp__model_mat(sl->o, r.HD, N);
    lamp_tensor alse = lamp__model_mat(sl->lse, H, N);
    lamp_tensor w;
    /* MLP: x_{l+1} = xmid + Wdown swiglu(Wgu norm(xmid)); Gemma: xmid + post_norm(Wdown
     * geglu(Wgu norm(xmid))), the post norm's gradient in dh until Wgu's product overwrites it */
    LAMP__TRY(lamp__model_weight(ws->model, &y->wdown, &w));
    if (r.sandwich) {
      lamp_tensor pf = lamp__model_mat(sl->pf, C, N), r4 = lamp__model_mat(sl->rstd4, N, 1);
      lamp_tensor pn = lamp__model_mat(y->post_ffn_norm, C, 1);
      LAMP__TRY(lamp__llama_rmsnorm_backward(ctx, &dh, &dr, &pf, &r4, &pn, 0));
      LAMP__TRY(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, &dhg, &w, 0.0f, &dag));
      LAMP__TRY(lamp__llama_geglu_backward(ctx, &dgu, &da, &gu));
    } else {
      LAMP__TRY(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, &drg, &w, 0.0f, &dag));
      LAMP__TRY(lamp__llama_swiglu_backward(ctx, &dgu, &da, &gu));
    }
    LAMP__TRY(lamp__model_weight(ws->model, &y->wgu, &w));
    LAMP__TRY(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, &dgug, &w, 0.0f, &dhg));
    LAMP__TRY(lamp__llama_rmsnorm_backward(ctx, &dr, &dh, &xmid, &rstd2, &fn, 1));
    /* attention: xmid = x_l + Wo attn(rope(Wqkv norm(x_l))) */
    LAMP__TRY(lamp__model_weight(ws->model, &y->wo, &w));
    if (r.sandwich) {
      lamp_tensor pa = lamp__model_mat(sl->pa, C, N), r3 = lamp__model_mat(sl->rstd3, N, 1);
      lamp_tensor pn = lamp__model_mat(y->post_attn_norm, C, 1);
      LAMP__TRY(lamp__llama_rmsnorm_backward(ctx, &dh, &dr, &pa, &r3, &pn, 0));
      LAMP__TRY(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, &dhg, &w, 0.0f, &doutg));
    } else {
      LAMP__TRY(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, &drg, &w, 0.0f, &doutg));
    }
    LAMP__TRY(lamp__llama_attention_backward(ctx, &dqkv, &delta, &qkv, &o, &dout, &alse,
                                             ws->valid, ws->batch, P, ws->tokens, H,
                                             c->n_kv_heads, c->head_dim,
                                             lamp__model_query_scale(c), c->attn_softcap,
                                             lamp__model_layer_window(c, l)));
    lamp_tensor cs, sn;
    lamp__rope_of(&r, l, &cs, &sn);
    LAMP__TRY(lamp__llama_rope(ctx, &dqkv, H + c->n_kv_heads, c->head_dim, P, ws->tokens, &cs,
                               &sn, 1));
    if (lamp__arch_qk_norm(c->arch)) {
      const size_t QK = H + c->n_kv_heads;
      lamp_tensor qk = lamp__model_mat(sl->qk, QK * c->head_dim, N);
      lamp_tensor rq = lamp__model_mat(sl->rstd_qk, QK, N);
      lamp_tensor wq = lamp__model_mat(y->q_norm, c->head_dim, 1);
      lamp_tensor wk = lamp__model_mat(y->k_norm, c->head_dim, 1);
      LAMP__TRY(lamp__llama_rmsnorm_heads_backward(ctx, &dqkv, &qk, &rq, &wq, &wk, H, QK,
                                                   c->head_dim));
    }
    LAMP__TRY(lamp__model_weight(ws->model, &y->wqkv, &w));
    LAMP__TRY(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, &dqkvg, &w, 0.0f, &dhg));
    LAMP__TRY(lamp__llama_rmsnorm_backward(ctx, &dr, &dh, &xin, &rstd1, &an, 1));
  }
  lamp_tensor dprompt = lamp__model_mat(ws->dprompt, C, P);
  LAMP__TRY(lamp__llama_embedding_backward(ctx, &dprompt, &dr, ws->batch, ws->tokens, P));
  if (!lamp__arch_prompt_scaled(c->arch)) return LAMP_OK;
  return lamp_tensor_scale(ctx, &dprompt, lamp__model_embed_scale(c));
}
