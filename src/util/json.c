/* JSON reader: recursive descent with a depth cap, nodes in one array, strings in one arena. */
#include "util/json.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/unicode.h"

typedef struct lamp__json_node {
  lamp__json_kind kind;
  size_t key_off, key_len; /* member key in the arena (objects' children) */
  size_t str_off, str_len; /* string value in the arena */
  double number;           /* numbers; bools as 0/1 */
  size_t first, last, next, count;
} lamp__json_node;

struct lamp__json {
  lamp__json_node *nodes;
  size_t n_nodes, cap_nodes;
  char *arena;
  size_t n_arena, cap_arena;
};

typedef struct lamp__json_parser {
  const unsigned char *s;
  size_t n, pos;
  lamp__json *doc;
  char *error;
  size_t error_size;
  lamp_status status;
} lamp__json_parser;

static int lamp__json_fail(lamp__json_parser *p, lamp_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int lamp__json_fail(lamp__json_parser *p, lamp_status st, const char *fmt, ...) {
  if (p->status != LAMP_OK) return 0;
  p->status = st;
  if (p->error && p->error_size) {
    int k = snprintf(p->error, p->error_size, "JSON at byte %zu: ", p->pos);
    if (k >= 0 && (size_t)k < p->error_size) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(p->error + k, p->error_size - (size_t)k, fmt, ap);
      va_end(ap);
    }
  }
  return 0;
}

