/* End to end: the lamp tool's train, eval and predict on a tiny random model and small files the
 * test writes. A short run lowers the training loss, --resume reaches bit-identical parameters
 * and moments, the exported PEFT adapter parses and holds the pooled prompt, and predictions
 * match a plain-C double-precision reference of the model. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/json.h"
#include "lamp/lamp.h"
#include "ref_train.h"

typedef struct fixture {
  char dir[256], model[300], data[300], log[300];
  ref_train_model m;
} fixture;

/* Flags of every command, and those that only training takes. */
static const char *task_flags = "--task sst2 --template '{sentence} =' --words ' a| b' "
                                "--max-tokens 40 --eval-batch 8";
static const char *prompt_flags = "--length 8 --rank 2 --batch 8 --seed 3";


static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  if (!f) return -1;
  snprintf(f->dir, sizeof(f->dir), "/tmp/lamp-test-train-XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  snprintf(f->model, sizeof(f->model), "%s/tiny.gguf", f->dir);
  snprintf(f->data, sizeof(f->data), "%s/data", f->dir);
  snprintf(f->log, sizeof(f->log), "%s/log.txt", f->dir);
  if (ref_train_model_write(&f->m, f->model, 7)) return -1;
  char p[400];
  snprintf(p, sizeof(p), "%s/SST-2", f->data);
  if (mkdir(f->data, 0777) || mkdir(p, 0777)) return -1;
  *state = f;
  snprintf(p, sizeof(p), "%s/SST-2/train.tsv", f->data);
  if (ref_train_write_split(p, 96, 1)) return -1;
  snprintf(p, sizeof(p), "%s/SST-2/dev.tsv", f->data);
  if (ref_train_write_split(p, 24, 2)) return -1;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
  const char *keep = getenv("LAMP_TEST_KEEP"); /* "1" keeps the files for a look */
  if (keep && !strcmp(keep, "1")) fprintf(stderr, "kept %s\n", f->dir);
  else if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", f->dir);
  ref_train_model_free(&f->m);
  free(f);
  return 0;
}

/* Runs lamp with `fmt` and checks the exit status, printing the log on a mismatch. */
static void run_expect(fixture *f, int expect, const char *fmt, ...) {
  char args[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof(args), fmt, ap);
  va_end(ap);
  if (!ref_train_lamp_path()) fail_msg("the lamp tool is not built next to the tests");
  int rc = ref_train_run(f->log, args);
  if (rc != expect) {
    /* the whole log (cmocka cuts a long failure message), freed before the test ends */
    char *log = ref_train_read_file(f->log, NULL);
    fprintf(stderr, "lamp %s\nexited %d, expected %d; output:\n%s\n", args, rc, expect,
            log ? log : "");
    free(log);
    fail_msg("lamp exited %d, expected %d (its output above)", rc, expect);
  }
}

static int log_has(fixture *f, const char *text) {
  char *log = ref_train_read_file(f->log, NULL);
  int has = log && strstr(log, text) != NULL;
  if (!has) fprintf(stderr, "expected \"%s\" in:\n%s\n", text, log ? log : "(no log)");
  free(log);
  return has;
}

/* The training losses of metrics.jsonl, in step order (as text, for exact comparison). */
static size_t read_losses(const char *path, double *loss, char (*text)[32], size_t cap) {
  char *all = ref_train_read_file(path, NULL);
  assert_non_null(all);
  size_t n = 0;
  for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
    lamp__json *doc = NULL;
    char err[128];
    assert_int_equal(lamp__json_parse(line, strlen(line), &doc, err, sizeof(err)), LAMP_OK);
    if (lamp__json_get(doc, 0, "split") == LAMP__JSON_NONE) {
      double step = lamp__json_number(doc, lamp__json_get(doc, 0, "step"));
      assert_true(n < cap);
      assert_int_equal((size_t)step, n + 1);
      loss[n] = lamp__json_number(doc, lamp__json_get(doc, 0, "loss"));
      if (text) {
        const char *at = strstr(line, "\"loss\": ");
        assert_non_null(at);
        snprintf(text[n], sizeof(text[n]), "%.*s", (int)strcspn(at + 8, ","), at + 8);
      }
      n++;
    }
    lamp__json_free(doc);
  }
  free(all);
  return n;
}

