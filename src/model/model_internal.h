/* Internals of the model module shared by its source files. Not installed. */
#ifndef LAMP_MODEL_INTERNAL_H
#define LAMP_MODEL_INTERNAL_H

#include "runtime/internal.h"
#include "lamp/cache.h"
#include "lamp/gguf.h"
#include "lamp/model.h"

/* Regions in the big buffers start on this many bytes, a cache line or more on every device. */
#define LAMP__MODEL_ALIGN 256

typedef struct lamp__region {
  cl_mem buffer;
  size_t offset; /* bytes */
} lamp__region;

/* Rows of a weight matrix as its file stores them: `rows` rows of `row_bytes` each. */
typedef struct lamp__part {
  lamp__region raw;
  lamp_ggml_type type;
  size_t rows, row_bytes;
} lamp__part;

/* A frozen (rows, cols) weight matrix: f32 values (`f32.buffer` set), or up to three row ranges
 * in their storage formats (fused Q/K/V, gate/up) that lamp__model_weight expands into the
 * model's scratch before each product. */
typedef struct lamp__matrix {
  size_t rows, cols;
  lamp__region f32;
  lamp__part part[3];
  size_t n_parts;
} lamp__matrix;

typedef struct lamp__layer {
  lamp__region attn_norm; /* (C) */
  lamp__region q_norm, k_norm; /* (D) each, Gemma 3's per-head norms */
  lamp__region post_attn_norm, post_ffn_norm; /* (C) each, Gemma's sandwich norms */
  lamp__matrix wqkv;      /* (W, C): Q rows (H D), then K rows (Hkv D), then V rows (Hkv D) */
  lamp__matrix wo;        /* (C, H D) */
  lamp__region ffn_norm;  /* (C) */
  lamp__matrix wgu;       /* (2F, C): gate rows, then up rows */
  lamp__matrix wdown;     /* (C, F) */
  /* Q (H D), K (Hkv D) and V (Hkv D) biases, f32, when the config has qkv_bias */
  lamp__region bq, bk, bv;
} lamp__layer;

struct lamp_model {
  lamp_context *ctx;
  lamp_model_config cfg;
  lamp_model_weights weights; /* F32 or STORED */
  cl_mem *buffers;
  size_t n_buffers;
  size_t bytes;          /* weights, the scratch included */
  lamp__matrix embd;     /* (V, C) */
  lamp__region out_norm; /* (C) */
  lamp__matrix output;   /* (V, C), the embedding when tied */
  lamp__layer *layers;   /* L */
  lamp__region scratch;  /* stored mode: the largest block matrix in f32, reused by every one */
  size_t scratch_floats;
};

/* A tensor as a file stores it, for lamp__model_create. `data` is NULL when only the type and
 * size were asked for. */
typedef struct lamp__raw_tensor {
  lamp_ggml_type type;
  const void *data;
  size_t size;
} lamp__raw_tensor;

/* Like lamp_model_lookup_fn, but the tensor comes in its storage format; with want_data zero
 * only its type and size are needed (the plan is made before anything is read). */
typedef lamp_status (*lamp__raw_lookup_fn)(void *user, const char *name, size_t rows, size_t cols,
                                           int want_data, lamp__raw_tensor *out, char *error,
                                           size_t error_size);

/* lamp_model_create for every loader: `weights` AUTO chooses with the plan for `shape`. */
lamp_status lamp__model_create(lamp_context *ctx, const lamp_model_config *config,
                               lamp_model_names names, lamp__raw_lookup_fn lookup, void *user,
                               const lamp_model_options *options, lamp_model **out);

/* The plan of lamp_model_plan_* for a model whose tensors `lookup` describes. */
lamp_status lamp__model_plan(lamp_context *ctx, const lamp_model_config *config,
                             lamp_model_names names, lamp__raw_lookup_fn lookup, void *user,
                             const lamp_model_shape *shape, lamp_model_weights weights,
                             lamp_model_plan *plan);

