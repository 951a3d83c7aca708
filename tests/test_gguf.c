/* GGUF reader: files written by the tests themselves (tests/ref_gguf.c), dequantisation against
 * a reference quantiser and a second decoder, metadata access, hyper-parameters, and truncated,
 * hostile and randomly corrupted files. The real model is checked when scripts/fetch-model.sh
 * has fetched it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "io/gguf_internal.h"
#include "ref.h"
#include "ref_gguf.h"

static const int all_types[] = {REF_F32, REF_F16, REF_BF16, REF_Q4_0, REF_Q4_1, REF_Q5_0,
                                REF_Q5_1, REF_Q8_0, REF_Q4_K, REF_Q5_K, REF_Q6_K};
#define N_TYPES (sizeof(all_types) / sizeof(all_types[0]))

static uint64_t rng_state;
static uint64_t rng(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Path of a file next to this source: tests/<rel> or, with "../", the repository. */
static void source_path(char *out, size_t size, const char *rel) {
  const char *slash = strrchr(__FILE__, '/');
  int dir = slash ? (int)(slash - __FILE__) : 1;
  snprintf(out, size, "%.*s/%s", dir, slash ? __FILE__ : ".", rel);
}

static lamp_gguf *open_mem_ok(lamp_context *ctx, const ref_buf *file) {
  lamp_gguf *g = NULL;
  lamp_status st = lamp_gguf_open_memory(ctx, file->data, file->size, &g);
  if (st != LAMP_OK) fail_msg("open: %s: %s", lamp_status_name(st), lamp_context_error(ctx));
  return g;
}

/* Values with varied scales and signs per block, and some blocks offset away from zero. */
static void fill_values(float *x, size_t n, uint64_t seed) {
  ref_fill_uniform(x, n, seed, -1, 1);
  for (size_t i = 0; i < n; i++) {
    size_t blk = i / 32;
    x[i] = x[i] * ldexpf(1.0f, (int)(blk % 7) - 3) + (blk % 3 == 1 ? 0.75f : 0.0f);
  }
}

static void test_gguf_dequantise_quantised(void **state) {
  lamp_context *ctx = *state;
  const size_t cols = 512, rows = 3, n = cols * rows;
  float *x = malloc(n * sizeof(float));
  double *recon[N_TYPES], *bound[N_TYPES];
  void *data[N_TYPES];
  assert_non_null(x);
  fill_values(x, n, 11);
  ref_gguf_writer w;
  ref_gguf_init(&w, 3, 32);
  ref_gguf_kv_str(&w, "general.architecture", "llama");
  for (size_t t = 0; t < N_TYPES; t++) {
    int type = all_types[t];
    size_t bytes = n / ref_block_elements(type) * ref_block_bytes(type);
    data[t] = malloc(bytes);
    recon[t] = malloc(n * sizeof(double));
    bound[t] = malloc(n * sizeof(double));
    assert_true(data[t] && recon[t] && bound[t]);
    ref_quantize(type, x, n, data[t], recon[t], bound[t]);
    char name[32];
    snprintf(name, sizeof(name), "t.%s", lamp_ggml_type_name((lamp_ggml_type)type));
    uint64_t ne[2] = {cols, rows};
    ref_gguf_tensor(&w, name, 2, ne, (uint32_t)type, data[t], bytes);
  }
  ref_buf file = {0};
  ref_gguf_finish(&w, &file);

  /* Through a real file (mmap) and through memory. */
  char path[] = "/tmp/lamp-test-gguf-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, file.data, file.size), (ssize_t)file.size);
  close(fd);
  for (int via = 0; via < 2; via++) {
    lamp_gguf *g = NULL;
    if (via == 0) {
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_open(ctx, path, &g));
    } else {
      g = open_mem_ok(ctx, &file);
    }
    assert_int_equal(lamp_gguf_version(g), 3);
    assert_int_equal(lamp_gguf_tensor_count(g), N_TYPES);
    assert_int_equal(lamp_gguf_data_offset(g) % 32, 0);
    float *y = malloc(n * sizeof(float));
    double *second = malloc(n * sizeof(double));
    assert_true(y && second);
    for (size_t t = 0; t < N_TYPES; t++) {
      int type = all_types[t];
      char name[32];
      snprintf(name, sizeof(name), "t.%s", lamp_ggml_type_name((lamp_ggml_type)type));
      lamp_gguf_tensor_info ti;
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_find_tensor(ctx, g, name, &ti));
      assert_int_equal(ti.type, type);
      assert_int_equal(ti.n_dims, 2);
      assert_int_equal(ti.ne[0], cols);
      assert_int_equal(ti.ne[1], rows);
      assert_int_equal(ti.numel, n);
      assert_int_equal(ti.offset % 32, 0);
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_tensor_read_f32(ctx, g, &ti, y, n));
      ref_dequantize(type, data[t], n, second);
      for (size_t i = 0; i < n; i++) {
        /* The stored integers and scales decode exactly (every product fits in a float). */
        if (y[i] != (float)recon[t][i] || y[i] != (float)second[i])
          fail_msg("%s element %zu: got %.9g, quantiser %.9g, reference decoder %.9g", name, i,
                   y[i], recon[t][i], second[i]);
        double err = fabs((double)y[i] - x[i]);
        if (err > bound[t][i] * (1 + 1e-6) + ldexp(fabs(x[i]), -22))
          fail_msg("%s element %zu: |%.9g - %.9g| = %.3g exceeds the bound %.3g", name, i, y[i],
                   x[i], err, bound[t][i]);
      }
      if (type == REF_F32) assert_memory_equal(y, x, n * sizeof(float));
    }
    free(y);
    free(second);
    lamp_gguf_release(g);
  }
  unlink(path);
  ref_buf_free(&file);
  for (size_t t = 0; t < N_TYPES; t++) {
    free(data[t]);
    free(recon[t]);
    free(bound[t]);
  }
  free(x);
}

