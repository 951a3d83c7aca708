/* Generation with a key/value cache (lamp/cache.h): the cached-attention kernel against a
 * plain-C reference; on tests/data/tiny.gguf, the cache's logits against the full forward's at
 * every position, with and without a soft prompt and with appends of one and of many rows
 * (chunked past 64), and after a prompt of more than 64 rows; greedy decoding identical both ways; truncate and reuse against a fresh
 * cache; bad input. The prompt's cache as the prefix of batch forwards (lamp_model_forward_prefixed)
 * against the plain forward on the tiny model and the architecture fixtures, both weight
 * modes; its errors and the refused backward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "lamp/cache.h"
#include "lamp/gguf.h"
#include "lamp/train.h"
#include "model/llama_ops.h"
#include "ref.h"

#define TOL 1e-4

/* ---- the kernel ------------------------------------------------------------------------- */

/* o (n, H D) from queries q (n, qs) and cache kv (pos0 + n, 2 Hkv D), in double; with
 * window > 0 a query at position p sees p - window + 1 .. p only. */
static void ref_attention_cached(float *o, const float *q, size_t qs, const float *kv,
                                 size_t n, size_t pos0, size_t H, size_t Hkv, size_t D,
                                 double scale, double softcap, size_t window) {
  const size_t kvs = 2 * Hkv * D;
  double *p = malloc((pos0 + n) * sizeof(double));
  assert_non_null(p);
  for (size_t t = 0; t < n; t++)
    for (size_t h = 0; h < H; h++) {
      const size_t g = h / (H / Hkv), end = pos0 + t + 1;
      const size_t start = window && end > window ? end - window : 0;
      double m = -INFINITY, sum = 0;
      for (size_t j = start; j < end; j++) {
        double s = 0;
        for (size_t d = 0; d < D; d++) s += (double)q[t * qs + h * D + d] * kv[j * kvs + g * D + d];
        p[j] = softcap > 0 ? softcap * tanh(s * scale / softcap) : s * scale;
        m = fmax(m, p[j]);
      }
      for (size_t j = start; j < end; j++) sum += p[j] = exp(p[j] - m);
      for (size_t d = 0; d < D; d++) {
        double acc = 0;
        for (size_t j = start; j < end; j++) acc += p[j] * kv[j * kvs + (Hkv + g) * D + d];
        o[t * H * D + h * D + d] = (float)(acc / sum);
      }
    }
  free(p);
}

typedef struct cached_case {
  size_t n, pos0, heads, kv_heads, dim, q_extra; /* q rows are heads dim + q_extra wide */
  float scale, softcap;                          /* scale 0: 1 / sqrt(dim); softcap 0: none */
  size_t window;                                 /* 0: every earlier position */
} cached_case;

static lamp_tensor dev(lamp_context *ctx, const float *host, size_t cols, size_t rows) {
  lamp_tensor t;
  size_t ne[2] = {cols, rows};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &t));
  if (host) LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &t, host, cols * rows * sizeof(float)));
  return t;
}

static void check_cached(lamp_context *ctx, cached_case c) {
  const size_t qs = c.heads * c.dim + c.q_extra, kvs = 2 * c.kv_heads * c.dim;
  const size_t pos = c.pos0 + c.n, od = c.heads * c.dim;
  float *q = malloc(c.n * qs * sizeof(float)), *kv = malloc(pos * kvs * sizeof(float));
  float *o = malloc(c.n * od * sizeof(float)), *want = malloc(c.n * od * sizeof(float));
  assert_true(q && kv && o && want);
  ref_fill_uniform(q, c.n * qs, 11 + c.dim, -2, 2);
  ref_fill_uniform(kv, pos * kvs, 12 + c.pos0, -2, 2);
  const float scale = c.scale > 0 ? c.scale : (float)(1.0 / sqrt((double)c.dim));
  ref_attention_cached(want, q, qs, kv, c.n, c.pos0, c.heads, c.kv_heads, c.dim, scale,
                       c.softcap, c.window);
  /* a cache with spare rows past the queries' reach: the kernel must not read them */
  lamp_tensor tq = dev(ctx, q, qs, c.n), tkv = dev(ctx, kv, kvs, pos), to = dev(ctx, NULL, od, c.n);
  LAMP_OK_OR_FAIL(ctx, lamp__llama_attention_cached(ctx, &to, &tq, &tkv, c.pos0, c.heads,
                                                    c.kv_heads, c.dim, scale, c.softcap,
                                                    c.window));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &to, o, c.n * od * sizeof(float)));
  double err = ref_max_rel_error(o, want, c.n * od);
  if (!(err < TOL))
    fail_msg("cached attention n=%zu p0=%zu H=%zu Hkv=%zu D=%zu window %zu: error %g", c.n,
             c.pos0, c.heads, c.kv_heads, c.dim, c.window, err);
  lamp_tensor_release(&tq), lamp_tensor_release(&tkv), lamp_tensor_release(&to);
  free(q), free(kv), free(o), free(want);
}

