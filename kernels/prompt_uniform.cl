/* Uniform initial values from a counter-based generator, so that every device yields the same
 * bits: element i of the stream (seed) is splitmix64(seed + (first + i + 1) * golden), whose top
 * 24 bits give u in [0, 1); x = lo + (hi - lo) * u. `first` lets several tensors share one stream
 * without overlapping. */

static ulong uniform_mix(ulong z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
  return z ^ (z >> 31);
}

__kernel void prompt_uniform(__global float *x, ulong off, ulong n, ulong seed, ulong first,
                             float lo, float hi) {
  const ulong i = get_global_id(0);
  if (i >= n) return;
  ulong z = uniform_mix(seed + (first + i + 1) * 0x9e3779b97f4a7c15UL);
  float u = (float)(z >> 40) * (1.0f / 16777216.0f);
  x[off + i] = lo + (hi - lo) * u;
}
