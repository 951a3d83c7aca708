/* SwiGLU (and Gemma's GeGLU, below) on the fused gate/up projection gu (N, 2F): columns
 * 0 .. F-1 are the gate g, F .. 2F-1 the up projection u; a = silu(g) * u with
 * silu(g) = g / (1 + exp(-g)). Offsets in floats, one work-item per element of a, global (F, N). */

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

/* GeGLU (Gemma): a = gelu(g) * u with the tanh approximation
 * gelu(g) = g / 2 (1 + tanh(k (g + 0.044715 g^3))), k = sqrt(2 / pi), as transformers'
 * gelu_pytorch_tanh. */
#define GELU_K 0.7978845608028654f
#define GELU_A 0.044715f

__kernel void geglu_forward(__global float *a, ulong a_off, __global const float *gu,
                            ulong gu_off, uint ffn, uint rows) {
  const uint f = get_global_id(0), n = get_global_id(1);
  if (f >= ffn || n >= rows) return;
  const ulong in = gu_off + (ulong)n * 2 * ffn + f;
  const float g = gu[in], u = gu[in + ffn];
  const float th = tanh(GELU_K * (g + GELU_A * g * g * g));
  a[a_off + (ulong)n * ffn + f] = 0.5f * g * (1.0f + th) * u;
}

/* dg = da u gelu'(g), du = da gelu(g), where
 * gelu'(g) = (1 + th) / 2 + g / 2 (1 - th^2) k (1 + 3 0.044715 g^2). Overwrites dgu. */
__kernel void geglu_backward(__global float *dgu, ulong dgu_off, __global const float *da,
                             ulong da_off, __global const float *gu, ulong gu_off, uint ffn,
                             uint rows) {
  const uint f = get_global_id(0), n = get_global_id(1);
  if (f >= ffn || n >= rows) return;
  const ulong in = (ulong)n * 2 * ffn + f;
  const float g = gu[gu_off + in], u = gu[gu_off + in + ffn], d = da[da_off + (ulong)n * ffn + f];
  const float th = tanh(GELU_K * (g + GELU_A * g * g * g));
  const float dgelu = 0.5f * (1.0f + th) +
                      0.5f * g * (1.0f - th * th) * GELU_K * (1.0f + 3.0f * GELU_A * g * g);
  dgu[dgu_off + in] = d * u * dgelu;
  dgu[dgu_off + in + ffn] = d * 0.5f * g * (1.0f + th);
}
