/* SwiGLU on the fused gate/up projection gu (N, 2F): columns 0 .. F-1 are the gate g, F .. 2F-1
 * the up projection u; a = silu(g) * u with silu(g) = g / (1 + exp(-g)). Offsets in floats,
 * one work-item per element of a, global (F, N). */

__kernel void swiglu_forward(__global float *a, ulong a_off, __global const float *gu,
                             ulong gu_off, uint ffn, uint rows) {
  const uint f = get_global_id(0), n = get_global_id(1);
  if (f >= ffn || n >= rows) return;
  const ulong in = gu_off + (ulong)n * 2 * ffn + f;
  const float g = gu[in], u = gu[in + ffn];
  a[a_off + (ulong)n * ffn + f] = g / (1.0f + exp(-g)) * u;
}

/* dgu (N, 2F) from da (N, F): dg = da u silu'(g), du = da silu(g), where
 * silu'(g) = sig(g) (1 + g (1 - sig(g))). Overwrites dgu. */
__kernel void swiglu_backward(__global float *dgu, ulong dgu_off, __global const float *da,
                              ulong da_off, __global const float *gu, ulong gu_off, uint ffn,
                              uint rows) {
  const uint f = get_global_id(0), n = get_global_id(1);
  if (f >= ffn || n >= rows) return;
  const ulong in = (ulong)n * 2 * ffn + f;
  const float g = gu[gu_off + in], u = gu[gu_off + in + ffn], d = da[da_off + (ulong)n * ffn + f];
  const float sg = 1.0f / (1.0f + exp(-g));
  dgu[dgu_off + in] = d * u * sg * (1.0f + g * (1.0f - sg));
  dgu[dgu_off + in + ffn] = d * g * sg;
}
