/* The architectures beyond Llama (Qwen2, Mistral, Phi-3) against tests/data/arch/<name>/, which
 * tests/gen_arch_models.py wrote with Hugging Face transformers in float64: each tiny model is
 * loaded from its Hugging Face folder and from its GGUF file (llama.cpp's names and row orders),
 * with f32 weights and with weights as stored (F16), and each must give the reference's logits
 * on a token sequence and its gradient of a cross-entropy with respect to a prepended soft
 * prompt. Also: the errors for architectures and features lamp does not run, and the
 * configurations of released models.
 *
 * Tolerance: float32 with another summation order than float64. A logit may differ by LOGIT_TOL
 * relative to the largest logit magnitude of its row, a gradient entry by GRAD_TOL relative to
 * the gradient's largest magnitude, the loss by LOSS_TOL relative. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "lamp/cache.h"
#include "lamp/gguf.h"
#include "lamp/model.h"
#include "ref.h"

#define LOGIT_TOL 1e-4
#define GRAD_TOL 1e-4
#define LOSS_TOL 1e-5
enum { MAX_T = 32, MAX_V = 256, MAX_P = 8, MAX_C = 64, MAX_M = 8 };

typedef struct ref_arch {
  size_t t, v, p, c, m;
  int32_t tokens[MAX_T];
  double logits[MAX_T * MAX_V];
  double prompt[MAX_P * MAX_C];
  size_t pos[MAX_M];
  int32_t targets[MAX_M];
  double loss;
  double grad[MAX_P * MAX_C];
} ref_arch;

static void arch_dir(char *out, size_t size, const char *name) {
  snprintf(out, size, "%s/arch/%s", LAMP_TEST_DATA, name);
}

static void expect(FILE *f, const char *word) {
  char got[32];
  if (fscanf(f, "%31s", got) != 1 || strcmp(got, word))
    fail_msg("reference: expected \"%s\"", word);
}

static void read_doubles(FILE *f, double *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (fscanf(f, "%lf", &v[i]) != 1) fail_msg("reference: value %zu of %zu", i, n);
}

static void read_reference(const char *name, ref_arch *r) {
  char path[1024];
  arch_dir(path, sizeof(path), name);
  strncat(path, "/ref.txt", sizeof(path) - strlen(path) - 1);
  FILE *f = fopen(path, "r");
  if (!f) fail_msg("cannot open %s", path);
  expect(f, "tokens");
  assert_int_equal(fscanf(f, "%zu", &r->t), 1);
  assert_true(r->t <= MAX_T);
  for (size_t i = 0; i < r->t; i++) assert_int_equal(fscanf(f, "%d", &r->tokens[i]), 1);
  size_t t2;
  expect(f, "logits");
  assert_int_equal(fscanf(f, "%zu %zu", &t2, &r->v), 2);
  assert_true(t2 == r->t && r->v <= MAX_V);
  read_doubles(f, r->logits, r->t * r->v);
  expect(f, "prompt");
  assert_int_equal(fscanf(f, "%zu %zu", &r->p, &r->c), 2);
  assert_true(r->p <= MAX_P && r->c <= MAX_C);
  read_doubles(f, r->prompt, r->p * r->c);
  expect(f, "outputs");
  assert_int_equal(fscanf(f, "%zu", &r->m), 1);
  assert_true(r->m <= MAX_M);
  for (size_t i = 0; i < r->m; i++) assert_int_equal(fscanf(f, "%zu", &r->pos[i]), 1);
  for (size_t i = 0; i < r->m; i++) assert_int_equal(fscanf(f, "%d", &r->targets[i]), 1);
  expect(f, "loss");
  assert_int_equal(fscanf(f, "%lf", &r->loss), 1);
  expect(f, "grad");
  size_t p2, c2;
  assert_int_equal(fscanf(f, "%zu %zu", &p2, &c2), 2);
  assert_true(p2 == r->p && c2 == r->c);
  read_doubles(f, r->grad, r->p * r->c);
  fclose(f);
}

/* z (T, V) = the logits of every position of ids (T), no prompt. */
static void forward_logits(lamp_context *ctx, lamp_model *model, const int32_t *ids, size_t T,
                           size_t V, float *z) {
  lamp_model_shape s = {1, T, 0, T, 0, 0};
  lamp_model_workspace *ws = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_workspace_create(model, &s, &ws));
  size_t len = T, *seq = calloc(T, sizeof(size_t)), *pos = malloc(T * sizeof(size_t));
  assert_true(seq && pos);
  for (size_t i = 0; i < T; i++) pos[i] = i;
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_tokens(ws, 1, T, ids, &len));
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_outputs(ws, T, seq, pos, NULL));
  LAMP_OK_OR_FAIL(ctx, lamp_model_forward(ws, LAMP_MODEL_HEAD_VOCAB));
  lamp_tensor lt;
  LAMP_OK_OR_FAIL(ctx, lamp_model_logits(ws, &lt));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &lt, z, T * V * sizeof(float)));
  lamp_model_workspace_release(ws);
  free(seq), free(pos);
}

