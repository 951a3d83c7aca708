/* The pooled LAMP prompt, forward and backward: lamp's fused tiled kernels against
 *  (a) materialise: form the whole (P, C) prompt with GEMMs, then pool (and the reverse), and
 *  (b) pooled GEMMs: the same pooled-first products as plain CLBlast GEMMs, with the averaging
 *      matrix A (P', P) and diag(q) as dense matrices,
 * for the sizes, same device, same run; outputs and gradients of (a) and (b) are checked
 * against the fused ones (bench_prompt_lib.c). Also prints each method's parameter count.
 * Usage: bench_prompt [--quick] */
#include <stdio.h>
#include <string.h>

#include "bench_common.h"

int main(int argc, char **argv) {
  int quick = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) quick = 1;
    else {
      fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
      return 2;
    }
  }
  char err[1024];
  lamp_context *ctx = NULL;
  lamp_status st = lamp_context_create(NULL, &ctx, err, sizeof(err));
  if (st != LAMP_OK) {
    fprintf(stderr, "bench_prompt: %s: %s\n", lamp_status_name(st), err);
    return 1;
  }
  const lamp_device_info *dev = lamp_context_device(ctx);
  printf("device: %s (%s, %s)\n\n", dev->name, dev->platform_name, dev->driver_version);
  printf("Times in ms per call. fused: lamp_prompt_forward / lamp_prompt_backward; (a) "
         "materialise (P, C) then pool; (b) pooled-first products as CLBlast GEMMs.\n\n");
  printf("| P, C, R, s | fwd fused | fwd (a) | fwd (b) | bwd fused | bwd (a) | bwd (b) | "
         "max rel. diff (a), (b) |\n");
  printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (size_t i = 0; i < bench_prompt_config_count; i++) {
    const bench_prompt_config *c = &bench_prompt_configs[i];
    bench_prompt_result r;
    bench_prompt_measure(ctx, c, quick, &r);
    printf("| %zu, %zu, %zu, %zu | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.1e, %.1e |\n",
           c->l, c->d, c->r, c->s, 1e3 * r.seconds[0][0], 1e3 * r.seconds[0][1],
           1e3 * r.seconds[0][2], 1e3 * r.seconds[1][0], 1e3 * r.seconds[1][1],
           1e3 * r.seconds[1][2], r.diff_a, r.diff_b);
    fflush(stdout);
  }

  printf("\nTrainable parameters (DPT with its default bottleneck b = 10):\n\n");
  printf("| P, C, R | LAMP R(P+C+1) | PT P C | DPT b(P+C) |\n|---|---:|---:|---:|\n");
  for (size_t i = 0; i < bench_prompt_config_count; i++) {
    const bench_prompt_config *c = &bench_prompt_configs[i];
    size_t n[3];
    static const lamp_prompt_method ms[] = {LAMP_PROMPT_LAMP, LAMP_PROMPT_PT, LAMP_PROMPT_DPT};
    for (int m = 0; m < 3; m++) {
      lamp_prompt_options o;
      lamp_prompt_options_init(&o, ms[m], c->d);
      o.length = c->l;
      o.rank = c->r;
      BENCH_CHECK(ctx, lamp_prompt_options_param_count(&o, &n[m]));
    }
    printf("| %zu, %zu, %zu | %zu | %zu | %zu |\n", c->l, c->d, c->r, n[0], n[1], n[2]);
  }
  lamp_context_release(ctx);
  return 0;
}
