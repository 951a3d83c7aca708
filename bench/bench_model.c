/* Frozen-model throughput: forward, and forward plus backward to the prompt, on batches of
 * B sequences of T tokens with P prompt rows prepended, for the tiny test model that the tests
 * share (tests/data/tiny.gguf) and (with --model) a GGUF model such as SmolLM2-135M-Instruct.
 * Reports tokens/s (B T input tokens per pass), the share of device time in GEMM from the
 * profiler, device memory, and how long the host spends enqueueing a pass against the pass's
 * wall time (no blocking call inside). With --decode N, also generation through the key/value
 * cache (lamp/cache.h) with the weights in f32 and as stored: N single-token steps after an
 * 8-token prefill, each downloading its logits as a sampler would; tokens/s over the steps.
 * Usage: bench_model [--model FILE.gguf] [--shapes BxT,...] [--prompt P] [--reps N]
 *                    [--recompute] [--skip-tiny] [--decode N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "lamp/cache.h"
#include "lamp/model.h"

typedef struct shape {
  size_t batch, tokens;
} shape;

static int check(lamp_context *ctx, lamp_status st, const char *what) {
  if (st == LAMP_OK) return 0;
  fprintf(stderr, "bench_model: %s: %s: %s\n", what, lamp_status_name(st), lamp_context_error(ctx));
  return 1;
}

/* One shape: returns nonzero on failure. */
static int run_shape(lamp_context *ctx, lamp_model *model, const char *label, shape sh,
                     size_t prompt, int recompute, int reps) {
  lamp_model_config cfg;
  lamp_model_get_config(model, &cfg);
  lamp_model_shape s = {sh.batch, sh.tokens, prompt, sh.batch, 2, recompute};
  lamp_model_workspace *ws = NULL;
  if (check(ctx, lamp_model_workspace_create(model, &s, &ws), "workspace")) return 1;
  size_t n = sh.batch * sh.tokens;
  int32_t *ids = malloc(n * sizeof(int32_t)), targets[256], labels[2] = {3, 7};
  size_t *lengths = malloc(sh.batch * sizeof(size_t)), seq[256], pos[256];
  uint64_t seed = 42;
  for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(bench_lcg(&seed) % cfg.n_vocab);
  for (size_t b = 0; b < sh.batch && b < 256; b++) {
    lengths[b] = sh.tokens;
    seq[b] = b;
    pos[b] = sh.tokens - 1;
    targets[b] = (int32_t)(b % 2);
  }
  int rc = check(ctx, lamp_model_set_tokens(ws, sh.batch, sh.tokens, ids, lengths), "tokens") ||
           check(ctx, lamp_model_set_outputs(ws, sh.batch, seq, pos, targets), "outputs") ||
           check(ctx, lamp_model_set_labels(ws, 2, labels), "labels");
  lamp_tensor pt;
  if (!rc && prompt) {
    rc = check(ctx, lamp_model_prompt(ws, &pt), "prompt") ||
         check(ctx, lamp_tensor_fill(ctx, &pt, 0.01f), "prompt fill");
  }
  /* warm-up: builds every kernel and CLBlast's GEMM kernels */
  if (!rc) rc = check(ctx, lamp_model_forward(ws, LAMP_MODEL_HEAD_LABELS), "forward") ||
                (prompt && check(ctx, lamp_model_backward(ws), "backward")) ||
                check(ctx, lamp_context_finish(ctx), "finish");
  double fwd = 0, both = 0, enqueue = 0;
  for (int r = 0; r < reps && !rc; r++) {
    double t0 = bench_now();
    rc = check(ctx, lamp_model_forward(ws, LAMP_MODEL_HEAD_LABELS), "forward") ||
         check(ctx, lamp_context_finish(ctx), "finish");
    double t1 = bench_now();
    if (!rc && prompt) rc = check(ctx, lamp_model_forward(ws, LAMP_MODEL_HEAD_LABELS), "forward") ||
                            check(ctx, lamp_model_backward(ws), "backward");
    double t2 = bench_now();
    if (!rc) rc = check(ctx, lamp_context_finish(ctx), "finish");
    double t3 = bench_now();
    fwd += t1 - t0;
    both += t3 - t1;
    enqueue += t2 - t1;
  }
  if (!rc) {
    lamp_profile_entry e[64];
    size_t count = 0;
    double gemm = 0, total = 0;
    if (lamp_profile_enabled(ctx)) {
      rc = check(ctx, lamp_profile_read(ctx, e, 64, &count), "profile");
      for (size_t i = 0; i < count && i < 64; i++) {
        total += e[i].total_ms;
        if (!strncmp(e[i].name, "sgemm", 5)) gemm += e[i].total_ms;
      }
    }
    double tok = (double)n;
    printf("| %s | %zu x %zu | %zu | %.1f | %s%.1f | %.2f | %.1f%% | %.1f |\n", label, sh.batch,
           sh.tokens, prompt, tok * reps / fwd, prompt ? "" : "n/a ",
           prompt ? tok * reps / both : 0.0, prompt ? enqueue / both : 0.0,
           total > 0 ? 100.0 * gemm / total : 0.0,
           (double)(lamp_model_weight_bytes(model) + lamp_model_workspace_bytes(ws)) / 1048576.0);
    fflush(stdout);
    if (getenv("LAMP_BENCH_PROFILE")) lamp_profile_print(ctx, stdout);
    lamp_profile_reset(ctx);
  }
  free(ids);
  free(lengths);
  lamp_model_workspace_release(ws);
  return rc;
}

