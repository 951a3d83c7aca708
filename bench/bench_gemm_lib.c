/* GEMM throughput: lamp_gemm (CLBlast on the device) and cblas_sgemm (OpenBLAS on the host) on
 * the same operands; the OpenBLAS product is the reference for the device's. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "bench_common.h"

const bench_gemm_shape bench_gemm_square_shapes[] = {
    {128, 576, 576, 0, "SmolLM2 attention projection, 128 tokens"},
    {128, 1536, 576, 0, "SmolLM2 MLP up/gate, 128 tokens"},
    {512, 512, 512, 0, "square"},
    {1024, 1024, 1024, 0, "square"},
};
const size_t bench_gemm_square_count =
    sizeof(bench_gemm_square_shapes) / sizeof(bench_gemm_square_shapes[0]);

size_t bench_gemm_model_shapes(size_t rows, bench_gemm_shape *out, size_t cap) {
  /* SmolLM2-135M: C 576, fused QKV width 576 + 2 * 3 * 64 = 960, fused gate/up 2 * 1536 */
  const bench_gemm_shape all[] = {
      {rows, 960, 576, 1, "forward QKV x Wqkv^T"},
      {rows, 576, 576, 1, "forward attention output x Wo^T"},
      {rows, 3072, 576, 1, "forward gate/up x Wgu^T"},
      {rows, 576, 1536, 1, "forward down x Wdown^T"},
      {rows, 1536, 576, 0, "backward dY Wdown"},
      {rows, 576, 3072, 0, "backward dY Wgu"},
      {rows, 576, 576, 0, "backward dY Wo"},
      {rows, 576, 960, 0, "backward dY Wqkv"},
  };
  size_t n = sizeof(all) / sizeof(all[0]);
  if (n > cap) n = cap;
  for (size_t i = 0; i < n; i++) out[i] = all[i];
  return n;
}

double bench_gemm_flop(const bench_gemm_shape *s) {
  return 2.0 * (double)s->m * (double)s->n * (double)s->k;
}

int bench_gemm_reps(const bench_gemm_shape *s, int quick) {
  return quick ? 2 : (int)fmax(3.0, fmin(50.0, 2e10 / bench_gemm_flop(s)));
}

static void bench_gemm_blas(const bench_gemm_case *g, float *c) {
  const bench_gemm_shape *s = &g->s;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, s->trans_b ? CblasTrans : CblasNoTrans, (int)s->m,
              (int)s->n, (int)s->k, 1.0f, g->a, (int)s->k, g->b, s->trans_b ? (int)s->k : (int)s->n,
              0.0f, c, (int)s->n);
}

void bench_gemm_case_init(bench_gemm_case *g, lamp_context *ctx, const bench_gemm_shape *s) {
  g->s = *s;
  g->ctx = ctx;
  g->a = bench_malloc(4 * s->m * s->k);
  g->b = bench_malloc(4 * s->k * s->n);
  g->c_ref = bench_malloc(4 * s->m * s->n);
  g->c_dev = bench_malloc(4 * s->m * s->n);
  bench_fill_uniform(g->a, s->m * s->k, 1);
  bench_fill_uniform(g->b, s->k * s->n, 2);
  bench_gemm_blas(g, g->c_ref);
  size_t ne_a[2] = {s->k, s->m}, ne_c[2] = {s->n, s->m};
  size_t ne_b[2] = {s->trans_b ? s->k : s->n, s->trans_b ? s->n : s->k};
  BENCH_CHECK(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_a, &g->ta));
  BENCH_CHECK(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_b, &g->tb));
  BENCH_CHECK(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_c, &g->tc));
  BENCH_CHECK(ctx, lamp_tensor_upload(ctx, &g->ta, g->a, 4 * s->m * s->k));
  BENCH_CHECK(ctx, lamp_tensor_upload(ctx, &g->tb, g->b, 4 * s->k * s->n));
}

void bench_gemm_case_release(bench_gemm_case *g) {
  lamp_tensor_release(&g->ta);
  lamp_tensor_release(&g->tb);
  lamp_tensor_release(&g->tc);
  free(g->a);
  free(g->b);
  free(g->c_ref);
  free(g->c_dev);
}

static void bench_gemm_lamp_once(bench_gemm_case *g) {
  BENCH_CHECK(g->ctx, lamp_gemm(g->ctx, LAMP_NO_TRANS, g->s.trans_b ? LAMP_TRANS : LAMP_NO_TRANS,
                                1.0f, &g->ta, &g->tb, 0.0f, &g->tc));
}

double bench_gemm_time_lamp(bench_gemm_case *g, int reps, double *rel_diff) {
  bench_gemm_lamp_once(g);
  BENCH_CHECK(g->ctx, lamp_context_finish(g->ctx));
  double t0 = bench_now();
  for (int r = 0; r < reps; r++) bench_gemm_lamp_once(g);
  BENCH_CHECK(g->ctx, lamp_context_finish(g->ctx));
  double t = (bench_now() - t0) / reps;
  size_t mn = g->s.m * g->s.n;
  BENCH_CHECK(g->ctx, lamp_tensor_download(g->ctx, &g->tc, g->c_dev, 4 * mn));
  double diff = 0, scale = 1e-30;
  for (size_t j = 0; j < mn; j++) {
    diff = fmax(diff, fabs((double)g->c_ref[j] - g->c_dev[j]));
    scale = fmax(scale, fabs((double)g->c_ref[j]));
  }
  *rel_diff = diff / scale;
  return t;
}

double bench_gemm_time_blas(bench_gemm_case *g, int reps) {
  bench_gemm_blas(g, g->c_dev);
  double t0 = bench_now();
  for (int r = 0; r < reps; r++) bench_gemm_blas(g, g->c_dev);
  return (bench_now() - t0) / reps;
}
