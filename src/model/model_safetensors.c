/* A lamp_model from a Hugging Face Llama-family model: config.json for the configuration,
 * safetensors files (one, or the shards named by model.safetensors.index.json) for the weights
 * in F32, F16 or BF16, converted to f32 on the host one tensor at a time or uploaded as stored. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/json.h"
#include "lamp/safetensors.h"
#include "model/model_internal.h"

/* ---- config.json ------------------------------------------------------------------------ */

/* A positive integer member `key`; LAMP_ERR_NOT_FOUND (without a message) when absent. */
static lamp_status lamp__hf_size(lamp_context *ctx, const lamp__json *doc, const char *key,
                                 size_t *out) {
  size_t node = lamp__json_get(doc, 0, key);
  lamp__json_kind kind = lamp__json_kind_of(doc, node);
  if (node == LAMP__JSON_NONE || kind == LAMP__JSON_NULL) return LAMP_ERR_NOT_FOUND;
  double v = lamp__json_number(doc, node);
  if (kind != LAMP__JSON_NUMBER || !(v >= 1) || v > 2147483647.0 || v != floor(v))
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "config.json: \"%s\" must be a positive integer",
                      key);
  *out = (size_t)v;
  return LAMP_OK;
}

static lamp_status lamp__hf_required(lamp_context *ctx, const lamp__json *doc, const char *key,
                                     size_t *out) {
  lamp_status st = lamp__hf_size(ctx, doc, key, out);
  if (st == LAMP_ERR_NOT_FOUND)
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "config.json: \"%s\" is missing", key);
  return st;
}

/* A positive finite number member `key`, `fallback` when absent. */
static lamp_status lamp__hf_real(lamp_context *ctx, const lamp__json *doc, const char *key,
                                 double fallback, double *out) {
  size_t node = lamp__json_get(doc, 0, key);
  lamp__json_kind kind = lamp__json_kind_of(doc, node);
  *out = fallback;
  if (node == LAMP__JSON_NONE || kind == LAMP__JSON_NULL) return LAMP_OK;
  double v = lamp__json_number(doc, node);
  if (kind != LAMP__JSON_NUMBER || !(v > 0) || !isfinite(v))
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "config.json: \"%s\" must be a positive number", key);
  *out = v;
  return LAMP_OK;
}

/* A boolean member `key`, `fallback` when absent. */
static lamp_status lamp__hf_flag(lamp_context *ctx, const lamp__json *doc, const char *key,
                                 int fallback, int *out) {
  size_t node = lamp__json_get(doc, 0, key);
  lamp__json_kind kind = lamp__json_kind_of(doc, node);
  *out = fallback;
  if (node == LAMP__JSON_NONE || kind == LAMP__JSON_NULL) return LAMP_OK;
  if (kind != LAMP__JSON_BOOL)
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "config.json: \"%s\" must be true or false", key);
  *out = lamp__json_bool(doc, node);
  return LAMP_OK;
}

/* The attention window: Mistral's and Phi-3's "sliding_window" (null: none), Qwen2's only
 * with "use_sliding_window" true (its default is false); Llama has none. */
static lamp_status lamp__hf_window(lamp_context *ctx, const lamp__json *doc, int arch,
                                   size_t *window) {
  *window = 0;
  if (arch == LAMP_MODEL_ARCH_LLAMA) return LAMP_OK;
  if (arch == LAMP_MODEL_ARCH_QWEN2) {
    int used = 0;
    LAMP__TRY(lamp__hf_flag(ctx, doc, "use_sliding_window", 0, &used));
    if (!used) return LAMP_OK;
  }
  lamp_status st = lamp__hf_size(ctx, doc, "sliding_window", window);
  /* Gemma2Config's default when the key is absent (null: none) */
  if (st == LAMP_ERR_NOT_FOUND && lamp__arch_gemma(arch) &&
      lamp__json_get(doc, 0, "sliding_window") == LAMP__JSON_NONE)
    *window = 4096;
  return st == LAMP_ERR_NOT_FOUND ? LAMP_OK : st;
}

