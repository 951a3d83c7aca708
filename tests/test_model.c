/* The whole model on a tiny random Llama (2 layers, width 64, 4 heads, 2 KV heads, vocabulary
 * 300), built in the test: logits against the double-precision reference in ref_llama.c with
 * padding and with a prompt, both heads, recomputation on and off; the gradient with respect to
 * the prompt against central finite differences of the reference loss; the same model written
 * to a GGUF file (llama.cpp's Q/K row order) and loaded through the GGUF reader; bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "model/model_internal.h"
#include "lamp/cache.h"
#include "lamp/gguf.h"
#include "lamp/model.h"
#include "ref.h"
#include "ref_gguf.h"
#include "ref_llama.h"

#define TOL 1e-4
enum { L = 2, C = 64, H = 4, KV = 2, D = 16, F = 96, V = 300 };

typedef struct tiny {
  ref_llama_config cfg;
  float *embd, *out_norm, *output;
  ref_llama_layer layers[L];
  float *store[L][9];
} tiny;

static float *rnd(size_t n, uint64_t seed, float lo, float hi) {
  float *x = malloc(n * sizeof(float));
  assert_non_null(x);
  ref_fill_uniform(x, n, seed, lo, hi);
  return x;
}

static void tiny_make(tiny *m, int tied) {
  memset(m, 0, sizeof(*m));
  m->cfg = (ref_llama_config){L, C, H, KV, D, F, V, 10000.0, 1e-5, tied};
  m->embd = rnd(V * C, 100, -1, 1);
  m->out_norm = rnd(C, 101, 0.8f, 1.2f);
  m->output = tied ? NULL : rnd(V * C, 102, -0.5f, 0.5f);
  const size_t sizes[9] = {C, H * D * C, KV * D * C, KV * D * C, C * H * D, C, F * C, F * C, C * F};
  const float range[9] = {0, 0.25f, 0.25f, 0.25f, 0.2f, 0, 0.2f, 0.2f, 0.15f};
  for (size_t l = 0; l < L; l++) {
    for (size_t i = 0; i < 9; i++)
      m->store[l][i] = range[i] ? rnd(sizes[i], 200 + 10 * l + i, -range[i], range[i])
                                : rnd(sizes[i], 200 + 10 * l + i, 0.8f, 1.2f);
    float **s = m->store[l];
    m->layers[l] = (ref_llama_layer){s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8]};
  }
}

static void tiny_free(tiny *m) {
  free(m->embd), free(m->out_norm), free(m->output);
  for (size_t l = 0; l < L; l++)
    for (size_t i = 0; i < 9; i++) free(m->store[l][i]);
}

/* Hugging Face names to the arrays above. */
static lamp_status tiny_lookup(void *user, const char *name, size_t rows, size_t cols,
                               const float **data, char *error, size_t error_size) {
  tiny *m = user;
  static const char *parts[9] = {"input_layernorm", "self_attn.q_proj", "self_attn.k_proj",
                                 "self_attn.v_proj", "self_attn.o_proj",
                                 "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj",
                                 "mlp.down_proj"};
  (void)rows, (void)cols;
  if (!strcmp(name, "model.embed_tokens.weight")) *data = m->embd;
  else if (!strcmp(name, "model.norm.weight")) *data = m->out_norm;
  else if (!strcmp(name, "lm_head.weight") && m->output) *data = m->output;
  else {
    for (size_t l = 0; l < L; l++)
      for (size_t i = 0; i < 9; i++) {
        char want[128];
        snprintf(want, sizeof(want), "model.layers.%zu.%s.weight", l, parts[i]);
        if (!strcmp(name, want)) *data = m->store[l][i];
      }
  }
  if (!*data) snprintf(error, error_size, "the test has no such tensor");
  return *data ? LAMP_OK : LAMP_ERR_NOT_FOUND;
}

static lamp_model *tiny_device(lamp_context *ctx, tiny *m) {
  lamp_model_config c = {L, C, H, KV, 0, F, V, 10000.0f, 1e-5f, m->output == NULL, 0,
                         LAMP_MODEL_ARCH_LLAMA, 0, 0, 0, 0, 0, 0, 0};
  lamp_model *model = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_create(ctx, &c, LAMP_MODEL_NAMES_HF, tiny_lookup, m, &model));
  return model;
}

