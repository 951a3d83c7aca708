/* Byte-level BPE tokenizer: vocabulary and merge tables, special-token split, GPT-2
 * pre-tokenizer written out by hand, BPE merges through a priority queue, and decoding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"
#include "io/gguf_internal.h"
#include "util/json.h"
#include "lamp/tokenizer.h"
#include "util/unicode.h"
#include "text/tokenizer_internal.h"

#define LAMP__TOK_MAX_VOCAB (1u << 24)

/* ---- GPT-2 byte-level alphabet ---- */

/* Printable bytes stand for themselves; the others are moved to 256 and up, in byte order. */
static uint32_t lamp__byte_to_cp(unsigned b) {
  if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
  unsigned n = 0;
  for (unsigned k = 0; k < b; k++)
    if (!((k >= 33 && k <= 126) || (k >= 161 && k <= 172) || k >= 174)) n++;
  return 256 + n;
}

/* The byte a byte-level code point stands for, or -1. */
static int lamp__cp_to_byte(uint32_t cp) {
  if (cp < 256) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || cp >= 174) return (int)cp;
    return -1;
  }
  if (cp >= 256 + 68) return -1; /* 68 bytes are moved */
  unsigned n = cp - 256;
  for (unsigned b = 0; b < 256; b++)
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) && n-- == 0) return (int)b;
  return -1;
}

/* ---- hash tables ---- */

static uint64_t lamp__str_hash(const char *s, size_t n) { return lamp__hash64(LAMP__HASH_SEED, s, n); }

int32_t lamp__vocab_lookup(const lamp_tokenizer *t, const char *s, size_t n) {
  size_t mask = t->vocab_cap - 1;
  for (size_t i = (size_t)lamp__str_hash(s, n) & mask;; i = (i + 1) & mask) {
    int32_t id = t->vocab_slots[i];
    if (id < 0) return -1;
    if (t->text_len[id] == n && memcmp(t->text + t->text_off[id], s, n) == 0) return id;
  }
}

/* Inserts id unless its string is already present (the first occurrence keeps the string). */
static void lamp__vocab_insert(lamp_tokenizer *t, int32_t id) {
  const char *s = t->text + t->text_off[id];
  size_t n = t->text_len[id], mask = t->vocab_cap - 1;
  for (size_t i = (size_t)lamp__str_hash(s, n) & mask;; i = (i + 1) & mask) {
    int32_t other = t->vocab_slots[i];
    if (other < 0) {
      t->vocab_slots[i] = id;
      return;
    }
    if (t->text_len[other] == n && memcmp(t->text + t->text_off[other], s, n) == 0) return;
  }
}

static size_t lamp__pair_hash(int32_t a, int32_t b) {
  uint64_t h = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return (size_t)h;
}

static const lamp__merge_slot *lamp__merge_lookup(const lamp_tokenizer *t, int32_t a, int32_t b) {
  size_t mask = t->merge_cap - 1;
  for (size_t i = lamp__pair_hash(a, b) & mask;; i = (i + 1) & mask) {
    const lamp__merge_slot *m = &t->merges[i];
    if (m->left < 0) return NULL;
    if (m->left == a && m->right == b) return m;
  }
}

/* Inserts a merge; a pair seen before keeps its first (best) rank. */
static void lamp__merge_insert(lamp_tokenizer *t, int32_t a, int32_t b, int32_t rank,
                               int32_t result) {
  size_t mask = t->merge_cap - 1;
  for (size_t i = lamp__pair_hash(a, b) & mask;; i = (i + 1) & mask) {
    lamp__merge_slot *m = &t->merges[i];
    if (m->left < 0) {
      *m = (lamp__merge_slot){a, b, rank, result};
      return;
    }
    if (m->left == a && m->right == b) return;
  }
}

static size_t lamp__pow2_above(size_t n) {
  size_t c = 16;
  while (c < 2 * n) c *= 2;
  return c;
}

/* ---- construction, shared by the GGUF and JSON paths ---- */

/* A tokenizer under construction: tokens are added with their strings and types, then
 * lamp__tok_finish builds the tables, and merges are added by string. */
static lamp_tokenizer *lamp__tok_new(size_t n_vocab, size_t text_bytes) {
  lamp_tokenizer *t = calloc(1, sizeof(*t));
  if (!t) return NULL;
  t->n_vocab = n_vocab;
  t->text = malloc(text_bytes ? text_bytes : 1);
  t->text_off = calloc(n_vocab, sizeof(size_t));
  t->text_len = calloc(n_vocab, sizeof(uint32_t));
  t->type = calloc(n_vocab, 1);
  t->special = (lamp_tokenizer_special){-1, -1, -1, -1};
  t->model = LAMP_TOKENIZER_GPT2;
  if (!t->text || !t->text_off || !t->text_len || !t->type) {
    lamp_tokenizer_release(t);
    return NULL;
  }
  return t;
}

void lamp_tokenizer_release(lamp_tokenizer *t) {
  if (!t) return;
  free(t->text);
  free(t->text_off);
  free(t->text_len);
  free(t->type);
  free(t->vocab_slots);
  free(t->merges);
  free(t->specials);
  free(t->scores);
  free(t);
}

/* Order of the special list: longer first, then by id. */
static int lamp__special_before(const lamp_tokenizer *t, int32_t x, int32_t y) {
  if (t->text_len[x] != t->text_len[y]) return t->text_len[x] > t->text_len[y];
  return x < y;
}

/* Builds the string index, the byte tokens and the special list. */
static lamp_status lamp__tok_index(lamp_context *ctx, lamp_tokenizer *t, size_t n_merges) {
  t->vocab_cap = lamp__pow2_above(t->n_vocab);
  t->vocab_slots = malloc(t->vocab_cap * sizeof(int32_t));
  t->merge_cap = lamp__pow2_above(n_merges);
  t->merges = malloc(t->merge_cap * sizeof(*t->merges));
  t->specials = malloc((t->n_vocab ? t->n_vocab : 1) * sizeof(int32_t));
  if (!t->vocab_slots || !t->merges || !t->specials)
    return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory for the tokenizer tables");
  memset(t->vocab_slots, 0xFF, t->vocab_cap * sizeof(int32_t));
  for (size_t i = 0; i < t->merge_cap; i++) t->merges[i].left = -1;
  for (size_t i = 0; i < t->n_vocab; i++) {
    uint8_t ty = t->type[i];
    /* Special tokens live outside the byte-level vocabulary lookup, as in the references. */
    if (ty == LAMP_TOKEN_CONTROL || ty == LAMP_TOKEN_USER_DEFINED || ty == LAMP_TOKEN_UNKNOWN) {
      if (t->text_len[i]) t->specials[t->n_specials++] = (int32_t)i;
    }
    if (t->text_len[i] && ty != LAMP_TOKEN_UNUSED) lamp__vocab_insert(t, (int32_t)i);
  }
  /* insertion sort by decreasing length: the list is short in practice */
  for (size_t i = 1; i < t->n_specials; i++)
    for (size_t j = i; j > 0 && lamp__special_before(t, t->specials[j], t->specials[j - 1]); j--) {
      int32_t tmp = t->specials[j];
      t->specials[j] = t->specials[j - 1];
      t->specials[j - 1] = tmp;
    }
  for (unsigned b = 0; b < 256; b++) {
    unsigned char buf[4];
    size_t n = lamp__utf8_encode(lamp__byte_to_cp(b), buf);
    t->byte_token[b] = lamp__vocab_lookup(t, (const char *)buf, n);
  }
  return LAMP_OK;
}

