/* Contexts: owned or adopted OpenCL objects, options resolved once, and teardown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clblast_c.h>

#include "internal.h"

void lamp_context_options_init(lamp_context_options *options) {
  if (!options) return;
  memset(options, 0, sizeof(*options));
  options->cache = LAMP_FROM_ENV;
  options->profile = LAMP_FROM_ENV;
  options->tuning = LAMP_FROM_ENV;
  options->kernel_profile = LAMP_FROM_ENV;
}

const char *lamp_kernel_profile_name(int kind) {
  switch (kind) {
  case LAMP_KERNEL_PROFILE_AUTO: return "auto";
  case LAMP_KERNEL_PROFILE_CPU: return "cpu";
  case LAMP_KERNEL_PROFILE_GPU: return "gpu";
  default: return "?";
  }
}

int lamp_kernel_profile_auto(const lamp_device_info *info) {
  return info && (info->type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR))
             ? LAMP_KERNEL_PROFILE_GPU
             : LAMP_KERNEL_PROFILE_CPU;
}

int lamp_kernel_profile_parse(const char *name) {
  if (!name || !*name || strcmp(name, "auto") == 0) return LAMP_KERNEL_PROFILE_AUTO;
  if (strcmp(name, "cpu") == 0) return LAMP_KERNEL_PROFILE_CPU;
  if (strcmp(name, "gpu") == 0) return LAMP_KERNEL_PROFILE_GPU;
  return -1;
}

static void lamp__copy(char *dst, size_t size, const char *src) {
  snprintf(dst, size, "%s", src ? src : "");
}

static lamp_status lamp__early_fail(char *error, size_t error_size, lamp_status st,
                                    const char *fmt, const char *detail) {
  if (error && error_size) snprintf(error, error_size, fmt, detail);
  return st;
}

/* Reads the options (or the environment) into ctx; nothing here touches OpenCL. */
static void lamp__context_configure(lamp_context *ctx, const lamp_context_options *options) {
  lamp_context_options defaults;
  lamp_context_options_init(&defaults);
  if (!options) options = &defaults;

  const char *env = getenv("LAMP_CACHE");
  ctx->cache_on = options->cache == LAMP_FROM_ENV ? !(env && strcmp(env, "0") == 0)
                                                  : options->cache != 0;
  env = getenv("LAMP_TUNING");
  ctx->tuning_on = options->tuning == LAMP_FROM_ENV ? !(env && strcmp(env, "0") == 0)
                                                    : options->tuning != 0;
  env = getenv("LAMP_PROFILE");
  ctx->profile_on = options->profile == LAMP_FROM_ENV ? (env && strcmp(env, "1") == 0)
                                                      : options->profile != 0;

  const char *dir = options->cache_dir;
  if (!dir || !*dir) dir = getenv("LAMP_CACHE_DIR");
  if (dir && *dir) {
    lamp__copy(ctx->state_dir, sizeof(ctx->state_dir), dir);
  } else if ((env = getenv("XDG_CACHE_HOME")) && *env) {
    snprintf(ctx->state_dir, sizeof(ctx->state_dir), "%s/lamp", env);
  } else if ((env = getenv("HOME")) && *env) {
    snprintf(ctx->state_dir, sizeof(ctx->state_dir), "%s/.cache/lamp", env);
  } else {
    ctx->cache_on = 0; /* nowhere sensible to write */
  }
  if (ctx->cache_on) lamp__copy(ctx->cache_dir, sizeof(ctx->cache_dir), ctx->state_dir);

  ctx->kprof_request = options->kernel_profile == LAMP_FROM_ENV
                           ? lamp_kernel_profile_parse(getenv("LAMP_KERNEL_PROFILE"))
                           : options->kernel_profile;

  const char *kdir = options->kernel_dir;
  if (!kdir || !*kdir) kdir = getenv("LAMP_KERNEL_DIR");
  lamp__copy(ctx->kernel_dir, sizeof(ctx->kernel_dir), kdir);
}

/* The kernel profile for the device (the request resolved), within its limits:
 *  - work-groups: a power of two up to 256 and the device's maximum;
 *  - the prompt kernels' tiles: 16 x 16 where 256 work-items and 32 KiB of local memory allow,
 *    else 8 x 8, else 4 x 4; 16 columns per work-item on the CPU profile (CPU compilers turn
 *    the float16 into SIMD code), 4 on the GPU profile (one 128-bit local access per item:
 *    no bank conflicts);
 *  - attention: 16 rows per group; on the GPU profile 4 lanes per row at head width 64 (64
 *    work-items), fewer rows where the device allows fewer items;
 *  - local memory: at most 32 KiB per group, or the device's own size when smaller. */
