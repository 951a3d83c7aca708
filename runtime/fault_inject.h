/* Included first in every library object of a -DLAMP_FAULT_INJECTION=ON build (never
 * installed, never in a normal build): routes lamp's own allocations through the counters of
 * runtime/fault.h. The system headers are included before the macros so that their
 * declarations keep the real names; runtime/fault.c, which calls the real ones, undoes them. */
#ifndef LAMP_FAULT_INJECT_H
#define LAMP_FAULT_INJECT_H

#include <stdlib.h>
#include <string.h>

#include "fault.h"

#define malloc(size) lamp__fault_malloc(size)
#define calloc(count, size) lamp__fault_calloc((count), (size))
#define realloc(ptr, size) lamp__fault_realloc((ptr), (size))
#define strdup(s) lamp__fault_strdup(s)
#define strndup(s, n) lamp__fault_strndup((s), (n))
#define clCreateBuffer(context, flags, size, host_ptr, errcode_ret) \
  lamp__fault_clCreateBuffer((context), (flags), (size), (host_ptr), (errcode_ret))

#endif
