/* lamp command-line tool: the user's jobs, one subcommand each. Only this file exits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lamp/lamp.h"
#include "tune.h"

#include "context.h"
#include "bench.h"
#include "generate.h"
#include "plan.h"
#include "help.h"
#include "train.h"

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: lamp <command> [options]\n"
          "       lamp <command> --help    the command's own options\n"
          "       lamp --version | --help\n"
          "\n"
          "commands:\n"
          "  devices          list every OpenCL device and the one lamp selects\n"
          "  train            tune a soft prompt on a task (lamp train --help)\n"
          "  eval             evaluate a checkpoint, or the model with no prompt (--help)\n"
          "  predict          classify texts with a checkpoint (--help)\n"
          "  generate         continue a text with the model, token by token (--help)\n"
          "  plan             the memory a model and a batch shape take on the device (--help)\n"
          "  smoke            run a small end-to-end job on the selected device and check it\n"
          "  tune [--budget N] [--shape MxNxK]... [--in-process]\n"
          "                   tune CLBlast's GEMM kernels for the selected device and store the\n"
          "                   result; every later run on this device uses it\n"
          "  bench [--quick] [--skip PARTS] ...\n"
          "                   run the benchmark suite: GEMM tuned and untuned against a CPU BLAS,\n"
          "                   SVD, prompt kernels, the training step, PyTorch (bench --help)\n"
          "  version          print the library version (also lamp --version, -V)\n"
          "  help [COMMAND]   this list, or the command's usage\n"
          "\n"
          "environment:\n"
          "  LAMP_DEVICE      device: \"P:D\" indices or part of a platform or device name\n"
          "  LAMP_CACHE_DIR   program binary cache folder (default $XDG_CACHE_HOME/lamp)\n"
          "  LAMP_CACHE=0     do not use the program binary cache\n"
          "  LAMP_PROFILE=1   time every kernel and GEMM, print a table at exit\n"
          "  LAMP_TUNING=0    ignore stored GEMM tuning results\n"
          "  LAMP_KERNEL_DIR  read kernel sources from this folder instead of the library\n");
}

/* For the commands that take no options: --help prints `text`, anything else is refused.
 * Returns the exit status when that ends the command (0 after the help, 2 for an option), else
 * -1: run it. */
static int no_options(const char *name, const char *text, int argc, char **argv) {
  if (lamp_cli_wants_help(argc, argv)) {
    fputs(text, stdout);
    return 0;
  }
  if (argc > 0) {
    fprintf(stderr, "lamp %s: unknown option '%s'\n%s", name, argv[0], text);
    return 2;
  }
  return -1;
}

