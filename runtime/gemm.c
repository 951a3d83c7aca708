/* GEMM over tensors through CLBlast, on the tensors' own buffers and offsets. */
#include <clblast_c.h>

#include "internal.h"

/* One row-major matrix operand as CLBlast sees it: (buffer, offset, ld) plus batch stride. */
typedef struct lamp__matrix {
  size_t rows, cols;  /* of the stored matrix, before any transpose */
  size_t offset, ld;  /* in elements */
  size_t batch;       /* ne[2] */
  size_t stride;      /* elements between batches */
} lamp__matrix;

static lamp_status lamp__gemm_operand(lamp_context *ctx, const lamp_tensor *t, char which,
                                      lamp__matrix *m) {
  if (!t || !t->buffer)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gemm: matrix %c is NULL", which);
  if (t->dtype != LAMP_DTYPE_F32)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "lamp_gemm: matrix %c is not f32", which);
  if (t->nb[0] != 4 || t->nb[1] % 4 || t->nb[2] % 4 || t->offset % 4)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "lamp_gemm: matrix %c needs unit element stride and "
                      "4-byte aligned row stride and offset", which);
  if (t->ne[3] != 1)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "lamp_gemm: matrix %c has ne[3] = %zu, must be 1",
                      which, t->ne[3]);
  m->rows = t->ne[1];
  m->cols = t->ne[0];
  m->offset = t->offset / 4;
  m->ld = t->ne[1] > 1 ? t->nb[1] / 4 : t->ne[0];
  if (m->ld < m->cols)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "lamp_gemm: matrix %c rows overlap (ld %zu < %zu "
                      "columns)", which, m->ld, m->cols);
  m->batch = t->ne[2];
  m->stride = t->ne[2] > 1 ? t->nb[2] / 4 : 0;
  return LAMP_OK;
}

static lamp_status lamp__clblast_fail(lamp_context *ctx, CLBlastStatusCode s, const char *call,
                                      size_t m, size_t n, size_t k) {
  lamp_status st = LAMP_ERR_CLBLAST;
  if (s == CLBlastTempBufferAllocFailure || s == CLBlastOpenCLOutOfResources ||
      s == CLBlastOpenCLOutOfHostMemory)
    st = LAMP_ERR_OUT_OF_MEMORY;
  return lamp__fail(ctx, st, "%s (M=%zu N=%zu K=%zu) failed: %s (%d)", call, m, n, k,
                    lamp_clblast_error_name(s), (int)s);
}

/* Rows of C at most, for the product of a few rows (kernels/gemm_rows.cl's GEMM_ROWS_MAX). */
#define LAMP__GEMM_ROWS_MAX 16

/* C (m, N) = alpha op(A) B^T + beta C with B stored (N, K) (the model's weights in a TRANS
 * product) by lamp's kernel: one work-item per row of B. */
static lamp_status lamp__gemm_rows(lamp_context *ctx, int trans_a, const lamp_tensor *a,
                                   const lamp__matrix *ma, const lamp_tensor *b,
                                   const lamp__matrix *mb, float alpha, float beta,
                                   lamp_tensor *c, const lamp__matrix *mc, size_t m) {
  const size_t big = 0x7fffffffu;
  if (mb->rows > big || mb->cols > big || mb->ld > big || ma->ld > big || mc->ld > big)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "lamp_gemm: a %zu x %zu matrix B is too large",
                      mb->rows, mb->cols);
  cl_kernel k = NULL;
  LAMP__TRY(lamp__kernel(ctx, "gemm_rows", "gemm_rows", &k));
  cl_ulong b_off = mb->offset, a_off = ma->offset, c_off = mc->offset;
  cl_uint ldb = (cl_uint)mb->ld, step = trans_a ? 1 : (cl_uint)ma->ld;
  cl_uint inc = trans_a ? (cl_uint)ma->ld : 1, ldc = (cl_uint)mc->ld, um = (cl_uint)m;
  cl_uint un = (cl_uint)mb->rows, uk = (cl_uint)mb->cols;
  const struct {
    size_t size;
    const void *value;
  } args[] = {
      {sizeof(cl_mem), &b->buffer}, {sizeof(b_off), &b_off}, {sizeof(ldb), &ldb},
      {sizeof(cl_mem), &a->buffer}, {sizeof(a_off), &a_off}, {sizeof(step), &step},
      {sizeof(inc), &inc},          {sizeof(cl_mem), &c->buffer}, {sizeof(c_off), &c_off},
      {sizeof(ldc), &ldc},          {sizeof(um), &um},         {sizeof(un), &un},
      {sizeof(uk), &uk},            {sizeof(alpha), &alpha},   {sizeof(beta), &beta}};
  for (cl_uint i = 0; i < sizeof(args) / sizeof(args[0]); i++)
    LAMP__TRY(lamp__arg(ctx, k, i, args[i].size, args[i].value));
  size_t global = mb->rows;
  return lamp__launch(ctx, k, "gemm_rows", 1, &global, NULL);
}

