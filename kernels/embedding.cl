/* Token embeddings with a soft prompt prepended, and row gathers and scatters by index.
 * Offsets are in floats; matrices are dense row-major. */

/* x (B, P + T, C): in every sequence rows 0 .. P-1 are the prompt rows, row P + i is
 * table[ids[b, i]] for i < lengths[b], padding rows are zero. An id outside 0 .. V-1 (which
 * the host refuses before upload) reads as zero rather than out of bounds.
 * One work-item per element of x. */
__kernel void embedding_forward(__global float *x, ulong x_off, __global const float *table,
                                ulong table_off, __global const float *prompt, ulong prompt_off,
                                __global const int *ids, __global const int *lengths, uint batch,
                                uint tokens, uint prompt_rows, uint width, uint vocab) {
  const uint c = get_global_id(0), row = get_global_id(1);
  const uint seq = prompt_rows + tokens;
  if (c >= width || row >= batch * seq) return;
  const uint b = row / seq, t = row % seq;
  float v = 0.0f;
  if (t < prompt_rows) {
    v = prompt[prompt_off + (ulong)t * width + c];
  } else if ((int)(t - prompt_rows) < lengths[b]) {
    const int id = ids[(ulong)b * tokens + (t - prompt_rows)];
    if (id >= 0 && (uint)id < vocab) v = table[table_off + (ulong)id * width + c];
  }
  x[x_off + (ulong)row * width + c] = v;
}

/* dprompt (P, C) = sum over b of dx[b, p, c]: the prompt is shared by every sequence.
 * Overwrites dprompt. One work-item per element of dprompt. */
__kernel void embedding_backward(__global float *dprompt, ulong dp_off, __global const float *dx,
                                 ulong dx_off, uint batch, uint tokens, uint prompt_rows,
                                 uint width) {
  const uint c = get_global_id(0), p = get_global_id(1);
  if (c >= width || p >= prompt_rows) return;
  const ulong seq = prompt_rows + tokens;
  float acc = 0.0f;
  for (uint b = 0; b < batch; b++) acc += dx[dx_off + (b * seq + p) * width + c];
  dprompt[dp_off + (ulong)p * width + c] = acc;
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
