/* Unicode classification and NFC by binary search in generated tables, and UTF-8 coding. */
#include "util/unicode.h"

#include <stdlib.h>

/* The index of the range holding cp, or n. */
static size_t lamp__range_of(const lamp__unicode_range *r, size_t n, uint32_t cp) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cp < r[mid].lo) hi = mid;
    else if (cp > r[mid].hi) lo = mid + 1;
    else return mid;
  }
  return n;
}

static int lamp__in_ranges(const lamp__unicode_range *r, size_t n, uint32_t cp) {
  return lamp__range_of(r, n, cp) < n;
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

/* ---- NFC ------------------------------------------------------------------------------- */

/* Hangul syllables decompose and compose by arithmetic (Unicode 3.12). */
enum {
  HANGUL_S = 0xAC00, HANGUL_L = 0x1100, HANGUL_V = 0x1161, HANGUL_T = 0x11A7,
  HANGUL_LN = 19, HANGUL_VN = 21, HANGUL_TN = 28, HANGUL_N = HANGUL_VN * HANGUL_TN,
  HANGUL_SN = HANGUL_LN * HANGUL_N
};

unsigned lamp__unicode_ccc(uint32_t cp) {
  if (cp < 0x300) return 0;
  const size_t n = lamp__unicode_class_ranges_count;
  const size_t i = lamp__range_of(lamp__unicode_class_ranges, n, cp);
  return i < n ? lamp__unicode_class_values[i] : 0;
}

/* Appends the full canonical decomposition of cp to out; returns its length. */
static size_t lamp__nfd_one(uint32_t cp, uint32_t *out) {
  if (cp >= HANGUL_S && cp < HANGUL_S + HANGUL_SN) {
    const uint32_t s = cp - HANGUL_S;
    out[0] = HANGUL_L + s / HANGUL_N;
    out[1] = HANGUL_V + s % HANGUL_N / HANGUL_TN;
    if (s % HANGUL_TN == 0) return 2;
    out[2] = HANGUL_T + s % HANGUL_TN;
    return 3;
  }
  size_t lo = 0, hi = cp < 0xC0 ? 0 : lamp__unicode_decompositions_count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const lamp__unicode_decomposition *d = &lamp__unicode_decompositions[mid];
    if (cp < d->cp) hi = mid;
    else if (cp > d->cp) lo = mid + 1;
    else {
      for (size_t i = 0; i < d->length; i++) out[i] = lamp__unicode_decomposed[d->at + i];
      return d->length;
    }
  }
  out[0] = cp;
  return 1;
}

/* The primary composite of (a, b), or 0. */
static uint32_t lamp__compose(uint32_t a, uint32_t b) {
  if (a >= HANGUL_L && a < HANGUL_L + HANGUL_LN && b >= HANGUL_V && b < HANGUL_V + HANGUL_VN)
    return HANGUL_S + ((a - HANGUL_L) * HANGUL_VN + (b - HANGUL_V)) * HANGUL_TN;
  if (a >= HANGUL_S && a < HANGUL_S + HANGUL_SN && (a - HANGUL_S) % HANGUL_TN == 0 &&
      b > HANGUL_T && b < HANGUL_T + HANGUL_TN)
    return a + (b - HANGUL_T);
  size_t lo = 0, hi = lamp__unicode_compositions_count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const lamp__unicode_composition *c = &lamp__unicode_compositions[mid];
    if (a < c->first || (a == c->first && b < c->second)) hi = mid;
    else if (a > c->first || b > c->second) lo = mid + 1;
    else return c->composite;
  }
  return 0;
}

size_t lamp__unicode_nfc(const uint32_t *in, size_t n, uint32_t *out) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    size_t k = lamp__nfd_one(in[i], out + m);
    /* canonical ordering: each new mark moves before the marks of a higher class */
    for (size_t j = m; j < m + k; j++) {
      const unsigned c = lamp__unicode_ccc(out[j]);
      for (size_t p = j; c && p > 0 && lamp__unicode_ccc(out[p - 1]) > c; p--) {
        const uint32_t x = out[p];
        out[p] = out[p - 1];
        out[p - 1] = x;
      }
    }
    m += k;
  }
  if (m == 0) return 0;
  /* canonical composition: a code point joins the last starter when nothing between them has
   * its class or a higher one, or when it follows the starter directly */
  size_t starter = 0, len = 1;
  unsigned last = lamp__unicode_ccc(out[0]) ? 256 : 0; /* 256: no starter yet */
  for (size_t i = 1; i < m; i++) {
    const uint32_t c = out[i];
    const unsigned cc = lamp__unicode_ccc(c);
    /* the table is searched only when nothing blocks the pair */
    const uint32_t comp = last < cc || last == 0 ? lamp__compose(out[starter], c) : 0;
    if (comp) {
      out[starter] = comp;
      continue;
    }
    if (cc == 0) starter = len;
    last = cc;
    out[len++] = c;
  }
  return len;
}

int lamp__unicode_nfc_utf8(const unsigned char *s, size_t n, unsigned char **out,
                           size_t *out_len) {
  *out = NULL;
  *out_len = 0;
  uint32_t *cp = malloc((n + 1) * sizeof(uint32_t));
  uint32_t *nfc = malloc((n + 1) * LAMP__UNICODE_NFD_MAX * sizeof(uint32_t));
  unsigned char *u = malloc((n + 1) * LAMP__UNICODE_NFD_MAX * 4);
  if (!cp || !nfc || !u) {
    free(cp), free(nfc), free(u);
    return -1;
  }
  size_t w = 0, k = 0;
  for (size_t pos = 0, len; pos <= n; pos += len) {
    const uint32_t c = pos < n ? lamp__utf8_decode(s + pos, n - pos, &len) : LAMP__UTF8_INVALID;
    if (pos < n && c != LAMP__UTF8_INVALID) {
      cp[k++] = c;
      continue;
    }
    const size_t m = lamp__unicode_nfc(cp, k, nfc);
    for (size_t i = 0; i < m; i++) w += lamp__utf8_encode(nfc[i], u + w);
    k = 0;
    if (pos == n) break;
    u[w++] = s[pos];
  }
  free(cp), free(nfc);
  *out = u;
  *out_len = w;
  return 0;
}
