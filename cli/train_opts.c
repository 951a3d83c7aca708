/* Flags of the training commands: one table drives parsing, the help text, and the run
 * options stored in checkpoints. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

typedef enum { T_STR, T_LONG, T_DBL, T_FLAG } tr_type;

typedef struct tr_flag {
  const char *name; /* without the leading "--" */
  tr_type type;
  size_t offset, size;
  int cmds; /* TR_CMD_* that accept it */
  const char *arg, *help;
} tr_flag;

#define F(field) offsetof(tr_opts, field), sizeof(((tr_opts *)0)->field)
#define ALL (TR_CMD_TRAIN | TR_CMD_EVAL | TR_CMD_PREDICT)
#define TRN TR_CMD_TRAIN
#define EV (TR_CMD_TRAIN | TR_CMD_EVAL)
#define INF (TR_CMD_EVAL | TR_CMD_PREDICT)

static const tr_flag tr_flags[] = {
    {"model", T_STR, F(model), ALL, "PATH", "GGUF file or Hugging Face folder [models/SmolLM2-135M-Instruct.Q4_1.gguf]"},
    {"task", T_STR, F(task), ALL, "NAME", "sst2 rte mrpc cola boolq cb copa wic, or custom [sst2]"},
    {"data-dir", T_STR, F(data_dir), ALL, "DIR", "data folder [$LAMP_DATA_DIR, ../shared/data, data]"},
    {"train-file", T_STR, F(train_file), TRN, "FILE", "train split [<data>/<task>/train.*]"},
    {"dev-file", T_STR, F(dev_file), EV, "FILE", "dev split [<data>/<task>/dev.tsv or val.jsonl]"},
    {"format", T_STR, F(format), ALL, "F", "custom task: tsv, csv or jsonl [by the file's extension]"},
    {"fields", T_STR, F(fields), ALL, "A,B", "custom task: the text fields (header names or JSON keys)"},
    {"label-field", T_STR, F(label_field), ALL, "NAME", "custom task: the label's column or key [label]"},
    {"labels", T_STR, F(labels), ALL, "V1,V2..", "custom task: the label values in class order"},
    {"metric", T_STR, F(metric), ALL, "M", "custom task: accuracy, f1, mcc or macro_f1 [accuracy]"},
    {"template", T_STR, F(template_text), ALL, "TEXT", "text template, {field} placeholders, \\n escapes [the task's]"},
    {"words", T_STR, F(words), ALL, "W1|W2..", "label words in class order, '|' between [the task's]"},
    {"max-tokens", T_LONG, F(max_tokens), ALL, "N", "longest input; longer texts keep their end [256]"},
    {"bos", T_FLAG, F(bos), ALL, NULL, "put the BOS token first"},
    {"method", T_STR, F(method), TRN, "M", "lamp, pt or dpt [lamp]"},
    {"length", T_LONG, F(length), TRN, "L", "prompt tokens before pooling [100]"},
    {"rank", T_LONG, F(rank), TRN, "R", "LAMP rank [8]"},
    {"bottleneck", T_LONG, F(bottleneck), TRN, "B", "DPT bottleneck [10]"},
    {"pool", T_LONG, F(pool), TRN, "S", "pooling window [2 for lamp, 1 for pt and dpt]"},
    {"init", T_STR, F(init), TRN, "I", "embedding or uniform [embedding; dpt: uniform]"},
    {"lr", T_DBL, F(lr), TRN, "X", "peak learning rate [0.03]"},
    {"warmup", T_LONG, F(warmup), TRN, "N", "warm-up steps [0]"},
    {"schedule", T_STR, F(schedule), TRN, "S", "constant, linear or cosine decay [linear]"},
    {"min-lr", T_DBL, F(min_lr), TRN, "X", "decay floor as a fraction of the peak [0]"},
    {"weight-decay", T_DBL, F(weight_decay), TRN, "X", "AdamW decoupled weight decay [1e-5]"},
    {"beta1", T_DBL, F(beta1), TRN, "X", "AdamW beta1 [0.9]"},
    {"beta2", T_DBL, F(beta2), TRN, "X", "AdamW beta2 [0.999]"},
    {"eps", T_DBL, F(eps), TRN, "X", "AdamW epsilon [1e-8]"},
    {"clip", T_DBL, F(clip), TRN, "X", "global gradient norm clip, 0 = off [1]"},
    {"batch", T_LONG, F(batch), TRN, "N", "examples per micro-batch (per rank under mpirun) [8]"},
    {"accumulate", T_LONG, F(accumulate), TRN, "N", "micro-batches per optimiser step [1]"},
    {"steps", T_LONG, F(steps), TRN, "N", "optimiser steps [300]"},
    {"epochs", T_LONG, F(epochs), TRN, "N", "train this many epochs instead of --steps [0]"},
    {"seed", T_LONG, F(seed), TRN, "N", "prompt initialisation and data order [0]"},
    {"eval-batch", T_LONG, F(eval_batch), ALL, "N", "examples per evaluation batch [16]"},
    {"eval-every", T_LONG, F(eval_every), TRN, "N", "evaluate on dev every N steps, 0 = end only [100]"},
    {"eval-max", T_LONG, F(eval_max), TRN, "N", "dev examples for interval evaluations, 0 = all [200]"},
    {"final-eval-max", T_LONG, F(final_eval_max), TRN, "N", "dev examples for the final evaluation, 0 = all [0]"},
    {"limit", T_LONG, F(final_eval_max), TR_CMD_EVAL, "N", "evaluate the first N examples, 0 = all [0]"},
    {"checkpoint-every", T_LONG, F(ckpt_every), TRN, "N", "checkpoint every N steps [the eval interval, else 100]"},
    {"log-every", T_LONG, F(log_every), TRN, "N", "a progress line every N steps when not on a terminal [10]"},
    {"out", T_STR, F(out), TRN, "DIR", "run folder [runs/<task>-<method>-s<seed>]"},
    {"base-model", T_STR, F(base_model), TRN, "ID", "the adapter's base_model_name_or_path [the model's Hugging Face id]"},
    {"resume", T_FLAG, F(resume), TRN, NULL, "continue the run in --out from its checkpoint"},
    {"stop-after", T_LONG, F(stop_after), TRN, "N", "checkpoint and stop after N steps of this session [0 = no]"},
    {"recompute", T_FLAG, F(recompute), TRN, NULL, "recompute blocks in the backward (less memory, slower)"},
    {"weights", T_STR, F(weights), ALL, "W", "frozen weights on the device: f32, stored (the file's format, expanded before each product, or decoded inside it for generation) or auto (f32 when the memory plan fits) [auto]"},
    {"dry-run", T_FLAG, F(dry_run), TRN, NULL, "print the memory plan (f32 and stored weights, with and without --recompute) and stop"},
    {"checkpoint", T_STR, F(checkpoint), INF, "FILE", "prompt checkpoint (a run's checkpoint.safetensors); its task, template and words unless given, and with another --task that task's template and words"},
    {"adapter", T_STR, F(adapter), INF, "PATH", "a PEFT prompt-tuning adapter (folder or .safetensors)"},
    {"no-prompt", T_FLAG, F(no_prompt), INF, NULL, "the frozen model and verbaliser alone (baseline)"},
    {"no-prompt-cache", T_FLAG, F(no_prompt_cache), INF, NULL, "run the prompt's rows through the model in every batch instead of computing their keys and values once (slower; the same scores to rounding)"},
    {"split", T_STR, F(split), TR_CMD_EVAL, "S", "dev or train [dev]"},
};

