/* Tensors: descriptors over cl_mem, bounds checks, host transfers and fill. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

size_t lamp_dtype_size(lamp_dtype dtype) {
  switch (dtype) {
    case LAMP_DTYPE_F32: return 4;
    case LAMP_DTYPE_F16: return 2;
  }
  return 0;
}

size_t lamp_tensor_numel(const lamp_tensor *t) {
  if (!t) return 0;
  size_t n = 1;
  for (int i = 0; i < LAMP_MAX_DIMS; i++) n *= t->ne[i];
  return n;
}

int lamp_tensor_is_contiguous(const lamp_tensor *t) {
  size_t expect = lamp_dtype_size(t->dtype);
  for (int i = 0; i < LAMP_MAX_DIMS; i++) {
    if (t->ne[i] != 1 && t->nb[i] != expect) return 0;
    expect *= t->ne[i];
  }
  return 1;
}

/* Bytes from the first element to one past the last element the shape reaches. */
static size_t lamp__tensor_span(const lamp_tensor *t) {
  size_t span = lamp_dtype_size(t->dtype);
  for (int i = 0; i < LAMP_MAX_DIMS; i++) span += (t->ne[i] - 1) * t->nb[i];
  return span;
}

/* Fills ne/nb from the caller's arrays, with overflow and sanity checks. */
static lamp_status lamp__tensor_describe(lamp_context *ctx, lamp_tensor *t, lamp_dtype dtype,
                                         int ndim, const size_t *ne, const size_t *nb) {
  size_t es = lamp_dtype_size(dtype);
  if (!es) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "unknown dtype %d", (int)dtype);
  if (ndim < 1 || ndim > LAMP_MAX_DIMS || !ne)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "a tensor has 1 to %d dimensions, not %d",
                      LAMP_MAX_DIMS, ndim);
  t->dtype = dtype;
  t->ndim = ndim;
  size_t stride = es, total = es;
  for (int i = 0; i < LAMP_MAX_DIMS; i++) {
    size_t n = i < ndim ? ne[i] : 1;
    if (n == 0) return lamp__fail(ctx, LAMP_ERR_SHAPE, "dimension %d of a tensor is 0", i);
    t->ne[i] = n;
    t->nb[i] = (i < ndim && nb) ? nb[i] : stride;
    if (t->nb[i] % es != 0)
      return lamp__fail(ctx, LAMP_ERR_SHAPE, "stride %zu of dimension %d is not a multiple of "
                        "the element size %zu", t->nb[i], i, es);
    if (stride > SIZE_MAX / n || (n > 1 && t->nb[i] > SIZE_MAX / (n - 1)) ||
        total > SIZE_MAX - (n - 1) * t->nb[i])
      return lamp__fail(ctx, LAMP_ERR_SHAPE, "tensor shape overflows the address space");
    total += (n - 1) * t->nb[i];
    stride *= n;
  }
  return LAMP_OK;
}

const char *lamp__bytes_text(uint64_t bytes, char *buf, size_t size) {
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) {
    snprintf(buf, size, "%llu bytes", (unsigned long long)bytes);
    return buf;
  }
  double v = (double)bytes / 1024.0;
  size_t u = 0;
  while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
    v /= 1024.0;
    u++;
  }
  snprintf(buf, size, "%.1f %s (%llu bytes)", v, units[u], (unsigned long long)bytes);
  return buf;
}

lamp_status lamp__buffer_create(lamp_context *ctx, cl_mem_flags flags, size_t bytes, void *host,
                                const char *what, cl_mem *out) {
  *out = NULL;
  char need[64], most[64];
  if (ctx->info.max_alloc_bytes && bytes > ctx->info.max_alloc_bytes)
    return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "cannot allocate %s on the device (%s) for "
                      "%s: more than its largest allocation, %s",
                      lamp__bytes_text(bytes, need, sizeof(need)), ctx->info.name, what,
                      lamp__bytes_text(ctx->info.max_alloc_bytes, most, sizeof(most)));
  cl_int err = CL_SUCCESS;
  cl_mem b = clCreateBuffer(ctx->cl_ctx, flags, bytes, host, &err);
  if (err == CL_SUCCESS && !b) err = CL_MEM_OBJECT_ALLOCATION_FAILURE;
  if (err != CL_SUCCESS) {
    if (b) clReleaseMemObject(b);
    lamp_status st = lamp__status_from_cl(err);
    return lamp__fail(ctx, st == LAMP_ERR_OPENCL ? st : LAMP_ERR_OUT_OF_MEMORY,
                      "cannot allocate %s on the device (%s) for %s: %s",
                      lamp__bytes_text(bytes, need, sizeof(need)), ctx->info.name, what,
                      lamp_cl_error_name(err));
  }
  *out = b;
  return LAMP_OK;
}

