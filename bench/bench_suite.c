/* The benchmark suite: one process, one run, everything that decides lamp's speed on the
 * selected device, written as JSON and as a Markdown table naming the device.
 *
 *  1. GEMM on the products of a SmolLM2-135M training step: lamp/CLBlast with CLBlast's own
 *     parameters (the context is created with tuning off, and this comes first because CLBlast's
 *     parameter overrides are process-wide), then with the stored `lamp tune` result applied
 *     (lamp_tune_apply), against OpenBLAS cblas_sgemm on the host.
 *  2. Randomized SVD (rank 64, default options) against LAPACK sgesdd (bench_svd_lib.c).
 *  3. The pooled compressed outer product and its gradient, fused against the two unfused
 *     forms (bench_prompt_lib.c).
 *  4. The library's training step (lamp_trainer_step) for LAMP, PT and DPT (bench_train_lib.c):
 *     time, tokens/s, lamp's device memory, and the fraction of the best GEMM GFLOP/s of part 1
 *     that the step reaches.
 *  5. The same step in PyTorch on the CPU (peer_pytorch.py): read from --peer-json, or run
 *     when python3 can import torch; reported as PyTorch time / lamp time.
 * Everything after part 1 runs with the tuned parameters when a stored result exists.
 *
 * --quick (CI): two GEMM shapes, the 100 x 576 SVD, one prompt configuration, and the training
 * step on the tiny test model tests/data/tiny.gguf (unless --model is given), without the peer
 * there unless --peer-json is given.
 *
 * Usage: bench_suite [--quick] [--json FILE] [--md FILE] [--model FILE.gguf] [--train BxT]
 *                    [--prompt P] [--steps N] [--peer-json FILE] [--no-peer]
 *                    [--skip gemm,svd,prompt,train,peer] */
#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"

enum { SEC_GEMM = 1, SEC_SVD = 2, SEC_PROMPT = 4, SEC_TRAIN = 8, SEC_PEER = 16 };

typedef struct suite_options {
  int quick, no_peer, steps;
  unsigned skip;
  size_t batch, tokens, prompt;
  const char *json_path, *md_path, *model_path, *peer_json;
} suite_options;

#define SUITE_MAX_GEMM 12
#define SUITE_MAX_SVD 3
#define SUITE_MAX_PROMPT 3

typedef struct suite_gemm {
  bench_gemm_shape s;
  double blas, untuned, tuned;        /* GFLOP/s; tuned NAN when not measured */
  double untuned_diff, tuned_diff;    /* relative to OpenBLAS */
} suite_gemm;

typedef struct suite_svd {
  int m, n;
  double lapack_s, lamp_s, lapack_err, lamp_err16, lamp_err64;
  bench_svd_shares sh;
} suite_svd;

typedef struct suite_peer {
  int have;
  char note[512];     /* why there is no figure, or where it came from */
  char torch[64];     /* version */
  int threads;
  double step_seconds[3]; /* per lamp_prompt_method; NAN when absent */
  double loss_first[3];
} suite_peer;

typedef struct suite {
  suite_options o;
  lamp_context *ctx;
  FILE *md;
  double load_start[3], load_end[3];
  int tuning_applied;
  char tuning_note[1200];
  suite_gemm gemm[SUITE_MAX_GEMM];
  size_t n_gemm;
  double gemm_peak; /* best lamp GFLOP/s measured, in force for the rest of the run */
  suite_svd svd[SUITE_MAX_SVD];
  size_t n_svd;
  bench_prompt_result prompt[SUITE_MAX_PROMPT];
  size_t n_prompt;
  char model_path[1024];
  char model_name[256];
  int tiny;              /* the training step runs on the tiny test model */
  lamp_model_config model_cfg;
  bench_train_config train_cfg;
  bench_train_result train[3];
  size_t n_train;
  suite_peer peer;
} suite;

static const lamp_prompt_method suite_methods[3] = {LAMP_PROMPT_LAMP, LAMP_PROMPT_PT,
                                                    LAMP_PROMPT_DPT};

/* Markdown goes to stdout and to the .md file. */
static void md(suite *S, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  vprintf(fmt, ap);
  if (S->md) vfprintf(S->md, fmt, ap2);
  va_end(ap2);
  va_end(ap);
  fflush(stdout);
}

static void read_load(double *l) {
  l[0] = l[1] = l[2] = NAN;
  FILE *f = fopen("/proc/loadavg", "r");
  if (!f) return;
  if (fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3) l[0] = l[1] = l[2] = NAN;
  fclose(f);
}

static int parse_size(const char *s, size_t *v) {
  char *end = NULL;
  unsigned long long x = strtoull(s, &end, 10);
  if (!end || *end || end == s || x == 0 || x > 1000000) return 0;
  *v = (size_t)x;
  return 1;
}

static int parse_skip(const char *s, unsigned *skip) {
  static const char *names[] = {"gemm", "svd", "prompt", "train", "peer"};
  char buf[128];
  snprintf(buf, sizeof(buf), "%s", s);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    int found = 0;
    for (unsigned i = 0; i < 5; i++)
      if (!strcmp(tok, names[i])) {
        *skip |= 1u << i;
        found = 1;
      }
    if (!found) return 0;
  }
  return 1;
}