/* Adds merge `rank` given as the two token strings. */
static lamp_status lamp__tok_add_merge(lamp_context *ctx, lamp_tokenizer *t, size_t rank,
                                       const char *a, size_t na, const char *b, size_t nb,
                                       char *scratch) {
  int32_t ia = lamp__vocab_lookup(t, a, na), ib = lamp__vocab_lookup(t, b, nb);
  memcpy(scratch, a, na);
  memcpy(scratch + na, b, nb);
  int32_t ir = lamp__vocab_lookup(t, scratch, na + nb);
  if (ia < 0 || ib < 0 || ir < 0)
    return lamp__fail(ctx, LAMP_ERR_FORMAT,
                      "merge %zu (\"%.*s\" \"%.*s\"): %s is not in the vocabulary", rank,
                      (int)(na > 64 ? 64 : na), a, (int)(nb > 64 ? 64 : nb), b,
                      ia < 0 ? "the left part" : ib < 0 ? "the right part" : "the result");
  lamp__merge_insert(t, ia, ib, (int32_t)rank, ir);
  return LAMP_OK;
}

static lamp_status lamp__tok_check_special(lamp_context *ctx, lamp_tokenizer *t) {
  int32_t ids[4] = {t->special.bos, t->special.eos, t->special.pad, t->special.unk};
  static const char *const names[4] = {"bos", "eos", "padding", "unknown"};
  for (int k = 0; k < 4; k++)
    if (ids[k] < -1 || (ids[k] >= 0 && (size_t)ids[k] >= t->n_vocab))
      return lamp__fail(ctx, LAMP_ERR_FORMAT, "%s token id %d is outside the vocabulary "
                        "of %zu", names[k], (int)ids[k], t->n_vocab);
  return LAMP_OK;
}

/* Hands the finished tokenizer out, or frees it (the message is in the context already). */
static lamp_status lamp__tok_done(lamp_tokenizer *t, lamp_status st, lamp_tokenizer **out) {
  if (st != LAMP_OK) {
    lamp_tokenizer_release(t);
    return st;
  }
  *out = t;
  return LAMP_OK;
}

/* ---- from GGUF ---- */

static lamp_status lamp__gguf_array_key(lamp_context *ctx, lamp_gguf *g,
                                        const char *key, lamp_gguf_type elem, int required,
                                        size_t *index, uint64_t *count) {
  lamp_status st = lamp_gguf_find_key(NULL, g, key, index);
  if (st == LAMP_ERR_NOT_FOUND && !required) {
    *index = (size_t)-1;
    *count = 0;
    return LAMP_OK;
  }
  if (st != LAMP_OK)
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: key \"%s\" is missing", key);
  lamp_gguf_key_info info;
  LAMP__TRY(lamp_gguf_key_at(ctx, g, *index, &info));
  int ok = info.type == LAMP_GGUF_ARRAY &&
           (info.array_type == elem ||
            (elem == LAMP_GGUF_INT32 && info.array_type != LAMP_GGUF_STRING &&
             info.array_type != LAMP_GGUF_FLOAT32 && info.array_type != LAMP_GGUF_FLOAT64));
  if (!ok)
    return lamp__fail(ctx, LAMP_ERR_FORMAT,
                      "GGUF tokenizer: key \"%s\" is not an array of %s", key,
                      elem == LAMP_GGUF_STRING ? "strings" : "integers");
  *count = info.count;
  return LAMP_OK;
}

static lamp_status lamp__gguf_special_id(lamp_context *ctx, lamp_tokenizer *t, lamp_gguf *g,
                                         const char *key, int32_t *id) {
  int64_t v;
  lamp_status st = lamp_gguf_get_int(NULL, g, key, &v);
  if (st == LAMP_ERR_NOT_FOUND) return LAMP_OK;
  if (st != LAMP_OK)
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: %s", lamp__gguf_last_error(g));
  if (v < 0 || (uint64_t)v >= t->n_vocab)
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: key \"%s\" is %lld, outside "
                      "the vocabulary of %zu", key, (long long)v, t->n_vocab);
  *id = (int32_t)v;
  return LAMP_OK;
}

