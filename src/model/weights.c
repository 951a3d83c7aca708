/* The frozen weights as the products see them: f32 views, or stored matrices expanded by the
 * kernels of kernels/dequant.cl into the model's scratch right before each product. */
#include <stdio.h>
#include <string.h>

#include "model/llama_ops.h"
#include "model/model_internal.h"

/* The build of kernels/dequant.cl for `type`. */
static lamp_status lamp__dequant_kernel(lamp_context *ctx, lamp_ggml_type type, const char *name,
                                        cl_kernel *k) {
  char options[32];
  snprintf(options, sizeof(options), "-DLAMP_DQ=%d", (int)type);
  return lamp__kernel_variant(ctx, "dequant", options, name, k);
}

static lamp_status lamp__dequant_u32(lamp_context *ctx, size_t v, const char *what, cl_uint *out) {
  if (v > 0x7fffffffu)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "dequantise: %s = %zu is too large", what, v);
  *out = (cl_uint)v;
  return LAMP_OK;
}

lamp_status lamp__dequant_rows(lamp_context *ctx, cl_mem dst, size_t dst_off, const lamp__part *p,
                               size_t first, size_t rows, size_t cols) {
  cl_kernel k = NULL;
  LAMP__TRY(lamp__dequant_kernel(ctx, p->type, "dequant_rows", &k));
  cl_uint ur, uc;
  LAMP__TRY(lamp__dequant_u32(ctx, rows, "rows", &ur));
  LAMP__TRY(lamp__dequant_u32(ctx, cols, "columns", &uc));
  cl_ulong d_off = dst_off, s_off = p->raw.offset + first * p->row_bytes, rb = p->row_bytes;
  LAMP__TRY(lamp__arg(ctx, k, 0, sizeof(cl_mem), &dst));
  LAMP__TRY(lamp__arg(ctx, k, 1, sizeof(cl_ulong), &d_off));
  LAMP__TRY(lamp__arg(ctx, k, 2, sizeof(cl_mem), &p->raw.buffer));
  LAMP__TRY(lamp__arg(ctx, k, 3, sizeof(cl_ulong), &s_off));
  LAMP__TRY(lamp__arg(ctx, k, 4, sizeof(cl_ulong), &rb));
  LAMP__TRY(lamp__arg(ctx, k, 5, sizeof(cl_uint), &ur));
  LAMP__TRY(lamp__arg(ctx, k, 6, sizeof(cl_uint), &uc));
  size_t global[2] = {cols, rows}, local[2] = {cols < 64 ? cols : 64, 1};
  return lamp__launch(ctx, k, "dequant_rows", 2, global, local);
}

lamp_status lamp__model_weight(const lamp_model *m, const lamp__matrix *w, lamp_tensor *out) {
  if (!w->n_parts) {
    *out = lamp__model_mat(w->f32, w->cols, w->rows);
    return LAMP_OK;
  }
  if (w->rows * w->cols > m->scratch_floats)
    return lamp__fail(m->ctx, LAMP_ERR_INVALID_ARGUMENT, "model weights: a %zu x %zu matrix does "
                      "not fit the %zu-float scratch", w->rows, w->cols, m->scratch_floats);
  size_t row = 0;
  for (size_t k = 0; k < w->n_parts; k++) {
    const lamp__part *p = &w->part[k];
    LAMP__TRY(lamp__dequant_rows(m->ctx, m->scratch.buffer, m->scratch.offset / 4 + row * w->cols,
                                 p, 0, p->rows, w->cols));
    row += p->rows;
  }
  *out = lamp__model_mat(m->scratch, w->cols, w->rows);
  return LAMP_OK;
}

lamp_status lamp__model_embed(const lamp_model *m, lamp_tensor *x, const lamp_tensor *prompt,
                              cl_mem ids, cl_mem lengths, size_t batch, size_t tokens,
                              size_t prompt_rows) {
  lamp_context *ctx = m->ctx;
  const size_t C = m->cfg.n_embd, V = m->cfg.n_vocab;
  if (!m->embd.n_parts) {
    lamp_tensor table = lamp__model_mat(m->embd.f32, C, V);
    return lamp__llama_embedding_forward(ctx, x, &table, prompt, ids, lengths, batch, tokens,
                                         prompt_rows);
  }
  return lamp__dequant_embedding(ctx, x, &m->embd.part[0], prompt, ids, lengths, batch, tokens,
                                 prompt_rows, V);
}