/* Random bit patterns in every block (all quant codes, signed scales), checked element by
 * element against the reference decoder. Scales are finite halves of moderate size. */
static void test_gguf_dequantise_random_blocks(void **state) {
  lamp_context *ctx = *state;
  rng_state = 77;
  const size_t n = 1024;
  for (size_t t = 0; t < N_TYPES; t++) {
    int type = all_types[t];
    size_t be = ref_block_elements(type), bb = ref_block_bytes(type), blocks = n / be;
    unsigned char *src = malloc(blocks * bb);
    float *y = malloc(n * sizeof(float));
    double *want = malloc(n * sizeof(double));
    assert_true(src && y && want);
    for (size_t i = 0; i < blocks * bb; i++) src[i] = (unsigned char)rng();
    /* Positions of half-precision fields per block, rewritten to finite moderate values. */
    size_t h_at[2] = {0, 0}, n_h = 0;
    switch (type) {
      case REF_Q4_0: case REF_Q5_0: case REF_Q8_0: h_at[0] = 0, n_h = 1; break;
      case REF_Q4_1: case REF_Q5_1: case REF_Q4_K: case REF_Q5_K: h_at[0] = 0, h_at[1] = 2, n_h = 2; break;
      case REF_Q6_K: h_at[0] = 208, n_h = 1; break;
    }
    for (size_t blk = 0; blk < blocks; blk++)
      for (size_t k = 0; k < n_h; k++) {
        uint16_t h = (uint16_t)((rng() & 0x83FF) | ((5 + rng() % 16) << 10));
        src[blk * bb + h_at[k]] = (unsigned char)h;
        src[blk * bb + h_at[k] + 1] = (unsigned char)(h >> 8);
      }
    if (type == REF_F16 || type == REF_BF16)
      for (size_t i = 0; i < n; i++) src[2 * i + 1] &= 0xBF; /* exponent below all-ones */
    if (type == REF_F32)
      for (size_t i = 0; i < n; i++) src[4 * i + 3] &= 0xBF;
    LAMP_OK_OR_FAIL(ctx, lamp_ggml_dequantize(ctx, (lamp_ggml_type)type, src, blocks * bb, y, n));
    ref_dequantize(type, src, n, want);
    for (size_t i = 0; i < n; i++)
      if (y[i] != (float)want[i])
        fail_msg("%s element %zu: got %.9g, reference %.9g",
                 lamp_ggml_type_name((lamp_ggml_type)type), i, y[i], want[i]);
    /* A source too small for the count is refused. */
    assert_int_equal(lamp_ggml_dequantize(ctx, (lamp_ggml_type)type, src, blocks * bb - 1, y, n),
                     LAMP_ERR_INVALID_ARGUMENT);
    free(src);
    free(y);
    free(want);
  }
  float y[256];
  unsigned char src[84] = {0};
  assert_int_equal(lamp_ggml_dequantize(ctx, LAMP_GGML_Q2_K, src, sizeof(src), y, 256),
                   LAMP_ERR_UNSUPPORTED);
  assert_non_null(strstr(lamp_context_error(ctx), "Q2_K"));
  assert_int_equal(lamp_ggml_dequantize(ctx, LAMP_GGML_Q8_0, src, sizeof(src), y, 33),
                   LAMP_ERR_INVALID_ARGUMENT);
}

