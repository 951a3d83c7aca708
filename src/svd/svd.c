/* Randomized truncated SVD (Halko, Martinsson, Tropp 2011, algorithms 4.4 and 5.1) on the
 * device: sketch, orthonormalise after every product, the small SVD by Jacobi, two GEMMs out.
 * A never leaves the device; only flags and a few hundred bytes of partial results come back. */
#include <float.h>
#include <string.h>

#include "svd/svd_internal.h"

/* Sweeps of the small Jacobi SVD: float converges in well under 20; the cap only bounds a
 * pathological case. */
#define LAMP__SVD_MAX_SWEEPS 60
/* Power iterations above this are a mistake (garbage in the field), not a request. */
#define LAMP__SVD_MAX_POWER_ITERS 64

void lamp_svd_options_init(lamp_svd_options *options, size_t rank) {
  if (!options) return;
  memset(options, 0, sizeof(*options));
  options->rank = rank;
  options->oversample = 10;
  options->power_iters = 2;
  options->sketch = LAMP_SVD_SKETCH_AUTO;
  options->seed = 0;
}

/* Gaussian for every shape, from bench/README-svd.md: the sketch is one of 2q + 2 products with
 * A, so at the default q = 2 the SRFT can save at most a sixth of the GEMM work, and measured
 * on PoCL it saved less than the run-to-run noise; even at q = 0 it won at 8192 x 1024 and lost
 * at 4096 x 4096. GEMM is also the best-tuned kernel on most devices, and the SRFT needs an
 * m x (N + 2) buffer and clFFT's process-wide state. */
lamp_svd_sketch lamp_svd_sketch_auto(size_t m, size_t n, size_t rank) {
  (void)m;
  (void)n;
  (void)rank;
  return LAMP_SVD_SKETCH_GAUSSIAN;
}

size_t lamp__svd_small_floats(size_t l) { return 4 * l * l + 3 * l; }
size_t lamp__svd_small_left(size_t l) { return 2 * l * l; }
size_t lamp__svd_small_right(size_t l) { return 3 * l * l; }
size_t lamp__svd_small_sigma(size_t l) { return 4 * l * l; }

lamp_status lamp__svd_small(lamp_context *ctx, const lamp_tensor *r, size_t l, lamp_tensor *work,
                            float scale, lamp_tensor *s, size_t k) {
  if (lamp_tensor_numel(work) < lamp__svd_small_floats(l) || r->ne[0] < l || r->ne[1] < l ||
      k > l || lamp_tensor_numel(s) < k)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "small SVD: buffers too small for l = %zu, k = %zu",
                      l, k);
  cl_kernel kern = NULL;
  LAMP__TRY(lamp__kernel_wg(ctx, "svd_jacobi", "svd_jacobi", &kern));
  cl_ulong r_off = r->offset / 4, ldr = r->ne[1] > 1 ? r->nb[1] / 4 : r->ne[0];
  cl_ulong w_off = work->offset / 4, s_off = s->offset / 4, s_stride = s->nb[0] / 4;
  cl_uint lu = (cl_uint)l, ku = (cl_uint)k, sweeps = LAMP__SVD_MAX_SWEEPS;
  LAMP__TRY(lamp__arg(ctx, kern, 0, sizeof(cl_mem), &r->buffer));
  LAMP__TRY(lamp__arg(ctx, kern, 1, sizeof(r_off), &r_off));
  LAMP__TRY(lamp__arg(ctx, kern, 2, sizeof(ldr), &ldr));
  LAMP__TRY(lamp__arg(ctx, kern, 3, sizeof(lu), &lu));
  LAMP__TRY(lamp__arg(ctx, kern, 4, sizeof(cl_mem), &work->buffer));
  LAMP__TRY(lamp__arg(ctx, kern, 5, sizeof(w_off), &w_off));
  LAMP__TRY(lamp__arg(ctx, kern, 6, sizeof(cl_mem), &s->buffer));
  LAMP__TRY(lamp__arg(ctx, kern, 7, sizeof(s_off), &s_off));
  LAMP__TRY(lamp__arg(ctx, kern, 8, sizeof(s_stride), &s_stride));
  LAMP__TRY(lamp__arg(ctx, kern, 9, sizeof(ku), &ku));
  LAMP__TRY(lamp__arg(ctx, kern, 10, sizeof(scale), &scale));
  LAMP__TRY(lamp__arg(ctx, kern, 11, sizeof(sweeps), &sweeps));
  size_t wg = ctx->kprof.wg_size;
  LAMP__TRY(lamp__launch(ctx, kern, "svd_jacobi", 1, &wg, &wg));
  LAMP__TRY(lamp__kernel_wg(ctx, "svd_small_orth", "svd_small_orth", &kern));
  cl_ulong h_off = w_off + lamp__svd_small_sigma(l) + 2 * l;
  LAMP__TRY(lamp__arg(ctx, kern, 0, sizeof(cl_mem), &work->buffer));
  LAMP__TRY(lamp__arg(ctx, kern, 2, sizeof(h_off), &h_off));
  LAMP__TRY(lamp__arg(ctx, kern, 3, sizeof(lu), &lu));
  const size_t blocks[2] = {lamp__svd_small_left(l), lamp__svd_small_right(l)};
  for (int b = 0; b < 2; b++) {
    cl_ulong x_off = w_off + blocks[b];
    LAMP__TRY(lamp__arg(ctx, kern, 1, sizeof(x_off), &x_off));
    LAMP__TRY(lamp__launch(ctx, kern, "svd_small_orth", 1, &wg, &wg));
  }
  return LAMP_OK;
}

