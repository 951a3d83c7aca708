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
lamp__region lamp__model_reserve_bytes(size_t *cursor, size_t bytes) {
  lamp__region r = {NULL, *cursor};
  *cursor += (bytes + LAMP__MODEL_ALIGN - 1) / LAMP__MODEL_ALIGN * LAMP__MODEL_ALIGN;
  return r;
}

lamp__region lamp__model_reserve(size_t *cursor, size_t floats) {
  return lamp__model_reserve_bytes(cursor, floats * 4);
}

lamp_status lamp__model_alloc(lamp_context *ctx, size_t bytes, const char *what,
                                      cl_mem *out) {
  if (bytes == 0) bytes = LAMP__MODEL_ALIGN;
  return lamp__buffer_create(ctx, CL_MEM_READ_WRITE, bytes, NULL, what, out);
}

int lamp__model_layer_local(const lamp_model_config *c, size_t l) {
  return c->window_pattern && (l + 1) % c->window_pattern != 0;
}

int lamp__model_rope_split(const lamp_model_config *c) {
  return c->rope_base_local > 0.0f && c->rope_base_local != c->rope_base;
}

lamp_status lamp__model_rope_tables(lamp_context *ctx, const lamp_model_config *c, double base,
                                    size_t positions, lamp__region cos_t, lamp__region sin_t) {
  size_t half = c->head_dim / 2;
  float *cs = malloc(positions * half * sizeof(float)), *sn = malloc(positions * half * sizeof(float));
  if (!cs || !sn) {
    free(cs);
    free(sn);
    return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory for RoPE tables");
  }
  for (size_t t = 0; t < positions; t++)
    for (size_t i = 0; i < half; i++) {
      double freq = pow(base, -2.0 * (double)i / (double)c->head_dim);
      cs[t * half + i] = (float)cos((double)t * freq);
      sn[t * half + i] = (float)sin((double)t * freq);
    }
  lamp_status st = lamp__model_write(ctx, cos_t, 0, cs, positions * half);
  if (st == LAMP_OK) st = lamp__model_write(ctx, sin_t, 0, sn, positions * half);
  free(cs);
  free(sn);
  return st;
}

lamp_status lamp__model_write(lamp_context *ctx, lamp__region r, size_t float_offset,
                               const float *data, size_t floats) {
  LAMP__CL(ctx, clEnqueueWriteBuffer(ctx->queue, r.buffer, CL_TRUE, r.offset + 4 * float_offset,
                                     4 * floats, data, 0, NULL, NULL));
  return LAMP_OK;
}

/* ---- configuration and weights ---------------------------------------------------------- */

float lamp__model_query_scale(const lamp_model_config *c) {
  return c->query_scale > 0.0f ? c->query_scale : (float)(1.0 / sqrt((double)c->head_dim));
}

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
  const float local = c->rope_base_local;
  if (local != 0.0f && (!(local > 1.0f) || !isfinite(local)))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model config: local RoPE base %g must be "
                      "> 1 (0: none)", (double)c->rope_base_local);
  if (!lamp_model_arch_name(c->arch))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model config: unknown architecture %d",
                      c->arch);
  if (!(c->query_scale >= 0.0f) || !isfinite(c->query_scale) || !(c->attn_softcap >= 0.0f) ||
      !isfinite(c->attn_softcap) || !(c->final_softcap >= 0.0f) || !isfinite(c->final_softcap))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "model config: query scale %g and soft "
                      "caps %g (attention), %g (logits) must be finite and non-negative (0: "
                      "default, none)", (double)c->query_scale, (double)c->attn_softcap,
                      (double)c->final_softcap);
  /* biases would need llama.cpp's Q/K reordering too; no such architecture exists */
  if (c->qkv_bias && lamp__arch_gguf_permuted(c->arch))
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "model config: Q/K/V biases are supported for "
                      "qwen2 and phi3 only, not %s", lamp_model_arch_name(c->arch));
  return LAMP_OK;
}

/* A per-block name ending in ".bias" is complete; any other gets ".weight". */
static void lamp__tensor_name(lamp_model_names names, const char *gguf, const char *hf, long layer,
                              char *out, size_t size) {
  const char *base = names == LAMP_MODEL_NAMES_GGUF ? gguf : hf;
  size_t n = strlen(base);
  const char *suffix = n > 5 && !strcmp(base + n - 5, ".bias") ? "" : ".weight";
  if (layer < 0) snprintf(out, size, "%s", base);
  else if (names == LAMP_MODEL_NAMES_GGUF) snprintf(out, size, "blk.%ld.%s%s", layer, gguf, suffix);
  else snprintf(out, size, "model.layers.%ld.%s%s", layer, hf, suffix);
}