/* A batch of three sequences of unequal length and six outputs. */
enum { B = 3, T = 9, M = 6, P = 3, K = 4 };
static const int32_t ids[B * T] = {5,  17, 42, 299, 8,  1,  77, 150, 3,   /* 9 tokens */
                                   11, 12, 13, 14,  0,  0,  0,  0,   0,   /* 4 */
                                   250, 9, 9, 100,  31, 2,  0,  0,   0};  /* 6 */
static const size_t lengths[B] = {9, 4, 6};
static const size_t out_seq[M] = {0, 0, 1, 2, 2, 1};
static const size_t out_pos[M] = {8, 2, 3, 5, 0, 0};
static const int32_t vocab_targets[M] = {7, 299, 0, 150, -1, 42};
static const int32_t label_ids[K] = {10, 20, 299, 5};
static const int32_t label_targets[M] = {0, 3, 1, 2, 2, -1};

static ref_llama_batch ref_batch(const double *prompt, size_t prompt_rows, int labels) {
  return (ref_llama_batch){B, T, prompt_rows, ids, lengths, prompt, M, out_seq, out_pos,
                           labels ? label_ids : NULL, labels ? K : 0};
}

static lamp_model_workspace *make_ws(lamp_context *ctx, lamp_model *model, size_t prompt_rows,
                                     int recompute, const int32_t *targets, const float *prompt) {
  lamp_model_shape s = {B, T, prompt_rows, M, K, recompute};
  lamp_model_workspace *ws = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_workspace_create(model, &s, &ws));
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_tokens(ws, B, T, ids, lengths));
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_outputs(ws, M, out_seq, out_pos, targets));
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_labels(ws, K, label_ids));
  if (prompt_rows) {
    lamp_tensor pt;
    LAMP_OK_OR_FAIL(ctx, lamp_model_prompt(ws, &pt));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &pt, prompt, prompt_rows * C * sizeof(float)));
  }
  return ws;
}

static float *download(lamp_context *ctx, const lamp_tensor *t) {
  size_t n = lamp_tensor_numel(t);
  float *x = malloc(n * sizeof(float));
  assert_non_null(x);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, t, x, n * sizeof(float)));
  return x;
}

static void check_logits(lamp_context *ctx, lamp_model_workspace *ws, const tiny *m,
                         const ref_llama_weights *w, const double *prompt, size_t prompt_rows,
                         int labels, const char *what) {
  LAMP_OK_OR_FAIL(ctx, lamp_model_forward(ws, labels ? LAMP_MODEL_HEAD_LABELS
                                                     : LAMP_MODEL_HEAD_VOCAB));
  lamp_tensor lt;
  LAMP_OK_OR_FAIL(ctx, lamp_model_logits(ws, &lt));
  size_t width = labels ? K : V;
  assert_int_equal(lamp_tensor_numel(&lt), M * width);
  float *got = download(ctx, &lt);
  double *want = malloc(M * width * sizeof(double));
  ref_llama_batch bt = ref_batch(prompt, prompt_rows, labels);
  ref_llama_forward(&m->cfg, w, &bt, want);
  double err = ref_llama_rel_error(got, want, M * width);
  if (!(err <= TOL)) fail_msg("%s: logits max relative error %.3e", what, err);
  free(got);
  free(want);
}

static ref_llama_weights hf_weights(const tiny *m) {
  return (ref_llama_weights){m->embd, m->out_norm, m->output, m->layers, 0};
}

static double *prompt_values(float **as_float) {
  float *p = rnd(P * C, 300, -1, 1);
  double *d = malloc(P * C * sizeof(double));
  for (size_t i = 0; i < P * C; i++) d[i] = p[i];
  *as_float = p;
  return d;
}

static void test_forward(void **state) {
  lamp_context *ctx = *state;
  for (int tied = 1; tied >= 0; tied--) {
    tiny m;
    tiny_make(&m, tied);
    ref_llama_weights w = hf_weights(&m);
    lamp_model *model = tiny_device(ctx, &m);
    float *pf;
    double *pd = prompt_values(&pf);
    /* no prompt, padding only */
    lamp_model_workspace *ws = make_ws(ctx, model, 0, 0, NULL, NULL);
    check_logits(ctx, ws, &m, &w, NULL, 0, 0, tied ? "tied, no prompt" : "untied, no prompt");
    lamp_model_workspace_release(ws);
    /* with a prompt, both heads, with and without recomputation */
    for (int rc = 0; rc < 2; rc++) {
      ws = make_ws(ctx, model, P, rc, NULL, pf);
      check_logits(ctx, ws, &m, &w, pd, P, 0, "prompt, vocabulary head");
      check_logits(ctx, ws, &m, &w, pd, P, 1, "prompt, label head");
      lamp_model_workspace_release(ws);
    }
    lamp_model_release(model);
    free(pf), free(pd);
    tiny_free(&m);
  }
}

