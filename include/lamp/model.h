/* lamp: a frozen Llama-family model on the device: forward for batches of token sequences with
 * an optional soft prompt prepended, logits over the vocabulary or over a verbaliser's label
 * words, cross-entropy at chosen positions, and the gradient of that loss with respect to the
 * prompt only (no weight gradients exist anywhere).
 *
 * Architecture: token embedding; L blocks of x += Wo attn(rope(Wqkv rmsnorm(x) [+ bqkv])),
 * x += Wdown swiglu(Wgate/up rmsnorm(x)); final rmsnorm; output head (tied to the embedding or
 * separate). Attention is causal, grouped-query (query head h reads KV head h / (H / Hkv)), heads
 * at most 256 wide. Llama, Mistral, Qwen2 and Phi-3 are this block; Gemma 2 adds norms after
 * each sub-layer, GeGLU, scaled embeddings and soft-capped scores and logits, Gemma 3 norms
 * over each Q and K head and a RoPE base per layer kind (lamp_model_arch says how they
 * differ).
 *
 * Rotary embeddings use the rotate-half pairing of Hugging Face's Llama (element i of a head
 * pairs with element i + D/2, frequency base^(-2i/D)), and the model keeps Q and K weights in
 * Hugging Face row order. llama.cpp's converter reorders the rows of Q and K so that its
 * interleaved pairing (2i, 2i + 1) computes the same thing; weights named the GGUF way
 * (LAMP_MODEL_NAMES_GGUF) are therefore put back in Hugging Face order on load: GGUF row
 * 2i + j of a head becomes row j D/2 + i. Both namings give the same model.
 *
 * Sequences: every sequence of a batch is S = P + T positions, the P prompt positions first,
 * then its tokens, then padding (right-padded to the longest, T). Positions count from 0 at
 * the first prompt row; padding rows take part in nothing. The prompt is causal and comes
 * first, so its hidden states are the same in every sequence: a workspace computes them once
 * per batch (P + B T rows, not B (P + T)) and their gradient gathers every sequence's; when the
 * prompt is fixed (scoring), lamp_model_forward_prefixed (lamp/cache.h) takes its keys and
 * values from a cache computed once and runs the B T token rows alone. Outputs
 * are requested at chosen (sequence, token index) pairs, token index counted from the first
 * token (not the prompt).
 *
 * Memory: frozen weights live in a few big device buffers viewed per tensor, either expanded to
 * f32 at load or in their file's storage format (F16, BF16, Q8_0, Q4_K, ...), which a kernel
 * expands into one reused f32 scratch right before each product (lamp_model_weights). A
 * workspace holds everything one batch shape needs (inputs, activations kept for the backward,
 * scratch), allocated once, in as many buffers as the device's largest allocation requires,
 * and reused; with `recompute` set it keeps only each block's input and reruns a block's
 * forward during the backward (about a third more time, far less memory).
 *
 * Synchronisation: lamp_model_set_tokens and lamp_model_set_outputs check their input and
 * enqueue its copy to the device without waiting for it (the workspace keeps the host copy),
 * but first wait until the previous batch's copies have run: the host can prepare one batch
 * ahead of the device. lamp_model_set_labels copies and waits. Forward and backward only
 * enqueue kernels and GEMMs, with no host round trip, and return before the device is done. */