/* A file with every metadata value type, scalar and array. */
static void write_metadata_file(ref_buf *file, uint32_t version, size_t alignment) {
  ref_gguf_writer w;
  ref_gguf_init(&w, version, alignment);
  ref_gguf_key(&w, "v.u8", REF_GGUF_UINT8), ref_buf_u8(&w.kv, 200);
  ref_gguf_key(&w, "v.i8", REF_GGUF_INT8), ref_buf_u8(&w.kv, 0x80);
  ref_gguf_key(&w, "v.u16", REF_GGUF_UINT16), ref_buf_u16(&w.kv, 65000);
  ref_gguf_key(&w, "v.i16", REF_GGUF_INT16), ref_buf_u16(&w.kv, (uint16_t)-1234);
  ref_gguf_kv_u32(&w, "v.u32", 4000000000u);
  ref_gguf_key(&w, "v.i32", REF_GGUF_INT32), ref_buf_u32(&w.kv, (uint32_t)-70000);
  ref_gguf_key(&w, "v.u64", REF_GGUF_UINT64), ref_buf_u64(&w.kv, 1ull << 40);
  ref_gguf_key(&w, "v.u64big", REF_GGUF_UINT64), ref_buf_u64(&w.kv, ~0ull);
  ref_gguf_key(&w, "v.i64", REF_GGUF_INT64), ref_buf_u64(&w.kv, (uint64_t)-5);
  ref_gguf_kv_f32(&w, "v.f32", 0.25f);
  ref_gguf_key(&w, "v.f64", REF_GGUF_FLOAT64), ref_buf_f64(&w.kv, -1.5e100);
  ref_gguf_kv_bool(&w, "v.bool", 1);
  ref_gguf_kv_str(&w, "v.str", "héllo");
  ref_gguf_kv_str(&w, "v.empty", "");
  static const char *const strs[] = {"a", "", "ccc"};
  ref_gguf_kv_str_array(&w, "a.str", strs, 3);
  static const int32_t ints[] = {-1, 0, 7};
  ref_gguf_kv_i32_array(&w, "a.i32", ints, 3);
  ref_gguf_key(&w, "a.f64", REF_GGUF_ARRAY), ref_buf_u32(&w.kv, REF_GGUF_FLOAT64),
      ref_buf_u64(&w.kv, 2), ref_buf_f64(&w.kv, 1.0), ref_buf_f64(&w.kv, -2.0);
  ref_gguf_key(&w, "a.bool", REF_GGUF_ARRAY), ref_buf_u32(&w.kv, REF_GGUF_BOOL),
      ref_buf_u64(&w.kv, 2), ref_buf_u8(&w.kv, 0), ref_buf_u8(&w.kv, 1);
  ref_gguf_key(&w, "a.empty", REF_GGUF_ARRAY), ref_buf_u32(&w.kv, REF_GGUF_UINT8),
      ref_buf_u64(&w.kv, 0);
  if (alignment != 32) ref_gguf_kv_u32(&w, "general.alignment", (uint32_t)alignment);
  static float f[64];
  for (int i = 0; i < 64; i++) f[i] = (float)i;
  uint64_t ne1[1] = {64}, ne3[3] = {2, 4, 8}, ne4[4] = {4, 2, 2, 2};
  ref_gguf_tensor(&w, "w.vec", 1, ne1, REF_F32, f, sizeof(f));
  ref_gguf_tensor(&w, "w.cube", 3, ne3, REF_F32, f, sizeof(f));
  ref_gguf_tensor(&w, "w.4d", 4, ne4, REF_F32, f, 32 * 4);
  ref_gguf_finish(&w, file);
}

