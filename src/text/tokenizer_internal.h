/* The tokenizer's state, shared by the byte-level BPE code (tokenizer.c: tables, GGUF and
 * tokenizer.json readers, special-token split, encode/decode entry points) and the
 * SentencePiece BPE code (tokenizer_spm.c: scores, byte fallback, score-driven merges). */
#ifndef LAMP_TEXT_TOKENIZER_INTERNAL_H
#define LAMP_TEXT_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lamp/tokenizer.h"

typedef struct lamp__merge_slot {
  int32_t left, right; /* -1: empty */
  int32_t rank, result;
} lamp__merge_slot;

struct lamp_tokenizer {
  size_t n_vocab;
  char *text;          /* all token strings, back to back */
  size_t *text_off;    /* [V] */
  uint32_t *text_len;  /* [V] */
  uint8_t *type;       /* [V] lamp_token_type */
  int32_t *vocab_slots; /* open addressing: token string -> id, -1 empty */
  size_t vocab_cap;    /* power of two */
  lamp__merge_slot *merges;
  size_t merge_cap;    /* power of two */
  int32_t byte_token[256]; /* byte-level: id of the single-byte token of each byte; -1 when the
                              vocabulary lacks it (SmolLM2 lacks 21 bytes): such bytes are
                              dropped, as the references do. SentencePiece: the id of the
                              <0xXX> byte token, -1 when there is none (then unk stands in) */
  int32_t *specials;   /* ids matched verbatim in the text, longest first */
  size_t n_specials;
  lamp_pretokenizer pre;
  int ignore_merges;   /* a word that is itself a token is not split (tokenizer.json option) */
  int nfc;             /* tokenizer.json's NFC normalizer: texts are normalised to NFC
                          before encoding */
  lamp_tokenizer_special special;
  lamp_tokenizer_model model;
  float *scores;       /* [V] SentencePiece piece scores (GGUF); NULL for byte-level BPE and
                          for SentencePiece from tokenizer.json, which merges by rank */
  int add_space_prefix; /* SentencePiece: "▁" before each text piece (start, after a special) */
};

/* The id of a vocabulary string, or -1. */
int32_t lamp__vocab_lookup(const lamp_tokenizer *t, const char *s, size_t n);

/* A growing list of ids. */
typedef struct lamp__ids {
  int32_t *v;
  size_t n, cap;
} lamp__ids;

/* Appends an id; 0 when out of memory. */
int lamp__ids_push(lamp__ids *ids, int32_t id);

/* Scratch space of rank-driven BPE, sized for the longest word: n symbols need n of each and
 * a heap of 3n. */
typedef struct lamp__bpe_work {
  int32_t *sym;      /* symbol ids; -1 once merged into the left neighbour */
  size_t *next;      /* next live symbol */
  size_t *prev;      /* previous live symbol (SIZE_MAX at the start) */
  struct lamp__bpe_cand { int32_t rank; size_t left, right; int32_t lid, rid, result; } *heap;
  size_t n_heap, cap;
} lamp__bpe_work;

/* BPE on the symbol ids w->sym[0..n): merges the best-ranked adjacent pair of the merge table
 * (leftmost on ties) until none applies, and appends the ids. 0 when out of memory. */
int lamp__bpe_merge(const lamp_tokenizer *t, lamp__bpe_work *w, size_t n, lamp__ids *out);

/* SentencePiece: reads tokenizer.ggml.scores and .add_space_prefix and finds the byte tokens,
 * once the tokens, their types and the string index are in place. */
lamp_status lamp__spm_load_gguf(lamp_context *ctx, lamp_gguf *g, lamp_tokenizer *t);

/* SentencePiece: finds the byte tokens (type BYTE, each "<0xXX>", else LAMP_ERR_FORMAT). */
lamp_status lamp__spm_index_bytes(lamp_context *ctx, lamp_tokenizer *t);

/* SentencePiece from tokenizer.json, which has no token types: makes the normal tokens spelled
 * "<0xXX>" byte tokens, as Hugging Face's byte fallback finds them. */
void lamp__spm_mark_bytes(lamp_tokenizer *t);

/* SentencePiece: encodes s[0..n) (no special tokens inside); `piece_start` is set at the start
 * of the text and after a special token, where add_space_prefix puts its "▁". 0 when out of
 * memory. */
int lamp__spm_encode(const lamp_tokenizer *t, const unsigned char *s, size_t n, int piece_start,
                     lamp__ids *out);

/* SentencePiece: the bytes of token `id` (written when they fit in `room`) and their count;
 * `piece_start` as for encoding, where the "▁" of add_space_prefix is dropped. */
size_t lamp__spm_decode_token(const lamp_tokenizer *t, int32_t id, int piece_start, char *text,
                              size_t room);

#endif
