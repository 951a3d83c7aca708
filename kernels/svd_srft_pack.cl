/* First step of the SRFT sketch: P (rows x row_len, contiguous) gets the rows of A (rows x cols,
 * row stride lda, offsets in elements) times the random signs d (cols) and alpha, zero-padded
 * from column cols on, ready for clFFT's out-of-place real transform. 2-D range: dimension 0 the
 * column of P, dimension 1 the row. */
__kernel void svd_srft_pack(__global const float *a, ulong a_off, ulong lda, ulong rows,
                            ulong cols, __global const float *d, ulong d_off, float alpha,
                            __global float *p, ulong row_len) {
  ulong c = get_global_id(0), i = get_global_id(1);
  if (c >= row_len || i >= rows) return;
  p[i * row_len + c] = c < cols ? a[a_off + i * lda + c] * d[d_off + c] * alpha : 0.0f;
}
