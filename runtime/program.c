/* Program builds through the binary cache, and the context's table of built-in kernels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

struct lamp_program {
  lamp_context *ctx;
  cl_program program;
};

/* Everything that decides what binary a build yields, as text stored in the entry too. */
static char *lamp__program_key_text(const lamp_context *ctx, const char *options,
                                    const char *source, uint64_t *key) {
  uint64_t source_hash = lamp__hash64(LAMP__HASH_SEED, source, strlen(source));
  const char *fmt =
      "lamp program cache v1\nplatform=%s\ndevice=%s\nvendor=%s\ndriver=%s\nversion=%s\n"
      "options=%s\nsource=%016llx\nsource_bytes=%zu\n";
  int n = snprintf(NULL, 0, fmt, ctx->info.platform_name, ctx->info.name, ctx->info.vendor,
                   ctx->info.driver_version, ctx->info.device_version, options,
                   (unsigned long long)source_hash, strlen(source));
  char *text = malloc((size_t)n + 1);
  if (!text) return NULL;
  snprintf(text, (size_t)n + 1, fmt, ctx->info.platform_name, ctx->info.name, ctx->info.vendor,
           ctx->info.driver_version, ctx->info.device_version, options,
           (unsigned long long)source_hash, strlen(source));
  *key = lamp__hash64(lamp__hash64(LAMP__HASH_SEED, text, (size_t)n), source, strlen(source));
  return text;
}

static lamp_status lamp__program_log(lamp_context *ctx, cl_program prog, const char *name,
                                     const char *options, cl_int err) {
  lamp__fail(ctx, LAMP_ERR_BUILD, "building kernel program '%s' failed (%s) with options \"%s\"; "
             "build log:\n", name, lamp_cl_error_name(err), options);
  size_t log_size = 0;
  if (clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size) ==
          CL_SUCCESS &&
      log_size) {
    char *log = malloc(log_size + 1);
    if (log && clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, log_size, log,
                                     NULL) == CL_SUCCESS) {
      log[log_size] = '\0';
      lamp__fail_append(ctx, log);
    }
    free(log);
  }
  return LAMP_ERR_BUILD;
}

/* Stores the freshly built binary; a failure only costs the next start a rebuild. */
static void lamp__program_cache_store(lamp_context *ctx, cl_program prog, uint64_t key,
                                      const char *key_text) {
  size_t bin_size = 0;
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof(bin_size), &bin_size, NULL) !=
          CL_SUCCESS ||
      bin_size == 0) {
    ctx->stats.cache_write_failed++;
    return;
  }
  unsigned char *bin = malloc(bin_size);
  if (!bin || clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof(bin), &bin, NULL) != CL_SUCCESS ||
      lamp__cache_store(ctx, key, key_text, bin, bin_size) != LAMP_OK)
    ctx->stats.cache_write_failed++;
  free(bin);
}

static cl_program lamp__program_from_cache(lamp_context *ctx, uint64_t key, const char *key_text,
                                           const char *options) {
  unsigned char *bin = NULL;
  size_t size = 0;
  lamp_status st = lamp__cache_load(ctx, key, key_text, &bin, &size);
  /* Out of host memory reading it says nothing about the entry: keep it, build from source. */
  if (st == LAMP_ERR_NOT_FOUND || st == LAMP_ERR_OUT_OF_MEMORY) {
    ctx->stats.cache_misses++;
    return NULL;
  }
  cl_program prog = NULL;
  if (st == LAMP_OK) {
    cl_int err = CL_SUCCESS, bin_status = CL_SUCCESS;
    const unsigned char *bins[1] = {bin};
    prog = clCreateProgramWithBinary(ctx->cl_ctx, 1, &ctx->device, &size, bins, &bin_status, &err);
    if (err == CL_SUCCESS && bin_status == CL_SUCCESS)
      err = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
    if (err != CL_SUCCESS || bin_status != CL_SUCCESS) {
      if (prog) clReleaseProgram(prog);
      prog = NULL;
    }
  }
  free(bin);
  if (prog) {
    ctx->stats.cache_hits++;
    return prog;
  }
  /* Truncated, corrupt, or refused by the driver: drop it and rebuild from source. */
  ctx->stats.cache_rejected++;
  ctx->stats.cache_misses++;
  lamp__cache_discard(ctx, key);
  return NULL;
}

