/* lamp: the tokenizers of the models lamp runs, built from GGUF metadata (tokenizer.ggml.*) or
 * from a Hugging Face tokenizer.json:
 * - byte-level BPE (GGUF model "gpt2"; GPT-2 family, as used by SmolLM2), and
 * - SentencePiece BPE (GGUF model "llama": Llama 2, Mistral, Gemma; or the tokenizer.json that
 *   Hugging Face's converter writes for Llama 2, which merges by rank instead of by score).
 *
 * Both cut special tokens out of the text first (leftmost, longest match: USER_DEFINED tokens
 * always, CONTROL and UNKNOWN ones with LAMP_TOKENIZE_PARSE_SPECIAL).
 *
 * Byte-level BPE, as the reference tokenizers: each remaining piece is split by the
 * pre-tokenizer (GPT-2's pattern, preceded for "smollm"-style tokenizers by a split of every
 * number character into its own piece), mapped to GPT-2's byte-level alphabet and merged by
 * BPE in merge-rank order. Text is UTF-8; a byte that is not part of valid UTF-8 is kept as a
 * piece character of its own (neither letter, number nor space). A byte whose byte-level
 * character has no token of its own (a vocabulary without byte fallback or an unknown token, as
 * SmolLM2's lacks 04 06 13 14 16 1d c0 c1 f1 f2 f5-ff) is dropped, as Hugging Face `tokenizers`
 * drops it (checked with tokenizers 0.23.3: "a\x04b" encodes as "ab"); every other byte string
 * encodes and decodes back exactly.
 *
 * SentencePiece BPE, as sentencepiece and llama.cpp's SPM tokenizer do (checked against
 * sentencepiece 0.2.3): spaces become U+2581 "▁", and with tokenizer.ggml.add_space_prefix
 * (default true; Gemma's files set it false) a "▁" goes before each text piece (the start of
 * the text and after each special token, where llama.cpp puts it). The piece is split into
 * UTF-8 characters (a byte that is not UTF-8 is one of its own), and the adjacent pair whose
 * concatenation is the best-scored normal piece (tokenizer.ggml.scores) is merged until none
 * is, leftmost first on ties (from tokenizer.json: the best-ranked merge, as Hugging Face's
 * BPE does). A symbol left without a piece becomes its bytes' <0xXX> tokens (byte fallback);
 * where the vocabulary has no byte tokens, a run of such symbols is one unknown id, as
 * sentencepiece (and fuse_unk) gives it (dropped without an unknown id). User-defined tokens
 * are cut out of the text, not reached by merges. No normalizer is applied (Llama 2's
 * tokenizer.model has the identity normalizer; a sentencepiece model trained with nmt_nfkc or
 * remove_extra_whitespaces gives other ids where those change the text). Decoding turns "▁"
 * back into spaces and byte tokens into their bytes, and drops the "▁" the prefix added at the
 * start and after each special token. With byte tokens every byte string encodes and decodes
 * back exactly, except that a "▁" written in the text comes back as a space (as from
 * sentencepiece, which maps it to the space when encoding too). tokenizer.ggml.add_bos_token is
 * not read: the caller asks for the BOS with LAMP_TOKENIZE_ADD_BOS, as for byte-level BPE.
 *
 * Errors as everywhere in lamp: every function returns a lamp_status and records the message in
 * `ctx` for lamp_context_error; `ctx` may be NULL everywhere, and then only the status comes
 * back. */
#ifndef LAMP_TOKENIZER_H
#define LAMP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "lamp/context.h"
#include "lamp/export.h"
#include "lamp/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lamp_tokenizer lamp_tokenizer;

/* Token attributes, numbered as GGUF's tokenizer.ggml.token_type. */
typedef enum lamp_token_type {
  LAMP_TOKEN_NORMAL = 1,
  LAMP_TOKEN_UNKNOWN = 2,
  LAMP_TOKEN_CONTROL = 3,      /* special tokens such as <|im_start|> */
  LAMP_TOKEN_USER_DEFINED = 4, /* added tokens matched verbatim but not special */
  LAMP_TOKEN_UNUSED = 5,
  LAMP_TOKEN_BYTE = 6,
} lamp_token_type;

