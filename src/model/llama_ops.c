/* Host side of the Llama-family kernels: shape checks, arguments and launch geometry. */
#include "model/llama_ops.h"

#include <math.h>
#include <string.h>

#include "runtime/internal.h"

/* Rows a work-group of the CPU profile's attention kernels covers: ATT_TILE in attention.cl,
 * halved in the program built for heads wider than 128. */
#define LAMP__ATTENTION_TILE 16
#define LAMP__ATTENTION_NARROW 128
/* Work-items per row in the row-reduction kernels (RMSNorm, cross-entropy), at most. */
#define LAMP__ROW_LOCAL 64

typedef struct lamp__karg {
  size_t size;
  const void *value;
} lamp__karg;

#define LAMP__KA(x) {sizeof(x), &(x)}

/* Sets the arguments and launches kernel `name` of `program`, built with extra `options`
 * (NULL: none). */
static lamp_status lamp__llama_run_variant(lamp_context *ctx, const char *program,
                                           const char *options, const char *name,
                                           const lamp__karg *args, size_t nargs, cl_uint dims,
                                           const size_t *global, const size_t *local) {
  cl_kernel k = NULL;
  LAMP__TRY(lamp__kernel_variant(ctx, program, options, name, &k));
  for (size_t i = 0; i < nargs; i++)
    LAMP__TRY(lamp__arg(ctx, k, (cl_uint)i, args[i].size, args[i].value));
  return lamp__launch(ctx, k, name, dims, global, local);
}

static lamp_status lamp__llama_run(lamp_context *ctx, const char *program, const char *name,
                                   const lamp__karg *args, size_t nargs, cl_uint dims,
                                   const size_t *global, const size_t *local) {
  return lamp__llama_run_variant(ctx, program, NULL, name, args, nargs, dims, global, local);
}

/* The local size of a row-reduction kernel: a power of two no larger than LAMP__ROW_LOCAL, the
 * kernel's own limit or the LAMP_WG_SIZE its local arrays were sized for. */
static lamp_status lamp__llama_row_local(lamp_context *ctx, const char *program, const char *name,
                                         size_t *local) {
  cl_kernel k = NULL;
  LAMP__TRY(lamp__kernel(ctx, program, name, &k));
  size_t limit = 0;
  LAMP__CL(ctx, clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                         sizeof(limit), &limit, NULL));
  if (ctx->kprof.wg_size < limit) limit = ctx->kprof.wg_size;
  size_t n = 1;
  while (n * 2 <= LAMP__ROW_LOCAL && n * 2 <= limit) n *= 2;
  *local = n;
  return LAMP_OK;
}

/* An f32 tensor with dense rows of `cols` floats, read as (rows, cols); rows == 0 means any. */
static lamp_status lamp__llama_mat(lamp_context *ctx, const lamp_tensor *t, const char *what,
                                   size_t cols, size_t rows) {
  if (!t || !t->buffer)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "llama op: tensor %s is NULL", what);
  if (t->dtype != LAMP_DTYPE_F32 || !lamp_tensor_is_contiguous(t) || t->offset % 4)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "llama op: tensor %s must be contiguous f32", what);
  size_t n = lamp_tensor_numel(t);
  if (t->ne[0] != cols || (rows && n != cols * rows))
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "llama op: tensor %s has %zu x %zu elements, expected "
                      "%zu x %zu", what, n / t->ne[0], t->ne[0], rows ? rows : n / cols, cols);
  return LAMP_OK;
}

static size_t lamp__rows(const lamp_tensor *t) { return lamp_tensor_numel(t) / t->ne[0]; }

static lamp_status lamp__llama_u32(lamp_context *ctx, size_t v, const char *what, cl_uint *out) {
  if (v > 0x7fffffffu)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "llama op: %s = %zu is too large", what, v);
  *out = (cl_uint)v;
  return LAMP_OK;
}

lamp_status lamp__llama_embedding_forward(lamp_context *ctx, lamp_tensor *x,
                                          const lamp_tensor *table, const lamp_tensor *prompt,
                                          cl_mem ids, cl_mem lengths, size_t batch,
                                          size_t tokens, size_t prompt_rows) {
  if (!ctx || !ids || !lengths) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "embedding: NULL");
  if (!table) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "embedding: table is NULL");
  size_t width = table->ne[0];
  LAMP__TRY(lamp__llama_mat(ctx, table, "embedding table", width, 0));
  LAMP__TRY(lamp__llama_mat(ctx, x, "embedding output", width, prompt_rows + batch * tokens));
  if (prompt_rows) LAMP__TRY(lamp__llama_mat(ctx, prompt, "prompt", width, prompt_rows));
  const lamp_tensor *p = prompt_rows ? prompt : table;
  cl_ulong x_off = x->offset / 4, t_off = table->offset / 4, p_off = p->offset / 4;
  cl_uint ub, ut, up, uc, uv;
  LAMP__TRY(lamp__llama_u32(ctx, batch, "batch", &ub));
  LAMP__TRY(lamp__llama_u32(ctx, tokens, "tokens", &ut));
  LAMP__TRY(lamp__llama_u32(ctx, prompt_rows, "prompt rows", &up));
  LAMP__TRY(lamp__llama_u32(ctx, width, "width", &uc));
  LAMP__TRY(lamp__llama_u32(ctx, lamp__rows(table), "vocabulary", &uv));
  lamp__karg a[] = {LAMP__KA(x->buffer), LAMP__KA(x_off), LAMP__KA(table->buffer), LAMP__KA(t_off),
                    LAMP__KA(p->buffer), LAMP__KA(p_off), LAMP__KA(ids), LAMP__KA(lengths),
                    LAMP__KA(ub), LAMP__KA(ut), LAMP__KA(up), LAMP__KA(uc), LAMP__KA(uv)};
  size_t global[2] = {width, prompt_rows + batch * tokens}, local[2] = {width < 64 ? width : 64, 1};
  return lamp__llama_run(ctx, "embedding", "embedding_forward", a, 13, 2, global, local);
}