lamp_status lamp__dequant_embedding(lamp_context *ctx, lamp_tensor *x, const lamp__part *p,
                                    const lamp_tensor *prompt, cl_mem ids, cl_mem lengths,
                                    size_t batch, size_t tokens, size_t prompt_rows,
                                    size_t vocab) {
  const size_t C = x->ne[0], V = vocab, N = prompt_rows + batch * tokens;
  if (x->dtype != LAMP_DTYPE_F32 || !lamp_tensor_is_contiguous(x) || x->offset % 4 ||
      lamp_tensor_numel(x) != N * C || (prompt_rows && (!prompt || prompt->ne[0] != C ||
                                                        lamp_tensor_numel(prompt) != prompt_rows * C)))
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "model embedding: the output must be a dense (%zu, "
                      "%zu) f32 tensor and the prompt (%zu, %zu)", N, C, prompt_rows, C);
  const lamp_tensor *pr = prompt_rows ? prompt : x;
  cl_kernel k = NULL;
  LAMP__TRY(lamp__dequant_kernel(ctx, p->type, "dequant_embedding", &k));
  cl_uint u[5];
  const size_t v[5] = {batch, tokens, prompt_rows, C, V};
  for (size_t i = 0; i < 5; i++) LAMP__TRY(lamp__dequant_u32(ctx, v[i], "a dimension", &u[i]));
  cl_ulong x_off = x->offset / 4, t_off = p->raw.offset, rb = p->row_bytes,
           p_off = pr->offset / 4;
  LAMP__TRY(lamp__arg(ctx, k, 0, sizeof(cl_mem), &x->buffer));
  LAMP__TRY(lamp__arg(ctx, k, 1, sizeof(cl_ulong), &x_off));
  LAMP__TRY(lamp__arg(ctx, k, 2, sizeof(cl_mem), &p->raw.buffer));
  LAMP__TRY(lamp__arg(ctx, k, 3, sizeof(cl_ulong), &t_off));
  LAMP__TRY(lamp__arg(ctx, k, 4, sizeof(cl_ulong), &rb));
  LAMP__TRY(lamp__arg(ctx, k, 5, sizeof(cl_mem), &pr->buffer));
  LAMP__TRY(lamp__arg(ctx, k, 6, sizeof(cl_ulong), &p_off));
  LAMP__TRY(lamp__arg(ctx, k, 7, sizeof(cl_mem), &ids));
  LAMP__TRY(lamp__arg(ctx, k, 8, sizeof(cl_mem), &lengths));
  for (cl_uint i = 0; i < 5; i++) LAMP__TRY(lamp__arg(ctx, k, 9 + i, sizeof(cl_uint), &u[i]));
  size_t global[2] = {C, N}, local[2] = {C < 64 ? C : 64, 1};
  return lamp__launch(ctx, k, "dequant_embedding", 2, global, local);
}

/* Rows of A at most for dequant_gemm_rows (kernels/dequant.cl's DQ_ROWS_MAX). */
#define LAMP__PRODUCT_ROWS_MAX 16

/* The shapes dequant_gemm_rows takes, whatever the device. */
static int lamp__product_shape_ok(lamp_ggml_type type, size_t rows, size_t cols) {
  const size_t be = lamp_ggml_block_elements(type), unit = be < 8 ? 8 : be;
  return be && rows && rows <= LAMP__PRODUCT_ROWS_MAX && cols % unit == 0 && cols <= 0x7fffffffu;
}

/* On the GPU profile the kernel runs in groups of 32 x 4; its private accumulators can make a
 * compiler allow fewer than the device does, and then the expanding path serves instead. */
static int lamp__product_groups_ok(const lamp_context *ctx, cl_kernel k) {
  size_t most = 0;
  return ctx->kprof.kind != LAMP_KERNEL_PROFILE_GPU ||
         (ctx->kprof.wg_size >= 128 &&
          clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof(most), &most,
                                   NULL) == CL_SUCCESS &&
          most >= 128);
}

int lamp__dequant_product_takes(lamp_context *ctx, lamp_ggml_type type, size_t rows,
                                size_t cols) {
  if (!lamp__product_shape_ok(type, rows, cols)) return 0;
  cl_kernel k = NULL;
  return lamp__dequant_kernel(ctx, type, "dequant_gemm_rows", &k) == LAMP_OK &&
         lamp__product_groups_ok(ctx, k);
}