/* The logits of every position of the reference's tokens, no prompt. */
static void check_logits(lamp_context *ctx, lamp_model *model, const ref_arch *r,
                         const char *what) {
  static float z[MAX_T * MAX_V];
  forward_logits(ctx, model, r->tokens, r->t, r->v, z);
  double worst = 0;
  for (size_t t = 0; t < r->t; t++) {
    const double *row = r->logits + t * r->v;
    double scale = 0;
    for (size_t j = 0; j < r->v; j++) scale = fmax(scale, fabs(row[j]));
    for (size_t j = 0; j < r->v; j++) {
      double e = fabs(z[t * r->v + j] - row[j]) / scale;
      worst = fmax(worst, e);
      if (e > LOGIT_TOL)
        fail_msg("%s: logit (%zu, %zu) is %.7g, reference %.7g", what, t, j,
                 (double)z[t * r->v + j], row[j]);
    }
  }
  print_message("%s: logits within %.2e of the row scale\n", what, worst);
}

/* The loss and its prompt gradient, the prompt prepended to the reference's tokens; blocks
 * recomputed in the backward with `recompute`. */
static void check_grad(lamp_context *ctx, lamp_model *model, const ref_arch *r, const char *what,
                       int recompute) {
  lamp_model_shape s = {1, r->t, r->p, r->m, 0, recompute};
  lamp_model_workspace *ws = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_workspace_create(model, &s, &ws));
  size_t len = r->t, seq[MAX_M] = {0};
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_tokens(ws, 1, r->t, r->tokens, &len));
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_outputs(ws, r->m, seq, r->pos, r->targets));
  float host[MAX_P * MAX_C];
  for (size_t i = 0; i < r->p * r->c; i++) host[i] = (float)r->prompt[i];
  lamp_tensor pt, gt, lt;
  LAMP_OK_OR_FAIL(ctx, lamp_model_prompt(ws, &pt));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &pt, host, r->p * r->c * sizeof(float)));
  LAMP_OK_OR_FAIL(ctx, lamp_model_forward(ws, LAMP_MODEL_HEAD_VOCAB));
  LAMP_OK_OR_FAIL(ctx, lamp_model_backward(ws));
  float losses[MAX_M], grad[MAX_P * MAX_C];
  LAMP_OK_OR_FAIL(ctx, lamp_model_losses(ws, &lt));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &lt, losses, r->m * sizeof(float)));
  LAMP_OK_OR_FAIL(ctx, lamp_model_prompt_grad(ws, &gt));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &gt, grad, r->p * r->c * sizeof(float)));
  lamp_model_workspace_release(ws);
  double loss = 0;
  for (size_t i = 0; i < r->m; i++) loss += losses[i] / (double)r->m;
  double loss_err = fabs(loss - r->loss) / fabs(r->loss);
  if (!(loss_err <= LOSS_TOL)) fail_msg("%s: loss %.9g, reference %.9g", what, loss, r->loss);
  double scale = 0, worst = 0;
  for (size_t i = 0; i < r->p * r->c; i++) scale = fmax(scale, fabs(r->grad[i]));
  assert_true(scale > 0);
  for (size_t i = 0; i < r->p * r->c; i++) {
    double e = fabs(grad[i] - r->grad[i]) / scale;
    worst = fmax(worst, e);
    if (e > GRAD_TOL)
      fail_msg("%s: prompt gradient %zu is %.7g, reference %.7g (scale %.3g)", what, i,
               (double)grad[i], r->grad[i], scale);
  }
  print_message("%s: loss within %.2e, prompt gradient within %.2e of its scale\n", what,
                loss_err, worst);
}

static double row_error(const float *got, const double *want, size_t v) {
  double scale = 0, worst = 0;
  for (size_t j = 0; j < v; j++) scale = fmax(scale, fabs(want[j]));
  for (size_t j = 0; j < v; j++) worst = fmax(worst, fabs(got[j] - want[j]) / scale);
  return worst;
}

/* Generation with the key/value cache: the tokens appended as a chunk, then one at a time, each
 * append's logits against the reference's; then after a prompt, against lamp's own forward
 * with that prompt (which check_grad ties to the reference). */