static void test_train_lowers_loss_and_exports(void **state) {
  fixture *f = *state;
  run_expect(f, 0, "train --model %s --data-dir %s %s %s --epochs 8 --lr 0.1 --eval-every 48 "
             "--eval-max 16 --out %s/run", f->model, f->data, task_flags, prompt_flags, f->dir);
  char p[400];
  snprintf(p, sizeof(p), "%s/run/metrics.jsonl", f->dir);
  double loss[128];
  size_t n = read_losses(p, loss, NULL, 128);
  assert_int_equal(n, 96); /* 8 epochs of 12 batches */
  /* batches differ in their class mix, so compare whole epochs: the first against the last */
  double first = 0, last = 0;
  for (size_t i = 0; i < 12; i++) {
    first += loss[i] / 12;
    last += loss[n - 12 + i] / 12;
  }
  if (!(last < 0.85 * first)) fail_msg("training loss %.4f -> %.4f did not fall by 15%%", first, last);

  /* the plot and the summary exist and are what they claim */
  snprintf(p, sizeof(p), "%s/run/plot.svg", f->dir);
  char *svg = ref_train_read_file(p, NULL);
  assert_non_null(svg);
  assert_true(!strncmp(svg, "<svg", 4) && strstr(svg, "polyline") && strstr(svg, "</svg>"));
  free(svg);
  snprintf(p, sizeof(p), "%s/run/summary.json", f->dir);
  size_t size = 0;
  char *sum = ref_train_read_file(p, &size);
  assert_non_null(sum);
  lamp__json *doc = NULL;
  char err[128];
  assert_int_equal(lamp__json_parse(sum, size, &doc, err, sizeof(err)), LAMP_OK);
  /* LAMP: r (P + C + 1) = 2 (8 + 32 + 1) */
  assert_int_equal((int)lamp__json_number(doc, lamp__json_get(doc, 0, "trainable_params")), 82);
  assert_int_equal((int)lamp__json_number(doc, lamp__json_get(doc, 0, "final_dev_examples")), 24);
  lamp__json_free(doc);
  free(sum);

  /* the adapter: config JSON and prompt_embeddings = pool_2(U diag(q) V^T) of the checkpoint */
  snprintf(p, sizeof(p), "%s/run/adapter/adapter_config.json", f->dir);
  char *cfg = ref_train_read_file(p, &size);
  assert_non_null(cfg);
  assert_int_equal(lamp__json_parse(cfg, size, &doc, err, sizeof(err)), LAMP_OK);
  assert_true(lamp__json_is(doc, lamp__json_get(doc, 0, "peft_type"), "PROMPT_TUNING"));
  assert_int_equal((int)lamp__json_number(doc, lamp__json_get(doc, 0, "num_virtual_tokens")), 4);
  assert_int_equal((int)lamp__json_number(doc, lamp__json_get(doc, 0, "token_dim")), 32);
  lamp__json_free(doc);
  free(cfg);
  lamp_safetensors *ad = NULL, *ck = NULL;
  snprintf(p, sizeof(p), "%s/run/adapter/adapter_model.safetensors", f->dir);
  assert_int_equal(lamp_safetensors_open(NULL, p, &ad), LAMP_OK);
  snprintf(p, sizeof(p), "%s/run/checkpoint.safetensors", f->dir);
  assert_int_equal(lamp_safetensors_open(NULL, p, &ck), LAMP_OK);
  const lamp_st_tensor *pe, *tu, *tq, *tv;
  assert_int_equal(lamp_safetensors_find(ad, "prompt_embeddings", &pe), LAMP_OK);
  assert_int_equal(pe->ndim, 2);
  assert_int_equal(pe->shape[0], 4);
  assert_int_equal(pe->shape[1], 32);
  assert_int_equal(lamp_safetensors_find(ck, "param.U", &tu), LAMP_OK);
  assert_int_equal(lamp_safetensors_find(ck, "param.q", &tq), LAMP_OK);
  assert_int_equal(lamp_safetensors_find(ck, "param.V", &tv), LAMP_OK);
  assert_true(tu->shape[0] == 8 && tu->shape[1] == 2 && tq->shape[0] == 2 &&
              tv->shape[0] == 32 && tv->shape[1] == 2);
  float emb[4 * 32], u[16], q[2], v[64];
  assert_int_equal(lamp_safetensors_read(ad, pe, emb, sizeof(emb)), LAMP_OK);
  assert_int_equal(lamp_safetensors_read(ck, tu, u, sizeof(u)), LAMP_OK);
  assert_int_equal(lamp_safetensors_read(ck, tq, q, sizeof(q)), LAMP_OK);
  assert_int_equal(lamp_safetensors_read(ck, tv, v, sizeof(v)), LAMP_OK);
  double worst = 0, scale = 0;
  for (size_t j = 0; j < 4; j++)
    for (size_t c = 0; c < 32; c++) {
      double ref = 0;
      for (size_t i = 2 * j; i < 2 * j + 2; i++)
        for (size_t r = 0; r < 2; r++) ref += 0.5 * u[i * 2 + r] * q[r] * v[c * 2 + r];
      worst = fmax(worst, fabs(ref - emb[j * 32 + c]));
      scale = fmax(scale, fabs(ref));
    }
  assert_true(scale > 0);
  if (worst > 1e-5 * scale + 1e-7) fail_msg("adapter differs from the checkpoint by %g", worst);
  lamp_safetensors_release(ad);
  lamp_safetensors_release(ck);
}

