/* Frozen weights kept on the device in their file's storage format (ggml's F32, F16, BF16,
 * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) and expanded to f32 right before the product
 * that reads them, or, for a generation step's few rows, decoded inside the product itself
 * (dequant_gemm_rows). One build per format: LAMP_DQ is the ggml type number (src/io/gguf.c
 * lays out the same blocks on the host).
 *
 * Every value is computed with the operations, in the order, of the host decoders in
 * src/io/gguf.c, and contraction into fused multiply-adds is off, so a weight decodes to the
 * same f32 bits on the device as on the host (tests/test_dequant.c compares them bit for bit).
 * The expanding kernels take one work-item per element: a block's scale is read by each of its
 * elements, from cache. */
#pragma OPENCL FP_CONTRACT OFF

static uint lamp_dq_u16(__global const uchar *p) { return (uint)p[0] | (uint)p[1] << 8; }

static uint lamp_dq_u32(__global const uchar *p) {
  return (uint)p[0] | (uint)p[1] << 8 | (uint)p[2] << 16 | (uint)p[3] << 24;
}

/* An IEEE half from its bits, by integer operations only. A subnormal half (mant 2^-24) is a
 * normal f32: its mantissa is shifted up to the implicit bit, and the exponent down as far.
 * The exponent is tested on the masked bits: Oclgrind 21.10 takes `((h >> 10) & 31) == 0` as
 * false for h = 0x8061, which turned subnormals into normals. */
static float lamp_dq_half(uint h) {
  const uint sign = (h & 0x8000u) << 16, bits = h & 0x7C00u;
  uint e = bits >> 10, mant = h & 0x3FFu;
  if (bits == 0x7C00u) return as_float(sign | 0x7F800000u | (mant << 13));
  if (bits == 0u) {
    if (mant == 0u) return as_float(sign);
    e = 1;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      e--;
    }
    mant &= 0x3FFu;
  }
  return as_float(sign | ((e + 112u) << 23) | (mant << 13));
}

/* Each format in two parts: lamp_dq_scale, what element j shares with its neighbours (the
 * block's or sub-block's scale and min, the same for eight aligned elements), and
 * lamp_dq_value, the element from its quantised bits and that scale. */
