/* lamp: GGUF model files (versions 2 and 3): metadata, tensor table, and tensors dequantised
 * to f32 on the host.
 *
 * The file is mapped read-only with mmap (or read whole into memory where mmap fails), so
 * opening is cheap and tensors are decoded straight from the page cache. The file must not be
 * changed while it is open. Opening validates the whole layout: every count, string length,
 * dimension, type, offset and size is checked against the file's size and against overflow,
 * so after a successful open every accessor reads inside the file.
 *
 * Errors: every function returns a lamp_status, and the message (naming the file, and the
 * offset, key or tensor at fault) is recorded in `ctx` for lamp_context_error, as by every lamp
 * call. `ctx` may be NULL everywhere: then only the status comes back.
 *
 * Shapes: ne[0] is the fastest dimension, as in lamp_tensor and in GGUF itself; a weight stored
 * as a row-major (R x C) matrix has ne = {C, R}. */
#ifndef LAMP_GGUF_H
#define LAMP_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "lamp/context.h"
#include "lamp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lamp_gguf lamp_gguf;

/* Metadata value types, numbered as in the file. */
typedef enum lamp_gguf_type {
  LAMP_GGUF_UINT8 = 0,
  LAMP_GGUF_INT8 = 1,
  LAMP_GGUF_UINT16 = 2,
  LAMP_GGUF_INT16 = 3,
  LAMP_GGUF_UINT32 = 4,
  LAMP_GGUF_INT32 = 5,
  LAMP_GGUF_FLOAT32 = 6,
  LAMP_GGUF_BOOL = 7,
  LAMP_GGUF_STRING = 8,
  LAMP_GGUF_ARRAY = 9,
  LAMP_GGUF_UINT64 = 10,
  LAMP_GGUF_INT64 = 11,
  LAMP_GGUF_FLOAT64 = 12,
} lamp_gguf_type;

/* Tensor element types, numbered as in ggml. lamp knows the block layout (and so the size) of
 * every type listed; it dequantises those marked "decoded" (lamp_gguf_type_decodable). */
typedef enum lamp_ggml_type {
  LAMP_GGML_F32 = 0,   /* decoded */
  LAMP_GGML_F16 = 1,   /* decoded */
  LAMP_GGML_Q4_0 = 2,  /* decoded */
  LAMP_GGML_Q4_1 = 3,  /* decoded */
  LAMP_GGML_Q5_0 = 6,  /* decoded */
  LAMP_GGML_Q5_1 = 7,  /* decoded */
  LAMP_GGML_Q8_0 = 8,  /* decoded */
  LAMP_GGML_Q8_1 = 9,
  LAMP_GGML_Q2_K = 10,
  LAMP_GGML_Q3_K = 11,
  LAMP_GGML_Q4_K = 12, /* decoded */
  LAMP_GGML_Q5_K = 13, /* decoded */
  LAMP_GGML_Q6_K = 14, /* decoded */
  LAMP_GGML_Q8_K = 15,
  LAMP_GGML_IQ2_XXS = 16,
  LAMP_GGML_IQ2_XS = 17,
  LAMP_GGML_IQ3_XXS = 18,
  LAMP_GGML_IQ1_S = 19,
  LAMP_GGML_IQ4_NL = 20,
  LAMP_GGML_IQ3_S = 21,
  LAMP_GGML_IQ2_S = 22,
  LAMP_GGML_IQ4_XS = 23,
  LAMP_GGML_I8 = 24,
  LAMP_GGML_I16 = 25,
  LAMP_GGML_I32 = 26,
  LAMP_GGML_I64 = 27,
  LAMP_GGML_F64 = 28,
  LAMP_GGML_IQ1_M = 29,
  LAMP_GGML_BF16 = 30, /* decoded */
  LAMP_GGML_TQ1_0 = 34,
  LAMP_GGML_TQ2_0 = 35,
  LAMP_GGML_MXFP4 = 39,
} lamp_ggml_type;

/* Limits applied while opening; larger values are LAMP_ERR_FORMAT. */
#define LAMP_GGUF_MAX_DIMS 4
#define LAMP_GGUF_MAX_NAME 256           /* bytes in a tensor name */
#define LAMP_GGUF_MAX_KEY 65535          /* bytes in a metadata key */
#define LAMP_GGUF_MAX_TENSORS (1u << 20)
#define LAMP_GGUF_MAX_KEYS (1u << 20)
#define LAMP_GGUF_MAX_ALIGNMENT (1u << 24)

/* One entry of the tensor table. Pointers stay valid until lamp_gguf_release. */
typedef struct lamp_gguf_tensor_info {
  const char *name;             /* NUL-terminated */
  uint32_t n_dims;              /* 1..LAMP_GGUF_MAX_DIMS (0 for a scalar) */
  uint64_t ne[LAMP_GGUF_MAX_DIMS]; /* elements per dimension, ne[0] fastest; 1 past n_dims */
  lamp_ggml_type type;
  uint64_t numel;               /* product of ne */
  uint64_t offset;              /* absolute byte offset of the data in the file */
  uint64_t size;                /* bytes of data */
  const void *data;             /* the mapped data (size bytes) */
} lamp_gguf_tensor_info;

/* One metadata entry. For arrays, `type` is LAMP_GGUF_ARRAY and `array_type`/`count` describe
 * the elements (arrays of arrays are refused at open). */
typedef struct lamp_gguf_key_info {
  const char *key;              /* NUL-terminated */
  lamp_gguf_type type;
  lamp_gguf_type array_type;    /* element type when type is LAMP_GGUF_ARRAY */
  uint64_t count;               /* elements when type is LAMP_GGUF_ARRAY, else 1 */
} lamp_gguf_key_info;