static const char suite_usage[] =
    "usage: bench_suite [--quick] [--json FILE] [--md FILE] [--model FILE.gguf] [--train BxT]\n"
    "                   [--prompt P] [--steps N] [--peer-json FILE] [--no-peer]\n"
    "                   [--skip gemm,svd,prompt,train,peer]\n"
    "\n"
    "  --quick            the CI smoke run: two GEMM shapes, one SVD, one prompt configuration,\n"
    "                     the training step on the tiny test model tests/data/tiny.gguf\n"
    "                     (unless --model), no PyTorch peer there (unless --peer-json)\n"
    "  --json, --md FILE  where the results go (default bench_suite.json, bench_suite.md)\n"
    "  --model FILE.gguf  the training step's model (default\n"
    "                     models/SmolLM2-135M-Instruct.Q4_1.gguf)\n"
    "  --train BxT        the training step's batch and tokens (default 8x128)\n"
    "  --prompt P         prompt tokens (default 100)\n"
    "  --steps N          timed steps per method (default 3, 2 with --quick)\n"
    "  --peer-json FILE   read the PyTorch peer's results instead of running peer_pytorch.py\n"
    "  --no-peer          no PyTorch peer\n"
    "  --skip PARTS       leave out parts of the suite\n"
    "\n"
    "The device is chosen as for every lamp program ($LAMP_DEVICE); see bench/README.md.\n";

static int parse_args(int argc, char **argv, suite_options *o) {
  memset(o, 0, sizeof(*o));
  o->json_path = "bench_suite.json";
  o->md_path = "bench_suite.md";
  o->batch = 8;
  o->tokens = 128;
  o->prompt = 100;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--quick")) o->quick = 1;
    else if (!strcmp(a, "--no-peer")) o->no_peer = 1;
    else if (!strcmp(a, "--json") && v) o->json_path = argv[++i];
    else if (!strcmp(a, "--md") && v) o->md_path = argv[++i];
    else if (!strcmp(a, "--model") && v) o->model_path = argv[++i];
    else if (!strcmp(a, "--peer-json") && v) o->peer_json = argv[++i];
    else if (!strcmp(a, "--steps") && v) {
      size_t n;
      if (!parse_size(argv[++i], &n) || n > BENCH_TRAIN_MAX_STEPS) {
        fprintf(stderr, "bench_suite: --steps takes 1..%d\n", BENCH_TRAIN_MAX_STEPS);
        return 0;
      }
      o->steps = (int)n;
    } else if (!strcmp(a, "--prompt") && v) {
      if (!parse_size(argv[++i], &o->prompt)) {
        fprintf(stderr, "bench_suite: --prompt takes a positive number of prompt tokens\n");
        return 0;
      }
    } else if (!strcmp(a, "--train") && v) {
      char b[32] = {0}, t[32] = {0}, tail;
      if (sscanf(argv[++i], "%31[0-9]x%31[0-9]%c", b, t, &tail) != 2 ||
          !parse_size(b, &o->batch) || !parse_size(t, &o->tokens) || o->batch > 256) {
        fprintf(stderr, "bench_suite: --train takes BxT, e.g. 8x128 (B at most 256)\n");
        return 0;
      }
    } else if (!strcmp(a, "--skip") && v) {
      if (!parse_skip(argv[++i], &o->skip)) {
        fprintf(stderr, "bench_suite: --skip takes a list of gemm,svd,prompt,train,peer\n");
        return 0;
      }
    } else {
      return 0;
    }
  }
  if (!o->steps) o->steps = o->quick ? 2 : 3;
  return 1;
}

/* ---- 1. GEMM ------------------------------------------------------------------------------- */

static double measure_gemm(suite *S, const bench_gemm_shape *s, double *diff, double *blas) {
  bench_gemm_case g;
  bench_gemm_case_init(&g, S->ctx, s);
  int reps = bench_gemm_reps(s, S->o.quick);
  double t = bench_gemm_time_lamp(&g, reps, diff);
  if (blas) *blas = bench_gemm_flop(s) / bench_gemm_time_blas(&g, reps) * 1e-9;
  bench_gemm_case_release(&g);
  return bench_gemm_flop(s) / t * 1e-9;
}

static void section_gemm(suite *S) {
  bench_gemm_shape model[8];
  /* the step's rows: P' + B T with LAMP's pooled prompt (P' = ceil(P / 2)), computed once */
  size_t rows = S->o.quick ? 128 : (S->o.prompt + 1) / 2 + S->o.batch * S->o.tokens;
  size_t n_model = bench_gemm_model_shapes(rows, model, 8);
  if (S->o.quick) {
    S->gemm[S->n_gemm++].s = model[0]; /* one forward (x W^T) and one backward (dY W) */
    S->gemm[S->n_gemm++].s = model[4];
  } else {
    for (size_t i = 0; i < n_model; i++) S->gemm[S->n_gemm++].s = model[i];
    S->gemm[S->n_gemm++].s = bench_gemm_square_shapes[bench_gemm_square_count - 1];
  }
  for (size_t i = 0; i < S->n_gemm; i++) {
    suite_gemm *g = &S->gemm[i];
    g->untuned = measure_gemm(S, &g->s, &g->untuned_diff, &g->blas);
    g->tuned = g->tuned_diff = NAN;
    fprintf(stderr, "bench_suite: gemm %zu x %zu x %zu untuned %.1f GFLOP/s, OpenBLAS %.1f\n",
            g->s.m, g->s.n, g->s.k, g->untuned, g->blas);
  }
}

