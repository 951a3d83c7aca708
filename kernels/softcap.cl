/* Gemma 2's soft-capped logits: y = cap tanh(x / cap), which keeps them within (-cap, cap).
 * Dense rows; offsets in floats; one work-item per element, global (W, M). */

__kernel void softcap_forward(__global float *x, ulong x_off, uint width, uint rows, float cap) {
  const uint c = get_global_id(0), m = get_global_id(1);
  if (c >= width || m >= rows) return;
  const ulong i = x_off + (ulong)m * width + c;
  x[i] = cap * tanh(x[i] / cap);
}

/* dx *= dy/dx = 1 - tanh^2 = 1 - (y / cap)^2, from the capped values y. */
__kernel void softcap_backward(__global float *dx, ulong dx_off, __global const float *y,
                               ulong y_off, uint width, uint rows, float cap) {
  const uint c = get_global_id(0), m = get_global_id(1);
  if (c >= width || m >= rows) return;
  const ulong i = (ulong)m * width + c;
  const float t = y[y_off + i] / cap;
  dx[dx_off + i] *= 1.0f - t * t;
}
