/* Measuring code shared by the bench programs: each bench_<area>.c prints its own table from
 * these functions, and bench_suite runs them all in one process. Benchmarks are programs, so a
 * failed lamp call ends the process with a message naming the call (BENCH_CHECK). */
#ifndef LAMP_BENCH_COMMON_H
#define LAMP_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lamp/lamp.h"

/* ---- common ------------------------------------------------------------------------------- */

/* Ends the process with "bench: <what> -> <status>: <context error>" unless st is LAMP_OK. */
void bench_check(lamp_context *ctx, lamp_status st, const char *what);
#define BENCH_CHECK(ctx, call) bench_check((ctx), (call), #call)

void *bench_malloc(size_t bytes);
double bench_now(void);
/* Uniform values in [-0.5, 0.5) from a fixed linear congruential generator. */
void bench_fill_uniform(float *x, size_t n, unsigned seed);
double bench_median(double *x, size_t n); /* sorts x */

/* The bench/ folder of the source tree this program was built from (peer_pytorch.py, and
 * ../models for the default model file). */
const char *bench_source_dir(void);
/* The tiny model that the tests, the examples and the benchmarks share:
 * bench_source_dir()/../tests/data/tiny.gguf (2 layers, C 32, V 258: the byte tokens and the
 * merges " a", " b"). */
const char *bench_tiny_model_path(void);

/* JSON output: an escaped string, and a number (null when not finite). */
void bench_json_string(FILE *f, const char *s);
void bench_json_number(FILE *f, double v);

/* JSON input, as much as bench_suite needs to read peer_pytorch.py's file (Python's json.dump:
 * objects, arrays, strings, numbers, NaN and Infinity, true, false, null). */

/* The whole file as a NUL-terminated string to free, or NULL when it cannot be read. */
char *bench_read_file(const char *path);
/* Nonzero when `json` holds exactly one well-formed value. */
int bench_json_valid(const char *json);
/* The number at `path`, a dotted list of object keys ("methods.lamp.step_seconds"); NAN when the
 * path is missing or leads to something else. */
double bench_json_number_at(const char *json, const char *path);
/* The string at `path`, unescaped (UTF-8) into `out` (`size` bytes, cut short if need be);
 * 0 when the path is missing or leads to something else. */
int bench_json_string_at(const char *json, const char *path, char *out, size_t size);

/* ---- GEMM (bench_gemm_lib.c) -------------------------------------------------------------- */

/* C (M, N) = A (M, K) B, B stored (K, N), or (N, K) and used transposed when trans_b is set. */
typedef struct bench_gemm_shape {
  size_t m, n, k;
  int trans_b;
  const char *what;
} bench_gemm_shape;

/* bench_gemm's shapes: SmolLM2's projections for 128 tokens and two squares (all NN). */
extern const bench_gemm_shape bench_gemm_square_shapes[];
extern const size_t bench_gemm_square_count;

/* The products of a SmolLM2-135M training step with `rows` = B (P' + T) rows: the forward's
 * x W^T (QKV, output, gate/up, down) and the backward's dY W. Fills up to `cap` shapes. */
size_t bench_gemm_model_shapes(size_t rows, bench_gemm_shape *out, size_t cap);

typedef struct bench_gemm_case {
  bench_gemm_shape s;
  lamp_context *ctx;
  float *a, *b, *c_ref, *c_dev; /* host operands, OpenBLAS's product, the device's product */
  lamp_tensor ta, tb, tc;
} bench_gemm_case;

/* Random operands on host and device and OpenBLAS's product as the reference. */
void bench_gemm_case_init(bench_gemm_case *g, lamp_context *ctx, const bench_gemm_shape *s);
void bench_gemm_case_release(bench_gemm_case *g);
double bench_gemm_flop(const bench_gemm_shape *s);
/* Timed repetitions for a shape: a few, more for small products, 2 in quick mode. */
int bench_gemm_reps(const bench_gemm_shape *s, int quick);
/* Seconds per product with lamp_gemm (one untimed call first), and the largest difference of
 * the device's product from OpenBLAS's relative to OpenBLAS's largest entry. */
double bench_gemm_time_lamp(bench_gemm_case *g, int reps, double *rel_diff);
/* Seconds per product with cblas_sgemm (one untimed call first). */
double bench_gemm_time_blas(bench_gemm_case *g, int reps);

/* ---- randomized SVD (bench_svd_lib.c) ----------------------------------------------------- */

#define BENCH_SVD_RANK 64
#define BENCH_SVD_REPEATS 3 /* timed runs of each lamp configuration; the best counts */

/* A row-major m x n matrix A = X diag(sigma) Y^T with X, Y orthonormal and
 * sigma_i = 1 / (i + 1) for i < min(m, n, 1024), zero past it, on host and device. */
typedef struct bench_svd_problem {
  int m, n;
  double *sigma; /* min(m, n) */
  float *a;      /* m x n */
  lamp_tensor ta;
} bench_svd_problem;

void bench_svd_problem_init(bench_svd_problem *p, lamp_context *ctx, int m, int n);
void bench_svd_problem_release(bench_svd_problem *p);

/* Device time shares of one run, from lamp's profiler (needs profiling on). */
typedef struct bench_svd_shares {
  double gemm, qr, small, other, total_ms;
} bench_svd_shares;

