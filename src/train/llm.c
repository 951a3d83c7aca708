/* lamp_llm: a frozen model with its tokenizer and special ids, from a GGUF file or a Hugging
 * Face folder. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lamp/safetensors.h"
#include "train/train_internal.h"
#include "util/json.h"

static char *lamp__strndup(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

static const char *lamp__base_name(const char *path) {
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/') n--;
  const char *end = path + n, *p = end;
  while (p > path && p[-1] != '/') p--;
  return p;
}

/* A copy of a GGUF string value in *out, NULL when the file has none; 0, or -1 when out of
 * memory. */
static int lamp__gguf_str(lamp_gguf *g, const char *key, char **out) {
  const char *s = NULL;
  size_t n = 0;
  *out = NULL;
  if (lamp_gguf_get_string(NULL, g, key, &s, &n) != LAMP_OK || !n) return 0;
  return (*out = lamp__strndup(s, n)) ? 0 : -1;
}

/* The Hugging Face id, when the converter recorded where the model came from. The naming
 * parts (general.organization, basename, size_label, finetune) are not used: converters
 * fill them from config.json's _name_or_path, which is often a training run's name. */
static int lamp__gguf_hf_id(lamp_gguf *g, char **id) {
  if (lamp__gguf_str(g, "general.source.huggingface.repository", id)) return -1;
  if (*id) return 0;
  static const char *const hosts[] = {"https://huggingface.co/", "http://huggingface.co/"};
  char *url = NULL;
  if (lamp__gguf_str(g, "general.source.url", &url)) return -1;
  int rc = 0;
  for (size_t i = 0; url && !*id && !rc && i < 2; i++) {
    size_t n = strlen(hosts[i]);
    if (!strncmp(url, hosts[i], n) && url[n] && !(*id = lamp__strndup(url + n, strlen(url + n))))
      rc = -1;
  }
  free(url);
  return rc;
}

static lamp_model_options lamp__llm_model_options(const lamp_llm *m) {
  lamp_model_options o = {m->requested, NULL};
  return o;
}

static lamp_status lamp__llm_gguf(lamp_llm *m, const char *path) {
  lamp_context *ctx = m->ctx;
  lamp_gguf *g = NULL;
  lamp_status st = lamp_gguf_open(ctx, path, &g); /* the message names the file */
  if (st != LAMP_OK) return st;
  char detail[1024];
  if ((st = lamp_tokenizer_from_gguf(ctx, g, &m->tok)) != LAMP_OK) {
    snprintf(detail, sizeof(detail), "%s", lamp_context_error(ctx));
    lamp__fail(ctx, st, "%s: tokenizer: %s", path, detail);
  } else if ((st = lamp_model_create_gguf_with(ctx, g, &(lamp_model_options){m->requested, NULL},
                                                &m->model)) != LAMP_OK) {
    snprintf(detail, sizeof(detail), "%s", lamp_context_error(ctx));
    lamp__fail(ctx, st, "%s: %s", path, detail);
  } else if (lamp__gguf_str(g, "general.name", &m->name) || lamp__gguf_hf_id(g, &m->hf_id)) {
    st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "%s: out of host memory for the model's name",
                    path);
  }
  lamp_gguf_release(g);
  return st;
}

/* An integer member of config.json, or the first element of an array of them; -1 if none. */
static long lamp__json_id(const lamp__json *doc, const char *key) {
  size_t node = lamp__json_get(doc, 0, key);
  if (lamp__json_kind_of(doc, node) == LAMP__JSON_ARRAY) node = lamp__json_first(doc, node);
  if (lamp__json_kind_of(doc, node) != LAMP__JSON_NUMBER) return -1;
  double v = lamp__json_number(doc, node);
  return v >= 0 && v < (double)(1 << 24) && v == floor(v) ? (long)v : -1;
}

static lamp_status lamp__llm_folder(lamp_llm *m, const char *dir) {
  lamp_context *ctx = m->ctx;
  size_t n = strlen(dir) + 32;
  char *path = malloc(n), err[2048];
  if (!path) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  snprintf(path, n, "%s/tokenizer.json", dir);
  lamp_status st = lamp_tokenizer_from_json_file(ctx, path, &m->tok);
  if (st != LAMP_OK) {
    snprintf(err, sizeof(err), "%s", lamp_context_error(ctx));
    lamp__fail(ctx, st, "%s: %s", path, err);
    free(path);
    return st;
  }
  snprintf(path, n, "%s/config.json", dir);
  char *text = NULL;
  size_t size = 0;
  lamp__json *doc = NULL;
  st = lamp__read_file(ctx, path, &text, &size);
  if (st == LAMP_OK && (st = lamp__json_parse(text, size, &doc, err, sizeof(err))) != LAMP_OK)
    lamp__fail(ctx, st, "%s: %s", path, err);
  free(text);
  if (st == LAMP_OK) {
    lamp_tokenizer_special sp = lamp_tokenizer_get_special(m->tok);
    int32_t vocab = (int32_t)lamp_tokenizer_vocab_size(m->tok);
    sp.bos = (int32_t)lamp__json_id(doc, "bos_token_id");
    sp.eos = (int32_t)lamp__json_id(doc, "eos_token_id");
    if (sp.bos >= vocab) sp.bos = -1;
    if (sp.eos >= vocab) sp.eos = -1;
    size_t id = lamp__json_get(doc, 0, "_name_or_path");
    size_t len = 0;
    const char *s = lamp__json_kind_of(doc, id) == LAMP__JSON_STRING
                        ? lamp__json_string(doc, id, &len) : NULL;
    /* a local path is not an id */
    if (s && len && s[0] != '/' && s[0] != '.' && !(m->hf_id = lamp__strndup(s, len)))
      st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
    lamp__json_free(doc);
    if (st == LAMP_OK) st = lamp_tokenizer_set_special(ctx, m->tok, &sp);
  }
  if (st == LAMP_OK) {
    const lamp_model_options o = lamp__llm_model_options(m);
    st = lamp_model_create_safetensors_with(ctx, dir, &o, &m->model);
  }
  /* no name here: lamp_llm_load names the model after the folder */
  free(path);
  return st;
}

