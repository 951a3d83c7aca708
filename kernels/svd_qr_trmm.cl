/* C = A B for upper triangular A and B (l x l, row stride l, offsets in elements into one
 * buffer): C_ic = sum_{p=i..c} A_ip B_pc above the diagonal, 0 below. Used for R = R2 R1 in
 * CholeskyQR2. One work-item per entry of C. */
__kernel void svd_qr_trmm(__global float *buf, ulong a_off, ulong b_off, ulong c_off, uint l) {
  uint idx = get_global_id(0);
  if (idx >= l * l) return;
  uint i = idx / l, c = idx % l;
  float x = 0.0f;
  for (uint p = i; p <= c; p++) x += buf[a_off + i * l + p] * buf[b_off + p * l + c];
  buf[c_off + idx] = x;
}