static void compare_tensors(const char *a_path, const char *b_path) {
  lamp_safetensors *a = NULL, *b = NULL;
  assert_int_equal(lamp_safetensors_open(NULL, a_path, &a), LAMP_OK);
  assert_int_equal(lamp_safetensors_open(NULL, b_path, &b), LAMP_OK);
  size_t n = lamp_safetensors_count(a);
  assert_int_equal(n, lamp_safetensors_count(b));
  assert_int_equal(n, 9); /* U, q, V with their two moments */
  for (size_t i = 0; i < n; i++) {
    const lamp_st_tensor *ta = &lamp_safetensors_tensors(a)[i], *tb = NULL;
    assert_int_equal(lamp_safetensors_find(b, ta->name, &tb), LAMP_OK);
    assert_int_equal(ta->size, tb->size);
    char *x = malloc(ta->size), *y = malloc(tb->size);
    assert_true(x && y);
    assert_int_equal(lamp_safetensors_read(a, ta, x, ta->size), LAMP_OK);
    assert_int_equal(lamp_safetensors_read(b, tb, y, tb->size), LAMP_OK);
    if (memcmp(x, y, ta->size)) fail_msg("tensor %s differs after resuming", ta->name);
    free(x);
    free(y);
  }
  const char *keys[] = {"train.step", "train.epoch", "train.batch", "train.adam_steps"};
  for (size_t k = 0; k < 4; k++)
    assert_string_equal(lamp_safetensors_metadata_get(a, keys[k]),
                        lamp_safetensors_metadata_get(b, keys[k]));
  assert_string_equal(lamp_safetensors_metadata_get(a, "train.step"), "16");
  lamp_safetensors_release(a);
  lamp_safetensors_release(b);
}

