/* Device ops of the Llama-family model (internal): each launches the kernels of one
 * kernels/<op>.cl file on the context's queue, never waits, and checks the shapes it is given.
 *
 * Float tensors are f32 with dense rows: ne[0] is the row width, every further dimension is
 * folded into the row count. Integer inputs (token ids, lengths, indices, targets) are cl_mem
 * buffers of cl_int prepared by the caller. Legend: B sequences of S = P + T positions, P of them
 * a prefix (the prompt) shared by every sequence and stored once: N = P + B T rows, the prefix
 * first, then T rows per sequence (kernels/attention.cl). W = (H + 2 Hkv) D the fused QKV
 * width, F the MLP width, M chosen rows. */
#ifndef LAMP_LLAMA_OPS_H
#define LAMP_LLAMA_OPS_H

#include "lamp/lamp.h"

/* Largest head width the attention kernels hold in private memory (Gemma's 256). */
#define LAMP__ATTENTION_MAX_DIM 256

/* x (N, C): prompt rows, then table rows of ids (B, T), zeros past lengths (B). `prompt`
 * (P, C) may be NULL when P == 0. Overwrites x. */
lamp_status lamp__llama_embedding_forward(lamp_context *ctx, lamp_tensor *x,
                                          const lamp_tensor *table, const lamp_tensor *prompt,
                                          cl_mem ids, cl_mem lengths, size_t batch,
                                          size_t tokens, size_t prompt_rows);

/* dprompt (P, C) = the prompt rows of dx (N, C), which hold the gradient of every sequence.
 * Overwrites dprompt. */
lamp_status lamp__llama_embedding_backward(lamp_context *ctx, lamp_tensor *dprompt,
                                           const lamp_tensor *dx, size_t batch, size_t tokens,
                                           size_t prompt_rows);

/* out (M, C) = src[idx[m]] for m < M; idx holds M row indices into src (checked by the
 * caller). Overwrites out. */
lamp_status lamp__llama_gather(lamp_context *ctx, lamp_tensor *out, const lamp_tensor *src,
                               cl_mem idx);

/* dst[idx[m]] = src[m] for m < M, indices distinct (checked by the caller); other rows of dst
 * are left as they are. */
lamp_status lamp__llama_scatter(lamp_context *ctx, lamp_tensor *dst, const lamp_tensor *src,
                                cl_mem idx);

/* y (N, C) = x r w, r = 1 / sqrt(mean(x^2) + eps) saved in rstd (N). Overwrites y, rstd. */
lamp_status lamp__llama_rmsnorm_forward(lamp_context *ctx, lamp_tensor *y, lamp_tensor *rstd,
                                        const lamp_tensor *x, const lamp_tensor *w, float eps);

/* s (N, C) = a + b, then y = norm(s) w as above. s may be the same tensor as a. */
lamp_status lamp__llama_rmsnorm_add_forward(lamp_context *ctx, lamp_tensor *s, lamp_tensor *y,
                                            lamp_tensor *rstd, const lamp_tensor *a,
                                            const lamp_tensor *b, const lamp_tensor *w,
                                            float eps);

/* dx (N, C) from dy through the norm at input x with the saved rstd: accumulates (+=) when
 * `accumulate` is nonzero, else overwrites. */
lamp_status lamp__llama_rmsnorm_backward(lamp_context *ctx, lamp_tensor *dx,
                                         const lamp_tensor *dy, const lamp_tensor *x,
                                         const lamp_tensor *rstd, const lamp_tensor *w,
                                         int accumulate);

/* Gemma 3's Q/K head norms, in place on the first `heads` heads (width dim) of each row of
 * x (N, >= heads dim): heads below q_heads normalised with weight wq (dim), the rest with wk,
 * y = x r w per head; the inputs are kept in saved (N, heads dim), r in rstd (N, heads). */
lamp_status lamp__llama_rmsnorm_heads_forward(lamp_context *ctx, lamp_tensor *x,
                                              lamp_tensor *saved, lamp_tensor *rstd,
                                              const lamp_tensor *wq, const lamp_tensor *wk,
                                              size_t q_heads, size_t heads, size_t dim,
                                              float eps);

/* Its backward, in place: the heads of dx (N, >= heads dim) hold the outputs' gradient and get
 * the inputs'. */
lamp_status lamp__llama_rmsnorm_heads_backward(lamp_context *ctx, lamp_tensor *dx,
                                               const lamp_tensor *saved, const lamp_tensor *rstd,
                                               const lamp_tensor *wq, const lamp_tensor *wk,
                                               size_t q_heads, size_t heads, size_t dim);

/* Columns col .. col + w - 1 of every row of x (N, W) += b (w): the frozen Q/K/V biases (the
 * backward is the identity). */
lamp_status lamp__llama_bias_add(lamp_context *ctx, lamp_tensor *x, size_t col,
                                 const lamp_tensor *b);

/* Rotates, in place, the first `heads` heads (width `dim`) of each row of x (N, >= heads dim)
 * in the rotate-half pairing, row n < P at position n, row P + b T + t at P + t; cos_t and
 * sin_t are (>= P + T, D/2). `backward` nonzero applies the transposed rotation (gradients). */
