/* One lamp context per test program, created in the group setup: PoCL and CLBlast compile
 * slowly, so the tests of a file share it. */
#ifndef LAMP_TEST_FIXTURE_H
#define LAMP_TEST_FIXTURE_H

#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <string.h>
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

/* Under a simulator (LAMP_TEST_SIMULATOR=1, which scripts/oclgrind.sh sets) a program runs its
 * small cases only; PoCL and Intel's runtime run them all. */
static inline int fixture_simulator(void) {
  const char *e = getenv("LAMP_TEST_SIMULATOR");
  return e && strcmp(e, "1") == 0;
}

static inline int fixture_teardown(void **state) {
  lamp_context_release(*state);
  *state = NULL;
  return 0;
}

/* A file a test needs is absent: a skip, or a failure when the environment variable `require`
 * is "1". The test script sets LAMP_REQUIRE_MODEL=1 (it downloads the real model itself, so a
 * missing model cannot pass as green) and LAMP_REQUIRE_DATA=1 when the project's data folder
 * beside the repository exists (it is not part of the repository). */
#define FIXTURE_NEED(require, path, why)                                                \
  do {                                                                                  \
    const char *req_ = getenv(require);                                                 \
    if (req_ && !strcmp(req_, "1")) fail_msg("%s is absent (%s)", (path), (why));       \
    print_message("skipped: %s is absent (%s)\n", (path), (why));                       \
    skip();                                                                             \
  } while (0)
#define FIXTURE_NEED_FILE(path, why) FIXTURE_NEED("LAMP_REQUIRE_MODEL", path, why)

/* Fails the test with the context's message when a lamp call does not return LAMP_OK. */
#define LAMP_OK_OR_FAIL(ctx, call)                                                  \
  do {                                                                              \
    lamp_status st_ = (call);                                                       \
    if (st_ != LAMP_OK)                                                             \
      fail_msg("%s -> %s: %s", #call, lamp_status_name(st_), lamp_context_error(ctx)); \
  } while (0)

/* `name` with the case of each letter swapped, into out (size bytes). */
static inline const char *fixture_swap_case(const char *name, char *out, size_t size) {
  size_t n = strlen(name);
  assert_true(n < size);
  for (size_t i = 0; i <= n; i++) {
    unsigned char c = (unsigned char)name[i];
    out[i] = (char)(isupper(c) ? tolower(c) : toupper(c));
  }
  return out;
}

/* An enum's name parser against its enum-to-name function: every value from `first` to `last`
 * that has a name (neither NULL nor "unknown") parses back from it as spelled and with its case
 * swapped, at least `min_named` values have one, and each name of the NULL-terminated list `bad`
 * and a NULL name or output are LAMP_ERR_INVALID_ARGUMENT, leaving the output as it was. */
#define FIXTURE_CHECK_NAMES(type, to_name, from_name, first, last, min_named, bad)          \
  do {                                                                                     \
    int named_ = 0;                                                                        \
    for (int v_ = (first); v_ <= (last); v_++) {                                           \
      const char *name_ = to_name((type)v_);                                               \
      if (!name_ || !strcmp(name_, "unknown")) continue;                                   \
      char swapped_[32];                                                                   \
      type got_ = (type)((first) == v_ ? (last) : (first));                                \
      assert_int_equal(from_name(name_, &got_), LAMP_OK);                                  \
      assert_int_equal(got_, v_);                                                          \
      got_ = (type)((first) == v_ ? (last) : (first));                                     \
      assert_int_equal(from_name(fixture_swap_case(name_, swapped_, sizeof(swapped_)), &got_), \
                       LAMP_OK);                                                           \
      assert_int_equal(got_, v_);                                                          \
      named_++;                                                                            \
    }                                                                                      \
    assert_true(named_ >= (min_named));                                                    \
    for (const char *const *b_ = (bad); *b_; b_++) {                                       \
      type got_ = (type)(first);                                                           \
      if (from_name(*b_, &got_) != LAMP_ERR_INVALID_ARGUMENT)                              \
        fail_msg("%s(\"%s\") is not refused", #from_name, *b_);                           \
      assert_int_equal(got_, (first));                                                     \
    }                                                                                      \
    type out_;                                                                             \
    assert_int_equal(from_name(NULL, &out_), LAMP_ERR_INVALID_ARGUMENT);                   \
    assert_int_equal(from_name(to_name((type)(first)), NULL), LAMP_ERR_INVALID_ARGUMENT);  \
  } while (0)

#endif
