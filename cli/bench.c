/* lamp bench: the benchmark suite lives in its own program because it links a CPU BLAS and
 * LAPACK as baselines, which the tool and the library must not depend on. */
#include "bench.h"
#include "help.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int lamp_cli_bench(int argc, char **argv) {
  /* bench_suite prints its options after this (the --help goes through), so they are written
   * once; without it the usage still answers. */
  int help = lamp_cli_wants_help(argc, argv);
  if (help) {
    printf("usage: lamp bench [OPTIONS]\n\n"
           "Runs the benchmark suite, bench_suite, with OPTIONS.\n\n");
    fflush(stdout);
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) {
    fprintf(stderr, "lamp bench: cannot find this executable's folder: %s\n", strerror(errno));
    return 1;
  }
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash) *slash = '\0';
  /* the build tree puts it in bench/ beside lamp; an install in libexec/lamp */
  const char *places[] = {"%s/bench/bench_suite", "%s/../libexec/lamp/bench_suite"};
  char path[PATH_MAX + 64];
  for (size_t i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
    snprintf(path, sizeof(path), places[i], exe);
    if (access(path, X_OK) != 0) continue;
    char **args = calloc((size_t)argc + 2, sizeof(char *));
    if (!args) {
      fprintf(stderr, "lamp bench: out of memory\n");
      return 1;
    }
    args[0] = path;
    for (int a = 0; a < argc; a++) args[a + 1] = argv[a];
    execv(path, args);
    fprintf(stderr, "lamp bench: cannot run %s: %s\n", path, strerror(errno));
    free(args);
    return 1;
  }
  fprintf(help ? stdout : stderr, "lamp bench: bench_suite was not built beside %s (it is built "
          "unless the project is configured with -DLAMP_BUILD_BENCH=OFF, and needs "
          "libopenblas-dev)\n", exe);
  return help ? 0 : 1;
}