lamp_status lamp__llama_embedding_backward(lamp_context *ctx, lamp_tensor *dprompt,
                                           const lamp_tensor *dx, size_t batch, size_t tokens,
                                           size_t prompt_rows) {
  if (!ctx || !dprompt || !dx)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "embedding backward: NULL");
  size_t width = dprompt->ne[0];
  LAMP__TRY(lamp__llama_mat(ctx, dprompt, "prompt gradient", width, prompt_rows));
  LAMP__TRY(lamp__llama_mat(ctx, dx, "embedding gradient", width, prompt_rows + batch * tokens));
  cl_ulong p_off = dprompt->offset / 4, x_off = dx->offset / 4;
  cl_uint up, uc;
  LAMP__TRY(lamp__llama_u32(ctx, prompt_rows, "prompt rows", &up));
  LAMP__TRY(lamp__llama_u32(ctx, width, "width", &uc));
  lamp__karg a[] = {LAMP__KA(dprompt->buffer), LAMP__KA(p_off), LAMP__KA(dx->buffer),
                    LAMP__KA(x_off), LAMP__KA(up), LAMP__KA(uc)};
  size_t global[2] = {width, prompt_rows}, local[2] = {width < 64 ? width : 64, 1};
  return lamp__llama_run(ctx, "embedding", "embedding_backward", a, 6, 2, global, local);
}

static lamp_status lamp__llama_rows_move(lamp_context *ctx, const char *name, lamp_tensor *out,
                                         const lamp_tensor *src, cl_mem idx, size_t moved) {
  if (!ctx || !out || !src || !idx)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: NULL argument", name);
  size_t width = src->ne[0];
  LAMP__TRY(lamp__llama_mat(ctx, src, "source rows", width, 0));
  LAMP__TRY(lamp__llama_mat(ctx, out, "destination rows", width, 0));
  cl_ulong o_off = out->offset / 4, s_off = src->offset / 4;
  cl_uint um, uc;
  LAMP__TRY(lamp__llama_u32(ctx, moved, "rows", &um));
  LAMP__TRY(lamp__llama_u32(ctx, width, "width", &uc));
  lamp__karg a[] = {LAMP__KA(out->buffer), LAMP__KA(o_off), LAMP__KA(src->buffer),
                    LAMP__KA(s_off), LAMP__KA(idx), LAMP__KA(um), LAMP__KA(uc)};
  size_t global[2] = {width, moved}, local[2] = {width < 64 ? width : 64, 1};
  return lamp__llama_run(ctx, "embedding", name, a, 7, 2, global, local);
}

lamp_status lamp__llama_gather(lamp_context *ctx, lamp_tensor *out, const lamp_tensor *src,
                               cl_mem idx) {
  if (!out) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "gather: NULL output");
  return lamp__llama_rows_move(ctx, "embedding_gather", out, src, idx, lamp__rows(out));
}

lamp_status lamp__llama_scatter(lamp_context *ctx, lamp_tensor *dst, const lamp_tensor *src,
                                cl_mem idx) {
  if (!src) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "scatter: NULL source");
  return lamp__llama_rows_move(ctx, "embedding_scatter", dst, src, idx, lamp__rows(src));
}

lamp_status lamp__llama_bias_add(lamp_context *ctx, lamp_tensor *x, size_t col,
                                 const lamp_tensor *b) {
  if (!ctx || !x || !b) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "bias add: NULL input");
  size_t stride = x->ne[0], width = b->ne[0];
  LAMP__TRY(lamp__llama_mat(ctx, x, "bias add rows", stride, 0));
  LAMP__TRY(lamp__llama_mat(ctx, b, "bias", width, 1));
  if (col > stride || width > stride - col)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "llama op: a bias of %zu at column %zu exceeds rows "
                      "of %zu", width, col, stride);
  cl_ulong x_off = x->offset / 4, b_off = b->offset / 4;
  cl_uint us, ucol, un, uw;
  LAMP__TRY(lamp__llama_u32(ctx, stride, "row width", &us));
  LAMP__TRY(lamp__llama_u32(ctx, col, "column", &ucol));
  LAMP__TRY(lamp__llama_u32(ctx, lamp__rows(x), "rows", &un));
  LAMP__TRY(lamp__llama_u32(ctx, width, "bias width", &uw));
  lamp__karg a[] = {LAMP__KA(x->buffer), LAMP__KA(x_off), LAMP__KA(us), LAMP__KA(ucol),
                    LAMP__KA(b->buffer), LAMP__KA(b_off), LAMP__KA(un), LAMP__KA(uw)};
  size_t global[2] = {width, un}, local[2] = {width < 64 ? width : 64, 1};
  return lamp__llama_run(ctx, "bias_add", "bias_add_rows", a, 8, 2, global, local);
}

lamp_status lamp__llama_rmsnorm_forward(lamp_context *ctx, lamp_tensor *y, lamp_tensor *rstd,
                                        const lamp_tensor *x, const lamp_tensor *w, float eps) {
  if (!ctx || !x) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "rmsnorm: NULL input");
  size_t width = x->ne[0];
  LAMP__TRY(lamp__llama_mat(ctx, x, "rmsnorm input", width, 0));
  size_t rows = lamp__rows(x);
  LAMP__TRY(lamp__llama_mat(ctx, y, "rmsnorm output", width, rows));
  LAMP__TRY(lamp__llama_mat(ctx, w, "rmsnorm weight", width, 1));
  LAMP__TRY(lamp__llama_mat(ctx, rstd, "rmsnorm rstd", rows, 1));
  cl_ulong y_off = y->offset / 4, r_off = rstd->offset / 4, x_off = x->offset / 4,
           w_off = w->offset / 4;
  cl_uint uc, un;
  LAMP__TRY(lamp__llama_u32(ctx, width, "width", &uc));
  LAMP__TRY(lamp__llama_u32(ctx, rows, "rows", &un));
  lamp__karg a[] = {LAMP__KA(y->buffer), LAMP__KA(y_off), LAMP__KA(rstd->buffer), LAMP__KA(r_off),
                    LAMP__KA(x->buffer), LAMP__KA(x_off), LAMP__KA(w->buffer), LAMP__KA(w_off),
                    LAMP__KA(uc), LAMP__KA(un), LAMP__KA(eps)};
  size_t local;
  LAMP__TRY(lamp__llama_row_local(ctx, "rmsnorm", "rmsnorm_forward", &local));
  size_t global = rows * local;
  return lamp__llama_run(ctx, "rmsnorm", "rmsnorm_forward", a, 11, 1, &global, &local);
}