typedef struct fd_case {
  const tiny *m;
  const ref_llama_weights *w;
  int labels;
} fd_case;

static double fd_loss(void *user, const double *prompt) {
  fd_case *c = user;
  ref_llama_batch bt = ref_batch(prompt, P, c->labels);
  return ref_llama_loss(&c->m->cfg, c->w, &bt, c->labels ? label_targets : vocab_targets);
}

static void test_backward(void **state) {
  lamp_context *ctx = *state;
  tiny m;
  tiny_make(&m, 1);
  ref_llama_weights w = hf_weights(&m);
  lamp_model *model = tiny_device(ctx, &m);
  float *pf;
  double *pd = prompt_values(&pf);
  double *grad = malloc(P * C * sizeof(double));
  for (int labels = 0; labels < 2; labels++) {
    fd_case fc = {&m, &w, labels};
    ref_llama_fd(fd_loss, &fc, pd, P * C, 1e-4, grad);
    const double want_loss = fd_loss(&fc, pd);
    for (int rc = 0; rc < 2; rc++) {
      lamp_model_workspace *ws = make_ws(ctx, model, P, rc, labels ? label_targets : vocab_targets,
                                         pf);
      LAMP_OK_OR_FAIL(ctx, lamp_model_forward(ws, labels ? LAMP_MODEL_HEAD_LABELS
                                                         : LAMP_MODEL_HEAD_VOCAB));
      LAMP_OK_OR_FAIL(ctx, lamp_model_backward(ws));
      lamp_tensor lt, gt;
      LAMP_OK_OR_FAIL(ctx, lamp_model_losses(ws, &lt));
      LAMP_OK_OR_FAIL(ctx, lamp_model_prompt_grad(ws, &gt));
      float *losses = download(ctx, &lt), *got = download(ctx, &gt);
      double mean = 0;
      for (size_t i = 0; i < M; i++) mean += losses[i];
      mean /= 5.0; /* five of the six outputs have a target */
      if (fabs(mean - want_loss) > TOL * fabs(want_loss))
        fail_msg("labels=%d recompute=%d: loss %.7f, reference %.7f", labels, rc, mean,
                 want_loss);
      double err = ref_llama_rel_error(got, grad, P * C);
      if (!(err <= TOL))
        fail_msg("labels=%d recompute=%d: prompt gradient max relative error %.3e", labels, rc,
                 err);
      free(losses), free(got);
      lamp_model_workspace_release(ws);
    }
  }
  free(grad), free(pf), free(pd);
  lamp_model_release(model);
  tiny_free(&m);
}

/* llama.cpp's converter order for Q/K rows: HF row j D/2 + i of a head goes to row 2i + j. */
static float *to_gguf_rows(const float *w, size_t heads) {
  float *o = malloc(heads * D * C * sizeof(float));
  for (size_t h = 0; h < heads; h++)
    for (size_t i = 0; i < D / 2; i++)
      for (size_t j = 0; j < 2; j++)
        memcpy(o + (h * D + 2 * i + j) * C, w + (h * D + j * D / 2 + i) * C, C * sizeof(float));
  return o;
}