static lamp_status lamp__hf_config(lamp_context *ctx, const lamp__json *doc,
                                   lamp_model_config *c) {
  if (lamp__json_kind_of(doc, 0) != LAMP__JSON_OBJECT)
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "config.json: the document is not an object");
  size_t node = lamp__json_get(doc, 0, "model_type");
  if (node == LAMP__JSON_NONE)
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "config.json: \"model_type\" is missing");
  size_t type_len = 0;
  const char *type = lamp__json_string(doc, node, &type_len);
  int arch = type ? lamp__arch_find(type, type_len, 0) : -1;
  if (arch < 0 && type && type_len == 6 && !memcmp(type, "gemma3", 6))
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "config.json: model_type \"gemma3\" is the "
                      "multimodal Gemma 3 (its text_config, tensors under language_model.); lamp "
                      "runs the text-only Gemma3ForCausalLM checkpoints, model_type "
                      "\"gemma3_text\"");
  if (arch < 0)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "config.json: model_type \"%.*s\" is not "
                      "supported; lamp knows %s", type ? (int)(type_len > 64 ? 64 : type_len) : 9,
                      type ? type : "not text", lamp__arch_known());
  const int gemma = lamp__arch_gemma(arch);
  if (gemma) {
    /* Gemma 2's configs name the activation hidden_activation, some also hidden_act */
    const char *keys[] = {"hidden_activation", "hidden_act"};
    for (size_t i = 0; i < 2; i++) {
      node = lamp__json_get(doc, 0, keys[i]);
      if (node != LAMP__JSON_NONE && lamp__json_kind_of(doc, node) != LAMP__JSON_NULL &&
          !lamp__json_is(doc, node, "gelu_pytorch_tanh"))
        return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "config.json: \"%s\" must be "
                          "\"gelu_pytorch_tanh\" (GeGLU with tanh GELU)", keys[i]);
    }
  } else {
    node = lamp__json_get(doc, 0, "hidden_act");
    if (node != LAMP__JSON_NONE && !lamp__json_is(doc, node, "silu"))
      return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "config.json: \"hidden_act\" must be "
                        "\"silu\" (SwiGLU)");
  }
  node = lamp__json_get(doc, 0, "rope_scaling");
  if (node != LAMP__JSON_NONE && lamp__json_kind_of(doc, node) != LAMP__JSON_NULL) {
    /* e.g. Phi-3's 128k-context "longrope", Llama 3.1's "llama3" */
    size_t kind = lamp__json_get(doc, node, "type");
    if (kind == LAMP__JSON_NONE) kind = lamp__json_get(doc, node, "rope_type");
    size_t n = 0;
    const char *name = kind != LAMP__JSON_NONE ? lamp__json_string(doc, kind, &n) : NULL;
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "config.json: \"rope_scaling\" is set (type "
                      "\"%.*s\"); scaled rotary embeddings are not supported",
                      name ? (int)(n > 32 ? 32 : n) : 7, name ? name : "unknown");
  }
  double rotary = 1.0;
  LAMP__TRY(lamp__hf_real(ctx, doc, "partial_rotary_factor", 1.0, &rotary));
  if (rotary != 1.0)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "config.json: \"partial_rotary_factor\" is %g; "
                      "partial rotary embeddings are not supported", rotary);
  int bias = 0;
  LAMP__TRY(lamp__hf_flag(ctx, doc, "attention_bias", 0, &bias));
  if (bias)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "config.json: \"attention_bias\" is true; "
                      "biases are not supported");
  LAMP__TRY(lamp__hf_flag(ctx, doc, "mlp_bias", 0, &bias));
  if (bias)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "config.json: \"mlp_bias\" is true; biases are "
                      "not supported");
  memset(c, 0, sizeof(*c));
  c->arch = arch;
  c->qkv_bias = arch == LAMP_MODEL_ARCH_QWEN2; /* Qwen2's attention always has them */
  LAMP__TRY(lamp__hf_window(ctx, doc, arch, &c->sliding_window));
  LAMP__TRY(lamp__hf_required(ctx, doc, "num_hidden_layers", &c->n_layers));
  LAMP__TRY(lamp__hf_required(ctx, doc, "hidden_size", &c->n_embd));
  LAMP__TRY(lamp__hf_required(ctx, doc, "num_attention_heads", &c->n_heads));
  LAMP__TRY(lamp__hf_required(ctx, doc, "intermediate_size", &c->n_ff));
  LAMP__TRY(lamp__hf_required(ctx, doc, "vocab_size", &c->n_vocab));
  lamp_status st = lamp__hf_size(ctx, doc, "num_key_value_heads", &c->n_kv_heads);
  if (st == LAMP_ERR_NOT_FOUND) c->n_kv_heads = c->n_heads;
  else if (st != LAMP_OK) return st;
  st = lamp__hf_size(ctx, doc, "head_dim", &c->head_dim);
  if (st == LAMP_ERR_NOT_FOUND) c->head_dim = gemma ? 256 : 0; /* Gemma2Config's default */
  else if (st != LAMP_OK) return st;
  st = lamp__hf_size(ctx, doc, "max_position_embeddings", &c->n_ctx);
  if (st == LAMP_ERR_NOT_FOUND) c->n_ctx = 0;
  else if (st != LAMP_OK) return st;
  /* defaults of transformers' LlamaConfig (and the others', but Phi3Config's epsilon) */
  double eps, theta;
  LAMP__TRY(lamp__hf_real(ctx, doc, "rms_norm_eps", arch == LAMP_MODEL_ARCH_PHI3 ? 1e-5 : 1e-6,
                          &eps));
  /* Gemma3TextConfig's default base is that of its global layers */
  LAMP__TRY(lamp__hf_real(ctx, doc, "rope_theta",
                          arch == LAMP_MODEL_ARCH_GEMMA3 ? 1000000.0 : 10000.0, &theta));
  /* Gemma's configs leave out tie_word_embeddings: transformers' default, true, holds */
  LAMP__TRY(lamp__hf_flag(ctx, doc, "tie_word_embeddings", gemma, &c->tied_embeddings));
  c->norm_eps = (float)eps;
  c->rope_base = (float)theta;
  if (gemma) {
    /* Gemma2Config's defaults: 256, 50 and 30; null switches a cap off (Gemma 3's default) */
    const int g3 = arch == LAMP_MODEL_ARCH_GEMMA3;
    double scalar;
    LAMP__TRY(lamp__hf_real(ctx, doc, "query_pre_attn_scalar", 256.0, &scalar));
    c->query_scale = (float)(1.0 / sqrt(scalar));
    const char *caps[] = {"attn_logit_softcapping", "final_logit_softcapping"};
    const double defaults[] = {g3 ? 0.0 : 50.0, g3 ? 0.0 : 30.0};
    float *dst[] = {&c->attn_softcap, &c->final_softcap};
    for (size_t i = 0; i < 2; i++) {
      double v = 0;
      node = lamp__json_get(doc, 0, caps[i]);
      if (node == LAMP__JSON_NONE) v = defaults[i];
      else LAMP__TRY(lamp__hf_real(ctx, doc, caps[i], 0.0, &v));
      *dst[i] = (float)v;
    }
    /* Gemma 2's local layers are the even ones, Gemma 3's all but every sixth */
    c->window_pattern = 2;
    if (g3) {
      lamp_status ps = lamp__hf_size(ctx, doc, "sliding_window_pattern", &c->window_pattern);
      if (ps == LAMP_ERR_NOT_FOUND) c->window_pattern = 6;
      else if (ps != LAMP_OK) return ps;
      double local;
      LAMP__TRY(lamp__hf_real(ctx, doc, "rope_local_base_freq", 10000.0, &local));
      c->rope_base_local = (float)local;
    }
  }
  return LAMP_OK;
}