lamp_status lamp__llama_rmsnorm_add_forward(lamp_context *ctx, lamp_tensor *s, lamp_tensor *y,
                                            lamp_tensor *rstd, const lamp_tensor *a_in,
                                            const lamp_tensor *b_in, const lamp_tensor *w,
                                            float eps) {
  if (!ctx || !a_in) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "rmsnorm_add: NULL input");
  size_t width = a_in->ne[0];
  LAMP__TRY(lamp__llama_mat(ctx, a_in, "residual input", width, 0));
  size_t rows = lamp__rows(a_in);
  LAMP__TRY(lamp__llama_mat(ctx, b_in, "residual branch", width, rows));
  LAMP__TRY(lamp__llama_mat(ctx, s, "residual sum", width, rows));
  LAMP__TRY(lamp__llama_mat(ctx, y, "rmsnorm output", width, rows));
  LAMP__TRY(lamp__llama_mat(ctx, w, "rmsnorm weight", width, 1));
  LAMP__TRY(lamp__llama_mat(ctx, rstd, "rmsnorm rstd", rows, 1));
  cl_ulong s_off = s->offset / 4, y_off = y->offset / 4, r_off = rstd->offset / 4,
           a_off = a_in->offset / 4, b_off = b_in->offset / 4, w_off = w->offset / 4;
  cl_uint uc, un;
  LAMP__TRY(lamp__llama_u32(ctx, width, "width", &uc));
  LAMP__TRY(lamp__llama_u32(ctx, rows, "rows", &un));
  lamp__karg a[] = {LAMP__KA(s->buffer), LAMP__KA(s_off), LAMP__KA(y->buffer), LAMP__KA(y_off),
                    LAMP__KA(rstd->buffer), LAMP__KA(r_off), LAMP__KA(a_in->buffer),
                    LAMP__KA(a_off), LAMP__KA(b_in->buffer), LAMP__KA(b_off),
                    LAMP__KA(w->buffer), LAMP__KA(w_off), LAMP__KA(uc), LAMP__KA(un),
                    LAMP__KA(eps)};
  size_t local;
  LAMP__TRY(lamp__llama_row_local(ctx, "rmsnorm", "rmsnorm_add_forward", &local));
  size_t global = rows * local;
  return lamp__llama_run(ctx, "rmsnorm", "rmsnorm_add_forward", a, 15, 1, &global, &local);
}

lamp_status lamp__llama_rmsnorm_backward(lamp_context *ctx, lamp_tensor *dx,
                                         const lamp_tensor *dy, const lamp_tensor *x,
                                         const lamp_tensor *rstd, const lamp_tensor *w,
                                         int accumulate) {
  if (!ctx || !x) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "rmsnorm backward: NULL");
  size_t width = x->ne[0];
  LAMP__TRY(lamp__llama_mat(ctx, x, "rmsnorm input", width, 0));
  size_t rows = lamp__rows(x);
  LAMP__TRY(lamp__llama_mat(ctx, dx, "rmsnorm input gradient", width, rows));
  LAMP__TRY(lamp__llama_mat(ctx, dy, "rmsnorm output gradient", width, rows));
  LAMP__TRY(lamp__llama_mat(ctx, w, "rmsnorm weight", width, 1));
  LAMP__TRY(lamp__llama_mat(ctx, rstd, "rmsnorm rstd", rows, 1));
  cl_ulong dx_off = dx->offset / 4, dy_off = dy->offset / 4, x_off = x->offset / 4,
           r_off = rstd->offset / 4, w_off = w->offset / 4;
  cl_uint uc, un;
  LAMP__TRY(lamp__llama_u32(ctx, width, "width", &uc));
  LAMP__TRY(lamp__llama_u32(ctx, rows, "rows", &un));
  lamp__karg a[] = {LAMP__KA(dx->buffer), LAMP__KA(dx_off), LAMP__KA(dy->buffer),
                    LAMP__KA(dy_off), LAMP__KA(x->buffer), LAMP__KA(x_off),
                    LAMP__KA(rstd->buffer), LAMP__KA(r_off), LAMP__KA(w->buffer),
                    LAMP__KA(w_off), LAMP__KA(uc), LAMP__KA(un)};
  const char *name = accumulate ? "rmsnorm_backward_acc" : "rmsnorm_backward";
  size_t local;
  LAMP__TRY(lamp__llama_row_local(ctx, "rmsnorm", name, &local));
  size_t global = rows * local;
  return lamp__llama_run(ctx, "rmsnorm", name, a, 12, 1, &global, &local);
}

/* The shared part of both head-norm launches: checks, and the arguments after x's. */
static lamp_status lamp__heads_args(lamp_context *ctx, const lamp_tensor *x,
                                    const lamp_tensor *saved, const lamp_tensor *rstd,
                                    const lamp_tensor *wq, const lamp_tensor *wk, size_t q_heads,
                                    size_t heads, size_t dim, size_t *rows, cl_uint u[5]) {
  if (!x) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "head norm: NULL input");
  size_t stride = x->ne[0];
  LAMP__TRY(lamp__llama_mat(ctx, x, "head norm rows", stride, 0));
  if (!dim || q_heads > heads || heads * dim > stride)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "head norm: %zu heads (%zu of them queries) of %zu "
                      "exceed rows of %zu", heads, q_heads, dim, stride);
  *rows = lamp__rows(x);
  LAMP__TRY(lamp__llama_mat(ctx, saved, "head norm inputs", heads * dim, *rows));
  LAMP__TRY(lamp__llama_mat(ctx, rstd, "head norm rstd", heads, *rows));
  LAMP__TRY(lamp__llama_mat(ctx, wq, "query norm weight", dim, 1));
  LAMP__TRY(lamp__llama_mat(ctx, wk, "key norm weight", dim, 1));
  LAMP__TRY(lamp__llama_u32(ctx, stride, "row stride", &u[0]));
  LAMP__TRY(lamp__llama_u32(ctx, q_heads, "query heads", &u[1]));
  LAMP__TRY(lamp__llama_u32(ctx, heads, "heads", &u[2]));
  LAMP__TRY(lamp__llama_u32(ctx, dim, "head width", &u[3]));
  return lamp__llama_u32(ctx, *rows * heads, "rows", &u[4]);
}