/* Bytes a workspace of `shape` takes: inputs and scratch rows, the activations blocks keep
 * without and with recomputation, and its largest single buffer when no buffer may exceed
 * `limit` bytes (0: no limit). */
void lamp__workspace_plan(const lamp_model_config *c, const lamp_model_shape *shape, size_t limit,
                          uint64_t *workspace, uint64_t *kept_full, uint64_t *kept_recompute,
                          uint64_t *largest);

/* ---- weights.c: the weights as the products see them ---- */

/* An f32 view of matrix w: its own values, or its parts expanded into the model's scratch (the
 * view is valid until the next expansion; the queue is in order, so a product enqueued before
 * the next call has read it). */
lamp_status lamp__model_weight(const lamp_model *m, const lamp__matrix *w, lamp_tensor *out);

/* x (P + B T, C) = the prompt, then each sequence's embedding rows (llama_ops.h). */
lamp_status lamp__model_embed(const lamp_model *m, lamp_tensor *x, const lamp_tensor *prompt,
                              cl_mem ids, cl_mem lengths, size_t batch, size_t tokens,
                              size_t prompt_rows);

/* c (M, N) = a (M, K) w^T for a generation step's few rows: a stored w read in its blocks by
 * kernels/dequant.cl's dequant_gemm_rows where that kernel takes the shape, else w expanded
 * (lamp__model_weight) and the product through lamp__gemm_few. */
lamp_status lamp__model_product_few(const lamp_model *m, const lamp__matrix *w,
                                    const lamp_tensor *a, lamp_tensor *c);

/* logits (M, V) = hf (M, C) head^T through lamp_gemm, the head expanded a slice of rows at a
 * time when stored; with `few` (a generation step) as lamp__model_product_few would. */
lamp_status lamp__model_head_forward(const lamp_model *m, const lamp_tensor *hf,
                                     lamp_tensor *logits, int few);

/* dhf (M, C) = dlogits (M, V) head. Overwrites dhf. */
lamp_status lamp__model_head_backward(const lamp_model *m, const lamp_tensor *dlogits,
                                      lamp_tensor *dhf);

/* out (K, C) = rows idx of matrix w (the head's label rows, the embedding's token rows; K ids
 * checked by the caller), decoded when stored. */
lamp_status lamp__model_rows(const lamp_model *m, const lamp__matrix *w, lamp_tensor *out,
                             cl_mem idx);

/* qkv (N, W) += block l's Q, K and V biases, when the architecture has them. */
lamp_status lamp__model_qkv_bias(const lamp_model *m, size_t l, lamp_tensor *qkv);

/* The kernels of kernels/dequant.cl, for one stored part. dequant_rows: dst rows (dense f32,
 * `cols` wide, at float offset dst_off) = rows first .. first + rows - 1 of p. dequant_gather:
 * out (K, C) = rows idx of p. dequant_embedding: lamp__llama_embedding_forward on p. */
lamp_status lamp__dequant_rows(lamp_context *ctx, cl_mem dst, size_t dst_off, const lamp__part *p,
                               size_t first, size_t rows, size_t cols);
lamp_status lamp__dequant_gather(lamp_context *ctx, lamp_tensor *out, const lamp__part *p,
                                 cl_mem idx);
lamp_status lamp__dequant_embedding(lamp_context *ctx, lamp_tensor *x, const lamp__part *p,
                                    const lamp_tensor *prompt, cl_mem ids, cl_mem lengths,
                                    size_t batch, size_t tokens, size_t prompt_rows,
                                    size_t vocab);

/* dequant_gemm_rows: columns first .. first + p->rows - 1 of c (M, N) = a (M, K) p^T, read in
 * p's blocks. It takes M up to 16 and K a multiple of the format's block and of 8 (what
 * lamp__dequant_product_takes says, which on the GPU profile also asks the compiled kernel for
 * its 32 x 4 groups); anything else is LAMP_ERR_SHAPE. */
lamp_status lamp__dequant_product(lamp_context *ctx, lamp_tensor *c, size_t first,
                                  const lamp_tensor *a, const lamp__part *p);
