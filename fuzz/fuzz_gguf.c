/* GGUF reader: lamp_gguf_open_memory on the input, then every accessor on every key and
 * tensor, each decodable tensor dequantised, the model's hyper-parameters, and the tokenizer
 * from the metadata with an encode/decode round trip. The input's first bytes are also
 * decoded as raw blocks of a type they choose (lamp_ggml_dequantize). */
#include "fuzz_common.h"

#define MAX_KEYS 4096
#define MAX_TENSORS 1024
#define MAX_ELEMENTS (1u << 18) /* decode tensors up to 1 MiB of floats */
#define MAX_ARRAY_PROBES 64

static void probe_key(lamp_context *ctx, lamp_gguf *g, size_t i) {
  lamp_gguf_key_info info;
  if (lamp_gguf_key_at(ctx, g, i, &info) != LAMP_OK) {
    fuzz_message();
    return;
  }
  FUZZ_CHECK(info.key != NULL);
  size_t found = (size_t)-1;
  lamp_status st = lamp_gguf_find_key(ctx, g, info.key, &found);
  /* keys are unique: the lookup finds a key spelt the same */
  if (st == LAMP_OK) {
    lamp_gguf_key_info other;
    FUZZ_CHECK(lamp_gguf_key_at(ctx, g, found, &other) == LAMP_OK && !strcmp(other.key, info.key));
  } else {
    fuzz_message();
  }
  (void)lamp_gguf_type_name(info.type);
  int64_t iv;
  double fv;
  int bv;
  const char *sv;
  size_t sl;
  if (lamp_gguf_get_int(ctx, g, info.key, &iv) != LAMP_OK) fuzz_message();
  if (lamp_gguf_get_float(ctx, g, info.key, &fv) != LAMP_OK) fuzz_message();
  if (lamp_gguf_get_bool(ctx, g, info.key, &bv) != LAMP_OK) fuzz_message();
  if (lamp_gguf_get_string(ctx, g, info.key, &sv, &sl) == LAMP_OK) {
    volatile char sink = 0;
    for (size_t k = 0; k < sl; k++) sink ^= sv[k]; /* the string lies inside the file */
    (void)sink;
  } else {
    fuzz_message();
  }
  if (info.type != LAMP_GGUF_ARRAY) return;
  (void)lamp_gguf_type_name(info.array_type);
  uint64_t probes[MAX_ARRAY_PROBES + 3];
  size_t n = 0;
  for (uint64_t j = 0; j < info.count && n < MAX_ARRAY_PROBES; j++) probes[n++] = j;
  if (info.count) probes[n++] = info.count - 1;
  probes[n++] = info.count; /* one past the end */
  probes[n++] = UINT64_MAX;
  for (size_t k = 0; k < n; k++) {
    if (lamp_gguf_array_int(ctx, g, i, probes[k], &iv) != LAMP_OK) fuzz_message();
    if (lamp_gguf_array_float(ctx, g, i, probes[k], &fv) != LAMP_OK) fuzz_message();
    if (lamp_gguf_array_string(ctx, g, i, probes[k], &sv, &sl) == LAMP_OK) {
      volatile char sink = 0;
      for (size_t c = 0; c < sl; c++) sink ^= sv[c];
      (void)sink;
    } else {
      fuzz_message();
    }
  }
}

static void probe_tensor(lamp_context *ctx, lamp_gguf *g, size_t i, const uint8_t *base,
                         size_t size) {
  lamp_gguf_tensor_info info;
  if (lamp_gguf_tensor_at(ctx, g, i, &info) != LAMP_OK) {
    fuzz_message();
    return;
  }
  /* after a successful open every tensor lies inside the file */
  FUZZ_CHECK(info.offset <= size && info.size <= size - info.offset);
  FUZZ_CHECK((const uint8_t *)info.data == base + info.offset);
  FUZZ_CHECK(info.n_dims <= LAMP_GGUF_MAX_DIMS);
  lamp_gguf_tensor_info again;
  if (lamp_gguf_find_tensor(ctx, g, info.name, &again) == LAMP_OK)
    FUZZ_CHECK(again.offset == info.offset && again.size == info.size);
  else
    fuzz_message();
  (void)lamp_ggml_type_name(info.type);
  (void)lamp_ggml_block_elements(info.type);
  (void)lamp_ggml_block_bytes(info.type);
  if (!lamp_ggml_type_decodable(info.type) || info.numel > MAX_ELEMENTS) {
    float one;
    if (lamp_gguf_tensor_read_f32(ctx, g, &info, &one, 1) != LAMP_OK) fuzz_message();
    return;
  }
  size_t n = (size_t)info.numel;
  float *dst = malloc((n ? n : 1) * sizeof(float));
  if (!dst) return;
  if (lamp_gguf_tensor_read_f32(ctx, g, &info, dst, n) != LAMP_OK) fuzz_message();
  if (n && lamp_gguf_tensor_read_f32(ctx, g, &info, dst, n - 1) == LAMP_OK)
    FUZZ_CHECK(!"a read into too small a buffer succeeded");
  free(dst);
}

static int has_every_byte(lamp_tokenizer *tok);