static void test_resume_is_exact(void **state) {
  fixture *f = *state;
  /* 16 steps cross an epoch boundary (96 examples, 12 batches) */
  const char *run = "--steps 16 --lr 0.05 --warmup 3 --eval-every 5 --eval-max 8";
  run_expect(f, 0, "train --model %s --data-dir %s %s %s %s --out %s/whole", f->model,
             f->data, task_flags, prompt_flags, run, f->dir);
  run_expect(f, 0, "train --model %s --data-dir %s %s %s %s --out %s/parts --stop-after 7",
             f->model, f->data, task_flags, prompt_flags, run, f->dir);
  assert_true(log_has(f, "stopped at step 7 of 16"));
  /* a run option cannot change on resume (--model given: the default one, the real model, may
   * be absent, and its absence is another error) */
  run_expect(f, 2, "train --model %s --out %s/parts --resume --lr 0.2", f->model, f->dir);
  assert_true(log_has(f, "run option lr cannot change on resume (checkpoint: '0.05', given: '0.2')"));
  /* a finished run is not overwritten */
  run_expect(f, 2, "train --model %s --data-dir %s %s %s --out %s/whole", f->model, f->data,
             task_flags, prompt_flags, f->dir);
  run_expect(f, 0, "train --model %s --data-dir %s --out %s/parts --resume --stop-after 4",
             f->model, f->data, f->dir);
  run_expect(f, 0, "train --model %s --data-dir %s --out %s/parts --resume", f->model, f->data,
             f->dir);
  char a[400], b[400];
  snprintf(a, sizeof(a), "%s/whole/checkpoint.safetensors", f->dir);
  snprintf(b, sizeof(b), "%s/parts/checkpoint.safetensors", f->dir);
  compare_tensors(a, b);
  /* and the logged losses are the same, step by step */
  double la[32], lb[32];
  char ta[32][32], tb[32][32];
  snprintf(a, sizeof(a), "%s/whole/metrics.jsonl", f->dir);
  snprintf(b, sizeof(b), "%s/parts/metrics.jsonl", f->dir);
  size_t na = read_losses(a, la, ta, 32), nb = read_losses(b, lb, tb, 32);
  assert_int_equal(na, 16);
  assert_int_equal(nb, 16);
  for (size_t i = 0; i < 16; i++) assert_string_equal(ta[i], tb[i]);
}

/* p(class) at the answer position from the plain-C reference, no prompt, label head. */
static double reference_probability(fixture *f, const char *text, int32_t word_a, int32_t word_b,
                                    int cls) {
  int32_t ids[64];
  size_t n = strlen(text);
  assert_true(n < 64);
  for (size_t i = 0; i < n; i++) ids[i] = (unsigned char)text[i]; /* no merge applies */
  size_t len = n, seq = 0, pos = n - 1;
  int32_t labels[2] = {word_a, word_b};
  ref_llama_batch batch = {1, n, 0, ids, &len, NULL, 1, &seq, &pos, labels, 2};
  double logits[2];
  ref_llama_forward(&f->m.cfg, &f->m.w, &batch, logits);
  double mx = fmax(logits[0], logits[1]);
  return exp(logits[cls] - mx) / (exp(logits[0] - mx) + exp(logits[1] - mx));
}

static void test_predict_matches_reference(void **state) {
  fixture *f = *state;
  run_expect(f, 0, "predict --model %s %s --no-prompt 'xyz up' 'qq rr down'", f->model,
             task_flags);
  char *out = ref_train_read_file(f->log, NULL);
  assert_non_null(out);
  const char *texts[2] = {"xyz up =", "qq rr down ="};
  char *line = out;
  for (size_t i = 0; i < 2; i++) {
    char label[8], word[8];
    double p = 0;
    assert_int_equal(sscanf(line, "%7s %7s %lf", label, word, &p), 3);
    int cls = atoi(label);
    assert_string_equal(word, cls ? "b" : "a");
    double ref = reference_probability(f, texts[i], 256, 257, cls);
    if (fabs(ref - p) > 2e-4) fail_msg("predict p=%.4f for '%s', reference %.6f", p, texts[i], ref);
    assert_true(ref >= 0.5);
    line = strchr(line, '\n');
    assert_non_null(line);
    line++;
  }
  free(out);
}

/* The last run's log without lamp generate's lines on stderr: the generated texts. */
static char *log_text(fixture *f) {
  char *log = ref_train_read_file(f->log, NULL);
  assert_non_null(log);
  char *w = log;
  for (const char *r = log; *r;) {
    size_t n = strcspn(r, "\n");
    size_t len = n + (r[n] == '\n');
    if (strncmp(r, "lamp generate: ", 15)) {
      memmove(w, r, len);
      w += len;
    }
    r += len;
  }
  *w = '\0';
  return log;
}

/* The first line of the last run's log (eval's metrics, generate's text) into out. */
static void first_line(fixture *f, char *out, size_t size) {
  char *log = ref_train_read_file(f->log, NULL);
  assert_non_null(log);
  size_t n = strcspn(log, "\n");
  assert_true(n < size);
  memcpy(out, log, n);
  out[n] = '\0';
  free(log);
}

