/* GEMM throughput: lamp (CLBlast on the selected OpenCL device) against OpenBLAS on the host,
 * same shapes, same run. Usage: bench_gemm [--quick] [--json FILE] */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct shape {
  size_t m, n, k;
  const char *what;
} shape;

static const shape shapes[] = {
    {128, 576, 576, "SmolLM2 attention projection, 128 tokens"},
    {128, 1536, 576, "SmolLM2 MLP up/gate, 128 tokens"},
    {512, 512, 512, "square"},
    {1024, 1024, 1024, "square"},
};

static void fill(float *x, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
  }
}

/* Runs `reps` products and returns seconds per product (after one warm-up call). */
static double time_lamp(lamp_context *ctx, lamp_tensor *a, lamp_tensor *b, lamp_tensor *c,
                        int reps, lamp_status *st) {
  *st = lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, a, b, 0.0f, c);
  if (*st == LAMP_OK) *st = lamp_context_finish(ctx);
  if (*st != LAMP_OK) return 0;
  double t0 = lamp__now_seconds();
  for (int r = 0; r < reps && *st == LAMP_OK; r++)
    *st = lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, a, b, 0.0f, c);
  if (*st == LAMP_OK) *st = lamp_context_finish(ctx);
  return (lamp__now_seconds() - t0) / reps;
}

static double time_blas(const float *a, const float *b, float *c, const shape *s, int reps) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s->m, (int)s->n, (int)s->k, 1.0f, a,
              (int)s->k, b, (int)s->n, 0.0f, c, (int)s->n);
  double t0 = lamp__now_seconds();
  for (int r = 0; r < reps; r++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s->m, (int)s->n, (int)s->k, 1.0f,
                a, (int)s->k, b, (int)s->n, 0.0f, c, (int)s->n);
  return (lamp__now_seconds() - t0) / reps;
}

int main(int argc, char **argv) {
  int quick = 0;
  const char *json_path = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) quick = 1;
    else if (!strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--quick] [--json FILE]\n", argv[0]);
      return 2;
    }
  }
  char err[1024];
  lamp_context *ctx = NULL;
  lamp_status st = lamp_context_create(NULL, &ctx, err, sizeof(err));
  if (st != LAMP_OK) {
    fprintf(stderr, "bench_gemm: %s: %s\n", lamp_status_name(st), err);
    return 1;
  }
  const lamp_device_info *dev = lamp_context_device(ctx);
  printf("device: %s (%s, %s); baseline: OpenBLAS %s, %d threads\n\n", dev->name,
         dev->platform_name, dev->driver_version, openblas_get_config(),
         openblas_get_num_threads());
  printf("| M x N x K | shape | lamp GFLOP/s | OpenBLAS GFLOP/s | lamp / OpenBLAS | max rel. diff |\n");
  printf("|---|---|---:|---:|---:|---:|\n");
  FILE *json = json_path ? fopen(json_path, "w") : NULL;
  if (json) fprintf(json, "{\"device\": \"%s\", \"results\": [", dev->name);

  int rc = 0;
  size_t nshapes = quick ? 1 : sizeof(shapes) / sizeof(shapes[0]);
  for (size_t i = 0; i < nshapes && rc == 0; i++) {
    const shape *s = &shapes[i];
    float *a = malloc(4 * s->m * s->k), *b = malloc(4 * s->k * s->n);
    float *c = malloc(4 * s->m * s->n), *c_dev = malloc(4 * s->m * s->n);
    lamp_tensor ta = {0}, tb = {0}, tc = {0};
    size_t ne_a[2] = {s->k, s->m}, ne_b[2] = {s->n, s->k}, ne_c[2] = {s->n, s->m};
    if (!a || !b || !c || !c_dev) {
      rc = 1;
    } else {
      fill(a, s->m * s->k, 1);
      fill(b, s->k * s->n, 2);
      if ((st = lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_a, &ta)) != LAMP_OK ||
          (st = lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_b, &tb)) != LAMP_OK ||
          (st = lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne_c, &tc)) != LAMP_OK ||
          (st = lamp_tensor_upload(ctx, &ta, a, 4 * s->m * s->k)) != LAMP_OK ||
          (st = lamp_tensor_upload(ctx, &tb, b, 4 * s->k * s->n)) != LAMP_OK)
        rc = 1;
    }
    if (rc == 0) {
      double flop = 2.0 * (double)s->m * (double)s->n * (double)s->k;
      int reps = quick ? 2 : (int)fmax(3.0, fmin(50.0, 2e10 / flop));
      double t_dev = time_lamp(ctx, &ta, &tb, &tc, reps, &st);
      if (st == LAMP_OK) st = lamp_tensor_download(ctx, &tc, c_dev, 4 * s->m * s->n);
      if (st != LAMP_OK) {
        fprintf(stderr, "bench_gemm: %s: %s\n", lamp_status_name(st), lamp_context_error(ctx));
        rc = 1;
      } else {
        double t_cpu = time_blas(a, b, c, s, reps);
        double diff = 0, scale = 1e-30;
        for (size_t j = 0; j < s->m * s->n; j++) {
          diff = fmax(diff, fabs((double)c[j] - c_dev[j]));
          scale = fmax(scale, fabs((double)c[j]));
        }
        double g_dev = flop / t_dev * 1e-9, g_cpu = flop / t_cpu * 1e-9;
        printf("| %zu x %zu x %zu | %s | %.1f | %.1f | %.3f | %.1e |\n", s->m, s->n, s->k,
               s->what, g_dev, g_cpu, g_dev / g_cpu, diff / scale);
        if (json)
          fprintf(json, "%s{\"m\": %zu, \"n\": %zu, \"k\": %zu, \"lamp_gflops\": %.3f, "
                  "\"blas_gflops\": %.3f}", i ? ", " : "", s->m, s->n, s->k, g_dev, g_cpu);
        if (diff / scale > 1e-4) rc = 1;
      }
    }
    lamp_tensor_release(&ta);
    lamp_tensor_release(&tb);
    lamp_tensor_release(&tc);
    free(a);
    free(b);
    free(c);
    free(c_dev);
  }
  if (json) {
    fprintf(json, "]}\n");
    fclose(json);
  }
  lamp_context_release(ctx);
  return rc;
}
