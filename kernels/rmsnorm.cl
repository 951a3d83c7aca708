/* RMSNorm over rows of width C, y = x * r * w with r = 1 / sqrt(mean(x^2) + eps), plain and
 * fused with the residual add that precedes every norm in a Llama block. One work-group per
 * row; the local size is a power of two no larger than LAMP_WG_SIZE. Offsets are in floats. */

/* Sum of `v` over the work-group, left in red[0] for every work-item to read. */
static float rmsnorm_group_sum(__local float *red, float v) {
  const uint lid = get_local_id(0), n = get_local_size(0);
  red[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint s = n / 2; s > 0; s /= 2) {
    if (lid < s) red[lid] += red[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const float total = red[0];
  barrier(CLK_LOCAL_MEM_FENCE);
  return total;
}

/* y (N, C) = norm(x) * w; rstd (N) keeps r for the backward. */
__kernel void rmsnorm_forward(__global float *y, ulong y_off, __global float *rstd, ulong r_off,
                              __global const float *x, ulong x_off, __global const float *w,
                              ulong w_off, uint width, uint rows, float eps) {
  __local float red[LAMP_WG_SIZE];
  const uint row = get_group_id(0), lid = get_local_id(0), n = get_local_size(0);
  if (row >= rows) return;
  __global const float *xr = x + x_off + (ulong)row * width;
  float ss = 0.0f;
  for (uint c = lid; c < width; c += n) ss += xr[c] * xr[c];
  const float r = rsqrt(rmsnorm_group_sum(red, ss) / (float)width + eps);
  __global float *yr = y + y_off + (ulong)row * width;
  for (uint c = lid; c < width; c += n) yr[c] = xr[c] * r * w[w_off + c];
  if (lid == 0) rstd[r_off + row] = r;
}

/* s (N, C) = a + b (the residual stream after a sub-layer), then y = norm(s) * w. s may alias a
 * (each element is read before it is written by the same work-item). */
__kernel void rmsnorm_add_forward(__global float *s, ulong s_off, __global float *y, ulong y_off,
                                  __global float *rstd, ulong r_off, __global const float *a,
                                  ulong a_off, __global const float *b, ulong b_off,
                                  __global const float *w, ulong w_off, uint width, uint rows,
                                  float eps) {
  __local float red[LAMP_WG_SIZE];
  const uint row = get_group_id(0), lid = get_local_id(0), n = get_local_size(0);
  if (row >= rows) return;
  const ulong base = (ulong)row * width;
  float ss = 0.0f;
  for (uint c = lid; c < width; c += n) {
    const float v = a[a_off + base + c] + b[b_off + base + c];
    s[s_off + base + c] = v;
    ss += v * v;
  }
  const float r = rsqrt(rmsnorm_group_sum(red, ss) / (float)width + eps);
  for (uint c = lid; c < width; c += n) y[y_off + base + c] = s[s_off + base + c] * r * w[w_off + c];
  if (lid == 0) rstd[r_off + row] = r;
}

/* dx (N, C) from dy: dx_k = r w_k dy_k - x_k r^3 / C * sum_c dy_c w_c x_c; adds to dx (the
 * residual stream's gradient) when `accumulate`, else overwrites it. Two kernels share this
 * body with the flag a constant: PoCL 5 miscompiled the same code with a runtime flag. */
static void rmsnorm_backward_rows(__local float *red, __global float *dx, ulong dx_off,
                                  __global const float *dy, ulong dy_off,
                                  __global const float *x, ulong x_off,
                                  __global const float *rstd, ulong r_off,
                                  __global const float *w, ulong w_off, uint width, uint rows,
                                  const int accumulate) {
  const uint row = get_group_id(0), lid = get_local_id(0), n = get_local_size(0);
  if (row >= rows) return;
  const ulong base = (ulong)row * width;
  float dot = 0.0f;
  for (uint c = lid; c < width; c += n) dot += dy[dy_off + base + c] * w[w_off + c] * x[x_off + base + c];
  const float r = rstd[r_off + row];
  const float k = rmsnorm_group_sum(red, dot) * r * r * r / (float)width;
  for (uint c = lid; c < width; c += n) {
    const float g = r * w[w_off + c] * dy[dy_off + base + c] - x[x_off + base + c] * k;
    if (accumulate) dx[dx_off + base + c] += g;
    else dx[dx_off + base + c] = g;
  }
}

__kernel void rmsnorm_backward(__global float *dx, ulong dx_off, __global const float *dy,
                               ulong dy_off, __global const float *x, ulong x_off,
                               __global const float *rstd, ulong r_off, __global const float *w,
                               ulong w_off, uint width, uint rows) {
  __local float red[LAMP_WG_SIZE];
  rmsnorm_backward_rows(red, dx, dx_off, dy, dy_off, x, x_off, rstd, r_off, w, w_off, width, rows,
                        0);
}

__kernel void rmsnorm_backward_acc(__global float *dx, ulong dx_off, __global const float *dy,
                                   ulong dy_off, __global const float *x, ulong x_off,
                                   __global const float *rstd, ulong r_off,
                                   __global const float *w, ulong w_off, uint width, uint rows) {
  __local float red[LAMP_WG_SIZE];
  rmsnorm_backward_rows(red, dx, dx_off, dy, dy_off, x, x_off, rstd, r_off, w, w_off, width, rows,
                        1);
}

/* Gemma 3's norms over each query and key head, in place on the first `heads` heads (width D)
 * of each row of x (N, stride): heads below q_heads take wq (D), the others wk (D). The input
 * is kept in saved (N, heads D) and r in rstd (N, heads) for the backward. One work-group per
 * (row, head): group n heads + h. */
__kernel void rmsnorm_heads_forward(__global float *x, ulong x_off, uint stride,
                                    __global float *saved, ulong s_off, __global float *rstd,
                                    ulong r_off, __global const float *wq, ulong wq_off,
                                    __global const float *wk, ulong wk_off, uint q_heads,
                                    uint heads, uint dim, uint rows, float eps) {
  __local float red[LAMP_WG_SIZE];
  const uint g = get_group_id(0), lid = get_local_id(0), n = get_local_size(0);
  if (g >= rows * heads) return;
  const uint row = g / heads, h = g % heads;
  __global float *xr = x + x_off + (ulong)row * stride + (ulong)h * dim;
  __global float *sr = saved + s_off + (ulong)row * heads * dim + (ulong)h * dim;
  __global const float *w = h < q_heads ? wq + wq_off : wk + wk_off;
  float ss = 0.0f;
  for (uint c = lid; c < dim; c += n) ss += xr[c] * xr[c];
  const float r = rsqrt(rmsnorm_group_sum(red, ss) / (float)dim + eps);
  for (uint c = lid; c < dim; c += n) {
    const float v = xr[c];
    sr[c] = v;
    xr[c] = v * r * w[c];
  }
  if (lid == 0) rstd[r_off + g] = r;
}

/* The backward of rmsnorm_heads_forward, in place: the first `heads` heads of each row of
 * dx (N, stride) hold the gradient of the norms' outputs and get that of their inputs (the
 * rmsnorm_backward formula per head, from the saved inputs). Same launch shape. */
__kernel void rmsnorm_heads_backward(__global float *dx, ulong dx_off, uint stride,
                                     __global const float *saved, ulong s_off,
                                     __global const float *rstd, ulong r_off,
                                     __global const float *wq, ulong wq_off,
                                     __global const float *wk, ulong wk_off, uint q_heads,
                                     uint heads, uint dim, uint rows) {
  __local float red[LAMP_WG_SIZE];
  const uint g = get_group_id(0), lid = get_local_id(0), n = get_local_size(0);
  if (g >= rows * heads) return;
  const uint row = g / heads, h = g % heads;
  __global float *dr = dx + dx_off + (ulong)row * stride + (ulong)h * dim;
  __global const float *xr = saved + s_off + (ulong)row * heads * dim + (ulong)h * dim;
  __global const float *w = h < q_heads ? wq + wq_off : wk + wk_off;
  float dot = 0.0f;
  for (uint c = lid; c < dim; c += n) dot += dr[c] * w[c] * xr[c];
  const float r = rstd[r_off + g];
  const float k = rmsnorm_group_sum(red, dot) * r * r * r / (float)dim;
  for (uint c = lid; c < dim; c += n) dr[c] = r * w[c] * dr[c] - xr[c] * k;
}