static void test_attention_cached(void **state) {
  lamp_context *ctx = *state;
  check_cached(ctx, (cached_case){1, 0, 2, 1, 8, 0, 0, 0, 0});   /* the first position alone */
  check_cached(ctx, (cached_case){5, 0, 4, 2, 16, 64, 0, 0, 0}); /* a prefill, fused QKV rows */
  check_cached(ctx, (cached_case){1, 37, 3, 1, 64, 128, 0, 0, 0});  /* a decode step */
  check_cached(ctx, (cached_case){3, 9, 2, 1, 6, 0, 0, 0, 0});   /* a width not a multiple of 8 */
  /* Gemma 2: its own scale, soft-capped scores; Gemma's 256-wide heads */
  check_cached(ctx, (cached_case){3, 11, 4, 2, 16, 32, 0.3f, 1.5f, 0});
  check_cached(ctx, (cached_case){2, 5, 2, 1, LAMP__ATTENTION_MAX_DIM, 0, 0.0625f, 2.0f, 0});
  /* sliding windows: a prefill whose first queries are within the window and later ones past
   * it, a decode step far past it, a window of one (the query's own position), and a window
   * wider than the positions */
  check_cached(ctx, (cached_case){6, 3, 4, 2, 16, 0, 0, 0, 5});
  check_cached(ctx, (cached_case){1, 40, 2, 1, 8, 0, 0.3f, 1.5f, 7});
  check_cached(ctx, (cached_case){3, 2, 2, 2, 8, 0, 0, 0, 1});
  check_cached(ctx, (cached_case){2, 4, 2, 1, 8, 0, 0, 0, 100});
  if (fixture_simulator()) return;
  check_cached(ctx, (cached_case){4, 100, 2, 2, 128, 0, 0, 0, 0});
  check_cached(ctx, (cached_case){64, 200, 9, 3, 64, 384, 0, 0, 0}); /* SmolLM2-135M's heads */
}

static void test_attention_cached_errors(void **state) {
  lamp_context *ctx = *state;
  lamp_tensor tq = dev(ctx, NULL, 32, 2), tkv = dev(ctx, NULL, 16, 5), to = dev(ctx, NULL, 16, 2);
  /* the queries reach position 4 + 2 - 1 = 5; the cache holds 0 .. 4 */
  const float sc = 0.25f;
  assert_int_equal(lamp__llama_attention_cached(ctx, &to, &tq, &tkv, 4, 2, 1, 8, sc, 0, 0),
                   LAMP_ERR_SHAPE);
  assert_int_equal(lamp__llama_attention_cached(ctx, &to, &tq, &tkv, 0, 3, 2, 8, sc, 0, 0),
                   LAMP_ERR_SHAPE);
  assert_int_equal(lamp__llama_attention_cached(ctx, &to, &tq, &tkv, 0, 2, 2, 8, sc, 0, 0),
                   LAMP_ERR_SHAPE);
  assert_int_equal(lamp__llama_attention_cached(ctx, &to, &tq, &tkv, 0, 1, 1,
                                                LAMP__ATTENTION_MAX_DIM + 2, sc, 0, 0),
                   LAMP_ERR_UNSUPPORTED);
  lamp_tensor_release(&tq), lamp_tensor_release(&tkv), lamp_tensor_release(&to);
}

/* ---- the model ------------------------------------------------------------------------- */

typedef struct env {
  lamp_context *ctx;
  lamp_llm *llm;
  lamp_model *model;
  lamp_model_config cfg;
} env;

static int env_setup(void **state) {
  env *e = calloc(1, sizeof(*e));
  if (!e || fixture_setup((void **)&e->ctx)) return -1;
  if (lamp_llm_load(e->ctx, LAMP_TEST_DATA "/tiny.gguf", &e->llm) != LAMP_OK) return -1;
  e->model = lamp_llm_model(e->llm);
  lamp_model_get_config(e->model, &e->cfg);
  *state = e;
  return 0;
}

static int env_teardown(void **state) {
  env *e = *state;
  lamp_llm_release(e->llm);
  lamp_context_release(e->ctx);
  free(e);
  return 0;
}

enum { T_MAX = 70, P = 4 };

/* Tokens of the sequences checked at every position: past one chunk of 64 rows, or a few under
 * the simulator. */
static size_t n_tokens(void) { return fixture_simulator() ? 6 : T_MAX; }

