/* The frozen Llama-family model: configuration and weights. */
#include "lamp/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"
#include "model/llama_ops.h"
#include "model/model_internal.h"

lamp_tensor lamp__model_mat(lamp__region r, size_t cols, size_t rows) {
  lamp_tensor t;
  memset(&t, 0, sizeof(t));
  t.buffer = r.buffer;
  t.offset = r.offset;
  t.dtype = LAMP_DTYPE_F32;
  t.ndim = 2;
  t.ne[0] = cols;
  t.ne[1] = rows;
  t.ne[2] = t.ne[3] = 1;
  t.nb[0] = 4;
  t.nb[1] = 4 * cols;
  t.nb[2] = t.nb[3] = 4 * cols * rows;
  return t;
}

/* Reserves `floats` in the buffer being planned; regions get their buffer once it exists. */
lamp__region lamp__model_reserve(size_t *cursor, size_t floats) {
  lamp__region r = {NULL, *cursor};
  size_t bytes = floats * 4;
  *cursor += (bytes + LAMP__MODEL_ALIGN - 1) / LAMP__MODEL_ALIGN * LAMP__MODEL_ALIGN;
  return r;
}

lamp_status lamp__model_alloc(lamp_context *ctx, size_t bytes, const char *what,
                                      cl_mem *out) {
  if (bytes == 0) bytes = LAMP__MODEL_ALIGN;
  return lamp__buffer_create(ctx, CL_MEM_READ_WRITE, bytes, NULL, what, out);
}

lamp_status lamp__model_write(lamp_context *ctx, lamp__region r, size_t float_offset,
                               const float *data, size_t floats) {
  LAMP__CL(ctx, clEnqueueWriteBuffer(ctx->queue, r.buffer, CL_TRUE, r.offset + 4 * float_offset,
                                     4 * floats, data, 0, NULL, NULL));
  return LAMP_OK;
}

/* ---- configuration and weights ---------------------------------------------------------- */

static lamp_status lamp__model_check_config(lamp_context *ctx, lamp_model_config *c) {
  if (!c->n_layers || !c->n_embd || !c->n_heads || !c->n_kv_heads || !c->n_ff || !c->n_vocab)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model config: layers %zu, width %zu, heads "
                      "%zu, KV heads %zu, MLP width %zu and vocabulary %zu must all be positive",
                      c->n_layers, c->n_embd, c->n_heads, c->n_kv_heads, c->n_ff, c->n_vocab);
  if (c->n_heads % c->n_kv_heads)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model config: %zu heads is not a multiple "
                      "of %zu KV heads", c->n_heads, c->n_kv_heads);
  if (!c->head_dim) {
    if (c->n_embd % c->n_heads)
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model config: width %zu is not a "
                        "multiple of %zu heads; give head_dim", c->n_embd, c->n_heads);
    c->head_dim = c->n_embd / c->n_heads;
  }
  if (c->head_dim % 2 || c->head_dim > LAMP__ATTENTION_MAX_DIM)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "model config: head width %zu must be even and "
                      "at most %d", c->head_dim, LAMP__ATTENTION_MAX_DIM);
  if (c->n_layers > 4096 || c->n_embd > 65536 || c->n_heads > 1024 || c->n_ff > 1u << 20 ||
      c->n_vocab > 1u << 24)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model config: a dimension is beyond "
                      "lamp's limits (layers 4096, width 65536, heads 1024, MLP 2^20, vocab 2^24)");
  if (!(c->rope_base > 1.0f) || !isfinite(c->rope_base) || !(c->norm_eps > 0.0f) ||
      !isfinite(c->norm_eps))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model config: RoPE base %g must be > 1 "
                      "and norm epsilon %g > 0", (double)c->rope_base, (double)c->norm_eps);
  return LAMP_OK;
}

static void lamp__tensor_name(lamp_model_names names, const char *gguf, const char *hf, long layer,
                              char *out, size_t size) {
  if (layer < 0) snprintf(out, size, "%s", names == LAMP_MODEL_NAMES_GGUF ? gguf : hf);
  else if (names == LAMP_MODEL_NAMES_GGUF) snprintf(out, size, "blk.%ld.%s.weight", layer, gguf);
  else snprintf(out, size, "model.layers.%ld.%s.weight", layer, hf);
}

/* Fetches one tensor through the caller's lookup and writes it at `float_offset` in `r`.
 * `permute_heads` > 0 puts llama.cpp's Q/K row order back into Hugging Face's (see model.h). */