static int cmd_devices(int argc, char **argv) {
  int rc = no_options("devices",
                      "usage: lamp devices\n"
                      "\n"
                      "Lists every OpenCL platform and device with its properties, and marks the\n"
                      "one lamp selects: $LAMP_DEVICE (\"P:D\" or part of a name), else the first\n"
                      "GPU, else accelerator, else CPU. Exits 1 when there is no device or\n"
                      "$LAMP_DEVICE matches none.\n",
                      argc, argv);
  if (rc >= 0) return rc;
  size_t count = 0;
  lamp_status st = lamp_device_list(NULL, 0, &count);
  if (st != LAMP_OK) {
    fprintf(stderr, "lamp: no OpenCL device found (%s); install an ICD such as "
            "pocl-opencl-icd\n", lamp_status_name(st));
    return 1;
  }
  lamp_device_info *infos = calloc(count, sizeof(*infos));
  if (!infos) return 1;
  size_t n = count;
  st = lamp_device_list(infos, count, &n);
  if (n < count) count = n;
  size_t selected = 0;
  char msg[2048];
  lamp_status sel = st == LAMP_OK ? lamp_device_select(infos, count, NULL, &selected, msg,
                                                       sizeof(msg))
                                  : st;
  for (size_t i = 0; i < count && st == LAMP_OK; i++) {
    const lamp_device_info *d = &infos[i];
    printf("[%u:%u]%s %s\n", d->platform_index, d->device_index,
           (sel == LAMP_OK && i == selected) ? " (selected)" : "", d->name);
    printf("  platform          %s\n", d->platform_name);
    printf("  vendor            %s\n", d->vendor);
    printf("  type              %s\n", lamp_device_type_name(d->type));
    printf("  driver version    %s\n", d->driver_version);
    printf("  device version    %s\n", d->device_version);
    printf("  OpenCL C version  %s\n", d->opencl_c_version);
    printf("  compute units     %u\n", d->compute_units);
    printf("  clock             %u MHz\n", d->clock_mhz);
    printf("  global memory     %.2f GiB (largest allocation %.2f GiB)\n",
           (double)d->global_mem_bytes / 1073741824.0, (double)d->max_alloc_bytes / 1073741824.0);
    printf("  local memory      %llu KiB\n", (unsigned long long)(d->local_mem_bytes / 1024));
    printf("  max work-group    %zu\n", d->max_work_group_size);
    printf("  fp16              %s\n", d->has_fp16 ? "yes" : "no");
    printf("  fp64              %s\n", d->has_fp64 ? "yes" : "no");
    printf("  kernel profile    %s (automatic; LAMP_KERNEL_PROFILE=cpu|gpu overrides)\n",
           lamp_kernel_profile_name(lamp_kernel_profile_auto(d)));
  }
  free(infos);
  if (sel != LAMP_OK) {
    fprintf(stderr, "lamp: LAMP_DEVICE: %s\n", msg);
    return 1;
  }
  return st == LAMP_OK ? 0 : 1;
}

/* C = A B for a model-sized product, checked against a plain C product in double. */
static int cmd_smoke(int argc, char **argv) {
  int usage_rc = no_options("smoke",
                            "usage: lamp smoke\n"
                            "\n"
                            "Creates a context on the selected device ($LAMP_DEVICE), runs a\n"
                            "128 x 576 x 576 GEMM and checks it against a double-precision host\n"
                            "product; prints the times and the program cache's use, and exits 1\n"
                            "when the result is off.\n",
                            argc, argv);
  if (usage_rc >= 0) return usage_rc;
  enum { M = 128, K = 576, N = 576 };
  char err[4096];
  double t0 = now_seconds();
  lamp_context *ctx = NULL;
  lamp_status st = lamp_context_create(NULL, &ctx, err, sizeof(err));
  if (st != LAMP_OK) {
    fprintf(stderr, "lamp: cannot create a context: %s: %s\n", lamp_status_name(st), err);
    return 1;
  }
  double t_ctx = now_seconds();
  const lamp_device_info *dev = lamp_context_device(ctx);
  printf("device   [%u:%u] %s (%s, %s)\n", dev->platform_index, dev->device_index, dev->name,
         dev->platform_name, lamp_device_type_name(dev->type));

  float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
  float *c = malloc(sizeof(float) * M * N);
  lamp_tensor ta = {0}, tb = {0}, tc = {0};
  int rc = 1;
  if (!a || !b || !c) goto done;
  unsigned s = 12345;
  for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;
  for (size_t i = 0; i < (size_t)K * N; i++) b[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f - 0.5f;

  size_t sa[2] = {K, M}, sb[2] = {N, K}, sc[2] = {N, M};
  if ((st = lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, sa, &ta)) != LAMP_OK ||
      (st = lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, sb, &tb)) != LAMP_OK ||
      (st = lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, sc, &tc)) != LAMP_OK ||
      (st = lamp_tensor_upload(ctx, &ta, a, sizeof(float) * M * K)) != LAMP_OK ||
      (st = lamp_tensor_upload(ctx, &tb, b, sizeof(float) * K * N)) != LAMP_OK ||
      (st = lamp_tensor_fill(ctx, &tc, 1.0f)) != LAMP_OK)
    goto fail;
  lamp_context_stats stats;
  lamp_context_get_stats(ctx, &stats);
  double t1 = now_seconds();
  if ((st = lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, &ta, &tb, 0.5f, &tc)) != LAMP_OK ||
      (st = lamp_context_finish(ctx)) != LAMP_OK)
    goto fail;
  double t2 = now_seconds();
  if ((st = lamp_tensor_download(ctx, &tc, c, sizeof(float) * M * N)) != LAMP_OK) goto fail;

  double max_err = 0;
  for (size_t i = 0; i < M; i++)
    for (size_t j = 0; j < N; j++) {
      double ref = 0.5;
      for (size_t k = 0; k < K; k++) ref += (double)a[i * K + k] * b[k * N + j];
      double e = fabs(ref - c[i * N + j]) / (1.0 + fabs(ref));
      if (e > max_err) max_err = e;
    }
  printf("context  %.3f s (program cache: %s)\n", t_ctx - t0,
         lamp_context_cache_dir(ctx)[0] ? lamp_context_cache_dir(ctx) : "off");
  printf("programs built %llu, loaded from cache %llu, %.3f s\n",
         (unsigned long long)stats.programs_built, (unsigned long long)stats.cache_hits,
         stats.build_seconds);
  static const char *const tuning[] = {"CLBlast's defaults", "stored by lamp tune",
                                      "lamp's built-in result for this kind of device"};
  printf("gemm     %dx%dx%d in %.3f s (first call includes CLBlast's kernel compile), "
         "parameters: %s\n",
         M, N, K, t2 - t1, tuning[stats.tuning_applied % 3]);
  printf("check    max relative error %.2e against a double-precision host product\n", max_err);
  rc = max_err < 1e-4 ? 0 : 1;
  printf("smoke    %s\n", rc == 0 ? "ok" : "FAILED");
  goto done;
