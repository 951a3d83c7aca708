/* A prompt-tuning training step on the device, as the training application runs it but with
 * the optimiser on the device (lamp/optim.h), timed step by step with its profile. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

uint64_t bench_lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s >> 33;
}

/* ---- the tiny model ------------------------------------------------------------------------ */

typedef struct bench_tiny_src {
  float *buf; /* the tensor handed out last */
  size_t cap;
  uint64_t seed;
} bench_tiny_src;

/* Norm weights near 1, everything else uniform in [-0.25, 0.25). */
static lamp_status bench_tiny_lookup(void *user, const char *name, size_t rows, size_t cols,
                                     const float **data, char *error, size_t error_size) {
  bench_tiny_src *t = user;
  if (rows * cols > t->cap) {
    free(t->buf);
    t->buf = malloc(rows * cols * sizeof(float));
    t->cap = t->buf ? rows * cols : 0;
    if (!t->buf) {
      snprintf(error, error_size, "out of memory for %s", name);
      return LAMP_ERR_OUT_OF_MEMORY;
    }
  }
  int norm = strstr(name, "norm") != NULL;
  for (size_t i = 0; i < rows * cols; i++) {
    float u = (float)bench_lcg(&t->seed) / 2147483648.0f - 0.5f;
    t->buf[i] = norm ? 1.0f + 0.2f * u : 0.5f * u;
  }
  *data = t->buf;
  return LAMP_OK;
}

void bench_tiny_model_create(lamp_context *ctx, lamp_model **out) {
  lamp_model_config c = {2, 64, 4, 2, 0, 96, 300, 10000.0f, 1e-5f, 1, 0};
  bench_tiny_src src = {NULL, 0, 7};
  lamp_status st = lamp_model_create(ctx, &c, LAMP_MODEL_NAMES_HF, bench_tiny_lookup, &src, out);
  free(src.buf);
  BENCH_CHECK(ctx, st);
}

/* ---- FLOP count and batch -------------------------------------------------------------------- */

double bench_train_flop(const lamp_model_config *c, size_t batch, size_t prompt_rows,
                        size_t tokens, size_t outputs, size_t labels) {
  double C = (double)c->n_embd, F = (double)c->n_ff, H = (double)c->n_heads;
  double D = (double)(c->head_dim ? c->head_dim : c->n_embd / c->n_heads);
  double Hkv = (double)c->n_kv_heads, P = (double)prompt_rows, T = (double)tokens;
  double B = (double)batch, N = P + B * T, W = H * D + 2.0 * Hkv * D;
  /* per layer: x Wqkv^T, o Wo^T, x Wgu^T, a Wdown^T; the backward has the same products */
  double gemm = 2.0 * N * (C * W + H * D * C + C * 2.0 * F + F * C);
  /* causal attention, QK^T and PV: the prompt's P (P + 1) / 2 query-key pairs once, then each
   * sequence's tokens against the prompt and their own predecessors */
  double pairs = P * (P + 1.0) / 2.0 + B * (T * P + T * (T + 1.0) / 2.0);
  double attn = 2.0 * 2.0 * H * pairs * D;
  double head = 2.0 * (double)outputs * C * (double)labels;
  return (double)c->n_layers * (2.0 * gemm + attn + 2.5 * attn) + 2.0 * head;
}

void bench_train_batch(const bench_train_config *c, size_t n_vocab, int32_t *ids,
                       int32_t *targets) {
  uint64_t s = c->seed;
  for (size_t i = 0; i < c->batch * c->tokens; i++) ids[i] = (int32_t)(bench_lcg(&s) % n_vocab);
  for (size_t b = 0; b < c->batch; b++) targets[b] = (int32_t)(bench_lcg(&s) % c->labels);
}

/* ---- the step ------------------------------------------------------------------------------ */

typedef struct bench_step {
  lamp_context *ctx;
  lamp_prompt *prompt;
  lamp_model_workspace *ws;
  lamp_adamw *opt;
  lamp_tensor pin, dprompt; /* (P', C) views into the workspace */
  float clip;
} bench_step;

/* Enqueues one whole step; nothing waits for the device. */
static void bench_step_run(bench_step *s) {
  lamp_context *ctx = s->ctx;
  BENCH_CHECK(ctx, lamp_prompt_zero_grad(s->prompt));
  BENCH_CHECK(ctx, lamp_prompt_forward(s->prompt, &s->pin));
  BENCH_CHECK(ctx, lamp_model_forward(s->ws, LAMP_MODEL_HEAD_LABELS));
  BENCH_CHECK(ctx, lamp_model_backward(s->ws));
  BENCH_CHECK(ctx, lamp_prompt_backward(s->prompt, &s->dprompt));
  BENCH_CHECK(ctx, lamp_adamw_clip_grad_norm(s->opt, s->clip));
  BENCH_CHECK(ctx, lamp_adamw_step(s->opt, 1.0f));
}

static double bench_mean_loss(lamp_context *ctx, lamp_model_workspace *ws, size_t m) {
  lamp_tensor losses;
  float buf[256];
  BENCH_CHECK(ctx, lamp_model_losses(ws, &losses));
  BENCH_CHECK(ctx, lamp_tensor_download(ctx, &losses, buf, m * sizeof(float)));
  double sum = 0;
  for (size_t i = 0; i < m; i++) sum += buf[i];
  return sum / (double)m;
}

