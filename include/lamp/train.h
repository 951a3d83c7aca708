/* lamp: the engine. Load a frozen model with its tokenizer (lamp_llm), turn a task's examples
 * into class scores with a verbaliser (lamp_classifier), and tune a prompt on them
 * (lamp_trainer): steps that do not block, evaluation, checkpoints with exact resume, PEFT
 * adapters. The `lamp` tool and the benchmarks are clients of this header.
 *
 *   lamp_llm_load(ctx, "model.gguf", &llm);                   a GGUF file or a HF folder
 *   lamp_classifier_options_init(&co, task);                  lamp_task_find(ctx, "sst2", ...)
 *   lamp_classifier_create(llm, &co, &cls);
 *   lamp_examples_load(cls, "train.tsv", 0, &train);
 *   lamp_trainer_options_init(&to, llm, LAMP_PROMPT_LAMP);
 *   lamp_trainer_create(cls, &to, train, &tr);
 *   lamp_trainer_fit(tr, &fit);                               or lamp_trainer_step / _collect
 *   lamp_trainer_evaluate(tr, dev, 0, &metrics);
 *
 * Errors: every call returns a lamp_status; the detail (the file and line, the option, the
 * kernel) is in lamp_context_error() of the context the objects were made on. Every object has
 * its release function; NULL is accepted there. Objects made from an lamp_llm must be released
 * before it. None of this is thread-safe on one context; separate contexts share nothing. */
#ifndef LAMP_TRAIN_H
#define LAMP_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "lamp/context.h"
#include "lamp/data.h"
#include "lamp/export.h"
#include "lamp/model.h"
#include "lamp/optim.h"
#include "lamp/prompt.h"
#include "lamp/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- a frozen model and its tokenizer ----------------------------------------------------- */

typedef struct lamp_llm lamp_llm;

typedef struct lamp_llm_info {
  const char *path;  /* as given to lamp_llm_load */
  const char *name;  /* display name: GGUF general.name, else the file or folder name */
  const char *hf_id; /* Hugging Face model id when the file names one (GGUF
                        general.source.huggingface.repository or general.base_model.0.repo_url,
                        a folder's config.json _name_or_path), else NULL */
  size_t n_ctx;      /* trained context length, 0 when unknown */
  lamp_tokenizer_special special; /* BOS, EOS, ... ids (-1 when none) */
  lamp_model_config config;
} lamp_llm_info;

/* `path` is a GGUF file (weights dequantised to f32, tokenizer from its metadata) or a Hugging
 * Face folder (config.json, model.safetensors or its shards, tokenizer.json; BOS and EOS from
 * config.json). A missing path, a folder without those files or a damaged file is an error
 * naming it. */
LAMP_API lamp_status lamp_llm_load(lamp_context *ctx, const char *path, lamp_llm **out);
/* lamp_llm_load with the model's options (NULL: defaults). lamp_llm_load loads in mode AUTO,
 * for the weights alone; a trainer then plans its workspace and, when the model was loaded in
 * AUTO and the f32 weights leave no room for it, reloads them in the storage format
 * (lamp_trainer_create). The shape in the options is not used: the trainer plans its own. */
LAMP_API lamp_status lamp_llm_load_with(lamp_context *ctx, const char *path,
                                        const lamp_model_options *options, lamp_llm **out);
/* The mode asked for at load (AUTO, F32 or STORED); lamp_model_get_weights says the one in use. */
LAMP_API lamp_model_weights lamp_llm_requested_weights(const lamp_llm *llm);
/* Release the llm's classifiers (and what they made) first. */
LAMP_API void lamp_llm_release(lamp_llm *llm);
LAMP_API lamp_context *lamp_llm_context(const lamp_llm *llm);
LAMP_API lamp_model *lamp_llm_model(const lamp_llm *llm);
LAMP_API lamp_tokenizer *lamp_llm_tokenizer(const lamp_llm *llm);
/* Strings stay valid until lamp_llm_release. */
LAMP_API lamp_status lamp_llm_get_info(const lamp_llm *llm, lamp_llm_info *info);

/* ---- metrics ------------------------------------------------------------------------------ */

typedef struct lamp_metrics {
  size_t examples;
  double loss;     /* mean cross-entropy of the gold class over the K class scores */
  double accuracy;
  double f1;       /* F1 of class 1 (two classes), else 0 */
  double mcc;      /* Matthews correlation (two classes), else 0 */
  double macro_f1; /* mean F1 over the classes */
  lamp_data_metric metric; /* the task's metric */
  double score;    /* its value (accuracy, f1, mcc or macro_f1) */
} lamp_metrics;

