/* lamp tune: searches CLBlast GEMM parameters for the selected device (lamp/tune.h). Each
 * candidate runs in a child process ("lamp tune-eval"), because some drivers crash on some legal
 * kernel configurations; a crash or a time-out only rejects that candidate. */
#include "tune.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "help.h"
#include "context.h"
#include "lamp/lamp.h"

extern char **environ;

/* Seconds a child may take for one candidate (CLBlast compiles the GEMM program in it). */
#define TUNE_CHILD_TIMEOUT 600

typedef struct child_eval {
  char self[4096]; /* this executable */
  char device[32];   /* "P:D" of the context being tuned */
} child_eval;

static const char tune_usage[] =
    "usage: lamp tune [--budget N] [--shape MxNxK]... [--in-process]\n"
    "\n"
    "Searches the parameters of CLBlast's SGEMM kernels for the selected device ($LAMP_DEVICE)\n"
    "and stores the result in the cache folder; every later context on this device, driver and\n"
    "platform applies it (LAMP_TUNING=0 ignores it). The baseline is what such a context runs\n"
    "without a result (lamp's built-in one for the device, else CLBlast's own parameters): it\n"
    "is the first candidate, the result is timed against it interleaved, and a shape that would\n"
    "get slower keeps the baseline's kernel. When nothing is faster, nothing is stored (and a\n"
    "result stored before is removed). Takes minutes on a CPU.\n"
    "\n"
    "  --budget N       candidate configurations tried per kernel, the baseline's first\n"
    "                   (default 24; 1 times the baseline alone)\n"
    "  --shape MxNxK    a layer's product to time, forward and backward (repeatable, at most\n"
    "                   16; default: the SmolLM2-135M training shapes)\n"
    "  --in-process     evaluate candidates in this process, not each in a child (a crashing\n"
    "                   candidate then ends the search)\n";

static const char tune_eval_usage[] =
    "usage: lamp tune-eval --device P:D --shape MxNxK... [--set Kernel:NAME=V,...]...\n"
    "                      [--config [--set Kernel:NAME=V,...]...]...\n"
    "\n"
    "Times candidates for lamp tune, which runs them in a child process: applies the --set\n"
    "parameters, times each shape and prints \"seconds T1 T2 ...\" (-1 for a failed shape).\n"
    "Each --config starts another configuration, timed interleaved with the others; one\n"
    "\"seconds\" line each, in order.\n";

static int parse_shape(const char *text, size_t *shape) {
  char tail;
  return sscanf(text, "%zux%zux%zu%c", &shape[0], &shape[1], &shape[2], &tail) == 3 && shape[0] &&
         shape[1] && shape[2];
}

static lamp_status evaluate_in_child(void *user, const lamp_tune_config *configs,
                                     size_t n_configs, const size_t *shapes, size_t n_shapes,
                                     double *seconds) {
  const child_eval *ce = user;
  for (size_t i = 0; i < n_configs * n_shapes; i++) seconds[i] = -1;
  if (n_configs > LAMP_TUNE_MAX_CONFIGS) return LAMP_ERR_INVALID_ARGUMENT;
  enum { MAX_TEXTS = LAMP_TUNE_MAX_SHAPES + LAMP_TUNE_MAX_CONFIGS * LAMP_TUNE_MAX_SETS };
  static char texts[MAX_TEXTS][512];
  char *argv[2 * MAX_TEXTS + LAMP_TUNE_MAX_CONFIGS + 8];
  size_t argc = 0, t = 0;
  argv[argc++] = (char *)ce->self;
  argv[argc++] = "tune-eval";
  argv[argc++] = "--device";
  argv[argc++] = (char *)ce->device;
  for (size_t i = 0; i < n_shapes; i++, t++) {
    snprintf(texts[t], sizeof(texts[t]), "%zux%zux%zu", shapes[3 * i], shapes[3 * i + 1],
             shapes[3 * i + 2]);
    argv[argc++] = "--shape";
    argv[argc++] = texts[t];
  }
  for (size_t c = 0; c < n_configs; c++) {
    if (c) argv[argc++] = "--config";
    for (size_t s = 0; s < configs[c].n_sets && s < LAMP_TUNE_MAX_SETS; s++, t++) {
      if (lamp_tune_params_format(&configs[c].sets[s], texts[t], sizeof(texts[t])) != LAMP_OK)
        return LAMP_ERR_INVALID_ARGUMENT;
      argv[argc++] = "--set";
      argv[argc++] = texts[t];
    }
  }
  argv[argc] = NULL;

  int fd[2];
  if (pipe(fd) != 0) return LAMP_ERR_IO;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, fd[0]);
  pid_t pid;
  int rc = posix_spawn(&pid, ce->self, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fd[1]);
  if (rc != 0) {
    close(fd[0]);
    fprintf(stderr, "lamp tune: cannot start %s: %s\n", ce->self, strerror(rc));
    return LAMP_ERR_IO;
  }
  char out[8192];
  size_t len = 0;
  ssize_t r;
  while (len + 1 < sizeof(out) && ((r = read(fd[0], out + len, sizeof(out) - 1 - len)) > 0 ||
                                   (r < 0 && errno == EINTR)))
    if (r > 0) len += (size_t)r;
  out[len] = '\0';
  close(fd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return LAMP_OK; /* crashed: rejected */
  /* one "seconds" line per configuration; anything short of that rejects them all */
  double v[LAMP_TUNE_MAX_CONFIGS * LAMP_TUNE_MAX_SHAPES];
  const char *line = out;
  for (size_t c = 0; c < n_configs; c++) {
    line = strstr(line, "seconds");
    if (!line) return LAMP_OK;
    line += strlen("seconds");
    for (size_t i = 0; i < n_shapes; i++) {
      char *end = NULL;
      v[c * n_shapes + i] = strtod(line, &end);
      if (end == line) return LAMP_OK;
      line = end;
    }
  }
  memcpy(seconds, v, n_configs * n_shapes * sizeof(double));
  return LAMP_OK;
}