int lamp__dequant_product_takes(lamp_context *ctx, lamp_ggml_type type, size_t rows,
                                size_t cols);

/* Bytes of `rows` rows of `cols` elements of `type`; 0 when cols is not whole blocks. */
size_t lamp__model_type_bytes(lamp_ggml_type type, size_t rows, size_t cols);

/* What one block keeps for the backward: one set per block, or a single reused set when
 * recomputing. */
typedef struct lamp__slot {
  lamp__region qkv;   /* (N, W) after RoPE */
  lamp__region o;     /* (N, H D) attention output */
  lamp__region lse;   /* (N, H) attention log-sum-exp */
  lamp__region xmid;  /* (N, C) residual stream between attention and MLP */
  lamp__region gu;    /* (N, 2F) gate and up projections */
  lamp__region rstd1; /* (N) */
  lamp__region rstd2; /* (N) */
  /* Gemma's sandwich norms (empty otherwise): their inputs, the attention's output projection
   * and the MLP's down projection (N, C), and their rstd (N) */
  lamp__region pa, pf, rstd3, rstd4;
  /* Gemma 3's Q/K head norms (empty otherwise): Q and K before them (N, (H + Hkv) D), and
   * their rstd (N, H + Hkv) */
  lamp__region qk, rstd_qk;
} lamp__slot;

struct lamp_model_workspace {
  lamp_model *model;
  lamp_context *ctx;
  lamp_model_shape shape;
  cl_mem *buffers;
  size_t n_buffers;
  size_t bytes;

  /* the current batch */
  size_t batch, tokens;     /* B, T */
  size_t *lengths;          /* (B max) host copy */
  size_t n_out, n_targets;  /* M, rows with a target */
  int32_t *targets;         /* (M max) host copy */
  int has_targets;
  size_t n_labels;
  int forward_done;
  int prefixed;             /* the last forward took the prompt's keys and values from a cache */
  lamp_model_head last_head;

  cl_mem ids, lengths_dev, valid, out_rows, targets_dev, label_ids; /* cl_int arrays */
  /* Host copies the batch's inputs are written from without blocking: a staging area stays
   * untouched until its last write (`staged`) has run, so the host prepares the next batch
   * while the device still works on the one before. */
  cl_int *stage_tokens;  /* ids (B T), lengths (B), valid (B) */
  cl_int *stage_outputs; /* rows (M), targets (M) */
  unsigned char *row_chosen; /* per row (P + B T), for lamp_model_set_outputs' duplicate check */
  cl_event staged[2];    /* the last write from each, or NULL */

  lamp__region prompt, dprompt;      /* (P, C) */
  lamp__region cos_t, sin_t;         /* (P + T, D/2), own buffers (offset 0) */
  lamp__region cos_l, sin_l;         /* the same for local layers' base, when it differs */
  lamp__region *xs;                  /* L of (N, C): block inputs */
  lamp__slot *slots;                 /* L, or 1 when recomputing */
  lamp__region h, tmp, dr;           /* (N, C) */
  lamp__region a;                    /* (N, F) swiglu output, then its gradient */
  lamp__region dgu;                  /* (N, 2F) */
  lamp__region dqkv;                 /* (N, W) */
  lamp__region dout;                 /* (N, H D) */
  lamp__region delta;                /* (N, H) */
  lamp__region xsel, tsel, xl, hf, dhf, dxl; /* (M, C) */
  lamp__region rstdf;                /* (M) */
  lamp__region wlab;                 /* (K, C) label rows of the output head */
  lamp__region logits, dlogits;      /* (M, max(V, K)) */
  lamp__region loss, lse_ce;         /* (M) */
};

/* A dense (rows, cols) f32 tensor over a region. */
lamp_tensor lamp__model_mat(lamp__region r, size_t cols, size_t rows);

/* Reserves `floats` at *cursor in a buffer being planned, aligned; the buffer is set later. */
lamp__region lamp__model_reserve(size_t *cursor, size_t floats);
lamp__region lamp__model_reserve_bytes(size_t *cursor, size_t bytes);

