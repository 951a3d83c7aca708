/* lamp plan: what a model and one workspace would take on the selected device, from the file's
 * tensor table alone (lamp_model_plan_gguf, lamp_model_plan_safetensors). */
#include "plan.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "help.h"
#include "context.h"

#define PLAN_DEFAULT_MODEL "models/SmolLM2-135M-Instruct.Q4_1.gguf"

static double plan_mib(uint64_t bytes) { return (double)bytes / 1048576.0; }

void plan_table(FILE *out, const lamp_model_plan p[2][2], const uint64_t prompt[2][2]) {
  fprintf(out, "%-30s %10s %12s %10s %14s\n", "MiB", "f32", "f32+recomp", "stored",
          "stored+recomp");
  const char *labels[] = {"weights (with scratch)", "  of which the f32 scratch",
                          "workspace (inputs, logits)", "activations for the backward",
                          "prompt and optimiser", "total", "largest buffer"};
  for (size_t row = 0; row < 7; row++) {
    fprintf(out, "%-30s", labels[row]);
    for (int w = 0; w < 2; w++)
      for (int r = 0; r < 2; r++) {
        const lamp_model_plan *q = &p[w][r];
        uint64_t v[7] = {q->weights_total, q->scratch, q->workspace, q->activations,
                         prompt[w][r], q->total + prompt[w][r], q->largest_buffer};
        fprintf(out, " %*.1f", w ? (r ? 14 : 10) : (r ? 12 : 10), plan_mib(v[row]));
      }
    fputc('\n', out);
  }
  fprintf(out, "device: %.1f MiB of global memory, buffers up to %.1f MiB\n",
          plan_mib(p[0][0].device_global), plan_mib(p[0][0].device_max_alloc));
  const char *names[2][2] = {{"f32", "f32 --recompute"}, {"stored", "stored --recompute"}};
  fprintf(out, "fits:");
  for (int w = 0; w < 2; w++)
    for (int r = 0; r < 2; r++) {
      const lamp_model_plan *q = &p[w][r];
      int fits = (!q->device_global || q->total + prompt[w][r] <= q->device_global) &&
                 (!q->device_max_alloc || q->largest_buffer <= q->device_max_alloc);
      fprintf(out, "%s %s %s", w || r ? "," : "", names[w][r], fits ? "yes" : "no");
    }
  fputc('\n', out);
}

static void plan_usage(FILE *out) {
  fprintf(out,
          "usage: lamp plan [options]\n"
          "\n"
          "Prints what the model's weights (f32 or as the file stores them) and one workspace\n"
          "take on the selected device, with and without recomputation, from the file's tensor\n"
          "table: nothing is loaded. `lamp train --dry-run` prints the same for a training run.\n"
          "\n"
          "options:\n"
          "  --model FILE|DIR   GGUF file or Hugging Face folder [" PLAN_DEFAULT_MODEL "]\n"
          "  --batch B          sequences per batch [8]\n"
          "  --tokens T         tokens per sequence [256]\n"
          "  --prompt P         prompt rows prepended (after pooling) [50]\n"
          "  --outputs M        scored positions per batch [the batch]\n"
          "  --labels K         verbaliser label words [2]\n");
}

static int plan_size(const char *flag, const char *v, size_t *out) {
  char *end = NULL;
  long n = v ? strtol(v, &end, 10) : -1;
  if (!v || !*v || *end || n < 0 || n > 1 << 20) {
    fprintf(stderr, "lamp plan: %s needs a count from 0 to 1048576\n", flag);
    return 2;
  }
  *out = (size_t)n;
  return 0;
}

int lamp_cli_plan(int argc, char **argv) {
  if (lamp_cli_wants_help(argc, argv)) {
    plan_usage(stdout);
    return 0;
  }
  const char *model = PLAN_DEFAULT_MODEL;
  lamp_model_shape shape = {8, 256, 50, 0, 2, 0};
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    size_t *target = !strcmp(a, "--batch")     ? &shape.batch
                     : !strcmp(a, "--tokens")  ? &shape.tokens
                     : !strcmp(a, "--prompt")  ? &shape.prompt
                     : !strcmp(a, "--outputs") ? &shape.outputs
                     : !strcmp(a, "--labels")  ? &shape.labels
                                               : NULL;
    if (target) {
      if (plan_size(a, v, target)) return 2;
      i++;
    } else if (!strcmp(a, "--model") && v) {
      model = v;
      i++;
    } else {
      fprintf(stderr, "lamp plan: unknown option %s (lamp plan --help)\n", a);
      return 2;
    }
  }
  if (!shape.outputs) shape.outputs = shape.batch;
  char err[1024];
  lamp_context_options copt;
  lamp_context_options_init(&copt);
  lamp_context *ctx = NULL;
  lamp_status st = lamp_context_create(&copt, &ctx, err, sizeof(err));
  if (st != LAMP_OK) {
    fprintf(stderr, "lamp plan: cannot create a context: %s: %s\n", lamp_status_name(st), err);
    return 1;
  }
  struct stat sb;
  int folder = stat(model, &sb) == 0 && S_ISDIR(sb.st_mode);
  lamp_gguf *g = NULL;
  if (!folder) st = lamp_gguf_open(ctx, model, &g);
  lamp_model_plan p[2][2];
  const uint64_t none[2][2] = {{0, 0}, {0, 0}};
  for (int w = 0; w < 2 && st == LAMP_OK; w++)
    for (int r = 0; r < 2 && st == LAMP_OK; r++) {
      lamp_model_shape s = shape;
      s.recompute = r;
      lamp_model_weights mode = w ? LAMP_MODEL_WEIGHTS_STORED : LAMP_MODEL_WEIGHTS_F32;
      st = folder ? lamp_model_plan_safetensors(ctx, model, &s, mode, &p[w][r])
                  : lamp_model_plan_gguf(ctx, g, &s, mode, &p[w][r]);
    }
  int rc = 0;
  if (st != LAMP_OK) {
    fprintf(stderr, "lamp plan: %s\n", lamp_context_error(ctx));
    rc = 1;
  } else {
    printf("memory plan: %s, %zu x %zu tokens (+ %zu prompt rows), %zu outputs, %zu labels; "
           "device %s\n", model, shape.batch, shape.tokens, shape.prompt, shape.outputs,
           shape.labels, lamp_context_device(ctx)->name);
    plan_table(stdout, p, none);
  }
  lamp_gguf_release(g);
  lamp_cli_context_release(ctx);
  return rc;
}
