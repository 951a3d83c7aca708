/* Hugging Face models: config.json + safetensors. A tiny random Llama (2 layers, width 64,
 * 4 heads, 2 KV heads, vocabulary 300) written by the test as F32 (lamp's writer), BF16 and F16
 * (the test's own writer, one file and two shards with an index): logits against the
 * double-precision reference of ref_llama.c, and bit for bit against the same weights given to
 * lamp_model_create directly; config.json parsing with its defaults; malformed configs, missing
 * or misshaped tensors, unsupported dtypes, truncated files and bad indexes give errors naming
 * the cause. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "lamp/model.h"
#include "lamp/safetensors.h"
#include "ref.h"
#include "ref_llama.h"

enum { L = 2, C = 64, H = 4, KV = 2, D = 16, F = 96, V = 300, N_PER_LAYER = 9 };
enum { N_TENSORS = 3 + L * N_PER_LAYER };
#define TOL 1e-4

/* One tensor: Hugging Face name, shape (rows 0 for a 1-D norm of `cols`), f32 values. */
typedef struct tensor {
  char name[64];
  size_t rows, cols;
  float *data;
} tensor;

typedef struct tiny {
  tensor t[N_TENSORS]; /* embedding, final norm, lm_head, then the layers */
  ref_llama_layer layers[L];
} tiny;

static size_t numel(const tensor *t) { return (t->rows ? t->rows : 1) * t->cols; }

static void tiny_make(tiny *m) {
  static const char *parts[N_PER_LAYER] = {
      "input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
      "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj",
      "mlp.down_proj"};
  const size_t rows[N_PER_LAYER] = {0, H * D, KV * D, KV * D, C, 0, F, F, C};
  const size_t cols[N_PER_LAYER] = {C, C, C, C, H * D, C, C, C, F};
  memset(m, 0, sizeof(*m));
  m->t[0] = (tensor){"model.embed_tokens.weight", V, C, NULL};
  m->t[1] = (tensor){"model.norm.weight", 0, C, NULL};
  m->t[2] = (tensor){"lm_head.weight", V, C, NULL};
  for (size_t l = 0; l < L; l++)
    for (size_t i = 0; i < N_PER_LAYER; i++) {
      tensor *t = &m->t[3 + l * N_PER_LAYER + i];
      snprintf(t->name, sizeof(t->name), "model.layers.%zu.%s.weight", l, parts[i]);
      t->rows = rows[i];
      t->cols = cols[i];
    }
  for (size_t i = 0; i < N_TENSORS; i++) {
    tensor *t = &m->t[i];
    t->data = malloc(numel(t) * sizeof(float));
    assert_non_null(t->data);
    int norm = t->rows == 0;
    ref_fill_uniform(t->data, numel(t), 500 + i, norm ? 0.8f : -0.3f, norm ? 1.2f : 0.3f);
  }
  for (size_t l = 0; l < L; l++) {
    float *w[N_PER_LAYER];
    for (size_t i = 0; i < N_PER_LAYER; i++) w[i] = m->t[3 + l * N_PER_LAYER + i].data;
    m->layers[l] = (ref_llama_layer){w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8]};
  }
}

static void tiny_free(tiny *m) {
  for (size_t i = 0; i < N_TENSORS; i++) free(m->t[i].data);
}

/* ---- 16-bit encodings, written here from the formats' definitions ------------------------ */

/* Nearest bfloat16, ties to even (the weights are finite). */
static uint16_t to_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Nearest IEEE half, ties to even, for |x| below the half range (true of the weights). */
static uint16_t to_f16(float x) {
  uint16_t sign = x < 0 ? 0x8000 : 0;
  double a = fabs((double)x);
  int e;
  frexp(a, &e); /* a = m 2^e, m in [0.5, 1) */
  assert_true(a == 0 || e - 1 <= 15);
  /* subnormal: a multiple of 2^-24, whose count is the bit pattern (1024 is the first normal) */
  if (a < 0x1p-14) return (uint16_t)(sign | (uint16_t)nearbyint(a * 0x1p24));
  double q = nearbyint(ldexp(a, 11 - e)); /* 11 significant bits, rounding to even */
  if (q == 2048.0) q = 1024.0, e++;
  return (uint16_t)(sign | (uint16_t)(e - 1 + 15) << 10 | ((uint16_t)q - 1024));
}