static void probe_tokenizer(lamp_context *ctx, lamp_gguf *g, const uint8_t *data, size_t size) {
  lamp_tokenizer *tok = NULL;
  if (lamp_tokenizer_from_gguf(ctx, g, &tok) != LAMP_OK) {
    fuzz_message();
    return;
  }
  (void)lamp_tokenizer_vocab_size(tok);
  (void)lamp_tokenizer_pretokenizer(tok);
  (void)lamp_tokenizer_get_special(tok);
  static const char fixed[] = "Hello world! 12345 \xc3\xa9t\xc3\xa9 <|im_start|>user\n\xff\xfe  x";
  const char *texts[2] = {fixed, (const char *)data};
  size_t lens[2] = {sizeof(fixed) - 1, size < 256 ? size : 256};
  int full = has_every_byte(tok);
  for (int k = 0; k < 2; k++) {
    /* SentencePiece decodes a "▁" of the text as a space */
    int exact = full && !(lamp_tokenizer_get_model(tok) == LAMP_TOKENIZER_LLAMA &&
                          fuzz_has_space_mark(texts[k], lens[k]));
    size_t count = 0;
    if (lamp_tokenizer_encode(ctx, tok, texts[k], lens[k], LAMP_TOKENIZE_PARSE_SPECIAL, NULL, 0,
                              &count) != LAMP_OK) {
      fuzz_message();
      continue;
    }
    int32_t *ids = malloc((count ? count : 1) * sizeof(int32_t));
    if (!ids) break;
    size_t again = 0;
    lamp_status st = lamp_tokenizer_encode(ctx, tok, texts[k], lens[k],
                                           LAMP_TOKENIZE_PARSE_SPECIAL, ids, count, &again);
    FUZZ_CHECK(st == LAMP_OK && again == count);
    size_t length = 0;
    st = lamp_tokenizer_decode(ctx, tok, ids, count, 0, NULL, 0, &length);
    FUZZ_CHECK(st == LAMP_OK);
    char *back = malloc(length + 1);
    if (back) {
      st = lamp_tokenizer_decode(ctx, tok, ids, count, 0, back, length + 1, &length);
      FUZZ_CHECK(st == LAMP_OK);
      if (exact) FUZZ_CHECK(length == lens[k] && !memcmp(back, texts[k], length));
      free(back);
    }
    free(ids);
  }
  lamp_tokenizer_release(tok);
}

/* 1 when every byte has a token of its own, so that every text must round-trip exactly. */
static int has_every_byte(lamp_tokenizer *tok) {
  int32_t id;
  lamp_token_type type;
  const char *text;
  size_t tl;
  if (lamp_tokenizer_get_model(tok) == LAMP_TOKENIZER_LLAMA) return fuzz_spm_has_every_byte(tok);
  /* GPT-2's byte-level alphabet: printable Latin-1 stand for themselves, the rest U+0100 on */
  int n = 0;
  for (int b = 0; b < 256; b++) {
    int self = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
    unsigned cp = self ? (unsigned)b : 0x100u + (unsigned)n++;
    char s[3];
    size_t len;
    if (cp < 0x80) {
      s[0] = (char)cp;
      len = 1;
    } else {
      s[0] = (char)(0xc0 | (cp >> 6));
      s[1] = (char)(0x80 | (cp & 0x3f));
      len = 2;
    }
    if (lamp_tokenizer_find(NULL, tok, s, len, &id) != LAMP_OK) return 0;
    if (lamp_tokenizer_token(NULL, tok, id, &text, &tl, &type) != LAMP_OK ||
        type != LAMP_TOKEN_NORMAL)
      return 0;
  }
  return 1;
}

static void probe_raw_blocks(lamp_context *ctx, const uint8_t *data, size_t size) {
  if (size < 2) return;
  lamp_ggml_type type = (lamp_ggml_type)(data[0] % 40);
  size_t be = lamp_ggml_block_elements(type), bb = lamp_ggml_block_bytes(type);
  if (!be || !bb) return;
  size_t blocks = (size - 1) / bb;
  if (blocks > 64) blocks = 64;
  size_t count = blocks * be;
  float *dst = malloc((count ? count : 1) * sizeof(float));
  if (!dst) return;
  if (lamp_ggml_dequantize(ctx, type, data + 1, size - 1, dst, count) != LAMP_OK) fuzz_message();
  /* a count that is not a whole number of blocks, and a source too short */
  if (count && lamp_ggml_dequantize(ctx, type, data + 1, size - 1, dst, count - 1) != LAMP_OK)
    fuzz_message();
  if (count && lamp_ggml_dequantize(ctx, type, data + 1, blocks * bb - 1, dst, count) != LAMP_OK)
    fuzz_message();
  free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lamp_context *ctx = fuzz_ctx();
  probe_raw_blocks(ctx, data, size);
  lamp_gguf *g = NULL;
  if (lamp_gguf_open_memory(ctx, data, size, &g) != LAMP_OK) {
    FUZZ_CHECK(g == NULL);
    fuzz_message();
    return 0;
  }
  (void)lamp_gguf_version(g);
  (void)lamp_gguf_alignment(g);
  FUZZ_CHECK(lamp_gguf_data_offset(g) <= size || lamp_gguf_tensor_count(g) == 0);
  size_t nk = lamp_gguf_key_count(g), nt = lamp_gguf_tensor_count(g);
  for (size_t i = 0; i < nk && i < MAX_KEYS; i++) probe_key(ctx, g, i);
  lamp_gguf_key_info ki;
  if (lamp_gguf_key_at(ctx, g, nk, &ki) == LAMP_OK) FUZZ_CHECK(!"key_at past the end");
  for (size_t i = 0; i < nt && i < MAX_TENSORS; i++) probe_tensor(ctx, g, i, data, size);
  lamp_gguf_tensor_info ti;
  if (lamp_gguf_tensor_at(ctx, g, nt, &ti) == LAMP_OK) FUZZ_CHECK(!"tensor_at past the end");
  lamp_model_config cfg;
  if (lamp_model_config_from_gguf(ctx, g, &cfg) != LAMP_OK) fuzz_message();
  probe_tokenizer(ctx, g, data, size);
  lamp_gguf_release(g);
  return 0;
}
