/* Allocation-failure injection (runtime/fault.h; built only with -DLAMP_FAULT_INJECTION=ON).
 *
 * One full path through the engine's public API on tests/data/tiny.gguf: a context, the model
 * and its tokenizer, a classifier, examples from a TSV, a trainer (prompt, workspace, AdamW
 * state), two training steps and their results, a checkpoint, and every release. It runs once
 * to count lamp's host allocations and device buffers, then again for every N with the Nth host
 * allocation failing, then for every N with the Nth device buffer failing. Each of those runs
 * must end with LAMP_ERR_OUT_OF_MEMORY at some call, with a message that says so (for a device
 * buffer, what could not be allocated and how many bytes), or, where the failure hit something
 * lamp can do without (reading the program cache, which then builds from source; a longer error
 * message), with LAMP_OK and everything as the clean run made it: the losses, the model's name,
 * the checkpoint's bytes. No run may throw away a good program cache entry;
 * release must free everything. Under the sanitizer build LeakSanitizer checks after every run
 * that nothing leaked.
 *
 * LAMP_ALLOC_FAIL_STRIDE=k tries every k-th N only (for quick local runs; CI tries every N);
 * LAMP_ALLOC_FAIL_ONLY=host:N (or device:N) tries that one, and with LAMP_FAULT_TRACE=1 the
 * sanitizer build prints where it is; LAMP_ALLOC_FAIL_VERBOSE=1 prints every message. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "lamp/lamp.h"
#include "lamp/train.h"
#include "runtime/fault.h"

#if defined(__SANITIZE_ADDRESS__)
#define ALLOC_FAIL_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALLOC_FAIL_LSAN 1
#endif
#endif
#ifdef ALLOC_FAIL_LSAN
#include <sanitizer/lsan_interface.h>
#endif

typedef struct outcome {
  lamp_status st;
  const char *phase; /* the call that returned st ("" when every call returned LAMP_OK) */
  char msg[1024];
  char name[128], hf_id[128]; /* the model's, from lamp_llm_get_info */
  double loss[2];
  int steps_done;
  uint64_t cache_rejected; /* program cache entries the context found bad (none are) */
} outcome;

typedef struct env {
  char dir[64], tsv[128], ckpt[128];
  outcome clean;         /* the run without failures */
  unsigned char *bytes;  /* and its checkpoint */
  size_t size;
} env;

