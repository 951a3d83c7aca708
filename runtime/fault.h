/* Allocation-failure injection, for tests only (as libuv's replaceable allocator is used).
 *
 * Built only when lamp is configured with -DLAMP_FAULT_INJECTION=ON (off by default and in every
 * release build; scripts/sanitize.sh turns it on together with the sanitizers). Then every
 * object of the library is compiled with `-include runtime/fault_inject.h`, which redefines
 * malloc, calloc, realloc, strdup and strndup as lamp__fault_* and clCreateBuffer as
 * lamp__fault_clCreateBuffer. So only lamp's own allocations are counted and can be made to
 * fail: the OpenCL loader's, PoCL's, CLBlast's, clFFT's and the caller's are not.
 *
 * Two counters, one for host allocations and one for device buffers, count every call since the
 * last lamp__fault_reset. When armed with lamp__fault_host_fail_at(n) (or _device_), call number
 * n of that kind fails: a host allocation returns NULL, a buffer returns NULL with
 * CL_MEM_OBJECT_ALLOCATION_FAILURE in its error code; the calls before and after it succeed.
 *
 * With LAMP_FAULT_TRACE set in the environment, a sanitizer build prints the stack of each call
 * made to fail.
 *
 * The counters are process-global (atomic, but the counts only make sense while one thread uses
 * lamp) and exist in this test build alone: a normal build has neither this header's functions
 * nor any cost. tests/test_alloc_fail.c drives them. */
#ifndef LAMP_FAULT_H
#define LAMP_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include <CL/cl.h>

/* Zeroes both counters and disarms both kinds. */
void lamp__fault_reset(void);
/* Makes call `n` (1-based, counted from the last reset) fail; 0 disarms. */
void lamp__fault_host_fail_at(uint64_t n);
void lamp__fault_device_fail_at(uint64_t n);
/* Calls counted since the last reset (the failed one included). */
uint64_t lamp__fault_host_count(void);
uint64_t lamp__fault_device_count(void);
/* How many calls were made to fail since the last reset (0 or 1). */
uint64_t lamp__fault_injected(void);

/* The replacements fault_inject.h puts in place of the real calls. */
void *lamp__fault_malloc(size_t size);
void *lamp__fault_calloc(size_t count, size_t size);
void *lamp__fault_realloc(void *ptr, size_t size);
char *lamp__fault_strdup(const char *s);
char *lamp__fault_strndup(const char *s, size_t n);
cl_mem lamp__fault_clCreateBuffer(cl_context context, cl_mem_flags flags, size_t size,
                                  void *host_ptr, cl_int *errcode_ret);

#endif
