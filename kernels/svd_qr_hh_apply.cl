/* Householder QR, step j, the update: work-group g applies H_j = I - tau_j v v^T (v stored in
 * column j of X below the diagonal, v_j = 1) to column c = j + 1 + g of X (rows x l, row stride
 * l), rows j and below. */
__kernel __attribute__((reqd_work_group_size(LAMP_WG_SIZE, 1, 1)))
void svd_qr_hh_apply(__global float *x, ulong x_off, ulong rows, uint l, uint j,
                              __global const float *tau, ulong tau_off) {
  __local float red[LAMP_WG_SIZE];
  x += x_off;
  uint c = j + 1 + get_group_id(0), lid = get_local_id(0);
  float t = tau[tau_off + j];
  if (c >= l || t == 0.0f) return;
  float xjc = x[(ulong)j * l + c];
  float acc = 0.0f;
  for (ulong i = j + 1 + lid; i < rows; i += LAMP_WG_SIZE) acc += x[i * l + j] * x[i * l + c];
  float w = t * (xjc + lamp_wg_sum(red, acc));
  for (ulong i = j + 1 + lid; i < rows; i += LAMP_WG_SIZE) x[i * l + c] -= w * x[i * l + j];
  if (lid == 0) x[(ulong)j * l + c] = xjc - w;
}