static void check_cache(lamp_context *ctx, lamp_model *model, const ref_arch *r,
                        const char *what) {
  lamp_model_cache *cache = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_cache_create(model, r->p + r->t, &cache));
  static float z[MAX_V];
  double worst = 0;
  const size_t first = 4;
  for (size_t t = first - 1; t < r->t; t++) {
    const int32_t *ids = t == first - 1 ? r->tokens : r->tokens + t;
    lamp_tensor lt;
    LAMP_OK_OR_FAIL(ctx, lamp_model_cache_append(cache, NULL, ids, t == first - 1 ? first : 1,
                                                 &lt));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &lt, z, r->v * sizeof(float)));
    double e = row_error(z, r->logits + t * r->v, r->v);
    if (e > LOGIT_TOL) fail_msg("%s: cached logits of token %zu off by %.3e", what, t, e);
    worst = fmax(worst, e);
  }
  /* the prompt's rows, then every token at once */
  LAMP_OK_OR_FAIL(ctx, lamp_model_cache_truncate(cache, 0));
  float host[MAX_P * MAX_C];
  for (size_t i = 0; i < r->p * r->c; i++) host[i] = (float)r->prompt[i];
  lamp_tensor prompt, lt;
  size_t ne[2] = {r->c, r->p};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &prompt));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &prompt, host, r->p * r->c * sizeof(float)));
  LAMP_OK_OR_FAIL(ctx, lamp_model_cache_append(cache, &prompt, r->tokens, r->t, &lt));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &lt, z, r->v * sizeof(float)));
  lamp_model_cache_release(cache);
  lamp_model_shape s = {1, r->t, r->p, 1, 0, 0};
  lamp_model_workspace *ws = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_workspace_create(model, &s, &ws));
  size_t len = r->t, seq = 0, pos = r->t - 1;
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_tokens(ws, 1, r->t, r->tokens, &len));
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_outputs(ws, 1, &seq, &pos, NULL));
  lamp_tensor pt;
  LAMP_OK_OR_FAIL(ctx, lamp_model_prompt(ws, &pt));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &pt, host, r->p * r->c * sizeof(float)));
  LAMP_OK_OR_FAIL(ctx, lamp_model_forward(ws, LAMP_MODEL_HEAD_VOCAB));
  static float full[MAX_V];
  double want[MAX_V];
  LAMP_OK_OR_FAIL(ctx, lamp_model_logits(ws, &lt));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &lt, full, r->v * sizeof(float)));
  lamp_model_workspace_release(ws);
  lamp_tensor_release(&prompt);
  for (size_t j = 0; j < r->v; j++) want[j] = full[j];
  double e = row_error(z, want, r->v);
  if (e > LOGIT_TOL) fail_msg("%s: cached logits after the prompt off by %.3e", what, e);
  print_message("%s: cached logits within %.2e of the reference, %.2e of the forward after a "
                "prompt\n", what, worst, e);
}

/* Both loads of one fixture with one weights mode. */
static void check_loads(lamp_context *ctx, const ref_arch *r, const char *name, int arch,
                        int qkv_bias, size_t window, size_t gguf_window,
                        lamp_model_weights weights) {
  char dir[1024], gguf_path[1100], what[64];
  arch_dir(dir, sizeof(dir), name);
  snprintf(gguf_path, sizeof(gguf_path), "%s/model.gguf", dir);
  const lamp_model_options opt = {weights, NULL};
  const char *mode = lamp_model_weights_name(weights);
  lamp_model *hf = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_create_safetensors_with(ctx, dir, &opt, &hf));
  assert_int_equal(lamp_model_get_weights(hf), weights);
  lamp_model_config c;
  assert_int_equal(lamp_model_get_config(hf, &c), LAMP_OK);
  assert_int_equal(c.arch, arch);
  assert_int_equal(c.qkv_bias, qkv_bias);
  assert_int_equal(c.sliding_window, window);
  assert_int_equal(c.n_vocab, r->v);
  snprintf(what, sizeof(what), "%s (Hugging Face, %s)", name, mode);
  check_logits(ctx, hf, r, what);
  check_grad(ctx, hf, r, what, 0);
  check_cache(ctx, hf, r, what);
  snprintf(what, sizeof(what), "%s (Hugging Face, %s, recomputing)", name, mode);
  check_grad(ctx, hf, r, what, 1);
  /* the plan predicts the weights and a workspace (Gemma's sandwich norms keep more) */
  for (int recompute = 0; recompute < 2; recompute++) {
    lamp_model_shape s = {2, r->t, r->p, r->m, 0, recompute};
    lamp_model_plan plan;
    LAMP_OK_OR_FAIL(ctx, lamp_model_plan_safetensors(ctx, dir, &s, weights, &plan));
    assert_int_equal(plan.weights_total, lamp_model_weight_bytes(hf));
    lamp_model_workspace *ws = NULL;
    LAMP_OK_OR_FAIL(ctx, lamp_model_workspace_create(hf, &s, &ws));
    assert_int_equal(plan.workspace + plan.activations, lamp_model_workspace_bytes(ws));
    lamp_model_workspace_release(ws);
  }
  lamp_model_release(hf);

  lamp_gguf *g = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_gguf_open(ctx, gguf_path, &g));
  lamp_model *gm = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_create_gguf_with(ctx, g, &opt, &gm));
  assert_int_equal(lamp_model_get_weights(gm), weights);
  lamp_gguf_release(g);
  assert_int_equal(lamp_model_get_config(gm, &c), LAMP_OK);
  /* llama.cpp converts Mistral to its "llama" architecture */
  assert_int_equal(c.arch, arch == LAMP_MODEL_ARCH_MISTRAL ? LAMP_MODEL_ARCH_LLAMA : arch);
  assert_int_equal(c.qkv_bias, qkv_bias);
  assert_int_equal(c.sliding_window, gguf_window);
  snprintf(what, sizeof(what), "%s (GGUF, %s)", name, mode);
  check_logits(ctx, gm, r, what);
  check_grad(ctx, gm, r, what, 0);
  lamp_model_release(gm);
}

