/* lamp: OpenCL programs built for a context's device, through lamp's on-disk binary cache.
 *
 * lamp builds its own kernels this way; a host application can use it for kernels of its own.
 * Every build gets lamp's per-device options (see lamp_program_device_options) before the
 * caller's. The cache key is a hash of the source, the options, the platform, the device and
 * the driver version; an entry is written atomically and checked on load, and a truncated or
 * corrupt entry is discarded and rebuilt. */
#ifndef LAMP_PROGRAM_H
#define LAMP_PROGRAM_H

#include "lamp/context.h"
#include "lamp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lamp_program lamp_program;

/* Builds `source` (named `name` in messages) with `options` (may be NULL). A compile error is
 * LAMP_ERR_BUILD and lamp_context_error holds the compiler's full log. */
LAMP_API lamp_status lamp_program_build(lamp_context *ctx, const char *name, const char *source,
                                        const char *options, lamp_program **out);

/* Creates a new kernel object from the program; the caller releases it with clReleaseKernel. */
LAMP_API lamp_status lamp_program_create_kernel(lamp_program *program, const char *kernel_name,
                                                cl_kernel *out);

LAMP_API cl_program lamp_program_cl_program(const lamp_program *program);

LAMP_API void lamp_program_release(lamp_program *program);

/* The build options lamp adds for the context's device: -cl-std, LAMP_* defines for the local
 * work-group size and tiles, LAMP_HAS_FP16 when cl_khr_fp16 is present. */
LAMP_API const char *lamp_program_device_options(const lamp_context *ctx);

/* The kernel programs built into the library, in name order: how many there are, and the name
 * and NUL-terminated source of each (NULL past the end). A program's source is
 * kernels/prelude.cl (code the kernels share; not a program itself) followed by
 * kernels/<name>.cl. These are the embedded sources; a context with a kernel_dir builds its own
 * programs from that folder's files, prelude.cl included. For timing or warming the program
 * cache with lamp_program_build, as bench_startup does. */
LAMP_API size_t lamp_program_builtin_count(void);
LAMP_API const char *lamp_program_builtin_name(size_t index);
LAMP_API const char *lamp_program_builtin_source(size_t index);

#ifdef __cplusplus
}
#endif

#endif
