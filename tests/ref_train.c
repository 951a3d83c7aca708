/* Tiny GGUF model and process helpers for the training tests (tests/ref_train.h). */
#include "ref_train.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lamp/safetensors.h"
#include "runtime/internal.h"
#include "ref_gguf.h"

/* GPT-2's byte-to-character map: printable bytes stand for themselves, the others for
 * 256 + their rank. */
static uint32_t ref_byte_char(unsigned b) {
  if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
  unsigned rank = 0;
  for (unsigned x = 0; x < b; x++)
    if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) rank++;
  return 256 + rank;
}

static size_t ref_utf8(uint32_t c, char *out) {
  if (c < 0x80) {
    out[0] = (char)c;
    return 1;
  }
  out[0] = (char)(0xC0 | (c >> 6));
  out[1] = (char)(0x80 | (c & 0x3F));
  return 2; /* every character here is below U+0800 */
}

static uint64_t ref_rng(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static float *ref_array(ref_train_model *m, size_t n, double scale, double offset, uint64_t *s) {
  float *a = malloc(n * sizeof(float));
  if (!a) return NULL;
  for (size_t i = 0; i < n; i++)
    a[i] = (float)(offset + scale * ((double)(ref_rng(s) >> 11) / 9007199254740992.0 * 2 - 1));
  m->arrays[m->n_arrays++] = a;
  return a;
}

void ref_train_model_free(ref_train_model *m) {
  for (size_t i = 0; i < m->n_arrays; i++) free(m->arrays[i]);
  memset(m, 0, sizeof(*m));
}

int ref_train_model_write(ref_train_model *m, const char *path, uint32_t seed) {
  memset(m, 0, sizeof(*m));
  const size_t L = 2, C = 32, H = 4, Hkv = 2, D = 8, F = 64, V = REF_TRAIN_VOCAB;
  ref_llama_config cfg = {L, C, H, Hkv, D, F, V, 10000.0, 1e-5, 1};
  m->cfg = cfg;
  uint64_t s = seed;
  float *embd = ref_array(m, V * C, 1.0, 0, &s), *onorm = ref_array(m, C, 0.1, 1.0, &s);
  if (!embd || !onorm) return -1;
  for (size_t l = 0; l < L; l++) {
    ref_llama_layer *y = &m->layers[l];
    double a = 1.0 / sqrt((double)C), b = 1.0 / sqrt((double)F);
    y->attn_norm = ref_array(m, C, 0.1, 1.0, &s);
    y->wq = ref_array(m, H * D * C, a, 0, &s);
    y->wk = ref_array(m, Hkv * D * C, a, 0, &s);
    y->wv = ref_array(m, Hkv * D * C, a, 0, &s);
    y->wo = ref_array(m, C * H * D, a, 0, &s);
    y->ffn_norm = ref_array(m, C, 0.1, 1.0, &s);
    y->wgate = ref_array(m, F * C, a, 0, &s);
    y->wup = ref_array(m, F * C, a, 0, &s);
    y->wdown = ref_array(m, C * F, b, 0, &s);
    if (!y->wdown) return -1;
  }
  m->w.embd = embd;
  m->w.out_norm = onorm;
  m->w.output = NULL;
  m->w.layers = m->layers;
  m->w.interleaved = 1;

  /* tokens: the 256 byte characters, then the two merges */
  char *tok_text = malloc(V * 8);
  const char *tokens[REF_TRAIN_VOCAB];
  if (!tok_text) return -1;
  for (unsigned b = 0; b < 256; b++) {
    char *p = tok_text + b * 8;
    p[ref_utf8(ref_byte_char(b), p)] = '\0';
    tokens[b] = p;
  }
  char *g = tok_text + 256 * 8;
  snprintf(g, 8, "%sa", tokens[' ']);
  snprintf(g + 8, 8, "%sb", tokens[' ']);
  tokens[256] = g;
  tokens[257] = g + 8;
  char merges_text[2][16];
  snprintf(merges_text[0], 16, "%s a", tokens[' ']);
  snprintf(merges_text[1], 16, "%s b", tokens[' ']);
  const char *merges[2] = {merges_text[0], merges_text[1]};

  ref_gguf_writer w;
  ref_gguf_init(&w, 3, 32);
  ref_gguf_kv_str(&w, "general.architecture", "llama");
  ref_gguf_kv_str(&w, "general.name", "lamp-tiny-test");
  ref_gguf_kv_u32(&w, "llama.block_count", (uint32_t)L);
  ref_gguf_kv_u32(&w, "llama.embedding_length", (uint32_t)C);
  ref_gguf_kv_u32(&w, "llama.attention.head_count", (uint32_t)H);
  ref_gguf_kv_u32(&w, "llama.attention.head_count_kv", (uint32_t)Hkv);
  ref_gguf_kv_u32(&w, "llama.feed_forward_length", (uint32_t)F);
  ref_gguf_kv_u32(&w, "llama.context_length", 512);
  ref_gguf_kv_f32(&w, "llama.rope.freq_base", 10000.0f);
  ref_gguf_kv_f32(&w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  ref_gguf_kv_str(&w, "tokenizer.ggml.model", "gpt2");
  ref_gguf_kv_str(&w, "tokenizer.ggml.pre", "gpt2");
  ref_gguf_kv_str_array(&w, "tokenizer.ggml.tokens", tokens, V);
  ref_gguf_kv_str_array(&w, "tokenizer.ggml.merges", merges, 2);
  uint64_t ne_emb[2] = {C, V}, ne_c[1] = {C};
  ref_gguf_tensor(&w, "token_embd.weight", 2, ne_emb, REF_F32, embd, V * C * 4);
  ref_gguf_tensor(&w, "output_norm.weight", 1, ne_c, REF_F32, onorm, C * 4);
  static const char *names[9] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                 "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"};
  uint64_t shapes[9][2] = {{C, 1}, {C, H * D}, {C, Hkv * D}, {C, Hkv * D}, {H * D, C},
                           {C, 1}, {C, F}, {C, F}, {F, C}};
  for (size_t l = 0; l < L; l++) {
    const ref_llama_layer *y = &m->layers[l];
    const float *data[9] = {y->attn_norm, y->wq, y->wk, y->wv, y->wo,
                            y->ffn_norm, y->wgate, y->wup, y->wdown};
    for (size_t t = 0; t < 9; t++) {
      char name[64];
      snprintf(name, sizeof(name), "blk.%zu.%s.weight", l, names[t]);
      uint32_t nd = shapes[t][1] == 1 ? 1 : 2;
      ref_gguf_tensor(&w, name, nd, shapes[t], REF_F32, data[t],
                      (size_t)(shapes[t][0] * shapes[t][1] * 4));
    }
  }
  ref_buf file = {0};
  ref_gguf_finish(&w, &file);
  free(tok_text);
  FILE *f = fopen(path, "wb");
  int rc = f && fwrite(file.data, 1, file.size, f) == file.size ? 0 : -1;
  if (f && fclose(f) != 0) rc = -1;
  ref_buf_free(&file);
  return rc;
}

int ref_train_write_split(const char *path, size_t n, uint64_t seed) {
  size_t cap = n * 64 + 64, at = 0;
  char *text = malloc(cap);
  if (!text) return -1;
  at += (size_t)snprintf(text, cap, "sentence\tlabel\n");
  for (size_t i = 0; i < n; i++) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    int label = (seed >> 33) % 4 != 0;
    size_t words = 2 + (seed >> 40) % 3;
    for (size_t w = 0; w < words; w++) {
      for (size_t c = 0; c < 3 + (seed >> (20 + w)) % 3; c++)
        text[at++] = (char)('c' + (seed >> (3 * c + 7 * w)) % 20);
      text[at++] = ' ';
    }
    at += (size_t)snprintf(text + at, cap - at, "%s \t%d\n", label ? "up" : "down", label);
  }
  text[at] = '\0';
  int rc = ref_train_write_file(path, text);
  free(text);
  return rc;
}

