/* The engine's internals shared by the src/train files. Not installed. */
#ifndef LAMP_TRAIN_INTERNAL_H
#define LAMP_TRAIN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lamp/gguf.h"
#include "lamp/train.h"
#include "runtime/internal.h"

struct lamp_llm {
  lamp_context *ctx;
  lamp_model *model;
  lamp_model_weights requested; /* as asked at load: AUTO may change to STORED at plan time */
  size_t classifiers;           /* made on it and not released: a reload would pull the model
                                   from under all but one */
  lamp_tokenizer *tok;
  lamp_model_config config;
  size_t n_ctx;
  char *path, *name, *hf_id;
};

/* One tokenized example: the rendered template's ids and its class (-1 unknown). */
typedef struct lamp__item {
  int32_t *ids;
  size_t n;
  int32_t label;
} lamp__item;

/* Examples belong to no classifier: what they hold is kept in bounds (the longest item, the
 * highest label and id) so that a classifier can check it can score them. */
struct lamp_examples {
  lamp__item *items;
  size_t n, cap, tokens;
  size_t longest;
  int32_t top_label, top_id;
};

lamp_status lamp__examples_fit(lamp_classifier *c, const lamp_examples *ex);

/* The longest label-word list ("w0|w1|...") a checkpoint records; a classifier refuses more. */
#define LAMP__WORDS_MAX 1023

/* Room for a custom task's strings: a copy owned by whoever holds the lamp_task. */
typedef struct lamp__task_copy {
  lamp_task task;
  char *text; /* every string of `task` points into this */
} lamp__task_copy;

lamp_status lamp__task_copy_make(lamp_context *ctx, const lamp_task *src, lamp__task_copy *out);
void lamp__task_copy_free(lamp__task_copy *c);

struct lamp_classifier {
  lamp_llm *llm;
  lamp_context *ctx;
  lamp__task_copy task;
  char *template_text, *words_text;
  size_t max_tokens, eval_batch;
  int bos, no_prompt_cache;
  size_t n_labels;                             /* K */
  int32_t *words[LAMP_DATA_MAX_LABELS];        /* label word ids */
  size_t word_len[LAMP_DATA_MAX_LABELS];
  char *word_text[LAMP_DATA_MAX_LABELS];
  int single;       /* every word is one token: the label head scores them */
  size_t max_word;  /* longest word, tokens */
  /* one workspace for scoring and training batches, grown on demand */
  lamp_model_workspace *ws;
  size_t ws_batch, ws_tokens, ws_outputs, ws_prompt;
  int ws_recompute;
  int32_t *ids, *targets;
  size_t *lengths, *out_seq, *out_pos;
  float *host_out;
  double sync_s; /* the last batch's wait in the model's copies */
};

/* Makes the workspace serve `batch` training examples (0: scoring only) with `prompt_rows`
 * prepended. */
lamp_status lamp__classifier_reserve(lamp_classifier *c, size_t prompt_rows, size_t batch,
                                     int recompute);
/* Lays out items[idx[0..count-1]] for the model: for training (`all_classes` 0) one sequence
 * per item with its gold word; for scoring every class's word. *n_out: the scored positions. */
lamp_status lamp__classifier_batch(lamp_classifier *c, const lamp_examples *ex,
                                   const size_t *idx, size_t count, int all_classes,
                                   int with_targets, size_t *n_out);
lamp_status lamp__classifier_prompt_in(lamp_classifier *c, lamp_prompt *prompt);
/* lamp_classifier_evaluate, with the batches shared out over the ranks of `red` (NULL: none)
 * and their scores gathered, so every rank gets every result; `prompt_cache` nonzero takes the
 * prompt's keys and values from a cache built once (lamp_model_forward_prefixed). */
lamp_status lamp__classifier_evaluate(lamp_classifier *c, lamp_prompt *prompt,
                                      const lamp_examples *ex, size_t limit, double *scores,
                                      int32_t *pred, lamp_metrics *metrics,
                                      const lamp_reducer *red, int prompt_cache);
lamp_model_head lamp__classifier_head(const lamp_classifier *c);

/* With ranks: every rank passes its status `st` of `what` (its cause already recorded when not
 * LAMP_OK) and learns whether all of them succeeded, so that a rank that failed does not leave
 * the others waiting in the next exchange. Returns `st` where it failed, LAMP_ERR_IO where
 * another rank failed or the exchange did, else LAMP_OK. */
lamp_status lamp__reducer_agree(lamp_context *ctx, const lamp_reducer *red, lamp_status st,
                                const char *what);

/* "a|b|c" keys for a checkpoint's metadata. */
#define LAMP__CKPT_FORMAT "lamp-train-checkpoint"

/* The plan of the llm's model file for `shape` in mode `weights`. */
lamp_status lamp__llm_plan(const lamp_llm *llm, const lamp_model_shape *shape,
                           lamp_model_weights weights, lamp_model_plan *plan);

/* Reloads the model's weights in mode `weights` (F32 or STORED); nothing may hold a workspace
 * of the old model. */
lamp_status lamp__llm_set_weights(lamp_llm *llm, lamp_model_weights weights);
/* LAMP_OK while the llm holds a model (a failed reload can leave it none). */
lamp_status lamp__llm_check(const lamp_llm *llm);

/* The workspace shape lamp__classifier_reserve asks for. */
void lamp__classifier_shape(const lamp_classifier *c, size_t prompt_rows, size_t batch,
                            int recompute, lamp_model_shape *shape);

#endif
