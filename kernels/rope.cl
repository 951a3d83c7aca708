/* Rotary position embeddings in the rotate-half pairing of Hugging Face Llama: within each
 * head of width D, element i pairs with element i + D/2 and both turn by the angle
 * pos * base^(-2i/D). The angles come as cos and sin tables (S, D/2) computed on the host in
 * double. Works in place on the first `heads` heads of each row of x (N, >= heads * D): in the
 * fused QKV buffer those are the query heads followed by the key heads. Rows are laid out as in
 * attention.cl: P shared prefix rows at positions 0 .. P-1, then sequences of T rows each at
 * positions P .. P+T-1. Offsets and strides are in floats. */

/* Turns pair i of head h of row n by the angle of position `pos`. */
static void rope_pair(__global float *x, ulong x_off, uint stride, uint dim, uint i, uint h,
                      uint n, uint pos, __global const float *cos_t, __global const float *sin_t,
                      float sign) {
  const uint half_dim = dim / 2;
  const ulong t = (ulong)pos * half_dim + i;
  const float c = cos_t[t], s = sign * sin_t[t];
  __global float *p = x + x_off + (ulong)n * stride + (ulong)h * dim + i;
  const float x1 = p[0], x2 = p[half_dim];
  p[0] = x1 * c - x2 * s;
  p[half_dim] = x2 * c + x1 * s;
}

static void rope_turn(__global float *x, ulong x_off, uint stride, uint heads, uint dim,
                      uint rows, uint prefix, uint tokens, __global const float *cos_t,
                      __global const float *sin_t, float sign) {
  const uint i = get_global_id(0), h = get_global_id(1), n = get_global_id(2);
  if (i >= dim / 2 || h >= heads || n >= rows) return;
  const uint pos = n < prefix ? n : prefix + (n - prefix) % tokens;
  rope_pair(x, x_off, stride, dim, i, h, n, pos, cos_t, sin_t, sign);
}

/* x <- R(pos) x. One work-item per pair, global (D/2, heads, N). */
__kernel void rope_forward(__global float *x, ulong x_off, uint stride, uint heads, uint dim,
                           uint rows, uint prefix, uint tokens, __global const float *cos_t,
                           __global const float *sin_t) {
  rope_turn(x, x_off, stride, heads, dim, rows, prefix, tokens, cos_t, sin_t, 1.0f);
}

/* dx <- R(pos)^T dx: the rotation is orthogonal, so the backward turns by the opposite angle. */
__kernel void rope_backward(__global float *dx, ulong dx_off, uint stride, uint heads, uint dim,
                            uint rows, uint prefix, uint tokens, __global const float *cos_t,
                            __global const float *sin_t) {
  rope_turn(dx, dx_off, stride, heads, dim, rows, prefix, tokens, cos_t, sin_t, -1.0f);
}

/* x <- R(pos0 + n) x for row n: consecutive positions from pos0, the new rows of a key/value
 * cache (attention_decode.cl). Global (D/2, heads, N). */
__kernel void rope_forward_at(__global float *x, ulong x_off, uint stride, uint heads, uint dim,
                              uint rows, uint pos0, __global const float *cos_t,
                              __global const float *sin_t) {
  const uint i = get_global_id(0), h = get_global_id(1), n = get_global_id(2);
  if (i >= dim / 2 || h >= heads || n >= rows) return;
  rope_pair(x, x_off, stride, dim, i, h, n, pos0 + n, cos_t, sin_t, 1.0f);
}
