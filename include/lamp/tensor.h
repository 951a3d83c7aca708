/* lamp: tensors, a typed window onto an OpenCL buffer.
 *
 * Dimension 0 is the fastest: a row-major matrix of R rows and C columns has ne = {C, R} and
 * byte strides nb = {4, 4 * ld} for f32. Shapes in comments across lamp use the legend
 * B batch, T tokens, P prompt tokens, C width, H heads, L layers, V vocabulary, R rank,
 * listed slowest first, e.g. (T, C) is ne = {C, T}.
 *
 * A lamp_tensor is a plain value owned by the caller. Only a tensor made by
 * lamp_tensor_create owns its buffer; wrapped tensors and views never do, and must not outlive
 * the buffer they point into. Do not copy an owning tensor and release both copies. */
#ifndef LAMP_TENSOR_H
#define LAMP_TENSOR_H

#include <stddef.h>

#include "lamp/context.h"
#include "lamp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LAMP_MAX_DIMS 4

typedef enum lamp_dtype {
  LAMP_DTYPE_F32 = 0,
  LAMP_DTYPE_F16 = 1, /* storage only for now: upload, download and views */
} lamp_dtype;

typedef struct lamp_tensor {
  cl_mem buffer;             /* the OpenCL buffer holding element (0,0,0,0) */
  size_t offset;             /* byte offset of element (0,0,0,0) in buffer */
  lamp_dtype dtype;
  int ndim;                  /* 1..LAMP_MAX_DIMS; ne and nb past ndim are 1 and the extent */
  size_t ne[LAMP_MAX_DIMS];  /* elements along each dimension, dimension 0 fastest */
  size_t nb[LAMP_MAX_DIMS];  /* byte stride of each dimension */
  int owns_buffer;           /* set by lamp_tensor_create only */
} lamp_tensor;

/* Bytes per element of a dtype (4 for f32, 2 for f16). */
LAMP_API size_t lamp_dtype_size(lamp_dtype dtype);

/* Allocates a zero-initialised contiguous tensor of shape ne[0..ndim-1] on the context's device. */
LAMP_API lamp_status lamp_tensor_create(lamp_context *ctx, lamp_dtype dtype, int ndim,
                                        const size_t *ne, lamp_tensor *out);

/* Describes existing memory without owning it. `nb` NULL means contiguous. The buffer must be
 * large enough for every element the shape and strides reach (checked). */
LAMP_API lamp_status lamp_tensor_wrap(lamp_context *ctx, cl_mem buffer, size_t offset,
                                      lamp_dtype dtype, int ndim, const size_t *ne,
                                      const size_t *nb, lamp_tensor *out);

/* A view into `src`: starts `offset` bytes after src's first element, with its own shape and
 * strides (`nb` NULL means contiguous). Every element it reaches must lie inside src's buffer. */
LAMP_API lamp_status lamp_tensor_view(lamp_context *ctx, const lamp_tensor *src, size_t offset,
                                      int ndim, const size_t *ne, const size_t *nb,
                                      lamp_tensor *out);

/* Frees the buffer when the tensor owns it, and clears the descriptor. NULL is accepted. */
LAMP_API void lamp_tensor_release(lamp_tensor *t);

LAMP_API size_t lamp_tensor_numel(const lamp_tensor *t);

/* Nonzero when the elements are densely packed in dimension order. */
LAMP_API int lamp_tensor_is_contiguous(const lamp_tensor *t);

/* Copies `bytes` (which must equal numel * element size) from host memory, read as a dense
 * array in dimension order, into the tensor's elements, following its strides. Blocking. */
LAMP_API lamp_status lamp_tensor_upload(lamp_context *ctx, lamp_tensor *t, const void *host,
                                        size_t bytes);

/* The reverse of lamp_tensor_upload: the tensor's elements into a dense host array. Blocking. */
LAMP_API lamp_status lamp_tensor_download(lamp_context *ctx, const lamp_tensor *t, void *host,
                                          size_t bytes);

/* Sets every element of an f32 tensor (any strides) to `value`, with a kernel on the queue. */
LAMP_API lamp_status lamp_tensor_fill(lamp_context *ctx, lamp_tensor *t, float value);

/* Multiplies every element of an f32 tensor (any strides) by `alpha`, in place. */
LAMP_API lamp_status lamp_tensor_scale(lamp_context *ctx, lamp_tensor *t, float alpha);

#ifdef __cplusplus
}
#endif

#endif
