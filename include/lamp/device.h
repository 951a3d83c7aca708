/* lamp: OpenCL device discovery and selection. */
#ifndef LAMP_DEVICE_H
#define LAMP_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "lamp/export.h"
#include "lamp/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What lamp knows of one device: enough to choose one and to print it. */
typedef struct lamp_device_info {
  unsigned platform_index; /* position of the platform in clGetPlatformIDs */
  unsigned device_index;   /* position of the device within its platform */
  cl_platform_id platform;
  cl_device_id device;
  char platform_name[128];
  char name[128];
  char vendor[128];
  char driver_version[64];
  char device_version[128];  /* CL_DEVICE_VERSION, e.g. "OpenCL 3.0 PoCL ..." */
  char opencl_c_version[64]; /* CL_DEVICE_OPENCL_C_VERSION */
  cl_device_type type;
  unsigned compute_units;
  unsigned clock_mhz;
  uint64_t global_mem_bytes;
  uint64_t local_mem_bytes;
  uint64_t max_alloc_bytes;
  size_t max_work_group_size;
  int has_fp16;
  int has_fp64;
} lamp_device_info;

/* Fills up to `capacity` entries of `infos` with every device of every platform, in platform
 * then device order, and sets `*count` to the total number found (which may exceed capacity).
 * No device at all is LAMP_ERR_NO_DEVICE. `infos` may be NULL when `capacity` is 0. */
LAMP_API lamp_status lamp_device_list(lamp_device_info *infos, size_t capacity, size_t *count);

/* Chooses one of `count` devices. `selector` is "P:D" (platform and device indices), or a
 * case-insensitive substring of the platform or device name; NULL or "" reads $LAMP_DEVICE,
 * and when that is unset too, picks the first GPU, else accelerator, else CPU. A selection
 * that matches nothing is LAMP_ERR_DEVICE_NOT_FOUND with a message in `message` listing the
 * devices that exist. `message` may be NULL. */
LAMP_API lamp_status lamp_device_select(const lamp_device_info *infos, size_t count,
                                        const char *selector, size_t *index, char *message,
                                        size_t message_size);

/* "GPU", "CPU", "accelerator", or "other". */
LAMP_API const char *lamp_device_type_name(cl_device_type type);

#ifdef __cplusplus
}
#endif

#endif
