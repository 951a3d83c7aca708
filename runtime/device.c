/* Device discovery and selection. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *lamp_device_type_name(cl_device_type type) {
  if (type & CL_DEVICE_TYPE_GPU) return "GPU";
  if (type & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
  if (type & CL_DEVICE_TYPE_CPU) return "CPU";
  return "other";
}

/* A string property, cut to `size` bytes: a driver refuses a buffer shorter than the whole
 * value (PoCL's CL_DEVICE_VERSION is longer than 64 bytes), so the value is read whole first. */
static void lamp__device_string(cl_device_id d, cl_device_info what, char *out, size_t size) {
  out[0] = '\0';
  size_t need = 0;
  if (clGetDeviceInfo(d, what, 0, NULL, &need) != CL_SUCCESS || need == 0) return;
  if (need <= size) {
    if (clGetDeviceInfo(d, what, size, out, NULL) != CL_SUCCESS) out[0] = '\0';
  } else {
    char *whole = malloc(need);
    if (whole && clGetDeviceInfo(d, what, need, whole, NULL) == CL_SUCCESS)
      memcpy(out, whole, size - 1);
    free(whole);
  }
  out[size - 1] = '\0';
}

static lamp_status lamp__device_fill(cl_platform_id platform, cl_device_id d, unsigned pi,
                                     unsigned di, lamp_device_info *info) {
  memset(info, 0, sizeof(*info));
  info->platform_index = pi;
  info->device_index = di;
  info->platform = platform;
  info->device = d;
  if (clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof(info->platform_name),
                        info->platform_name, NULL) != CL_SUCCESS)
    info->platform_name[0] = '\0';
  info->platform_name[sizeof(info->platform_name) - 1] = '\0';
  lamp__device_string(d, CL_DEVICE_NAME, info->name, sizeof(info->name));
  lamp__device_string(d, CL_DEVICE_VENDOR, info->vendor, sizeof(info->vendor));
  lamp__device_string(d, CL_DRIVER_VERSION, info->driver_version, sizeof(info->driver_version));
  lamp__device_string(d, CL_DEVICE_VERSION, info->device_version, sizeof(info->device_version));
  lamp__device_string(d, CL_DEVICE_OPENCL_C_VERSION, info->opencl_c_version,
                      sizeof(info->opencl_c_version));

  cl_uint u = 0;
  cl_ulong ul = 0;
  size_t sz = 0;
  clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof(info->type), &info->type, NULL);
  if (clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof(u), &u, NULL) == CL_SUCCESS)
    info->compute_units = u;
  if (clGetDeviceInfo(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof(u), &u, NULL) == CL_SUCCESS)
    info->clock_mhz = u;
  if (clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof(ul), &ul, NULL) == CL_SUCCESS)
    info->global_mem_bytes = ul;
  if (clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof(ul), &ul, NULL) == CL_SUCCESS)
    info->local_mem_bytes = ul;
  if (clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof(ul), &ul, NULL) == CL_SUCCESS)
    info->max_alloc_bytes = ul;
  if (clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof(sz), &sz, NULL) == CL_SUCCESS)
    info->max_work_group_size = sz;

  size_t ext_size = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &ext_size) == CL_SUCCESS && ext_size) {
    char *ext = malloc(ext_size + 1);
    if (!ext) return LAMP_ERR_OUT_OF_MEMORY;
    if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, ext_size, ext, NULL) == CL_SUCCESS) {
      ext[ext_size] = '\0';
      info->has_fp16 = strstr(ext, "cl_khr_fp16") != NULL;
      info->has_fp64 = strstr(ext, "cl_khr_fp64") != NULL;
    }
    free(ext);
  }
  return LAMP_OK;
}

