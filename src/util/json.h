/* A small JSON reader (RFC 8259) for tokenizer.json and similar files. Internal.
 *
 * The document is parsed whole into a flat node array; nodes are addressed by index. Strings
 * are unescaped into one arena (NUL-terminated; they may also hold NULs, so use the length).
 * Nesting is capped (LAMP__JSON_MAX_DEPTH) so hostile input cannot exhaust the stack. */
#ifndef LAMP_JSON_H
#define LAMP_JSON_H

#include <stddef.h>

#include "lamp/status.h"

#define LAMP__JSON_MAX_DEPTH 128
#define LAMP__JSON_NONE ((size_t)-1)

typedef enum lamp__json_kind {
  LAMP__JSON_NULL,
  LAMP__JSON_BOOL,
  LAMP__JSON_NUMBER,
  LAMP__JSON_STRING,
  LAMP__JSON_ARRAY,
  LAMP__JSON_OBJECT,
} lamp__json_kind;

typedef struct lamp__json lamp__json;

/* Parses `length` bytes. On failure returns LAMP_ERR_FORMAT (or LAMP_ERR_OUT_OF_MEMORY) and
 * writes a message with the byte offset to `error`. */
lamp_status lamp__json_parse(const char *text, size_t length, lamp__json **out, char *error,
                             size_t error_size);
void lamp__json_free(lamp__json *doc);

/* The root node is 0. Every accessor accepts LAMP__JSON_NONE and returns a neutral value. */
lamp__json_kind lamp__json_kind_of(const lamp__json *doc, size_t node);
/* Members of an object or elements of an array. */
size_t lamp__json_count(const lamp__json *doc, size_t node);
size_t lamp__json_first(const lamp__json *doc, size_t node);
size_t lamp__json_next(const lamp__json *doc, size_t node);
/* The member `key` of an object (the last one if repeated), or LAMP__JSON_NONE. */
size_t lamp__json_get(const lamp__json *doc, size_t node, const char *key);
/* The key of an object member. */
const char *lamp__json_key(const lamp__json *doc, size_t node, size_t *length);
/* A string's bytes (NULL for other kinds). */
const char *lamp__json_string(const lamp__json *doc, size_t node, size_t *length);
/* 1 when `node` is a string equal to `s`. */
int lamp__json_is(const lamp__json *doc, size_t node, const char *s);
double lamp__json_number(const lamp__json *doc, size_t node);
int lamp__json_bool(const lamp__json *doc, size_t node);

#endif
