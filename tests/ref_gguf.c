/* Plain-C GGUF writer, reference quantisers and decoders (see ref_gguf.h). */
#include "ref_gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- byte buffer ---- */

void ref_buf_bytes(ref_buf *b, const void *p, size_t n) {
  if (b->size + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->size + n) cap *= 2;
    unsigned char *d = realloc(b->data, cap);
    if (!d) {
      fprintf(stderr, "ref_buf: out of memory\n");
      abort();
    }
    b->data = d;
    b->cap = cap;
  }
  if (n) memcpy(b->data + b->size, p, n);
  b->size += n;
}

void ref_buf_u8(ref_buf *b, uint8_t v) { ref_buf_bytes(b, &v, 1); }

static void ref_buf_le(ref_buf *b, uint64_t v, int n) {
  unsigned char tmp[8];
  for (int i = 0; i < n; i++) tmp[i] = (unsigned char)(v >> (8 * i));
  ref_buf_bytes(b, tmp, (size_t)n);
}

void ref_buf_u16(ref_buf *b, uint16_t v) { ref_buf_le(b, v, 2); }
void ref_buf_u32(ref_buf *b, uint32_t v) { ref_buf_le(b, v, 4); }
void ref_buf_u64(ref_buf *b, uint64_t v) { ref_buf_le(b, v, 8); }

void ref_buf_f32(ref_buf *b, float v) {
  uint32_t bits;
  memcpy(&bits, &v, 4);
  ref_buf_u32(b, bits);
}

void ref_buf_f64(ref_buf *b, double v) {
  uint64_t bits;
  memcpy(&bits, &v, 8);
  ref_buf_u64(b, bits);
}

void ref_buf_str(ref_buf *b, const char *s) {
  size_t n = strlen(s);
  ref_buf_u64(b, n);
  ref_buf_bytes(b, s, n);
}

void ref_buf_free(ref_buf *b) {
  free(b->data);
  b->data = NULL;
  b->size = b->cap = 0;
}

/* ---- types ---- */

size_t ref_block_elements(int type) {
  switch (type) {
    case REF_F32: case REF_F16: case REF_BF16: return 1;
    case REF_Q4_0: case REF_Q4_1: case REF_Q5_0: case REF_Q5_1: case REF_Q8_0: return 32;
    case REF_Q2_K: case REF_Q4_K: case REF_Q5_K: case REF_Q6_K: return 256;
  }
  return 0;
}

size_t ref_block_bytes(int type) {
  switch (type) {
    case REF_F32: return 4;
    case REF_F16: case REF_BF16: return 2;
    case REF_Q4_0: return 2 + 16;
    case REF_Q4_1: return 4 + 16;
    case REF_Q5_0: return 2 + 4 + 16;
    case REF_Q5_1: return 4 + 4 + 16;
    case REF_Q8_0: return 2 + 32;
    case REF_Q2_K: return 16 + 64 + 4;
    case REF_Q4_K: return 4 + 12 + 128;
    case REF_Q5_K: return 4 + 12 + 32 + 128;
    case REF_Q6_K: return 128 + 64 + 16 + 2;
  }
  return 0;
}

/* ---- writer ---- */

void ref_gguf_init(ref_gguf_writer *w, uint32_t version, size_t alignment) {
  memset(w, 0, sizeof(*w));
  w->version = version;
  w->alignment = alignment;
}

void ref_gguf_key(ref_gguf_writer *w, const char *key, uint32_t type) {
  ref_buf_str(&w->kv, key);
  ref_buf_u32(&w->kv, type);
  w->n_kv++;
}

void ref_gguf_kv_u32(ref_gguf_writer *w, const char *key, uint32_t v) {
  ref_gguf_key(w, key, REF_GGUF_UINT32);
  ref_buf_u32(&w->kv, v);
}

void ref_gguf_kv_f32(ref_gguf_writer *w, const char *key, float v) {
  ref_gguf_key(w, key, REF_GGUF_FLOAT32);
  ref_buf_f32(&w->kv, v);
}

void ref_gguf_kv_bool(ref_gguf_writer *w, const char *key, int v) {
  ref_gguf_key(w, key, REF_GGUF_BOOL);
  ref_buf_u8(&w->kv, v ? 1 : 0);
}

void ref_gguf_kv_str(ref_gguf_writer *w, const char *key, const char *v) {
  ref_gguf_key(w, key, REF_GGUF_STRING);
  ref_buf_str(&w->kv, v);
}