static float from_f16(uint16_t h) {
  int exp = (h >> 10) & 31;
  double v = exp ? ldexp(1024.0 + (h & 1023), exp - 25) : ldexp(h & 1023, -24);
  return (float)(h & 0x8000 ? -v : v);
}

static float from_bf16(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float x;
  memcpy(&x, &u, 4);
  return x;
}

/* Rounds every weight to the 16-bit type (in place) so that lamp_model_create on the f32
 * values is the model the 16-bit file holds. */
static void tiny_round(tiny *m, int bf16) {
  for (size_t i = 0; i < N_TENSORS; i++)
    for (size_t k = 0; k < numel(&m->t[i]); k++) {
      float x = m->t[i].data[k];
      m->t[i].data[k] = bf16 ? from_bf16(to_bf16(x)) : from_f16(to_f16(x));
    }
}

/* ---- files --------------------------------------------------------------------------------- */

typedef struct tmpdir {
  char path[64];
} tmpdir;

static void file_path(char *out, size_t size, const tmpdir *d, const char *name) {
  snprintf(out, size, "%s/%s", d->path, name);
}

static void write_text(const tmpdir *d, const char *name, const char *text) {
  char path[256];
  file_path(path, sizeof(path), d, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fwrite(text, 1, strlen(text), f);
  fclose(f);
}

static void remove_file(const tmpdir *d, const char *name) {
  char path[256];
  file_path(path, sizeof(path), d, name);
  unlink(path);
}

static const char *CONFIG_JSON =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", "
    "\"hidden_size\": 64, \"intermediate_size\": 96, \"num_attention_heads\": 4, "
    "\"num_hidden_layers\": 2, \"num_key_value_heads\": 2, \"vocab_size\": 300, "
    "\"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"hidden_act\": \"silu\", "
    "\"rope_scaling\": null, \"attention_bias\": false, \"tie_word_embeddings\": %s, "
    "\"torch_dtype\": \"float32\", \"bos_token_id\": 1, \"eos_token_id\": 2}";

static void write_config(const tmpdir *d, int tied) {
  char text[1024];
  snprintf(text, sizeof(text), CONFIG_JSON, tied ? "true" : "false");
  write_text(d, "config.json", text);
}

/* Writes tensors [first, last) of the model (skipping `skip`, and lm_head when tied) as a
 * safetensors file of `dtype` ("F16", "BF16", or any other name with 4-byte elements, written
 * as f32 bits), its header made here; `cut` bytes are dropped from the end. */
static void write_st(const tmpdir *d, const char *name, const tiny *m, size_t first,
                     size_t last, const char *dtype, int tied, const char *skip, size_t cut) {
  size_t width = !strcmp(dtype, "F16") || !strcmp(dtype, "BF16") ? 2 : 4;
  char *header = malloc(65536);
  assert_non_null(header);
  size_t hn = (size_t)snprintf(header, 65536, "{"), offset = 0;
  for (size_t i = first; i < last; i++) {
    const tensor *t = &m->t[i];
    if ((tied && i == 2) || (skip && !strcmp(skip, t->name))) continue;
    char shape[64];
    if (t->rows) snprintf(shape, sizeof(shape), "[%zu, %zu]", t->rows, t->cols);
    else snprintf(shape, sizeof(shape), "[%zu]", t->cols);
    size_t bytes = numel(t) * width;
    hn += (size_t)snprintf(header + hn, 65536 - hn, "%s\"%s\": {\"dtype\": \"%s\", \"shape\": %s, "
                           "\"data_offsets\": [%zu, %zu]}", offset ? ", " : "", t->name, dtype,
                           shape, offset, offset + bytes);
    offset += bytes;
  }
  hn += (size_t)snprintf(header + hn, 65536 - hn, "}");
  while (hn % 8) header[hn++] = ' ';
  char path[256];
  file_path(path, sizeof(path), d, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  unsigned char len8[8];
  for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)hn >> (8 * k));
  fwrite(len8, 1, 8, f);
  fwrite(header, 1, hn, f);
  size_t total = 8 + hn + offset, written = 8 + hn;
  for (size_t i = first; i < last; i++) {
    const tensor *t = &m->t[i];
    if ((tied && i == 2) || (skip && !strcmp(skip, t->name))) continue;
    for (size_t k = 0; k < numel(t) && written + width <= total - cut; k++, written += width) {
      unsigned char b[4];
      uint32_t u;
      if (width == 2) {
        uint16_t h = !strcmp(dtype, "F16") ? to_f16(t->data[k]) : to_bf16(t->data[k]);
        b[0] = (unsigned char)h, b[1] = (unsigned char)(h >> 8);
      } else {
        memcpy(&u, &t->data[k], 4);
        for (int j = 0; j < 4; j++) b[j] = (unsigned char)(u >> (8 * j));
      }
      fwrite(b, 1, width, f);
    }
  }
  fclose(f);
  free(header);
}