size_t lamp__model_type_bytes(lamp_ggml_type type, size_t rows, size_t cols) {
  size_t block = lamp_ggml_block_elements(type), bytes = lamp_ggml_block_bytes(type);
  if (!block || cols % block) return 0;
  return rows * (cols / block * bytes);
}

/* The model's tensors in load order: one entry per file tensor. `matrix` NULL is a norm. */
typedef struct lamp__entry {
  const char *gguf, *hf;
  long layer;
  size_t rows, cols;
  lamp__matrix *matrix; /* the matrix this tensor is a part of, or NULL */
  lamp__region *norm;   /* a norm's region */
  size_t first_row;     /* of the matrix */
  size_t permute_heads; /* > 0: llama.cpp's Q/K row order (model.h) */
  int plus_one;         /* a Gemma norm: Hugging Face's files hold w of the scale 1 + w */
  lamp__raw_tensor raw; /* type and size (described before the plan) */
} lamp__entry;

typedef struct lamp__build {
  lamp_context *ctx;
  lamp_model_config c;
  lamp_model_names names;
  lamp__raw_lookup_fn lookup;
  void *user;
  lamp__entry *e;
  size_t n;
  lamp__matrix embd, output;
  lamp__region out_norm;
  lamp__layer *layers;
} lamp__build;

static void lamp__add(lamp__build *b, const char *gguf, const char *hf, long layer, size_t rows,
                      size_t cols, lamp__matrix *matrix, lamp__region *norm, size_t first_row,
                      size_t permute_heads) {
  lamp__entry *e = &b->e[b->n++];
  memset(e, 0, sizeof(*e));
  e->gguf = gguf, e->hf = hf, e->layer = layer, e->rows = rows, e->cols = cols;
  e->matrix = matrix, e->norm = norm, e->first_row = first_row, e->permute_heads = permute_heads;
  if (matrix) {
    matrix->cols = cols;
    if (first_row + rows > matrix->rows) matrix->rows = first_row + rows;
  }
}