static void test_gguf_metadata(void **state) {
  lamp_context *ctx = *state;
  for (uint32_t version = 2; version <= 3; version++)
    for (size_t alignment = 32; alignment <= 64; alignment *= 2) {
      ref_buf file = {0};
      write_metadata_file(&file, version, alignment);
      lamp_gguf *g = open_mem_ok(ctx, &file);
      assert_int_equal(lamp_gguf_version(g), version);
      assert_int_equal(lamp_gguf_alignment(g), alignment);
      assert_int_equal(lamp_gguf_data_offset(g) % alignment, 0);
      int64_t i;
      double d;
      int b;
      const char *s;
      size_t len, idx;
      static const struct { const char *key; int64_t value; } ints[] = {
          {"v.u8", 200}, {"v.i8", -128}, {"v.u16", 65000}, {"v.i16", -1234},
          {"v.u32", 4000000000ll}, {"v.i32", -70000}, {"v.u64", 1ll << 40}, {"v.i64", -5}};
      for (size_t k = 0; k < sizeof(ints) / sizeof(ints[0]); k++) {
        LAMP_OK_OR_FAIL(ctx, lamp_gguf_get_int(ctx, g, ints[k].key, &i));
        assert_int_equal(i, ints[k].value);
      }
      assert_int_equal(lamp_gguf_get_int(ctx, g, "v.u64big", &i), LAMP_ERR_FORMAT);
      assert_non_null(strstr(lamp_context_error(ctx), "v.u64big"));
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_get_float(ctx, g, "v.f32", &d));
      assert_true(d == 0.25);
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_get_float(ctx, g, "v.f64", &d));
      assert_true(d == -1.5e100);
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_get_bool(ctx, g, "v.bool", &b));
      assert_int_equal(b, 1);
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_get_string(ctx, g, "v.str", &s, &len));
      assert_int_equal(len, strlen("héllo"));
      assert_memory_equal(s, "héllo", len);
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_get_string(ctx, g, "v.empty", &s, &len));
      assert_int_equal(len, 0);
      /* Wrong types name the key and the types; missing keys are NOT_FOUND. */
      assert_int_equal(lamp_gguf_get_string(ctx, g, "v.u8", &s, &len), LAMP_ERR_FORMAT);
      assert_non_null(strstr(lamp_context_error(ctx), "\"v.u8\" has type uint8"));
      assert_int_equal(lamp_gguf_get_int(ctx, g, "v.f32", &i), LAMP_ERR_FORMAT);
      assert_int_equal(lamp_gguf_get_int(ctx, g, "v.bool", &i), LAMP_ERR_FORMAT);
      assert_int_equal(lamp_gguf_get_float(ctx, g, "v.i32", &d), LAMP_ERR_FORMAT);
      assert_int_equal(lamp_gguf_get_bool(ctx, g, "v.u8", &b), LAMP_ERR_FORMAT);
      assert_int_equal(lamp_gguf_get_int(ctx, g, "a.i32", &i), LAMP_ERR_FORMAT);
      assert_non_null(strstr(lamp_context_error(ctx), "a.i32"));
      assert_int_equal(lamp_gguf_get_int(ctx, g, "no.such.key", &i), LAMP_ERR_NOT_FOUND);
      assert_non_null(strstr(lamp_context_error(ctx), "no.such.key"));
      /* Arrays. */
      lamp_gguf_key_info ki;
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_find_key(ctx, g, "a.str", &idx));
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_key_at(ctx, g, idx, &ki));
      assert_string_equal(ki.key, "a.str");
      assert_int_equal(ki.type, LAMP_GGUF_ARRAY);
      assert_int_equal(ki.array_type, LAMP_GGUF_STRING);
      assert_int_equal(ki.count, 3);
      static const char *const strs[] = {"a", "", "ccc"};
      for (uint64_t k = 0; k < 3; k++) {
        LAMP_OK_OR_FAIL(ctx, lamp_gguf_array_string(ctx, g, idx, k, &s, &len));
        assert_int_equal(len, strlen(strs[k]));
        assert_memory_equal(s, strs[k], len);
      }
      assert_int_equal(lamp_gguf_array_string(ctx, g, idx, 3, &s, &len), LAMP_ERR_INVALID_ARGUMENT);
      assert_int_equal(lamp_gguf_array_int(ctx, g, idx, 0, &i), LAMP_ERR_FORMAT);
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_find_key(ctx, g, "a.i32", &idx));
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_array_int(ctx, g, idx, 0, &i));
      assert_int_equal(i, -1);
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_array_int(ctx, g, idx, 2, &i));
      assert_int_equal(i, 7);
      assert_int_equal(lamp_gguf_array_float(ctx, g, idx, 0, &d), LAMP_ERR_FORMAT);
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_find_key(ctx, g, "a.f64", &idx));
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_array_float(ctx, g, idx, 1, &d));
      assert_true(d == -2.0);
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_find_key(ctx, g, "a.bool", &idx));
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_array_int(ctx, g, idx, 1, &i));
      assert_int_equal(i, 1);
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_find_key(ctx, g, "a.empty", &idx));
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_key_at(ctx, g, idx, &ki));
      assert_int_equal(ki.count, 0);
      assert_int_equal(lamp_gguf_array_int(ctx, g, idx, 0, &i), LAMP_ERR_INVALID_ARGUMENT);
      assert_int_equal(lamp_gguf_key_at(ctx, g, 999, &ki), LAMP_ERR_INVALID_ARGUMENT);
      /* Tensors of 1, 3 and 4 dimensions. */
      lamp_gguf_tensor_info ti;
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_find_tensor(ctx, g, "w.cube", &ti));
      assert_int_equal(ti.n_dims, 3);
      assert_int_equal(ti.ne[2], 8);
      assert_int_equal(ti.ne[3], 1);
      assert_int_equal(ti.offset % alignment, 0);
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_find_tensor(ctx, g, "w.4d", &ti));
      assert_int_equal(ti.numel, 32);
      float y[64];
      LAMP_OK_OR_FAIL(ctx, lamp_gguf_tensor_read_f32(ctx, g, &ti, y, 64));
      for (int k = 0; k < 32; k++) assert_true(y[k] == (float)k);
      assert_int_equal(lamp_gguf_tensor_read_f32(ctx, g, &ti, y, 31), LAMP_ERR_INVALID_ARGUMENT);
      assert_int_equal(lamp_gguf_find_tensor(ctx, g, "w.none", &ti), LAMP_ERR_NOT_FOUND);
      assert_non_null(strstr(lamp_context_error(ctx), "w.none"));
      lamp_gguf_release(g);
      ref_buf_free(&file);
    }
}

