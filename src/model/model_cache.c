/* Generation with a key/value cache (include/lamp/cache.h): the forward of model_run.c on a few
 * new rows at a time, with the keys and values of earlier positions read from the cache. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lamp/cache.h"
#include "model/llama_ops.h"
#include "model/model_internal.h"

/* Rows one pass through the blocks takes at most: a longer append (a prompt prefill) runs in
 * chunks, which keeps the scratch small whatever the cache length. */
#define LAMP__CACHE_CHUNK 64

struct lamp_model_cache {
  lamp_model *model;
  lamp_context *ctx;
  size_t max_positions, length;
  size_t W, HD, KVW; /* fused QKV width, query width, cache row width 2 Hkv D */
  cl_mem *buffers;   /* L key/value buffers, then the scratch, then the RoPE tables */
  size_t n_buffers, bytes;
  lamp__region *kv;  /* L of (max_positions, KVW): keys then values of each position */
  lamp__region cos_t, sin_t;         /* (max_positions, D/2), own buffers */
  lamp__region cos_l, sin_l;         /* the same for local layers of a base of their own */
  lamp__region x, h, tmp;            /* (chunk, C) */
  lamp__region qkv, o, gu, a, rstd;  /* (chunk, W), (chunk, HD), (chunk, 2F), (chunk, F), chunk */
  lamp__region xl, hf, rstdf;        /* (1, C), (1, C), 1 */
  lamp__region logits;               /* (1, V) */
  /* Gemma: a sub-layer's output before its post-norm (chunk, C); Gemma 3: Q and K before their
   * head norms (chunk, (H + Hkv) D) and those norms' rstd (chunk, H + Hkv), unused later */
  lamp__region pre, qk, rstd_qk;
  cl_mem ids;                        /* chunk cl_int */
};

