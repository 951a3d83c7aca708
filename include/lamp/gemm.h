/* lamp: matrix products through CLBlast, on the tensors' own buffers. */
#ifndef LAMP_GEMM_H
#define LAMP_GEMM_H

#include "lamp/export.h"
#include "lamp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lamp_transpose {
  LAMP_NO_TRANS = 0,
  LAMP_TRANS = 1,
} lamp_transpose;

/* C = alpha * op(A) op(B) + beta * C, with f32 tensors read as row-major matrices:
 * rows ne[1], columns ne[0], leading dimension nb[1] / 4 (nb[0] must be 4).
 * op(A) is M x K, op(B) is K x N, C is M x N.
 *
 * Batches: when ne[2] of C is greater than 1, each of the ne[2] matrices of C (stride nb[2]) is
 * computed from the matching matrices of A and B; an A or B with ne[2] == 1 is shared by every
 * batch. ne[3] must be 1. Batches go through CLBlastSgemmStridedBatched, single products
 * through CLBlastSgemm, except products of at most 16 rows of A: with trans_b on the CPU kernel
 * profile, lamp's own kernel (one work-item per row of B), else with one row CLBlastSgemv
 * (a generation step's products, which GEMM tiles would make many times slower). With beta 0,
 * C's old contents are ignored. Runs asynchronously on the context's queue. */
LAMP_API lamp_status lamp_gemm(lamp_context *ctx, lamp_transpose trans_a, lamp_transpose trans_b,
                               float alpha, const lamp_tensor *a, const lamp_tensor *b, float beta,
                               lamp_tensor *c);

#ifdef __cplusplus
}
#endif

#endif