/* The F32 file through lamp's own safetensors writer. */
static void write_st_lamp(lamp_context *ctx, const tmpdir *d, const tiny *m, int tied) {
  lamp_st_entry e[N_TENSORS];
  uint64_t shapes[N_TENSORS][2];
  size_t n = 0;
  for (size_t i = 0; i < N_TENSORS; i++) {
    if (tied && i == 2) continue;
    const tensor *t = &m->t[i];
    shapes[i][0] = t->rows ? t->rows : t->cols;
    shapes[i][1] = t->cols;
    e[n++] = (lamp_st_entry){t->name, t->rows ? 2 : 1, shapes[i], t->data};
  }
  char path[256];
  file_path(path, sizeof(path), d, "model.safetensors");
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_write_f32(ctx, path, e, n, NULL, NULL, 0));
}

/* ---- running the model ------------------------------------------------------------------- */

enum { B = 2, T = 7 };
static const int32_t ids[B * T] = {5, 17, 42, 299, 8, 1, 77, 11, 12, 13, 14, 0, 0, 0};
static const size_t lengths[B] = {7, 4};
static const size_t out_seq[B] = {0, 1};
static const size_t out_pos[B] = {6, 3};

static float *logits_of(lamp_context *ctx, lamp_model *model) {
  lamp_model_shape s = {B, T, 0, B, 0, 0};
  lamp_model_workspace *ws = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_workspace_create(model, &s, &ws));
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_tokens(ws, B, T, ids, lengths));
  LAMP_OK_OR_FAIL(ctx, lamp_model_set_outputs(ws, B, out_seq, out_pos, NULL));
  LAMP_OK_OR_FAIL(ctx, lamp_model_forward(ws, LAMP_MODEL_HEAD_VOCAB));
  lamp_tensor lt;
  LAMP_OK_OR_FAIL(ctx, lamp_model_logits(ws, &lt));
  float *z = malloc(B * V * sizeof(float));
  assert_non_null(z);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &lt, z, B * V * sizeof(float)));
  lamp_model_workspace_release(ws);
  return z;
}

static lamp_status tiny_lookup(void *user, const char *name, size_t rows, size_t cols,
                               const float **data, char *error, size_t error_size) {
  const tiny *m = user;
  (void)rows, (void)cols;
  for (size_t i = 0; i < N_TENSORS; i++)
    if (!strcmp(name, m->t[i].name)) {
      *data = m->t[i].data;
      return LAMP_OK;
    }
  snprintf(error, error_size, "no such tensor in the test");
  return LAMP_ERR_NOT_FOUND;
}

/* The model from a folder against the reference in double and, bit for bit, against the same
 * f32 weights handed over directly. */
static void check_folder(lamp_context *ctx, const tmpdir *d, const tiny *m, int tied,
                         const char *what) {
  lamp_model *model = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_create_safetensors(ctx, d->path, &model));
  lamp_model_config c;
  LAMP_OK_OR_FAIL(ctx, lamp_model_get_config(model, &c));
  assert_int_equal(c.tied_embeddings, tied);
  assert_int_equal(c.head_dim, D);
  float *got = logits_of(ctx, model);
  lamp_model_release(model);

  ref_llama_config rc = {L, C, H, KV, D, F, V, 10000.0, 1e-5, tied};
  ref_llama_weights w = {m->t[0].data, m->t[1].data, tied ? NULL : m->t[2].data, m->layers, 0};
  ref_llama_batch bt = {B, T, 0, ids, lengths, NULL, B, out_seq, out_pos, NULL, 0};
  double *want = malloc(B * V * sizeof(double));
  assert_non_null(want);
  ref_llama_forward(&rc, &w, &bt, want);
  double err = ref_llama_rel_error(got, want, B * V);
  if (!(err <= TOL)) fail_msg("%s: logits max relative error %.3e against the reference", what, err);

  lamp_model_config direct = {L, C, H, KV, 0, F, V, 10000.0f, 1e-5f, tied, 0,
                              LAMP_MODEL_ARCH_LLAMA, 0, 0, 0, 0, 0, 0, 0};
  LAMP_OK_OR_FAIL(ctx, lamp_model_create(ctx, &direct, LAMP_MODEL_NAMES_HF, tiny_lookup,
                                         (void *)m, &model));
  float *same = logits_of(ctx, model);
  lamp_model_release(model);
  for (size_t i = 0; i < B * V; i++)
    if (got[i] != same[i])
      fail_msg("%s: logit %zu is %.9g from the files, %.9g from the same weights in memory",
               what, i, got[i], same[i]);
  free(got), free(want), free(same);
}

