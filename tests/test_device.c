/* Device selection strings, context creation errors, and adopting a host's OpenCL objects. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fixture.h"
#include "ref.h"

static lamp_device_info infos[64];

/* Case-insensitive strstr, written here so the test does not share lamp's own. */
static const char *strcasestr_ref(const char *hay, const char *needle) {
  for (; *hay; hay++)
    if (strncasecmp(hay, needle, strlen(needle)) == 0) return hay;
  return NULL;
}
static size_t count;

static int list_devices(void **state) {
  (void)state;
  count = 0;
  if (lamp_device_list(infos, 64, &count) != LAMP_OK || count == 0) return -1;
  if (count > 64) count = 64;
  return 0;
}

static void test_device_list_fields(void **state) {
  (void)state;
  size_t n = 0;
  assert_int_equal(lamp_device_list(NULL, 0, &n), LAMP_OK);
  assert_int_equal(n, count);
  for (size_t i = 0; i < count; i++) {
    assert_non_null(infos[i].device);
    assert_true(strlen(infos[i].name) > 0);
    assert_true(infos[i].compute_units > 0);
    assert_true(infos[i].global_mem_bytes > 0);
    assert_true(infos[i].max_work_group_size > 0);
  }
  assert_int_equal(lamp_device_list(NULL, 1, &n), LAMP_ERR_INVALID_ARGUMENT);
}

static void test_select_by_index(void **state) {
  (void)state;
  size_t index = 99;
  char sel[32];
  snprintf(sel, sizeof(sel), "%u:%u", infos[count - 1].platform_index,
           infos[count - 1].device_index);
  assert_int_equal(lamp_device_select(infos, count, sel, &index, NULL, 0), LAMP_OK);
  assert_int_equal(index, count - 1);
}

static void test_select_out_of_range(void **state) {
  (void)state;
  size_t index = 0;
  char msg[4096];
  assert_int_equal(lamp_device_select(infos, count, "0:99", &index, msg, sizeof(msg)),
                   LAMP_ERR_DEVICE_NOT_FOUND);
  assert_non_null(strstr(msg, "no device 0:99"));
  assert_non_null(strstr(msg, infos[0].name)); /* the message lists what exists */
  assert_int_equal(lamp_device_select(infos, count, "7:0", &index, msg, sizeof(msg)),
                   LAMP_ERR_DEVICE_NOT_FOUND);
}

static void test_select_by_substring(void **state) {
  (void)state;
  /* a middle part of the device name, in the other case */
  char part[8] = {0};
  const char *name = infos[0].name;
  size_t len = strlen(name), start = len > 6 ? 2 : 0;
  for (size_t i = 0; i < 4 && start + i < len; i++)
    part[i] = (char)(isupper((unsigned char)name[start + i]) ? tolower((unsigned char)name[start + i])
                                                             : toupper((unsigned char)name[start + i]));
  size_t index = 99;
  assert_int_equal(lamp_device_select(infos, count, part, &index, NULL, 0), LAMP_OK);
  /* the first device whose device or platform name holds the part */
  assert_true(strcasestr_ref(infos[index].name, part) ||
              strcasestr_ref(infos[index].platform_name, part));
  for (size_t i = 0; i < index; i++) {
    assert_null(strcasestr_ref(infos[i].name, part));
    assert_null(strcasestr_ref(infos[i].platform_name, part));
  }
  /* the platform name matches too */
  char platform[16] = {0};
  memcpy(platform, infos[0].platform_name, strlen(infos[0].platform_name) < 10 ? strlen(infos[0].platform_name) : 10);
  assert_int_equal(lamp_device_select(infos, count, platform, &index, NULL, 0), LAMP_OK);
  assert_int_equal(infos[index].platform_index, infos[0].platform_index);
}

static void test_select_no_match(void **state) {
  (void)state;
  size_t index = 0;
  char msg[4096];
  assert_int_equal(lamp_device_select(infos, count, "no-such-device-xyz", &index, msg, sizeof(msg)),
                   LAMP_ERR_DEVICE_NOT_FOUND);
  assert_non_null(strstr(msg, "no-such-device-xyz"));
  assert_non_null(strstr(msg, infos[0].platform_name));
}