/* lamp_gemm, and with `few` the routes of lamp__gemm_few for products of a few rows. */
static lamp_status lamp__gemm_run(lamp_context *ctx, lamp_transpose trans_a,
                                  lamp_transpose trans_b, float alpha, const lamp_tensor *a,
                                  const lamp_tensor *b, float beta, lamp_tensor *c, int few) {
  if (!ctx) return LAMP_ERR_INVALID_ARGUMENT;
  lamp__matrix ma = {0}, mb = {0}, mc = {0};
  LAMP__TRY(lamp__gemm_operand(ctx, a, 'A', &ma));
  LAMP__TRY(lamp__gemm_operand(ctx, b, 'B', &mb));
  LAMP__TRY(lamp__gemm_operand(ctx, c, 'C', &mc));
  size_t m = trans_a ? ma.cols : ma.rows, k = trans_a ? ma.rows : ma.cols;
  size_t kb = trans_b ? mb.cols : mb.rows, n = trans_b ? mb.rows : mb.cols;
  if (k != kb || mc.rows != m || mc.cols != n)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "lamp_gemm: op(A) is %zux%zu, op(B) is %zux%zu, C is "
                      "%zux%zu", m, k, kb, n, mc.rows, mc.cols);
  size_t batch = mc.batch;
  if ((ma.batch != 1 && ma.batch != batch) || (mb.batch != 1 && mb.batch != batch))
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "lamp_gemm: batch counts A %zu, B %zu, C %zu",
                      ma.batch, mb.batch, batch);
  if (batch > 1 && mc.stride < mc.rows * mc.ld - (mc.ld - mc.cols))
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "lamp_gemm: batches of C overlap");

  CLBlastTranspose ta = trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
  CLBlastTranspose tb = trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
  /* on a CPU, a few rows against a stored (N, K) B (the model's weights) by lamp's kernel */
  if (few && batch == 1 && m <= LAMP__GEMM_ROWS_MAX && trans_b &&
      ctx->kprof.kind != LAMP_KERNEL_PROFILE_GPU)
    return lamp__gemm_rows(ctx, trans_a, a, &ma, b, &mb, alpha, beta, c, &mc, m);
  const int vector = few && batch == 1 && m == 1;
  /* CLBlast's GEMV scales y by beta even when beta is 0, so a NaN left in C would survive: C's
   * old contents must not matter then, as with the GEMM */
  if (vector && beta == 0.0f) LAMP__TRY(lamp_tensor_fill(ctx, c, 0.0f));
  cl_event marker = NULL;
  LAMP__TRY(lamp__profile_begin(ctx, &marker));
  CLBlastStatusCode s;
  if (vector) {
    /* one row of A: c = op(B)^T a as a matrix-vector product, since CLBlast's GEMM kernels
     * tile C in blocks of 32 rows or more and a single row would pay for a block (on PoCL,
     * SmolLM2-135M's generation steps took 3.4 s through the GEMM, 0.6 s through the GEMV) */
    s = CLBlastSgemv(CLBlastLayoutRowMajor, trans_b ? CLBlastTransposeNo : CLBlastTransposeYes,
                     mb.rows, mb.cols, alpha, b->buffer, mb.offset,
                     mb.ld, a->buffer, ma.offset, trans_a ? ma.ld : 1, beta, c->buffer, mc.offset,
                     1, &ctx->queue, NULL);
  } else if (batch == 1) {
    s = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a->buffer, ma.offset, ma.ld,
                     b->buffer, mb.offset, mb.ld, beta, c->buffer, mc.offset, mc.ld, &ctx->queue,
                     NULL);
  } else {
    s = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a->buffer,
                                   ma.offset, ma.ld, ma.stride, b->buffer, mb.offset, mb.ld,
                                   mb.stride, beta, c->buffer, mc.offset, mc.ld, mc.stride, batch,
                                   &ctx->queue, NULL);
  }
  if (s != CLBlastSuccess) {
    if (marker) clReleaseEvent(marker);
    return lamp__clblast_fail(ctx, s, vector ? "CLBlastSgemv" : batch == 1 ? "CLBlastSgemm"
                              : "CLBlastSgemmStridedBatched", m, n, k);
  }
  return lamp__profile_end(ctx, marker, vector ? "sgemv" : batch == 1 ? "sgemm" : "sgemm_batched");
}

lamp_status lamp_gemm(lamp_context *ctx, lamp_transpose trans_a, lamp_transpose trans_b,
                      float alpha, const lamp_tensor *a, const lamp_tensor *b, float beta,
                      lamp_tensor *c) {
  return lamp__gemm_run(ctx, trans_a, trans_b, alpha, a, b, beta, c, 0);
}

lamp_status lamp__gemm_few(lamp_context *ctx, lamp_transpose trans_a, lamp_transpose trans_b,
                           float alpha, const lamp_tensor *a, const lamp_tensor *b, float beta,
                           lamp_tensor *c) {
  return lamp__gemm_run(ctx, trans_a, trans_b, alpha, a, b, beta, c, 1);
}