/* Lists every tensor the configuration needs, in load order. */
static lamp_status lamp__build_init(lamp__build *b) {
  const lamp_model_config *c = &b->c;
  const size_t C = c->n_embd, D = c->head_dim, HD = c->n_heads * D, KD = c->n_kv_heads * D;
  const size_t F = c->n_ff, V = c->n_vocab;
  b->layers = calloc(c->n_layers, sizeof(*b->layers));
  b->e = calloc(3 + 16 * c->n_layers, sizeof(*b->e));
  if (!b->layers || !b->e) return lamp__fail(b->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory "
                                             "for a model");
  lamp__add(b, "token_embd.weight", "model.embed_tokens.weight", -1, V, C, &b->embd, NULL, 0, 0);
  const int gemma = lamp__arch_gemma(c->arch);
  lamp__add(b, "output_norm.weight", "model.norm.weight", -1, 1, C, NULL, &b->out_norm, 0, 0);
  b->e[b->n - 1].plus_one = gemma;
  if (!c->tied_embeddings)
    lamp__add(b, "output.weight", "lm_head.weight", -1, V, C, &b->output, NULL, 0, 0);
  /* only llama.cpp's "llama" files hold Q/K rows reordered (lamp_model_arch) */
  const int permuted = lamp__arch_gguf_permuted(c->arch), fused = lamp__arch_fused(c->arch);
  const size_t HDE = HD + 2 * KD;
  for (size_t l = 0; l < c->n_layers; l++) {
    lamp__layer *y = &b->layers[l];
    long li = (long)l;
    lamp__add(b, "attn_norm", "input_layernorm", li, 1, C, NULL, &y->attn_norm, 0, 0);
    b->e[b->n - 1].plus_one = gemma;
    if (fused) {
      lamp__add(b, "attn_qkv", "self_attn.qkv_proj", li, HDE, C, &y->wqkv, NULL, 0, 0);
    } else {
      lamp__add(b, "attn_q", "self_attn.q_proj", li, HD, C, &y->wqkv, NULL, 0,
                permuted ? c->n_heads : 0);
      lamp__add(b, "attn_k", "self_attn.k_proj", li, KD, C, &y->wqkv, NULL, HD,
                permuted ? c->n_kv_heads : 0);
      lamp__add(b, "attn_v", "self_attn.v_proj", li, KD, C, &y->wqkv, NULL, HD + KD, 0);
    }
    if (lamp__arch_qk_norm(c->arch)) {
      lamp__add(b, "attn_q_norm", "self_attn.q_norm", li, 1, D, NULL, &y->q_norm, 0, 0);
      b->e[b->n - 1].plus_one = 1;
      lamp__add(b, "attn_k_norm", "self_attn.k_norm", li, 1, D, NULL, &y->k_norm, 0, 0);
      b->e[b->n - 1].plus_one = 1;
    }
    /* biases load as f32 vectors, like the norms */
    if (c->qkv_bias) {
      lamp__add(b, "attn_q.bias", "self_attn.q_proj.bias", li, 1, HD, NULL, &y->bq, 0, 0);
      lamp__add(b, "attn_k.bias", "self_attn.k_proj.bias", li, 1, KD, NULL, &y->bk, 0, 0);
      lamp__add(b, "attn_v.bias", "self_attn.v_proj.bias", li, 1, KD, NULL, &y->bv, 0, 0);
    }
    lamp__add(b, "attn_output", "self_attn.o_proj", li, C, HD, &y->wo, NULL, 0, 0);
    if (gemma) {
      /* Gemma's post_attention_layernorm follows the attention; pre_feedforward_layernorm is
       * the MLP's input norm */
      lamp__add(b, "post_attention_norm", "post_attention_layernorm", li, 1, C, NULL,
                &y->post_attn_norm, 0, 0);
      b->e[b->n - 1].plus_one = 1;
      lamp__add(b, "ffn_norm", "pre_feedforward_layernorm", li, 1, C, NULL, &y->ffn_norm, 0, 0);
      b->e[b->n - 1].plus_one = 1;
    } else {
      lamp__add(b, "ffn_norm", "post_attention_layernorm", li, 1, C, NULL, &y->ffn_norm, 0, 0);
    }
    if (fused) {
      lamp__add(b, "ffn_up", "mlp.gate_up_proj", li, 2 * F, C, &y->wgu, NULL, 0, 0);
    } else {
      lamp__add(b, "ffn_gate", "mlp.gate_proj", li, F, C, &y->wgu, NULL, 0, 0);
      lamp__add(b, "ffn_up", "mlp.up_proj", li, F, C, &y->wgu, NULL, F, 0);
    }
    lamp__add(b, "ffn_down", "mlp.down_proj", li, C, F, &y->wdown, NULL, 0, 0);
    if (gemma) {
      lamp__add(b, "post_ffw_norm", "post_feedforward_layernorm", li, 1, C, NULL,
                &y->post_ffn_norm, 0, 0);
      b->e[b->n - 1].plus_one = 1;
    }
  }
  return LAMP_OK;
}

static void lamp__build_free(lamp__build *b) {
  free(b->e);
  free(b->layers);
}

static lamp_status lamp__lookup(lamp__build *b, lamp__entry *e, int want_data,
                                lamp__raw_tensor *out) {
  char name[160], why[512] = "";
  lamp__tensor_name(b->names, e->gguf, e->hf, e->layer, name, sizeof(name));
  memset(out, 0, sizeof(*out));
  lamp_status st = b->lookup(b->user, name, e->rows, e->cols, want_data, out, why, sizeof(why));
  if (st == LAMP_OK && want_data && !out->data) st = LAMP_ERR_NOT_FOUND;
  if (st != LAMP_OK)
    return lamp__fail(b->ctx, st, "model tensor %s (%zu x %zu): %s", name, e->rows, e->cols,
                      why[0] ? why : "not provided");
  size_t need = lamp__model_type_bytes(out->type, e->rows, e->cols);
  if (!lamp_ggml_type_decodable(out->type) || !need || out->size < need)
    return lamp__fail(b->ctx, lamp_ggml_type_decodable(out->type) ? LAMP_ERR_FORMAT
                                                                   : LAMP_ERR_UNSUPPORTED,
                      "model tensor %s (%zu x %zu): type %s %s", name, e->rows, e->cols,
                      lamp_ggml_type_name(out->type),
                      lamp_ggml_type_decodable(out->type) ? "with too few bytes or rows that are "
                      "not whole blocks" : "is not one lamp decodes");
  return LAMP_OK;
}

