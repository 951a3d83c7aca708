/* A lamp_model straight from an open GGUF file: configuration from its llama.* metadata,
 * tensors dequantised to f32 on the host one at a time. */
#include <stdlib.h>
#include <string.h>

#include "lamp/gguf.h"
#include "model/model_internal.h"
#include "io/gguf_internal.h"

typedef struct lamp__gguf_lookup {
  lamp_context *ctx;
  lamp_gguf *gguf;
  float *data;
  size_t cap;
} lamp__gguf_lookup;

static lamp_status lamp__gguf_tensor(void *user, const char *name, size_t rows, size_t cols,
                                     const float **data, char *error, size_t error_size) {
  lamp__gguf_lookup *g = user;
  lamp_gguf_tensor_info info;
  lamp_status st = lamp_gguf_find_tensor(NULL, g->gguf, name, &info);
  if (st != LAMP_OK) {
    snprintf(error, error_size, "not in the GGUF file");
    return st;
  }
  /* ggml order: ne[0] is the row length; a norm weight is one-dimensional */
  int fits = info.ne[0] == cols && info.numel == (uint64_t)rows * cols;
  if (!fits) {
    snprintf(error, error_size, "the file's tensor has shape [%llu, %llu] (ne[0] first)",
             (unsigned long long)info.ne[0], (unsigned long long)(info.numel / info.ne[0]));
    return LAMP_ERR_SHAPE;
  }
  if (rows * cols > g->cap) {
    float *p = realloc(g->data, rows * cols * sizeof(float));
    if (!p) {
      snprintf(error, error_size, "out of host memory");
      return LAMP_ERR_OUT_OF_MEMORY;
    }
    g->data = p;
    g->cap = rows * cols;
  }
  st = lamp_gguf_tensor_read_f32(g->ctx, g->gguf, &info, g->data, g->cap);
  if (st != LAMP_OK) {
    snprintf(error, error_size, "%s", lamp_context_error(g->ctx));
    return st;
  }
  *data = g->data;
  return LAMP_OK;
}

lamp_status lamp_model_config_from_gguf(lamp_context *ctx, lamp_gguf *gguf,
                                        lamp_model_config *config) {
  if (!ctx || !gguf || !config)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_config_from_gguf: NULL");
  lamp__llama_hparams hp;
  LAMP__TRY(lamp__gguf_llama_hparams(ctx, gguf, &hp));
  if (hp.rope_dim != hp.head_dim)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "GGUF model: rotary embeddings on %u of %u "
                      "head dimensions (partial rotation) are not supported", hp.rope_dim,
                      hp.head_dim);
  memset(config, 0, sizeof(*config));
  config->n_layers = hp.n_layers;
  config->n_embd = hp.n_embd;
  config->n_heads = hp.n_heads;
  config->n_kv_heads = hp.n_kv_heads;
  config->head_dim = hp.head_dim;
  config->n_ff = hp.n_ff;
  config->n_vocab = hp.n_vocab;
  config->rope_base = hp.rope_freq_base;
  config->norm_eps = hp.norm_eps;
  config->n_ctx = hp.n_ctx;
  lamp_gguf_tensor_info info;
  config->tied_embeddings = lamp_gguf_find_tensor(NULL, gguf, "output.weight", &info) != LAMP_OK;
  return LAMP_OK;
}

lamp_status lamp_model_create_gguf(lamp_context *ctx, lamp_gguf *gguf, lamp_model **out) {
  if (!ctx || !gguf || !out)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_create_gguf: NULL");
  *out = NULL;
  lamp_model_config config;
  LAMP__TRY(lamp_model_config_from_gguf(ctx, gguf, &config));
  lamp__gguf_lookup g = {ctx, gguf, NULL, 0};
  lamp_status st = lamp_model_create(ctx, &config, LAMP_MODEL_NAMES_GGUF, lamp__gguf_tensor, &g,
                                     out);
  free(g.data);
  return st;
}