/* f32 weights, and weights as stored (F16 matrices, dequantised before each product). */
static void check_arch(void **state, const char *name, int arch, int qkv_bias, size_t window,
                       size_t gguf_window) {
  static ref_arch r;
  read_reference(name, &r);
  check_loads(*state, &r, name, arch, qkv_bias, window, gguf_window, LAMP_MODEL_WEIGHTS_F32);
  /* the dequantising kernels are test_dequant's to simulate */
  if (!fixture_simulator())
    check_loads(*state, &r, name, arch, qkv_bias, window, gguf_window, LAMP_MODEL_WEIGHTS_STORED);
}

static void test_qwen2(void **state) { check_arch(state, "qwen2", LAMP_MODEL_ARCH_QWEN2, 1, 0, 0); }

/* Mistral and Phi-3 launch only the Llama kernels, which test_model checks under a
 * simulator; Qwen2 adds the bias kernel. */
static void test_mistral(void **state) {
  if (fixture_simulator()) skip();
  check_arch(state, "mistral", LAMP_MODEL_ARCH_MISTRAL, 0, 16, 0);
}

static void test_phi3(void **state) {
  if (fixture_simulator()) skip();
  check_arch(state, "phi3", LAMP_MODEL_ARCH_PHI3, 0, 2047, 2047);
}

/* The configuration in tests/data/arch/<name>/config.json. */
static void fixture_config(lamp_context *ctx, const char *name, lamp_model_config *c) {
  char path[1100], rel[64];
  snprintf(rel, sizeof(rel), "%s/config.json", name);
  arch_dir(path, sizeof(path), rel);
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  static char json[4096];
  size_t n = fread(json, 1, sizeof(json), f);
  fclose(f);
  LAMP_OK_OR_FAIL(ctx, lamp_model_config_from_hf(ctx, json, n, c));
}

/* Gemma 2: sandwich norms of 1 + w (HF's files hold w, GGUF's 1 + w), GeGLU, embeddings
 * (the prompt's too) times sqrt(C), its query scale, soft-capped scores and logits; its
 * kernels run under a simulator. */
static void test_gemma2(void **state) {
  lamp_context *ctx = *state;
  lamp_model_config c;
  fixture_config(ctx, "gemma2", &c);
  assert_true(c.query_scale == 0.25f && c.attn_softcap == 1.5f && c.final_softcap == 3.0f);
  assert_true(c.tied_embeddings && c.head_dim == 16);
  check_arch(state, "gemma2", LAMP_MODEL_ARCH_GEMMA2, 0, 32, 32);
}

/* Gemma 3: Gemma 2's block without soft-capping, plus Q/K head norms (1 + w) and a RoPE base
 * of 10000 on local layers (layer 0) and 1e6 on global ones (layer 1); the prompt enters
 * unscaled. */
static void test_gemma3(void **state) {
  lamp_context *ctx = *state;
  lamp_model_config c;
  fixture_config(ctx, "gemma3", &c);
  assert_true(c.query_scale == 0.25f && c.attn_softcap == 0.0f && c.final_softcap == 0.0f);
  assert_true(c.rope_base == 1e6f && c.rope_base_local == 1e4f && c.window_pattern == 2);
  check_arch(state, "gemma3", LAMP_MODEL_ARCH_GEMMA3, 0, 32, 32);
}

/* Mistral's and Gemma's windows in a workspace: the logits at every position of a sequence
 * longer than the window against transformers' (window.txt). */
static void check_window_logits(lamp_context *ctx, const char *name, lamp_model_weights weights) {
  char dir[1024], path[1100];
  arch_dir(dir, sizeof(dir), name);
  snprintf(path, sizeof(path), "%s/window.txt", dir);
  ref_window rw;
  if (ref_window_read(path, &rw)) fail_msg("cannot read %s", path);
  const size_t T = rw.tokens, V = rw.vocab;
  assert_true(T > rw.window);
  const lamp_model_options opt = {weights, NULL};
  lamp_model *m = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_create_safetensors_with(ctx, dir, &opt, &m));
  float *z = malloc(T * V * sizeof(float));
  assert_non_null(z);
  forward_logits(ctx, m, rw.ids, T, V, z);
  double worst = 0;
  for (size_t t = 0; t < T; t++) {
    double e = ref_max_rel_error(z + t * V, rw.logits + t * V, V);
    if (!(e <= LOGIT_TOL))
      fail_msg("%s (%s): logits at position %zu (window %zu) off by %.3e", name,
               lamp_model_weights_name(weights), t, rw.window, e);
    worst = fmax(worst, e);
  }
  print_message("%s (%s): %zu positions past the %zu-position window within %.2e\n", name,
                lamp_model_weights_name(weights), T, rw.window, worst);
  lamp_model_release(m);
  ref_window_free(&rw);
  free(z);
}