static void write_llama_file(ref_buf *file, int heads, int kv_heads, int with_ff) {
  ref_gguf_writer w;
  ref_gguf_init(&w, 3, 32);
  ref_gguf_kv_str(&w, "general.architecture", "llama");
  ref_gguf_kv_u32(&w, "llama.block_count", 30);
  ref_gguf_kv_u32(&w, "llama.context_length", 8192);
  ref_gguf_kv_u32(&w, "llama.embedding_length", 576);
  if (with_ff) ref_gguf_kv_u32(&w, "llama.feed_forward_length", 1536);
  ref_gguf_kv_u32(&w, "llama.attention.head_count", (uint32_t)heads);
  ref_gguf_kv_u32(&w, "llama.attention.head_count_kv", (uint32_t)kv_heads);
  ref_gguf_kv_f32(&w, "llama.rope.freq_base", 100000.0f);
  ref_gguf_kv_f32(&w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  static const char *const toks[] = {"a", "b", "c"};
  ref_gguf_kv_str_array(&w, "tokenizer.ggml.tokens", toks, 3);
  ref_gguf_finish(&w, file);
}

static void test_gguf_llama_hparams(void **state) {
  lamp_context *ctx = *state;
  ref_buf file = {0};
  write_llama_file(&file, 9, 3, 1);
  lamp_gguf *g = open_mem_ok(ctx, &file);
  lamp__llama_hparams hp;
  LAMP_OK_OR_FAIL(ctx, lamp__gguf_llama_hparams(ctx, g, &hp));
  assert_string_equal(hp.architecture, "llama");
  assert_int_equal(hp.n_layers, 30);
  assert_int_equal(hp.n_embd, 576);
  assert_int_equal(hp.n_heads, 9);
  assert_int_equal(hp.n_kv_heads, 3);
  assert_int_equal(hp.head_dim, 64);
  assert_int_equal(hp.rope_dim, 64);
  assert_int_equal(hp.n_ff, 1536);
  assert_int_equal(hp.n_ctx, 8192);
  assert_int_equal(hp.n_vocab, 3); /* no llama.vocab_size: the token list's length */
  assert_true(hp.rope_freq_base == 100000.0f);
  assert_true(hp.norm_eps == 1e-5f);
  lamp_gguf_release(g);
  ref_buf_free(&file);

  write_llama_file(&file, 9, 3, 0);
  g = open_mem_ok(ctx, &file);
  assert_int_equal(lamp__gguf_llama_hparams(ctx, g, &hp), LAMP_ERR_FORMAT);
  assert_non_null(strstr(lamp_context_error(ctx), "llama.feed_forward_length"));
  lamp_gguf_release(g);
  ref_buf_free(&file);

  write_llama_file(&file, 9, 4, 1);
  g = open_mem_ok(ctx, &file);
  assert_int_equal(lamp__gguf_llama_hparams(NULL, g, &hp), LAMP_ERR_FORMAT); /* status only */
  assert_int_equal(lamp__gguf_llama_hparams(ctx, g, &hp), LAMP_ERR_FORMAT);
  assert_non_null(strstr(lamp_context_error(ctx), "KV heads"));
  lamp_gguf_release(g);
  ref_buf_free(&file);
}

/* Opens a malloc'ed copy of exactly `size` bytes (so an overread is a heap error under
 * valgrind) and expects LAMP_ERR_FORMAT with `expect` in the message (when not NULL). */
static void expect_format_error(lamp_context *ctx, const unsigned char *data, size_t size,
                                const char *expect, const char *what) {
  unsigned char *copy = malloc(size ? size : 1);
  assert_non_null(copy);
  memcpy(copy, data, size);
  lamp_gguf *g = NULL;
  lamp_status st = lamp_gguf_open_memory(ctx, copy, size, &g);
  const char *err = lamp_context_error(ctx);
  if (st != LAMP_ERR_FORMAT) {
    lamp_gguf_release(g);
    free(copy);
    fail_msg("%s: expected LAMP_ERR_FORMAT, got %s (%s)", what, lamp_status_name(st), err);
  }
  assert_null(g);
  if (strncmp(err, "GGUF (memory): ", 15) != 0)
    fail_msg("%s: message \"%s\" does not name the file", what, err);
  if (expect && !strstr(err, expect)) fail_msg("%s: message \"%s\" lacks \"%s\"", what, err, expect);
  /* without a context: the same status, nothing else */
  assert_int_equal(lamp_gguf_open_memory(NULL, copy, size, &g), LAMP_ERR_FORMAT);
  assert_null(g);
  free(copy);
}

static void test_gguf_truncated(void **state) {
  lamp_context *ctx = *state;
  ref_buf file = {0};
  write_metadata_file(&file, 3, 32);
  for (size_t cut = 0; cut < file.size; cut++) {
    char what[64];
    snprintf(what, sizeof(what), "cut at %zu of %zu", cut, file.size);
    expect_format_error(ctx, file.data, cut, NULL, what);
  }
  ref_buf_free(&file);
}

/* Position of `s` in the file (the first occurrence), or fails. */
static size_t find(const ref_buf *file, const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0; i + n <= file->size; i++)
    if (memcmp(file->data + i, s, n) == 0) return i;
  fail_msg("\"%s\" not in the file", s);
  return 0;
}