static int setup_dir(void **state, tmpdir *d) {
  (void)state;
  snprintf(d->path, sizeof(d->path), "/tmp/lamp-test-hf-XXXXXX");
  return mkdtemp(d->path) ? 0 : -1;
}

static void clean_dir(const tmpdir *d) {
  static const char *names[] = {"config.json", "model.safetensors", "model.safetensors.index.json",
                                "model-00001-of-00002.safetensors",
                                "model-00002-of-00002.safetensors"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) remove_file(d, names[i]);
  rmdir(d->path);
}

static void test_f32_bf16_f16(void **state) {
  lamp_context *ctx = *state;
  tmpdir d;
  assert_int_equal(setup_dir(state, &d), 0);
  tiny m;
  tiny_make(&m);

  /* F32, separate head, lamp's writer */
  write_config(&d, 0);
  write_st_lamp(ctx, &d, &m, 0);
  check_folder(ctx, &d, &m, 0, "F32, untied");

  /* BF16, tied head, one file */
  tiny_round(&m, 1);
  write_config(&d, 1);
  write_st(&d, "model.safetensors", &m, 0, N_TENSORS, "BF16", 1, NULL, 0);
  check_folder(ctx, &d, &m, 1, "BF16, tied");

  /* F16, separate head, two shards and an index */
  tiny_free(&m);
  tiny_make(&m);
  tiny_round(&m, 0);
  remove_file(&d, "model.safetensors");
  write_config(&d, 0);
  write_st(&d, "model-00001-of-00002.safetensors", &m, 0, 12, "F16", 0, NULL, 0);
  write_st(&d, "model-00002-of-00002.safetensors", &m, 12, N_TENSORS, "F16", 0, NULL, 0);
  char index[8192];
  size_t n = (size_t)snprintf(index, sizeof(index), "{\"metadata\": {}, \"weight_map\": {");
  for (size_t i = 0; i < N_TENSORS; i++)
    n += (size_t)snprintf(index + n, sizeof(index) - n, "%s\"%s\": \"model-0000%d-of-00002."
                          "safetensors\"", i ? ", " : "", m.t[i].name, i < 12 ? 1 : 2);
  snprintf(index + n, sizeof(index) - n, "}}");
  write_text(&d, "model.safetensors.index.json", index);
  check_folder(ctx, &d, &m, 0, "F16, two shards");

  tiny_free(&m);
  clean_dir(&d);
}

/* The status of lamp_model_config_from_hf on `text`, and its message must hold `needle`. */
static void config_error(lamp_context *ctx, const char *text, lamp_status want,
                         const char *needle) {
  lamp_model_config c;
  lamp_status st = lamp_model_config_from_hf(ctx, text, strlen(text), &c);
  if (st != want)
    fail_msg("config %s: %s, expected %s (%s)", text, lamp_status_name(st),
             lamp_status_name(want), lamp_context_error(ctx));
  if (!strstr(lamp_context_error(ctx), needle))
    fail_msg("config %s: message \"%s\" does not name \"%s\"", text, lamp_context_error(ctx),
             needle);
}

/* Every required key but hidden_size. */
#define REST "\"intermediate_size\": 96, \"num_attention_heads\": 4, \"num_hidden_layers\": 2, " \
             "\"vocab_size\": 300"