#define N_FLAGS (sizeof(tr_flags) / sizeof(tr_flags[0]))

void tr_opts_defaults(tr_opts *o) {
  memset(o, 0, sizeof(*o));
  snprintf(o->model, sizeof(o->model), "models/SmolLM2-135M-Instruct.Q4_1.gguf");
  snprintf(o->task, sizeof(o->task), "sst2");
  snprintf(o->method, sizeof(o->method), "lamp");
  snprintf(o->schedule, sizeof(o->schedule), "linear");
  snprintf(o->split, sizeof(o->split), "dev");
  snprintf(o->weights, sizeof(o->weights), "auto");
  o->length = 100;
  o->rank = 8;
  o->bottleneck = 10;
  o->lr = 0.03;
  o->weight_decay = 1e-5;
  o->beta1 = 0.9;
  o->beta2 = 0.999;
  o->eps = 1e-8;
  o->clip = 1.0;
  o->batch = 8;
  o->accumulate = 1;
  o->eval_batch = 16;
  o->steps = 300;
  o->eval_every = 100;
  o->eval_max = 200;
  o->log_every = 10;
  o->max_tokens = 256;
}

/* "\n", "\t" and "\\" in flag values become the characters, so templates fit on a command line. */
static void tr_unescape(char *s) {
  char *w = s;
  for (const char *r = s; *r; r++) {
    if (r[0] == '\\' && (r[1] == 'n' || r[1] == 't' || r[1] == '\\')) {
      *w++ = r[1] == 'n' ? '\n' : r[1] == 't' ? '\t' : '\\';
      r++;
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
}

static int tr_set(tr_opts *o, const tr_flag *f, const char *value, const char *cmd) {
  char *field = (char *)o + f->offset;
  char *end = NULL;
  errno = 0;
  switch (f->type) {
    case T_STR:
      if (strlen(value) >= f->size) {
        tr_error(cmd, "--%s: value longer than %zu bytes", f->name, f->size - 1);
        return 2;
      }
      memcpy(field, value, strlen(value) + 1);
      if (!strcmp(f->name, "template") || !strcmp(f->name, "words")) tr_unescape(field);
      return 0;
    case T_LONG: {
      long v = strtol(value, &end, 10);
      if (errno || !end || end == value || *end || v < 0) {
        tr_error(cmd, "--%s takes a non-negative integer, not '%s'", f->name, value);
        return 2;
      }
      if (v == 0 && !strcmp(f->name, "pool")) {
        tr_error(cmd, "--pool must be at least 1 (leave it out for the method's default)");
        return 2;
      }
      memcpy(field, &v, sizeof(v));
      return 0;
    }
    case T_DBL: {
      double v = strtod(value, &end);
      if (errno || !end || end == value || *end || !isfinite(v) || v < 0) {
        tr_error(cmd, "--%s takes a non-negative number, not '%s'", f->name, value);
        return 2;
      }
      memcpy(field, &v, sizeof(v));
      return 0;
    }
    case T_FLAG: {
      int v = !strcmp(value, "1") || !strcmp(value, "true");
      memcpy(field, &v, sizeof(v));
      return 0;
    }
  }
  return 2;
}

static const char *tr_cmd_name(int cmd) {
  return cmd == TR_CMD_TRAIN ? "train" : cmd == TR_CMD_EVAL ? "eval" : "predict";
}

int tr_opts_parse(tr_opts *o, int cmd, int argc, char **argv, char **rest, int *n_rest) {
  const char *name = tr_cmd_name(cmd);
  if (n_rest) *n_rest = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--", 2) != 0 || !a[2]) {
      if (!rest || !n_rest) {
        tr_error(name, "unexpected argument '%s'", a);
        return 2;
      }
      rest[(*n_rest)++] = argv[i];
      continue;
    }
    const char *key = a + 2, *eq = strchr(key, '=');
    size_t klen = eq ? (size_t)(eq - key) : strlen(key);
    size_t k = 0;
    while (k < N_FLAGS && !(strlen(tr_flags[k].name) == klen &&
                            !strncmp(tr_flags[k].name, key, klen) && (tr_flags[k].cmds & cmd)))
      k++;
    if (k == N_FLAGS) {
      tr_error(name, "unknown option '%s' (see lamp %s --help)", a, name);
      return 2;
    }
    const tr_flag *f = &tr_flags[k];
    const char *value;
    if (f->type == T_FLAG) {
      value = eq ? eq + 1 : "1";
    } else if (eq) {
      value = eq + 1;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      tr_error(name, "--%s needs a value", f->name);
      return 2;
    }
    int rc = tr_set(o, f, value, name);
    if (rc) return rc;
  }
  return 0;
}