/* Generation steps through the cache with the weights in `mode`: returns nonzero on failure. */
static int run_decode(lamp_context *ctx, const char *path, const char *label,
                      lamp_model_weights mode, int steps) {
  lamp_gguf *g = NULL;
  lamp_model *model = NULL;
  lamp_model_options o = {mode, NULL};
  if (check(ctx, lamp_gguf_open(ctx, path, &g), path)) return 1;
  int rc = check(ctx, lamp_model_create_gguf_with(ctx, g, &o, &model), path);
  lamp_gguf_release(g);
  if (rc) return 1;
  lamp_model_config cfg;
  lamp_model_get_config(model, &cfg);
  lamp_model_cache *cache = NULL;
  float *host = malloc(cfg.n_vocab * sizeof(float));
  rc = !host || check(ctx, lamp_model_cache_create(model, (size_t)steps + 16, &cache), "cache");
  uint64_t seed = 7;
  int32_t ids[8];
  for (size_t i = 0; i < 8; i++) ids[i] = (int32_t)(bench_lcg(&seed) % cfg.n_vocab);
  lamp_tensor logits;
  /* warm-up: the prefill and one step build every kernel */
  if (!rc) rc = check(ctx, lamp_model_cache_append(cache, NULL, ids, 8, &logits), "prefill") ||
                check(ctx, lamp_model_cache_append(cache, NULL, ids, 1, &logits), "step") ||
                check(ctx, lamp_tensor_download(ctx, &logits, host, cfg.n_vocab * 4), "logits");
  double t0 = bench_now();
  for (int i = 0; i < steps && !rc; i++) {
    int32_t id = (int32_t)(bench_lcg(&seed) % cfg.n_vocab);
    rc = check(ctx, lamp_model_cache_append(cache, NULL, &id, 1, &logits), "step") ||
         check(ctx, lamp_tensor_download(ctx, &logits, host, cfg.n_vocab * 4), "logits");
  }
  double t = bench_now() - t0;
  if (!rc)
    printf("| %s | %s | %d | %.1f | %.1f |\n", label, lamp_model_weights_name(mode), steps,
           steps / t, (double)lamp_model_weight_bytes(model) / 1048576.0);
  fflush(stdout);
  lamp_profile_reset(ctx);
  free(host);
  lamp_model_cache_release(cache);
  lamp_model_release(model);
  return rc;
}

