/* Randomized SVD, orthonormalisation on the device: CholeskyQR2 (Gram matrix, a one-work-group
 * Cholesky, GEMM), and Householder QR when CholeskyQR2 cannot be trusted.
 *
 * Why this pair: CholeskyQR2 is four GEMMs of a tall matrix plus l x l work, the
 * fastest route on any device, and gives orthogonality to working precision while
 * cond(X) stays below about 1/sqrt(eps) (some 10^3 in float). Sketches of matrices with a gap
 * or an exact rank below l, and the products after power iterations, go past that, and a
 * shift (shifted CholeskyQR3) still needs cond(X) < 1/eps and fails on exactly dependent
 * columns. Householder QR yields an orthonormal Q for any X, zero columns included, at 3 l
 * kernel launches. The choice is made per call from two flags the Cholesky kernels set (a pivot
 * below 1e-8 of its diagonal entry in the first pass, ||Q1^T Q1 - I||_F > 0.5 in the second),
 * read back as 8 bytes. */
#include <string.h>

#include "svd/svd_internal.h"

/* Float offsets of the blocks in ws->small. */
static size_t lamp__qr_g(size_t l) {
  (void)l;
  return 0;
}
static size_t lamp__qr_r1(size_t l) { return l * l; }
static size_t lamp__qr_r1inv(size_t l) { return 2 * l * l; }
static size_t lamp__qr_r2(size_t l) { return 3 * l * l; }
static size_t lamp__qr_r2inv(size_t l) { return 4 * l * l; }
static size_t lamp__qr_r(size_t l) { return 5 * l * l; }
static size_t lamp__qr_tau(size_t l) { return 6 * l * l; }
static size_t lamp__qr_flags(size_t l) { return 6 * l * l + l; }

lamp_status lamp__svd_qr_ws_create(lamp_context *ctx, size_t rows, size_t l, lamp__svd_qr_ws *ws) {
  memset(ws, 0, sizeof(*ws));
  size_t ne_t[2] = {l, rows}, ne_small = lamp__qr_flags(l) + 4;
  LAMP__TRY(lamp__tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_t, "the QR's T factors", &ws->t));
  lamp_status st = lamp__tensor_create(ctx, LAMP_DTYPE_F32, 1, &ne_small, "the QR's scalars",
                                       &ws->small);
  if (st != LAMP_OK) {
    lamp_tensor_release(&ws->t);
    return st;
  }
  ws->rows = rows;
  ws->l = l;
  return LAMP_OK;
}

void lamp__svd_qr_ws_release(lamp__svd_qr_ws *ws) {
  if (!ws) return;
  lamp_tensor_release(&ws->t);
  lamp_tensor_release(&ws->small);
}

/* An l x l view of ws->small at float offset `off`. */
static lamp_status lamp__qr_block(lamp_context *ctx, lamp__svd_qr_ws *ws, size_t off,
                                  lamp_tensor *out) {
  size_t ne[2] = {ws->l, ws->l};
  return lamp_tensor_view(ctx, &ws->small, off * 4, 2, ne, NULL, out);
}

/* The Gram matrix X^T X as a full GEMM rather than CLBlast's SYRK: SYRK's kernels share the GEMM
 * kernel's tuned parameters, and with CLBlast 1.5's GEMMK=1 kernel (lamp's PoCL choice) they
 * return wrong results once N exceeds a tile. Twice SYRK's multiply-adds, on an l x l result. */
static lamp_status lamp__qr_gram(lamp_context *ctx, lamp__svd_qr_ws *ws, const lamp_tensor *x) {
  lamp_tensor g;
  LAMP__TRY(lamp__qr_block(ctx, ws, lamp__qr_g(ws->l), &g));
  return lamp_gemm(ctx, LAMP_TRANS, LAMP_NO_TRANS, 1.0f, x, x, 0.0f, &g);
}