void tr_opts_usage(FILE *out, int cmd) {
  static const char *what[] = {
      "usage: lamp train [options]\n  tune a soft prompt for a frozen model on a task\n",
      "usage: lamp eval --checkpoint FILE | --no-prompt [options]\n"
      "  score a prompt (or the model alone) on a task's dev or train split\n",
      "usage: lamp predict --checkpoint FILE | --no-prompt [options] [TEXT...]\n"
      "  the label of each TEXT, or of each line of stdin when none is given; fields of\n"
      "  multi-field tasks are separated by a tab, in the task's field order\n"};
  fputs(what[cmd == TR_CMD_TRAIN ? 0 : cmd == TR_CMD_EVAL ? 1 : 2], out);
  fputs("\noptions:\n", out);
  for (size_t k = 0; k < N_FLAGS; k++) {
    const tr_flag *f = &tr_flags[k];
    if (!(f->cmds & cmd)) continue;
    char left[64];
    snprintf(left, sizeof(left), "--%s%s%s", f->name, f->arg ? " " : "", f->arg ? f->arg : "");
    fprintf(out, "  %-24s %s\n", left, f->help);
  }
}


/* Splits a comma list into `out` (at most `max`), copying into `store`; returns the count or
 * -1 when it does not fit. */
static int tr_list(const char *text, const char **out, size_t max, char **store, size_t *left) {
  size_t n = 0, len = strlen(text);
  if (!len || len + 1 > *left) return -1;
  char *p = *store;
  memcpy(p, text, len + 1);
  *store += len + 1;
  *left -= len + 1;
  for (;;) {
    if (n == max) return -1;
    out[n++] = p;
    char *comma = strchr(p, ',');
    if (!comma) break;
    *comma = '\0';
    p = comma + 1;
  }
  return (int)n;
}