/* The largest magnitude of the prompt gradient (P rows) of one cross-entropy scored at token
 * position `at` of ids (T). */
static double prompt_grad_max(lamp_context *ctx, lamp_model *m, size_t P, const int32_t *ids,
                              size_t T, size_t at) {
  lamp_model_config c;
  LAMP_OK_OR_FAIL(ctx, lamp_model_get_config(m, &c));
  lamp_model_shape s = {1, T, P, 1, 0, 0};
  lamp_model_workspace *ws = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_workspace_create(m, &s, &ws));
  size_t len = T, seq = 0;
  const int32_t target = 7;
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_tokens(ws, 1, T, ids, &len));
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_outputs(ws, 1, &seq, &at, &target));
  const size_t n = P * c.n_embd;
  float *host = malloc(n * sizeof(float));
  assert_non_null(host);
  ref_fill_uniform(host, n, 91, -1, 1);
  lamp_tensor pt, gt;
  LAMP_OK_OR_FAIL(ctx, lamp_model_prompt(ws, &pt));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &pt, host, n * sizeof(float)));
  LAMP_OK_OR_FAIL(ctx, lamp_model_forward(ws, LAMP_MODEL_HEAD_VOCAB));
  LAMP_OK_OR_FAIL(ctx, lamp_model_backward(ws));
  LAMP_OK_OR_FAIL(ctx, lamp_model_prompt_grad(ws, &gt));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &gt, host, n * sizeof(float)));
  lamp_model_workspace_release(ws);
  double g = 0;
  for (size_t i = 0; i < n; i++) g = fmax(g, fabs(host[i]));
  free(host);
  return g;
}

/* Past the attention window. A workspace attends within Mistral's window (every layer) and
 * Gemma's (local layers): its logits match transformers' past the window, and its backward
 * keeps the window too. With L layers of window W a position sees the inputs of the last
 * L (W - 1) + 1 positions only, so the prompt gradient of a position scored L (W - 1) tokens
 * after the prompt is exactly zero, and one position nearer it is not. Phi-3's window is not
 * kept (its cache and workspaces refuse positions past it). */
static void test_window(void **state) {
  lamp_context *ctx = *state;
  const int sim = fixture_simulator();
  const char *names[] = {"mistral", "gemma2", "gemma3"};
  for (size_t i = 0; i < (sim ? 1u : 3u); i++) {
    check_window_logits(ctx, names[i], LAMP_MODEL_WEIGHTS_F32);
    if (!sim) check_window_logits(ctx, names[i], LAMP_MODEL_WEIGHTS_STORED);
  }
  char dir[1024];
  arch_dir(dir, sizeof(dir), "mistral");
  lamp_model *m = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_create_safetensors(ctx, dir, &m));
  lamp_model_config c;
  LAMP_OK_OR_FAIL(ctx, lamp_model_get_config(m, &c));
  const size_t P = 4, reach = c.n_layers * (c.sliding_window - 1), T = reach + 2;
  int32_t ids[64];
  assert_true(T <= 64);
  for (size_t t = 0; t < T; t++) ids[t] = (int32_t)((t * 37 + 11) % c.n_vocab);
  double near = prompt_grad_max(ctx, m, P, ids, T, reach - 1);
  double far = prompt_grad_max(ctx, m, P, ids, T, reach);
  print_message("mistral: prompt gradient %.3g at %zu tokens past the prompt, %g at %zu\n",
                near, reach - 1, far, reach);
  assert_true(near > 1e-6);
  assert_true(far == 0.0);
  lamp_model_release(m);

  arch_dir(dir, sizeof(dir), "phi3");
  LAMP_OK_OR_FAIL(ctx, lamp_model_create_safetensors(ctx, dir, &m));
  lamp_model_workspace *ws = NULL;
  lamp_model_shape over = {1, 2045, 3, 1, 0, 0};
  assert_int_equal(lamp_model_workspace_create(m, &over, &ws), LAMP_ERR_UNSUPPORTED);
  assert_null(ws);
  assert_non_null(strstr(lamp_context_error(ctx), "2047-position attention window"));
  lamp_model_cache *cache = NULL;
  assert_int_equal(lamp_model_cache_create(m, 2048, &cache), LAMP_ERR_UNSUPPORTED);
  assert_null(cache);
  assert_non_null(strstr(lamp_context_error(ctx), "2047-position attention window"));
  LAMP_OK_OR_FAIL(ctx, lamp_model_cache_create(m, 2047, &cache));
  lamp_model_cache_release(cache);
  lamp_model_release(m);
}