static size_t lamp__json_new_node(lamp__json_parser *p, lamp__json_kind kind) {
  lamp__json *d = p->doc;
  if (d->n_nodes == d->cap_nodes) {
    size_t cap = d->cap_nodes ? 2 * d->cap_nodes : 1024;
    lamp__json_node *nodes = realloc(d->nodes, cap * sizeof(*nodes));
    if (!nodes) {
      lamp__json_fail(p, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
      return LAMP__JSON_NONE;
    }
    d->nodes = nodes;
    d->cap_nodes = cap;
  }
  lamp__json_node *node = &d->nodes[d->n_nodes];
  memset(node, 0, sizeof(*node));
  node->kind = kind;
  node->first = node->last = node->next = LAMP__JSON_NONE;
  return d->n_nodes++;
}

static int lamp__json_arena_put(lamp__json_parser *p, const void *bytes, size_t n) {
  lamp__json *d = p->doc;
  if (d->n_arena + n + 1 > d->cap_arena) {
    size_t cap = d->cap_arena ? d->cap_arena : 4096;
    while (cap < d->n_arena + n + 1) cap *= 2;
    char *a = realloc(d->arena, cap);
    if (!a) return lamp__json_fail(p, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
    d->arena = a;
    d->cap_arena = cap;
  }
  memcpy(d->arena + d->n_arena, bytes, n);
  d->n_arena += n;
  return 1;
}

static void lamp__json_skip_ws(lamp__json_parser *p) {
  while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                           p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
    p->pos++;
}

static int lamp__json_hex4(lamp__json_parser *p, uint32_t *v) {
  if (p->n - p->pos < 4) return lamp__json_fail(p, LAMP_ERR_FORMAT, "\\u escape cut off");
  *v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned char c = p->s[p->pos++];
    uint32_t h;
    if (c >= '0' && c <= '9') h = c - '0';
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') h = (uint32_t)((c | 0x20) - 'a' + 10);
    else return lamp__json_fail(p, LAMP_ERR_FORMAT, "bad hex digit in \\u escape");
    *v = (*v << 4) | h;
  }
  return 1;
}

/* Parses a string at p->pos (on the opening quote) into the arena. */
static int lamp__json_string_at(lamp__json_parser *p, size_t *off, size_t *len) {
  p->pos++;
  *off = p->doc->n_arena;
  for (;;) {
    size_t start = p->pos;
    while (p->pos < p->n && p->s[p->pos] != '"' && p->s[p->pos] != '\\' && p->s[p->pos] >= 0x20)
      p->pos++;
    if (!lamp__json_arena_put(p, p->s + start, p->pos - start)) return 0;
    if (p->pos >= p->n) return lamp__json_fail(p, LAMP_ERR_FORMAT, "unterminated string");
    unsigned char c = p->s[p->pos];
    if (c == '"') {
      p->pos++;
      break;
    }
    if (c < 0x20) return lamp__json_fail(p, LAMP_ERR_FORMAT, "control character in a string");
    p->pos++; /* backslash */
    if (p->pos >= p->n) return lamp__json_fail(p, LAMP_ERR_FORMAT, "escape cut off");
    char e = (char)p->s[p->pos++], out;
    switch (e) {
      case '"': out = '"'; break;
      case '\\': out = '\\'; break;
      case '/': out = '/'; break;
      case 'b': out = '\b'; break;
      case 'f': out = '\f'; break;
      case 'n': out = '\n'; break;
      case 'r': out = '\r'; break;
      case 't': out = '\t'; break;
      case 'u': {
        uint32_t cp;
        if (!lamp__json_hex4(p, &cp)) return 0;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t lo;
          if (p->n - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return lamp__json_fail(p, LAMP_ERR_FORMAT, "high surrogate without a low one");
          p->pos += 2;
          if (!lamp__json_hex4(p, &lo)) return 0;
          if (lo < 0xDC00 || lo > 0xDFFF)
            return lamp__json_fail(p, LAMP_ERR_FORMAT, "bad low surrogate");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return lamp__json_fail(p, LAMP_ERR_FORMAT, "lone low surrogate");
        }
        unsigned char buf[4];
        size_t k = lamp__utf8_encode(cp, buf);
        if (!lamp__json_arena_put(p, buf, k)) return 0;
        continue;
      }
      default: return lamp__json_fail(p, LAMP_ERR_FORMAT, "unknown escape \\%c", e);
    }
    if (!lamp__json_arena_put(p, &out, 1)) return 0;
  }
  *len = p->doc->n_arena - *off;
  p->doc->arena[p->doc->n_arena++] = '\0'; /* room reserved by arena_put */
  return 1;
}

static int lamp__json_number_at(lamp__json_parser *p, double *v) {
  size_t start = p->pos;
  if (p->pos < p->n && p->s[p->pos] == '-') p->pos++;
  if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9')
    return lamp__json_fail(p, LAMP_ERR_FORMAT, "bad number");
  if (p->s[p->pos] == '0') p->pos++;
  else
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
  if (p->pos < p->n && p->s[p->pos] == '.') {
    p->pos++;
    if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9')
      return lamp__json_fail(p, LAMP_ERR_FORMAT, "bad fraction");
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
  }
  if (p->pos < p->n && (p->s[p->pos] | 0x20) == 'e') {
    p->pos++;
    if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
    if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9')
      return lamp__json_fail(p, LAMP_ERR_FORMAT, "bad exponent");
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
  }
  char buf[64];
  size_t len = p->pos - start;
  if (len >= sizeof(buf)) return lamp__json_fail(p, LAMP_ERR_FORMAT, "number too long");
  memcpy(buf, p->s + start, len);
  buf[len] = '\0';
  *v = strtod(buf, NULL);
  return 1;
}

static int lamp__json_literal(lamp__json_parser *p, const char *word) {
  size_t n = strlen(word);
  if (p->n - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
    return lamp__json_fail(p, LAMP_ERR_FORMAT, "unexpected character");
  p->pos += n;
  return 1;
}

static size_t lamp__json_value(lamp__json_parser *p, int depth);

/* Appends `child` to `parent`'s list. */
static void lamp__json_link(lamp__json *d, size_t parent, size_t child) {
  lamp__json_node *par = &d->nodes[parent];
  if (par->last == LAMP__JSON_NONE) par->first = child;
  else d->nodes[par->last].next = child;
  par->last = child;
  par->count++;
}

static size_t lamp__json_container(lamp__json_parser *p, int depth, int object) {
  size_t node = lamp__json_new_node(p, object ? LAMP__JSON_OBJECT : LAMP__JSON_ARRAY);
  if (node == LAMP__JSON_NONE) return node;
  char close = object ? '}' : ']';
  p->pos++;
  lamp__json_skip_ws(p);
  if (p->pos < p->n && p->s[p->pos] == close) {
    p->pos++;
    return node;
  }
  for (;;) {
    size_t key_off = 0, key_len = 0;
    if (object) {
      lamp__json_skip_ws(p);
      if (p->pos >= p->n || p->s[p->pos] != '"') {
        lamp__json_fail(p, LAMP_ERR_FORMAT, "expected a member name");
        return LAMP__JSON_NONE;
      }
      if (!lamp__json_string_at(p, &key_off, &key_len)) return LAMP__JSON_NONE;
      lamp__json_skip_ws(p);
      if (p->pos >= p->n || p->s[p->pos] != ':') {
        lamp__json_fail(p, LAMP_ERR_FORMAT, "expected ':'");
        return LAMP__JSON_NONE;
      }
      p->pos++;
    }
    size_t child = lamp__json_value(p, depth + 1);
    if (child == LAMP__JSON_NONE) return LAMP__JSON_NONE;
    p->doc->nodes[child].key_off = key_off;
    p->doc->nodes[child].key_len = key_len;
    lamp__json_link(p->doc, node, child);
    lamp__json_skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == ',') {
      p->pos++;
      continue;
    }
    if (p->pos < p->n && p->s[p->pos] == close) {
      p->pos++;
      return node;
    }
    lamp__json_fail(p, LAMP_ERR_FORMAT, "expected ',' or '%c'", close);
    return LAMP__JSON_NONE;
  }
}

static size_t lamp__json_value(lamp__json_parser *p, int depth) {
  if (depth > LAMP__JSON_MAX_DEPTH) {
    lamp__json_fail(p, LAMP_ERR_FORMAT, "nesting deeper than %d", LAMP__JSON_MAX_DEPTH);
    return LAMP__JSON_NONE;
  }
  lamp__json_skip_ws(p);
  if (p->pos >= p->n) {
    lamp__json_fail(p, LAMP_ERR_FORMAT, "unexpected end of input");
    return LAMP__JSON_NONE;
  }
  unsigned char c = p->s[p->pos];
  if (c == '{' || c == '[') return lamp__json_container(p, depth, c == '{');
  size_t node;
  if (c == '"') {
    node = lamp__json_new_node(p, LAMP__JSON_STRING);
    if (node == LAMP__JSON_NONE) return node;
    size_t off, len;
    if (!lamp__json_string_at(p, &off, &len)) return LAMP__JSON_NONE;
    p->doc->nodes[node].str_off = off;
    p->doc->nodes[node].str_len = len;
    return node;
  }
  if (c == 't' || c == 'f' || c == 'n') {
    const char *word = c == 't' ? "true" : c == 'f' ? "false" : "null";
    node = lamp__json_new_node(p, c == 'n' ? LAMP__JSON_NULL : LAMP__JSON_BOOL);
    if (node == LAMP__JSON_NONE || !lamp__json_literal(p, word)) return LAMP__JSON_NONE;
    p->doc->nodes[node].number = c == 't';
    return node;
  }
  node = lamp__json_new_node(p, LAMP__JSON_NUMBER);
  if (node == LAMP__JSON_NONE) return node;
  double v = 0;
  if (!lamp__json_number_at(p, &v)) return LAMP__JSON_NONE;
  p->doc->nodes[node].number = v;
  return node;
}

void lamp__json_free(lamp__json *doc) {
  if (!doc) return;
  free(doc->nodes);
  free(doc->arena);
  free(doc);
}

lamp_status lamp__json_parse(const char *text, size_t length, lamp__json **out, char *error,
                             size_t error_size) {
  *out = NULL;
  if (error && error_size) error[0] = '\0';
  lamp__json *doc = calloc(1, sizeof(*doc));
  if (!doc) {
    if (error && error_size) snprintf(error, error_size, "out of memory");
    return LAMP_ERR_OUT_OF_MEMORY;
  }
  lamp__json_parser p = {(const unsigned char *)text, text ? length : 0, 0, doc, error,
                         error_size, LAMP_OK};
  size_t root = lamp__json_value(&p, 0);
  if (root != LAMP__JSON_NONE) {
    lamp__json_skip_ws(&p);
    if (p.pos != p.n) lamp__json_fail(&p, LAMP_ERR_FORMAT, "text after the value");
  }
  if (p.status != LAMP_OK) {
    lamp__json_free(doc);
    return p.status;
  }
  *out = doc;
  return LAMP_OK;
}

static const lamp__json_node *lamp__json_at(const lamp__json *doc, size_t node) {
  return (doc && node < doc->n_nodes) ? &doc->nodes[node] : NULL;
}

lamp__json_kind lamp__json_kind_of(const lamp__json *doc, size_t node) {
  const lamp__json_node *n = lamp__json_at(doc, node);
  return n ? n->kind : LAMP__JSON_NULL;
}

size_t lamp__json_count(const lamp__json *doc, size_t node) {
  const lamp__json_node *n = lamp__json_at(doc, node);
  return n ? n->count : 0;
}

size_t lamp__json_first(const lamp__json *doc, size_t node) {
  const lamp__json_node *n = lamp__json_at(doc, node);
  return n ? n->first : LAMP__JSON_NONE;
}

size_t lamp__json_next(const lamp__json *doc, size_t node) {
  const lamp__json_node *n = lamp__json_at(doc, node);
  return n ? n->next : LAMP__JSON_NONE;
}

size_t lamp__json_get(const lamp__json *doc, size_t node, const char *key) {
  if (lamp__json_kind_of(doc, node) != LAMP__JSON_OBJECT) return LAMP__JSON_NONE;
  size_t len = strlen(key), found = LAMP__JSON_NONE;
  for (size_t c = lamp__json_first(doc, node); c != LAMP__JSON_NONE; c = doc->nodes[c].next)
    if (doc->nodes[c].key_len == len && memcmp(doc->arena + doc->nodes[c].key_off, key, len) == 0)
      found = c;
  return found;
}

const char *lamp__json_key(const lamp__json *doc, size_t node, size_t *length) {
  const lamp__json_node *n = lamp__json_at(doc, node);
  *length = n ? n->key_len : 0;
  return n ? doc->arena + n->key_off : NULL;
}

const char *lamp__json_string(const lamp__json *doc, size_t node, size_t *length) {
  const lamp__json_node *n = lamp__json_at(doc, node);
  if (!n || n->kind != LAMP__JSON_STRING) {
    *length = 0;
    return NULL;
  }
  *length = n->str_len;
  return doc->arena + n->str_off;
}

int lamp__json_is(const lamp__json *doc, size_t node, const char *s) {
  size_t len;
  const char *v = lamp__json_string(doc, node, &len);
  return v && len == strlen(s) && memcmp(v, s, len) == 0;
}

double lamp__json_number(const lamp__json *doc, size_t node) {
  const lamp__json_node *n = lamp__json_at(doc, node);
  return n && (n->kind == LAMP__JSON_NUMBER || n->kind == LAMP__JSON_BOOL) ? n->number : 0;
}

int lamp__json_bool(const lamp__json *doc, size_t node) {
  const lamp__json_node *n = lamp__json_at(doc, node);
  return n && n->kind == LAMP__JSON_BOOL && n->number != 0;
}