int tr_opts_custom_task(const tr_opts *o, lamp_task *t, char *store, size_t size) {
  memset(t, 0, sizeof(*t));
  t->name = "custom";
  t->folder = "";
  const char *file = o->train_file[0] ? o->train_file : o->dev_file;
  const char *fmt = o->format;
  if (!fmt[0]) {
    const char *dot = strrchr(file, '.');
    fmt = dot && (!strcmp(dot, ".jsonl") || !strcmp(dot, ".json")) ? "jsonl"
          : dot && !strcmp(dot, ".csv") ? "csv" : "tsv";
  }
  if (lamp_data_format_from_name(fmt, &t->format) != LAMP_OK) {
    tr_error("train", "--format must be tsv, csv or jsonl, not '%s'", fmt);
    return 2;
  }
  if (o->metric[0] && lamp_data_metric_from_name(o->metric, &t->metric) != LAMP_OK) {
    tr_error("train", "--metric must be accuracy, f1, mcc or macro_f1, not '%s'", o->metric);
    return 2;
  }
  int nf = tr_list(o->fields, t->fields, LAMP_DATA_MAX_FIELDS, &store, &size);
  int nl = tr_list(o->labels, t->labels, LAMP_DATA_MAX_LABELS, &store, &size);
  if (nf < 1 || nl < 2) {
    tr_error("train", "--task custom needs --fields (1 to %d names, commas between) and --labels "
             "(2 to %d values in class order)", LAMP_DATA_MAX_FIELDS, LAMP_DATA_MAX_LABELS);
    return 2;
  }
  t->n_fields = (size_t)nf;
  t->n_labels = (size_t)nl;
  t->header = t->format != LAMP_DATA_JSONL && !o->no_header;
  for (size_t f = 0; f < t->n_fields; f++) t->columns[f] = -1;
  t->label_column = -1;
  t->label_field = o->label_field[0] ? o->label_field : "label";
  t->template_text = o->template_text[0] ? o->template_text : NULL;
  return 0;
}

