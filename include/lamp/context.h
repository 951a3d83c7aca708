/* lamp: a context is one device, one OpenCL context and one in-order queue, plus lamp's
 * built programs, profiling records and last error message. Everything lamp does runs in a
 * context; two contexts share nothing. A context is not thread-safe: use one per thread. */
#ifndef LAMP_CONTEXT_H
#define LAMP_CONTEXT_H

#include <stdint.h>
#include <stdio.h>

#include "lamp/device.h"
#include "lamp/export.h"
#include "lamp/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lamp_context lamp_context;

/* Value meaning "read the environment variable" in the integer fields below. */
#define LAMP_FROM_ENV (-1)

typedef struct lamp_context_options {
  const char *device;     /* selector as in lamp_device_select; NULL: $LAMP_DEVICE or default */
  const char *cache_dir;  /* NULL: $LAMP_CACHE_DIR, else $XDG_CACHE_HOME/lamp, else ~/.cache/lamp */
  int cache;              /* 0 off, 1 on, LAMP_FROM_ENV: off when $LAMP_CACHE is "0" */
  int profile;            /* 0 off, 1 on, LAMP_FROM_ENV: on when $LAMP_PROFILE is "1" */
  const char *kernel_dir; /* NULL: $LAMP_KERNEL_DIR, else the sources built into the library */
  int tuning;             /* apply stored GEMM tuning (lamp/tune.h): 0 off, 1 on,
                             LAMP_FROM_ENV: on unless $LAMP_TUNING is "0" */
  int kernel_profile;     /* LAMP_KERNEL_PROFILE_*; LAMP_FROM_ENV: $LAMP_KERNEL_PROFILE ("cpu",
                             "gpu" or "auto"), auto when unset */
} lamp_context_options;

/* Kernel profiles: the launch shapes of lamp's own kernels for a class of device, within the
 * limits the device reports. AUTO takes the GPU profile for GPUs and accelerators and the CPU
 * profile otherwise; either can be forced on any device (both are correct everywhere, each is
 * fast on its own class). */
#define LAMP_KERNEL_PROFILE_AUTO 0
#define LAMP_KERNEL_PROFILE_CPU 1
#define LAMP_KERNEL_PROFILE_GPU 2

typedef struct lamp_kernel_profile {
  int kind;            /* LAMP_KERNEL_PROFILE_CPU or LAMP_KERNEL_PROFILE_GPU */
  size_t wg_size;      /* work-items of the reductions and one-work-group kernels (a power of
                          two, at most 256 and the device's limit): LAMP_WG_SIZE */
  unsigned tile;       /* the prompt kernels' tiles: tile x tile work-items, LAMP_TILE */
  unsigned tile_vec;   /* columns per work-item along C in those kernels (16 CPU, 4 GPU) */
  unsigned att_rows;   /* attention: rows (queries or keys) per work-group */
  unsigned att_lanes;  /* attention: work-items per row at head width 64 (1 on the CPU
                          profile, where a row's D floats are vectors in one work-item) */
  size_t local_budget; /* bytes of local memory a work-group of the profile's kernels may use */
} lamp_kernel_profile;

/* The profile AUTO picks for a device: LAMP_KERNEL_PROFILE_GPU or LAMP_KERNEL_PROFILE_CPU. */
LAMP_API int lamp_kernel_profile_auto(const lamp_device_info *info);

/* "cpu", "gpu", "auto" ("?" for anything else), and back (-1 for an unknown name). */
LAMP_API const char *lamp_kernel_profile_name(int kind);
LAMP_API int lamp_kernel_profile_parse(const char *name);

/* Defaults: everything from the environment. */
LAMP_API void lamp_context_options_init(lamp_context_options *options);