static void lamp__context_device_options(lamp_context *ctx) {
  lamp_kernel_profile *p = &ctx->kprof;
  memset(p, 0, sizeof(*p));
  p->kind = ctx->kprof_request;
  if (p->kind == LAMP_KERNEL_PROFILE_AUTO) p->kind = lamp_kernel_profile_auto(&ctx->info);
  const int gpu = p->kind == LAMP_KERNEL_PROFILE_GPU;
  size_t wg = ctx->info.max_work_group_size ? ctx->info.max_work_group_size : 64;
  if (wg > 256) wg = 256;
  size_t pow2 = 1;
  while (pow2 * 2 <= wg) pow2 *= 2;
  p->wg_size = pow2;
  p->local_budget = ctx->info.local_mem_bytes && ctx->info.local_mem_bytes < 32768
                        ? (size_t)ctx->info.local_mem_bytes
                        : 32768;
  p->tile_vec = gpu ? 4 : 16;
  /* a tile needs tile^2 items and, in its widest kernel, (tile + 1) tile floats plus
   * tile^2 vectors of tile_vec floats */
  p->tile = 16;
  while (p->tile > 4 && ((size_t)p->tile * p->tile > pow2 ||
                         ((size_t)p->tile * (p->tile + 1) + (size_t)p->tile * p->tile *
                          p->tile_vec) * 4 > p->local_budget))
    p->tile /= 2;
  p->att_lanes = gpu ? 4 : 1;
  p->att_rows = 16;
  while (p->att_rows > 1 && (size_t)p->att_rows * p->att_lanes > pow2) p->att_rows /= 2;
  snprintf(ctx->device_options, sizeof(ctx->device_options),
           "-cl-std=CL1.2 -DLAMP_WG_SIZE=%zu -DLAMP_TILE=%u -DLAMP_TILE_VEC=%u "
           "-DLAMP_PROFILE_GPU=%d%s",
           pow2, p->tile, p->tile_vec, gpu, ctx->info.has_fp16 ? " -DLAMP_HAS_FP16=1" : "");
}

lamp_status lamp_context_get_kernel_profile(const lamp_context *ctx,
                                            lamp_kernel_profile *profile) {
  if (!ctx || !profile) return LAMP_ERR_INVALID_ARGUMENT;
  *profile = ctx->kprof;
  return LAMP_OK;
}

static lamp_status lamp__context_alloc(const lamp_context_options *options, lamp_context **out,
                                       char *error, size_t error_size) {
  *out = calloc(1, sizeof(**out));
  if (!*out)
    return lamp__early_fail(error, error_size, LAMP_ERR_OUT_OF_MEMORY,
                            "out of host memory allocating a lamp context%s", "");
  lamp__context_configure(*out, options);
  if ((*out)->kprof_request < LAMP_KERNEL_PROFILE_AUTO ||
      (*out)->kprof_request > LAMP_KERNEL_PROFILE_GPU) {
    int asked = options ? options->kernel_profile : LAMP_FROM_ENV;
    free(*out);
    *out = NULL;
    if (asked == LAMP_FROM_ENV)
      return lamp__early_fail(error, error_size, LAMP_ERR_INVALID_ARGUMENT,
                              "LAMP_KERNEL_PROFILE is \"%s\"; it must be cpu, gpu or auto",
                              getenv("LAMP_KERNEL_PROFILE"));
    char num[16];
    snprintf(num, sizeof(num), "%d", asked);
    return lamp__early_fail(error, error_size, LAMP_ERR_INVALID_ARGUMENT,
                            "unknown kernel profile %s (LAMP_KERNEL_PROFILE_AUTO, _CPU or _GPU)",
                            num);
  }
  return LAMP_OK;
}

/* CLBlast's GEMM kernels and clFFT's plans (which assert it, aborting the process) take work-
 * groups of 64 items, and so do lamp's reductions: a device allowing fewer is refused here. */
static lamp_status lamp__device_usable(const lamp_device_info *info, char *error,
                                       size_t error_size) {
  if (!info->max_work_group_size || info->max_work_group_size >= 64) return LAMP_OK;
  char why[256];
  snprintf(why, sizeof(why), "device %s allows %zu work-items per group; lamp, CLBlast and "
           "clFFT need at least 64", info->name, info->max_work_group_size);
  return lamp__early_fail(error, error_size, LAMP_ERR_UNSUPPORTED, "%s", why);
}