static void apply_tuning(suite *S) {
  char path[1024] = "";
  lamp_tune_path(S->ctx, path, sizeof(path));
  int applied = 0;
  lamp_status st = lamp_tune_apply(S->ctx, &applied);
  S->tuning_applied = st == LAMP_OK && applied;
  if (st != LAMP_OK)
    snprintf(S->tuning_note, sizeof(S->tuning_note), "stored tuning could not be applied: %s: %s",
             lamp_status_name(st), lamp_context_error(S->ctx));
  else if (!applied)
    snprintf(S->tuning_note, sizeof(S->tuning_note), "not tuned on this device: run lamp tune");
  else if (applied == 2)
    snprintf(S->tuning_note, sizeof(S->tuning_note), "lamp's built-in result for this kind "
             "of device (lamp tune stores this machine's own)");
  else
    snprintf(S->tuning_note, sizeof(S->tuning_note), "applied from %s", path);
}

static void section_gemm_tuned(suite *S) {
  for (size_t i = 0; i < S->n_gemm; i++) {
    suite_gemm *g = &S->gemm[i];
    g->tuned = measure_gemm(S, &g->s, &g->tuned_diff, NULL);
    fprintf(stderr, "bench_suite: gemm %zu x %zu x %zu tuned %.1f GFLOP/s\n", g->s.m, g->s.n,
            g->s.k, g->tuned);
  }
}

static void report_gemm(suite *S) {
  md(S, "\n## GEMM: lamp (CLBlast) against OpenBLAS cblas_sgemm\n\n");
  md(S, "Baseline: %s, %d threads. Tuning: %s.\n\n", openblas_get_config(),
     openblas_get_num_threads(), S->tuning_note);
  md(S, "| M x N x K | product | OpenBLAS GFLOP/s | untuned GFLOP/s | untuned / OpenBLAS | "
        "tuned GFLOP/s | tuned / OpenBLAS | max rel. diff |\n");
  md(S, "|---|---|---:|---:|---:|---:|---:|---:|\n");
  for (size_t i = 0; i < S->n_gemm; i++) {
    suite_gemm *g = &S->gemm[i];
    char tuned[96], ratio[64];
    if (S->tuning_applied) {
      snprintf(tuned, sizeof(tuned), "%.1f", g->tuned);
      snprintf(ratio, sizeof(ratio), "%.3f", g->tuned / g->blas);
    } else {
      snprintf(tuned, sizeof(tuned), "not tuned on this device: run lamp tune");
      snprintf(ratio, sizeof(ratio), "-");
    }
    double diff = S->tuning_applied ? fmax(g->untuned_diff, g->tuned_diff) : g->untuned_diff;
    md(S, "| %zu x %zu x %zu | %s | %.1f | %.1f | %.3f | %s | %s | %.1e |\n", g->s.m, g->s.n,
       g->s.k, g->s.what, g->blas, g->untuned, g->untuned / g->blas, tuned, ratio, diff);
  }
  md(S, "\nBest lamp GEMM in this run (the peak used below): %.1f GFLOP/s.\n", S->gemm_peak);
}

/* ---- 2. SVD, 3. prompt ----------------------------------------------------------------------- */

static void section_svd(suite *S) {
  static const int sizes[SUITE_MAX_SVD][2] = {{100, 576}, {8192, 1024}, {4096, 4096}};
  size_t n = S->o.quick ? 1 : SUITE_MAX_SVD;
  for (size_t i = 0; i < n; i++) {
    suite_svd *r = &S->svd[S->n_svd++];
    r->m = sizes[i][0];
    r->n = sizes[i][1];
    int mn = r->m < r->n ? r->m : r->n;
    bench_svd_problem p;
    bench_svd_problem_init(&p, S->ctx, r->m, r->n);
    float *s_ref = bench_malloc((size_t)mn * sizeof(float)), s[BENCH_SVD_RANK];
    r->lapack_s = bench_svd_lapack(&p, s_ref);
    r->lapack_err = bench_svd_top_error(s_ref, p.sigma, BENCH_SVD_RANK);
    r->lamp_s = bench_svd_lamp(S->ctx, &p, LAMP_SVD_SKETCH_AUTO, 2, s, &r->sh);
    r->lamp_err16 = bench_svd_top_error(s, p.sigma, 16);
    r->lamp_err64 = bench_svd_top_error(s, p.sigma, BENCH_SVD_RANK);
    fprintf(stderr, "bench_suite: svd %d x %d lamp %.3f s, sgesdd %.3f s\n", r->m, r->n,
            r->lamp_s, r->lapack_s);
    bench_svd_problem_release(&p);
    free(s_ref);
  }
}

static void report_svd(suite *S) {
  md(S, "\n## Randomized SVD (rank %d, p = 10, q = 2, automatic sketch) against LAPACK sgesdd\n\n",
     BENCH_SVD_RANK);
  md(S, "Spectrum sigma_i = 1/(i+1); lamp: best of %d runs; sgesdd: one full SVD.\n\n",
     BENCH_SVD_REPEATS);
  md(S, "| m x n | sgesdd s | lamp s | sgesdd / lamp | max rel. error top 16 / top %d (lamp) | "
        "top %d (sgesdd) | GEMM | QR | small SVD | other |\n|---|---:|---:|---:|---|---|---:|---:|"
        "---:|---:|\n", BENCH_SVD_RANK, BENCH_SVD_RANK);
  for (size_t i = 0; i < S->n_svd; i++) {
    suite_svd *r = &S->svd[i];
    double tot = r->sh.total_ms > 0 ? r->sh.total_ms : 1;
    md(S, "| %d x %d | %.3f | %.3f | %.1f | %.1e / %.1e | %.1e | %.0f%% | %.0f%% | %.0f%% | "
          "%.0f%% |\n", r->m, r->n, r->lapack_s, r->lamp_s, r->lapack_s / r->lamp_s,
       r->lamp_err16, r->lamp_err64, r->lapack_err, 100 * r->sh.gemm / tot,
       100 * r->sh.qr / tot, 100 * r->sh.small / tot, 100 * r->sh.other / tot);
  }
}