lamp_status lamp_program_build(lamp_context *ctx, const char *name, const char *source,
                               const char *options, lamp_program **out) {
  if (!ctx || !source || !out) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT,
                                                 "lamp_program_build: NULL argument");
  *out = NULL;
  if (!name) name = "(unnamed)";
  double t0 = lamp__now_seconds();

  size_t opt_len = strlen(ctx->device_options) + (options ? strlen(options) : 0) + 2;
  char *full = malloc(opt_len);
  if (!full) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory building %s", name);
  snprintf(full, opt_len, "%s%s%s", ctx->device_options, options ? " " : "",
           options ? options : "");

  uint64_t key = 0;
  char *key_text = NULL;
  cl_program prog = NULL;
  lamp_status st = LAMP_OK;
  if (ctx->cache_on) {
    key_text = lamp__program_key_text(ctx, full, source, &key);
    if (!key_text) {
      free(full);
      return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory building %s", name);
    }
    prog = lamp__program_from_cache(ctx, key, key_text, full);
  }
  if (!prog) {
    cl_int err = CL_SUCCESS;
    prog = clCreateProgramWithSource(ctx->cl_ctx, 1, &source, NULL, &err);
    if (err != CL_SUCCESS) {
      st = lamp__fail(ctx, lamp__status_from_cl(err), "clCreateProgramWithSource(%s): %s", name,
                      lamp_cl_error_name(err));
      prog = NULL;
    } else {
      err = clBuildProgram(prog, 1, &ctx->device, full, NULL, NULL);
      if (err != CL_SUCCESS) {
        st = lamp__program_log(ctx, prog, name, full, err);
        clReleaseProgram(prog);
        prog = NULL;
      } else {
        ctx->stats.programs_built++;
        if (ctx->cache_on) lamp__program_cache_store(ctx, prog, key, key_text);
      }
    }
  }
  free(key_text);
  free(full);
  if (st != LAMP_OK) return st;

  lamp_program *p = calloc(1, sizeof(*p));
  if (!p) {
    clReleaseProgram(prog);
    return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory building %s", name);
  }
  p->ctx = ctx;
  p->program = prog;
  ctx->stats.build_seconds += lamp__now_seconds() - t0;
  *out = p;
  return LAMP_OK;
}

lamp_status lamp_program_create_kernel(lamp_program *program, const char *kernel_name,
                                       cl_kernel *out) {
  if (!program || !kernel_name || !out) return LAMP_ERR_INVALID_ARGUMENT;
  cl_int err = CL_SUCCESS;
  *out = clCreateKernel(program->program, kernel_name, &err);
  if (err != CL_SUCCESS) {
    *out = NULL;
    return lamp__fail(program->ctx, err == CL_INVALID_KERNEL_NAME ? LAMP_ERR_NOT_FOUND
                                                                  : lamp__status_from_cl(err),
                      "clCreateKernel(%s): %s", kernel_name, lamp_cl_error_name(err));
  }
  return LAMP_OK;
}

cl_program lamp_program_cl_program(const lamp_program *program) {
  return program ? program->program : NULL;
}

void lamp_program_release(lamp_program *program) {
  if (!program) return;
  if (program->program) clReleaseProgram(program->program);
  free(program);
}

size_t lamp_program_builtin_count(void) { return lamp__kernel_source_count; }

const char *lamp_program_builtin_name(size_t index) {
  return index < lamp__kernel_source_count ? lamp__kernel_sources[index].name : NULL;
}

const char *lamp_program_builtin_source(size_t index) {
  return index < lamp__kernel_source_count ? lamp__kernel_sources[index].text : NULL;
}

/* The source of a built-in program. Embedded sources carry the prelude already
 * (cmake/embed_kernels.cmake); from LAMP_KERNEL_DIR the runtime prepends that folder's
 * prelude.cl, or the embedded one when the folder has none. A #line keeps build logs' line
 * numbers the program file's own. */
