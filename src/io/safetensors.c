/* safetensors reader and f32 writer. The header is untrusted input: the parser accepts exactly
 * the structure the format defines, and every number is checked before it is used. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "runtime/internal.h"
#include "lamp/safetensors.h"

static const struct {
  const char *name;
  size_t size;
} lamp__st_dtypes[] = {
    [LAMP_ST_BOOL] = {"BOOL", 1},       [LAMP_ST_U8] = {"U8", 1},
    [LAMP_ST_I8] = {"I8", 1},           [LAMP_ST_F8_E4M3] = {"F8_E4M3", 1},
    [LAMP_ST_F8_E5M2] = {"F8_E5M2", 1}, [LAMP_ST_I16] = {"I16", 2},
    [LAMP_ST_U16] = {"U16", 2},         [LAMP_ST_F16] = {"F16", 2},
    [LAMP_ST_BF16] = {"BF16", 2},       [LAMP_ST_I32] = {"I32", 4},
    [LAMP_ST_U32] = {"U32", 4},         [LAMP_ST_F32] = {"F32", 4},
    [LAMP_ST_I64] = {"I64", 8},         [LAMP_ST_U64] = {"U64", 8},
    [LAMP_ST_F64] = {"F64", 8},
};
#define LAMP__ST_NDTYPES (sizeof(lamp__st_dtypes) / sizeof(lamp__st_dtypes[0]))

/* Metadata key prefix of the checksums the writer stores: FNV-1a 64 of each tensor's bytes, as
 * 16 hex digits, under "lamp.fnv1a64.<tensor name>". */
#define LAMP__ST_SUM_PREFIX "lamp.fnv1a64."
#define LAMP__ST_SUM_KEY 1024

const char *lamp_safetensors_dtype_name(lamp_st_dtype dtype) {
  return (unsigned)dtype < LAMP__ST_NDTYPES ? lamp__st_dtypes[dtype].name : NULL;
}

lamp_status lamp_safetensors_dtype_from_name(const char *name, lamp_st_dtype *out) {
  if (!name || !out) return LAMP_ERR_INVALID_ARGUMENT;
  for (size_t d = 0; d < LAMP__ST_NDTYPES; d++)
    if (!strcasecmp(name, lamp__st_dtypes[d].name)) {
      *out = (lamp_st_dtype)d;
      return LAMP_OK;
    }
  return LAMP_ERR_INVALID_ARGUMENT;
}

size_t lamp_safetensors_dtype_size(lamp_st_dtype dtype) {
  return (unsigned)dtype < LAMP__ST_NDTYPES ? lamp__st_dtypes[dtype].size : 0;
}

static int lamp__host_little_endian(void) {
  const uint16_t one = 1;
  unsigned char first;
  memcpy(&first, &one, 1);
  return first == 1;
}

typedef struct lamp__st_meta {
  char *key, *value;
} lamp__st_meta;

struct lamp_safetensors {
  lamp_context *ctx;
  char *path;
  FILE *file;
  uint64_t file_size;
  lamp_st_tensor *tensors;
  size_t n_tensors, cap_tensors;
  lamp__st_meta *meta;
  size_t n_meta, cap_meta;
  int seen_meta;
};

/* ---- header parsing ---- */

typedef struct lamp__json {
  lamp_safetensors *st;
  const char *text;
  size_t len, pos;
} lamp__json;

static lamp_status lamp__json_fail(lamp__json *j, const char *what) {
  return lamp__fail(j->st->ctx, LAMP_ERR_FORMAT, "%s: safetensors header, byte %zu: %s",
                    j->st->path, j->pos, what);
}

