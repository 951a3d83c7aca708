/* SentencePiece BPE (GGUF tokenizer.ggml.model "llama": Llama 2, Mistral, Gemma): piece scores,
 * "▁" for spaces, merges of the best-scored adjacent pair through a priority queue, byte
 * fallback to <0xXX> tokens, and decoding back; from Llama 2's tokenizer.json (no scores) the
 * merges go by rank through the byte-level code's merge table instead. The tables, the
 * special-token split, the tokenizer.json reader and the entry points are tokenizer.c's. */
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"
#include "io/gguf_internal.h"
#include "text/tokenizer_internal.h"
#include "util/unicode.h"

static const char lamp__spm_space[3] = {'\xE2', '\x96', '\x81'}; /* U+2581 "▁" */

static int lamp__hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* The byte of a "<0xXX>" token, or -1. */
static int lamp__spm_byte_of(const char *s, size_t n) {
  if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
  int hi = lamp__hex_digit(s[3]), lo = lamp__hex_digit(s[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

lamp_status lamp__spm_load_gguf(lamp_context *ctx, lamp_gguf *g, lamp_tokenizer *t) {
  static const char key[] = "tokenizer.ggml.scores";
  size_t k;
  if (lamp_gguf_find_key(NULL, g, key, &k) != LAMP_OK)
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: key \"%s\" is missing (the "
                      "\"llama\" model needs the piece scores)", key);
  lamp_gguf_key_info info;
  LAMP__TRY(lamp_gguf_key_at(ctx, g, k, &info));
  if (info.type != LAMP_GGUF_ARRAY ||
      (info.array_type != LAMP_GGUF_FLOAT32 && info.array_type != LAMP_GGUF_FLOAT64))
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: key \"%s\" is not an array of "
                      "floats", key);
  if (info.count != t->n_vocab)
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: key \"%s\" has %llu scores for "
                      "%zu tokens", key, (unsigned long long)info.count, t->n_vocab);
  t->scores = malloc(t->n_vocab * sizeof(float));
  if (!t->scores) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory for the scores");
  for (size_t i = 0; i < t->n_vocab; i++) {
    double v;
    LAMP__TRY(lamp_gguf_array_float(ctx, g, k, i, &v));
    if (v != v)
      return lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: key \"%s\": the score of "
                        "token %zu is not a number", key, i);
    t->scores[i] = (float)v;
  }
  int prefix = 1; /* llama.cpp's default; Gemma's GGUF files set it false */
  lamp_status st = lamp_gguf_get_bool(NULL, g, "tokenizer.ggml.add_space_prefix", &prefix);
  if (st == LAMP_ERR_NOT_FOUND) prefix = 1;
  else if (st != LAMP_OK)
    return lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: %s", lamp__gguf_last_error(g));
  t->add_space_prefix = prefix != 0;
  return lamp__spm_index_bytes(ctx, t);
}

lamp_status lamp__spm_index_bytes(lamp_context *ctx, lamp_tokenizer *t) {
  for (int b = 0; b < 256; b++) t->byte_token[b] = -1;
  for (size_t i = 0; i < t->n_vocab; i++) {
    if (t->type[i] != LAMP_TOKEN_BYTE) continue;
    const char *s = t->text + t->text_off[i];
    int b = lamp__spm_byte_of(s, t->text_len[i]);
    if (b < 0)
      return lamp__fail(ctx, LAMP_ERR_FORMAT, "GGUF tokenizer: byte token %zu (\"%.*s\") is "
                        "not <0xXX>", i, (int)(t->text_len[i] > 64 ? 64 : t->text_len[i]), s);
    if (t->byte_token[b] < 0) t->byte_token[b] = (int32_t)i;
  }
  return LAMP_OK;
}

void lamp__spm_mark_bytes(lamp_tokenizer *t) {
  for (size_t i = 0; i < t->n_vocab; i++)
    if (t->type[i] == LAMP_TOKEN_NORMAL && lamp__spm_byte_of(t->text + t->text_off[i],
                                                             t->text_len[i]) >= 0)
      t->type[i] = LAMP_TOKEN_BYTE;
}

/* ---- encoding ---- */

typedef struct lamp__spm_pair {
  float score;
  size_t left, right, len; /* symbols and the length of the merged piece */
} lamp__spm_pair;

typedef struct lamp__spm_work {
  const unsigned char *buf; /* the text with "▁" for spaces */
  size_t n_sym;
  size_t *start, *len;      /* symbol bytes; len 0 once merged into the left neighbour */
  size_t *prev, *next;      /* live neighbours (SIZE_MAX before the first, n_sym after the last) */
  lamp__spm_pair *heap;
  size_t n_heap;
} lamp__spm_work;

