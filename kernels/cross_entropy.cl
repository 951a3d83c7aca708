/* Cross-entropy of logit rows (M, W) against one target column per row: loss_m =
 * logsumexp(z_m) - z_m[target_m]. W is the full vocabulary or a short verbaliser list. A
 * negative target marks a row that takes no part (loss and gradient zero). A row whose logits
 * are all -inf makes its target impossible: loss +inf, gradient zero. Offsets and the row
 * stride `ld` are in floats. */

/* loss (M) and lse (M), the row's log-sum-exp kept for the backward. One work-group per row,
 * power-of-two local size up to LAMP_WG_SIZE; each work-item keeps a running (max, sum) over
 * its strided share of the row, and the pairs merge in a tree: one pass, no overflow. */
__kernel void cross_entropy_forward(__global float *loss, ulong loss_off, __global float *lse,
                                    ulong lse_off, __global const float *z, ulong z_off, uint ld,
                                    __global const int *target, uint width, uint rows) {
  __local float red_m[LAMP_WG_SIZE], red_s[LAMP_WG_SIZE];
  const uint row = get_group_id(0), lid = get_local_id(0), n = get_local_size(0);
  if (row >= rows) return;
  __global const float *zr = z + z_off + (ulong)row * ld;
  float m = -INFINITY, s = 0.0f;
  for (uint c = lid; c < width; c += n) {
    const float v = zr[c];
    if (v > m) {
      s = s * exp(m - v) + 1.0f;
      m = v;
    } else if (v != -INFINITY) { /* a masked logit adds nothing; exp(-inf - -inf) is NaN */
      s += exp(v - m);
    }
  }
  red_m[lid] = m;
  red_s[lid] = s;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint h = n / 2; h > 0; h /= 2) {
    if (lid < h) {
      const float m1 = red_m[lid], m2 = red_m[lid + h];
      const float mm = fmax(m1, m2);
      if (mm != -INFINITY) {
        red_s[lid] = red_s[lid] * exp(m1 - mm) + red_s[lid + h] * exp(m2 - mm);
        red_m[lid] = mm;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0) {
    const float l = red_m[0] + log(red_s[0]);
    const int t = target[row];
    lse[lse_off + row] = l;
    float l_t = 0.0f;
    if (t >= 0 && (uint)t < width)
      l_t = l == -INFINITY ? INFINITY : l - zr[t]; /* a row masked whole: not -inf - -inf */
    loss[loss_off + row] = l_t;
  }
}

/* dz (M, W) = scale * (softmax(z) - onehot(target)), zero on rows without a target. Overwrites
 * dz. One work-item per element, global (W, M). */
__kernel void cross_entropy_backward(__global float *dz, ulong dz_off, uint ld_dz,
                                     __global const float *z, ulong z_off, uint ld,
                                     __global const float *lse, ulong lse_off,
                                     __global const int *target, uint width, uint rows,
                                     float scale) {
  const uint c = get_global_id(0), row = get_global_id(1);
  if (c >= width || row >= rows) return;
  const int t = target[row];
  float g = 0.0f;
  if (t >= 0 && (uint)t < width && lse[lse_off + row] != -INFINITY)
    g = scale * (exp(z[z_off + (ulong)row * ld + c] - lse[lse_off + row]) - (c == (uint)t ? 1.0f : 0.0f));
  dz[dz_off + (ulong)row * ld_dz + c] = g;
}