/* Metrics of `n` predictions against gold classes, all in 0..K-1; `loss` is left 0. */
LAMP_API lamp_status lamp_metrics_compute(size_t n_labels, const int32_t *gold,
                                          const int32_t *pred, size_t n,
                                          lamp_data_metric metric, lamp_metrics *out);

/* ---- classifier: template, verbaliser, scoring -------------------------------------------- */

typedef struct lamp_classifier lamp_classifier;

typedef struct lamp_classifier_options {
  const lamp_task *task;     /* a built-in (lamp_task_find) or the caller's (lamp_task_check);
                                copied, so it need not outlive the classifier */
  const char *template_text; /* NULL: the task's */
  const char *words;         /* label words in class order separated by '|'; NULL: the task's */
  size_t max_tokens;         /* longest input in tokens; longer texts keep their end [256] */
  int bos;                   /* nonzero: the BOS token first */
  size_t eval_batch;         /* examples per scoring batch [16] */
  int no_prompt_cache;       /* nonzero: every scoring batch runs the prompt rows through the
                                model again; zero: lamp_classifier_evaluate computes the
                                prompt's keys and values once per call and every batch takes
                                them from a cache (lamp_model_forward_prefixed), the same
                                scores to rounding. Not a run option (checkpoints leave it
                                out) [0] */
} lamp_classifier_options;

LAMP_API void lamp_classifier_options_init(lamp_classifier_options *options,
                                           const lamp_task *task);

/* Checks the template against the task's fields and encodes the label words. When every word
 * is one token, classes are scored by the label head at the answer position; otherwise each
 * class by the log-probability of its whole word (one teacher-forced sequence per class). */
LAMP_API lamp_status lamp_classifier_create(lamp_llm *llm, const lamp_classifier_options *options,
                                            lamp_classifier **out);
LAMP_API void lamp_classifier_release(lamp_classifier *cls);
/* The options it was made with (strings owned by the classifier; words always set). */
LAMP_API lamp_status lamp_classifier_get_options(const lamp_classifier *cls,
                                                 lamp_classifier_options *options);
LAMP_API size_t lamp_classifier_label_count(const lamp_classifier *cls);
/* Class k's label word as given (e.g. " positive") and its length in tokens. */
LAMP_API const char *lamp_classifier_word(const lamp_classifier *cls, size_t k, size_t *tokens);

/* Tokenized examples: each rendered through the template and encoded once. A classifier
 * scores or trains on examples made by another one only when they fit it (no more tokens than
 * its max_tokens, labels within its classes, ids within the model's vocabulary). */
typedef struct lamp_examples lamp_examples;

/* Every example of a file in the task's format (`limit` 0 = all); errors name file:line. */
LAMP_API lamp_status lamp_examples_load(lamp_classifier *cls, const char *path, size_t limit,
                                        lamp_examples **out);
LAMP_API lamp_status lamp_examples_create(lamp_classifier *cls, lamp_examples **out);
/* Appends one example from its fields in the task's order, rendered exactly as a file's
 * examples are (trailing whitespace of each field removed); `label` -1 when unknown. */
LAMP_API lamp_status lamp_examples_add(lamp_classifier *cls, lamp_examples *examples,
                                       const char *const *fields, int32_t label);
/* Appends an example the caller tokenized: `count` ids of the model's vocabulary, scored at the
 * last one (truncated to max_tokens as a rendered text is: its end kept). */
LAMP_API lamp_status lamp_examples_add_tokens(lamp_classifier *cls, lamp_examples *examples,
                                              const int32_t *ids, size_t count, int32_t label);
LAMP_API size_t lamp_examples_count(const lamp_examples *examples);
LAMP_API size_t lamp_examples_tokens(const lamp_examples *examples);
LAMP_API void lamp_examples_release(lamp_examples *examples);

/* Scores the first `limit` examples (0 = all) with `prompt` prepended (NULL: the bare model):
 * class scores (n x K, logits or word log-probabilities, may be NULL), predicted classes (n,
 * may be NULL), and with `metrics` (needs every label known) the task's metrics. Batches hold
 * neighbouring lengths; results are in the examples' order. The prompt's keys and values are
 * computed once per call unless the options set no_prompt_cache. */
LAMP_API lamp_status lamp_classifier_evaluate(lamp_classifier *cls, lamp_prompt *prompt,
                                              const lamp_examples *examples, size_t limit,
                                              double *scores, int32_t *pred,
                                              lamp_metrics *metrics);

