/* Fills a row-major matrix (rows x cols, row stride ld, offsets in elements) with values that
 * depend only on (seed, stream, row, column), so the same seed gives the same matrix on any
 * device and for any launch shape. Philox4x32-10 (Salmon, Moraes, Dror, Shaw 2011) maps the
 * counter {column / 4, row low, row high, stream} under the key {seed low, seed high} to four
 * words, one per column of a group of four.
 * dist 0: standard normal by Box-Muller on the word pairs (w0, w1) and (w2, w3):
 *   u1 = ((w >> 8) + 1) 2^-24 in (0, 1], u2 = (w >> 8) 2^-24, r = sqrt(-2 ln u1),
 *   values r cos(2 pi u2) and r sin(2 pi u2).
 * dist 1: -1 where the word's top bit is set, else +1.
 * One work-item per group of four columns of one row. */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static uint4 philox_round(uint4 c, uint2 k) {
  uint hi0 = mul_hi(PHILOX_M0, c.x), lo0 = PHILOX_M0 * c.x;
  uint hi1 = mul_hi(PHILOX_M1, c.z), lo1 = PHILOX_M1 * c.z;
  return (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
}

static uint4 philox4x32_10(uint4 c, uint2 k) {
  for (int r = 0; r < 9; r++) {
    c = philox_round(c, k);
    k += (uint2)(PHILOX_W0, PHILOX_W1);
  }
  return philox_round(c, k);
}

__kernel void philox_fill(__global float *out, ulong offset, ulong ld, ulong rows, ulong cols,
                          uint seed_lo, uint seed_hi, uint stream, int dist) {
  ulong groups = (cols + 3) / 4;
  ulong gid = get_global_id(0);
  if (gid >= rows * groups) return;
  ulong row = gid / groups, group = gid % groups;
  uint4 w = philox4x32_10((uint4)((uint)group, (uint)row, (uint)(row >> 32), stream),
                          (uint2)(seed_lo, seed_hi));
  float v[4];
  if (dist == 0) {
    const float two_pi = 6.283185307179586f;
    float u1 = (float)((w.x >> 8) + 1u) * 0x1.0p-24f, u2 = (float)(w.y >> 8) * 0x1.0p-24f;
    float u3 = (float)((w.z >> 8) + 1u) * 0x1.0p-24f, u4 = (float)(w.w >> 8) * 0x1.0p-24f;
    float r1 = sqrt(-2.0f * log(u1)), r2 = sqrt(-2.0f * log(u3));
    v[0] = r1 * cos(two_pi * u2);
    v[1] = r1 * sin(two_pi * u2);
    v[2] = r2 * cos(two_pi * u4);
    v[3] = r2 * sin(two_pi * u4);
  } else {
    v[0] = (w.x >> 31) ? -1.0f : 1.0f;
    v[1] = (w.y >> 31) ? -1.0f : 1.0f;
    v[2] = (w.z >> 31) ? -1.0f : 1.0f;
    v[3] = (w.w >> 31) ? -1.0f : 1.0f;
  }
  __global float *dst = out + offset + row * ld + group * 4;
  ulong left = cols - group * 4;
  for (ulong c = 0; c < 4 && c < left; c++) dst[c] = v[c];
}