lamp_status lamp_tensor_create(lamp_context *ctx, lamp_dtype dtype, int ndim, const size_t *ne,
                               lamp_tensor *out) {
  return lamp__tensor_create(ctx, dtype, ndim, ne, NULL, out);
}

lamp_status lamp__tensor_create(lamp_context *ctx, lamp_dtype dtype, int ndim, const size_t *ne,
                                const char *what, lamp_tensor *out) {
  if (!ctx || !out) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_tensor_create: NULL");
  memset(out, 0, sizeof(*out));
  lamp_tensor t;
  memset(&t, 0, sizeof(t));
  LAMP__TRY(lamp__tensor_describe(ctx, &t, dtype, ndim, ne, NULL));
  size_t bytes = lamp__tensor_span(&t);
  char shape[160];
  if (!what) {
    int at = snprintf(shape, sizeof(shape), "a tensor of ");
    for (int i = 0; i < ndim && at > 0 && (size_t)at < sizeof(shape); i++)
      at += snprintf(shape + at, sizeof(shape) - (size_t)at, "%s%zu", i ? " x " : "", ne[i]);
    if (at > 0 && (size_t)at < sizeof(shape))
      snprintf(shape + at, sizeof(shape) - (size_t)at, " %s", dtype == LAMP_DTYPE_F16 ? "f16"
                                                                                      : "f32");
    what = shape;
  }
  LAMP__TRY(lamp__buffer_create(ctx, CL_MEM_READ_WRITE, bytes, NULL, what, &t.buffer));
  const float zero = 0.0f;
  cl_int err = clEnqueueFillBuffer(ctx->queue, t.buffer, &zero,
                                   lamp_dtype_size(dtype) == 4 ? 4 : 2, 0, bytes, 0, NULL, NULL);
  if (err != CL_SUCCESS) {
    clReleaseMemObject(t.buffer);
    return lamp__fail(ctx, lamp__status_from_cl(err), "clearing %zu bytes on %s: %s", bytes,
                      ctx->info.name, lamp_cl_error_name(err));
  }
  t.owns_buffer = 1;
  *out = t;
  return LAMP_OK;
}

static lamp_status lamp__tensor_check_fits(lamp_context *ctx, const lamp_tensor *t) {
  size_t buf_size = 0;
  LAMP__CL(ctx, clGetMemObjectInfo(t->buffer, CL_MEM_SIZE, sizeof(buf_size), &buf_size, NULL));
  size_t span = lamp__tensor_span(t);
  if (t->offset > buf_size || span > buf_size - t->offset)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "tensor reaches byte %zu of a %zu-byte buffer",
                      t->offset + span, buf_size);
  if (t->offset % lamp_dtype_size(t->dtype) != 0)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "tensor offset %zu is not a multiple of the element "
                      "size", t->offset);
  return LAMP_OK;
}

lamp_status lamp_tensor_wrap(lamp_context *ctx, cl_mem buffer, size_t offset, lamp_dtype dtype,
                             int ndim, const size_t *ne, const size_t *nb, lamp_tensor *out) {
  if (!ctx || !buffer || !out)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_tensor_wrap: NULL argument");
  memset(out, 0, sizeof(*out));
  lamp_tensor t;
  memset(&t, 0, sizeof(t));
  LAMP__TRY(lamp__tensor_describe(ctx, &t, dtype, ndim, ne, nb));
  t.buffer = buffer;
  t.offset = offset;
  LAMP__TRY(lamp__tensor_check_fits(ctx, &t));
  *out = t;
  return LAMP_OK;
}

lamp_status lamp_tensor_view(lamp_context *ctx, const lamp_tensor *src, size_t offset, int ndim,
                             const size_t *ne, const size_t *nb, lamp_tensor *out) {
  if (!ctx || !src || !src->buffer || !out)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_tensor_view: NULL argument");
  if (src->offset > SIZE_MAX - offset)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "view offset overflows");
  return lamp_tensor_wrap(ctx, src->buffer, src->offset + offset, src->dtype, ndim, ne, nb, out);
}

void lamp_tensor_release(lamp_tensor *t) {
  if (!t) return;
  if (t->owns_buffer && t->buffer) clReleaseMemObject(t->buffer);
  memset(t, 0, sizeof(*t));
}

/* Byte offset, from the first element, of the element with dense index `i`. */
static size_t lamp__tensor_elem_offset(const lamp_tensor *t, size_t i) {
  size_t off = 0;
  for (int d = 0; d < LAMP_MAX_DIMS; d++) {
    off += (i % t->ne[d]) * t->nb[d];
    i /= t->ne[d];
  }
  return off;
}

