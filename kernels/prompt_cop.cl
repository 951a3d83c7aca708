/* The compressed outer product with average pooling over prompt tokens, pooled first:
 *   out (P', C) = pool_s(U) diag(q) Vt,   U (P, R), q (R), Vt (R, C), P' = ceil(P / s),
 * where row j of pool_s(U) is the mean of rows j*s .. min(j*s + s, P) - 1 (a last partial window
 * averages the rows it has). LAMP passes q; DPT (A B) runs the same kernels with has_q = 0.
 * Pooling is linear, so pooling U first gives the pooled prompt exactly at 1/s of the cost, and no
 * (R, P, C) or (P, C) intermediate exists. Work-groups are LAMP_TILE x LAMP_TILE and stage one
 * tile of each operand in local memory. Offsets and row strides are in floats. */

#define TS LAMP_TILE

/* Row j of pool_s(U), column k. */
inline float cop_pooled(__global const float *u, uint r, uint l, uint s, uint j, uint k) {
  uint t0 = j * s, t1 = min(t0 + s, l);
  float acc = 0.0f;
  for (uint t = t0; t < t1; t++) acc += u[(ulong)t * r + k];
  return acc / (float)(t1 - t0);
}

/* out[j, c] = sum_k pool(U)[j, k] q[k] Vt[k, c]; one work-item per output element, dimension 0
 * along C so that the Vt loads and the output stores are contiguous. Overwrites out. */