/* Floats between the rows of an f32 matrix view that the product kernel takes: unit element
 * stride, 4-byte aligned, two dimensions; 0 when t is none of these. */
static size_t lamp__product_ld(const lamp_tensor *t) {
  if (t->dtype != LAMP_DTYPE_F32 || t->nb[0] != 4 || t->offset % 4 || t->ne[2] != 1 ||
      t->ne[3] != 1 || (t->ne[1] > 1 && t->nb[1] % 4))
    return 0;
  const size_t ld = t->ne[1] > 1 ? t->nb[1] / 4 : t->ne[0];
  return ld >= t->ne[0] && ld <= 0x7fffffffu ? ld : 0;
}

lamp_status lamp__dequant_product(lamp_context *ctx, lamp_tensor *c, size_t first,
                                  const lamp_tensor *a, const lamp__part *p) {
  const size_t rows = a->ne[1], cols = a->ne[0], lda = lamp__product_ld(a);
  const size_t ldc = lamp__product_ld(c);
  cl_kernel k = NULL;
  LAMP__TRY(lamp__dequant_kernel(ctx, p->type, "dequant_gemm_rows", &k));
  if (!lda || !ldc || c->ne[1] != rows || first + p->rows > c->ne[0] || p->rows > 0x7fffffffu ||
      !lamp__product_shape_ok(p->type, rows, cols) || !lamp__product_groups_ok(ctx, k))
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "dequantised product: A (%zu, %zu) against %zu %s rows "
                      "into columns %zu.. of C (%zu, %zu): A must have at most %d rows, a "
                      "multiple of the format's block and of 8 columns, and C room for the rows (on the GPU "
                      "profile the compiled kernel must also take 32 x 4 items)",
                      rows, cols, p->rows, lamp_ggml_type_name(p->type), first, c->ne[1],
                      c->ne[0], LAMP__PRODUCT_ROWS_MAX);
  cl_ulong c_off = c->offset / 4 + first, a_off = a->offset / 4, s_off = p->raw.offset;
  cl_ulong rb = p->row_bytes;
  cl_uint uc = (cl_uint)ldc, ua = (cl_uint)lda, um = (cl_uint)rows, un = (cl_uint)p->rows;
  cl_uint uk = (cl_uint)cols;
  LAMP__TRY(lamp__arg(ctx, k, 0, sizeof(cl_mem), &c->buffer));
  LAMP__TRY(lamp__arg(ctx, k, 1, sizeof(cl_ulong), &c_off));
  LAMP__TRY(lamp__arg(ctx, k, 2, sizeof(cl_uint), &uc));
  LAMP__TRY(lamp__arg(ctx, k, 3, sizeof(cl_mem), &a->buffer));
  LAMP__TRY(lamp__arg(ctx, k, 4, sizeof(cl_ulong), &a_off));
  LAMP__TRY(lamp__arg(ctx, k, 5, sizeof(cl_uint), &ua));
  LAMP__TRY(lamp__arg(ctx, k, 6, sizeof(cl_mem), &p->raw.buffer));
  LAMP__TRY(lamp__arg(ctx, k, 7, sizeof(cl_ulong), &s_off));
  LAMP__TRY(lamp__arg(ctx, k, 8, sizeof(cl_ulong), &rb));
  LAMP__TRY(lamp__arg(ctx, k, 9, sizeof(cl_uint), &um));
  LAMP__TRY(lamp__arg(ctx, k, 10, sizeof(cl_uint), &un));
  LAMP__TRY(lamp__arg(ctx, k, 11, sizeof(cl_uint), &uk));
  if (ctx->kprof.kind == LAMP_KERNEL_PROFILE_GPU) {
    size_t global[2] = {32, (p->rows + 3) / 4 * 4}, local[2] = {32, 4};
    return lamp__launch(ctx, k, "dequant_gemm_rows", 2, global, local);
  }
  size_t global = p->rows;
  return lamp__launch(ctx, k, "dequant_gemm_rows", 1, &global, NULL);
}

/* Whether dequant_gemm_rows takes every stored part of w against `rows` rows. */
static int lamp__product_fused(const lamp_model *m, const lamp__matrix *w, size_t rows) {
  if (!w->n_parts) return 0;
  for (size_t k = 0; k < w->n_parts; k++)
    if (!lamp__dequant_product_takes(m->ctx, w->part[k].type, rows, w->cols)) return 0;
  return 1;
}

