/* The compressed outer product with average pooling over prompt tokens, pooled first:
 *   out (P', C) = pool_s(U) diag(q) Vt,   U (P, R), q (R), Vt (R, C), P' = ceil(P / s),
 * where row j of pool_s(U) is the mean of rows j*s .. min(j*s + s, P) - 1 (a last partial window
 * averages the rows it has). LAMP passes q; DPT (A B) runs the same kernels with has_q = 0.
 * Pooling is linear, so pooling U first gives the pooled prompt exactly at 1/s of the cost, and no
 * (R, P, C) or (P, C) intermediate exists anywhere.
 *
 * Work-groups are LAMP_TILE x LAMP_TILE work-items and stage one tile of each operand in local
 * memory. Along C every work-item handles a run of consecutive columns as one vector, CV wide in
 * the kernels whose output runs along C and CVU in the one that sums along C. The kernel
 * profile sets them: 16 and 8 on the CPU profile, where explicit vectors are what CPU OpenCL
 * compilers turn into SIMD code (4 times faster than one column per work-item under PoCL); 4 on
 * the GPU profile, one 128-bit access per work-item, so that neighbouring work-items read
 * neighbouring words of local memory without bank conflicts.
 * Indices into the parameters fit 32 bits (the host checks); offsets and row strides of the
 * (P', C) operands are 64-bit. All offsets and strides are in floats. */

#define TS LAMP_TILE
#define CV LAMP_TILE_VEC
#if CV == 16
#define CVU 8
#else
#define CVU CV
#endif
#define TC (TS * CV)  /* columns of C per work-group in forward and backward_v */
#define TU (TS * CVU) /* columns of C per step in backward_u */

typedef LAMP_CAT(float, CV) copv;
typedef LAMP_CAT(float, CVU) copu;
#define cop_load LAMP_CAT(lamp_load, CV)
#define cop_store LAMP_CAT(lamp_store, CV)
#define cop_load_u LAMP_CAT(lamp_load, CVU)

/* The sum of a backward_u accumulator's lanes, pairwise. */
static float cop_hsum(copu x) {
#if CVU == 8
  const float4 h = x.lo + x.hi;
#else
  const float4 h = x;
#endif
  return (h.s0 + h.s1) + (h.s2 + h.s3);
}

/* Row j of pool_s(U), column k (U has row stride r). */
static float cop_pooled(__global const float *u, uint r, uint l, uint s, uint j, uint k) {
  uint t0 = j * s, t1 = min(t0 + s, l);
  float acc = 0.0f;
  for (uint t = t0; t < t1; t++) acc += u[t * r + k];
  return acc / (float)(t1 - t0);
}

/* out[j, c] = sum_k pool(U)[j, k] q[k] Vt[k, c]. Overwrites out. Work-item (tx, ty) computes
 * row j0 + ty, columns c0 + CV tx .. + CV - 1. */
