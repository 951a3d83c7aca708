/* The trainer's state, shared by trainer.c and checkpoint.c. Not installed. */
#ifndef LAMP_TRAINER_INTERNAL_H
#define LAMP_TRAINER_INTERNAL_H

#include "train/train_internal.h"

struct lamp_trainer {
  lamp_classifier *cls;
  lamp_context *ctx;
  const lamp_examples *train;
  lamp_trainer_options opts; /* prompt.embedding is NULL: the table is read at create only */
  lamp_prompt *prompt;
  lamp_adamw *opt;
  lamp_param params[LAMP_PROMPT_MAX_PARAMS];
  size_t n_params, param_len[LAMP_PROMPT_MAX_PARAMS];
  size_t trainable, prompt_rows;
  lamp_lr_schedule sched;
  uint64_t total, step, epoch, batch_in_epoch;
  size_t *order, *starts, n_batches;
  uint64_t order_epoch; /* the epoch `order` holds */
  /* the two most recent steps: results read back without waiting */
  float *losses[2];
  float norms[2];
  cl_event events[2][2];
  size_t outputs[2];
  lamp_step_result results[2];
  double started[2];
  double last_done;
  unsigned slot;  /* slot of the last enqueued step */
  size_t pending; /* enqueued steps not collected (0..2) */
};

size_t lamp__trainer_device_bytes(const lamp_trainer *t);

#endif
