/* lamp train / eval / predict: flags, files and printing around the library's engine
 * (lamp/train.h): the run folder (checkpoint, metrics.jsonl, plot.svg, summary.json, adapter/),
 * progress lines and signals. */
#include "train.h"

#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "context.h"
#include "ranks.h"
#include "plan.h"
#include "train_internal.h"

/* Set by SIGINT/SIGTERM; a signal handler can only talk to the loop through a static flag. */
static volatile sig_atomic_t tr_stop_requested = 0;

static void tr_on_signal(int sig) { tr_stop_requested = sig; }

/* Under mpirun: which rank speaks ("" with one process). */
static char tr_rank_tag[64] = "";

void tr_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "lamp %s%s: ", cmd, tr_rank_tag);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static double tr_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int tr_is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
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

/* A failed library call: the context's message says what and where. */
static int tr_fail(const char *cmd, lamp_context *ctx, lamp_status st, const char *what) {
  tr_error(cmd, "%s: %s: %s", what, lamp_status_name(st), ctx ? lamp_context_error(ctx) : "");
  return 1;
}

/* ---- where things are ----------------------------------------------------------------------- */

/* The repository holding the executable (its build folder's parent), or "" when unknown. */
static void tr_exe_repo(char *out, size_t size) {
  char exe[PATH_MAX];
  out[0] = '\0';
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return;
  exe[n] = '\0';
  for (int up = 0; up < 2; up++) {
    char *slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = '\0';
  }
  snprintf(out, size, "%s", exe[0] ? exe : "/");
}

/* The data folder: the flag, $LAMP_DATA_DIR, ../shared/data, data/, then the same two beside
 * the repository holding the executable; the first that has the task's folder. */
static int tr_find_data_dir(const char *cmd, const tr_opts *o, const lamp_task *task, char *out,
                            size_t size) {
  char repo[PATH_MAX], cands[6][PATH_MAX + 32], sub[PATH_MAX + 64];
  size_t n = 0;
  if (o->data_dir[0]) {
    snprintf(out, size, "%s", o->data_dir);
    if (!tr_is_dir(o->data_dir)) {
      tr_error(cmd, "--data-dir %s is not a folder", o->data_dir);
      return 1;
    }
    snprintf(sub, sizeof(sub), "%s/%s", o->data_dir, task->folder);
    if (!tr_is_dir(sub)) {
      tr_error(cmd, "--data-dir %s has no folder %s", o->data_dir, task->folder);
      return 1;
    }
    return 0;
  }
  const char *env = getenv("LAMP_DATA_DIR");
  if (env && env[0]) snprintf(cands[n++], sizeof(cands[0]), "%s", env);
  snprintf(cands[n++], sizeof(cands[0]), "../shared/data");
  snprintf(cands[n++], sizeof(cands[0]), "data");
  tr_exe_repo(repo, sizeof(repo));
  if (repo[0]) {
    snprintf(cands[n++], sizeof(cands[0]), "%s/../shared/data", repo);
    snprintf(cands[n++], sizeof(cands[0]), "%s/data", repo);
  }
  for (size_t i = 0; i < n; i++) {
    if (snprintf(sub, sizeof(sub), "%s/%s", cands[i], task->folder) >= (int)sizeof(sub)) continue;
    if (tr_is_dir(sub) && snprintf(out, size, "%s", cands[i]) < (int)size) return 0;
  }
  tr_error(cmd, "no data folder with %s/ found: tried %s%s../shared/data, data%s; give "
           "--data-dir or set LAMP_DATA_DIR", task->folder, env && env[0] ? env : "",
           env && env[0] ? ", " : "", repo[0] ? " and the same beside the executable's repository" : "");
  return 1;
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
    tr_error(cmd, "the data for %s has no %s split; give --%s-file", t->name,
             dev ? "dev" : "train", dev ? "dev" : "train");
    return 1;
  }
  char dir[PATH_MAX];
  if (tr_find_data_dir(cmd, o, t, dir, sizeof(dir))) return 1;
  snprintf(out, size, "%s/%s/%s", dir, t->folder, file);
  return 0;
}

/* The model path; the default one also beside the executable's repository. */
static void tr_model_path(const tr_opts *o, char *out, size_t size) {
  tr_opts def;
  tr_opts_defaults(&def);
  snprintf(out, size, "%s", o->model);
  if (access(o->model, F_OK) != 0 && !strcmp(o->model, def.model)) {
    char repo[PATH_MAX];
    tr_exe_repo(repo, sizeof(repo));
    char alt[PATH_MAX + 600];
    snprintf(alt, sizeof(alt), "%s/%s", repo, o->model);
    if (repo[0] && access(alt, F_OK) == 0 && snprintf(out, size, "%s", alt) >= (int)size)
      snprintf(out, size, "%s", o->model);
  }
}

/* Removes the temporary files that lamp's atomic writes leave in a run folder when the
 * process dies mid-write (`<file>.tmp.XXXXXX` of the files lamp writes there), and only those. */