static void put_le(unsigned char *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* A file with one metadata entry of every shape the hostile cases patch, and three tensors. */
static void write_patchable(ref_buf *file) {
  ref_gguf_writer w;
  ref_gguf_init(&w, 3, 32);
  ref_gguf_kv_str(&w, "general.name", "patchable");
  static const char *const strs[] = {"x", "y"};
  ref_gguf_kv_str_array(&w, "k.strs", strs, 2);
  static const int32_t ints[] = {1, 2};
  ref_gguf_kv_i32_array(&w, "k.ints", ints, 2);
  ref_gguf_kv_bool(&w, "k.flag", 1);
  static unsigned char q8[2 * 34];
  static float f[16];
  uint64_t ne_q[2] = {32, 2}, ne_f[1] = {16};
  ref_gguf_tensor(&w, "w.first", 2, ne_q, REF_Q8_0, q8, sizeof(q8));
  ref_gguf_tensor(&w, "w.second", 1, ne_f, REF_F32, f, sizeof(f));
  ref_gguf_tensor(&w, "w.third", 1, ne_f, REF_F32, f, sizeof(f));
  ref_gguf_finish(&w, file);
}

static void test_gguf_hostile(void **state) {
  lamp_context *ctx = *state;
  ref_buf base = {0};
  write_patchable(&base);
  {
    lamp_gguf *g = open_mem_ok(ctx, &base);
    lamp_gguf_release(g);
  }
  size_t name = find(&base, "general.name"), strs = find(&base, "k.strs");
  size_t ints = find(&base, "k.ints"), flag = find(&base, "k.flag");
  size_t first = find(&base, "w.first"), second = find(&base, "w.second");
  /* Field positions: a tensor entry is name, n_dims u32, dims u64 each, type u32, offset u64. */
  size_t first_dims = first + 7 + 4, first_type = first_dims + 16;
  size_t second_type = second + 8 + 4 + 8, second_off = second_type + 4;
  struct {
    const char *what, *expect;
    size_t at;
    uint64_t value;
    int bytes;
  } cases[] = {
      {"bad magic", "not a GGUF", 0, 0x46554748, 4},
      {"version 1", "version 1", 4, 1, 4},
      {"version 4", "version 4", 4, 4, 4},
      {"big-endian", "big-endian", 4, 0x03000000, 4},
      {"tensor count", "tensor count", 8, 1ull << 40, 8},
      {"metadata count", "metadata count", 16, ~0ull, 8},
      {"more metadata than present", NULL, 16, 5, 8},
      {"key length", "key length", name - 8, ~0ull, 8},
      {"key length past end", "key length", name - 8, 1ull << 20, 8},
      {"empty key", "empty key", name - 8, 0, 8},
      {"value type", "unknown value type 13", name + 12, 13, 4},
      {"string length", "general.name", name + 16, ~0ull - 3, 8},
      {"string array count", "k.strs", strs + 6 + 8, 1ull << 61, 8},
      {"string in array length", "k.strs", strs + 6 + 16, 1ull << 33, 8},
      {"array element type", "unknown array element type", strs + 6 + 4, 77, 4},
      {"nested array", "arrays of arrays", strs + 6 + 4, 9, 4},
      {"int array count", "k.ints", ints + 6 + 8, 1ull << 62, 8},
      {"bool value", "k.flag", flag + 10, 2, 1},
      {"tensor name length", "tensor 0: name length", first - 8, 1ull << 40, 8},
      {"tensor dims", "\"w.first\": 5 dimensions", first + 7, 5, 4},
      {"zero dim", "\"w.first\": dimension 1 is 0", first_dims + 8, 0, 8},
      {"huge dim", "\"w.first\": dimension 1", first_dims + 8, 1ull << 62, 8},
      {"tensor type", "\"w.first\": unknown tensor type 99", first_type, 99, 4},
      {"removed type", "unknown tensor type 4", first_type, 4, 4},
      {"block multiple", "\"w.first\": row length 32 is not a multiple", first_type, 12, 4},
      {"unaligned offset", "\"w.second\": offset 65", second_off, 65, 8},
      {"offset past end", "\"w.second\"", second_off, 1ull << 40, 8},
      {"offset wraps", "\"w.second\"", second_off, ~0ull - 31, 8},
      /* an offset that would take a pointer past the top of the address space: the reader
       * once formed it after the failed check (pointer overflow, reported by UBSan) */
      {"offset wraps memory", "\"w.second\"", second_off, 0xfffffff000000000ull, 8},
      {"overlap", "overlap", second_off, 0, 8},
      {"tensor row past end", "\"w.first\"", first_dims + 8, 1000, 8},
  };
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    ref_buf copy = {0};
    ref_buf_bytes(&copy, base.data, base.size);
    put_le(copy.data + cases[c].at, cases[c].value, cases[c].bytes);
    expect_format_error(ctx, copy.data, copy.size, cases[c].expect, cases[c].what);
    ref_buf_free(&copy);
  }
  ref_buf_free(&base);

  /* Cases easier to write than to patch. */
  ref_gguf_writer w;
  ref_buf file = {0};
  ref_gguf_init(&w, 3, 32);
  ref_gguf_kv_u32(&w, "dup", 1);
  ref_gguf_kv_u32(&w, "dup", 2);
  ref_gguf_finish(&w, &file);
  expect_format_error(ctx, file.data, file.size, "\"dup\" appears more than once", "duplicate key");

  static float f[8];
  uint64_t ne[1] = {8};
  const uint32_t bad_alignments[] = {0, 3, 48, 1u << 30};
  for (size_t k = 0; k < 4; k++) {
    ref_gguf_init(&w, 3, 32);
    ref_gguf_kv_u32(&w, "general.alignment", bad_alignments[k]);
    ref_gguf_tensor(&w, "t", 1, ne, REF_F32, f, sizeof(f));
    ref_gguf_finish(&w, &file);
    expect_format_error(ctx, file.data, file.size, "general.alignment", "bad alignment");
  }
  ref_gguf_init(&w, 3, 32);
  ref_gguf_kv_str(&w, "general.alignment", "32");
  ref_gguf_finish(&w, &file);
  expect_format_error(ctx, file.data, file.size, "general.alignment\" has type string",
                      "alignment type");

  ref_gguf_init(&w, 3, 32);
  ref_gguf_tensor(&w, "same", 1, ne, REF_F32, f, sizeof(f));
  ref_gguf_tensor(&w, "same", 1, ne, REF_F32, f, sizeof(f));
  ref_gguf_finish(&w, &file);
  expect_format_error(ctx, file.data, file.size, "\"same\" appears more than once",
                      "duplicate tensor");
  ref_buf_free(&file);

  /* Files that are not GGUF or not there. */
  static const unsigned char tiny[] = "GGUF";
  expect_format_error(ctx, tiny, 4, "too short", "4 bytes");
  lamp_gguf *g = NULL;
  assert_int_equal(lamp_gguf_open(ctx, "/nonexistent/model.gguf", &g), LAMP_ERR_IO);
  assert_null(g);
  assert_non_null(strstr(lamp_context_error(ctx), "/nonexistent/model.gguf"));
  assert_int_equal(lamp_gguf_open(NULL, "/nonexistent/model.gguf", &g), LAMP_ERR_IO);
  assert_int_equal(lamp_gguf_open(ctx, "/tmp", &g), LAMP_ERR_IO);
  assert_non_null(strstr(lamp_context_error(ctx), "not a regular file"));
  char path[] = "/tmp/lamp-test-empty-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(lamp_gguf_open(ctx, path, &g), LAMP_ERR_FORMAT);
  assert_non_null(strstr(lamp_context_error(ctx), "empty"));
  unlink(path);
}