__kernel __attribute__((reqd_work_group_size(TS, TS, 1)))
void prompt_cop_forward(__global const float *prm, ulong u_off, ulong q_off, ulong v_off,
                        int has_q, uint l, uint d, uint r, uint s, __global float *out,
                        ulong out_off, ulong out_ld) {
  __local float up[TS][TS + 1]; /* [j][k], pooled U times q */
  __local copv vt[TS][TS];   /* [k][c / CV] */
  const uint tx = get_local_id(0), ty = get_local_id(1);
  const uint c = get_group_id(0) * TC + CV * tx, j = get_group_id(1) * TS + ty;
  const uint lp = (l + s - 1) / s;
  __global const float *u = prm + u_off, *q = prm + q_off, *v = prm + v_off;
  copv acc = (copv)(0.0f);
  for (uint k0 = 0; k0 < r; k0 += TS) {
    const uint k = k0 + tx, kk = k0 + ty;
    float p = 0.0f;
    if (j < lp && k < r) {
      p = cop_pooled(u, r, l, s, j, k);
      if (has_q) p *= q[k];
    }
    up[ty][tx] = p;
    vt[ty][tx] = kk < r ? cop_load(v + kk * d, c, d) : (copv)(0.0f);
    barrier(CLK_LOCAL_MEM_FENCE);
    const uint kn = min((uint)TS, r - k0);
    for (uint x = 0; x < kn; x++) acc += up[ty][x] * vt[x][tx];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (j < lp) cop_store(out + out_off + j * out_ld, c, d, acc);
}

/* dVt[k, c] += q[k] sum_j pool(U)[j, k] G[j, c], G = dL/dout (P', C), summed tile by tile over
 * P'; the pooled U tile is rebuilt in local memory from U. Work-item (tx, ty) computes row
 * k0 + ty, columns c0 + CV tx .. + CV - 1. */
__kernel __attribute__((reqd_work_group_size(TS, TS, 1)))
void prompt_cop_backward_v(__global const float *prm, ulong u_off, ulong q_off, int has_q,
                           __global float *grad, ulong dv_off, __global const float *g,
                           ulong g_off, ulong g_ld, uint l, uint d, uint r, uint s) {
  __local float up[TS][TS + 1]; /* [j][k] */
  __local copv gt[TS][TS];   /* [j][c / CV] */
  const uint tx = get_local_id(0), ty = get_local_id(1);
  const uint c = get_group_id(0) * TC + CV * tx, k0 = get_group_id(1) * TS, k = k0 + ty;
  const uint lp = (l + s - 1) / s;
  __global const float *u = prm + u_off, *q = prm + q_off;
  copv acc = (copv)(0.0f);
  for (uint j0 = 0; j0 < lp; j0 += TS) {
    const uint j = j0 + ty;
    up[ty][tx] = (j < lp && k0 + tx < r) ? cop_pooled(u, r, l, s, j, k0 + tx) : 0.0f;
    gt[ty][tx] = j < lp ? cop_load(g + g_off + j * g_ld, c, d) : (copv)(0.0f);
    barrier(CLK_LOCAL_MEM_FENCE);
    const uint jn = min((uint)TS, lp - j0);
    for (uint x = 0; x < jn; x++) acc += up[x][ty] * gt[x][tx];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (k < r) {
    __global float *row = grad + dv_off + k * d;
    cop_store(row, c, d, cop_load(row, c, d) + (has_q ? q[k] : 1.0f) * acc);
  }
}

/* W[j, k] = sum_c G[j, c] Vt[k, c] (stored in w, overwritten, for prompt_cop_backward_q), and
 * dU[t, k] += q[k] W[j, k] / n_j for the n_j rows t of window j. Each work-item owns one
 * window, so the dU updates never collide. Work-item (tx, ty) computes W[j0 + ty, k0 + tx]; the
 * sum over C runs TU columns per step, CVU at a time in each work-item. */
__kernel __attribute__((reqd_work_group_size(TS, TS, 1)))
void prompt_cop_backward_u(__global const float *prm, ulong q_off, ulong v_off, int has_q,
                           __global float *grad, ulong du_off, __global float *w, ulong w_off,
                           __global const float *g, ulong g_off, ulong g_ld, uint l, uint d,
                           uint r, uint s) {
  __local copu gt[TS][TS]; /* [j][c / CVU] */
  __local copu vt[TS][TS + 1]; /* [k][c / CVU]; the pad spreads column reads over banks */
  const uint tx = get_local_id(0), ty = get_local_id(1);
  const uint k0 = get_group_id(0) * TS, j0 = get_group_id(1) * TS;
  const uint lp = (l + s - 1) / s;
  __global const float *q = prm + q_off, *v = prm + v_off;
  copu acc = (copu)(0.0f);
  for (uint cb = 0; cb < d; cb += TU) {
    const uint j = j0 + ty, kk = k0 + ty, c = cb + CVU * tx;
    gt[ty][tx] = j < lp ? cop_load_u(g + g_off + j * g_ld, c, d) : (copu)(0.0f);
    vt[ty][tx] = kk < r ? cop_load_u(v + kk * d, c, d) : (copu)(0.0f);
    barrier(CLK_LOCAL_MEM_FENCE);
    const uint xn = min((uint)TS, (d - cb + CVU - 1) / CVU);
    for (uint x = 0; x < xn; x++) acc += gt[ty][x] * vt[tx][x];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const uint j = j0 + ty, k = k0 + tx;
  if (j < lp && k < r) {
    const float sum = cop_hsum(acc);
    w[w_off + j * r + k] = sum;
    const uint t0 = j * s, t1 = min(t0 + s, l);
    const float gu = sum * (has_q ? q[k] : 1.0f) / (float)(t1 - t0);
    for (uint t = t0; t < t1; t++) grad[du_off + t * r + k] += gu;
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
  for (uint j = 0; j < lp; j++) acc += cop_pooled(u, r, l, s, j, k) * w[w_off + j * r + k];
  grad[dq_off + k] += acc;
}