static void test_config(void **state) {
  lamp_context *ctx = *state;
  /* defaults of transformers' LlamaConfig */
  const char *minimal = "{\"model_type\": \"llama\", \"hidden_size\": 576, "
                        "\"intermediate_size\": 1536, \"num_attention_heads\": 9, "
                        "\"num_hidden_layers\": 30, \"vocab_size\": 49152}";
  lamp_model_config c;
  LAMP_OK_OR_FAIL(ctx, lamp_model_config_from_hf(ctx, minimal, strlen(minimal), &c));
  assert_int_equal(c.n_layers, 30);
  assert_int_equal(c.n_embd, 576);
  assert_int_equal(c.n_heads, 9);
  assert_int_equal(c.n_kv_heads, 9);
  assert_int_equal(c.head_dim, 0);
  assert_int_equal(c.n_ff, 1536);
  assert_int_equal(c.n_vocab, 49152);
  assert_true(c.norm_eps == 1e-6f && c.rope_base == 10000.0f);
  assert_int_equal(c.tied_embeddings, 0);
  char full[1024];
  snprintf(full, sizeof(full), CONFIG_JSON, "true");
  LAMP_OK_OR_FAIL(ctx, lamp_model_config_from_hf(ctx, full, strlen(full), &c));
  assert_int_equal(c.n_kv_heads, KV);
  assert_int_equal(c.tied_embeddings, 1);
  assert_true(c.norm_eps == 1e-5f);

  config_error(ctx, "{\"model_type\": \"llama\", \"hidden_size\": 64", LAMP_ERR_FORMAT,
               "config.json");
  config_error(ctx, "[1, 2]", LAMP_ERR_FORMAT, "not an object");
  config_error(ctx, "{\"hidden_size\": 64}", LAMP_ERR_FORMAT, "model_type");
  config_error(ctx, "{\"model_type\": \"gpt2\"}", LAMP_ERR_UNSUPPORTED, "gpt2");
  config_error(ctx, "{\"model_type\": \"llama\", \"intermediate_size\": 96, "
               "\"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"vocab_size\": 300}",
               LAMP_ERR_FORMAT, "\"hidden_size\" is missing");
  config_error(ctx, "{\"model_type\": \"llama\", " REST ", \"hidden_size\": \"64\"}",
               LAMP_ERR_FORMAT,
               "hidden_size");
  config_error(ctx, "{\"model_type\": \"llama\", " REST ", \"hidden_size\": 64.5}",
               LAMP_ERR_FORMAT,
               "hidden_size");
  config_error(ctx, "{\"model_type\": \"llama\", " REST ", \"hidden_size\": -64}",
               LAMP_ERR_FORMAT,
               "hidden_size");
  config_error(ctx, "{\"model_type\": \"llama\", " REST ", \"hidden_size\": 1e300}",
               LAMP_ERR_FORMAT,
               "hidden_size");
  config_error(ctx, "{\"model_type\": \"llama\", \"hidden_act\": \"gelu\"}",
               LAMP_ERR_UNSUPPORTED, "hidden_act");
  config_error(ctx, "{\"model_type\": \"llama\", \"rope_scaling\": {\"rope_type\": \"llama3\"}}",
               LAMP_ERR_UNSUPPORTED, "rope_scaling");
  config_error(ctx, "{\"model_type\": \"llama\", \"attention_bias\": true}",
               LAMP_ERR_UNSUPPORTED, "attention_bias");
  config_error(ctx, "{\"model_type\": \"llama\", " REST ", \"hidden_size\": 64, "
               "\"tie_word_embeddings\": 1}", LAMP_ERR_FORMAT, "tie_word_embeddings");
  snprintf(full, sizeof(full), CONFIG_JSON, "true");
  char *eps = strstr(full, "1e-05");
  memcpy(eps, "-1e-5", 5);
  config_error(ctx, full, LAMP_ERR_FORMAT, "rms_norm_eps");
  /* files that cannot be opened, and no files at all */
  const char *none[1] = {"/nonexistent/model.safetensors"};
  lamp_model *model = NULL;
  assert_int_equal(lamp_model_create_safetensors_files(ctx, &c, none, 1, &model), LAMP_ERR_IO);
  assert_non_null(strstr(lamp_context_error(ctx), none[0]));
  assert_int_equal(lamp_model_create_safetensors_files(ctx, &c, none, 0, &model),
                   LAMP_ERR_INVALID_ARGUMENT);
  assert_null(model);
}

/* lamp_model_create_safetensors on the folder must fail with `want` naming `needle`. */
static void folder_error(lamp_context *ctx, const tmpdir *d, lamp_status want,
                         const char *needle, const char *what) {
  lamp_model *model = NULL;
  lamp_status st = lamp_model_create_safetensors(ctx, d->path, &model);
  if (st != want)
    fail_msg("%s: %s, expected %s (%s)", what, lamp_status_name(st), lamp_status_name(want),
             lamp_context_error(ctx));
  if (!strstr(lamp_context_error(ctx), needle))
    fail_msg("%s: message \"%s\" does not name \"%s\"", what, lamp_context_error(ctx), needle);
  print_message("%s: %s\n", what, lamp_context_error(ctx));
  assert_null(model);
}