static void section_prompt(suite *S) {
  size_t n = S->o.quick ? 1 : bench_prompt_config_count;
  if (n > SUITE_MAX_PROMPT) n = SUITE_MAX_PROMPT;
  for (size_t i = 0; i < n; i++) {
    bench_prompt_measure(S->ctx, &bench_prompt_configs[i], S->o.quick, &S->prompt[i]);
    S->n_prompt++;
  }
}

static void report_prompt(suite *S) {
  md(S, "\n## Pooled compressed outer product (LAMP prompt): fused against unfused\n\n");
  md(S, "ms per call. fused: lamp_prompt_forward / _backward; (a) materialise (P, C) with GEMMs, "
        "then pool; (b) the pooled-first products as CLBlast GEMMs.\n\n");
  md(S, "| P, C, R, s | fwd fused | fwd (a) | fwd (b) | bwd fused | bwd (a) | bwd (b) | "
        "max rel. diff (a), (b) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (size_t i = 0; i < S->n_prompt; i++) {
    const bench_prompt_config *c = &bench_prompt_configs[i];
    const bench_prompt_result *r = &S->prompt[i];
    md(S, "| %zu, %zu, %zu, %zu | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.1e, %.1e |\n",
       c->l, c->d, c->r, c->s, 1e3 * r->seconds[0][0], 1e3 * r->seconds[0][1],
       1e3 * r->seconds[0][2], 1e3 * r->seconds[1][0], 1e3 * r->seconds[1][1],
       1e3 * r->seconds[1][2], r->diff_a, r->diff_b);
  }
}

/* ---- 4. training step -------------------------------------------------------------------- */

static int file_exists(const char *path) { return access(path, R_OK) == 0; }

/* models/... in the working folder, else in the source tree; "" when neither exists. */
static int default_model(char *buf, size_t size) {
  static const char rel[] = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  snprintf(buf, size, "%s", rel);
  if (file_exists(buf)) return 1;
  snprintf(buf, size, "%s/../%s", bench_source_dir(), rel);
  if (file_exists(buf)) return 1;
  buf[0] = '\0';
  return 0;
}

static lamp_llm *load_model(suite *S) {
  if (S->o.model_path) {
    snprintf(S->model_path, sizeof(S->model_path), "%s", S->o.model_path);
  } else if (S->o.quick) {
    snprintf(S->model_path, sizeof(S->model_path), "%s", bench_tiny_model_path());
    S->tiny = 1;
  } else if (!default_model(S->model_path, sizeof(S->model_path))) {
    fprintf(stderr, "bench_suite: models/SmolLM2-135M-Instruct.Q4_1.gguf not found: run "
                    "scripts/fetch-model.sh, or pass --model FILE.gguf\n");
    exit(1);
  }
  lamp_llm *llm = NULL;
  if (lamp_llm_load(S->ctx, S->model_path, &llm) != LAMP_OK) {
    fprintf(stderr, "bench_suite: %s\n", lamp_context_error(S->ctx));
    exit(1);
  }
  BENCH_CHECK(S->ctx, lamp_model_get_config(lamp_llm_model(llm), &S->model_cfg));
  if (S->tiny) {
    snprintf(S->model_name, sizeof(S->model_name), "the tiny test model tests/data/tiny.gguf "
             "(%zu layers, C %zu, V %zu)", S->model_cfg.n_layers, S->model_cfg.n_embd,
             S->model_cfg.n_vocab);
  } else {
    const char *base = strrchr(S->model_path, '/');
    snprintf(S->model_name, sizeof(S->model_name), "%s", base ? base + 1 : S->model_path);
  }
  return llm;
}

static void section_train(suite *S) {
  lamp_llm *llm = load_model(S);
  bench_train_config *c = &S->train_cfg;
  c->batch = S->o.batch;
  c->tokens = S->o.tokens;
  c->prompt = S->o.prompt;
  c->labels = 2;
  c->steps = S->o.steps;
  c->clip = 1.0f;
  c->seed = 42;
  for (size_t i = 0; i < 3; i++) {
    bench_train_measure(llm, suite_methods[i], c, &S->train[i]);
    S->n_train++;
    fprintf(stderr, "bench_suite: %s step %.3f s\n", lamp_prompt_method_name(suite_methods[i]),
            S->train[i].step_seconds);
  }
  lamp_llm_release(llm);
}

static double train_bytes(const bench_train_result *r) {
  return (double)(r->weight_bytes + r->workspace_bytes + r->prompt_bytes + r->optim_bytes);
}

