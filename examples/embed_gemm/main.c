/* Embedding lamp in an application that owns its OpenCL objects.
 *
 * The application creates the context, queue and buffers; lamp adopts the context and queue,
 * wraps the buffers as tensors without owning them, multiplies, and is released first. The
 * application then reads its own buffer and releases its own objects, in its own order. */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <lamp/lamp.h>

enum { M = 48, N = 40, K = 64 };

#define CHECK_CL(call)                                                        \
  do {                                                                        \
    cl_int e_ = (call);                                                       \
    if (e_ != CL_SUCCESS) {                                                   \
      fprintf(stderr, "%s failed: %s\n", #call, lamp_cl_error_name(e_));      \
      return 1;                                                               \
    }                                                                         \
  } while (0)

int main(void) {
  /* 1. The application's own OpenCL set-up: first device of the first platform. */
  cl_platform_id platform;
  cl_device_id device;
  cl_int err;
  CHECK_CL(clGetPlatformIDs(1, &platform, NULL));
  CHECK_CL(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL));
  cl_context cl_ctx = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
  CHECK_CL(err);
  cl_command_queue queue = clCreateCommandQueue(cl_ctx, device, 0, &err);
  CHECK_CL(err);

  static float a[M * K], b[K * N], c[M * N];
  for (int i = 0; i < M * K; i++) a[i] = (float)((i * 7) % 13) / 13.0f - 0.5f;
  for (int i = 0; i < K * N; i++) b[i] = (float)((i * 5) % 11) / 11.0f - 0.5f;
  cl_mem buf_a = clCreateBuffer(cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof(a), a, &err);
  CHECK_CL(err);
  cl_mem buf_b = clCreateBuffer(cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof(b), b, &err);
  CHECK_CL(err);
  cl_mem buf_c = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, sizeof(c), NULL, &err);
  CHECK_CL(err);

  /* 2. lamp adopts the application's context and queue (it takes its own references). */
  lamp_context *lamp = NULL;
  char msg[1024];
  lamp_status st = lamp_context_adopt(cl_ctx, device, queue, NULL, &lamp, msg, sizeof(msg));
  if (st != LAMP_OK) {
    fprintf(stderr, "lamp_context_adopt: %s: %s\n", lamp_status_name(st), msg);
    return 1;
  }

  /* 3. The application's buffers as row-major matrices (ne[0] = columns, ne[1] = rows). */
  lamp_tensor ta, tb, tc;
  size_t ne_a[2] = {K, M}, ne_b[2] = {N, K}, ne_c[2] = {N, M};
  if ((st = lamp_tensor_wrap(lamp, buf_a, 0, LAMP_DTYPE_F32, 2, ne_a, NULL, &ta)) != LAMP_OK ||
      (st = lamp_tensor_wrap(lamp, buf_b, 0, LAMP_DTYPE_F32, 2, ne_b, NULL, &tb)) != LAMP_OK ||
      (st = lamp_tensor_wrap(lamp, buf_c, 0, LAMP_DTYPE_F32, 2, ne_c, NULL, &tc)) != LAMP_OK ||
      (st = lamp_gemm(lamp, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, &ta, &tb, 0.0f, &tc)) != LAMP_OK ||
      (st = lamp_context_finish(lamp)) != LAMP_OK) {
    fprintf(stderr, "lamp: %s: %s\n", lamp_status_name(st), lamp_context_error(lamp));
    lamp_context_release(lamp);
    return 1;
  }

  /* 4. lamp goes first; the application's objects stay valid. */
  lamp_context_release(lamp);

  CHECK_CL(clEnqueueReadBuffer(queue, buf_c, CL_TRUE, 0, sizeof(c), c, 0, NULL, NULL));
  double max_err = 0;
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double ref = 0;
      for (int k = 0; k < K; k++) ref += (double)a[i * K + k] * b[k * N + j];
      max_err = fmax(max_err, fabs(ref - c[i * N + j]));
    }
  clReleaseMemObject(buf_c);
  clReleaseMemObject(buf_b);
  clReleaseMemObject(buf_a);
  clReleaseCommandQueue(queue);
  clReleaseContext(cl_ctx);
  printf("embed_gemm: %dx%dx%d on the application's buffers, max abs error %.2e: %s\n", M, N, K,
         max_err, max_err < 1e-4 ? "ok" : "FAILED");
  return max_err < 1e-4 ? 0 : 1;
}
