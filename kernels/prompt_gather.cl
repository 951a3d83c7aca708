/* Copies chosen rows of a token-embedding table (V, C) into a prompt (P, C):
 * out[i, c] = emb[idx[i], c]. The table may be f32 or f16 (read with vload_half, which needs no
 * cl_khr_fp16); the prompt is f32. Offsets and strides are in elements of each buffer's type.
 * One work-item per output element, dimension 0 along C. */

__kernel void prompt_gather_f32(__global const float *emb, ulong e_off, ulong e_s0, ulong e_s1,
                                __global const uint *idx, __global float *out, ulong o_off,
                                ulong o_ld, uint rows, uint width) {
  const uint c = get_global_id(0), i = get_global_id(1);
  if (c >= width || i >= rows) return;
  out[o_off + (ulong)i * o_ld + c] = emb[e_off + (ulong)idx[i] * e_s1 + (ulong)c * e_s0];
}

__kernel void prompt_gather_f16(__global const half *emb, ulong e_off, ulong e_s0, ulong e_s1,
                                __global const uint *idx, __global float *out, ulong o_off,
                                ulong o_ld, uint rows, uint width) {
  const uint c = get_global_id(0), i = get_global_id(1);
  if (c >= width || i >= rows) return;
  out[o_off + (ulong)i * o_ld + c] = vload_half(e_off + (ulong)idx[i] * e_s1 + (ulong)c * e_s0,
                                                emb);
}