static void tokens(int32_t *ids, size_t n, size_t V, uint64_t seed) {
  for (size_t i = 0; i < n; i++) ids[i] = (int32_t)((seed * 7919 + i * 104729 + i * i) % V);
}

/* The full forward's logits (n, V) at every token of ids (n), after `prompt` (rows, C) when
 * not NULL. */
static float *full_logits_after(env *e, const int32_t *ids, size_t n, const float *prompt,
                                size_t rows) {
  const size_t V = e->cfg.n_vocab, C = e->cfg.n_embd;
  lamp_model_shape s = {1, n, prompt ? rows : 0, n, 0, 0};
  lamp_model_workspace *ws = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_workspace_create(e->model, &s, &ws));
  size_t *seq = calloc(n, sizeof(size_t)), *pos = malloc(n * sizeof(size_t)), len = n;
  float *z = malloc(n * V * sizeof(float));
  assert_true(seq && pos && z);
  for (size_t i = 0; i < n; i++) pos[i] = i;
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_set_tokens(ws, 1, n, ids, &len));
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_set_outputs(ws, n, seq, pos, NULL));
  if (prompt) {
    lamp_tensor pt;
    LAMP_OK_OR_FAIL(e->ctx, lamp_model_prompt(ws, &pt));
    LAMP_OK_OR_FAIL(e->ctx, lamp_tensor_upload(e->ctx, &pt, prompt, rows * C * sizeof(float)));
  }
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_forward(ws, LAMP_MODEL_HEAD_VOCAB));
  lamp_tensor lt;
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_logits(ws, &lt));
  LAMP_OK_OR_FAIL(e->ctx, lamp_tensor_download(e->ctx, &lt, z, n * V * sizeof(float)));
  lamp_model_workspace_release(ws);
  free(seq), free(pos);
  return z;
}

static float *full_logits(env *e, const int32_t *ids, size_t n, const float *prompt) {
  return full_logits_after(e, ids, n, prompt, P);
}

static void expect_logits(env *e, const lamp_tensor *lt, const float *want, const char *what,
                          size_t at) {
  const size_t V = e->cfg.n_vocab;
  float *z = malloc(V * sizeof(float));
  assert_non_null(z);
  assert_int_equal(lt->ne[0], V);
  assert_int_equal(lamp_tensor_numel(lt), V);
  LAMP_OK_OR_FAIL(e->ctx, lamp_tensor_download(e->ctx, lt, z, V * sizeof(float)));
  double err = ref_max_rel_error(z, want, V);
  if (!(err < TOL)) fail_msg("%s: logits at token %zu differ by %g", what, at, err);
  free(z);
}

/* Appends ids (T) in pieces of the given sizes (the last repeated to the end) to a cache of
 * `base` positions, checking the logits at the end of each piece against `want` (T, V). */
static void check_pieces(env *e, lamp_model_cache *k, size_t base, const lamp_tensor *prompt,
                         const int32_t *ids, const float *want, const size_t *pieces,
                         size_t n_pieces, const char *what) {
  const size_t V = e->cfg.n_vocab, T = n_tokens();
  lamp_tensor lt;
  size_t at = 0;
  for (size_t i = 0; at < T; i++) {
    size_t n = pieces[i < n_pieces ? i : n_pieces - 1];
    if (n > T - at) n = T - at;
    /* the prompt goes in with the first piece, in the same call */
    LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_append(k, i == 0 ? prompt : NULL, ids + at, n, &lt));
    at += n;
    expect_logits(e, &lt, want + (at - 1) * V, what, at - 1);
  }
  assert_int_equal(lamp_model_cache_length(k), base + (prompt ? P : 0) + T);
}

static void test_cache_matches_forward(void **state) {
  env *e = *state;
  const size_t C = e->cfg.n_embd, T = n_tokens();
  int32_t ids[T_MAX];
  tokens(ids, T, e->cfg.n_vocab, 3);
  float *prompt = malloc(P * C * sizeof(float));
  assert_non_null(prompt);
  ref_fill_uniform(prompt, P * C, 5, -1, 1);
  lamp_tensor pt = dev(e->ctx, prompt, C, P);
  lamp_model_cache *k = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_create(e->model, P + T, &k));
  assert_true(lamp_model_cache_bytes(k) > 0);
  const size_t one[] = {1}, many[] = {5, 65}; /* 65: a chunk of 64, then one row */
  for (int with_prompt = 0; with_prompt < 2; with_prompt++) {
    float *want = full_logits(e, ids, T, with_prompt ? prompt : NULL);
    const lamp_tensor *p = with_prompt ? &pt : NULL;
    LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_truncate(k, 0));
    check_pieces(e, k, 0, p, ids, want, one, 1, with_prompt ? "prompt, one by one" : "one by one");
    LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_truncate(k, 0));
    check_pieces(e, k, 0, p, ids, want, many, 2, with_prompt ? "prompt, in pieces" : "in pieces");
    free(want);
  }
  /* the prompt alone first, without the output head, then the tokens */
  float *want = full_logits(e, ids, T, prompt);
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_truncate(k, 0));
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_append(k, &pt, NULL, 0, NULL));
  assert_int_equal(lamp_model_cache_length(k), P);
  check_pieces(e, k, P, NULL, ids, want, many + 1, 1, "prompt appended alone");
  free(want);
  lamp_model_cache_release(k);
  lamp_tensor_release(&pt);
  free(prompt);
}