static void test_gguf(void **state) {
  lamp_context *ctx = *state;
  tiny m;
  tiny_make(&m, 0);
  ref_gguf_writer gw;
  ref_gguf_init(&gw, 3, 32);
  ref_gguf_kv_str(&gw, "general.architecture", "llama");
  ref_gguf_kv_u32(&gw, "llama.block_count", L);
  ref_gguf_kv_u32(&gw, "llama.embedding_length", C);
  ref_gguf_kv_u32(&gw, "llama.attention.head_count", H);
  ref_gguf_kv_u32(&gw, "llama.attention.head_count_kv", KV);
  ref_gguf_kv_u32(&gw, "llama.feed_forward_length", F);
  ref_gguf_kv_u32(&gw, "llama.context_length", 128);
  ref_gguf_kv_u32(&gw, "llama.vocab_size", V);
  ref_gguf_kv_f32(&gw, "llama.rope.freq_base", 10000.0f);
  ref_gguf_kv_f32(&gw, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  uint64_t ne_vc[2] = {C, V}, ne_c[1] = {C};
  ref_gguf_tensor(&gw, "token_embd.weight", 2, ne_vc, REF_F32, m.embd, V * C * 4);
  ref_gguf_tensor(&gw, "output_norm.weight", 1, ne_c, REF_F32, m.out_norm, C * 4);
  ref_gguf_tensor(&gw, "output.weight", 2, ne_vc, REF_F32, m.output, V * C * 4);
  static const char *parts[9] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                 "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"};
  const uint64_t rows[9] = {1, H * D, KV * D, KV * D, C, 1, F, F, C};
  const uint64_t cols[9] = {C, C, C, C, H * D, C, C, C, F};
  float *permuted[L][2];
  ref_llama_layer gl[L];
  for (size_t l = 0; l < L; l++) {
    permuted[l][0] = to_gguf_rows(m.store[l][1], H);
    permuted[l][1] = to_gguf_rows(m.store[l][2], KV);
    gl[l] = m.layers[l];
    gl[l].wq = permuted[l][0];
    gl[l].wk = permuted[l][1];
    for (size_t i = 0; i < 9; i++) {
      char name[64];
      snprintf(name, sizeof(name), "blk.%zu.%s.weight", l, parts[i]);
      const float *data = i == 1 ? permuted[l][0] : i == 2 ? permuted[l][1] : m.store[l][i];
      uint64_t ne[2] = {cols[i], rows[i]};
      ref_gguf_tensor(&gw, name, rows[i] == 1 ? 1 : 2, ne, REF_F32, data,
                      rows[i] * cols[i] * 4);
    }
  }
  ref_buf file = {0};
  ref_gguf_finish(&gw, &file);
  lamp_gguf *g = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_gguf_open_memory(ctx, file.data, file.size, &g));
  lamp_model *model = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_create_gguf(ctx, g, &model));
  lamp_gguf_release(g);
  lamp_model_config c;
  LAMP_OK_OR_FAIL(ctx, lamp_model_get_config(model, &c));
  assert_int_equal(c.tied_embeddings, 0);
  assert_int_equal(c.head_dim, D);
  /* the reference runs llama.cpp's convention: reordered rows, interleaved pairs */
  ref_llama_weights w = {m.embd, m.out_norm, m.output, gl, 1};
  float *pf;
  double *pd = prompt_values(&pf);
  lamp_model_workspace *ws = make_ws(ctx, model, P, 0, NULL, pf);
  check_logits(ctx, ws, &m, &w, pd, P, 0, "GGUF model");
  lamp_model_workspace_release(ws);
  lamp_model_release(model);
  for (size_t l = 0; l < L; l++) free(permuted[l][0]), free(permuted[l][1]);
  free(pf), free(pd);
  ref_buf_free(&file);
  tiny_free(&m);
}

/* A tensor quantised as `type` (ref_quantize), with the f32 values it decodes to. */
typedef struct quantised {
  unsigned char *bytes;
  size_t size;
  float *recon;
} quantised;

static quantised quantise(int type, const float *x, size_t n) {
  quantised q;
  q.size = n / ref_block_elements(type) * ref_block_bytes(type);
  q.bytes = malloc(q.size);
  q.recon = malloc(n * sizeof(float));
  double *recon = malloc(n * sizeof(double)), *bound = malloc(n * sizeof(double));
  assert_true(q.bytes && q.recon && recon && bound);
  if (type == REF_F32) {
    memcpy(q.bytes, x, q.size);
    memcpy(q.recon, x, n * sizeof(float));
  } else {
    ref_quantize(type, x, n, q.bytes, recon, bound);
    for (size_t i = 0; i < n; i++) q.recon[i] = (float)recon[i];
  }
  free(recon), free(bound);
  return q;
}

/* The model in storage formats, as a quantised GGUF file holds it: each weight in its own
 * type (the fused Q/K/V and gate/up mix them), against the reference on the decoded values,
 * with the f32-resident mode of the same file next to it. */