static void test_bad_folders(void **state) {
  lamp_context *ctx = *state;
  tmpdir d;
  assert_int_equal(setup_dir(state, &d), 0);
  tiny m;
  tiny_make(&m);

  folder_error(ctx, &d, LAMP_ERR_IO, "config.json", "no config.json");
  write_text(&d, "config.json", "{\"model_type\": \"llama\",");
  folder_error(ctx, &d, LAMP_ERR_FORMAT, "config.json", "truncated config.json");
  write_config(&d, 0);
  folder_error(ctx, &d, LAMP_ERR_IO, "model.safetensors", "no weights");

  write_st(&d, "model.safetensors", &m, 0, N_TENSORS, "F32", 0,
           "model.layers.1.mlp.up_proj.weight", 0);
  folder_error(ctx, &d, LAMP_ERR_NOT_FOUND, "model.layers.1.mlp.up_proj.weight",
               "missing tensor");
  write_st(&d, "model.safetensors", &m, 0, N_TENSORS, "F32", 1, NULL, 0);
  folder_error(ctx, &d, LAMP_ERR_NOT_FOUND, "lm_head.weight", "untied config, no lm_head");
  write_st(&d, "model.safetensors", &m, 0, N_TENSORS, "I32", 0, NULL, 0);
  folder_error(ctx, &d, LAMP_ERR_UNSUPPORTED, "I32", "integer tensors");
  write_st(&d, "model.safetensors", &m, 0, N_TENSORS, "F32", 0, NULL, 100);
  folder_error(ctx, &d, LAMP_ERR_FORMAT, "model.safetensors", "truncated safetensors");

  /* a tensor of the wrong shape: q_proj stored as (C, H D) is fine only because C = H D here,
   * so use k_proj, (KV D, C), given the shape of its transpose */
  tensor *k = &m.t[3 + 2];
  assert_string_equal(k->name, "model.layers.0.self_attn.k_proj.weight");
  size_t r = k->rows;
  k->rows = k->cols, k->cols = r;
  write_st(&d, "model.safetensors", &m, 0, N_TENSORS, "F32", 0, NULL, 0);
  folder_error(ctx, &d, LAMP_ERR_SHAPE, "k_proj", "transposed k_proj");
  k->cols = k->rows, k->rows = r;

  /* a non-finite weight */
  m.t[4].data[7] = NAN;
  write_st(&d, "model.safetensors", &m, 0, N_TENSORS, "F32", 0, NULL, 0);
  folder_error(ctx, &d, LAMP_ERR_NUMERIC, "model.layers.0.self_attn.q_proj.weight", "NaN weight");
  m.t[4].data[7] = 0.0f;
  remove_file(&d, "model.safetensors");

  /* shards: a tensor in two files, a file outside the folder, a missing shard */
  write_st(&d, "model-00001-of-00002.safetensors", &m, 0, 12, "F32", 0, NULL, 0);
  write_st(&d, "model-00002-of-00002.safetensors", &m, 11, N_TENSORS, "F32", 0, NULL, 0);
  write_text(&d, "model.safetensors.index.json",
             "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", "
             "\"b\": \"model-00002-of-00002.safetensors\"}}");
  folder_error(ctx, &d, LAMP_ERR_FORMAT, "in both", "tensor in two shards");
  write_text(&d, "model.safetensors.index.json",
             "{\"weight_map\": {\"a\": \"../model-00001-of-00002.safetensors\"}}");
  folder_error(ctx, &d, LAMP_ERR_FORMAT, "plain file name", "shard outside the folder");
  write_text(&d, "model.safetensors.index.json", "{\"weight_map\": {}}");
  folder_error(ctx, &d, LAMP_ERR_FORMAT, "weight_map", "empty index");
  write_text(&d, "model.safetensors.index.json",
             "{\"weight_map\": {\"a\": \"model-00003-of-00002.safetensors\"}}");
  folder_error(ctx, &d, LAMP_ERR_IO, "model-00003-of-00002.safetensors", "missing shard");

  remove_file(&d, "model-00003-of-00002.safetensors");
  tiny_free(&m);
  clean_dir(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_f32_bf16_f16),
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_bad_folders),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
