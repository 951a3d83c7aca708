/* Causal grouped-query attention over the fused QKV buffer, tiled, with an online softmax.
 *
 * Sequence b is S = P + T positions long: P prefix positions shared by every sequence (the
 * soft prompt) and T of its own. The prefix is causal and comes first, so its rows are the same
 * in every sequence and are stored, computed and differentiated once: qkv (N, W) has
 * N = P + B T rows, position p of sequence b at row att_row(b, p). W = (H + 2 Hkv) D: query
 * heads, then key heads, then value heads, each D wide. Query head h reads key/value head
 * h / (H / Hkv), as Hugging Face's repeat_kv does. valid[b] is the number of real positions of
 * sequence b (prefix plus tokens, right-padded): key j is visible to query t when j <= t and
 * j < valid[b], and with a sliding window (window > 0: Mistral, Gemma's local layers) also
 * t - j < window, as Hugging Face's masks keep. Padding queries produce zero output and zero
 * gradient. The scores are scaled by `scale` (1 / sqrt(D), or the model's own), and with
 * ATT_SOFTCAP defined (Gemma 2) capped to ATT_SOFTCAP tanh(s / ATT_SOFTCAP) before the
 * softmax; the backward multiplies a capped score's gradient by the cap's derivative
 * 1 - (c / ATT_SOFTCAP)^2. A build define rather than an argument, so that the other models'
 * kernels stay as they were.
 *
 * Work-groups of ATT_TILE rows of one (sequence, head) stream the keys (or queries) through
 * local memory ATT_TILE at a time. The forward keeps a running max and sum per query, so no
 * (S, S) matrix exists anywhere; it saves the log-sum-exp (N, H) from which the backward
 * recomputes each probability exactly. Offsets are in floats.
 *
 * Two shapes of the same algorithm, chosen by the kernel profile (runtime/context.c):
 *  - CPU (LAMP_PROFILE_GPU 0): one work-item per row, groups of ATT_TILE = 16. A head's D floats
 *    are held as chunks of ATT_VEC (float8, zeros past D), so the dot products and updates over
 *    D compile to vector instructions within a work-item; CPU drivers do not vectorise the scalar
 *    loops across work-items when each item indexes private arrays. For the same reason the
 *    exponentials of a tile's 16 scores are taken as one float16: a vector exp costs a few times
 *    less per element than sixteen scalar ones.
 *  - GPU (LAMP_PROFILE_GPU 1): ATT_LANES work-items per row, ATT_ROWS rows per group (64 to 128
 *    items). The program is built for one head width ATT_DIM, and lane x holds dims
 *    x, x + ATT_LANES, ..., so every private array has ATT_DIM / ATT_LANES entries indexed by
 *    constants (registers, not spilled memory), the lanes of a row read consecutive words of
 *    local memory (no bank conflicts) and all rows read the same ones (broadcast). A score is the
 *    sum of its lanes' partial dot products, exchanged through local memory and added in the same
 *    order by every lane, so the lanes of a row agree bit for bit. ATT_KT keys (or queries) are
 *    staged per step; the host sizes it so that local memory stays within 32 KiB. */


#ifdef ATT_SOFTCAP
#define att_cap(s) (ATT_SOFTCAP * tanh((s) / ATT_SOFTCAP))
#define att_dcap(c) (1.0f - ((c) / ATT_SOFTCAP) * ((c) / ATT_SOFTCAP))
#else
#define att_cap(s) (s)
#define att_dcap(c) 1.0f
#endif

/* The first key query t sees (window 0: none), and one past the last query below qlen that
 * sees key j. max() of ints, for the reason given in attention_backward_kv. */
static uint att_first_key(uint t, uint window) {
  return window ? (uint)max((int)(t + 1) - (int)window, 0) : 0;
}

static uint att_query_end(uint j, uint window, uint qlen) {
  return window && j + window < qlen ? j + window : qlen;
}

#if LAMP_PROFILE_GPU

#define ATT_LD (ATT_DIM / ATT_LANES) /* dims per lane */
#define ATT_RL (ATT_ROWS * ATT_LANES) /* work-items per group */

static ulong att_row(uint b, uint p, uint prefix, uint tokens) {
  return p < prefix ? (ulong)p : (ulong)prefix + (ulong)b * tokens + (p - prefix);
}

