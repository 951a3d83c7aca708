/* lamp internals shared by the runtime and the op modules. Not installed. */
#ifndef LAMP_INTERNAL_H
#define LAMP_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* The core sees the core's headers only; modules above it include their own. */
#include "lamp/context.h"
#include "lamp/device.h"
#include "lamp/gemm.h"
#include "lamp/profile.h"
#include "lamp/program.h"
#include "lamp/status.h"
#include "lamp/tensor.h"
#include "lamp/tune.h"

/* One kernel source built into the library (generated from kernels/ at build time). */
typedef struct lamp__kernel_source {
  const char *name; /* file name without .cl, e.g. "tensor_fill" */
  const char *text;
  size_t length;
} lamp__kernel_source;

extern const lamp__kernel_source lamp__kernel_sources[];
extern const size_t lamp__kernel_source_count;
/* kernels/prelude.cl, which every embedded source above already begins with */
extern const char lamp__kernel_prelude[];

typedef struct lamp__program_slot {
  char name[160]; /* "program" or "program options" */
  lamp_program *program;
} lamp__program_slot;

typedef struct lamp__kernel_slot {
  char name[224]; /* "program options/kernel" */
  cl_kernel kernel;
} lamp__kernel_slot;

typedef struct lamp__profile_pending {
  cl_event start; /* when set, timing starts where this marker ended (multi-kernel calls) */
  cl_event event;
  size_t entry;   /* index into prof */
} lamp__profile_pending;

typedef struct lamp__profile_acc {
  char name[64];
  uint64_t calls;
  double total_ms;
} lamp__profile_acc;

struct lamp_context {
  int owned; /* made by lamp_context_create (not adopted) */
  cl_context cl_ctx;
  cl_device_id device;
  cl_command_queue queue;
  lamp_device_info info;

  int cache_on;
  int tuning_on;
  char cache_dir[1024];
  char state_dir[1024];  /* where tuning results live; set even when the cache is off */
  char kernel_dir[1024]; /* "" means embedded sources */
  char device_options[512];
  int kprof_request;         /* LAMP_KERNEL_PROFILE_* asked for, AUTO resolved at setup */
  lamp_kernel_profile kprof; /* what device_options were derived from; kprof.wg_size is
                                LAMP_WG_SIZE, by which kernels size their local arrays */
  lamp_context_stats stats;

  char *error; /* last error detail, grown as needed */
  size_t error_cap;

  lamp__program_slot *programs;
  size_t n_programs, cap_programs;
  lamp__kernel_slot *kernels;
  size_t n_kernels, cap_kernels;

  int profile_on;
  lamp__profile_pending *pending;
  size_t n_pending, cap_pending;
  lamp__profile_acc *prof;
  size_t n_prof, cap_prof;
};