static void lamp__context_finish_setup(lamp_context *ctx) {
  /* A missing or foreign tuning result leaves CLBlast's own defaults: not an error. */
  if (ctx->tuning_on) {
    int applied = 0;
    if (lamp_tune_apply(ctx, &applied) == LAMP_OK) ctx->stats.tuning_applied = applied;
  }
  lamp__context_device_options(ctx);
  if (ctx->profile_on) {
    cl_command_queue_properties props = 0;
    if (clGetCommandQueueInfo(ctx->queue, CL_QUEUE_PROPERTIES, sizeof(props), &props, NULL) !=
            CL_SUCCESS ||
        !(props & CL_QUEUE_PROFILING_ENABLE))
      ctx->profile_on = 0;
  }
}

lamp_status lamp_context_create(const lamp_context_options *options, lamp_context **out,
                                char *error, size_t error_size) {
  if (error && error_size) error[0] = '\0';
  if (!out) return LAMP_ERR_INVALID_ARGUMENT;
  *out = NULL;

  size_t count = 0;
  lamp_status st = lamp_device_list(NULL, 0, &count);
  if (st == LAMP_ERR_OUT_OF_MEMORY)
    return lamp__early_fail(error, error_size, st, "%s", "out of host memory listing devices");
  if (st != LAMP_OK)
    return lamp__early_fail(error, error_size, st,
                            "no OpenCL platform or device found%s (is an ICD such as "
                            "pocl-opencl-icd installed?)",
                            "");
  lamp_device_info *infos = calloc(count, sizeof(*infos));
  if (!infos) return lamp__early_fail(error, error_size, LAMP_ERR_OUT_OF_MEMORY, "%s",
                                      "out of host memory listing devices");
  size_t filled = count;
  st = lamp_device_list(infos, count, &filled);
  if (st != LAMP_OK) {
    free(infos);
    return lamp__early_fail(error, error_size, st, "%s",
                            st == LAMP_ERR_OUT_OF_MEMORY ? "out of host memory listing devices"
                                                         : "the OpenCL devices went away while "
                                                           "lamp listed them");
  }
  if (filled < count) count = filled;
  size_t index = 0;
  st = lamp_device_select(infos, count, options ? options->device : NULL, &index, error,
                          error_size);
  if (st == LAMP_OK) st = lamp__device_usable(&infos[index], error, error_size);
  if (st != LAMP_OK) {
    free(infos);
    return st;
  }

  lamp_context *ctx = NULL;
  st = lamp__context_alloc(options, &ctx, error, error_size);
  if (st != LAMP_OK) {
    free(infos);
    return st;
  }
  ctx->owned = 1;
  ctx->info = infos[index];
  free(infos);
  clRetainDevice(ctx->info.device);
  ctx->device = ctx->info.device;

  cl_int err = CL_SUCCESS;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->info.platform,
                                   0};
  ctx->cl_ctx = clCreateContext(props, 1, &ctx->device, NULL, NULL, &err);
  if (err != CL_SUCCESS) {
    lamp_context_release(ctx);
    return lamp__early_fail(error, error_size, lamp__status_from_cl(err),
                            "clCreateContext failed: %s", lamp_cl_error_name(err));
  }
  ctx->queue = clCreateCommandQueue(ctx->cl_ctx, ctx->device,
                                    ctx->profile_on ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
  if (err != CL_SUCCESS) {
    lamp_context_release(ctx);
    return lamp__early_fail(error, error_size, lamp__status_from_cl(err),
                            "clCreateCommandQueue failed: %s", lamp_cl_error_name(err));
  }
  lamp__context_finish_setup(ctx);
  *out = ctx;
  return LAMP_OK;
}

/* Fills the device info of an adopted device, with its indices when the ICD lists it. */
static lamp_status lamp__adopted_info(cl_device_id device, lamp_device_info *info) {
  size_t count = 0;
  lamp_status st = lamp_device_list(NULL, 0, &count);
  if (st == LAMP_ERR_OUT_OF_MEMORY) return st;
  if (st == LAMP_OK && count) {
    lamp_device_info *all = calloc(count, sizeof(*all));
    if (!all) return LAMP_ERR_OUT_OF_MEMORY;
    size_t n = count;
    st = lamp_device_list(all, count, &n);
    for (size_t i = 0; st == LAMP_OK && i < n && i < count; i++)
      if (all[i].device == device) {
        *info = all[i];
        free(all);
        return LAMP_OK;
      }
    free(all);
    if (st == LAMP_ERR_OUT_OF_MEMORY) return st;
  }
  /* Sub-devices and devices hidden from the loader are not supported yet. */
  return LAMP_ERR_NOT_FOUND;
}

