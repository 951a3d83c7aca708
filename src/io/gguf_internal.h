/* The GGUF reader's internals for the modules above it (model, text). Not installed. */
#ifndef LAMP_IO_GGUF_INTERNAL_H
#define LAMP_IO_GGUF_INTERNAL_H

#include <stdint.h>

#include "lamp/gguf.h"

/* Architecture hyper-parameters of a Llama-family model, read from "<arch>.*" where <arch> is
 * the value of general.architecture. */
typedef struct lamp__llama_hparams {
  char architecture[32];   /* general.architecture, e.g. "llama" */
  uint32_t n_layers;       /* L: <arch>.block_count */
  uint32_t n_embd;         /* C: <arch>.embedding_length */
  uint32_t n_heads;        /* H: <arch>.attention.head_count */
  uint32_t n_kv_heads;     /* <arch>.attention.head_count_kv, default n_heads */
  uint32_t head_dim;       /* <arch>.attention.key_length, default C / H */
  uint32_t rope_dim;       /* <arch>.rope.dimension_count, default head_dim */
  uint32_t n_ff;           /* <arch>.feed_forward_length */
  uint32_t n_ctx;          /* <arch>.context_length */
  uint32_t n_vocab;        /* V: <arch>.vocab_size, else the length of tokenizer.ggml.tokens */
  float rope_freq_base;    /* <arch>.rope.freq_base, default 10000 */
  float norm_eps;          /* <arch>.attention.layer_norm_rms_epsilon, default 1e-5 */
} lamp__llama_hparams;

/* Reads and checks the hyper-parameters: required keys present and positive, H divisible by
 * the KV heads, values below sane caps. A missing key is LAMP_ERR_FORMAT naming it. */
lamp_status lamp__gguf_llama_hparams(lamp_context *ctx, lamp_gguf *gguf,
                                     lamp__llama_hparams *hparams);

/* The message of the handle's last failed call ("" when none). lamp's modules probe keys with
 * a NULL context (so that a missing optional key leaves the caller's context alone) and take
 * the message from here when the failure is real. Valid until the next call on the handle. */
const char *lamp__gguf_last_error(const lamp_gguf *gguf);

#endif
