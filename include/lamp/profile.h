/* lamp: per-kernel timing from OpenCL events.
 *
 * With profiling on (option or LAMP_PROFILE=1), every kernel and GEMM lamp enqueues is timed on
 * the device. Records are grouped by name: kernels by their kernel name, GEMMs as
 * "sgemm" or "sgemm_batched". */
#ifndef LAMP_PROFILE_H
#define LAMP_PROFILE_H

#include <stdint.h>
#include <stdio.h>

#include "lamp/context.h"
#include "lamp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lamp_profile_entry {
  char name[64];
  uint64_t calls;
  double total_ms; /* device time, start to end of each command */
  double mean_ms;
  double share;    /* total_ms over the sum of all entries' total_ms, 0..1 */
} lamp_profile_entry;

/* Nonzero when this context times its commands. */
LAMP_API int lamp_profile_enabled(const lamp_context *ctx);

/* Waits for the queue, then copies up to `capacity` entries, largest total first; `*count` is
 * the number of distinct names. */
LAMP_API lamp_status lamp_profile_read(lamp_context *ctx, lamp_profile_entry *entries,
                                       size_t capacity, size_t *count);

/* Prints the table (name, calls, total, mean, share) to `out`. */
LAMP_API lamp_status lamp_profile_print(lamp_context *ctx, FILE *out);

/* Forgets every record so far. */
LAMP_API lamp_status lamp_profile_reset(lamp_context *ctx);

#ifdef __cplusplus
}
#endif

#endif
