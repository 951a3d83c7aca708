/* Event-based timing of every kernel and GEMM, grouped by name. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Completed events are folded into the totals once this many are pending, so a long run does
 * not hold an unbounded number of events. */
#define LAMP__PROFILE_FOLD_AT 256

int lamp_profile_enabled(const lamp_context *ctx) { return ctx && ctx->profile_on; }

cl_event *lamp__profile_event_slot(lamp_context *ctx) {
  if (!ctx->profile_on) return NULL;
  if (ctx->n_pending == ctx->cap_pending) {
    size_t cap = ctx->cap_pending ? 2 * ctx->cap_pending : 64;
    lamp__profile_pending *grown = realloc(ctx->pending, cap * sizeof(*grown));
    if (!grown) return NULL; /* this command goes untimed rather than fail */
    ctx->pending = grown;
    ctx->cap_pending = cap;
  }
  ctx->pending[ctx->n_pending].start = NULL;
  ctx->pending[ctx->n_pending].event = NULL;
  return &ctx->pending[ctx->n_pending].event;
}

static lamp_status lamp__profile_entry(lamp_context *ctx, const char *name, size_t *index) {
  for (size_t i = 0; i < ctx->n_prof; i++)
    if (strcmp(ctx->prof[i].name, name) == 0) {
      *index = i;
      return LAMP_OK;
    }
  if (ctx->n_prof == ctx->cap_prof) {
    size_t cap = ctx->cap_prof ? 2 * ctx->cap_prof : 16;
    lamp__profile_acc *grown = realloc(ctx->prof, cap * sizeof(*grown));
    if (!grown) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory profiling");
    ctx->prof = grown;
    ctx->cap_prof = cap;
  }
  lamp__profile_acc *e = &ctx->prof[ctx->n_prof];
  memset(e, 0, sizeof(*e));
  snprintf(e->name, sizeof(e->name), "%s", name);
  *index = ctx->n_prof++;
  return LAMP_OK;
}

static void lamp__profile_fold(lamp_context *ctx, size_t i) {
  cl_ulong start = 0, end = 0;
  cl_event ev = ctx->pending[i].event;
  cl_event first = ctx->pending[i].start;
  if (clGetEventProfilingInfo(first ? first : ev,
                              first ? CL_PROFILING_COMMAND_END : CL_PROFILING_COMMAND_START,
                              sizeof(start), &start, NULL) == CL_SUCCESS &&
      clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof(end), &end, NULL) ==
          CL_SUCCESS &&
      end >= start) {
    lamp__profile_acc *e = &ctx->prof[ctx->pending[i].entry];
    e->calls++;
    e->total_ms += 1e-6 * (double)(end - start);
  }
  clReleaseEvent(ev);
  if (first) clReleaseEvent(first);
}

/* Folds the events that have completed, without waiting for the others. */
static void lamp__profile_fold_completed(lamp_context *ctx) {
  size_t kept = 0;
  for (size_t i = 0; i < ctx->n_pending; i++) {
    cl_int state = CL_QUEUED;
    clGetEventInfo(ctx->pending[i].event, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof(state),
                   &state, NULL);
    if (state == CL_COMPLETE)
      lamp__profile_fold(ctx, i);
    else
      ctx->pending[kept++] = ctx->pending[i];
  }
  ctx->n_pending = kept;
}

lamp_status lamp__profile_commit(lamp_context *ctx, const char *name) {
  if (!ctx->profile_on || ctx->n_pending == ctx->cap_pending ||
      ctx->pending[ctx->n_pending].event == NULL)
    return LAMP_OK;
  size_t index = 0;
  lamp_status st = lamp__profile_entry(ctx, name, &index);
  if (st != LAMP_OK) {
    clReleaseEvent(ctx->pending[ctx->n_pending].event);
    if (ctx->pending[ctx->n_pending].start) clReleaseEvent(ctx->pending[ctx->n_pending].start);
    return st;
  }
  ctx->pending[ctx->n_pending].entry = index;
  ctx->n_pending++;
  if (ctx->n_pending >= LAMP__PROFILE_FOLD_AT) lamp__profile_fold_completed(ctx);
  return LAMP_OK;
}

lamp_status lamp__profile_begin(lamp_context *ctx, cl_event *marker) {
  *marker = NULL;
  if (!ctx->profile_on) return LAMP_OK;
  LAMP__CL(ctx, clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, marker));
  return LAMP_OK;
}