static lamp_status lamp__qr_chol(lamp_context *ctx, lamp__svd_qr_ws *ws, size_t r_off,
                                 size_t rinv_off, size_t flag, int check) {
  cl_kernel k = NULL;
  LAMP__TRY(lamp__kernel_wg(ctx, "svd_qr_chol", "svd_qr_chol", &k));
  size_t base = ws->small.offset / 4, wg = ctx->kprof.wg_size;
  cl_ulong g = base + lamp__qr_g(ws->l), r = base + r_off, ri = base + rinv_off;
  cl_ulong f = base + lamp__qr_flags(ws->l) + flag;
  cl_uint l = (cl_uint)ws->l;
  cl_int chk = check;
  LAMP__TRY(lamp__arg(ctx, k, 0, sizeof(cl_mem), &ws->small.buffer));
  LAMP__TRY(lamp__arg(ctx, k, 1, sizeof(g), &g));
  LAMP__TRY(lamp__arg(ctx, k, 2, sizeof(r), &r));
  LAMP__TRY(lamp__arg(ctx, k, 3, sizeof(ri), &ri));
  LAMP__TRY(lamp__arg(ctx, k, 4, sizeof(f), &f));
  LAMP__TRY(lamp__arg(ctx, k, 5, sizeof(l), &l));
  LAMP__TRY(lamp__arg(ctx, k, 6, sizeof(chk), &chk));
  return lamp__launch(ctx, k, "svd_qr_chol", 1, &wg, &wg);
}

static lamp_status lamp__qr_trmm(lamp_context *ctx, lamp__svd_qr_ws *ws) {
  cl_kernel k = NULL;
  LAMP__TRY(lamp__kernel(ctx, "svd_qr_trmm", "svd_qr_trmm", &k));
  size_t base = ws->small.offset / 4;
  cl_ulong a = base + lamp__qr_r2(ws->l), b = base + lamp__qr_r1(ws->l);
  cl_ulong c = base + lamp__qr_r(ws->l);
  cl_uint l = (cl_uint)ws->l;
  LAMP__TRY(lamp__arg(ctx, k, 0, sizeof(cl_mem), &ws->small.buffer));
  LAMP__TRY(lamp__arg(ctx, k, 1, sizeof(a), &a));
  LAMP__TRY(lamp__arg(ctx, k, 2, sizeof(b), &b));
  LAMP__TRY(lamp__arg(ctx, k, 3, sizeof(c), &c));
  LAMP__TRY(lamp__arg(ctx, k, 4, sizeof(l), &l));
  size_t global = ws->l * ws->l, local = 64;
  return lamp__launch(ctx, k, "svd_qr_trmm", 1, &global, &local);
}

/* Householder QR of X in place (reflectors below the diagonal, R on and above), then Q. */
static lamp_status lamp__qr_householder(lamp_context *ctx, lamp__svd_qr_ws *ws, lamp_tensor *x,
                                        lamp_tensor *q) {
  cl_kernel kr = NULL, ka = NULL, kf = NULL;
  LAMP__TRY(lamp__kernel_wg(ctx, "svd_qr_hh_reflect", "svd_qr_hh_reflect", &kr));
  LAMP__TRY(lamp__kernel_wg(ctx, "svd_qr_hh_apply", "svd_qr_hh_apply", &ka));
  LAMP__TRY(lamp__kernel_wg(ctx, "svd_qr_hh_form", "svd_qr_hh_form", &kf));
  size_t l = ws->l, wg = ctx->kprof.wg_size;
  cl_ulong x_off = x->offset / 4, q_off = q->offset / 4, rows = x->ne[1];
  cl_ulong tau_off = ws->small.offset / 4 + lamp__qr_tau(l);
  cl_uint lu = (cl_uint)l;
  cl_kernel both[2] = {kr, ka};
  for (int i = 0; i < 2; i++) {
    LAMP__TRY(lamp__arg(ctx, both[i], 0, sizeof(cl_mem), &x->buffer));
    LAMP__TRY(lamp__arg(ctx, both[i], 1, sizeof(x_off), &x_off));
    LAMP__TRY(lamp__arg(ctx, both[i], 2, sizeof(rows), &rows));
    LAMP__TRY(lamp__arg(ctx, both[i], 3, sizeof(lu), &lu));
    LAMP__TRY(lamp__arg(ctx, both[i], 5, sizeof(cl_mem), &ws->small.buffer));
    LAMP__TRY(lamp__arg(ctx, both[i], 6, sizeof(tau_off), &tau_off));
  }
  for (cl_uint j = 0; j < lu; j++) {
    LAMP__TRY(lamp__arg(ctx, kr, 4, sizeof(j), &j));
    LAMP__TRY(lamp__launch(ctx, kr, "svd_qr_hh_reflect", 1, &wg, &wg));
    if (j + 1 < lu) {
      size_t global = (l - j - 1) * wg;
      LAMP__TRY(lamp__arg(ctx, ka, 4, sizeof(j), &j));
      LAMP__TRY(lamp__launch(ctx, ka, "svd_qr_hh_apply", 1, &global, &wg));
    }
  }
  LAMP__TRY(lamp__arg(ctx, kf, 0, sizeof(cl_mem), &x->buffer));
  LAMP__TRY(lamp__arg(ctx, kf, 1, sizeof(x_off), &x_off));
  LAMP__TRY(lamp__arg(ctx, kf, 2, sizeof(cl_mem), &q->buffer));
  LAMP__TRY(lamp__arg(ctx, kf, 3, sizeof(q_off), &q_off));
  LAMP__TRY(lamp__arg(ctx, kf, 4, sizeof(rows), &rows));
  LAMP__TRY(lamp__arg(ctx, kf, 5, sizeof(lu), &lu));
  LAMP__TRY(lamp__arg(ctx, kf, 7, sizeof(cl_mem), &ws->small.buffer));
  LAMP__TRY(lamp__arg(ctx, kf, 8, sizeof(tau_off), &tau_off));
  for (cl_uint j = lu; j-- > 0;) {
    size_t global = (l - j) * wg;
    LAMP__TRY(lamp__arg(ctx, kf, 6, sizeof(j), &j));
    LAMP__TRY(lamp__launch(ctx, kf, "svd_qr_hh_form", 1, &global, &wg));
  }
  return LAMP_OK;
}