#ifndef LAMP_MODEL_H
#define LAMP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "lamp/export.h"
#include "lamp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lamp_model_config {
  size_t n_layers;   /* L */
  size_t n_embd;     /* C */
  size_t n_heads;    /* H */
  size_t n_kv_heads; /* Hkv, dividing H */
  size_t head_dim;   /* D, even, at most 256; 0 means C / H */
  size_t n_ff;       /* F, the MLP's inner width */
  size_t n_vocab;    /* V */
  float rope_base;   /* theta of the rotary frequencies, e.g. 10000 */
  float norm_eps;    /* RMSNorm epsilon, e.g. 1e-5 */
  int tied_embeddings; /* nonzero: the output head is the token embedding table */
  size_t n_ctx;      /* trained context length (GGUF <arch>.context_length, config.json
                        max_position_embeddings); 0 when unknown; lamp does not enforce it */
  /* Fields added for architectures beyond Llama; zero keeps the plain Llama block, so a
   * configuration that sets only the fields above still means what it did. */
  int arch;          /* a lamp_model_arch: tensor names and layout (see lamp_model_arch) */
  int qkv_bias;      /* nonzero: Q, K and V projections add a bias (Qwen2) */
  size_t sliding_window; /* the model's attention window in positions, 0: none; for Gemma
                            the window of its local layers. For Mistral and Gemma, workspaces
                            (forward and backward) and the generation cache (lamp/cache.h)
                            attend within it: the last `window` positions, a query's own
                            included, as Hugging Face's masks keep, so any length runs. For
                            Phi-3 and Qwen2 lamp attends to every earlier position, which
                            equals their windowed attention only while P + T <= window, so
                            more positions are LAMP_ERR_UNSUPPORTED */
  float query_scale;     /* attention scores are q.k times this; 0: 1 / sqrt(head_dim). Gemma:
                            query_pre_attn_scalar^-1/2 */
  float attn_softcap;    /* > 0: attention scores s become attn_softcap tanh(s / attn_softcap)
                            before the softmax (Gemma 2's attn_logit_softcapping); 0: none */
  float final_softcap;   /* > 0: the same on the output head's logits, both heads (Gemma 2's
                            final_logit_softcapping); 0: none */
  size_t window_pattern; /* > 0: layer l is local (attends within sliding_window) unless
                            (l + 1) is a multiple of it, global otherwise (Gemma 2: 2, Gemma 3:
                            sliding_window_pattern, 6); 0: every layer alike */
  float rope_base_local; /* > 0: the RoPE base of local layers (Gemma 3's rope_local_base_freq,
                            10000), rope_base that of global ones; 0: rope_base everywhere */
} lamp_model_config;

/* The architectures lamp runs. All are the block above; they differ in naming and details. */
typedef enum lamp_model_arch {
  /* Llama (HF model_type "llama", GGUF general.architecture "llama"). */
  LAMP_MODEL_ARCH_LLAMA = 0,
  /* Mistral (HF "mistral"): a Llama block, with a sliding window in some versions; llama.cpp
   * converts it to GGUF architecture "llama", which then loads as LAMP_MODEL_ARCH_LLAMA and
   * carries no window (lamp, like llama.cpp, then attends over the whole sequence). */
  LAMP_MODEL_ARCH_MISTRAL = 1,
  /* Qwen2 and Qwen2.5 (HF "qwen2", GGUF "qwen2"): biases on Q, K and V
   * ("model.layers.<i>.self_attn.{q,k,v}_proj.bias", "blk.<i>.attn_{q,k,v}.bias"); GGUF keeps
   * Hugging Face's Q/K row order (llama.cpp runs it with rotate-half RoPE), so no reordering. */
  LAMP_MODEL_ARCH_QWEN2 = 2,
  /* Phi-3 (HF "phi3", GGUF "phi3"): Q, K and V in one fused matrix (rows Q, K, V:
   * "model.layers.<i>.self_attn.qkv_proj.weight", "blk.<i>.attn_qkv.weight") and gate and up
   * in another (rows gate, then up: "model.layers.<i>.mlp.gate_up_proj.weight",
   * "blk.<i>.ffn_up.weight"); no Q/K reordering in GGUF. LongRoPE scaling and partial rotary
   * embeddings are refused. */
  LAMP_MODEL_ARCH_PHI3 = 3,
  /* Gemma 2 (HF "gemma2", GGUF "gemma2"): the block is
   *   x = sqrt(C) [prompt; embed(tokens)] (Hugging Face scales inputs_embeds too);
   *   x += post_attention_norm(Wo attn(rope(Wqkv attn_norm(x))));
   *   x += post_ffw_norm(Wdown geglu(Wgate/up ffn_norm(x)))
   * with RMSNorms of scale 1 + w (computed in f32), GeGLU down(gelu_tanh(gate) * up), scores
   * times query_scale and soft-capped by attn_softcap, logits soft-capped by final_softcap,
   * tied embeddings by default. Extra norms "blk.<i>.post_attention_norm.weight",
   * "blk.<i>.post_ffw_norm.weight" (HF "model.layers.<i>.post_attention_layernorm.weight",
   * "model.layers.<i>.post_feedforward_layernorm.weight"); HF's
   * "model.layers.<i>.pre_feedforward_layernorm.weight" is the GGUF ffn_norm. Norm weights
   * named the GGUF way hold 1 + w, as llama.cpp's converter writes them; named the HF way they
   * hold w and lamp adds 1 at load. No Q/K reordering in GGUF. Local (even) layers attend within
   * sliding_window, global ones everywhere. */
  LAMP_MODEL_ARCH_GEMMA2 = 4,
  /* Gemma 3's text model (HF model_type "gemma3_text", Gemma3ForCausalLM; GGUF "gemma3"): the
   * Gemma 2 block without soft-capping, with RMSNorms (1 + w) over each query and key head
   * before RoPE ("blk.<i>.attn_{q,k}_norm.weight", HF "model.layers.<i>.self_attn.{q,k}_norm
   * .weight", (D) each) and rope_base_local on local layers. Its embedding module scales the
   * token rows by sqrt(C) but not inputs_embeds, so the prompt enters unscaled. The multimodal
   * "gemma3" config (its text_config) and rope_scaling (4B and larger) are refused. */
  LAMP_MODEL_ARCH_GEMMA3 = 5,
} lamp_model_arch;

