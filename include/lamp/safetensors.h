/* lamp: safetensors files (https://huggingface.co/docs/safetensors): a little-endian u64 header
 * length N, N bytes of JSON header, then the tensor bytes. The header maps each tensor name to
 * {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data section) and may
 * hold "__metadata__", a map of string to string.
 *
 * The reader parses the header only and keeps the file open; tensor bytes are read on request.
 * Every length, offset, count and dimension is checked against the file size and against
 * overflow before use, names are unique, tensors may not overlap, and each tensor's byte range
 * must equal its element count times its dtype size. A hostile or truncated file gives
 * LAMP_ERR_FORMAT (LAMP_ERR_IO when the file cannot be read) and a message naming the field.
 * lamp needs a little-endian host for tensor data (LAMP_ERR_UNSUPPORTED otherwise). */
#ifndef LAMP_SAFETENSORS_H
#define LAMP_SAFETENSORS_H

#include <stdint.h>

#include "lamp/export.h"
#include "lamp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LAMP_SAFETENSORS_MAX_DIMS 8
/* Largest header accepted, in bytes (as the reference implementation). */
#define LAMP_SAFETENSORS_MAX_HEADER (100u * 1024u * 1024u)

typedef enum lamp_st_dtype {
  LAMP_ST_BOOL = 0,
  LAMP_ST_U8,
  LAMP_ST_I8,
  LAMP_ST_F8_E4M3,
  LAMP_ST_F8_E5M2,
  LAMP_ST_I16,
  LAMP_ST_U16,
  LAMP_ST_F16,
  LAMP_ST_BF16,
  LAMP_ST_I32,
  LAMP_ST_U32,
  LAMP_ST_F32,
  LAMP_ST_I64,
  LAMP_ST_U64,
  LAMP_ST_F64,
} lamp_st_dtype;

/* The header's spelling ("F32") of a dtype; NULL for values outside the enum. */
LAMP_API const char *lamp_safetensors_dtype_name(lamp_st_dtype dtype);

/* The dtype whose header spelling is `name`, ignoring case; an unknown name is
 * LAMP_ERR_INVALID_ARGUMENT and leaves *out unchanged. */
LAMP_API lamp_status lamp_safetensors_dtype_from_name(const char *name, lamp_st_dtype *out);

/* Bytes per element (0 for values outside the enum). */
LAMP_API size_t lamp_safetensors_dtype_size(lamp_st_dtype dtype);

/* One entry of the tensor table. */
typedef struct lamp_st_tensor {
  const char *name;   /* UTF-8, NUL-terminated (names holding NUL are refused) */
  lamp_st_dtype dtype;
  int ndim;           /* 0 (a scalar) .. LAMP_SAFETENSORS_MAX_DIMS */
  uint64_t shape[LAMP_SAFETENSORS_MAX_DIMS]; /* as in the file: slowest first */
  uint64_t numel;     /* product of shape (1 for a scalar) */
  uint64_t offset;    /* absolute byte offset of the data in the file */
  uint64_t size;      /* bytes: numel * lamp_safetensors_dtype_size(dtype) */
} lamp_st_tensor;

typedef struct lamp_safetensors lamp_safetensors;

/* Opens `path` and parses its header. `ctx` only receives error messages and may be NULL. */
LAMP_API lamp_status lamp_safetensors_open(lamp_context *ctx, const char *path,
                                           lamp_safetensors **out);

/* Closes the file and frees the tables. NULL is accepted. */
LAMP_API void lamp_safetensors_release(lamp_safetensors *st);

/* The tensor table, in the order of the header. */
LAMP_API size_t lamp_safetensors_count(const lamp_safetensors *st);
LAMP_API const lamp_st_tensor *lamp_safetensors_tensors(const lamp_safetensors *st);

/* The tensor named `name`; LAMP_ERR_NOT_FOUND (with a message) when there is none. */
LAMP_API lamp_status lamp_safetensors_find(const lamp_safetensors *st, const char *name,
                                           const lamp_st_tensor **out);

/* Metadata pairs, in the order of the header. */
LAMP_API size_t lamp_safetensors_metadata_count(const lamp_safetensors *st);
LAMP_API lamp_status lamp_safetensors_metadata_at(const lamp_safetensors *st, size_t index,
                                                  const char **key, const char **value);

/* The value for `key`, or NULL when absent. */
LAMP_API const char *lamp_safetensors_metadata_get(const lamp_safetensors *st, const char *key);

/* 1 when every tensor has the checksum lamp's writer stores ("lamp.fnv1a64.<name>" metadata:
 * FNV-1a 64 of its bytes); files from other writers, or from lamp before checksums, have none.
 * read and upload check a tensor against its checksum when there is one: a mismatch is
 * LAMP_ERR_FORMAT saying the file is damaged. */
LAMP_API int lamp_safetensors_checksummed(const lamp_safetensors *st);

/* Copies the raw bytes of tensor `t` (from this reader's table) into `dst`; `size` must equal
 * t->size. Re-checks the file's size, so a file truncated since open is an error. */
LAMP_API lamp_status lamp_safetensors_read(lamp_safetensors *st, const lamp_st_tensor *t, void *dst,
                                           size_t size);

/* Reads tensor `t` into the device tensor `dst` (any strides), whose element count must equal
 * t->numel and whose dtype must be the same (F32 to LAMP_DTYPE_F32, F16 to LAMP_DTYPE_F16). */
LAMP_API lamp_status lamp_safetensors_upload(lamp_safetensors *st, const lamp_st_tensor *t,
                                             lamp_context *ctx, lamp_tensor *dst);

/* One f32 tensor to write: `ndim` dimensions, slowest first, data dense in that order. */
typedef struct lamp_st_entry {
  const char *name;
  int ndim; /* 0 .. LAMP_SAFETENSORS_MAX_DIMS */
  const uint64_t *shape;
  const float *data;
} lamp_st_entry;

/* Writes the tensors, in the given order, and the metadata pairs (`keys[i]` -> `values[i]`) as a
 * safetensors file, atomically (a temporary file renamed over `path`). The header is padded with
 * spaces to a multiple of 8 bytes. Names must be unique, non-empty and not "__metadata__".
 * Each tensor's checksum joins the metadata (see lamp_safetensors_checksummed); keys of the
 * caller's may not start with "lamp.fnv1a64.". */
LAMP_API lamp_status lamp_safetensors_write_f32(lamp_context *ctx, const char *path,
                                                const lamp_st_entry *tensors, size_t count,
                                                const char *const *keys, const char *const *values,
                                                size_t n_metadata);

#ifdef __cplusplus
}
#endif

#endif
