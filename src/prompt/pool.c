/* Average pooling along the token axis (kernels/pool_avg.cl), forward and backward. */
#include <stdint.h>

#include "runtime/internal.h"
#include "lamp/prompt.h"

/* An f32 (B, T, C) tensor with offset and strides in floats, dimensions that fit the kernels'
 * 32-bit indices, and ne[3] == 1. */
static lamp_status lamp__pool_check(lamp_context *ctx, const lamp_tensor *t, const char *what) {
  if (!t || !t->buffer)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "average pooling: %s is NULL", what);
  if (t->dtype != LAMP_DTYPE_F32)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "average pooling: %s is not f32", what);
  if (t->ne[3] != 1 || t->offset % 4 || t->nb[0] % 4 || t->nb[1] % 4 || t->nb[2] % 4)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "average pooling: %s must be (B, T, C) with ne[3] = 1 "
                      "and 4-byte aligned offset and strides", what);
  for (int d = 0; d < 3; d++)
    if (t->ne[d] > UINT32_MAX)
      return lamp__fail(ctx, LAMP_ERR_SHAPE, "average pooling: dimension %d of %s is %zu, more "
                        "than 2^32 - 1", d, what, t->ne[d]);
  return LAMP_OK;
}

/* Checks that `small` (B, ceil(T / s), C) pairs with `big` (B, T, C). */
static lamp_status lamp__pool_shapes(lamp_context *ctx, const lamp_tensor *big,
                                     const char *big_name, const lamp_tensor *small,
                                     const char *small_name, size_t s) {
  LAMP__TRY(lamp__pool_check(ctx, big, big_name));
  LAMP__TRY(lamp__pool_check(ctx, small, small_name));
  if (s < 1 || s > UINT32_MAX)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "average pooling: window %zu (must be >= "
                      "1)", s);
  size_t rows = (big->ne[1] + s - 1) / s;
  if (small->ne[0] != big->ne[0] || small->ne[1] != rows || small->ne[2] != big->ne[2])
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "average pooling with window %zu: %s is (%zu, %zu, "
                      "%zu) (B, T, C), so %s must be (%zu, %zu, %zu), not (%zu, %zu, %zu)", s,
                      big_name, big->ne[2], big->ne[1], big->ne[0], small_name, big->ne[2], rows,
                      big->ne[0], small->ne[2], small->ne[1], small->ne[0]);
  return LAMP_OK;
}

/* Arguments 0..4 or 5..9 of both kernels: buffer, offset and three strides, in floats. */
static lamp_status lamp__pool_tensor_args(lamp_context *ctx, cl_kernel k, cl_uint first,
                                          const lamp_tensor *t) {
  cl_ulong v[4] = {t->offset / 4, t->nb[0] / 4, t->nb[1] / 4, t->nb[2] / 4};
  LAMP__TRY(lamp__arg(ctx, k, first, sizeof(cl_mem), &t->buffer));
  for (cl_uint i = 0; i < 4; i++)
    LAMP__TRY(lamp__arg(ctx, k, first + 1 + i, sizeof(cl_ulong), &v[i]));
  return LAMP_OK;
}

/* 64 work-items along C, fewer for narrow tensors so that most of a group has work. */
static size_t lamp__pool_local(size_t width) {
  size_t local = 1;
  while (local < 64 && local < width) local *= 2;
  return local;
}

static lamp_status lamp__pool_sizes(lamp_context *ctx, cl_kernel k, const lamp_tensor *big,
                                    size_t s) {
  /* a window past T pools as one of T does, and keeps the kernel's 32-bit sums from wrapping */
  size_t w = s < big->ne[1] ? s : big->ne[1] ? big->ne[1] : 1;
  cl_uint v[4] = {(cl_uint)big->ne[0], (cl_uint)big->ne[1], (cl_uint)big->ne[2], (cl_uint)w};
  for (cl_uint i = 0; i < 4; i++) LAMP__TRY(lamp__arg(ctx, k, 10 + i, sizeof(cl_uint), &v[i]));
  return LAMP_OK;
}

lamp_status lamp_pool_avg_forward(lamp_context *ctx, lamp_tensor *y, const lamp_tensor *x,
                                  size_t s) {
  if (!ctx) return LAMP_ERR_INVALID_ARGUMENT;
  LAMP__TRY(lamp__pool_shapes(ctx, x, "x", y, "y", s));
  cl_kernel k = NULL;
  LAMP__TRY(lamp__kernel(ctx, "pool_avg", "pool_avg_forward", &k));
  LAMP__TRY(lamp__pool_tensor_args(ctx, k, 0, x));
  LAMP__TRY(lamp__pool_tensor_args(ctx, k, 5, y));
  LAMP__TRY(lamp__pool_sizes(ctx, k, x, s));
  size_t global[3] = {y->ne[0], y->ne[1], y->ne[2]};
  size_t local[3] = {lamp__pool_local(y->ne[0]), 1, 1};
  return lamp__launch(ctx, k, "pool_avg_forward", 3, global, local);
}

lamp_status lamp_pool_avg_backward(lamp_context *ctx, lamp_tensor *dx, const lamp_tensor *dy,
                                   size_t s, int accumulate) {
  if (!ctx) return LAMP_ERR_INVALID_ARGUMENT;
  LAMP__TRY(lamp__pool_shapes(ctx, dx, "dx", dy, "dy", s));
  cl_kernel k = NULL;
  LAMP__TRY(lamp__kernel(ctx, "pool_avg", "pool_avg_backward", &k));
  LAMP__TRY(lamp__pool_tensor_args(ctx, k, 0, dx));
  LAMP__TRY(lamp__pool_tensor_args(ctx, k, 5, dy));
  LAMP__TRY(lamp__pool_sizes(ctx, k, dx, s));
  cl_int acc = accumulate ? 1 : 0;
  LAMP__TRY(lamp__arg(ctx, k, 14, sizeof(cl_int), &acc));
  size_t global[3] = {dx->ne[0], dx->ne[1], dx->ne[2]};
  size_t local[3] = {lamp__pool_local(dx->ne[0]), 1, 1};
  return lamp__launch(ctx, k, "pool_avg_backward", 3, global, local);
}