lamp_status lamp_llm_load(lamp_context *ctx, const char *path, lamp_llm **out) {
  return lamp_llm_load_with(ctx, path, NULL, out);
}

lamp_status lamp_llm_load_with(lamp_context *ctx, const char *path,
                               const lamp_model_options *options, lamp_llm **out) {
  if (!ctx || !out) return LAMP_ERR_INVALID_ARGUMENT;
  *out = NULL;
  if (!path || !path[0]) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "no model path given");
  struct stat sb;
  if (stat(path, &sb) != 0)
    return lamp__fail(ctx, LAMP_ERR_IO, "model %s not found (a GGUF file or a Hugging Face "
                      "folder)", path);
  lamp_llm *m = calloc(1, sizeof(*m));
  if (!m) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  m->ctx = ctx;
  m->requested = options ? options->weights : LAMP_MODEL_WEIGHTS_AUTO;
  lamp_status st;
  if (!(m->path = lamp__strndup(path, strlen(path)))) {
    st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  } else if (S_ISDIR(sb.st_mode)) {
    st = lamp__llm_folder(m, path);
  } else if (S_ISREG(sb.st_mode)) {
    st = lamp__llm_gguf(m, path);
  } else {
    st = lamp__fail(ctx, LAMP_ERR_IO, "model %s is neither a file nor a folder", path);
  }
  if (st == LAMP_OK && !m->name) {
    const char *b = lamp__base_name(path);
    if (!(m->name = lamp__strndup(b, strlen(b))))
      st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  }
  if (st == LAMP_OK) st = lamp_model_get_config(m->model, &m->config);
  if (st == LAMP_OK) m->n_ctx = m->config.n_ctx;
  if (st != LAMP_OK) {
    lamp_llm_release(m);
    return st;
  }
  *out = m;
  return LAMP_OK;
}

static int lamp__llm_is_folder(const lamp_llm *m) {
  struct stat sb;
  return stat(m->path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

lamp_status lamp__llm_plan(const lamp_llm *m, const lamp_model_shape *shape,
                           lamp_model_weights weights, lamp_model_plan *plan) {
  lamp_context *ctx = m->ctx;
  if (lamp__llm_is_folder(m)) return lamp_model_plan_safetensors(ctx, m->path, shape, weights, plan);
  lamp_gguf *g = NULL;
  LAMP__TRY(lamp_gguf_open(ctx, m->path, &g));
  lamp_status st = lamp_model_plan_gguf(ctx, g, shape, weights, plan);
  lamp_gguf_release(g);
  return st;
}

static lamp_status lamp__llm_open(lamp_llm *m, lamp_model_weights weights, lamp_model **model) {
  const lamp_model_options o = {weights, NULL};
  if (lamp__llm_is_folder(m)) return lamp_model_create_safetensors_with(m->ctx, m->path, &o, model);
  lamp_gguf *g = NULL;
  lamp_status st = lamp_gguf_open(m->ctx, m->path, &g);
  if (st == LAMP_OK) st = lamp_model_create_gguf_with(m->ctx, g, &o, model);
  lamp_gguf_release(g);
  return st;
}

lamp_status lamp__llm_set_weights(lamp_llm *m, lamp_model_weights weights) {
  const lamp_model_weights was = lamp_model_get_weights(m->model);
  if (was == weights) return LAMP_OK;
  /* the old weights go first: the point is that both do not fit */
  lamp_model_release(m->model);
  m->model = NULL;
  lamp_status st = lamp__llm_open(m, weights, &m->model);
  if (st != LAMP_OK) {
    /* keep the error of the reload, and the model as it was if it loads again */
    char why[512];
    snprintf(why, sizeof(why), "%s", lamp_context_error(m->ctx));
    if (lamp__llm_open(m, was, &m->model) != LAMP_OK) m->model = NULL;
    lamp__fail(m->ctx, st, "%s", why);
  }
  return st;
}

lamp_status lamp__llm_check(const lamp_llm *m) {
  if (m->model) return LAMP_OK;
  return lamp__fail(m->ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: the model's weights are gone (a "
                    "reload failed and so did loading them again): load the model anew", m->path);
}

lamp_model_weights lamp_llm_requested_weights(const lamp_llm *m) {
  return m ? m->requested : LAMP_MODEL_WEIGHTS_AUTO;
}

void lamp_llm_release(lamp_llm *m) {
  if (!m) return;
  lamp_model_release(m->model);
  lamp_tokenizer_release(m->tok);
  free(m->path);
  free(m->name);
  free(m->hf_id);
  free(m);
}

lamp_context *lamp_llm_context(const lamp_llm *m) { return m ? m->ctx : NULL; }
lamp_model *lamp_llm_model(const lamp_llm *m) { return m ? m->model : NULL; }
lamp_tokenizer *lamp_llm_tokenizer(const lamp_llm *m) { return m ? m->tok : NULL; }

lamp_status lamp_llm_get_info(const lamp_llm *m, lamp_llm_info *info) {
  if (!m || !info) return LAMP_ERR_INVALID_ARGUMENT;
  info->path = m->path;
  info->name = m->name;
  info->hf_id = m->hf_id;
  info->n_ctx = m->n_ctx;
  info->special = lamp_tokenizer_get_special(m->tok);
  info->config = m->config;
  return LAMP_OK;
}
