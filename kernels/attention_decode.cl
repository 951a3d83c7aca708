/* Causal grouped-query attention of a few new queries against a key/value cache: the
 * generation step, where the keys and values of every earlier position are kept and only the
 * new rows are computed.
 *
 * Query t (0 .. n-1) sits at position p0 + t and sees cached positions 0 .. p0 + t, its own
 * included (the caller has written the new rows' keys and values into the cache first); with
 * a sliding window (window > 0: Mistral's layers, Gemma's local ones) only the last `window`
 * of them, p0 + t - window + 1 .. p0 + t, as Hugging Face's masks keep. The
 * queries are the first H heads of rows of stride q_stride (the fused QKV rows, after RoPE);
 * the cache row of position j holds Hkv key heads, then Hkv value heads (stride kv_stride).
 * Query head h reads KV head h / (H / Hkv). o (n, H D). Scores are scaled by `scale` and,
 * with ATD_SOFTCAP defined (Gemma 2), capped to ATD_SOFTCAP tanh(s / ATD_SOFTCAP). The host
 * builds a wider program (-DATD_MAX_DIM=256) for heads past 128. Offsets are in floats.
 *
 * One work-item per (query, head) streams the keys with an online softmax, a head's D floats as
 * float8 chunks (zeros past D) as in attention.cl's CPU shape. With one new query a step has
 * only H items; that is little for a GPU but the step's cost lies in its GEMMs over the
 * weights, not here. No local memory and no barriers. */

#define ATD_VEC 8
#ifndef ATD_MAX_DIM
#define ATD_MAX_DIM 128
#endif
#define ATD_CHUNKS (ATD_MAX_DIM / ATD_VEC)
#ifdef ATD_SOFTCAP
#define atd_cap(s) (ATD_SOFTCAP * tanh((s) / ATD_SOFTCAP))
#else
#define atd_cap(s) (s)
#endif

static float atd_sum(float8 x) {
  const float4 y = x.lo + x.hi;
  return (y.x + y.y) + (y.z + y.w);
}

/* Global (n, H), any local size. */
__kernel void attention_decode(__global float *o, ulong o_off, __global const float *q,
                               ulong q_off, uint q_stride, __global const float *kv, ulong kv_off,
                               uint kv_stride, uint queries, uint pos0, uint heads,
                               uint kv_heads, uint dim, float scale, uint window) {
  const uint t = get_global_id(0), h = get_global_id(1);
  if (t >= queries || h >= heads) return;
  const uint g = h / (heads / kv_heads), nc = (dim + ATD_VEC - 1) / ATD_VEC;
  float8 qv[ATD_CHUNKS], acc[ATD_CHUNKS];
  __global const float *qr = q + q_off + (ulong)t * q_stride + (ulong)h * dim;
  for (uint c = 0; c < nc; c++) {
    qv[c] = lamp_load8(qr, c * ATD_VEC, dim) * scale;
    acc[c] = (float8)0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  const uint end = pos0 + t + 1, start = window && end > window ? end - window : 0;
  for (uint j = start; j < end; j++) {
    __global const float *kr = kv + kv_off + (ulong)j * kv_stride + (ulong)g * dim;
    __global const float *vr = kr + (ulong)kv_heads * dim;
    float8 s8 = (float8)0.0f;
    for (uint c = 0; c < nc; c++) s8 += qv[c] * lamp_load8(kr, c * ATD_VEC, dim);
    const float s = atd_cap(atd_sum(s8)), mt = fmax(m, s);
    const float corr = exp(m - mt), p = exp(s - mt);
    l = l * corr + p;
    for (uint c = 0; c < nc; c++) acc[c] = acc[c] * corr + p * lamp_load8(vr, c * ATD_VEC, dim);
    m = mt;
  }
  const float inv = 1.0f / l;
  __global float *orow = o + o_off + (ulong)t * heads * dim + (ulong)h * dim;
  for (uint c = 0; c < nc; c++) lamp_store8(orow, c * ATD_VEC, dim, acc[c] * inv);
}
