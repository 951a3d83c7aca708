/* C = alpha A B^T + beta C for a few rows of A (m at most GEMM_ROWS_MAX) against a row-major
 * B (n, k): lamp_gemm's products of a handful of rows on the CPU profile (runtime/gemm.c),
 * such as a generation step's (one row) against the model's weights. One work-item per row of B
 * reads that row once, as float8 vectors, and keeps one accumulator per row of A, so the
 * weights stream from memory once at vector speed; CLBlast's kernels tile C in blocks of 32
 * rows or more, and its GEMV took ten times as long per product on PoCL. Row i of A starts at
 * a_off + i a_step and steps by a_inc (1, or lda when A is stored transposed). beta 0 ignores
 * C's old contents. Offsets are in floats. Global (n), any local size. */

#define GEMM_ROWS_MAX 16

__kernel void gemm_rows(__global const float *b, ulong b_off, uint ldb, __global const float *a,
                        ulong a_off, uint a_step, uint a_inc, __global float *c, ulong c_off,
                        uint ldc, uint m, uint n, uint k, float alpha, float beta) {
  const uint r = get_global_id(0);
  if (r >= n || m > GEMM_ROWS_MAX) return;
  __global const float *br = b + b_off + (ulong)r * ldb;
  __global const float *av = a + a_off;
  float8 acc[GEMM_ROWS_MAX];
  for (uint i = 0; i < m; i++) acc[i] = (float8)0.0f;
  uint j = 0;
  /* one row alone (a generation step) without the loop over rows, whose accumulators PoCL keeps
   * in memory: SmolLM2-135M's products took 0.7 ms per call instead of 1.2 on PoCL */
  if (a_inc == 1 && m == 1)
    for (; j + 8 <= k; j += 8) acc[0] += vload8(0, br + j) * vload8(0, av + j);
  else if (a_inc == 1)
    for (; j + 8 <= k; j += 8) {
      const float8 w = vload8(0, br + j);
      for (uint i = 0; i < m; i++) acc[i] += w * vload8(0, av + (ulong)i * a_step + j);
    }
  for (uint i = 0; i < m; i++) {
    const float4 h = acc[i].lo + acc[i].hi;
    float s = (h.x + h.y) + (h.z + h.w);
    for (uint jj = j; jj < k; jj++) s += br[jj] * av[(ulong)i * a_step + (ulong)jj * a_inc];
    __global float *cp = c + c_off + (ulong)i * ldc + r;
    *cp = beta == 0.0f ? alpha * s : alpha * s + beta * *cp;
  }
}