/* Keys are probed with a NULL context, so that an optional key's absence leaves `ctx` alone. */
static lamp_status lamp__tok_from_gguf(lamp_context *ctx, lamp_gguf *g, lamp_tokenizer **tp) {
  lamp_tokenizer *t = NULL;
  const char *s;
  size_t len;
  lamp_status st = lamp_gguf_get_string(NULL, g, "tokenizer.ggml.model", &s, &len);
  if (st != LAMP_OK)
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: %s", lamp__gguf_last_error(g));
  lamp_tokenizer_model model;
  if (len == 4 && memcmp(s, "gpt2", 4) == 0)
    model = LAMP_TOKENIZER_GPT2;
  else if (len == 5 && memcmp(s, "llama", 5) == 0)
    model = LAMP_TOKENIZER_LLAMA;
  else
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "GGUF tokenizer: model \"%.*s\" is not "
                      "supported (only \"gpt2\", byte-level BPE, and \"llama\", SentencePiece "
                      "BPE)", (int)(len > 64 ? 64 : len), s);
  lamp_pretokenizer pre = LAMP_PRETOKENIZER_GPT2;
  int ignore_merges = 0;
  /* SentencePiece has no pre-tokenizer: tokenizer.ggml.pre ("default") is not read for it,
   * as llama.cpp does not read it */
  st = model == LAMP_TOKENIZER_LLAMA
           ? LAMP_ERR_NOT_FOUND
           : lamp_gguf_get_string(NULL, g, "tokenizer.ggml.pre", &s, &len);
  if (st == LAMP_OK) {
    static const struct { const char *name; lamp_pretokenizer pre; } known[] = {
        {"gpt2", LAMP_PRETOKENIZER_GPT2}, {"gpt-2", LAMP_PRETOKENIZER_GPT2},
        {"default", LAMP_PRETOKENIZER_GPT2}, {"smollm", LAMP_PRETOKENIZER_SMOLLM},
        {"starcoder", LAMP_PRETOKENIZER_SMOLLM}, {"refact", LAMP_PRETOKENIZER_SMOLLM},
        {"llama-bpe", LAMP_PRETOKENIZER_LLAMA3}, {"llama3", LAMP_PRETOKENIZER_LLAMA3},
        {"llama-v3", LAMP_PRETOKENIZER_LLAMA3}, {"qwen2", LAMP_PRETOKENIZER_QWEN2},
        {"deepseek-r1-qwen", LAMP_PRETOKENIZER_QWEN2}};
    size_t k = 0, n_known = sizeof(known) / sizeof(known[0]);
    while (k < n_known && !(strlen(known[k].name) == len && memcmp(known[k].name, s, len) == 0)) k++;
    if (k == n_known)
      return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "GGUF tokenizer: pre-tokenizer \"%.*s\" "
                        "is not supported", (int)(len > 64 ? 64 : len), s);
    pre = known[k].pre;
    /* as llama.cpp: a Llama 3 word that is a token is that token, merges or not */
    ignore_merges = pre == LAMP_PRETOKENIZER_LLAMA3;
  } else if (st != LAMP_ERR_NOT_FOUND) {
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: %s", lamp__gguf_last_error(g));
  }
  size_t k_tokens, k_types, k_merges;
  uint64_t n_tokens, n_types, n_merges;
  LAMP__TRY(lamp__gguf_array_key(ctx, g, "tokenizer.ggml.tokens", LAMP_GGUF_STRING, 1,
                                 &k_tokens, &n_tokens));
  LAMP__TRY(lamp__gguf_array_key(ctx, g, "tokenizer.ggml.token_type", LAMP_GGUF_INT32, 0,
                                 &k_types, &n_types));
  /* SentencePiece merges by score: merges are not read for it (llama.cpp ignores them too) */
  if (model == LAMP_TOKENIZER_LLAMA) {
    k_merges = (size_t)-1;
    n_merges = 0;
  } else {
    LAMP__TRY(lamp__gguf_array_key(ctx, g, "tokenizer.ggml.merges", LAMP_GGUF_STRING, 1,
                                   &k_merges, &n_merges));
  }
  if (n_tokens == 0 || n_tokens > LAMP__TOK_MAX_VOCAB)
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: %llu tokens (1 to %u)",
                      (unsigned long long)n_tokens, LAMP__TOK_MAX_VOCAB);
  if (k_types != (size_t)-1 && n_types != n_tokens)
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: %llu token types for %llu "
                      "tokens", (unsigned long long)n_types, (unsigned long long)n_tokens);
  if (n_merges > INT32_MAX)
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: too many merges");
  size_t text_bytes = 0;
  for (uint64_t i = 0; i < n_tokens; i++) {
    LAMP__TRY(lamp_gguf_array_string(ctx, g, k_tokens, i, &s, &len));
    if (len > UINT32_MAX)
      return lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: token %llu is too long",
                        (unsigned long long)i);
    text_bytes += len;
  }
  t = lamp__tok_new((size_t)n_tokens, text_bytes);
  if (!t) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory for the tokenizer");
  *tp = t;
  t->pre = pre;
  t->ignore_merges = ignore_merges;
  t->model = model;
  size_t off = 0, longest = 0;
  for (uint64_t i = 0; i < n_tokens; i++) {
    LAMP__TRY(lamp_gguf_array_string(ctx, g, k_tokens, i, &s, &len));
    memcpy(t->text + off, s, len);
    t->text_off[i] = off;
    t->text_len[i] = (uint32_t)len;
    off += len;
    if (len > longest) longest = len;
    t->type[i] = LAMP_TOKEN_NORMAL;
    if (k_types != (size_t)-1) {
      int64_t ty;
      LAMP__TRY(lamp_gguf_array_int(ctx, g, k_types, i, &ty));
      if (ty < LAMP_TOKEN_NORMAL || ty > LAMP_TOKEN_BYTE)
        return lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: token %llu has type "
                          "%lld (1 to 6)", (unsigned long long)i, (long long)ty);
      t->type[i] = (uint8_t)ty;
    }
  }
  LAMP__TRY(lamp__tok_index(ctx, t, (size_t)n_merges));
  if (model == LAMP_TOKENIZER_LLAMA) LAMP__TRY(lamp__spm_load_gguf(ctx, g, t));
  char *scratch = malloc(2 * longest + 1);
  if (!scratch) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  st = LAMP_OK;
  for (uint64_t r = 0; r < n_merges && st == LAMP_OK; r++) {
    st = lamp_gguf_array_string(ctx, g, k_merges, r, &s, &len);
    if (st != LAMP_OK) break;
    const char *sp = memchr(s, ' ', len);
    if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp - s) - 1) || sp == s || sp == s + len - 1)
      st = lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: merge %llu is not two tokens "
                      "separated by one space", (unsigned long long)r);
    else if ((size_t)(sp - s) > longest || len - (size_t)(sp - s) - 1 > longest)
      st = lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: merge %llu names a token "
                      "longer than any in the vocabulary", (unsigned long long)r);
    else
      st = lamp__tok_add_merge(ctx, t, (size_t)r, s, (size_t)(sp - s), sp + 1,
                               len - (size_t)(sp - s) - 1, scratch);
  }
  free(scratch);
  LAMP__TRY(st);
  LAMP__TRY(lamp__gguf_special_id(ctx, t, g, "tokenizer.ggml.bos_token_id", &t->special.bos));
  LAMP__TRY(lamp__gguf_special_id(ctx, t, g, "tokenizer.ggml.eos_token_id", &t->special.eos));
  LAMP__TRY(lamp__gguf_special_id(ctx, t, g, "tokenizer.ggml.padding_token_id", &t->special.pad));
  LAMP__TRY(lamp__gguf_special_id(ctx, t, g, "tokenizer.ggml.unknown_token_id", &t->special.unk));
  return LAMP_OK;
}

lamp_status lamp_tokenizer_from_gguf(lamp_context *ctx, lamp_gguf *gguf, lamp_tokenizer **out) {
  if (!gguf || !out)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_tokenizer_from_gguf: NULL");
  *out = NULL;
  lamp_tokenizer *t = NULL;
  lamp_status st = lamp__tok_from_gguf(ctx, gguf, &t);
  return lamp__tok_done(t, st, out);
}

/* ---- from tokenizer.json ---- */

/* Checks that `node` is a ByteLevel pre-tokenizer lamp implements. */
static int lamp__json_bytelevel_is(const lamp__json *doc, size_t node, int use_regex) {
  if (!lamp__json_is(doc, lamp__json_get(doc, node, "type"), "ByteLevel")) return 0;
  size_t aps = lamp__json_get(doc, node, "add_prefix_space");
  size_t regex = lamp__json_get(doc, node, "use_regex");
  if (aps != LAMP__JSON_NONE && lamp__json_bool(doc, aps)) return 0;
  return (regex == LAMP__JSON_NONE || lamp__json_bool(doc, regex)) == use_regex;
}

static int lamp__json_bytelevel_ok(const lamp__json *doc, size_t node) {
  return lamp__json_bytelevel_is(doc, node, 1);
}

/* Llama 3's pattern as its tokenizer.json spells it; Qwen2's has \p{N} for \p{N}{1,3}. */
static const char lamp__llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char lamp__qwen2_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* The pre-tokenizer of a Sequence of two: Digits(individual) then ByteLevel (SmolLM2), or
 * Split(Llama 3's or Qwen2's regex, Isolated) then ByteLevel without its own regex. -1: neither. */
static int lamp__json_sequence_pre(const lamp__json *doc, size_t pt) {
  size_t list = lamp__json_get(doc, pt, "pretokenizers");
  size_t first = lamp__json_first(doc, list), second = lamp__json_next(doc, first);
  if (!lamp__json_is(doc, lamp__json_get(doc, pt, "type"), "Sequence") ||
      lamp__json_count(doc, list) != 2)
    return -1;
  if (lamp__json_is(doc, lamp__json_get(doc, first, "type"), "Digits"))
    return lamp__json_bool(doc, lamp__json_get(doc, first, "individual_digits")) &&
                   lamp__json_bytelevel_is(doc, second, 1)
               ? LAMP_PRETOKENIZER_SMOLLM
               : -1;
  size_t invert = lamp__json_get(doc, first, "invert");
  if (!lamp__json_is(doc, lamp__json_get(doc, first, "type"), "Split") ||
      !lamp__json_is(doc, lamp__json_get(doc, first, "behavior"), "Isolated") ||
      (invert != LAMP__JSON_NONE && lamp__json_bool(doc, invert)) ||
      !lamp__json_bytelevel_is(doc, second, 0))
    return -1;
  size_t regex = lamp__json_get(doc, lamp__json_get(doc, first, "pattern"), "Regex");
  if (lamp__json_is(doc, regex, lamp__llama3_regex)) return LAMP_PRETOKENIZER_LLAMA3;
  if (lamp__json_is(doc, regex, lamp__qwen2_regex)) return LAMP_PRETOKENIZER_QWEN2;
  return -1;
}