/* Higher score first; on ties the leftmost pair, as SentencePiece and llama.cpp order them. */
static int lamp__spm_before(const lamp__spm_pair *a, const lamp__spm_pair *b) {
  return a->score != b->score ? a->score > b->score : a->left < b->left;
}

static void lamp__spm_swap(lamp__spm_pair *a, lamp__spm_pair *b) {
  lamp__spm_pair tmp = *a;
  *a = *b;
  *b = tmp;
}

static void lamp__spm_push(lamp__spm_work *w, lamp__spm_pair p) {
  size_t i = w->n_heap++;
  w->heap[i] = p;
  while (i > 0 && lamp__spm_before(&w->heap[i], &w->heap[(i - 1) / 2])) {
    lamp__spm_swap(&w->heap[i], &w->heap[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
}

static lamp__spm_pair lamp__spm_pop(lamp__spm_work *w) {
  lamp__spm_pair top = w->heap[0];
  w->heap[0] = w->heap[--w->n_heap];
  for (size_t i = 0;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < w->n_heap && lamp__spm_before(&w->heap[l], &w->heap[m])) m = l;
    if (r < w->n_heap && lamp__spm_before(&w->heap[r], &w->heap[m])) m = r;
    if (m == i) break;
    lamp__spm_swap(&w->heap[i], &w->heap[m]);
    i = m;
  }
  return top;
}

/* The id of a piece that BPE may produce, or -1: normal pieces only. Control, unknown and
 * byte tokens are no pieces to SentencePiece; user-defined ones are cut out of the text before
 * (llama.cpp also merges into them; sentencepiece matches them in its normalized text), so that
 * a user-defined id always marks a cut, after which decoding drops the prefix again. */
static int32_t lamp__spm_piece(const lamp_tokenizer *t, const unsigned char *s, size_t n) {
  int32_t id = lamp__vocab_lookup(t, (const char *)s, n);
  return id >= 0 && t->type[id] == LAMP_TOKEN_NORMAL ? id : -1;
}

/* Queues the merge of adjacent symbols a and b when their concatenation is a piece. */
static void lamp__spm_consider(const lamp_tokenizer *t, lamp__spm_work *w, size_t a, size_t b) {
  size_t len = w->len[a] + w->len[b]; /* adjacent symbols are adjacent bytes */
  int32_t id = lamp__spm_piece(t, w->buf + w->start[a], len);
  if (id >= 0) lamp__spm_push(w, (lamp__spm_pair){t->scores[id], a, b, len});
}

/* Appends the ids of symbol p[0..len): its piece, else its bytes' tokens (byte fallback), else
 * unk, where a run of unknown symbols (*unknown_run) is one unk (dropped without an unk id), as
 * sentencepiece and Hugging Face's fuse_unk give it. 0 when out of memory. */
static int lamp__spm_emit(const lamp_tokenizer *t, const unsigned char *p, size_t len,
                          int *unknown_run, lamp__ids *out) {
  int32_t id = lamp__spm_piece(t, p, len);
  size_t j = 0;
  if (id < 0)
    while (j < len && t->byte_token[p[j]] >= 0) j++;
  if (id < 0 && j < len) {
    int first = !*unknown_run;
    *unknown_run = 1;
    return first && t->special.unk >= 0 ? lamp__ids_push(out, t->special.unk) : 1;
  }
  *unknown_run = 0;
  if (id >= 0) return lamp__ids_push(out, id);
  for (j = 0; j < len; j++)
    if (!lamp__ids_push(out, t->byte_token[p[j]])) return 0;
  return 1;
}

/* SentencePiece: merges the best-scored pair until none is a piece, then emits the symbols. */
static int lamp__spm_merge_scored(const lamp_tokenizer *t, lamp__spm_work *w, lamp__ids *out) {
  for (size_t i = 0; i + 1 < w->n_sym; i++) lamp__spm_consider(t, w, i, i + 1);
  while (w->n_heap) {
    lamp__spm_pair p = lamp__spm_pop(w);
    /* stale when either side was merged since: lengths only grow */
    if (w->len[p.left] == 0 || w->len[p.right] == 0 || w->len[p.left] + w->len[p.right] != p.len)
      continue;
    w->len[p.left] = p.len;
    w->len[p.right] = 0;
    size_t after = w->next[p.right];
    w->next[p.left] = after;
    if (after < w->n_sym) w->prev[after] = p.left;
    if (w->prev[p.left] != SIZE_MAX) lamp__spm_consider(t, w, w->prev[p.left], p.left);
    if (after < w->n_sym) lamp__spm_consider(t, w, p.left, after);
  }
  int ok = 1, unknown_run = 0;
  for (size_t i = 0; ok && i < w->n_sym; i = w->next[i])
    ok = lamp__spm_emit(t, w->buf + w->start[i], w->len[i], &unknown_run, out);
  return ok;
}

/* Hugging Face's BPE with byte fallback (from tokenizer.json, which has merges, not scores):
 * the characters' ids first, then merges by rank through the byte-level code's merge table. */
static int lamp__spm_merge_ranked(const lamp_tokenizer *t, const lamp__spm_work *sw,
                                  lamp__ids *out) {
  lamp__ids syms = {0};
  int ok = 1, unknown_run = 0;
  for (size_t i = 0; ok && i < sw->n_sym; i++)
    ok = lamp__spm_emit(t, sw->buf + sw->start[i], sw->len[i], &unknown_run, &syms);
  lamp__bpe_work w = {0};
  w.sym = syms.v;
  w.next = malloc((syms.n + 1) * sizeof(size_t));
  w.prev = malloc((syms.n + 1) * sizeof(size_t));
  w.cap = 3 * (syms.n + 1);
  w.heap = malloc(w.cap * sizeof(*w.heap));
  if (ok) ok = w.next && w.prev && w.heap && lamp__bpe_merge(t, &w, syms.n, out);
  free(syms.v);
  free(w.next);
  free(w.prev);
  free(w.heap);
  return ok;
}

int lamp__spm_encode(const lamp_tokenizer *t, const unsigned char *s, size_t n, int piece_start,
                     lamp__ids *out) {
  size_t prefix = t->add_space_prefix && piece_start ? 1 : 0, spaces = 0;
  for (size_t i = 0; i < n; i++) spaces += s[i] == ' ';
  if (n > (SIZE_MAX / 8 - 3) / 3) return 0; /* the tables below would overflow */
  size_t m = 3 * prefix + n + 2 * spaces; /* each space becomes three bytes */
  unsigned char *buf = malloc(m ? m : 1);
  lamp__spm_work w = {0};
  w.start = malloc((m + 1) * sizeof(size_t));
  w.len = malloc((m + 1) * sizeof(size_t));
  w.prev = malloc((m + 1) * sizeof(size_t));
  w.next = malloc((m + 1) * sizeof(size_t));
  w.heap = malloc(3 * (m + 1) * sizeof(*w.heap)); /* n-1 pairs, then at most two per merge */
  int ok = buf && w.start && w.len && w.prev && w.next && w.heap;
  if (ok) {
    size_t k = 0;
    if (prefix) {
      memcpy(buf, lamp__spm_space, 3);
      k = 3;
    }
    for (size_t i = 0; i < n; i++) {
      if (s[i] == ' ') {
        memcpy(buf + k, lamp__spm_space, 3);
        k += 3;
      } else {
        buf[k++] = s[i];
      }
    }
    /* one symbol per UTF-8 character (a byte that is not UTF-8 is one of its own) */
    w.buf = buf;
    for (size_t pos = 0; pos < m; w.n_sym++) {
      size_t len;
      lamp__utf8_decode(buf + pos, m - pos, &len);
      w.start[w.n_sym] = pos;
      w.len[w.n_sym] = len;
      w.prev[w.n_sym] = w.n_sym ? w.n_sym - 1 : SIZE_MAX;
      w.next[w.n_sym] = w.n_sym + 1;
      pos += len;
    }
    ok = t->scores ? lamp__spm_merge_scored(t, &w, out) : lamp__spm_merge_ranked(t, &w, out);
  }
  free(buf);
  free(w.start);
  free(w.len);
  free(w.prev);
  free(w.next);
  free(w.heap);
  return ok;
}

/* ---- decoding ---- */

size_t lamp__spm_decode_token(const lamp_tokenizer *t, int32_t id, int piece_start, char *text,
                              size_t room) {
  const char *s = t->text + t->text_off[id];
  size_t n = t->text_len[id];
  uint8_t ty = t->type[id];
  if (ty == LAMP_TOKEN_BYTE) { /* checked to be <0xXX> when loaded */
    if (room >= 1) text[0] = (char)lamp__spm_byte_of(s, n);
    return 1;
  }
  if (ty == LAMP_TOKEN_CONTROL || ty == LAMP_TOKEN_USER_DEFINED || ty == LAMP_TOKEN_UNKNOWN) {
    if (n && n <= room) memcpy(text, s, n);
    return n;
  }
  /* a piece: "▁" is a space; the one add_space_prefix put first is dropped */
  size_t i = 0;
  if (piece_start && t->add_space_prefix && n >= 3 && memcmp(s, lamp__spm_space, 3) == 0) i = 3;
  size_t bytes = 0;
  for (size_t k = i; k < n; bytes++)
    k += k + 3 <= n && memcmp(s + k, lamp__spm_space, 3) == 0 ? 3 : 1;
  if (bytes <= room)
    for (size_t k = i, o = 0; k < n; o++) {
      int space = k + 3 <= n && memcmp(s + k, lamp__spm_space, 3) == 0;
      text[o] = space ? ' ' : s[k];
      k += space ? 3 : 1;
    }
  return bytes;
}
