/* Global-norm gradient clipping in two launches and no host round trip:
 * clip_sumsq leaves one partial sum of squares per work-group in `part`; clip_scale has every
 * work-group add all n_part partials in the same order (so all agree on the norm), scales the
 * gradients by min(1, max_norm / (norm + 1e-6)) and stores the norm in norm_out[0].
 * The tensors are dense ranges: seg[2s] is the offset of tensor s in g, seg[2s+1] its length. */

#define WG LAMP_WG_SIZE

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void clip_sumsq(__global const float *g, __global const ulong *seg, uint n_seg,
                __global float *part, uint part_off) {
  __local float red[WG];
  const size_t lid = get_local_id(0), gid = get_global_id(0), gsz = get_global_size(0);
  float acc = 0.0f;
  for (uint s = 0; s < n_seg; s++) {
    const ulong off = seg[2 * s], n = seg[2 * s + 1];
    for (ulong i = gid; i < n; i += gsz) {
      float x = g[off + i];
      acc += x * x;
    }
  }
  red[lid] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint h = WG / 2; h > 0; h >>= 1) {
    if (lid < h) red[lid] += red[lid + h];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0) part[part_off + get_group_id(0)] = red[0];
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void clip_scale(__global float *g, __global const ulong *seg, uint n_seg,
                __global const float *part, uint n_part, float max_norm,
                __global float *norm_out) {
  __local float scale[1];
  const size_t lid = get_local_id(0), gid = get_global_id(0), gsz = get_global_size(0);
  if (lid == 0) {
    float sum = 0.0f;
    for (uint p = 0; p < n_part; p++) sum += part[p];
    const float norm = sqrt(sum);
    scale[0] = fmin(1.0f, max_norm / (norm + 1e-6f));
    if (gid == 0) norm_out[0] = norm;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  const float f = scale[0];
  if (f == 1.0f) return;
  for (uint s = 0; s < n_seg; s++) {
    const ulong off = seg[2 * s], n = seg[2 * s + 1];
    for (ulong i = gid; i < n; i += gsz) g[off + i] *= f;
  }
}