/* One head-norm launch: the forward with `eps`, the backward (into x, the gradient) without. */
static lamp_status lamp__heads_run(lamp_context *ctx, const char *name, lamp_tensor *x,
                                   const lamp_tensor *saved, const lamp_tensor *rstd,
                                   const lamp_tensor *wq, const lamp_tensor *wk, size_t q_heads,
                                   size_t heads, size_t dim, const float *eps) {
  size_t rows = 0;
  cl_uint u[5];
  LAMP__TRY(lamp__heads_args(ctx, x, saved, rstd, wq, wk, q_heads, heads, dim, &rows, u));
  cl_uint un = (cl_uint)rows; /* rows * heads fits, checked above */
  cl_ulong x_off = x->offset / 4, s_off = saved->offset / 4, r_off = rstd->offset / 4,
           q_off = wq->offset / 4, k_off = wk->offset / 4;
  const float e = eps ? *eps : 0.0f;
  lamp__karg a[] = {LAMP__KA(x->buffer), LAMP__KA(x_off), LAMP__KA(u[0]),
                    LAMP__KA(saved->buffer), LAMP__KA(s_off), LAMP__KA(rstd->buffer),
                    LAMP__KA(r_off), LAMP__KA(wq->buffer), LAMP__KA(q_off),
                    LAMP__KA(wk->buffer), LAMP__KA(k_off), LAMP__KA(u[1]), LAMP__KA(u[2]),
                    LAMP__KA(u[3]), LAMP__KA(un), LAMP__KA(e)};
  size_t local;
  LAMP__TRY(lamp__llama_row_local(ctx, "rmsnorm", name, &local));
  size_t global = rows * heads * local;
  return lamp__llama_run(ctx, "rmsnorm", name, a, eps ? 16 : 15, 1, &global, &local);
}

lamp_status lamp__llama_rmsnorm_heads_forward(lamp_context *ctx, lamp_tensor *x,
                                              lamp_tensor *saved, lamp_tensor *rstd,
                                              const lamp_tensor *wq, const lamp_tensor *wk,
                                              size_t q_heads, size_t heads, size_t dim,
                                              float eps) {
  return lamp__heads_run(ctx, "rmsnorm_heads_forward", x, saved, rstd, wq, wk, q_heads, heads,
                         dim, &eps);
}

lamp_status lamp__llama_rmsnorm_heads_backward(lamp_context *ctx, lamp_tensor *dx,
                                               const lamp_tensor *saved, const lamp_tensor *rstd,
                                               const lamp_tensor *wq, const lamp_tensor *wk,
                                               size_t q_heads, size_t heads, size_t dim) {
  return lamp__heads_run(ctx, "rmsnorm_heads_backward", dx, saved, rstd, wq, wk, q_heads, heads,
                         dim, NULL);
}

/* The checks both RoPE launches make: heads of width dim within x's rows, tables of at least
 * `positions` rows (plus x's row count with `plus_rows`) starting their buffers. Returns x's
 * row count, its offset in floats and stride, heads, width and rows as kernel arguments. */
static lamp_status lamp__rope_check(lamp_context *ctx, const lamp_tensor *x, size_t heads,
                                    size_t dim, const lamp_tensor *cos_t,
                                    const lamp_tensor *sin_t, size_t positions, int plus_rows,
                                    size_t *rows, cl_ulong *x_off, cl_uint u[4]) {
  size_t stride = x->ne[0];
  LAMP__TRY(lamp__llama_mat(ctx, x, "rope input", stride, 0));
  if (heads * dim > stride)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "rope: %zu heads of %zu exceed rows of %zu", heads,
                      dim, stride);
  *rows = lamp__rows(x);
  if (plus_rows) positions += *rows;
  LAMP__TRY(lamp__llama_mat(ctx, cos_t, "rope cos table", dim / 2, 0));
  LAMP__TRY(lamp__llama_mat(ctx, sin_t, "rope sin table", dim / 2, 0));
  if (lamp__rows(cos_t) < positions || lamp__rows(sin_t) < positions)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "rope: tables have fewer than %zu positions",
                      positions);
  if (cos_t->offset || sin_t->offset)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "rope: tables must start their buffers");
  *x_off = x->offset / 4;
  LAMP__TRY(lamp__llama_u32(ctx, stride, "row stride", &u[0]));
  LAMP__TRY(lamp__llama_u32(ctx, heads, "heads", &u[1]));
  LAMP__TRY(lamp__llama_u32(ctx, dim, "head width", &u[2]));
  return lamp__llama_u32(ctx, *rows, "rows", &u[3]);
}

lamp_status lamp__llama_rope(lamp_context *ctx, lamp_tensor *x, size_t heads, size_t dim,
                             size_t prefix, size_t tokens, const lamp_tensor *cos_t,
                             const lamp_tensor *sin_t, int backward) {
  if (!ctx || !x) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "rope: NULL input");
  if (dim == 0 || dim % 2 || tokens == 0)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "rope: head width %zu must be even and positive", dim);
  size_t rows = 0;
  cl_ulong x_off = 0;
  cl_uint u[4], up, ut;
  LAMP__TRY(lamp__rope_check(ctx, x, heads, dim, cos_t, sin_t, prefix + tokens, 0, &rows, &x_off,
                             u));
  LAMP__TRY(lamp__llama_u32(ctx, prefix, "prefix", &up));
  LAMP__TRY(lamp__llama_u32(ctx, tokens, "tokens", &ut));
  lamp__karg a[] = {LAMP__KA(x->buffer), LAMP__KA(x_off), LAMP__KA(u[0]), LAMP__KA(u[1]),
                    LAMP__KA(u[2]), LAMP__KA(u[3]), LAMP__KA(up), LAMP__KA(ut),
                    LAMP__KA(cos_t->buffer), LAMP__KA(sin_t->buffer)};
  size_t global[3] = {dim / 2, heads, rows}, local[3] = {dim / 2 < 32 ? dim / 2 : 32, 1, 1};
  return lamp__llama_run(ctx, "rope", backward ? "rope_backward" : "rope_forward", a, 10, 3,
                         global, local);
}

