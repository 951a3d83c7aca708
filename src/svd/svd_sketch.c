/* Randomized SVD, the sketches: the Philox4x32-10 generator, the Gaussian test matrix, the SRFT
 * through clFFT, and the input check. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <clFFT.h>

#include "svd/svd_internal.h"

#define LAMP__PHILOX_M0 0xD2511F53u
#define LAMP__PHILOX_M1 0xCD9E8D57u
#define LAMP__PHILOX_W0 0x9E3779B9u
#define LAMP__PHILOX_W1 0xBB67AE85u

void lamp__philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; round++) {
    if (round > 0) {
      k0 += LAMP__PHILOX_W0;
      k1 += LAMP__PHILOX_W1;
    }
    uint64_t p0 = (uint64_t)LAMP__PHILOX_M0 * c0, p1 = (uint64_t)LAMP__PHILOX_M1 * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/* Checks that t is an f32 matrix with unit element stride and 4-byte aligned rows. */
static lamp_status lamp__svd_matrix_ok(lamp_context *ctx, const lamp_tensor *t, const char *what) {
  if (!t || !t->buffer)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: tensor is NULL", what);
  if (t->dtype != LAMP_DTYPE_F32)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "%s: tensor is not f32", what);
  if (t->ne[2] != 1 || t->ne[3] != 1 || t->nb[0] != 4 || t->nb[1] % 4 || t->offset % 4)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "%s: needs a 2-D f32 matrix with unit element "
                      "stride (ne = {%zu, %zu, %zu, %zu})", what, t->ne[0], t->ne[1], t->ne[2],
                      t->ne[3]);
  return LAMP_OK;
}

static size_t lamp__svd_ld(const lamp_tensor *t) { return t->ne[1] > 1 ? t->nb[1] / 4 : t->ne[0]; }

lamp_status lamp__svd_philox_fill(lamp_context *ctx, lamp_tensor *t, uint64_t seed,
                                  uint32_t stream, int dist) {
  LAMP__TRY(lamp__svd_matrix_ok(ctx, t, "philox_fill"));
  cl_kernel k = NULL;
  LAMP__TRY(lamp__kernel(ctx, "philox_fill", "philox_fill", &k));
  cl_ulong off = t->offset / 4, ld = lamp__svd_ld(t), rows = t->ne[1], cols = t->ne[0];
  cl_uint seed_lo = (cl_uint)seed, seed_hi = (cl_uint)(seed >> 32), st = stream;
  cl_int d = dist;
  LAMP__TRY(lamp__arg(ctx, k, 0, sizeof(cl_mem), &t->buffer));
  LAMP__TRY(lamp__arg(ctx, k, 1, sizeof(off), &off));
  LAMP__TRY(lamp__arg(ctx, k, 2, sizeof(ld), &ld));
  LAMP__TRY(lamp__arg(ctx, k, 3, sizeof(rows), &rows));
  LAMP__TRY(lamp__arg(ctx, k, 4, sizeof(cols), &cols));
  LAMP__TRY(lamp__arg(ctx, k, 5, sizeof(seed_lo), &seed_lo));
  LAMP__TRY(lamp__arg(ctx, k, 6, sizeof(seed_hi), &seed_hi));
  LAMP__TRY(lamp__arg(ctx, k, 7, sizeof(st), &st));
  LAMP__TRY(lamp__arg(ctx, k, 8, sizeof(d), &d));
  size_t global = rows * ((cols + 3) / 4), local = 64;
  return lamp__launch(ctx, k, "philox_fill", 1, &global, &local);
}

/* Work-groups of the input check: enough to keep a device busy, few enough to read back. */
#define LAMP__SVD_ABSMAX_GROUPS 64