float *ref_train_read_tensors(const char *path, const char *prefix, size_t *count) {
  lamp_safetensors *st = NULL;
  if (lamp_safetensors_open(NULL, path, &st) != LAMP_OK) return NULL;
  size_t total = 0, n = lamp_safetensors_count(st);
  const lamp_st_tensor *t = lamp_safetensors_tensors(st);
  for (size_t i = 0; i < n; i++)
    if (!prefix || !strncmp(t[i].name, prefix, strlen(prefix))) total += t[i].numel;
  float *all = malloc((total ? total : 1) * sizeof(float)), *p = all;
  for (size_t i = 0; all && i < n; i++) {
    if (prefix && strncmp(t[i].name, prefix, strlen(prefix))) continue;
    if (t[i].dtype != LAMP_ST_F32 || lamp_safetensors_read(st, &t[i], p, t[i].size) != LAMP_OK) {
      free(all);
      all = NULL;
      break;
    }
    p += t[i].numel;
  }
  lamp_safetensors_release(st);
  *count = total;
  return all;
}

int ref_train_write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t n = strlen(text);
  int rc = fwrite(text, 1, n, f) == n ? 0 : -1;
  if (fclose(f) != 0) rc = -1;
  return rc;
}

char *ref_train_read_file(const char *path, size_t *size) {
  char *data = NULL;
  size_t n = 0;
  if (lamp__read_file(NULL, path, &data, &n) != LAMP_OK) return NULL;
  if (size) *size = n;
  return data;
}

const char *ref_train_lamp_path(void) {
  static char path[PATH_MAX];
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return NULL;
  exe[n] = '\0';
  for (int up = 0; up < 2; up++) {
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = '\0';
  }
  if (snprintf(path, sizeof(path), "%s/lamp", exe) >= (int)sizeof(path)) return NULL;
  return access(path, X_OK) == 0 ? path : NULL;
}

int ref_train_run(const char *log, const char *args) {
  const char *lamp = ref_train_lamp_path();
  if (!lamp) return -1;
  size_t n = strlen(lamp) + strlen(args) + strlen(log) + 32;
  char *cmd = malloc(n);
  if (!cmd) return -1;
  snprintf(cmd, n, "%s %s > %s 2>&1", lamp, args, log);
  int st = system(cmd);
  free(cmd);
  if (st == -1 || !WIFEXITED(st)) return -1;
  return WEXITSTATUS(st);
}
