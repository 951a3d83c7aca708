/* Cold and warm start: time to obtain every built-in kernel program with an empty program
 * cache (compiled from source) and again with the cache filled (loaded as binaries).
 * Usage: bench_startup. For a compile with no driver-side cache either, run it with
 * POCL_KERNEL_CACHE=0 on PoCL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"

static int build_all(const char *cache_dir, double *seconds, lamp_context_stats *stats) {
  lamp_context_options o;
  lamp_context_options_init(&o);
  o.cache = 1;
  o.cache_dir = cache_dir;
  lamp_context *ctx = NULL;
  char err[1024];
  double t0 = bench_now();
  lamp_status st = lamp_context_create(&o, &ctx, err, sizeof(err));
  if (st != LAMP_OK) {
    fprintf(stderr, "bench_startup: %s: %s\n", lamp_status_name(st), err);
    return 1;
  }
  for (size_t i = 0; i < lamp_program_builtin_count() && st == LAMP_OK; i++) {
    lamp_program *p = NULL;
    st = lamp_program_build(ctx, lamp_program_builtin_name(i), lamp_program_builtin_source(i),
                            NULL, &p);
    lamp_program_release(p);
  }
  *seconds = bench_now() - t0;
  lamp_context_get_stats(ctx, stats);
  if (st != LAMP_OK) fprintf(stderr, "bench_startup: %s\n", lamp_context_error(ctx));
  lamp_context_release(ctx);
  return st == LAMP_OK ? 0 : 1;
}

int main(void) {
  char dir[] = "/tmp/lamp-bench-startup-XXXXXX";
  if (!mkdtemp(dir)) return 1;
  double cold = 0, warm = 0;
  lamp_context_stats s_cold, s_warm;
  int rc = build_all(dir, &cold, &s_cold) || build_all(dir, &warm, &s_warm);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0) rc = 1;
  if (rc) return rc;
  const char *pocl_cache = getenv("POCL_KERNEL_CACHE");
  printf("programs: %zu built-in (%s)\n\n", lamp_program_builtin_count(),
         pocl_cache ? "POCL_KERNEL_CACHE set" : "driver cache as configured");
  printf("| start | context + all programs (s) | compiled | loaded from cache |\n");
  printf("|---|---:|---:|---:|\n");
  printf("| cold (empty cache) | %.3f | %llu | %llu |\n", cold,
         (unsigned long long)s_cold.programs_built, (unsigned long long)s_cold.cache_hits);
  printf("| warm (cache filled) | %.3f | %llu | %llu |\n", warm,
         (unsigned long long)s_warm.programs_built, (unsigned long long)s_warm.cache_hits);
  printf("\ncold / warm: %.1fx\n", cold / warm);
  return 0;
}