void ref_gguf_kv_str_array(ref_gguf_writer *w, const char *key, const char *const *v, size_t n) {
  ref_gguf_key(w, key, REF_GGUF_ARRAY);
  ref_buf_u32(&w->kv, REF_GGUF_STRING);
  ref_buf_u64(&w->kv, n);
  for (size_t i = 0; i < n; i++) ref_buf_str(&w->kv, v[i]);
}

void ref_gguf_kv_i32_array(ref_gguf_writer *w, const char *key, const int32_t *v, size_t n) {
  ref_gguf_key(w, key, REF_GGUF_ARRAY);
  ref_buf_u32(&w->kv, REF_GGUF_INT32);
  ref_buf_u64(&w->kv, n);
  for (size_t i = 0; i < n; i++) ref_buf_u32(&w->kv, (uint32_t)v[i]);
}

void ref_gguf_tensor(ref_gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne,
                     uint32_t type, const void *data, size_t size) {
  if (w->n_tensors == REF_GGUF_MAX_TENSORS) abort();
  size_t i = w->n_tensors++;
  snprintf(w->tensors[i].name, sizeof(w->tensors[i].name), "%s", name);
  w->tensors[i].n_dims = n_dims;
  for (int d = 0; d < 4; d++) w->tensors[i].ne[d] = d < (int)n_dims ? ne[d] : 1;
  w->tensors[i].type = type;
  w->tensors[i].data = data;
  w->tensors[i].size = size;
}

static size_t ref_align(size_t x, size_t a) { return (x + a - 1) / a * a; }

void ref_gguf_finish(ref_gguf_writer *w, ref_buf *out) {
  out->size = 0;
  ref_buf_u32(out, 0x46554747u);
  ref_buf_u32(out, w->version);
  ref_buf_u64(out, w->n_tensors);
  ref_buf_u64(out, w->n_kv);
  ref_buf_bytes(out, w->kv.data, w->kv.size);
  size_t offset = 0;
  for (size_t i = 0; i < w->n_tensors; i++) {
    ref_buf_str(out, w->tensors[i].name);
    ref_buf_u32(out, w->tensors[i].n_dims);
    for (uint32_t d = 0; d < w->tensors[i].n_dims; d++) ref_buf_u64(out, w->tensors[i].ne[d]);
    ref_buf_u32(out, w->tensors[i].type);
    ref_buf_u64(out, offset);
    offset = ref_align(offset + w->tensors[i].size, w->alignment);
  }
  static const unsigned char zeros[4096];
  ref_buf_bytes(out, zeros, ref_align(out->size, w->alignment) - out->size);
  size_t base = out->size;
  for (size_t i = 0; i < w->n_tensors; i++) {
    ref_buf_bytes(out, zeros, ref_align(out->size - base, w->alignment) - (out->size - base));
    ref_buf_bytes(out, w->tensors[i].data, w->tensors[i].size);
  }
  ref_buf_free(&w->kv);
}

/* ---- half precision ---- */

uint16_t ref_f16_from_f32(double x) {
  uint16_t sign = signbit(x) ? 0x8000 : 0;
  double a = fabs(x);
  if (isnan(x)) return 0x7E00;
  if (a >= 65520.0) return sign | 0x7C00; /* rounds to infinity */
  if (a < ldexp(1.0, -14)) {
    /* subnormal: multiples of 2^-24; rounding up to 1024 gives the smallest normal */
    double q = nearbyint(a / ldexp(1.0, -24));
    return sign | (uint16_t)q;
  }
  int e;
  frexp(a, &e); /* a = f * 2^e, f in [0.5, 1) */
  double q = nearbyint(a / ldexp(1.0, e - 11)); /* 11 significant bits */
  if (q == 2048.0) {
    q = 1024.0;
    e++;
  }
  int biased = e - 1 + 15;
  if (biased >= 31) return sign | 0x7C00;
  return sign | (uint16_t)(biased << 10) | (uint16_t)((int)q - 1024);
}

double ref_f16_to_f64(uint16_t h) {
  int e = (h >> 10) & 0x1F, m = h & 0x3FF;
  double v;
  if (e == 0) v = ldexp(m, -24);
  else if (e == 31) v = m ? NAN : INFINITY;
  else v = ldexp(1024 + m, e - 25);
  return (h & 0x8000) ? -v : v;
}

/* The smallest half >= x (x >= 0). */
static uint16_t ref_f16_ceil(double x) {
  uint16_t h = ref_f16_from_f32(x);
  if (ref_f16_to_f64(h) < x) h++;
  return h;
}