static int parse_shapes(const char *s, shape *out, size_t cap, size_t *count) {
  *count = 0;
  while (*s && *count < cap) {
    char *end;
    out[*count].batch = strtoul(s, &end, 10);
    if (*end != 'x') return 1;
    out[*count].tokens = strtoul(end + 1, &end, 10);
    if (!out[*count].batch || !out[*count].tokens || out[*count].batch > 256) return 1;
    (*count)++;
    if (*end == ',') end++;
    else if (*end) return 1;
    s = end;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *model_path = NULL;
  shape shapes[8] = {{8, 64}, {8, 256}};
  size_t n_shapes = 2, prompt = 50;
  int reps = 2, recompute = 0, skip_tiny = 0, decode = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--model") && i + 1 < argc) model_path = argv[++i];
    else if (!strcmp(argv[i], "--shapes") && i + 1 < argc) {
      if (parse_shapes(argv[++i], shapes, 8, &n_shapes)) {
        fprintf(stderr, "bench_model: --shapes wants BxT[,BxT...], e.g. 8x64,8x256\n");
        return 2;
      }
    } else if (!strcmp(argv[i], "--prompt") && i + 1 < argc) prompt = strtoul(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--recompute")) recompute = 1;
    else if (!strcmp(argv[i], "--skip-tiny")) skip_tiny = 1;
    else if (!strcmp(argv[i], "--decode") && i + 1 < argc) decode = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--model FILE.gguf] [--shapes BxT,...] [--prompt P] [--reps N] "
              "[--recompute] [--skip-tiny] [--decode N]\n", argv[0]);
      return 2;
    }
  }
  if (reps < 1) reps = 1;
  lamp_context_options opt;
  lamp_context_options_init(&opt);
  opt.profile = 1;
  char err[1024];
  lamp_context *ctx = NULL;
  lamp_status st = lamp_context_create(&opt, &ctx, err, sizeof(err));
  if (st != LAMP_OK) {
    fprintf(stderr, "bench_model: %s: %s\n", lamp_status_name(st), err);
    return 1;
  }
  const lamp_device_info *dev = lamp_context_device(ctx);
  printf("device: %s (%s, %s); prompt rows %zu; recompute %s; %d timed passes\n\n", dev->name,
         dev->platform_name, dev->driver_version, prompt, recompute ? "on" : "off", reps);
  printf("| model | B x T | P | forward tok/s | fwd+bwd tok/s | enqueue/wall | GEMM share | "
         "device MiB |\n|---|---|---|---|---|---|---|---|\n");
  int rc = 0;
  const char *paths[2] = {skip_tiny ? NULL : bench_tiny_model_path(), model_path};
  for (size_t m = 0; m < 2 && !rc; m++) {
    if (!paths[m]) continue;
    lamp_gguf *g = NULL;
    lamp_model *model = NULL;
    st = lamp_gguf_open(ctx, paths[m], &g);
    if (st != LAMP_OK) {
      fprintf(stderr, "bench_model: %s\n", lamp_context_error(ctx)); /* names the file */
      rc = 1;
    } else {
      rc = check(ctx, lamp_model_create_gguf(ctx, g, &model), paths[m]);
      lamp_gguf_release(g);
    }
    const char *base = strrchr(paths[m], '/');
    for (size_t i = 0; i < n_shapes && !rc; i++)
      rc = run_shape(ctx, model, base ? base + 1 : paths[m], shapes[i], prompt, recompute, reps);
    lamp_model_release(model);
  }
  if (decode > 0 && !rc) {
    printf("\n| model | weights | steps | decode tok/s | weights MiB |\n|---|---|---|---|---|\n");
    for (size_t m = 0; m < 2 && !rc; m++) {
      if (!paths[m]) continue;
      const char *base = strrchr(paths[m], '/');
      for (int w = 0; w < 2 && !rc; w++)
        rc = run_decode(ctx, paths[m], base ? base + 1 : paths[m],
                        w ? LAMP_MODEL_WEIGHTS_STORED : LAMP_MODEL_WEIGHTS_F32, decode);
    }
  }
  lamp_context_release(ctx);
  return rc;
}
