/* lamp: trainable soft prompts (LAMP, vanilla prompt tuning, DPT) and average pooling.
 *
 * A prompt produces the (P', C) matrix that is prepended to the frozen model's input embeddings,
 * P' = ceil(P / s) for a pooling window s. Methods (docs/LAMP-method.md in the project notes):
 *   LAMP  out = pool_s(U) diag(q) Vt: U (P, R), q (R), V (C, R) stored as Vt (R, C). Initialised
 *         from the rank-R truncated SVD (lamp_svd_randomized) of P0 (P, C), P0 being P rows
 *         sampled from the token-embedding table or uniform values. Parameters R (P + C + 1).
 *   PT    out = pool_s(P), P (P, C) trained directly, initialised like P0. Parameters P C.
 *   DPT   out = pool_s(A) B, A (P, R) and B (R, C) with R the bottleneck b, both initialised
 *         Uniform(-0.5, 0.5) (uniform_range). Parameters R (P + C).
 * pool_s averages rows j*s .. min(j*s + s, P) - 1; LAMP and DPT pool the left factor first,
 * which is exact because pooling is linear, and never form the (P, C) product, let alone an
 * (R, P, C) one.
 *
 * All parameters live in one device buffer and their gradients in another, laid out the same.
 * Which calls overwrite and which accumulate:
 *   lamp_prompt_forward      overwrites `out`;
 *   lamp_prompt_backward     accumulates (+=) into the gradients;
 *   lamp_prompt_zero_grad    overwrites the gradients with zeros;
 *   lamp_pool_avg_forward    overwrites `y`;
 *   lamp_pool_avg_backward   overwrites or accumulates into `dx`, as asked. */
#ifndef LAMP_PROMPT_H
#define LAMP_PROMPT_H

#include <stdint.h>

#include "lamp/export.h"
#include "lamp/optim.h"
#include "lamp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lamp_prompt_method {
  LAMP_PROMPT_LAMP = 0,
  LAMP_PROMPT_PT = 1,
  LAMP_PROMPT_DPT = 2,
} lamp_prompt_method;

typedef enum lamp_prompt_init {
  LAMP_PROMPT_INIT_EMBEDDING = 0, /* P0 = rows sampled from `embedding` (LAMP, PT) */
  LAMP_PROMPT_INIT_UNIFORM = 1,   /* P0 (LAMP, PT) or A and B (DPT) Uniform(-range, range) */
  LAMP_PROMPT_INIT_NONE = 2,      /* all zero: for a prompt that lamp_prompt_load will fill */
} lamp_prompt_init;

/* Most tokens an embedding initialisation samples from, by default (the lowest ids). */
#define LAMP_PROMPT_SAMPLE_ROWS 5000
/* Most parameter tensors of any method. */
#define LAMP_PROMPT_MAX_PARAMS 3

typedef struct lamp_prompt_options {
  lamp_prompt_method method;
  size_t length;     /* P, prompt tokens before pooling [100] */
  size_t width;      /* C, the frozen model's embedding width (no default) */
  size_t rank;       /* R of LAMP, 1 <= R <= min(P, C) [8] */
  size_t bottleneck; /* b of DPT [10] */
  size_t pool;       /* s, pooling window and stride, 1 = none [2 for LAMP, 1 for PT and DPT] */
  uint64_t seed;     /* row sampling, uniform values and the SVD's sketch [0] */
  lamp_prompt_init init; /* [EMBEDDING for LAMP and PT, UNIFORM for DPT] */
  const lamp_tensor *embedding; /* (V, C) f32 or f16 table for INIT_EMBEDDING; read at create */
  size_t sample_rows;  /* rows are drawn from the first min(V, sample_rows) [5000] */
  float uniform_range; /* INIT_UNIFORM draws from [-range, range) [0.5] */
} lamp_prompt_options;

/* The defaults above for `method`; `width` is the model's embedding width. */
LAMP_API void lamp_prompt_options_init(lamp_prompt_options *options, lamp_prompt_method method,
                                       size_t width);

/* "lamp", "pt", "dpt"; NULL for anything else. */
LAMP_API const char *lamp_prompt_method_name(lamp_prompt_method method);

/* The method named `name` as lamp_prompt_method_name spells it, ignoring case; an unknown name
 * is LAMP_ERR_INVALID_ARGUMENT and leaves *out unchanged. */
LAMP_API lamp_status lamp_prompt_method_from_name(const char *name, lamp_prompt_method *out);

/* "embedding", "uniform", "none"; NULL for anything else. */
LAMP_API const char *lamp_prompt_init_name(lamp_prompt_init init);

/* The initialisation named `name` as lamp_prompt_init_name spells it, ignoring case; an unknown
 * name is LAMP_ERR_INVALID_ARGUMENT and leaves *out unchanged. */
LAMP_API lamp_status lamp_prompt_init_from_name(const char *name, lamp_prompt_init *out);

/* Trainable scalars of a prompt with these options, after checking them: LAMP R (P + C + 1),
 * PT P C, DPT b (P + C). */
LAMP_API lamp_status lamp_prompt_options_param_count(const lamp_prompt_options *options,
                                                     size_t *count);

/* The token ids an embedding initialisation copies, in prompt order: `count` ids drawn with the
 * seed from 0 .. pool - 1, all distinct when count <= pool (else each id appears count / pool
 * or one more times). lamp_prompt_create uses exactly this. */