/* ---- trainer ------------------------------------------------------------------------------ */

/* Data-parallel training: R processes (ranks) hold the same model, prompt and data; each global
 * batch is cut into R x accumulate micro-batches of `batch` examples in a fixed order, rank r
 * takes micro-batches r A .. r A + A - 1, and the ranks sum their gradients and loss sums
 * through `sum` every step, so every rank takes the same AdamW step as one process would with
 * batch R A B. lamp/mpi.h makes one from an MPI communicator; any other transport can too.
 * A rank whose step, evaluation or checkpoint fails still joins the exchange with its failure
 * marked: it returns its own error, every other rank LAMP_ERR_IO, and no rank takes that step,
 * so the ranks stay in step with each other (a retry on every rank continues the run as if
 * nothing had failed). lamp_trainer_fit also carries a failed collect over to the others. What
 * no exchange can tell the others: a rank that dies, stops calling the trainer, or fails a
 * collect outside lamp_trainer_fit; then the caller ends the group (lamp train calls
 * MPI_Abort on any error). */
typedef struct lamp_reducer {
  size_t rank, size; /* this process among `size` (rank 0 .. size - 1) */
  /* Sums `count` doubles elementwise over all ranks, in place, the same result on every rank;
   * returns 0, or nonzero when the transport failed. */
  int (*sum)(void *user, double *data, size_t count);
  void *user;
} lamp_reducer;

typedef struct lamp_trainer_options {
  lamp_prompt_options prompt; /* method, shape, init, seed (also the data order's seed) */
  lamp_adamw_options adamw;
  lamp_lr_decay decay;        /* learning-rate schedule over the run [linear] */
  uint64_t warmup;            /* warm-up steps [0] */
  float min_lr;               /* decay floor as a fraction of the peak [0] */
  float clip;                 /* global gradient-norm clip, 0 = off [1] */
  size_t batch;               /* examples per micro-batch [8] */
  size_t accumulate;          /* micro-batches per optimiser step and rank [1]: the step's loss
                                 and gradient are those of one batch of accumulate x batch
                                 (x ranks), weighted per scored position (per example with
                                 one-token label words, per word token otherwise) */
  const lamp_reducer *reducer; /* NULL: one process; kept by reference */
  uint64_t steps;             /* optimiser steps [300], or with `epochs` > 0 whole epochs of
                                 global batches */
  uint64_t epochs;
  int recompute;              /* recompute blocks in the backward (less memory) */
} lamp_trainer_options;

/* Defaults for `method` on the model: l = 100, r = 8 (LAMP), bottleneck 10 (DPT), s = 2 for
 * LAMP and 1 otherwise, AdamW at lr 0.03 with weight decay 1e-5, linear decay, clip 1. */
LAMP_API void lamp_trainer_options_init(lamp_trainer_options *options, const lamp_llm *llm,
                                        lamp_prompt_method method);

typedef struct lamp_trainer lamp_trainer;

/* What a trainer with these options takes on the device, from the model file's tensor table
 * and the classifier's batches, before anything is allocated. Bytes. */
typedef struct lamp_trainer_plan {
  lamp_model_plan model;  /* weights, workspace and activations */
  lamp_model_shape shape; /* the workspace the trainer creates */
  uint64_t prompt;        /* the prompt's parameters, their gradients and AdamW's two moments */
  uint64_t total;         /* model.total + prompt */
  int fits;               /* within the device's global memory and largest allocation */
} lamp_trainer_plan;

/* The plan of a trainer on `cls` with `options`, its model in mode `weights` (AUTO: F32 if that
 * fits, else STORED) and options->recompute as given. */
LAMP_API lamp_status lamp_trainer_plan_make(lamp_classifier *cls,
                                            const lamp_trainer_options *options,
                                            lamp_model_weights weights,
                                            lamp_trainer_plan *plan);

/* A prompt initialised from the options (embedding rows of the model for LAMP and PT, by SVD
 * for LAMP), its AdamW state and the epoch order of `train` (kept by reference: it must outlive
 * the trainer). Every label of `train` must be known. First the trainer plans its memory
 * (lamp_trainer_plan_make): when the llm was loaded in mode AUTO with f32 weights that leave
 * no room for the rest, the weights are reloaded in their storage format; a plan that fits in
 * neither mode is LAMP_ERR_OUT_OF_MEMORY with the table and what would make it fit. */
LAMP_API lamp_status lamp_trainer_create(lamp_classifier *cls, const lamp_trainer_options *options,
                                         const lamp_examples *train, lamp_trainer **out);
