/* GGUF reader: validates the whole layout at open, then serves metadata and tensors from the
 * mapped file. Every read goes through a cursor that checks the bytes left before it reads. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/internal.h"
#include "io/gguf_internal.h"
#include "lamp/gguf.h"

#define LAMP__GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian uint32 */
#define LAMP__GGUF_DEFAULT_ALIGNMENT 32

typedef struct lamp__gguf_kv {
  char *key;
  lamp_gguf_type type;
  lamp_gguf_type array_type;
  uint64_t count;
  uint64_t value; /* file offset of the scalar value or of the first array element */
  uint64_t *strings; /* string arrays: file offset of each element's length prefix */
} lamp__gguf_kv;

struct lamp_gguf {
  const unsigned char *base;
  size_t size;
  void *map;              /* mmap'ed region, or NULL */
  unsigned char *owned;   /* malloc'ed copy when mmap was not possible */
  char label[256];        /* the path, for messages */
  char error[1024];

  uint32_t version;
  size_t alignment;
  uint64_t data_offset;

  lamp__gguf_kv *kvs;
  size_t n_kv;
  size_t *kv_sorted;      /* kv indices sorted by key */
  lamp_gguf_tensor_info *tensors;
  char **tensor_names;    /* owned copies behind tensors[i].name */
  size_t n_tensors;
  size_t *tensor_sorted;  /* tensor indices sorted by name */
};

/* Records a message in the context and in the handle (the handle's copy serves lamp's own
 * modules, which probe with a NULL context: lamp__gguf_last_error). */
static lamp_status lamp__gguf_fail(lamp_context *ctx, lamp_gguf *g, lamp_status status,
                                   const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static lamp_status lamp__gguf_fail(lamp_context *ctx, lamp_gguf *g, lamp_status status,
                                   const char *fmt, ...) {
  int n = snprintf(g->error, sizeof(g->error), "GGUF %s: ", g->label);
  if (n < 0 || (size_t)n >= sizeof(g->error)) n = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g->error + n, sizeof(g->error) - (size_t)n, fmt, ap);
  va_end(ap);
  return lamp__fail(ctx, status, "%s", g->error);
}

#define LAMP__BAD(...) lamp__gguf_fail(ctx, g, LAMP_ERR_FORMAT, __VA_ARGS__)

/* ---- type tables ---- */

typedef struct lamp__ggml_traits {
  const char *name;
  unsigned block;  /* elements per block */
  unsigned bytes;  /* bytes per block */
  int decodable;
} lamp__ggml_traits;

static const lamp__ggml_traits lamp__ggml_table[] = {
    [LAMP_GGML_F32] = {"F32", 1, 4, 1},
    [LAMP_GGML_F16] = {"F16", 1, 2, 1},
    [LAMP_GGML_Q4_0] = {"Q4_0", 32, 18, 1},
    [LAMP_GGML_Q4_1] = {"Q4_1", 32, 20, 1},
    [LAMP_GGML_Q5_0] = {"Q5_0", 32, 22, 1},
    [LAMP_GGML_Q5_1] = {"Q5_1", 32, 24, 1},
    [LAMP_GGML_Q8_0] = {"Q8_0", 32, 34, 1},
    [LAMP_GGML_Q8_1] = {"Q8_1", 32, 36, 0},
    [LAMP_GGML_Q2_K] = {"Q2_K", 256, 84, 0},
    [LAMP_GGML_Q3_K] = {"Q3_K", 256, 110, 0},
    [LAMP_GGML_Q4_K] = {"Q4_K", 256, 144, 1},
    [LAMP_GGML_Q5_K] = {"Q5_K", 256, 176, 1},
    [LAMP_GGML_Q6_K] = {"Q6_K", 256, 210, 1},
    [LAMP_GGML_Q8_K] = {"Q8_K", 256, 292, 0},
    [LAMP_GGML_IQ2_XXS] = {"IQ2_XXS", 256, 66, 0},
    [LAMP_GGML_IQ2_XS] = {"IQ2_XS", 256, 74, 0},
    [LAMP_GGML_IQ3_XXS] = {"IQ3_XXS", 256, 98, 0},
    [LAMP_GGML_IQ1_S] = {"IQ1_S", 256, 50, 0},
    [LAMP_GGML_IQ4_NL] = {"IQ4_NL", 32, 18, 0},
    [LAMP_GGML_IQ3_S] = {"IQ3_S", 256, 110, 0},
    [LAMP_GGML_IQ2_S] = {"IQ2_S", 256, 82, 0},
    [LAMP_GGML_IQ4_XS] = {"IQ4_XS", 256, 136, 0},
    [LAMP_GGML_I8] = {"I8", 1, 1, 0},
    [LAMP_GGML_I16] = {"I16", 1, 2, 0},
    [LAMP_GGML_I32] = {"I32", 1, 4, 0},
    [LAMP_GGML_I64] = {"I64", 1, 8, 0},
    [LAMP_GGML_F64] = {"F64", 1, 8, 0},
    [LAMP_GGML_IQ1_M] = {"IQ1_M", 256, 56, 0},
    [LAMP_GGML_BF16] = {"BF16", 1, 2, 1},
    [LAMP_GGML_TQ1_0] = {"TQ1_0", 256, 54, 0},
    [LAMP_GGML_TQ2_0] = {"TQ2_0", 256, 66, 0},
    [LAMP_GGML_MXFP4] = {"MXFP4", 32, 17, 0},
};
#define LAMP__GGML_NTYPES (sizeof(lamp__ggml_table) / sizeof(lamp__ggml_table[0]))

static const lamp__ggml_traits *lamp__ggml_traits_of(lamp_ggml_type type) {
  if ((unsigned)type >= LAMP__GGML_NTYPES || !lamp__ggml_table[type].name) return NULL;
  return &lamp__ggml_table[type];
}

const char *lamp_ggml_type_name(lamp_ggml_type type) {
  const lamp__ggml_traits *t = lamp__ggml_traits_of(type);
  return t ? t->name : "unknown";
}

lamp_status lamp_ggml_type_from_name(const char *name, lamp_ggml_type *out) {
  if (!name || !out) return LAMP_ERR_INVALID_ARGUMENT;
  for (size_t t = 0; t < LAMP__GGML_NTYPES; t++)
    if (lamp__ggml_table[t].name && !strcasecmp(name, lamp__ggml_table[t].name)) {
      *out = (lamp_ggml_type)t;
      return LAMP_OK;
    }
  return LAMP_ERR_INVALID_ARGUMENT;
}

size_t lamp_ggml_block_elements(lamp_ggml_type type) {
  const lamp__ggml_traits *t = lamp__ggml_traits_of(type);
  return t ? t->block : 0;
}

size_t lamp_ggml_block_bytes(lamp_ggml_type type) {
  const lamp__ggml_traits *t = lamp__ggml_traits_of(type);
  return t ? t->bytes : 0;
}