/* The largest half <= x. */
static uint16_t ref_f16_floor(double x) {
  if (x >= 0) {
    uint16_t h = ref_f16_from_f32(x);
    if (ref_f16_to_f64(h) > x) h--;
    return h;
  }
  return (uint16_t)(0x8000 | ref_f16_ceil(-x));
}

static void put16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}

static int clampi(double v, int lo, int hi) {
  int q = (int)nearbyint(v);
  return q < lo ? lo : q > hi ? hi : q;
}

/* ---- quantisers ---- */

/* Symmetric blocks of 32: q in [-levels, levels], stored with offset `zero`. */
static void ref_quant_sym32(int type, const float *x, unsigned char *b, double *recon,
                            double *bound) {
  int levels = type == REF_Q8_0 ? 127 : type == REF_Q4_0 ? 7 : 15;
  double amax = 0;
  for (int i = 0; i < 32; i++) amax = fmax(amax, fabs(x[i]));
  uint16_t dh = ref_f16_ceil(amax / levels);
  double d = ref_f16_to_f64(dh);
  int q[32];
  for (int i = 0; i < 32; i++) {
    q[i] = d > 0 ? clampi(x[i] / d, -levels, levels) : 0;
    recon[i] = q[i] * d;
    bound[i] = d / 2;
  }
  put16(b, dh);
  if (type == REF_Q8_0) {
    for (int i = 0; i < 32; i++) b[2 + i] = (unsigned char)(int8_t)q[i];
    return;
  }
  unsigned char *qs = b + (type == REF_Q5_0 ? 6 : 2);
  uint32_t qh = 0;
  int zero = type == REF_Q4_0 ? 8 : 16;
  for (int i = 0; i < 16; i++) {
    int lo = q[i] + zero, hi = q[i + 16] + zero;
    qs[i] = (unsigned char)((lo & 15) | ((hi & 15) << 4));
    qh |= (uint32_t)((lo >> 4) & 1) << i;
    qh |= (uint32_t)((hi >> 4) & 1) << (i + 16);
  }
  if (type == REF_Q5_0)
    for (int i = 0; i < 4; i++) b[2 + i] = (unsigned char)(qh >> (8 * i));
}

/* Asymmetric blocks of 32: x ~ q d + m, q in [0, levels]. */
static void ref_quant_asym32(int type, const float *x, unsigned char *b, double *recon,
                             double *bound) {
  int levels = type == REF_Q4_1 ? 15 : 31;
  double mn = x[0], mx = x[0];
  for (int i = 0; i < 32; i++) {
    mn = fmin(mn, x[i]);
    mx = fmax(mx, x[i]);
  }
  uint16_t mh = ref_f16_floor(mn);
  double m = ref_f16_to_f64(mh);
  uint16_t dh = ref_f16_ceil((mx - m) / levels);
  double d = ref_f16_to_f64(dh);
  int q[32];
  for (int i = 0; i < 32; i++) {
    q[i] = d > 0 ? clampi((x[i] - m) / d, 0, levels) : 0;
    recon[i] = q[i] * d + m;
    bound[i] = d / 2;
  }
  put16(b, dh);
  put16(b + 2, mh);
  unsigned char *qs = b + (type == REF_Q5_1 ? 8 : 4);
  uint32_t qh = 0;
  for (int i = 0; i < 16; i++) {
    qs[i] = (unsigned char)((q[i] & 15) | ((q[i + 16] & 15) << 4));
    qh |= (uint32_t)((q[i] >> 4) & 1) << i;
    qh |= (uint32_t)((q[i + 16] >> 4) & 1) << (i + 16);
  }
  if (type == REF_Q5_1)
    for (int i = 0; i < 4; i++) b[4 + i] = (unsigned char)(qh >> (8 * i));
}

