/* One fused AdamW step (Loshchilov and Hutter; PyTorch's update order) over several tensors at
 * once. Tensor s (dimension 1 of the launch) is the dense range seg[4s+3] floats long starting at
 * seg[4s] in val, seg[4s+1] in grad and seg[4s+2] in the moment buffers (m at that offset, v at
 * v_base past it); hp[2s] is its learning rate and hp[2s+1] its weight decay.
 * With lr = hp[2s] * factor:
 *   p -= lr wd p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 *   p -= lr (m / bc1) / (sqrt(v / bc2) + eps),  bc1 = 1 - b1^t, bc2 = 1 - b2^t.
 * The gradient is read only. */

__kernel void adamw_step(__global float *val, __global const float *grad, __global float *mom,
                         ulong v_base, __global const ulong *seg, __global const float *hp,
                         float factor, float b1, float b2, float eps, float bc1, float bc2) {
  const ulong i = get_global_id(0);
  const uint t = get_global_id(1);
  if (i >= seg[4 * t + 3]) return;
  const float lr = hp[2 * t] * factor, wd = hp[2 * t + 1];
  const ulong pi = seg[4 * t] + i, gi = seg[4 * t + 1] + i, mi = seg[4 * t + 2] + i;
  const float g = grad[gi];
  float p = val[pi];
  float m = b1 * mom[mi] + (1.0f - b1) * g;
  float v = b2 * mom[v_base + mi] + (1.0f - b2) * g * g;
  p -= lr * wd * p;
  p -= lr * (m / bc1) / (sqrt(v / bc2) + eps);
  mom[mi] = m;
  mom[v_base + mi] = v;
  val[pi] = p;
}