/* Pre-tokenizers lamp implements. */
typedef enum lamp_pretokenizer {
  LAMP_PRETOKENIZER_GPT2 = 0,   /* GPT-2's pattern */
  LAMP_PRETOKENIZER_SMOLLM = 1, /* each \p{N} alone, then GPT-2's pattern (also StarCoder) */
  LAMP_PRETOKENIZER_LLAMA3 = 2, /* Llama 3's pattern: contractions in any case, a letter run
                                   with one leading non-letter, digits in threes, newlines kept
                                   with the punctuation or whitespace before them */
  LAMP_PRETOKENIZER_QWEN2 = 3,  /* Llama 3's pattern with one digit at a time */
} lamp_pretokenizer;

/* Tokenizer models, named as GGUF's tokenizer.ggml.model. */
typedef enum lamp_tokenizer_model {
  LAMP_TOKENIZER_GPT2 = 0,  /* byte-level BPE with merge ranks (GGUF "gpt2", tokenizer.json) */
  LAMP_TOKENIZER_LLAMA = 1, /* SentencePiece BPE with byte fallback (GGUF "llama", or Llama
                               2's tokenizer.json) */
} lamp_tokenizer_model;

/* Special token ids; -1 where the tokenizer has none. */
typedef struct lamp_tokenizer_special {
  int32_t bos, eos, pad, unk;
} lamp_tokenizer_special;

/* Builds a tokenizer from tokenizer.ggml.model, .tokens, .token_type (optional: all normal)
 * and the bos/eos/padding/unknown token ids, and for model "gpt2" .merges and .pre (optional:
 * "gpt2"), for model "llama" .scores (float32 or float64, one a token), .add_space_prefix
 * (optional: true) and the BYTE tokens, each "<0xXX>" (.merges and .pre are not read).
 * A missing or malformed entry is LAMP_ERR_FORMAT naming the key (and the token or merge);
 * an unknown model or pre-tokenizer is LAMP_ERR_UNSUPPORTED naming it. */
LAMP_API lamp_status lamp_tokenizer_from_gguf(lamp_context *ctx, lamp_gguf *gguf,
                                              lamp_tokenizer **out);

/* Builds a tokenizer from the text of a Hugging Face tokenizer.json (`length` bytes): model
 * BPE with vocab and merges (either "a b" strings or [a, b] pairs), added_tokens (special ones
 * become CONTROL, the others USER_DEFINED), and either
 * - byte-level BPE: no normalizer, or NFC (Qwen2's: lamp_tokenizer_encode normalises the text
 *   with Unicode 14.0's tables, special tokens matched after it), and a ByteLevel
 *   pre-tokenizer alone (GPT-2), after Digits with individual_digits (SmolLM) or after Llama
 *   3's or Qwen2's Split pattern (see lamp_pretokenizer); or
 * - SentencePiece BPE (byte_fallback true, fuse_unk true, as Llama 2's): normalizer
 *   Sequence[Prepend("▁") (optional: add_space_prefix), Replace(" ", "▁")], no pre-tokenizer,
 *   decoder Sequence[Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0) (with the Prepend
 *   only)]. Vocab entries "<0xXX>" are the byte tokens; merges go by rank as Hugging Face
 *   `tokenizers` does (checked with 0.23.3), not by score; the unknown id is model.unk_token.
 *   Metaspace pre-tokenizers (the non-legacy form) are LAMP_ERR_UNSUPPORTED.
 * The other special ids are not part of tokenizer.json: they start at -1 (see
 * lamp_tokenizer_set_special). */
LAMP_API lamp_status lamp_tokenizer_from_json(lamp_context *ctx, const char *json, size_t length,
                                              lamp_tokenizer **out);

/* The same, reading the file at `path`. */
LAMP_API lamp_status lamp_tokenizer_from_json_file(lamp_context *ctx, const char *path,
                                                   lamp_tokenizer **out);

