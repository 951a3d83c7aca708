/* Partial reduction for the SVD's input check: work-group g writes to partial[2g] the largest
 * |a_ij| it saw and to partial[2g + 1] a 1 when it saw a NaN or an infinity (else 0). The
 * m x n row-major matrix starts at `offset` with row stride ld (elements). Launched with
 * LAMP_WG_SIZE work-items per group; group g reads rows g, g + groups, ..., its items stride
 * along each row. */
__kernel __attribute__((reqd_work_group_size(LAMP_WG_SIZE, 1, 1)))
void svd_absmax(__global const float *a, ulong offset, ulong ld, ulong rows, ulong cols,
                         __global float *partial) {
  __local float lmax[LAMP_WG_SIZE];
  __local float lbad[LAMP_WG_SIZE];
  uint lid = get_local_id(0);
  float mx = 0.0f, bad = 0.0f;
  for (ulong i = get_group_id(0); i < rows; i += get_num_groups(0)) {
    __global const float *row = a + offset + i * ld;
    for (ulong j = lid; j < cols; j += LAMP_WG_SIZE) {
      float x = row[j];
      if (isfinite(x))
        mx = fmax(mx, fabs(x));
      else
        bad = 1.0f;
    }
  }
  lmax[lid] = mx;
  lbad[lid] = bad;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint s = LAMP_WG_SIZE / 2; s > 0; s >>= 1) {
    if (lid < s) {
      lmax[lid] = fmax(lmax[lid], lmax[lid + s]);
      lbad[lid] = fmax(lbad[lid], lbad[lid + s]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0) {
    partial[2 * get_group_id(0)] = lmax[0];
    partial[2 * get_group_id(0) + 1] = lbad[0];
  }
}