static void test_eval_and_multi_token_words(void **state) {
  fixture *f = *state;
  /* eval of a checkpoint of its own (tests do not lean on each other), on both splits */
  run_expect(f, 0, "train --model %s --data-dir %s %s %s --steps 4 --eval-every 0 "
             "--final-eval-max 4 --out %s/evalrun", f->model, f->data, task_flags, prompt_flags,
             f->dir);
  run_expect(f, 0, "eval --checkpoint %s/evalrun/checkpoint.safetensors --model %s --data-dir %s",
             f->dir, f->model, f->data);
  assert_true(log_has(f, "24 examples, accuracy"));
  assert_true(log_has(f, "prompt keys and values cached"));
  char first[2][512];
  first_line(f, first[0], sizeof(first[0]));
  /* the prompt rows in every batch: the same metrics */
  run_expect(f, 0, "eval --checkpoint %s/evalrun/checkpoint.safetensors --model %s --data-dir %s "
             "--no-prompt-cache", f->dir, f->model, f->data);
  assert_true(log_has(f, "prompt rows in every batch"));
  first_line(f, first[1], sizeof(first[1]));
  assert_string_equal(first[0], first[1]);
  run_expect(f, 0, "eval --checkpoint %s/evalrun/checkpoint.safetensors --model %s --data-dir %s "
             "--split train --limit 10", f->dir, f->model, f->data);
  assert_true(log_has(f, "10 examples, accuracy"));
  /* the prompt on another task takes that task's template and words (the checkpoint's name
   * SST-2's field), or the command line's */
  char rte[400];
  snprintf(rte, sizeof(rte), "%s/RTE", f->data);
  assert_int_equal(mkdir(rte, 0777), 0);
  snprintf(rte, sizeof(rte), "%s/RTE/dev.tsv", f->data);
  FILE *tsv = fopen(rte, "w");
  assert_non_null(tsv);
  fputs("index\tsentence1\tsentence2\tlabel\n0\tab cd\tab\tentailment\n"
        "1\txyz up\tqq\tnot_entailment\n2\tup down\tdown\tentailment\n", tsv);
  assert_int_equal(fclose(tsv), 0);
  run_expect(f, 0, "eval --checkpoint %s/evalrun/checkpoint.safetensors --model %s --data-dir %s "
             "--task rte", f->dir, f->model, f->data);
  assert_true(log_has(f, "rte dev"));
  assert_true(log_has(f, "3 examples, accuracy"));
  run_expect(f, 0, "eval --checkpoint %s/evalrun/checkpoint.safetensors --model %s --data-dir %s "
             "--task rte --template '{sentence1} ? {sentence2} =' --words ' a| b'", f->dir,
             f->model, f->data);
  assert_true(log_has(f, "3 examples, accuracy"));
  /* SST-2's own template names a field RTE does not have */
  run_expect(f, 1, "eval --checkpoint %s/evalrun/checkpoint.safetensors --model %s --data-dir %s "
             "--task rte --template '{sentence} ='", f->dir, f->model, f->data);
  assert_true(log_has(f, "unknown placeholder {sentence}"));
  /* words of three tokens each go through the vocabulary head */
  run_expect(f, 0, "train --model %s --data-dir %s --task sst2 --template '{sentence} =' "
             "--words ' no| yes' --max-tokens 40 --length 6 --method pt --batch 4 --steps 3 "
             "--eval-every 0 --final-eval-max 6 --out %s/multi", f->model, f->data, f->dir);
  assert_true(log_has(f, "(multi-token)"));
  assert_true(log_has(f, "final dev: 6 examples"));
  /* predict with the words' tokens scored after the cached prompt, and without the cache */
  char *out[2];
  for (int i = 0; i < 2; i++) {
    run_expect(f, 0, "predict --checkpoint %s/multi/checkpoint.safetensors --model %s %s "
               "'xyz up' 'qq rr down' 'ab cd'", f->dir, f->model, i ? "--no-prompt-cache" : "");
    out[i] = ref_train_read_file(f->log, NULL);
    assert_non_null(out[i]);
  }
  assert_string_equal(out[0], out[1]);
  free(out[0]), free(out[1]);
}