/* Device buffers of one call. */
typedef struct lamp__svd_ws {
  lamp_tensor y;  /* (m, l) products A Z, the sketch */
  lamp_tensor qm; /* (m, l) orthonormal basis of the range */
  lamp_tensor z;  /* (n, l) products A^T Q; first the Gaussian test matrix or the SRFT signs */
  lamp_tensor qn; /* (n, l) orthonormal basis of the co-range; last, Q_b of B^T = Q_b R */
  lamp_tensor jw; /* the small SVD's work */
  lamp__svd_qr_ws qr;
} lamp__svd_ws;

static void lamp__svd_ws_release(lamp__svd_ws *ws) {
  lamp_tensor_release(&ws->y);
  lamp_tensor_release(&ws->qm);
  lamp_tensor_release(&ws->z);
  lamp_tensor_release(&ws->qn);
  lamp_tensor_release(&ws->jw);
  lamp__svd_qr_ws_release(&ws->qr);
}

static lamp_status lamp__svd_ws_create(lamp_context *ctx, size_t m, size_t n, size_t l,
                                       lamp__svd_ws *ws) {
  size_t ne_m[2] = {l, m}, ne_n[2] = {l, n}, ne_j = lamp__svd_small_floats(l);
  LAMP__TRY(lamp__tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_m, "the SVD's sketch Y", &ws->y));
  LAMP__TRY(lamp__tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_m, "the SVD's basis Q", &ws->qm));
  LAMP__TRY(lamp__tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_n, "the SVD's sketch Z", &ws->z));
  LAMP__TRY(lamp__tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_n, "the SVD's basis of Z", &ws->qn));
  LAMP__TRY(lamp__tensor_create(ctx, LAMP_DTYPE_F32, 1, &ne_j, "the SVD's Jacobi workspace",
                                &ws->jw));
  return lamp__svd_qr_ws_create(ctx, m > n ? m : n, l, &ws->qr);
}

static lamp_status lamp__svd_check_out(lamp_context *ctx, const lamp_tensor *t, const char *name,
                                       size_t ne0, size_t ne1, const char *shape) {
  if (!t || !t->buffer)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_svd_randomized: %s is NULL", name);
  if (t->dtype != LAMP_DTYPE_F32)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "lamp_svd_randomized: %s is not f32", name);
  if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "lamp_svd_randomized: %s must be %s (ne = {%zu, %zu}), "
                      "got ne = {%zu, %zu, %zu, %zu}", name, shape, ne0, ne1, t->ne[0], t->ne[1],
                      t->ne[2], t->ne[3]);
  return LAMP_OK;
}