/* Asks for every tensor's type and size (F32 mode: f32 for all), and makes a matrix stored when
 * any of its tensors is in a format other than F32. A matrix's tensors are adjacent entries. */
static lamp_status lamp__build_describe(lamp__build *b, lamp_model_weights weights) {
  for (size_t i = 0; i < b->n; i++) {
    lamp__entry *e = &b->e[i];
    if (weights == LAMP_MODEL_WEIGHTS_F32) {
      e->raw.type = LAMP_GGML_F32;
      e->raw.size = e->rows * e->cols * 4;
    } else {
      LAMP__TRY(lamp__lookup(b, e, 0, &e->raw));
    }
  }
  for (size_t i = 0, j; i < b->n; i = j) {
    lamp__matrix *m = b->e[i].matrix;
    int stored = 0;
    for (j = i; j < b->n && (j == i || (m && b->e[j].matrix == m)); j++)
      stored |= m && b->e[j].raw.type != LAMP_GGML_F32;
    for (size_t k = i; stored && k < j; k++) {
      lamp__part *p = &m->part[m->n_parts++];
      p->type = b->e[k].raw.type;
      p->rows = b->e[k].rows;
      p->row_bytes = lamp__model_type_bytes(p->type, 1, b->e[k].cols);
    }
  }
  return LAMP_OK;
}

/* Device bytes of entry e as planned: its parts' bytes when its matrix is stored, else f32. */
static size_t lamp__entry_bytes(const lamp__entry *e) {
  if (e->matrix && e->matrix->n_parts) return lamp__model_type_bytes(e->raw.type, e->rows, e->cols);
  return e->rows * e->cols * 4;
}

static size_t lamp__aligned(size_t bytes) {
  return (bytes + LAMP__MODEL_ALIGN - 1) / LAMP__MODEL_ALIGN * LAMP__MODEL_ALIGN;
}

/* Reserves entry e at *cursor: f32 matrices as one region (reserved at their first tensor),
 * stored matrices a region per part. */
static void lamp__entry_reserve(lamp__entry *e, size_t *cursor) {
  lamp__matrix *m = e->matrix;
  if (!m) {
    *e->norm = lamp__model_reserve(cursor, e->cols);
  } else if (m->n_parts) {
    size_t k = 0;
    while (k < m->n_parts && m->part[k].raw.offset != (size_t)-1) k++;
    m->part[k].raw = lamp__model_reserve_bytes(cursor, lamp__entry_bytes(e));
  } else if (e->first_row == 0) {
    m->f32 = lamp__model_reserve(cursor, m->rows * m->cols);
  }
}

static void lamp__entry_bind(lamp__entry *e, cl_mem buf) {
  lamp__matrix *m = e->matrix;
  if (!m) e->norm->buffer = buf;
  else if (!m->n_parts) m->f32.buffer = buf;
  else
    for (size_t k = 0; k < m->n_parts; k++)
      if (!m->part[k].raw.buffer) m->part[k].raw.buffer = buf;
}

/* Entries [first, last) of one device buffer: the embedding and head, or whole blocks. */
typedef struct lamp__group {
  size_t first, last, bytes;
} lamp__group;

/* Splits the entries into buffers no larger than the device allows: buffer 0 holds the
 * embedding, final norm and separate head, then blocks are packed greedily. A block larger
 * than the limit alone is its own group (the allocation reports it). Returns the count. */
static size_t lamp__build_groups(lamp__build *b, size_t limit, lamp__group *g) {
  size_t n = 0, i = 0;
  g[0].first = 0;
  g[0].bytes = 0;
  while (i < b->n && b->e[i].layer < 0) g[0].bytes += lamp__aligned(lamp__entry_bytes(&b->e[i++]));
  g[0].last = i;
  n = 1;
  while (i < b->n) {
    long layer = b->e[i].layer;
    size_t j = i, bytes = 0;
    while (j < b->n && b->e[j].layer == layer) bytes += lamp__aligned(lamp__entry_bytes(&b->e[j++]));
    if (n == 1 || g[n - 1].bytes + bytes > limit) {
      g[n].first = i;
      g[n].bytes = 0;
      n++;
    }
    g[n - 1].bytes += bytes;
    g[n - 1].last = j;
    i = j;
  }
  return n;
}