lamp_status lamp__model_product_few(const lamp_model *m, const lamp__matrix *w,
                                    const lamp_tensor *a, lamp_tensor *c) {
  if (!lamp__product_fused(m, w, a->ne[1])) {
    lamp_tensor f;
    LAMP__TRY(lamp__model_weight(m, w, &f));
    return lamp__gemm_few(m->ctx, LAMP_NO_TRANS, LAMP_TRANS, 1.0f, a, &f, 0.0f, c);
  }
  if (a->ne[0] != w->cols || c->ne[0] != w->rows)
    return lamp__fail(m->ctx, LAMP_ERR_SHAPE, "model product: A has %zu columns and C %zu, the "
                      "weights are (%zu, %zu)", a->ne[0], c->ne[0], w->rows, w->cols);
  for (size_t p = 0, first = 0; p < w->n_parts; first += w->part[p].rows, p++)
    LAMP__TRY(lamp__dequant_product(m->ctx, c, first, a, &w->part[p]));
  return LAMP_OK;
}

/* Columns first .. first + cols - 1 of a dense (rows, width) f32 tensor, as a strided view. */
static lamp_tensor lamp__columns(const lamp_tensor *t, size_t first, size_t cols) {
  lamp_tensor v = *t;
  v.offset += first * 4;
  v.ne[0] = cols;
  return v;
}

/* Expands rows v0 .. v0 + *rows - 1 of the stored head into the scratch, as many as it holds,
 * and views them in *w. */
static lamp_status lamp__head_slice(const lamp_model *m, size_t v0, size_t *rows, lamp_tensor *w) {
  const size_t C = m->cfg.n_embd, V = m->cfg.n_vocab, most = m->scratch_floats / C;
  *rows = V - v0 < most ? V - v0 : most;
  *w = lamp__model_mat(m->scratch, C, *rows);
  return lamp__dequant_rows(m->ctx, m->scratch.buffer, m->scratch.offset / 4, &m->output.part[0],
                            v0, *rows, C);
}

lamp_status lamp__model_head_forward(const lamp_model *m, const lamp_tensor *hf,
                                     lamp_tensor *logits, int few) {
  lamp_context *ctx = m->ctx;
  const size_t C = m->cfg.n_embd, V = m->cfg.n_vocab;
  if (few && lamp__product_fused(m, &m->output, hf->ne[1]))
    return lamp__model_product_few(m, &m->output, hf, logits);
  lamp__gemm_fn gemm = few ? lamp__gemm_few : lamp_gemm;
  if (!m->output.n_parts) {
    lamp_tensor head = lamp__model_mat(m->output.f32, C, V);
    return gemm(ctx, LAMP_NO_TRANS, LAMP_TRANS, 1.0f, hf, &head, 0.0f, logits);
  }
  lamp_tensor w, out;
  for (size_t v0 = 0, r = 0; v0 < V; v0 += r) {
    LAMP__TRY(lamp__head_slice(m, v0, &r, &w));
    out = lamp__columns(logits, v0, r);
    LAMP__TRY(gemm(ctx, LAMP_NO_TRANS, LAMP_TRANS, 1.0f, hf, &w, 0.0f, &out));
  }
  return LAMP_OK;
}

lamp_status lamp__model_head_backward(const lamp_model *m, const lamp_tensor *dlogits,
                                      lamp_tensor *dhf) {
  lamp_context *ctx = m->ctx;
  const size_t C = m->cfg.n_embd, V = m->cfg.n_vocab;
  if (!m->output.n_parts) {
    lamp_tensor head = lamp__model_mat(m->output.f32, C, V);
    return lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, dlogits, &head, 0.0f, dhf);
  }
  lamp_tensor w, d;
  for (size_t v0 = 0, r = 0; v0 < V; v0 += r) {
    LAMP__TRY(lamp__head_slice(m, v0, &r, &w));
    d = lamp__columns(dlogits, v0, r);
    LAMP__TRY(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, &d, &w, v0 ? 1.0f : 0.0f, dhf));
  }
  return LAMP_OK;
}