static void report_train(suite *S) {
  const bench_train_config *c = &S->train_cfg;
  md(S, "\n## Training step: LAMP, PT, DPT on %s, batch %zu x %zu tokens\n\n", S->model_name,
     c->batch, c->tokens);
  md(S, "A step is the library's lamp_trainer_step, timed until lamp_trainer_collect has its "
        "loss: prompt forward, model forward with the P' prompt rows prepended, cross-entropy "
        "over %zu label words at the last token, backward to the prompt, prompt backward, "
        "global-norm clipping (%.1f), AdamW, all on the device. P = %zu prompt tokens (LAMP pools "
        "by 2, R 8; PT and DPT by 1, DPT b 10). Median of %d timed steps after one warm-up. "
        "GFLOP: the model's GEMMs forward and backward to the inputs, the label head and "
        "causal attention (bench_train_flop). Device memory: lamp's own allocations (weights, "
        "workspace, prompt values and gradients, AdamW moments), all made before the first step; "
        "CLBlast's temporary buffers and the driver's own memory are not counted.\n\n",
     c->labels, c->clip, c->prompt, c->steps);
  md(S, "| method | P' | trainable | step s | tokens/s | GFLOP/step | GFLOP/s | of GEMM peak | "
        "device MiB | GEMM share | loss first -> last |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
  for (size_t i = 0; i < S->n_train; i++) {
    const bench_train_result *r = &S->train[i];
    double gf = r->flop / r->step_seconds * 1e-9;
    char peak[32] = "n/a";
    if (isfinite(S->gemm_peak) && S->gemm_peak > 0)
      snprintf(peak, sizeof(peak), "%.0f%%", 100.0 * gf / S->gemm_peak);
    md(S, "| %s | %zu | %zu | %.3f | %.1f | %.1f | %.1f | %s | %.1f | %.0f%% | %.4f -> %.4f |\n",
       lamp_prompt_method_name(r->method), r->prompt_rows, r->trainable, r->step_seconds,
       r->tokens_per_s, r->flop * 1e-9, gf, peak, train_bytes(r) / 1048576.0,
       100 * r->gemm_share, r->loss_first, r->loss_last);
  }
  if (S->n_train && S->train[0].n_top) {
    const bench_train_result *r = &S->train[0];
    md(S, "\nWhere the LAMP step's device time goes (LAMP_PROFILE, the timed steps):\n\n"
          "| kernel | calls | ms | share |\n|---|---:|---:|---:|\n");
    for (size_t j = 0; j < r->n_top; j++)
      md(S, "| %s | %llu | %.1f | %.1f%% |\n", r->top[j].name,
         (unsigned long long)r->top[j].calls, r->top[j].total_ms, 100 * r->top[j].share);
  }
}

/* ---- 5. the PyTorch peer ------------------------------------------------------------------- */

/* A count from the peer's file: 0 when it is missing or not a whole number. */
static size_t peer_count(const char *json, const char *path) {
  double v = bench_json_number_at(json, path);
  return v >= 0 && v < 1e15 && v == floor(v) ? (size_t)v : 0;
}

static void read_peer(suite *S, const char *path) {
  suite_peer *p = &S->peer;
  char *text = bench_read_file(path);
  if (!text) {
    snprintf(p->note, sizeof(p->note), "cannot read %s", path);
    return;
  }
  if (!bench_json_valid(text)) {
    snprintf(p->note, sizeof(p->note), "%s is not valid JSON", path);
    free(text);
    return;
  }
  size_t batch = peer_count(text, "config.batch");
  size_t tokens = peer_count(text, "config.tokens");
  size_t prompt = peer_count(text, "config.prompt");
  if (!bench_json_string_at(text, "torch", p->torch, sizeof(p->torch)))
    snprintf(p->torch, sizeof(p->torch), "?");
  p->threads = (int)peer_count(text, "threads");
  char model[1024];
  const char *base = NULL;
  if (bench_json_string_at(text, "config.model", model, sizeof(model))) {
    base = strrchr(model, '/');
    base = base ? base + 1 : model;
  }
  const char *ours = strrchr(S->model_path, '/');
  ours = ours ? ours + 1 : S->model_path;
  if (!base || strcmp(base, ours) != 0) {
    snprintf(p->note, sizeof(p->note), "%s measured model %.200s, not this run's %.200s: "
             "ignored", path, base ? base : "?", ours);
  } else if (batch != S->train_cfg.batch || tokens != S->train_cfg.tokens ||
             prompt != S->train_cfg.prompt) {
    snprintf(p->note, sizeof(p->note), "%s measured batch %zu x %zu, prompt %zu: not this run's "
             "shape, ignored", path, batch, tokens, prompt);
  } else {
    for (size_t i = 0; i < 3; i++) {
      char key[64];
      const char *m = lamp_prompt_method_name(suite_methods[i]);
      snprintf(key, sizeof(key), "methods.%s.step_seconds", m);
      double t = bench_json_number_at(text, key);
      p->step_seconds[i] = t > 0 ? t : NAN;
      snprintf(key, sizeof(key), "methods.%s.loss_first", m);
      p->loss_first[i] = bench_json_number_at(text, key);
      if (t > 0) p->have = 1;
    }
    if (!p->have) snprintf(p->note, sizeof(p->note), "%s holds no step times", path);
  }
  free(text);
}

/* Runs peer_pytorch.py on the same model and shape when python3 can import torch. */
static void run_peer(suite *S, char *out_path, size_t size) {
  suite_peer *p = &S->peer;
  out_path[0] = '\0';
  if (strchr(S->model_path, '\'') || strchr(bench_source_dir(), '\'')) {
    snprintf(p->note, sizeof(p->note), "not run: a path holds a quote; run peer_pytorch.py "
             "and pass --peer-json");
    return;
  }
  /* the first Python that imports torch: PATH's python3, else Debian's (a pyenv or venv
   * python3 earlier in PATH does not see Debian's python3-torch) */
  static const char *pythons[] = {"python3", "/usr/bin/python3"};
  const char *python = NULL;
  for (size_t i = 0; i < 2 && !python; i++) {
    char probe[256];
    snprintf(probe, sizeof(probe), "%s -c 'import numpy, torch' >/dev/null 2>&1", pythons[i]);
    if (system(probe) == 0) python = pythons[i];
  }
  if (!python) {
    snprintf(p->note, sizeof(p->note), "not measured: neither python3 nor /usr/bin/python3 can "
             "import torch and numpy (Debian: python3-torch); run bench/peer_pytorch.py where "
             "they can and pass --peer-json");
    return;
  }
  char dir[] = "/tmp/lamp-bench-peer-XXXXXX";
  if (!mkdtemp(dir)) {
    snprintf(p->note, sizeof(p->note), "not measured: no temporary folder");
    return;
  }
  snprintf(out_path, size, "%s/peer.json", dir);
  /* PT's initial prompt is the embedding rows of these ids in lamp, so that the peer starts
   * from the same prompt and the first losses can be compared */
  size_t P = S->train_cfg.prompt, pool = S->model_cfg.n_vocab;
  if (pool > LAMP_PROMPT_SAMPLE_ROWS) pool = LAMP_PROMPT_SAMPLE_ROWS;
  uint32_t *ids = bench_malloc(P * sizeof(uint32_t));
  BENCH_CHECK(S->ctx, lamp_prompt_sample_tokens(1, pool, P, ids));
  size_t cap = 2048 + strlen(S->model_path) + 12 * P, len = 0;
  char *cmd = bench_malloc(cap);
  len += (size_t)snprintf(cmd, cap, "%s '%s/peer_pytorch.py' --model '%s' --batch %zu "
                          "--tokens %zu --prompt %zu --labels %zu --steps %d --seed %llu "
                          "--json '%s' --pt-ids ", python, bench_source_dir(), S->model_path,
                          S->train_cfg.batch, S->train_cfg.tokens, P, S->train_cfg.labels,
                          S->train_cfg.steps, (unsigned long long)S->train_cfg.seed, out_path);
  for (size_t i = 0; i < P && len < cap; i++)
    len += (size_t)snprintf(cmd + len, cap - len, "%s%u", i ? "," : "", ids[i]);
  if (len < cap) snprintf(cmd + len, cap - len, " 1>&2");
  free(ids);
  fprintf(stderr, "bench_suite: %s\n", cmd);
  if (system(cmd) != 0) {
    snprintf(p->note, sizeof(p->note), "peer_pytorch.py failed (its messages are above)");
    out_path[0] = '\0';
  }
  free(cmd);
}

static void section_peer(suite *S) {
  suite_peer *p = &S->peer;
  for (size_t i = 0; i < 3; i++) p->step_seconds[i] = p->loss_first[i] = NAN;
  if (S->o.peer_json) {
    read_peer(S, S->o.peer_json);
    if (p->have) snprintf(p->note, sizeof(p->note), "read from %s", S->o.peer_json);
    return;
  }
  /* the smoke run stays in seconds: no Python there */
  if (S->o.no_peer || S->tiny) {
    snprintf(p->note, sizeof(p->note), "not run (%s)", S->o.no_peer ? "--no-peer" :
             "--quick on the tiny test model; pass --model, or --peer-json");
    return;
  }
  char path[256];
  run_peer(S, path, sizeof(path));
  if (path[0]) {
    read_peer(S, path);
    if (p->have) snprintf(p->note, sizeof(p->note), "run by this suite");
    unlink(path);
    char *slash = strrchr(path, '/');
    if (slash) {
      *slash = '\0';
      rmdir(path);
    }
  }
}

static void report_peer(suite *S) {
  suite_peer *p = &S->peer;
  md(S, "\n## Peer: the same step in PyTorch on the CPU (bench/peer_pytorch.py)\n\n");
  if (!p->have) {
    md(S, "%s.\n", p->note);
    return;
  }
  md(S, "PyTorch %s, %d threads, %s. Same weights (the GGUF dequantised), batch, prompt shape "
        "and step; gradients of the prompt parameters only.\n\n", p->torch, p->threads, p->note);
  md(S, "PT starts from the same prompt in both (the embedding rows lamp samples), so its first "
        "losses must agree: a check that both run the same model on the same batch. LAMP and DPT "
        "start from other random draws in PyTorch.\n\n");
  md(S, "| method | lamp step s | PyTorch step s | PyTorch / lamp time (> 1: lamp faster) | "
        "first loss lamp / PyTorch |\n|---|---:|---:|---:|---|\n");
  for (size_t i = 0; i < S->n_train && i < 3; i++) {
    const bench_train_result *r = &S->train[i];
    md(S, "| %s | %.3f | %.3f | %.2f | %.4f / %.4f |\n", lamp_prompt_method_name(r->method),
       r->step_seconds, p->step_seconds[i], p->step_seconds[i] / r->step_seconds, r->loss_first,
       p->loss_first[i]);
  }
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static void json_key(FILE *f, const char *key, int first) {
  fprintf(f, "%s", first ? "" : ", ");
  bench_json_string(f, key);
  fputs(": ", f);
}

static void json_num(FILE *f, const char *key, double v, int first) {
  json_key(f, key, first);
  bench_json_number(f, v);
}

static void write_json(suite *S, FILE *f) {
  const lamp_device_info *dev = lamp_context_device(S->ctx);
  fputs("{", f);
  json_key(f, "device", 1);
  fputs("{", f);
  json_key(f, "name", 1);
  bench_json_string(f, dev->name);
  json_key(f, "platform", 0);
  bench_json_string(f, dev->platform_name);
  json_key(f, "driver", 0);
  bench_json_string(f, dev->driver_version);
  fputs("}", f);
  json_key(f, "mode", 0);
  bench_json_string(f, S->o.quick ? "quick" : "full");
  json_key(f, "load_average", 0);
  fputs("{", f);
  json_num(f, "start_1min", S->load_start[0], 1);
  json_num(f, "end_1min", S->load_end[0], 0);
  json_num(f, "cpus", (double)sysconf(_SC_NPROCESSORS_ONLN), 0);
  fputs("}", f);

  json_key(f, "gemm", 0);
  fputs("{", f);
  json_key(f, "blas", 1);
  bench_json_string(f, openblas_get_config());
  json_num(f, "blas_threads", openblas_get_num_threads(), 0);
  json_num(f, "tuning_applied", S->tuning_applied, 0);
  json_key(f, "tuning", 0);
  bench_json_string(f, S->tuning_note);
  json_num(f, "peak_gflops", S->gemm_peak, 0);
  json_key(f, "results", 0);
  fputs("[", f);
  for (size_t i = 0; i < S->n_gemm; i++) {
    const suite_gemm *g = &S->gemm[i];
    fputs(i ? ", {" : "{", f);
    json_num(f, "m", (double)g->s.m, 1);
    json_num(f, "n", (double)g->s.n, 0);
    json_num(f, "k", (double)g->s.k, 0);
    json_num(f, "trans_b", g->s.trans_b, 0);
    json_key(f, "product", 0);
    bench_json_string(f, g->s.what);
    json_num(f, "blas_gflops", g->blas, 0);
    json_num(f, "untuned_gflops", g->untuned, 0);
    json_num(f, "tuned_gflops", g->tuned, 0);
    json_num(f, "untuned_rel_diff", g->untuned_diff, 0);
    json_num(f, "tuned_rel_diff", g->tuned_diff, 0);
    fputs("}", f);
  }
  fputs("]}", f);

  json_key(f, "svd", 0);
  fputs("[", f);
  for (size_t i = 0; i < S->n_svd; i++) {
    const suite_svd *r = &S->svd[i];
    fputs(i ? ", {" : "{", f);
    json_num(f, "m", r->m, 1);
    json_num(f, "n", r->n, 0);
    json_num(f, "rank", BENCH_SVD_RANK, 0);
    json_num(f, "sgesdd_seconds", r->lapack_s, 0);
    json_num(f, "lamp_seconds", r->lamp_s, 0);
    json_num(f, "sgesdd_rel_error_top64", r->lapack_err, 0);
    json_num(f, "lamp_rel_error_top16", r->lamp_err16, 0);
    json_num(f, "lamp_rel_error_top64", r->lamp_err64, 0);
    json_num(f, "gemm_ms", r->sh.gemm, 0);
    json_num(f, "qr_ms", r->sh.qr, 0);
    json_num(f, "small_svd_ms", r->sh.small, 0);
    json_num(f, "other_ms", r->sh.other, 0);
    fputs("}", f);
  }
  fputs("]", f);

  json_key(f, "prompt", 0);
  fputs("[", f);
  static const char *variants[3] = {"fused", "materialise", "pooled_gemm"};
  for (size_t i = 0; i < S->n_prompt; i++) {
    const bench_prompt_config *c = &bench_prompt_configs[i];
    const bench_prompt_result *r = &S->prompt[i];
    fputs(i ? ", {" : "{", f);
    json_num(f, "P", (double)c->l, 1);
    json_num(f, "C", (double)c->d, 0);
    json_num(f, "R", (double)c->r, 0);
    json_num(f, "pool", (double)c->s, 0);
    for (int v = 0; v < 3; v++) {
      char key[64];
      snprintf(key, sizeof(key), "forward_%s_ms", variants[v]);
      json_num(f, key, 1e3 * r->seconds[0][v], 0);
      snprintf(key, sizeof(key), "backward_%s_ms", variants[v]);
      json_num(f, key, 1e3 * r->seconds[1][v], 0);
    }
    json_num(f, "materialise_rel_diff", r->diff_a, 0);
    json_num(f, "pooled_gemm_rel_diff", r->diff_b, 0);
    fputs("}", f);
  }
  fputs("]", f);

  json_key(f, "train", 0);
  fputs("{", f);
  json_key(f, "model", 1);
  bench_json_string(f, S->model_name);
  json_num(f, "batch", (double)S->train_cfg.batch, 0);
  json_num(f, "tokens", (double)S->train_cfg.tokens, 0);
  json_num(f, "prompt", (double)S->train_cfg.prompt, 0);
  json_num(f, "labels", (double)S->train_cfg.labels, 0);
  json_num(f, "timed_steps", S->train_cfg.steps, 0);
  json_key(f, "methods", 0);
  fputs("[", f);
  for (size_t i = 0; i < S->n_train; i++) {
    const bench_train_result *r = &S->train[i];
    double gf = r->flop / r->step_seconds * 1e-9;
    fputs(i ? ", {" : "{", f);
    json_key(f, "method", 1);
    bench_json_string(f, lamp_prompt_method_name(r->method));
    json_num(f, "prompt_rows", (double)r->prompt_rows, 0);
    json_num(f, "trainable", (double)r->trainable, 0);
    json_num(f, "step_seconds", r->step_seconds, 0);
    json_num(f, "tokens_per_second", r->tokens_per_s, 0);
    json_num(f, "gflop_per_step", r->flop * 1e-9, 0);
    json_num(f, "gflops", gf, 0);
    json_num(f, "fraction_of_gemm_peak", S->gemm_peak > 0 ? gf / S->gemm_peak : NAN, 0);
    json_num(f, "weight_bytes", (double)r->weight_bytes, 0);
    json_num(f, "workspace_bytes", (double)r->workspace_bytes, 0);
    json_num(f, "prompt_bytes", (double)r->prompt_bytes, 0);
    json_num(f, "optimizer_bytes", (double)r->optim_bytes, 0);
    json_num(f, "device_bytes", train_bytes(r), 0);
    json_num(f, "gemm_share", r->gemm_share, 0);
    json_num(f, "loss_first", r->loss_first, 0);
    json_num(f, "loss_last", r->loss_last, 0);
    json_key(f, "profile", 0);
    fputs("[", f);
    for (size_t j = 0; j < r->n_top; j++) {
      fputs(j ? ", {" : "{", f);
      json_key(f, "name", 1);
      bench_json_string(f, r->top[j].name);
      json_num(f, "calls", (double)r->top[j].calls, 0);
      json_num(f, "ms", r->top[j].total_ms, 0);
      json_num(f, "share", r->top[j].share, 0);
      fputs("}", f);
    }
    fputs("]}", f);
  }
  fputs("]}", f);

  json_key(f, "peer", 0);
  fputs("{", f);
  json_key(f, "note", 1);
  bench_json_string(f, S->peer.note);
  if (S->peer.have) {
    json_key(f, "torch", 0);
    bench_json_string(f, S->peer.torch);
    json_num(f, "threads", S->peer.threads, 0);
    for (size_t i = 0; i < S->n_train && i < 3; i++) {
      char key[64];
      const char *name = lamp_prompt_method_name(S->train[i].method);
      snprintf(key, sizeof(key), "%s_step_seconds", name);
      json_num(f, key, S->peer.step_seconds[i], 0);
      snprintf(key, sizeof(key), "%s_pytorch_over_lamp_time", name);
      json_num(f, key, S->peer.step_seconds[i] / S->train[i].step_seconds, 0);
    }
  }
  fputs("}}\n", f);
}

int main(int argc, char **argv) {
  static suite S;
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(suite_usage, stdout);
      return 0;
    }
  if (!parse_args(argc, argv, &S.o)) {
    fputs(suite_usage, stderr);
    return 2;
  }
  read_load(S.load_start);
  lamp_context_options co;
  lamp_context_options_init(&co);
  co.tuning = 0; /* CLBlast's own parameters first: overrides cannot be taken back */
  co.profile = 1;
  char err[1024];
  lamp_status st = lamp_context_create(&co, &S.ctx, err, sizeof(err));
  if (st != LAMP_OK) {
    fprintf(stderr, "bench_suite: %s: %s\n", lamp_status_name(st), err);
    return 1;
  }
  S.md = fopen(S.o.md_path, "w");
  if (!S.md) {
    fprintf(stderr, "bench_suite: cannot write %s\n", S.o.md_path);
    lamp_context_release(S.ctx);
    return 1;
  }
  S.gemm_peak = NAN;

  if (!(S.o.skip & SEC_GEMM)) section_gemm(&S);
  apply_tuning(&S);
  if (!(S.o.skip & SEC_GEMM) && S.tuning_applied) section_gemm_tuned(&S);
  for (size_t i = 0; i < S.n_gemm; i++) {
    double g = S.tuning_applied ? fmax(S.gemm[i].tuned, S.gemm[i].untuned) : S.gemm[i].untuned;
    if (!(S.gemm_peak >= g)) S.gemm_peak = g;
  }
  if (!(S.o.skip & SEC_SVD)) section_svd(&S);
  if (!(S.o.skip & SEC_PROMPT)) section_prompt(&S);
  if (!(S.o.skip & SEC_TRAIN)) section_train(&S);
  if (!(S.o.skip & (SEC_PEER | SEC_TRAIN))) section_peer(&S);
  else snprintf(S.peer.note, sizeof(S.peer.note), "not run (--skip)");
  read_load(S.load_end);

  const lamp_device_info *dev = lamp_context_device(S.ctx);
  md(&S, "# lamp benchmark suite (%s)\n\n", S.o.quick ? "--quick" : "full");
  md(&S, "Device: **%s** (%s, driver %s). Host: %ld CPUs, load average %.2f at the start and "
         "%.2f at the end (the machine may be shared: other jobs slow both lamp and the "
         "baselines).\n", dev->name, dev->platform_name, dev->driver_version,
     sysconf(_SC_NPROCESSORS_ONLN), S.load_start[0], S.load_end[0]);
  if (S.n_gemm) report_gemm(&S);
  if (S.n_svd) report_svd(&S);
  if (S.n_prompt) report_prompt(&S);
  if (S.n_train) {
    report_train(&S);
    report_peer(&S);
  }
  fclose(S.md);

  FILE *jf = fopen(S.o.json_path, "w");
  int rc = 0;
  if (!jf) {
    fprintf(stderr, "bench_suite: cannot write %s\n", S.o.json_path);
    rc = 1;
  } else {
    write_json(&S, jf);
    if (fclose(jf) != 0) rc = 1;
  }
  /* products that disagree with OpenBLAS make the run fail */
  for (size_t i = 0; i < S.n_gemm; i++)
    if (S.gemm[i].untuned_diff > 1e-4 || (S.tuning_applied && S.gemm[i].tuned_diff > 1e-4)) {
      fprintf(stderr, "bench_suite: GEMM %zu x %zu x %zu differs from OpenBLAS\n", S.gemm[i].s.m,
              S.gemm[i].s.n, S.gemm[i].s.k);
      rc = 1;
    }
  /* the tables above hold what the profile says; release would print it again */
  lamp_profile_reset(S.ctx);
  lamp_context_release(S.ctx);
  return rc;
}