static lamp_status lamp__load(lamp_model *m, lamp_model_names names, lamp_model_lookup_fn lookup,
                              void *user, const char *gguf, const char *hf, long layer,
                              size_t rows, size_t cols, lamp__region r, size_t float_offset,
                              size_t permute_heads, float *scratch) {
  char name[160], why[512] = "";
  lamp__tensor_name(names, gguf, hf, layer, name, sizeof(name));
  const float *data = NULL;
  lamp_status st = lookup(user, name, rows, cols, &data, why, sizeof(why));
  if (st != LAMP_OK || !data)
    return lamp__fail(m->ctx, st != LAMP_OK ? st : LAMP_ERR_NOT_FOUND,
                      "model tensor %s (%zu x %zu): %s", name, rows, cols,
                      why[0] ? why : "not provided");
  if (permute_heads && names == LAMP_MODEL_NAMES_GGUF) {
    size_t d = m->cfg.head_dim, half = d / 2;
    for (size_t h = 0; h < permute_heads; h++)
      for (size_t i = 0; i < half; i++)
        for (size_t j = 0; j < 2; j++)
          memcpy(scratch + (h * d + j * half + i) * cols, data + (h * d + 2 * i + j) * cols,
                 cols * sizeof(float));
    data = scratch;
  }
  for (size_t i = 0; i < rows * cols; i++)
    if (!isfinite(data[i]))
      return lamp__fail(m->ctx, LAMP_ERR_NUMERIC, "model tensor %s holds a non-finite value at "
                        "element %zu", name, i);
  return lamp__model_write(m->ctx, r, float_offset, data, rows * cols);
}

static size_t lamp__layer_floats(const lamp_model_config *c) {
  size_t hd = c->n_heads * c->head_dim, w = hd + 2 * c->n_kv_heads * c->head_dim;
  return 2 * c->n_embd + w * c->n_embd + c->n_embd * hd + 3 * c->n_ff * c->n_embd;
}

