/* Average pooling along the token axis with window and stride s, on strided (B, T, C) tensors:
 * y[b, j, c] = mean of x[b, t, c] for t in j*s .. min(j*s + s, T) - 1, j < ceil(T / s); a last
 * partial window averages the rows it has. Offsets and strides are in floats; one work-item per
 * output element, dimension 0 along C. */

__kernel void pool_avg_forward(__global const float *x, ulong x_off, ulong x_s0, ulong x_s1,
                               ulong x_s2, __global float *y, ulong y_off, ulong y_s0,
                               ulong y_s1, ulong y_s2, uint width, uint rows, uint batch,
                               uint s) {
  const uint c = get_global_id(0), j = get_global_id(1), b = get_global_id(2);
  const uint rows_out = (rows + s - 1) / s;
  if (c >= width || j >= rows_out || b >= batch) return;
  const uint t0 = j * s, t1 = min(t0 + s, rows);
  __global const float *xp = x + x_off + (ulong)b * x_s2 + (ulong)c * x_s0;
  float acc = 0.0f;
  for (uint t = t0; t < t1; t++) acc += xp[(ulong)t * x_s1];
  y[y_off + (ulong)b * y_s2 + (ulong)j * y_s1 + (ulong)c * y_s0] = acc / (float)(t1 - t0);
}

/* dx[b, t, c] (+)= dy[b, t / s, c] / n, n the number of rows in that window; `accumulate`
 * selects += over =. One work-item per input element. */
__kernel void pool_avg_backward(__global float *dx, ulong dx_off, ulong dx_s0, ulong dx_s1,
                                ulong dx_s2, __global const float *dy, ulong dy_off, ulong dy_s0,
                                ulong dy_s1, ulong dy_s2, uint width, uint rows, uint batch,
                                uint s, int accumulate) {
  const uint c = get_global_id(0), t = get_global_id(1), b = get_global_id(2);
  if (c >= width || t >= rows || b >= batch) return;
  const uint j = t / s, t0 = j * s, n = min(t0 + s, rows) - t0;
  float gv = dy[dy_off + (ulong)b * dy_s2 + (ulong)j * dy_s1 + (ulong)c * dy_s0] / (float)n;
  ulong i = dx_off + (ulong)b * dx_s2 + (ulong)t * dx_s1 + (ulong)c * dx_s0;
  dx[i] = accumulate ? dx[i] + gv : gv;
}