/* One device buffer of `bytes`, refused with a message naming `what` beyond the device limit. */
lamp_status lamp__model_alloc(lamp_context *ctx, size_t bytes, const char *what, cl_mem *out);

/* The cos and sin tables (positions, D/2) of the rotary embeddings, computed in double, into
 * two regions: the workspace's and the cache's, so both rotate by the same floats. */
lamp_status lamp__model_rope_tables(lamp_context *ctx, const lamp_model_config *c, double base,
                                    size_t positions, lamp__region cos_t, lamp__region sin_t);

/* Nonzero when local layers rotate with a base of their own (rope_base_local). */
int lamp__model_rope_split(const lamp_model_config *c);
/* The window that attention (the workspace's and the generation cache's) keeps at layer l, 0
 * for all earlier positions: sliding_window on Mistral's layers and Gemma's local ones
 * (checked against transformers by test_arch and test_model_cache); 0 elsewhere, where
 * workspaces and caches refuse positions past the window. */
size_t lamp__model_layer_window(const lamp_model_config *c, size_t l);
/* Whether attention keeps the model's window (Mistral, Gemma) at all. */
int lamp__model_windowed(const lamp_model_config *c);
/* LAMP_ERR_UNSUPPORTED naming `what` when `positions` exceed the model's attention window:
 * lamp's attention is full causal, which matches a sliding window only within it. */
lamp_status lamp__model_check_window(lamp_context *ctx, const lamp_model_config *c,
                                     size_t positions, const char *what);
/* Gemma's factor on the embedding rows (and Gemma 2's on the prompt's), sqrt(C) in f32. */
float lamp__model_embed_scale(const lamp_model_config *c);

/* Blocking write of host floats into a region at a float offset. */
lamp_status lamp__model_write(lamp_context *ctx, lamp__region r, size_t float_offset,
                              const float *data, size_t floats);

/* ---- model_cache.c: a cache as the prompt prefix of a workspace's forward ---- */

/* Checks that `k` can stand for the prompt of `ws` (lamp_model_forward_prefixed). */
lamp_status lamp__cache_prefix_check(const lamp_model_cache *k, const lamp_model_workspace *ws);

/* Copies block l's keys and values of the cache's first `rows` positions into columns
 * HD .. W - 1 of rows 0 .. rows - 1 of qkv (>= rows, W), the fused QKV rows after RoPE. */
lamp_status lamp__cache_prefix_copy(const lamp_model_cache *k, size_t l, const lamp_tensor *qkv,
                                    size_t rows);

/* ---- architectures (model_arch.c) ---- */

/* The lamp_model_arch named `name` (`length` bytes) as an HF model_type (gguf == 0) or a GGUF
 * general.architecture (gguf != 0); -1 when lamp does not know it. */
int lamp__arch_find(const char *name, size_t length, int gguf);

/* The names lamp knows, both kinds, for error messages. */
const char *lamp__arch_known(void);

/* Nonzero when llama.cpp's converter reorders the architecture's Q/K rows (see model.h). */
int lamp__arch_gguf_permuted(int arch);

/* Nonzero when the architecture fuses Q, K, V into one matrix and gate, up into another. */
int lamp__arch_fused(int arch);

/* Nonzero for Gemma's block (lamp_model_arch): embeddings times sqrt(C), norms of 1 + w,
 * sandwich norms, GeGLU. */
int lamp__arch_gemma(int arch);

/* Nonzero for Gemma 3: RMSNorms over each Q and K head before RoPE. */
int lamp__arch_qk_norm(int arch);

/* Nonzero when the embedding scale of Gemma's block applies to the prompt rows too (Gemma 2,
 * whose model scales whatever enters it; Gemma 3 scales token rows only). */
int lamp__arch_prompt_scaled(int arch);

/* Nonzero when layer l attends locally (lamp_model_config.window_pattern). */
int lamp__model_layer_local(const lamp_model_config *c, size_t l);

/* The attention score scale: the config's query_scale, else 1 / sqrt(head_dim). */
float lamp__model_query_scale(const lamp_model_config *c);

#endif
