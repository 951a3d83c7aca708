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

lamp_status lamp_gemm(lamp_context *ctx, lamp_transpose trans_a, lamp_transpose trans_b,
                      float alpha, const lamp_tensor *a, const lamp_tensor *b, float beta,
                      lamp_tensor *c) {
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
  const int vector = batch == 1 && m == 1;
  /* CLBlast's GEMV scales y by beta even when beta is 0, so a NaN left in C would survive: C's
   * old contents must not matter then, as with the GEMM */
  if (vector && beta == 0.0f) LAMP__TRY(lamp_tensor_fill(ctx, c, 0.0f));
  cl_event marker = NULL;
  LAMP__TRY(lamp__profile_begin(ctx, &marker));
  CLBlastStatusCode s;
  if (vector) {
    /* one row of A: c = op(B)^T a as a matrix-vector product. CLBlast's GEMM kernels tile C
     * in blocks of 32 rows or more, so a single row would cost a block's work (a generation
     * step's products ran 30 times slower than the weights' memory traffic allows). */
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