/* Creates a context that owns a new OpenCL context and queue on the selected device.
 * `options` may be NULL. On failure `*out` is NULL and, when `error` is not NULL, a message
 * naming the cause is written there (at most `error_size` bytes, NUL-terminated).
 *
 * lamp_context_create and lamp_context_adopt are the only lamp functions with an `error`
 * buffer: there is no context yet to hold their message. Every other function returns a
 * lamp_status and records its message in the context passed to it, for lamp_context_error
 * (given a NULL context, it returns the status alone). */
LAMP_API lamp_status lamp_context_create(const lamp_context_options *options, lamp_context **out,
                                         char *error, size_t error_size);

/* Creates a context on objects the host application owns. lamp retains its own reference to
 * each and releases only those: the host's objects stay valid after lamp_context_release.
 * `queue` must be in-order, on `device` and `cl_ctx`. Profiling needs the queue to have been
 * created with CL_QUEUE_PROFILING_ENABLE; without it, profiling stays off. Errors go to `error`
 * as for lamp_context_create. */
LAMP_API lamp_status lamp_context_adopt(cl_context cl_ctx, cl_device_id device,
                                        cl_command_queue queue, const lamp_context_options *options,
                                        lamp_context **out, char *error, size_t error_size);

/* Waits for queued work and releases everything the context holds; the profile table, when
 * profiling is on, is the caller's to read or print first (lamp/profile.h). NULL is accepted.
 *
 * CLBlast keeps its compiled kernels in a process-wide cache whose programs hold their OpenCL
 * context alive. Releasing a context that lamp_context_create made clears that cache
 * (CLBlastClearCache), so the OpenCL context is really freed then, and not later by CLBlast's
 * static destructor after the OpenCL implementation has been torn down. Other contexts' CLBlast
 * kernels are rebuilt on their next use. Releasing an adopted context leaves the cache alone: the
 * host's context may still use it, and the host may call CLBlastClearCache itself. */
LAMP_API void lamp_context_release(lamp_context *ctx);

/* The detail of the last failed call on this context ("" when none): the call, the kernel or
 * file, and for a failed build the compiler's full log. Valid until the next call. */
LAMP_API const char *lamp_context_error(const lamp_context *ctx);

/* Waits until every command queued so far has finished. */
LAMP_API lamp_status lamp_context_finish(lamp_context *ctx);

LAMP_API cl_context lamp_context_cl_context(const lamp_context *ctx);
LAMP_API cl_device_id lamp_context_cl_device(const lamp_context *ctx);
LAMP_API cl_command_queue lamp_context_cl_queue(const lamp_context *ctx);

/* The device the context runs on. */
LAMP_API const lamp_device_info *lamp_context_device(const lamp_context *ctx);

/* The kernel profile the context's programs are built for. */
LAMP_API lamp_status lamp_context_get_kernel_profile(const lamp_context *ctx,
                                                     lamp_kernel_profile *profile);

/* Program builds and the on-disk cache, counted since the context was created. */
typedef struct lamp_context_stats {
  uint64_t programs_built;    /* programs compiled from source */
  uint64_t cache_hits;        /* programs loaded from a cached binary */
  uint64_t cache_misses;      /* cache lookups that found no usable entry */
  uint64_t cache_rejected;    /* entries found truncated or corrupt, discarded and rebuilt */
  uint64_t cache_write_failed;/* binaries that could not be stored (the build still succeeds) */
  double build_seconds;       /* wall time spent obtaining programs, built or cached */
  int tuning_applied;         /* GEMM tuning applied: 1 stored result, 2 built-in, 0 none */
} lamp_context_stats;

LAMP_API lamp_status lamp_context_get_stats(const lamp_context *ctx, lamp_context_stats *stats);

/* The program cache folder in use, or "" when the cache is off. */
LAMP_API const char *lamp_context_cache_dir(const lamp_context *ctx);

/* The folder for stored tuning results: the cache folder's location, whether or not the program
 * cache is on; "" when no folder could be determined. */
LAMP_API const char *lamp_context_state_dir(const lamp_context *ctx);

#ifdef __cplusplus
}
#endif

#endif
