/* Householder QR, step j, the reflector: in one work-group, turns column j of X (rows x l, row
 * stride l, from row j down) into H = I - tau v v^T with v_j = 1 implicit, so that H x = beta e_j.
 * Writes beta to X_jj, v_i to X_ij for i > j and tau to tau[j]. A column already zero below
 * the diagonal gets tau = 0 (H = I). Values are O(1) here (A is scaled by 1 / max |a_ij|), so
 * the plain sum of squares neither overflows nor loses the column. */
__kernel __attribute__((reqd_work_group_size(LAMP_WG_SIZE, 1, 1)))
void svd_qr_hh_reflect(__global float *x, ulong x_off, ulong rows, uint l, uint j,
                                __global float *tau, ulong tau_off) {
  __local float red[LAMP_WG_SIZE];
  x += x_off;
  uint lid = get_local_id(0);
  float acc = 0.0f;
  for (ulong i = j + 1 + lid; i < rows; i += LAMP_WG_SIZE) acc += x[i * l + j] * x[i * l + j];
  float alpha = x[(ulong)j * l + j];
  float xnorm2 = lamp_wg_sum(red, acc);
  if (xnorm2 == 0.0f) {
    if (lid == 0) tau[tau_off + j] = 0.0f;
    return;
  }
  float beta = -copysign(sqrt(alpha * alpha + xnorm2), alpha);
  float scale = 1.0f / (alpha - beta);
  for (ulong i = j + 1 + lid; i < rows; i += LAMP_WG_SIZE) x[i * l + j] *= scale;
  if (lid == 0) {
    x[(ulong)j * l + j] = beta;
    tau[tau_off + j] = (beta - alpha) / beta;
  }
}