/* The largest stored block matrix, in floats, and at least 64 rows of the head. */
static size_t lamp__scratch_floats(const lamp__build *b) {
  size_t most = 0;
  for (size_t l = 0; l < b->c.n_layers; l++) {
    const lamp__matrix *ms[4] = {&b->layers[l].wqkv, &b->layers[l].wo, &b->layers[l].wgu,
                                 &b->layers[l].wdown};
    for (size_t k = 0; k < 4; k++)
      if (ms[k]->n_parts && ms[k]->rows * ms[k]->cols > most) most = ms[k]->rows * ms[k]->cols;
  }
  const lamp__matrix *head = b->c.tied_embeddings ? &b->embd : &b->output;
  if ((b->embd.n_parts || head->n_parts) && most < 64 * b->c.n_embd) most = 64 * b->c.n_embd;
  return most;
}

static lamp_status lamp__build_plan(lamp__build *b, const lamp_model_shape *shape,
                                    lamp_model_weights weights, lamp_model_plan *plan);
static void lamp__build_reset(lamp__build *b);

/* Fetches entry e's data, puts Q/K rows into Hugging Face's order and writes it: decoded to f32
 * (norms, f32 matrices) or as stored. Every value is checked to be finite. */
static lamp_status lamp__entry_load(lamp__build *b, lamp__entry *e, float *scratch,
                                    unsigned char *rows_tmp) {
  lamp__raw_tensor raw;
  LAMP__TRY(lamp__lookup(b, e, 1, &raw));
  lamp__matrix *m = e->matrix;
  int stored = m && m->n_parts;
  if (stored && raw.type != e->raw.type)
    return lamp__fail(b->ctx, LAMP_ERR_FORMAT, "model tensor %s: type changed from %s to %s "
                      "between the plan and the load", e->gguf, lamp_ggml_type_name(e->raw.type),
                      lamp_ggml_type_name(raw.type));
  const size_t n = e->rows * e->cols;
  const size_t row_bytes = lamp__model_type_bytes(raw.type, 1, e->cols);
  const unsigned char *src = raw.data;
  if (e->permute_heads && b->names == LAMP_MODEL_NAMES_GGUF) {
    size_t d = b->c.head_dim, half = d / 2;
    for (size_t h = 0; h < e->permute_heads; h++)
      for (size_t i = 0; i < half; i++)
        for (size_t j = 0; j < 2; j++)
          memcpy(rows_tmp + (h * d + j * half + i) * row_bytes,
                 src + (h * d + 2 * i + j) * row_bytes, row_bytes);
    src = rows_tmp;
  }
  char name[160];
  lamp__tensor_name(b->names, e->gguf, e->hf, e->layer, name, sizeof(name));
  LAMP__TRY(lamp_ggml_dequantize(b->ctx, raw.type, src, n / e->cols * row_bytes, scratch, n));
  for (size_t i = 0; i < n; i++)
    if (!isfinite(scratch[i]))
      return lamp__fail(b->ctx, LAMP_ERR_NUMERIC, "model tensor %s holds a non-finite value at "
                        "element %zu", name, i);
  if (e->plus_one && b->names == LAMP_MODEL_NAMES_HF)
    for (size_t i = 0; i < n; i++) scratch[i] += 1.0f;
  if (!m) return lamp__model_write(b->ctx, *e->norm, 0, scratch, n);
  if (!stored) return lamp__model_write(b->ctx, m->f32, e->first_row * e->cols, scratch, n);
  const lamp__part *p = NULL;
  for (size_t k = 0, row = 0; k < m->n_parts && !p; row += m->part[k++].rows)
    if (row == e->first_row) p = &m->part[k];
  LAMP__CL(b->ctx, clEnqueueWriteBuffer(b->ctx->queue, p->raw.buffer, CL_TRUE, p->raw.offset,
                                        e->rows * row_bytes, src, 0, NULL, NULL));
  return LAMP_OK;
}