lamp_status lamp_model_create(lamp_context *ctx, const lamp_model_config *config,
                              lamp_model_names names, lamp_model_lookup_fn lookup, void *user,
                              lamp_model **out) {
  if (!ctx || !config || !lookup || !out)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_create: NULL argument");
  *out = NULL;
  if (names != LAMP_MODEL_NAMES_GGUF && names != LAMP_MODEL_NAMES_HF)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_create: unknown naming %d",
                      (int)names);
  lamp_model_config c = *config;
  LAMP__TRY(lamp__model_check_config(ctx, &c));
  lamp_model *m = calloc(1, sizeof(*m));
  if (!m) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory for a model");
  m->ctx = ctx;
  m->cfg = c;
  m->layers = calloc(c.n_layers, sizeof(*m->layers));
  m->buffers = calloc(c.n_layers + 1, sizeof(cl_mem));
  const size_t C = c.n_embd, D = c.head_dim, HD = c.n_heads * D, KD = c.n_kv_heads * D;
  const size_t W = HD + 2 * KD, F = c.n_ff, V = c.n_vocab;
  size_t biggest = V * C > W * C ? V * C : W * C;
  if (F * C > biggest) biggest = F * C;
  float *scratch = malloc(biggest * sizeof(float));
  lamp_status st = LAMP_OK;
  if (!m->layers || !m->buffers || !scratch) {
    st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory for a model");
    goto done;
  }
  /* Buffer 0: embedding, final norm, separate head; then blocks packed greedily into buffers
   * no larger than the device allows. */
  size_t cursor = 0;
  m->embd = lamp__model_reserve(&cursor, V * C);
  m->out_norm = lamp__model_reserve(&cursor, C);
  m->output = c.tied_embeddings ? m->embd : lamp__model_reserve(&cursor, V * C);
  if ((st = lamp__model_alloc(ctx, cursor, "the embedding and output head", &m->buffers[0])))
    goto done;
  m->n_buffers = 1;
  m->bytes = cursor;
  m->embd.buffer = m->out_norm.buffer = m->output.buffer = m->buffers[0];
  size_t limit = ctx->info.max_alloc_bytes ? ctx->info.max_alloc_bytes : SIZE_MAX;
  size_t layer_bytes = (lamp__layer_floats(&c) * 4 + 6 * LAMP__MODEL_ALIGN);
  for (size_t l = 0; l < c.n_layers;) {
    size_t per = limit / layer_bytes;
    if (per == 0) per = 1; /* the allocation below reports the failure */
    if (per > c.n_layers - l) per = c.n_layers - l;
    cursor = 0;
    for (size_t i = l; i < l + per; i++) {
      lamp__layer *y = &m->layers[i];
      y->attn_norm = lamp__model_reserve(&cursor, C);
      y->wqkv = lamp__model_reserve(&cursor, W * C);
      y->wo = lamp__model_reserve(&cursor, C * HD);
      y->ffn_norm = lamp__model_reserve(&cursor, C);
      y->wgu = lamp__model_reserve(&cursor, 2 * F * C);
      y->wdown = lamp__model_reserve(&cursor, C * F);
    }
    cl_mem buf = NULL;
    if ((st = lamp__model_alloc(ctx, cursor, "the model's blocks", &buf))) goto done;
    m->buffers[m->n_buffers++] = buf;
    m->bytes += cursor;
    for (size_t i = l; i < l + per; i++) {
      lamp__layer *y = &m->layers[i];
      y->attn_norm.buffer = y->wqkv.buffer = y->wo.buffer = y->ffn_norm.buffer = y->wgu.buffer =
          y->wdown.buffer = buf;
    }
    l += per;
  }

  if ((st = lamp__load(m, names, lookup, user, "token_embd.weight", "model.embed_tokens.weight",
                       -1, V, C, m->embd, 0, 0, scratch)) ||
      (st = lamp__load(m, names, lookup, user, "output_norm.weight", "model.norm.weight", -1, 1,
                       C, m->out_norm, 0, 0, scratch)))
    goto done;
  if (!c.tied_embeddings &&
      (st = lamp__load(m, names, lookup, user, "output.weight", "lm_head.weight", -1, V, C,
                       m->output, 0, 0, scratch)))
    goto done;
  for (size_t l = 0; l < c.n_layers; l++) {
    lamp__layer *y = &m->layers[l];
    long li = (long)l;
    if ((st = lamp__load(m, names, lookup, user, "attn_norm", "input_layernorm", li, 1, C,
                         y->attn_norm, 0, 0, scratch)) ||
        (st = lamp__load(m, names, lookup, user, "attn_q", "self_attn.q_proj", li, HD, C, y->wqkv,
                         0, c.n_heads, scratch)) ||
        (st = lamp__load(m, names, lookup, user, "attn_k", "self_attn.k_proj", li, KD, C, y->wqkv,
                         HD * C, c.n_kv_heads, scratch)) ||
        (st = lamp__load(m, names, lookup, user, "attn_v", "self_attn.v_proj", li, KD, C, y->wqkv,
                         (HD + KD) * C, 0, scratch)) ||
        (st = lamp__load(m, names, lookup, user, "attn_output", "self_attn.o_proj", li, C, HD,
                         y->wo, 0, 0, scratch)) ||
        (st = lamp__load(m, names, lookup, user, "ffn_norm", "post_attention_layernorm", li, 1, C,
                         y->ffn_norm, 0, 0, scratch)) ||
        (st = lamp__load(m, names, lookup, user, "ffn_gate", "mlp.gate_proj", li, F, C, y->wgu, 0,
                         0, scratch)) ||
        (st = lamp__load(m, names, lookup, user, "ffn_up", "mlp.up_proj", li, F, C, y->wgu, F * C,
                         0, scratch)) ||
        (st = lamp__load(m, names, lookup, user, "ffn_down", "mlp.down_proj", li, C, F, y->wdown, 0,
                         0, scratch)))
      goto done;
  }
done:
  free(scratch);
  if (st != LAMP_OK) {
    lamp_model_release(m);
    return st;
  }
  *out = m;
  return LAMP_OK;
}

void lamp_model_release(lamp_model *model) {
  if (!model) return;
  if (model->n_buffers) clFinish(model->ctx->queue);
  for (size_t i = 0; i < model->n_buffers; i++) clReleaseMemObject(model->buffers[i]);
  free(model->buffers);
  free(model->layers);
  free(model);
}

lamp_status lamp_model_get_config(const lamp_model *model, lamp_model_config *config) {
  if (!model || !config) return LAMP_ERR_INVALID_ARGUMENT;
  *config = model->cfg;
  return LAMP_OK;
}

lamp_status lamp_model_embedding(const lamp_model *model, lamp_tensor *table) {
  if (!model || !table) return LAMP_ERR_INVALID_ARGUMENT;
  *table = lamp__model_mat(model->embd, model->cfg.n_embd, model->cfg.n_vocab);
  return LAMP_OK;
}

size_t lamp_model_weight_bytes(const lamp_model *model) { return model ? model->bytes : 0; }
