/* Hugging Face PEFT prompt-tuning adapters: the pooled prompt (P' x C) as `prompt_embeddings`.
 * PEFT prepends it to the input embeddings with positions counted from the first virtual
 * token, as lamp does, so an exported adapter scores the same in both. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lamp/safetensors.h"
#include "train/train_internal.h"
#include "util/json.h"

/* Appends `s` as a JSON string. */
static void lamp__json_put(char *out, size_t size, const char *s) {
  size_t n = strlen(out);
  if (n + 1 < size) out[n++] = '"';
  for (; *s && n + 8 < size; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') n += (size_t)snprintf(out + n, size - n, "\\%c", c);
    else if (c < 0x20) n += (size_t)snprintf(out + n, size - n, "\\u%04x", c);
    else out[n++] = (char)c;
  }
  if (n + 1 < size) out[n++] = '"';
  out[n] = '\0';
}

lamp_status lamp_peft_export(const lamp_llm *llm, lamp_prompt *prompt, const char *dir,
                             const char *base_model) {
  if (!llm || !prompt || !dir) return LAMP_ERR_INVALID_ARGUMENT;
  lamp_context *ctx = llm->ctx;
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    return lamp__fail(ctx, LAMP_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
  size_t rows, C;
  LAMP__TRY(lamp_prompt_output_shape(prompt, &rows, &C));
  size_t ne[2] = {C, rows};
  lamp_tensor out;
  LAMP__TRY(lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &out));
  float *host = malloc(rows * C * sizeof(float));
  size_t plen = strlen(dir) + 64;
  char *path = malloc(plen);
  lamp_status st = host && path ? LAMP_OK : lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  if (st == LAMP_OK) st = lamp_prompt_forward(prompt, &out);
  if (st == LAMP_OK) st = lamp_tensor_download(ctx, &out, host, rows * C * sizeof(float));
  if (st == LAMP_OK) {
    snprintf(path, plen, "%s/adapter_model.safetensors", dir);
    uint64_t shape[2] = {rows, C};
    lamp_st_entry ent = {"prompt_embeddings", 2, shape, host};
    const char *k[1] = {"format"}, *v[1] = {"pt"};
    st = lamp_safetensors_write_f32(ctx, path, &ent, 1, k, v, 1);
  }
  lamp_tensor_release(&out);
  free(host);
  if (st == LAMP_OK) {
    const char *base = base_model ? base_model : llm->hf_id ? llm->hf_id : llm->name;
    char json[4096] = "{\n  \"peft_type\": \"PROMPT_TUNING\",\n  \"task_type\": \"CAUSAL_LM\",\n"
                      "  \"base_model_name_or_path\": ";
    lamp__json_put(json, sizeof(json), base);
    size_t n = strlen(json);
    snprintf(json + n, sizeof(json) - n,
             ",\n  \"num_virtual_tokens\": %zu,\n  \"token_dim\": %zu,\n"
             "  \"num_transformer_submodules\": 1,\n  \"num_attention_heads\": %zu,\n"
             "  \"num_layers\": %zu,\n  \"prompt_tuning_init\": \"RANDOM\",\n"
             "  \"prompt_tuning_init_text\": null,\n  \"tokenizer_name_or_path\": null,\n"
             "  \"inference_mode\": true,\n  \"revision\": null\n}\n",
             rows, C, llm->config.n_heads, llm->config.n_layers);
    snprintf(path, plen, "%s/adapter_config.json", dir);
    st = lamp__write_file_atomic(ctx, path, json, strlen(json));
  }
  free(path);
  return st;
}

lamp_status lamp_peft_import(const lamp_llm *llm, const char *path, lamp_prompt **out) {
  if (!llm || !path || !out) return LAMP_ERR_INVALID_ARGUMENT;
  *out = NULL;
  lamp_context *ctx = llm->ctx;
  struct stat sb;
  size_t plen = strlen(path) + 64;
  char *file = malloc(plen);
  if (!file) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
    snprintf(file, plen, "%s/adapter_model.safetensors", path);
  else
    snprintf(file, plen, "%s", path);
  lamp_safetensors *st = NULL;
  const lamp_st_tensor *t = NULL;
  lamp_prompt *p = NULL;
  lamp_status s = lamp_safetensors_open(ctx, file, &st);
  if (s == LAMP_OK && (s = lamp_safetensors_find(st, "prompt_embeddings", &t)) != LAMP_OK)
    lamp__fail(ctx, s, "%s holds no prompt_embeddings: not a PEFT prompt-tuning adapter", file);
  if (s == LAMP_OK && (t->ndim != 2 || t->shape[1] != llm->config.n_embd || !t->shape[0]))
    s = lamp__fail(ctx, LAMP_ERR_SHAPE, "%s: prompt_embeddings is not (tokens, %zu) for this "
                   "model", file, llm->config.n_embd);
  if (s == LAMP_OK) {
    lamp_prompt_options po;
    lamp_prompt_options_init(&po, LAMP_PROMPT_PT, llm->config.n_embd);
    po.length = (size_t)t->shape[0];
    po.pool = 1;
    po.init = LAMP_PROMPT_INIT_NONE;
    s = lamp_prompt_create(ctx, &po, &p);
  }
  lamp_param param;
  size_t n = 0;
  if (s == LAMP_OK) s = lamp_prompt_params(p, &param, 1, &n);
  if (s == LAMP_OK && t->dtype != LAMP_ST_F32)
    s = lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "%s: prompt_embeddings is %s; lamp reads F32 "
                   "adapters", file, lamp_safetensors_dtype_name(t->dtype));
  float *host = NULL;
  if (s == LAMP_OK && !(host = malloc((size_t)t->size)))
    s = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of host memory");
  if (s == LAMP_OK) s = lamp_safetensors_read(st, t, host, (size_t)t->size);
  for (size_t i = 0; s == LAMP_OK && i < (size_t)t->numel; i++)
    if (!isfinite(host[i]))
      s = lamp__fail(ctx, LAMP_ERR_NUMERIC, "%s: prompt_embeddings holds %g at element %zu: the "
                     "adapter is damaged", file, (double)host[i], i);
  if (s == LAMP_OK) s = lamp_tensor_upload(ctx, &param.value, host, (size_t)t->size);
  free(host);
  lamp_safetensors_release(st);
  free(file);
  if (s != LAMP_OK) {
    lamp_prompt_release(p);
    return s;
  }
  *out = p;
  return LAMP_OK;
}