/* The architecture's name ("llama", "mistral", "qwen2", "phi3", "gemma2", "gemma3"), or NULL
 * for an unknown one. */
LAMP_API const char *lamp_model_arch_name(int arch);

/* How the lookup function is asked for tensors (the Llama names; lamp_model_arch lists what
 * other architectures add or fuse). */
typedef enum lamp_model_names {
  /* "token_embd.weight", "output_norm.weight", "output.weight", "blk.<i>.attn_norm.weight",
   * "blk.<i>.attn_q.weight", "blk.<i>.attn_k.weight", "blk.<i>.attn_v.weight",
   * "blk.<i>.attn_output.weight", "blk.<i>.ffn_norm.weight", "blk.<i>.ffn_gate.weight",
   * "blk.<i>.ffn_up.weight", "blk.<i>.ffn_down.weight"; Q and K rows in llama.cpp's order. */
  LAMP_MODEL_NAMES_GGUF = 0,
  /* "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
   * "model.layers.<i>.input_layernorm.weight", "model.layers.<i>.self_attn.{q,k,v,o}_proj.weight",
   * "model.layers.<i>.post_attention_layernorm.weight",
   * "model.layers.<i>.mlp.{gate,up,down}_proj.weight"; Q and K rows in Hugging Face's order. */
  LAMP_MODEL_NAMES_HF = 1,
} lamp_model_names;

/* Returns in *data the host f32 values of tensor `name`, row-major with the shape
 * (rows, cols) given (e.g. attn_q is (H D, C), ffn_down is (C, F), norms are (1, C)); the
 * pointer must stay valid until the next call or until lamp_model_create returns. A missing
 * tensor is LAMP_ERR_NOT_FOUND; the function may record its own message with lamp's context
 * API only through its return value, so it should say why in `error` (error_size bytes). */
typedef lamp_status (*lamp_model_lookup_fn)(void *user, const char *name, size_t rows,
                                            size_t cols, const float **data, char *error,
                                            size_t error_size);

typedef struct lamp_model lamp_model;

/* Checks the configuration, allocates the weights on the context's device and fills them
 * through `lookup` (called once per tensor, in a fixed order). */
LAMP_API lamp_status lamp_model_create(lamp_context *ctx, const lamp_model_config *config,
                                       lamp_model_names names, lamp_model_lookup_fn lookup,
                                       void *user, lamp_model **out);

typedef struct lamp_gguf lamp_gguf;

/* The configuration of the Llama-family model in an open GGUF file, from "<arch>.*" metadata
 * where <arch> is general.architecture ("llama", "qwen2", "phi3", "gemma2" or "gemma3";
 * another is LAMP_ERR_UNSUPPORTED naming it and the known ones): block_count,
 * embedding_length, attention.head_count, feed_forward_length and context_length required;
 * attention.head_count_kv (default: the heads), attention.key_length (width / heads),
 * rope.freq_base (10000), attention.layer_norm_rms_epsilon (1e-5) and attention.sliding_window
 * (none) optional; the vocabulary from <arch>.vocab_size or the tokenizer's token list; tied when
 * the file has no output.weight; qkv_bias for "qwen2". Gemma: window_pattern 2,
 * attn_logit_softcapping and final_logit_softcapping (none when absent); llama.cpp stores no
 * query_pre_attn_scalar, and lamp scales scores as llama.cpp does, by 1 / sqrt(key_length),
 * or 1 / sqrt(width / heads) for the 27B models (Gemma 2's 46 layers, Gemma 3's 62). Gemma 3:
 * window_pattern from attention.sliding_window_pattern (a number; default 6, llama.cpp's),
 * rope_base_local from rope.freq_base_swa (10000), rope.freq_base defaulting to 1e6. A missing
 * key is LAMP_ERR_FORMAT naming it; partial rotary embeddings and LongRoPE factors
 * (rope_factors_long.weight) are LAMP_ERR_UNSUPPORTED. */
