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
  size_t accumulate, ranks, rank; /* A micro-batches per step on each of the ranks */
  size_t global;                  /* examples per global batch: batch x A x ranks */
  size_t *order, *starts, n_batches;
  uint64_t order_epoch; /* the epoch `order` holds */
  /* the two most recent steps: results read back without waiting; one loss read per
   * micro-batch (events[s][1 ..]) after the norm's (events[s][0]) */
  float *losses[2];   /* A x the workspace's outputs */
  float norms[2];
  cl_event *events[2];
  size_t n_events[2];
  size_t outputs[2];  /* this rank's scored positions */
  size_t positions[2]; /* all ranks' */
  int reduced[2];     /* the loss is already summed over the ranks (results[s].loss) */
  double *sums;       /* the reducer's buffer: every gradient, the loss sum, a stop request */
  int stop_request;   /* this rank wants the run to stop (sent with the next step's sums) */
  int stop_agreed;    /* some rank asked: every rank stops after this step */
  lamp_step_result results[2];
  double started[2];
  double last_done;
  double last_period; /* the previous collected step's period (0 before the first) */
  unsigned slot;  /* slot of the last enqueued step */
  size_t pending; /* enqueued steps not collected (0..2) */
};

size_t lamp__trainer_device_bytes(const lamp_trainer *t);

/* Plans the trainer's memory before it allocates: reloads AUTO f32 weights as stored when
 * only that fits, and refuses a plan that fits in no mode with the table and the alternatives. */
lamp_status lamp__trainer_fit(lamp_classifier *cls, const lamp_trainer_options *o);

#endif
