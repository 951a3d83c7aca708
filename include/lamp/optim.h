/* lamp: training the prompt parameters: AdamW, global-norm gradient clipping and learning-rate
 * schedules.
 *
 * The optimiser works on a list of lamp_param (a trainable tensor and its gradient, e.g. from
 * lamp_prompt_params). Tensors that share a value buffer and a gradient buffer are updated by one
 * kernel launch, so a prompt's parameters take one launch per step. A training step is
 *   lamp_prompt_zero_grad; lamp_prompt_forward; ...model...; lamp_prompt_backward;
 *   lamp_adamw_clip_grad_norm (optional); lamp_adamw_step(factor from lamp_lr_schedule_factor).
 * Everything runs on the context's queue without reading anything back to the host. */
#ifndef LAMP_OPTIM_H
#define LAMP_OPTIM_H

#include <stdint.h>

#include "lamp/export.h"
#include "lamp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One trainable tensor and its gradient. Both are f32 views with the same shape and strides that
 * cover a dense range of their buffers (in any dimension order); the caller owns the buffers. */
typedef struct lamp_param {
  char name[32];     /* "U", "q", "V" for LAMP, "P" for PT, "A", "B" for DPT */
  lamp_tensor value; /* view, does not own its buffer */
  lamp_tensor grad;  /* view, does not own its buffer */
} lamp_param;

typedef struct lamp_adamw_options {
  float lr;           /* base learning rate of every tensor [1e-2]; per tensor: set_tensor */
  float beta1;        /* [0.9] */
  float beta2;        /* [0.999] */
  float eps;          /* [1e-8] */
  float weight_decay; /* decoupled, as in AdamW [0.01] */
} lamp_adamw_options;

LAMP_API void lamp_adamw_options_init(lamp_adamw_options *options);

typedef struct lamp_adamw lamp_adamw;

/* An optimiser for `count` parameters (copied; the tensors must outlive the optimiser). Allocates
 * the first and second moments, zero, in one device buffer. */
LAMP_API lamp_status lamp_adamw_create(lamp_context *ctx, const lamp_param *params, size_t count,
                                       const lamp_adamw_options *options, lamp_adamw **out);

/* Gives parameter `index` its own learning rate and weight decay (e.g. a larger rate for q). */
LAMP_API lamp_status lamp_adamw_set_tensor(lamp_adamw *opt, size_t index, float lr,
                                           float weight_decay);

/* One update of every parameter with learning rate (tensor rate) * `lr_factor`, the factor
 * normally from lamp_lr_schedule_factor. Overwrites the values and moments in place; reads the
 * gradients only. Increments the step count used for bias correction. */
LAMP_API lamp_status lamp_adamw_step(lamp_adamw *opt, float lr_factor);

/* Updates done so far. */
LAMP_API lamp_status lamp_adamw_step_count(const lamp_adamw *opt, uint64_t *steps);

/* Sets the update count, e.g. when restoring a checkpoint together with the moments: the next
 * lamp_adamw_step bias-corrects as update `steps` + 1. */
LAMP_API lamp_status lamp_adamw_set_step_count(lamp_adamw *opt, uint64_t steps);

/* Views of the first (`m`) and second (`v`) moments of parameter `index` (either may be NULL),
 * with the parameter's shape and strides: lamp_tensor_download of a moment lists its elements in
 * the order lamp_tensor_download of the parameter's value does, and lamp_tensor_upload in that
 * order restores them. Saving the values, both moments and the step count, then restoring them
 * into a fresh optimiser over the same parameter list, continues bit for bit as if never
 * stopped. The views do not own their buffer and die with the optimiser. */
LAMP_API lamp_status lamp_adamw_moments(const lamp_adamw *opt, size_t index, lamp_tensor *m,
                                        lamp_tensor *v);

/* Scales every gradient by min(1, max_norm / (norm + 1e-6)), norm being the L2 norm of all the
 * gradients together: one reduction and one scaling launch per buffer, and the norm stays on the
 * device. A non-finite norm is not an error here (checking would need a read-back): read it with
 * lamp_adamw_grad_norm when you want to skip such steps. */
LAMP_API lamp_status lamp_adamw_clip_grad_norm(lamp_adamw *opt, float max_norm);

/* The norm computed by the last lamp_adamw_clip_grad_norm (0 before any). Waits for the queue
 * and reads one float back. */
LAMP_API lamp_status lamp_adamw_grad_norm(lamp_adamw *opt, float *norm);

/* A view of the one f32 on the device where lamp_adamw_clip_grad_norm leaves the norm, for a
 * read that does not wait (e.g. clEnqueueReadBuffer with CL_FALSE on the context's queue). */
LAMP_API lamp_status lamp_adamw_grad_norm_tensor(const lamp_adamw *opt, lamp_tensor *norm);

/* Waits for queued work and frees the moments. NULL is accepted. */
LAMP_API void lamp_adamw_release(lamp_adamw *opt);

/* Learning-rate schedules, on the host: a factor in [0, 1] that multiplies the base rates. */
typedef enum lamp_lr_decay {
  LAMP_LR_CONSTANT = 0, /* 1 after warm-up */
  LAMP_LR_LINEAR = 1,   /* from 1 down to min_factor at total_steps */
  LAMP_LR_COSINE = 2,   /* half a cosine from 1 down to min_factor at total_steps */
} lamp_lr_decay;

/* "constant", "linear", "cosine"; NULL for anything else. */
LAMP_API const char *lamp_lr_decay_name(lamp_lr_decay decay);

/* The decay named `name` as lamp_lr_decay_name spells it, ignoring case; an unknown name is
 * LAMP_ERR_INVALID_ARGUMENT and leaves *out unchanged. */
LAMP_API lamp_status lamp_lr_decay_from_name(const char *name, lamp_lr_decay *out);

typedef struct lamp_lr_schedule {
  lamp_lr_decay decay;
  uint64_t warmup_steps; /* update i (from 0) of the warm-up uses (i + 1) / warmup_steps */
  uint64_t total_steps;  /* decays end here (must exceed warmup_steps); ignored by CONSTANT */
  float min_factor;      /* floor of the decay, in [0, 1] */
} lamp_lr_schedule;

/* The factor for update `step` (counted from 0). After total_steps it stays at min_factor. */
LAMP_API lamp_status lamp_lr_schedule_factor(const lamp_lr_schedule *schedule, uint64_t step,
                                             float *factor);

#ifdef __cplusplus
}
#endif

#endif