__kernel __attribute__((reqd_work_group_size(TS, TS, 1)))
void prompt_cop_forward(__global const float *prm, ulong u_off, ulong q_off, ulong v_off,
                        int has_q, uint l, uint d, uint r, uint s, __global float *out,
                        ulong out_off, ulong out_ld) {
  __local float up[TS][TS + 1]; /* [j][k], pooled U times q */
  __local float vt[TS][TS + 1]; /* [k][c] */
  const uint tx = get_local_id(0), ty = get_local_id(1);
  const uint c0 = get_group_id(0) * TS, j0 = get_group_id(1) * TS;
  const uint lp = (l + s - 1) / s;
  __global const float *u = prm + u_off, *q = prm + q_off, *v = prm + v_off;
  float acc = 0.0f;
  for (uint k0 = 0; k0 < r; k0 += TS) {
    uint j = j0 + ty, k = k0 + tx;
    float p = 0.0f;
    if (j < lp && k < r) {
      p = cop_pooled(u, r, l, s, j, k);
      if (has_q) p *= q[k];
    }
    up[ty][tx] = p;
    uint kk = k0 + ty, c = c0 + tx;
    vt[ty][tx] = (kk < r && c < d) ? v[(ulong)kk * d + c] : 0.0f;
    barrier(CLK_LOCAL_MEM_FENCE);
    const uint kn = min((uint)TS, r - k0);
    for (uint x = 0; x < kn; x++) acc += up[ty][x] * vt[x][tx];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (j0 + ty < lp && c0 + tx < d) out[out_off + (ulong)(j0 + ty) * out_ld + c0 + tx] = acc;
}

/* dVt[k, c] += q[k] sum_j pool(U)[j, k] G[j, c], G = dL/dout (P', C). The sum over P' runs tile
 * by tile; the pooled U tile is rebuilt in local memory from U. Dimension 0 along C. */
__kernel __attribute__((reqd_work_group_size(TS, TS, 1)))
void prompt_cop_backward_v(__global const float *prm, ulong u_off, ulong q_off, int has_q,
                           __global float *grad, ulong dv_off, __global const float *g,
                           ulong g_off, ulong g_ld, uint l, uint d, uint r, uint s) {
  __local float up[TS][TS + 1]; /* [j][k] */
  __local float gt[TS][TS + 1]; /* [j][c] */
  const uint tx = get_local_id(0), ty = get_local_id(1);
  const uint c0 = get_group_id(0) * TS, k0 = get_group_id(1) * TS;
  const uint lp = (l + s - 1) / s;
  __global const float *u = prm + u_off, *q = prm + q_off;
  float acc = 0.0f;
  for (uint j0 = 0; j0 < lp; j0 += TS) {
    uint j = j0 + ty, k = k0 + tx, c = c0 + tx;
    up[ty][tx] = (j < lp && k < r) ? cop_pooled(u, r, l, s, j, k) : 0.0f;
    gt[ty][tx] = (j < lp && c < d) ? g[g_off + (ulong)j * g_ld + c] : 0.0f;
    barrier(CLK_LOCAL_MEM_FENCE);
    const uint jn = min((uint)TS, lp - j0);
    for (uint x = 0; x < jn; x++) acc += up[x][ty] * gt[x][tx];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const uint k = k0 + ty, c = c0 + tx;
  if (k < r && c < d) grad[dv_off + (ulong)k * d + c] += (has_q ? q[k] : 1.0f) * acc;
}

/* W[j, k] = sum_c G[j, c] Vt[k, c] (stored in w, overwritten, for prompt_cop_backward_q), and
 * dU[t, k] += q[k] W[j, k] / n_j for the n_j rows t of window j. Each work-item owns one
 * window, so the dU updates never collide. Dimension 0 along R, dimension 1 along P'. */
__kernel __attribute__((reqd_work_group_size(TS, TS, 1)))
void prompt_cop_backward_u(__global const float *prm, ulong q_off, ulong v_off, int has_q,
                           __global float *grad, ulong du_off, __global float *w, ulong w_off,
                           __global const float *g, ulong g_off, ulong g_ld, uint l, uint d,
                           uint r, uint s) {
  __local float gt[TS][TS + 1]; /* [j][c] */
  __local float vt[TS][TS + 1]; /* [k][c] */
  const uint tx = get_local_id(0), ty = get_local_id(1);
  const uint k0 = get_group_id(0) * TS, j0 = get_group_id(1) * TS;
  const uint lp = (l + s - 1) / s;
  __global const float *q = prm + q_off, *v = prm + v_off;
  float acc = 0.0f;
  for (uint c0 = 0; c0 < d; c0 += TS) {
    uint c = c0 + tx, j = j0 + ty, k = k0 + ty;
    gt[ty][tx] = (j < lp && c < d) ? g[g_off + (ulong)j * g_ld + c] : 0.0f;
    vt[ty][tx] = (k < r && c < d) ? v[(ulong)k * d + c] : 0.0f;
    barrier(CLK_LOCAL_MEM_FENCE);
    const uint cn = min((uint)TS, d - c0);
    for (uint x = 0; x < cn; x++) acc += gt[ty][x] * vt[tx][x];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const uint j = j0 + ty, k = k0 + tx;
  if (j < lp && k < r) {
    w[w_off + (ulong)j * r + k] = acc;
    uint t0 = j * s, t1 = min(t0 + s, l);
    float gu = acc * (has_q ? q[k] : 1.0f) / (float)(t1 - t0);
    for (uint t = t0; t < t1; t++) grad[du_off + (ulong)t * r + k] += gu;
  }
}

/* dq[k] += sum_j pool(U)[j, k] W[j, k], with W from prompt_cop_backward_u. One work-item per k:
 * the sum is over P' terms only. */
__kernel void prompt_cop_backward_q(__global const float *prm, ulong u_off, __global float *grad,
                                    ulong dq_off, __global const float *w, ulong w_off, uint l,
                                    uint r, uint s) {
  const uint k = get_global_id(0);
  if (k >= r) return;
  const uint lp = (l + s - 1) / s;
  __global const float *u = prm + u_off;
  float acc = 0.0f;
  for (uint j = 0; j < lp; j++) acc += cop_pooled(u, r, l, s, j, k) * w[w_off + (ulong)j * r + k];
  grad[dq_off + k] += acc;
}