LAMP_API lamp_status lamp_model_config_from_gguf(lamp_context *ctx, lamp_gguf *gguf,
                                                 lamp_model_config *config);

/* lamp_model_create on a GGUF file's tensors (GGUF naming, dequantised to f32 on the host one
 * tensor at a time). The file may be released afterwards. */
LAMP_API lamp_status lamp_model_create_gguf(lamp_context *ctx, lamp_gguf *gguf, lamp_model **out);

/* The configuration of a Hugging Face config.json (`length` bytes of its text): model_type
 * "llama", "mistral", "qwen2", "phi3", "gemma2" or "gemma3_text" (another is
 * LAMP_ERR_UNSUPPORTED naming it and the known ones); num_hidden_layers, hidden_size,
 * num_attention_heads, intermediate_size and vocab_size required; num_key_value_heads
 * (default: the heads), head_dim (width / heads), rms_norm_eps (1e-6; Phi-3 1e-5),
 * rope_theta (10000) and tie_word_embeddings (false) optional, as in transformers' configs;
 * sliding_window for Mistral and Phi-3, and for Qwen2 only with use_sliding_window true;
 * qkv_bias for Qwen2. Gemma 2 with Gemma2Config's defaults: query_pre_attn_scalar (256),
 * attn_logit_softcapping (50) and final_logit_softcapping (30), null for none, sliding_window
 * (4096), head_dim (256), tie_word_embeddings (true), hidden_activation / hidden_act
 * "gelu_pytorch_tanh", window_pattern 2. Gemma 3 ("gemma3_text") likewise with
 * Gemma3TextConfig's defaults: no soft caps, rope_theta 1e6, rope_local_base_freq (10000) as
 * rope_base_local, sliding_window_pattern (6) as window_pattern; the multimodal "gemma3" is
 * refused. A missing or mistyped key is LAMP_ERR_FORMAT naming it; rope_scaling (e.g. Phi-3's
 * "longrope", Gemma 3's "linear"), partial_rotary_factor other than 1, Llama's attention_bias
 * or mlp_bias, or another activation than "silu" (Gemma's above) are LAMP_ERR_UNSUPPORTED. */
LAMP_API lamp_status lamp_model_config_from_hf(lamp_context *ctx, const char *json, size_t length,
                                               lamp_model_config *config);

/* lamp_model_create on safetensors files holding Hugging Face's tensor names (each tensor in
 * exactly one file; 2-D matrices, 1-D norms) in F32, F16 or BF16, converted to f32 on the host
 * one tensor at a time. A tensor's absence, shape or dtype is an error naming it and its file. */
LAMP_API lamp_status lamp_model_create_safetensors_files(lamp_context *ctx,
                                                         const lamp_model_config *config,
                                                         const char *const *paths, size_t count,
                                                         lamp_model **out);

/* The same on a Hugging Face model folder: `dir`/config.json and `dir`/model.safetensors, or the
 * shards that `dir`/model.safetensors.index.json names in its weight_map (plain file names in
 * `dir`). */
LAMP_API lamp_status lamp_model_create_safetensors(lamp_context *ctx, const char *dir,
                                                   lamp_model **out);

/* Waits for queued work and frees the weights. NULL is accepted. */
LAMP_API void lamp_model_release(lamp_model *model);

/* The configuration, with head_dim filled in. */
LAMP_API lamp_status lamp_model_get_config(const lamp_model *model, lamp_model_config *config);

/* The (V, C) f32 token embedding table on the device. A model with stored weights has none
 * (LAMP_ERR_UNSUPPORTED): use lamp_model_embedding_rows. */