int lamp_cli_tune_eval(int argc, char **argv) {
  if (lamp_cli_wants_help(argc, argv)) {
    fputs(tune_eval_usage, stdout);
    return 0;
  }
  size_t shapes[3 * LAMP_TUNE_MAX_SHAPES];
  static lamp_tune_config configs[LAMP_TUNE_MAX_CONFIGS];
  size_t n_shapes = 0, n_configs = 1;
  memset(configs, 0, sizeof(configs));
  const char *device = NULL;
  for (int i = 0; i < argc; i++) {
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(argv[i], "--config") && n_configs < LAMP_TUNE_MAX_CONFIGS) {
      n_configs++;
      continue;
    }
    lamp_tune_config *c = &configs[n_configs - 1];
    if (value && !strcmp(argv[i], "--device")) {
      device = value;
    } else if (value && !strcmp(argv[i], "--shape") && n_shapes < LAMP_TUNE_MAX_SHAPES &&
               parse_shape(value, &shapes[3 * n_shapes])) {
      n_shapes++;
    } else if (value && !strcmp(argv[i], "--set") && c->n_sets < LAMP_TUNE_MAX_SETS &&
               lamp_tune_params_parse(value, &c->sets[c->n_sets]) == LAMP_OK) {
      c->n_sets++;
    } else {
      fprintf(stderr, "lamp tune-eval: bad argument '%s'\n%s", argv[i], tune_eval_usage);
      return 2;
    }
    i++;
  }
  if (!n_shapes) {
    fprintf(stderr, "lamp tune-eval: needs --shape MxNxK\n%s", tune_eval_usage);
    return 2;
  }
  alarm(TUNE_CHILD_TIMEOUT);
  lamp_context_options o;
  lamp_context_options_init(&o);
  o.device = device;
  o.tuning = 0;
  o.profile = 0;
  lamp_context *ctx = NULL;
  char err[1024];
  lamp_status st = lamp_context_create(&o, &ctx, err, sizeof(err));
  if (st != LAMP_OK) {
    fprintf(stderr, "lamp tune-eval: %s: %s\n", lamp_status_name(st), err);
    return 1;
  }
  double seconds[LAMP_TUNE_MAX_CONFIGS * LAMP_TUNE_MAX_SHAPES];
  st = lamp_tune_measure(ctx, configs, n_configs, shapes, n_shapes, seconds);
  if (st != LAMP_OK) {
    fprintf(stderr, "lamp tune-eval: %s: %s\n", lamp_status_name(st), lamp_context_error(ctx));
    lamp_cli_context_release(ctx);
    return 1;
  }
  for (size_t c = 0; c < n_configs; c++) {
    printf("seconds");
    for (size_t i = 0; i < n_shapes; i++) printf(" %.9f", seconds[c * n_shapes + i]);
    printf("\n");
  }
  lamp_cli_context_release(ctx);
  return 0;
}