lamp_status lamp_model_config_from_hf(lamp_context *ctx, const char *json, size_t length,
                                      lamp_model_config *config) {
  if (!ctx || !json || !config)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_config_from_hf: NULL");
  lamp__json *doc = NULL;
  char err[512];
  lamp_status st = lamp__json_parse(json, length, &doc, err, sizeof(err));
  if (st != LAMP_OK) return lamp__fail(ctx, st, "config.json: %s", err);
  st = lamp__hf_config(ctx, doc, config);
  lamp__json_free(doc);
  return st;
}

/* ---- weights ---------------------------------------------------------------------------- */

typedef struct lamp__st_lookup {
  lamp_context *ctx;
  lamp_safetensors **files;
  const char *const *paths;
  size_t count;
  unsigned char *raw;
  size_t raw_cap; /* bytes */
} lamp__st_lookup;

static lamp_status lamp__st_tensor(void *user, const char *name, size_t rows, size_t cols,
                                   int want_data, lamp__raw_tensor *out, char *error,
                                   size_t error_size) {
  lamp__st_lookup *s = user;
  const lamp_st_tensor *t = NULL;
  size_t file = 0;
  for (size_t i = 0; i < s->count; i++) {
    const lamp_st_tensor *found = NULL;
    if (lamp_safetensors_find(s->files[i], name, &found) != LAMP_OK) continue;
    if (t) {
      snprintf(error, error_size, "in both %s and %s", s->paths[file], s->paths[i]);
      return LAMP_ERR_FORMAT;
    }
    t = found;
    file = i;
  }
  if (!t) {
    snprintf(error, error_size, "in none of the %zu safetensors file%s", s->count,
             s->count == 1 ? "" : "s");
    return LAMP_ERR_NOT_FOUND;
  }
  /* a norm weight is (C) in Hugging Face's files; matrices are (rows, cols) */
  int fits = t->ndim == 2 ? t->shape[0] == rows && t->shape[1] == cols
                          : t->ndim == 1 && rows == 1 && t->shape[0] == cols;
  if (!fits) {
    int n = snprintf(error, error_size, "%s: the file's tensor has shape [", s->paths[file]);
    for (int d = 0; d < t->ndim && n > 0 && (size_t)n < error_size; d++)
      n += snprintf(error + n, error_size - (size_t)n, "%s%llu", d ? ", " : "",
                    (unsigned long long)t->shape[d]);
    if (n > 0 && (size_t)n < error_size) snprintf(error + n, error_size - (size_t)n, "]");
    return LAMP_ERR_SHAPE;
  }
  /* little-endian F32, F16 and BF16 are laid out as ggml's types of the same names */
  switch (t->dtype) {
    case LAMP_ST_F32: out->type = LAMP_GGML_F32; break;
    case LAMP_ST_F16: out->type = LAMP_GGML_F16; break;
    case LAMP_ST_BF16: out->type = LAMP_GGML_BF16; break;
    default:
      snprintf(error, error_size, "%s: dtype %s is not supported (F32, F16 or BF16)",
               s->paths[file], lamp_safetensors_dtype_name(t->dtype));
      return LAMP_ERR_UNSUPPORTED;
  }
  size_t bytes = (size_t)t->size;
  out->size = bytes;
  out->data = NULL;
  if (!want_data) return LAMP_OK;
  if (bytes > s->raw_cap) {
    free(s->raw);
    s->raw = malloc(bytes);
    s->raw_cap = s->raw ? bytes : 0;
  }
  if (!s->raw) {
    snprintf(error, error_size, "out of host memory");
    return LAMP_ERR_OUT_OF_MEMORY;
  }
  lamp_status st = lamp_safetensors_read(s->files[file], t, s->raw, bytes);
  if (st != LAMP_OK) {
    snprintf(error, error_size, "%s", lamp_context_error(s->ctx));
    return st;
  }
  out->data = s->raw;
  return LAMP_OK;
}

