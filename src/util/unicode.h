/* Unicode classification and UTF-8 decoding for the tokenizer's pre-tokenizer. Internal. */
#ifndef LAMP_UNICODE_H
#define LAMP_UNICODE_H

#include <stddef.h>
#include <stdint.h>

typedef struct lamp__unicode_range {
  uint32_t lo, hi; /* inclusive */
} lamp__unicode_range;

/* Sorted, disjoint ranges (src/unicode_tables.c, generated). */
extern const lamp__unicode_range lamp__unicode_letters[];
extern const size_t lamp__unicode_letters_count;
extern const lamp__unicode_range lamp__unicode_numbers[];
extern const size_t lamp__unicode_numbers_count;
extern const lamp__unicode_range lamp__unicode_nfc_unstable[];
extern const size_t lamp__unicode_nfc_unstable_count;

/* \p{L}: general category Lu, Ll, Lt, Lm or Lo. */
int lamp__unicode_is_letter(uint32_t cp);
/* \p{N}: general category Nd, Nl or No. */
int lamp__unicode_is_number(uint32_t cp);
/* \s: the White_Space property. */
int lamp__unicode_is_space(uint32_t cp);
/* A code point with which NFC may change a text: canonical combining class not 0, or
 * NFC_Quick_Check No or Maybe. A text without one is its own NFC. */
int lamp__unicode_nfc_may_change(uint32_t cp);

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
