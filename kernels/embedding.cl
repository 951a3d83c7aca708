/* Token embeddings with a soft prompt prepended, and row gathers and scatters by index.
 * Offsets are in floats; matrices are dense row-major. */

/* x (P + B T, C), rows laid out as in attention.cl: the P prompt rows once, shared by every
 * sequence, then T rows per sequence, row P + b T + i holding table[ids[b, i]] for
 * i < lengths[b] and zeros for padding. An id outside 0 .. V-1 (which the host refuses before
 * upload) reads as zero rather than out of bounds. One work-item per element of x. */
__kernel void embedding_forward(__global float *x, ulong x_off, __global const float *table,
                                ulong table_off, __global const float *prompt, ulong prompt_off,
                                __global const int *ids, __global const int *lengths, uint batch,
                                uint tokens, uint prompt_rows, uint width, uint vocab) {
  const uint c = get_global_id(0), row = get_global_id(1);
  if (c >= width || row >= prompt_rows + batch * tokens) return;
  float v = 0.0f;
  if (row < prompt_rows) {
    v = prompt[prompt_off + (ulong)row * width + c];
  } else {
    const uint b = (row - prompt_rows) / tokens, t = (row - prompt_rows) % tokens;
    if ((int)t < lengths[b]) {
      const int id = ids[(ulong)b * tokens + t];
      if (id >= 0 && (uint)id < vocab) v = table[table_off + (ulong)id * width + c];
    }
  }
  x[x_off + (ulong)row * width + c] = v;
}

/* dprompt (P, C) = the prompt rows of dx: stored once, they already hold the gradient summed
 * over every sequence. Overwrites dprompt. One work-item per element of dprompt. */
__kernel void embedding_backward(__global float *dprompt, ulong dp_off, __global const float *dx,
                                 ulong dx_off, uint prompt_rows, uint width) {
  const uint c = get_global_id(0), p = get_global_id(1);
  if (c >= width || p >= prompt_rows) return;
  dprompt[dp_off + (ulong)p * width + c] = dx[dx_off + (ulong)p * width + c];
}

/* out (M, C) = src[idx[m], :]: token rows of an embedding table (verbaliser label words) or the
 * hidden rows at chosen positions. The host checks idx against the rows of src.
 * One work-item per element of out. */
__kernel void embedding_gather(__global float *out, ulong out_off, __global const float *src,
                               ulong src_off, __global const int *idx, uint rows, uint width) {
  const uint c = get_global_id(0), m = get_global_id(1);
  if (c >= width || m >= rows) return;
  out[out_off + (ulong)m * width + c] = src[src_off + (ulong)idx[m] * width + c];
}

/* dst[idx[m], :] = src[m, :], the backward of embedding_gather for distinct indices (checked on
 * the host), which makes a plain store race-free. Rows of dst not named keep their values. */
__kernel void embedding_scatter(__global float *dst, ulong dst_off, __global const float *src,
                                ulong src_off, __global const int *idx, uint rows, uint width) {
  const uint c = get_global_id(0), m = get_global_id(1);
  if (c >= width || m >= rows) return;
  dst[dst_off + (ulong)idx[m] * width + c] = src[src_off + (ulong)m * width + c];
}