lamp_status lamp__model_create(lamp_context *ctx, const lamp_model_config *config,
                               lamp_model_names names, lamp__raw_lookup_fn lookup, void *user,
                               const lamp_model_options *options, lamp_model **out) {
  if (!ctx || !config || !lookup || !out)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_create: NULL argument");
  *out = NULL;
  if (names != LAMP_MODEL_NAMES_GGUF && names != LAMP_MODEL_NAMES_HF)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_create: unknown naming %d",
                      (int)names);
  lamp_model_weights weights = options ? options->weights : LAMP_MODEL_WEIGHTS_AUTO;
  if (!lamp_model_weights_name(weights))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_create: unknown weights mode "
                      "%d", (int)weights);
  lamp__build b = {ctx, *config, names, lookup, user, NULL, 0, {0}, {0}, {0}, NULL};
  LAMP__TRY(lamp__model_check_config(ctx, &b.c));
  lamp_model *m = NULL;
  float *scratch = NULL;
  unsigned char *rows_tmp = NULL;
  lamp__group *groups = NULL;
  lamp_status st = lamp__build_init(&b);
  if (st == LAMP_OK && weights == LAMP_MODEL_WEIGHTS_AUTO) {
    lamp_model_plan plan;
    st = lamp__build_plan(&b, options ? options->shape : NULL, LAMP_MODEL_WEIGHTS_AUTO, &plan);
    weights = plan.weights;
  }
  if (st == LAMP_OK) {
    lamp__build_reset(&b);
    st = lamp__build_describe(&b, weights);
  }
  if (st != LAMP_OK) goto done;
  const lamp_model_config c = b.c;
  m = calloc(1, sizeof(*m));
  groups = calloc(c.n_layers + 1, sizeof(*groups));
  if (m) m->buffers = calloc(c.n_layers + 2, sizeof(cl_mem));
  size_t biggest = 0;
  for (size_t i = 0; i < b.n; i++)
    if (b.e[i].rows * b.e[i].cols > biggest) biggest = b.e[i].rows * b.e[i].cols;
  scratch = malloc(biggest * sizeof(float));
  rows_tmp = malloc(biggest * sizeof(float)); /* no format takes more than 4 bytes a value */
  if (!m || !m->buffers || !groups || !scratch || !rows_tmp) {
    st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory for a model");
    goto done;
  }
  m->ctx = ctx;
  m->cfg = c;
  m->weights = weights == LAMP_MODEL_WEIGHTS_F32 ? LAMP_MODEL_WEIGHTS_F32
                                                 : LAMP_MODEL_WEIGHTS_STORED;
  for (size_t i = 0; i < b.n; i++)
    if (b.e[i].matrix)
      for (size_t k = 0; k < b.e[i].matrix->n_parts; k++)
        b.e[i].matrix->part[k].raw.offset = (size_t)-1; /* not reserved yet */
  size_t limit = ctx->info.max_alloc_bytes ? ctx->info.max_alloc_bytes : SIZE_MAX;
  size_t n_groups = lamp__build_groups(&b, limit, groups);
  for (size_t g = 0; g < n_groups; g++) {
    size_t cursor = 0;
    for (size_t i = groups[g].first; i < groups[g].last; i++) lamp__entry_reserve(&b.e[i], &cursor);
    cl_mem buf = NULL;
    if ((st = lamp__model_alloc(ctx, cursor, g ? "the model's blocks"
                                               : "the embedding and output head", &buf)))
      goto done;
    m->buffers[m->n_buffers++] = buf;
    m->bytes += cursor;
    for (size_t i = groups[g].first; i < groups[g].last; i++) lamp__entry_bind(&b.e[i], buf);
  }
  m->scratch_floats = lamp__scratch_floats(&b);
  if (m->scratch_floats) {
    cl_mem buf = NULL;
    if ((st = lamp__model_alloc(ctx, m->scratch_floats * 4, "the weights' f32 scratch", &buf)))
      goto done;
    m->buffers[m->n_buffers++] = buf;
    m->bytes += m->scratch_floats * 4;
    m->scratch.buffer = buf;
    m->scratch.offset = 0;
  }
  for (size_t i = 0; i < b.n && st == LAMP_OK; i++)
    st = lamp__entry_load(&b, &b.e[i], scratch, rows_tmp);
  if (st != LAMP_OK) goto done;
  m->embd = b.embd;
  m->output = c.tied_embeddings ? b.embd : b.output;
  m->out_norm = b.out_norm;
  m->layers = b.layers;
  b.layers = NULL;
done:
  free(scratch);
  free(rows_tmp);
  free(groups);
  lamp__build_free(&b);
  if (st != LAMP_OK) {
    lamp_model_release(m);
    return st;
  }
  *out = m;
  return LAMP_OK;
}