/* lamp generate, greedy, against the double-precision reference's argmax token by token, with
 * the key/value cache and without it; with a trained prompt first, both ways alike. */
static void test_generate_matches_reference(void **state) {
  fixture *f = *state;
  const char *text = "qq rr";
  int32_t ids[32];
  size_t n = strlen(text);
  for (size_t i = 0; i < n; i++) ids[i] = (unsigned char)text[i]; /* no merge applies */
  char expect[64] = "";
  double *logits = malloc(REF_TRAIN_VOCAB * sizeof(double));
  assert_non_null(logits);
  for (int step = 0; step < 4; step++) {
    size_t len = n, seq = 0, pos = n - 1;
    ref_llama_batch batch = {1, n, 0, ids, &len, NULL, 1, &seq, &pos, NULL, 0};
    ref_llama_forward(&f->m.cfg, &f->m.w, &batch, logits);
    int32_t best = 0;
    for (int32_t v = 1; v < REF_TRAIN_VOCAB; v++)
      if (logits[v] > logits[best]) best = v;
    ids[n++] = best;
    const char *piece = best == 256 ? " a" : best == 257 ? " b" : NULL;
    size_t at = strlen(expect);
    if (piece) snprintf(expect + at, sizeof(expect) - at, "%s", piece);
    else expect[at] = (char)best, expect[at + 1] = '\0';
  }
  free(logits);
  run_expect(f, 0, "generate --model %s --max-tokens 4 '%s' 2>/dev/null", f->model, text);
  char *out = ref_train_read_file(f->log, NULL);
  assert_non_null(out);
  if (strncmp(out, expect, strlen(expect)) || out[strlen(expect)] != '\n')
    fail_msg("generate printed '%s', the reference's greedy tokens are '%s'", out, expect);
  free(out);
  run_expect(f, 0, "generate --model %s --max-tokens 4 --no-cache '%s' 2>/dev/null", f->model,
             text);
  char text_cache[256], text_full[256];
  first_line(f, text_full, sizeof(text_full));
  assert_string_equal(text_full, expect);
  /* with a trained prompt first (a short run of its own) */
  run_expect(f, 0, "train --model %s --data-dir %s %s %s --steps 3 --eval-every 0 "
             "--final-eval-max 4 --out %s/gen", f->model, f->data, task_flags, prompt_flags,
             f->dir);
  run_expect(f, 0, "generate --model %s --max-tokens 4 --checkpoint %s/gen/checkpoint.safetensors "
             "'%s'", f->model, f->dir, text);
  assert_true(log_has(f, "4 generated"));
  assert_true(log_has(f, "KV cache"));
  run_expect(f, 0, "generate --model %s --max-tokens 4 --checkpoint %s/gen/checkpoint.safetensors "
             "'%s' 2>/dev/null", f->model, f->dir, text);
  first_line(f, text_cache, sizeof(text_cache));
  run_expect(f, 0, "generate --model %s --max-tokens 4 --checkpoint %s/gen/checkpoint.safetensors "
             "--no-cache '%s' 2>/dev/null", f->model, f->dir, text);
  first_line(f, text_full, sizeof(text_full));
  assert_string_equal(text_cache, text_full);
  run_expect(f, 0, "generate --model %s --max-tokens 4 --adapter %s/gen/adapter '%s'", f->model,
             f->dir, text);
  assert_true(log_has(f, "4 generated"));
  /* texts on stdin after the prompt, a blank line between: each continues as it does alone,
   * the later ones after the first's prompt positions (the cache truncated back to them) */
  const char *texts[3] = {text, "ab cd", "x"};
  char *alone = NULL, lines[400];
  for (int i = 0; i < 3; i++) {
    run_expect(f, 0, "generate --model %s --max-tokens 4 --checkpoint %s/gen/checkpoint.safetensors "
               "'%s'", f->model, f->dir, texts[i]);
    char *one = log_text(f);
    size_t size = (alone ? strlen(alone) : 0) + strlen(one) + 1;
    char *both = malloc(size);
    assert_non_null(both);
    snprintf(both, size, "%s%s", alone ? alone : "", one);
    free(alone), free(one);
    alone = both;
  }
  snprintf(lines, sizeof(lines), "%s/lines.txt", f->dir);
  assert_int_equal(ref_train_write_file(lines, "qq rr\n\nab cd\nx\n"), 0);
  run_expect(f, 0, "generate --model %s --max-tokens 4 --checkpoint %s/gen/checkpoint.safetensors "
             "< %s", f->model, f->dir, lines);
  assert_true(log_has(f, "model loaded in"));
  assert_true(log_has(f, "; setup "));
  char *together = log_text(f);
  assert_string_equal(together, alone);
  free(together), free(alone);
}