LAMP_API void lamp_tokenizer_release(lamp_tokenizer *tok);

LAMP_API size_t lamp_tokenizer_vocab_size(const lamp_tokenizer *tok);
LAMP_API lamp_tokenizer_model lamp_tokenizer_get_model(const lamp_tokenizer *tok);
/* The pre-tokenizer of a byte-level BPE tokenizer (LAMP_PRETOKENIZER_GPT2 for SentencePiece,
 * which has none). */
LAMP_API lamp_pretokenizer lamp_tokenizer_pretokenizer(const lamp_tokenizer *tok);
LAMP_API lamp_tokenizer_special lamp_tokenizer_get_special(const lamp_tokenizer *tok);
/* Sets the special ids (each -1 or a valid id, else LAMP_ERR_INVALID_ARGUMENT). */
LAMP_API lamp_status lamp_tokenizer_set_special(lamp_context *ctx, lamp_tokenizer *tok,
                                                const lamp_tokenizer_special *special);

/* Encoding options (bit flags). */
#define LAMP_TOKENIZE_PARSE_SPECIAL 1u /* match CONTROL tokens in the text (the reference's
                                          default); USER_DEFINED ones are always matched */
#define LAMP_TOKENIZE_ADD_BOS 2u       /* put the BOS id first (LAMP_ERR_INVALID_ARGUMENT when
                                          there is none) */
#define LAMP_TOKENIZE_CONTINUE 4u      /* the text continues earlier text (a label word after
                                          the prompt): SentencePiece puts no add_space_prefix
                                          "▁" before it, so that " yes" is "▁yes" as inside a
                                          text; no effect on byte-level BPE */

/* Encodes `length` bytes of `text`. Writes up to `capacity` ids to `ids` and sets *count to the
 * number of ids the text needs. Returns LAMP_ERR_INVALID_ARGUMENT when they do not fit, except
 * that `ids` NULL with `capacity` 0 asks for the count only (LAMP_OK). */
LAMP_API lamp_status lamp_tokenizer_encode(lamp_context *ctx, lamp_tokenizer *tok, const char *text,
                                           size_t length, unsigned flags, int32_t *ids,
                                           size_t capacity, size_t *count);

/* Decoding options (bit flags). */
#define LAMP_DETOKENIZE_SKIP_SPECIAL 1u /* leave CONTROL tokens out */
#define LAMP_DETOKENIZE_CONTINUE 2u     /* the ids continue earlier ones (streaming one token at
                                           a time): SentencePiece keeps a leading "▁" as a
                                           space; no effect on byte-level BPE */

/* Decodes ids to bytes (the exact bytes encoded; a cut through a multi-byte character gives its
 * partial bytes). Writes up to `capacity` bytes and a NUL when there is room for it, and sets
 * *length to the bytes the ids need (without the NUL). Returns LAMP_ERR_INVALID_ARGUMENT when
 * they do not fit, except that `text` NULL with `capacity` 0 asks for the length only; an id
 * outside the vocabulary is LAMP_ERR_INVALID_ARGUMENT naming it. */
LAMP_API lamp_status lamp_tokenizer_decode(lamp_context *ctx, lamp_tokenizer *tok,
                                           const int32_t *ids, size_t n_ids, unsigned flags,
                                           char *text, size_t capacity, size_t *length);

/* The vocabulary string of a token as stored (byte-level alphabet for normal tokens of
 * byte-level BPE, "▁" for the space in SentencePiece pieces), and its type. The pointer stays
 * valid until lamp_tokenizer_release. */
LAMP_API lamp_status lamp_tokenizer_token(lamp_context *ctx, lamp_tokenizer *tok, int32_t id,
                                          const char **text, size_t *length, lamp_token_type *type);

/* The id of a vocabulary string (as stored), or LAMP_ERR_NOT_FOUND. */
LAMP_API lamp_status lamp_tokenizer_find(lamp_context *ctx, lamp_tokenizer *tok, const char *text,
                                         size_t length, int32_t *id);

#ifdef __cplusplus
}
#endif

#endif
