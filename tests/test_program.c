/* Program builds: compiler errors carry the log, the on-disk cache hits, rejects corrupt
 * entries and can be turned off, and LAMP_KERNEL_DIR replaces the embedded sources. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

static const char *good_source =
    "__kernel void scale(__global float *x, float a) { x[get_global_id(0)] *= a; }\n";

static char cache_dir[256];

static int make_cache_dir(void **state) {
  (void)state;
  snprintf(cache_dir, sizeof(cache_dir), "/tmp/lamp-test-cache-XXXXXX");
  return mkdtemp(cache_dir) ? 0 : -1;
}

static int remove_cache_dir(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cache_dir);
  return system(cmd) == 0 ? 0 : -1;
}

static lamp_context *new_context(int cache, const char *dir) {
  lamp_context_options o;
  lamp_context_options_init(&o);
  o.cache = cache;
  o.cache_dir = dir;
  lamp_context *ctx = NULL;
  char err[1024];
  if (lamp_context_create(&o, &ctx, err, sizeof(err)) != LAMP_OK) fail_msg("context: %s", err);
  return ctx;
}

static lamp_context_stats build_once(lamp_context *ctx, const char *source) {
  lamp_program *p = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_program_build(ctx, "scale", source, "-DUNUSED=1", &p));
  cl_kernel k = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_program_create_kernel(p, "scale", &k));
  clReleaseKernel(k);
  lamp_program_release(p);
  lamp_context_stats s;
  LAMP_OK_OR_FAIL(ctx, lamp_context_get_stats(ctx, &s));
  return s;
}

/* The one cache entry in `dir`, or fails. */
static void cache_entry(const char *dir, char *path, size_t size) {
  assert_true(size >= 800);
  char sub[512];
  snprintf(sub, sizeof(sub), "%s/programs", dir);
  DIR *d = opendir(sub);
  assert_non_null(d);
  int found = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strstr(e->d_name, ".bin") && !strstr(e->d_name, ".tmp")) {
      snprintf(path, size, "%s/%s", sub, e->d_name);
      found++;
    }
  closedir(d);
  assert_int_equal(found, 1);
}

static void test_build_error_has_log(void **state) {
  lamp_context *ctx = *state;
  lamp_program *p = (lamp_program *)1;
  const char *bad = "__kernel void broken(__global float *x) { x[0] = undeclared_name + ; }\n";
  assert_int_equal(lamp_program_build(ctx, "broken", bad, NULL, &p), LAMP_ERR_BUILD);
  assert_null(p);
  const char *msg = lamp_context_error(ctx);
  assert_non_null(strstr(msg, "broken"));
  assert_non_null(strstr(msg, "build log"));
  /* the compiler's own words about the bad identifier */
  assert_non_null(strstr(msg, "undeclared_name"));
}

static void test_cache_miss_then_hit(void **state) {
  (void)state;
  char dir[300];
  snprintf(dir, sizeof(dir), "%s/hit", cache_dir);
  lamp_context *c1 = new_context(1, dir);
  lamp_context_stats s1 = build_once(c1, good_source);
  lamp_context_release(c1);
  assert_int_equal(s1.programs_built, 1);
  assert_int_equal(s1.cache_misses, 1);
  assert_int_equal(s1.cache_hits, 0);

  lamp_context *c2 = new_context(1, dir);
  lamp_context_stats s2 = build_once(c2, good_source);
  lamp_context_release(c2);
  assert_int_equal(s2.programs_built, 0); /* loaded, not compiled */
  assert_int_equal(s2.cache_hits, 1);

  /* other options or source are another key */
  lamp_context *c3 = new_context(1, dir);
  lamp_context_stats s3 = build_once(c3, "/* changed */\n__kernel void scale(__global float *x, "
                                         "float a) { x[get_global_id(0)] += a; }\n");
  lamp_context_release(c3);
  assert_int_equal(s3.programs_built, 1);
  assert_int_equal(s3.cache_hits, 0);
}

static void corrupt_and_rebuild(const char *dir, void (*damage)(const char *path)) {
  lamp_context *c1 = new_context(1, dir);
  build_once(c1, good_source);
  lamp_context_release(c1);
  char path[1024];
  cache_entry(dir, path, sizeof(path));
  damage(path);

  lamp_context *c2 = new_context(1, dir);
  lamp_context_stats s2 = build_once(c2, good_source);
  lamp_context_release(c2);
  assert_int_equal(s2.cache_rejected, 1);
  assert_int_equal(s2.programs_built, 1);

  /* the rebuilt entry is whole again */
  lamp_context *c3 = new_context(1, dir);
  lamp_context_stats s3 = build_once(c3, good_source);
  lamp_context_release(c3);
  assert_int_equal(s3.cache_hits, 1);
  assert_int_equal(s3.programs_built, 0);
}