/* 1 when `node` is Replace(from, to) with a string pattern. */
static int lamp__json_replace_is(const lamp__json *doc, size_t node, const char *from,
                                 const char *to) {
  return lamp__json_is(doc, lamp__json_get(doc, node, "type"), "Replace") &&
         lamp__json_is(doc, lamp__json_get(doc, lamp__json_get(doc, node, "pattern"), "String"),
                       from) &&
         lamp__json_is(doc, lamp__json_get(doc, node, "content"), to);
}

/* A BPE model with byte_fallback: SentencePiece BPE as Hugging Face's converter writes Llama 2's
 * (legacy) tokenizer: normalizer Sequence[Prepend("▁") (optional), Replace(" ", "▁")], no
 * pre-tokenizer, decoder Sequence[Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0) (with
 * the Prepend only)], fuse_unk. Sets *prefix when the Prepend is there. */
static lamp_status lamp__json_spm_pipeline(lamp_context *ctx, const lamp__json *doc, size_t model,
                                           int *prefix) {
  static const char space_mark[] = "\xE2\x96\x81";
  size_t root = 0, norm = lamp__json_get(doc, root, "normalizer");
  size_t list = lamp__json_get(doc, norm, "normalizers"), first = lamp__json_first(doc, list);
  *prefix = lamp__json_is(doc, lamp__json_get(doc, first, "type"), "Prepend") &&
            lamp__json_is(doc, lamp__json_get(doc, first, "prepend"), space_mark);
  size_t repl = *prefix ? lamp__json_next(doc, first) : first;
  if (!lamp__json_is(doc, lamp__json_get(doc, norm, "type"), "Sequence") ||
      lamp__json_count(doc, list) != (size_t)(1 + *prefix) ||
      !lamp__json_replace_is(doc, repl, " ", space_mark))
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "tokenizer.json: with byte_fallback, only Llama "
                      "2's normalizer is supported: Sequence of Prepend(\"\xE2\x96\x81\") "
                      "(optional) and Replace(\" \", \"\xE2\x96\x81\")");
  if (lamp__json_kind_of(doc, lamp__json_get(doc, root, "pre_tokenizer")) != LAMP__JSON_NULL)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "tokenizer.json: with byte_fallback, a "
                      "pre-tokenizer (such as Metaspace) is not supported");
  size_t dec = lamp__json_get(doc, root, "decoder"), dl = lamp__json_get(doc, dec, "decoders");
  size_t d0 = lamp__json_first(doc, dl), d1 = lamp__json_next(doc, d0);
  size_t d2 = lamp__json_next(doc, d1), d3 = lamp__json_next(doc, d2);
  int ok = lamp__json_is(doc, lamp__json_get(doc, dec, "type"), "Sequence") &&
           lamp__json_count(doc, dl) == (size_t)(3 + *prefix) &&
           lamp__json_replace_is(doc, d0, space_mark, " ") &&
           lamp__json_is(doc, lamp__json_get(doc, d1, "type"), "ByteFallback") &&
           lamp__json_is(doc, lamp__json_get(doc, d2, "type"), "Fuse");
  if (ok && *prefix)
    ok = lamp__json_is(doc, lamp__json_get(doc, d3, "type"), "Strip") &&
         lamp__json_is(doc, lamp__json_get(doc, d3, "content"), " ") &&
         lamp__json_number(doc, lamp__json_get(doc, d3, "start")) == 1 &&
         lamp__json_number(doc, lamp__json_get(doc, d3, "stop")) == 0;
  if (!ok)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "tokenizer.json: with byte_fallback, only Llama "
                      "2's decoder is supported: Sequence of Replace(\"\xE2\x96\x81\", \" \"), "
                      "ByteFallback, Fuse and, after a Prepend, Strip(\" \", 1, 0)");
  if (!lamp__json_bool(doc, lamp__json_get(doc, model, "fuse_unk")))
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "tokenizer.json: byte_fallback without "
                      "fuse_unk is not supported");
  if (lamp__json_bool(doc, lamp__json_get(doc, model, "ignore_merges")))
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "tokenizer.json: byte_fallback with "
                      "ignore_merges is not supported");
  return LAMP_OK;
}