static void test_select_default_and_env(void **state) {
  (void)state;
  size_t index = 99;
  unsetenv("LAMP_DEVICE");
  assert_int_equal(lamp_device_select(infos, count, NULL, &index, NULL, 0), LAMP_OK);
  /* the default is the first GPU, else accelerator, else CPU */
  const cl_device_type order[] = {CL_DEVICE_TYPE_GPU, CL_DEVICE_TYPE_ACCELERATOR, CL_DEVICE_TYPE_CPU};
  size_t want = 0;
  int found = 0;
  for (size_t o = 0; o < 3 && !found; o++)
    for (size_t i = 0; i < count && !found; i++)
      if (infos[i].type & order[o]) {
        want = i;
        found = 1;
      }
  assert_int_equal(index, want);

  setenv("LAMP_DEVICE", "no-such-device-xyz", 1);
  assert_int_equal(lamp_device_select(infos, count, "", &index, NULL, 0), LAMP_ERR_DEVICE_NOT_FOUND);
  char err[4096];
  lamp_context *ctx = (lamp_context *)1;
  assert_int_equal(lamp_context_create(NULL, &ctx, err, sizeof(err)), LAMP_ERR_DEVICE_NOT_FOUND);
  assert_null(ctx);
  assert_non_null(strstr(err, "no-such-device-xyz"));
  unsetenv("LAMP_DEVICE");
}

static cl_uint ref_count_context(cl_context c) {
  cl_uint n = 0;
  assert_int_equal(clGetContextInfo(c, CL_CONTEXT_REFERENCE_COUNT, sizeof(n), &n, NULL), CL_SUCCESS);
  return n;
}

static cl_uint ref_count_queue(cl_command_queue q) {
  cl_uint n = 0;
  assert_int_equal(clGetCommandQueueInfo(q, CL_QUEUE_REFERENCE_COUNT, sizeof(n), &n, NULL),
                   CL_SUCCESS);
  return n;
}

static void test_adopt_host_context(void **state) {
  (void)state;
  cl_int err = CL_SUCCESS;
  cl_device_id dev = infos[0].device;
  cl_context host_ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  assert_int_equal(err, CL_SUCCESS);
  cl_command_queue host_q = clCreateCommandQueue(host_ctx, dev, 0, &err);
  assert_int_equal(err, CL_SUCCESS);
  /* the host's own buffer, used by lamp through a wrapped tensor */
  float host[6] = {1, 2, 3, 4, 5, 6}, back[6] = {0};
  cl_mem buf = clCreateBuffer(host_ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof(host),
                              host, &err);
  assert_int_equal(err, CL_SUCCESS);
  /* Counted after the buffer, which holds a reference of its own to the context, and after
   * one host command: PoCL keeps a reference to a queue that has run a command. */
  const float zero = 0.0f;
  assert_int_equal(clEnqueueFillBuffer(host_q, buf, &zero, 4, 20, 4, 0, NULL, NULL), CL_SUCCESS);
  assert_int_equal(clFinish(host_q), CL_SUCCESS);
  cl_uint ctx_refs = ref_count_context(host_ctx), q_refs = ref_count_queue(host_q);

  lamp_context *ctx = NULL;
  char msg[1024];
  assert_int_equal(lamp_context_adopt(host_ctx, dev, host_q, NULL, &ctx, msg, sizeof(msg)), LAMP_OK);
  assert_ptr_equal(lamp_context_cl_context(ctx), host_ctx);
  assert_ptr_equal(lamp_context_cl_queue(ctx), host_q);
  lamp_tensor t;
  size_t ne = 6;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_wrap(ctx, buf, 0, LAMP_DTYPE_F32, 1, &ne, NULL, &t));
  lamp_tensor part;
  size_t ne2 = 2;
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_view(ctx, &t, 8, 1, &ne2, NULL, &part));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_fill(ctx, &part, -1.0f));
  LAMP_OK_OR_FAIL(ctx, lamp_context_finish(ctx));
  lamp_tensor_release(&t); /* wrapped: the host's buffer survives */
  lamp_context_release(ctx);

  assert_int_equal(ref_count_context(host_ctx), ctx_refs);
  assert_int_equal(ref_count_queue(host_q), q_refs);
  /* the host's objects still work after lamp is gone */
  assert_int_equal(clEnqueueReadBuffer(host_q, buf, CL_TRUE, 0, sizeof(back), back, 0, NULL, NULL),
                   CL_SUCCESS);
  const float want[6] = {1, 2, -1, -1, 5, 0};
  for (int i = 0; i < 6; i++) assert_true(back[i] == want[i]);
  clReleaseMemObject(buf);
  clReleaseCommandQueue(host_q);
  clReleaseContext(host_ctx);
}

