/* safetensors: writer/reader round trip, a hand-written file (escapes, F16, BF16, metadata last),
 * hostile headers each refused with a message naming the problem, every truncation of a valid
 * file, random header corruption, a file truncated after open, and writer argument errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "ref.h"
#include "ref_prompt.h"

static char dir[64];

static int group_setup(void **state) {
  snprintf(dir, sizeof(dir), "/tmp/lamp-st-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  return fixture_setup(state);
}

static int group_teardown(void **state) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return fixture_teardown(state);
}

static void path_of(char *out, size_t size, const char *name) {
  snprintf(out, size, "%s/%s", dir, name);
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (n) assert_int_equal(fwrite(data, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

/* A file made of an 8-byte length, the header text and `data_size` bytes of data. */
static void write_st(const char *path, const char *header, size_t data_size) {
  size_t hl = strlen(header), n = 8 + hl + data_size;
  unsigned char *b = calloc(n, 1);
  assert_non_null(b);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
  memcpy(b + 8, header, hl);
  for (size_t i = 0; i < data_size; i++) b[8 + hl + i] = (unsigned char)(i * 7);
  write_bytes(path, b, n);
  free(b);
}

static unsigned char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*n + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, *n, f), *n);
  fclose(f);
  return b;
}

static void test_round_trip(void **state) {
  lamp_context *ctx = *state;
  char path[128];
  path_of(path, sizeof(path), "sub/round.safetensors"); /* the folder is created */
  float a[6], b[5], scalar = 3.5f;
  ref_fill_uniform(a, 6, 1, -2, 2);
  ref_fill_uniform(b, 5, 2, -2, 2);
  uint64_t sa[2] = {2, 3}, sb[1] = {5}, se[2] = {0, 4};
  lamp_st_entry e[4] = {{"alpha", 2, sa, a}, {"b.weight", 1, sb, b}, {"s", 0, NULL, &scalar},
                        {"empty", 2, se, NULL}};
  const char *keys[] = {"plain", "tricky \"key\"", "unicode"};
  const char *vals[] = {"1", "back\\slash\nnew line\ttab", "caf\xc3\xa9 \xf0\x9f\x98\x80"};
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_write_f32(ctx, path, e, 4, keys, vals, 3));

  size_t n = 0;
  unsigned char *raw = read_all(path, &n);
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = (hl << 8) | raw[i];
  assert_int_equal(hl % 8, 0);
  assert_int_equal(n, 8 + hl + 4 * (6 + 5 + 1));
  free(raw);

  lamp_safetensors *st = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_open(ctx, path, &st));
  assert_int_equal(lamp_safetensors_count(st), 4);
  const lamp_st_tensor *t = lamp_safetensors_tensors(st);
  assert_string_equal(t[0].name, "alpha");
  assert_int_equal(t[0].ndim, 2);
  assert_int_equal(t[0].shape[0], 2);
  assert_int_equal(t[0].shape[1], 3);
  assert_int_equal(t[0].dtype, LAMP_ST_F32);
  assert_int_equal(t[0].numel, 6);
  assert_int_equal(t[0].size, 24);
  assert_int_equal(t[2].ndim, 0);
  assert_int_equal(t[2].numel, 1);
  assert_int_equal(t[3].numel, 0);
  float got[6];
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_read(st, &t[0], got, sizeof(a)));
  assert_memory_equal(got, a, sizeof(a));
  const lamp_st_tensor *tb = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_find(st, "b.weight", &tb));
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_read(st, tb, got, sizeof(b)));
  assert_memory_equal(got, b, sizeof(b));
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_read(st, &t[2], got, 4));
  assert_true(got[0] == 3.5f);
  assert_int_equal(lamp_safetensors_read(st, &t[0], got, 20), LAMP_ERR_SHAPE);
  assert_int_equal(lamp_safetensors_find(st, "nope", &tb), LAMP_ERR_NOT_FOUND);
  assert_non_null(strstr(lamp_context_error(ctx), "nope"));
  /* the caller's three pairs, then a checksum per tensor */
  assert_int_equal(lamp_safetensors_metadata_count(st), 3 + lamp_safetensors_count(st));
  assert_true(lamp_safetensors_checksummed(st));
  assert_non_null(lamp_safetensors_metadata_get(st, "lamp.fnv1a64.b.weight"));
  for (int i = 0; i < 3; i++)
    assert_string_equal(lamp_safetensors_metadata_get(st, keys[i]), vals[i]);
  assert_null(lamp_safetensors_metadata_get(st, "absent"));
  const char *k = NULL, *v = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_metadata_at(st, 1, &k, &v));
  assert_string_equal(k, keys[1]);
  assert_int_equal(lamp_safetensors_metadata_at(st, 3 + lamp_safetensors_count(st), &k, &v),
                   LAMP_ERR_NOT_FOUND);

  /* upload into a strided device tensor: a transposed view */
  lamp_tensor dev, view;
  size_t ne[2] = {2, 3}, vne[2] = {3, 2}, vnb[2] = {8, 4};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &dev));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &dev, 0, 2, vne, vnb, &view));
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_upload(st, &t[0], ctx, &view));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &view, got, sizeof(a)));
  assert_memory_equal(got, a, sizeof(a));
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_find(st, "b.weight", &tb));
  assert_int_equal(lamp_safetensors_upload(st, tb, ctx, &view), LAMP_ERR_SHAPE);
  lamp_tensor_release(&dev);
  lamp_safetensors_release(st);
  lamp_safetensors_release(NULL);
}