/* The public f32 lookup seen as a raw one: every tensor is F32. */
typedef struct lamp__f32_lookup {
  lamp_model_lookup_fn lookup;
  void *user;
} lamp__f32_lookup;

static lamp_status lamp__f32_raw(void *user, const char *name, size_t rows, size_t cols,
                                 int want_data, lamp__raw_tensor *out, char *error,
                                 size_t error_size) {
  lamp__f32_lookup *f = user;
  out->type = LAMP_GGML_F32;
  out->size = rows * cols * sizeof(float);
  out->data = NULL;
  if (!want_data) return LAMP_OK;
  const float *data = NULL;
  lamp_status st = f->lookup(f->user, name, rows, cols, &data, error, error_size);
  out->data = data;
  return st;
}

lamp_status lamp_model_create(lamp_context *ctx, const lamp_model_config *config,
                              lamp_model_names names, lamp_model_lookup_fn lookup, void *user,
                              lamp_model **out) {
  if (!lookup) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_create: NULL lookup");
  lamp__f32_lookup f = {lookup, user};
  const lamp_model_options o = {LAMP_MODEL_WEIGHTS_F32, NULL};
  return lamp__model_create(ctx, config, names, lamp__f32_raw, &f, &o, out);
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
  if (model->embd.n_parts)
    return lamp__fail(model->ctx, LAMP_ERR_UNSUPPORTED, "lamp_model_embedding: the model keeps "
                      "its embedding as %s, with no f32 table; use lamp_model_embedding_rows",
                      lamp_ggml_type_name(model->embd.part[0].type));
  *table = lamp__model_mat(model->embd.f32, model->cfg.n_embd, model->cfg.n_vocab);
  return LAMP_OK;
}

size_t lamp_model_weight_bytes(const lamp_model *model) { return model ? model->bytes : 0; }

lamp_model_weights lamp_model_get_weights(const lamp_model *model) {
  return model ? model->weights : LAMP_MODEL_WEIGHTS_AUTO;
}

const char *lamp_model_weights_name(lamp_model_weights weights) {
  switch (weights) {
    case LAMP_MODEL_WEIGHTS_AUTO: return "auto";
    case LAMP_MODEL_WEIGHTS_F32: return "f32";
    case LAMP_MODEL_WEIGHTS_STORED: return "stored";
  }
  return NULL;
}

lamp_status lamp_model_weights_parse(const char *name, lamp_model_weights *out) {
  if (!name || !out) return LAMP_ERR_INVALID_ARGUMENT;
  for (int w = LAMP_MODEL_WEIGHTS_AUTO; w <= LAMP_MODEL_WEIGHTS_STORED; w++)
    if (!strcmp(name, lamp_model_weights_name((lamp_model_weights)w))) {
      *out = (lamp_model_weights)w;
      return LAMP_OK;
    }
  return LAMP_ERR_INVALID_ARGUMENT;
}

/* ---- the plan ---------------------------------------------------------------------------- */

/* Fills the plan of mode `weights` (F32 or STORED) from described entries. */
static void lamp__plan_fill(const lamp__build *b, const lamp_model_shape *shape,
                            lamp_model_weights weights, lamp_model_plan *p) {
  lamp_context *ctx = b->ctx;
  uint64_t f32 = 0, stored = 0, largest = 0;
  for (size_t i = 0; i < b->n; i++) {
    const lamp__entry *e = &b->e[i];
    f32 += lamp__aligned(e->rows * e->cols * 4);
    stored += lamp__aligned(e->matrix && e->matrix->n_parts ? lamp__entry_bytes(e)
                                                            : e->rows * e->cols * 4);
  }
  size_t limit = ctx->info.max_alloc_bytes ? ctx->info.max_alloc_bytes : SIZE_MAX;
  lamp__group *groups = calloc(b->c.n_layers + 1, sizeof(*groups));
  size_t n = groups ? lamp__build_groups((lamp__build *)b, limit, groups) : 0;
  for (size_t g = 0; g < n; g++)
    if (groups[g].bytes > largest) largest = groups[g].bytes;
  free(groups);
  p->weights = weights;
  p->weights_f32 = f32;
  p->weights_stored = stored;
  p->scratch = weights == LAMP_MODEL_WEIGHTS_STORED ? 4 * (uint64_t)lamp__scratch_floats(b) : 0;
  if (p->scratch > largest) largest = p->scratch;
  p->weights_total = (weights == LAMP_MODEL_WEIGHTS_STORED ? stored : f32) + p->scratch;
  p->workspace = p->activations = p->activations_full = p->activations_recompute = 0;
  if (shape) {
    uint64_t big = 0;
    lamp__workspace_plan(&b->c, shape, limit, &p->workspace, &p->activations_full,
                         &p->activations_recompute, &big);
    if (big > largest) largest = big;
    p->activations = shape->recompute ? p->activations_recompute : p->activations_full;
  }
  p->total = p->weights_total + p->workspace + p->activations;
  p->largest_buffer = largest;
  p->device_global = ctx->info.global_mem_bytes;
  p->device_max_alloc = ctx->info.max_alloc_bytes;
  p->fits = (!p->device_global || p->total <= p->device_global) &&
            (!p->device_max_alloc || largest <= p->device_max_alloc);
}