int lamp_ggml_type_decodable(lamp_ggml_type type) {
  const lamp__ggml_traits *t = lamp__ggml_traits_of(type);
  return t ? t->decodable : 0;
}

const char *lamp_gguf_type_name(lamp_gguf_type type) {
  static const char *const names[] = {"uint8", "int8",   "uint16", "int16",  "uint32",
                                      "int32", "float32", "bool",  "string", "array",
                                      "uint64", "int64",  "float64"};
  if ((unsigned)type >= sizeof(names) / sizeof(names[0])) return "unknown";
  return names[type];
}

/* Bytes of one value of a fixed-size type; 0 for string, array and unknown types. */
static size_t lamp__gguf_type_size(uint32_t type) {
  switch (type) {
    case LAMP_GGUF_UINT8: case LAMP_GGUF_INT8: case LAMP_GGUF_BOOL: return 1;
    case LAMP_GGUF_UINT16: case LAMP_GGUF_INT16: return 2;
    case LAMP_GGUF_UINT32: case LAMP_GGUF_INT32: case LAMP_GGUF_FLOAT32: return 4;
    case LAMP_GGUF_UINT64: case LAMP_GGUF_INT64: case LAMP_GGUF_FLOAT64: return 8;
  }
  return 0;
}

/* ---- little-endian reads ---- */

static uint16_t lamp__le16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t lamp__le32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t lamp__le64(const unsigned char *p) {
  return (uint64_t)lamp__le32(p) | ((uint64_t)lamp__le32(p + 4) << 32);
}

static float lamp__f32_from_bits(uint32_t bits) {
  float f;
  memcpy(&f, &bits, sizeof(f));
  return f;
}

static float lamp__f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  if (exp == 0x1F) return lamp__f32_from_bits(sign | 0x7F800000u | (mant << 13));
  if (exp == 0) {
    /* zero or subnormal: mant * 2^-24, exact in f32 */
    float v = (float)mant * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return lamp__f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
}

/* ---- cursor over the file ---- */

typedef struct lamp__cursor {
  const unsigned char *base;
  uint64_t size, pos;
} lamp__cursor;

static int lamp__has(const lamp__cursor *c, uint64_t n) { return c->size - c->pos >= n; }

static uint64_t lamp__left(const lamp__cursor *c) { return c->size - c->pos; }

/* Reads a string header: its length is checked against the bytes left and `max`. On success
 * *offset is the first byte of the text and the cursor moves past it. Returns 0 on success,
 * 1 when the length prefix itself is cut off, 2 when the length is too large. */
static int lamp__read_string(lamp__cursor *c, uint64_t max, uint64_t *offset, uint64_t *len) {
  if (!lamp__has(c, 8)) return 1;
  *len = lamp__le64(c->base + c->pos);
  c->pos += 8;
  if (*len > max || *len > lamp__left(c)) return 2;
  *offset = c->pos;
  c->pos += *len;
  return 0;
}