LAMP_API void lamp_trainer_release(lamp_trainer *trainer);
LAMP_API lamp_prompt *lamp_trainer_prompt(const lamp_trainer *trainer);
LAMP_API lamp_status lamp_trainer_get_options(const lamp_trainer *trainer,
                                              lamp_trainer_options *options);

/* A hash of what data-parallel ranks must share: the run's options (lamp_trainer_save's run.*
 * and task.* metadata), every training example's ids and label, and the prompt's parameters
 * as they are now (at the start they follow from the model's embedding table and the seed).
 * Compare it across ranks before the first step (lamp_mpi_same). */
LAMP_API lamp_status lamp_trainer_fingerprint(lamp_trainer *trainer, uint64_t *fingerprint);

typedef struct lamp_trainer_state {
  uint64_t step;      /* steps enqueued so far (0 at the start) */
  uint64_t total;     /* steps of the run */
  uint64_t epoch;     /* epoch of the next batch */
  uint64_t batch;     /* batch within that epoch */
  size_t batches;     /* batches per epoch */
  size_t pending;     /* enqueued steps not collected yet (0..2) */
  size_t trainable;   /* trainable parameters */
  size_t prompt_rows; /* rows the prompt prepends (after pooling) */
  size_t device_bytes; /* weights, workspace, prompt parameters, gradients, AdamW moments */
} lamp_trainer_state;

LAMP_API lamp_status lamp_trainer_get_state(const lamp_trainer *trainer, lamp_trainer_state *state);

/* Enqueues the next step (prompt forward, model forward and backward, prompt backward, global-
 * norm clipping, AdamW, reads of its loss and gradient norm that do not wait) and returns
 * without waiting for the device; only the batch copies wait for the step before last. With a
 * reducer the step waits for this rank's gradient and sums it with the others' before clipping.
 * At most two steps may be pending: collect one first. Past the last step:
 * LAMP_ERR_INVALID_ARGUMENT; a reducer's failure: LAMP_ERR_IO. */
LAMP_API lamp_status lamp_trainer_step(lamp_trainer *trainer);

typedef struct lamp_step_result {
  uint64_t step;    /* 1-based */
  uint64_t epoch;
  double loss;      /* mean over the step's scored positions (all ranks') */
  double grad_norm; /* global norm before clipping */
  double lr;        /* the learning rate the step used */
  size_t examples, tokens; /* of the global batch */
  double step_s;    /* the mean period of this step and the one before it (the first step:
                       its own), a period running from the end of the previous step (or this
                       step's start) to this step's end: two steps are in flight, and a
                       runtime may see both end at once */
  double host_s;    /* host time enqueueing it, the batch copies' wait and (with ranks) the
                       gradient exchange excluded */
  double exchange_s; /* with ranks: the reducer's sum of the gradients, including the wait for
                        the slowest rank; 0 in one process */
} lamp_step_result;

/* The oldest pending step's result, waiting for the device when needed. A loss that is not
 * finite is LAMP_ERR_NUMERIC (the parameters are then not worth saving). */
LAMP_API lamp_status lamp_trainer_collect(lamp_trainer *trainer, lamp_step_result *result);

/* lamp_classifier_evaluate with the trainer's prompt, always running its rows through the model
 * in every batch (no_prompt_cache set), so that training runs' evaluations keep the numbers
 * they had before the cache. Pending steps are collected first and their results dropped; call
 * collect before when they matter. */
LAMP_API lamp_status lamp_trainer_evaluate(lamp_trainer *trainer, const lamp_examples *examples,
                                           size_t limit, lamp_metrics *metrics);

/* The whole run in the library, as `lamp train` does it: steps two deep, an evaluation every
 * eval_every steps, a checkpoint every checkpoint_every steps and at the end, a callback after
 * each event; a nonzero return from the callback (or `stop_after` steps) checkpoints and stops
 * with LAMP_ERR_CANCELLED. */
typedef enum lamp_fit_event {
  LAMP_FIT_STEP = 0,       /* a step's result (`step`) */
  LAMP_FIT_EVAL = 1,       /* an interval evaluation (`metrics`) */
  LAMP_FIT_CHECKPOINT = 2, /* a checkpoint was written */
} lamp_fit_event;

typedef struct lamp_fit_report {
  lamp_fit_event event;
  uint64_t step;
  const lamp_step_result *result; /* LAMP_FIT_STEP */
  const lamp_metrics *metrics;    /* LAMP_FIT_EVAL */
} lamp_fit_report;

