/* lamp train / eval / predict: the training loop, progress, metrics, checkpoints, summary. */
#include "train.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "train_internal.h"

/* Set by SIGINT/SIGTERM; a signal handler can only talk to the loop through a static flag. */
static volatile sig_atomic_t tr_stop_requested = 0;

static void tr_on_signal(int sig) {
  (void)sig;
  tr_stop_requested = 1;
}

static int tr_mkdirs(const char *dir) {
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp)) return -1;
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  return mkdir(tmp, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static void tr_hms(double s, char *out, size_t size) {
  long t = s > 0 && s < 1e9 ? (long)(s + 0.5) : 0;
  snprintf(out, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

static int tr_wants_help(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
  return 0;
}

/* The split's file: the flag, else <data>/<folder>/<file>. */
static int tr_split_path(const char *cmd, const tr_opts *o, const lamp_task *t, int dev,
                         char *out, size_t size) {
  const char *flag = dev ? o->dev_file : o->train_file;
  if (flag[0]) {
    snprintf(out, size, "%s", flag);
    return 0;
  }
  const char *file = dev ? t->dev_file : t->train_file;
  if (!file) {
    tr_error(cmd, "the data for %s has no %s split (see the data folder's SOURCES.md); give "
             "--%s-file", t->name, dev ? "dev" : "train", dev ? "dev" : "train");
    return 1;
  }
  char dir[PATH_MAX];
  if (tr_find_data_dir(cmd, o, t, dir, sizeof(dir))) return 1;
  snprintf(out, size, "%s/%s/%s", dir, t->folder, file);
  return 0;
}

/* ---- metrics file ------------------------------------------------------------------------- */

typedef struct tr_history {
  double *loss_step, *loss, *eval_step, *eval_acc;
  size_t n_loss, n_eval, cap_loss, cap_eval;
} tr_history;

static void tr_history_free(tr_history *h) {
  free(h->loss_step);
  free(h->loss);
  free(h->eval_step);
  free(h->eval_acc);
  memset(h, 0, sizeof(*h));
}

static int tr_push(double **a, double **b, size_t *n, size_t *cap, double x, double y) {
  if (*n == *cap) {
    size_t c = *cap ? 2 * *cap : 256;
    double *na = realloc(*a, c * sizeof(double));
    if (!na) return -1;
    *a = na;
    double *nb = realloc(*b, c * sizeof(double));
    if (!nb) return -1;
    *b = nb;
    *cap = c;
  }
  (*a)[*n] = x;
  (*b)[*n] = y;
  (*n)++;
  return 0;
}

/* Reads metrics.jsonl; keeps lines of steps <= max_step (all when max_step is UINT64_MAX) and,
 * when `rewrite`, writes them back (a resumed run drops what came after its checkpoint). */
static int tr_metrics_read(const char *path, uint64_t max_step, int rewrite, tr_history *h,
                           double *best_acc, double *best_step) {
  FILE *f = fopen(path, "rb");
  if (!f) return errno == ENOENT ? 0 : -1;
  char *kept = NULL;
  size_t n_kept = 0, cap_kept = 0;
  char line[4096];
  while (fgets(line, sizeof(line), f)) {
    size_t len = strlen(line);
    lamp__json *doc = NULL;
    char err[128];
    if (lamp__json_parse(line, len, &doc, err, sizeof(err)) != LAMP_OK) continue;
    double step = lamp__json_number(doc, lamp__json_get(doc, 0, "step"));
    int keep = (uint64_t)step <= max_step;
    if (keep && h) {
      size_t acc = lamp__json_get(doc, 0, "accuracy"), loss = lamp__json_get(doc, 0, "loss");
      int is_eval = lamp__json_get(doc, 0, "split") != LAMP__JSON_NONE;
      if (is_eval && acc != LAMP__JSON_NONE) {
        double a = lamp__json_number(doc, acc);
        tr_push(&h->eval_step, &h->eval_acc, &h->n_eval, &h->cap_eval, step, a);
        if (best_acc && a > *best_acc) {
          *best_acc = a;
          *best_step = step;
        }
      } else if (!is_eval && loss != LAMP__JSON_NONE) {
        tr_push(&h->loss_step, &h->loss, &h->n_loss, &h->cap_loss, step,
                lamp__json_number(doc, loss));
      }
    }
    lamp__json_free(doc);
    if (keep && rewrite) {
      if (n_kept + len + 1 > cap_kept) {
        size_t c = (cap_kept + len + 1) * 2;
        char *k = realloc(kept, c);
        if (!k) break;
        kept = k;
        cap_kept = c;
      }
      memcpy(kept + n_kept, line, len);
      n_kept += len;
    }
  }
  fclose(f);
  int rc = 0;
  if (rewrite) {
    FILE *w = fopen(path, "wb");
    if (!w || (n_kept && fwrite(kept, 1, n_kept, w) != n_kept)) rc = -1;
    if (w && fclose(w) != 0) rc = -1;
  }
  free(kept);
  return rc;
}

static void tr_eval_json(FILE *f, uint64_t step, const char *split, const tr_eval *ev) {
  fprintf(f, "{\"step\": %llu, \"split\": \"%s\", \"examples\": %zu, \"loss\": %.6f, "
             "\"accuracy\": %.6f", (unsigned long long)step, split, ev->examples, ev->loss,
          ev->accuracy);
  if (strcmp(ev->extra_name, "accuracy")) fprintf(f, ", \"%s\": %.6f", ev->extra_name, ev->extra);
  fputs("}\n", f);
  fflush(f);
}

static void tr_eval_print(const char *what, const tr_eval *ev) {
  printf("%s: %zu examples, accuracy %.4f", what, ev->examples, ev->accuracy);
  if (strcmp(ev->extra_name, "accuracy")) printf(", %s %.4f", ev->extra_name, ev->extra);
  printf(", loss %.4f\n", ev->loss);
  fflush(stdout);
}

/* ---- train -------------------------------------------------------------------------------- */

/* Every run option given on a resumed command line must equal the checkpoint's. */
static int tr_check_resume(const tr_opts *stored, const tr_opts *now) {
  char **ka = NULL, **va = NULL, **kb = NULL, **vb = NULL;
  size_t na = 0, nb = 0;
  int rc = 0;
  if (tr_opts_serialize(stored, &ka, &va, &na) || tr_opts_serialize(now, &kb, &vb, &nb)) {
    rc = 1;
  } else {
    for (size_t i = 0; i < na && i < nb; i++)
      if (strcmp(va[i], vb[i])) {
        tr_error("train", "--%s cannot change on --resume (checkpoint: '%s', given: '%s')",
                 ka[i] + 4, va[i], vb[i]);
        rc = 1;
      }
  }
  for (size_t i = 0; i < na; i++) {
    free(ka[i]);
    free(va[i]);
  }
  for (size_t i = 0; i < nb; i++) {
    free(kb[i]);
    free(vb[i]);
  }
  free(ka);
  free(va);
  free(kb);
  free(vb);
  return rc;
}

/* A training step waiting to be reported, and what the reports add up. */
typedef struct tr_step_log {
  uint64_t step, epoch, total;
  double lr;
  size_t tokens;
  double from, host_s; /* its period starts at `from`; host time spent enqueueing it */
  double ended;        /* when the last reported step was seen done */
  int live;
  /* the session so far; its first step (kernel compilation) is not timed */
  uint64_t session_steps, timed_steps;
  double t_start, step_time, host_time, tokens_done;
} tr_step_log;

/* Collects the pending step's loss, waiting until the device has done the step, writes its
 * metrics line and progress; its period ends when the wait returns (lg->ended). */
static int tr_step_report(tr_engine *e, const char *cmd, tr_step_log *lg, FILE *mf, int tty) {
  double loss = 0, gnorm = 0;
  lg->live = 0;
  if (tr_train_collect(e, cmd, &loss, &gnorm)) return 1;
  double done = lg->ended = tr_now();
  double dt = done - lg->from;
  lg->session_steps++;
  if (lg->session_steps > 1) {
    lg->step_time += dt;
    lg->host_time += lg->host_s;
    lg->tokens_done += (double)lg->tokens;
    lg->timed_steps++;
  }
  double tps = lg->timed_steps ? lg->tokens_done / lg->step_time : (double)lg->tokens / dt;
  fprintf(mf, "{\"step\": %llu, \"epoch\": %llu, \"loss\": %.6f, \"lr\": %.6g, "
              "\"grad_norm\": %.6g, \"step_s\": %.4f, \"host_s\": %.4f, \"tokens_per_s\": %.1f}\n",
          (unsigned long long)lg->step, (unsigned long long)lg->epoch, loss, lg->lr, gnorm, dt,
          lg->host_s, (double)lg->tokens / dt);
  fflush(mf);
  char el[32], eta[32];
  double elapsed = tr_now() - lg->t_start;
  tr_hms(elapsed, el, sizeof(el));
  tr_hms(elapsed / (double)lg->session_steps * (double)(lg->total - lg->step), eta, sizeof(eta));
  const tr_opts *o = &e->opts;
  if (tty) {
    fprintf(stderr, "\rstep %llu/%llu  epoch %llu  loss %.4f  lr %.2e  %.0f tok/s  %s  eta %s   ",
            (unsigned long long)lg->step, (unsigned long long)lg->total,
            (unsigned long long)lg->epoch, loss, lg->lr, tps, el, eta);
    fflush(stderr);
  } else if (o->log_every && (lg->step % (uint64_t)o->log_every == 0 || lg->step == lg->total)) {
    printf("step %llu/%llu epoch %llu loss %.4f lr %.2e %.0f tok/s elapsed %s eta %s\n",
           (unsigned long long)lg->step, (unsigned long long)lg->total,
           (unsigned long long)lg->epoch, loss, lg->lr, tps, el, eta);
    fflush(stdout);
  }
  return 0;
}

typedef struct tr_order {
  size_t *order, *starts, n_batches;
  uint64_t epoch;
} tr_order;

static int tr_order_make(tr_order *o, const tr_split *s, size_t batch, uint64_t seed,
                         uint64_t epoch) {
  size_t *lengths = malloc(s->n * sizeof(size_t));
  if (!lengths) return 1;
  for (size_t i = 0; i < s->n; i++) lengths[i] = s->items[i].n;
  lamp_status st = lamp_data_epoch_order(lengths, s->n, batch, seed, epoch, o->order, o->starts,
                                         &o->n_batches);
  free(lengths);
  o->epoch = epoch;
  return st != LAMP_OK;
}

int lamp_cli_train(int argc, char **argv) {
  const char *cmd = "train";
  if (tr_wants_help(argc, argv)) {
    tr_opts_usage(stdout, TR_CMD_TRAIN);
    return 0;
  }
  tr_opts o;
  tr_opts_defaults(&o);
  if (tr_opts_parse(&o, TR_CMD_TRAIN, argc, argv, NULL, NULL, NULL)) return 2;
  if (!o.out[0])
    snprintf(o.out, sizeof(o.out), "runs/%s-%s-s%ld", o.task, o.method, o.seed);
  char ckpt[PATH_MAX + 64], metrics[PATH_MAX + 64], adapter[PATH_MAX + 64];
  snprintf(ckpt, sizeof(ckpt), "%s/checkpoint.safetensors", o.out);
  snprintf(metrics, sizeof(metrics), "%s/metrics.jsonl", o.out);
  snprintf(adapter, sizeof(adapter), "%s/adapter", o.out);
  if (o.resume) {
    tr_opts stored;
    tr_opts_defaults(&stored);
    if (tr_checkpoint_options(cmd, ckpt, &stored)) return 1;
    tr_opts now = stored;
    if (tr_opts_parse(&now, TR_CMD_TRAIN, argc, argv, NULL, NULL, NULL)) return 2;
    if (tr_check_resume(&stored, &now)) return 2;
    snprintf(now.out, sizeof(now.out), "%s", o.out);
    o = now;
  } else if (access(ckpt, F_OK) == 0) {
    tr_error(cmd, "%s already holds a run; give --resume to continue it or another --out", o.out);
    return 2;
  }
  if (o.epochs == 0 && o.steps == 0) {
    tr_error(cmd, "--steps or --epochs must be positive");
    return 2;
  }
  if (tr_mkdirs(o.out)) {
    tr_error(cmd, "cannot create %s: %s", o.out, strerror(errno));
    return 1;
  }

  tr_engine e;
  tr_split train = {0}, dev = {0};
  tr_order ord = {0};
  tr_history hist = {0};
  FILE *mf = NULL;
  int rc = 1;
  char train_path[PATH_MAX + 64], dev_path[PATH_MAX + 64];
  double t_open = tr_now();
  if (tr_engine_open(&e, cmd, &o)) goto done;
  if (!e.prompt) goto done;
  {
    const lamp_task *t = e.task;
    if (tr_split_path(cmd, &o, t, 0, train_path, sizeof(train_path)) ||
        tr_split_path(cmd, &o, t, 1, dev_path, sizeof(dev_path)) ||
        tr_split_load(&e, cmd, train_path, 0, &train) ||
        tr_split_load(&e, cmd, dev_path, 0, &dev))
      goto done;
  }
  ord.order = malloc(train.n * sizeof(size_t));
  ord.starts = malloc((train.n / (size_t)o.batch + 2) * sizeof(size_t));
  if (!ord.order || !ord.starts) goto done;
  if (tr_order_make(&ord, &train, (size_t)o.batch, (uint64_t)o.seed, 0)) goto done;
  uint64_t total = o.epochs ? (uint64_t)o.epochs * ord.n_batches : (uint64_t)o.steps;
  lamp_lr_schedule sched = {LAMP_LR_LINEAR, (uint64_t)o.warmup, total, (float)o.min_lr};
  if (!strcmp(o.schedule, "constant")) sched.decay = LAMP_LR_CONSTANT;
  else if (!strcmp(o.schedule, "cosine")) sched.decay = LAMP_LR_COSINE;
  else if (strcmp(o.schedule, "linear")) {
    tr_error(cmd, "--schedule must be constant, linear or cosine, not '%s'", o.schedule);
    goto done;
  }
  float probe;
  if (lamp_lr_schedule_factor(&sched, 0, &probe) != LAMP_OK || o.min_lr > 1) {
    tr_error(cmd, "the schedule needs --warmup (%ld) below the step count (%llu) and --min-lr "
             "in [0, 1]", o.warmup, (unsigned long long)total);
    goto done;
  }

  uint64_t step = 0, epoch = 0, batch_in_epoch = 0;
  if (o.resume) {
    if (tr_checkpoint_load(&e, cmd, ckpt, &step, &epoch, &batch_in_epoch)) goto done;
    if (tr_metrics_read(metrics, step, 1, NULL, NULL, NULL)) {
      tr_error(cmd, "cannot rewrite %s", metrics);
      goto done;
    }
    if (epoch != ord.epoch && tr_order_make(&ord, &train, (size_t)o.batch, (uint64_t)o.seed, epoch))
      goto done;
    printf("resuming %s at step %llu of %llu\n", o.out, (unsigned long long)step,
           (unsigned long long)total);
  }
  mf = fopen(metrics, o.resume ? "ab" : "wb");
  if (!mf) {
    tr_error(cmd, "cannot write %s: %s", metrics, strerror(errno));
    goto done;
  }
  const lamp_device_info *dev_info = lamp_context_device(e.ctx);
  printf("lamp train: %s on %s, method %s, %zu trainable parameters, prompt %zu rows\n",
         e.task->name, dev_info->name, o.method, e.trainable, e.prompt_rows);
  printf("data: %s (%zu examples), %s (%zu examples); verbaliser", train_path, train.n, dev_path,
         dev.n);
  for (size_t k = 0; k < e.n_labels; k++)
    printf(" '%s'%s", e.word_text[k], e.word_len[k] > 1 ? "(multi-token)" : "");
  printf("\nsteps %llu (%zu batches of %ld per epoch), device memory %.1f MiB, setup %.1f s\n",
         (unsigned long long)total, ord.n_batches, o.batch,
         (double)tr_device_bytes(&e) / 1048576.0, tr_now() - t_open);
  fflush(stdout);

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = tr_on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  int tty = isatty(fileno(stderr));
  long ckpt_every = o.ckpt_every ? o.ckpt_every : o.eval_every ? o.eval_every : 100;
  tr_step_log lg = {0};
  lg.total = total;
  lg.t_start = tr_now();
  int interrupted = 0;
  /* Step n is reported once step n + 1 is queued behind it: the wait for step n's loss and
   * norm (read back without blocking) ends its period and starts step n + 1's, while the device
   * goes straight on. Evaluations, checkpoints, a stop and the last step report at once. */
  while (step < total) {
    if (batch_in_epoch == ord.n_batches) {
      if (tr_order_make(&ord, &train, (size_t)o.batch, (uint64_t)o.seed, ++epoch)) goto done;
      batch_in_epoch = 0;
    }
    const size_t *idx = ord.order + ord.starts[batch_in_epoch];
    size_t count = ord.starts[batch_in_epoch + 1] - ord.starts[batch_in_epoch];
    size_t tokens = 0;
    for (size_t b = 0; b < count; b++) tokens += train.items[idx[b]].n;
    float factor = 1;
    lamp_lr_schedule_factor(&sched, step, &factor);
    double t0 = tr_now();
    if (tr_train_step(&e, cmd, &train, idx, count, factor)) goto done;
    double host_s = tr_now() - t0 - e.sync_s, from = t0;
    if (lg.live) {
      if (tr_step_report(&e, cmd, &lg, mf, tty)) goto done;
      from = lg.ended;
    }
    step++;
    batch_in_epoch++;
    lg.step = step;
    lg.epoch = epoch;
    lg.lr = o.lr * factor;
    lg.tokens = tokens;
    lg.from = from;
    lg.host_s = host_s;
    lg.live = 1;
    int eval_now = o.eval_every && step % (uint64_t)o.eval_every == 0 && step < total;
    int stop_now = tr_stop_requested ||
                   (o.stop_after && lg.session_steps + 1 >= (uint64_t)o.stop_after);
    int ckpt_now = step % (uint64_t)ckpt_every == 0 || stop_now || step == total;
    if ((eval_now || ckpt_now) && tr_step_report(&e, cmd, &lg, mf, tty)) goto done;
    if (eval_now) {
      tr_eval ev;
      if (tr_evaluate(&e, cmd, &dev, (size_t)o.eval_max, NULL, &ev)) goto done;
      if (tty) fputc('\n', stderr);
      tr_eval_json(mf, step, "dev", &ev);
      char what[64];
      snprintf(what, sizeof(what), "step %llu dev", (unsigned long long)step);
      tr_eval_print(what, &ev);
    }
    if (ckpt_now && tr_checkpoint_save(&e, cmd, ckpt, step, epoch, batch_in_epoch)) goto done;
    if (stop_now) {
      interrupted = tr_stop_requested ? 1 : 2;
      break;
    }
  }
  if (tty) fputc('\n', stderr);
  if (interrupted) {
    printf("stopped at step %llu of %llu (%s); checkpoint %s; continue with: lamp train --out %s "
           "--resume\n", (unsigned long long)step, (unsigned long long)total,
           interrupted == 1 ? "interrupted" : "--stop-after", ckpt, o.out);
    rc = interrupted == 1 ? 130 : 0;
    goto done;
  }

  {
    tr_eval ev;
    double t_eval = tr_now();
    if (tr_evaluate(&e, cmd, &dev, (size_t)o.final_eval_max, NULL, &ev)) goto done;
    double eval_s = tr_now() - t_eval;
    tr_eval_json(mf, step, "dev", &ev);
    fclose(mf);
    mf = NULL;
    tr_eval_print("final dev", &ev);
    if (tr_mkdirs(adapter) || tr_export_peft(&e, cmd, adapter)) {
      tr_error(cmd, "cannot export the adapter to %s", adapter);
      goto done;
    }
    double best = -1, best_step = 0;
    tr_metrics_read(metrics, UINT64_MAX, 0, &hist, &best, &best_step);
    char plot[PATH_MAX + 64], title[160], summary[PATH_MAX + 64];
    snprintf(plot, sizeof(plot), "%s/plot.svg", o.out);
    snprintf(title, sizeof(title), "%s, %s (l=%ld, r=%ld, s=%zu), seed %ld", e.task->name,
             o.method, o.length, !strcmp(o.method, "dpt") ? o.bottleneck : o.rank,
             (size_t)(o.pool ? o.pool : !strcmp(o.method, "lamp") ? 2 : 1), o.seed);
    if (tr_svg_plot(plot, title, hist.loss_step, hist.loss, hist.n_loss, hist.eval_step,
                    hist.eval_acc, hist.n_eval))
      tr_error(cmd, "cannot write %s: %s", plot, strerror(errno));
    double mean_step = lg.timed_steps ? lg.step_time / (double)lg.timed_steps : 0;
    double tps = lg.timed_steps ? lg.tokens_done / lg.step_time : 0;
    double host_share = lg.step_time > 0 ? lg.host_time / lg.step_time : 0;
    snprintf(summary, sizeof(summary), "%s/summary.json", o.out);
    FILE *sf = fopen(summary, "wb");
    if (sf) {
      /* the task's own metric, when it has one besides accuracy */
      char extra[96] = "";
      if (strcmp(ev.extra_name, "accuracy"))
        snprintf(extra, sizeof(extra), "\"final_dev_%s\": %.6f, ", ev.extra_name, ev.extra);
      fprintf(sf, "{\"task\": \"%s\", \"method\": \"%s\", \"device\": \"%s\", \"steps\": %llu, "
                  "\"trainable_params\": %zu, \"prompt_rows\": %zu, \"device_memory_bytes\": %zu, "
                  "\"mean_step_s\": %.4f, \"host_enqueue_share\": %.4f, \"tokens_per_s\": %.1f, "
                  "\"final_dev_examples\": %zu, \"final_dev_accuracy\": %.6f, %s"
                  "\"best_dev_accuracy\": %.6f, \"best_dev_step\": %.0f, \"final_eval_s\": %.1f}\n",
              e.task->name, o.method, dev_info->name, (unsigned long long)step, e.trainable,
              e.prompt_rows, tr_device_bytes(&e), mean_step, host_share, tps, ev.examples,
              ev.accuracy, extra, best, best_step, eval_s);
      fclose(sf);
    }
    printf("summary: best dev accuracy %.4f (step %.0f; interval evaluations use --eval-max "
           "examples), final %.4f on %zu examples\n",
           best, best_step, ev.accuracy, ev.examples);
    printf("         %zu trainable parameters, device memory %.1f MiB (weights, workspace, prompt, "
           "optimiser), mean step %.3f s (host enqueueing %.1f%% of it), %.0f tokens/s (this "
           "session, first step excluded)\n",
           e.trainable, (double)tr_device_bytes(&e) / 1048576.0, mean_step, 100 * host_share, tps);
    printf("files:   %s, %s, %s, %s, %s/\n", ckpt, metrics, plot, summary, adapter);
    rc = 0;
  }
done:
  if (mf) fclose(mf);
  tr_history_free(&hist);
  free(ord.order);
  free(ord.starts);
  tr_split_free(&train);
  tr_split_free(&dev);
  tr_engine_close(&e);
  return rc;
}

/* ---- eval and predict --------------------------------------------------------------------- */

/* Options for eval and predict: a checkpoint's run options, then the command line over them. */
static int tr_setup_infer(const char *cmd, int which, int argc, char **argv, tr_opts *o,
                          char **rest, int *n_rest) {
  tr_opts_defaults(o);
  if (tr_opts_parse(o, which, argc, argv, rest, n_rest, NULL)) return 2;
  if (!o->checkpoint[0] && !o->no_prompt) {
    tr_error(cmd, "give --checkpoint FILE, or --no-prompt for the model alone");
    return 2;
  }
  if (o->checkpoint[0] && o->no_prompt) {
    tr_error(cmd, "--checkpoint and --no-prompt exclude each other");
    return 2;
  }
  if (o->checkpoint[0]) {
    char path[TR_STR];
    snprintf(path, sizeof(path), "%s", o->checkpoint);
    tr_opts_defaults(o);
    if (tr_checkpoint_options(cmd, path, o)) return 1;
    if (tr_opts_parse(o, which, argc, argv, rest, n_rest, NULL)) return 2;
  }
  return 0;
}

static int tr_open_infer(const char *cmd, tr_opts *o, tr_engine *e) {
  if (tr_engine_open(e, cmd, o)) return 1;
  if (o->checkpoint[0]) {
    uint64_t a, b, c;
    if (tr_checkpoint_load(e, cmd, o->checkpoint, &a, &b, &c)) return 1;
  }
  return 0;
}

int lamp_cli_eval(int argc, char **argv) {
  const char *cmd = "eval";
  if (tr_wants_help(argc, argv)) {
    tr_opts_usage(stdout, TR_CMD_EVAL);
    return 0;
  }
  tr_opts o;
  int rc = tr_setup_infer(cmd, TR_CMD_EVAL, argc, argv, &o, NULL, NULL);
  if (rc) return rc;
  int dev = !strcmp(o.split, "dev");
  if (!dev && strcmp(o.split, "train")) {
    tr_error(cmd, "--split must be dev or train");
    return 2;
  }
  tr_engine e;
  tr_split s = {0};
  char path[PATH_MAX + 64];
  rc = 1;
  double t0 = tr_now();
  if (tr_open_infer(cmd, &o, &e) || tr_split_path(cmd, &o, e.task, dev, path, sizeof(path)) ||
      tr_split_load(&e, cmd, path, (size_t)o.final_eval_max, &s))
    goto done;
  tr_eval ev;
  double t1 = tr_now();
  if (tr_evaluate(&e, cmd, &s, 0, NULL, &ev)) goto done;
  double t2 = tr_now();
  char what[PATH_MAX + 200];
  snprintf(what, sizeof(what), "%s %s (%s)", e.task->name, o.split,
           o.no_prompt ? "no prompt" : o.checkpoint);
  tr_eval_print(what, &ev);
  printf("device %s, setup %.1f s, evaluation %.1f s (%.1f examples/s)\n",
         lamp_context_device(e.ctx)->name, t1 - t0, t2 - t1, (double)ev.examples / (t2 - t1));
  tr_eval_json(stdout, 0, o.split, &ev);
  rc = 0;
done:
  tr_split_free(&s);
  tr_engine_close(&e);
  return rc;
}

/* Splits a line into the task's fields at tabs. */
static int tr_fields(const lamp_task *t, char *line, const char **fields, size_t line_no) {
  size_t n = 0;
  char *p = line;
  for (;;) {
    char *tab = strchr(p, '\t');
    if (n < LAMP_DATA_MAX_FIELDS) fields[n] = p;
    n++;
    if (!tab) break;
    *tab = '\0';
    p = tab + 1;
  }
  if (n != t->n_fields) {
    tr_error("predict", "input %zu has %zu tab-separated fields; %s takes %zu (", line_no, n,
             t->name, t->n_fields);
    for (size_t f = 0; f < t->n_fields; f++)
      fprintf(stderr, "%s%s", t->fields[f], f + 1 < t->n_fields ? ", " : ")\n");
    return 1;
  }
  return 0;
}

int lamp_cli_predict(int argc, char **argv) {
  const char *cmd = "predict";
  if (tr_wants_help(argc, argv)) {
    tr_opts_usage(stdout, TR_CMD_PREDICT);
    return 0;
  }
  tr_opts o;
  char **texts = calloc((size_t)argc + 1, sizeof(char *));
  int n_texts = 0;
  if (!texts) return 1;
  int rc = tr_setup_infer(cmd, TR_CMD_PREDICT, argc, argv, &o, texts, &n_texts);
  if (rc) {
    free(texts);
    return rc;
  }
  /* the inputs: the arguments, else stdin's lines */
  char **lines = NULL;
  size_t n_lines = 0, cap = 0;
  int from_stdin = n_texts == 0;
  if (from_stdin) {
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    while ((got = getline(&line, &lcap, stdin)) >= 0) {
      while (got && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = '\0';
      if (n_lines == cap) {
        cap = cap ? 2 * cap : 64;
        char **l = realloc(lines, cap * sizeof(char *));
        if (!l) break;
        lines = l;
      }
      lines[n_lines++] = strdup(line);
    }
    free(line);
  } else {
    lines = calloc((size_t)n_texts, sizeof(char *));
    for (int i = 0; lines && i < n_texts; i++) lines[n_lines++] = strdup(texts[i]);
  }
  free(texts);
  tr_engine e;
  tr_split s = {0};
  double *scores = NULL;
  rc = 1;
  if (tr_open_infer(cmd, &o, &e)) goto done;
  if (!n_lines) {
    tr_error(cmd, "no input text");
    goto done;
  }
  s.items = calloc(n_lines, sizeof(tr_item));
  scores = malloc(n_lines * e.n_labels * sizeof(double));
  if (!s.items || !scores) goto done;
  for (size_t i = 0; i < n_lines; i++) {
    const char *fields[LAMP_DATA_MAX_FIELDS];
    if (!lines[i] || tr_fields(e.task, lines[i], fields, i + 1) ||
        tr_item_from_fields(&e, cmd, fields, &s.items[i]))
      goto done;
    s.n++;
  }
  tr_eval ev;
  if (tr_evaluate(&e, cmd, &s, 0, scores, &ev)) goto done;
  for (size_t i = 0; i < n_lines; i++) {
    const double *sc = scores + i * e.n_labels;
    size_t best = 0;
    double z = 0;
    for (size_t k = 1; k < e.n_labels; k++)
      if (sc[k] > sc[best]) best = k;
    for (size_t k = 0; k < e.n_labels; k++) z += exp(sc[k] - sc[best]);
    const char *w = e.word_text[best];
    while (*w == ' ') w++;
    printf("%s\t%s\t%.4f\n", e.task->labels[best], w, 1.0 / z);
  }
  rc = 0;
done:
  for (size_t i = 0; i < n_lines; i++) free(lines[i]);
  free(lines);
  free(scores);
  tr_split_free(&s);
  tr_engine_close(&e);
  return rc;
}