static char *lamp__strndup(const unsigned char *p, size_t n) {
  char *s = malloc(n + 1);
  if (!s) return NULL;
  memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

/* ---- open ---- */

typedef struct lamp__named {
  const char *name;
  size_t index;
} lamp__named;

static int lamp__named_cmp(const void *a, const void *b) {
  return strcmp(((const lamp__named *)a)->name, ((const lamp__named *)b)->name);
}

typedef struct lamp__span {
  uint64_t offset, size;
  size_t index;
} lamp__span;

static int lamp__span_cmp(const void *a, const void *b) {
  const lamp__span *x = a, *y = b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Sorts names and fills `order`; returns the index of a duplicate pair's first member + 1, or
 * 0 when all names differ, or -1 when out of memory. */
static long lamp__sort_names(const char *const *names, size_t n, size_t *order) {
  lamp__named *tmp = malloc((n ? n : 1) * sizeof(*tmp));
  if (!tmp) return -1;
  for (size_t i = 0; i < n; i++) tmp[i] = (lamp__named){names[i], i};
  qsort(tmp, n, sizeof(*tmp), lamp__named_cmp);
  long dup = 0;
  for (size_t i = 0; i < n; i++) {
    order[i] = tmp[i].index;
    if (!dup && i > 0 && strcmp(tmp[i - 1].name, tmp[i].name) == 0) dup = (long)tmp[i].index + 1;
  }
  free(tmp);
  return dup;
}

static lamp_status lamp__gguf_parse_kv(lamp_context *ctx, lamp_gguf *g, lamp__cursor *c,
                                       size_t i) {
  lamp__gguf_kv *kv = &g->kvs[i];
  uint64_t off, len;
  int rs = lamp__read_string(c, LAMP_GGUF_MAX_KEY, &off, &len);
  if (rs == 1) return LAMP__BAD("metadata entry %zu: key length cut off at offset %llu", i,
                                (unsigned long long)c->pos);
  if (rs == 2)
    return LAMP__BAD("metadata entry %zu: key length %llu exceeds the limit (%u) or the %llu "
                     "bytes left", i, (unsigned long long)len, LAMP_GGUF_MAX_KEY,
                     (unsigned long long)lamp__left(c));
  if (len == 0) return LAMP__BAD("metadata entry %zu: empty key", i);
  if (memchr(c->base + off, 0, len)) return LAMP__BAD("metadata entry %zu: key holds a NUL", i);
  kv->key = lamp__strndup(c->base + off, len);
  if (!kv->key) return lamp__gguf_fail(ctx, g, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  const char *key = kv->key;
  if (!lamp__has(c, 4)) return LAMP__BAD("key \"%s\": value type cut off", key);
  uint32_t type = lamp__le32(c->base + c->pos);
  c->pos += 4;
  if (type > LAMP_GGUF_FLOAT64) return LAMP__BAD("key \"%s\": unknown value type %u", key, type);
  kv->type = (lamp_gguf_type)type;
  kv->count = 1;
  uint32_t elem = type;
  if (type == LAMP_GGUF_ARRAY) {
    if (!lamp__has(c, 12)) return LAMP__BAD("key \"%s\": array header cut off", key);
    elem = lamp__le32(c->base + c->pos);
    kv->count = lamp__le64(c->base + c->pos + 4);
    c->pos += 12;
    if (elem == LAMP_GGUF_ARRAY)
      return LAMP__BAD("key \"%s\": arrays of arrays are not supported", key);
    if (elem > LAMP_GGUF_FLOAT64)
      return LAMP__BAD("key \"%s\": unknown array element type %u", key, elem);
    kv->array_type = (lamp_gguf_type)elem;
  }
  kv->value = c->pos;
  size_t es = lamp__gguf_type_size(elem);
  if (es) {
    if (kv->count > lamp__left(c) / es)
      return LAMP__BAD("key \"%s\": %llu values of type %s need more than the %llu bytes left",
                       key, (unsigned long long)kv->count, lamp_gguf_type_name(elem),
                       (unsigned long long)lamp__left(c));
    if (elem == LAMP_GGUF_BOOL)
      for (uint64_t k = 0; k < kv->count; k++)
        if (c->base[c->pos + k] > 1)
          return LAMP__BAD("key \"%s\": bool value %u is neither 0 nor 1", key,
                           c->base[c->pos + k]);
    c->pos += kv->count * es;
    return LAMP_OK;
  }
  /* strings: each one is at least its 8-byte length */
  if (kv->count > lamp__left(c) / 8)
    return LAMP__BAD("key \"%s\": %llu strings need more than the %llu bytes left", key,
                     (unsigned long long)kv->count, (unsigned long long)lamp__left(c));
  if (type == LAMP_GGUF_ARRAY) {
    kv->strings = malloc((size_t)(kv->count ? kv->count : 1) * sizeof(uint64_t));
    if (!kv->strings) return lamp__gguf_fail(ctx, g, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  }
  for (uint64_t k = 0; k < kv->count; k++) {
    uint64_t at = c->pos;
    rs = lamp__read_string(c, UINT64_MAX, &off, &len);
    if (rs == 1)
      return LAMP__BAD("key \"%s\": string %llu: length cut off at offset %llu", key,
                       (unsigned long long)k, (unsigned long long)at);
    if (rs == 2)
      return LAMP__BAD("key \"%s\": string %llu: length %llu exceeds the %llu bytes left", key,
                       (unsigned long long)k, (unsigned long long)len,
                       (unsigned long long)(c->size - at - 8));
    if (kv->strings) kv->strings[k] = at;
  }
  return LAMP_OK;
}

static lamp_status lamp__gguf_parse_tensor(lamp_context *ctx, lamp_gguf *g, lamp__cursor *c,
                                           size_t i) {
  lamp_gguf_tensor_info *t = &g->tensors[i];
  uint64_t off, len;
  int rs = lamp__read_string(c, LAMP_GGUF_MAX_NAME, &off, &len);
  if (rs == 1) return LAMP__BAD("tensor %zu: name length cut off at offset %llu", i,
                                (unsigned long long)c->pos);
  if (rs == 2)
    return LAMP__BAD("tensor %zu: name length %llu exceeds the limit (%u) or the %llu bytes "
                     "left", i, (unsigned long long)len, LAMP_GGUF_MAX_NAME,
                     (unsigned long long)lamp__left(c));
  if (len == 0) return LAMP__BAD("tensor %zu: empty name", i);
  if (memchr(c->base + off, 0, len)) return LAMP__BAD("tensor %zu: name holds a NUL", i);
  g->tensor_names[i] = lamp__strndup(c->base + off, len);
  if (!g->tensor_names[i]) return lamp__gguf_fail(ctx, g, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  const char *name = t->name = g->tensor_names[i];
  if (!lamp__has(c, 4)) return LAMP__BAD("tensor \"%s\": dimension count cut off", name);
  t->n_dims = lamp__le32(c->base + c->pos);
  c->pos += 4;
  if (t->n_dims > LAMP_GGUF_MAX_DIMS)
    return LAMP__BAD("tensor \"%s\": %u dimensions (at most %d)", name, t->n_dims,
                     LAMP_GGUF_MAX_DIMS);
  if (!lamp__has(c, 8ull * t->n_dims + 12))
    return LAMP__BAD("tensor \"%s\": shape, type or offset cut off", name);
  uint64_t numel = 1;
  for (unsigned d = 0; d < LAMP_GGUF_MAX_DIMS; d++) {
    uint64_t n = 1;
    if (d < t->n_dims) {
      n = lamp__le64(c->base + c->pos);
      c->pos += 8;
    }
    if (n == 0 || n > (uint64_t)INT64_MAX / numel)
      return LAMP__BAD("tensor \"%s\": dimension %u is %llu (zero or overflowing)", name, d,
                       (unsigned long long)n);
    t->ne[d] = n;
    numel *= n;
  }
  t->numel = numel;
  uint32_t type = lamp__le32(c->base + c->pos);
  t->offset = lamp__le64(c->base + c->pos + 4);
  c->pos += 12;
  const lamp__ggml_traits *tr = lamp__ggml_traits_of((lamp_ggml_type)type);
  if (!tr) return LAMP__BAD("tensor \"%s\": unknown tensor type %u", name, type);
  t->type = (lamp_ggml_type)type;
  if (t->ne[0] % tr->block)
    return LAMP__BAD("tensor \"%s\": row length %llu is not a multiple of the %s block of %u",
                     name, (unsigned long long)t->ne[0], tr->name, tr->block);
  /* numel <= INT64_MAX and bytes <= 292 per block keep this in range only after a check */
  uint64_t blocks = numel / tr->block;
  if (blocks > UINT64_MAX / tr->bytes)
    return LAMP__BAD("tensor \"%s\": size overflows", name);
  t->size = blocks * tr->bytes;
  return LAMP_OK;
}

/* Validates the layout of g->base[0..g->size). */
static lamp_status lamp__gguf_parse(lamp_context *ctx, lamp_gguf *g) {
  lamp__cursor c = {g->base, g->size, 0};
  if (g->size < 24)
    return LAMP__BAD("%zu bytes is too short for a GGUF header (24 bytes)", g->size);
  uint32_t magic = lamp__le32(g->base);
  if (magic != LAMP__GGUF_MAGIC)
    return LAMP__BAD("not a GGUF file (magic bytes %02x %02x %02x %02x)", g->base[0], g->base[1],
                     g->base[2], g->base[3]);
  g->version = lamp__le32(g->base + 4);
  if (g->version == 0x02000000u || g->version == 0x03000000u)
    return LAMP__BAD("big-endian GGUF files are not supported");
  if (g->version != 2 && g->version != 3)
    return LAMP__BAD("GGUF version %u is not supported (only 2 and 3)", g->version);
  uint64_t n_tensors = lamp__le64(g->base + 8), n_kv = lamp__le64(g->base + 16);
  c.pos = 24;
  /* a metadata entry takes at least 8 + 1 + 4 + 1 bytes, a tensor entry 8 + 1 + 4 + 4 + 8 */
  if (n_kv > LAMP_GGUF_MAX_KEYS || n_kv > lamp__left(&c) / 14)
    return LAMP__BAD("metadata count %llu is impossible for %llu bytes (limit %u)",
                     (unsigned long long)n_kv, (unsigned long long)lamp__left(&c),
                     LAMP_GGUF_MAX_KEYS);
  if (n_tensors > LAMP_GGUF_MAX_TENSORS || n_tensors > lamp__left(&c) / 25)
    return LAMP__BAD("tensor count %llu is impossible for %llu bytes (limit %u)",
                     (unsigned long long)n_tensors, (unsigned long long)lamp__left(&c),
                     LAMP_GGUF_MAX_TENSORS);
  g->n_kv = (size_t)n_kv;
  g->n_tensors = (size_t)n_tensors;
  g->kvs = calloc(g->n_kv ? g->n_kv : 1, sizeof(*g->kvs));
  g->kv_sorted = calloc(g->n_kv ? g->n_kv : 1, sizeof(size_t));
  g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof(*g->tensors));
  g->tensor_names = calloc(g->n_tensors ? g->n_tensors : 1, sizeof(char *));
  g->tensor_sorted = calloc(g->n_tensors ? g->n_tensors : 1, sizeof(size_t));
  if (!g->kvs || !g->kv_sorted || !g->tensors || !g->tensor_names || !g->tensor_sorted)
    return lamp__gguf_fail(ctx, g, LAMP_ERR_OUT_OF_MEMORY, "out of memory for the tables");

  for (size_t i = 0; i < g->n_kv; i++) LAMP__TRY(lamp__gguf_parse_kv(ctx, g, &c, i));
  size_t n_names = g->n_kv > g->n_tensors ? g->n_kv : g->n_tensors;
  const char **names = malloc((n_names ? n_names : 1) * sizeof(char *));
  if (!names) return lamp__gguf_fail(ctx, g, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < g->n_kv; i++) names[i] = g->kvs[i].key;
  long dup = lamp__sort_names(names, g->n_kv, g->kv_sorted);
  if (dup) {
    free(names);
    if (dup < 0) return lamp__gguf_fail(ctx, g, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
    return LAMP__BAD("key \"%s\" appears more than once", g->kvs[dup - 1].key);
  }

  g->alignment = LAMP__GGUF_DEFAULT_ALIGNMENT;
  size_t ai;
  if (lamp_gguf_find_key(NULL, g, "general.alignment", &ai) == LAMP_OK) {
    const lamp__gguf_kv *kv = &g->kvs[ai];
    if (kv->type != LAMP_GGUF_UINT32) {
      free(names);
      return LAMP__BAD("key \"general.alignment\" has type %s, not uint32",
                       lamp_gguf_type_name(kv->type));
    }
    uint32_t a = lamp__le32(g->base + kv->value);
    if (a == 0 || (a & (a - 1)) || a > LAMP_GGUF_MAX_ALIGNMENT) {
      free(names);
      return LAMP__BAD("key \"general.alignment\" is %u, not a power of two up to %u", a,
                       LAMP_GGUF_MAX_ALIGNMENT);
    }
    g->alignment = a;
  }

  for (size_t i = 0; i < g->n_tensors; i++) {
    lamp_status st = lamp__gguf_parse_tensor(ctx, g, &c, i);
    if (st != LAMP_OK) {
      free(names);
      return st;
    }
  }
  for (size_t i = 0; i < g->n_tensors; i++) names[i] = g->tensors[i].name;
  dup = lamp__sort_names(names, g->n_tensors, g->tensor_sorted);
  free(names);
  if (dup < 0) return lamp__gguf_fail(ctx, g, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  if (dup) return LAMP__BAD("tensor \"%s\" appears more than once", g->tensors[dup - 1].name);

  /* The data section starts at the next multiple of the alignment. */
  uint64_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
  g->data_offset = c.pos + pad;
  if (g->n_tensors && g->data_offset > g->size)
    return LAMP__BAD("tensor data section would start at %llu, past the end (%zu bytes)",
                     (unsigned long long)g->data_offset, g->size);

  lamp__span *spans = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof(*spans));
  if (!spans) return lamp__gguf_fail(ctx, g, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  lamp_status st = LAMP_OK;
  for (size_t i = 0; i < g->n_tensors && st == LAMP_OK; i++) {
    lamp_gguf_tensor_info *t = &g->tensors[i];
    uint64_t room = g->size - g->data_offset;
    if (t->offset % g->alignment)
      st = LAMP__BAD("tensor \"%s\": offset %llu is not a multiple of the alignment %zu",
                     t->name, (unsigned long long)t->offset, g->alignment);
    else if (t->offset > room || t->size > room - t->offset)
      st = LAMP__BAD("tensor \"%s\": %llu bytes at data offset %llu run past the end of the "
                     "file (%llu bytes of data)", t->name, (unsigned long long)t->size,
                     (unsigned long long)t->offset, (unsigned long long)room);
    if (st != LAMP_OK) break; /* no pointer past the file, not even computed */
    t->offset += g->data_offset;
    t->data = g->base + t->offset;
    spans[i] = (lamp__span){t->offset, t->size, i};
  }
  if (st == LAMP_OK && g->n_tensors > 1) {
    qsort(spans, g->n_tensors, sizeof(*spans), lamp__span_cmp);
    for (size_t i = 1; i < g->n_tensors && st == LAMP_OK; i++)
      if (spans[i - 1].offset + spans[i - 1].size > spans[i].offset)
        st = LAMP__BAD("tensors \"%s\" and \"%s\" overlap", g->tensors[spans[i - 1].index].name,
                       g->tensors[spans[i].index].name);
  }
  free(spans);
  return st;
}

static lamp_status lamp__gguf_finish_open(lamp_context *ctx, lamp_gguf *g, lamp_gguf **out) {
  lamp_status st = lamp__gguf_parse(ctx, g);
  if (st != LAMP_OK) {
    lamp_gguf_release(g);
    return st;
  }
  g->error[0] = '\0';
  *out = g;
  return LAMP_OK;
}

static lamp_gguf *lamp__gguf_new(const char *label) {
  lamp_gguf *g = calloc(1, sizeof(*g));
  if (g) snprintf(g->label, sizeof(g->label), "%s", label);
  return g;
}

lamp_status lamp_gguf_open_memory(lamp_context *ctx, const void *data, size_t size,
                                  lamp_gguf **out) {
  if (!out || (!data && size))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gguf_open_memory: NULL argument");
  *out = NULL;
  lamp_gguf *g = lamp__gguf_new("(memory)");
  if (!g) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory opening a GGUF buffer");
  g->base = data;
  g->size = size;
  return lamp__gguf_finish_open(ctx, g, out);
}

lamp_status lamp_gguf_open(lamp_context *ctx, const char *path, lamp_gguf **out) {
  if (!out || !path)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gguf_open: NULL argument");
  *out = NULL;
  lamp_gguf *g = lamp__gguf_new(path);
  if (!g) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory opening a GGUF file");
  lamp_status st = LAMP_OK;
  int fd = open(path, O_RDONLY);
  struct stat sb;
  if (fd < 0) {
    st = lamp__gguf_fail(ctx, g, LAMP_ERR_IO, "cannot open: %s", strerror(errno));
  } else if (fstat(fd, &sb) != 0) {
    st = lamp__gguf_fail(ctx, g, LAMP_ERR_IO, "cannot stat: %s", strerror(errno));
  } else if (!S_ISREG(sb.st_mode)) {
    st = lamp__gguf_fail(ctx, g, LAMP_ERR_IO, "not a regular file");
  } else if ((uint64_t)sb.st_size > SIZE_MAX) {
    st = lamp__gguf_fail(ctx, g, LAMP_ERR_IO, "file too large for this address space");
  } else if (sb.st_size == 0) {
    st = lamp__gguf_fail(ctx, g, LAMP_ERR_FORMAT, "empty file");
  } else {
    g->size = (size_t)sb.st_size;
    void *m = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED) {
      g->map = m;
      g->base = m;
    } else if (!(g->owned = malloc(g->size))) {
      st = lamp__gguf_fail(ctx, g, LAMP_ERR_OUT_OF_MEMORY, "out of memory for %zu bytes", g->size);
    } else {
      /* Filesystems without mmap: read the file whole. */
      size_t got = 0;
      while (got < g->size) {
        ssize_t r = read(fd, g->owned + got, g->size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
      }
      if (got != g->size) st = lamp__gguf_fail(ctx, g, LAMP_ERR_IO, "short read");
      g->base = g->owned;
    }
  }
  if (fd >= 0) close(fd);
  if (st != LAMP_OK) {
    lamp_gguf_release(g);
    return st;
  }
  return lamp__gguf_finish_open(ctx, g, out);
}

void lamp_gguf_release(lamp_gguf *g) {
  if (!g) return;
  if (g->kvs)
    for (size_t i = 0; i < g->n_kv; i++) {
      free(g->kvs[i].key);
      free(g->kvs[i].strings);
    }
  if (g->tensor_names)
    for (size_t i = 0; i < g->n_tensors; i++) free(g->tensor_names[i]);
  free(g->kvs);
  free(g->kv_sorted);
  free(g->tensors);
  free(g->tensor_names);
  free(g->tensor_sorted);
  if (g->map) munmap(g->map, g->size);
  free(g->owned);
  free(g);
}

const char *lamp__gguf_last_error(const lamp_gguf *g) { return g ? g->error : ""; }
uint32_t lamp_gguf_version(const lamp_gguf *g) { return g ? g->version : 0; }
size_t lamp_gguf_alignment(const lamp_gguf *g) { return g ? g->alignment : 0; }
uint64_t lamp_gguf_data_offset(const lamp_gguf *g) { return g ? g->data_offset : 0; }
size_t lamp_gguf_key_count(const lamp_gguf *g) { return g ? g->n_kv : 0; }
size_t lamp_gguf_tensor_count(const lamp_gguf *g) { return g ? g->n_tensors : 0; }

/* ---- metadata ---- */

lamp_status lamp_gguf_find_key(lamp_context *ctx, lamp_gguf *g, const char *key, size_t *index) {
  if (!g || !key || !index) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gguf_find_key: NULL");
  size_t lo = 0, hi = g->n_kv;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(key, g->kvs[g->kv_sorted[mid]].key);
    if (c == 0) {
      *index = g->kv_sorted[mid];
      return LAMP_OK;
    }
    if (c < 0) hi = mid;
    else lo = mid + 1;
  }
  return lamp__gguf_fail(ctx, g, LAMP_ERR_NOT_FOUND, "no key \"%s\"", key);
}

lamp_status lamp_gguf_key_at(lamp_context *ctx, lamp_gguf *g, size_t index,
                             lamp_gguf_key_info *info) {
  if (!g || !info) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gguf_key_at: NULL");
  if (index >= g->n_kv)
    return lamp__gguf_fail(ctx, g, LAMP_ERR_INVALID_ARGUMENT, "key index %zu out of range (%zu keys)",
                           index, g->n_kv);
  const lamp__gguf_kv *kv = &g->kvs[index];
  info->key = kv->key;
  info->type = kv->type;
  info->array_type = kv->type == LAMP_GGUF_ARRAY ? kv->array_type : kv->type;
  info->count = kv->count;
  return LAMP_OK;
}

/* Reads one integer value of integer or bool type at `p`; returns 0 if `type` is not one. */
static int lamp__read_int(uint32_t type, const unsigned char *p, int64_t *v, int *too_big) {
  *too_big = 0;
  switch (type) {
    case LAMP_GGUF_UINT8: case LAMP_GGUF_BOOL: *v = p[0]; return 1;
    case LAMP_GGUF_INT8: *v = (int8_t)p[0]; return 1;
    case LAMP_GGUF_UINT16: *v = lamp__le16(p); return 1;
    case LAMP_GGUF_INT16: *v = (int16_t)lamp__le16(p); return 1;
    case LAMP_GGUF_UINT32: *v = lamp__le32(p); return 1;
    case LAMP_GGUF_INT32: *v = (int32_t)lamp__le32(p); return 1;
    case LAMP_GGUF_INT64: *v = (int64_t)lamp__le64(p); return 1;
    case LAMP_GGUF_UINT64: {
      uint64_t u = lamp__le64(p);
      if (u > (uint64_t)INT64_MAX) *too_big = 1;
      *v = (int64_t)(u & (uint64_t)INT64_MAX);
      return 1;
    }
  }
  return 0;
}

static int lamp__read_float(uint32_t type, const unsigned char *p, double *v) {
  if (type == LAMP_GGUF_FLOAT32) {
    *v = lamp__f32_from_bits(lamp__le32(p));
    return 1;
  }
  if (type == LAMP_GGUF_FLOAT64) {
    uint64_t bits = lamp__le64(p);
    memcpy(v, &bits, sizeof(*v));
    return 1;
  }
  return 0;
}

/* The scalar entry of `key`, checked to be a scalar. */
static lamp_status lamp__scalar(lamp_context *ctx, lamp_gguf *g, const char *key,
                                const lamp__gguf_kv **out) {
  if (!g || !key) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gguf_get: NULL");
  size_t i;
  LAMP__TRY(lamp_gguf_find_key(ctx, g, key, &i));
  *out = &g->kvs[i];
  if ((*out)->type == LAMP_GGUF_ARRAY)
    return LAMP__BAD("key \"%s\" is an array of %llu %s, not a single value", key,
                     (unsigned long long)(*out)->count, lamp_gguf_type_name((*out)->array_type));
  return LAMP_OK;
}

lamp_status lamp_gguf_get_int(lamp_context *ctx, lamp_gguf *g, const char *key, int64_t *value) {
  const lamp__gguf_kv *kv;
  if (!value) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gguf_get_int: NULL");
  LAMP__TRY(lamp__scalar(ctx, g, key, &kv));
  int too_big;
  if (kv->type == LAMP_GGUF_BOOL || !lamp__read_int(kv->type, g->base + kv->value, value, &too_big))
    return LAMP__BAD("key \"%s\" has type %s, not an integer", key, lamp_gguf_type_name(kv->type));
  if (too_big) return LAMP__BAD("key \"%s\": uint64 value exceeds INT64_MAX", key);
  return LAMP_OK;
}

lamp_status lamp_gguf_get_float(lamp_context *ctx, lamp_gguf *g, const char *key, double *value) {
  const lamp__gguf_kv *kv;
  if (!value) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gguf_get_float: NULL");
  LAMP__TRY(lamp__scalar(ctx, g, key, &kv));
  if (!lamp__read_float(kv->type, g->base + kv->value, value))
    return LAMP__BAD("key \"%s\" has type %s, not float32 or float64", key,
                     lamp_gguf_type_name(kv->type));
  return LAMP_OK;
}

lamp_status lamp_gguf_get_bool(lamp_context *ctx, lamp_gguf *g, const char *key, int *value) {
  const lamp__gguf_kv *kv;
  if (!value) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gguf_get_bool: NULL");
  LAMP__TRY(lamp__scalar(ctx, g, key, &kv));
  if (kv->type != LAMP_GGUF_BOOL)
    return LAMP__BAD("key \"%s\" has type %s, not bool", key, lamp_gguf_type_name(kv->type));
  *value = g->base[kv->value];
  return LAMP_OK;
}

lamp_status lamp_gguf_get_string(lamp_context *ctx, lamp_gguf *g, const char *key,
                                 const char **value, size_t *length) {
  const lamp__gguf_kv *kv;
  if (!value || !length)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gguf_get_string: NULL");
  LAMP__TRY(lamp__scalar(ctx, g, key, &kv));
  if (kv->type != LAMP_GGUF_STRING)
    return LAMP__BAD("key \"%s\" has type %s, not string", key, lamp_gguf_type_name(kv->type));
  *length = (size_t)lamp__le64(g->base + kv->value);
  *value = (const char *)g->base + kv->value + 8;
  return LAMP_OK;
}

/* The array entry at `key_index` with element `i` in range. */
static lamp_status lamp__array(lamp_context *ctx, lamp_gguf *g, size_t key_index, uint64_t i,
                               const lamp__gguf_kv **out) {
  if (!g) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gguf_array: NULL");
  if (key_index >= g->n_kv)
    return lamp__gguf_fail(ctx, g, LAMP_ERR_INVALID_ARGUMENT, "key index %zu out of range (%zu keys)",
                           key_index, g->n_kv);
  const lamp__gguf_kv *kv = &g->kvs[key_index];
  if (kv->type != LAMP_GGUF_ARRAY)
    return LAMP__BAD("key \"%s\" has type %s, not array", kv->key, lamp_gguf_type_name(kv->type));
  if (i >= kv->count)
    return lamp__gguf_fail(ctx, g, LAMP_ERR_INVALID_ARGUMENT,
                           "key \"%s\": element %llu past the end (%llu elements)", kv->key,
                           (unsigned long long)i, (unsigned long long)kv->count);
  *out = kv;
  return LAMP_OK;
}

lamp_status lamp_gguf_array_int(lamp_context *ctx, lamp_gguf *g, size_t key_index, uint64_t i,
                                int64_t *value) {
  const lamp__gguf_kv *kv;
  if (!value) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gguf_array_int: NULL");
  LAMP__TRY(lamp__array(ctx, g, key_index, i, &kv));
  size_t es = lamp__gguf_type_size(kv->array_type);
  int too_big;
  if (!es || !lamp__read_int(kv->array_type, g->base + kv->value + i * es, value, &too_big))
    return LAMP__BAD("key \"%s\" holds %s elements, not integers", kv->key,
                     lamp_gguf_type_name(kv->array_type));
  if (too_big)
    return LAMP__BAD("key \"%s\": element %llu exceeds INT64_MAX", kv->key, (unsigned long long)i);
  return LAMP_OK;
}

lamp_status lamp_gguf_array_float(lamp_context *ctx, lamp_gguf *g, size_t key_index, uint64_t i,
                                  double *value) {
  const lamp__gguf_kv *kv;
  if (!value) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gguf_array_float: NULL");
  LAMP__TRY(lamp__array(ctx, g, key_index, i, &kv));
  size_t es = lamp__gguf_type_size(kv->array_type);
  if (!es || !lamp__read_float(kv->array_type, g->base + kv->value + i * es, value))
    return LAMP__BAD("key \"%s\" holds %s elements, not floats", kv->key,
                     lamp_gguf_type_name(kv->array_type));
  return LAMP_OK;
}

lamp_status lamp_gguf_array_string(lamp_context *ctx, lamp_gguf *g, size_t key_index, uint64_t i,
                                   const char **value, size_t *length) {
  const lamp__gguf_kv *kv;
  if (!value || !length)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gguf_array_string: NULL");
  LAMP__TRY(lamp__array(ctx, g, key_index, i, &kv));
  if (kv->array_type != LAMP_GGUF_STRING)
    return LAMP__BAD("key \"%s\" holds %s elements, not strings", kv->key,
                     lamp_gguf_type_name(kv->array_type));
  uint64_t at = kv->strings[i];
  *length = (size_t)lamp__le64(g->base + at);
  *value = (const char *)g->base + at + 8;
  return LAMP_OK;
}

/* ---- tensors ---- */

lamp_status lamp_gguf_tensor_at(lamp_context *ctx, lamp_gguf *g, size_t index,
                                lamp_gguf_tensor_info *info) {
  if (!g || !info) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gguf_tensor_at: NULL");
  if (index >= g->n_tensors)
    return lamp__gguf_fail(ctx, g, LAMP_ERR_INVALID_ARGUMENT,
                           "tensor index %zu out of range (%zu tensors)", index, g->n_tensors);
  *info = g->tensors[index];
  return LAMP_OK;
}

lamp_status lamp_gguf_find_tensor(lamp_context *ctx, lamp_gguf *g, const char *name,
                                  lamp_gguf_tensor_info *info) {
  if (!g || !name || !info)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gguf_find_tensor: NULL");
  size_t lo = 0, hi = g->n_tensors;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(name, g->tensors[g->tensor_sorted[mid]].name);
    if (c == 0) {
      *info = g->tensors[g->tensor_sorted[mid]];
      return LAMP_OK;
    }
    if (c < 0) hi = mid;
    else lo = mid + 1;
  }
  return lamp__gguf_fail(ctx, g, LAMP_ERR_NOT_FOUND, "no tensor \"%s\"", name);
}

/* Block decoders: layouts of ggml's formats, each writing one block of floats. */

static void lamp__dq_q4_0(const unsigned char *b, float *y) {
  float d = lamp__f16_to_f32(lamp__le16(b));
  const unsigned char *qs = b + 2;
  for (int j = 0; j < 16; j++) {
    y[j] = (float)((qs[j] & 0x0F) - 8) * d;
    y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
  }
}

static void lamp__dq_q4_1(const unsigned char *b, float *y) {
  float d = lamp__f16_to_f32(lamp__le16(b)), m = lamp__f16_to_f32(lamp__le16(b + 2));
  const unsigned char *qs = b + 4;
  for (int j = 0; j < 16; j++) {
    y[j] = (float)(qs[j] & 0x0F) * d + m;
    y[j + 16] = (float)(qs[j] >> 4) * d + m;
  }
}

static void lamp__dq_q5_0(const unsigned char *b, float *y) {
  float d = lamp__f16_to_f32(lamp__le16(b));
  uint32_t qh = lamp__le32(b + 2);
  const unsigned char *qs = b + 6;
  for (int j = 0; j < 16; j++) {
    int lo = (qs[j] & 0x0F) | (int)(((qh >> j) & 1) << 4);
    int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
    y[j] = (float)(lo - 16) * d;
    y[j + 16] = (float)(hi - 16) * d;
  }
}

static void lamp__dq_q5_1(const unsigned char *b, float *y) {
  float d = lamp__f16_to_f32(lamp__le16(b)), m = lamp__f16_to_f32(lamp__le16(b + 2));
  uint32_t qh = lamp__le32(b + 4);
  const unsigned char *qs = b + 8;
  for (int j = 0; j < 16; j++) {
    int lo = (qs[j] & 0x0F) | (int)(((qh >> j) & 1) << 4);
    int hi = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
    y[j] = (float)lo * d + m;
    y[j + 16] = (float)hi * d + m;
  }
}

static void lamp__dq_q8_0(const unsigned char *b, float *y) {
  float d = lamp__f16_to_f32(lamp__le16(b));
  for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

/* The 6-bit scale and min of sub-block j (0..7) packed in the 12 bytes of Q4_K and Q5_K. */
static void lamp__k4_scale_min(int j, const unsigned char *q, int *sc, int *m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

static void lamp__dq_q4_k(const unsigned char *b, float *y) {
  float d = lamp__f16_to_f32(lamp__le16(b)), dmin = lamp__f16_to_f32(lamp__le16(b + 2));
  const unsigned char *scales = b + 4, *q = b + 16;
  for (int j = 0; j < 8; j += 2, q += 32, y += 64) {
    int sc, m;
    lamp__k4_scale_min(j, scales, &sc, &m);
    float d1 = d * (float)sc, m1 = dmin * (float)m;
    lamp__k4_scale_min(j + 1, scales, &sc, &m);
    float d2 = d * (float)sc, m2 = dmin * (float)m;
    for (int l = 0; l < 32; l++) {
      y[l] = d1 * (float)(q[l] & 0x0F) - m1;
      y[l + 32] = d2 * (float)(q[l] >> 4) - m2;
    }
  }
}

static void lamp__dq_q5_k(const unsigned char *b, float *y) {
  float d = lamp__f16_to_f32(lamp__le16(b)), dmin = lamp__f16_to_f32(lamp__le16(b + 2));
  const unsigned char *scales = b + 4, *qh = b + 16, *ql = b + 48;
  for (int j = 0; j < 8; j += 2, ql += 32, y += 64) {
    int sc, m;
    lamp__k4_scale_min(j, scales, &sc, &m);
    float d1 = d * (float)sc, m1 = dmin * (float)m;
    lamp__k4_scale_min(j + 1, scales, &sc, &m);
    float d2 = d * (float)sc, m2 = dmin * (float)m;
    /* bit j of qh[l] is the high bit of element l of sub-block j */
    for (int l = 0; l < 32; l++) {
      int lo = (ql[l] & 0x0F) | (((qh[l] >> j) & 1) << 4);
      int hi = (ql[l] >> 4) | (((qh[l] >> (j + 1)) & 1) << 4);
      y[l] = d1 * (float)lo - m1;
      y[l + 32] = d2 * (float)hi - m2;
    }
  }
}

static void lamp__dq_q6_k(const unsigned char *b, float *y) {
  const unsigned char *ql = b, *qh = b + 128;
  const int8_t *sc = (const int8_t *)(b + 192);
  float d = lamp__f16_to_f32(lamp__le16(b + 208));
  for (int n = 0; n < 2; n++, ql += 64, qh += 32, sc += 8, y += 128) {
    for (int l = 0; l < 32; l++) {
      int is = l / 16;
      int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * (float)sc[is] * (float)q1;
      y[l + 32] = d * (float)sc[is + 2] * (float)q2;
      y[l + 64] = d * (float)sc[is + 4] * (float)q3;
      y[l + 96] = d * (float)sc[is + 6] * (float)q4;
    }
  }
}

lamp_status lamp_ggml_dequantize(lamp_context *ctx, lamp_ggml_type type, const void *src,
                                 size_t src_size, float *dst, size_t count) {
  const lamp__ggml_traits *tr = lamp__ggml_traits_of(type);
  if (!tr) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "unknown tensor type %d", (int)type);
  if (!tr->decodable)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "lamp cannot dequantise tensor type %s",
                      tr->name);
  if ((!src || !dst) && count)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_ggml_dequantize: NULL");
  if (count % tr->block)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT,
                      "%zu elements are not a whole number of %s blocks of %u", count, tr->name,
                      tr->block);
  size_t blocks = count / tr->block;
  if (blocks > src_size / tr->bytes)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT,
                      "%zu %s elements need %zu blocks of %u bytes, the source has %zu bytes",
                      count, tr->name, blocks, tr->bytes, src_size);
  const unsigned char *s = src;
  switch (type) {
    case LAMP_GGML_F32:
      for (size_t i = 0; i < count; i++) dst[i] = lamp__f32_from_bits(lamp__le32(s + 4 * i));
      break;
    case LAMP_GGML_F16:
      for (size_t i = 0; i < count; i++) dst[i] = lamp__f16_to_f32(lamp__le16(s + 2 * i));
      break;
    case LAMP_GGML_BF16:
      for (size_t i = 0; i < count; i++)
        dst[i] = lamp__f32_from_bits((uint32_t)lamp__le16(s + 2 * i) << 16);
      break;
    default: {
      void (*block)(const unsigned char *, float *) = NULL;
      switch (type) {
        case LAMP_GGML_Q4_0: block = lamp__dq_q4_0; break;
        case LAMP_GGML_Q4_1: block = lamp__dq_q4_1; break;
        case LAMP_GGML_Q5_0: block = lamp__dq_q5_0; break;
        case LAMP_GGML_Q5_1: block = lamp__dq_q5_1; break;
        case LAMP_GGML_Q8_0: block = lamp__dq_q8_0; break;
        case LAMP_GGML_Q4_K: block = lamp__dq_q4_k; break;
        case LAMP_GGML_Q5_K: block = lamp__dq_q5_k; break;
        case LAMP_GGML_Q6_K: block = lamp__dq_q6_k; break;
        default: return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "no decoder for %s", tr->name);
      }
      for (size_t i = 0; i < blocks; i++) block(s + i * tr->bytes, dst + i * tr->block);
    }
  }
  return LAMP_OK;
}

lamp_status lamp_gguf_tensor_read_f32(lamp_context *ctx, lamp_gguf *g,
                                      const lamp_gguf_tensor_info *info, float *dst,
                                      size_t capacity) {
  if (!g || !info || !dst)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_gguf_tensor_read_f32: NULL");
  if (info->numel > capacity)
    return lamp__gguf_fail(ctx, g, LAMP_ERR_INVALID_ARGUMENT,
                           "tensor \"%s\" has %llu elements, the destination holds %zu",
                           info->name, (unsigned long long)info->numel, capacity);
  /* The info must describe this file's data (a caller's copy could have been edited). */
  if (!info->data || (const unsigned char *)info->data < g->base || info->offset > g->size ||
      info->size > g->size - info->offset || (const unsigned char *)info->data != g->base + info->offset)
    return lamp__gguf_fail(ctx, g, LAMP_ERR_INVALID_ARGUMENT,
                           "tensor \"%s\": the info does not describe this file", info->name);
  if (!lamp_ggml_type_decodable(info->type))
    return lamp__gguf_fail(ctx, g, LAMP_ERR_UNSUPPORTED,
                           "tensor \"%s\" has type %s, which lamp cannot dequantise", info->name,
                           lamp_ggml_type_name(info->type));
  lamp_status st = lamp_ggml_dequantize(NULL, info->type, info->data, (size_t)info->size, dst,
                                        (size_t)info->numel);
  if (st != LAMP_OK)
    return lamp__gguf_fail(ctx, g, st, "tensor \"%s\": %s data does not decode", info->name,
                           lamp_ggml_type_name(info->type));
  return LAMP_OK;
}

/* ---- hyper-parameters ---- */

/* Reads "<arch>.<suffix>" as an integer in [1, max]; `def` (when non-zero) stands for a missing
 * key. */
static lamp_status lamp__hp_uint(lamp_context *ctx, lamp_gguf *g, const char *arch,
                                 const char *suffix, uint32_t def, uint32_t max, uint32_t *out) {
  char key[128];
  snprintf(key, sizeof(key), "%s.%s", arch, suffix);
  int64_t v;
  lamp_status st = lamp_gguf_get_int(NULL, g, key, &v);
  if (st == LAMP_ERR_NOT_FOUND && def) {
    *out = def;
    return LAMP_OK;
  }
  if (st == LAMP_ERR_NOT_FOUND) return LAMP__BAD("required key \"%s\" is missing", key);
  if (st != LAMP_OK) return lamp__fail(ctx, st, "%s", g->error);
  if (v < 1 || v > (int64_t)max)
    return LAMP__BAD("key \"%s\" is %lld, outside 1..%u", key, (long long)v, max);
  *out = (uint32_t)v;
  return LAMP_OK;
}

static lamp_status lamp__hp_float(lamp_context *ctx, lamp_gguf *g, const char *arch,
                                  const char *suffix, float def, float *out) {
  char key[128];
  snprintf(key, sizeof(key), "%s.%s", arch, suffix);
  double v;
  lamp_status st = lamp_gguf_get_float(NULL, g, key, &v);
  if (st == LAMP_ERR_NOT_FOUND) {
    *out = def;
    return LAMP_OK;
  }
  if (st != LAMP_OK) return lamp__fail(ctx, st, "%s", g->error);
  if (!(v > 0) || !isfinite(v) || v > 1e30)
    return LAMP__BAD("key \"%s\" is %g, not a positive finite number", key, v);
  *out = (float)v;
  return LAMP_OK;
}

lamp_status lamp__gguf_llama_hparams(lamp_context *ctx, lamp_gguf *g, lamp__llama_hparams *hp) {
  if (!g || !hp) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp__gguf_llama_hparams: NULL");
  memset(hp, 0, sizeof(*hp));
  const char *arch;
  size_t arch_len;
  lamp_status st = lamp_gguf_get_string(NULL, g, "general.architecture", &arch, &arch_len);
  if (st == LAMP_ERR_NOT_FOUND) return LAMP__BAD("required key \"general.architecture\" is missing");
  if (st != LAMP_OK) return lamp__fail(ctx, st, "%s", g->error);
  if (arch_len == 0 || arch_len >= sizeof(hp->architecture) || memchr(arch, 0, arch_len))
    return LAMP__BAD("key \"general.architecture\" is not a short name");
  memcpy(hp->architecture, arch, arch_len);
  hp->architecture[arch_len] = '\0';
  const char *a = hp->architecture;
  const uint32_t big = 1u << 20;
  LAMP__TRY(lamp__hp_uint(ctx, g, a, "block_count", 0, 4096, &hp->n_layers));
  LAMP__TRY(lamp__hp_uint(ctx, g, a, "embedding_length", 0, big, &hp->n_embd));
  LAMP__TRY(lamp__hp_uint(ctx, g, a, "attention.head_count", 0, 65536, &hp->n_heads));
  LAMP__TRY(lamp__hp_uint(ctx, g, a, "attention.head_count_kv", hp->n_heads, 65536,
                          &hp->n_kv_heads));
  LAMP__TRY(lamp__hp_uint(ctx, g, a, "feed_forward_length", 0, big, &hp->n_ff));
  LAMP__TRY(lamp__hp_uint(ctx, g, a, "context_length", 0, 1u << 24, &hp->n_ctx));
  if (hp->n_embd % hp->n_heads)
    return LAMP__BAD("width %u is not a multiple of the %u heads", hp->n_embd, hp->n_heads);
  LAMP__TRY(lamp__hp_uint(ctx, g, a, "attention.key_length", hp->n_embd / hp->n_heads, big,
                          &hp->head_dim));
  LAMP__TRY(lamp__hp_uint(ctx, g, a, "rope.dimension_count", hp->head_dim, big, &hp->rope_dim));
  if (hp->n_heads % hp->n_kv_heads)
    return LAMP__BAD("%u heads are not a multiple of the %u KV heads", hp->n_heads,
                     hp->n_kv_heads);
  if (hp->rope_dim > hp->head_dim || hp->rope_dim % 2)
    return LAMP__BAD("RoPE dimension %u is odd or exceeds the head dimension %u", hp->rope_dim,
                     hp->head_dim);
  char key[128];
  snprintf(key, sizeof(key), "%s.vocab_size", a);
  size_t ti;
  if (lamp_gguf_find_key(NULL, g, key, &ti) == LAMP_OK) {
    LAMP__TRY(lamp__hp_uint(ctx, g, a, "vocab_size", 0, 1u << 24, &hp->n_vocab));
  } else if (lamp_gguf_find_key(NULL, g, "tokenizer.ggml.tokens", &ti) == LAMP_OK &&
             g->kvs[ti].type == LAMP_GGUF_ARRAY && g->kvs[ti].count >= 1 &&
             g->kvs[ti].count <= (1u << 24)) {
    hp->n_vocab = (uint32_t)g->kvs[ti].count;
  } else {
    return LAMP__BAD("neither \"%s\" nor a tokenizer.ggml.tokens array gives the vocabulary", key);
  }
  LAMP__TRY(lamp__hp_float(ctx, g, a, "rope.freq_base", 10000.0f, &hp->rope_freq_base));
  LAMP__TRY(lamp__hp_float(ctx, g, a, "attention.layer_norm_rms_epsilon", 1e-5f, &hp->norm_eps));
  g->error[0] = '\0';
  return LAMP_OK;
}