/* Opens the files, then creates the model (options) or its plan (plan non-NULL). */
static lamp_status lamp__st_files(lamp_context *ctx, const lamp_model_config *config,
                                  const char *const *paths, size_t count,
                                  const lamp_model_options *options,
                                  const lamp_model_shape *shape, lamp_model_plan *plan,
                                  lamp_model **out) {
  if (count == 0 || count > 65536)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_create_safetensors_files: "
                      "%zu files (1 to 65536)", count);
  lamp__st_lookup s = {ctx, calloc(count, sizeof(lamp_safetensors *)), paths, count, NULL, 0};
  if (!s.files) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  lamp_status st = LAMP_OK;
  for (size_t i = 0; i < count && st == LAMP_OK; i++) {
    if (!paths[i]) st = lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "safetensors path %zu is NULL",
                                   i);
    else st = lamp_safetensors_open(ctx, paths[i], &s.files[i]);
  }
  if (st == LAMP_OK && plan)
    st = lamp__model_plan(ctx, config, LAMP_MODEL_NAMES_HF, lamp__st_tensor, &s, shape,
                          options ? options->weights : LAMP_MODEL_WEIGHTS_AUTO, plan);
  else if (st == LAMP_OK)
    st = lamp__model_create(ctx, config, LAMP_MODEL_NAMES_HF, lamp__st_tensor, &s, options, out);
  for (size_t i = 0; i < count; i++) lamp_safetensors_release(s.files[i]);
  free(s.files), free(s.raw);
  return st;
}