lamp_status lamp_context_adopt(cl_context cl_ctx, cl_device_id device, cl_command_queue queue,
                               const lamp_context_options *options, lamp_context **out,
                               char *error, size_t error_size) {
  if (error && error_size) error[0] = '\0';
  if (!out) return LAMP_ERR_INVALID_ARGUMENT;
  *out = NULL;
  if (!cl_ctx || !device || !queue)
    return lamp__early_fail(error, error_size, LAMP_ERR_INVALID_ARGUMENT,
                            "lamp_context_adopt needs a context, a device and a queue%s", "");

  cl_context queue_ctx = NULL;
  cl_device_id queue_dev = NULL;
  cl_command_queue_properties props = 0;
  if (clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof(queue_ctx), &queue_ctx, NULL) !=
          CL_SUCCESS ||
      clGetCommandQueueInfo(queue, CL_QUEUE_DEVICE, sizeof(queue_dev), &queue_dev, NULL) !=
          CL_SUCCESS ||
      clGetCommandQueueInfo(queue, CL_QUEUE_PROPERTIES, sizeof(props), &props, NULL) !=
          CL_SUCCESS)
    return lamp__early_fail(error, error_size, LAMP_ERR_INVALID_ARGUMENT, "%s",
                            "the queue handed to lamp_context_adopt is not a valid queue");
  if (queue_ctx != cl_ctx || queue_dev != device)
    return lamp__early_fail(error, error_size, LAMP_ERR_INVALID_ARGUMENT, "%s",
                            "the queue handed to lamp_context_adopt belongs to another "
                            "context or device");
  if (props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE)
    return lamp__early_fail(error, error_size, LAMP_ERR_INVALID_ARGUMENT, "%s",
                            "lamp needs an in-order queue; this one is out-of-order");

  lamp_device_info info;
  lamp_status st = lamp__adopted_info(device, &info);
  if (st != LAMP_OK)
    return lamp__early_fail(error, error_size, st, "%s",
                            st == LAMP_ERR_OUT_OF_MEMORY
                                ? "out of host memory listing devices"
                                : "the adopted device is not one the OpenCL loader lists");
  LAMP__TRY(lamp__device_usable(&info, error, error_size));

  lamp_context *ctx = NULL;
  st = lamp__context_alloc(options, &ctx, error, error_size);
  if (st != LAMP_OK) return st;
  ctx->info = info;
  /* Our own references: the host releases its own, in any order relative to ours. */
  clRetainContext(cl_ctx);
  ctx->cl_ctx = cl_ctx;
  clRetainCommandQueue(queue);
  ctx->queue = queue;
  clRetainDevice(device);
  ctx->device = device;
  lamp__context_finish_setup(ctx);
  *out = ctx;
  return LAMP_OK;
}

void lamp_context_release(lamp_context *ctx) {
  if (!ctx) return;
  if (ctx->queue) clFinish(ctx->queue);
  lamp__profile_free(ctx);
  for (size_t i = 0; i < ctx->n_kernels; i++) clReleaseKernel(ctx->kernels[i].kernel);
  free(ctx->kernels);
  for (size_t i = 0; i < ctx->n_programs; i++) lamp_program_release(ctx->programs[i].program);
  free(ctx->programs);
  /* CLBlast's cached programs hold the OpenCL context: drop them with the context lamp made
   * (lamp/context.h), while the OpenCL implementation is still up. */
  if (ctx->owned && ctx->cl_ctx) CLBlastClearCache();
  if (ctx->queue) clReleaseCommandQueue(ctx->queue);
  if (ctx->device) clReleaseDevice(ctx->device);
  if (ctx->cl_ctx) clReleaseContext(ctx->cl_ctx);
  free(ctx->error);
  free(ctx);
}

lamp_status lamp_context_finish(lamp_context *ctx) {
  if (!ctx) return LAMP_ERR_INVALID_ARGUMENT;
  LAMP__CL(ctx, clFinish(ctx->queue));
  return LAMP_OK;
}

cl_context lamp_context_cl_context(const lamp_context *ctx) { return ctx ? ctx->cl_ctx : NULL; }
cl_device_id lamp_context_cl_device(const lamp_context *ctx) { return ctx ? ctx->device : NULL; }
cl_command_queue lamp_context_cl_queue(const lamp_context *ctx) { return ctx ? ctx->queue : NULL; }
const lamp_device_info *lamp_context_device(const lamp_context *ctx) {
  return ctx ? &ctx->info : NULL;
}

lamp_status lamp_context_get_stats(const lamp_context *ctx, lamp_context_stats *stats) {
  if (!ctx || !stats) return LAMP_ERR_INVALID_ARGUMENT;
  *stats = ctx->stats;
  return LAMP_OK;
}

const char *lamp_context_cache_dir(const lamp_context *ctx) { return ctx ? ctx->cache_dir : ""; }
const char *lamp_context_state_dir(const lamp_context *ctx) { return ctx ? ctx->state_dir : ""; }

const char *lamp_program_device_options(const lamp_context *ctx) {
  return ctx ? ctx->device_options : "";
}