/* A prompt longer than one chunk of 64 rows (as a trained prompt of 100 rows is), appended in
 * one call, then tokens. */
static void test_cache_long_prompt(void **state) {
  env *e = *state;
  const size_t C = e->cfg.n_embd, V = e->cfg.n_vocab, rows = fixture_simulator() ? 5 : 70;
  enum { N = 3 };
  int32_t ids[N];
  tokens(ids, N, V, 31);
  float *prompt = malloc(rows * C * sizeof(float));
  assert_non_null(prompt);
  ref_fill_uniform(prompt, rows * C, 33, -1, 1);
  float *want = full_logits_after(e, ids, N, prompt, rows);
  lamp_tensor pt = dev(e->ctx, prompt, C, rows), lt;
  lamp_model_cache *k = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_create(e->model, rows + N, &k));
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_append(k, &pt, ids, 1, &lt));
  expect_logits(e, &lt, want, "long prompt", 0);
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_append(k, NULL, ids + 1, N - 1, &lt));
  expect_logits(e, &lt, want + (N - 1) * V, "long prompt", N - 1);
  assert_int_equal(lamp_model_cache_length(k), rows + N);
  lamp_model_cache_release(k);
  lamp_tensor_release(&pt);
  free(prompt), free(want);
}

static int32_t argmax(const float *z, size_t V) {
  size_t best = 0;
  for (size_t i = 1; i < V; i++)
    if (z[i] > z[best]) best = i;
  return (int32_t)best;
}

/* Greedy continuation of 4 tokens by 12 (3 under the simulator), rerunning the full forward each step (as lamp
 * generate --no-cache does) and with the cache. */
static void test_cache_greedy(void **state) {
  env *e = *state;
  const size_t V = e->cfg.n_vocab, n0 = 4, steps = fixture_simulator() ? 3 : 12;
  int32_t full[16], cached[16];
  tokens(full, n0, V, 9);
  memcpy(cached, full, sizeof(full));
  for (size_t s = 0; s < steps; s++) {
    float *z = full_logits(e, full, n0 + s, NULL);
    full[n0 + s] = argmax(z + (n0 + s - 1) * V, V);
    free(z);
  }
  lamp_model_cache *k = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_create(e->model, 16, &k));
  float *z = malloc(V * sizeof(float));
  assert_non_null(z);
  lamp_tensor lt;
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_append(k, NULL, cached, n0, &lt));
  for (size_t s = 0; s < steps; s++) {
    LAMP_OK_OR_FAIL(e->ctx, lamp_tensor_download(e->ctx, &lt, z, V * sizeof(float)));
    cached[n0 + s] = argmax(z, V);
    if (s + 1 < steps)
      LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_append(k, NULL, &cached[n0 + s], 1, &lt));
  }
  for (size_t s = 0; s < n0 + steps; s++)
    if (full[s] != cached[s])
      fail_msg("greedy token %zu: %d without the cache, %d with it", s, full[s], cached[s]);
  lamp_model_cache_release(k);
  free(z);
}

/* A prompt prefilled once, then two texts after it: the second, after truncating back to the
 * prompt, gives the logits of a fresh cache. */
