/* Prepended to every lamp program (runtime/program.c), as CLBlast prepends its common source:
 * what several kernels share lives here once. Everything is static, so a program that uses none
 * of it carries nothing. Defines from the runtime: LAMP_WG_SIZE (a power of two, at most 256,
 * at most the device's work-group limit), LAMP_TILE, and the kernel profile's
 * LAMP_PROFILE_GPU (0 or 1) with its tile and vector widths (runtime/context.c). */

#define LAMP_CAT_(a, b) a##b
#define LAMP_CAT(a, b) LAMP_CAT_(a, b)

/* The sum of x over a work-group of LAMP_WG_SIZE items, returned to every item; `red` holds
 * LAMP_WG_SIZE floats. Every item must call it. The first barrier fences global memory as well
 * as local: the one-work-group kernels read a global value before the sum that one item
 * overwrites after it, and only a global fence orders those accesses between work-items. */
static float lamp_wg_sum(__local float *red, float x) {
  const uint lid = get_local_id(0);
  barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
  red[lid] = x;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint s = LAMP_WG_SIZE / 2; s > 0; s >>= 1) {
    if (lid < s) red[lid] += red[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  return red[0];
}

/* Vector loads of row[c ..] with zeros from column d on, and stores that leave columns from d on
 * alone: the tile loads of the attention and prompt kernels. */
static float4 lamp_load4(__global const float *row, uint c, uint d) {
  if (c + 4 <= d) return vload4(0, row + c);
  float t[4];
  for (uint i = 0; i < 4; i++) t[i] = c + i < d ? row[c + i] : 0.0f;
  return vload4(0, t);
}

static float8 lamp_load8(__global const float *row, uint c, uint d) {
  if (c + 8 <= d) return vload8(0, row + c);
  float t[8];
  for (uint i = 0; i < 8; i++) t[i] = c + i < d ? row[c + i] : 0.0f;
  return vload8(0, t);
}

static float16 lamp_load16(__global const float *row, uint c, uint d) {
  if (c + 16 <= d) return vload16(0, row + c);
  float t[16];
  for (uint i = 0; i < 16; i++) t[i] = c + i < d ? row[c + i] : 0.0f;
  return vload16(0, t);
}

static void lamp_store4(__global float *row, uint c, uint d, float4 x) {
  if (c + 4 <= d) {
    vstore4(x, 0, row + c);
    return;
  }
  float t[4];
  vstore4(x, 0, t);
  for (uint i = 0; i < 4 && c + i < d; i++) row[c + i] = t[i];
}

static void lamp_store8(__global float *row, uint c, uint d, float8 x) {
  if (c + 8 <= d) {
    vstore8(x, 0, row + c);
    return;
  }
  float t[8];
  vstore8(x, 0, t);
  for (uint i = 0; i < 8 && c + i < d; i++) row[c + i] = t[i];
}

static void lamp_store16(__global float *row, uint c, uint d, float16 x) {
  if (c + 16 <= d) {
    vstore16(x, 0, row + c);
    return;
  }
  float t[16];
  vstore16(x, 0, t);
  for (uint i = 0; i < 16 && c + i < d; i++) row[c + i] = t[i];
}