lamp_status lamp__llama_rope_at(lamp_context *ctx, lamp_tensor *x, size_t heads, size_t dim,
                                size_t pos0, const lamp_tensor *cos_t, const lamp_tensor *sin_t) {
  if (!ctx || !x) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "rope: NULL input");
  if (dim == 0 || dim % 2)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "rope: head width %zu must be even and positive", dim);
  size_t rows = 0;
  cl_ulong x_off = 0;
  cl_uint u[4], up;
  LAMP__TRY(lamp__rope_check(ctx, x, heads, dim, cos_t, sin_t, pos0, 1, &rows, &x_off, u));
  LAMP__TRY(lamp__llama_u32(ctx, pos0, "first position", &up));
  lamp__karg a[] = {LAMP__KA(x->buffer), LAMP__KA(x_off), LAMP__KA(u[0]), LAMP__KA(u[1]),
                    LAMP__KA(u[2]), LAMP__KA(u[3]), LAMP__KA(up), LAMP__KA(cos_t->buffer),
                    LAMP__KA(sin_t->buffer)};
  size_t global[3] = {dim / 2, heads, rows}, local[3] = {dim / 2 < 32 ? dim / 2 : 32, 1, 1};
  return lamp__llama_run(ctx, "rope", "rope_forward_at", a, 9, 3, global, local);
}

lamp_status lamp__llama_attention_cached(lamp_context *ctx, lamp_tensor *o, const lamp_tensor *q,
                                         const lamp_tensor *kv, size_t pos0, size_t heads,
                                         size_t kv_heads, size_t dim, float scale,
                                         float softcap, size_t window) {
  if (!ctx || !o || !q || !kv)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "cached attention: NULL argument");
  if (!heads || !kv_heads || !dim || heads % kv_heads)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "cached attention: %zu heads must be a positive "
                      "multiple of %zu KV heads, head width %zu", heads, kv_heads, dim);
  if (dim > LAMP__ATTENTION_MAX_DIM)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "cached attention: head width %zu exceeds %d",
                      dim, LAMP__ATTENTION_MAX_DIM);
  if (!(scale > 0.0f) || !isfinite(scale) || !(softcap >= 0.0f) || !isfinite(softcap))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "cached attention: score scale %g must be "
                      "positive and the soft cap %g non-negative", (double)scale,
                      (double)softcap);
  LAMP__TRY(lamp__llama_mat(ctx, o, "attention output", heads * dim, 0));
  size_t n = lamp__rows(o), qs = q->ne[0], kvs = kv->ne[0];
  LAMP__TRY(lamp__llama_mat(ctx, q, "attention queries", qs, n));
  if (qs < heads * dim)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "cached attention: query rows of %zu hold fewer than "
                      "%zu heads of %zu", qs, heads, dim);
  if (kvs != 2 * kv_heads * dim)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "cached attention: cache rows of %zu, expected %zu",
                      kvs, 2 * kv_heads * dim);
  LAMP__TRY(lamp__llama_mat(ctx, kv, "key/value cache", kvs, 0));
  if (lamp__rows(kv) < pos0 + n)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "cached attention: the cache holds %zu positions, "
                      "the queries reach %zu", lamp__rows(kv), pos0 + n);
  cl_ulong o_off = o->offset / 4, q_off = q->offset / 4, kv_off = kv->offset / 4;
  cl_uint uq, ukv, un, up, uh, ug, ud;
  LAMP__TRY(lamp__llama_u32(ctx, qs, "query stride", &uq));
  LAMP__TRY(lamp__llama_u32(ctx, kvs, "cache stride", &ukv));
  LAMP__TRY(lamp__llama_u32(ctx, n, "queries", &un));
  LAMP__TRY(lamp__llama_u32(ctx, pos0 + n, "last position", &up));
  up = (cl_uint)pos0; /* below pos0 + n, checked just above */
  LAMP__TRY(lamp__llama_u32(ctx, heads, "heads", &uh));
  LAMP__TRY(lamp__llama_u32(ctx, kv_heads, "KV heads", &ug));
  LAMP__TRY(lamp__llama_u32(ctx, dim, "head width", &ud));
  cl_uint uw;
  LAMP__TRY(lamp__llama_u32(ctx, window, "attention window", &uw));
  /* the plain program unless the head is wide or the scores capped */
  char options[96] = "";
  if (softcap > 0.0f)
    snprintf(options, sizeof(options), "-DATD_SOFTCAP=%.9ef", (double)softcap);
  if (dim > LAMP__ATTENTION_NARROW)
    snprintf(options + strlen(options), sizeof(options) - strlen(options), " -DATD_MAX_DIM=256");
  lamp__karg a[] = {LAMP__KA(o->buffer), LAMP__KA(o_off), LAMP__KA(q->buffer), LAMP__KA(q_off),
                    LAMP__KA(uq), LAMP__KA(kv->buffer), LAMP__KA(kv_off), LAMP__KA(ukv),
                    LAMP__KA(un), LAMP__KA(up), LAMP__KA(uh), LAMP__KA(ug), LAMP__KA(ud),
                    LAMP__KA(scale), LAMP__KA(uw)};
  size_t global[2] = {n, heads};
  return lamp__llama_run_variant(ctx, "attention_decode", options[0] ? options : NULL,
                                 "attention_decode", a, 15, 2, global, NULL);
}

/* The attention kernels' build and launch for the context's kernel profile: the CPU profile's
 * one program for every head width up to 128 (and a wider one, -DATT_MAX_DIM=256, with half
 * the rows per group), or the GPU profile's build for this head width, with the lanes per row
 * (D / lanes at most 16 floats per private array, lanes dividing D), the rows per group and the
 * keys staged per step (ATT_KT, halved until the widest kernel's local arrays fit the profile's
 * budget). A soft cap (> 0) adds -DATT_SOFTCAP, exact to the float. */
typedef struct lamp__att_shape {
  char options[160]; /* "" for the CPU profile's plain program */
  size_t rows, lanes;
} lamp__att_shape;