/* Random corruption of the header and tables: every outcome is a clean open (then every tensor
 * reads or is refused as unsupported) or LAMP_ERR_FORMAT; nothing crashes or reads outside. */
static void test_gguf_fuzz(void **state) {
  lamp_context *ctx = *state;
  ref_buf base = {0};
  write_patchable(&base);
  lamp_gguf *g0 = open_mem_ok(ctx, &base);
  size_t header = (size_t)lamp_gguf_data_offset(g0);
  lamp_gguf_release(g0);
  rng_state = 1234;
  static const uint64_t specials[] = {0, 1, 0x7F, 0x80, 0xFF, 0xFFFFFFFFull, ~0ull, 1ull << 63};
  size_t opened = 0;
  for (int iter = 0; iter < 3000; iter++) {
    unsigned char *copy = malloc(base.size);
    assert_non_null(copy);
    memcpy(copy, base.data, base.size);
    int edits = 1 + (int)(rng() % 4);
    for (int e = 0; e < edits; e++) {
      size_t at = 8 + rng() % (header - 8);
      if (rng() % 2) {
        copy[at] = (unsigned char)rng();
      } else {
        int n = 1 << (rng() % 4);
        if (at + (size_t)n > base.size) n = 1;
        put_le(copy + at, specials[rng() % 8], n);
      }
    }
    lamp_gguf *g = NULL;
    lamp_status st = lamp_gguf_open_memory(NULL, copy, base.size, &g);
    if (st != LAMP_OK && st != LAMP_ERR_FORMAT)
      fail_msg("iteration %d: unexpected %s", iter, lamp_status_name(st));
    if (st == LAMP_OK) {
      opened++;
      for (size_t t = 0; t < lamp_gguf_tensor_count(g); t++) {
        lamp_gguf_tensor_info ti;
        assert_int_equal(lamp_gguf_tensor_at(NULL, g, t, &ti), LAMP_OK);
        assert_true(ti.offset + ti.size <= base.size);
        if (ti.numel > 4096) continue;
        float y[4096];
        lamp_status rs = lamp_gguf_tensor_read_f32(NULL, g, &ti, y, 4096);
        assert_true(rs == LAMP_OK || rs == LAMP_ERR_UNSUPPORTED);
      }
      lamp_gguf_release(g);
    }
    free(copy);
  }
  print_message("fuzz: %zu of 3000 corrupted files still opened (benign edits)\n", opened);
  ref_buf_free(&base);
}