static lamp_status lamp__cache_alloc(lamp_model_cache *k) {
  const lamp_model_config *c = &k->model->cfg;
  const size_t L = c->n_layers, C = c->n_embd, F = c->n_ff, R = LAMP__CACHE_CHUNK;
  k->buffers = calloc(L + 5, sizeof(cl_mem));
  k->kv = calloc(L, sizeof(lamp__region));
  if (!k->buffers || !k->kv)
    return lamp__fail(k->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory for a model cache");
  /* a buffer per layer: the whole cache may exceed the device's largest allocation */
  const size_t kv_bytes = k->max_positions * k->KVW * 4;
  for (size_t l = 0; l < L; l++) {
    LAMP__TRY(lamp__model_alloc(k->ctx, kv_bytes, "the model cache's keys and values",
                                &k->buffers[k->n_buffers]));
    k->kv[l] = (lamp__region){k->buffers[k->n_buffers++], 0};
    k->bytes += kv_bytes;
  }
  size_t cursor = 0;
  k->x = lamp__model_reserve(&cursor, R * C);
  k->h = lamp__model_reserve(&cursor, R * C);
  k->tmp = lamp__model_reserve(&cursor, R * C);
  k->qkv = lamp__model_reserve(&cursor, R * k->W);
  k->o = lamp__model_reserve(&cursor, R * k->HD);
  k->gu = lamp__model_reserve(&cursor, R * 2 * F);
  k->a = lamp__model_reserve(&cursor, R * F);
  k->rstd = lamp__model_reserve(&cursor, R);
  k->xl = lamp__model_reserve(&cursor, C);
  k->hf = lamp__model_reserve(&cursor, C);
  k->rstdf = lamp__model_reserve(&cursor, 1);
  k->logits = lamp__model_reserve(&cursor, c->n_vocab);
  const size_t QK = lamp__arch_qk_norm(c->arch) ? c->n_heads + c->n_kv_heads : 0;
  k->pre = lamp__model_reserve(&cursor, lamp__arch_gemma(c->arch) ? R * C : 0);
  k->qk = lamp__model_reserve(&cursor, R * QK * c->head_dim);
  k->rstd_qk = lamp__model_reserve(&cursor, R * QK);
  cl_mem scratch = NULL;
  LAMP__TRY(lamp__model_alloc(k->ctx, cursor, "the model cache's scratch", &scratch));
  k->buffers[k->n_buffers++] = scratch;
  k->bytes += cursor;
  lamp__region *scr[] = {&k->x,  &k->h,  &k->tmp,   &k->qkv,    &k->o,   &k->gu,
                         &k->a,  &k->rstd, &k->xl, &k->hf,  &k->rstdf, &k->logits,
                         &k->pre, &k->qk, &k->rstd_qk};
  for (size_t i = 0; i < sizeof(scr) / sizeof(scr[0]); i++) scr[i]->buffer = scratch;
  const size_t table = k->max_positions * (c->head_dim / 2) * 4;
  lamp__region *tabs[] = {&k->cos_t, &k->sin_t, &k->cos_l, &k->sin_l};
  for (size_t i = 0; i < (lamp__model_rope_split(c) ? 4u : 2u); i++) {
    LAMP__TRY(lamp__model_alloc(k->ctx, table, "the model cache's RoPE tables",
                                &k->buffers[k->n_buffers]));
    *tabs[i] = (lamp__region){k->buffers[k->n_buffers++], 0};
    k->bytes += table;
  }
  LAMP__TRY(lamp__buffer_create(k->ctx, CL_MEM_READ_WRITE, R * sizeof(cl_int), NULL,
                                "the model cache's token ids", &k->ids));
  LAMP__TRY(lamp__model_rope_tables(k->ctx, c, (double)c->rope_base, k->max_positions, k->cos_t,
                                     k->sin_t));
  if (!lamp__model_rope_split(c)) return LAMP_OK;
  return lamp__model_rope_tables(k->ctx, c, (double)c->rope_base_local, k->max_positions,
                                 k->cos_l, k->sin_l);
}

lamp_status lamp_model_cache_create(lamp_model *model, size_t max_positions,
                                    lamp_model_cache **out) {
  lamp_context *ctx = model ? model->ctx : NULL;
  if (!model || !out)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_cache_create: NULL argument");
  *out = NULL;
  if (max_positions == 0 || max_positions > 0x7fffffffu)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model cache: %zu positions; want 1 .. %u",
                      max_positions, 0x7fffffffu);
  const lamp_model_config *c = &model->cfg;
  /* the cache attends within Mistral's and Gemma's windows; elsewhere only up to one */
  if (!lamp__model_windowed(c))
    LAMP__TRY(lamp__model_check_window(ctx, c, max_positions, "model cache"));
  lamp_model_cache *k = calloc(1, sizeof(*k));
  if (!k) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory for a model cache");
  k->model = model;
  k->ctx = ctx;
  k->max_positions = max_positions;
  k->HD = c->n_heads * c->head_dim;
  k->KVW = 2 * c->n_kv_heads * c->head_dim;
  k->W = k->HD + k->KVW;
  lamp_status st = lamp__cache_alloc(k);
  if (st != LAMP_OK) {
    lamp_model_cache_release(k);
    return st;
  }
  *out = k;
  return LAMP_OK;
}

void lamp_model_cache_release(lamp_model_cache *cache) {
  if (!cache) return;
  clFinish(cache->ctx->queue);
  for (size_t i = 0; i < cache->n_buffers; i++) clReleaseMemObject(cache->buffers[i]);
  if (cache->ids) clReleaseMemObject(cache->ids);
  free(cache->buffers);
  free(cache->kv);
  free(cache);
}

size_t lamp_model_cache_length(const lamp_model_cache *cache) {
  return cache ? cache->length : 0;
}

size_t lamp_model_cache_bytes(const lamp_model_cache *cache) { return cache ? cache->bytes : 0; }

lamp_status lamp_model_cache_truncate(lamp_model_cache *cache, size_t length) {
  if (!cache) return LAMP_ERR_INVALID_ARGUMENT;
  if (length > cache->length)
    return lamp__fail(cache->ctx, LAMP_ERR_INVALID_ARGUMENT, "model cache truncate: %zu "
                      "positions asked, the cache holds %zu", length, cache->length);
  /* positions past the length are never read: attention stops at the query's own */
  cache->length = length;
  return LAMP_OK;
}

/* Region r moved on by `floats`. */
static lamp__region lamp__cache_at(lamp__region r, size_t floats) {
  r.offset += floats * 4;
  return r;
}

/* Block l on the chunk's n rows at positions p0 .. p0 + n - 1, from its normalised input h
 * (x holds the residual stream): writes the rows' keys and values into the cache, leaves the
 * residual stream after the block in x minus the MLP branch, which it leaves in tmp. */