static lamp_status lamp__llama_att_shape(lamp_context *ctx, size_t dim, float softcap,
                                         lamp__att_shape *a) {
  const lamp_kernel_profile *p = &ctx->kprof;
  char cap[48] = "";
  if (softcap > 0.0f) snprintf(cap, sizeof(cap), " -DATT_SOFTCAP=%.9ef", (double)softcap);
  a->options[0] = '\0';
  if (p->kind != LAMP_KERNEL_PROFILE_GPU) {
    int wide = dim > LAMP__ATTENTION_NARROW;
    a->rows = wide ? LAMP__ATTENTION_TILE / 2 : LAMP__ATTENTION_TILE;
    a->lanes = 1;
    snprintf(a->options, sizeof(a->options), "%s%s", wide ? "-DATT_MAX_DIM=256" : "", cap);
    return LAMP_OK;
  }
  size_t lanes = 1;
  while (lanes < 32 && (dim / lanes > 16 || dim % lanes)) lanes *= 2;
  if (dim % lanes) lanes /= 2;
  while (lanes > 1 && dim % lanes) lanes /= 2;
  /* 64 work-items or more: more rows where a narrow head needs fewer lanes */
  size_t rows = p->att_rows * lanes >= 64 ? p->att_rows : 64 / lanes;
  while (rows > 1 && rows * lanes > p->wg_size) rows /= 2;
  if (rows * lanes > p->wg_size)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "attention: head width %zu needs %zu work-items "
                      "per row; %s allows %zu per group", dim, lanes, ctx->info.name, p->wg_size);
  size_t kt = 16;
  /* backward_kv: q and dO tiles, lse and delta, two partial-sum arrays */
  while (kt > 1 && (2 * kt * dim + 2 * kt + 2 * kt * rows * lanes) * 4 > p->local_budget) kt /= 2;
  snprintf(a->options, sizeof(a->options), "-DATT_DIM=%zu -DATT_LANES=%zu -DATT_ROWS=%zu "
           "-DATT_KT=%zu%s", dim, lanes, rows, kt, cap);
  a->rows = rows;
  a->lanes = lanes;
  return LAMP_OK;
}

static lamp_status lamp__llama_att_run(lamp_context *ctx, size_t dim, float softcap,
                                       const char *name, const lamp__karg *args, size_t nargs,
                                       size_t positions, size_t heads, size_t batch) {
  lamp__att_shape a;
  LAMP__TRY(lamp__llama_att_shape(ctx, dim, softcap, &a));
  size_t global[3] = {(positions + a.rows - 1) / a.rows * a.rows * a.lanes, heads, batch};
  size_t local[3] = {a.rows * a.lanes, 1, 1};
  return lamp__llama_run_variant(ctx, "attention", a.options[0] ? a.options : NULL, name, args,
                                 nargs, 3, global, local);
}

static lamp_status lamp__llama_attention_dims(lamp_context *ctx, size_t batch, size_t prefix,
                                              size_t tokens, size_t heads, size_t kv_heads,
                                              size_t dim, float scale, float softcap,
                                              size_t window, cl_uint u[7]) {
  if (!(scale > 0.0f) || !isfinite(scale) || !(softcap >= 0.0f) || !isfinite(softcap))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "attention: score scale %g must be "
                      "positive and the soft cap %g non-negative", (double)scale,
                      (double)softcap);
  if (!batch || !tokens || !heads || !kv_heads || !dim || heads % kv_heads)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "attention: %zu heads must be a positive multiple of "
                      "%zu KV heads, with batch %zu, tokens %zu, head width %zu", heads, kv_heads,
                      batch, tokens, dim);
  if (dim > LAMP__ATTENTION_MAX_DIM)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "attention: head width %zu exceeds %d", dim,
                      LAMP__ATTENTION_MAX_DIM);
  LAMP__TRY(lamp__llama_u32(ctx, batch, "batch", &u[0]));
  LAMP__TRY(lamp__llama_u32(ctx, prefix, "prefix rows", &u[1]));
  LAMP__TRY(lamp__llama_u32(ctx, tokens, "tokens per sequence", &u[2]));
  LAMP__TRY(lamp__llama_u32(ctx, heads, "heads", &u[3]));
  LAMP__TRY(lamp__llama_u32(ctx, kv_heads, "KV heads", &u[4]));
  LAMP__TRY(lamp__llama_u32(ctx, dim, "head width", &u[5]));
  LAMP__TRY(lamp__llama_u32(ctx, window, "attention window", &u[6]));
  return LAMP_OK;
}

lamp_status lamp__llama_attention_forward(lamp_context *ctx, lamp_tensor *o, lamp_tensor *lse,
                                          const lamp_tensor *qkv, cl_mem valid, size_t batch,
                                          size_t prefix, size_t tokens, size_t heads,
                                          size_t kv_heads, size_t dim, float scale,
                                          float softcap, size_t window) {
  if (!ctx || !valid) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "attention: NULL");
  cl_uint u[7];
  LAMP__TRY(lamp__llama_attention_dims(ctx, batch, prefix, tokens, heads, kv_heads, dim, scale,
                                       softcap, window, u));
  size_t rows = prefix + batch * tokens;
  LAMP__TRY(lamp__llama_mat(ctx, qkv, "attention qkv", (heads + 2 * kv_heads) * dim, rows));
  LAMP__TRY(lamp__llama_mat(ctx, o, "attention output", heads * dim, rows));
  LAMP__TRY(lamp__llama_mat(ctx, lse, "attention lse", heads, rows));
  cl_ulong o_off = o->offset / 4, l_off = lse->offset / 4, q_off = qkv->offset / 4;
  lamp__karg a[] = {LAMP__KA(o->buffer), LAMP__KA(o_off), LAMP__KA(lse->buffer), LAMP__KA(l_off),
                    LAMP__KA(qkv->buffer), LAMP__KA(q_off), LAMP__KA(valid), LAMP__KA(u[1]),
                    LAMP__KA(u[2]), LAMP__KA(u[3]), LAMP__KA(u[4]), LAMP__KA(u[5]),
                    LAMP__KA(scale), LAMP__KA(u[6])};
  return lamp__llama_att_run(ctx, dim, softcap, "attention_forward", a, 14, prefix + tokens,
                             heads, batch);
}

