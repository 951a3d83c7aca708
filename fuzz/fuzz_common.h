/* Shared pieces of the fuzz targets (fuzz/README.md).
 *
 * No fuzzer creates a lamp context: lamp_context_create opens OpenCL. Most calls take NULL, but
 * a few insist on a context only to hold their message (lamp_checkpoint_open,
 * lamp_model_config_from_gguf, lamp_model_config_from_hf). For those, and for every other
 * call so that the error paths' formatting is fuzzed as well, the fuzzers pass a host-only
 * context: a zeroed struct lamp_context, which has no OpenCL objects and is used for its
 * message buffer alone. Nothing reached from the fuzzers may touch its OpenCL fields. */
#ifndef LAMP_FUZZ_COMMON_H
#define LAMP_FUZZ_COMMON_H

#define _GNU_SOURCE 1
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lamp/lamp.h"
#include "runtime/internal.h"

/* The host-only message context, made once per process. */
static inline lamp_context *fuzz_ctx(void) {
  static lamp_context *ctx;
  if (!ctx) {
    ctx = calloc(1, sizeof(*ctx));
    if (!ctx) abort();
  }
  return ctx;
}

/* Reads the last message as a caller would (ASan checks it is a NUL-terminated string); with
 * LAMP_FUZZ_VERBOSE=1 in the environment it is printed, to see why an input is refused. */
static inline size_t fuzz_message(void) {
  static int verbose = -1;
  if (verbose < 0) {
    const char *v = getenv("LAMP_FUZZ_VERBOSE");
    verbose = v && !strcmp(v, "1");
  }
  const char *msg = lamp_context_error(fuzz_ctx());
  if (verbose) fprintf(stderr, "lamp: %s\n", msg);
  return strlen(msg);
}

/* A file holding `data`, for the readers that take a path: a memfd (no disk traffic) named
 * /proc/self/fd/N, or a temporary file where memfd_create is missing. Rewritten on each call;
 * returns its path, or NULL when it could not be written. */
static inline const char *fuzz_file(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
#ifdef MFD_CLOEXEC
    fd = memfd_create("lamp-fuzz", MFD_CLOEXEC);
    if (fd >= 0) snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
#endif
    if (fd < 0) {
      const char *dir = getenv("TMPDIR");
      snprintf(path, sizeof(path), "%.40s/lamp-fuzz-XXXXXX", dir && *dir ? dir : "/tmp");
      fd = mkstemp(path);
      if (fd < 0) return NULL;
      /* the name stays until the process ends; libFuzzer runs many inputs per process */
    }
  }
  if (ftruncate(fd, 0) != 0) return NULL;
  size_t done = 0;
  while (done < size) {
    ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
    if (w <= 0) return NULL;
    done += (size_t)w;
  }
  return path;
}

/* Splits the input at the last occurrence of `sep` (`sep_len` bytes): *head is what comes
 * before it, *tail what follows (NUL-terminated copies the caller frees). Without the separator
 * the whole input is the head and the tail is NULL. */
static inline void fuzz_split(const uint8_t *data, size_t size, const char *sep, size_t sep_len,
                              char **head, size_t *head_len, char **tail, size_t *tail_len) {
  size_t cut = size;
  for (size_t i = size >= sep_len ? size - sep_len + 1 : 0; i-- > 0;)
    if (!memcmp(data + i, sep, sep_len)) {
      cut = i;
      break;
    }
  *head_len = cut;
  *head = malloc(cut + 1);
  if (!*head) abort();
  memcpy(*head, data, cut);
  (*head)[cut] = '\0';
  *tail = NULL;
  *tail_len = 0;
  if (cut < size) {
    size_t n = size - cut - sep_len;
    *tail = malloc(n + 1);
    if (!*tail) abort();
    memcpy(*tail, data + cut + sep_len, n);
    (*tail)[n] = '\0';
    *tail_len = n;
  }
}

/* Fails the run (a crash libFuzzer records) when a documented promise does not hold. */
#define FUZZ_CHECK(cond)                                                                    \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);        \
      abort();                                                                              \
    }                                                                                       \
  } while (0)

/* SentencePiece ("llama") tokenizers: 1 when every byte has a BYTE token <0xXX> and "▁" is a
 * normal piece (else a space would fall back to the bytes of "▁"), so that a text without a
 * "▁" of its own must round-trip exactly (tokenizer.h's promise). */
static inline int fuzz_spm_has_every_byte(lamp_tokenizer *tok) {
  int32_t id;
  lamp_token_type type;
  const char *text;
  size_t tl;
  for (int b = 0; b < 256; b++) {
    char s[8];
    snprintf(s, sizeof(s), "<0x%02X>", b);
    if (lamp_tokenizer_find(NULL, tok, s, 6, &id) != LAMP_OK ||
        lamp_tokenizer_token(NULL, tok, id, &text, &tl, &type) != LAMP_OK ||
        type != LAMP_TOKEN_BYTE)
      return 0;
  }
  return lamp_tokenizer_find(NULL, tok, "\xe2\x96\x81", 3, &id) == LAMP_OK &&
         lamp_tokenizer_token(NULL, tok, id, &text, &tl, &type) == LAMP_OK &&
         type == LAMP_TOKEN_NORMAL;
}

/* 1 when text[0..n) holds U+2581 "▁", which SentencePiece decodes as a space. */
static inline int fuzz_has_space_mark(const char *text, size_t n) {
  for (size_t i = 0; i + 3 <= n; i++)
    if (!memcmp(text + i, "\xe2\x96\x81", 3)) return 1;
  return 0;
}

#endif