static lamp_status lamp__cache_block(lamp_model_cache *k, size_t l, size_t n, size_t p0) {
  lamp_context *ctx = k->ctx;
  const lamp_model_config *c = &k->model->cfg;
  const size_t C = c->n_embd, F = c->n_ff, Hkv = c->n_kv_heads, D = c->head_dim;
  const lamp__layer *y = &k->model->layers[l];
  lamp_tensor fn = lamp__model_mat(y->ffn_norm, C, 1);
  lamp_tensor x = lamp__model_mat(k->x, C, n), h = lamp__model_mat(k->h, C, n);
  lamp_tensor tmp = lamp__model_mat(k->tmp, C, n), qkv = lamp__model_mat(k->qkv, k->W, n);
  lamp_tensor o = lamp__model_mat(k->o, k->HD, n), gu = lamp__model_mat(k->gu, 2 * F, n);
  lamp_tensor a = lamp__model_mat(k->a, F, n), rstd = lamp__model_mat(k->rstd, n, 1);
  const int local = lamp__model_rope_split(c) && lamp__model_layer_local(c, l);
  lamp_tensor cs = lamp__model_mat(local ? k->cos_l : k->cos_t, D / 2, k->max_positions);
  lamp_tensor sn = lamp__model_mat(local ? k->sin_l : k->sin_t, D / 2, k->max_positions);
  lamp_tensor kv = lamp__model_mat(k->kv[l], k->KVW, p0 + n);
  const int gemma = lamp__arch_gemma(c->arch);
  lamp_tensor pre = lamp__model_mat(k->pre, C, n);
  LAMP__TRY(lamp__model_product_few(k->model, &y->wqkv, &h, &qkv));
  LAMP__TRY(lamp__model_qkv_bias(k->model, l, &qkv));
  if (lamp__arch_qk_norm(c->arch)) {
    const size_t QK = c->n_heads + Hkv;
    lamp_tensor qk = lamp__model_mat(k->qk, QK * D, n), rq = lamp__model_mat(k->rstd_qk, QK, n);
    lamp_tensor wq = lamp__model_mat(y->q_norm, D, 1), wk = lamp__model_mat(y->k_norm, D, 1);
    LAMP__TRY(lamp__llama_rmsnorm_heads_forward(ctx, &qkv, &qk, &rq, &wq, &wk, c->n_heads, QK, D,
                                                c->norm_eps));
  }
  LAMP__TRY(lamp__llama_rope_at(ctx, &qkv, c->n_heads + Hkv, D, p0, &cs, &sn));
  /* the rows' keys and values (the last 2 Hkv D columns) into cache rows p0 .. p0 + n - 1 */
  const size_t src_origin[3] = {k->qkv.offset + k->HD * 4, 0, 0};
  const size_t dst_origin[3] = {k->kv[l].offset, p0, 0}, region[3] = {k->KVW * 4, n, 1};
  LAMP__CL(ctx, clEnqueueCopyBufferRect(ctx->queue, k->qkv.buffer, k->kv[l].buffer, src_origin,
                                        dst_origin, region, k->W * 4, 0, k->KVW * 4, 0, 0, NULL,
                                        NULL));
  LAMP__TRY(lamp__llama_attention_cached(ctx, &o, &qkv, &kv, p0, c->n_heads, Hkv, D,
                                         lamp__model_query_scale(c), c->attn_softcap,
                                         lamp__model_layer_window(c, l)));
  LAMP__TRY(lamp__model_product_few(k->model, &y->wo, &o, gemma ? &pre : &tmp));
  if (gemma) {
    lamp_tensor pn = lamp__model_mat(y->post_attn_norm, C, 1);
    LAMP__TRY(lamp__llama_rmsnorm_forward(ctx, &tmp, &rstd, &pre, &pn, c->norm_eps));
  }
  LAMP__TRY(lamp__llama_rmsnorm_add_forward(ctx, &x, &h, &rstd, &x, &tmp, &fn, c->norm_eps));
  LAMP__TRY(lamp__model_product_few(k->model, &y->wgu, &h, &gu));
  if (gemma) LAMP__TRY(lamp__llama_geglu_forward(ctx, &a, &gu));
  else LAMP__TRY(lamp__llama_swiglu_forward(ctx, &a, &gu));
  if (!gemma) return lamp__model_product_few(k->model, &y->wdown, &a, &tmp);
  lamp_tensor pn = lamp__model_mat(y->post_ffn_norm, C, 1);
  LAMP__TRY(lamp__model_product_few(k->model, &y->wdown, &a, &pre));
  return lamp__llama_rmsnorm_forward(ctx, &tmp, &rstd, &pre, &pn, c->norm_eps);
}