/* Written by hand from the format description, not by lamp's writer. */
static void test_hand_written_file(void **state) {
  lamp_context *ctx = *state;
  char path[128];
  path_of(path, sizeof(path), "hand.safetensors");
  const char *header =
      "  {\n \"h\\u00e9\\ud83d\\ude00\\/x\" : {\"shape\": [2, 2], \"dtype\": \"F16\",\n"
      "   \"data_offsets\": [0, 8]},\n"
      "  \"bf\": {\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[8,14]},\n"
      "  \"ids\": {\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[16,24]},\n"
      "  \"__metadata__\": {\"format\": \"pt\"}\n}      ";
  size_t hl = strlen(header);
  unsigned char file[8 + 512];
  assert_true(hl < 512);
  memset(file, 0, sizeof(file));
  for (int i = 0; i < 8; i++) file[i] = (unsigned char)((uint64_t)hl >> (8 * i));
  memcpy(file + 8, header, hl);
  const float halves[4] = {1.0f, -2.5f, 0.099975586f, 65504.0f};
  for (int i = 0; i < 4; i++) {
    uint16_t h = ref_f32_to_f16(halves[i]);
    file[8 + hl + 2 * i] = (unsigned char)(h & 0xff);
    file[8 + hl + 2 * i + 1] = (unsigned char)(h >> 8);
  }
  write_bytes(path, file, 8 + hl + 24);

  lamp_safetensors *st = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_open(ctx, path, &st));
  assert_int_equal(lamp_safetensors_count(st), 3);
  const lamp_st_tensor *t = lamp_safetensors_tensors(st);
  assert_string_equal(t[0].name, "h\xc3\xa9\xf0\x9f\x98\x80/x");
  assert_int_equal(t[0].dtype, LAMP_ST_F16);
  assert_int_equal(t[0].offset, 8 + hl);
  assert_int_equal(t[1].dtype, LAMP_ST_BF16);
  assert_int_equal(t[2].dtype, LAMP_ST_I64);
  assert_int_equal(t[2].offset, 8 + hl + 16);
  assert_string_equal(lamp_safetensors_metadata_get(st, "format"), "pt");
  assert_string_equal(lamp_safetensors_dtype_name(t[1].dtype), "BF16");
  assert_int_equal(lamp_safetensors_dtype_size(t[2].dtype), 8);

  /* F16 goes to an f16 tensor unchanged; BF16 and F16-to-f32 are refused */
  lamp_tensor h16, f32;
  size_t ne[2] = {2, 2};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F16, 2, ne, &h16));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &f32));
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_upload(st, &t[0], ctx, &h16));
  uint16_t back[4];
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &h16, back, sizeof(back)));
  for (int i = 0; i < 4; i++) assert_int_equal(back[i], ref_f32_to_f16(halves[i]));
  assert_int_equal(lamp_safetensors_upload(st, &t[0], ctx, &f32), LAMP_ERR_UNSUPPORTED);
  assert_int_equal(lamp_safetensors_upload(st, &t[1], ctx, &f32), LAMP_ERR_UNSUPPORTED);
  assert_non_null(strstr(lamp_context_error(ctx), "BF16"));
  /* an entry that is not from this file's table */
  lamp_st_tensor fake = t[0];
  assert_int_equal(lamp_safetensors_read(st, &fake, back, 8), LAMP_ERR_INVALID_ARGUMENT);
  lamp_tensor_release(&h16);
  lamp_tensor_release(&f32);
  lamp_safetensors_release(st);
}

