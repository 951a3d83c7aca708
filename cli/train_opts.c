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
  int cmds;   /* TR_CMD_* that accept it */
  int run;    /* defines the run: stored in checkpoints, fixed on resume */
  const char *arg, *help;
} tr_flag;

#define F(field) offsetof(tr_opts, field), sizeof(((tr_opts *)0)->field)
#define ALL (TR_CMD_TRAIN | TR_CMD_EVAL | TR_CMD_PREDICT)
#define TRN TR_CMD_TRAIN
#define EV (TR_CMD_TRAIN | TR_CMD_EVAL)

static const tr_flag tr_flags[] = {
    {"model", T_STR, F(model), ALL, 0, "FILE", "GGUF model [models/SmolLM2-135M-Instruct.Q4_1.gguf]"},
    {"task", T_STR, F(task), ALL, 1, "NAME", "sst2 rte mrpc cola boolq cb copa wic [sst2]"},
    {"data-dir", T_STR, F(data_dir), ALL, 0, "DIR", "data folder [$LAMP_DATA_DIR, ../shared/data, data]"},
    {"train-file", T_STR, F(train_file), TRN, 0, "FILE", "train split [<data>/<task>/train.*]"},
    {"dev-file", T_STR, F(dev_file), EV, 0, "FILE", "dev split [<data>/<task>/dev.tsv or val.jsonl]"},
    {"template", T_STR, F(template_text), ALL, 1, "TEXT", "text template, {field} placeholders, \\n escapes [the task's]"},
    {"words", T_STR, F(words), ALL, 1, "W1|W2..", "label words in class order, '|' between [the task's]"},
    {"max-tokens", T_LONG, F(max_tokens), ALL, 1, "N", "longest input; longer texts keep their end [256]"},
    {"bos", T_FLAG, F(bos), ALL, 1, NULL, "put the BOS token first"},
    {"method", T_STR, F(method), TRN, 1, "M", "lamp, pt or dpt [lamp]"},
    {"length", T_LONG, F(length), TRN, 1, "L", "prompt tokens before pooling [100]"},
    {"rank", T_LONG, F(rank), TRN, 1, "R", "LAMP rank [8]"},
    {"bottleneck", T_LONG, F(bottleneck), TRN, 1, "B", "DPT bottleneck [10]"},
    {"pool", T_LONG, F(pool), TRN, 1, "S", "pooling window [2 for lamp, 1 for pt and dpt]"},
    {"init", T_STR, F(init), TRN, 1, "I", "embedding or uniform [embedding; dpt: uniform]"},
    {"lr", T_DBL, F(lr), TRN, 1, "X", "peak learning rate [0.03]"},
    {"warmup", T_LONG, F(warmup), TRN, 1, "N", "warm-up steps [0]"},
    {"schedule", T_STR, F(schedule), TRN, 1, "S", "constant, linear or cosine decay [linear]"},
    {"min-lr", T_DBL, F(min_lr), TRN, 1, "X", "decay floor as a fraction of the peak [0]"},
    {"weight-decay", T_DBL, F(weight_decay), TRN, 1, "X", "AdamW decoupled weight decay [1e-5]"},
    {"beta1", T_DBL, F(beta1), TRN, 1, "X", "AdamW beta1 [0.9]"},
    {"beta2", T_DBL, F(beta2), TRN, 1, "X", "AdamW beta2 [0.999]"},
    {"eps", T_DBL, F(eps), TRN, 1, "X", "AdamW epsilon [1e-8]"},
    {"clip", T_DBL, F(clip), TRN, 1, "X", "global gradient norm clip, 0 = off [1]"},
    {"batch", T_LONG, F(batch), TRN, 1, "N", "examples per step [8]"},
    {"steps", T_LONG, F(steps), TRN, 1, "N", "optimiser steps [300]"},
    {"epochs", T_LONG, F(epochs), TRN, 1, "N", "train this many epochs instead of --steps [0]"},
    {"seed", T_LONG, F(seed), TRN, 1, "N", "prompt initialisation and data order [0]"},
    {"eval-batch", T_LONG, F(eval_batch), ALL, 0, "N", "examples per evaluation batch [16]"},
    {"eval-every", T_LONG, F(eval_every), TRN, 0, "N", "evaluate on dev every N steps, 0 = end only [100]"},
    {"eval-max", T_LONG, F(eval_max), TRN, 0, "N", "dev examples for interval evaluations, 0 = all [200]"},
    {"final-eval-max", T_LONG, F(final_eval_max), TRN, 0, "N", "dev examples for the final evaluation, 0 = all [0]"},
    {"limit", T_LONG, F(final_eval_max), TR_CMD_EVAL, 0, "N", "evaluate the first N examples, 0 = all [0]"},
    {"checkpoint-every", T_LONG, F(ckpt_every), TRN, 0, "N", "checkpoint every N steps [the eval interval, else 100]"},
    {"log-every", T_LONG, F(log_every), TRN, 0, "N", "a progress line every N steps when not on a terminal [10]"},
    {"out", T_STR, F(out), TRN, 0, "DIR", "run folder [runs/<task>-<method>-s<seed>]"},
    {"resume", T_FLAG, F(resume), TRN, 0, NULL, "continue the run in --out from its checkpoint"},
    {"stop-after", T_LONG, F(stop_after), TRN, 0, "N", "checkpoint and stop after N steps of this session [0 = no]"},
    {"recompute", T_FLAG, F(recompute), TRN, 0, NULL, "recompute blocks in the backward (less memory, slower)"},
    {"checkpoint", T_STR, F(checkpoint), TR_CMD_EVAL | TR_CMD_PREDICT, 0, "FILE", "prompt checkpoint (a run's checkpoint.safetensors)"},
    {"no-prompt", T_FLAG, F(no_prompt), TR_CMD_EVAL | TR_CMD_PREDICT, 0, NULL, "the frozen model and verbaliser alone (baseline)"},
    {"split", T_STR, F(split), TR_CMD_EVAL, 0, "S", "dev or train [dev]"},
};