/* The n rows in x (embeddings) through every block at positions from the cache's length; with
 * `head` the logits of the last row. */
static lamp_status lamp__cache_pass(lamp_model_cache *k, size_t n, int head) {
  lamp_context *ctx = k->ctx;
  const lamp_model_config *c = &k->model->cfg;
  const size_t C = c->n_embd, L = c->n_layers, p0 = k->length;
  lamp_tensor x = lamp__model_mat(k->x, C, n), h = lamp__model_mat(k->h, C, n);
  lamp_tensor tmp = lamp__model_mat(k->tmp, C, n), rstd = lamp__model_mat(k->rstd, n, 1);
  lamp_tensor an = lamp__model_mat(k->model->layers[0].attn_norm, C, 1);
  LAMP__TRY(lamp__llama_rmsnorm_forward(ctx, &h, &rstd, &x, &an, c->norm_eps));
  for (size_t l = 0; l < L; l++) {
    LAMP__TRY(lamp__cache_block(k, l, n, p0));
    if (l + 1 < L) {
      an = lamp__model_mat(k->model->layers[l + 1].attn_norm, C, 1);
      LAMP__TRY(lamp__llama_rmsnorm_add_forward(ctx, &x, &h, &rstd, &x, &tmp, &an, c->norm_eps));
    }
  }
  if (!head) return LAMP_OK;
  /* only the last row goes on to the final norm and the output head */
  lamp_tensor xlast = lamp__model_mat(lamp__cache_at(k->x, (n - 1) * C), C, 1);
  lamp_tensor tlast = lamp__model_mat(lamp__cache_at(k->tmp, (n - 1) * C), C, 1);
  lamp_tensor xl = lamp__model_mat(k->xl, C, 1), hf = lamp__model_mat(k->hf, C, 1);
  lamp_tensor rf = lamp__model_mat(k->rstdf, 1, 1);
  lamp_tensor logits = lamp__model_mat(k->logits, c->n_vocab, 1);
  lamp_tensor on = lamp__model_mat(k->model->out_norm, C, 1);
  LAMP__TRY(lamp__llama_rmsnorm_add_forward(ctx, &xl, &hf, &rf, &xlast, &tlast, &on,
                                            c->norm_eps));
  LAMP__TRY(lamp__model_head_forward(k->model, &hf, &logits, 1));
  if (c->final_softcap > 0.0f) return lamp__llama_softcap_forward(ctx, &logits, c->final_softcap);
  return LAMP_OK;
}

/* Appends rows first .. first + n - 1 of `rows` or token ids ids[0 .. n-1] (one of them). */
static lamp_status lamp__cache_chunk(lamp_model_cache *k, const lamp_tensor *rows, size_t first,
                                     const int32_t *ids, size_t n, int head) {
  lamp_context *ctx = k->ctx;
  const size_t C = k->model->cfg.n_embd;
  if (rows) {
    LAMP__CL(ctx, clEnqueueCopyBuffer(ctx->queue, rows->buffer, k->x.buffer,
                                      rows->offset + first * C * 4, k->x.offset, n * C * 4, 0,
                                      NULL, NULL));
  } else {
    cl_int buf[LAMP__CACHE_CHUNK];
    for (size_t i = 0; i < n; i++) buf[i] = ids[i];
    LAMP__CL(ctx, clEnqueueWriteBuffer(ctx->queue, k->ids, CL_TRUE, 0, n * sizeof(cl_int), buf, 0,
                                       NULL, NULL));
    lamp_tensor x = lamp__model_mat(k->x, C, n);
    LAMP__TRY(lamp__model_rows(k->model, &k->model->embd, &x, k->ids));
  }
  /* Gemma's embedding scale: token rows, and Gemma 2's prompt rows (model_run.c) */
  const int arch = k->model->cfg.arch;
  if (lamp__arch_gemma(arch) && (!rows || lamp__arch_prompt_scaled(arch))) {
    lamp_tensor x = lamp__model_mat(k->x, C, n);
    LAMP__TRY(lamp_tensor_scale(ctx, &x, lamp__model_embed_scale(&k->model->cfg)));
  }
  LAMP__TRY(lamp__cache_pass(k, n, head));
  k->length += n;
  return LAMP_OK;
}

