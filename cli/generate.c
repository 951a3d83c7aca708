/* lamp generate: continues a text with the frozen model, greedy or sampled (temperature and
 * top-k with a seed), printing each token as soon as it is chosen.
 *
 * With --checkpoint or --adapter a trained prompt goes first, as in training. A key/value cache
 * (lamp/cache.h) holds the keys and values of every position so far, so each new token runs
 * the model on one row. --no-cache reruns the full forward over the whole sequence for every
 * token instead (step n costs a forward over n rows), the path the cache is checked against.
 * With no TEXT every line of stdin is one text; the cache keeps the prompt's positions from one
 * text to the next (lamp_model_cache_truncate), so the prompt runs through the model once. */
#include "generate.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "context.h"
#include "lamp/lamp.h"
#include "lamp/train.h"

#define GEN_DEFAULT_MODEL "models/SmolLM2-135M-Instruct.Q4_1.gguf"

typedef struct gen_opts {
  const char *model;
  long max_tokens;
  double temperature; /* 0: greedy */
  long top_k;         /* 0: the whole vocabulary */
  uint64_t seed;
  int has_seed;
  int chat;
  int no_cache;
  lamp_model_weights weights;
  const char *system;
  const char *checkpoint, *adapter; /* a trained prompt to put first */
  char *text; /* the positional arguments joined by spaces; NULL: the lines of stdin */
} gen_opts;

typedef struct gen_state {
  lamp_context *ctx;
  lamp_llm *llm;
  lamp_model *model;
  lamp_tokenizer *tok;
  lamp_prompt *prompt;   /* NULL: none */
  size_t prompt_rows;
  size_t n_ctx;          /* longest sequence the model was trained for (0: unknown) */
  int32_t stop[2];       /* ids that end the text: EOS and, in chat, the end of a turn */
} gen_state;

static double gen_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void gen_usage(FILE *out) {
  fprintf(out,
          "usage: lamp generate [options] TEXT...\n"
          "       lamp generate [options] < FILE (one text per line)\n"
          "\n"
          "Continues TEXT with the frozen model and prints the new tokens as they come.\n"
          "\n"
          "options:\n"
          "  --model FILE|DIR   GGUF file, or a Hugging Face folder (config.json,\n"
          "                     model.safetensors or its index, tokenizer.json)\n"
          "                     [" GEN_DEFAULT_MODEL "]\n"
          "  --max-tokens N     tokens to generate at most [64]\n"
          "  --temperature T    0 = greedy; above 0 samples from softmax(logits / T) [0]\n"
          "  --top-k K          sample among the K likeliest tokens, 0 = all [0]\n"
          "  --seed S           sampling seed [from the clock, printed at the end]\n"
          "  --chat             wrap TEXT as a user turn of a ChatML conversation\n"
          "                     (<|im_start|>user ... <|im_start|>assistant) and stop at the\n"
          "                     end of the assistant's turn\n"
          "  --system TEXT      with --chat: a system turn first\n"
          "  --checkpoint FILE  put the prompt of a lamp train checkpoint first\n"
          "  --adapter PATH     put a PEFT prompt-tuning adapter's prompt first\n"
          "  --no-cache         rerun the forward over the whole sequence for every token\n"
          "                     instead of keeping a key/value cache (for comparison)\n"
          "  --weights W        f32, stored (as the file stores them) or auto [auto]\n"
          "\n"
          "Generation stops at the end-of-text token, after N tokens, or at the model's context\n"
          "length. The speed in tokens/s goes to stderr at the end. With no TEXT each line of\n"
          "stdin is a text (blank lines skipped), its continuation one line of output; a trained\n"
          "prompt's keys and values are computed for the first and reused by the others.\n");
}

static int gen_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("lamp generate: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

static int gen_long(const char *flag, const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) {
    fprintf(stderr, "lamp generate: %s wants an integer in %ld..%ld, not '%s'\n", flag, lo, hi,
            s);
    return 2;
  }
  *out = v;
  return 0;
}

