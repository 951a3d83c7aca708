/* One pass of CholeskyQR on the device, in one work-group: from the Gram matrix G (l x l, upper
 * triangle read) computes the upper triangular R with G = R^T R and its inverse, both written
 * whole (zeros below the diagonal). All blocks live in `buf` at the given element offsets, with
 * row stride l. buf[flag_off] becomes 1 when the factor cannot be trusted, else 0:
 *  - a pivot G_jj - sum_p R_pj^2 not above 1e-8 G_jj (or not finite): the columns are close to
 *    dependent, cond^2 > 1e8, beyond what float CholeskyQR2 can orthonormalise;
 *  - with `check` set (the second pass, where G should be near I): ||G - I||_F > 0.5, meaning
 *    the first pass left too much non-orthogonality for the second to remove. */
__kernel __attribute__((reqd_work_group_size(LAMP_WG_SIZE, 1, 1)))
void svd_qr_chol(__global float *buf, ulong g_off, ulong r_off, ulong rinv_off,
                          ulong flag_off, uint l, int check) {
  __local float red[LAMP_WG_SIZE];
  __global const float *g = buf + g_off;
  __global float *r = buf + r_off, *ri = buf + rinv_off;
  uint lid = get_local_id(0);
  int bad = 0;
  for (uint idx = lid; idx < l * l; idx += LAMP_WG_SIZE)
    if (idx / l > idx % l) {
      r[idx] = 0.0f;
      ri[idx] = 0.0f;
    }
  if (check) {
    float acc = 0.0f;
    for (uint idx = lid; idx < l * l; idx += LAMP_WG_SIZE) {
      uint i = idx / l, c = idx % l;
      if (i > c) continue;
      float d = g[idx] - (i == c ? 1.0f : 0.0f);
      acc += (i == c ? 1.0f : 2.0f) * d * d;
    }
    float dev = lamp_wg_sum(red, acc);
    bad = !(dev <= 0.25f);
  }
  for (uint j = 0; j < l && !bad; j++) {
    barrier(CLK_GLOBAL_MEM_FENCE);
    float acc = 0.0f;
    for (uint p = lid; p < j; p += LAMP_WG_SIZE) acc += r[p * l + j] * r[p * l + j];
    float gjj = g[j * l + j];
    float s = gjj - lamp_wg_sum(red, acc);
    if (!(s > 1e-8f * gjj) || !isfinite(s)) {
      bad = 1;
      break;
    }
    float rjj = sqrt(s);
    if (lid == 0) r[j * l + j] = rjj;
    for (uint c = j + 1 + lid; c < l; c += LAMP_WG_SIZE) {
      float x = g[j * l + c];
      for (uint p = 0; p < j; p++) x -= r[p * l + j] * r[p * l + c];
      r[j * l + c] = x / rjj;
    }
  }
  barrier(CLK_GLOBAL_MEM_FENCE);
  if (!bad)
    for (uint c = lid; c < l; c += LAMP_WG_SIZE) {
      ri[c * l + c] = 1.0f / r[c * l + c];
      for (uint i = c; i-- > 0;) {
        float x = 0.0f;
        for (uint p = i + 1; p <= c; p++) x += r[i * l + p] * ri[p * l + c];
        ri[i * l + c] = -x / r[i * l + i];
      }
    }
  if (lid == 0) buf[flag_off] = bad ? 1.0f : 0.0f;
}
