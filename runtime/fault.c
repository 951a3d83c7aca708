/* Allocation-failure injection (runtime/fault.h); built only with -DLAMP_FAULT_INJECTION=ON. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

#if defined(__SANITIZE_ADDRESS__)
#define LAMP__FAULT_TRACE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LAMP__FAULT_TRACE 1
#endif
#endif
#ifdef LAMP__FAULT_TRACE
#include <sanitizer/common_interface_defs.h>
#endif

/* This file calls the real allocators: undo fault_inject.h, which every library object gets. */
#undef malloc
#undef calloc
#undef realloc
#undef strdup
#undef strndup
#undef clCreateBuffer

static atomic_uint_fast64_t lamp__host_calls, lamp__device_calls, lamp__injected;
static atomic_uint_fast64_t lamp__host_fail, lamp__device_fail;

void lamp__fault_reset(void) {
  atomic_store(&lamp__host_fail, 0);
  atomic_store(&lamp__device_fail, 0);
  atomic_store(&lamp__host_calls, 0);
  atomic_store(&lamp__device_calls, 0);
  atomic_store(&lamp__injected, 0);
}

void lamp__fault_host_fail_at(uint64_t n) { atomic_store(&lamp__host_fail, n); }
void lamp__fault_device_fail_at(uint64_t n) { atomic_store(&lamp__device_fail, n); }
uint64_t lamp__fault_host_count(void) { return atomic_load(&lamp__host_calls); }
uint64_t lamp__fault_device_count(void) { return atomic_load(&lamp__device_calls); }
uint64_t lamp__fault_injected(void) { return atomic_load(&lamp__injected); }

/* Counts one call of a kind; nonzero when it is the one to fail. */
static int lamp__fault_tick(atomic_uint_fast64_t *calls, atomic_uint_fast64_t *fail_at) {
  uint64_t n = atomic_fetch_add(calls, 1) + 1;
  if (n != atomic_load(fail_at)) return 0;
  atomic_fetch_add(&lamp__injected, 1);
#ifdef LAMP__FAULT_TRACE
  /* where the failing call is, for a person reading a failure (sanitizer build) */
  if (getenv("LAMP_FAULT_TRACE")) __sanitizer_print_stack_trace();
#endif
  return 1;
}

void *lamp__fault_malloc(size_t size) {
  return lamp__fault_tick(&lamp__host_calls, &lamp__host_fail) ? NULL : malloc(size);
}

void *lamp__fault_calloc(size_t count, size_t size) {
  return lamp__fault_tick(&lamp__host_calls, &lamp__host_fail) ? NULL : calloc(count, size);
}

void *lamp__fault_realloc(void *ptr, size_t size) {
  /* A failed realloc leaves `ptr` allocated, as the real one does. */
  return lamp__fault_tick(&lamp__host_calls, &lamp__host_fail) ? NULL : realloc(ptr, size);
}

char *lamp__fault_strdup(const char *s) {
  return lamp__fault_tick(&lamp__host_calls, &lamp__host_fail) ? NULL : strdup(s);
}

char *lamp__fault_strndup(const char *s, size_t n) {
  return lamp__fault_tick(&lamp__host_calls, &lamp__host_fail) ? NULL : strndup(s, n);
}

cl_mem lamp__fault_clCreateBuffer(cl_context context, cl_mem_flags flags, size_t size,
                                  void *host_ptr, cl_int *errcode_ret) {
  if (lamp__fault_tick(&lamp__device_calls, &lamp__device_fail)) {
    if (errcode_ret) *errcode_ret = CL_MEM_OBJECT_ALLOCATION_FAILURE;
    return NULL;
  }
  return clCreateBuffer(context, flags, size, host_ptr, errcode_ret);
}
