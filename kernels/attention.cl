/* Causal grouped-query attention over the fused QKV buffer, tiled, with an online softmax.
 *
 * qkv (N, W), N = B * S rows (S rows per sequence, prompt included), W = (H + 2 Hkv) D: query
 * heads, then key heads, then value heads, each D wide. Query head h reads key/value head
 * h / (H / Hkv), as Hugging Face's repeat_kv does. valid[b] is the number of real rows of
 * sequence b (prompt plus tokens, right-padded): key j is visible to query t when j <= t and
 * j < valid[b]. Padding queries produce zero output and zero gradient. The scores are scaled
 * by `scale` (1 / sqrt(D)).
 *
 * Work-groups of ATT_TILE rows of one (sequence, head) stream the keys (or queries) through
 * local memory ATT_TILE at a time. The forward keeps a running max and sum per query, so no
 * (S, S) matrix exists anywhere; it saves the log-sum-exp (N, H) from which the backward
 * recomputes each probability exactly. Offsets are in floats. */

#define ATT_TILE 16
#define ATT_MAX_DIM 128

/* o (N, H D) and lse (N, H). Global (S rounded up to ATT_TILE, H, B), local (ATT_TILE, 1, 1). */
__kernel __attribute__((reqd_work_group_size(ATT_TILE, 1, 1)))
void attention_forward(__global float *o, ulong o_off, __global float *lse, ulong lse_off,
                       __global const float *qkv, ulong qkv_off, __global const int *valid,
                       uint seq, uint heads, uint kv_heads, uint dim, float scale) {
  __local float ks[ATT_TILE * ATT_MAX_DIM], vs[ATT_TILE * ATT_MAX_DIM];
  float q[ATT_MAX_DIM], acc[ATT_MAX_DIM], sc[ATT_TILE];
  const uint t = get_global_id(0), h = get_global_id(1), b = get_global_id(2);
  const uint lid = get_local_id(0), t0 = get_group_id(0) * ATT_TILE;
  const uint width = (heads + 2 * kv_heads) * dim, g = h / (heads / kv_heads);
  const uint len = (uint)valid[b];
  const int active = t < len;
  const ulong row = (ulong)b * seq + t;
  for (uint d = 0; d < dim; d++) {
    q[d] = active ? qkv[qkv_off + row * width + h * dim + d] * scale : 0.0f;
    acc[d] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  const uint kend = min(t0 + ATT_TILE, len);
  for (uint j0 = 0; j0 < kend; j0 += ATT_TILE) {
    const uint j = j0 + lid;
    if (j < kend) {
      const ulong kr = qkv_off + ((ulong)b * seq + j) * width;
      for (uint d = 0; d < dim; d++) {
        ks[lid * ATT_MAX_DIM + d] = qkv[kr + (heads + g) * dim + d];
        vs[lid * ATT_MAX_DIM + d] = qkv[kr + (heads + kv_heads + g) * dim + d];
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const int jn = active ? min((int)ATT_TILE, (int)(t + 1) - (int)j0) : 0;
    if (jn > 0) {
      float mt = m;
      for (int jj = 0; jj < jn; jj++) {
        float s = 0.0f;
        for (uint d = 0; d < dim; d++) s += q[d] * ks[jj * ATT_MAX_DIM + d];
        sc[jj] = s;
        mt = fmax(mt, s);
      }
      const float corr = exp(m - mt);
      l *= corr;
      for (uint d = 0; d < dim; d++) acc[d] *= corr;
      for (int jj = 0; jj < jn; jj++) {
        const float p = exp(sc[jj] - mt);
        l += p;
        for (uint d = 0; d < dim; d++) acc[d] += p * vs[jj * ATT_MAX_DIM + d];
      }
      m = mt;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (t >= seq) return;
  const float inv = active ? 1.0f / l : 0.0f;
  for (uint d = 0; d < dim; d++) o[o_off + row * heads * dim + h * dim + d] = acc[d] * inv;
  lse[lse_off + row * heads + h] = active ? m + log(l) : 0.0f;
}

/* The query part of the backward: delta (N, H) = rowsum(dO * O), kept for attention_backward_kv,
 * and dq = scale * sum_j p_tj (dO_t . v_j - delta_t) k_j into the query columns of dqkv (N, W),
 * overwriting them. Same launch shape as the forward. */
__kernel __attribute__((reqd_work_group_size(ATT_TILE, 1, 1)))
void attention_backward_q(__global float *dqkv, ulong dqkv_off, __global float *delta,
                          ulong delta_off, __global const float *qkv, ulong qkv_off,
                          __global const float *o, ulong o_off, __global const float *dout,
                          ulong dout_off, __global const float *lse, ulong lse_off,
                          __global const int *valid, uint seq, uint heads, uint kv_heads,
                          uint dim, float scale) {
  __local float ks[ATT_TILE * ATT_MAX_DIM], vs[ATT_TILE * ATT_MAX_DIM];
  float q[ATT_MAX_DIM], dov[ATT_MAX_DIM], dq[ATT_MAX_DIM];
  const uint t = get_global_id(0), h = get_global_id(1), b = get_global_id(2);
  const uint lid = get_local_id(0), t0 = get_group_id(0) * ATT_TILE;
  const uint width = (heads + 2 * kv_heads) * dim, g = h / (heads / kv_heads);
  const uint len = (uint)valid[b];
  const int active = t < len;
  const ulong row = (ulong)b * seq + t;
  float dsum = 0.0f;
  for (uint d = 0; d < dim; d++) {
    q[d] = active ? qkv[qkv_off + row * width + h * dim + d] * scale : 0.0f;
    dov[d] = active ? dout[dout_off + row * heads * dim + h * dim + d] : 0.0f;
    dsum += active ? dov[d] * o[o_off + row * heads * dim + h * dim + d] : 0.0f;
    dq[d] = 0.0f;
  }
  const float lt = active ? lse[lse_off + row * heads + h] : 0.0f;
  const uint kend = min(t0 + ATT_TILE, len);
  for (uint j0 = 0; j0 < kend; j0 += ATT_TILE) {
    const uint j = j0 + lid;
    if (j < kend) {
      const ulong kr = qkv_off + ((ulong)b * seq + j) * width;
      for (uint d = 0; d < dim; d++) {
        ks[lid * ATT_MAX_DIM + d] = qkv[kr + (heads + g) * dim + d];
        vs[lid * ATT_MAX_DIM + d] = qkv[kr + (heads + kv_heads + g) * dim + d];
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const int jn = active ? min((int)ATT_TILE, (int)(t + 1) - (int)j0) : 0;
    for (int jj = 0; jj < jn; jj++) {
      float s = 0.0f, dp = 0.0f;
      for (uint d = 0; d < dim; d++) {
        s += q[d] * ks[jj * ATT_MAX_DIM + d];
        dp += dov[d] * vs[jj * ATT_MAX_DIM + d];
      }
      const float ds = exp(s - lt) * (dp - dsum);
      for (uint d = 0; d < dim; d++) dq[d] += ds * ks[jj * ATT_MAX_DIM + d];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (t >= seq) return;
  for (uint d = 0; d < dim; d++) dqkv[dqkv_off + row * width + h * dim + d] = dq[d] * scale;
  delta[delta_off + row * heads + h] = dsum;
}

/* The key/value part: for key j of KV head g, summed over the query heads of its group and the
 * queries t >= j, dv_j = sum p_tj dO_t and dk_j = scale * sum p_tj (dO_t . v_j - delta_t) q_t,
 * into the key and value columns of dqkv, overwriting them. Needs delta from
 * attention_backward_q. Global (S rounded up to ATT_TILE, Hkv, B), local (ATT_TILE, 1, 1). */
__kernel __attribute__((reqd_work_group_size(ATT_TILE, 1, 1)))
void attention_backward_kv(__global float *dqkv, ulong dqkv_off, __global const float *qkv,
                           ulong qkv_off, __global const float *dout, ulong dout_off,
                           __global const float *lse, ulong lse_off, __global const float *delta,
                           ulong delta_off, __global const int *valid, uint seq, uint heads,
                           uint kv_heads, uint dim, float scale) {
  __local float qs[ATT_TILE * ATT_MAX_DIM], dos[ATT_TILE * ATT_MAX_DIM];
  __local float ls[ATT_TILE], dls[ATT_TILE];
  float k[ATT_MAX_DIM], v[ATT_MAX_DIM], dk[ATT_MAX_DIM], dv[ATT_MAX_DIM];
  const uint j = get_global_id(0), g = get_global_id(1), b = get_global_id(2);
  const uint lid = get_local_id(0), j0 = get_group_id(0) * ATT_TILE;
  const uint width = (heads + 2 * kv_heads) * dim, group = heads / kv_heads;
  const uint len = (uint)valid[b];
  const int active = j < len;
  const ulong row = (ulong)b * seq + j;
  for (uint d = 0; d < dim; d++) {
    k[d] = active ? qkv[qkv_off + row * width + (heads + g) * dim + d] : 0.0f;
    v[d] = active ? qkv[qkv_off + row * width + (heads + kv_heads + g) * dim + d] : 0.0f;
    dk[d] = 0.0f;
    dv[d] = 0.0f;
  }
  for (uint h = g * group; h < (g + 1) * group; h++) {
    for (uint i0 = j0; i0 < len; i0 += ATT_TILE) {
      const uint i = i0 + lid;
      if (i < len) {
        const ulong qr = (ulong)b * seq + i;
        for (uint d = 0; d < dim; d++) {
          qs[lid * ATT_MAX_DIM + d] = qkv[qkv_off + qr * width + h * dim + d] * scale;
          dos[lid * ATT_MAX_DIM + d] = dout[dout_off + qr * heads * dim + h * dim + d];
        }
        ls[lid] = lse[lse_off + qr * heads + h];
        dls[lid] = delta[delta_off + qr * heads + h];
      }
      barrier(CLK_LOCAL_MEM_FENCE);
      if (active) {
        const uint in = min((uint)ATT_TILE, len - i0);
        for (uint ii = (j > i0 ? j - i0 : 0); ii < in; ii++) {
          float s = 0.0f, dp = 0.0f;
          for (uint d = 0; d < dim; d++) {
            s += qs[ii * ATT_MAX_DIM + d] * k[d];
            dp += dos[ii * ATT_MAX_DIM + d] * v[d];
          }
          const float p = exp(s - ls[ii]);
          const float ds = p * (dp - dls[ii]);
          for (uint d = 0; d < dim; d++) {
            dv[d] += p * dos[ii * ATT_MAX_DIM + d];
            dk[d] += ds * qs[ii * ATT_MAX_DIM + d];
          }
        }
      }
      barrier(CLK_LOCAL_MEM_FENCE);
    }
  }
  if (j >= seq) return;
  for (uint d = 0; d < dim; d++) {
    dqkv[dqkv_off + row * width + (heads + g) * dim + d] = dk[d];
    dqkv[dqkv_off + row * width + (heads + kv_heads + g) * dim + d] = dv[d];
  }
}