lamp_status lamp_model_create_safetensors_files(lamp_context *ctx,
                                                const lamp_model_config *config,
                                                const char *const *paths, size_t count,
                                                lamp_model **out) {
  if (!ctx || !config || !paths || !out)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT,
                      "lamp_model_create_safetensors_files: NULL argument");
  *out = NULL;
  const lamp_model_options o = {LAMP_MODEL_WEIGHTS_F32, NULL};
  return lamp__st_files(ctx, config, paths, count, &o, NULL, NULL, out);
}

/* ---- a model folder --------------------------------------------------------------------- */

static int lamp__is_file(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The shard file names of an index's "weight_map", each once, as paths under `dir`. */
static lamp_status lamp__st_index(lamp_context *ctx, const char *dir, const char *index_path,
                                  char ***paths, size_t *count) {
  char *text = NULL;
  size_t size = 0;
  LAMP__TRY(lamp__read_file(ctx, index_path, &text, &size));
  lamp__json *doc = NULL;
  char err[512];
  lamp_status st = lamp__json_parse(text, size, &doc, err, sizeof(err));
  free(text);
  if (st != LAMP_OK) return lamp__fail(ctx, st, "%s: %s", index_path, err);
  size_t map = lamp__json_get(doc, 0, "weight_map");
  size_t n = lamp__json_count(doc, map);
  char **list = NULL;
  size_t used = 0;
  if (lamp__json_kind_of(doc, map) != LAMP__JSON_OBJECT || n == 0) {
    st = lamp__fail(ctx, LAMP_ERR_FORMAT, "%s: \"weight_map\" must be a non-empty object",
                    index_path);
    goto done;
  }
  list = calloc(n, sizeof(char *));
  if (!list) {
    st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
    goto done;
  }
  for (size_t e = lamp__json_first(doc, map); e != LAMP__JSON_NONE; e = lamp__json_next(doc, e)) {
    size_t len = 0, key_len = 0;
    const char *file = lamp__json_string(doc, e, &len);
    const char *key = lamp__json_key(doc, e, &key_len);
    /* shards sit beside the index: a path elsewhere is refused */
    if (!file || len == 0 || memchr(file, '/', len) || memchr(file, '\\', len) ||
        memchr(file, 0, len) || !strcmp(file, ".") || !strcmp(file, "..")) {
      st = lamp__fail(ctx, LAMP_ERR_FORMAT, "%s: the file of tensor \"%.*s\" must be a plain "
                      "file name in the same folder", index_path,
                      (int)(key_len > 128 ? 128 : key_len), key ? key : "");
      goto done;
    }
    int seen = 0;
    for (size_t i = 0; i < used && !seen; i++) {
      const char *base = strrchr(list[i], '/') + 1;
      seen = strlen(base) == len && !memcmp(base, file, len);
    }
    if (seen) continue;
    size_t need = strlen(dir) + len + 2;
    if (!(list[used] = malloc(need))) {
      st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
      goto done;
    }
    snprintf(list[used++], need, "%s/%.*s", dir, (int)len, file);
  }
done:
  lamp__json_free(doc);
  if (st != LAMP_OK) {
    for (size_t i = 0; i < used; i++) free(list[i]);
    free(list);
    return st;
  }
  *paths = list;
  *count = used;
  return LAMP_OK;
}

/* A folder's model (plan NULL) or its plan. */
static lamp_status lamp__st_folder(lamp_context *ctx, const char *dir,
                                   const lamp_model_options *options,
                                   const lamp_model_shape *shape, lamp_model_plan *plan,
                                   lamp_model **out) {
  size_t dlen = strlen(dir);
  char *path = malloc(dlen + 64);
  if (!path) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  snprintf(path, dlen + 64, "%s/config.json", dir);
  char *text = NULL;
  size_t size = 0;
  lamp_model_config config;
  lamp_status st = lamp__read_file(ctx, path, &text, &size);
  if (st == LAMP_OK) {
    st = lamp_model_config_from_hf(ctx, text, size, &config);
    if (st != LAMP_OK) {
      char why[1024];
      snprintf(why, sizeof(why), "%s", lamp_context_error(ctx));
      lamp__fail(ctx, st, "%s: %s", dir, why);
    }
  }
  free(text);
  char **paths = NULL;
  size_t count = 0;
  if (st == LAMP_OK) {
    snprintf(path, dlen + 64, "%s/model.safetensors.index.json", dir);
    if (lamp__is_file(path)) {
      st = lamp__st_index(ctx, dir, path, &paths, &count);
    } else {
      snprintf(path, dlen + 64, "%s/model.safetensors", dir);
      if (!lamp__is_file(path))
        st = lamp__fail(ctx, LAMP_ERR_IO, "%s: neither model.safetensors nor "
                        "model.safetensors.index.json is there", dir);
      else if (!(paths = malloc(sizeof(char *))) || !(paths[0] = strdup(path)))
        st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
      else count = 1;
    }
  }
  if (st == LAMP_OK)
    st = lamp__st_files(ctx, &config, (const char *const *)paths, count, options, shape, plan,
                        out);
  for (size_t i = 0; i < count; i++) free(paths[i]);
  free(paths);
  free(path);
  return st;
}

lamp_status lamp_model_create_safetensors_with(lamp_context *ctx, const char *dir,
                                               const lamp_model_options *options,
                                               lamp_model **out) {
  if (!ctx || !dir || !out)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_create_safetensors: NULL");
  *out = NULL;
  return lamp__st_folder(ctx, dir, options, NULL, NULL, out);
}

lamp_status lamp_model_create_safetensors(lamp_context *ctx, const char *dir, lamp_model **out) {
  const lamp_model_options o = {LAMP_MODEL_WEIGHTS_F32, NULL};
  return lamp_model_create_safetensors_with(ctx, dir, &o, out);
}

lamp_status lamp_model_plan_safetensors(lamp_context *ctx, const char *dir,
                                        const lamp_model_shape *shape, lamp_model_weights weights,
                                        lamp_model_plan *plan) {
  if (!ctx || !dir || !plan)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_model_plan_safetensors: NULL");
  const lamp_model_options o = {weights, shape};
  return lamp__st_folder(ctx, dir, &o, shape, plan, NULL);
}