static void test_stored(void **state) {
  lamp_context *ctx = *state;
  tiny m;
  tiny_make(&m, 0);
  static const char *parts[9] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                 "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"};
  const int types[9] = {REF_F32, REF_Q8_0, REF_Q5_1, REF_Q4_0, REF_F16, REF_F32, REF_Q4_1,
                        REF_Q5_0, REF_BF16};
  const uint64_t rows[9] = {1, H * D, KV * D, KV * D, C, 1, F, F, C};
  const uint64_t cols[9] = {C, C, C, C, H * D, C, C, C, F};
  ref_gguf_writer gw;
  ref_gguf_init(&gw, 3, 32);
  ref_gguf_kv_str(&gw, "general.architecture", "llama");
  ref_gguf_kv_u32(&gw, "llama.block_count", L);
  ref_gguf_kv_u32(&gw, "llama.embedding_length", C);
  ref_gguf_kv_u32(&gw, "llama.attention.head_count", H);
  ref_gguf_kv_u32(&gw, "llama.attention.head_count_kv", KV);
  ref_gguf_kv_u32(&gw, "llama.feed_forward_length", F);
  ref_gguf_kv_u32(&gw, "llama.context_length", 128);
  ref_gguf_kv_u32(&gw, "llama.vocab_size", V);
  uint64_t ne_vc[2] = {C, V}, ne_c[1] = {C};
  quantised embd = quantise(REF_Q8_0, m.embd, V * C), out = quantise(REF_Q4_1, m.output, V * C);
  ref_gguf_tensor(&gw, "token_embd.weight", 2, ne_vc, REF_Q8_0, embd.bytes, embd.size);
  ref_gguf_tensor(&gw, "output_norm.weight", 1, ne_c, REF_F32, m.out_norm, C * 4);
  ref_gguf_tensor(&gw, "output.weight", 2, ne_vc, REF_Q4_1, out.bytes, out.size);
  quantised q[L][9];
  float *permuted[L][2];
  ref_llama_layer gl[L];
  for (size_t l = 0; l < L; l++) {
    permuted[l][0] = to_gguf_rows(m.store[l][1], H);
    permuted[l][1] = to_gguf_rows(m.store[l][2], KV);
    for (size_t i = 0; i < 9; i++) {
      const float *x = i == 1 ? permuted[l][0] : i == 2 ? permuted[l][1] : m.store[l][i];
      q[l][i] = quantise(types[i], x, rows[i] * cols[i]);
      char name[64];
      snprintf(name, sizeof(name), "blk.%zu.%s.weight", l, parts[i]);
      uint64_t ne[2] = {cols[i], rows[i]};
      ref_gguf_tensor(&gw, name, rows[i] == 1 ? 1 : 2, ne, (uint32_t)types[i], q[l][i].bytes,
                      q[l][i].size);
    }
    float **r = (float *[9]){q[l][0].recon, q[l][1].recon, q[l][2].recon, q[l][3].recon,
                             q[l][4].recon, q[l][5].recon, q[l][6].recon, q[l][7].recon,
                             q[l][8].recon};
    gl[l] = (ref_llama_layer){r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]};
  }
  ref_buf file = {0};
  ref_gguf_finish(&gw, &file);
  lamp_gguf *g = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_gguf_open_memory(ctx, file.data, file.size, &g));
  /* the reference on the decoded weights, in llama.cpp's row order */
  ref_llama_weights w = {embd.recon, m.out_norm, out.recon, gl, 1};
  float *pf;
  double *pd = prompt_values(&pf);
  double *grad = malloc(P * C * sizeof(double));
  fd_case fc = {&m, &w, 0};
  ref_llama_fd(fd_loss, &fc, pd, P * C, 1e-4, grad);
  float *logits[2] = {NULL, NULL};
  size_t bytes[2];
  for (int mode = 0; mode < 2; mode++) {
    lamp_model_options o = {mode ? LAMP_MODEL_WEIGHTS_STORED : LAMP_MODEL_WEIGHTS_F32, NULL};
    lamp_model *model = NULL;
    LAMP_OK_OR_FAIL(ctx, lamp_model_create_gguf_with(ctx, g, &o, &model));
    assert_int_equal(lamp_model_get_weights(model), o.weights);
    bytes[mode] = lamp_model_weight_bytes(model);
    /* the plan predicts what the model and a workspace take */
    lamp_model_shape shape = {B, T, P, M, K, 0};
    lamp_model_plan plan;
    LAMP_OK_OR_FAIL(ctx, lamp_model_plan_gguf(ctx, g, &shape, o.weights, &plan));
    assert_int_equal(plan.weights, o.weights);
    assert_int_equal(plan.weights_total, bytes[mode]);
    lamp_tensor table;
    lamp_status st = lamp_model_embedding(model, &table);
    assert_int_equal(st, mode ? LAMP_ERR_UNSUPPORTED : LAMP_OK);
    lamp_tensor rows_t;
    size_t ne[2] = {C, 7};
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &rows_t));
    LAMP_OK_OR_FAIL(ctx, lamp_model_embedding_rows(model, V - 7, 7, &rows_t));
    float *er = download(ctx, &rows_t);
    assert_memory_equal(er, embd.recon + (V - 7) * C, 7 * C * sizeof(float));
    free(er);
    lamp_tensor_release(&rows_t);
    for (int rc = 0; rc < 2; rc++) {
      lamp_model_workspace *ws = make_ws(ctx, model, P, rc, NULL, pf);
      shape.recompute = rc;
      LAMP_OK_OR_FAIL(ctx, lamp_model_plan_gguf(ctx, g, &shape, o.weights, &plan));
      assert_int_equal(plan.workspace + plan.activations, lamp_model_workspace_bytes(ws));
      check_logits(ctx, ws, &m, &w, pd, P, 1, mode ? "stored, label head" : "f32, label head");
      check_logits(ctx, ws, &m, &w, pd, P, 0, mode ? "stored" : "f32 from a quantised file");
      LAMP_OK_OR_FAIL(ctx, lamp_model_set_outputs(ws, M, out_seq, out_pos, vocab_targets));
      LAMP_OK_OR_FAIL(ctx, lamp_model_forward(ws, LAMP_MODEL_HEAD_VOCAB));
      LAMP_OK_OR_FAIL(ctx, lamp_model_backward(ws));
      lamp_tensor lt, gt;
      LAMP_OK_OR_FAIL(ctx, lamp_model_logits(ws, &lt));
      LAMP_OK_OR_FAIL(ctx, lamp_model_prompt_grad(ws, &gt));
      float *got = download(ctx, &gt);
      double err = ref_llama_rel_error(got, grad, P * C);
      if (!(err <= TOL))
        fail_msg("mode %d recompute %d: prompt gradient max relative error %.3e", mode, rc, err);
      free(got);
      if (!rc) logits[mode] = download(ctx, &lt);
      lamp_model_workspace_release(ws);
    }
    /* generation's cache reads the weights through the same paths: the prompt, then sequence
     * 0's tokens, give the logits of output 0 (its last token) */
    lamp_model_cache *cache = NULL;
    LAMP_OK_OR_FAIL(ctx, lamp_model_cache_create(model, P + T, &cache));
    lamp_tensor pt, cl;
    size_t pne[2] = {C, P};
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, pne, &pt));
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &pt, pf, P * C * sizeof(float)));
    LAMP_OK_OR_FAIL(ctx, lamp_model_cache_append(cache, &pt, NULL, 0, NULL));
    LAMP_OK_OR_FAIL(ctx, lamp_model_cache_append(cache, NULL, ids, lengths[0], &cl));
    float *cached = download(ctx, &cl);
    double *wide_row = malloc(V * sizeof(double));
    for (size_t i = 0; i < V; i++) wide_row[i] = logits[mode][i];
    double cache_err = ref_llama_rel_error(cached, wide_row, V);
    if (!(cache_err <= TOL)) fail_msg("mode %d: cached logits max relative error %.3e", mode, cache_err);
    free(cached), free(wide_row);
    lamp_tensor_release(&pt);
    lamp_model_cache_release(cache);
    lamp_model_release(model);
  }
  /* the two modes compute on the same f32 values */
  double *wide = malloc(M * V * sizeof(double));
  for (size_t i = 0; i < M * V; i++) wide[i] = logits[0][i];
  double err = ref_llama_rel_error(logits[1], wide, M * V);
  if (!(err <= 1e-5)) fail_msg("stored against f32 logits: max relative error %.3e", err);
  assert_true(bytes[1] < bytes[0]);
  /* AUTO with room for everything keeps f32 */
  lamp_model_options autom = {LAMP_MODEL_WEIGHTS_AUTO, NULL};
  lamp_model *model = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_create_gguf_with(ctx, g, &autom, &model));
  assert_int_equal(lamp_model_get_weights(model), LAMP_MODEL_WEIGHTS_F32);
  lamp_model_release(model);
  lamp_gguf_release(g);
  free(wide), free(logits[0]), free(logits[1]), free(grad), free(pf), free(pd);
  for (size_t l = 0; l < L; l++) {
    free(permuted[l][0]), free(permuted[l][1]);
    for (size_t i = 0; i < 9; i++) free(q[l][i].bytes), free(q[l][i].recon);
  }
  free(embd.bytes), free(embd.recon), free(out.bytes), free(out.recon);
  ref_buf_free(&file);
  tiny_free(&m);
}