static lamp_status lamp__tok_from_json(lamp_context *ctx, const lamp__json *doc,
                                       lamp_tokenizer **tp) {
#define LAMP__JBAD(st, ...) lamp__fail(ctx, (st), __VA_ARGS__)
  size_t root = 0;
  if (lamp__json_kind_of(doc, root) != LAMP__JSON_OBJECT)
    return LAMP__JBAD(LAMP_ERR_FORMAT, "tokenizer.json: the top level is not an object");
  size_t model = lamp__json_get(doc, root, "model");
  if (lamp__json_kind_of(doc, model) != LAMP__JSON_OBJECT)
    return LAMP__JBAD(LAMP_ERR_FORMAT, "tokenizer.json: no \"model\" object");
  size_t mtype = lamp__json_get(doc, model, "type");
  if (mtype != LAMP__JSON_NONE && !lamp__json_is(doc, mtype, "BPE"))
    return LAMP__JBAD(LAMP_ERR_UNSUPPORTED, "tokenizer.json: model type is not BPE");
  size_t vocab = lamp__json_get(doc, model, "vocab"), merges = lamp__json_get(doc, model, "merges");
  if (lamp__json_kind_of(doc, vocab) != LAMP__JSON_OBJECT)
    return LAMP__JBAD(LAMP_ERR_FORMAT, "tokenizer.json: \"model.vocab\" is not an object");
  if (lamp__json_kind_of(doc, merges) != LAMP__JSON_ARRAY)
    return LAMP__JBAD(LAMP_ERR_FORMAT, "tokenizer.json: \"model.merges\" is not an array");
  int spm = lamp__json_bool(doc, lamp__json_get(doc, model, "byte_fallback")), prefix = 0;
  if (spm) LAMP__TRY(lamp__json_spm_pipeline(ctx, doc, model, &prefix));
  static const char *const absent[] = {"continuing_subword_prefix", "end_of_word_suffix"};
  for (int k = 0; k < 2; k++) {
    size_t v = lamp__json_get(doc, model, absent[k]);
    size_t vl = 0;
    if (v != LAMP__JSON_NONE && lamp__json_kind_of(doc, v) != LAMP__JSON_NULL &&
        (lamp__json_string(doc, v, &vl), vl != 0))
      return LAMP__JBAD(LAMP_ERR_UNSUPPORTED, "tokenizer.json: model.%s is not supported", absent[k]);
  }
  size_t dropout = lamp__json_get(doc, model, "dropout");
  if (lamp__json_kind_of(doc, dropout) == LAMP__JSON_NUMBER && lamp__json_number(doc, dropout) > 0)
    return LAMP__JBAD(LAMP_ERR_UNSUPPORTED, "tokenizer.json: BPE dropout is not supported");
  size_t norm = lamp__json_get(doc, root, "normalizer");
  const int nfc = !spm && lamp__json_is(doc, lamp__json_get(doc, norm, "type"), "NFC");
  if (!spm && !nfc && lamp__json_kind_of(doc, norm) != LAMP__JSON_NULL)
    return LAMP__JBAD(LAMP_ERR_UNSUPPORTED, "tokenizer.json: normalizers are not supported "
                      "(but NFC, and Llama 2's with byte_fallback)");
  lamp_pretokenizer pre = LAMP_PRETOKENIZER_GPT2;
  size_t pt = lamp__json_get(doc, root, "pre_tokenizer");
  if (spm || lamp__json_bytelevel_ok(doc, pt)) {
    pre = LAMP_PRETOKENIZER_GPT2;
  } else {
    int seq = lamp__json_sequence_pre(doc, pt);
    if (seq < 0)
      return LAMP__JBAD(LAMP_ERR_UNSUPPORTED, "tokenizer.json: the pre-tokenizer is none of "
                        "ByteLevel, Digits(individual) then ByteLevel, and Llama 3's or Qwen2's "
                        "Split then ByteLevel");
    pre = (lamp_pretokenizer)seq;
  }
  /* The vocabulary size is one past the largest id of the vocab and the added tokens. */
  size_t added = lamp__json_get(doc, root, "added_tokens");
  if (added != LAMP__JSON_NONE && lamp__json_kind_of(doc, added) != LAMP__JSON_ARRAY)
    return LAMP__JBAD(LAMP_ERR_FORMAT, "tokenizer.json: \"added_tokens\" is not an array");
  double max_id = -1;
  size_t text_bytes = 0;
  for (size_t v = lamp__json_first(doc, vocab); v != LAMP__JSON_NONE; v = lamp__json_next(doc, v)) {
    size_t kl;
    const char *k = lamp__json_key(doc, v, &kl);
    double id = lamp__json_number(doc, v);
    if (lamp__json_kind_of(doc, v) != LAMP__JSON_NUMBER || id < 0 || id >= LAMP__TOK_MAX_VOCAB ||
        id != (double)(int32_t)id)
      return LAMP__JBAD(LAMP_ERR_FORMAT, "tokenizer.json: vocab entry \"%.*s\" has no valid id",
                        (int)(kl > 64 ? 64 : kl), k);
    if (id > max_id) max_id = id;
    text_bytes += kl;
  }
  for (size_t a = lamp__json_first(doc, added); a != LAMP__JSON_NONE; a = lamp__json_next(doc, a)) {
    size_t idn = lamp__json_get(doc, a, "id"), cn = lamp__json_get(doc, a, "content"), cl;
    double id = lamp__json_number(doc, idn);
    if (lamp__json_kind_of(doc, idn) != LAMP__JSON_NUMBER || id < 0 || id >= LAMP__TOK_MAX_VOCAB ||
        id != (double)(int32_t)id || !lamp__json_string(doc, cn, &cl) || cl == 0)
      return LAMP__JBAD(LAMP_ERR_FORMAT, "tokenizer.json: an added token lacks a valid id or "
                        "content");
    static const char *const flags[] = {"lstrip", "rstrip", "single_word"};
    for (int k = 0; k < 3; k++)
      if (lamp__json_bool(doc, lamp__json_get(doc, a, flags[k])))
        return LAMP__JBAD(LAMP_ERR_UNSUPPORTED, "tokenizer.json: added token %d uses %s",
                          (int)id, flags[k]);
    if (id > max_id) max_id = id;
    text_bytes += cl;
  }
  if (max_id < 0) return LAMP__JBAD(LAMP_ERR_FORMAT, "tokenizer.json: the vocabulary is empty");
  lamp_tokenizer *t = lamp__tok_new((size_t)max_id + 1, text_bytes);
  if (!t) return LAMP__JBAD(LAMP_ERR_OUT_OF_MEMORY, "out of memory for the tokenizer");
  *tp = t;
  t->pre = pre;
  t->ignore_merges = lamp__json_bool(doc, lamp__json_get(doc, model, "ignore_merges"));
  t->nfc = nfc;
  if (spm) {
    t->model = LAMP_TOKENIZER_LLAMA;
    t->add_space_prefix = prefix;
  }
  size_t off = 0, longest = 0;
  /* Added tokens first, so a vocab entry with the same id does not overwrite their type. */
  for (size_t a = lamp__json_first(doc, added); a != LAMP__JSON_NONE; a = lamp__json_next(doc, a)) {
    size_t cl;
    const char *c = lamp__json_string(doc, lamp__json_get(doc, a, "content"), &cl);
    size_t id = (size_t)lamp__json_number(doc, lamp__json_get(doc, a, "id"));
    if (t->type[id])
      return lamp__fail(ctx, LAMP_ERR_FORMAT, "tokenizer.json: id %zu is used twice", id);
    memcpy(t->text + off, c, cl);
    t->text_off[id] = off;
    t->text_len[id] = (uint32_t)cl;
    off += cl;
    if (cl > longest) longest = cl;
    t->type[id] = lamp__json_bool(doc, lamp__json_get(doc, a, "special")) ? LAMP_TOKEN_CONTROL
                                                                           : LAMP_TOKEN_USER_DEFINED;
  }
  for (size_t v = lamp__json_first(doc, vocab); v != LAMP__JSON_NONE; v = lamp__json_next(doc, v)) {
    size_t kl;
    const char *k = lamp__json_key(doc, v, &kl);
    size_t id = (size_t)lamp__json_number(doc, v);
    if (t->type[id]) {
      if (t->type[id] == LAMP_TOKEN_NORMAL || t->text_len[id] != kl ||
          memcmp(t->text + t->text_off[id], k, kl) != 0)
        return lamp__fail(ctx, LAMP_ERR_FORMAT, "tokenizer.json: id %zu is used twice", id);
      continue;
    }
    memcpy(t->text + off, k, kl);
    t->text_off[id] = off;
    t->text_len[id] = (uint32_t)kl;
    off += kl;
    if (kl > longest) longest = kl;
    t->type[id] = LAMP_TOKEN_NORMAL;
  }
  for (size_t id = 0; id < t->n_vocab; id++)
    if (!t->type[id]) t->type[id] = LAMP_TOKEN_UNUSED; /* ids nobody names */
  size_t n_merges = lamp__json_count(doc, merges);
  if (n_merges > INT32_MAX)
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "tokenizer.json: too many merges");
  LAMP__TRY(lamp__tok_index(ctx, t, n_merges));
  char *scratch = malloc(2 * longest + 1);
  if (!scratch) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  lamp_status st = LAMP_OK;
  size_t r = 0;
  for (size_t m = lamp__json_first(doc, merges); m != LAMP__JSON_NONE && st == LAMP_OK;
       m = lamp__json_next(doc, m), r++) {
    const char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0, len;
    if (lamp__json_kind_of(doc, m) == LAMP__JSON_STRING) {
      const char *s = lamp__json_string(doc, m, &len);
      const char *sp = memchr(s, ' ', len);
      if (sp && !memchr(sp + 1, ' ', len - (size_t)(sp - s) - 1)) {
        a = s, na = (size_t)(sp - s), b = sp + 1, nb = len - na - 1;
      }
    } else if (lamp__json_kind_of(doc, m) == LAMP__JSON_ARRAY && lamp__json_count(doc, m) == 2) {
      size_t e0 = lamp__json_first(doc, m);
      a = lamp__json_string(doc, e0, &na);
      b = lamp__json_string(doc, lamp__json_next(doc, e0), &nb);
    }
    if (!a || !b || !na || !nb)
      st = lamp__fail(ctx, LAMP_ERR_FORMAT, "tokenizer.json: merge %zu is not two "
                      "non-empty tokens", r);
    else if (na > longest || nb > longest)
      st = lamp__fail(ctx, LAMP_ERR_FORMAT, "tokenizer.json: merge %zu names a token "
                      "longer than any in the vocabulary", r);
    else
      st = lamp__tok_add_merge(ctx, t, r, a, na, b, nb, scratch);
  }
  free(scratch);
  if (st == LAMP_OK && spm) {
    lamp__spm_mark_bytes(t);
    st = lamp__spm_index_bytes(ctx, t);
    /* the unknown token is the model's (the other special ids come from config.json) */
    size_t ul = 0;
    const char *u = lamp__json_string(doc, lamp__json_get(doc, model, "unk_token"), &ul);
    if (st == LAMP_OK && u && ul) t->special.unk = lamp__vocab_lookup(t, u, ul);
  }
  return st;