static void expect_hf_error(lamp_context *ctx, const char *json, lamp_status want,
                            const char *const *words) {
  lamp_model_config c;
  lamp_status st = lamp_model_config_from_hf(ctx, json, strlen(json), &c);
  if (st != want)
    fail_msg("%s -> %s (%s)", json, lamp_status_name(st), lamp_context_error(ctx));
  for (const char *const *w = words; *w; w++)
    if (!strstr(lamp_context_error(ctx), *w))
      fail_msg("\"%s\" lacks \"%s\"", lamp_context_error(ctx), *w);
}

static lamp_status no_lookup(void *user, const char *name, size_t rows, size_t cols,
                             const float **data, char *error, size_t error_size) {
  (void)user, (void)name, (void)rows, (void)cols, (void)data;
  snprintf(error, error_size, "the test has no tensors");
  return LAMP_ERR_NOT_FOUND;
}

#define HF_DIMS "\"num_hidden_layers\": 2, \"hidden_size\": 64, \"num_attention_heads\": 4, " \
                "\"intermediate_size\": 128, \"vocab_size\": 256"

/* Architectures and features lamp does not run are named in the error, with what it knows. */
static void test_unsupported(void **state) {
  lamp_context *ctx = *state;
  const char *known[] = {"\"gemma\"", "\"llama\"", "\"mistral\"", "\"qwen2\"", "\"phi3\"",
                         "\"gemma2\"", "\"gemma3_text\"", "\"gemma3\"", "general.architecture",
                         "model_type", NULL};
  expect_hf_error(ctx, "{\"model_type\": \"gemma\", " HF_DIMS "}", LAMP_ERR_UNSUPPORTED, known);
  const char *multimodal[] = {"\"gemma3\"", "text_config", "\"gemma3_text\"", NULL};
  expect_hf_error(ctx, "{\"model_type\": \"gemma3\", \"text_config\": {}}", LAMP_ERR_UNSUPPORTED,
                  multimodal);
  const char *linear[] = {"rope_scaling", "linear", NULL};
  expect_hf_error(ctx, "{\"model_type\": \"gemma3_text\", \"rope_scaling\": {\"factor\": 8.0, "
                  "\"rope_type\": \"linear\"}, " HF_DIMS "}", LAMP_ERR_UNSUPPORTED, linear);
  const char *gelu[] = {"hidden_activation", "gelu_pytorch_tanh", NULL};
  expect_hf_error(ctx, "{\"model_type\": \"gemma2\", \"hidden_activation\": \"silu\", " HF_DIMS
                  "}", LAMP_ERR_UNSUPPORTED, gelu);
  const char *longrope[] = {"rope_scaling", "longrope", NULL};
  expect_hf_error(ctx, "{\"model_type\": \"phi3\", \"rope_scaling\": {\"type\": \"longrope\", "
                  "\"long_factor\": [1], \"short_factor\": [1]}, " HF_DIMS "}",
                  LAMP_ERR_UNSUPPORTED, longrope);
  const char *partial[] = {"partial_rotary_factor", NULL};
  expect_hf_error(ctx, "{\"model_type\": \"phi3\", \"partial_rotary_factor\": 0.75, " HF_DIMS
                  "}", LAMP_ERR_UNSUPPORTED, partial);
  /* Qwen2's window only counts when it is switched on */
  lamp_model_config c;
  const char *qwen = "{\"model_type\": \"qwen2\", \"sliding_window\": 8, " HF_DIMS "}";
  LAMP_OK_OR_FAIL(ctx, lamp_model_config_from_hf(ctx, qwen, strlen(qwen), &c));
  assert_int_equal(c.sliding_window, 0);
  assert_int_equal(c.qkv_bias, 1);
  const char *qwen_on = "{\"model_type\": \"qwen2\", \"use_sliding_window\": true, "
                        "\"sliding_window\": 8, " HF_DIMS "}";
  LAMP_OK_OR_FAIL(ctx, lamp_model_config_from_hf(ctx, qwen_on, strlen(qwen_on), &c));
  assert_int_equal(c.sliding_window, 8);

  /* GGUF: the qwen2 fixture with its architecture renamed */
  char path[1024];
  arch_dir(path, sizeof(path), "qwen2/model.gguf");
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  static unsigned char bytes[1 << 20];
  size_t n = fread(bytes, 1, sizeof(bytes), f);
  fclose(f);
  assert_true(n > 0 && n < sizeof(bytes));
  const char key[] = "general.architecture";
  unsigned char *at = NULL;
  for (size_t i = 0; i + sizeof(key) + 16 < n && !at; i++)
    if (!memcmp(bytes + i, key, sizeof(key) - 1)) at = bytes + i + sizeof(key) - 1;
  assert_non_null(at);
  /* value type (u32 8, a string), length (u64 5), then the text */
  assert_memory_equal(at + 12, "qwen2", 5);
  memcpy(at + 12, "qwen9", 5);
  lamp_gguf *g = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_gguf_open_memory(ctx, bytes, n, &g));
  lamp_model *m = NULL;
  assert_int_equal(lamp_model_create_gguf(ctx, g, &m), LAMP_ERR_UNSUPPORTED);
  assert_null(m);
  const char *gguf_words[] = {"\"qwen9\"", "\"llama\"", "\"qwen2\"", "\"phi3\"", "\"gemma2\"",
                              "model_type", NULL};
  for (const char *const *w = gguf_words; *w; w++)
    if (!strstr(lamp_context_error(ctx), *w))
      fail_msg("\"%s\" lacks \"%s\"", lamp_context_error(ctx), *w);
  lamp_gguf_release(g);

  /* the C API: an unknown architecture number, and biases where GGUF would reorder them */
  c.arch = 99;
  assert_int_equal(lamp_model_create(ctx, &c, LAMP_MODEL_NAMES_HF, no_lookup, NULL, &m),
                   LAMP_ERR_INVALID_ARGUMENT);
  c.arch = LAMP_MODEL_ARCH_LLAMA;
  assert_int_equal(lamp_model_create(ctx, &c, LAMP_MODEL_NAMES_HF, no_lookup, NULL, &m),
                   LAMP_ERR_UNSUPPORTED);
  assert_null(m);
  assert_null(lamp_model_arch_name(99));
  assert_string_equal(lamp_model_arch_name(LAMP_MODEL_ARCH_PHI3), "phi3");
}

