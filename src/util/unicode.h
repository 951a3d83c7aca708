/* Unicode classification, NFC and UTF-8 coding for the tokenizer. Internal. */
#ifndef LAMP_UNICODE_H
#define LAMP_UNICODE_H

#include <stddef.h>
#include <stdint.h>

typedef struct lamp__unicode_range {
  uint32_t lo, hi; /* inclusive */
} lamp__unicode_range;

typedef struct lamp__unicode_decomposition {
  uint32_t cp;
  uint16_t at;    /* first code point in lamp__unicode_decomposed */
  uint8_t length; /* 1 .. LAMP__UNICODE_NFD_MAX */
} lamp__unicode_decomposition;

typedef struct lamp__unicode_composition {
  uint32_t first, second, composite;
} lamp__unicode_composition;

/* The longest full canonical decomposition of one code point, in code points. */
#define LAMP__UNICODE_NFD_MAX 4

/* Sorted, disjoint ranges and sorted tables (src/util/unicode_tables.c, generated). */
extern const lamp__unicode_range lamp__unicode_letters[];
extern const size_t lamp__unicode_letters_count;
extern const lamp__unicode_range lamp__unicode_numbers[];
extern const size_t lamp__unicode_numbers_count;
extern const lamp__unicode_range lamp__unicode_nfc_unstable[];
extern const size_t lamp__unicode_nfc_unstable_count;
extern const lamp__unicode_range lamp__unicode_class_ranges[]; /* a class not 0 each */
extern const size_t lamp__unicode_class_ranges_count;
extern const uint8_t lamp__unicode_class_values[]; /* the class of each range */
extern const size_t lamp__unicode_class_values_count;
extern const lamp__unicode_decomposition lamp__unicode_decompositions[];
extern const size_t lamp__unicode_decompositions_count;
extern const uint32_t lamp__unicode_decomposed[];
extern const size_t lamp__unicode_decomposed_count;
extern const lamp__unicode_composition lamp__unicode_compositions[];
extern const size_t lamp__unicode_compositions_count;

/* \p{L}: general category Lu, Ll, Lt, Lm or Lo. */
int lamp__unicode_is_letter(uint32_t cp);
/* \p{N}: general category Nd, Nl or No. */
int lamp__unicode_is_number(uint32_t cp);
/* \s: the White_Space property. */
int lamp__unicode_is_space(uint32_t cp);
/* A code point with which NFC may change a text: canonical combining class not 0, or
 * NFC_Quick_Check No or Maybe. A text without one is its own NFC. */
int lamp__unicode_nfc_may_change(uint32_t cp);
/* The canonical combining class of cp (0 for starters). */
unsigned lamp__unicode_ccc(uint32_t cp);
/* Writes the NFC (Unicode Normalization Form C: canonical decomposition, canonical ordering,
 * canonical composition; UAX #15) of in[0..n) to out, which must hold n LAMP__UNICODE_NFD_MAX
 * code points and not overlap in; returns the number written (at most n NFD_MAX). */
size_t lamp__unicode_nfc(const uint32_t *in, size_t n, uint32_t *out);
/* The NFC of the UTF-8 text s[0..n) as a new buffer (*out, *out_len; free() it): invalid bytes
 * are kept as they are and split the text (nothing composes across one). Returns -1, with
 * *out NULL, when memory runs out. */
int lamp__unicode_nfc_utf8(const unsigned char *s, size_t n, unsigned char **out,
                           size_t *out_len);

/* Marks a byte that does not start a valid UTF-8 sequence; it counts as one code point of its
 * own that is neither letter, number nor space. */
#define LAMP__UTF8_INVALID 0xFFFFFFFFu

/* Decodes the code point at s[0..n), n >= 1: sets *len to its byte length (1 for an invalid
 * byte) and returns it, or LAMP__UTF8_INVALID for an invalid, overlong, surrogate or truncated
 * sequence. */
uint32_t lamp__utf8_decode(const unsigned char *s, size_t n, size_t *len);

/* Writes cp as UTF-8 into out (at least 4 bytes); returns the byte count (0 if cp is invalid). */
size_t lamp__utf8_encode(uint32_t cp, unsigned char *out);

#endif