/* The real model, when scripts/fetch-model.sh has fetched it: metadata, hyper-parameters and
 * dequantised tensors against tests/data/smollm2_tensors.txt (written by gguf-py's dequantiser,
 * tests/gen_gguf_ref.py). */
static void test_gguf_real_model(void **state) {
  lamp_context *ctx = *state;
  char path[1024], ref_path[1024];
  source_path(path, sizeof(path), "../models/SmolLM2-135M-Instruct.Q4_1.gguf");
  source_path(ref_path, sizeof(ref_path), "data/smollm2_tensors.txt");
  if (access(path, R_OK) != 0) {
    FIXTURE_NEED_FILE(path, "run scripts/fetch-model.sh");
  }
  lamp_gguf *g = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_gguf_open(ctx, path, &g));
  assert_int_equal(lamp_gguf_version(g), 3);
  assert_int_equal(lamp_gguf_tensor_count(g), 272);
  lamp__llama_hparams hp;
  LAMP_OK_OR_FAIL(ctx, lamp__gguf_llama_hparams(ctx, g, &hp));
  assert_int_equal(hp.n_layers, 30);
  assert_int_equal(hp.n_embd, 576);
  assert_int_equal(hp.n_heads, 9);
  assert_int_equal(hp.n_kv_heads, 3);
  assert_int_equal(hp.n_ff, 1536);
  assert_int_equal(hp.n_vocab, 49152);
  assert_int_equal(hp.n_ctx, 8192);
  assert_true(hp.rope_freq_base == 100000.0f);
  assert_true(hp.norm_eps == 1e-5f);
  FILE *f = fopen(ref_path, "r");
  assert_non_null(f);
  char tname[128], tname_type[16];
  double want_sum, want_sq, want_v[4];
  int checked = 0;
  while (fscanf(f, "%127s %15s %lf %lf %lf %lf %lf %lf", tname, tname_type, &want_sum, &want_sq,
                &want_v[0], &want_v[1], &want_v[2], &want_v[3]) == 8) {
    lamp_gguf_tensor_info ti;
    LAMP_OK_OR_FAIL(ctx, lamp_gguf_find_tensor(ctx, g, tname, &ti));
    assert_string_equal(lamp_ggml_type_name(ti.type), tname_type);
    float *y = malloc((size_t)ti.numel * sizeof(float));
    assert_non_null(y);
    LAMP_OK_OR_FAIL(ctx, lamp_gguf_tensor_read_f32(ctx, g, &ti, y, (size_t)ti.numel));
    double sum = 0, sq = 0;
    for (uint64_t i = 0; i < ti.numel; i++) sum += y[i], sq += (double)y[i] * y[i];
    for (int k = 0; k < 4; k++)
      if (y[k] != (float)want_v[k]) fail_msg("%s[%d]: %.9g vs %.9g", tname, k, y[k], want_v[k]);
    if (fabs(sum - want_sum) > 1e-6 * sq + 1e-9 || fabs(sq - want_sq) > 1e-9 * want_sq + 1e-12)
      fail_msg("%s: sum %.12g vs %.12g, squares %.12g vs %.12g", tname, sum, want_sum, sq, want_sq);
    free(y);
    checked++;
  }
  fclose(f);
  assert_true(checked >= 3);
  lamp_gguf_release(g);
}

/* Every type lamp knows the layout of has a name that parses back. */
static void test_ggml_type_names(void **state) {
  (void)state;
  const char *bad[] = {"", "unknown", "Q4", "Q4_K_M", NULL};
  FIXTURE_CHECK_NAMES(lamp_ggml_type, lamp_ggml_type_name, lamp_ggml_type_from_name,
                      LAMP_GGML_F32, LAMP_GGML_MXFP4, 32, bad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ggml_type_names),
      cmocka_unit_test(test_gguf_dequantise_quantised),
      cmocka_unit_test(test_gguf_dequantise_random_blocks),
      cmocka_unit_test(test_gguf_metadata),
      cmocka_unit_test(test_gguf_llama_hparams),
      cmocka_unit_test(test_gguf_truncated),
      cmocka_unit_test(test_gguf_hostile),
      cmocka_unit_test(test_gguf_fuzz),
      cmocka_unit_test(test_gguf_real_model),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