static void tr_remove_stale(const char *out) {
  static const char *const files[] = {"checkpoint.safetensors", "adapter/adapter_model.safetensors",
                                      "adapter/adapter_config.json"};
  size_t removed = 0;
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    char pattern[PATH_MAX + 96];
    snprintf(pattern, sizeof(pattern), "%s/%s.tmp.??????", out, files[i]);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0) continue;
    for (size_t k = 0; k < g.gl_pathc; k++) removed += unlink(g.gl_pathv[k]) == 0;
    globfree(&g);
  }
  if (removed) printf("removed %zu temporary file%s an interrupted write left in %s\n", removed,
                      removed == 1 ? "" : "s", out);
}

/* A checkpoint from before checksums loads, but the user should know it was not verified. */
static void tr_note_unverified(lamp_checkpoint *ck, const char *path) {
  if (!lamp_checkpoint_checksummed(ck))
    fprintf(stderr, "lamp: note: %s has no checksums (written by an older lamp): its values are "
            "checked to be finite, not verified\n", path);
}

/* ---- the session: context, model, task, classifier -------------------------------------------- */

typedef struct tr_session {
  lamp_context *ctx;
  lamp_llm *llm;
  lamp_classifier *cls;
  lamp_task custom;
  char custom_store[1024];
  const lamp_task *task;
} tr_session;

static void tr_session_close(tr_session *s) {
  lamp_classifier_release(s->cls);
  lamp_llm_release(s->llm);
  lamp_cli_context_release(s->ctx);
  memset(s, 0, sizeof(*s));
}

/* `device`: a selector, or NULL for $LAMP_DEVICE or the default. */
static int tr_session_open(tr_session *s, const char *cmd, const tr_opts *o, const char *device) {
  memset(s, 0, sizeof(*s));
  char err[2048], path[PATH_MAX];
  lamp_context_options copt;
  lamp_context_options_init(&copt);
  copt.device = device && device[0] ? device : NULL;
  lamp_status st = lamp_context_create(&copt, &s->ctx, err, sizeof(err));
  if (st != LAMP_OK) {
    tr_error(cmd, "cannot create a context: %s: %s", lamp_status_name(st), err);
    return 1;
  }
  tr_model_path(o, path, sizeof(path));
  tr_opts def;
  tr_opts_defaults(&def);
  lamp_model_options mo = {LAMP_MODEL_WEIGHTS_AUTO, NULL};
  if (lamp_model_weights_parse(o->weights, &mo.weights) != LAMP_OK) {
    tr_error(cmd, "--weights %s: use auto, f32 or stored", o->weights);
    return 2;
  }
  if ((st = lamp_llm_load_with(s->ctx, path, &mo, &s->llm)) != LAMP_OK) {
    tr_error(cmd, "%s%s", lamp_context_error(s->ctx),
             st == LAMP_ERR_IO && !strcmp(o->model, def.model) ? " (run scripts/fetch-model.sh)" : "");
    return 1;
  }
  return 0;
}

/* The task of the flags: a built-in or --task custom. */
static int tr_task(tr_session *s, const char *cmd, const tr_opts *o) {
  if (!strcmp(o->task, "custom")) {
    if (tr_opts_custom_task(o, &s->custom, s->custom_store, sizeof(s->custom_store))) return 1;
    s->task = &s->custom;
  } else if (lamp_task_find(s->ctx, o->task, &s->task) != LAMP_OK) {
    tr_error(cmd, "%s, or custom (see --help)", lamp_context_error(s->ctx));
    return 1;
  }
  return 0;
}

static int tr_classifier(tr_session *s, const char *cmd, const lamp_classifier_options *co) {
  lamp_status st = lamp_classifier_create(s->llm, co, &s->cls);
  if (st != LAMP_OK) return tr_fail(cmd, s->ctx, st, "verbaliser");
  /* the classifier's copy of the task outlives a checkpoint's */
  lamp_classifier_options own;
  lamp_classifier_get_options(s->cls, &own);
  s->task = own.task;
  return 0;
}

static int tr_examples(tr_session *s, const char *cmd, const char *path, size_t limit,
                       lamp_examples **out) {
  lamp_status st = lamp_examples_load(s->cls, path, limit, out);
  if (st != LAMP_OK) {
    tr_error(cmd, "%s", lamp_context_error(s->ctx));
    return 1;
  }
  return 0;
}

/* ---- the metrics file ----------------------------------------------------------------------- */

typedef struct tr_history {
  double *loss_step, *loss, *eval_step, *eval_acc;
  size_t n_loss, n_eval, cap_loss, cap_eval;
  double best, best_step;
} tr_history;

static void tr_history_free(tr_history *h) {
  free(h->loss_step);
  free(h->loss);
  free(h->eval_step);
  free(h->eval_acc);
  memset(h, 0, sizeof(*h));
}

static void tr_push(double **a, double **b, size_t *n, size_t *cap, double x, double y) {
  if (*n == *cap) {
    size_t c = *cap ? 2 * *cap : 256;
    double *na = realloc(*a, c * sizeof(double)), *nb = na ? realloc(*b, c * sizeof(double)) : NULL;
    if (na) *a = na;
    if (!nb) return;
    *b = nb;
    *cap = c;
  }
  (*a)[*n] = x;
  (*b)[*n] = y;
  (*n)++;
}

static int tr_json_num(const char *line, const char *key, double *v) {
  char pat[48];
  snprintf(pat, sizeof(pat), "\"%s\": ", key);
  const char *p = strstr(line, pat);
  return p && sscanf(p + strlen(pat), "%lf", v) == 1;
}