static lamp_status lamp__svd_run(lamp_context *ctx, const lamp_tensor *a,
                                 const lamp_svd_options *opt, lamp_svd_sketch sketch, size_t l,
                                 lamp_tensor *u, lamp_tensor *s, lamp_tensor *vt,
                                 lamp__svd_ws *ws) {
  size_t m = a->ne[1], n = a->ne[0], k = opt->rank;
  float amax = 0.0f;
  int finite = 1;
  LAMP__TRY(lamp__svd_absmax(ctx, a, &amax, &finite));
  if (!finite)
    return lamp__fail(ctx, LAMP_ERR_NUMERIC, "lamp_svd_randomized: A (%zu x %zu) holds NaN or "
                      "infinite entries", m, n);
  /* Every product uses A / max|a_ij|, so nothing overflows or underflows on the way; S is
   * scaled back at the end. A whose largest entry is zero or subnormal counts as zero. */
  int zero = !(amax >= FLT_MIN);
  float alpha = zero ? 0.0f : 1.0f / amax, scale = zero ? 0.0f : amax;
  LAMP__TRY(lamp__svd_ws_create(ctx, m, n, l, ws));

  if (sketch == LAMP_SVD_SKETCH_SRFT) {
    LAMP__TRY(lamp__svd_srft(ctx, a, alpha, opt->seed, &ws->z, &ws->y));
  } else {
    LAMP__TRY(lamp__svd_philox_fill(ctx, &ws->z, opt->seed, LAMP__SVD_STREAM_GAUSS,
                                    LAMP__PHILOX_NORMAL));
    LAMP__TRY(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, alpha, a, &ws->z, 0.0f, &ws->y));
  }
  LAMP__TRY(lamp__svd_orth(ctx, &ws->qr, LAMP__SVD_QR_AUTO, &ws->y, &ws->qm, NULL, NULL));
  for (unsigned it = 0; it < opt->power_iters; it++) {
    LAMP__TRY(lamp_gemm(ctx, LAMP_TRANS, LAMP_NO_TRANS, alpha, a, &ws->qm, 0.0f, &ws->z));
    LAMP__TRY(lamp__svd_orth(ctx, &ws->qr, LAMP__SVD_QR_AUTO, &ws->z, &ws->qn, NULL, NULL));
    LAMP__TRY(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, alpha, a, &ws->qn, 0.0f, &ws->y));
    LAMP__TRY(lamp__svd_orth(ctx, &ws->qr, LAMP__SVD_QR_AUTO, &ws->y, &ws->qm, NULL, NULL));
  }
  /* B^T = A^T Q = Q_b R, so B = R^T Q_b^T and, with R^T = W S V^T, U = Q W and Vt = V^T Q_b^T. */
  lamp_tensor r;
  LAMP__TRY(lamp_gemm(ctx, LAMP_TRANS, LAMP_NO_TRANS, alpha, a, &ws->qm, 0.0f, &ws->z));
  LAMP__TRY(lamp__svd_orth(ctx, &ws->qr, LAMP__SVD_QR_AUTO, &ws->z, &ws->qn, &r, NULL));
  LAMP__TRY(lamp__svd_small(ctx, &r, l, &ws->jw, scale, s, k));
  lamp_tensor wk, vk;
  size_t ne_k[2] = {l, k};
  LAMP__TRY(lamp_tensor_view(ctx, &ws->jw, 4 * lamp__svd_small_left(l), 2, ne_k, NULL, &wk));
  LAMP__TRY(lamp_tensor_view(ctx, &ws->jw, 4 * lamp__svd_small_right(l), 2, ne_k, NULL, &vk));
  LAMP__TRY(lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_TRANS, 1.0f, &ws->qm, &wk, 0.0f, u));
  return lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_TRANS, 1.0f, &vk, &ws->qn, 0.0f, vt);
}

lamp_status lamp_svd_randomized(lamp_context *ctx, const lamp_tensor *a,
                                const lamp_svd_options *options, lamp_tensor *u, lamp_tensor *s,
                                lamp_tensor *vt) {
  if (!ctx) return LAMP_ERR_INVALID_ARGUMENT;
  if (!a || !a->buffer || !options)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_svd_randomized: A or options is NULL");
  if (a->dtype != LAMP_DTYPE_F32)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "lamp_svd_randomized: A is not f32");
  if (a->ne[2] != 1 || a->ne[3] != 1 || a->nb[0] != 4 || a->nb[1] % 4 || a->offset % 4)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "lamp_svd_randomized: A must be a 2-D matrix with "
                      "unit element stride, got ne = {%zu, %zu, %zu, %zu}, nb[0] = %zu",
                      a->ne[0], a->ne[1], a->ne[2], a->ne[3], a->nb[0]);
  size_t m = a->ne[1], n = a->ne[0], mn = m < n ? m : n, k = options->rank;
  if (k == 0)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_svd_randomized: rank k must be at "
                      "least 1");
  if (k > mn)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_svd_randomized: rank k = %zu exceeds "
                      "min(m, n) = %zu for A of %zu x %zu", k, mn, m, n);
  if (options->power_iters > LAMP__SVD_MAX_POWER_ITERS)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_svd_randomized: %u power iterations "
                      "(at most %d)", options->power_iters, LAMP__SVD_MAX_POWER_ITERS);
  lamp_svd_sketch sketch = options->sketch;
  if (sketch == LAMP_SVD_SKETCH_AUTO) sketch = lamp_svd_sketch_auto(m, n, k);
  if (sketch != LAMP_SVD_SKETCH_GAUSSIAN && sketch != LAMP_SVD_SKETCH_SRFT)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_svd_randomized: unknown sketch %d",
                      (int)options->sketch);
  LAMP__TRY(lamp__svd_check_out(ctx, u, "U", k, m, "m x k"));
  LAMP__TRY(lamp__svd_check_out(ctx, vt, "Vt", n, k, "k x n"));
  LAMP__TRY(lamp__svd_check_out(ctx, s, "S", k, 1, "a vector of k"));
  size_t l = k + (options->oversample < mn - k ? options->oversample : mn - k);

  lamp__svd_ws ws;
  memset(&ws, 0, sizeof(ws));
  lamp_status st = lamp__svd_run(ctx, a, options, sketch, l, u, s, vt, &ws);
  /* the queue may still use the workspace; OpenCL defers the frees until it is done */
  lamp__svd_ws_release(&ws);
  return st;
}