typedef struct bad_case {
  const char *header;
  size_t data;
  const char *message; /* a fragment the error must contain */
} bad_case;

static void test_hostile_headers(void **state) {
  lamp_context *ctx = *state;
  static const bad_case cases[] = {
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12, "need 8"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "outside"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8, "outside"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "appears twice"},
      {"{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "lacks \"data_offsets\""},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
       "unexpected or repeated key"},
      {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
       "unexpected or repeated key"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
       "more than 8"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "non-negative"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "fraction"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4,
       "overflows 64 bits"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}",
       4, "overflows"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
       "more than 2 entries"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 8, "needs 2 entries"},
      {"{\"__metadata__\":{\"k\":1}}", 0, "must be strings"},
      {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "appears twice"},
      {"{} x", 0, "unexpected text"},
      {"[1]   ", 0, "not a JSON object"},
      {"{\"a", 0, "unterminated string"},
      {"{\"a\\x\":{}}", 0, "invalid escape"},
      {"{\"a\\ud800\":{}}", 0, "surrogate"},
      {"{\"a\\udc00\":{}}", 0, "surrogate"},
      {"{\"a\\u0000\":{}}", 0, "NUL"},
      {"{\"a\tb\":{}}", 0, "control character"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, "expected ','"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}", 4, "expected a string"},
      {"{\"a\":[]}", 0, "expected '{'"},
      {"{\"a\" {}}", 0, "expected ':'"},
  };
  char path[128];
  path_of(path, sizeof(path), "bad.safetensors");
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    write_st(path, cases[i].header, cases[i].data);
    lamp_safetensors *st = (lamp_safetensors *)1;
    lamp_status s = lamp_safetensors_open(ctx, path, &st);
    if (s != LAMP_ERR_FORMAT || st != NULL)
      fail_msg("case %zu (%s): status %s", i, cases[i].header, lamp_status_name(s));
    if (!strstr(lamp_context_error(ctx), cases[i].message))
      fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, lamp_context_error(ctx),
               cases[i].message);
    if (!strstr(lamp_context_error(ctx), "bad.safetensors"))
      fail_msg("case %zu: message \"%s\" does not name the file", i, lamp_context_error(ctx));
  }
  /* the header length itself */
  unsigned char b[16] = {0};
  b[7] = 0x80; /* 2^63 */
  write_bytes(path, b, 16);
  lamp_safetensors *st = NULL;
  assert_int_equal(lamp_safetensors_open(ctx, path, &st), LAMP_ERR_FORMAT);
  assert_non_null(strstr(lamp_context_error(ctx), "header length"));
  memset(b, 0, sizeof(b));
  b[0] = 9; /* 9 bytes of header, 8 in the file */
  write_bytes(path, b, 16);
  assert_int_equal(lamp_safetensors_open(ctx, path, &st), LAMP_ERR_FORMAT);
  b[0] = 1;
  write_bytes(path, b, 16);
  assert_int_equal(lamp_safetensors_open(ctx, path, &st), LAMP_ERR_FORMAT);
  write_bytes(path, b, 5);
  assert_int_equal(lamp_safetensors_open(ctx, path, &st), LAMP_ERR_FORMAT);
  assert_non_null(strstr(lamp_context_error(ctx), "too short"));
  write_bytes(path, b, 0);
  assert_int_equal(lamp_safetensors_open(ctx, path, &st), LAMP_ERR_FORMAT);
  path_of(path, sizeof(path), "does-not-exist.safetensors");
  assert_int_equal(lamp_safetensors_open(ctx, path, &st), LAMP_ERR_IO);
  assert_non_null(strstr(lamp_context_error(ctx), "does-not-exist"));
  assert_null(st);
}