static int gen_parse(int argc, char **argv, gen_opts *o) {
  memset(o, 0, sizeof(*o));
  o->model = GEN_DEFAULT_MODEL;
  o->max_tokens = 64;
  size_t text_len = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    int has_value = i + 1 < argc;
    long v = 0;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      gen_usage(stdout);
      return -1;
    } else if (!strcmp(a, "--chat")) {
      o->chat = 1;
    } else if (!strcmp(a, "--no-cache")) {
      o->no_cache = 1;
    } else if (!strncmp(a, "--", 2) && a[2] && !has_value) {
      fprintf(stderr, "lamp generate: %s needs a value (or is unknown)\n", a);
      return 2;
    } else if (!strcmp(a, "--model")) {
      o->model = argv[++i];
    } else if (!strcmp(a, "--system")) {
      o->system = argv[++i];
    } else if (!strcmp(a, "--checkpoint")) {
      o->checkpoint = argv[++i];
    } else if (!strcmp(a, "--adapter")) {
      o->adapter = argv[++i];
    } else if (!strcmp(a, "--weights")) {
      if (lamp_model_weights_parse(argv[++i], &o->weights) != LAMP_OK) {
        fprintf(stderr, "lamp generate: --weights %s: use auto, f32 or stored\n", argv[i]);
        return 2;
      }
    } else if (!strcmp(a, "--max-tokens")) {
      if (gen_long(a, argv[++i], 1, 1000000, &v)) return 2;
      o->max_tokens = v;
    } else if (!strcmp(a, "--top-k")) {
      if (gen_long(a, argv[++i], 0, 1 << 24, &v)) return 2;
      o->top_k = v;
    } else if (!strcmp(a, "--seed")) {
      char *end;
      errno = 0;
      o->seed = strtoull(argv[++i], &end, 10);
      if (errno || *end || !argv[i][0] || argv[i][0] == '-') {
        fprintf(stderr, "lamp generate: --seed wants a non-negative integer, not '%s'\n",
                argv[i]);
        return 2;
      }
      o->has_seed = 1;
    } else if (!strcmp(a, "--temperature")) {
      char *end;
      o->temperature = strtod(argv[++i], &end);
      if (*end || end == argv[i] || !(o->temperature >= 0) || o->temperature > 1e6) {
        fprintf(stderr, "lamp generate: --temperature wants a number >= 0, not '%s'\n", argv[i]);
        return 2;
      }
    } else if (!strncmp(a, "--", 2) && a[2]) {
      fprintf(stderr, "lamp generate: unknown option %s\n", a);
      gen_usage(stderr);
      return 2;
    } else {
      size_t n = strlen(a);
      char *t = realloc(o->text, text_len + n + 2);
      if (!t) return gen_error("out of memory") + 1;
      o->text = t;
      if (text_len) o->text[text_len++] = ' ';
      memcpy(o->text + text_len, a, n + 1);
      text_len += n;
    }
  }
  if (!o->text && isatty(STDIN_FILENO)) {
    fprintf(stderr, "lamp generate: no TEXT to continue (give it, or lines on stdin)\n");
    gen_usage(stderr);
    return 2;
  }
  if (o->system && !o->chat) {
    fprintf(stderr, "lamp generate: --system needs --chat\n");
    return 2;
  }
  if (o->checkpoint && o->adapter) {
    fprintf(stderr, "lamp generate: --checkpoint and --adapter exclude each other\n");
    return 2;
  }
  if ((o->top_k || o->has_seed) && o->temperature == 0)
    fprintf(stderr, "lamp generate: note: --top-k and --seed have no effect without "
            "--temperature (greedy)\n");
  return 0;
}

/* The text the model sees: TEXT, or with --chat a ChatML conversation ending where the
 * assistant's answer starts. */