static void truncate_half(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(truncate(path, st.st_size / 2), 0);
}

static void flip_last_bytes(const char *path) {
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, -16, SEEK_END), 0);
  unsigned char junk[16];
  for (int i = 0; i < 16; i++) junk[i] = (unsigned char)(0xA5 ^ i);
  assert_int_equal(fwrite(junk, 1, 16, f), 16);
  fclose(f);
}

static void test_cache_truncated_entry_rebuilt(void **state) {
  (void)state;
  char dir[300];
  snprintf(dir, sizeof(dir), "%s/truncated", cache_dir);
  corrupt_and_rebuild(dir, truncate_half);
}

static void test_cache_corrupt_entry_rebuilt(void **state) {
  (void)state;
  char dir[300];
  snprintf(dir, sizeof(dir), "%s/corrupt", cache_dir);
  corrupt_and_rebuild(dir, flip_last_bytes);
}

static void test_cache_disabled(void **state) {
  (void)state;
  char dir[300];
  snprintf(dir, sizeof(dir), "%s/off", cache_dir);
  setenv("LAMP_CACHE", "0", 1);
  for (int round = 0; round < 2; round++) {
    lamp_context *c = new_context(LAMP_FROM_ENV, dir);
    assert_string_equal(lamp_context_cache_dir(c), "");
    lamp_context_stats s = build_once(c, good_source);
    lamp_context_release(c);
    assert_int_equal(s.programs_built, 1);
    assert_int_equal(s.cache_hits + s.cache_misses, 0);
  }
  unsetenv("LAMP_CACHE");
  struct stat st;
  assert_int_not_equal(stat(dir, &st), 0); /* nothing was written */
}

static void test_kernel_dir_override(void **state) {
  (void)state;
  /* a kernel folder whose tensor_fill writes twice the value, by a factor its own prelude
   * defines: lamp must use both */
  char kdir[300], path[400];
  snprintf(kdir, sizeof(kdir), "%s/kernels", cache_dir);
  assert_int_equal(mkdir(kdir, 0755), 0);
  snprintf(path, sizeof(path), "%s/prelude.cl", kdir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("#define TEST_FACTOR 2.0f\n", f);
  fclose(f);
  snprintf(path, sizeof(path), "%s/tensor_fill.cl", kdir);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs("__kernel void tensor_fill_f32(__global float *b, ulong off, ulong n0, ulong n1, ulong n2,"
        " ulong n3, ulong s0, ulong s1, ulong s2, ulong s3, float v) {\n"
        "  ulong i = get_global_id(0); if (i < n0) b[off + i * s0] = TEST_FACTOR * v; }\n",
        f);
  fclose(f);
  lamp_context_options o;
  lamp_context_options_init(&o);
  o.cache = 0;
  o.kernel_dir = kdir;
  lamp_context *ctx = NULL;
  char err[512];
  assert_int_equal(lamp_context_create(&o, &ctx, err, sizeof(err)), LAMP_OK);
  lamp_tensor t;
  size_t ne = 5;
  float out[5];
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &ne, &t));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_fill(ctx, &t, 1.5f));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &t, out, sizeof(out)));
  for (int i = 0; i < 5; i++) assert_true(out[i] == 3.0f);
  lamp_tensor_release(&t);
  lamp_context_release(ctx);

  /* a folder without the file is a clear error naming it */
  o.kernel_dir = cache_dir;
  assert_int_equal(lamp_context_create(&o, &ctx, err, sizeof(err)), LAMP_OK);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &ne, &t));
  assert_int_equal(lamp_tensor_fill(ctx, &t, 1.0f), LAMP_ERR_IO);
  assert_non_null(strstr(lamp_context_error(ctx), "tensor_fill.cl"));
  lamp_tensor_release(&t);
  lamp_context_release(ctx);
}

static void test_missing_kernel_name(void **state) {
  lamp_context *ctx = *state;
  lamp_program *p = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_program_build(ctx, "scale", good_source, NULL, &p));
  cl_kernel k = NULL;
  assert_int_equal(lamp_program_create_kernel(p, "no_such_kernel", &k), LAMP_ERR_NOT_FOUND);
  assert_non_null(strstr(lamp_context_error(ctx), "no_such_kernel"));
  lamp_program_release(p);
}

static int group_setup(void **state) {
  return make_cache_dir(state) ? -1 : fixture_setup(state);
}

static int group_teardown(void **state) {
  fixture_teardown(state);
  return remove_cache_dir(state);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_build_error_has_log),
      cmocka_unit_test(test_cache_miss_then_hit),
      cmocka_unit_test(test_cache_truncated_entry_rebuilt),
      cmocka_unit_test(test_cache_corrupt_entry_rebuilt),
      cmocka_unit_test(test_cache_disabled),
      cmocka_unit_test(test_kernel_dir_override),
      cmocka_unit_test(test_missing_kernel_name),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
