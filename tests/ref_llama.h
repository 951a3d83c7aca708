/* Plain-C double-precision reference of the Llama-family model and its ops, written from the
 * model's equations and independent of lamp's device code, plus a finite-difference helper.
 * Shapes are row-major, legend as in lamp: N = B S rows, S = P + T rows per sequence, W the
 * fused QKV width (H + 2 Hkv) D. */
#ifndef LAMP_TEST_REF_LLAMA_H
#define LAMP_TEST_REF_LLAMA_H

#include <stddef.h>
#include <stdint.h>

/* y (rows, C) = x / sqrt(mean(x^2) + eps) * w. */
void ref_llama_rmsnorm(double *y, const double *x, const double *w, size_t rows, size_t width,
                       double eps);

/* Rotates in place the first `heads` heads (width D) of each row of x (rows, stride), angle
 * pos * base^(-2i/D) for pair i, row n at position n < prefix ? n : prefix + (n - prefix) %
 * tokens (prefix 0, tokens S: sequences of S rows each). `interleaved` 0 pairs (i, i + D/2)
 * (Hugging Face), 1 pairs (2i, 2i + 1) (llama.cpp on its reordered weights). */
void ref_llama_rope(double *x, size_t rows, size_t stride, size_t heads, size_t dim,
                    size_t prefix, size_t tokens, double base, int interleaved);

/* o (N, H D) from qkv (N, W): causal grouped-query attention, query head h on KV head
 * h / (H / Hkv), key j visible to query t when j <= t < valid[b]; padding rows give zeros.
 * The softmax is computed directly (max subtracted), not tiled. */
void ref_llama_attention(double *o, const double *qkv, size_t batch, size_t seq, size_t heads,
                         size_t kv_heads, size_t dim, const int *valid);

/* The same with scores q.k scale, then softcap tanh(s / softcap) when softcap > 0 (Gemma 2),
 * and with window > 0 only keys t - window < j <= t (a sliding window). */
void ref_llama_attention_capped(double *o, const double *qkv, size_t batch, size_t seq,
                                size_t heads, size_t kv_heads, size_t dim, const int *valid,
                                double scale, double softcap, size_t window);

/* a (rows, F) = silu(gate) * up from gu (rows, 2F). */
void ref_llama_swiglu(double *a, const double *gu, size_t rows, size_t ffn);

/* a (rows, F) = gelu_tanh(gate) * up from gu (rows, 2F): GeGLU, transformers'
 * gelu_pytorch_tanh. */
void ref_llama_geglu(double *a, const double *gu, size_t rows, size_t ffn);

/* loss (rows) = logsumexp(z_m) - z_m[target_m] for target >= 0, else 0. */
void ref_llama_cross_entropy(double *loss, const double *z, size_t rows, size_t width,
                             const int *target);

typedef struct ref_llama_config {
  size_t n_layers, n_embd, n_heads, n_kv_heads, head_dim, n_ff, n_vocab;
  double rope_base, eps;
  int tied;
} ref_llama_config;

/* Weights as float arrays, Hugging Face shapes (out rows, in columns). With `interleaved`, the
 * Q and K rows are in llama.cpp's order and RoPE pairs (2i, 2i + 1). */
typedef struct ref_llama_layer {
  const float *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *wgate, *wup, *wdown;
} ref_llama_layer;

typedef struct ref_llama_weights {
  const float *embd, *out_norm, *output; /* output NULL when tied */
  const ref_llama_layer *layers;
  int interleaved;
} ref_llama_weights;

/* The batch of a forward: tokens (B, T), lengths (B), a prompt (P, C) in double (may be NULL
 * when P == 0), M outputs at (seq[m], pos[m]) (pos counted from the first token), and a head:
 * labels NULL for the whole vocabulary, else K label token ids. */
typedef struct ref_llama_batch {
  size_t batch, tokens, prompt_rows;
  const int32_t *ids;
  const size_t *lengths;
  const double *prompt;
  size_t n_out;
  const size_t *seq, *pos;
  const int32_t *labels;
  size_t n_labels;
} ref_llama_batch;

/* logits (M, V or K) of the whole model in double. */
void ref_llama_forward(const ref_llama_config *cfg, const ref_llama_weights *w,
                       const ref_llama_batch *batch, double *logits);

/* Mean cross-entropy over the outputs with a target >= 0 (0 when none). */
double ref_llama_loss(const ref_llama_config *cfg, const ref_llama_weights *w,
                      const ref_llama_batch *batch, const int32_t *targets);

/* grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2h), x restored afterwards. */
void ref_llama_fd(double (*f)(void *user, const double *x), void *user, double *x, size_t n,
                  double h, double *grad);

/* max |x - y| / max(max |y|, tiny) between a float and a double array. */
double ref_llama_rel_error(const float *x, const double *y, size_t n);

#endif
