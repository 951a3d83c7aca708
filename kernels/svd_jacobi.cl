/* The small SVD of the randomized SVD, in one work-group: M = R^T for the upper triangle of R
 * (l x l, row stride ldr, offset in elements) by one-sided Jacobi (Hestenes): columns of M are
 * rotated in pairs until every pair is orthogonal to tol = sqrt(l) FLT_EPSILON relative, with
 * the rotations accumulated in V, so that M V = W diag(sigma). Pairs are visited in round-robin
 * order, l/2 disjoint pairs per round, one work-item per pair.
 *
 * `work` (from work_off) holds 4 l^2 + 3 l floats: G (rows are the columns of M), V (rows are
 * its columns), then the outputs WS and VS (row t: the t-th left and right singular vector,
 * sigma descending), the sorted sigma, and scratch. Left vectors are the columns of M V
 * normalised (zero where sigma is zero or subnormal), accurate only where sigma is not tiny:
 * svd_small_orth completes both sets afterwards. s[s_off + t s_stride] gets scale * sigma_t for
 * t < k. */
/* Position in the round-robin schedule: player 0 stays, the others rotate. */
static uint rr_pos(uint x, uint round, uint n) { return x == 0 ? 0 : 1 + (x - 1 + round) % (n - 1); }

__kernel __attribute__((reqd_work_group_size(LAMP_WG_SIZE, 1, 1)))
void svd_jacobi(__global const float *r, ulong r_off, ulong ldr, uint l,
                         __global float *work, ulong work_off, __global float *s, ulong s_off,
                         ulong s_stride, uint k, float scale, uint max_sweeps) {
    __local int rotated;
  work += work_off;
  __global float *g = work, *v = work + l * l, *ws = work + 2 * l * l, *vs = work + 3 * l * l;
  __global float *sig = work + 4 * l * l, *nrm = sig + l;
  uint lid = get_local_id(0);
  for (uint idx = lid; idx < l * l; idx += LAMP_WG_SIZE) {
    uint i = idx / l, c = idx % l;
    g[idx] = c >= i ? r[r_off + i * ldr + c] : 0.0f;
    v[idx] = i == c ? 1.0f : 0.0f;
  }
  barrier(CLK_GLOBAL_MEM_FENCE);

  /* One loop over (sweep, round) rather than nested loops around barriers: PoCL 3.1 skipped
   * the body of a barrier loop nested in another. */
  uint n = l + (l & 1), rounds = n - 1;
  float tol = sqrt((float)l) * FLT_EPSILON;
  if (lid == 0) rotated = 0;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint it = 0; it < max_sweeps * rounds; it++) {
    uint round = it % rounds;
    for (uint pr = lid; pr < n / 2; pr += LAMP_WG_SIZE) {
      uint a = rr_pos(pr, round, n), b = rr_pos(n - 1 - pr, round, n);
      if (a >= l || b >= l) continue;
      __global float *ga = g + a * l, *gb = g + b * l, *va = v + a * l, *vb = v + b * l;
      float alpha = 0.0f, beta = 0.0f, gamma = 0.0f;
      for (uint i = 0; i < l; i++) {
        alpha += ga[i] * ga[i];
        beta += gb[i] * gb[i];
        gamma += ga[i] * gb[i];
      }
      if (!(fabs(gamma) > tol * sqrt(alpha) * sqrt(beta))) continue;
      float zeta = (beta - alpha) / (2.0f * gamma), az = fabs(zeta);
      /* the smaller root of t^2 + 2 zeta t - 1 = 0, without squaring a huge zeta */
      float t = az > 1.0f ? 1.0f / (az * (1.0f + sqrt(1.0f + 1.0f / (az * az))))
                          : 1.0f / (az + sqrt(1.0f + az * az));
      if (zeta < 0.0f) t = -t;
      float cs = 1.0f / sqrt(1.0f + t * t), sn = cs * t;
      for (uint i = 0; i < l; i++) {
        float x = ga[i], y = gb[i];
        ga[i] = cs * x - sn * y;
        gb[i] = sn * x + cs * y;
        x = va[i];
        y = vb[i];
        va[i] = cs * x - sn * y;
        vb[i] = sn * x + cs * y;
      }
      atomic_inc(&rotated);
    }
    barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
    int sweep_end = round == rounds - 1, done = sweep_end && rotated == 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (sweep_end && lid == 0) rotated = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (done) break;
  }

  for (uint j = lid; j < l; j += LAMP_WG_SIZE) {
    float acc = 0.0f;
    for (uint i = 0; i < l; i++) acc += g[j * l + i] * g[j * l + i];
    nrm[j] = sqrt(acc);
  }
  barrier(CLK_GLOBAL_MEM_FENCE);
  for (uint j = lid; j < l; j += LAMP_WG_SIZE) {
    float nj = nrm[j];
    uint rank = 0;
    for (uint i = 0; i < l; i++) rank += nrm[i] > nj || (nrm[i] == nj && i < j);
    sig[rank] = nj;
    for (uint i = 0; i < l; i++) {
      ws[rank * l + i] = nj >= FLT_MIN ? g[j * l + i] / nj : 0.0f;
      vs[rank * l + i] = v[j * l + i];
    }
  }
  barrier(CLK_GLOBAL_MEM_FENCE);
  for (uint t = lid; t < k; t += LAMP_WG_SIZE) s[s_off + t * s_stride] = sig[t] * scale;
}