static void write_valid(lamp_context *ctx, const char *path) {
  float a[12], b[3];
  ref_fill_uniform(a, 12, 5, -1, 1);
  ref_fill_uniform(b, 3, 6, -1, 1);
  uint64_t sa[2] = {3, 4}, sb[1] = {3};
  lamp_st_entry e[2] = {{"weight", 2, sa, a}, {"bias", 1, sb, b}};
  const char *k[] = {"note"}, *v[] = {"x"};
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_write_f32(ctx, path, e, 2, k, v, 1));
}

/* Every proper prefix of a valid file is refused; the full file opens. */
static void test_truncations(void **state) {
  lamp_context *ctx = *state;
  char path[128], cut[128];
  path_of(path, sizeof(path), "valid.safetensors");
  path_of(cut, sizeof(cut), "cut.safetensors");
  write_valid(ctx, path);
  size_t n = 0;
  unsigned char *raw = read_all(path, &n);
  for (size_t len = 0; len < n; len++) {
    write_bytes(cut, raw, len);
    lamp_safetensors *st = NULL;
    lamp_status s = lamp_safetensors_open(ctx, cut, &st);
    if (s != LAMP_ERR_FORMAT)
      fail_msg("prefix of %zu of %zu bytes: %s", len, n, lamp_status_name(s));
  }
  write_bytes(cut, raw, n);
  lamp_safetensors *st = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_open(ctx, cut, &st));
  /* truncated after open: the read notices */
  assert_int_equal(truncate(cut, (off_t)(n - 4)), 0);
  const lamp_st_tensor *t = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_find(st, "bias", &t));
  float back[3];
  assert_int_equal(lamp_safetensors_read(st, t, back, sizeof(back)), LAMP_ERR_FORMAT);
  assert_non_null(strstr(lamp_context_error(ctx), "file ends"));
  lamp_safetensors_release(st);
  free(raw);
}

static uint64_t fuzz_next(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s >> 33;
}

/* Random corruption of the header: open either refuses the file or returns a table whose every
 * byte range lies inside the file and reads back. */
static void test_fuzzed_headers(void **state) {
  lamp_context *ctx = *state;
  char path[128], fz[128];
  path_of(path, sizeof(path), "valid.safetensors");
  path_of(fz, sizeof(fz), "fuzz.safetensors");
  write_valid(ctx, path);
  size_t n = 0;
  unsigned char *raw = read_all(path, &n), *buf = malloc(n);
  assert_non_null(buf);
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = (hl << 8) | raw[i];
  static const char alphabet[] = "{}[]\":,0123456789 \\uFe.-_aA\x01\xff";
  uint64_t seed = 12345;
  int accepted = 0;
  for (int iter = 0; iter < 3000; iter++) {
    memcpy(buf, raw, n);
    int flips = 1 + (int)(fuzz_next(&seed) % 4);
    for (int f = 0; f < flips; f++) {
      size_t at = (fuzz_next(&seed) % 10 == 0) ? fuzz_next(&seed) % 8
                                               : 8 + fuzz_next(&seed) % hl;
      buf[at] = (unsigned char)alphabet[fuzz_next(&seed) % (sizeof(alphabet) - 1)];
    }
    write_bytes(fz, buf, n);
    lamp_safetensors *st = NULL;
    lamp_status s = lamp_safetensors_open(ctx, fz, &st);
    if (s != LAMP_OK) {
      assert_int_equal(s, LAMP_ERR_FORMAT);
      continue;
    }
    accepted++;
    const lamp_st_tensor *t = lamp_safetensors_tensors(st);
    for (size_t i = 0; i < lamp_safetensors_count(st); i++) {
      assert_true(t[i].offset + t[i].size <= n);
      void *dst = malloc(t[i].size ? t[i].size : 1);
      assert_non_null(dst);
      /* a header flip that moves a tensor's bytes shows as a checksum mismatch */
      lamp_status r = lamp_safetensors_read(st, &t[i], dst, t[i].size);
      if (r != LAMP_OK) {
        assert_int_equal(r, LAMP_ERR_FORMAT);
        assert_non_null(strstr(lamp_context_error(ctx), "checksum"));
      }
      free(dst);
    }
    lamp_safetensors_release(st);
  }
  print_message("fuzz: %d of 3000 corrupted files still parsed (and were checked)\n", accepted);
  free(raw);
  free(buf);
}