static void test_cache_truncate_reuse(void **state) {
  env *e = *state;
  const size_t C = e->cfg.n_embd, V = e->cfg.n_vocab;
  enum { N = 9 };
  int32_t a[N], b[N];
  tokens(a, N, V, 21);
  tokens(b, N, V, 22);
  float *prompt = malloc(P * C * sizeof(float)), *want = malloc(V * sizeof(float));
  assert_true(prompt && want);
  ref_fill_uniform(prompt, P * C, 23, -1, 1);
  lamp_tensor pt = dev(e->ctx, prompt, C, P), lt;
  lamp_model_cache *fresh = NULL, *k = NULL;
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_create(e->model, 32, &fresh));
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_create(e->model, 32, &k));
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_append(fresh, &pt, b, N, &lt));
  LAMP_OK_OR_FAIL(e->ctx, lamp_tensor_download(e->ctx, &lt, want, V * sizeof(float)));
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_append(k, &pt, NULL, 0, NULL));
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_append(k, NULL, a, N, &lt));
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_truncate(k, P));
  assert_int_equal(lamp_model_cache_length(k), P);
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_append(k, NULL, b, N, &lt));
  expect_logits(e, &lt, want, "after truncate", N - 1);
  /* and in the middle of a text: back to 3 tokens of b, then the rest again */
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_truncate(k, P + 3));
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_append(k, NULL, b + 3, N - 3, &lt));
  expect_logits(e, &lt, want, "after a truncate inside the text", N - 1);
  lamp_model_cache_release(fresh);
  lamp_model_cache_release(k);
  lamp_tensor_release(&pt);
  free(prompt), free(want);
}

static void test_cache_errors(void **state) {
  env *e = *state;
  lamp_model_cache *k = NULL;
  lamp_tensor lt;
  assert_int_equal(lamp_model_cache_create(e->model, 0, &k), LAMP_ERR_INVALID_ARGUMENT);
  assert_null(k);
  assert_int_equal(lamp_model_cache_create(NULL, 4, &k), LAMP_ERR_INVALID_ARGUMENT);
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_create(e->model, 4, &k));
  const int32_t ids[5] = {1, 2, 3, 4, 5}, bad = (int32_t)e->cfg.n_vocab;
  assert_int_equal(lamp_model_cache_append(k, NULL, ids, 5, &lt), LAMP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(lamp_context_error(e->ctx), "exceed the cache's 4"));
  assert_int_equal(lamp_model_cache_append(k, NULL, &bad, 1, &lt), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_model_cache_append(k, NULL, NULL, 0, &lt), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_model_cache_append(k, NULL, NULL, 2, &lt), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_model_cache_length(k), 0);
  LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_append(k, NULL, ids, 3, NULL));
  assert_int_equal(lamp_model_cache_truncate(k, 4), LAMP_ERR_INVALID_ARGUMENT);
  lamp_tensor wide = dev(e->ctx, NULL, e->cfg.n_embd + 1, 1);
  assert_int_equal(lamp_model_cache_append(k, &wide, NULL, 0, &lt), LAMP_ERR_SHAPE);
  assert_int_equal(lamp_model_cache_length(k), 3);
  lamp_tensor_release(&wide);
  lamp_model_cache_release(k);
  lamp_model_cache_release(NULL);
}

/* ---- the prompt's keys and values as the prefix of a batch forward ---------------------- */

enum { PP = 5, PB = 3, PT = 9, PK = 3 }; /* P + T within Mistral's 16-position window */

/* A model of a GGUF file or a Hugging Face folder in weights mode w. */
static lamp_model *load_model(lamp_context *ctx, const char *path, int gguf, lamp_model_weights w) {
  const lamp_model_options opt = {w, NULL};
  lamp_model *m = NULL;
  if (gguf) {
    lamp_gguf *g = NULL;
    LAMP_OK_OR_FAIL(ctx, lamp_gguf_open(ctx, path, &g));
    LAMP_OK_OR_FAIL(ctx, lamp_model_create_gguf_with(ctx, g, &opt, &m));
    lamp_gguf_release(g);
  } else {
    LAMP_OK_OR_FAIL(ctx, lamp_model_create_safetensors_with(ctx, path, &opt, &m));
  }
  assert_int_equal(lamp_model_get_weights(m), w);
  return m;
}

/* A cache holding `rows` rows of the prompt (PP, C) on the device. */
static lamp_model_cache *prefix_cache(lamp_context *ctx, lamp_model *m, const lamp_tensor *prompt,
                                      size_t rows) {
  lamp_model_cache *k = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_cache_create(m, PP + 1, &k));
  lamp_tensor part = *prompt;
  part.ne[1] = rows;
  LAMP_OK_OR_FAIL(ctx, lamp_model_cache_append(k, &part, NULL, 0, NULL));
  return k;
}

/* A batch of `batch` sequences of lengths `len` (T the longest) and its outputs: each
 * sequence's last token and, when it has more than one, its first; targets cycle through the
 * labels (valid vocabulary ids too). Returns M. */
static size_t prefix_batch(lamp_context *ctx, lamp_model_workspace *ws, size_t V, size_t batch,
                           const size_t *len, uint64_t seed) {
  int32_t ids[PB * PT], targets[2 * PB];
  size_t T = 0, seq[2 * PB], pos[2 * PB], M = 0;
  for (size_t b = 0; b < batch; b++) T = len[b] > T ? len[b] : T;
  for (size_t b = 0; b < batch; b++) {
    tokens(ids + b * T, T, V, seed + b);
    seq[M] = b, pos[M] = len[b] - 1, targets[M] = (int32_t)(M % PK), M++;
    if (len[b] > 1) seq[M] = b, pos[M] = 0, targets[M] = (int32_t)(M % PK), M++;
  }
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_tokens(ws, batch, T, ids, len));
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_outputs(ws, M, seq, pos, targets));
  return M;
}