static void test_errors(void **state) {
  lamp_context *ctx = *state;
  tiny m;
  tiny_make(&m, 1);
  lamp_model *model = tiny_device(ctx, &m);
  lamp_model_shape s = {B, T, P, M, K, 0};
  lamp_model_workspace *ws = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_workspace_create(model, &s, &ws));
  int32_t bad[B * T];
  memcpy(bad, ids, sizeof(bad));
  bad[4] = V;
  assert_int_equal(lamp_model_set_tokens(ws, B, T, bad, lengths), LAMP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(lamp_context_error(ctx), "token 4 of sequence 0"));
  size_t long_len[B] = {9, 10, 1};
  assert_int_equal(lamp_model_set_tokens(ws, B, T, ids, long_len), LAMP_ERR_SHAPE);
  assert_int_equal(lamp_model_set_tokens(ws, B + 1, T, ids, lengths), LAMP_ERR_SHAPE);
  assert_int_equal(lamp_model_forward(ws, LAMP_MODEL_HEAD_VOCAB), LAMP_ERR_INVALID_ARGUMENT);
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_tokens(ws, B, T, ids, lengths));
  size_t seq2[2] = {1, 1}, pos2[2] = {3, 3}, pos_far[2] = {4, 0};
  assert_int_equal(lamp_model_set_outputs(ws, 2, seq2, pos2, NULL), LAMP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(lamp_context_error(ctx), "chosen twice"));
  assert_int_equal(lamp_model_set_outputs(ws, 2, seq2, pos_far, NULL), LAMP_ERR_INVALID_ARGUMENT);
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_outputs(ws, M, out_seq, out_pos, NULL));
  /* the label head needs labels; the backward needs targets */
  assert_int_equal(lamp_model_forward(ws, LAMP_MODEL_HEAD_LABELS), LAMP_ERR_INVALID_ARGUMENT);
  LAMP_OK_OR_FAIL(ctx, lamp_model_forward(ws, LAMP_MODEL_HEAD_VOCAB));
  assert_int_equal(lamp_model_backward(ws), LAMP_ERR_INVALID_ARGUMENT);
  /* vocabulary targets are not label indices */
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_labels(ws, K, label_ids));
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_outputs(ws, M, out_seq, out_pos, vocab_targets));
  assert_int_equal(lamp_model_forward(ws, LAMP_MODEL_HEAD_LABELS), LAMP_ERR_INVALID_ARGUMENT);
  lamp_model_workspace_release(ws);
  lamp_model_release(model);

  /* a missing tensor is named; a bad configuration is refused before any allocation */
  lamp_model_config c = {L, C, H, KV, 0, F, V, 10000.0f, 1e-5f, 0, 0, LAMP_MODEL_ARCH_LLAMA,
                         0, 0, 0, 0, 0, 0, 0};
  m.output = NULL;
  lamp_model *none = NULL;
  assert_int_equal(lamp_model_create(ctx, &c, LAMP_MODEL_NAMES_HF, tiny_lookup, &m, &none),
                   LAMP_ERR_NOT_FOUND);
  assert_non_null(strstr(lamp_context_error(ctx), "lm_head.weight"));
  assert_null(none);
  c.n_kv_heads = 3;
  assert_int_equal(lamp_model_create(ctx, &c, LAMP_MODEL_NAMES_HF, tiny_lookup, &m, &none),
                   LAMP_ERR_INVALID_ARGUMENT);
  c.n_kv_heads = KV;
  c.head_dim = 258; /* past the widest head the attention kernels hold */
  assert_int_equal(lamp_model_create(ctx, &c, LAMP_MODEL_NAMES_HF, tiny_lookup, &m, &none),
                   LAMP_ERR_UNSUPPORTED);
  tiny_free(&m);
}