/* Q4_K and Q5_K: 8 sub-blocks of 32, x ~ d sc q - dmin m with 6-bit sc and m. */
static void ref_quant_k45(int type, const float *x, unsigned char *b, double *recon,
                          double *bound) {
  int levels = type == REF_Q4_K ? 15 : 31;
  double need[8], mx[8], max_need = 0;
  for (int s = 0; s < 8; s++) {
    double lo = 0, hi = -INFINITY;
    for (int l = 0; l < 32; l++) {
      lo = fmin(lo, x[s * 32 + l]);
      hi = fmax(hi, x[s * 32 + l]);
    }
    need[s] = -lo;
    mx[s] = hi;
    max_need = fmax(max_need, need[s]);
  }
  uint16_t dminh = ref_f16_ceil(max_need / 63);
  double dmin = ref_f16_to_f64(dminh);
  int sc[8], m[8];
  double off[8], scale[8], max_scale = 0;
  for (int s = 0; s < 8; s++) {
    m[s] = dmin > 0 ? (int)ceil(need[s] / dmin) : 0;
    if (m[s] > 63) m[s] = 63;
    off[s] = dmin * m[s];
    scale[s] = (mx[s] + off[s]) / levels;
    max_scale = fmax(max_scale, scale[s]);
  }
  uint16_t dh = ref_f16_ceil(max_scale / 63);
  double d = ref_f16_to_f64(dh);
  int q[256];
  for (int s = 0; s < 8; s++) {
    sc[s] = d > 0 ? (int)ceil(scale[s] / d) : 0;
    if (sc[s] > 63) sc[s] = 63;
    double step = d * sc[s];
    for (int l = 0; l < 32; l++) {
      int e = s * 32 + l;
      q[e] = step > 0 ? clampi((x[e] + off[s]) / step, 0, levels) : 0;
      recon[e] = step * q[e] - off[s];
      bound[e] = step / 2;
    }
  }
  put16(b, dh);
  put16(b + 2, dminh);
  unsigned char *scales = b + 4;
  for (int j = 0; j < 4; j++) {
    scales[j] = (unsigned char)(sc[j] | ((sc[j + 4] >> 4) << 6));
    scales[j + 4] = (unsigned char)(m[j] | ((m[j + 4] >> 4) << 6));
    scales[j + 8] = (unsigned char)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
  unsigned char *qh = b + 16, *qs = b + (type == REF_Q5_K ? 48 : 16);
  if (type == REF_Q5_K) memset(qh, 0, 32);
  for (int p = 0; p < 4; p++)
    for (int l = 0; l < 32; l++) {
      int a = q[(2 * p) * 32 + l], c = q[(2 * p + 1) * 32 + l];
      qs[p * 32 + l] = (unsigned char)((a & 15) | ((c & 15) << 4));
      if (type == REF_Q5_K)
        qh[l] |= (unsigned char)((((a >> 4) & 1) << (2 * p)) | (((c >> 4) & 1) << (2 * p + 1)));
    }
}

/* Q6_K: 16 sub-blocks of 16, x ~ d sc (q - 32) with int8 sc. */
static void ref_quant_q6k(const float *x, unsigned char *b, double *recon, double *bound) {
  double s[16], max_s = 0;
  for (int i = 0; i < 16; i++) {
    double amax = 0;
    for (int l = 0; l < 16; l++) amax = fmax(amax, fabs(x[i * 16 + l]));
    s[i] = amax / 31;
    max_s = fmax(max_s, s[i]);
  }
  uint16_t dh = ref_f16_ceil(max_s / 127);
  double d = ref_f16_to_f64(dh);
  int sc[16], q[256];
  for (int i = 0; i < 16; i++) {
    sc[i] = d > 0 ? (int)ceil(s[i] / d) : 0;
    if (sc[i] > 127) sc[i] = 127;
    double step = d * sc[i];
    for (int l = 0; l < 16; l++) {
      int e = i * 16 + l;
      q[e] = step > 0 ? clampi(x[e] / step, -32, 31) : 0;
      recon[e] = step * q[e];
      bound[e] = step / 2;
    }
  }
  unsigned char *ql = b, *qh = b + 128;
  memset(b, 0, 210);
  for (int e = 0; e < 256; e++) {
    int v = q[e] + 32, h = e / 128, r = e % 128, quad = r / 32, l = r % 32;
    ql[h * 64 + l + (quad & 1) * 32] |= (unsigned char)((v & 15) << (4 * (quad >> 1)));
    qh[h * 32 + l] |= (unsigned char)((v >> 4) << (2 * quad));
  }
  for (int i = 0; i < 16; i++) b[192 + i] = (unsigned char)(int8_t)sc[i];
  put16(b + 208, dh);
}

void ref_quantize(int type, const float *x, size_t n, void *out, double *recon, double *bound) {
  unsigned char *o = out;
  size_t be = ref_block_elements(type), bb = ref_block_bytes(type);
  for (size_t blk = 0; blk < n / be; blk++) {
    const float *xb = x + blk * be;
    unsigned char *b = o + blk * bb;
    double *r = recon + blk * be, *bd = bound + blk * be;
    switch (type) {
      case REF_F32:
        memcpy(b, xb, 4);
        r[0] = xb[0];
        bd[0] = 0;
        break;
      case REF_F16: {
        uint16_t h = ref_f16_from_f32(xb[0]);
        put16(b, h);
        r[0] = ref_f16_to_f64(h);
        bd[0] = fabs(r[0] - xb[0]);
        break;
      }
      case REF_BF16: {
        uint32_t bits;
        memcpy(&bits, xb, 4);
        uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
        put16(b, (uint16_t)rounded);
        uint32_t back = rounded << 16;
        float f;
        memcpy(&f, &back, 4);
        r[0] = f;
        bd[0] = fabs(r[0] - xb[0]);
        break;
      }
      case REF_Q4_0: case REF_Q5_0: case REF_Q8_0: ref_quant_sym32(type, xb, b, r, bd); break;
      case REF_Q4_1: case REF_Q5_1: ref_quant_asym32(type, xb, b, r, bd); break;
      case REF_Q4_K: case REF_Q5_K: ref_quant_k45(type, xb, b, r, bd); break;
      case REF_Q6_K: ref_quant_q6k(xb, b, r, bd); break;
      default: abort();
    }
  }
}

/* ---- decoders, element by element ---- */

static unsigned nibble(const unsigned char *p, size_t byte, int high) {
  return high ? p[byte] >> 4 : p[byte] & 15u;
}

static unsigned bit(const unsigned char *p, size_t index) { return (p[index / 8] >> (index % 8)) & 1u; }

static double h16(const unsigned char *p) { return ref_f16_to_f64((uint16_t)(p[0] | (p[1] << 8))); }

/* 6-bit scale (which = 0) or min (which = 1) of sub-block s from the 12 packed bytes. */
static unsigned k_scale(const unsigned char *sc, int s, int which) {
  if (s < 4) return sc[s + 4 * which] & 63u;
  unsigned low = which ? sc[s + 4] >> 4 : sc[s + 4] & 15u;
  unsigned high = sc[s - 4 + 4 * which] >> 6;
  return low | (high << 4);
}

void ref_dequantize(int type, const void *src, size_t n, double *out) {
  const unsigned char *p = src;
  size_t be = ref_block_elements(type), bb = ref_block_bytes(type);
  for (size_t e = 0; e < n; e++) {
    const unsigned char *b = p + (e / be) * bb;
    size_t i = e % be;
    double v = 0;
    switch (type) {
      case REF_F32: {
        float f;
        memcpy(&f, b, 4);
        v = f;
        break;
      }
      case REF_F16: v = h16(b); break;
      case REF_BF16: {
        uint32_t bits = (uint32_t)(b[0] | (b[1] << 8)) << 16;
        float f;
        memcpy(&f, &bits, 4);
        v = f;
        break;
      }
      case REF_Q8_0: v = h16(b) * (int8_t)b[2 + i]; break;
      case REF_Q4_0: v = h16(b) * ((int)nibble(b + 2, i % 16, i >= 16) - 8); break;
      case REF_Q4_1: v = h16(b) * nibble(b + 4, i % 16, i >= 16) + h16(b + 2); break;
      case REF_Q5_0:
        v = h16(b) * ((int)(nibble(b + 6, i % 16, i >= 16) | (bit(b + 2, i) << 4)) - 16);
        break;
      case REF_Q5_1:
        v = h16(b) * (nibble(b + 8, i % 16, i >= 16) | (bit(b + 4, i) << 4)) + h16(b + 2);
        break;
      case REF_Q4_K: case REF_Q5_K: {
        int s = (int)(i / 32), l = (int)(i % 32);
        unsigned q = nibble(b + (type == REF_Q5_K ? 48 : 16), (size_t)(s / 2) * 32 + l, s & 1);
        if (type == REF_Q5_K) q |= ((b[16 + l] >> s) & 1u) << 4;
        v = h16(b) * k_scale(b + 4, s, 0) * q - h16(b + 2) * k_scale(b + 4, s, 1);
        break;
      }
      case REF_Q6_K: {
        size_t h = i / 128, r = i % 128, quad = r / 32, l = r % 32;
        unsigned lo = nibble(b, h * 64 + l + (quad & 1) * 32, (int)(quad >> 1));
        unsigned hi = (b[128 + h * 32 + l] >> (2 * quad)) & 3u;
        int sc = (int8_t)b[192 + h * 8 + l / 16 + 2 * quad];
        v = h16(b + 208) * sc * ((int)(lo | (hi << 4)) - 32);
        break;
      }
      default: abort();
    }
    out[e] = v;
  }
}