/* The whole file, malloc'ed (NULL when unreadable). */
static unsigned char *slurp(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char *data = NULL;
  size_t cap = 0, n = 0, got;
  do {
    if (n == cap) {
      unsigned char *grown = realloc(data, cap = cap ? 2 * cap : 4096);
      if (!grown) break;
      data = grown;
    }
    got = fread(data + n, 1, cap - n, f);
    n += got;
  } while (got);
  fclose(f);
  *size = n;
  return data;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The whole path once; everything made is released whatever happened. */
static void run_path(const env *e, outcome *o) {
  memset(o, 0, sizeof(*o));
  o->phase = "";
  lamp_context *ctx = NULL;
  lamp_llm *llm = NULL;
  lamp_classifier *cls = NULL;
  lamp_examples *train = NULL;
  lamp_trainer *tr = NULL;
  const lamp_task *task = NULL;

  lamp_status st = lamp_context_create(NULL, &ctx, o->msg, sizeof(o->msg));
  if (st != LAMP_OK) o->phase = "lamp_context_create";
#define PATH_STEP(name, call)           \
  if (st == LAMP_OK) {                  \
    st = (call);                        \
    if (st != LAMP_OK) o->phase = name; \
  }
  PATH_STEP("lamp_llm_load", lamp_llm_load(ctx, LAMP_TEST_DATA "/tiny.gguf", &llm));
  lamp_llm_info info;
  if (st == LAMP_OK && lamp_llm_get_info(llm, &info) == LAMP_OK) {
    snprintf(o->name, sizeof(o->name), "%s", info.name ? info.name : "(null)");
    snprintf(o->hf_id, sizeof(o->hf_id), "%s", info.hf_id ? info.hf_id : "(null)");
  }
  PATH_STEP("lamp_task_find", lamp_task_find(ctx, "sst2", &task));
  lamp_classifier_options co;
  lamp_classifier_options_init(&co, task);
  co.template_text = "{sentence} =";
  co.words = " a| b";
  co.max_tokens = 40;
  PATH_STEP("lamp_classifier_create", lamp_classifier_create(llm, &co, &cls));
  PATH_STEP("lamp_examples_load", lamp_examples_load(cls, e->tsv, 0, &train));
  lamp_trainer_options to;
  if (st == LAMP_OK) {
    lamp_trainer_options_init(&to, llm, LAMP_PROMPT_LAMP);
    to.prompt.length = 8;
    to.prompt.rank = 2;
    to.batch = 4;
    to.steps = 2;
  }
  PATH_STEP("lamp_trainer_create", lamp_trainer_create(cls, &to, train, &tr));
  for (int i = 0; i < 2; i++) {
    lamp_step_result r;
    PATH_STEP("lamp_trainer_step", lamp_trainer_step(tr));
    PATH_STEP("lamp_trainer_collect", lamp_trainer_collect(tr, &r));
    if (st == LAMP_OK) o->loss[o->steps_done++] = r.loss;
  }
  PATH_STEP("lamp_trainer_save", lamp_trainer_save(tr, e->ckpt, NULL, NULL, 0));
#undef PATH_STEP
  o->st = st;
  if (st != LAMP_OK && ctx) snprintf(o->msg, sizeof(o->msg), "%s", lamp_context_error(ctx));
  lamp_context_stats stats;
  if (ctx && lamp_context_get_stats(ctx, &stats) == LAMP_OK)
    o->cache_rejected = stats.cache_rejected;

  lamp_trainer_release(tr);
  lamp_examples_release(train);
  lamp_classifier_release(cls);
  lamp_llm_release(llm);
  lamp_context_release(ctx);
}

static int setup(void **state) {
  env *e = calloc(1, sizeof(*e));
  if (!e) return -1;
  snprintf(e->dir, sizeof(e->dir), "/tmp/lamp-test-alloc-XXXXXX");
  if (!mkdtemp(e->dir)) return -1;
  snprintf(e->tsv, sizeof(e->tsv), "%s/train.tsv", e->dir);
  snprintf(e->ckpt, sizeof(e->ckpt), "%s/checkpoint.safetensors", e->dir);
  FILE *f = fopen(e->tsv, "w");
  if (!f) return -1;
  fprintf(f, "sentence\tlabel\n");
  for (int i = 0; i < 12; i++) fprintf(f, "it went %s and %s\t%d\n", i % 2 ? "up" : "down",
                                       i % 3 ? "on" : "off", i % 2);
  fclose(f);
  *state = e;
  return 0;
}

static int teardown(void **state) {
  env *e = *state;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", e->dir);
  free(e->bytes);
  free(e);
  return 0;
}

/* Nothing the run made is left behind (LeakSanitizer, in the sanitizer build). */
static void expect_no_leak(const char *kind, uint64_t n) {
#ifdef ALLOC_FAIL_LSAN
  if (__lsan_do_recoverable_leak_check())
    fail_msg("%s allocation %llu failing leaked memory (LeakSanitizer's report above)", kind,
             (unsigned long long)n);
#else
  (void)kind;
  (void)n;
#endif
}

/* The clean run, twice: the first fills the program cache, so the second (counted) makes the
 * same calls as every later run. */
static void count_path(env *e, uint64_t *host, uint64_t *device) {
  for (int i = 0; i < 2; i++) {
    lamp__fault_reset();
    run_path(e, &e->clean);
    if (e->clean.st != LAMP_OK)
      fail_msg("the clean path failed at %s: %s: %s", e->clean.phase,
               lamp_status_name(e->clean.st), e->clean.msg);
  }
  *host = lamp__fault_host_count();
  *device = lamp__fault_device_count();
  free(e->bytes);
  e->bytes = slurp(e->ckpt, &e->size);
  assert_non_null(e->bytes);
  expect_no_leak("no", 0);
}

/* A run that returned LAMP_OK although an allocation failed did without something it could
 * (a cache, a longer message): everything it made must be what the clean run made. */
static void expect_same_as_clean(const env *e, const outcome *o, const char *kind, uint64_t n) {
  const outcome *c = &e->clean;
  if (o->steps_done != 2 || o->loss[0] != c->loss[0] || o->loss[1] != c->loss[1])
    fail_msg("%s allocation %llu failing gave LAMP_OK with losses %.9g %.9g, not %.9g %.9g", kind,
             (unsigned long long)n, o->loss[0], o->loss[1], c->loss[0], c->loss[1]);
  if (strcmp(o->name, c->name) || strcmp(o->hf_id, c->hf_id))
    fail_msg("%s allocation %llu failing gave LAMP_OK with the model named \"%s\" (id %s), not "
             "\"%s\" (id %s)", kind, (unsigned long long)n, o->name, o->hf_id, c->name,
             c->hf_id);
  size_t size = 0;
  unsigned char *bytes = slurp(e->ckpt, &size);
  int same = bytes && size == e->size && !memcmp(bytes, e->bytes, size);
  free(bytes);
  if (!same)
    fail_msg("%s allocation %llu failing gave LAMP_OK with a checkpoint unlike the clean run's",
             kind, (unsigned long long)n);
}

/* LAMP_ALLOC_FAIL_ONLY=kind:N: 0 when it names the other kind, else N (or 1 when unset) */
static uint64_t only(const char *kind, uint64_t *first) {
  const char *s = getenv("LAMP_ALLOC_FAIL_ONLY");
  size_t k = strlen(kind);
  if (!s || !*s) return 1;
  if (strncmp(s, kind, k) || s[k] != ':') return 0;
  *first = strtoull(s + k + 1, NULL, 10);
  return 1;
}

static uint64_t stride(void) {
  const char *s = getenv("LAMP_ALLOC_FAIL_STRIDE");
  long v = s ? strtol(s, NULL, 10) : 1;
  return v > 1 ? (uint64_t)v : 1;
}

/* A size in a message: digits followed by " bytes", " KiB", " MiB" or " GiB". */
static int names_a_size(const char *msg) {
  static const char *const units[] = {" bytes", " KiB", " MiB", " GiB"};
  for (size_t u = 0; u < 4; u++)
    for (const char *p = strstr(msg, units[u]); p; p = strstr(p + 1, units[u]))
      if (p > msg && p[-1] >= '0' && p[-1] <= '9') return 1;
  return 0;
}

/* Fails allocation N of `kind` for every N (by the stride) and checks each outcome. */
static void sweep(env *e, int device) {
  const char *kind = device ? "device" : "host";
  uint64_t host = 0, dev = 0;
  count_path(e, &host, &dev);
  uint64_t total = device ? dev : host, every = stride(), first = 1;
  if (!only(kind, &first)) skip();
  if (first > 1) total = first, every = 1;
  size_t tried = 0, errors = 0, tolerated = 0;
  double t0 = now_s();
  for (uint64_t n = first; n <= total; n += every) {
    lamp__fault_reset();
    if (device)
      lamp__fault_device_fail_at(n);
    else
      lamp__fault_host_fail_at(n);
    outcome o;
    run_path(e, &o);
    if (lamp__fault_injected() != 1)
      fail_msg("%s allocation %llu of %llu was not reached (the path made %llu)", kind,
               (unsigned long long)n, (unsigned long long)total,
               (unsigned long long)(device ? lamp__fault_device_count()
                                           : lamp__fault_host_count()));
    lamp__fault_reset();
    expect_no_leak(kind, n);
    if (o.cache_rejected)
      fail_msg("%s allocation %llu failing made the context discard %llu good program cache "
               "entries", kind, (unsigned long long)n, (unsigned long long)o.cache_rejected);
    tried++;
    if (o.st == LAMP_OK) {
      expect_same_as_clean(e, &o, kind, n);
      if (getenv("LAMP_ALLOC_FAIL_VERBOSE"))
        print_message("%s %llu: LAMP_OK, as the clean run\n", kind, (unsigned long long)n);
      tolerated++;
      continue;
    }
    if (o.st != LAMP_ERR_OUT_OF_MEMORY)
      fail_msg("%s allocation %llu failing: %s returned %s, not LAMP_ERR_OUT_OF_MEMORY: %s", kind,
               (unsigned long long)n, o.phase, lamp_status_name(o.st), o.msg);
    if (!device && !strstr(o.msg, "memory"))
      fail_msg("host allocation %llu failing: %s's message does not say it ran out of memory: "
               "\"%s\"", (unsigned long long)n, o.phase, o.msg);
    if (device && (!strstr(o.msg, "cannot allocate") || !names_a_size(o.msg)))
      fail_msg("device allocation %llu failing: %s's message does not say what could not be "
               "allocated and how much: %s", (unsigned long long)n, o.phase, o.msg);
    if (getenv("LAMP_ALLOC_FAIL_VERBOSE"))
      print_message("%s %llu: %s: %s\n", kind, (unsigned long long)n, o.phase, o.msg);
    errors++;
  }
  print_message("%s allocations: %llu along the path (%llu host, %llu device); %zu failure "
                "points tried in %.1f s: %zu ended in LAMP_ERR_OUT_OF_MEMORY, %zu went on "
                "without it with the clean run's losses; %zu clean exits\n",
                kind, (unsigned long long)total, (unsigned long long)host,
                (unsigned long long)dev, tried, now_s() - t0, errors, tolerated,
                errors + tolerated);
}

static void test_host_allocations_fail_cleanly(void **state) { sweep(*state, 0); }
static void test_device_allocations_fail_cleanly(void **state) { sweep(*state, 1); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_device_allocations_fail_cleanly),
      cmocka_unit_test(test_host_allocations_fail_cleanly),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