int lamp_cli_tune(int argc, char **argv) {
  if (lamp_cli_wants_help(argc, argv)) {
    fputs(tune_usage, stdout);
    return 0;
  }
  lamp_tune_options o;
  lamp_tune_options_init(&o);
  size_t shapes[3 * LAMP_TUNE_MAX_SHAPES];
  size_t n_shapes = 0;
  int in_process = 0;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--budget") && i + 1 < argc) {
      char *end = NULL;
      long v = strtol(argv[++i], &end, 10);
      if (!end || *end || v < 1 || v > 100000) {
        fprintf(stderr, "lamp tune: --budget takes a positive number\n");
        return 2;
      }
      o.budget = (unsigned)v;
    } else if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
      if (n_shapes == LAMP_TUNE_MAX_SHAPES || !parse_shape(argv[++i], &shapes[3 * n_shapes])) {
        fprintf(stderr, "lamp tune: --shape takes MxNxK (at most %d shapes)\n",
                LAMP_TUNE_MAX_SHAPES);
        return 2;
      }
      n_shapes++;
    } else if (!strcmp(argv[i], "--in-process")) {
      in_process = 1;
    } else {
      fprintf(stderr, "lamp tune: unknown option '%s'\n%s", argv[i], tune_usage);
      return 2;
    }
  }
  if (n_shapes) {
    o.shapes = shapes;
    o.n_shapes = n_shapes;
  }
  o.log = stdout;

  lamp_context_options co;
  lamp_context_options_init(&co);
  co.tuning = 0; /* nothing applied here: the baseline is named explicitly (lamp_tune_baseline) */
  char err[2048];
  lamp_context *ctx = NULL;
  lamp_status st = lamp_context_create(&co, &ctx, err, sizeof(err));
  if (st != LAMP_OK) {
    fprintf(stderr, "lamp: cannot create a context: %s: %s\n", lamp_status_name(st), err);
    return 1;
  }
  const lamp_device_info *dev = lamp_context_device(ctx);
  child_eval ce;
  snprintf(ce.device, sizeof(ce.device), "%u:%u", dev->platform_index, dev->device_index);
  ssize_t n = readlink("/proc/self/exe", ce.self, sizeof(ce.self) - 1);
  if (!in_process && n > 0) {
    ce.self[n] = '\0';
    o.evaluate = evaluate_in_child;
    o.evaluate_user = &ce;
  }
  printf("tuning GEMM for [%s] %s (%s, driver %s), %u candidates per kernel, %s\n", ce.device,
         dev->name, dev->platform_name, dev->driver_version, o.budget,
         o.evaluate ? "each in a child process" : "in this process");
  fflush(stdout);
  static lamp_tune_report r;
  st = lamp_tune_gemm(ctx, &o, &r);
  if (st != LAMP_OK) {
    fprintf(stderr, "lamp tune: %s: %s\n", lamp_status_name(st), lamp_context_error(ctx));
    lamp_cli_context_release(ctx);
    return 1;
  }
  const char *baseline = r.baseline == 2 ? "lamp's built-in result" : "CLBlast's own parameters";
  printf("\nEach shape: a layer's forward x W^T (M x N x K) and backward dY W (M x K x N); before\n"
         "is the baseline (%s), after the result, timed interleaved in one measurement.\n"
         "\n| M x N x K | kernel | before GFLOP/s | after GFLOP/s | speed-up |\n"
         "|---|---|---:|---:|---:|\n",
         baseline);
  for (size_t i = 0; i < r.n_shapes; i++)
    printf("| %zu x %zu x %zu | %s, %s | %.1f | %.1f | %.2fx |\n", r.shapes[i].m, r.shapes[i].n,
           r.shapes[i].k, r.shapes[i].direct ? "direct" : "tiled",
           r.shapes[i].kept ? "as the baseline" : "changed", r.shapes[i].gflops_before,
           r.shapes[i].gflops_after, r.shapes[i].gflops_after / r.shapes[i].gflops_before);
  printf("\n%u candidates tried (%u rejected) in %.0f s; ", r.tried, r.rejected, r.seconds);
  if (r.stored)
    printf("stored in %s\n", r.path);
  else
    printf("nothing faster than the baseline: kept %s, nothing stored%s%s\n", baseline,
           r.removed_previous ? "; removed the result stored before, " : "",
           r.removed_previous ? r.path : "");
  lamp_cli_context_release(ctx);
  return 0;
}
