/* Row-broadcast bias add: the Q, K and V biases of Qwen2, after the fused QKV projection. The
 * biases are frozen, so the backward through this add is the identity and has no kernel.
 * Offsets are in floats; matrices are dense row-major. */

/* Columns col .. col + width - 1 of every row of x (rows, stride) += b (width). One work-item
 * per element added. */
__kernel void bias_add_rows(__global float *x, ulong x_off, uint stride, uint col,
                            __global const float *b, ulong b_off, uint rows, uint width) {
  const uint c = get_global_id(0), n = get_global_id(1);
  if (c >= width || n >= rows) return;
  x[x_off + (ulong)n * stride + col + c] += b[b_off + c];
}