lamp_status lamp__llama_rope(lamp_context *ctx, lamp_tensor *x, size_t heads, size_t dim,
                             size_t prefix, size_t tokens, const lamp_tensor *cos_t,
                             const lamp_tensor *sin_t, int backward);

/* Rotates, in place, the first `heads` heads of each row n of x (N, >= heads dim) to position
 * pos0 + n; cos_t and sin_t are (>= pos0 + N, D/2) and start their buffers. */
lamp_status lamp__llama_rope_at(lamp_context *ctx, lamp_tensor *x, size_t heads, size_t dim,
                                size_t pos0, const lamp_tensor *cos_t, const lamp_tensor *sin_t);

/* o (n, H D) from n queries, the first H heads of the rows of q (n, >= H D; the fused QKV
 * rows), at positions pos0 .. pos0 + n - 1, against kv (>= pos0 + n, 2 Hkv D): row j holds the
 * keys then the values of position j, the new positions' included. Causal GQA
 * (kernels/attention_decode.cl), scores scaled and soft-capped as in attention_forward; with
 * window > 0 a query sees only the last `window` positions, its own included. Overwrites o. */
lamp_status lamp__llama_attention_cached(lamp_context *ctx, lamp_tensor *o, const lamp_tensor *q,
                                         const lamp_tensor *kv, size_t pos0, size_t heads,
                                         size_t kv_heads, size_t dim, float scale,
                                         float softcap, size_t window);

/* o (N, H D), lse (N, H) from qkv (N, W): causal GQA with valid (B) real positions per
 * sequence, the prefix included (valid[b] >= P), scores q.k scale, then with softcap > 0
 * softcap tanh(s / softcap) (Gemma 2; 0: none); with window > 0 query t sees only keys
 * t - window + 1 .. t (positions counted from the prefix's first). Overwrites o and lse. */
lamp_status lamp__llama_attention_forward(lamp_context *ctx, lamp_tensor *o, lamp_tensor *lse,
                                          const lamp_tensor *qkv, cl_mem valid, size_t batch,
                                          size_t prefix, size_t tokens, size_t heads,
                                          size_t kv_heads, size_t dim, float scale,
                                          float softcap, size_t window);

/* dqkv (N, W) from dout (N, H D), given the forward's qkv, o and lse and its scale, soft cap
 * and window; delta (N, H) is scratch. Overwrites dqkv (padding rows get zeros). */
lamp_status lamp__llama_attention_backward(lamp_context *ctx, lamp_tensor *dqkv,
                                           lamp_tensor *delta, const lamp_tensor *qkv,
                                           const lamp_tensor *o, const lamp_tensor *dout,
                                           const lamp_tensor *lse, cl_mem valid, size_t batch,
                                           size_t prefix, size_t tokens, size_t heads,
                                           size_t kv_heads, size_t dim, float scale,
                                           float softcap, size_t window);

/* a (N, F) = silu(gate) * up from gu (N, 2F). Overwrites a. */
lamp_status lamp__llama_swiglu_forward(lamp_context *ctx, lamp_tensor *a, const lamp_tensor *gu);

/* dgu (N, 2F) from da (N, F) and the forward's gu. Overwrites dgu. */
lamp_status lamp__llama_swiglu_backward(lamp_context *ctx, lamp_tensor *dgu,
                                        const lamp_tensor *da, const lamp_tensor *gu);

/* The same for GeGLU (Gemma): a = gelu_tanh(gate) * up, with the tanh approximation of GELU
 * (transformers' gelu_pytorch_tanh). */
lamp_status lamp__llama_geglu_forward(lamp_context *ctx, lamp_tensor *a, const lamp_tensor *gu);
lamp_status lamp__llama_geglu_backward(lamp_context *ctx, lamp_tensor *dgu,
                                       const lamp_tensor *da, const lamp_tensor *gu);

/* x (M, W) = cap tanh(x / cap) in place: Gemma 2's soft-capped logits (cap > 0). */
lamp_status lamp__llama_softcap_forward(lamp_context *ctx, lamp_tensor *x, float cap);

/* dx (M, W) *= 1 - (y / cap)^2, y the capped values the forward left: the gradient through the
 * cap, in place. */
lamp_status lamp__llama_softcap_backward(lamp_context *ctx, lamp_tensor *dx,
                                         const lamp_tensor *y, float cap);

/* loss (M) and lse (M) of logits (M, W) against target (M) column ids; a negative target gives
 * loss 0. Overwrites loss and lse. */
lamp_status lamp__llama_cross_entropy_forward(lamp_context *ctx, lamp_tensor *loss,
                                              lamp_tensor *lse, const lamp_tensor *logits,
                                              cl_mem target);

/* dlogits (M, W) = scale (softmax - onehot(target)), zero rows where target < 0. Overwrites. */
lamp_status lamp__llama_cross_entropy_backward(lamp_context *ctx, lamp_tensor *dlogits,
                                               const lamp_tensor *logits,
                                               const lamp_tensor *lse, cl_mem target,
                                               float scale);

#endif