/* LAPACK sgesdd (thin U, Vt) on a copy of A: seconds, and the min(m, n) singular values. */
double bench_svd_lapack(const bench_svd_problem *p, float *s);
/* Best of BENCH_SVD_REPEATS timed runs of lamp_svd_randomized at rank BENCH_SVD_RANK (after one
 * untimed run), with the top BENCH_SVD_RANK singular values and the shares of the best run. */
double bench_svd_lamp(lamp_context *ctx, const bench_svd_problem *p, lamp_svd_sketch sketch,
                      unsigned q, float *s, bench_svd_shares *sh);
/* Largest relative error of the first `count` values against sigma. */
double bench_svd_top_error(const float *s, const double *sigma, int count);

/* ---- pooled compressed outer product (bench_prompt_lib.c) --------------------------------- */

typedef struct bench_prompt_config {
  size_t l, d, r, s; /* P, C, R, pooling window */
} bench_prompt_config;

extern const bench_prompt_config bench_prompt_configs[];
extern const size_t bench_prompt_config_count;

enum { BENCH_PROMPT_FUSED, BENCH_PROMPT_MATERIALISE, BENCH_PROMPT_POOLED_GEMM };

typedef struct bench_prompt_result {
  double seconds[2][3]; /* [forward, backward][fused, (a) materialise, (b) pooled GEMMs] */
  double diff_a, diff_b; /* worst relative difference of (a), (b) from the fused kernels */
} bench_prompt_result;

/* Checks (a) and (b) against lamp_prompt_forward / lamp_prompt_backward, then times all six. */
void bench_prompt_measure(lamp_context *ctx, const bench_prompt_config *c, int quick,
                          bench_prompt_result *out);

/* ---- training step (bench_train_lib.c) ---------------------------------------------------- */

/* The 64-bit LCG of the benchmarks' random data: advances *s, returns its top 31 bits. */
uint64_t bench_lcg(uint64_t *s);

typedef struct bench_train_config {
  size_t batch, tokens; /* B, T */
  size_t prompt;        /* P, prompt tokens before pooling (each method's own pooling) */
  size_t labels;        /* K label words (2..LAMP_DATA_MAX_LABELS) scored at the last token
                           of each sequence */
  int steps;            /* timed steps (after one untimed warm-up step) */
  float clip;           /* global gradient norm bound */
  uint64_t seed;        /* token ids and label targets */
} bench_train_config;

#define BENCH_TRAIN_MAX_STEPS 16
#define BENCH_TRAIN_TOP 8

typedef struct bench_train_result {
  lamp_prompt_method method;
  size_t prompt_rows;   /* P' rows prepended */
  size_t trainable;     /* trainable scalars */
  double step_seconds;  /* median of the timed steps */
  double tokens_per_s;  /* B T / step_seconds */
  double flop;          /* model FLOP of one step (bench_train_flop) */
  double loss_first, loss_last; /* mean loss of the warm-up step and of the last step */
  size_t weight_bytes, workspace_bytes, prompt_bytes, optim_bytes; /* lamp's allocations */
  double gemm_share;    /* share of device time in CLBlast GEMMs over the timed steps */
  size_t n_top;         /* the largest profile entries of the timed steps */
  lamp_profile_entry top[BENCH_TRAIN_TOP];
} bench_train_result;

/* FLOP of one step on a model: the GEMMs of the forward and of the backward to the inputs
 * (the same products transposed), the label head both ways, and causal attention (2 products
 * forward, 5 backward), for B sequences of T tokens after P' prompt rows that the model
 * computes once (P' + B T rows), and M = B outputs over K labels. */
double bench_train_flop(const lamp_model_config *c, size_t batch, size_t prompt_rows,
                        size_t tokens, size_t outputs, size_t labels);

/* The batch as bench_train_measure and peer_pytorch.py both build it: ids (B, T) uniform in
 * [0, V) from a 64-bit LCG (state = state * 6364136223846793005 + 1442695040888963407,
 * id = (state >> 33) % V), then targets (B) = (state >> 33) % K from the same stream. */
void bench_train_batch(const bench_train_config *c, size_t n_vocab, int32_t *ids,
                       int32_t *targets);

/* One prompt-tuning method on `llm`, timed as the library runs it: a classifier for a task of
 * K classes whose label words are the texts of token ids (k + 1) V / (K + 1), as the PyTorch
 * peer picks them (each must encode back to its id alone, else the process ends saying so);
 * the batch as B tokenized examples; a trainer with P prompt tokens and the method's defaults
 * otherwise (LAMP and PT initialised from the embedding table, prompt seed 1), batch B,
 * lamp_adamw_options_init's AdamW at a constant learning rate and global-norm clipping at
 * `clip`. Then 1 + steps calls of lamp_trainer_step, each followed by lamp_trainer_collect:
 * prompt forward into the model's prompt rows, model forward with the label head
 * (cross-entropy at the last token of each sequence), backward to the prompt, prompt
 * backward, clipping, AdamW. Needs profiling on for the shares. */
void bench_train_measure(lamp_llm *llm, lamp_prompt_method method, const bench_train_config *c,
                         bench_train_result *out);

#endif