/* The config.json of released models (their text, minus auto_map and quantisation notes). */
static void test_real_configs(void **state) {
  lamp_context *ctx = *state;
  static const char qwen25_05b[] =
      "{\"architectures\": [\"Qwen2ForCausalLM\"], \"attention_dropout\": 0.0, "
      "\"bos_token_id\": 151643, \"eos_token_id\": 151643, \"hidden_act\": \"silu\", "
      "\"hidden_size\": 896, \"initializer_range\": 0.02, \"intermediate_size\": 4864, "
      "\"max_position_embeddings\": 32768, \"max_window_layers\": 24, \"model_type\": \"qwen2\", "
      "\"num_attention_heads\": 14, \"num_hidden_layers\": 24, \"num_key_value_heads\": 2, "
      "\"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0, \"sliding_window\": 32768, "
      "\"tie_word_embeddings\": true, \"torch_dtype\": \"bfloat16\", "
      "\"transformers_version\": \"4.43.1\", \"use_cache\": true, \"use_sliding_window\": false, "
      "\"vocab_size\": 151936}";
  static const char mistral_7b_v01[] =
      "{\"architectures\": [\"MistralForCausalLM\"], \"bos_token_id\": 1, \"eos_token_id\": 2, "
      "\"hidden_act\": \"silu\", \"hidden_size\": 4096, \"initializer_range\": 0.02, "
      "\"intermediate_size\": 14336, \"max_position_embeddings\": 32768, "
      "\"model_type\": \"mistral\", \"num_attention_heads\": 32, \"num_hidden_layers\": 32, "
      "\"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, "
      "\"sliding_window\": 4096, \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\", "
      "\"use_cache\": true, \"vocab_size\": 32000}";
  static const char phi3_mini_4k[] =
      "{\"architectures\": [\"Phi3ForCausalLM\"], \"attention_bias\": false, "
      "\"attention_dropout\": 0.0, \"bos_token_id\": 1, \"embd_pdrop\": 0.0, "
      "\"eos_token_id\": 32000, \"hidden_act\": \"silu\", \"hidden_size\": 3072, "
      "\"initializer_range\": 0.02, \"intermediate_size\": 8192, "
      "\"max_position_embeddings\": 4096, \"model_type\": \"phi3\", \"num_attention_heads\": 32, "
      "\"num_hidden_layers\": 32, \"num_key_value_heads\": 32, "
      "\"original_max_position_embeddings\": 4096, \"pad_token_id\": 32000, "
      "\"resid_pdrop\": 0.0, \"rms_norm_eps\": 1e-05, \"rope_scaling\": null, "
      "\"rope_theta\": 10000.0, \"sliding_window\": 2047, \"tie_word_embeddings\": false, "
      "\"torch_dtype\": \"bfloat16\", \"use_cache\": true, \"vocab_size\": 32064}";
  lamp_model_config c;
  LAMP_OK_OR_FAIL(ctx, lamp_model_config_from_hf(ctx, qwen25_05b, strlen(qwen25_05b), &c));
  assert_int_equal(c.arch, LAMP_MODEL_ARCH_QWEN2);
  assert_true(c.qkv_bias && c.tied_embeddings && c.sliding_window == 0);
  assert_int_equal(c.n_heads, 14);
  assert_int_equal(c.n_kv_heads, 2);
  assert_true(c.rope_base == 1e6f);
  LAMP_OK_OR_FAIL(ctx, lamp_model_config_from_hf(ctx, mistral_7b_v01, strlen(mistral_7b_v01), &c));
  assert_int_equal(c.arch, LAMP_MODEL_ARCH_MISTRAL);
  assert_true(!c.qkv_bias && !c.tied_embeddings && c.sliding_window == 4096);
  assert_int_equal(c.n_kv_heads, 8);
  LAMP_OK_OR_FAIL(ctx, lamp_model_config_from_hf(ctx, phi3_mini_4k, strlen(phi3_mini_4k), &c));
  assert_int_equal(c.arch, LAMP_MODEL_ARCH_PHI3);
  assert_true(!c.qkv_bias && !c.tied_embeddings && c.sliding_window == 2047);
  assert_int_equal(c.n_ff, 8192);
  assert_int_equal(c.n_vocab, 32064);
  assert_true(c.norm_eps == 1e-5f);
  /* Gemma 2 2B and Gemma 3 1B (instruction-tuned) config.json files, written from memory; their
   * dimensions, windows, soft-caps and RoPE bases agree with public re-implementations
   * (maxtext's Hugging Face configs for Gemma 2 2B, a Gemma 3 port's 1B arguments) */
  static const char gemma2_2b[] =
      "{\"architectures\": [\"Gemma2ForCausalLM\"], \"attention_bias\": false, "
      "\"attention_dropout\": 0.0, \"attn_logit_softcapping\": 50.0, \"bos_token_id\": 2, "
      "\"cache_implementation\": \"hybrid\", \"eos_token_id\": 1, "
      "\"final_logit_softcapping\": 30.0, \"head_dim\": 256, \"hidden_act\": "
      "\"gelu_pytorch_tanh\", \"hidden_activation\": \"gelu_pytorch_tanh\", "
      "\"hidden_size\": 2304, \"initializer_range\": 0.02, \"intermediate_size\": 9216, "
      "\"max_position_embeddings\": 8192, \"model_type\": \"gemma2\", "
      "\"num_attention_heads\": 8, \"num_hidden_layers\": 26, \"num_key_value_heads\": 4, "
      "\"pad_token_id\": 0, \"query_pre_attn_scalar\": 256, \"rms_norm_eps\": 1e-06, "
      "\"rope_theta\": 10000.0, \"sliding_window\": 4096, \"torch_dtype\": \"float32\", "
      "\"transformers_version\": \"4.42.4\", \"use_cache\": true, \"vocab_size\": 256000}";
  static const char gemma3_1b[] =
      "{\"architectures\": [\"Gemma3ForCausalLM\"], \"attention_bias\": false, "
      "\"attention_dropout\": 0.0, \"attn_logit_softcapping\": null, \"bos_token_id\": 2, "
      "\"cache_implementation\": \"hybrid\", \"eos_token_id\": [1, 106], "
      "\"final_logit_softcapping\": null, \"head_dim\": 256, \"hidden_activation\": "
      "\"gelu_pytorch_tanh\", \"hidden_size\": 1152, \"initializer_range\": 0.02, "
      "\"intermediate_size\": 6912, \"max_position_embeddings\": 32768, "
      "\"model_type\": \"gemma3_text\", \"num_attention_heads\": 4, "
      "\"num_hidden_layers\": 26, \"num_key_value_heads\": 1, \"pad_token_id\": 0, "
      "\"query_pre_attn_scalar\": 256, \"rms_norm_eps\": 1e-06, "
      "\"rope_local_base_freq\": 10000, \"rope_scaling\": null, \"rope_theta\": 1000000, "
      "\"sliding_window\": 512, \"sliding_window_pattern\": 6, \"torch_dtype\": "
      "\"bfloat16\", \"transformers_version\": \"4.50.0.dev0\", \"use_cache\": true, "
      "\"vocab_size\": 262144}";
  LAMP_OK_OR_FAIL(ctx, lamp_model_config_from_hf(ctx, gemma2_2b, strlen(gemma2_2b), &c));
  assert_int_equal(c.arch, LAMP_MODEL_ARCH_GEMMA2);
  assert_true(c.tied_embeddings && c.head_dim == 256 && c.sliding_window == 4096);
  assert_true(c.attn_softcap == 50.0f && c.final_softcap == 30.0f && c.query_scale == 0.0625f);
  assert_true(c.window_pattern == 2 && c.rope_base_local == 0.0f);
  LAMP_OK_OR_FAIL(ctx, lamp_model_config_from_hf(ctx, gemma3_1b, strlen(gemma3_1b), &c));
  assert_int_equal(c.arch, LAMP_MODEL_ARCH_GEMMA3);
  assert_true(c.tied_embeddings && c.head_dim == 256 && c.sliding_window == 512);
  assert_true(c.attn_softcap == 0.0f && c.final_softcap == 0.0f && c.query_scale == 0.0625f);
  assert_true(c.window_pattern == 6 && c.rope_base_local == 1e4f && c.rope_base == 1e6f);
  assert_int_equal(c.n_kv_heads, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_qwen2),  cmocka_unit_test(test_mistral),
      cmocka_unit_test(test_phi3),   cmocka_unit_test(test_gemma2),
      cmocka_unit_test(test_gemma3),
      cmocka_unit_test(test_window),
      cmocka_unit_test(test_unsupported), cmocka_unit_test(test_real_configs),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