int tr_opts_to_library(const tr_opts *o, const lamp_task *task, const lamp_llm *llm,
                       lamp_classifier_options *co, lamp_trainer_options *to) {
  lamp_classifier_options_init(co, task);
  co->template_text = o->template_text[0] ? o->template_text : NULL;
  co->words = o->words[0] ? o->words : NULL;
  co->max_tokens = (size_t)o->max_tokens;
  co->bos = o->bos;
  co->eval_batch = (size_t)o->eval_batch;
  co->no_prompt_cache = o->no_prompt_cache;
  if (!to) return 0;
  lamp_prompt_method m;
  if (lamp_prompt_method_from_name(o->method, &m) != LAMP_OK) {
    tr_error("train", "--method must be lamp, pt or dpt, not '%s'", o->method);
    return 2;
  }
  lamp_trainer_options_init(to, llm, m);
  lamp_prompt_options *p = &to->prompt;
  p->length = (size_t)o->length;
  p->rank = (size_t)o->rank;
  p->bottleneck = (size_t)o->bottleneck;
  if (o->pool) p->pool = (size_t)o->pool;
  p->seed = (uint64_t)o->seed;
  if (o->init[0] && (lamp_prompt_init_from_name(o->init, &p->init) != LAMP_OK ||
                     p->init == LAMP_PROMPT_INIT_NONE)) {
    tr_error("train", "--init must be embedding or uniform, not '%s'", o->init);
    return 2;
  }
  if (lamp_lr_decay_from_name(o->schedule, &to->decay) != LAMP_OK) {
    tr_error("train", "--schedule must be constant, linear or cosine, not '%s'", o->schedule);
    return 2;
  }
  to->adamw.lr = (float)o->lr;
  to->adamw.beta1 = (float)o->beta1;
  to->adamw.beta2 = (float)o->beta2;
  to->adamw.eps = (float)o->eps;
  to->adamw.weight_decay = (float)o->weight_decay;
  to->warmup = (uint64_t)o->warmup;
  to->min_lr = (float)o->min_lr;
  to->clip = (float)o->clip;
  to->batch = (size_t)o->batch;
  to->accumulate = (size_t)o->accumulate;
  to->steps = (uint64_t)o->steps;
  to->epochs = (uint64_t)o->epochs;
  to->recompute = o->recompute;
  return 0;
}

void tr_opts_from_library(tr_opts *o, const lamp_classifier_options *co,
                          const lamp_trainer_options *to) {
  snprintf(o->task, sizeof(o->task), "%s", co->task->name);
  snprintf(o->template_text, sizeof(o->template_text), "%s", co->template_text ? co->template_text : "");
  snprintf(o->words, sizeof(o->words), "%s", co->words ? co->words : "");
  o->max_tokens = (long)co->max_tokens;
  o->bos = co->bos;
  if (!to) return;
  const lamp_prompt_options *p = &to->prompt;
  snprintf(o->method, sizeof(o->method), "%s", lamp_prompt_method_name(p->method));
  snprintf(o->init, sizeof(o->init), "%s", lamp_prompt_init_name(p->init));
  snprintf(o->schedule, sizeof(o->schedule), "%s", lamp_lr_decay_name(to->decay));
  o->length = (long)p->length;
  o->rank = (long)p->rank;
  o->bottleneck = (long)p->bottleneck;
  o->pool = (long)p->pool;
  o->seed = (long)p->seed;
  o->lr = to->adamw.lr;
  o->beta1 = to->adamw.beta1;
  o->beta2 = to->adamw.beta2;
  o->eps = to->adamw.eps;
  o->weight_decay = to->adamw.weight_decay;
  o->warmup = (long)to->warmup;
  o->min_lr = to->min_lr;
  o->clip = to->clip;
  o->batch = (long)to->batch;
  o->accumulate = (long)to->accumulate;
  o->steps = (long)to->steps;
  o->epochs = (long)to->epochs;
}
