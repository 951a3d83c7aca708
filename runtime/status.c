/* Status names, OpenCL and CLBlast error names, and the per-context error message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

const char *lamp_status_name(lamp_status status) {
  switch (status) {
#define LAMP__STATUS_NAME(name, value, text) \
  case name:                                 \
    return #name;
    LAMP_STATUS_LIST(LAMP__STATUS_NAME)
#undef LAMP__STATUS_NAME
  }
  return "LAMP_STATUS_UNKNOWN";
}

const char *lamp_status_string(lamp_status status) {
  switch (status) {
#define LAMP__STATUS_TEXT(name, value, text) \
  case name:                                 \
    return text;
    LAMP_STATUS_LIST(LAMP__STATUS_TEXT)
#undef LAMP__STATUS_TEXT
  }
  return "unknown status";
}

const char *lamp_cl_error_name(int cl_error) {
  switch (cl_error) {
    case 0: return "CL_SUCCESS";
    case -1: return "CL_DEVICE_NOT_FOUND";
    case -2: return "CL_DEVICE_NOT_AVAILABLE";
    case -3: return "CL_COMPILER_NOT_AVAILABLE";
    case -4: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case -5: return "CL_OUT_OF_RESOURCES";
    case -6: return "CL_OUT_OF_HOST_MEMORY";
    case -7: return "CL_PROFILING_INFO_NOT_AVAILABLE";
    case -8: return "CL_MEM_COPY_OVERLAP";
    case -9: return "CL_IMAGE_FORMAT_MISMATCH";
    case -10: return "CL_IMAGE_FORMAT_NOT_SUPPORTED";
    case -11: return "CL_BUILD_PROGRAM_FAILURE";
    case -12: return "CL_MAP_FAILURE";
    case -13: return "CL_MISALIGNED_SUB_BUFFER_OFFSET";
    case -14: return "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST";
    case -15: return "CL_COMPILE_PROGRAM_FAILURE";
    case -16: return "CL_LINKER_NOT_AVAILABLE";
    case -17: return "CL_LINK_PROGRAM_FAILURE";
    case -18: return "CL_DEVICE_PARTITION_FAILED";
    case -19: return "CL_KERNEL_ARG_INFO_NOT_AVAILABLE";
    case -30: return "CL_INVALID_VALUE";
    case -31: return "CL_INVALID_DEVICE_TYPE";
    case -32: return "CL_INVALID_PLATFORM";
    case -33: return "CL_INVALID_DEVICE";
    case -34: return "CL_INVALID_CONTEXT";
    case -35: return "CL_INVALID_QUEUE_PROPERTIES";
    case -36: return "CL_INVALID_COMMAND_QUEUE";
    case -37: return "CL_INVALID_HOST_PTR";
    case -38: return "CL_INVALID_MEM_OBJECT";
    case -39: return "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR";
    case -40: return "CL_INVALID_IMAGE_SIZE";
    case -41: return "CL_INVALID_SAMPLER";
    case -42: return "CL_INVALID_BINARY";
    case -43: return "CL_INVALID_BUILD_OPTIONS";
    case -44: return "CL_INVALID_PROGRAM";
    case -45: return "CL_INVALID_PROGRAM_EXECUTABLE";
    case -46: return "CL_INVALID_KERNEL_NAME";
    case -47: return "CL_INVALID_KERNEL_DEFINITION";
    case -48: return "CL_INVALID_KERNEL";
    case -49: return "CL_INVALID_ARG_INDEX";
    case -50: return "CL_INVALID_ARG_VALUE";
    case -51: return "CL_INVALID_ARG_SIZE";
    case -52: return "CL_INVALID_KERNEL_ARGS";
    case -53: return "CL_INVALID_WORK_DIMENSION";
    case -54: return "CL_INVALID_WORK_GROUP_SIZE";
    case -55: return "CL_INVALID_WORK_ITEM_SIZE";
    case -56: return "CL_INVALID_GLOBAL_OFFSET";
    case -57: return "CL_INVALID_EVENT_WAIT_LIST";
    case -58: return "CL_INVALID_EVENT";
    case -59: return "CL_INVALID_OPERATION";
    case -60: return "CL_INVALID_GL_OBJECT";
    case -61: return "CL_INVALID_BUFFER_SIZE";
    case -62: return "CL_INVALID_MIP_LEVEL";
    case -63: return "CL_INVALID_GLOBAL_WORK_SIZE";
    case -64: return "CL_INVALID_PROPERTY";
    case -65: return "CL_INVALID_IMAGE_DESCRIPTOR";
    case -66: return "CL_INVALID_COMPILER_OPTIONS";
    case -67: return "CL_INVALID_LINKER_OPTIONS";
    case -68: return "CL_INVALID_DEVICE_PARTITION_COUNT";
    case -69: return "CL_INVALID_PIPE_SIZE";
    case -70: return "CL_INVALID_DEVICE_QUEUE";
    case -71: return "CL_INVALID_SPEC_ID";
    case -72: return "CL_MAX_SIZE_RESTRICTION_EXCEEDED";
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "CL_UNKNOWN_ERROR";
  }
}

const char *lamp_clblast_error_name(int clblast_status) {
  switch (clblast_status) {
    case 0: return "CLBlastSuccess";
    case -3: return "CLBlastOpenCLCompilerNotAvailable";
    case -4: return "CLBlastTempBufferAllocFailure";
    case -5: return "CLBlastOpenCLOutOfResources";
    case -6: return "CLBlastOpenCLOutOfHostMemory";
    case -11: return "CLBlastOpenCLBuildProgramFailure";
    case -30: return "CLBlastInvalidValue";
    case -36: return "CLBlastInvalidCommandQueue";
    case -38: return "CLBlastInvalidMemObject";
    case -42: return "CLBlastInvalidBinary";
    case -43: return "CLBlastInvalidBuildOptions";
    case -44: return "CLBlastInvalidProgram";
    case -45: return "CLBlastInvalidProgramExecutable";
    case -46: return "CLBlastInvalidKernelName";
    case -47: return "CLBlastInvalidKernelDefinition";
    case -48: return "CLBlastInvalidKernel";
    case -49: return "CLBlastInvalidArgIndex";
    case -50: return "CLBlastInvalidArgValue";
    case -51: return "CLBlastInvalidArgSize";
    case -52: return "CLBlastInvalidKernelArgs";
    case -53: return "CLBlastInvalidLocalNumDimensions";
    case -54: return "CLBlastInvalidLocalThreadsTotal";
    case -55: return "CLBlastInvalidLocalThreadsDim";
    case -56: return "CLBlastInvalidGlobalOffset";
    case -57: return "CLBlastInvalidEventWaitList";
    case -58: return "CLBlastInvalidEvent";
    case -59: return "CLBlastInvalidOperation";
    case -61: return "CLBlastInvalidBufferSize";
    case -63: return "CLBlastInvalidGlobalWorkSize";
    case -1024: return "CLBlastNotImplemented";
    case -1022: return "CLBlastInvalidMatrixA";
    case -1021: return "CLBlastInvalidMatrixB";
    case -1020: return "CLBlastInvalidMatrixC";
    case -1019: return "CLBlastInvalidVectorX";
    case -1018: return "CLBlastInvalidVectorY";
    case -1017: return "CLBlastInvalidDimension";
    case -1016: return "CLBlastInvalidLeadDimA";
    case -1015: return "CLBlastInvalidLeadDimB";
    case -1014: return "CLBlastInvalidLeadDimC";
    case -1013: return "CLBlastInvalidIncrementX";
    case -1012: return "CLBlastInvalidIncrementY";
    case -1011: return "CLBlastInsufficientMemoryA";
    case -1010: return "CLBlastInsufficientMemoryB";
    case -1009: return "CLBlastInsufficientMemoryC";
    case -1008: return "CLBlastInsufficientMemoryX";
    case -1007: return "CLBlastInsufficientMemoryY";
    case -2050: return "CLBlastInsufficientMemoryTemp";
    case -2049: return "CLBlastInvalidBatchCount";
    case -2048: return "CLBlastInvalidOverrideKernel";
    case -2047: return "CLBlastMissingOverrideParameter";
    case -2046: return "CLBlastInvalidLocalMemUsage";
    case -2045: return "CLBlastNoHalfPrecision";
    case -2044: return "CLBlastNoDoublePrecision";
    case -2043: return "CLBlastInvalidVectorScalar";
    case -2042: return "CLBlastInsufficientMemoryScalar";
    case -2041: return "CLBlastDatabaseError";
    case -2040: return "CLBlastUnknownError";
    case -2039: return "CLBlastUnexpectedError";
    default: return "CLBlastUnknownStatus";
  }
}

lamp_status lamp__status_from_cl(cl_int err) {
  switch (err) {
    case CL_SUCCESS: return LAMP_OK;
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
    case CL_OUT_OF_RESOURCES:
    case CL_OUT_OF_HOST_MEMORY:
    case CL_INVALID_BUFFER_SIZE: return LAMP_ERR_OUT_OF_MEMORY;
    case CL_BUILD_PROGRAM_FAILURE:
    case CL_COMPILE_PROGRAM_FAILURE:
    case CL_LINK_PROGRAM_FAILURE: return LAMP_ERR_BUILD;
    case CL_DEVICE_NOT_FOUND: return LAMP_ERR_NO_DEVICE;
    default: return LAMP_ERR_OPENCL;
  }
}

static void lamp__error_reserve(lamp_context *ctx, size_t need) {
  if (need <= ctx->error_cap) return;
  size_t cap = ctx->error_cap ? ctx->error_cap : 256;
  while (cap < need) cap *= 2;
  char *grown = realloc(ctx->error, cap);
  if (!grown) return; /* keep the old, shorter message rather than lose it */
  if (!ctx->error) grown[0] = '\0';
  ctx->error = grown;
  ctx->error_cap = cap;
}

lamp_status lamp__fail(lamp_context *ctx, lamp_status status, const char *fmt, ...) {
  if (!ctx) return status;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return status;
  lamp__error_reserve(ctx, (size_t)n + 1);
  if (ctx->error_cap < (size_t)n + 1) return status;
  va_start(ap, fmt);
  vsnprintf(ctx->error, ctx->error_cap, fmt, ap);
  va_end(ap);
  return status;
}

void lamp__fail_append(lamp_context *ctx, const char *text) {
  if (!ctx || !text) return;
  size_t have = ctx->error ? strlen(ctx->error) : 0;
  lamp__error_reserve(ctx, have + strlen(text) + 1);
  if (ctx->error_cap < have + strlen(text) + 1) return;
  memcpy(ctx->error + have, text, strlen(text) + 1);
}

const char *lamp_context_error(const lamp_context *ctx) {
  return (ctx && ctx->error) ? ctx->error : "";
}

uint64_t lamp__hash64(uint64_t seed, const void *data, size_t size) {
  const unsigned char *p = data;
  uint64_t h = seed;
  for (size_t i = 0; i < size; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

double lamp__now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