fail:
  fprintf(stderr, "lamp: smoke failed: %s: %s\n", lamp_status_name(st), lamp_context_error(ctx));
done:
  lamp_tensor_release(&ta);
  lamp_tensor_release(&tb);
  lamp_tensor_release(&tc);
  free(a);
  free(b);
  free(c);
  lamp_cli_context_release(ctx);
  return rc;
}

static int cmd_version(int argc, char **argv) {
  int rc = no_options("version", "usage: lamp version (or lamp --version, lamp -V)\n", argc, argv);
  if (rc >= 0) return rc;
  printf("lamp %s\n", lamp_version_string());
  return 0;
}

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv); /* the arguments after the command's name */
} command;

static const command commands[] = {
    {"devices", cmd_devices},       {"smoke", cmd_smoke},
    {"tune", lamp_cli_tune},        {"tune-eval", lamp_cli_tune_eval},
    {"train", lamp_cli_train},      {"eval", lamp_cli_eval},
    {"predict", lamp_cli_predict},  {"generate", lamp_cli_generate},
    {"bench", lamp_cli_bench},      {"version", cmd_version},
    {"plan", lamp_cli_plan},
};

static const command *find_command(const char *name) {
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    if (!strcmp(commands[i].name, name)) return &commands[i];
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *name = argv[1];
  if (!strcmp(name, "--version") || !strcmp(name, "-V")) return cmd_version(0, NULL);
  if (!strcmp(name, "--help") || !strcmp(name, "-h") || (!strcmp(name, "help") && argc == 2)) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(name, "help")) {
    /* lamp help COMMAND: the command's own --help */
    const command *c = find_command(argv[2]);
    char help[] = "--help", *args[] = {help, NULL};
    if (c) return c->run(1, args);
    name = argv[2];
  } else {
    const command *c = find_command(name);
    if (c) return c->run(argc - 2, argv + 2);
  }
  fprintf(stderr, "lamp: unknown command '%s'\n", name);
  usage(stderr);
  return 2;
}