lamp_status lamp_model_cache_append(lamp_model_cache *cache, const lamp_tensor *rows,
                                    const int32_t *ids, size_t count, lamp_tensor *logits) {
  if (!cache) return LAMP_ERR_INVALID_ARGUMENT;
  lamp_model_cache *k = cache;
  lamp_context *ctx = k->ctx;
  const lamp_model_config *c = &k->model->cfg;
  size_t n_rows = 0;
  if (rows) {
    if (rows->dtype != LAMP_DTYPE_F32 || !lamp_tensor_is_contiguous(rows) ||
        rows->ne[0] != c->n_embd)
      return lamp__fail(ctx, LAMP_ERR_SHAPE, "model cache append: the rows must be contiguous "
                        "f32 of width %zu", c->n_embd);
    n_rows = lamp_tensor_numel(rows) / c->n_embd;
  }
  if (count && !ids)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model cache append: %zu ids, NULL array",
                      count);
  if (n_rows + count == 0)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model cache append: nothing to append");
  if (n_rows + count > k->max_positions - k->length)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model cache append: %zu rows after %zu "
                      "positions exceed the cache's %zu", n_rows + count, k->length,
                      k->max_positions);
  for (size_t i = 0; i < count; i++)
    if (ids[i] < 0 || (size_t)ids[i] >= c->n_vocab)
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model cache append: token %ld (index "
                        "%zu) outside the vocabulary 0 .. %zu", (long)ids[i], i, c->n_vocab - 1);
  const size_t start = k->length;
  lamp_status st = LAMP_OK;
  for (size_t i = 0; st == LAMP_OK && i < n_rows; i += LAMP__CACHE_CHUNK) {
    size_t n = n_rows - i < LAMP__CACHE_CHUNK ? n_rows - i : LAMP__CACHE_CHUNK;
    st = lamp__cache_chunk(k, rows, i, NULL, n, logits && !count && i + n == n_rows);
  }
  for (size_t i = 0; st == LAMP_OK && i < count; i += LAMP__CACHE_CHUNK) {
    size_t n = count - i < LAMP__CACHE_CHUNK ? count - i : LAMP__CACHE_CHUNK;
    st = lamp__cache_chunk(k, NULL, 0, ids + i, n, logits && i + n == count);
  }
  if (st != LAMP_OK) {
    k->length = start;
    return st;
  }
  if (logits) *logits = lamp__model_mat(k->logits, c->n_vocab, 1);
  return LAMP_OK;
}

lamp_status lamp__cache_prefix_check(const lamp_model_cache *k, const lamp_model_workspace *ws) {
  const size_t P = ws->shape.prompt;
  if (!P)
    return lamp__fail(ws->ctx, LAMP_ERR_INVALID_ARGUMENT, "prefixed forward: the workspace has "
                      "no prompt rows for the cache to stand for");
  if (k->model != ws->model)
    return lamp__fail(ws->ctx, LAMP_ERR_INVALID_ARGUMENT, "prefixed forward: the cache belongs "
                      "to another model than the workspace");
  if (k->length != P)
    return lamp__fail(ws->ctx, LAMP_ERR_SHAPE, "prefixed forward: the cache holds %zu "
                      "positions, the workspace's prompt is %zu rows", k->length, P);
  return LAMP_OK;
}

lamp_status lamp__cache_prefix_copy(const lamp_model_cache *k, size_t l, const lamp_tensor *qkv,
                                    size_t rows) {
  lamp_context *ctx = k->ctx;
  /* the reverse of lamp__cache_block's copy: cache rows into the key and value columns */
  const size_t src_origin[3] = {k->kv[l].offset, 0, 0};
  const size_t dst_origin[3] = {qkv->offset + k->HD * 4, 0, 0}, region[3] = {k->KVW * 4, rows, 1};
  LAMP__CL(ctx, clEnqueueCopyBufferRect(ctx->queue, k->kv[l].buffer, qkv->buffer, src_origin,
                                        dst_origin, region, k->KVW * 4, 0, k->W * 4, 0, 0, NULL,
                                        NULL));
  return LAMP_OK;
}