lamp_status lamp__svd_absmax(lamp_context *ctx, const lamp_tensor *a, float *amax, int *finite) {
  LAMP__TRY(lamp__svd_matrix_ok(ctx, a, "lamp_svd_randomized: A"));
  cl_kernel k = NULL;
  LAMP__TRY(lamp__kernel_wg(ctx, "svd_absmax", "svd_absmax", &k));
  size_t wg = ctx->kprof.wg_size;
  cl_mem partial = NULL;
  LAMP__TRY(lamp__buffer_create(ctx, CL_MEM_READ_WRITE, 2 * LAMP__SVD_ABSMAX_GROUPS * sizeof(float),
                                NULL, "the SVD input check", &partial));
  cl_ulong off = a->offset / 4, ld = lamp__svd_ld(a), rows = a->ne[1], cols = a->ne[0];
  float part[2 * LAMP__SVD_ABSMAX_GROUPS];
  size_t global = LAMP__SVD_ABSMAX_GROUPS * wg;
  lamp_status st = lamp__arg(ctx, k, 0, sizeof(cl_mem), &a->buffer);
  if (st == LAMP_OK) st = lamp__arg(ctx, k, 1, sizeof(off), &off);
  if (st == LAMP_OK) st = lamp__arg(ctx, k, 2, sizeof(ld), &ld);
  if (st == LAMP_OK) st = lamp__arg(ctx, k, 3, sizeof(rows), &rows);
  if (st == LAMP_OK) st = lamp__arg(ctx, k, 4, sizeof(cols), &cols);
  if (st == LAMP_OK) st = lamp__arg(ctx, k, 5, sizeof(cl_mem), &partial);
  if (st == LAMP_OK) st = lamp__launch(ctx, k, "svd_absmax", 1, &global, &wg);
  if (st == LAMP_OK) {
    cl_int err =
        clEnqueueReadBuffer(ctx->queue, partial, CL_TRUE, 0, sizeof(part), part, 0, NULL, NULL);
    if (err != CL_SUCCESS)
      st = lamp__fail(ctx, lamp__status_from_cl(err), "reading the SVD input check: %s",
                      lamp_cl_error_name(err));
  }
  clReleaseMemObject(partial);
  if (st != LAMP_OK) return st;
  *amax = 0.0f;
  *finite = 1;
  for (int g = 0; g < LAMP__SVD_ABSMAX_GROUPS; g++) {
    if (part[2 * g] > *amax) *amax = part[2 * g];
    if (part[2 * g + 1] != 0.0f) *finite = 0;
  }
  return LAMP_OK;
}

size_t lamp__svd_fft_length(size_t n) {
  for (size_t len = n < 2 ? 2 : n + (n & 1);; len += 2) {
    size_t r = len;
    while (r % 2 == 0) r /= 2;
    while (r % 3 == 0) r /= 3;
    while (r % 5 == 0) r /= 5;
    if (r == 1) return len;
  }
}

/* A seeded partial Fisher-Yates shuffle picks l of the fft_n real columns of the real DFT: real
 * parts of bins 0..fft_n/2, then imaginary parts of bins 1..fft_n/2-1. Each is scaled to unit
 * norm over the full transform length and by sqrt(fft_n / l), so that Omega Omega^T has
 * expectation I. */
lamp_status lamp__svd_srft_columns(lamp_context *ctx, uint64_t seed, size_t fft_n, size_t l,
                                   int32_t *offsets, float *scales) {
  uint32_t *perm = malloc(fft_n * sizeof(*perm));
  if (!perm) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory (SRFT columns)");
  for (size_t i = 0; i < fft_n; i++) perm[i] = (uint32_t)i;
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  size_t half = fft_n / 2;
  for (size_t t = 0; t < l; t++) {
    const uint32_t ctr[4] = {(uint32_t)t, (uint32_t)(t >> 32), 0, LAMP__SVD_STREAM_PICK};
    uint32_t w[4];
    lamp__philox4x32_10(ctr, key, w);
    size_t pick = t + (size_t)(((uint64_t)w[0] * (fft_n - t)) >> 32);
    uint32_t tmp = perm[t];
    perm[t] = perm[pick];
    perm[pick] = tmp;
    size_t c = perm[t];
    int edge = c == 0 || 2 * c == fft_n;
    offsets[t] = (int32_t)(c <= half ? 2 * c : 2 * (c - half) + 1);
    scales[t] = (float)((edge && c <= half ? 1.0 : sqrt(2.0)) / sqrt((double)l));
  }
  free(perm);
  return LAMP_OK;
}

static lamp_status lamp__clfft_fail(lamp_context *ctx, clfftStatus s, const char *call) {
  lamp_status st = s == CLFFT_OUT_OF_HOST_MEMORY || s == CLFFT_OUT_OF_RESOURCES ||
                           s == CLFFT_MEM_OBJECT_ALLOCATION_FAILURE
                       ? LAMP_ERR_OUT_OF_MEMORY
                       : LAMP_ERR_CLFFT;
  return lamp__fail(ctx, st, "%s failed: clFFT status %d%s%s", call, (int)s,
                    (int)s < 0 ? " " : "", (int)s < 0 ? lamp_cl_error_name((int)s) : "");
}

/* Everything one SRFT sketch allocates, released on every exit. */
typedef struct lamp__srft_res {
  cl_mem rows, spectrum, offsets, scales;
  clfftPlanHandle plan;
  int have_plan;
} lamp__srft_res;