/* Opens and validates a GGUF file. On failure *out is NULL and the message, "GGUF <path>: "
 * and what is wrong (with its byte offset where it has one), is in `ctx`. */
LAMP_API lamp_status lamp_gguf_open(lamp_context *ctx, const char *path, lamp_gguf **out);

/* The same on `size` bytes at `data`, which the caller keeps alive and unchanged until
 * lamp_gguf_release (nothing is copied). `data` needs no particular alignment. Messages name
 * the file "(memory)". */
LAMP_API lamp_status lamp_gguf_open_memory(lamp_context *ctx, const void *data, size_t size,
                                           lamp_gguf **out);

/* Unmaps the file and frees everything. NULL is accepted. */
LAMP_API void lamp_gguf_release(lamp_gguf *gguf);

LAMP_API uint32_t lamp_gguf_version(const lamp_gguf *gguf);
LAMP_API size_t lamp_gguf_alignment(const lamp_gguf *gguf);
/* Byte offset in the file where the tensor data section starts. */
LAMP_API uint64_t lamp_gguf_data_offset(const lamp_gguf *gguf);
LAMP_API size_t lamp_gguf_key_count(const lamp_gguf *gguf);
LAMP_API size_t lamp_gguf_tensor_count(const lamp_gguf *gguf);

/* "Q4_K" for LAMP_GGML_Q4_K, "F32", ...; "unknown" for other values. */
LAMP_API const char *lamp_ggml_type_name(lamp_ggml_type type);
/* The type that lamp_ggml_type_name spells `name`, ignoring case ("q4_k" too); an unknown name
 * (or "unknown") is LAMP_ERR_INVALID_ARGUMENT and leaves *out unchanged. */
LAMP_API lamp_status lamp_ggml_type_from_name(const char *name, lamp_ggml_type *out);
/* "uint32", "string", "array", ...; "unknown" for other values. */
LAMP_API const char *lamp_gguf_type_name(lamp_gguf_type type);
/* Elements per block and bytes per block of a tensor type; 0 for a type lamp does not know. */
LAMP_API size_t lamp_ggml_block_elements(lamp_ggml_type type);
LAMP_API size_t lamp_ggml_block_bytes(lamp_ggml_type type);
/* 1 when lamp_gguf_dequantize handles the type. */
LAMP_API int lamp_ggml_type_decodable(lamp_ggml_type type);

/* Metadata lookups. A missing key is LAMP_ERR_NOT_FOUND. */
LAMP_API lamp_status lamp_gguf_find_key(lamp_context *ctx, lamp_gguf *gguf, const char *key,
                                        size_t *index);
LAMP_API lamp_status lamp_gguf_key_at(lamp_context *ctx, lamp_gguf *gguf, size_t index,
                                      lamp_gguf_key_info *info);

/* Typed scalar reads by key. A key of another type is LAMP_ERR_FORMAT naming the key and both
 * types. get_int accepts every integer type (a uint64 above INT64_MAX is refused); get_float
 * accepts float32 and float64; get_string returns a pointer into the file (not NUL-terminated)
 * and its length. */
LAMP_API lamp_status lamp_gguf_get_int(lamp_context *ctx, lamp_gguf *gguf, const char *key,
                                       int64_t *value);
LAMP_API lamp_status lamp_gguf_get_float(lamp_context *ctx, lamp_gguf *gguf, const char *key,
                                         double *value);
LAMP_API lamp_status lamp_gguf_get_bool(lamp_context *ctx, lamp_gguf *gguf, const char *key,
                                        int *value);
LAMP_API lamp_status lamp_gguf_get_string(lamp_context *ctx, lamp_gguf *gguf, const char *key,
                                          const char **value, size_t *length);

/* Arrays by key index: element `i` as an integer (any integer or bool element type), a float
 * (float32/float64) or a string (pointer into the file and length). An index past the end or
 * an element of another type is LAMP_ERR_FORMAT / LAMP_ERR_INVALID_ARGUMENT naming the key. */
LAMP_API lamp_status lamp_gguf_array_int(lamp_context *ctx, lamp_gguf *gguf, size_t key_index,
                                         uint64_t i, int64_t *value);
LAMP_API lamp_status lamp_gguf_array_float(lamp_context *ctx, lamp_gguf *gguf, size_t key_index,
                                           uint64_t i, double *value);
LAMP_API lamp_status lamp_gguf_array_string(lamp_context *ctx, lamp_gguf *gguf, size_t key_index,
                                            uint64_t i, const char **value, size_t *length);

/* The tensor table, by position or by name (a missing name is LAMP_ERR_NOT_FOUND). */
LAMP_API lamp_status lamp_gguf_tensor_at(lamp_context *ctx, lamp_gguf *gguf, size_t index,
                                         lamp_gguf_tensor_info *info);
LAMP_API lamp_status lamp_gguf_find_tensor(lamp_context *ctx, lamp_gguf *gguf, const char *name,
                                           lamp_gguf_tensor_info *info);

/* Decodes `count` elements (a multiple of the type's block size) of type `type` from `src`
 * (`src_size` bytes, which must hold them) into `dst`. A type lamp cannot decode is
 * LAMP_ERR_UNSUPPORTED. Plain data, no file involved. */
LAMP_API lamp_status lamp_ggml_dequantize(lamp_context *ctx, lamp_ggml_type type, const void *src,
                                          size_t src_size, float *dst, size_t count);

/* Dequantises a whole tensor into `dst`, which holds `capacity` floats (at least numel). */
LAMP_API lamp_status lamp_gguf_tensor_read_f32(lamp_context *ctx, lamp_gguf *gguf,
                                               const lamp_gguf_tensor_info *info, float *dst,
                                               size_t capacity);


#ifdef __cplusplus
}
#endif

#endif