static char *gen_prompt(const gen_opts *o, const char *text) {
  const char *sys = o->system ? o->system : "";
  size_t n = strlen(text) + strlen(sys) + 128;
  char *p = malloc(n);
  if (!p) return NULL;
  if (!o->chat) snprintf(p, n, "%s", text);
  else if (o->system)
    snprintf(p, n, "<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n%s<|im_end|>\n"
             "<|im_start|>assistant\n", sys, text);
  else
    snprintf(p, n, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", text);
  return p;
}

static uint64_t gen_rng(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

typedef struct gen_cand {
  float z;
  int32_t id;
} gen_cand;

static int gen_by_logit(const void *a, const void *b) {
  const gen_cand *x = a, *y = b;
  if (x->z != y->z) return x->z > y->z ? -1 : 1;
  return x->id < y->id ? -1 : 1;
}

/* The next token from the logits (V): the largest (lowest id on ties) when greedy, else a draw
 * from softmax(z / T) over the top-k. `cand` is V entries of scratch. */
static int32_t gen_choose(const float *z, size_t V, const gen_opts *o, uint64_t *rng,
                          gen_cand *cand) {
  if (o->temperature == 0) {
    size_t best = 0;
    for (size_t i = 1; i < V; i++)
      if (z[i] > z[best]) best = i;
    return (int32_t)best;
  }
  for (size_t i = 0; i < V; i++) cand[i] = (gen_cand){z[i], (int32_t)i};
  size_t k = o->top_k > 0 && (size_t)o->top_k < V ? (size_t)o->top_k : V;
  qsort(cand, V, sizeof(*cand), gen_by_logit);
  double total = 0, zmax = cand[0].z;
  for (size_t i = 0; i < k; i++) total += exp((cand[i].z - zmax) / o->temperature);
  double u = (double)(gen_rng(rng) >> 11) * 0x1.0p-53 * total, acc = 0;
  for (size_t i = 0; i < k; i++) {
    acc += exp((cand[i].z - zmax) / o->temperature);
    if (u < acc) return cand[i].id;
  }
  return cand[k - 1].id;
}

/* How the next token's logits are computed: a key/value cache, or the full forward over a
 * workspace for the whole sequence (--no-cache). */
typedef struct gen_step {
  size_t cap;             /* positions after the prompt it serves (0: not made yet) */
  lamp_model_cache *cache;
  lamp_tensor rows;       /* with the cache and a prompt: its (P, C) rows, filled once */
  lamp_model_workspace *ws;
  lamp_tensor pin;        /* without the cache: the workspace's prompt input */
} gen_step;

static lamp_status gen_step_init(gen_state *g, const gen_opts *o, size_t cap, gen_step *s) {
  memset(s, 0, sizeof(*s));
  const size_t P = g->prompt_rows;
  s->cap = cap;
  if (o->no_cache) {
    lamp_model_shape shape = {1, cap, P, 1, 0, 0};
    lamp_status st = lamp_model_workspace_create(g->model, &shape, &s->ws);
    if (st == LAMP_OK && g->prompt) st = lamp_model_prompt(s->ws, &s->pin);
    return st;
  }
  lamp_status st = lamp_model_cache_create(g->model, P + cap, &s->cache);
  if (st != LAMP_OK || !g->prompt) return st;
  lamp_model_config cfg;
  lamp_model_get_config(g->model, &cfg);
  size_t ne[2] = {cfg.n_embd, P};
  st = lamp_tensor_create(g->ctx, LAMP_DTYPE_F32, 2, ne, &s->rows);
  return st == LAMP_OK ? lamp_prompt_forward(g->prompt, &s->rows) : st;
}

static void gen_step_release(gen_step *s) {
  lamp_model_cache_release(s->cache);
  lamp_tensor_release(&s->rows);
  lamp_model_workspace_release(s->ws);
  memset(s, 0, sizeof(*s));
}

/* Makes s serve a text of `cap` positions after the prompt. One large enough is kept, its cache
 * back to the prompt's positions (computed for an earlier text, not again); a smaller one is
 * made anew, twice as large, so that a few longer texts do not each recompute the prompt. */
static lamp_status gen_step_ready(gen_state *g, const gen_opts *o, size_t cap, gen_step *s) {
  const size_t P = g->prompt_rows;
  if (s->cap >= cap) {
    /* shorter than P only when the first append failed: it then starts from the prompt again */
    if (s->cache && lamp_model_cache_length(s->cache) > P)
      return lamp_model_cache_truncate(s->cache, P);
    return LAMP_OK;
  }
  size_t grown = s->cap ? 2 * s->cap : cap;
  if (grown < cap) grown = cap;
  if (g->n_ctx && grown > g->n_ctx - P) grown = cap > g->n_ctx - P ? cap : g->n_ctx - P;
  gen_step_release(s);
  return gen_step_init(g, o, grown, s);
}

/* Into *lt, the logits after seq[0 .. len-1]: the cache appends what it lacks (the prompt and
 * the text at first, then one token), the full forward reruns everything. */
static lamp_status gen_step_logits(gen_state *g, gen_step *s, const int32_t *seq, size_t len,
                                   lamp_tensor *lt) {
  if (s->cache) {
    size_t have = lamp_model_cache_length(s->cache), P = g->prompt_rows;
    const lamp_tensor *rows = have == 0 && g->prompt ? &s->rows : NULL;
    size_t done = have > P ? have - P : 0;
    return lamp_model_cache_append(s->cache, rows, seq + done, len - done, lt);
  }
  const size_t last = len - 1, zero = 0;
  lamp_status st;
  /* the workspace's prompt rows are an input to fill before each forward */
  if ((g->prompt && (st = lamp_prompt_forward(g->prompt, &s->pin)) != LAMP_OK) ||
      (st = lamp_model_set_tokens(s->ws, 1, len, seq, &len)) != LAMP_OK ||
      (st = lamp_model_set_outputs(s->ws, 1, &zero, &last, NULL)) != LAMP_OK ||
      (st = lamp_model_forward(s->ws, LAMP_MODEL_HEAD_VOCAB)) != LAMP_OK)
    return st;
  return lamp_model_logits(s->ws, lt);
}

/* Continues one text with the step state `step` (kept for the next text). `first`: the first
 * text, whose setup time includes loading the model. */
static int gen_run(gen_state *g, const gen_opts *o, const char *text, gen_step *step,
                   double t_start, int first) {
  char *prompt = gen_prompt(o, text);
  if (!prompt) return gen_error("out of memory");
  size_t n_prompt = 0;
  lamp_status st = lamp_tokenizer_encode(g->ctx, g->tok, prompt, strlen(prompt),
                                         LAMP_TOKENIZE_PARSE_SPECIAL, NULL, 0, &n_prompt);
  if (st != LAMP_OK || n_prompt == 0) {
    free(prompt);
    return gen_error(st != LAMP_OK ? "tokenizer: %s" : "TEXT gives no tokens%s",
                     st != LAMP_OK ? lamp_context_error(g->ctx) : "");
  }
  size_t max_new = (size_t)o->max_tokens, P = g->prompt_rows;
  if (g->n_ctx && P + n_prompt >= g->n_ctx) {
    free(prompt);
    return gen_error("the text has %zu tokens after %zu prompt rows, the model's context is %zu",
                     n_prompt, P, g->n_ctx);
  }
  if (g->n_ctx && P + n_prompt + max_new > g->n_ctx) max_new = g->n_ctx - P - n_prompt;
  const size_t cap = n_prompt + max_new;
  lamp_model_config cfg;
  lamp_model_get_config(g->model, &cfg);
  const size_t V = cfg.n_vocab;
  int32_t *seq = malloc(cap * sizeof(int32_t));
  gen_cand *order = malloc(V * sizeof(gen_cand));
  float *z = malloc(V * sizeof(float));
  int rc = 0;
  if (!seq || !order || !z) {
    rc = gen_error("out of memory");
    goto done;
  }
  st = lamp_tokenizer_encode(g->ctx, g->tok, prompt, strlen(prompt),
                             LAMP_TOKENIZE_PARSE_SPECIAL, seq, cap, &n_prompt);
  for (size_t i = 0; i < n_prompt && st == LAMP_OK; i++)
    if (seq[i] < 0 || (size_t)seq[i] >= V) {
      rc = gen_error("the tokenizer gives id %d, outside the model's %zu-token vocabulary",
                     seq[i], V);
      goto done;
    }
  if (st == LAMP_OK) st = gen_step_ready(g, o, cap, step);
  if (st != LAMP_OK) {
    rc = gen_error("%s", lamp_context_error(g->ctx));
    goto done;
  }
  uint64_t rng = o->seed;
  size_t len = n_prompt, generated = 0;
  double t_first = 0, t0 = gen_now();
  while (generated < max_new) {
    lamp_tensor lt;
    if ((st = gen_step_logits(g, step, seq, len, &lt)) != LAMP_OK ||
        (st = lamp_tensor_download(g->ctx, &lt, z, V * sizeof(float))) != LAMP_OK) {
      rc = gen_error("%s", lamp_context_error(g->ctx));
      break;
    }
    for (size_t i = 0; i < V; i++)
      if (!isfinite(z[i])) {
        rc = gen_error("the model gave a non-finite logit (token %zu) at step %zu", i,
                       generated);
        goto done;
      }
    int32_t next = gen_choose(z, V, o, &rng, order);
    if (generated == 0) t_first = gen_now();
    if (next == g->stop[0] || next == g->stop[1]) break;
    seq[len++] = next;
    generated++;
    char piece[256];
    size_t n = 0;
    /* each token continues the prompt (SentencePiece keeps its leading space) */
    if (lamp_tokenizer_decode(g->ctx, g->tok, &next, 1, LAMP_DETOKENIZE_CONTINUE, piece,
                              sizeof(piece), &n) == LAMP_OK)
      fwrite(piece, 1, n, stdout);
    fflush(stdout);
  }
  putchar('\n');
  fflush(stdout);
  double t1 = gen_now();
  if (rc == 0) {
    fprintf(stderr, "lamp generate: %zu prompt tokens, %zu generated in %.2f s (%.2f tokens/s; "
            "first token after %.2f s; %s); %s %.2f s; %s",
            n_prompt, generated, t1 - t0, generated ? (double)generated / (t1 - t0) : 0.0,
            t_first - t0, o->no_cache ? "no cache" : "KV cache",
            first ? "model loaded in" : "setup", t0 - t_start, lamp_context_device(g->ctx)->name);
    if (o->temperature > 0)
      fprintf(stderr, "; temperature %g, top-k %ld, seed %llu", o->temperature, o->top_k,
              (unsigned long long)o->seed);
    fputc('\n', stderr);
  }
done:
  free(prompt), free(seq), free(order), free(z);
  return rc;
}

/* Every line of stdin as a text, blank lines skipped, with one step state for them all. */
static int gen_lines(gen_state *g, const gen_opts *o, gen_step *step, double t_start) {
  char *line = NULL;
  size_t size = 0, texts = 0;
  ssize_t got;
  int rc = 0;
  while (!rc && (got = getline(&line, &size, stdin)) >= 0) {
    while (got && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = '\0';
    if (!got) continue;
    rc = gen_run(g, o, line, step, texts ? gen_now() : t_start, texts == 0);
    texts++;
  }
  free(line);
  if (!rc && !texts) rc = gen_error("no text on stdin");
  return rc;
}

int lamp_cli_generate(int argc, char **argv) {
  gen_opts o;
  int prc = gen_parse(argc, argv, &o);
  if (prc) {
    free(o.text);
    return prc < 0 ? 0 : prc;
  }
  if (!o.has_seed) o.seed = (uint64_t)time(NULL);
  double t_start = gen_now();
  gen_state g = {NULL, NULL, NULL, NULL, NULL, 0, 0, {-1, -1}};
  char err[2048];
  int rc = 1;
  lamp_status st = lamp_context_create(NULL, &g.ctx, err, sizeof(err));
  if (st != LAMP_OK) {
    gen_error("cannot create a context: %s: %s", lamp_status_name(st), err);
    goto done;
  }
  const lamp_model_options mo = {o.weights, NULL};
  if ((st = lamp_llm_load_with(g.ctx, o.model, &mo, &g.llm)) != LAMP_OK) {
    gen_error("%s", lamp_context_error(g.ctx));
    goto done;
  }
  lamp_llm_info info;
  lamp_llm_get_info(g.llm, &info);
  g.model = lamp_llm_model(g.llm);
  g.tok = lamp_llm_tokenizer(g.llm);
  g.n_ctx = info.n_ctx;
  g.stop[0] = info.special.eos;
  if (o.checkpoint) {
    lamp_checkpoint *ck = NULL;
    st = lamp_checkpoint_open(g.ctx, o.checkpoint, &ck);
    if (st == LAMP_OK) st = lamp_checkpoint_prompt(ck, g.llm, &g.prompt);
    lamp_checkpoint_release(ck);
  } else if (o.adapter) {
    st = lamp_peft_import(g.llm, o.adapter, &g.prompt);
  }
  size_t width = 0;
  if (st == LAMP_OK && g.prompt) st = lamp_prompt_output_shape(g.prompt, &g.prompt_rows, &width);
  if (st != LAMP_OK) {
    gen_error("%s", lamp_context_error(g.ctx));
    goto done;
  }
  if (o.chat) {
    static const char *end_turn = "<|im_end|>";
    int32_t id = -1, start = -1;
    if (lamp_tokenizer_find(g.ctx, g.tok, end_turn, strlen(end_turn), &id) != LAMP_OK ||
        lamp_tokenizer_find(g.ctx, g.tok, "<|im_start|>", 12, &start) != LAMP_OK) {
      gen_error("--chat needs a ChatML tokenizer (<|im_start|> and <|im_end|>); %s has none",
                o.model);
      goto done;
    }
    g.stop[1] = id;
  }
  gen_step step;
  memset(&step, 0, sizeof(step));
  rc = o.text ? gen_run(&g, &o, o.text, &step, t_start, 1) : gen_lines(&g, &o, &step, t_start);
  gen_step_release(&step);
done:
  lamp_prompt_release(g.prompt);
  lamp_llm_release(g.llm);
  lamp_cli_context_release(g.ctx);
  free(o.text);
  return rc;
}