#define N_FLAGS (sizeof(tr_flags) / sizeof(tr_flags[0]))

size_t tr_opts_table_size(void) { return N_FLAGS; }
const char *tr_opts_flag(size_t index) { return index < N_FLAGS ? tr_flags[index].name : NULL; }
int tr_opts_is_run_option(size_t index) { return index < N_FLAGS && tr_flags[index].run; }

void tr_opts_defaults(tr_opts *o) {
  memset(o, 0, sizeof(*o));
  snprintf(o->model, sizeof(o->model), "models/SmolLM2-135M-Instruct.Q4_1.gguf");
  snprintf(o->task, sizeof(o->task), "sst2");
  snprintf(o->method, sizeof(o->method), "lamp");
  snprintf(o->schedule, sizeof(o->schedule), "linear");
  snprintf(o->split, sizeof(o->split), "dev");
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

int tr_opts_parse(tr_opts *o, int cmd, int argc, char **argv, char **rest, int *n_rest,
                  unsigned char *given) {
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
    if (given) given[k] = 1;
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

static int tr_format(const tr_opts *o, const tr_flag *f, char *buf, size_t size) {
  const char *field = (const char *)o + f->offset;
  switch (f->type) {
    case T_STR: return snprintf(buf, size, "%s", field);
    case T_LONG: {
      long v;
      memcpy(&v, field, sizeof(v));
      return snprintf(buf, size, "%ld", v);
    }
    case T_DBL: {
      double v;
      memcpy(&v, field, sizeof(v));
      return snprintf(buf, size, "%.17g", v);
    }
    case T_FLAG: {
      int v;
      memcpy(&v, field, sizeof(v));
      return snprintf(buf, size, "%d", v);
    }
  }
  return -1;
}

int tr_opts_serialize(const tr_opts *o, char ***keys, char ***values, size_t *count) {
  size_t n = 0;
  for (size_t k = 0; k < N_FLAGS; k++) n += tr_flags[k].run;
  char **ks = calloc(n, sizeof(char *)), **vs = calloc(n, sizeof(char *));
  if (!ks || !vs) goto oom;
  size_t i = 0;
  for (size_t k = 0; k < N_FLAGS; k++) {
    if (!tr_flags[k].run) continue;
    char buf[4096];
    tr_format(o, &tr_flags[k], buf, sizeof(buf));
    ks[i] = malloc(strlen(tr_flags[k].name) + 5);
    vs[i] = malloc(strlen(buf) + 1);
    if (!ks[i] || !vs[i]) {
      i++;
      goto oom_partial;
    }
    sprintf(ks[i], "run.%s", tr_flags[k].name);
    strcpy(vs[i], buf);
    i++;
  }
  *keys = ks;
  *values = vs;
  *count = n;
  return 0;
oom_partial:
  for (size_t j = 0; j < i; j++) {
    free(ks[j]);
    free(vs[j]);
  }
oom:
  free(ks);
  free(vs);
  return -1;
}

int tr_opts_restore(tr_opts *o, const char *(*get)(void *user, const char *key), void *user) {
  for (size_t k = 0; k < N_FLAGS; k++) {
    if (!tr_flags[k].run) continue;
    char key[80];
    snprintf(key, sizeof(key), "run.%s", tr_flags[k].name);
    const char *v = get(user, key);
    if (!v) {
      tr_error("checkpoint", "the checkpoint lacks the run option %s", key);
      return 1;
    }
    /* Stored values are already unescaped: set them verbatim. */
    if (tr_flags[k].type == T_STR) {
      if (strlen(v) >= tr_flags[k].size) {
        tr_error("checkpoint", "run option %s is too long", key);
        return 1;
      }
      memcpy((char *)o + tr_flags[k].offset, v, strlen(v) + 1);
    } else if (tr_set(o, &tr_flags[k], v, "checkpoint")) {
      return 1;
    }
  }
  return 0;
}