lamp_status lamp__svd_orth(lamp_context *ctx, lamp__svd_qr_ws *ws, lamp__svd_qr_method method,
                           lamp_tensor *x, lamp_tensor *q, lamp_tensor *r,
                           lamp__svd_qr_method *used) {
  size_t l = ws->l, rows = x->ne[1];
  if (x->ne[0] != l || q->ne[0] != l || q->ne[1] != rows || rows < l || rows > ws->rows ||
      !lamp_tensor_is_contiguous(x) || !lamp_tensor_is_contiguous(q))
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "orthonormalisation: X and Q must be contiguous "
                      "%zu x %zu with %zu <= rows <= %zu", rows, l, l, ws->rows);
  if (method == LAMP__SVD_QR_AUTO) {
    lamp_tensor t, r1inv, r2inv;
    size_t ne_t[2] = {l, rows};
    LAMP__TRY(lamp_tensor_view(ctx, &ws->t, 0, 2, ne_t, NULL, &t));
    LAMP__TRY(lamp__qr_block(ctx, ws, lamp__qr_r1inv(l), &r1inv));
    LAMP__TRY(lamp__qr_block(ctx, ws, lamp__qr_r2inv(l), &r2inv));
    LAMP__TRY(lamp__qr_gram(ctx, ws, x));
    LAMP__TRY(lamp__qr_chol(ctx, ws, lamp__qr_r1(l), lamp__qr_r1inv(l), 0, 0));
    LAMP__TRY(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, x, &r1inv, 0.0f, &t));
    LAMP__TRY(lamp__qr_gram(ctx, ws, &t));
    LAMP__TRY(lamp__qr_chol(ctx, ws, lamp__qr_r2(l), lamp__qr_r2inv(l), 1, 1));
    float flags[2];
    LAMP__CL(ctx, clEnqueueReadBuffer(ctx->queue, ws->small.buffer, CL_TRUE,
                                      ws->small.offset + 4 * lamp__qr_flags(l), sizeof(flags),
                                      flags, 0, NULL, NULL));
    if (flags[0] == 0.0f && flags[1] == 0.0f) {
      LAMP__TRY(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, &t, &r2inv, 0.0f, q));
      if (r) {
        LAMP__TRY(lamp__qr_trmm(ctx, ws));
        LAMP__TRY(lamp__qr_block(ctx, ws, lamp__qr_r(l), r));
      }
      if (used) *used = LAMP__SVD_QR_AUTO;
      return LAMP_OK;
    }
  }
  LAMP__TRY(lamp__qr_householder(ctx, ws, x, q));
  if (r) {
    size_t ne[2] = {l, l};
    LAMP__TRY(lamp_tensor_view(ctx, x, 0, 2, ne, NULL, r));
  }
  if (used) *used = LAMP__SVD_QR_HOUSEHOLDER;
  return LAMP_OK;
}