/* A batch far too large for the device is refused with a message saying what and how much,
 * before anything is allocated: no crash, no device driver overcommitting into the OOM killer. */
static void test_workspace_too_large(void **state) {
  lamp_context *ctx = *state;
  tiny m;
  tiny_make(&m, 1);
  lamp_model *model = tiny_device(ctx, &m);
  for (int recompute = 0; recompute < 2; recompute++) {
    lamp_model_shape s = {65536, 65536, P, 65536, K, recompute};
    lamp_model_workspace *ws = (lamp_model_workspace *)&s;
    assert_int_equal(lamp_model_workspace_create(model, &s, &ws), LAMP_ERR_OUT_OF_MEMORY);
    assert_null(ws);
    const char *msg = lamp_context_error(ctx);
    if (!recompute) print_message("%s\n", msg);
    assert_non_null(strstr(msg, "cannot allocate"));
    assert_non_null(strstr(msg, "for the model workspace of 65536 sequences of 65536 tokens"));
    assert_non_null(strstr(msg, "of global memory"));
    assert_int_equal(strstr(msg, "recompute blocks in the backward") == NULL, recompute);
  }
  /* the model still serves a workspace of a sensible size */
  lamp_model_shape ok = {B, T, P, M, K, 0};
  lamp_model_workspace *ws = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_workspace_create(model, &ok, &ws));
  lamp_model_workspace_release(ws);
  lamp_model_release(model);
  tiny_free(&m);
}

