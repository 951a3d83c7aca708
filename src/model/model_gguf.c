/* A lamp_model straight from an open GGUF file: configuration from its <arch>.* metadata,
 * tensors from the mapped file, dequantised on the host (f32 weights) or uploaded as stored. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamp/gguf.h"
#include "model/model_internal.h"
#include "io/gguf_internal.h"

/* The file's tensors as stored: the mapped bytes, nothing copied. */
static lamp_status lamp__gguf_tensor(void *user, const char *name, size_t rows, size_t cols,
                                     int want_data, lamp__raw_tensor *out, char *error,
                                     size_t error_size) {
  lamp_gguf *gguf = user;
  lamp_gguf_tensor_info info;
  lamp_status st = lamp_gguf_find_tensor(NULL, gguf, name, &info);
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
  out->type = info.type;
  out->size = (size_t)info.size;
  out->data = want_data ? info.data : NULL;
  return LAMP_OK;
}

/* An optional positive float key <arch>.<name>; 0 when absent. */
static lamp_status lamp__gguf_cap(lamp_context *ctx, lamp_gguf *gguf, const char *arch,
                                  const char *name, float *out) {
  char key[96];
  snprintf(key, sizeof(key), "%s.%s", arch, name);
  double v = 0;
  lamp_status st = lamp_gguf_get_float(NULL, gguf, key, &v);
  *out = 0.0f;
  if (st == LAMP_ERR_NOT_FOUND) return LAMP_OK;
  if (st != LAMP_OK || !(v > 0) || !(v < 1e30))
    return lamp__fail(ctx, st != LAMP_OK ? st : LAMP_ERR_FORMAT, "GGUF model: \"%s\" must be a "
                      "positive number", key);
  *out = (float)v;
  return LAMP_OK;
}

lamp_status lamp_model_config_from_gguf(lamp_context *ctx, lamp_gguf *gguf,
                                        lamp_model_config *config) {
  if (!ctx || !gguf || !config)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_config_from_gguf: NULL");
  /* the architecture first: another one's keys may be missing or mean something else */
  const char *name = NULL;
  size_t name_len = 0;
  if (lamp_gguf_get_string(NULL, gguf, "general.architecture", &name, &name_len) == LAMP_OK &&
      lamp__arch_find(name, name_len, 1) < 0)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "GGUF model: general.architecture \"%.*s\" is "
                      "not supported; lamp knows %s", (int)(name_len > 64 ? 64 : name_len), name,
                      lamp__arch_known());
  lamp__llama_hparams hp;
  LAMP__TRY(lamp__gguf_llama_hparams(ctx, gguf, &hp));
  int arch = lamp__arch_find(hp.architecture, strlen(hp.architecture), 1);
  lamp_gguf_tensor_info info;
  /* llama.cpp stores Phi-3's LongRoPE scaling as per-frequency factor tensors */
  if (lamp_gguf_find_tensor(NULL, gguf, "rope_factors_long.weight", &info) == LAMP_OK)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "GGUF model: LongRoPE (rope_factors_long.weight) "
                      "scaled rotary embeddings are not supported");
  char key[64];
  snprintf(key, sizeof(key), "%s.attention.sliding_window", hp.architecture);
  int64_t window = 0;
  lamp_status st = lamp_gguf_get_int(NULL, gguf, key, &window);
  if (st == LAMP_ERR_NOT_FOUND) window = 0;
  else if (st != LAMP_OK || window < 0)
    return lamp__fail(ctx, st != LAMP_OK ? st : LAMP_ERR_FORMAT, "GGUF model: \"%s\" must be a "
                      "non-negative integer", key);
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
  config->arch = arch;
  config->qkv_bias = arch == LAMP_MODEL_ARCH_QWEN2;
  config->sliding_window = (size_t)window;
  config->tied_embeddings = lamp_gguf_find_tensor(NULL, gguf, "output.weight", &info) != LAMP_OK;
  if (lamp__arch_gemma(arch)) {
    /* llama.cpp stores no query_pre_attn_scalar: it scales by 1 / sqrt(key_length), and for
     * Gemma 2 27B (46 layers) by 1 / sqrt(width / heads), which lamp follows */
    const int g3 = arch == LAMP_MODEL_ARCH_GEMMA3;
    size_t q = hp.n_layers == (g3 ? 62 : 46) ? hp.n_embd / hp.n_heads : hp.head_dim;
    config->query_scale = (float)(1.0 / sqrt((double)q));
    LAMP__TRY(lamp__gguf_cap(ctx, gguf, hp.architecture, "attn_logit_softcapping",
                             &config->attn_softcap));
    LAMP__TRY(lamp__gguf_cap(ctx, gguf, hp.architecture, "final_logit_softcapping",
                             &config->final_softcap));
    config->window_pattern = 2;
    if (g3) {
      /* llama.cpp's defaults when the file names no pattern or local base: 6 and 10000, and a
       * global base of 1e6 */
      float local = 0.0f, global = 0.0f;
      LAMP__TRY(lamp__gguf_cap(ctx, gguf, hp.architecture, "rope.freq_base_swa", &local));
      LAMP__TRY(lamp__gguf_cap(ctx, gguf, hp.architecture, "rope.freq_base", &global));
      config->rope_base_local = local > 0.0f ? local : 10000.0f;
      config->rope_base = global > 0.0f ? global : 1000000.0f;
      snprintf(key, sizeof(key), "%s.attention.sliding_window_pattern", hp.architecture);
      int64_t pattern = 6;
      st = lamp_gguf_get_int(NULL, gguf, key, &pattern);
      if (st == LAMP_ERR_NOT_FOUND) pattern = 6;
      else if (st != LAMP_OK || pattern < 1 || pattern > 4096)
        return lamp__fail(ctx, st != LAMP_OK ? st : LAMP_ERR_FORMAT, "GGUF model: \"%s\" must "
                          "be a layer count (newer files' per-layer arrays are not read)", key);
      config->window_pattern = (size_t)pattern;
    }
  }
  return LAMP_OK;
}

lamp_status lamp_model_create_gguf_with(lamp_context *ctx, lamp_gguf *gguf,
                                        const lamp_model_options *options, lamp_model **out) {
  if (!ctx || !gguf || !out)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_create_gguf: NULL");
  *out = NULL;
  lamp_model_config config;
  LAMP__TRY(lamp_model_config_from_gguf(ctx, gguf, &config));
  return lamp__model_create(ctx, &config, LAMP_MODEL_NAMES_GGUF, lamp__gguf_tensor, gguf, options,
                            out);
}

lamp_status lamp_model_create_gguf(lamp_context *ctx, lamp_gguf *gguf, lamp_model **out) {
  const lamp_model_options o = {LAMP_MODEL_WEIGHTS_F32, NULL};
  return lamp_model_create_gguf_with(ctx, gguf, &o, out);
}

lamp_status lamp_model_plan_gguf(lamp_context *ctx, lamp_gguf *gguf, const lamp_model_shape *shape,
                                 lamp_model_weights weights, lamp_model_plan *plan) {
  if (!ctx || !gguf || !plan)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_plan_gguf: NULL");
  lamp_model_config config;
  LAMP__TRY(lamp_model_config_from_gguf(ctx, gguf, &config));
  return lamp__model_plan(ctx, &config, LAMP_MODEL_NAMES_GGUF, lamp__gguf_tensor, gguf, shape,
                          weights, plan);
}