#if LAMP_DQ == 0 || LAMP_DQ == 1 || LAMP_DQ == 30 /* F32, F16, BF16: no scale */
#define DQ_BLOCK 1
#define DQ_BYTES (LAMP_DQ == 0 ? 4 : 2)
static float2 lamp_dq_scale(__global const uchar *b, uint j) { return (float2)(0.0f); }
static float lamp_dq_value(__global const uchar *b, uint j, float2 s) {
#if LAMP_DQ == 0
  return as_float(lamp_dq_u32(b));
#elif LAMP_DQ == 1
  return lamp_dq_half(lamp_dq_u16(b));
#else
  return as_float(lamp_dq_u16(b) << 16); /* BF16: the top half of an f32 */
#endif
}
#elif LAMP_DQ == 2 /* Q4_0: f16 scale, 16 bytes of nibbles: element j < 16 low, j + 16 high */
#define DQ_BLOCK 32
#define DQ_BYTES 18
static float2 lamp_dq_scale(__global const uchar *b, uint j) {
  return (float2)(lamp_dq_half(lamp_dq_u16(b)), 0.0f);
}
static float lamp_dq_value(__global const uchar *b, uint j, float2 s) {
  const uint q = j < 16 ? b[2 + j] & 0x0Fu : b[2 + j - 16] >> 4;
  return (float)((int)q - 8) * s.x;
}
/* elements j .. j + 7 (j a multiple of 8) as vectors: the same operations */
#define DQ_VALUES8 1
static float8 lamp_dq_values8(__global const uchar *b, uint j, float2 s) {
  const uchar8 q = vload8(0, b + 2 + (j & 15));
  return convert_float8(convert_int8(j < 16 ? q & (uchar8)0x0F : q >> (uchar8)4) - 8) * s.x;
}
#elif LAMP_DQ == 3 /* Q4_1: scale and min */
#define DQ_BLOCK 32
#define DQ_BYTES 20
static float2 lamp_dq_scale(__global const uchar *b, uint j) {
  return (float2)(lamp_dq_half(lamp_dq_u16(b)), lamp_dq_half(lamp_dq_u16(b + 2)));
}
static float lamp_dq_value(__global const uchar *b, uint j, float2 s) {
  const uint q = j < 16 ? b[4 + j] & 0x0Fu : b[4 + j - 16] >> 4;
  return (float)q * s.x + s.y;
}
#define DQ_VALUES8 1
static float8 lamp_dq_values8(__global const uchar *b, uint j, float2 s) {
  const uchar8 q = vload8(0, b + 4 + (j & 15));
  return convert_float8(j < 16 ? q & (uchar8)0x0F : q >> (uchar8)4) * s.x + s.y;
}
#elif LAMP_DQ == 6 /* Q5_0: bit j of the 32-bit qh is element j's fifth bit */
#define DQ_BLOCK 32
#define DQ_BYTES 22
static float2 lamp_dq_scale(__global const uchar *b, uint j) {
  return (float2)(lamp_dq_half(lamp_dq_u16(b)), 0.0f);
}
static float lamp_dq_value(__global const uchar *b, uint j, float2 s) {
  const uint qh = lamp_dq_u32(b + 2);
  const uint lo = j < 16 ? b[6 + j] & 0x0Fu : b[6 + j - 16] >> 4;
  return (float)((int)(lo | ((qh >> j) & 1u) << 4) - 16) * s.x;
}
#elif LAMP_DQ == 7 /* Q5_1 */
#define DQ_BLOCK 32
#define DQ_BYTES 24
static float2 lamp_dq_scale(__global const uchar *b, uint j) {
  return (float2)(lamp_dq_half(lamp_dq_u16(b)), lamp_dq_half(lamp_dq_u16(b + 2)));
}
static float lamp_dq_value(__global const uchar *b, uint j, float2 s) {
  const uint qh = lamp_dq_u32(b + 4);
  const uint lo = j < 16 ? b[8 + j] & 0x0Fu : b[8 + j - 16] >> 4;
  return (float)(lo | ((qh >> j) & 1u) << 4) * s.x + s.y;
}
#elif LAMP_DQ == 8 /* Q8_0 */
#define DQ_BLOCK 32
#define DQ_BYTES 34
static float2 lamp_dq_scale(__global const uchar *b, uint j) {
  return (float2)(lamp_dq_half(lamp_dq_u16(b)), 0.0f);
}
static float lamp_dq_value(__global const uchar *b, uint j, float2 s) {
  return (float)(char)b[2 + j] * s.x;
}
#define DQ_VALUES8 1
static float8 lamp_dq_values8(__global const uchar *b, uint j, float2 s) {
  return convert_float8(as_char8(vload8(0, b + 2 + j))) * s.x;
}
#elif LAMP_DQ == 12 || LAMP_DQ == 13 /* Q4_K, Q5_K: 8 sub-blocks of 32 with 6-bit scales */
#define DQ_BLOCK 256
#define DQ_BYTES (LAMP_DQ == 12 ? 144 : 176)
static float2 lamp_dq_scale(__global const uchar *b, uint j) {
  const float d = lamp_dq_half(lamp_dq_u16(b)), dmin = lamp_dq_half(lamp_dq_u16(b + 2));
  __global const uchar *q = b + 4; /* the 12 bytes of packed scales and mins */
  const uint s = j / 32;
  uint sc, mn;
  if (s < 4) {
    sc = q[s] & 63u;
    mn = q[s + 4] & 63u;
  } else {
    sc = (q[s + 4] & 0x0Fu) | ((q[s - 4] >> 6) << 4);
    mn = (q[s + 4] >> 4) | ((q[s] >> 6) << 4);
  }
  return (float2)(d * (float)sc, dmin * (float)mn);
}
static float lamp_dq_value(__global const uchar *b, uint j, float2 s) {
  const uint sub = j / 32, l = j % 32, pair = sub / 2;
#if LAMP_DQ == 12
  const uint byte = b[16 + 32 * pair + l];
  const uint v = sub % 2 ? byte >> 4 : byte & 0x0Fu;
#else
  const uint byte = b[48 + 32 * pair + l];
  const uint v = (sub % 2 ? byte >> 4 : byte & 0x0Fu) | ((b[16 + l] >> sub) & 1u) << 4;
#endif
  return s.x * (float)v - s.y;
}
#define DQ_VALUES8 1
static float8 lamp_dq_values8(__global const uchar *b, uint j, float2 s) {
  const uint sub = j / 32, l = j % 32, pair = sub / 2;
#if LAMP_DQ == 12
  const uchar8 q = vload8(0, b + 16 + 32 * pair + l);
  const uchar8 v = sub % 2 ? q >> (uchar8)4 : q & (uchar8)0x0F;
#else
  const uchar8 q = vload8(0, b + 48 + 32 * pair + l);
  const uchar8 hi = (vload8(0, b + 16 + l) >> (uchar8)sub) & (uchar8)1;
  const uchar8 v = (sub % 2 ? q >> (uchar8)4 : q & (uchar8)0x0F) | hi << (uchar8)4;
#endif
  return s.x * convert_float8(v) - s.y;
}
#elif LAMP_DQ == 14 /* Q6_K: two halves of 128, each four groups of 32 */
#define DQ_BLOCK 256
#define DQ_BYTES 210
static float2 lamp_dq_scale(__global const uchar *b, uint j) {
  const uint n = j / 128, g = (j % 128) / 32, l = j % 32;
  __global const char *sc = (__global const char *)(b + 192 + 8 * n);
  return (float2)(lamp_dq_half(lamp_dq_u16(b + 208)) * (float)sc[l / 16 + 2 * g], 0.0f);
}
static float lamp_dq_value(__global const uchar *b, uint j, float2 s) {
  const uint n = j / 128, g = (j % 128) / 32, l = j % 32;
  __global const uchar *ql = b + 64 * n, *qh = b + 128 + 32 * n;
  const uint low = g % 2 ? ql[l + 32] : ql[l];
  const uint v = (g < 2 ? low & 0x0Fu : low >> 4) | ((qh[l] >> (2 * g)) & 3u) << 4;
  return s.x * (float)((int)v - 32);
}
#define DQ_VALUES8 1
static float8 lamp_dq_values8(__global const uchar *b, uint j, float2 s) {
  const uint n = j / 128, g = (j % 128) / 32, l = j % 32;
  const uchar8 low = vload8(0, b + 64 * n + l + (g % 2) * 32);
  const uchar8 hi = (vload8(0, b + 128 + 32 * n + l) >> (uchar8)(2 * g)) & (uchar8)3;
  const uchar8 v = (g < 2 ? low & (uchar8)0x0F : low >> (uchar8)4) | hi << (uchar8)4;
  return s.x * convert_float8(convert_int8(v) - 32);
}
#else
#error "dequant.cl: LAMP_DQ names no format lamp decodes"
#endif