/* Below the device's largest allocation, the scratch and every block's activations are split
 * over several buffers, none larger than it, and forward and backward give what one buffer
 * each gives; a single region beyond it is refused naming the limit. */
static void test_workspace_split(void **state) {
  lamp_context *ctx = *state;
  tiny m;
  tiny_make(&m, 1);
  lamp_model *model = tiny_device(ctx, &m);
  float *pf;
  double *pd = prompt_values(&pf);
  /* the largest region: the gate/up rows' gradient, 64 rows (P + B T rounded up) of 2F */
  const size_t region = 64 * 2 * F * sizeof(float);
  const uint64_t device_limit = ctx->info.max_alloc_bytes;
  float *want[3] = {NULL, NULL, NULL};
  for (int split = 0; split < 2; split++) {
    if (split) ctx->info.max_alloc_bytes = region;
    lamp_model_workspace *ws = make_ws(ctx, model, P, 0, label_targets, pf);
    if (split) {
      assert_true(ws->n_buffers > L + 3);
      for (size_t i = 0; i < ws->n_buffers; i++) {
        size_t bytes = 0;
        assert_int_equal(clGetMemObjectInfo(ws->buffers[i], CL_MEM_SIZE, sizeof(bytes), &bytes,
                                            NULL), CL_SUCCESS);
        assert_true(bytes <= region);
      }
    }
    LAMP_OK_OR_FAIL(ctx, lamp_model_forward(ws, LAMP_MODEL_HEAD_LABELS));
    LAMP_OK_OR_FAIL(ctx, lamp_model_backward(ws));
    lamp_tensor t[3];
    LAMP_OK_OR_FAIL(ctx, lamp_model_logits(ws, &t[0]));
    LAMP_OK_OR_FAIL(ctx, lamp_model_losses(ws, &t[1]));
    LAMP_OK_OR_FAIL(ctx, lamp_model_prompt_grad(ws, &t[2]));
    for (int k = 0; k < 3; k++) {
      float *got = download(ctx, &t[k]);
      if (!split) {
        want[k] = got;
        continue;
      }
      size_t n = lamp_tensor_numel(&t[k]);
      for (size_t i = 0; i < n; i++)
        if (fabsf(got[i] - want[k][i]) > 1e-6f * (1 + fabsf(want[k][i])))
          fail_msg("output %d, element %zu: %.9g split, %.9g in one buffer", k, i, got[i],
                   want[k][i]);
      free(got);
    }
    lamp_model_workspace_release(ws);
  }
  ctx->info.max_alloc_bytes = region / 2;
  lamp_model_shape s = {B, T, P, M, K, 0};
  lamp_model_workspace *ws = NULL;
  assert_int_equal(lamp_model_workspace_create(model, &s, &ws), LAMP_ERR_OUT_OF_MEMORY);
  assert_null(ws);
  assert_non_null(strstr(lamp_context_error(ctx), "more than its largest allocation"));
  ctx->info.max_alloc_bytes = device_limit;
  for (int k = 0; k < 3; k++) free(want[k]);
  free(pf), free(pd);
  lamp_model_release(model);
  tiny_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_forward),
      cmocka_unit_test(test_backward),
      cmocka_unit_test(test_gguf),
      cmocka_unit_test(test_stored),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_workspace_too_large),
      cmocka_unit_test(test_workspace_split),
  };
  /* the backward runs every forward kernel too */
  const struct CMUnitTest small[] = {
      cmocka_unit_test(test_backward),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_workspace_too_large),
  };
  return fixture_simulator() ? cmocka_run_group_tests(small, fixture_setup, fixture_teardown)
                             : cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
