/* lamp: status codes shared by every public function. */
#ifndef LAMP_STATUS_H
#define LAMP_STATUS_H

#include "lamp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One list generates the enum and its names (lamp_status_name) and descriptions
 * (lamp_status_string). Values are stable: append, never renumber. */
#define LAMP_STATUS_LIST(X)                                                          \
  X(LAMP_OK, 0, "success")                                                           \
  X(LAMP_ERR_INVALID_ARGUMENT, 1, "invalid argument")                                \
  X(LAMP_ERR_OUT_OF_MEMORY, 2, "out of memory")                                      \
  X(LAMP_ERR_NO_DEVICE, 3, "no OpenCL device available")                             \
  X(LAMP_ERR_DEVICE_NOT_FOUND, 4, "device selection matches no device")              \
  X(LAMP_ERR_OPENCL, 5, "OpenCL call failed")                                        \
  X(LAMP_ERR_BUILD, 6, "kernel program build failed")                                \
  X(LAMP_ERR_CLBLAST, 7, "CLBlast call failed")                                      \
  X(LAMP_ERR_CLFFT, 8, "clFFT call failed")                                          \
  X(LAMP_ERR_SHAPE, 9, "tensor shapes or strides do not fit")                        \
  X(LAMP_ERR_IO, 10, "file input/output failed")                                     \
  X(LAMP_ERR_FORMAT, 11, "file is corrupt or of an unsupported format")              \
  X(LAMP_ERR_UNSUPPORTED, 12, "operation not supported on this device or data type") \
  X(LAMP_ERR_NUMERIC, 13, "input is non-finite or numerically degenerate")           \
  X(LAMP_ERR_NOT_FOUND, 14, "named item not found")                                 \
  X(LAMP_ERR_CANCELLED, 15, "stopped on the caller's request")

typedef enum lamp_status {
#define LAMP__STATUS_ENUM(name, value, text) name = value,
  LAMP_STATUS_LIST(LAMP__STATUS_ENUM)
#undef LAMP__STATUS_ENUM
} lamp_status;

/* "LAMP_ERR_SHAPE" for LAMP_ERR_SHAPE; "LAMP_STATUS_UNKNOWN" for values outside the list. */
LAMP_API const char *lamp_status_name(lamp_status status);

/* A short English description of the status. */
LAMP_API const char *lamp_status_string(lamp_status status);

/* The OpenCL name of an OpenCL error code ("CL_OUT_OF_RESOURCES"), or "CL_UNKNOWN_ERROR". */
LAMP_API const char *lamp_cl_error_name(int cl_error);

/* CLBlast's own name of a CLBlast status code ("CLBlastInvalidLeadDimA"). */
LAMP_API const char *lamp_clblast_error_name(int clblast_status);

#ifdef __cplusplus
}
#endif

#endif
