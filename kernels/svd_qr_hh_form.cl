/* Householder QR, forming Q = H_0 ... H_{l-1} [I; 0] (rows x l, row stride l) backwards, step j:
 * work-group g handles column c = j + g of Q. Column j is set to H_j e_j; columns c > j, which
 * steps j+1.. already formed, get H_j applied to rows j and below. The reflectors are those
 * svd_qr_hh_reflect left in X (column j below the diagonal, v_j = 1) and tau. */
__kernel __attribute__((reqd_work_group_size(LAMP_WG_SIZE, 1, 1)))
void svd_qr_hh_form(__global const float *x, ulong x_off, __global float *q,
                             ulong q_off, ulong rows, uint l, uint j, __global const float *tau,
                             ulong tau_off) {
  __local float red[LAMP_WG_SIZE];
  x += x_off;
  q += q_off;
  uint c = j + get_group_id(0), lid = get_local_id(0);
  float t = tau[tau_off + j];
  if (c >= l) return;
  if (c == j) {
    for (ulong i = lid; i < rows; i += LAMP_WG_SIZE) {
      float v = i < j ? 0.0f : (i == j ? 1.0f : x[i * l + j]);
      q[i * l + j] = (i == j ? 1.0f : 0.0f) - t * v;
    }
    return;
  }
  if (t == 0.0f) return;
  float qjc = q[(ulong)j * l + c];
  float acc = 0.0f;
  for (ulong i = j + 1 + lid; i < rows; i += LAMP_WG_SIZE) acc += x[i * l + j] * q[i * l + c];
  float w = t * (qjc + lamp_wg_sum(red, acc));
  for (ulong i = j + 1 + lid; i < rows; i += LAMP_WG_SIZE) q[i * l + c] -= w * x[i * l + j];
  if (lid == 0) q[(ulong)j * l + c] = qjc - w;
}