typedef int (*lamp_fit_callback)(void *user, const lamp_fit_report *report);

typedef struct lamp_fit_options {
  const lamp_examples *dev;  /* NULL: no interval evaluations */
  uint64_t eval_every;       /* 0: none */
  size_t eval_max;           /* examples per interval evaluation, 0 = all */
  const char *checkpoint;    /* NULL: none written; with ranks usually rank 0's alone, the
                                others then learn at each checkpoint whether it was written */
  uint64_t checkpoint_every; /* 0: only at the end and on a stop; the same on every rank */
  uint64_t stop_after;       /* stop after this many steps of this call, 0 = no */
  lamp_fit_callback callback;
  void *user;
} lamp_fit_options;

LAMP_API void lamp_fit_options_init(lamp_fit_options *options);
LAMP_API lamp_status lamp_trainer_fit(lamp_trainer *trainer, const lamp_fit_options *options);

/* ---- checkpoints and adapters ------------------------------------------------------------- */

/* One safetensors file, written atomically: the prompt's parameters and AdamW moments, the
 * step, epoch and batch, and every option of the classifier and trainer as "run.<name>"
 * metadata (a custom task as "task.<name>"), plus `count` caller pairs (keys must not start
 * with "run.", "task.", "train." or "lamp."). Pending steps are collected first. */
LAMP_API lamp_status lamp_trainer_save(lamp_trainer *trainer, const char *path,
                                       const char *const *keys, const char *const *values,
                                       size_t count);

typedef struct lamp_checkpoint lamp_checkpoint;

/* Reads a checkpoint's metadata and checks it is one (lamp.format). */
LAMP_API lamp_status lamp_checkpoint_open(lamp_context *ctx, const char *path,
                                          lamp_checkpoint **out);
LAMP_API void lamp_checkpoint_release(lamp_checkpoint *ckpt);
/* A metadata value, or NULL. */
LAMP_API const char *lamp_checkpoint_get(const lamp_checkpoint *ckpt, const char *key);
/* 1 when every tensor carries its checksum (checked on every read, as the values are checked
 * to be finite); 0 for files written before lamp stored checksums, which load unverified. */
LAMP_API int lamp_checkpoint_checksummed(const lamp_checkpoint *ckpt);
/* The options it was trained with; strings and a custom task live in `ckpt`. */
LAMP_API lamp_status lamp_checkpoint_classifier_options(lamp_checkpoint *ckpt,
                                                        lamp_classifier_options *options);
LAMP_API lamp_status lamp_checkpoint_trainer_options(lamp_checkpoint *ckpt, const lamp_llm *llm,
                                                     lamp_trainer_options *options);
/* LAMP_ERR_INVALID_ARGUMENT naming the first run option that differs from the checkpoint's. */
LAMP_API lamp_status lamp_checkpoint_check_options(lamp_checkpoint *ckpt,
                                                   const lamp_classifier_options *cls,
                                                   const lamp_trainer_options *trainer);
/* Restores parameters, moments and position (step, epoch, batch) into a trainer made with the
 * checkpoint's options: the run continues bit for bit as if never stopped. A position this
 * run cannot have (LAMP_ERR_FORMAT), other training examples than the checkpoint's (count and
 * hash, LAMP_ERR_INVALID_ARGUMENT) or a damaged tensor is refused before anything changes. */
LAMP_API lamp_status lamp_trainer_resume(lamp_trainer *trainer, lamp_checkpoint *ckpt);
/* A prompt holding the checkpoint's parameters, for evaluation and prediction. */
LAMP_API lamp_status lamp_checkpoint_prompt(lamp_checkpoint *ckpt, const lamp_llm *llm,
                                            lamp_prompt **out);

/* The prompt after pooling (P' x C) as a Hugging Face PEFT prompt-tuning adapter in folder
 * `dir` (created): adapter_model.safetensors (`prompt_embeddings`) and adapter_config.json.
 * `base_model` is its base_model_name_or_path; NULL takes the model's hf_id, else its name. */
LAMP_API lamp_status lamp_peft_export(const lamp_llm *llm, lamp_prompt *prompt, const char *dir,
                                      const char *base_model);
/* A PEFT prompt-tuning adapter (a folder or its adapter_model.safetensors) as a PT prompt of
 * num_virtual_tokens rows, pool 1, for evaluation, prediction and generation. */
LAMP_API lamp_status lamp_peft_import(const lamp_llm *llm, const char *path, lamp_prompt **out);

#ifdef __cplusplus
}
#endif

#endif
