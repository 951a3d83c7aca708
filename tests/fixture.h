/* One lamp context per test program, created in the group setup: PoCL and CLBlast compile
 * slowly, so the tests of a file share it. */
#ifndef LAMP_TEST_FIXTURE_H
#define LAMP_TEST_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "lamp/lamp.h"

static inline int fixture_setup(void **state) {
  char err[2048];
  lamp_context *ctx = NULL;
  lamp_status st = lamp_context_create(NULL, &ctx, err, sizeof(err));
  if (st != LAMP_OK) {
    fprintf(stderr, "cannot create a lamp context: %s: %s\n", lamp_status_name(st), err);
    return -1;
  }
  *state = ctx;
  return 0;
}

static inline int fixture_teardown(void **state) {
  lamp_context_release(*state);
  *state = NULL;
  return 0;
}

/* Fails the test with the context's message when a lamp call does not return LAMP_OK. */
#define LAMP_OK_OR_FAIL(ctx, call)                                                  \
  do {                                                                              \
    lamp_status st_ = (call);                                                       \
    if (st_ != LAMP_OK)                                                             \
      fail_msg("%s -> %s: %s", #call, lamp_status_name(st_), lamp_context_error(ctx)); \
  } while (0)

#endif