/* A task of the user's own: a CSV file the test writes, columns found by their header names,
 * trained, evaluated and used for prediction from the checkpoint alone. */
static void test_custom_task(void **state) {
  fixture *f = *state;
  char path[400];
  snprintf(path, sizeof(path), "%s/mine.csv", f->dir);
  size_t cap = 8192, at = 0;
  char *text = malloc(cap);
  assert_non_null(text);
  at += (size_t)snprintf(text, cap, "verdict,id,review\n");
  uint64_t seed = 11;
  for (int i = 0; i < 40; i++) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    int good = (seed >> 33) % 2;
    at += (size_t)snprintf(text + at, cap - at, "%s,%d,\"%c%c, %s\"\n", good ? "pos" : "neg", i,
                           'c' + (int)((seed >> 40) % 20), 'c' + (int)((seed >> 45) % 20),
                           good ? "up" : "down");
  }
  assert_int_equal(ref_train_write_file(path, text), 0);
  free(text);
  const char *task = "--task custom --fields review --label-field verdict --labels neg,pos "
                     "--metric f1 --template '{review} =' --words ' a| b' --max-tokens 40";
  run_expect(f, 0, "train --model %s %s --train-file %s --dev-file %s --length 8 --rank 2 "
             "--batch 8 --steps 6 --eval-every 3 --eval-max 8 --out %s/custom", f->model, task,
             path, path, f->dir);
  assert_true(log_has(f, "final dev: 40 examples, accuracy"));
  assert_true(log_has(f, ", f1 "));
  run_expect(f, 0, "eval --model %s --checkpoint %s/custom/checkpoint.safetensors --dev-file %s",
             f->model, f->dir, path);
  assert_true(log_has(f, "custom dev"));
  assert_true(log_has(f, "\"f1\": "));
  run_expect(f, 0, "predict --model %s --checkpoint %s/custom/checkpoint.safetensors 'xy, up'",
             f->model, f->dir);
  char *out = ref_train_read_file(f->log, NULL);
  assert_non_null(out);
  assert_true(!strncmp(out, "neg\ta\t", 6) || !strncmp(out, "pos\tb\t", 6));
  free(out);
  /* a header name that is not there is an error naming the file and the name */
  run_expect(f, 1, "eval --model %s --no-prompt --task custom --fields text --labels neg,pos "
             "--template '{text} =' --words ' a| b' --dev-file %s", f->model, path);
  assert_true(log_has(f, "mine.csv:1"));
  assert_true(log_has(f, "'text'"));
}

