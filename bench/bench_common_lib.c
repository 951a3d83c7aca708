/* Helpers every bench program uses: checks, allocation, time, random fill, JSON output, and a
 * small JSON reader. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"

void bench_check(lamp_context *ctx, lamp_status st, const char *what) {
  if (st == LAMP_OK) return;
  fprintf(stderr, "bench: %s -> %s: %s\n", what, lamp_status_name(st),
          ctx ? lamp_context_error(ctx) : "");
  exit(1);
}

void *bench_malloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) {
    fprintf(stderr, "bench: out of memory (%zu bytes)\n", bytes);
    exit(1);
  }
  return p;
}

double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void bench_fill_uniform(float *x, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
  }
}

static int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_median(double *x, size_t n) {
  if (!n) return NAN;
  qsort(x, n, sizeof(double), bench_cmp_double);
  return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

void bench_json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

void bench_json_number(FILE *f, double v) {
  if (isfinite(v))
    fprintf(f, "%.6g", v);
  else
    fputs("null", f);
}

const char *bench_source_dir(void) { return LAMP_BENCH_SOURCE_DIR; }

const char *bench_tiny_model_path(void) {
  static char path[sizeof(LAMP_BENCH_SOURCE_DIR) + 32];
  snprintf(path, sizeof(path), "%s/../tests/data/tiny.gguf", bench_source_dir());
  return path;
}

char *bench_read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t size = 0, cap = 4096;
  char *text = malloc(cap);
  size_t n;
  while (text && (n = fread(text + size, 1, cap - size - 1, f)) > 0) {
    size += n;
    if (size + 1 == cap) {
      char *grown = realloc(text, 2 * cap);
      if (!grown) free(text);
      text = grown;
      cap *= 2;
    }
  }
  int failed = ferror(f);
  fclose(f);
  if (!text || failed) {
    free(text);
    return NULL;
  }
  text[size] = '\0';
  return text;
}

/* The reader walks the text itself: each function takes the position of a value (or of the
 * white space before it) and returns the position after it, or NULL where the text is not
 * JSON. Nesting is bounded so that a hostile file cannot exhaust the stack. */
#define BENCH_JSON_MAX_DEPTH 64

static const char *json_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  return p;
}

static int json_hex4(const char *p, unsigned *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                 : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                 : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16u;
    if (d == 16) return 0;
    *v = *v * 16 + d;
  }
  return 1;
}

/* A string at p (its opening quote), unescaped into out (size bytes, NUL-terminated, cut short
 * when full) when out is not NULL. */
static const char *json_string(const char *p, char *out, size_t size) {
  if (*p++ != '"') return NULL;
  size_t n = 0;
  while (*p != '"') {
    unsigned char c = (unsigned char)*p++;
    unsigned cp = c;
    if (c == '\0' || c < 0x20) return NULL;
    if (c == '\\') {
      char e = *p++;
      switch (e) {
        case '"': case '\\': case '/': cp = (unsigned char)e; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u': {
          if (!json_hex4(p, &cp)) return NULL;
          p += 4;
          unsigned lo;
          if (cp >= 0xd800 && cp < 0xdc00 && p[0] == '\\' && p[1] == 'u' && json_hex4(p + 2, &lo) &&
              lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
          }
          break;
        }
        default: return NULL;
      }
    }
    /* escapes as UTF-8; other bytes as they are */
    unsigned char buf[4];
    size_t len = 0;
    if (c == '\\' && cp >= 0x80) {
      if (cp < 0x800) {
        buf[len++] = (unsigned char)(0xc0 | cp >> 6);
      } else {
        if (cp < 0x10000) {
          buf[len++] = (unsigned char)(0xe0 | cp >> 12);
        } else {
          buf[len++] = (unsigned char)(0xf0 | cp >> 18);
          buf[len++] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
        }
        buf[len++] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
      }
      buf[len++] = (unsigned char)(0x80 | (cp & 0x3f));
    } else {
      buf[len++] = (unsigned char)cp;
    }
    for (size_t i = 0; i < len && out && n + 1 < size; i++) out[n++] = (char)buf[i];
  }
  if (out && size) out[n] = '\0';
  return p + 1;
}

static const char *json_value(const char *p, int depth);

/* An object or array at p: its members or elements, each value skipped. */
static const char *json_container(const char *p, int depth) {
  char close = *p == '{' ? '}' : ']';
  p = json_ws(p + 1);
  if (*p == close) return p + 1;
  for (;;) {
    if (close == '}') {
      if (!(p = json_string(p, NULL, 0))) return NULL;
      p = json_ws(p);
      if (*p++ != ':') return NULL;
    }
    if (!(p = json_value(p, depth + 1))) return NULL;
    p = json_ws(p);
    if (*p == close) return p + 1;
    if (*p++ != ',') return NULL;
    p = json_ws(p);
  }
}

static const char *json_value(const char *p, int depth) {
  p = json_ws(p);
  if (depth > BENCH_JSON_MAX_DEPTH) return NULL;
  if (*p == '{' || *p == '[') return json_container(p, depth);
  if (*p == '"') return json_string(p, NULL, 0);
  static const char *const words[] = {"true", "false", "null", "NaN", "Infinity", "-Infinity"};
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
    if (!strncmp(p, words[i], strlen(words[i]))) return p + strlen(words[i]);
  if (*p != '-' && (*p < '0' || *p > '9')) return NULL;
  char *end = NULL;
  strtod(p, &end);
  return end == p ? NULL : end;
}

/* The value at `path` below the value at p (its first character), or NULL. */
static const char *json_find(const char *p, const char *path) {
  for (int depth = 0; *path; depth++) {
    size_t key_len = strcspn(path, ".");
    p = json_ws(p);
    if (*p != '{') return NULL;
    p = json_ws(p + 1);
    const char *found = NULL;
    while (!found && *p == '"') {
      char key[256];
      if (!(p = json_string(p, key, sizeof(key)))) return NULL;
      p = json_ws(p);
      if (*p++ != ':') return NULL;
      p = json_ws(p);
      if (strlen(key) == key_len && !strncmp(key, path, key_len)) {
        found = p;
        break;
      }
      if (!(p = json_value(p, depth + 1))) return NULL;
      p = json_ws(p);
      if (*p == ',') p = json_ws(p + 1);
    }
    if (!found) return NULL;
    p = found;
    path += key_len;
    if (*path == '.') path++;
  }
  return json_ws(p);
}

int bench_json_valid(const char *json) {
  const char *end = json ? json_value(json, 0) : NULL;
  return end && *json_ws(end) == '\0';
}

double bench_json_number_at(const char *json, const char *path) {
  const char *p = json_find(json, path);
  if (!p) return NAN;
  if (!strncmp(p, "Infinity", 8)) return INFINITY;
  if (!strncmp(p, "-Infinity", 9)) return -INFINITY;
  if (*p != '-' && (*p < '0' || *p > '9')) return NAN; /* NaN, or not a number */
  char *end = NULL;
  double v = strtod(p, &end);
  return end == p ? NAN : v;
}

int bench_json_string_at(const char *json, const char *path, char *out, size_t size) {
  const char *p = json_find(json, path);
  return p && *p == '"' && json_string(p, out, size) != NULL;
}