#define ATT_SHARED_TILE(b, p0, prefix) ((b) > 0 && (p0) + ATT_ROWS <= (prefix))

/* The score of key (or query) jj for this item's row: its lanes' partials, in lane order. */
static float att_score(__local const float *part, uint jj, uint r) {
  float s = 0.0f;
  for (uint x = 0; x < ATT_LANES; x++) s += part[jj * ATT_RL + r * ATT_LANES + x];
  return s;
}

/* Stages rows j0 .. j0 + ATT_KT - 1 (those below `end`) of the D-wide block at column `col` of
 * `src` (row stride `width`) into dst (ATT_KT x ATT_DIM), times `mul`; zeros elsewhere. */
static void att_stage(__local float *dst, __global const float *src, uint col, uint width,
                      uint b, uint j0, uint end, uint prefix, uint tokens, float mul) {
  for (uint idx = get_local_id(0); idx < ATT_KT * ATT_DIM; idx += ATT_RL) {
    const uint jj = idx / ATT_DIM, d = idx % ATT_DIM, j = j0 + jj;
    dst[idx] = j < end ? src[att_row(b, j, prefix, tokens) * width + col + d] * mul : 0.0f;
  }
}

/* Global ((S rounded up to ATT_ROWS) ATT_LANES, H, B), local (ATT_RL, 1, 1). */
__kernel __attribute__((reqd_work_group_size(ATT_RL, 1, 1)))
void attention_forward(__global float *o, ulong o_off, __global float *lse, ulong lse_off,
                       __global const float *qkv, ulong qkv_off, __global const int *valid,
                       uint prefix, uint tokens, uint heads, uint kv_heads, uint dim,
                       float scale, uint window) {
  __local float ks[ATT_KT * ATT_DIM], vs[ATT_KT * ATT_DIM], part[ATT_KT * ATT_RL];
  float q[ATT_LD], acc[ATT_LD];
  const uint lid = get_local_id(0), r = lid / ATT_LANES, lane = lid % ATT_LANES;
  const uint h = get_global_id(1), b = get_global_id(2);
  const uint t0 = get_group_id(0) * ATT_ROWS, t = t0 + r;
  if (ATT_SHARED_TILE(b, t0, prefix)) return;
  const uint width = (heads + 2 * kv_heads) * dim, g = h / (heads / kv_heads);
  const uint len = (uint)valid[b];
  const int owner = b == 0 || t >= prefix, active = owner && t < len;
  const ulong row = att_row(b, t, prefix, tokens);
  __global const float *qkvb = qkv + qkv_off;
  for (uint i = 0; i < ATT_LD; i++) {
    q[i] = active ? qkvb[row * width + h * dim + lane + ATT_LANES * i] * scale : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  const uint kend = min(t0 + ATT_ROWS, len), kfirst = att_first_key(t, window);
  for (uint j0 = att_first_key(t0, window) / ATT_KT * ATT_KT; j0 < kend; j0 += ATT_KT) {
    att_stage(ks, qkvb, (heads + g) * dim, width, b, j0, kend, prefix, tokens, 1.0f);
    att_stage(vs, qkvb, (heads + kv_heads + g) * dim, width, b, j0, kend, prefix, tokens, 1.0f);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint jj = 0; jj < ATT_KT; jj++) {
      float s = 0.0f;
      for (uint i = 0; i < ATT_LD; i++) s += q[i] * ks[jj * ATT_DIM + lane + ATT_LANES * i];
      part[jj * ATT_RL + lid] = s;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    /* this row's keys among the staged ones: jf .. jn - 1 */
    const int jn = active ? min((int)ATT_KT, (int)(t + 1) - (int)j0) : 0;
    const int jf = max((int)kfirst - (int)j0, 0);
    if (jn > jf) {
      float mt = m;
      for (int jj = jf; jj < jn; jj++) mt = fmax(mt, att_cap(att_score(part, jj, r)));
      const float corr = exp(m - mt);
      l *= corr;
      for (uint i = 0; i < ATT_LD; i++) acc[i] *= corr;
      for (int jj = jf; jj < jn; jj++) {
        const float p = exp(att_cap(att_score(part, jj, r)) - mt);
        l += p;
        for (uint i = 0; i < ATT_LD; i++) acc[i] += p * vs[jj * ATT_DIM + lane + ATT_LANES * i];
      }
      m = mt;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (t >= prefix + tokens || !owner) return;
  const float inv = active ? 1.0f / l : 0.0f;
  for (uint i = 0; i < ATT_LD; i++)
    o[o_off + row * heads * dim + h * dim + lane + ATT_LANES * i] = acc[i] * inv;
  if (lane == 0) lse[lse_off + row * heads + h] = active ? m + log(l) : 0.0f;
}

/* Same launch shape as the forward. */
__kernel __attribute__((reqd_work_group_size(ATT_RL, 1, 1)))
void attention_backward_q(__global float *dqkv, ulong dqkv_off, __global float *delta,
                          ulong delta_off, __global const float *qkv, ulong qkv_off,
                          __global const float *o, ulong o_off, __global const float *dout,
                          ulong dout_off, __global const float *lse, ulong lse_off,
                          __global const int *valid, uint prefix, uint tokens, uint heads,
                          uint kv_heads, uint dim, float scale, uint window) {
  __local float ks[ATT_KT * ATT_DIM], vs[ATT_KT * ATT_DIM];
  __local float ps[ATT_KT * ATT_RL], pp[ATT_KT * ATT_RL];
  float q[ATT_LD], dov[ATT_LD], dq[ATT_LD];
  const uint lid = get_local_id(0), r = lid / ATT_LANES, lane = lid % ATT_LANES;
  const uint h = get_global_id(1), b = get_global_id(2);
  const uint t0 = get_group_id(0) * ATT_ROWS, t = t0 + r;
  if (ATT_SHARED_TILE(b, t0, prefix)) return;
  const uint width = (heads + 2 * kv_heads) * dim, g = h / (heads / kv_heads);
  const uint len = (uint)valid[b];
  const int owner = b == 0 || t >= prefix, active = owner && t < len;
  const ulong row = att_row(b, t, prefix, tokens);
  __global const float *qkvb = qkv + qkv_off;
  for (uint i = 0; i < ATT_LD; i++) {
    const uint d = lane + ATT_LANES * i;
    q[i] = active ? qkvb[row * width + h * dim + d] * scale : 0.0f;
    dov[i] = active ? dout[dout_off + row * heads * dim + h * dim + d] : 0.0f;
    dq[i] = 0.0f;
  }
  /* every lane sums the whole row in the same order: D reads instead of an exchange through
   * local memory (whose extra barrier before the key loop PoCL 3.1 miscompiles when a row has
   * several lanes: wrong gradients and a corrupted heap) */
  __global const float *dor = dout + dout_off + row * heads * dim + h * dim;
  __global const float *orow = o + o_off + row * heads * dim + h * dim;
  float dsum = 0.0f;
  for (uint d = 0; active && d < ATT_DIM; d++) dsum += dor[d] * orow[d];
  const float lt = active ? lse[lse_off + row * heads + h] : 0.0f;
  const uint kend = min(t0 + ATT_ROWS, len), kfirst = att_first_key(t, window);
  for (uint j0 = att_first_key(t0, window) / ATT_KT * ATT_KT; j0 < kend; j0 += ATT_KT) {
    att_stage(ks, qkvb, (heads + g) * dim, width, b, j0, kend, prefix, tokens, 1.0f);
    att_stage(vs, qkvb, (heads + kv_heads + g) * dim, width, b, j0, kend, prefix, tokens, 1.0f);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint jj = 0; jj < ATT_KT; jj++) {
      float s = 0.0f, dp = 0.0f;
      for (uint i = 0; i < ATT_LD; i++) {
        s += q[i] * ks[jj * ATT_DIM + lane + ATT_LANES * i];
        dp += dov[i] * vs[jj * ATT_DIM + lane + ATT_LANES * i];
      }
      ps[jj * ATT_RL + lid] = s;
      pp[jj * ATT_RL + lid] = dp;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const int jn = active ? min((int)ATT_KT, (int)(t + 1) - (int)j0) : 0;
    for (int jj = max((int)kfirst - (int)j0, 0); jj < jn; jj++) {
      const float c = att_cap(att_score(ps, jj, r));
      const float p = exp(c - lt) * (att_score(pp, jj, r) - dsum) * att_dcap(c);
      for (uint i = 0; i < ATT_LD; i++) dq[i] += p * ks[jj * ATT_DIM + lane + ATT_LANES * i];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (t >= prefix + tokens || !owner) return;
  for (uint i = 0; i < ATT_LD; i++)
    dqkv[dqkv_off + row * width + h * dim + lane + ATT_LANES * i] = dq[i] * scale;
  if (lane == 0) delta[delta_off + row * heads + h] = dsum;
}

/* Global ((S rounded up to ATT_ROWS) ATT_LANES, Hkv, B), local (ATT_RL, 1, 1). */
__kernel __attribute__((reqd_work_group_size(ATT_RL, 1, 1)))
void attention_backward_kv(__global float *dqkv, ulong dqkv_off, __global const float *qkv,
                           ulong qkv_off, __global const float *dout, ulong dout_off,
                           __global const float *lse, ulong lse_off, __global const float *delta,
                           ulong delta_off, __global const int *valid, uint batch,
                           uint prefix, uint tokens, uint heads, uint kv_heads, uint dim,
                           float scale, uint window) {
  __local float qs[ATT_KT * ATT_DIM], dos[ATT_KT * ATT_DIM], ls[ATT_KT], dls[ATT_KT];
  __local float ps[ATT_KT * ATT_RL], pp[ATT_KT * ATT_RL];
  float k[ATT_LD], v[ATT_LD], dk[ATT_LD], dv[ATT_LD];
  const uint lid = get_local_id(0), r = lid / ATT_LANES, lane = lid % ATT_LANES;
  const uint g = get_global_id(1), b = get_global_id(2);
  const uint j0 = get_group_id(0) * ATT_ROWS, j = j0 + r;
  if (ATT_SHARED_TILE(b, j0, prefix)) return;
  const uint width = (heads + 2 * kv_heads) * dim, group = heads / kv_heads;
  const uint len = (uint)valid[b];
  const int owner = b == 0 || j >= prefix, active = owner && j < len;
  const ulong row = att_row(b, j, prefix, tokens);
  const uint b_end = b == 0 && j0 < prefix ? batch : b + 1;
  __global const float *qkvb = qkv + qkv_off;
  for (uint i = 0; i < ATT_LD; i++) {
    const uint d = lane + ATT_LANES * i;
    k[i] = active ? qkvb[row * width + (heads + g) * dim + d] : 0.0f;
    v[i] = active ? qkvb[row * width + (heads + kv_heads + g) * dim + d] : 0.0f;
    dk[i] = 0.0f;
    dv[i] = 0.0f;
  }
  for (uint h = g * group; h < (g + 1) * group; h++) {
    uint bq = b, i0 = j0;
    while (bq < b_end) {
      const uint qlen = (uint)valid[bq];
      /* past the queries that the group's last key is seen by */
      if (i0 >= att_query_end(j0 + ATT_ROWS - 1, window, qlen)) {
        bq++;
        i0 = prefix;
        continue;
      }
      att_stage(qs, qkvb, h * dim, width, bq, i0, qlen, prefix, tokens, scale);
      att_stage(dos, dout + dout_off, h * dim, heads * dim, bq, i0, qlen, prefix, tokens, 1.0f);
      for (uint ii = get_local_id(0); ii < ATT_KT; ii += ATT_RL) {
        const uint i = i0 + ii;
        const ulong qr = att_row(bq, i, prefix, tokens);
        ls[ii] = i < qlen ? lse[lse_off + qr * heads + h] : 0.0f;
        dls[ii] = i < qlen ? delta[delta_off + qr * heads + h] : 0.0f;
      }
      barrier(CLK_LOCAL_MEM_FENCE);
      for (uint ii = 0; ii < ATT_KT; ii++) {
        float s = 0.0f, dp = 0.0f;
        for (uint i = 0; i < ATT_LD; i++) {
          s += qs[ii * ATT_DIM + lane + ATT_LANES * i] * k[i];
          dp += dos[ii * ATT_DIM + lane + ATT_LANES * i] * v[i];
        }
        ps[ii * ATT_RL + lid] = s;
        pp[ii * ATT_RL + lid] = dp;
      }
      barrier(CLK_LOCAL_MEM_FENCE);
      if (active && (bq == b || j < prefix)) {
        const uint iend = att_query_end(j, window, qlen);
        const uint in = (uint)clamp((int)iend - (int)i0, 0, (int)ATT_KT);
        const uint first = (uint)max((int)j - (int)i0, 0);
        for (uint ii = first; ii < in; ii++) {
          const float c = att_cap(att_score(ps, ii, r));
          const float p = exp(c - ls[ii]);
          const float dsc = p * (att_score(pp, ii, r) - dls[ii]) * att_dcap(c);
          for (uint i = 0; i < ATT_LD; i++) {
            dv[i] += p * dos[ii * ATT_DIM + lane + ATT_LANES * i];
            dk[i] += dsc * qs[ii * ATT_DIM + lane + ATT_LANES * i];
          }
        }
      }
      barrier(CLK_LOCAL_MEM_FENCE);
      i0 += ATT_KT;
    }
  }
  if (j >= prefix + tokens || !owner) return;
  for (uint i = 0; i < ATT_LD; i++) {
    const uint d = lane + ATT_LANES * i;
    dqkv[dqkv_off + row * width + (heads + g) * dim + d] = dk[i];
    dqkv[dqkv_off + row * width + (heads + kv_heads + g) * dim + d] = dv[i];
  }
}

#else /* the CPU profile */

/* The host builds a wider program (-DATT_MAX_DIM=256) for heads past 128 (Gemma's 256), with
 * tiles of 8 rows, so that a group's local tiles stay within 32 KiB. */
#ifndef ATT_MAX_DIM
#define ATT_MAX_DIM 128
#endif
#define ATT_VEC 8
#define ATT_CHUNKS (ATT_MAX_DIM / ATT_VEC)

typedef float8 attv;

#if ATT_MAX_DIM > 128
#define ATT_TILE 8
typedef float8 atts; /* one tile of scores */
#define att_loadt(p) vload8(0, p)
#define att_storet(x, p) vstore8(x, 0, p)
#else
#define ATT_TILE 16
typedef float16 atts;
#define att_loadt(p) vload16(0, p)
#define att_storet(x, p) vstore16(x, 0, p)
#endif

/* Chunk c of the D floats at p, zeros past D; and its store, dropping the zeros past D. */
static attv att_get(__global const float *p, uint c, uint dim) {
  return lamp_load8(p, c * ATT_VEC, dim);
}

static void att_put(__global float *p, attv x, uint c, uint dim) {
  lamp_store8(p, c * ATT_VEC, dim, x);
}

static float att_sum(attv x) {
  const float4 y = x.lo + x.hi;
  return (y.x + y.y) + (y.z + y.w);
}

#if ATT_MAX_DIM > 128
static float att_sumt(atts x) { return att_sum(x); }
#else
static float att_sumt(atts x) { return att_sum(x.lo + x.hi); }
#endif

static ulong att_row(uint b, uint p, uint prefix, uint tokens) {
  return p < prefix ? (ulong)p : (ulong)prefix + (ulong)b * tokens + (p - prefix);
}

/* Work-groups of sequences after the first whose positions all lie in the shared prefix have
 * nothing to do: the first sequence's groups cover those rows. */
#define ATT_SHARED_TILE(b, p0, prefix) ((b) > 0 && (p0) + ATT_TILE <= (prefix))

/* o (N, H D) and lse (N, H). Global (S rounded up to ATT_TILE, H, B), local (ATT_TILE, 1, 1). */
__kernel __attribute__((reqd_work_group_size(ATT_TILE, 1, 1)))
void attention_forward(__global float *o, ulong o_off, __global float *lse, ulong lse_off,
                       __global const float *qkv, ulong qkv_off, __global const int *valid,
                       uint prefix, uint tokens, uint heads, uint kv_heads, uint dim,
                       float scale, uint window) {
  __local attv ks[ATT_TILE * ATT_CHUNKS], vs[ATT_TILE * ATT_CHUNKS];
  attv q[ATT_CHUNKS], acc[ATT_CHUNKS];
  float sc[ATT_TILE];
  const uint t = get_global_id(0), h = get_global_id(1), b = get_global_id(2);
  const uint lid = get_local_id(0), t0 = get_group_id(0) * ATT_TILE;
  if (ATT_SHARED_TILE(b, t0, prefix)) return;
  const uint width = (heads + 2 * kv_heads) * dim, g = h / (heads / kv_heads);
  const uint len = (uint)valid[b];
  /* a prefix query belongs to the first sequence only */
  const int owner = b == 0 || t >= prefix, active = owner && t < len;
  const ulong row = att_row(b, t, prefix, tokens);
  const uint nc = (dim + ATT_VEC - 1) / ATT_VEC;
  for (uint c = 0; c < nc; c++) {
    q[c] = active ? att_get(qkv + qkv_off + row * width + h * dim, c, dim) * scale : (attv)0.0f;
    acc[c] = (attv)0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  const uint kend = min(t0 + ATT_TILE, len), kfirst = att_first_key(t, window);
  /* the tiles from the one holding the group's first row's first key */
  for (uint j0 = att_first_key(t0, window) / ATT_TILE * ATT_TILE; j0 < kend; j0 += ATT_TILE) {
    const uint j = j0 + lid;
    if (j < kend) {
      const ulong kr = qkv_off + att_row(b, j, prefix, tokens) * width;
      for (uint c = 0; c < nc; c++) {
        ks[lid * ATT_CHUNKS + c] = att_get(qkv + kr + (heads + g) * dim, c, dim);
        vs[lid * ATT_CHUNKS + c] = att_get(qkv + kr + (heads + kv_heads + g) * dim, c, dim);
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    /* this row's keys in the tile: jf .. jn - 1 */
    const int jn = active ? min((int)ATT_TILE, (int)(t + 1) - (int)j0) : 0;
    const int jf = max((int)kfirst - (int)j0, 0);
    if (jn > jf) {
      float mt = m;
      for (int jj = 0; jj < jf; jj++) sc[jj] = -INFINITY;
      for (int jj = jf; jj < jn; jj++) {
        attv s = (attv)0.0f;
        for (uint c = 0; c < nc; c++) s += q[c] * ks[jj * ATT_CHUNKS + c];
        sc[jj] = att_cap(att_sum(s));
        mt = fmax(mt, sc[jj]);
      }
      for (int jj = jn; jj < ATT_TILE; jj++) sc[jj] = -INFINITY;
      const atts p = exp(att_loadt(sc) - mt);
      att_storet(p, sc);
      const float corr = exp(m - mt);
      l = l * corr + att_sumt(p);
      for (uint c = 0; c < nc; c++) acc[c] *= corr;
      for (int jj = jf; jj < jn; jj++)
        for (uint c = 0; c < nc; c++) acc[c] += sc[jj] * vs[jj * ATT_CHUNKS + c];
      m = mt;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (t >= prefix + tokens || !owner) return;
  const float inv = active ? 1.0f / l : 0.0f;
  for (uint c = 0; c < nc; c++)
    att_put(o + o_off + row * heads * dim + h * dim, acc[c] * inv, c, dim);
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
                          __global const int *valid, uint prefix, uint tokens, uint heads,
                          uint kv_heads, uint dim, float scale, uint window) {
  __local attv ks[ATT_TILE * ATT_CHUNKS], vs[ATT_TILE * ATT_CHUNKS];
  attv q[ATT_CHUNKS], dov[ATT_CHUNKS], dq[ATT_CHUNKS];
  float sv[ATT_TILE], dpv[ATT_TILE];
  const uint t = get_global_id(0), h = get_global_id(1), b = get_global_id(2);
  const uint lid = get_local_id(0), t0 = get_group_id(0) * ATT_TILE;
  if (ATT_SHARED_TILE(b, t0, prefix)) return;
  const uint width = (heads + 2 * kv_heads) * dim, g = h / (heads / kv_heads);
  const uint len = (uint)valid[b];
  /* a prefix query belongs to the first sequence only */
  const int owner = b == 0 || t >= prefix, active = owner && t < len;
  const ulong row = att_row(b, t, prefix, tokens);
  const uint nc = (dim + ATT_VEC - 1) / ATT_VEC;
  attv dsv = (attv)0.0f;
  for (uint c = 0; c < nc; c++) {
    q[c] = active ? att_get(qkv + qkv_off + row * width + h * dim, c, dim) * scale : (attv)0.0f;
    dov[c] = active ? att_get(dout + dout_off + row * heads * dim + h * dim, c, dim) : (attv)0.0f;
    dsv += active ? dov[c] * att_get(o + o_off + row * heads * dim + h * dim, c, dim)
                  : (attv)0.0f;
    dq[c] = (attv)0.0f;
  }
  const float dsum = att_sum(dsv);
  const float lt = active ? lse[lse_off + row * heads + h] : 0.0f;
  const uint kend = min(t0 + ATT_TILE, len), kfirst = att_first_key(t, window);
  /* the tiles from the one holding the group's first row's first key */
  for (uint j0 = att_first_key(t0, window) / ATT_TILE * ATT_TILE; j0 < kend; j0 += ATT_TILE) {
    const uint j = j0 + lid;
    if (j < kend) {
      const ulong kr = qkv_off + att_row(b, j, prefix, tokens) * width;
      for (uint c = 0; c < nc; c++) {
        ks[lid * ATT_CHUNKS + c] = att_get(qkv + kr + (heads + g) * dim, c, dim);
        vs[lid * ATT_CHUNKS + c] = att_get(qkv + kr + (heads + kv_heads + g) * dim, c, dim);
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const int jn = active ? min((int)ATT_TILE, (int)(t + 1) - (int)j0) : 0;
    const int jf = max((int)kfirst - (int)j0, 0);
    if (jn > jf) {
      for (int jj = 0; jj < jf; jj++) {
        sv[jj] = -INFINITY;
        dpv[jj] = 0.0f;
      }
      for (int jj = jf; jj < jn; jj++) {
        attv s = (attv)0.0f, dp = (attv)0.0f;
        for (uint c = 0; c < nc; c++) {
          s += q[c] * ks[jj * ATT_CHUNKS + c];
          dp += dov[c] * vs[jj * ATT_CHUNKS + c];
        }
        sv[jj] = att_cap(att_sum(s));
        dpv[jj] = (att_sum(dp) - dsum) * att_dcap(sv[jj]);
      }
      for (int jj = jn; jj < ATT_TILE; jj++) {
        sv[jj] = -INFINITY;
        dpv[jj] = 0.0f;
      }
      att_storet(exp(att_loadt(sv) - lt) * att_loadt(dpv), sv);
      for (int jj = jf; jj < jn; jj++)
        for (uint c = 0; c < nc; c++) dq[c] += sv[jj] * ks[jj * ATT_CHUNKS + c];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (t >= prefix + tokens || !owner) return;
  for (uint c = 0; c < nc; c++)
    att_put(dqkv + dqkv_off + row * width + h * dim, dq[c] * scale, c, dim);
  delta[delta_off + row * heads + h] = dsum;
}

/* The key/value part: for key j of KV head g, summed over the query heads of its group and the
 * queries t >= j (and t < j + window with a window), dv_j = sum p_tj dO_t and
 * dk_j = scale * sum p_tj (dO_t . v_j - delta_t) q_t, into the key and value columns of dqkv, overwriting them. A prefix key is seen by the
 * queries of every sequence, a sequence's own key by its own queries. Needs delta from
 * attention_backward_q. Global (S rounded up to ATT_TILE, Hkv, B), local (ATT_TILE, 1, 1). */
__kernel __attribute__((reqd_work_group_size(ATT_TILE, 1, 1)))
void attention_backward_kv(__global float *dqkv, ulong dqkv_off, __global const float *qkv,
                           ulong qkv_off, __global const float *dout, ulong dout_off,
                           __global const float *lse, ulong lse_off, __global const float *delta,
                           ulong delta_off, __global const int *valid, uint batch,
                           uint prefix, uint tokens, uint heads, uint kv_heads, uint dim,
                           float scale, uint window) {
  __local attv qs[ATT_TILE * ATT_CHUNKS], dos[ATT_TILE * ATT_CHUNKS];
  __local float ls[ATT_TILE], dls[ATT_TILE];
  attv k[ATT_CHUNKS], v[ATT_CHUNKS], dk[ATT_CHUNKS], dv[ATT_CHUNKS];
  float pv[ATT_TILE], dsv[ATT_TILE];
  const uint j = get_global_id(0), g = get_global_id(1), b = get_global_id(2);
  const uint lid = get_local_id(0), j0 = get_group_id(0) * ATT_TILE;
  if (ATT_SHARED_TILE(b, j0, prefix)) return;
  const uint width = (heads + 2 * kv_heads) * dim, group = heads / kv_heads;
  const uint len = (uint)valid[b];
  const int owner = b == 0 || j >= prefix, active = owner && j < len;
  const ulong row = att_row(b, j, prefix, tokens);
  /* the first sequence's groups that hold prefix keys also visit the other sequences' own
   * queries (positions from P on: their prefix queries are the first sequence's) */
  const uint b_end = b == 0 && j0 < prefix ? batch : b + 1;
  const uint nc = (dim + ATT_VEC - 1) / ATT_VEC;
  for (uint c = 0; c < nc; c++) {
    k[c] = active ? att_get(qkv + qkv_off + row * width + (heads + g) * dim, c, dim) : (attv)0.0f;
    v[c] = active ? att_get(qkv + qkv_off + row * width + (heads + kv_heads + g) * dim, c, dim)
                  : (attv)0.0f;
    dk[c] = (attv)0.0f;
    dv[c] = (attv)0.0f;
  }
  for (uint h = g * group; h < (g + 1) * group; h++) {
    /* one loop over the query tiles of sequences b .. b_end-1 (one level of barrier loops
     * fewer, which PoCL compiles reliably): sequence b's from j0, the others' from P */
    uint bq = b, i0 = j0;
    while (bq < b_end) {
      const uint qlen = (uint)valid[bq];
      /* past the queries that the group's last key is seen by */
      if (i0 >= att_query_end(j0 + ATT_TILE - 1, window, qlen)) {
        bq++;
        i0 = prefix;
        continue;
      }
      const uint i = i0 + lid;
      if (i < qlen) {
        const ulong qr = att_row(bq, i, prefix, tokens);
        for (uint c = 0; c < nc; c++) {
          qs[lid * ATT_CHUNKS + c] = att_get(qkv + qkv_off + qr * width + h * dim, c, dim) * scale;
          dos[lid * ATT_CHUNKS + c] = att_get(dout + dout_off + qr * heads * dim + h * dim, c, dim);
        }
        ls[lid] = lse[lse_off + qr * heads + h];
        dls[lid] = delta[delta_off + qr * heads + h];
      }
      barrier(CLK_LOCAL_MEM_FENCE);
      /* another sequence's queries reach only prefix keys */
      if (active && (bq == b || j < prefix)) {
        /* max() of ints, not `j > i0 ? j - i0 : 0`: compilers fold that select into a saturating
         * subtraction intrinsic (llvm.usub.sat) that not every OpenCL implementation accepts */
        const uint iend = att_query_end(j, window, qlen);
        const uint in = (uint)clamp((int)iend - (int)i0, 0, (int)ATT_TILE);
        const uint first = (uint)max((int)j - (int)i0, 0);
        for (uint ii = 0; ii < ATT_TILE; ii++) {
          pv[ii] = -INFINITY;
          dsv[ii] = 0.0f;
        }
        for (uint ii = first; ii < in; ii++) {
          attv s = (attv)0.0f, dp = (attv)0.0f;
          for (uint c = 0; c < nc; c++) {
            s += qs[ii * ATT_CHUNKS + c] * k[c];
            dp += dos[ii * ATT_CHUNKS + c] * v[c];
          }
          const float c = att_cap(att_sum(s));
          pv[ii] = c - ls[ii];
          dsv[ii] = (att_sum(dp) - dls[ii]) * att_dcap(c);
        }
        const atts p = exp(att_loadt(pv));
        att_storet(p, pv);
        att_storet(p * att_loadt(dsv), dsv);
        for (uint ii = first; ii < in; ii++)
          for (uint c = 0; c < nc; c++) {
            dv[c] += pv[ii] * dos[ii * ATT_CHUNKS + c];
            dk[c] += dsv[ii] * qs[ii * ATT_CHUNKS + c];
          }
      }
      barrier(CLK_LOCAL_MEM_FENCE);
      i0 += ATT_TILE;
    }
  }
  if (j >= prefix + tokens || !owner) return;
  for (uint c = 0; c < nc; c++) {
    att_put(dqkv + dqkv_off + row * width + (heads + g) * dim, dk[c], c, dim);
    att_put(dqkv + dqkv_off + row * width + (heads + kv_heads + g) * dim, dv[c], c, dim);
  }
}

#endif