/* Element j of the block at b. */
static float lamp_dq(__global const uchar *b, uint j) {
  return lamp_dq_value(b, j, lamp_dq_scale(b, j));
}

/* Element c of row `row` of a matrix whose rows are `row_bytes` long. */
static float lamp_dq_at(__global const uchar *src, ulong row_bytes, ulong row, uint c) {
  return lamp_dq(src + row * row_bytes + (ulong)(c / DQ_BLOCK) * DQ_BYTES, c % DQ_BLOCK);
}

/* dst (rows, width) f32 = the matrix at src (byte offset src_off), one work-item per element. */
__kernel void dequant_rows(__global float *dst, ulong dst_off, __global const uchar *src,
                           ulong src_off, ulong row_bytes, uint rows, uint width) {
  const uint c = get_global_id(0), r = get_global_id(1);
  if (c >= width || r >= rows) return;
  dst[dst_off + (ulong)r * width + c] = lamp_dq_at(src + src_off, row_bytes, r, c);
}

/* out (M, C) = table rows idx[m], decoded: the output head's label rows. The host checks idx. */
__kernel void dequant_gather(__global float *out, ulong out_off, __global const uchar *src,
                             ulong src_off, ulong row_bytes, __global const int *idx, uint rows,
                             uint width) {
  const uint c = get_global_id(0), m = get_global_id(1);
  if (c >= width || m >= rows) return;
  out[out_off + (ulong)m * width + c] = lamp_dq_at(src + src_off, row_bytes, (ulong)idx[m], c);
}

/* embedding_forward of embedding.cl on a stored table: prompt rows, then each sequence's token
 * rows decoded from the table, zeros for padding and for an id outside the vocabulary. */
__kernel void dequant_embedding(__global float *x, ulong x_off, __global const uchar *table,
                                ulong table_off, ulong row_bytes, __global const float *prompt,
                                ulong prompt_off, __global const int *ids,
                                __global const int *lengths, uint batch, uint tokens,
                                uint prompt_rows, uint width, uint vocab) {
  const uint c = get_global_id(0), row = get_global_id(1);
  if (c >= width || row >= prompt_rows + batch * tokens) return;
  float v = 0.0f;
  if (row < prompt_rows) {
    v = prompt[prompt_off + (ulong)row * width + c];
  } else {
    const uint b = (row - prompt_rows) / tokens, t = (row - prompt_rows) % tokens;
    if ((int)t < lengths[b]) {
      const int id = ids[(ulong)b * tokens + t];
      if (id >= 0 && (uint)id < vocab) v = lamp_dq_at(table + table_off, row_bytes, (ulong)id, c);
    }
  }
  x[x_off + (ulong)row * width + c] = v;
}