/* Records a message for lamp_context_error and returns `status`. `ctx` may be NULL. */
lamp_status lamp__fail(lamp_context *ctx, lamp_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Appends more text to the current error message (e.g. a build log). */
void lamp__fail_append(lamp_context *ctx, const char *text);

/* `bytes` for people: "512 bytes", or "4.2 MiB (4404019 bytes)"; returns buf. */
const char *lamp__bytes_text(uint64_t bytes, char *buf, size_t size);

/* A device buffer of `bytes` for `what` (a phrase such as "the model's blocks"), checked against
 * the device's largest allocation first. Every failure is LAMP_ERR_OUT_OF_MEMORY (or the status
 * of the OpenCL error) with a message naming what could not be allocated and how much: "cannot
 * allocate 4.2 MiB (4404019 bytes) on the device (NAME) for the model workspace's scratch:
 * CL_MEM_OBJECT_ALLOCATION_FAILURE". `*out` is NULL on failure. */
lamp_status lamp__buffer_create(lamp_context *ctx, cl_mem_flags flags, size_t bytes, void *host,
                                const char *what, cl_mem *out);

/* lamp_tensor_create with `what` named in its error messages (NULL: the tensor's shape). */
lamp_status lamp__tensor_create(lamp_context *ctx, lamp_dtype dtype, int ndim, const size_t *ne,
                                const char *what, lamp_tensor *out);

/* Maps an OpenCL error to the closest lamp status. */
lamp_status lamp__status_from_cl(cl_int err);

/* Evaluates an OpenCL call; on error records the call text, the code's name, file and line and
 * returns from the enclosing function with the mapped status. */
#define LAMP__CL(ctx, call)                                                                   \
  do {                                                                                        \
    cl_int lamp__err = (call);                                                                \
    if (lamp__err != CL_SUCCESS)                                                              \
      return lamp__fail((ctx), lamp__status_from_cl(lamp__err), "%s failed: %s (%s:%d)",      \
                        #call, lamp_cl_error_name(lamp__err), __FILE__, __LINE__);            \
  } while (0)

/* Propagates a non-OK lamp status. */
#define LAMP__TRY(expr)                     \
  do {                                      \
    lamp_status lamp__st = (expr);          \
    if (lamp__st != LAMP_OK) return lamp__st; \
  } while (0)

/* A kernel from one of lamp's built-in programs, built (or loaded from the cache) on first use
 * and kept for the context's lifetime. `program` is the kernels/ file name without ".cl". */
lamp_status lamp__kernel(lamp_context *ctx, const char *program, const char *kernel,
                         cl_kernel *out);
/* lamp__kernel for a kernel that runs in work-groups of exactly LAMP_WG_SIZE items (its local
 * arrays and loops are sized by it): a clear error where the compiled kernel allows fewer. */
lamp_status lamp__kernel_wg(lamp_context *ctx, const char *program, const char *kernel,
                            cl_kernel *out);
/* The same from a build of the program with extra options (defines a kernel is specialised
 * on, such as a head width); each distinct options string is its own program. */
lamp_status lamp__kernel_variant(lamp_context *ctx, const char *program, const char *options,
                                 const char *kernel, cl_kernel *out);

/* Sets kernel argument `index`; records the kernel and index on failure. */
lamp_status lamp__arg(lamp_context *ctx, cl_kernel kernel, cl_uint index, size_t size,
                      const void *value);

/* Enqueues `kernel` on the context's queue. `global` is rounded up to a multiple of `local`
 * when `local` is not NULL (kernels check their bounds). Timed under `name` when profiling. */
lamp_status lamp__launch(lamp_context *ctx, cl_kernel kernel, const char *name, cl_uint dims,
                         const size_t *global, const size_t *local);

/* Where an enqueue should store its event: a slot when profiling is on, else NULL. After the
 * enqueue, lamp__profile_commit(ctx, name) files the event under `name`. */
cl_event *lamp__profile_event_slot(lamp_context *ctx);
lamp_status lamp__profile_commit(lamp_context *ctx, const char *name);

/* Times everything enqueued between two calls, for library calls (CLBlast) that may launch
 * several kernels: begin enqueues a marker, end enqueues another and files the interval under
 * `name`. Both do nothing when profiling is off. */
lamp_status lamp__profile_begin(lamp_context *ctx, cl_event *marker);
lamp_status lamp__profile_end(lamp_context *ctx, cl_event marker, const char *name);

/* Resolves pending events into the per-name totals (waits for them). */
lamp_status lamp__profile_flush(lamp_context *ctx);
void lamp__profile_free(lamp_context *ctx);

/* 64-bit FNV-1a, for cache keys and checksums. */
uint64_t lamp__hash64(uint64_t seed, const void *data, size_t size);
#define LAMP__HASH_SEED 0xcbf29ce484222325ULL

/* Reads a whole file; `*data` is malloc'ed and NUL-terminated. */
lamp_status lamp__read_file(lamp_context *ctx, const char *path, char **data, size_t *size);

/* Writes `size` bytes to `path` atomically: a temporary file in the same folder, flushed, then
 * renamed over the target. Creates missing parent folders. */
lamp_status lamp__write_file_atomic(lamp_context *ctx, const char *path, const void *data,
                                    size_t size);

/* Program cache internals used by program.c. */
lamp_status lamp__cache_load(lamp_context *ctx, uint64_t key, const char *key_text,
                             unsigned char **binary, size_t *size);
lamp_status lamp__cache_store(lamp_context *ctx, uint64_t key, const char *key_text,
                              const unsigned char *binary, size_t size);
void lamp__cache_path(const lamp_context *ctx, uint64_t key, char *path, size_t path_size);
void lamp__cache_discard(const lamp_context *ctx, uint64_t key);

double lamp__now_seconds(void);

/* lamp's built-in tuning result for this kind of device: three sets (XgemmDirect, Xgemm,
 * GemmRoutine) in `sets`, or *n_sets = 0 when there is none. */
lamp_status lamp__tune_builtin(lamp_context *ctx, lamp_tune_params *sets, size_t *n_sets);

/* CLBlast's own parameters for the context's device (XgemmDirect, Xgemm, GemmRoutine), as they
 * were before lamp first overrode them in this process. */
lamp_status lamp__tune_clblast_own(lamp_context *ctx, lamp_tune_params *sets);

/* The sets of the result stored for this device (*n_sets = 0 when there is none or it is for
 * another platform, device or driver); LAMP_ERR_FORMAT when it is damaged. */
lamp_status lamp__tune_stored(lamp_context *ctx, lamp_tune_params *sets, size_t cap,
                              size_t *n_sets);

/* Removes the result stored for this device; *removed is 1 when there was one. */
lamp_status lamp__tune_remove(lamp_context *ctx, int *removed);

/* Stores parameter sets as this device's tuning result (atomically), with `notes` (lines that
 * start with "# ") kept for people reading the file. */
lamp_status lamp__tune_store(lamp_context *ctx, const lamp_tune_params *sets, size_t n_sets,
                             const char *notes);

/* lamp_gemm for a generation step's products of a few rows: at most 16 rows of A with trans_b on
 * the CPU kernel profile go to lamp's own kernel (kernels/gemm_rows.cl, one work-item per row of
 * B), one row on the GPU profile to CLBlastSgemv, the rest to lamp_gemm. GEMM tiles of 32 rows
 * or more make a one-row product many times slower. Training keeps to lamp_gemm, whose numbers
 * these routes would change. With beta 0, C's old contents are ignored. */
lamp_status lamp__gemm_few(lamp_context *ctx, lamp_transpose trans_a, lamp_transpose trans_b,
                           float alpha, const lamp_tensor *a, const lamp_tensor *b, float beta,
                           lamp_tensor *c);
typedef lamp_status (*lamp__gemm_fn)(lamp_context *ctx, lamp_transpose trans_a,
                                     lamp_transpose trans_b, float alpha, const lamp_tensor *a,
                                     const lamp_tensor *b, float beta, lamp_tensor *c);

#endif
