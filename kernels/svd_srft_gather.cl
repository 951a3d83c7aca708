/* Last step of the SRFT sketch: Y (rows x l, contiguous) takes, for each of its l columns t, the
 * float at offsets[t] of each row of the half spectrum P (rows x row_len, clFFT's interleaved
 * complex output), times scales[t]. 2-D range: dimension 0 the column t, dimension 1 the row. */
__kernel void svd_srft_gather(__global const float *p, ulong row_len, ulong rows,
                              __global const int *offsets, __global const float *scales,
                              __global float *y, ulong l) {
  ulong t = get_global_id(0), i = get_global_id(1);
  if (t >= l || i >= rows) return;
  y[i * l + t] = p[i * row_len + (ulong)offsets[t]] * scales[t];
}