lamp_status lamp__profile_end(lamp_context *ctx, cl_event marker, const char *name) {
  if (!marker) return LAMP_OK;
  cl_event *slot = lamp__profile_event_slot(ctx);
  cl_int err = slot ? clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, slot) : CL_SUCCESS;
  if (!slot || err != CL_SUCCESS) {
    clReleaseEvent(marker);
    if (err != CL_SUCCESS)
      return lamp__fail(ctx, lamp__status_from_cl(err), "clEnqueueMarkerWithWaitList: %s",
                        lamp_cl_error_name(err));
    return LAMP_OK;
  }
  ctx->pending[ctx->n_pending].start = marker;
  return lamp__profile_commit(ctx, name);
}

lamp_status lamp__profile_flush(lamp_context *ctx) {
  if (!ctx->n_pending) return LAMP_OK;
  LAMP__CL(ctx, clFinish(ctx->queue));
  for (size_t i = 0; i < ctx->n_pending; i++) lamp__profile_fold(ctx, i);
  ctx->n_pending = 0;
  return LAMP_OK;
}

void lamp__profile_free(lamp_context *ctx) {
  for (size_t i = 0; i < ctx->n_pending; i++) {
    clReleaseEvent(ctx->pending[i].event);
    if (ctx->pending[i].start) clReleaseEvent(ctx->pending[i].start);
  }
  free(ctx->pending);
  free(ctx->prof);
  ctx->pending = NULL;
  ctx->prof = NULL;
  ctx->n_pending = ctx->cap_pending = ctx->n_prof = ctx->cap_prof = 0;
}

static int lamp__profile_by_total(const void *a, const void *b) {
  const lamp_profile_entry *x = a, *y = b;
  return (x->total_ms < y->total_ms) - (x->total_ms > y->total_ms);
}

lamp_status lamp_profile_read(lamp_context *ctx, lamp_profile_entry *entries, size_t capacity,
                              size_t *count) {
  if (!ctx || !count || (capacity && !entries)) return LAMP_ERR_INVALID_ARGUMENT;
  LAMP__TRY(lamp__profile_flush(ctx));
  *count = ctx->n_prof;
  if (!ctx->n_prof) return LAMP_OK;
  lamp_profile_entry *all = calloc(ctx->n_prof, sizeof(*all));
  if (!all) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory reading profile");
  double sum = 0;
  for (size_t i = 0; i < ctx->n_prof; i++) sum += ctx->prof[i].total_ms;
  for (size_t i = 0; i < ctx->n_prof; i++) {
    snprintf(all[i].name, sizeof(all[i].name), "%s", ctx->prof[i].name);
    all[i].calls = ctx->prof[i].calls;
    all[i].total_ms = ctx->prof[i].total_ms;
    all[i].mean_ms = all[i].calls ? all[i].total_ms / (double)all[i].calls : 0.0;
    all[i].share = sum > 0 ? all[i].total_ms / sum : 0.0;
  }
  qsort(all, ctx->n_prof, sizeof(*all), lamp__profile_by_total);
  memcpy(entries, all, (capacity < ctx->n_prof ? capacity : ctx->n_prof) * sizeof(*all));
  free(all);
  return LAMP_OK;
}

lamp_status lamp_profile_print(lamp_context *ctx, FILE *out) {
  if (!ctx || !out) return LAMP_ERR_INVALID_ARGUMENT;
  size_t n = 0;
  LAMP__TRY(lamp_profile_read(ctx, NULL, 0, &n));
  if (!n) return LAMP_OK;
  lamp_profile_entry *e = calloc(n, sizeof(*e));
  if (!e) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory printing profile");
  lamp_status st = lamp_profile_read(ctx, e, n, &n);
  if (st == LAMP_OK) {
    fprintf(out, "lamp profile (%s)\n%-32s %10s %12s %12s %7s\n", ctx->info.name, "name", "calls",
            "total ms", "mean ms", "share");
    for (size_t i = 0; i < n; i++)
      fprintf(out, "%-32s %10llu %12.3f %12.4f %6.1f%%\n", e[i].name,
              (unsigned long long)e[i].calls, e[i].total_ms, e[i].mean_ms, 100.0 * e[i].share);
  }
  free(e);
  return st;
}

lamp_status lamp_profile_reset(lamp_context *ctx) {
  if (!ctx) return LAMP_ERR_INVALID_ARGUMENT;
  LAMP__TRY(lamp__profile_flush(ctx));
  ctx->n_prof = 0;
  return LAMP_OK;
}