lamp_status lamp__model_rows(const lamp_model *m, const lamp__matrix *w, lamp_tensor *out,
                             cl_mem idx) {
  if (!w->n_parts) {
    lamp_tensor all = lamp__model_mat(w->f32, w->cols, w->rows);
    return lamp__llama_gather(m->ctx, out, &all, idx);
  }
  return lamp__dequant_gather(m->ctx, out, &w->part[0], idx);
}

lamp_status lamp__model_qkv_bias(const lamp_model *m, size_t l, lamp_tensor *qkv) {
  const lamp_model_config *c = &m->cfg;
  if (!c->qkv_bias) return LAMP_OK;
  const lamp__layer *y = &m->layers[l];
  const size_t HD = c->n_heads * c->head_dim, KD = c->n_kv_heads * c->head_dim;
  lamp_tensor bq = lamp__model_mat(y->bq, HD, 1), bk = lamp__model_mat(y->bk, KD, 1);
  lamp_tensor bv = lamp__model_mat(y->bv, KD, 1);
  LAMP__TRY(lamp__llama_bias_add(m->ctx, qkv, 0, &bq));
  LAMP__TRY(lamp__llama_bias_add(m->ctx, qkv, HD, &bk));
  return lamp__llama_bias_add(m->ctx, qkv, HD + KD, &bv);
}

lamp_status lamp__dequant_gather(lamp_context *ctx, lamp_tensor *out, const lamp__part *p,
                                 cl_mem idx) {
  const size_t C = out->ne[0];
  if (out->dtype != LAMP_DTYPE_F32 || !lamp_tensor_is_contiguous(out) || out->offset % 4)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "dequantised gather: the output must be dense f32");
  size_t rows = lamp_tensor_numel(out) / C;
  cl_kernel k = NULL;
  LAMP__TRY(lamp__dequant_kernel(ctx, p->type, "dequant_gather", &k));
  cl_uint ur, uc;
  LAMP__TRY(lamp__dequant_u32(ctx, rows, "rows", &ur));
  LAMP__TRY(lamp__dequant_u32(ctx, C, "columns", &uc));
  cl_ulong o_off = out->offset / 4, s_off = p->raw.offset, rb = p->row_bytes;
  LAMP__TRY(lamp__arg(ctx, k, 0, sizeof(cl_mem), &out->buffer));
  LAMP__TRY(lamp__arg(ctx, k, 1, sizeof(cl_ulong), &o_off));
  LAMP__TRY(lamp__arg(ctx, k, 2, sizeof(cl_mem), &p->raw.buffer));
  LAMP__TRY(lamp__arg(ctx, k, 3, sizeof(cl_ulong), &s_off));
  LAMP__TRY(lamp__arg(ctx, k, 4, sizeof(cl_ulong), &rb));
  LAMP__TRY(lamp__arg(ctx, k, 5, sizeof(cl_mem), &idx));
  LAMP__TRY(lamp__arg(ctx, k, 6, sizeof(cl_uint), &ur));
  LAMP__TRY(lamp__arg(ctx, k, 7, sizeof(cl_uint), &uc));
  size_t global[2] = {C, rows}, local[2] = {C < 64 ? C : 64, 1};
  return lamp__launch(ctx, k, "dequant_gather", 2, global, local);
}

lamp_status lamp_model_embedding_rows(const lamp_model *model, size_t first, size_t count,
                                      lamp_tensor *dst) {
  if (!model || !dst) return LAMP_ERR_INVALID_ARGUMENT;
  lamp_context *ctx = model->ctx;
  const size_t C = model->cfg.n_embd, V = model->cfg.n_vocab;
  if (!count || first > V || count > V - first)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "embedding rows %zu .. %zu: the table has "
                      "%zu", first, first + count, V);
  if (!dst->buffer || dst->dtype != LAMP_DTYPE_F32 || !lamp_tensor_is_contiguous(dst) ||
      dst->ne[0] != C || lamp_tensor_numel(dst) != count * C || dst->offset % 4)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "embedding rows: the destination must be a dense "
                      "(%zu, %zu) f32 tensor", count, C);
  if (model->embd.n_parts)
    return lamp__dequant_rows(ctx, dst->buffer, dst->offset / 4, &model->embd.part[0], first,
                              count, C);
  const lamp__region src = model->embd.f32;
  LAMP__CL(ctx, clEnqueueCopyBuffer(ctx->queue, src.buffer, dst->buffer,
                                    src.offset + first * C * 4, dst->offset, count * C * 4, 0,
                                    NULL, NULL));
  return LAMP_OK;
}