LAMP_API lamp_status lamp_model_embedding(const lamp_model *model, lamp_tensor *table);

/* Bytes of device memory the weights take (with the stored mode's scratch). */
LAMP_API size_t lamp_model_weight_bytes(const lamp_model *model);

/* Copies rows first .. first + count - 1 of the token embedding table, as f32, into `dst`, a
 * dense (count, C) f32 tensor: the table of a stored model has no f32 copy to view. */
LAMP_API lamp_status lamp_model_embedding_rows(const lamp_model *model, size_t first,
                                               size_t count, lamp_tensor *dst);

/* The largest batch shape a workspace serves. */
typedef struct lamp_model_shape {
  size_t batch;     /* B sequences */
  size_t tokens;    /* T, most tokens per sequence (prompt not counted) */
  size_t prompt;    /* P, prompt rows prepended (0: no prompt) */
  size_t outputs;   /* M, most chosen positions per batch */
  size_t labels;    /* K, verbaliser label words (0: none) */
  int recompute;    /* nonzero: keep block inputs only and recompute blocks in the backward */
} lamp_model_shape;

typedef struct lamp_model_workspace lamp_model_workspace;

/* Where the frozen weight matrices live. Norms are always f32. */
typedef enum lamp_model_weights {
  LAMP_MODEL_WEIGHTS_AUTO = 0,   /* F32 when the plan (weights and the workspace of
                                    lamp_model_options.shape) fits the device, else STORED */
  LAMP_MODEL_WEIGHTS_F32 = 1,    /* expanded to f32 once, at load: the fastest */
  LAMP_MODEL_WEIGHTS_STORED = 2, /* as the file stores them; each matrix is expanded into one
                                    f32 scratch, sized for the largest block matrix, right
                                    before every product that reads it (forward and backward),
                                    and the output head a slice of rows at a time; a generation
                                    step's products of a few rows (lamp/cache.h) decode the
                                    blocks as they read them instead. A matrix the file holds
                                    in F32 stays f32. */
} lamp_model_weights;

/* "auto", "f32", "stored"; NULL for anything else. */
LAMP_API const char *lamp_model_weights_name(lamp_model_weights weights);
LAMP_API lamp_status lamp_model_weights_parse(const char *name, lamp_model_weights *out);

typedef struct lamp_model_options {
  lamp_model_weights weights;    /* [AUTO] */
  const lamp_model_shape *shape; /* AUTO: the largest workspace to leave room for; NULL: the
                                    weights alone */
} lamp_model_options;

/* What a model and one workspace take on the device, before anything is allocated. Bytes. */
typedef struct lamp_model_plan {
  lamp_model_weights weights;   /* the mode planned, AUTO resolved */
  uint64_t weights_f32;         /* every matrix in f32 */
  uint64_t weights_stored;      /* matrices as stored, norms in f32 */
  uint64_t scratch;             /* STORED: the f32 scratch the matrices are expanded into */
  uint64_t weights_total;       /* the planned mode's weights (+ scratch) */
  uint64_t workspace;           /* inputs, scratch rows, logits: independent of recompute */
  uint64_t activations;         /* kept for the backward at shape->recompute */
  uint64_t activations_full;    /* ... when every block keeps its own */
  uint64_t activations_recompute; /* ... when blocks are recomputed */
  uint64_t total;               /* weights_total + workspace + activations */
  uint64_t largest_buffer;      /* the largest single allocation: weights and workspace are
                                   split into buffers within device_max_alloc, so this exceeds
                                   it only when one tensor or activation alone does */
  uint64_t device_global;       /* CL_DEVICE_GLOBAL_MEM_SIZE (0: unknown) */
  uint64_t device_max_alloc;    /* CL_DEVICE_MAX_MEM_ALLOC_SIZE (0: unknown) */
  int fits;                     /* total and largest_buffer within the device's limits */
} lamp_model_plan;

/* The plan of a GGUF file's model for `shape` (NULL: weights only) in mode `weights`; nothing
 * is read but the tensor table. */
LAMP_API lamp_status lamp_model_plan_gguf(lamp_context *ctx, lamp_gguf *gguf,
                                          const lamp_model_shape *shape,
                                          lamp_model_weights weights, lamp_model_plan *plan);

