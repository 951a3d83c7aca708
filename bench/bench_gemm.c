/* GEMM throughput: lamp (CLBlast on the selected OpenCL device) against OpenBLAS on the host,
 * same shapes, same run. Usage: bench_gemm [--quick] [--json FILE] */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "bench_common.h"

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
  if (json) {
    fprintf(json, "{\"device\": ");
    bench_json_string(json, dev->name);
    fprintf(json, ", \"results\": [");
  }

  int rc = 0;
  size_t nshapes = quick ? 1 : bench_gemm_square_count;
  for (size_t i = 0; i < nshapes && rc == 0; i++) {
    const bench_gemm_shape *s = &bench_gemm_square_shapes[i];
    bench_gemm_case g;
    bench_gemm_case_init(&g, ctx, s);
    int reps = bench_gemm_reps(s, quick);
    double diff = 0, t_dev = bench_gemm_time_lamp(&g, reps, &diff);
    double t_cpu = bench_gemm_time_blas(&g, reps);
    double flop = bench_gemm_flop(s), g_dev = flop / t_dev * 1e-9, g_cpu = flop / t_cpu * 1e-9;
    printf("| %zu x %zu x %zu | %s | %.1f | %.1f | %.3f | %.1e |\n", s->m, s->n, s->k, s->what,
           g_dev, g_cpu, g_dev / g_cpu, diff);
    if (json)
      fprintf(json, "%s{\"m\": %zu, \"n\": %zu, \"k\": %zu, \"lamp_gflops\": %.3f, "
              "\"blas_gflops\": %.3f}", i ? ", " : "", s->m, s->n, s->k, g_dev, g_cpu);
    if (diff > 1e-4) rc = 1;
    bench_gemm_case_release(&g);
  }
  if (json) {
    fprintf(json, "]}\n");
    fclose(json);
  }
  lamp_context_release(ctx);
  return rc;
}
