/* The training commands' flags, plot and shared pieces (cli/train*.c, cli/svg.c). Not
 * installed. The engine itself is the library's (lamp/train.h). */
#ifndef LAMP_CLI_TRAIN_INTERNAL_H
#define LAMP_CLI_TRAIN_INTERNAL_H

#include <stddef.h>
#include <stdio.h>

#include "lamp/lamp.h"
#include "lamp/train.h"

#define TR_STR 512

typedef struct tr_opts {
  char model[TR_STR];       /* GGUF file or Hugging Face folder */
  char task[64];            /* a built-in task, or "custom" with the task flags below */
  char data_dir[TR_STR];    /* "" = search (see tr_find_data_dir) */
  char train_file[TR_STR];  /* "" = <data>/<task folder>/<task train file> */
  char dev_file[TR_STR];
  char template_text[2048]; /* "" = the task's */
  char words[512];          /* label words separated by '|'; "" = the task's */
  char format[8], fields[256], label_field[64], labels[256], metric[16]; /* custom task */
  int no_header;
  char method[8];           /* lamp, pt, dpt */
  char init[16];            /* "" = the method's */
  char schedule[16];        /* constant, linear, cosine */
  char out[TR_STR];         /* run folder */
  char base_model[TR_STR];  /* the adapter's base_model_name_or_path; "" = from the model */
  long length, rank, bottleneck, pool; /* pool 0 = the method's default */
  double lr, min_lr, weight_decay, clip, beta1, beta2, eps;
  long batch, accumulate, eval_batch, steps, epochs, eval_every, eval_max, final_eval_max, ckpt_every;
  long log_every, max_tokens, stop_after, seed, warmup;
  int bos, recompute, resume, no_prompt, dry_run;
  int no_prompt_cache;      /* eval/predict: the prompt rows through the model in every batch */
  char weights[16];         /* auto, f32, stored */
  char checkpoint[TR_STR];  /* eval/predict: the checkpoint to load ("" = none) */
  char adapter[TR_STR];     /* eval/predict: a PEFT adapter instead */
  char split[16];           /* eval: train or dev */
} tr_opts;

/* Which commands take a flag. */
enum { TR_CMD_TRAIN = 1, TR_CMD_EVAL = 2, TR_CMD_PREDICT = 4 };

void tr_opts_defaults(tr_opts *o);
/* Parses flags for `cmd`; positional arguments go to `rest` (may be NULL: then an error).
 * Returns 0, or 2 after printing the problem. */
int tr_opts_parse(tr_opts *o, int cmd, int argc, char **argv, char **rest, int *n_rest);
void tr_opts_usage(FILE *out, int cmd);

/* A custom task described by the flags, in `t` (strings point into `o` and `store`). */
int tr_opts_custom_task(const tr_opts *o, lamp_task *t, char *store, size_t size);
/* The library's options from the flags (`task` resolved by the caller); 0 or 2 (printed). */
int tr_opts_to_library(const tr_opts *o, const lamp_task *task, const lamp_llm *llm,
                       lamp_classifier_options *co, lamp_trainer_options *to);
/* The run flags from the library's options (a checkpoint's), so that flags given on the
 * command line can go over them. */
void tr_opts_from_library(tr_opts *o, const lamp_classifier_options *co,
                          const lamp_trainer_options *to);

/* Prints "lamp <cmd>: <message>" to stderr. */
void tr_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Writes an SVG with two panels sharing the step axis: training loss (raw and a moving
 * average) and dev score. Returns 0 or -1 (errno set). */
int tr_svg_plot(const char *path, const char *title, const double *loss_step,
                const double *loss, size_t n_loss, const double *eval_step,
                const double *eval_acc, size_t n_eval);

#endif