static lamp_status lamp__tensor_check_transfer(lamp_context *ctx, const lamp_tensor *t,
                                               const void *host, size_t bytes) {
  if (!ctx || !t || !t->buffer || !host)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "tensor transfer: NULL argument");
  if (bytes != lamp_tensor_numel(t) * lamp_dtype_size(t->dtype))
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "tensor transfer of %zu bytes for a tensor of %zu "
                      "bytes", bytes, lamp_tensor_numel(t) * lamp_dtype_size(t->dtype));
  return LAMP_OK;
}

/* Strided transfers move the span the tensor covers in one read (and one write for uploads),
 * gathering or scattering on the host: two large copies beat one small copy per element. */
static lamp_status lamp__tensor_strided_transfer(lamp_context *ctx, const lamp_tensor *t,
                                                 unsigned char *host, int upload) {
  size_t span = lamp__tensor_span(t), es = lamp_dtype_size(t->dtype);
  unsigned char *stage = malloc(span);
  if (!stage) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory staging %zu bytes",
                                span);
  cl_int err = clEnqueueReadBuffer(ctx->queue, t->buffer, CL_TRUE, t->offset, span, stage, 0,
                                   NULL, NULL);
  if (err == CL_SUCCESS) {
    size_t n = lamp_tensor_numel(t);
    for (size_t i = 0; i < n; i++) {
      unsigned char *dev = stage + lamp__tensor_elem_offset(t, i);
      if (upload)
        memcpy(dev, host + i * es, es);
      else
        memcpy(host + i * es, dev, es);
    }
    if (upload)
      err = clEnqueueWriteBuffer(ctx->queue, t->buffer, CL_TRUE, t->offset, span, stage, 0, NULL,
                                 NULL);
  }
  free(stage);
  if (err != CL_SUCCESS)
    return lamp__fail(ctx, lamp__status_from_cl(err), "strided tensor %s: %s",
                      upload ? "upload" : "download", lamp_cl_error_name(err));
  return LAMP_OK;
}

lamp_status lamp_tensor_upload(lamp_context *ctx, lamp_tensor *t, const void *host, size_t bytes) {
  LAMP__TRY(lamp__tensor_check_transfer(ctx, t, host, bytes));
  if (!lamp_tensor_is_contiguous(t))
    return lamp__tensor_strided_transfer(ctx, t, (unsigned char *)host, 1);
  LAMP__CL(ctx, clEnqueueWriteBuffer(ctx->queue, t->buffer, CL_TRUE, t->offset, bytes, host, 0,
                                     NULL, NULL));
  return LAMP_OK;
}

lamp_status lamp_tensor_download(lamp_context *ctx, const lamp_tensor *t, void *host,
                                 size_t bytes) {
  LAMP__TRY(lamp__tensor_check_transfer(ctx, t, host, bytes));
  if (!lamp_tensor_is_contiguous(t)) return lamp__tensor_strided_transfer(ctx, t, host, 0);
  LAMP__CL(ctx, clEnqueueReadBuffer(ctx->queue, t->buffer, CL_TRUE, t->offset, bytes, host, 0,
                                    NULL, NULL));
  return LAMP_OK;
}

/* One strided elementwise kernel (tensor_fill, tensor_scale) over every element of `t`. */
static lamp_status lamp__tensor_map(lamp_context *ctx, lamp_tensor *t, const char *program,
                                    const char *kernel, float value) {
  if (!ctx || !t || !t->buffer)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s: NULL argument", kernel);
  if (t->dtype != LAMP_DTYPE_F32)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "%s supports f32 tensors only", kernel);
  cl_kernel k = NULL;
  LAMP__TRY(lamp__kernel(ctx, program, kernel, &k));
  cl_ulong args[9];
  args[0] = t->offset / 4;
  for (int d = 0; d < LAMP_MAX_DIMS; d++) {
    args[1 + d] = t->ne[d];
    args[5 + d] = t->nb[d] / 4;
  }
  LAMP__TRY(lamp__arg(ctx, k, 0, sizeof(cl_mem), &t->buffer));
  for (cl_uint i = 0; i < 9; i++) LAMP__TRY(lamp__arg(ctx, k, i + 1, sizeof(cl_ulong), &args[i]));
  LAMP__TRY(lamp__arg(ctx, k, 10, sizeof(float), &value));
  size_t global = lamp_tensor_numel(t);
  size_t local = 64;
  return lamp__launch(ctx, k, kernel, 1, &global, &local);
}

lamp_status lamp_tensor_fill(lamp_context *ctx, lamp_tensor *t, float value) {
  return lamp__tensor_map(ctx, t, "tensor_fill", "tensor_fill_f32", value);
}

lamp_status lamp_tensor_scale(lamp_context *ctx, lamp_tensor *t, float alpha) {
  return lamp__tensor_map(ctx, t, "tensor_scale", "tensor_scale_f32", alpha);
}