void bench_train_measure(lamp_context *ctx, lamp_model *model, lamp_prompt_method method,
                         const bench_train_config *c, bench_train_result *out) {
  memset(out, 0, sizeof(*out));
  out->method = method;
  if (c->batch == 0 || c->batch > 256 || c->tokens == 0 || c->labels == 0 || c->labels > 64 ||
      c->steps < 1 || c->steps > BENCH_TRAIN_MAX_STEPS) {
    fprintf(stderr, "bench: training step: batch 1..256, tokens, 1..64 labels and 1..%d steps "
            "wanted\n", BENCH_TRAIN_MAX_STEPS);
    exit(1);
  }
  lamp_model_config mc;
  BENCH_CHECK(ctx, lamp_model_get_config(model, &mc));
  lamp_tensor embd;
  BENCH_CHECK(ctx, lamp_model_embedding(model, &embd));

  bench_step s = {ctx, NULL, NULL, NULL, {0}, {0}, c->clip};
  lamp_prompt_options po;
  lamp_prompt_options_init(&po, method, mc.n_embd);
  po.length = c->prompt;
  po.seed = 1;
  if (method != LAMP_PROMPT_DPT) po.embedding = &embd;
  BENCH_CHECK(ctx, lamp_prompt_create(ctx, &po, &s.prompt));
  size_t width = 0;
  BENCH_CHECK(ctx, lamp_prompt_output_shape(s.prompt, &out->prompt_rows, &width));
  BENCH_CHECK(ctx, lamp_prompt_param_count(s.prompt, &out->trainable));
  lamp_param params[LAMP_PROMPT_MAX_PARAMS];
  size_t n_params = 0;
  BENCH_CHECK(ctx, lamp_prompt_params(s.prompt, params, LAMP_PROMPT_MAX_PARAMS, &n_params));
  lamp_adamw_options ao;
  lamp_adamw_options_init(&ao);
  BENCH_CHECK(ctx, lamp_adamw_create(ctx, params, n_params, &ao, &s.opt));

  const size_t B = c->batch, T = c->tokens, K = c->labels;
  lamp_model_shape shape = {B, T, out->prompt_rows, B, K, 0};
  BENCH_CHECK(ctx, lamp_model_workspace_create(model, &shape, &s.ws));
  int32_t *ids = bench_malloc(B * T * sizeof(int32_t)), targets[256], labels[64];
  size_t lengths[256], seq[256], pos[256];
  bench_train_batch(c, mc.n_vocab, ids, targets);
  for (size_t b = 0; b < B; b++) {
    lengths[b] = T;
    seq[b] = b;
    pos[b] = T - 1;
  }
  /* K label words spread over the vocabulary (the model sees only their output-head rows) */
  for (size_t k = 0; k < K; k++) labels[k] = (int32_t)((k + 1) * mc.n_vocab / (K + 1));
  BENCH_CHECK(ctx, lamp_model_set_tokens(s.ws, B, T, ids, lengths));
  BENCH_CHECK(ctx, lamp_model_set_outputs(s.ws, B, seq, pos, targets));
  BENCH_CHECK(ctx, lamp_model_set_labels(s.ws, K, labels));
  BENCH_CHECK(ctx, lamp_model_prompt(s.ws, &s.pin));
  BENCH_CHECK(ctx, lamp_model_prompt_grad(s.ws, &s.dprompt));
  free(ids);

  /* warm-up: every kernel build and CLBlast's first-use compilations */
  bench_step_run(&s);
  BENCH_CHECK(ctx, lamp_context_finish(ctx));
  out->loss_first = bench_mean_loss(ctx, s.ws, B);

  double t[BENCH_TRAIN_MAX_STEPS];
  if (lamp_profile_enabled(ctx)) BENCH_CHECK(ctx, lamp_profile_reset(ctx));
  for (int i = 0; i < c->steps; i++) {
    double t0 = bench_now();
    bench_step_run(&s);
    BENCH_CHECK(ctx, lamp_context_finish(ctx));
    t[i] = bench_now() - t0;
  }
  out->loss_last = bench_mean_loss(ctx, s.ws, B);
  out->step_seconds = bench_median(t, (size_t)c->steps);
  out->tokens_per_s = (double)(B * T) / out->step_seconds;
  out->flop = bench_train_flop(&mc, B, out->prompt_rows, T, B, K);

  if (lamp_profile_enabled(ctx)) {
    lamp_profile_entry e[64];
    size_t count = 0;
    BENCH_CHECK(ctx, lamp_profile_read(ctx, e, 64, &count));
    double total = 0, gemm = 0;
    for (size_t i = 0; i < count && i < 64; i++) {
      total += e[i].total_ms;
      if (!strncmp(e[i].name, "sgemm", 5)) gemm += e[i].total_ms;
    }
    out->gemm_share = total > 0 ? gemm / total : 0;
    out->n_top = count < BENCH_TRAIN_TOP ? count : BENCH_TRAIN_TOP;
    memcpy(out->top, e, out->n_top * sizeof(e[0]));
    BENCH_CHECK(ctx, lamp_profile_reset(ctx));
  }

  out->weight_bytes = lamp_model_weight_bytes(model);
  out->workspace_bytes = lamp_model_workspace_bytes(s.ws);
  out->prompt_bytes = 2 * out->trainable * sizeof(float); /* values and gradients */
  out->optim_bytes = 2 * out->trainable * sizeof(float);  /* first and second moments */
  lamp_model_workspace_release(s.ws);
  lamp_adamw_release(s.opt);
  lamp_prompt_release(s.prompt);
}