static void test_adopt_rejects_mismatch(void **state) {
  (void)state;
  cl_int err = CL_SUCCESS;
  cl_device_id dev = infos[0].device;
  cl_context c1 = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  cl_context c2 = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  cl_command_queue q2 = clCreateCommandQueue(c2, dev, 0, &err);
  lamp_context *ctx = NULL;
  char msg[512];
  assert_int_equal(lamp_context_adopt(c1, dev, q2, NULL, &ctx, msg, sizeof(msg)),
                   LAMP_ERR_INVALID_ARGUMENT);
  assert_null(ctx);
  assert_non_null(strstr(msg, "another context"));
  assert_int_equal(lamp_context_adopt(NULL, dev, q2, NULL, &ctx, msg, sizeof(msg)),
                   LAMP_ERR_INVALID_ARGUMENT);
  clReleaseCommandQueue(q2);
  clReleaseContext(c2);
  clReleaseContext(c1);
}

static void test_two_contexts_independent(void **state) {
  (void)state;
  lamp_context *a = NULL, *b = NULL;
  char msg[512];
  assert_int_equal(lamp_context_create(NULL, &a, msg, sizeof(msg)), LAMP_OK);
  assert_int_equal(lamp_context_create(NULL, &b, msg, sizeof(msg)), LAMP_OK);
  assert_ptr_not_equal(lamp_context_cl_context(a), lamp_context_cl_context(b));
  lamp_tensor ta, tb;
  size_t ne = 4;
  float out[4];
  LAMP_OK_OR_FAIL(a, lamp_tensor_create(a, LAMP_DTYPE_F32, 1, &ne, &ta));
  LAMP_OK_OR_FAIL(b, lamp_tensor_create(b, LAMP_DTYPE_F32, 1, &ne, &tb));
  LAMP_OK_OR_FAIL(a, lamp_tensor_fill(a, &ta, 3.0f));
  /* an error in one context leaves the other's message alone */
  lamp_tensor bad;
  assert_int_equal(lamp_tensor_create(b, LAMP_DTYPE_F32, 0, &ne, &bad), LAMP_ERR_SHAPE);
  assert_string_equal(lamp_context_error(a), "");
  lamp_tensor_release(&tb);
  lamp_context_release(b); /* releasing b first must not disturb a */
  LAMP_OK_OR_FAIL(a, lamp_tensor_download(a, &ta, out, sizeof(out)));
  for (int i = 0; i < 4; i++) assert_true(out[i] == 3.0f);
  lamp_tensor_release(&ta);
  lamp_context_release(a);
}

static void test_status_names(void **state) {
  (void)state;
  assert_string_equal(lamp_status_name(LAMP_ERR_SHAPE), "LAMP_ERR_SHAPE");
  assert_string_equal(lamp_status_name((lamp_status)999), "LAMP_STATUS_UNKNOWN");
  assert_string_equal(lamp_cl_error_name(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES");
  assert_string_equal(lamp_clblast_error_name(-1016), "CLBlastInvalidLeadDimA");
  assert_true(strlen(lamp_status_string(LAMP_ERR_BUILD)) > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_device_list_fields),
      cmocka_unit_test(test_select_by_index),
      cmocka_unit_test(test_select_out_of_range),
      cmocka_unit_test(test_select_by_substring),
      cmocka_unit_test(test_select_no_match),
      cmocka_unit_test(test_select_default_and_env),
      cmocka_unit_test(test_adopt_host_context),
      cmocka_unit_test(test_adopt_rejects_mismatch),
      cmocka_unit_test(test_two_contexts_independent),
      cmocka_unit_test(test_status_names),
  };
  return cmocka_run_group_tests(tests, list_devices, NULL);
}