/* The logits (M, width) and losses (M) of the last forward, appended to out. */
static void prefix_results(lamp_context *ctx, lamp_model_workspace *ws, size_t M, size_t width,
                           float *out) {
  lamp_tensor lt, ls;
  LAMP_OK_OR_FAIL(ctx, lamp_model_logits(ws, &lt));
  LAMP_OK_OR_FAIL(ctx, lamp_model_losses(ws, &ls));
  assert_int_equal(lamp_tensor_numel(&lt), M * width);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &lt, out, M * width * sizeof(float)));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &ls, out + M * width, M * sizeof(float)));
}

/* The prefixed forward against the plain one on model m, both heads, batches with and without
 * padding, every block's activations kept and recomputed (the backward's layout): the logits
 * and losses agree within TOL of their scale. The prefixed forward runs first on each batch,
 * the first time on a fresh workspace, so it cannot lean on the plain forward's rows. */
static void check_prefixed(lamp_context *ctx, lamp_model *m, const char *what) {
  lamp_model_config c;
  LAMP_OK_OR_FAIL(ctx, lamp_model_get_config(m, &c));
  const size_t C = c.n_embd, V = c.n_vocab;
  float *prompt = malloc(PP * C * sizeof(float));
  float *want = malloc(2 * PB * (V + 1) * sizeof(float)), *got = malloc(2 * PB * (V + 1) * sizeof(float));
  assert_true(prompt && want && got);
  ref_fill_uniform(prompt, PP * C, 41, -1, 1);
  lamp_tensor pt = dev(ctx, prompt, C, PP);
  lamp_model_cache *k = prefix_cache(ctx, m, &pt, PP);
  const int32_t labels[PK] = {1, 2, 3};
  const size_t cases[][PB + 1] = {
      {3, PT, 4, 1},     /* padding, a one-token sequence */
      {1, PT},           /* one sequence, no padding */
      {2, 6, 6},         /* shorter than the workspace's tokens */
      {3, 2, 7, 5},
  };
  const size_t n_cases = fixture_simulator() ? 1 : sizeof(cases) / sizeof(cases[0]);
  double worst[2][2] = {{0, 0}, {0, 0}}; /* [head][logits, losses] */
  for (int rec = 0; rec < (fixture_simulator() ? 1 : 2); rec++) {
    lamp_model_shape s = {PB, PT, PP, 2 * PB, PK, rec};
    lamp_model_workspace *ws = NULL;
    LAMP_OK_OR_FAIL(ctx, lamp_model_workspace_create(m, &s, &ws));
    LAMP_OK_OR_FAIL(ctx, lamp_model_set_labels(ws, PK, labels));
    lamp_tensor pin;
    LAMP_OK_OR_FAIL(ctx, lamp_model_prompt(ws, &pin));
    for (size_t i = 0; i < n_cases; i++) {
      const size_t B = cases[i][0], *len = cases[i] + 1;
      size_t M = prefix_batch(ctx, ws, V, B, len, 50 + i);
      for (int head = 0; head < 2; head++) {
        const size_t width = head ? PK : V;
        LAMP_OK_OR_FAIL(ctx, lamp_model_forward_prefixed(ws, k, (lamp_model_head)head));
        prefix_results(ctx, ws, M, width, got);
        /* the workspace's prompt input, filled only now: the prefixed forward never reads it */
        LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &pin, prompt, PP * C * sizeof(float)));
        LAMP_OK_OR_FAIL(ctx, lamp_model_forward(ws, (lamp_model_head)head));
        prefix_results(ctx, ws, M, width, want);
        double e[2] = {ref_max_rel_error(got, want, M * width),
                       ref_max_rel_error(got + M * width, want + M * width, M)};
        for (int j = 0; j < 2; j++) {
          if (!(e[j] < TOL))
            fail_msg("%s, case %zu, %s head, recompute %d: %s differ by %g of their scale", what,
                     i, head ? "label" : "vocabulary", rec, j ? "losses" : "logits", e[j]);
          if (e[j] > worst[head][j]) worst[head][j] = e[j];
        }
      }
    }
    lamp_model_workspace_release(ws);
  }
  print_message("%s: prefixed forward within %.2e (vocabulary logits), %.2e (losses); label "
                "logits %.2e, losses %.2e\n", what, worst[0][0], worst[0][1], worst[1][0],
                worst[1][1]);
  lamp_model_cache_release(k);
  lamp_tensor_release(&pt);
  free(prompt), free(want), free(got);
}

