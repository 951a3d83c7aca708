/* Multiplies every element of a strided f32 tensor (up to 4 dimensions) by one factor, in
 * place. Offsets and strides are in elements; one work-item per element, dimension 0 fastest. */
__kernel void tensor_scale_f32(__global float *base, ulong offset, ulong ne0, ulong ne1,
                               ulong ne2, ulong ne3, ulong nb0, ulong nb1, ulong nb2, ulong nb3,
                               float alpha) {
  ulong i = get_global_id(0);
  if (i >= ne0 * ne1 * ne2 * ne3) return;
  ulong i0 = i % ne0;
  i /= ne0;
  ulong i1 = i % ne1;
  i /= ne1;
  ulong i2 = i % ne2;
  ulong i3 = i / ne2;
  base[offset + i0 * nb0 + i1 * nb1 + i2 * nb2 + i3 * nb3] *= alpha;
}