/* Defects a hostile user found (issue 17), each checked through the tool. */
static void test_hardening(void **state) {
  fixture *f = *state;
  char run[400], p[600], q[600];
  snprintf(run, sizeof(run), "%s/hard", f->dir);
  /* SIGTERM checkpoints and exits 143 (128 + 15), SIGINT 130 */
  char script[4096], cmd[700];
  snprintf(script, sizeof(script), "%s train --model %s --data-dir %s %s %s --steps 100000 "
           "--eval-every 0 --checkpoint-every 1000000 --out %s > %s 2>&1 &\npid=$!\n"
           "while [ ! -s %s/metrics.jsonl ]; do sleep 0.05; done\nkill -TERM $pid\nwait $pid\n",
           ref_train_lamp_path(), f->model, f->data, task_flags, prompt_flags, run, f->log, run);
  snprintf(cmd, sizeof(cmd), "%s/term.sh", f->dir);
  assert_int_equal(ref_train_write_file(cmd, script), 0);
  snprintf(cmd, sizeof(cmd), "sh %s/term.sh", f->dir);
  int st = system(cmd);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 143);
  assert_true(log_has(f, "stopped at step"));
  snprintf(p, sizeof(p), "%s/checkpoint.safetensors", run);
  assert_int_equal(access(p, R_OK), 0);
  /* an interrupted write's temporary files go when the run resumes; a user's file stays */
  snprintf(p, sizeof(p), "%s/checkpoint.safetensors.tmp.Ab3dE9", run);
  snprintf(q, sizeof(q), "%s/notes.tmp.Ab3dE9", run);
  assert_int_equal(ref_train_write_file(p, "partial"), 0);
  assert_int_equal(ref_train_write_file(q, "mine"), 0);
  run_expect(f, 0, "train --model %s --data-dir %s --out %s --resume --stop-after 1", f->model,
             f->data, run);
  assert_true(log_has(f, "removed 1 temporary file an interrupted write left"));
  assert_int_equal(access(p, F_OK), -1);
  assert_int_equal(access(q, F_OK), 0);
  /* a damaged value in the checkpoint: a checksum mismatch, not a "nan" prediction */
  snprintf(p, sizeof(p), "%s/checkpoint.safetensors", run);
  size_t size = 0;
  char *bytes = ref_train_read_file(p, &size);
  assert_non_null(bytes);
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = (hl << 8) | (unsigned char)bytes[i];
  float nan = NAN;
  memcpy(bytes + 8 + hl, &nan, 4); /* the first value of the first tensor */
  snprintf(q, sizeof(q), "%s/damaged.safetensors", f->dir);
  FILE *out = fopen(q, "wb");
  assert_non_null(out);
  assert_int_equal(fwrite(bytes, 1, size, out), size);
  fclose(out);
  free(bytes);
  run_expect(f, 1, "predict --model %s --checkpoint %s 'xyz up'", f->model, q);
  assert_true(log_has(f, "does not match its checksum"));
  assert_true(log_has(f, "damaged.safetensors"));
  /* --pool 0 is not a silent default */
  run_expect(f, 2, "train --model %s --data-dir %s --pool 0 --out %s/p0", f->model, f->data, f->dir);
  assert_true(log_has(f, "--pool must be at least 1"));
  /* a folder as --model is read as a Hugging Face folder and says what it lacks */
  run_expect(f, 1, "eval --no-prompt --model %s %s --data-dir %s", f->data, task_flags, f->data);
  assert_true(log_has(f, "tokenizer.json"));
}

static void test_bad_input_is_reported(void **state) {
  fixture *f = *state;
  run_expect(f, 2, "train --no-such-flag");
  assert_true(log_has(f, "unknown option '--no-such-flag'"));
  run_expect(f, 1, "eval --no-prompt --model %s --task nope", f->model);
  assert_true(log_has(f, "unknown task 'nope'"));
  run_expect(f, 1, "eval --no-prompt --model %s --words ' a' --data-dir %s", f->model, f->data);
  assert_true(log_has(f, "1 label words given; task sst2 has 2 classes"));
  run_expect(f, 1, "eval --no-prompt --model %s %s --data-dir %s/nowhere", f->model, task_flags,
             f->dir);
  assert_true(log_has(f, "nowhere is not a folder"));
  run_expect(f, 1, "eval --no-prompt --model %s %s --dev-file %s/missing.tsv", f->model,
             task_flags, f->dir);
  assert_true(log_has(f, "cannot open"));
  run_expect(f, 1, "train --model %s/none.gguf --data-dir %s --out %s/x", f->dir, f->data, f->dir);
  assert_true(log_has(f, "none.gguf not found"));
  run_expect(f, 1, "predict --model %s %s --no-prompt --template '{premise} x'", f->model,
             task_flags);
  assert_true(log_has(f, "unknown placeholder {premise}"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_train_lowers_loss_and_exports),
      cmocka_unit_test(test_resume_is_exact),
      cmocka_unit_test(test_predict_matches_reference),
      cmocka_unit_test(test_eval_and_multi_token_words),
      cmocka_unit_test(test_generate_matches_reference),
      cmocka_unit_test(test_custom_task),
      cmocka_unit_test(test_hardening),
      cmocka_unit_test(test_bad_input_is_reported),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