lamp_status lamp__llama_attention_backward(lamp_context *ctx, lamp_tensor *dqkv,
                                           lamp_tensor *delta, const lamp_tensor *qkv,
                                           const lamp_tensor *o, const lamp_tensor *dout,
                                           const lamp_tensor *lse, cl_mem valid, size_t batch,
                                           size_t prefix, size_t tokens, size_t heads,
                                           size_t kv_heads, size_t dim, float scale,
                                           float softcap, size_t window) {
  if (!ctx || !valid) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "attention backward: NULL");
  cl_uint u[7];
  LAMP__TRY(lamp__llama_attention_dims(ctx, batch, prefix, tokens, heads, kv_heads, dim, scale,
                                       softcap, window, u));
  size_t rows = prefix + batch * tokens, width = (heads + 2 * kv_heads) * dim;
  LAMP__TRY(lamp__llama_mat(ctx, qkv, "attention qkv", width, rows));
  LAMP__TRY(lamp__llama_mat(ctx, dqkv, "attention qkv gradient", width, rows));
  LAMP__TRY(lamp__llama_mat(ctx, o, "attention output", heads * dim, rows));
  LAMP__TRY(lamp__llama_mat(ctx, dout, "attention output gradient", heads * dim, rows));
  LAMP__TRY(lamp__llama_mat(ctx, lse, "attention lse", heads, rows));
  LAMP__TRY(lamp__llama_mat(ctx, delta, "attention delta", heads, rows));
  cl_ulong dq_off = dqkv->offset / 4, de_off = delta->offset / 4, q_off = qkv->offset / 4,
           o_off = o->offset / 4, do_off = dout->offset / 4, l_off = lse->offset / 4;
  lamp__karg aq[] = {LAMP__KA(dqkv->buffer), LAMP__KA(dq_off), LAMP__KA(delta->buffer),
                     LAMP__KA(de_off), LAMP__KA(qkv->buffer), LAMP__KA(q_off),
                     LAMP__KA(o->buffer), LAMP__KA(o_off), LAMP__KA(dout->buffer),
                     LAMP__KA(do_off), LAMP__KA(lse->buffer), LAMP__KA(l_off), LAMP__KA(valid),
                     LAMP__KA(u[1]), LAMP__KA(u[2]), LAMP__KA(u[3]), LAMP__KA(u[4]),
                     LAMP__KA(u[5]), LAMP__KA(scale), LAMP__KA(u[6])};
  LAMP__TRY(lamp__llama_att_run(ctx, dim, softcap, "attention_backward_q", aq, 20,
                                prefix + tokens, heads, batch));
  lamp__karg akv[] = {LAMP__KA(dqkv->buffer), LAMP__KA(dq_off), LAMP__KA(qkv->buffer),
                      LAMP__KA(q_off), LAMP__KA(dout->buffer), LAMP__KA(do_off),
                      LAMP__KA(lse->buffer), LAMP__KA(l_off), LAMP__KA(delta->buffer),
                      LAMP__KA(de_off), LAMP__KA(valid), LAMP__KA(u[0]), LAMP__KA(u[1]),
                      LAMP__KA(u[2]), LAMP__KA(u[3]), LAMP__KA(u[4]), LAMP__KA(u[5]),
                      LAMP__KA(scale), LAMP__KA(u[6])};
  return lamp__llama_att_run(ctx, dim, softcap, "attention_backward_kv", akv, 19,
                             prefix + tokens, kv_heads, batch);
}

/* The gated activation `kernel` ("swiglu_forward", "geglu_forward") on gu into a_out. */
static lamp_status lamp__llama_glu_forward(lamp_context *ctx, const char *kernel,
                                           lamp_tensor *a_out, const lamp_tensor *gu) {
  if (!ctx || !a_out) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "swiglu: NULL output");
  size_t ffn = a_out->ne[0];
  LAMP__TRY(lamp__llama_mat(ctx, a_out, "swiglu output", ffn, 0));
  size_t rows = lamp__rows(a_out);
  LAMP__TRY(lamp__llama_mat(ctx, gu, "swiglu gate/up", 2 * ffn, rows));
  cl_ulong a_off = a_out->offset / 4, g_off = gu->offset / 4;
  cl_uint uf, un;
  LAMP__TRY(lamp__llama_u32(ctx, ffn, "MLP width", &uf));
  LAMP__TRY(lamp__llama_u32(ctx, rows, "rows", &un));
  lamp__karg a[] = {LAMP__KA(a_out->buffer), LAMP__KA(a_off), LAMP__KA(gu->buffer),
                    LAMP__KA(g_off), LAMP__KA(uf), LAMP__KA(un)};
  size_t global[2] = {ffn, rows}, local[2] = {ffn < 64 ? ffn : 64, 1};
  return lamp__llama_run(ctx, "swiglu", kernel, a, 6, 2, global, local);
}

lamp_status lamp__llama_swiglu_forward(lamp_context *ctx, lamp_tensor *a_out,
                                       const lamp_tensor *gu) {
  return lamp__llama_glu_forward(ctx, "swiglu_forward", a_out, gu);
}

lamp_status lamp__llama_geglu_forward(lamp_context *ctx, lamp_tensor *a_out,
                                      const lamp_tensor *gu) {
  return lamp__llama_glu_forward(ctx, "geglu_forward", a_out, gu);
}

static lamp_status lamp__llama_glu_backward(lamp_context *ctx, const char *kernel,
                                            lamp_tensor *dgu, const lamp_tensor *da,
                                            const lamp_tensor *gu) {
  if (!ctx || !da) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "swiglu backward: NULL");
  size_t ffn = da->ne[0];
  LAMP__TRY(lamp__llama_mat(ctx, da, "swiglu output gradient", ffn, 0));
  size_t rows = lamp__rows(da);
  LAMP__TRY(lamp__llama_mat(ctx, gu, "swiglu gate/up", 2 * ffn, rows));
  LAMP__TRY(lamp__llama_mat(ctx, dgu, "swiglu gate/up gradient", 2 * ffn, rows));
  cl_ulong d_off = dgu->offset / 4, a_off = da->offset / 4, g_off = gu->offset / 4;
  cl_uint uf, un;
  LAMP__TRY(lamp__llama_u32(ctx, ffn, "MLP width", &uf));
  LAMP__TRY(lamp__llama_u32(ctx, rows, "rows", &un));
  lamp__karg a[] = {LAMP__KA(dgu->buffer), LAMP__KA(d_off), LAMP__KA(da->buffer),
                    LAMP__KA(a_off), LAMP__KA(gu->buffer), LAMP__KA(g_off), LAMP__KA(uf),
                    LAMP__KA(un)};
  size_t global[2] = {ffn, rows}, local[2] = {ffn < 64 ? ffn : 64, 1};
  return lamp__llama_run(ctx, "swiglu", kernel, a, 8, 2, global, local);
}