static void test_prefixed_tiny(void **state) {
  env *e = *state;
  check_prefixed(e->ctx, e->model, "tiny (f32)");
  if (fixture_simulator()) return; /* the file's F32 matrices stay f32 when stored */
  lamp_model *m = load_model(e->ctx, LAMP_TEST_DATA "/tiny.gguf", 1, LAMP_MODEL_WEIGHTS_STORED);
  check_prefixed(e->ctx, m, "tiny (stored)");
  lamp_model_release(m);
}

/* Qwen2 (Q/K/V biases), Mistral, Phi-3 (fused matrices), Gemma 2 (sandwich norms, GeGLU,
 * soft-capping, scaled prompt) and Gemma 3 (Q/K norms, per-layer RoPE) from tests/data/arch,
 * F16 on file: f32 weights and weights as stored (under the simulator Qwen2 as stored only). */
static void test_prefixed_arch(void **state) {
  env *e = *state;
  const char *names[] = {"qwen2", "mistral", "phi3", "gemma2", "gemma3"};
  const int sim = fixture_simulator();
  for (size_t i = 0; i < (sim ? 1u : sizeof(names) / sizeof(names[0])); i++)
    for (int stored = sim; stored < 2; stored++) {
      char dir[1024], what[64];
      snprintf(dir, sizeof(dir), "%s/arch/%s", LAMP_TEST_DATA, names[i]);
      snprintf(what, sizeof(what), "%s (%s)", names[i], stored ? "stored" : "f32");
      lamp_model *m = load_model(e->ctx, dir, 0,
                                 stored ? LAMP_MODEL_WEIGHTS_STORED : LAMP_MODEL_WEIGHTS_F32);
      check_prefixed(e->ctx, m, what);
      lamp_model_release(m);
    }
}

/* Mistral's sliding window (16, every layer) and Gemma 2's and Gemma 3's (32, their local
 * layers) in the generation cache, past the window: the logits at every position, one token
 * per append, against transformers' float64 ones (tests/data/arch/<name>/window.txt, written by
 * gen_arch_models.py --window), in both weight modes (under the simulator Mistral f32 only). */
static void test_cache_window(void **state) {
  env *e = *state;
  const char *names[] = {"mistral", "gemma2", "gemma3"};
  const int sim = fixture_simulator();
  for (size_t i = 0; i < (sim ? 1u : sizeof(names) / sizeof(names[0])); i++)
    for (int stored = 0; stored < (sim ? 1 : 2); stored++) {
      char dir[1024], path[1100];
      snprintf(dir, sizeof(dir), "%s/arch/%s", LAMP_TEST_DATA, names[i]);
      snprintf(path, sizeof(path), "%s/window.txt", dir);
      ref_window rw;
      if (ref_window_read(path, &rw)) fail_msg("cannot read %s", path);
      const size_t W = rw.window, T = rw.tokens, V = rw.vocab;
      const int32_t *ids = rw.ids;
      const float *want = rw.logits;
      assert_true(T > W);
      float *z = malloc(V * sizeof(float));
      assert_non_null(z);
      lamp_model *m = load_model(e->ctx, dir, 0,
                                 stored ? LAMP_MODEL_WEIGHTS_STORED : LAMP_MODEL_WEIGHTS_F32);
      lamp_model_config c;
      lamp_model_get_config(m, &c);
      assert_int_equal(c.sliding_window, W);
      assert_int_equal(c.n_vocab, V);
      lamp_model_cache *k = NULL;
      LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_create(m, T, &k));
      double worst = 0;
      for (size_t t = 0; t < T; t++) {
        lamp_tensor lt;
        LAMP_OK_OR_FAIL(e->ctx, lamp_model_cache_append(k, NULL, &ids[t], 1, &lt));
        LAMP_OK_OR_FAIL(e->ctx, lamp_tensor_download(e->ctx, &lt, z, V * sizeof(float)));
        double err = ref_max_rel_error(z, want + t * V, V);
        if (!(err < 1e-5))
          fail_msg("%s (%s): cache logits at position %zu (window %zu) differ by %g", names[i],
                   stored ? "stored" : "f32", t, W, err);
        if (err > worst) worst = err;
      }
      printf("%s (%s): cache past the %zu-position window within %.2g of transformers\n",
             names[i], stored ? "stored" : "f32", W, worst);
      lamp_model_cache_release(k);
      lamp_model_release(m);
      ref_window_free(&rw);
      free(z);
    }
}

