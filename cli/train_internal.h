/* Shared pieces of the training commands (cli/train*.c). Not installed. */
#ifndef LAMP_CLI_TRAIN_INTERNAL_H
#define LAMP_CLI_TRAIN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lamp/data.h"
#include "lamp/lamp.h"
#include "lamp/model.h"

/* ---- options (cli/train_opts.c) --------------------------------------------------------- */

#define TR_STR 512

typedef struct tr_opts {
  char model[TR_STR];       /* GGUF file */
  char task[64];
  char data_dir[TR_STR];    /* "" = search (see tr_find_data_dir) */
  char train_file[TR_STR];  /* "" = <data>/<task folder>/<task train file> */
  char dev_file[TR_STR];
  char template_text[2048]; /* "" = the task's */
  char words[512];          /* label words separated by '|'; "" = the task's */
  char method[8];           /* lamp, pt, dpt */
  char init[16];            /* embedding, uniform */
  char schedule[16];        /* constant, linear, cosine */
  char out[TR_STR];         /* run folder */
  long length, rank, bottleneck, pool; /* pool 0 = the method's default */
  double lr, min_lr, weight_decay, clip, beta1, beta2, eps;
  long batch, eval_batch, steps, epochs, eval_every, eval_max, final_eval_max, ckpt_every;
  long log_every, max_tokens, stop_after, seed, warmup;
  int bos, recompute, resume, no_prompt;
  char checkpoint[TR_STR];  /* eval/predict: the checkpoint to load ("" = none) */
  char split[16];           /* eval: train or dev */
} tr_opts;

/* Which commands take a flag. */
enum { TR_CMD_TRAIN = 1, TR_CMD_EVAL = 2, TR_CMD_PREDICT = 4 };

void tr_opts_defaults(tr_opts *o);
/* Parses flags for `cmd`; positional arguments go to `rest` (may be NULL: then an error).
 * Returns 0, or 2 after printing the problem. `given` (may be NULL) receives, per option-table
 * entry, whether the flag appeared. */
int tr_opts_parse(tr_opts *o, int cmd, int argc, char **argv, char **rest, int *n_rest,
                  unsigned char *given);
void tr_opts_usage(FILE *out, int cmd);
/* The options that define a run, as (key, value) strings for a checkpoint's metadata; the
 * caller frees each value and the arrays. */
int tr_opts_serialize(const tr_opts *o, char ***keys, char ***values, size_t *count);
/* Restores run options from metadata written by tr_opts_serialize; returns 0 or prints why. */
int tr_opts_restore(tr_opts *o, const char *(*get)(void *user, const char *key), void *user);
/* Number of option-table entries and the flag name of each (for "cannot change on resume"). */
size_t tr_opts_table_size(void);
const char *tr_opts_flag(size_t index);
int tr_opts_is_run_option(size_t index);

/* ---- the engine (cli/train_run.c) ------------------------------------------------------- */

/* One tokenized example: the prompt text's ids and its class. */
typedef struct tr_item {
  int32_t *ids;   /* the rendered template, truncated to keep its end */
  size_t n;
  int32_t label;
} tr_item;

typedef struct tr_split {
  tr_item *items;
  size_t n;
  size_t tokens; /* sum of n */
} tr_split;

typedef struct tr_eval {
  size_t examples;
  double loss;      /* mean cross-entropy of the gold class (label head) or words (vocab) */
  double accuracy;
  double extra;     /* the task's extra metric (F1, MCC, macro F1), or accuracy */
  const char *extra_name;
} tr_eval;