/* The same for a Hugging Face folder (config.json and the safetensors headers). */
LAMP_API lamp_status lamp_model_plan_safetensors(lamp_context *ctx, const char *dir,
                                                 const lamp_model_shape *shape,
                                                 lamp_model_weights weights,
                                                 lamp_model_plan *plan);

/* lamp_model_create_gguf and lamp_model_create_safetensors with options (NULL: defaults).
 * The plain calls load f32 weights. */
LAMP_API lamp_status lamp_model_create_gguf_with(lamp_context *ctx, lamp_gguf *gguf,
                                                 const lamp_model_options *options,
                                                 lamp_model **out);
LAMP_API lamp_status lamp_model_create_safetensors_with(lamp_context *ctx, const char *dir,
                                                        const lamp_model_options *options,
                                                        lamp_model **out);

/* F32 or STORED. */
LAMP_API lamp_model_weights lamp_model_get_weights(const lamp_model *model);

LAMP_API lamp_status lamp_model_workspace_create(lamp_model *model, const lamp_model_shape *shape,
                                                 lamp_model_workspace **out);

/* Waits for queued work and frees the workspace. NULL is accepted. */
LAMP_API void lamp_model_workspace_release(lamp_model_workspace *ws);

/* Bytes of device memory the workspace takes. */
LAMP_API size_t lamp_model_workspace_bytes(const lamp_model_workspace *ws);

/* The batch: tokens (batch, tokens) row-major ids in 0 .. V-1, lengths (batch) of at most
 * `tokens` each (entries past a sequence's length are ignored). batch and tokens may be smaller
 * than the workspace's shape; later calls run on this batch until the next set_tokens. */
LAMP_API lamp_status lamp_model_set_tokens(lamp_model_workspace *ws, size_t batch, size_t tokens,
                                           const int32_t *ids, const size_t *lengths);

/* The chosen positions: `count` (<= M) pairs (seq[m], pos[m]) with pos[m] < lengths[seq[m]],
 * all distinct, and their targets: a vocabulary id (vocabulary head) or an index into the
 * label list (label head), or -1 for no loss at that position. `targets` NULL means no loss
 * (forward gives logits only). Must follow set_tokens. */
LAMP_API lamp_status lamp_model_set_outputs(lamp_model_workspace *ws, size_t count,
                                            const size_t *seq, const size_t *pos,
                                            const int32_t *targets);

/* The verbaliser: K token ids whose output-head rows the label head scores. */
LAMP_API lamp_status lamp_model_set_labels(lamp_model_workspace *ws, size_t count,
                                           const int32_t *ids);

/* The (P, C) prompt input that forward prepends: a view into the workspace for the caller to
 * fill (e.g. with lamp_prompt_forward) before each forward. */
LAMP_API lamp_status lamp_model_prompt(lamp_model_workspace *ws, lamp_tensor *prompt);

/* The (P, C) gradient of the loss with respect to the prompt, written by lamp_model_backward. */
LAMP_API lamp_status lamp_model_prompt_grad(lamp_model_workspace *ws, lamp_tensor *dprompt);

typedef enum lamp_model_head {
  LAMP_MODEL_HEAD_VOCAB = 0,  /* logits (M, V) over the whole vocabulary */
  LAMP_MODEL_HEAD_LABELS = 1, /* logits (M, K) over the label words only */
} lamp_model_head;

/* Runs the model on the current batch and prompt and computes the logits at the chosen
 * positions, and with targets set the per-position cross-entropy. */
LAMP_API lamp_status lamp_model_forward(lamp_model_workspace *ws, lamp_model_head head);

/* Views of the last forward's logits (M, V or K) and per-position losses (M); the loss of the
 * batch is their mean over the positions that have a target. */
LAMP_API lamp_status lamp_model_logits(lamp_model_workspace *ws, lamp_tensor *logits);
LAMP_API lamp_status lamp_model_losses(lamp_model_workspace *ws, lamp_tensor *losses);

/* The gradient of the mean cross-entropy of the last forward (same head, same batch) with
 * respect to the prompt, into lamp_model_prompt_grad's tensor (overwritten). Needs P > 0 and
 * targets. */
LAMP_API lamp_status lamp_model_backward(lamp_model_workspace *ws);

#ifdef __cplusplus
}
#endif

#endif
