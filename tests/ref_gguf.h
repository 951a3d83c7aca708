/* Plain-C GGUF writer, reference quantisers and reference decoders for the format tests.
 * Written from the GGUF/ggml block layouts, independently of src/gguf.c. */
#ifndef LAMP_TEST_REF_GGUF_H
#define LAMP_TEST_REF_GGUF_H

#include <stddef.h>
#include <stdint.h>

/* A growing byte buffer; aborts the test program on out-of-memory. */
typedef struct ref_buf {
  unsigned char *data;
  size_t size, cap;
} ref_buf;

void ref_buf_bytes(ref_buf *b, const void *p, size_t n);
void ref_buf_u8(ref_buf *b, uint8_t v);
void ref_buf_u16(ref_buf *b, uint16_t v);
void ref_buf_u32(ref_buf *b, uint32_t v);
void ref_buf_u64(ref_buf *b, uint64_t v);
void ref_buf_f32(ref_buf *b, float v);
void ref_buf_f64(ref_buf *b, double v);
void ref_buf_str(ref_buf *b, const char *s); /* u64 length + bytes */
void ref_buf_free(ref_buf *b);

/* GGUF value type codes (the file's numbering). */
enum {
  REF_GGUF_UINT8 = 0, REF_GGUF_INT8, REF_GGUF_UINT16, REF_GGUF_INT16, REF_GGUF_UINT32,
  REF_GGUF_INT32, REF_GGUF_FLOAT32, REF_GGUF_BOOL, REF_GGUF_STRING, REF_GGUF_ARRAY,
  REF_GGUF_UINT64, REF_GGUF_INT64, REF_GGUF_FLOAT64
};

/* ggml tensor type codes used by the tests. */
enum {
  REF_F32 = 0, REF_F16 = 1, REF_Q4_0 = 2, REF_Q4_1 = 3, REF_Q5_0 = 6, REF_Q5_1 = 7,
  REF_Q8_0 = 8, REF_Q2_K = 10, REF_Q4_K = 12, REF_Q5_K = 13, REF_Q6_K = 14, REF_BF16 = 30
};

/* Elements and bytes per block of a type above (0 for others). */
size_t ref_block_elements(int type);
size_t ref_block_bytes(int type);

/* Builds a GGUF file: metadata entries are appended as they come (the caller writes each value
 * with the ref_buf functions after ref_gguf_key), tensors are laid out at `alignment`. */
#define REF_GGUF_MAX_TENSORS 64
typedef struct ref_gguf_writer {
  uint32_t version;
  size_t alignment;
  ref_buf kv;
  uint64_t n_kv;
  size_t n_tensors;
  struct {
    char name[128];
    uint32_t n_dims;
    uint64_t ne[4];
    uint32_t type;
    const void *data;
    size_t size;
  } tensors[REF_GGUF_MAX_TENSORS];
} ref_gguf_writer;

void ref_gguf_init(ref_gguf_writer *w, uint32_t version, size_t alignment);
/* Starts entry `key` of value type `type` (the value follows in w->kv). */
void ref_gguf_key(ref_gguf_writer *w, const char *key, uint32_t type);
void ref_gguf_kv_u32(ref_gguf_writer *w, const char *key, uint32_t v);
void ref_gguf_kv_f32(ref_gguf_writer *w, const char *key, float v);
void ref_gguf_kv_bool(ref_gguf_writer *w, const char *key, int v);
void ref_gguf_kv_str(ref_gguf_writer *w, const char *key, const char *v);
void ref_gguf_kv_str_array(ref_gguf_writer *w, const char *key, const char *const *v, size_t n);
void ref_gguf_kv_i32_array(ref_gguf_writer *w, const char *key, const int32_t *v, size_t n);
/* `data` must stay alive until ref_gguf_finish. */
void ref_gguf_tensor(ref_gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne,
                     uint32_t type, const void *data, size_t size);
/* Writes the whole file into `out` (cleared first) and frees the writer's buffers. Sets
 * general.alignment only when the caller added it. */
void ref_gguf_finish(ref_gguf_writer *w, ref_buf *out);

/* IEEE half precision: round to nearest even, and exact widening. */
uint16_t ref_f16_from_f32(double x);
double ref_f16_to_f64(uint16_t h);

/* Quantises n values (a multiple of the block) into `out` (n / block * bytes bytes). Writes the
 * value each element decodes to (`recon`, from the integers and stored scales, in double) and
 * the largest error the quantiser allows for it (`bound`, half a quantisation step: scales are
 * rounded up so no value is clipped). Types: every one in the enum except Q2_K. */
void ref_quantize(int type, const float *x, size_t n, void *out, double *recon, double *bound);

/* Decodes n elements of `type` from raw block bytes into double, element by element through
 * bit positions (a second reading of the layouts, independent of the quantiser). */
void ref_dequantize(int type, const void *src, size_t n, double *out);

#endif