#undef LAMP__JBAD
}

lamp_status lamp_tokenizer_from_json(lamp_context *ctx, const char *json, size_t length,
                                     lamp_tokenizer **out) {
  if (!json || !out)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_tokenizer_from_json: NULL");
  *out = NULL;
  char msg[1024];
  lamp__json *doc = NULL;
  lamp_status st = lamp__json_parse(json, length, &doc, msg, sizeof(msg));
  if (st != LAMP_OK) return lamp__fail(ctx, st, "tokenizer.json: %s", msg);
  lamp_tokenizer *t = NULL;
  st = lamp__tok_from_json(ctx, doc, &t);
  lamp__json_free(doc);
  return lamp__tok_done(t, st, out);
}

lamp_status lamp_tokenizer_from_json_file(lamp_context *ctx, const char *path,
                                          lamp_tokenizer **out) {
  if (!path || !out)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_tokenizer_from_json_file: NULL");
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return lamp__fail(ctx, LAMP_ERR_IO, "cannot open %s", path);
  char *buf = NULL;
  size_t n = 0, cap = 0;
  lamp_status st = LAMP_OK;
  for (;;) {
    if (n == cap) {
      cap = cap ? 2 * cap : 1 << 16;
      char *nb = realloc(buf, cap);
      if (!nb) {
        st = LAMP_ERR_OUT_OF_MEMORY;
        break;
      }
      buf = nb;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) {
      if (ferror(f)) st = LAMP_ERR_IO;
      break;
    }
  }
  fclose(f);
  if (st != LAMP_OK) {
    free(buf);
    return lamp__fail(ctx, st, "cannot read %s", path);
  }
  st = lamp_tokenizer_from_json(ctx, buf, n, out);
  free(buf);
  return st;
}

/* ---- accessors ---- */

size_t lamp_tokenizer_vocab_size(const lamp_tokenizer *t) { return t ? t->n_vocab : 0; }
lamp_pretokenizer lamp_tokenizer_pretokenizer(const lamp_tokenizer *t) {
  return t ? t->pre : LAMP_PRETOKENIZER_GPT2;
}
lamp_tokenizer_model lamp_tokenizer_get_model(const lamp_tokenizer *t) {
  return t ? t->model : LAMP_TOKENIZER_GPT2;
}

lamp_tokenizer_special lamp_tokenizer_get_special(const lamp_tokenizer *t) {
  lamp_tokenizer_special none = {-1, -1, -1, -1};
  return t ? t->special : none;
}

lamp_status lamp_tokenizer_set_special(lamp_context *ctx, lamp_tokenizer *t,
                                       const lamp_tokenizer_special *special) {
  if (!t || !special) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_tokenizer_set_special: NULL");
  lamp_tokenizer_special old = t->special;
  t->special = *special;
  lamp_status st = lamp__tok_check_special(ctx, t);
  if (st != LAMP_OK) {
    t->special = old;
    return LAMP_ERR_INVALID_ARGUMENT; /* the message is in ctx */
  }
  return LAMP_OK;
}

lamp_status lamp_tokenizer_token(lamp_context *ctx, lamp_tokenizer *t, int32_t id,
                                 const char **text, size_t *length, lamp_token_type *type) {
  if (!t || !text || !length) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_tokenizer_token: NULL");
  if (id < 0 || (size_t)id >= t->n_vocab)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "token id %d is outside the "
                      "vocabulary of %zu", (int)id, t->n_vocab);
  *text = t->text + t->text_off[id];
  *length = t->text_len[id];
  if (type) *type = (lamp_token_type)t->type[id];
  return LAMP_OK;
}

lamp_status lamp_tokenizer_find(lamp_context *ctx, lamp_tokenizer *t, const char *text,
                                size_t length, int32_t *id) {
  if (!t || (!text && length) || !id) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_tokenizer_find: NULL");
  *id = length ? lamp__vocab_lookup(t, text, length) : -1;
  if (*id < 0)
    return lamp__fail(ctx, LAMP_ERR_NOT_FOUND, "\"%.*s\" is not in the vocabulary",
                      (int)(length > 64 ? 64 : length), text ? text : "");
  return LAMP_OK;
}

/* ---- encoding ---- */

int lamp__ids_push(lamp__ids *ids, int32_t id) {
  if (ids->n == ids->cap) {
    size_t cap = ids->cap ? 2 * ids->cap : 256;
    int32_t *v = realloc(ids->v, cap * sizeof(int32_t));
    if (!v) return 0;
    ids->v = v;
    ids->cap = cap;
  }
  ids->v[ids->n++] = id;
  return 1;
}

static int lamp__cand_less(const struct lamp__bpe_cand *a, const struct lamp__bpe_cand *b) {
  return a->rank != b->rank ? a->rank < b->rank : a->left < b->left;
}

static void lamp__heap_push(lamp__bpe_work *w, struct lamp__bpe_cand c) {
  size_t i = w->n_heap++;
  w->heap[i] = c;
  while (i > 0 && lamp__cand_less(&w->heap[i], &w->heap[(i - 1) / 2])) {
    struct lamp__bpe_cand tmp = w->heap[i];
    w->heap[i] = w->heap[(i - 1) / 2];
    w->heap[(i - 1) / 2] = tmp;
    i = (i - 1) / 2;
  }
}

static struct lamp__bpe_cand lamp__heap_pop(lamp__bpe_work *w) {
  struct lamp__bpe_cand top = w->heap[0];
  w->heap[0] = w->heap[--w->n_heap];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < w->n_heap && lamp__cand_less(&w->heap[l], &w->heap[m])) m = l;
    if (r < w->n_heap && lamp__cand_less(&w->heap[r], &w->heap[m])) m = r;
    if (m == i) break;
    struct lamp__bpe_cand tmp = w->heap[i];
    w->heap[i] = w->heap[m];
    w->heap[m] = tmp;
    i = m;
  }
  return top;
}

static void lamp__bpe_consider(const lamp_tokenizer *t, lamp__bpe_work *w, size_t left,
                               size_t right) {
  const lamp__merge_slot *m = lamp__merge_lookup(t, w->sym[left], w->sym[right]);
  if (m) {
    struct lamp__bpe_cand c = {m->rank, left, right, w->sym[left], w->sym[right], m->result};
    lamp__heap_push(w, c);
  }
}

/* BPE on the bytes of one piece (their byte-level tokens), as the references do. */
static int lamp__bpe_word(const lamp_tokenizer *t, lamp__bpe_work *w, const unsigned char *s,
                          size_t n, lamp__ids *out) {
  if (t->ignore_merges) {
    /* the byte-level spelling of the word, looked up whole */
    char buf[1024];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 <= sizeof(buf); i++)
      k += lamp__utf8_encode(lamp__byte_to_cp(s[i]), (unsigned char *)buf + k);
    int32_t id = k + 4 <= sizeof(buf) ? lamp__vocab_lookup(t, buf, k) : -1;
    if (id >= 0) return lamp__ids_push(out, id);
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (t->byte_token[s[i]] >= 0) w->sym[k++] = t->byte_token[s[i]];
  return lamp__bpe_merge(t, w, k, out);
}