static void lamp__build_reset(lamp__build *b) {
  b->embd.n_parts = b->output.n_parts = 0;
  for (size_t l = 0; l < b->c.n_layers; l++) {
    lamp__layer *y = &b->layers[l];
    y->wqkv.n_parts = y->wo.n_parts = y->wgu.n_parts = y->wdown.n_parts = 0;
  }
}

/* The plan in mode `weights`; AUTO plans F32 and takes STORED when F32 does not fit. */
static lamp_status lamp__build_plan(lamp__build *b, const lamp_model_shape *shape,
                                    lamp_model_weights weights, lamp_model_plan *plan) {
  lamp_model_plan f32, stored;
  memset(&f32, 0, sizeof(f32));
  memset(&stored, 0, sizeof(stored));
  lamp__build_reset(b);
  LAMP__TRY(lamp__build_describe(b, LAMP_MODEL_WEIGHTS_F32));
  lamp__plan_fill(b, shape, LAMP_MODEL_WEIGHTS_F32, &f32);
  lamp__build_reset(b);
  LAMP__TRY(lamp__build_describe(b, LAMP_MODEL_WEIGHTS_STORED));
  lamp__plan_fill(b, shape, LAMP_MODEL_WEIGHTS_STORED, &stored);
  f32.weights_stored = stored.weights_stored;
  if (weights == LAMP_MODEL_WEIGHTS_AUTO)
    weights = f32.fits ? LAMP_MODEL_WEIGHTS_F32 : LAMP_MODEL_WEIGHTS_STORED;
  *plan = weights == LAMP_MODEL_WEIGHTS_F32 ? f32 : stored;
  return LAMP_OK;
}

lamp_status lamp__model_plan(lamp_context *ctx, const lamp_model_config *config,
                             lamp_model_names names, lamp__raw_lookup_fn lookup, void *user,
                             const lamp_model_shape *shape, lamp_model_weights weights,
                             lamp_model_plan *plan) {
  if (!ctx || !config || !lookup || !plan)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_plan: NULL argument");
  if (!lamp_model_weights_name(weights))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_plan: unknown weights mode %d",
                      (int)weights);
  lamp__build b = {ctx, *config, names, lookup, user, NULL, 0, {0}, {0}, {0}, NULL};
  LAMP__TRY(lamp__model_check_config(ctx, &b.c));
  lamp_status st = lamp__build_init(&b);
  if (st == LAMP_OK) st = lamp__build_plan(&b, shape, weights, plan);
  lamp__build_free(&b);
  return st;
}

int lamp__model_windowed(const lamp_model_config *c) {
  return c->arch == LAMP_MODEL_ARCH_MISTRAL || lamp__arch_gemma(c->arch);
}

size_t lamp__model_layer_window(const lamp_model_config *c, size_t l) {
  if (!c->sliding_window || !lamp__model_windowed(c)) return 0;
  return !c->window_pattern || lamp__model_layer_local(c, l) ? c->sliding_window : 0;
}

lamp_status lamp__model_check_window(lamp_context *ctx, const lamp_model_config *c,
                                     size_t positions, const char *what) {
  if (!c->sliding_window || positions <= c->sliding_window) return LAMP_OK;
  return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "%s: %zu positions exceed the model's %zu-position "
                    "attention window; lamp attends to every earlier position, which matches the "
                    "model only within the window", what, positions, c->sliding_window);
}

float lamp__model_embed_scale(const lamp_model_config *c) {
  return (float)sqrt((double)c->n_embd);
}