static void lamp__json_ws(lamp__json *j) {
  while (j->pos < j->len) {
    char c = j->text[j->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    j->pos++;
  }
}

/* Skips white space and consumes `c`, or fails naming what was expected. */
static lamp_status lamp__json_expect(lamp__json *j, char c, const char *what) {
  lamp__json_ws(j);
  if (j->pos >= j->len || j->text[j->pos] != c) return lamp__json_fail(j, what);
  j->pos++;
  return LAMP_OK;
}

/* Consumes ',' (returns 1) or `close` (returns 0) after an element; -1 on anything else. */
static int lamp__json_next(lamp__json *j, char close) {
  lamp__json_ws(j);
  if (j->pos < j->len && j->text[j->pos] == ',') {
    j->pos++;
    return 1;
  }
  if (j->pos < j->len && j->text[j->pos] == close) {
    j->pos++;
    return 0;
  }
  return -1;
}

static int lamp__hex4(const char *s, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

static size_t lamp__utf8_put(char *dst, unsigned cp) {
  if (cp < 0x80) {
    dst[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    dst[0] = (char)(0xc0 | (cp >> 6));
    dst[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    dst[0] = (char)(0xe0 | (cp >> 12));
    dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    dst[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  dst[0] = (char)(0xf0 | (cp >> 18));
  dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  dst[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* A JSON string, escapes decoded, as a new NUL-terminated string. The decoded text is never
 * longer than the quoted source, which bounds the allocation by the header size. */
static lamp_status lamp__json_string(lamp__json *j, char **out) {
  *out = NULL;
  LAMP__TRY(lamp__json_expect(j, '"', "expected a string"));
  size_t start = j->pos, end = start;
  while (end < j->len && j->text[end] != '"') end += j->text[end] == '\\' ? 2 : 1;
  if (end >= j->len) return lamp__json_fail(j, "unterminated string");
  char *s = malloc(end - start + 1);
  if (!s) return lamp__fail(j->st->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory parsing %s",
                            j->st->path);
  size_t n = 0;
  while (j->pos < end) {
    unsigned char c = (unsigned char)j->text[j->pos];
    if (c < 0x20) {
      free(s);
      return lamp__json_fail(j, "control character inside a string");
    }
    if (c != '\\') {
      s[n++] = (char)c;
      j->pos++;
      continue;
    }
    char e = j->text[j->pos + 1];
    j->pos += 2;
    const char *simple = "\"\\/bfnrt", *value = "\"\\/\b\f\n\r\t";
    const char *hit = e ? strchr(simple, e) : NULL;
    if (hit) {
      s[n++] = value[hit - simple];
      continue;
    }
    unsigned cp = 0, lo = 0;
    if (e != 'u' || end - j->pos < 4 || lamp__hex4(j->text + j->pos, &cp) != 0) {
      free(s);
      return lamp__json_fail(j, "invalid escape in a string");
    }
    j->pos += 4;
    if (cp >= 0xd800 && cp < 0xdc00) {
      if (end - j->pos < 6 || j->text[j->pos] != '\\' || j->text[j->pos + 1] != 'u' ||
          lamp__hex4(j->text + j->pos + 2, &lo) != 0 || lo < 0xdc00 || lo >= 0xe000) {
        free(s);
        return lamp__json_fail(j, "unpaired UTF-16 surrogate in a string");
      }
      j->pos += 6;
      cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    } else if (cp >= 0xdc00 && cp < 0xe000) {
      free(s);
      return lamp__json_fail(j, "unpaired UTF-16 surrogate in a string");
    }
    if (cp == 0) {
      free(s);
      return lamp__json_fail(j, "NUL character inside a string");
    }
    /* a \uXXXX escape is 6 source bytes for at most 3 output bytes (4 for 12 with a pair) */
    n += lamp__utf8_put(s + n, cp);
  }
  j->pos = end + 1;
  s[n] = '\0';
  *out = s;
  return LAMP_OK;
}

static lamp_status lamp__json_u64(lamp__json *j, uint64_t *out) {
  lamp__json_ws(j);
  if (j->pos >= j->len || j->text[j->pos] < '0' || j->text[j->pos] > '9')
    return lamp__json_fail(j, "expected a non-negative integer");
  uint64_t v = 0;
  while (j->pos < j->len && j->text[j->pos] >= '0' && j->text[j->pos] <= '9') {
    unsigned d = (unsigned)(j->text[j->pos] - '0');
    if (v > (UINT64_MAX - d) / 10) return lamp__json_fail(j, "integer overflows 64 bits");
    v = v * 10 + d;
    j->pos++;
  }
  if (j->pos < j->len && (j->text[j->pos] == '.' || j->text[j->pos] == 'e' ||
                          j->text[j->pos] == 'E'))
    return lamp__json_fail(j, "expected an integer, found a fraction or exponent");
  *out = v;
  return LAMP_OK;
}

/* "[u64, ...]" with at most `cap` elements. */
static lamp_status lamp__json_u64_array(lamp__json *j, uint64_t *vals, int cap, int *count,
                                        const char *field) {
  char msg[96];
  *count = 0;
  snprintf(msg, sizeof(msg), "expected '[' opening \"%s\"", field);
  LAMP__TRY(lamp__json_expect(j, '[', msg));
  lamp__json_ws(j);
  if (j->pos < j->len && j->text[j->pos] == ']') {
    j->pos++;
    return LAMP_OK;
  }
  for (;;) {
    if (*count == cap) {
      snprintf(msg, sizeof(msg), "\"%s\" has more than %d entries", field, cap);
      return lamp__json_fail(j, msg);
    }
    LAMP__TRY(lamp__json_u64(j, &vals[(*count)++]));
    int more = lamp__json_next(j, ']');
    if (more < 0) {
      snprintf(msg, sizeof(msg), "expected ',' or ']' in \"%s\"", field);
      return lamp__json_fail(j, msg);
    }
    if (!more) return LAMP_OK;
  }
}

static lamp_status lamp__st_parse_metadata(lamp__json *j) {
  lamp_safetensors *st = j->st;
  if (st->seen_meta) return lamp__json_fail(j, "\"__metadata__\" appears twice");
  st->seen_meta = 1;
  LAMP__TRY(lamp__json_expect(j, '{', "expected '{' opening \"__metadata__\""));
  lamp__json_ws(j);
  if (j->pos < j->len && j->text[j->pos] == '}') {
    j->pos++;
    return LAMP_OK;
  }
  for (;;) {
    char *key = NULL, *value = NULL;
    LAMP__TRY(lamp__json_string(j, &key));
    lamp_status s = lamp__json_expect(j, ':', "expected ':' after a metadata key");
    if (s == LAMP_OK) {
      lamp__json_ws(j);
      s = (j->pos < j->len && j->text[j->pos] == '"')
              ? lamp__json_string(j, &value)
              : lamp__json_fail(j, "metadata values must be strings");
    }
    if (s == LAMP_OK && st->n_meta == st->cap_meta) {
      size_t cap = st->cap_meta ? 2 * st->cap_meta : 8;
      lamp__st_meta *grown = realloc(st->meta, cap * sizeof(*grown));
      if (!grown) s = lamp__fail(st->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
      else {
        st->meta = grown;
        st->cap_meta = cap;
      }
    }
    if (s != LAMP_OK) {
      free(key);
      free(value);
      return s;
    }
    st->meta[st->n_meta].key = key;
    st->meta[st->n_meta].value = value;
    st->n_meta++;
    int more = lamp__json_next(j, '}');
    if (more < 0) return lamp__json_fail(j, "expected ',' or '}' in \"__metadata__\"");
    if (!more) return LAMP_OK;
  }
}

/* {"dtype": "...", "shape": [...], "data_offsets": [b, e]} into t (name already set). */
static lamp_status lamp__st_parse_tensor(lamp__json *j, lamp_st_tensor *t, uint64_t range[2]) {
  int seen_dtype = 0, seen_shape = 0, seen_offsets = 0;
  LAMP__TRY(lamp__json_expect(j, '{', "expected '{' opening a tensor entry"));
  lamp__json_ws(j);
  if (j->pos < j->len && j->text[j->pos] == '}') j->pos++;
  else
    for (;;) {
      char *key = NULL;
      LAMP__TRY(lamp__json_string(j, &key));
      lamp_status s = lamp__json_expect(j, ':', "expected ':' after a key");
      if (s == LAMP_OK && strcmp(key, "dtype") == 0 && !seen_dtype) {
        char *name = NULL;
        seen_dtype = 1;
        s = lamp__json_string(j, &name);
        if (s == LAMP_OK) {
          size_t i = 0;
          while (i < LAMP__ST_NDTYPES && strcmp(lamp__st_dtypes[i].name, name) != 0) i++;
          if (i == LAMP__ST_NDTYPES)
            s = lamp__fail(j->st->ctx, LAMP_ERR_FORMAT, "%s: tensor '%s' has unknown dtype "
                           "\"%.32s\"", j->st->path, t->name, name);
          t->dtype = (lamp_st_dtype)i;
        }
        free(name);
      } else if (s == LAMP_OK && strcmp(key, "shape") == 0 && !seen_shape) {
        seen_shape = 1;
        s = lamp__json_u64_array(j, t->shape, LAMP_SAFETENSORS_MAX_DIMS, &t->ndim, "shape");
      } else if (s == LAMP_OK && strcmp(key, "data_offsets") == 0 && !seen_offsets) {
        int n = 0;
        seen_offsets = 1;
        s = lamp__json_u64_array(j, range, 2, &n, "data_offsets");
        if (s == LAMP_OK && n != 2)
          s = lamp__fail(j->st->ctx, LAMP_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" needs "
                         "2 entries, has %d", j->st->path, t->name, n);
      } else if (s == LAMP_OK) {
        s = lamp__fail(j->st->ctx, LAMP_ERR_FORMAT, "%s: tensor '%s': unexpected or repeated "
                       "key \"%.64s\"", j->st->path, t->name, key);
      }
      free(key);
      LAMP__TRY(s);
      int more = lamp__json_next(j, '}');
      if (more < 0) return lamp__json_fail(j, "expected ',' or '}' in a tensor entry");
      if (!more) break;
    }
  if (!seen_dtype || !seen_shape || !seen_offsets)
    return lamp__fail(j->st->ctx, LAMP_ERR_FORMAT, "%s: tensor '%s' lacks \"%s\"", j->st->path,
                      t->name, !seen_dtype ? "dtype" : !seen_shape ? "shape" : "data_offsets");
  return LAMP_OK;
}

/* Checks a tensor's element count and byte range against its dtype and the data section. */
static lamp_status lamp__st_check_tensor(lamp_safetensors *st, lamp_st_tensor *t,
                                         const uint64_t range[2], uint64_t data_start,
                                         uint64_t data_size) {
  uint64_t numel = 1;
  for (int d = 0; d < t->ndim; d++) {
    if (t->shape[d] && numel > UINT64_MAX / t->shape[d])
      return lamp__fail(st->ctx, LAMP_ERR_FORMAT, "%s: tensor '%s': element count overflows",
                        st->path, t->name);
    numel *= t->shape[d];
  }
  uint64_t es = lamp_safetensors_dtype_size(t->dtype);
  if (numel > UINT64_MAX / es)
    return lamp__fail(st->ctx, LAMP_ERR_FORMAT, "%s: tensor '%s': byte size overflows", st->path,
                      t->name);
  if (range[1] < range[0] || range[1] > data_size)
    return lamp__fail(st->ctx, LAMP_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] lie "
                      "outside the %llu-byte data section", st->path, t->name,
                      (unsigned long long)range[0], (unsigned long long)range[1],
                      (unsigned long long)data_size);
  if (range[1] - range[0] != numel * es)
    return lamp__fail(st->ctx, LAMP_ERR_FORMAT, "%s: tensor '%s': data_offsets span %llu bytes "
                      "but %llu elements of %s need %llu", st->path, t->name,
                      (unsigned long long)(range[1] - range[0]), (unsigned long long)numel,
                      lamp_safetensors_dtype_name(t->dtype), (unsigned long long)(numel * es));
  t->numel = numel;
  t->offset = data_start + range[0];
  t->size = numel * es;
  return LAMP_OK;
}

static int lamp__st_by_name(const void *a, const void *b) {
  const lamp_st_tensor *x = *(const lamp_st_tensor *const *)a;
  const lamp_st_tensor *y = *(const lamp_st_tensor *const *)b;
  return strcmp(x->name, y->name);
}

static int lamp__st_by_offset(const void *a, const void *b) {
  const lamp_st_tensor *x = *(const lamp_st_tensor *const *)a;
  const lamp_st_tensor *y = *(const lamp_st_tensor *const *)b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Unique names and no two tensors sharing bytes; sorting keeps this O(n log n). */
static lamp_status lamp__st_check_table(lamp_safetensors *st) {
  if (st->n_tensors < 2) return LAMP_OK;
  const lamp_st_tensor **order = malloc(st->n_tensors * sizeof(*order));
  if (!order) return lamp__fail(st->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < st->n_tensors; i++) order[i] = &st->tensors[i];
  lamp_status s = LAMP_OK;
  qsort(order, st->n_tensors, sizeof(*order), lamp__st_by_name);
  for (size_t i = 1; i < st->n_tensors && s == LAMP_OK; i++)
    if (strcmp(order[i - 1]->name, order[i]->name) == 0)
      s = lamp__fail(st->ctx, LAMP_ERR_FORMAT, "%s: tensor name '%s' appears twice", st->path,
                     order[i]->name);
  qsort(order, st->n_tensors, sizeof(*order), lamp__st_by_offset);
  uint64_t end = 0;
  const char *prev = NULL;
  for (size_t i = 0; i < st->n_tensors && s == LAMP_OK; i++) {
    if (!order[i]->size) continue;
    if (prev && order[i]->offset < end)
      s = lamp__fail(st->ctx, LAMP_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", st->path,
                     prev, order[i]->name);
    end = order[i]->offset + order[i]->size;
    prev = order[i]->name;
  }
  free(order);
  return s;
}

static lamp_status lamp__st_parse_header(lamp_safetensors *st, const char *text, size_t len,
                                         uint64_t data_start, uint64_t data_size) {
  lamp__json j = {st, text, len, 0};
  LAMP__TRY(lamp__json_expect(&j, '{', "the header is not a JSON object"));
  lamp__json_ws(&j);
  int more = 1;
  if (j.pos < j.len && j.text[j.pos] == '}') {
    j.pos++;
    more = 0;
  }
  while (more) {
    char *name = NULL;
    LAMP__TRY(lamp__json_string(&j, &name));
    lamp_status s = lamp__json_expect(&j, ':', "expected ':' after a tensor name");
    if (s == LAMP_OK && strcmp(name, "__metadata__") == 0) {
      free(name);
      LAMP__TRY(lamp__st_parse_metadata(&j));
    } else {
      if (s == LAMP_OK && st->n_tensors == st->cap_tensors) {
        size_t cap = st->cap_tensors ? 2 * st->cap_tensors : 16;
        lamp_st_tensor *grown = realloc(st->tensors, cap * sizeof(*grown));
        if (!grown) s = lamp__fail(st->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
        else {
          st->tensors = grown;
          st->cap_tensors = cap;
        }
      }
      if (s != LAMP_OK) {
        free(name);
        return s;
      }
      lamp_st_tensor *t = &st->tensors[st->n_tensors++];
      memset(t, 0, sizeof(*t));
      t->name = name; /* owned by the table from here on */
      uint64_t range[2] = {0, 0};
      LAMP__TRY(lamp__st_parse_tensor(&j, t, range));
      LAMP__TRY(lamp__st_check_tensor(st, t, range, data_start, data_size));
    }
    more = lamp__json_next(&j, '}');
    if (more < 0) return lamp__json_fail(&j, "expected ',' or '}' after a header entry");
  }
  lamp__json_ws(&j);
  if (j.pos != j.len) return lamp__json_fail(&j, "unexpected text after the header object");
  return lamp__st_check_table(st);
}

static lamp_status lamp__st_file_size(lamp_safetensors *st, uint64_t *size) {
  if (fseeko(st->file, 0, SEEK_END) != 0)
    return lamp__fail(st->ctx, LAMP_ERR_IO, "cannot seek in %s: %s", st->path, strerror(errno));
  off_t end = ftello(st->file);
  if (end < 0)
    return lamp__fail(st->ctx, LAMP_ERR_IO, "cannot size %s: %s", st->path, strerror(errno));
  *size = (uint64_t)end;
  return LAMP_OK;
}

static lamp_status lamp__st_read_at(lamp_safetensors *st, uint64_t offset, void *dst,
                                    size_t size, const char *what) {
  struct stat info;
  if (fstat(fileno(st->file), &info) != 0)
    return lamp__fail(st->ctx, LAMP_ERR_IO, "cannot stat %s: %s", st->path, strerror(errno));
  if ((uint64_t)info.st_size < offset || (uint64_t)info.st_size - offset < size)
    return lamp__fail(st->ctx, LAMP_ERR_FORMAT, "%s: file ends (now %llu bytes) before the %zu "
                      "bytes of %s at byte %llu", st->path, (unsigned long long)info.st_size,
                      size, what, (unsigned long long)offset);
  if (offset > (uint64_t)INT64_MAX || fseeko(st->file, (off_t)offset, SEEK_SET) != 0)
    return lamp__fail(st->ctx, LAMP_ERR_IO, "cannot seek to byte %llu of %s: %s",
                      (unsigned long long)offset, st->path, strerror(errno));
  if (size && fread(dst, 1, size, st->file) != size)
    return lamp__fail(st->ctx, ferror(st->file) ? LAMP_ERR_IO : LAMP_ERR_FORMAT,
                      "%s: file ends before the %zu bytes of %s at byte %llu", st->path, size,
                      what, (unsigned long long)offset);
  return LAMP_OK;
}

static lamp_status lamp__st_open(lamp_safetensors *st) {
  uint64_t fsize = 0;
  LAMP__TRY(lamp__st_file_size(st, &fsize));
  st->file_size = fsize;
  if (fsize < 8)
    return lamp__fail(st->ctx, LAMP_ERR_FORMAT, "%s: %llu bytes is too short for a safetensors "
                      "file (8-byte header length missing)", st->path, (unsigned long long)fsize);
  unsigned char lenbuf[8];
  LAMP__TRY(lamp__st_read_at(st, 0, lenbuf, 8, "the header length"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | lenbuf[i];
  if (n < 2 || n > LAMP_SAFETENSORS_MAX_HEADER || n > fsize - 8)
    return lamp__fail(st->ctx, LAMP_ERR_FORMAT, "%s: header length %llu is impossible for a "
                      "%llu-byte file (limit %u)", st->path, (unsigned long long)n,
                      (unsigned long long)fsize, LAMP_SAFETENSORS_MAX_HEADER);
  char *text = malloc((size_t)n + 1);
  if (!text)
    return lamp__fail(st->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory for a %llu-byte header",
                      (unsigned long long)n);
  lamp_status s = lamp__st_read_at(st, 8, text, (size_t)n, "the header");
  if (s == LAMP_OK) {
    text[n] = '\0';
    s = lamp__st_parse_header(st, text, (size_t)n, 8 + n, fsize - 8 - n);
  }
  free(text);
  return s;
}

lamp_status lamp_safetensors_open(lamp_context *ctx, const char *path, lamp_safetensors **out) {
  if (!path || !out)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_safetensors_open: NULL argument");
  *out = NULL;
  lamp_safetensors *st = calloc(1, sizeof(*st));
  if (!st || !(st->path = strdup(path))) {
    free(st);
    return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory opening %s", path);
  }
  st->ctx = ctx;
  st->file = fopen(path, "rb");
  /* unbuffered: tensor reads go straight into the caller's memory, and a read after the file
   * changed sees the file, not a stale buffer */
  if (st->file) setvbuf(st->file, NULL, _IONBF, 0);
  lamp_status s = st->file ? lamp__st_open(st)
                           : lamp__fail(ctx, LAMP_ERR_IO, "cannot open %s: %s", path,
                                        strerror(errno));
  if (s != LAMP_OK) {
    lamp_safetensors_release(st);
    return s;
  }
  *out = st;
  return LAMP_OK;
}

void lamp_safetensors_release(lamp_safetensors *st) {
  if (!st) return;
  if (st->file) fclose(st->file);
  for (size_t i = 0; i < st->n_tensors; i++) free((char *)st->tensors[i].name);
  for (size_t i = 0; i < st->n_meta; i++) {
    free(st->meta[i].key);
    free(st->meta[i].value);
  }
  free(st->tensors);
  free(st->meta);
  free(st->path);
  free(st);
}

size_t lamp_safetensors_count(const lamp_safetensors *st) { return st ? st->n_tensors : 0; }

const lamp_st_tensor *lamp_safetensors_tensors(const lamp_safetensors *st) {
  return st ? st->tensors : NULL;
}

lamp_status lamp_safetensors_find(const lamp_safetensors *st, const char *name,
                                  const lamp_st_tensor **out) {
  if (!st || !name || !out) return LAMP_ERR_INVALID_ARGUMENT;
  *out = NULL;
  for (size_t i = 0; i < st->n_tensors; i++)
    if (strcmp(st->tensors[i].name, name) == 0) {
      *out = &st->tensors[i];
      return LAMP_OK;
    }
  return lamp__fail(st->ctx, LAMP_ERR_NOT_FOUND, "%s has no tensor named '%s'", st->path, name);
}

size_t lamp_safetensors_metadata_count(const lamp_safetensors *st) {
  return st ? st->n_meta : 0;
}

lamp_status lamp_safetensors_metadata_at(const lamp_safetensors *st, size_t index,
                                         const char **key, const char **value) {
  if (!st || !key || !value) return LAMP_ERR_INVALID_ARGUMENT;
  if (index >= st->n_meta)
    return lamp__fail(st->ctx, LAMP_ERR_NOT_FOUND, "%s: metadata index %zu of %zu", st->path,
                      index, st->n_meta);
  *key = st->meta[index].key;
  *value = st->meta[index].value;
  return LAMP_OK;
}

const char *lamp_safetensors_metadata_get(const lamp_safetensors *st, const char *key) {
  if (!st || !key) return NULL;
  for (size_t i = 0; i < st->n_meta; i++)
    if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
  return NULL;
}

/* `t` must be an entry of this reader's own table: its offsets were checked at open. */
static lamp_status lamp__st_own_tensor(lamp_safetensors *st, const lamp_st_tensor *t) {
  if (!st->n_tensors || t < st->tensors || t >= st->tensors + st->n_tensors)
    return lamp__fail(st->ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: the tensor is not an entry of "
                      "this file's table", st->path);
  return LAMP_OK;
}

/* A tensor's bytes against the checksum its writer stored, when it stored one. */
static lamp_status lamp__st_verify(lamp_safetensors *st, lamp_context *ctx, const lamp_st_tensor *t,
                                   const void *data) {
  char key[LAMP__ST_SUM_KEY];
  snprintf(key, sizeof(key), "%s%s", LAMP__ST_SUM_PREFIX, t->name);
  const char *want = lamp_safetensors_metadata_get(st, key);
  if (!want) return LAMP_OK;
  char hex[24];
  snprintf(hex, sizeof(hex), "%016llx",
           (unsigned long long)lamp__hash64(LAMP__HASH_SEED, data, (size_t)t->size));
  if (strcmp(hex, want))
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "%s: tensor '%s' does not match its checksum (%s "
                      "stored, %s read): the file is damaged", st->path, t->name, want, hex);
  return LAMP_OK;
}

int lamp_safetensors_checksummed(const lamp_safetensors *st) {
  if (!st) return 0;
  for (size_t i = 0; i < st->n_tensors; i++) {
    char key[LAMP__ST_SUM_KEY];
    snprintf(key, sizeof(key), "%s%s", LAMP__ST_SUM_PREFIX, st->tensors[i].name);
    if (!lamp_safetensors_metadata_get(st, key)) return 0;
  }
  return 1;
}

lamp_status lamp_safetensors_read(lamp_safetensors *st, const lamp_st_tensor *t, void *dst,
                                  size_t size) {
  if (!st || !t || (!dst && size))
    return lamp__fail(st ? st->ctx : NULL, LAMP_ERR_INVALID_ARGUMENT,
                      "lamp_safetensors_read: NULL argument");
  LAMP__TRY(lamp__st_own_tensor(st, t));
  if (size != t->size)
    return lamp__fail(st->ctx, LAMP_ERR_SHAPE, "%s: tensor '%s' has %llu bytes, not %zu",
                      st->path, t->name, (unsigned long long)t->size, size);
  LAMP__TRY(lamp__st_read_at(st, t->offset, dst, size, t->name));
  return lamp__st_verify(st, st->ctx, t, dst);
}

lamp_status lamp_safetensors_upload(lamp_safetensors *st, const lamp_st_tensor *t,
                                    lamp_context *ctx, lamp_tensor *dst) {
  if (!st || !t || !ctx || !dst)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_safetensors_upload: NULL argument");
  LAMP__TRY(lamp__st_own_tensor(st, t));
  if (!lamp__host_little_endian())
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "safetensors data is little-endian; this host "
                      "is not");
  lamp_dtype want = t->dtype == LAMP_ST_F32 ? LAMP_DTYPE_F32 : LAMP_DTYPE_F16;
  if ((t->dtype != LAMP_ST_F32 && t->dtype != LAMP_ST_F16) || dst->dtype != want)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; it uploads only F32 to "
                      "an f32 tensor or F16 to an f16 tensor", st->path, t->name,
                      lamp_safetensors_dtype_name(t->dtype));
  if (t->numel != lamp_tensor_numel(dst))
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "%s: tensor '%s' has %llu elements, the destination "
                      "%zu", st->path, t->name, (unsigned long long)t->numel,
                      lamp_tensor_numel(dst));
  void *host = malloc(t->size ? (size_t)t->size : 1);
  if (!host) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory staging '%s'", t->name);
  lamp_context *reader_ctx = st->ctx; /* report a failed read on the caller's context */
  st->ctx = ctx;
  lamp_status s = lamp__st_read_at(st, t->offset, host, (size_t)t->size, t->name);
  st->ctx = reader_ctx;
  if (s == LAMP_OK) s = lamp__st_verify(st, ctx, t, host);
  if (s == LAMP_OK) s = lamp_tensor_upload(ctx, dst, host, (size_t)t->size);
  free(host);
  return s;
}

/* ---- writer ---- */

typedef struct lamp__strbuf {
  char *data;
  size_t len, cap;
  int failed;
} lamp__strbuf;

static void lamp__sb_put(lamp__strbuf *b, const char *s, size_t n) {
  if (b->failed) return;
  if (n > SIZE_MAX - b->len - 1) {
    b->failed = 1;
    return;
  }
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : 2 * cap;
    char *grown = realloc(b->data, cap);
    if (!grown) {
      b->failed = 1;
      return;
    }
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void lamp__sb_str(lamp__strbuf *b, const char *s) { lamp__sb_put(b, s, strlen(s)); }

/* A JSON string literal: quotes, backslashes and control characters escaped. */
static void lamp__sb_json(lamp__strbuf *b, const char *s) {
  lamp__sb_put(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      lamp__sb_put(b, esc, 2);
    } else if (c < 0x20) {
      snprintf(esc, sizeof(esc), "\\u%04x", c);
      lamp__sb_put(b, esc, 6);
    } else {
      lamp__sb_put(b, (const char *)&c, 1);
    }
  }
  lamp__sb_put(b, "\"", 1);
}

static void lamp__sb_u64(lamp__strbuf *b, uint64_t v) {
  char num[24];
  snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
  lamp__sb_str(b, num);
}

static int lamp__st_entry_by_name(const void *a, const void *b) {
  return strcmp((*(const lamp_st_entry *const *)a)->name,
                (*(const lamp_st_entry *const *)b)->name);
}

static lamp_status lamp__st_check_entries(lamp_context *ctx, const char *path,
                                          const lamp_st_entry *tensors, size_t count,
                                          uint64_t *total) {
  *total = 0;
  for (size_t i = 0; i < count; i++) {
    const lamp_st_entry *e = &tensors[i];
    if (!e->name || !*e->name || strcmp(e->name, "__metadata__") == 0)
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: tensor %zu needs a name other than "
                        "\"\" or \"__metadata__\"", path, i);
    if (e->ndim < 0 || e->ndim > LAMP_SAFETENSORS_MAX_DIMS || (e->ndim && !e->shape))
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: tensor '%s' has %d dimensions "
                        "(0 .. %d)", path, e->name, e->ndim, LAMP_SAFETENSORS_MAX_DIMS);
    uint64_t n = 1;
    for (int d = 0; d < e->ndim; d++) {
      if (e->shape[d] && n > UINT64_MAX / 4 / e->shape[d])
        return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: tensor '%s' is too large", path,
                          e->name);
      n *= e->shape[d];
    }
    if (n && !e->data)
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: tensor '%s' has no data", path,
                        e->name);
    if (*total > UINT64_MAX - 4 * n || *total + 4 * n > SIZE_MAX / 2)
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: tensors too large to write", path);
    *total += 4 * n;
  }
  if (count < 2) return LAMP_OK;
  const lamp_st_entry **order = malloc(count * sizeof(*order));
  if (!order) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < count; i++) order[i] = &tensors[i];
  qsort(order, count, sizeof(*order), lamp__st_entry_by_name);
  lamp_status s = LAMP_OK;
  for (size_t i = 1; i < count && s == LAMP_OK; i++)
    if (strcmp(order[i - 1]->name, order[i]->name) == 0)
      s = lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: tensor name '%s' given twice", path,
                     order[i]->name);
  free(order);
  return s;
}

lamp_status lamp_safetensors_write_f32(lamp_context *ctx, const char *path,
                                       const lamp_st_entry *tensors, size_t count,
                                       const char *const *keys, const char *const *values,
                                       size_t n_metadata) {
  if (!path || (count && !tensors) || (n_metadata && (!keys || !values)))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_safetensors_write_f32: NULL argument");
  if (!lamp__host_little_endian())
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "safetensors data is little-endian; this host "
                      "is not");
  for (size_t i = 0; i < n_metadata; i++)
    if (!keys[i] || !values[i])
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: metadata pair %zu is NULL", path, i);
  uint64_t data_bytes = 0;
  LAMP__TRY(lamp__st_check_entries(ctx, path, tensors, count, &data_bytes));

  for (size_t i = 0; i < n_metadata; i++)
    if (!strncmp(keys[i], LAMP__ST_SUM_PREFIX, strlen(LAMP__ST_SUM_PREFIX)))
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: metadata key %s is the writer's own",
                        path, keys[i]);

  /* each tensor's checksum, so that a reader notices damaged data (NaN written into a value
   * parses fine) */
  lamp__strbuf h = {0};
  lamp__sb_str(&h, "{\"__metadata__\":{");
  for (size_t i = 0; i < n_metadata; i++) {
    lamp__sb_json(&h, keys[i]);
    lamp__sb_str(&h, ":");
    lamp__sb_json(&h, values[i]);
    lamp__sb_str(&h, ",");
  }
  for (size_t i = 0; i < count; i++) {
    uint64_t n = 1;
    for (int d = 0; d < tensors[i].ndim; d++) n *= tensors[i].shape[d];
    char key[LAMP__ST_SUM_KEY], hex[24];
    if (snprintf(key, sizeof(key), "%s%s", LAMP__ST_SUM_PREFIX, tensors[i].name) >= (int)sizeof(key)) {
      free(h.data);
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: tensor name '%.40s...' is longer "
                        "than %d bytes", path, tensors[i].name, LAMP__ST_SUM_KEY - 20);
    }
    snprintf(hex, sizeof(hex), "%016llx",
             (unsigned long long)lamp__hash64(LAMP__HASH_SEED, tensors[i].data, (size_t)(4 * n)));
    if (i) lamp__sb_str(&h, ",");
    lamp__sb_json(&h, key);
    lamp__sb_str(&h, ":");
    lamp__sb_json(&h, hex);
  }
  lamp__sb_str(&h, "}");
  uint64_t at = 0;
  for (size_t i = 0; i < count; i++) {
    const lamp_st_entry *e = &tensors[i];
    uint64_t n = 1;
    lamp__sb_str(&h, ",");
    lamp__sb_json(&h, e->name);
    lamp__sb_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
    for (int d = 0; d < e->ndim; d++) {
      if (d) lamp__sb_str(&h, ",");
      lamp__sb_u64(&h, e->shape[d]);
      n *= e->shape[d];
    }
    lamp__sb_str(&h, "],\"data_offsets\":[");
    lamp__sb_u64(&h, at);
    lamp__sb_str(&h, ",");
    lamp__sb_u64(&h, at + 4 * n);
    lamp__sb_str(&h, "]}");
    at += 4 * n;
  }
  lamp__sb_str(&h, "}");
  while (!h.failed && h.len % 8) lamp__sb_str(&h, " ");
  if (h.failed) {
    free(h.data);
    return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory building the header of %s",
                      path);
  }
  if (h.len > LAMP_SAFETENSORS_MAX_HEADER) {
    free(h.data);
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: header of %zu bytes exceeds the "
                      "format's limit", path, h.len);
  }
  size_t total = 8 + h.len + (size_t)data_bytes;
  unsigned char *file = malloc(total);
  if (!file) {
    free(h.data);
    return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory for %zu bytes of %s", total,
                      path);
  }
  for (int i = 0; i < 8; i++) file[i] = (unsigned char)(((uint64_t)h.len >> (8 * i)) & 0xff);
  memcpy(file + 8, h.data, h.len);
  size_t pos = 8 + h.len;
  for (size_t i = 0; i < count; i++) {
    uint64_t n = 1;
    for (int d = 0; d < tensors[i].ndim; d++) n *= tensors[i].shape[d];
    if (n) memcpy(file + pos, tensors[i].data, (size_t)n * 4);
    pos += (size_t)n * 4;
  }
  free(h.data);
  lamp_status s = lamp__write_file_atomic(ctx, path, file, total);
  free(file);
  return s;
}