static lamp_status lamp__svd_srft_run(lamp_context *ctx, const lamp_tensor *a, float alpha,
                                      uint64_t seed, lamp_tensor *signs, lamp_tensor *y,
                                      lamp__srft_res *res) {
  size_t m = a->ne[1], n = a->ne[0], l = y->ne[0];
  /* Out of place: the real rows (fft_n floats each) and the half spectra (row_len floats each)
   * live in separate buffers. clFFT's in-place real transform reads and writes the same
   * locations from different work-items without a barrier (a race Oclgrind reports, and
   * clFFT's issue #193 on GPUs). */
  size_t fft_n = lamp__svd_fft_length(n), row_len = 2 * (fft_n / 2 + 1);
  if (row_len > SIZE_MAX / 4 / m)
    return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "SRFT buffer of %zu x %zu overflows", m,
                      row_len);
  size_t bytes = m * row_len * 4, in_bytes = m * fft_n * 4;
  if (ctx->info.max_alloc_bytes && bytes > ctx->info.max_alloc_bytes)
    return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "the SRFT sketch needs a buffer of %zu bytes, "
                      "more than the device's largest allocation (%llu); use the Gaussian "
                      "sketch", bytes, (unsigned long long)ctx->info.max_alloc_bytes);

  lamp_tensor d;
  size_t ne_d[2] = {n, 1};
  LAMP__TRY(lamp_tensor_view(ctx, signs, 0, 2, ne_d, NULL, &d));
  LAMP__TRY(lamp__svd_philox_fill(ctx, &d, seed, LAMP__SVD_STREAM_SIGNS, LAMP__PHILOX_SIGN));

  LAMP__TRY(lamp__buffer_create(ctx, CL_MEM_READ_WRITE, in_bytes, NULL,
                                "the SVD's SRFT input rows", &res->rows));
  LAMP__TRY(lamp__buffer_create(ctx, CL_MEM_READ_WRITE, bytes, NULL, "the SVD's SRFT sketch",
                                &res->spectrum));
  cl_kernel k = NULL;
  LAMP__TRY(lamp__kernel(ctx, "svd_srft_pack", "svd_srft_pack", &k));
  cl_ulong a_off = a->offset / 4, lda = lamp__svd_ld(a), rows = m, cols = n;
  cl_ulong d_off = d.offset / 4, rl = row_len, in_len = fft_n;
  LAMP__TRY(lamp__arg(ctx, k, 0, sizeof(cl_mem), &a->buffer));
  LAMP__TRY(lamp__arg(ctx, k, 1, sizeof(a_off), &a_off));
  LAMP__TRY(lamp__arg(ctx, k, 2, sizeof(lda), &lda));
  LAMP__TRY(lamp__arg(ctx, k, 3, sizeof(rows), &rows));
  LAMP__TRY(lamp__arg(ctx, k, 4, sizeof(cols), &cols));
  LAMP__TRY(lamp__arg(ctx, k, 5, sizeof(cl_mem), &d.buffer));
  LAMP__TRY(lamp__arg(ctx, k, 6, sizeof(d_off), &d_off));
  LAMP__TRY(lamp__arg(ctx, k, 7, sizeof(float), &alpha));
  LAMP__TRY(lamp__arg(ctx, k, 8, sizeof(cl_mem), &res->rows));
  LAMP__TRY(lamp__arg(ctx, k, 9, sizeof(in_len), &in_len));
  size_t global[2] = {fft_n, m}, local[2] = {64, 1};
  LAMP__TRY(lamp__launch(ctx, k, "svd_srft_pack", 2, global, local));

  /* clfftSetup(NULL) only makes sure clFFT's process-wide state exists; it is idempotent and
   * thread-safe and leaves the host's own setup data alone. lamp never calls clfftTeardown
   * (see svd.h). */
  clfftStatus fs = clfftSetup(NULL);
  if (fs != CLFFT_SUCCESS) return lamp__clfft_fail(ctx, fs, "clfftSetup");
  size_t len = fft_n, unit = 1;
  fs = clfftCreateDefaultPlan(&res->plan, ctx->cl_ctx, CLFFT_1D, &len);
  if (fs != CLFFT_SUCCESS) return lamp__clfft_fail(ctx, fs, "clfftCreateDefaultPlan");
  res->have_plan = 1;
  fs = clfftSetPlanPrecision(res->plan, CLFFT_SINGLE);
  if (fs == CLFFT_SUCCESS) fs = clfftSetLayout(res->plan, CLFFT_REAL, CLFFT_HERMITIAN_INTERLEAVED);
  if (fs == CLFFT_SUCCESS) fs = clfftSetResultLocation(res->plan, CLFFT_OUTOFPLACE);
  if (fs == CLFFT_SUCCESS) fs = clfftSetPlanBatchSize(res->plan, m);
  if (fs == CLFFT_SUCCESS) fs = clfftSetPlanInStride(res->plan, CLFFT_1D, &unit);
  if (fs == CLFFT_SUCCESS) fs = clfftSetPlanOutStride(res->plan, CLFFT_1D, &unit);
  if (fs == CLFFT_SUCCESS) fs = clfftSetPlanDistance(res->plan, fft_n, row_len / 2);
  if (fs != CLFFT_SUCCESS) return lamp__clfft_fail(ctx, fs, "configuring the SRFT plan");
  fs = clfftBakePlan(res->plan, 1, &ctx->queue, NULL, NULL);
  if (fs != CLFFT_SUCCESS) return lamp__clfft_fail(ctx, fs, "clfftBakePlan");
  cl_event marker = NULL;
  LAMP__TRY(lamp__profile_begin(ctx, &marker));
  fs = clfftEnqueueTransform(res->plan, CLFFT_FORWARD, 1, &ctx->queue, 0, NULL, NULL,
                             &res->rows, &res->spectrum, NULL);
  if (fs != CLFFT_SUCCESS) {
    if (marker) clReleaseEvent(marker);
    return lamp__clfft_fail(ctx, fs, "clfftEnqueueTransform");
  }
  LAMP__TRY(lamp__profile_end(ctx, marker, "svd_srft_fft"));

  int32_t *offsets = malloc(l * sizeof(*offsets));
  float *scales = malloc(l * sizeof(*scales));
  lamp_status st = offsets && scales ? LAMP_OK
                                     : lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  if (st == LAMP_OK) st = lamp__svd_srft_columns(ctx, seed, fft_n, l, offsets, scales);
  if (st == LAMP_OK)
    st = lamp__buffer_create(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, l * sizeof(*offsets),
                             offsets, "the SRFT's column offsets", &res->offsets);
  if (st == LAMP_OK)
    st = lamp__buffer_create(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, l * sizeof(*scales),
                             scales, "the SRFT's column scales", &res->scales);
  free(offsets);
  free(scales);
  if (st != LAMP_OK) return st;

  LAMP__TRY(lamp__kernel(ctx, "svd_srft_gather", "svd_srft_gather", &k));
  cl_ulong yl = l;
  LAMP__TRY(lamp__arg(ctx, k, 0, sizeof(cl_mem), &res->spectrum));
  LAMP__TRY(lamp__arg(ctx, k, 1, sizeof(rl), &rl));
  LAMP__TRY(lamp__arg(ctx, k, 2, sizeof(rows), &rows));
  LAMP__TRY(lamp__arg(ctx, k, 3, sizeof(cl_mem), &res->offsets));
  LAMP__TRY(lamp__arg(ctx, k, 4, sizeof(cl_mem), &res->scales));
  LAMP__TRY(lamp__arg(ctx, k, 5, sizeof(cl_mem), &y->buffer));
  LAMP__TRY(lamp__arg(ctx, k, 6, sizeof(yl), &yl));
  global[0] = l;
  local[0] = l < 64 ? l : 64;
  LAMP__TRY(lamp__launch(ctx, k, "svd_srft_gather", 2, global, local));
  /* the plan and buffers go away right after; clFFT owns internal state tied to the plan */
  LAMP__CL(ctx, clFinish(ctx->queue));
  return LAMP_OK;
}

lamp_status lamp__svd_srft(lamp_context *ctx, const lamp_tensor *a, float alpha, uint64_t seed,
                           lamp_tensor *signs, lamp_tensor *y) {
  LAMP__TRY(lamp__svd_matrix_ok(ctx, a, "SRFT: A"));
  if (!lamp_tensor_is_contiguous(y) || y->offset != 0 || y->ne[1] != a->ne[1] ||
      lamp_tensor_numel(signs) < a->ne[0])
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "SRFT: Y must be a contiguous m x l buffer and the "
                      "sign scratch hold n floats");
  lamp__srft_res res;
  memset(&res, 0, sizeof(res));
  lamp_status st = lamp__svd_srft_run(ctx, a, alpha, seed, signs, y, &res);
  if (st != LAMP_OK) clFinish(ctx->queue);
  if (res.have_plan) clfftDestroyPlan(&res.plan);
  if (res.rows) clReleaseMemObject(res.rows);
  if (res.spectrum) clReleaseMemObject(res.spectrum);
  if (res.offsets) clReleaseMemObject(res.offsets);
  if (res.scales) clReleaseMemObject(res.scales);
  return st;
}