/* A value changed in the file (a NaN written over a float, as a bad disk or an editor might)
 * is a checksum mismatch naming the tensor; a file without checksums still reads. */
static void test_damaged_data_is_noticed(void **state) {
  lamp_context *ctx = *state;
  char path[] = "/tmp/lamp-test-st-damage-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  float a[4] = {1, 2, 3, 4};
  uint64_t shape[1] = {4};
  lamp_st_entry e = {"w", 1, shape, a};
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_write_f32(ctx, path, &e, 1, NULL, NULL, 0));
  lamp_safetensors *st = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_open(ctx, path, &st));
  const lamp_st_tensor *t = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_find(st, "w", &t));
  uint64_t at = t->offset;
  lamp_safetensors_release(st);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  float nan = NAN;
  assert_int_equal(fseek(f, (long)at + 4, SEEK_SET), 0);
  assert_int_equal(fwrite(&nan, 4, 1, f), 1);
  fclose(f);
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_open(ctx, path, &st));
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_find(st, "w", &t));
  float got[4];
  assert_int_equal(lamp_safetensors_read(st, t, got, sizeof(got)), LAMP_ERR_FORMAT);
  assert_non_null(strstr(lamp_context_error(ctx), "tensor 'w' does not match its checksum"));
  lamp_safetensors_release(st);
  unlink(path);
}

static void test_writer_errors(void **state) {
  lamp_context *ctx = *state;
  char path[128];
  path_of(path, sizeof(path), "w.safetensors");
  float x[2] = {1, 2};
  uint64_t s2[1] = {2}, s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 2};
  lamp_st_entry dup[2] = {{"a", 1, s2, x}, {"a", 1, s2, x}};
  assert_int_equal(lamp_safetensors_write_f32(ctx, path, dup, 2, NULL, NULL, 0),
                   LAMP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(lamp_context_error(ctx), "given twice"));
  lamp_st_entry meta[1] = {{"__metadata__", 1, s2, x}};
  assert_int_equal(lamp_safetensors_write_f32(ctx, path, meta, 1, NULL, NULL, 0),
                   LAMP_ERR_INVALID_ARGUMENT);
  lamp_st_entry deep[1] = {{"d", 9, s9, x}};
  assert_int_equal(lamp_safetensors_write_f32(ctx, path, deep, 1, NULL, NULL, 0),
                   LAMP_ERR_INVALID_ARGUMENT);
  lamp_st_entry nodata[1] = {{"n", 1, s2, NULL}};
  assert_int_equal(lamp_safetensors_write_f32(ctx, path, nodata, 1, NULL, NULL, 0),
                   LAMP_ERR_INVALID_ARGUMENT);
  const char *k[] = {NULL}, *v[] = {"x"};
  lamp_st_entry ok[1] = {{"ok", 1, s2, x}};
  assert_int_equal(lamp_safetensors_write_f32(ctx, path, ok, 1, k, v, 1),
                   LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(access(path, F_OK), -1); /* nothing was written */
  /* no tensors and no metadata is a valid, empty file */
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_write_f32(ctx, path, NULL, 0, NULL, NULL, 0));
  lamp_safetensors *st = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_safetensors_open(ctx, path, &st));
  assert_int_equal(lamp_safetensors_count(st), 0);
  lamp_safetensors_release(st);
}

static void test_dtype_names(void **state) {
  (void)state;
  const char *bad[] = {"", "F33", "float32", "__metadata__", NULL};
  FIXTURE_CHECK_NAMES(lamp_st_dtype, lamp_safetensors_dtype_name,
                      lamp_safetensors_dtype_from_name, LAMP_ST_BOOL, LAMP_ST_F64, 15, bad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dtype_names),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_hand_written_file),
      cmocka_unit_test(test_hostile_headers),
      cmocka_unit_test(test_truncations),
      cmocka_unit_test(test_fuzzed_headers),
      cmocka_unit_test(test_damaged_data_is_noticed),
      cmocka_unit_test(test_writer_errors),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