/* Reads back metrics.jsonl, which this command writes one object per line; keeps the lines of
 * steps <= max_step and, with `rewrite`, writes them back (a resumed run drops what came after
 * its checkpoint). */
static int tr_metrics_read(const char *path, uint64_t max_step, int rewrite, tr_history *h) {
  FILE *f = fopen(path, "rb");
  if (!f) return errno == ENOENT ? 0 : -1;
  char line[4096], *kept = NULL;
  size_t n_kept = 0, cap = 0;
  h->best = -1;
  while (fgets(line, sizeof(line), f)) {
    double step = 0, v = 0;
    if (!tr_json_num(line, "step", &step) || step > (double)max_step) continue;
    if (strstr(line, "\"split\"")) {
      if (tr_json_num(line, "accuracy", &v)) {
        tr_push(&h->eval_step, &h->eval_acc, &h->n_eval, &h->cap_eval, step, v);
        if (v > h->best) {
          h->best = v;
          h->best_step = step;
        }
      }
    } else if (tr_json_num(line, "loss", &v)) {
      tr_push(&h->loss_step, &h->loss, &h->n_loss, &h->cap_loss, step, v);
    }
    size_t len = strlen(line);
    if (rewrite && n_kept + len + 1 > cap) {
      char *k = realloc(kept, (cap = 2 * (cap + len + 1)));
      if (!k) break;
      kept = k;
    }
    if (rewrite) {
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

static const char *tr_metric_key(const lamp_metrics *m) {
  return m->metric == LAMP_DATA_METRIC_ACCURACY ? NULL : lamp_data_metric_name(m->metric);
}

static void tr_eval_json(FILE *f, uint64_t step, const char *split, const lamp_metrics *m) {
  fprintf(f, "{\"step\": %llu, \"split\": \"%s\", \"examples\": %zu, \"loss\": %.6f, "
             "\"accuracy\": %.6f", (unsigned long long)step, split, m->examples, m->loss,
          m->accuracy);
  if (tr_metric_key(m)) fprintf(f, ", \"%s\": %.6f", tr_metric_key(m), m->score);
  fputs("}\n", f);
  fflush(f);
}

static void tr_eval_print(const char *what, const lamp_metrics *m) {
  printf("%s: %zu examples, accuracy %.4f", what, m->examples, m->accuracy);
  if (tr_metric_key(m)) printf(", %s %.4f", tr_metric_key(m), m->score);
  printf(", loss %.4f\n", m->loss);
  fflush(stdout);
}

/* ---- train ---------------------------------------------------------------------------------- */

/* What the fit callback reports to, and what it adds up. */
typedef struct tr_run {
  const tr_opts *o;
  FILE *mf;  /* NULL on ranks other than 0, which write and print nothing */
  int tty;
  uint64_t total, session_steps, timed_steps;
  double t_start, step_time, host_time, tokens_done, exchange_time;
  size_t ranks;
} tr_run;

static int tr_on_fit(void *user, const lamp_fit_report *rep) {
  tr_run *r = user;
  if (!r->mf) return tr_stop_requested != 0;
  if (rep->event == LAMP_FIT_EVAL) {
    if (r->tty) fputc('\n', stderr);
    tr_eval_json(r->mf, rep->step, "dev", rep->metrics);
    char what[64];
    snprintf(what, sizeof(what), "step %llu dev", (unsigned long long)rep->step);
    tr_eval_print(what, rep->metrics);
  } else if (rep->event == LAMP_FIT_STEP) {
    const lamp_step_result *s = rep->result;
    /* the session's first step compiles kernels: it is not timed */
    if (++r->session_steps > 1) {
      r->step_time += s->step_s;
      r->host_time += s->host_s;
      r->tokens_done += (double)s->tokens;
      r->timed_steps++;
    }
    double tps = r->timed_steps ? r->tokens_done / r->step_time : (double)s->tokens / s->step_s;
    fprintf(r->mf, "{\"step\": %llu, \"epoch\": %llu, \"loss\": %.6f, \"lr\": %.6g, "
                   "\"grad_norm\": %.6g, \"step_s\": %.4f, \"host_s\": %.4f, "
                   "\"exchange_s\": %.6f, \"tokens_per_s\": %.1f}\n",
            (unsigned long long)s->step, (unsigned long long)s->epoch, s->loss, s->lr,
            s->grad_norm, s->step_s, s->host_s, s->exchange_s, (double)s->tokens / s->step_s);
    if (r->session_steps > 1) r->exchange_time += s->exchange_s;
    fflush(r->mf);
    char el[32], eta[32];
    double elapsed = tr_now() - r->t_start;
    tr_hms(elapsed, el, sizeof(el));
    tr_hms(elapsed / (double)r->session_steps * (double)(r->total - s->step), eta, sizeof(eta));
    if (r->tty) {
      fprintf(stderr, "\rstep %llu/%llu  epoch %llu  loss %.4f  lr %.2e  %.0f tok/s  %s  eta %s   ",
              (unsigned long long)s->step, (unsigned long long)r->total,
              (unsigned long long)s->epoch, s->loss, s->lr, tps, el, eta);
      fflush(stderr);
    } else if (r->o->log_every &&
               (s->step % (uint64_t)r->o->log_every == 0 || s->step == r->total)) {
      printf("step %llu/%llu epoch %llu loss %.4f lr %.2e %.0f tok/s elapsed %s eta %s\n",
             (unsigned long long)s->step, (unsigned long long)r->total,
             (unsigned long long)s->epoch, s->loss, s->lr, tps, el, eta);
      fflush(stdout);
    }
  }
  return tr_stop_requested != 0;
}

/* The options of a run: the flags, or with --resume the checkpoint's with the flags over them
 * (a run option that differs is an error). */
static int tr_train_options(tr_session *s, const tr_opts *flags, int argc, char **argv,
                            const char *ckpt, const lamp_reducer *red, int ranks_rank0, tr_opts *o,
                            lamp_classifier_options *co, lamp_trainer_options *to,
                            lamp_checkpoint **resume) {
  const char *cmd = "train";
  *o = *flags;
  if (!o->resume) {
    int rc = tr_task(s, cmd, o);
    if (!rc) rc = tr_opts_to_library(o, s->task, s->llm, co, to);
    to->reducer = red;
    return rc;
  }
  lamp_status st = lamp_checkpoint_open(s->ctx, ckpt, resume);
  if (st == LAMP_OK && ranks_rank0) tr_note_unverified(*resume, ckpt);
  lamp_classifier_options sc;
  lamp_trainer_options stt;
  if (st == LAMP_OK) st = lamp_checkpoint_classifier_options(*resume, &sc);
  if (st == LAMP_OK) st = lamp_checkpoint_trainer_options(*resume, s->llm, &stt);
  if (st != LAMP_OK) return tr_fail(cmd, s->ctx, st, "cannot resume");
  tr_opts_defaults(o);
  tr_opts_from_library(o, &sc, &stt);
  if (tr_opts_parse(o, TR_CMD_TRAIN, argc, argv, NULL, NULL)) return 2;
  snprintf(o->out, sizeof(o->out), "%s", flags->out);
  s->task = sc.task; /* a custom task lives in the checkpoint */
  if (tr_opts_to_library(o, s->task, s->llm, co, to)) return 2;
  to->reducer = red;
  if ((st = lamp_checkpoint_check_options(*resume, co, to)) != LAMP_OK) {
    tr_error(cmd, "%s", lamp_context_error(s->ctx));
    return 2;
  }
  return 0;
}

static void tr_summary(const tr_opts *o, const tr_session *s, const lamp_trainer_state *ts,
                       const tr_run *run, const lamp_metrics *ev, const tr_history *h,
                       double eval_s) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof(path), "%s/summary.json", o->out);
  double mean_step = run->timed_steps ? run->step_time / (double)run->timed_steps : 0;
  double tps = run->timed_steps ? run->tokens_done / run->step_time : 0;
  double host_share = run->step_time > 0 ? run->host_time / run->step_time : 0;
  const char *device = lamp_context_device(s->ctx)->name;
  FILE *f = fopen(path, "wb");
  if (f) {
    char extra[96] = "";
    if (tr_metric_key(ev))
      snprintf(extra, sizeof(extra), "\"final_dev_%s\": %.6f, ", tr_metric_key(ev), ev->score);
    fprintf(f, "{\"task\": \"%s\", \"method\": \"%s\", \"device\": \"%s\", \"steps\": %llu, "
               "\"trainable_params\": %zu, \"prompt_rows\": %zu, \"device_memory_bytes\": %zu, "
               "\"mean_step_s\": %.4f, \"host_enqueue_share\": %.4f, \"tokens_per_s\": %.1f, "
               "\"final_dev_examples\": %zu, \"final_dev_accuracy\": %.6f, %s"
               "\"best_dev_accuracy\": %.6f, \"best_dev_step\": %.0f, \"final_eval_s\": %.1f, "
               "\"ranks\": %zu, \"mean_exchange_s\": %.6f}\n",
            s->task->name, o->method, device, (unsigned long long)ts->step, ts->trainable,
            ts->prompt_rows, ts->device_bytes, mean_step, host_share, tps, ev->examples,
            ev->accuracy, extra, h->best, h->best_step, eval_s, run->ranks,
            run->timed_steps ? run->exchange_time / (double)run->timed_steps : 0.0);
    if (fclose(f) != 0) tr_error("train", "cannot write %s: %s", path, strerror(errno));
  }
  printf("summary: best dev accuracy %.4f (step %.0f; interval evaluations use --eval-max "
         "examples), final %.4f on %zu examples\n", h->best, h->best_step, ev->accuracy,
         ev->examples);
  printf("         %zu trainable parameters, device memory %.1f MiB (weights, workspace, prompt, "
         "optimiser), mean step %.3f s (host enqueueing %.1f%% of it), %.0f tokens/s (this "
         "session, first step excluded)\n", ts->trainable, (double)ts->device_bytes / 1048576.0,
         mean_step, 100 * host_share, tps);
}

/* --dry-run: the trainer's memory plan in both weight modes, with and without recomputation,
 * against the device; nothing beyond the model is allocated and no run folder is made. */
static int tr_dry_run(tr_opts *flags, int argc, char **argv, tr_ranks *ranks) {
  const char *cmd = "train";
  /* the plan needs only the smallest weights on the device */
  tr_opts o1 = *flags;
  if (!strcmp(o1.weights, "auto")) snprintf(o1.weights, sizeof(o1.weights), "stored");
  char device[32], ckpt[PATH_MAX + 64];
  snprintf(ckpt, sizeof(ckpt), "%s/checkpoint.safetensors", flags->out);
  tr_ranks_device(ranks, device, sizeof(device));
  tr_session s;
  tr_opts o;
  lamp_classifier_options co;
  lamp_trainer_options to;
  lamp_checkpoint *resume = NULL;
  o1.resume = 0;
  int rc = tr_session_open(&s, cmd, &o1, device);
  if (!rc) rc = tr_train_options(&s, &o1, argc, argv, ckpt, NULL, 1, &o, &co, &to, &resume);
  if (!rc) rc = tr_classifier(&s, cmd, &co);
  lamp_trainer_plan p[2][2];
  for (int w = 0; w < 2 && !rc; w++)
    for (int r = 0; r < 2 && !rc; r++) {
      lamp_trainer_options tt = to;
      tt.recompute = r;
      lamp_status st = lamp_trainer_plan_make(s.cls, &tt, w ? LAMP_MODEL_WEIGHTS_STORED
                                                            : LAMP_MODEL_WEIGHTS_F32, &p[w][r]);
      if (st != LAMP_OK) rc = tr_fail(cmd, s.ctx, st, "plan");
    }
  if (!rc) {
    const lamp_trainer_plan *a = &p[0][0];
    printf("memory plan: %s, %zu x %zu tokens (+ %zu prompt rows), %zu outputs; device %s\n",
           o.model, a->shape.batch, a->shape.tokens, a->shape.prompt, a->shape.outputs,
           lamp_context_device(s.ctx)->name);
    lamp_model_plan mp[2][2];
    uint64_t prompt[2][2];
    for (int w = 0; w < 2; w++)
      for (int r = 0; r < 2; r++) mp[w][r] = p[w][r].model, prompt[w][r] = p[w][r].prompt;
    plan_table(stdout, mp, prompt);
  }
  lamp_checkpoint_release(resume);
  tr_session_close(&s);
  return rc;
}

/* One rank's run; *agreed set when every rank ends the same way (a stop, differing ranks). */
static int tr_train(int argc, char **argv, tr_ranks *ranks, int *agreed) {
  const char *cmd = "train";
  const int rank0 = ranks->rank == 0;
  tr_opts flags, o;
  tr_opts_defaults(&flags);
  if (tr_opts_parse(&flags, TR_CMD_TRAIN, argc, argv, NULL, NULL)) return 2;
  if (!flags.out[0])
    snprintf(flags.out, sizeof(flags.out), "runs/%s-%s-s%ld", flags.task, flags.method, flags.seed);
  if (flags.dry_run) {
    *agreed = 1;
    return tr_dry_run(&flags, argc, argv, ranks);
  }
  char ckpt[PATH_MAX + 64], metrics[PATH_MAX + 64], adapter[PATH_MAX + 64], plot[PATH_MAX + 64];
  snprintf(ckpt, sizeof(ckpt), "%s/checkpoint.safetensors", flags.out);
  snprintf(metrics, sizeof(metrics), "%s/metrics.jsonl", flags.out);
  snprintf(adapter, sizeof(adapter), "%s/adapter", flags.out);
  snprintf(plot, sizeof(plot), "%s/plot.svg", flags.out);
  if (!flags.resume && access(ckpt, F_OK) == 0) {
    tr_error(cmd, "%s already holds a run; give --resume to continue it or another --out", flags.out);
    return 2;
  }
  if (flags.resume && access(ckpt, F_OK) != 0) {
    tr_error(cmd, "--resume: %s has no checkpoint (%s)", flags.out, ckpt);
    return 2;
  }
  if (tr_mkdirs(flags.out)) {
    tr_error(cmd, "cannot create %s: %s", flags.out, strerror(errno));
    return 1;
  }
  if (rank0) tr_remove_stale(flags.out);
  double t_open = tr_now();
  tr_session s;
  lamp_checkpoint *resume = NULL;
  lamp_examples *train = NULL, *dev = NULL;
  lamp_trainer *tr = NULL;
  tr_history hist = {0};
  tr_run run = {0};
  lamp_classifier_options co;
  lamp_trainer_options to;
  char train_path[PATH_MAX + 64], dev_path[PATH_MAX + 64];
  char device[32];
  tr_ranks_device(ranks, device, sizeof(device));
  int rc = tr_session_open(&s, cmd, &flags, device);
  if (!rc)
    rc = tr_train_options(&s, &flags, argc, argv, ckpt, tr_ranks_reducer(ranks), rank0, &o, &co,
                          &to, &resume);
  if (!rc) rc = tr_classifier(&s, cmd, &co);
  if (!rc) rc = tr_split_path(cmd, &o, s.task, 0, train_path, sizeof(train_path)) ||
                tr_split_path(cmd, &o, s.task, 1, dev_path, sizeof(dev_path)) ||
                tr_examples(&s, cmd, train_path, 0, &train) ||
                tr_examples(&s, cmd, dev_path, 0, &dev);
  lamp_status st = LAMP_OK;
  if (!rc && (st = lamp_trainer_create(s.cls, &to, train, &tr)) != LAMP_OK)
    rc = tr_fail(cmd, s.ctx, st, "trainer");
  if (!rc && resume && (st = lamp_trainer_resume(tr, resume)) != LAMP_OK)
    rc = tr_fail(cmd, s.ctx, st, "resume");
  uint64_t fingerprint = 0;
  if (!rc && ranks->size > 1 && (st = lamp_trainer_fingerprint(tr, &fingerprint)) != LAMP_OK)
    rc = tr_fail(cmd, s.ctx, st, "fingerprint");
  if (!rc && !tr_ranks_same(ranks, fingerprint)) {
    if (rank0)
      tr_error(cmd, "the %zu ranks differ in their model, data, prompt or options (their "
               "fingerprints differ): every rank needs the same files and flags", ranks->size);
    *agreed = 1;
    rc = 2;
  }
  lamp_trainer_state ts;
  if (!rc) lamp_trainer_get_state(tr, &ts);
  if (!rc && resume && rank0) {
    if (tr_metrics_read(metrics, ts.step, 1, &hist)) {
      tr_error(cmd, "cannot rewrite %s", metrics);
      rc = 1;
    } else {
      printf("resuming %s at step %llu of %llu\n", o.out, (unsigned long long)ts.step,
             (unsigned long long)ts.total);
    }
    tr_history_free(&hist);
  }
  lamp_checkpoint_release(resume);
  if (!rc && rank0 && !(run.mf = fopen(metrics, o.resume ? "ab" : "wb"))) {
    tr_error(cmd, "cannot write %s: %s", metrics, strerror(errno));
    rc = 1;
  }
  if (rc) goto done;
  if (!rank0) goto quiet;
  printf("lamp train: %s on %s, method %s, %zu trainable parameters, prompt %zu rows\n",
         s.task->name, lamp_context_device(s.ctx)->name, o.method, ts.trainable, ts.prompt_rows);
  if (ranks->size > 1)
    printf("ranks: %zu, each a micro-batch of %ld (x %ld accumulated): global batch %zu\n",
           ranks->size, o.batch, o.accumulate, (size_t)o.batch * (size_t)o.accumulate * ranks->size);
  printf("data: %s (%zu examples), %s (%zu examples); verbaliser", train_path,
         lamp_examples_count(train), dev_path, lamp_examples_count(dev));
  for (size_t k = 0; k < lamp_classifier_label_count(s.cls); k++) {
    size_t n = 0;
    const char *w = lamp_classifier_word(s.cls, k, &n);
    printf(" '%s'%s", w, n > 1 ? "(multi-token)" : "");
  }
  printf("\nsteps %llu (%zu batches of %zu per epoch), device memory %.1f MiB, setup %.1f s\n",
         (unsigned long long)ts.total, ts.batches,
         (size_t)o.batch * (size_t)o.accumulate * ranks->size,
         (double)ts.device_bytes / 1048576.0, tr_now() - t_open);
  fflush(stdout);
quiet:;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = tr_on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  run.o = &o;
  run.ranks = ranks->size;
  run.tty = isatty(fileno(stderr));
  run.total = ts.total;
  run.t_start = tr_now();
  lamp_fit_options fit;
  lamp_fit_options_init(&fit);
  fit.dev = dev;
  fit.eval_every = (uint64_t)o.eval_every;
  fit.eval_max = (size_t)o.eval_max;
  fit.checkpoint = rank0 ? ckpt : NULL; /* rank 0 alone writes files */
  fit.checkpoint_every = (uint64_t)(o.ckpt_every ? o.ckpt_every : o.eval_every ? o.eval_every : 100);
  fit.stop_after = (uint64_t)o.stop_after;
  fit.callback = tr_on_fit;
  fit.user = &run;
  st = lamp_trainer_fit(tr, &fit);
  if (run.tty) fputc('\n', stderr);
  lamp_trainer_get_state(tr, &ts);
  if (st == LAMP_ERR_CANCELLED) {
    if (rank0)
      printf("stopped at step %llu of %llu (%s); checkpoint %s; continue with: lamp train --out "
             "%s --resume\n", (unsigned long long)ts.step, (unsigned long long)ts.total,
             tr_stop_requested ? "interrupted" : "--stop-after", ckpt, o.out);
    *agreed = 1;
    /* the shell's convention, 128 + the signal, so a supervisor can tell them apart */
    rc = tr_stop_requested ? 128 + (int)tr_stop_requested : 0;
    goto done;
  }
  if (st != LAMP_OK) {
    rc = tr_fail(cmd, s.ctx, st, "training");
    goto done;
  }
  lamp_metrics ev;
  double t_eval = tr_now();
  if ((st = lamp_trainer_evaluate(tr, dev, (size_t)o.final_eval_max, &ev)) != LAMP_OK) {
    rc = tr_fail(cmd, s.ctx, st, "final evaluation");
    goto done;
  }
  double eval_s = tr_now() - t_eval;
  if (!rank0) goto done;
  tr_eval_json(run.mf, ts.step, "dev", &ev);
  fclose(run.mf);
  run.mf = NULL;
  tr_eval_print("final dev", &ev);
  if ((st = lamp_peft_export(s.llm, lamp_trainer_prompt(tr), adapter,
                             o.base_model[0] ? o.base_model : NULL)) != LAMP_OK) {
    rc = tr_fail(cmd, s.ctx, st, "PEFT adapter");
    goto done;
  }
  tr_metrics_read(metrics, UINT64_MAX, 0, &hist);
  char title[160];
  snprintf(title, sizeof(title), "%s, %s (l=%ld, r=%ld, s=%ld), seed %ld", s.task->name,
           o.method, o.length, !strcmp(o.method, "dpt") ? o.bottleneck : o.rank,
           (long)to.prompt.pool, o.seed);
  if (tr_svg_plot(plot, title, hist.loss_step, hist.loss, hist.n_loss, hist.eval_step,
                  hist.eval_acc, hist.n_eval))
    tr_error(cmd, "cannot write %s: %s", plot, strerror(errno));
  tr_summary(&o, &s, &ts, &run, &ev, &hist, eval_s);
  printf("files:   %s, %s, %s, %s/summary.json, %s/\n", ckpt, metrics, plot, o.out, adapter);
done:
  if (run.mf) fclose(run.mf);
  tr_history_free(&hist);
  lamp_trainer_release(tr);
  lamp_examples_release(train);
  lamp_examples_release(dev);
  tr_session_close(&s);
  return rc;
}

int lamp_cli_train(int argc, char **argv) {
  if (tr_wants_help(argc, argv)) {
    tr_opts_usage(stdout, TR_CMD_TRAIN);
    return 0;
  }
  tr_ranks ranks;
  if (tr_ranks_init(&ranks)) return 1;
  if (ranks.size > 1)
    snprintf(tr_rank_tag, sizeof(tr_rank_tag), " [rank %zu of %zu]", ranks.rank, ranks.size);
  int agreed = 0;
  int rc = tr_train(argc, argv, &ranks, &agreed);
  /* a failure on one rank alone ends the job, since the others would wait for it */
  if (rc && !agreed) rc = tr_ranks_fail(&ranks, rc);
  tr_ranks_finish(&ranks);
  return rc;
}

/* ---- eval and predict ----------------------------------------------------------------------- */

/* The session of eval and predict: the classifier of the checkpoint (or of the flags), with
 * flags given over it, and the prompt of the checkpoint or adapter (NULL: the bare model). */
static int tr_open_infer(const char *cmd, int which, int argc, char **argv, tr_opts *o,
                         char **rest, int *n_rest, tr_session *s, lamp_prompt **prompt) {
  *prompt = NULL;
  tr_opts_defaults(o);
  if (tr_opts_parse(o, which, argc, argv, rest, n_rest)) return 2;
  int sources = !!o->checkpoint[0] + !!o->adapter[0] + o->no_prompt;
  if (sources != 1) {
    tr_error(cmd, "give one of --checkpoint FILE, --adapter PATH, or --no-prompt for the model "
             "alone");
    return 2;
  }
  if (tr_session_open(s, cmd, o, NULL)) return 1;
  lamp_classifier_options co;
  lamp_status st;
  /* the command line's own template and words ("" = none given), for another task */
  char given_template[sizeof(o->template_text)], given_words[sizeof(o->words)];
  snprintf(given_template, sizeof(given_template), "%s", o->template_text);
  snprintf(given_words, sizeof(given_words), "%s", o->words);
  if (o->checkpoint[0]) {
    lamp_checkpoint *ck = NULL;
    st = lamp_checkpoint_open(s->ctx, o->checkpoint, &ck);
    if (st == LAMP_OK) tr_note_unverified(ck, o->checkpoint);
    if (st == LAMP_OK) st = lamp_checkpoint_classifier_options(ck, &co);
    if (st == LAMP_OK) {
      char path[TR_STR];
      snprintf(path, sizeof(path), "%s", o->checkpoint);
      tr_opts_defaults(o);
      tr_opts_from_library(o, &co, NULL);
      snprintf(o->checkpoint, sizeof(o->checkpoint), "%s", path);
      s->task = co.task;
      tr_opts_parse(o, which, argc, argv, rest, n_rest);
      /* --task on the command line evaluates the prompt on another task, with that task's
       * template and label words unless the command line gives them: the checkpoint's name
       * its own task's fields and classes */
      if (strcmp(o->task, co.task->name)) {
        snprintf(o->template_text, sizeof(o->template_text), "%s", given_template);
        snprintf(o->words, sizeof(o->words), "%s", given_words);
        if (tr_task(s, cmd, o)) st = LAMP_ERR_INVALID_ARGUMENT;
      } else {
        s->task = co.task;
      }
    }
    if (st == LAMP_OK) st = lamp_checkpoint_prompt(ck, s->llm, prompt);
    if (st == LAMP_OK && tr_opts_to_library(o, s->task, s->llm, &co, NULL)) st = LAMP_ERR_INVALID_ARGUMENT;
    if (st != LAMP_OK) tr_fail(cmd, s->ctx, st, o->checkpoint);
    int rc = st == LAMP_OK ? tr_classifier(s, cmd, &co) : 1;
    lamp_checkpoint_release(ck);
    return rc;
  }
  int rc = tr_task(s, cmd, o);
  if (!rc) rc = tr_opts_to_library(o, s->task, s->llm, &co, NULL);
  if (!rc) rc = tr_classifier(s, cmd, &co);
  if (!rc && o->adapter[0] && (st = lamp_peft_import(s->llm, o->adapter, prompt)) != LAMP_OK)
    rc = tr_fail(cmd, s->ctx, st, o->adapter);
  return rc;
}

int lamp_cli_eval(int argc, char **argv) {
  const char *cmd = "eval";
  if (tr_wants_help(argc, argv)) {
    tr_opts_usage(stdout, TR_CMD_EVAL);
    return 0;
  }
  tr_opts o;
  tr_session s = {0};
  lamp_prompt *prompt = NULL;
  lamp_examples *ex = NULL;
  char path[PATH_MAX + 64];
  double t0 = tr_now();
  int rc = tr_open_infer(cmd, TR_CMD_EVAL, argc, argv, &o, NULL, NULL, &s, &prompt);
  int dev = !strcmp(o.split, "dev");
  if (!rc && !dev && strcmp(o.split, "train")) {
    tr_error(cmd, "--split must be dev or train");
    rc = 2;
  }
  if (!rc) rc = tr_split_path(cmd, &o, s.task, dev, path, sizeof(path)) ||
                tr_examples(&s, cmd, path, (size_t)o.final_eval_max, &ex);
  lamp_metrics m;
  double t1 = tr_now();
  lamp_status st;
  if (!rc && (st = lamp_classifier_evaluate(s.cls, prompt, ex, 0, NULL, NULL, &m)) != LAMP_OK)
    rc = tr_fail(cmd, s.ctx, st, "evaluation");
  if (!rc) {
    double t2 = tr_now();
    char what[PATH_MAX + 200];
    snprintf(what, sizeof(what), "%s %s (%s)", s.task->name, o.split,
             o.no_prompt ? "no prompt" : o.checkpoint[0] ? o.checkpoint : o.adapter);
    tr_eval_print(what, &m);
    printf("device %s, setup %.1f s, evaluation %.1f s (%.1f examples/s)%s\n",
           lamp_context_device(s.ctx)->name, t1 - t0, t2 - t1, (double)m.examples / (t2 - t1),
           !prompt ? "" : o.no_prompt_cache ? ", prompt rows in every batch"
                                             : ", prompt keys and values cached");
    tr_eval_json(stdout, 0, o.split, &m);
  }
  lamp_examples_release(ex);
  lamp_prompt_release(prompt);
  tr_session_close(&s);
  return rc;
}

/* Splits a line into the task's fields at tabs. */
static int tr_fields(const lamp_task *t, char *line, const char **fields, size_t line_no) {
  size_t n = 0;
  for (char *p = line;;) {
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
  tr_session s = {0};
  lamp_prompt *prompt = NULL;
  lamp_examples *ex = NULL;
  double *scores = NULL;
  char **texts = calloc((size_t)argc + 1, sizeof(char *)), *line = NULL;
  int n_texts = 0;
  if (!texts) return 1;
  int rc = tr_open_infer(cmd, TR_CMD_PREDICT, argc, argv, &o, texts, &n_texts, &s, &prompt);
  lamp_status st = LAMP_OK;
  if (!rc && (st = lamp_examples_create(s.cls, &ex)) != LAMP_OK) rc = tr_fail(cmd, s.ctx, st, "");
  /* the inputs: the arguments, else stdin's lines */
  size_t n = 0, cap = 0;
  for (;;) {
    if (rc) break;
    if (n_texts) {
      if (n == (size_t)n_texts) break;
      free(line);
      line = strdup(texts[n]);
    } else {
      ssize_t got = getline(&line, &cap, stdin);
      if (got < 0) break;
      while (got && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = '\0';
    }
    const char *fields[LAMP_DATA_MAX_FIELDS];
    if (!line || tr_fields(s.task, line, fields, n + 1)) rc = 1;
    else if ((st = lamp_examples_add(s.cls, ex, fields, -1)) != LAMP_OK)
      rc = tr_fail(cmd, s.ctx, st, "input");
    n++;
  }
  free(line);
  free(texts);
  size_t K = rc ? 0 : lamp_classifier_label_count(s.cls);
  if (!rc && !n) {
    tr_error(cmd, "no input text");
    rc = 1;
  }
  if (!rc && !(scores = malloc(n * K * sizeof(double)))) rc = 1;
  if (!rc && (st = lamp_classifier_evaluate(s.cls, prompt, ex, 0, scores, NULL, NULL)) != LAMP_OK)
    rc = tr_fail(cmd, s.ctx, st, "prediction");
  for (size_t i = 0; !rc && i < n; i++) {
    const double *sc = scores + i * K;
    size_t best = 0;
    double z = 0;
    for (size_t k = 1; k < K; k++)
      if (sc[k] > sc[best]) best = k;
    for (size_t k = 0; k < K; k++) z += exp(sc[k] - sc[best]);
    const char *w = lamp_classifier_word(s.cls, best, NULL);
    while (*w == ' ') w++;
    printf("%s\t%s\t%.4f\n", s.task->labels[best], w, 1.0 / z);
  }
  free(scores);
  lamp_examples_release(ex);
  lamp_prompt_release(prompt);
  tr_session_close(&s);
  return rc;
}
