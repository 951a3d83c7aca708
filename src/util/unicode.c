/* Unicode classification by binary search in generated range tables, and UTF-8 coding. */
#include "util/unicode.h"

static int lamp__in_ranges(const lamp__unicode_range *r, size_t n, uint32_t cp) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cp < r[mid].lo) hi = mid;
    else if (cp > r[mid].hi) lo = mid + 1;
    else return 1;
  }
  return 0;
}

int lamp__unicode_is_letter(uint32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return lamp__in_ranges(lamp__unicode_letters, lamp__unicode_letters_count, cp);
}

int lamp__unicode_is_number(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return lamp__in_ranges(lamp__unicode_numbers, lamp__unicode_numbers_count, cp);
}

int lamp__unicode_nfc_may_change(uint32_t cp) {
  if (cp < 0x300) return 0;
  return lamp__in_ranges(lamp__unicode_nfc_unstable, lamp__unicode_nfc_unstable_count, cp);
}

int lamp__unicode_is_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

uint32_t lamp__utf8_decode(const unsigned char *s, size_t n, size_t *len) {
  *len = 1;
  unsigned char c = s[0];
  if (c < 0x80) return c;
  size_t need;
  uint32_t cp, min;
  if ((c & 0xE0) == 0xC0) need = 2, cp = c & 0x1F, min = 0x80;
  else if ((c & 0xF0) == 0xE0) need = 3, cp = c & 0x0F, min = 0x800;
  else if ((c & 0xF8) == 0xF0) need = 4, cp = c & 0x07, min = 0x10000;
  else return LAMP__UTF8_INVALID;
  if (n < need) return LAMP__UTF8_INVALID;
  for (size_t i = 1; i < need; i++) {
    if ((s[i] & 0xC0) != 0x80) return LAMP__UTF8_INVALID;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return LAMP__UTF8_INVALID;
  *len = need;
  return cp;
}

size_t lamp__utf8_encode(uint32_t cp, unsigned char *out) {
  if (cp < 0x80) {
    out[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (unsigned char)(0xC0 | (cp >> 6));
    out[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  if (cp < 0x10000) {
    out[0] = (unsigned char)(0xE0 | (cp >> 12));
    out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  if (cp > 0x10FFFF) return 0;
  out[0] = (unsigned char)(0xF0 | (cp >> 18));
  out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}