typedef struct tr_engine {
  tr_opts opts;
  lamp_context *ctx;
  lamp_gguf *gguf;
  lamp_tokenizer *tok;
  lamp_model *model;
  lamp_model_config cfg;
  lamp_model_workspace *ws;
  lamp_prompt *prompt;     /* NULL with no_prompt */
  const lamp_task *task;
  const char *template_text;
  size_t n_labels;                          /* K */
  int32_t *words[LAMP_DATA_MAX_LABELS];     /* label word ids */
  size_t word_len[LAMP_DATA_MAX_LABELS];
  char word_text[LAMP_DATA_MAX_LABELS][128];
  int single;          /* every label word is one token: the label head scores them */
  size_t max_word;     /* longest label word, tokens */
  size_t prompt_rows;  /* P' */
  size_t ws_batch, ws_tokens, ws_outputs;
  /* the prompt's parameters, optimised on the device (train only) */
  size_t n_params;
  lamp_param params[LAMP_PROMPT_MAX_PARAMS];
  size_t param_len[LAMP_PROMPT_MAX_PARAMS];
  uint64_t param_shape[LAMP_PROMPT_MAX_PARAMS][2];
  int param_ndim[LAMP_PROMPT_MAX_PARAMS];
  lamp_adamw *opt;     /* NULL for eval and predict */
  float *host_state;   /* checkpoint I/O: values, then first and second moments */
  size_t trainable;
  /* results of the last enqueued training step, read without waiting (tr_train_collect) */
  float *step_losses[2];
  float step_norm[2];
  cl_event step_events[2][2];
  size_t step_outputs[2];
  unsigned step_slot;  /* slot of the last enqueued step */
  int step_pending;    /* enqueued steps whose results are not collected yet (0 to 2) */
  double sync_s; /* time spent handing the batch to the model (checks, staging, copies) */
  /* scratch for batches */
  int32_t *ids;
  size_t *lengths, *out_seq, *out_pos;
  int32_t *targets;
  float *host_out;
} tr_engine;

/* Prints "lamp <cmd>: <message>" to stderr. */
void tr_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The data folder: the flag, $LAMP_DATA_DIR, ../shared/data, data/, then the same two beside
 * the repository holding the executable; the first that has the task's folder. */
int tr_find_data_dir(const char *cmd, const tr_opts *o, const lamp_task *task, char *out,
                     size_t size);

/* Opens the device, the model, the tokenizer and the verbaliser, and for training or a
 * checkpoint the prompt; sizes the workspace for `max_batch` sequences. Returns 0 or 1. */
int tr_engine_open(tr_engine *e, const char *cmd, const tr_opts *o);
void tr_engine_close(tr_engine *e);

/* Tokenizes a split; `limit` 0 = all. */
int tr_split_load(tr_engine *e, const char *cmd, const char *path, size_t limit, tr_split *s);
void tr_split_free(tr_split *s);
/* One tokenized item from fields given as text (predict). */
int tr_item_from_fields(tr_engine *e, const char *cmd, const char *const *fields, tr_item *it);

/* Enqueues one optimisation step on items[idx[0..count-1]] (forward, backward, clipping,
 * AdamW, reads of the loss and gradient norm that do not wait) and returns without waiting for
 * the device. The only blocking calls are the batch copies of lamp_model_set_tokens and
 * set_outputs, which also wait for the previous step to finish. */
int tr_train_step(tr_engine *e, const char *cmd, const tr_split *s, const size_t *idx,
                  size_t count, float lr_factor);
/* The mean loss and gradient norm (before clipping) of the oldest enqueued step not collected
 * yet, waiting for it if needed; an error when the loss is not finite. At most two steps may be
 * pending: collect one before enqueueing a third. */
int tr_train_collect(tr_engine *e, const char *cmd, double *loss, double *grad_norm);
/* Monotonic seconds. */
double tr_now(void);
/* Scores every item of `s` (first `limit`, 0 = all): per-class scores into `scores`
 * (n x K, may be NULL) and the metrics. */
int tr_evaluate(tr_engine *e, const char *cmd, const tr_split *s, size_t limit, double *scores,
                tr_eval *out);

/* Checkpoints: parameters, moments, step and run options in one safetensors file. */
int tr_checkpoint_save(tr_engine *e, const char *cmd, const char *path, uint64_t step,
                       uint64_t epoch, uint64_t batch_in_epoch);
/* Reads the run options of a checkpoint into `o` (before tr_engine_open). */
int tr_checkpoint_options(const char *cmd, const char *path, tr_opts *o);
int tr_checkpoint_load(tr_engine *e, const char *cmd, const char *path, uint64_t *step,
                       uint64_t *epoch, uint64_t *batch_in_epoch);
/* The pooled prompt as a Hugging Face PEFT prompt-tuning adapter in folder `dir`. */
int tr_export_peft(tr_engine *e, const char *cmd, const char *dir);

/* Device memory lamp holds for this run: weights, workspace, prompt parameters, gradients and
 * AdamW moments. */
size_t tr_device_bytes(const tr_engine *e);

/* ---- plot (cli/svg.c) ------------------------------------------------------------------- */

/* Writes an SVG with two panels sharing the step axis: training loss (raw and a moving
 * average) and dev score. Returns 0 or -1 (errno set). */
int tr_svg_plot(const char *path, const char *title, const double *loss_step,
                const double *loss, size_t n_loss, const double *eval_step,
                const double *eval_acc, size_t n_eval);

#endif