lamp_status lamp_device_list(lamp_device_info *infos, size_t capacity, size_t *count) {
  if (!count || (capacity && !infos)) return LAMP_ERR_INVALID_ARGUMENT;
  *count = 0;
  cl_uint np = 0;
  cl_int err = clGetPlatformIDs(0, NULL, &np);
  /* The ICD loader answers CL_PLATFORM_NOT_FOUND_KHR (-1001) when no platform is installed. */
  if (err != CL_SUCCESS || np == 0) return LAMP_ERR_NO_DEVICE;
  cl_platform_id *platforms = calloc(np, sizeof(*platforms));
  if (!platforms) return LAMP_ERR_OUT_OF_MEMORY;
  lamp_status st = LAMP_OK;
  if (clGetPlatformIDs(np, platforms, NULL) != CL_SUCCESS) {
    free(platforms);
    return LAMP_ERR_NO_DEVICE;
  }
  size_t n = 0;
  for (cl_uint p = 0; p < np && st == LAMP_OK; p++) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || !nd)
      continue;
    cl_device_id *devs = calloc(nd, sizeof(*devs));
    if (!devs) {
      st = LAMP_ERR_OUT_OF_MEMORY;
      break;
    }
    if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL) == CL_SUCCESS) {
      for (cl_uint d = 0; d < nd && st == LAMP_OK; d++, n++)
        if (n < capacity) st = lamp__device_fill(platforms[p], devs[d], p, d, &infos[n]);
    }
    free(devs);
  }
  free(platforms);
  if (st != LAMP_OK) return st;
  *count = n;
  return n ? LAMP_OK : LAMP_ERR_NO_DEVICE;
}

static int lamp__contains_nocase(const char *hay, const char *needle) {
  size_t nl = strlen(needle);
  for (const char *h = hay; *h; h++) {
    size_t i = 0;
    while (i < nl && h[i] &&
           tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i]))
      i++;
    if (i == nl) return 1;
  }
  return nl == 0;
}

static void lamp__device_listing(const lamp_device_info *infos, size_t count, char *msg,
                                 size_t size, const char *why) {
  if (!msg || !size) return;
  size_t used = (size_t)snprintf(msg, size, "%s; devices:", why);
  for (size_t i = 0; i < count && used < size; i++)
    used += (size_t)snprintf(msg + used, size - used, " [%u:%u] %s / %s (%s)%s",
                             infos[i].platform_index, infos[i].device_index,
                             infos[i].platform_name, infos[i].name,
                             lamp_device_type_name(infos[i].type), i + 1 < count ? ";" : "");
}

lamp_status lamp_device_select(const lamp_device_info *infos, size_t count, const char *selector,
                               size_t *index, char *message, size_t message_size) {
  if (message && message_size) message[0] = '\0';
  if (!index || (count && !infos)) return LAMP_ERR_INVALID_ARGUMENT;
  if (count == 0) {
    if (message && message_size) snprintf(message, message_size, "no OpenCL device found");
    return LAMP_ERR_NO_DEVICE;
  }
  if (!selector || !*selector) selector = getenv("LAMP_DEVICE");
  if (!selector || !*selector) {
    static const cl_device_type order[] = {CL_DEVICE_TYPE_GPU, CL_DEVICE_TYPE_ACCELERATOR,
                                           CL_DEVICE_TYPE_CPU};
    for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++)
      for (size_t i = 0; i < count; i++)
        if (infos[i].type & order[o]) {
          *index = i;
          return LAMP_OK;
        }
    *index = 0;
    return LAMP_OK;
  }

  unsigned p = 0, d = 0;
  char tail = 0;
  if (sscanf(selector, "%u:%u%c", &p, &d, &tail) == 2) {
    for (size_t i = 0; i < count; i++)
      if (infos[i].platform_index == p && infos[i].device_index == d) {
        *index = i;
        return LAMP_OK;
      }
    char why[96];
    snprintf(why, sizeof(why), "no device %u:%u", p, d);
    lamp__device_listing(infos, count, message, message_size, why);
    return LAMP_ERR_DEVICE_NOT_FOUND;
  }
  for (size_t i = 0; i < count; i++)
    if (lamp__contains_nocase(infos[i].name, selector) ||
        lamp__contains_nocase(infos[i].platform_name, selector)) {
      *index = i;
      return LAMP_OK;
    }
  char why[160];
  snprintf(why, sizeof(why), "no device name or platform name contains \"%.100s\"", selector);
  lamp__device_listing(infos, count, message, message_size, why);
  return LAMP_ERR_DEVICE_NOT_FOUND;
}
