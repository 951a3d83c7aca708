/* The library's prompt-tuning training step (lamp_trainer_step, lamp/train.h) on a synthetic
 * task whose batch and label words the PyTorch peer builds too, timed step by step with its
 * profile. */
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

uint64_t bench_lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s >> 33;
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

/* The text of token `id` as a label word. It must encode back to that one id: the classifier
 * scores a class by the label-head row of its word's token, and the PyTorch peer scores row
 * `id`, so any other encoding would compare two different steps. */
static char *bench_label_word(lamp_context *ctx, lamp_tokenizer *tok, int32_t id) {
  size_t len = 0, count = 0;
  BENCH_CHECK(ctx, lamp_tokenizer_decode(ctx, tok, &id, 1, 0, NULL, 0, &len));
  char *word = bench_malloc(len + 1);
  BENCH_CHECK(ctx, lamp_tokenizer_decode(ctx, tok, &id, 1, 0, word, len + 1, &len));
  int32_t back[2] = {-1, -1};
  /* a NUL inside would cut the word short; more than two ids do not fit and fail */
  int same = strlen(word) == len &&
             lamp_tokenizer_encode(ctx, tok, word, len, 0, back, 2, &count) == LAMP_OK &&
             count == 1 && back[0] == id;
  if (!same) {
    fprintf(stderr, "bench: training step: label token id %d (the PyTorch peer's label ids are "
            "(k + 1) V / (K + 1)) does not encode back to itself alone from its text, so it "
            "cannot be a label word on this model\n", (int)id);
    exit(1);
  }
  return word;
}

void bench_train_measure(lamp_llm *llm, lamp_prompt_method method, const bench_train_config *c,
                         bench_train_result *out) {
  lamp_context *ctx = lamp_llm_context(llm);
  lamp_model *model = lamp_llm_model(llm);
  memset(out, 0, sizeof(*out));
  out->method = method;
  if (c->batch == 0 || c->batch > 256 || c->tokens == 0 || c->labels < 2 ||
      c->labels > LAMP_DATA_MAX_LABELS || c->steps < 1 || c->steps > BENCH_TRAIN_MAX_STEPS) {
    fprintf(stderr, "bench: training step: batch 1..256, tokens, 2..%d labels and 1..%d steps "
            "wanted\n", LAMP_DATA_MAX_LABELS, BENCH_TRAIN_MAX_STEPS);
    exit(1);
  }
  lamp_model_config mc;
  BENCH_CHECK(ctx, lamp_model_get_config(model, &mc));
  const size_t B = c->batch, T = c->tokens, K = c->labels;

  /* A task of K classes "0".."K-1" over one text field. Its examples come tokenized, so only
   * the label words matter: the texts of the peer's label ids, spread over the vocabulary (the
   * model sees only their output-head rows). */
  lamp_task task;
  memset(&task, 0, sizeof(task));
  task.name = "bench";
  task.format = LAMP_DATA_TSV;
  task.n_columns = 2;
  task.n_fields = 1;
  task.fields[0] = "text";
  task.columns[0] = 0;
  task.label_column = 1;
  task.n_labels = K;
  task.template_text = "{text}";
  task.metric = LAMP_DATA_METRIC_ACCURACY;
  char names[LAMP_DATA_MAX_LABELS][24], *words[LAMP_DATA_MAX_LABELS];
  for (size_t k = 0; k < K; k++) {
    snprintf(names[k], sizeof(names[k]), "%zu", k);
    task.labels[k] = names[k];
    int32_t id = (int32_t)((k + 1) * mc.n_vocab / (K + 1));
    words[k] = bench_label_word(ctx, lamp_llm_tokenizer(llm), id);
    task.words[k] = words[k];
  }
  /* eval_batch B and max_tokens T: the workspace has the step's shape, (B, T, P', B, K) */
  lamp_classifier_options co;
  lamp_classifier_options_init(&co, &task);
  co.max_tokens = T;
  co.eval_batch = B;
  lamp_classifier *cls = NULL;
  BENCH_CHECK(ctx, lamp_classifier_create(llm, &co, &cls));
  for (size_t k = 0; k < K; k++) free(words[k]);

  /* B examples and batch B: every step is the same batch (an epoch reorders its sequences,
   * which leaves the mean loss alone) */
  int32_t *ids = bench_malloc(B * T * sizeof(int32_t)), targets[256];
  bench_train_batch(c, mc.n_vocab, ids, targets);
  lamp_examples *ex = NULL;
  BENCH_CHECK(ctx, lamp_examples_create(cls, &ex));
  for (size_t b = 0; b < B; b++)
    BENCH_CHECK(ctx, lamp_examples_add_tokens(cls, ex, ids + b * T, T, targets[b]));
  free(ids);

  /* AdamW with lamp_adamw's own defaults and no decay, so that losses compare with the
   * figures measured before the engine existed; the trainer's defaults differ */
  lamp_trainer_options to;
  lamp_trainer_options_init(&to, llm, method);
  to.prompt.length = c->prompt;
  to.prompt.seed = 1;
  lamp_adamw_options_init(&to.adamw);
  to.decay = LAMP_LR_CONSTANT;
  to.clip = c->clip;
  to.batch = B;
  to.steps = 1 + (uint64_t)c->steps;
  lamp_trainer *tr = NULL;
  BENCH_CHECK(ctx, lamp_trainer_create(cls, &to, ex, &tr));
  lamp_trainer_state state;
  BENCH_CHECK(ctx, lamp_trainer_get_state(tr, &state));
  out->prompt_rows = state.prompt_rows;
  out->trainable = state.trainable;

  /* warm-up: every kernel build and CLBlast's first-use compilations */
  lamp_step_result r;
  BENCH_CHECK(ctx, lamp_trainer_step(tr));
  BENCH_CHECK(ctx, lamp_trainer_collect(tr, &r));
  out->loss_first = r.loss;

  /* each step enqueued, then waited for: the step's whole time, host work included */
  double t[BENCH_TRAIN_MAX_STEPS];
  if (lamp_profile_enabled(ctx)) BENCH_CHECK(ctx, lamp_profile_reset(ctx));
  for (int i = 0; i < c->steps; i++) {
    double t0 = bench_now();
    BENCH_CHECK(ctx, lamp_trainer_step(tr));
    BENCH_CHECK(ctx, lamp_trainer_collect(tr, &r));
    t[i] = bench_now() - t0;
  }
  out->loss_last = r.loss;
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

  /* the trainer counts weights, workspace and 4 floats per trainable parameter */
  out->weight_bytes = lamp_model_weight_bytes(model);
  out->prompt_bytes = 2 * out->trainable * sizeof(float); /* values and gradients */
  out->optim_bytes = 2 * out->trainable * sizeof(float);  /* first and second moments */
  out->workspace_bytes =
      state.device_bytes - out->weight_bytes - out->prompt_bytes - out->optim_bytes;
  lamp_trainer_release(tr);
  lamp_examples_release(ex);
  lamp_classifier_release(cls);
}