LAMP_API lamp_status lamp_prompt_sample_tokens(uint64_t seed, size_t pool, size_t count,
                                               uint32_t *ids);

typedef struct lamp_prompt lamp_prompt;

/* Allocates the parameters and their gradients (zero) on the context's device and initialises
 * the parameters as the options say; the embedding table is only read during the call. A LAMP
 * prompt initialised from P0 calls lamp_svd_randomized with rank R and seed `seed`. */
LAMP_API lamp_status lamp_prompt_create(lamp_context *ctx, const lamp_prompt_options *options,
                                        lamp_prompt **out);

/* Waits for queued work and frees the prompt's buffers. NULL is accepted. */
LAMP_API void lamp_prompt_release(lamp_prompt *prompt);

/* The options the prompt was created with (embedding set to NULL). */
LAMP_API lamp_status lamp_prompt_get_options(const lamp_prompt *prompt,
                                             lamp_prompt_options *options);

/* Rows P' = ceil(P / s) and width C of the prompt that forward produces. */
LAMP_API lamp_status lamp_prompt_output_shape(const lamp_prompt *prompt, size_t *rows,
                                              size_t *width);

/* out (P', C): the pooled prompt. f32 with unit element stride; any row stride, so it can be a
 * view into a larger (T, C) input buffer. Overwrites out. */
LAMP_API lamp_status lamp_prompt_forward(lamp_prompt *prompt, lamp_tensor *out);

/* dprompt (P', C): dL/d(out) of the last forward (same layout rules as out). Accumulates (+=)
 * the parameter gradients: LAMP, with G = dprompt and pool_s(U) the pooled U,
 *   dU += pool_s^T (G Vt^T) diag(q),  dq_k += pool_s(U)[:, k] . (G Vt^T)[:, k],
 *   dVt += diag(q) pool_s(U)^T G;
 * PT dP += pool_s^T G; DPT dA += pool_s^T (G B^T), dB += pool_s(A)^T G. */
LAMP_API lamp_status lamp_prompt_backward(lamp_prompt *prompt, const lamp_tensor *dprompt);

/* Sets every gradient to zero. */
LAMP_API lamp_status lamp_prompt_zero_grad(lamp_prompt *prompt);

/* Views of the trainable tensors and their gradients, in the order U, q, V (LAMP), P (PT),
 * A, B (DPT); `*count` is their number (<= LAMP_PROMPT_MAX_PARAMS). Shapes: U ne = {R, P},
 * q ne = {R}, V ne = {R, C} with strides {4 C, 4} (it is stored as Vt (R, C)), P ne = {C, P},
 * A ne = {R, P}, B ne = {C, R}. The views stay valid until the prompt is released. */
LAMP_API lamp_status lamp_prompt_params(lamp_prompt *prompt, lamp_param *params, size_t capacity,
                                        size_t *count);

/* Trainable scalars of this prompt. */
LAMP_API lamp_status lamp_prompt_param_count(const lamp_prompt *prompt, size_t *count);

/* Writes the parameters and the hyper-parameters (as metadata) to a safetensors file,
 * atomically. Tensors, shapes slowest first: LAMP "U" [P, R], "q" [R], "V" [C, R]; PT "P" [P, C];
 * DPT "A" [P, b], "B" [b, C]. Metadata (decimal strings): "lamp.format" = "lamp-prompt",
 * "lamp.version" = "1", "lamp.method" (lamp_prompt_method_name), "lamp.length" (P),
 * "lamp.width" (C), "lamp.rank" (the LAMP rank, the DPT bottleneck, 0 for PT), "lamp.pool" (s),
 * "lamp.seed". Gradients are not saved. */
LAMP_API lamp_status lamp_prompt_save(lamp_prompt *prompt, const char *path);

/* Replaces the parameters with those of a file written by lamp_prompt_save. The file is read
 * and checked whole before anything changes. Errors name the field or tensor:
 *   LAMP_ERR_SHAPE     another method, P, C, rank (or bottleneck), pooling window, or a tensor
 *                      of another shape than this prompt's;
 *   LAMP_ERR_FORMAT    not a lamp prompt file (metadata missing), a tensor count or dtype that
 *                      does not fit, or a corrupt or truncated safetensors file;
 *   LAMP_ERR_NOT_FOUND a tensor name missing;  LAMP_ERR_IO  the file cannot be read.
 * Gradients are left alone. */
LAMP_API lamp_status lamp_prompt_load(lamp_prompt *prompt, const char *path);

/* Average pooling along dimension 1 (tokens) of f32 tensors x (B, T, C) and y (B, T', C),
 * T' = ceil(T / s), window and stride s; ne[3] must be 1, strides are free. Overwrites y. */
LAMP_API lamp_status lamp_pool_avg_forward(lamp_context *ctx, lamp_tensor *y, const lamp_tensor *x,
                                           size_t s);

/* dx (B, T, C) from dy (B, T', C): each row of dy spread evenly over its window. With
 * `accumulate` nonzero adds to dx (+=), else overwrites it. */
LAMP_API lamp_status lamp_pool_avg_backward(lamp_context *ctx, lamp_tensor *dx,
                                            const lamp_tensor *dy, size_t s, int accumulate);

#ifdef __cplusplus
}
#endif

#endif
