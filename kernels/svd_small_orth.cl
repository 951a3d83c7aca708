/* Completes the small SVD's singular vectors, in one work-group: the rows of X (l x l, row
 * stride l, from x_off in elements) are made orthonormal in order by classical Gram-Schmidt
 * twice. Rows from svd_jacobi are orthonormal to about sqrt(l) eps where sigma is well above
 * rounding, so this only polishes them; a row that loses more than half its norm (the vector of
 * a vanishing or zero sigma) is replaced by the unit vector e_c least represented in the rows
 * before it (smallest sum of squares of column c, lowest c among equals), then orthogonalised
 * and normalised. Its residual norm is then at least 1/sqrt(l). `h` (l floats at h_off) is
 * scratch. Every work-item runs the same barriers whatever the data. */
/* h[p] = <row p, row t> for p < t. */
static void project(__global const float *x, uint l, uint t, __global float *h) {
  for (uint p = get_local_id(0); p < t; p += LAMP_WG_SIZE) {
    float d = 0.0f;
    for (uint i = 0; i < l; i++) d += x[p * l + i] * x[t * l + i];
    h[p] = d;
  }
}

/* row t -= sum_p h[p] row p. */
static void subtract(__global float *x, uint l, uint t, __global const float *h) {
  for (uint i = get_local_id(0); i < l; i += LAMP_WG_SIZE) {
    float y = x[t * l + i];
    for (uint p = 0; p < t; p++) y -= h[p] * x[p * l + i];
    x[t * l + i] = y;
  }
}

/* Row t minus its projection on rows 0..t-1, twice. Written out without a loop around the
 * barriers: PoCL 3.1 skipped the work of a barrier loop nested in the row loop. */
static void cgs2_row(__global float *x, uint l, uint t, __global float *h) {
  project(x, l, t, h);
  barrier(CLK_GLOBAL_MEM_FENCE);
  subtract(x, l, t, h);
  barrier(CLK_GLOBAL_MEM_FENCE);
  project(x, l, t, h);
  barrier(CLK_GLOBAL_MEM_FENCE);
  subtract(x, l, t, h);
  barrier(CLK_GLOBAL_MEM_FENCE);
}

static float row_norm2(__global const float *xt, uint l, __local float *red) {
  float acc = 0.0f;
  for (uint i = get_local_id(0); i < l; i += LAMP_WG_SIZE) acc += xt[i] * xt[i];
  return lamp_wg_sum(red, acc);
}

__kernel __attribute__((reqd_work_group_size(LAMP_WG_SIZE, 1, 1)))
void svd_small_orth(__global float *buf, ulong x_off, ulong h_off, uint l) {
  __local float red[LAMP_WG_SIZE];
  __local uint ired[LAMP_WG_SIZE];
  __global float *x = buf + x_off, *h = buf + h_off;
  uint lid = get_local_id(0);
  for (uint t = 0; t < l; t++) {
    __global float *xt = x + t * l;
    cgs2_row(x, l, t, h);
    int replace = !(row_norm2(xt, l, red) >= 0.25f);
    /* argmin over columns of the squared column norms of rows 0..t-1 */
    float best = INFINITY;
    uint best_c = 0;
    for (uint c = lid; c < l; c += LAMP_WG_SIZE) {
      float w = 0.0f;
      for (uint p = 0; p < t; p++) w += x[p * l + c] * x[p * l + c];
      if (w < best) {
        best = w;
        best_c = c;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    red[lid] = best;
    ired[lid] = best_c;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = LAMP_WG_SIZE / 2; s > 0; s >>= 1) {
      if (lid < s && (red[lid + s] < red[lid] ||
                      (red[lid + s] == red[lid] && ired[lid + s] < ired[lid]))) {
        red[lid] = red[lid + s];
        ired[lid] = ired[lid + s];
      }
      barrier(CLK_LOCAL_MEM_FENCE);
    }
    uint e = ired[0];
    if (replace)
      for (uint i = lid; i < l; i += LAMP_WG_SIZE) xt[i] = i == e ? 1.0f : 0.0f;
    barrier(CLK_GLOBAL_MEM_FENCE);
    /* the replacement needs orthogonalising; a kept row only gets polished again */
    cgs2_row(x, l, t, h);
    float inv = 1.0f / sqrt(row_norm2(xt, l, red));
    for (uint i = lid; i < l; i += LAMP_WG_SIZE) xt[i] *= inv;
    barrier(CLK_GLOBAL_MEM_FENCE);
  }
}