lamp_status lamp__llama_swiglu_backward(lamp_context *ctx, lamp_tensor *dgu,
                                        const lamp_tensor *da, const lamp_tensor *gu) {
  return lamp__llama_glu_backward(ctx, "swiglu_backward", dgu, da, gu);
}

lamp_status lamp__llama_geglu_backward(lamp_context *ctx, lamp_tensor *dgu,
                                       const lamp_tensor *da, const lamp_tensor *gu) {
  return lamp__llama_glu_backward(ctx, "geglu_backward", dgu, da, gu);
}

static lamp_status lamp__llama_softcap_check(lamp_context *ctx, const lamp_tensor *x,
                                             const char *what, float cap, size_t rows,
                                             cl_uint *uw, cl_uint *un) {
  if (!(cap > 0.0f) || !isfinite(cap))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "soft cap %g must be positive",
                      (double)cap);
  if (!x) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "soft cap: %s is NULL", what);
  LAMP__TRY(lamp__llama_mat(ctx, x, what, x->ne[0], rows));
  LAMP__TRY(lamp__llama_u32(ctx, x->ne[0], "width", uw));
  return lamp__llama_u32(ctx, lamp__rows(x), "rows", un);
}

lamp_status lamp__llama_softcap_forward(lamp_context *ctx, lamp_tensor *x, float cap) {
  cl_uint uw, un;
  LAMP__TRY(lamp__llama_softcap_check(ctx, x, "soft-capped values", cap, 0, &uw, &un));
  cl_ulong x_off = x->offset / 4;
  lamp__karg a[] = {LAMP__KA(x->buffer), LAMP__KA(x_off), LAMP__KA(uw), LAMP__KA(un),
                    LAMP__KA(cap)};
  size_t global[2] = {uw, un}, local[2] = {uw < 64 ? uw : 64, 1};
  return lamp__llama_run(ctx, "softcap", "softcap_forward", a, 5, 2, global, local);
}

lamp_status lamp__llama_softcap_backward(lamp_context *ctx, lamp_tensor *dx,
                                         const lamp_tensor *y, float cap) {
  cl_uint uw, un;
  LAMP__TRY(lamp__llama_softcap_check(ctx, y, "soft-capped values", cap, 0, &uw, &un));
  LAMP__TRY(lamp__llama_softcap_check(ctx, dx, "soft cap gradient", cap, un, &uw, &un));
  if (dx->ne[0] != y->ne[0])
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "soft cap: gradient rows of %zu, values of %zu",
                      dx->ne[0], y->ne[0]);
  cl_ulong d_off = dx->offset / 4, y_off = y->offset / 4;
  lamp__karg a[] = {LAMP__KA(dx->buffer), LAMP__KA(d_off), LAMP__KA(y->buffer), LAMP__KA(y_off),
                    LAMP__KA(uw), LAMP__KA(un), LAMP__KA(cap)};
  size_t global[2] = {uw, un}, local[2] = {uw < 64 ? uw : 64, 1};
  return lamp__llama_run(ctx, "softcap", "softcap_backward", a, 7, 2, global, local);
}

lamp_status lamp__llama_cross_entropy_forward(lamp_context *ctx, lamp_tensor *loss,
                                              lamp_tensor *lse, const lamp_tensor *logits,
                                              cl_mem target) {
  if (!ctx || !logits || !target)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "cross-entropy: NULL input");
  size_t width = logits->ne[0];
  LAMP__TRY(lamp__llama_mat(ctx, logits, "logits", width, 0));
  size_t rows = lamp__rows(logits);
  LAMP__TRY(lamp__llama_mat(ctx, loss, "loss", rows, 1));
  LAMP__TRY(lamp__llama_mat(ctx, lse, "log-sum-exp", rows, 1));
  cl_ulong lo_off = loss->offset / 4, ls_off = lse->offset / 4, z_off = logits->offset / 4;
  cl_uint uw, un;
  LAMP__TRY(lamp__llama_u32(ctx, width, "logit width", &uw));
  LAMP__TRY(lamp__llama_u32(ctx, rows, "rows", &un));
  lamp__karg a[] = {LAMP__KA(loss->buffer), LAMP__KA(lo_off), LAMP__KA(lse->buffer),
                    LAMP__KA(ls_off), LAMP__KA(logits->buffer), LAMP__KA(z_off), LAMP__KA(uw),
                    LAMP__KA(target), LAMP__KA(uw), LAMP__KA(un)};
  size_t local;
  LAMP__TRY(lamp__llama_row_local(ctx, "cross_entropy", "cross_entropy_forward", &local));
  size_t global = rows * local;
  return lamp__llama_run(ctx, "cross_entropy", "cross_entropy_forward", a, 10, 1, &global,
                         &local);
}

lamp_status lamp__llama_cross_entropy_backward(lamp_context *ctx, lamp_tensor *dlogits,
                                               const lamp_tensor *logits,
                                               const lamp_tensor *lse, cl_mem target,
                                               float scale) {
  if (!ctx || !logits || !target)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "cross-entropy backward: NULL input");
  size_t width = logits->ne[0];
  LAMP__TRY(lamp__llama_mat(ctx, logits, "logits", width, 0));
  size_t rows = lamp__rows(logits);
  LAMP__TRY(lamp__llama_mat(ctx, dlogits, "logit gradient", width, rows));
  LAMP__TRY(lamp__llama_mat(ctx, lse, "log-sum-exp", rows, 1));
  cl_ulong d_off = dlogits->offset / 4, z_off = logits->offset / 4, l_off = lse->offset / 4;
  cl_uint uw, un;
  LAMP__TRY(lamp__llama_u32(ctx, width, "logit width", &uw));
  LAMP__TRY(lamp__llama_u32(ctx, rows, "rows", &un));
  lamp__karg a[] = {LAMP__KA(dlogits->buffer), LAMP__KA(d_off), LAMP__KA(uw),
                    LAMP__KA(logits->buffer), LAMP__KA(z_off), LAMP__KA(uw),
                    LAMP__KA(lse->buffer), LAMP__KA(l_off), LAMP__KA(target), LAMP__KA(uw),
                    LAMP__KA(un), LAMP__KA(scale)};
  size_t global[2] = {width, rows}, local[2] = {width < 64 ? width : 64, 1};
  return lamp__llama_run(ctx, "cross_entropy", "cross_entropy_backward", a, 12, 2, global,
                         local);
}