int lamp__bpe_merge(const lamp_tokenizer *t, lamp__bpe_work *w, size_t n, lamp__ids *out) {
  for (size_t k = 0; k < n; k++) {
    w->next[k] = k + 1;
    w->prev[k] = k ? k - 1 : SIZE_MAX;
  }
  w->n_heap = 0;
  for (size_t i = 0; i + 1 < n; i++) lamp__bpe_consider(t, w, i, i + 1);
  while (w->n_heap) {
    struct lamp__bpe_cand c = lamp__heap_pop(w);
    /* stale when either side changed since the candidate was queued */
    if (w->sym[c.left] != c.lid || w->next[c.left] != c.right || w->sym[c.right] != c.rid)
      continue;
    w->sym[c.left] = c.result;
    w->sym[c.right] = -1;
    size_t after = w->next[c.right];
    w->next[c.left] = after;
    if (after < n) w->prev[after] = c.left;
    if (w->prev[c.left] != SIZE_MAX) lamp__bpe_consider(t, w, w->prev[c.left], c.left);
    if (after < n) lamp__bpe_consider(t, w, c.left, after);
  }
  for (size_t i = 0; i < n; i = w->next[i])
    if (!lamp__ids_push(out, w->sym[i])) return 0;
  return 1;
}

enum { LAMP__CL_LETTER, LAMP__CL_NUMBER, LAMP__CL_SPACE, LAMP__CL_OTHER };

static int lamp__class(uint32_t cp) {
  if (cp == LAMP__UTF8_INVALID) return LAMP__CL_OTHER;
  if (lamp__unicode_is_letter(cp)) return LAMP__CL_LETTER;
  if (lamp__unicode_is_number(cp)) return LAMP__CL_NUMBER;
  if (lamp__unicode_is_space(cp)) return LAMP__CL_SPACE;
  return LAMP__CL_OTHER;
}

/* GPT-2's pattern over code points [i0, i1):
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * Returns the end of the match that starts at i (always > i). */
static size_t lamp__gpt2_match(const uint32_t *cp, const uint8_t *cl, size_t i, size_t i1) {
  if (cp[i] == '\'' && i + 1 < i1) {
    uint32_t a = cp[i + 1], b = i + 2 < i1 ? cp[i + 2] : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  }
  size_t j = i;
  if (cp[j] == ' ' && j + 1 < i1 && cl[j + 1] != LAMP__CL_SPACE) j++;
  if (cl[j] != LAMP__CL_SPACE) {
    int k = cl[j];
    while (j < i1 && cl[j] == k) j++;
    return j;
  }
  /* whitespace: the run, less its last character when a non-space follows */
  j = i;
  while (j < i1 && cl[j] == LAMP__CL_SPACE) j++;
  if (j == i1 || j - i == 1) return j;
  return j - 1;
}

static int lamp__is_newline(uint32_t c) { return c == '\r' || c == '\n'; }

/* Llama 3's pattern over code points [i0, i1), with \p{N}{1,digits} (3; Qwen2's 1):
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 *   \s*[\r\n]+|\s+(?!\S)|\s+
 * Returns the end of the match that starts at i (always > i): the first alternative that
 * matches, each as far as its backtracking gives. */
static size_t lamp__llama3_match(const uint32_t *cp, const uint8_t *cl, size_t i, size_t i1,
                                 size_t digits) {
  if (cp[i] == '\'' && i + 1 < i1 && cp[i + 1] < 0x80) {
    /* ASCII letters in either case: | 0x20 lowers them */
    uint32_t a = cp[i + 1] | 0x20, b = i + 2 < i1 && cp[i + 2] < 0x80 ? cp[i + 2] | 0x20 : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  }
  size_t j = i;
  /* one character that is no letter, number or newline, when letters follow */
  if (cl[j] != LAMP__CL_LETTER && cl[j] != LAMP__CL_NUMBER && !lamp__is_newline(cp[j]) &&
      j + 1 < i1 && cl[j + 1] == LAMP__CL_LETTER)
    j++;
  if (cl[j] == LAMP__CL_LETTER) {
    while (j < i1 && cl[j] == LAMP__CL_LETTER) j++;
    return j;
  }
  if (cl[i] == LAMP__CL_NUMBER) {
    for (j = i; j < i1 && j - i < digits && cl[j] == LAMP__CL_NUMBER; j++) {
    }
    return j;
  }
  j = i;
  if (cp[j] == ' ' && j + 1 < i1 && cl[j + 1] == LAMP__CL_OTHER) j++;
  if (cl[j] == LAMP__CL_OTHER) {
    while (j < i1 && cl[j] == LAMP__CL_OTHER) j++;
    while (j < i1 && lamp__is_newline(cp[j])) j++;
    return j;
  }
  /* whitespace: through its last newline when it has one; else the run, less its last
   * character when a non-space follows */
  size_t end = i, last_newline = SIZE_MAX;
  for (; end < i1 && cl[end] == LAMP__CL_SPACE; end++)
    if (lamp__is_newline(cp[end])) last_newline = end;
  if (last_newline != SIZE_MAX) return last_newline + 1;
  if (end == i1 || end - i == 1) return end;
  return end - 1;
}

/* Splits text[0..n) (no special tokens inside) into pieces and BPE-encodes each. */
static int lamp__encode_plain(const lamp_tokenizer *t, const unsigned char *s, size_t n,
                              uint32_t *cp, uint8_t *cl, size_t *at, lamp__bpe_work *w,
                              lamp__ids *out) {
  size_t m = 0;
  for (size_t pos = 0; pos < n; m++) {
    size_t len;
    cp[m] = lamp__utf8_decode(s + pos, n - pos, &len);
    cl[m] = (uint8_t)lamp__class(cp[m]);
    at[m] = pos;
    pos += len;
  }
  at[m] = n;
  size_t i = 0;
  while (i < m) {
    /* the SmolLM pre-split: each number alone; GPT-2's pattern runs inside the rest */
    size_t end = m;
    if (t->pre == LAMP_PRETOKENIZER_SMOLLM) {
      if (cl[i] == LAMP__CL_NUMBER) end = i + 1;
      else
        for (end = i; end < m && cl[end] != LAMP__CL_NUMBER; end++) {
        }
    }
    while (i < end) {
      size_t j = t->pre == LAMP_PRETOKENIZER_LLAMA3  ? lamp__llama3_match(cp, cl, i, end, 3)
                 : t->pre == LAMP_PRETOKENIZER_QWEN2 ? lamp__llama3_match(cp, cl, i, end, 1)
                                                     : lamp__gpt2_match(cp, cl, i, end);
      if (!lamp__bpe_word(t, w, s + at[i], at[j] - at[i], out)) return 0;
      i = j;
    }
  }
  return 1;
}

/* The longest special token starting at s[0..n), or -1. */
static int32_t lamp__special_at(const lamp_tokenizer *t, const unsigned char *s, size_t n,
                                unsigned flags) {
  for (size_t k = 0; k < t->n_specials; k++) {
    int32_t id = t->specials[k];
    size_t len = t->text_len[id];
    if (t->type[id] != LAMP_TOKEN_USER_DEFINED && !(flags & LAMP_TOKENIZE_PARSE_SPECIAL)) continue;
    if (len <= n && memcmp(s, t->text + t->text_off[id], len) == 0) return id;
  }
  return -1;
}