/* A cache that is not the workspace's prompt, a workspace without one, and the backward. */
static void test_prefixed_errors(void **state) {
  env *e = *state;
  lamp_context *ctx = e->ctx;
  const size_t C = e->cfg.n_embd, V = e->cfg.n_vocab, len[1] = {4};
  float *prompt = malloc((PP + 1) * C * sizeof(float));
  assert_non_null(prompt);
  ref_fill_uniform(prompt, (PP + 1) * C, 43, -1, 1);
  lamp_tensor pt = dev(ctx, prompt, C, PP + 1);
  lamp_model_cache *k = prefix_cache(ctx, e->model, &pt, PP);
  lamp_model_cache *shorter = prefix_cache(ctx, e->model, &pt, PP - 1);
  lamp_model_cache *longer = prefix_cache(ctx, e->model, &pt, PP + 1);
  lamp_model *other = load_model(ctx, LAMP_TEST_DATA "/tiny.gguf", 1, LAMP_MODEL_WEIGHTS_F32);
  lamp_model_cache *foreign = prefix_cache(ctx, other, &pt, PP);
  lamp_model_shape s = {PB, PT, PP, 2 * PB, PK, 0}, bare = {PB, PT, 0, 2 * PB, PK, 0};
  lamp_model_workspace *ws = NULL, *wb = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_workspace_create(e->model, &s, &ws));
  LAMP_OK_OR_FAIL(ctx, lamp_model_workspace_create(e->model, &bare, &wb));
  prefix_batch(ctx, ws, V, 1, len, 60);
  prefix_batch(ctx, wb, V, 1, len, 60);
  const lamp_model_head vh = LAMP_MODEL_HEAD_VOCAB;
  assert_int_equal(lamp_model_forward_prefixed(ws, shorter, vh), LAMP_ERR_SHAPE);
  assert_non_null(strstr(lamp_context_error(ctx), "holds 4 positions, the workspace's prompt is 5"));
  assert_int_equal(lamp_model_forward_prefixed(ws, longer, vh), LAMP_ERR_SHAPE);
  assert_non_null(strstr(lamp_context_error(ctx), "holds 6 positions"));
  assert_int_equal(lamp_model_forward_prefixed(ws, foreign, vh), LAMP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(lamp_context_error(ctx), "another model"));
  assert_int_equal(lamp_model_forward_prefixed(wb, k, vh), LAMP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(lamp_context_error(ctx), "no prompt rows"));
  assert_int_equal(lamp_model_forward_prefixed(ws, NULL, vh), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_model_forward_prefixed(NULL, k, vh), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(lamp_model_forward_prefixed(ws, k, (lamp_model_head)7),
                   LAMP_ERR_INVALID_ARGUMENT);
  /* refused forwards leave no logits behind */
  lamp_tensor lt;
  assert_int_equal(lamp_model_logits(ws, &lt), LAMP_ERR_INVALID_ARGUMENT);
  /* no gradient through the cache; a plain forward after it has one again */
  LAMP_OK_OR_FAIL(ctx, lamp_model_forward_prefixed(ws, k, vh));
  assert_int_equal(lamp_model_backward(ws), LAMP_ERR_UNSUPPORTED);
  assert_non_null(strstr(lamp_context_error(ctx), "no gradient path"));
  LAMP_OK_OR_FAIL(ctx, lamp_model_forward(ws, vh));
  LAMP_OK_OR_FAIL(ctx, lamp_model_backward(ws));
  lamp_model_workspace_release(ws);
  lamp_model_workspace_release(wb);
  lamp_model_cache_release(k);
  lamp_model_cache_release(shorter);
  lamp_model_cache_release(longer);
  lamp_model_cache_release(foreign);
  lamp_model_release(other);
  lamp_tensor_release(&pt);
  free(prompt);
}

int main(void) {
  const struct CMUnitTest kernel[] = {
      cmocka_unit_test(test_attention_cached),
      cmocka_unit_test(test_attention_cached_errors),
  };
  const struct CMUnitTest model[] = {
      cmocka_unit_test(test_cache_matches_forward),
      cmocka_unit_test(test_cache_long_prompt),
      cmocka_unit_test(test_cache_greedy),
      cmocka_unit_test(test_cache_truncate_reuse),
      cmocka_unit_test(test_cache_errors),
      cmocka_unit_test(test_prefixed_tiny),
      cmocka_unit_test(test_prefixed_arch),
      cmocka_unit_test(test_prefixed_errors),
      cmocka_unit_test(test_cache_window),
  };
  int fails = cmocka_run_group_tests_name("cached attention", kernel, fixture_setup,
                                          fixture_teardown);
  return fails + cmocka_run_group_tests_name("model cache", model, env_setup, env_teardown);
}