/* C (m, n) = A (m, k) W^T for the few rows of a generation step (m at most DQ_ROWS_MAX), W the
 * stored (n, k) matrix at src: its blocks are decoded as the product reads them, so the
 * weights stream from memory at their stored size and no f32 copy is written (expanding every
 * matrix for each token made generation on stored weights several times slower than on f32).
 * The loop runs over units of DQ_UNIT elements, whole blocks and at least 8, eight decoded
 * elements at a time against float8 loads of A; k is a multiple of DQ_UNIT (the host checks).
 * Row i of A starts at a_off + i a_step; rows of C are ldc apart; offsets are in floats.
 * CPU profile: one work-item per row of W, global (n). GPU profile: DQ_LANES work-items per row
 * take every DQ_LANES-th unit, so neighbours read neighbouring blocks, and sum in local memory;
 * global (DQ_LANES, n rounded up to DQ_GROUP_ROWS), local (DQ_LANES, DQ_GROUP_ROWS). */
#define DQ_ROWS_MAX 16
#define DQ_UNIT (DQ_BLOCK < 8 ? 8 : DQ_BLOCK)
#define DQ_UNIT_BYTES (DQ_UNIT / DQ_BLOCK * DQ_BYTES)
#if LAMP_PROFILE_GPU
#define DQ_LANES 32
#define DQ_GROUP_ROWS 4
#else
#define DQ_LANES 1
#endif

/* Elements j .. j + 7 of the unit at u (j a multiple of 8): one scale for the eight. */
static float8 lamp_dq_unit8(__global const uchar *u, uint j) {
#if DQ_BLOCK == 1
  return (float8)(lamp_dq(u + j * DQ_BYTES, 0), lamp_dq(u + (j + 1) * DQ_BYTES, 0),
                  lamp_dq(u + (j + 2) * DQ_BYTES, 0), lamp_dq(u + (j + 3) * DQ_BYTES, 0),
                  lamp_dq(u + (j + 4) * DQ_BYTES, 0), lamp_dq(u + (j + 5) * DQ_BYTES, 0),
                  lamp_dq(u + (j + 6) * DQ_BYTES, 0), lamp_dq(u + (j + 7) * DQ_BYTES, 0));
#elif defined(DQ_VALUES8)
  return lamp_dq_values8(u, j, lamp_dq_scale(u, j));
#else
  const float2 s = lamp_dq_scale(u, j);
  return (float8)(lamp_dq_value(u, j, s), lamp_dq_value(u, j + 1, s), lamp_dq_value(u, j + 2, s),
                  lamp_dq_value(u, j + 3, s), lamp_dq_value(u, j + 4, s),
                  lamp_dq_value(u, j + 5, s), lamp_dq_value(u, j + 6, s),
                  lamp_dq_value(u, j + 7, s));
#endif
}

static float lamp_dq_sum8(float8 v) {
  const float4 h = v.lo + v.hi;
  return (h.x + h.y) + (h.z + h.w);
}

__kernel void dequant_gemm_rows(__global float *c, ulong c_off, uint ldc, __global const float *a,
                                ulong a_off, uint a_step, __global const uchar *src,
                                ulong src_off, ulong row_bytes, uint m, uint n, uint k) {
#if LAMP_PROFILE_GPU
  const uint lane = get_local_id(0), r = get_global_id(1);
#else
  const uint lane = 0, r = get_global_id(0);
#endif
  const uint rows = m <= DQ_ROWS_MAX ? m : 0;
  float8 acc[DQ_ROWS_MAX];
  for (uint i = 0; i < rows; i++) acc[i] = (float8)0.0f;
  if (r < n) {
    __global const uchar *w = src + src_off + (ulong)r * row_bytes;
    for (uint t = lane; t < k / DQ_UNIT; t += DQ_LANES) {
      __global const uchar *u = w + (ulong)t * DQ_UNIT_BYTES;
      __global const float *at = a + a_off + (ulong)t * DQ_UNIT;
      /* one row alone (a generation step) without the loop over rows, as in gemm_rows.cl */
      if (rows == 1)
        for (uint j = 0; j < DQ_UNIT; j += 8) acc[0] += lamp_dq_unit8(u, j) * vload8(0, at + j);
      else
        for (uint j = 0; j < DQ_UNIT; j += 8) {
          const float8 x = lamp_dq_unit8(u, j);
          for (uint i = 0; i < rows; i++) acc[i] += x * vload8(0, at + (ulong)i * a_step + j);
        }
    }
  }
#if LAMP_PROFILE_GPU
  __local float part[DQ_GROUP_ROWS][DQ_LANES];
  const uint g = get_local_id(1);
  for (uint i = 0; i < rows; i++) {
    part[g][lane] = lamp_dq_sum8(acc[i]);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = DQ_LANES / 2; s > 0; s /= 2) {
      if (lane < s) part[g][lane] += part[g][lane + s];
      barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lane == 0 && r < n) c[c_off + (ulong)i * ldc + r] = part[g][0];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
#else
  if (r < n)
    for (uint i = 0; i < rows; i++) c[c_off + (ulong)i * ldc + r] = lamp_dq_sum8(acc[i]);
#endif
}