lamp_status lamp_tokenizer_encode(lamp_context *ctx, lamp_tokenizer *t, const char *text,
                                  size_t length, unsigned flags, int32_t *ids, size_t capacity,
                                  size_t *count) {
  if (!t || (!text && length) || !count || (!ids && capacity))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_tokenizer_encode: NULL");
  *count = 0;
  if ((flags & LAMP_TOKENIZE_ADD_BOS) && t->special.bos < 0)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "LAMP_TOKENIZE_ADD_BOS: the "
                      "tokenizer has no BOS token");
  const unsigned char *s = (const unsigned char *)text;
  size_t n = length;
  /* tokenizer.json's NFC normalizer, on the whole text: a text without a code point NFC may
   * change is its own NFC (the common case, no copy); special tokens are matched after it
   * (NFC leaves their ASCII alone) */
  unsigned char *normal = NULL;
  for (size_t pos = 0, len; t->nfc && pos < n; pos += len) {
    uint32_t c = lamp__utf8_decode(s + pos, n - pos, &len);
    if (c == LAMP__UTF8_INVALID || !lamp__unicode_nfc_may_change(c)) continue;
    if (lamp__unicode_nfc_utf8(s, n, &normal, &n))
      return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "tokenizer: out of host memory for the "
                        "NFC of a text of %zu bytes", length);
    s = normal;
    break;
  }
  lamp__ids out = {0};
  lamp__bpe_work w = {0};
  uint32_t *cp = NULL;
  uint8_t *cl = NULL;
  size_t *at = NULL;
  int ok = 1;
  if (t->model == LAMP_TOKENIZER_GPT2) { /* SentencePiece keeps scratch space of its own */
    cp = malloc((n + 1) * sizeof(uint32_t));
    cl = malloc(n + 1);
    at = malloc((n + 1) * sizeof(size_t));
    w.sym = malloc((n + 1) * sizeof(int32_t));
    w.next = malloc((n + 1) * sizeof(size_t));
    w.prev = malloc((n + 1) * sizeof(size_t));
    w.cap = 3 * (n + 1);
    w.heap = malloc(w.cap * sizeof(*w.heap));
    ok = cp && cl && at && w.sym && w.next && w.prev && w.heap;
  }
  if (ok && (flags & LAMP_TOKENIZE_ADD_BOS)) ok = lamp__ids_push(&out, t->special.bos);
  /* Cut the special tokens out, leftmost and longest first, and encode the text between. */
  size_t start = 0;
  /* at the start or after a special token (SentencePiece's "▁") */
  int piece_start = !(flags & LAMP_TOKENIZE_CONTINUE);
  for (size_t pos = 0; ok && pos <= n; pos++) {
    int32_t sp = pos < n && t->n_specials ? lamp__special_at(t, s + pos, n - pos, flags) : -1;
    if (sp < 0 && pos < n) continue;
    if (pos > start) {
      ok = t->model == LAMP_TOKENIZER_LLAMA
               ? lamp__spm_encode(t, s + start, pos - start, piece_start, &out)
               : lamp__encode_plain(t, s + start, pos - start, cp, cl, at, &w, &out);
      piece_start = 0;
    }
    if (ok && sp >= 0) {
      ok = lamp__ids_push(&out, sp);
      pos += t->text_len[sp] - 1;
      piece_start = 1;
    }
    start = pos + 1;
  }
  free(cp);
  free(cl);
  free(at);
  free(w.sym);
  free(w.next);
  free(w.prev);
  free(w.heap);
  free(normal);
  if (!ok) {
    free(out.v);
    return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory encoding %zu bytes", n);
  }
  *count = out.n;
  lamp_status st = LAMP_OK;
  if (out.n > capacity && (ids || capacity))
    st = lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "the text needs %zu ids, the buffer "
                    "holds %zu", out.n, capacity);
  if (ids && out.n) /* out.v is NULL when the text encodes to no ids */
    memcpy(ids, out.v, (out.n < capacity ? out.n : capacity) * sizeof(int32_t));
  free(out.v);
  return st;
}

/* ---- decoding ---- */

/* Appends the bytes of token `id` to text (when it fits) and returns their count. */
static size_t lamp__decode_token(const lamp_tokenizer *t, int32_t id, char *text, size_t room) {
  const unsigned char *s = (const unsigned char *)t->text + t->text_off[id];
  size_t n = t->text_len[id];
  uint8_t ty = t->type[id];
  if (ty != LAMP_TOKEN_CONTROL && ty != LAMP_TOKEN_USER_DEFINED && ty != LAMP_TOKEN_UNKNOWN) {
    /* byte-level: every character stands for one byte; a token with a character outside the
     * alphabet is emitted as it is written, as the reference decoder does */
    size_t k = 0, bytes = 0;
    int byte_level = 1;
    while (k < n) {
      size_t len;
      uint32_t c = lamp__utf8_decode(s + k, n - k, &len);
      if (c == LAMP__UTF8_INVALID || lamp__cp_to_byte(c) < 0) {
        byte_level = 0;
        break;
      }
      k += len;
      bytes++;
    }
    if (byte_level) {
      if (bytes <= room)
        for (k = 0, bytes = 0; k < n; bytes++) {
          size_t len;
          uint32_t c = lamp__utf8_decode(s + k, n - k, &len);
          text[bytes] = (char)lamp__cp_to_byte(c);
          k += len;
        }
      return bytes;
    }
  }
  if (n && n <= room) memcpy(text, s, n);
  return n;
}

lamp_status lamp_tokenizer_decode(lamp_context *ctx, lamp_tokenizer *t, const int32_t *ids,
                                  size_t n_ids, unsigned flags, char *text, size_t capacity,
                                  size_t *length) {
  if (!t || (!ids && n_ids) || !length || (!text && capacity))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_tokenizer_decode: NULL");
  *length = 0;
  size_t total = 0;
  int piece_start = !(flags & LAMP_DETOKENIZE_CONTINUE); /* as in encoding */
  for (size_t i = 0; i < n_ids; i++) {
    int32_t id = ids[i];
    if (id < 0 || (size_t)id >= t->n_vocab)
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "id %d at position %zu is outside "
                        "the vocabulary of %zu", (int)id, i, t->n_vocab);
    uint8_t ty = t->type[id];
    int special = ty == LAMP_TOKEN_CONTROL || ty == LAMP_TOKEN_USER_DEFINED ||
                  ty == LAMP_TOKEN_UNKNOWN; /* the kinds encoding cuts out of the text */
    if ((flags & LAMP_DETOKENIZE_SKIP_SPECIAL) && ty == LAMP_TOKEN_CONTROL) {
      piece_start = 1;
      continue;
    }
    size_t room = total < capacity ? capacity - total : 0;
    char *at = text ? text + (total < capacity ? total : 0) : NULL;
    total += t->model == LAMP_TOKENIZER_LLAMA
                 ? lamp__spm_decode_token(t, id, piece_start, at, text ? room : 0)
                 : lamp__decode_token(t, id, at, text ? room : 0);
    piece_start = special;
  }
  *length = total;
  if (total > capacity && (text || capacity))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "the text needs %zu bytes, the "
                      "buffer holds %zu", total, capacity);
  if (text && total < capacity) text[total] = '\0';
  return LAMP_OK;
}