static lamp_status lamp__builtin_source(lamp_context *ctx, const char *name, char **text) {
  *text = NULL;
  if (ctx->kernel_dir[0]) {
    char path[1200];
    char *prelude = NULL, *body = NULL;
    size_t a = 0, b = 0;
    snprintf(path, sizeof(path), "%s/prelude.cl", ctx->kernel_dir);
    struct stat sb;
    lamp_status st = LAMP_OK;
    if (stat(path, &sb) == 0) {
      st = lamp__read_file(ctx, path, &prelude, &a);
    } else {
      a = strlen(lamp__kernel_prelude);
      prelude = malloc(a + 1);
      if (prelude) memcpy(prelude, lamp__kernel_prelude, a + 1);
      else st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (st != LAMP_OK) return st;
    snprintf(path, sizeof(path), "%s/%s.cl", ctx->kernel_dir, name);
    st = lamp__read_file(ctx, path, &body, &b);
    if (st == LAMP_OK) {
      static const char line[] = "\n#line 1\n";
      *text = malloc(a + sizeof(line) - 1 + b + 1);
      if (*text) {
        memcpy(*text, prelude, a);
        memcpy(*text + a, line, sizeof(line) - 1);
        memcpy(*text + a + sizeof(line) - 1, body, b);
        (*text)[a + sizeof(line) - 1 + b] = '\0';
      } else {
        st = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
      }
    }
    free(prelude);
    free(body);
    return st;
  }
  for (size_t i = 0; i < lamp__kernel_source_count; i++)
    if (strcmp(lamp__kernel_sources[i].name, name) == 0) {
      *text = malloc(lamp__kernel_sources[i].length + 1);
      if (!*text) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
      memcpy(*text, lamp__kernel_sources[i].text, lamp__kernel_sources[i].length);
      (*text)[lamp__kernel_sources[i].length] = '\0';
      return LAMP_OK;
    }
  return lamp__fail(ctx, LAMP_ERR_NOT_FOUND, "no built-in kernel program named '%s'", name);
}

static lamp_status lamp__builtin_program(lamp_context *ctx, const char *name,
                                         const char *options, lamp_program **out) {
  char key[160];
  snprintf(key, sizeof(key), "%s%s%s", name, options ? " " : "", options ? options : "");
  for (size_t i = 0; i < ctx->n_programs; i++)
    if (strcmp(ctx->programs[i].name, key) == 0) {
      *out = ctx->programs[i].program;
      return LAMP_OK;
    }
  if (ctx->n_programs == ctx->cap_programs) {
    size_t cap = ctx->cap_programs ? 2 * ctx->cap_programs : 8;
    lamp__program_slot *grown = realloc(ctx->programs, cap * sizeof(*grown));
    if (!grown) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
    ctx->programs = grown;
    ctx->cap_programs = cap;
  }
  char *source = NULL;
  LAMP__TRY(lamp__builtin_source(ctx, name, &source));
  lamp_program *prog = NULL;
  lamp_status st = lamp_program_build(ctx, name, source, options, &prog);
  free(source);
  if (st != LAMP_OK) return st;
  lamp__program_slot *slot = &ctx->programs[ctx->n_programs++];
  snprintf(slot->name, sizeof(slot->name), "%s", key);
  slot->program = prog;
  *out = prog;
  return LAMP_OK;
}

lamp_status lamp__kernel(lamp_context *ctx, const char *program, const char *kernel,
                         cl_kernel *out) {
  return lamp__kernel_variant(ctx, program, NULL, kernel, out);
}

lamp_status lamp__kernel_variant(lamp_context *ctx, const char *program, const char *options,
                                 const char *kernel, cl_kernel *out) {
  char full[224];
  snprintf(full, sizeof(full), "%s%s%s/%s", program, options ? " " : "", options ? options : "",
           kernel);
  for (size_t i = 0; i < ctx->n_kernels; i++)
    if (strcmp(ctx->kernels[i].name, full) == 0) {
      *out = ctx->kernels[i].kernel;
      return LAMP_OK;
    }
  if (ctx->n_kernels == ctx->cap_kernels) {
    size_t cap = ctx->cap_kernels ? 2 * ctx->cap_kernels : 16;
    lamp__kernel_slot *grown = realloc(ctx->kernels, cap * sizeof(*grown));
    if (!grown) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
    ctx->kernels = grown;
    ctx->cap_kernels = cap;
  }
  lamp_program *prog = NULL;
  LAMP__TRY(lamp__builtin_program(ctx, program, options, &prog));
  cl_kernel k = NULL;
  LAMP__TRY(lamp_program_create_kernel(prog, kernel, &k));
  lamp__kernel_slot *slot = &ctx->kernels[ctx->n_kernels++];
  snprintf(slot->name, sizeof(slot->name), "%s", full);
  slot->kernel = k;
  *out = k;
  return LAMP_OK;
}

lamp_status lamp__kernel_wg(lamp_context *ctx, const char *program, const char *kernel,
                            cl_kernel *out) {
  LAMP__TRY(lamp__kernel(ctx, program, kernel, out));
  size_t max = 0;
  LAMP__CL(ctx, clGetKernelWorkGroupInfo(*out, ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                         sizeof(max), &max, NULL));
  if (max < ctx->kprof.wg_size)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "kernel %s runs in work-groups of %zu items; "
                      "compiled for %s it allows %zu", kernel, ctx->kprof.wg_size, ctx->info.name, max);
  return LAMP_OK;
}

lamp_status lamp__arg(lamp_context *ctx, cl_kernel kernel, cl_uint index, size_t size,
                      const void *value) {
  cl_int err = clSetKernelArg(kernel, index, size, value);
  if (err == CL_SUCCESS) return LAMP_OK;
  char name[64] = "?";
  clGetKernelInfo(kernel, CL_KERNEL_FUNCTION_NAME, sizeof(name), name, NULL);
  name[sizeof(name) - 1] = '\0';
  return lamp__fail(ctx, lamp__status_from_cl(err), "clSetKernelArg(%s, %u): %s", name, index,
                    lamp_cl_error_name(err));
}

lamp_status lamp__launch(lamp_context *ctx, cl_kernel kernel, const char *name, cl_uint dims,
                         const size_t *global, const size_t *local) {
  size_t rounded[3] = {1, 1, 1};
  for (cl_uint d = 0; d < dims; d++) {
    rounded[d] = global[d];
    if (local && local[d]) rounded[d] = (global[d] + local[d] - 1) / local[d] * local[d];
    if (rounded[d] == 0) return LAMP_OK; /* nothing to do */
  }
  cl_event *ev = lamp__profile_event_slot(ctx);
  cl_int err = clEnqueueNDRangeKernel(ctx->queue, kernel, dims, NULL, rounded, local, 0, NULL, ev);
  if (err != CL_SUCCESS)
    return lamp__fail(ctx, lamp__status_from_cl(err), "clEnqueueNDRangeKernel(%s): %s", name,
                      lamp_cl_error_name(err));
  return lamp__profile_commit(ctx, name);
}
