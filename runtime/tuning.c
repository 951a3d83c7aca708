/* Stored GEMM tuning: one text file per platform, device and driver, applied to CLBlast on
 * context creation. The search itself lives in src/tune.c.
 *
 * File format (text, one item a line):
 *   lamp gemm tuning v1
 *   platform=<name>
 *   device=<name>
 *   driver=<version>                  (these three are compared on load)
 *   # free text
 *   Kernel:NAME=V,NAME=V,...          (one parameter set a line, as lamp_tune_params_format)
 */
#include <clblast_c.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clblast_params.h"
#include "internal.h"

static const char lamp__tune_magic[] = "lamp gemm tuning v1";

/* Results lamp ships, for devices that have not been tuned themselves: matched by platform name
 * and device type, applied only when no stored result exists. The PoCL entry comes from PoCL 3.1
 * on a 2-core AMD EPYC (AVX2): the direct kernel from one `lamp tune`, the tiled kernel from
 * `lamp tune --budget 16` over CLBlast's GEMMK=1 kernel (row-major x W^T and dY W need no
 * transposed copies of the activations there, and VWM=8 holds a row of C in one AVX register),
 * taken for every product above 256^3 multiply-adds: 1.3x to 3.2x the GEMMK=0 entry it replaced
 * on SmolLM2's training products (bench/README.md, runs D and G). `lamp tune` on the machine
 * itself replaces it. */
typedef struct lamp__tune_builtin_entry {
  const char *platform;
  cl_device_type type;
  const char *sets[3];
} lamp__tune_builtin_entry;

static const lamp__tune_builtin_entry lamp__tune_builtins[] = {
    {"Portable Computing Language",
     CL_DEVICE_TYPE_CPU,
     {"XgemmDirect:KWID=8,MDIMAD=8,MDIMCD=8,NDIMBD=8,NDIMCD=8,PADA=0,PADB=0,VWMD=8,VWND=4,WGD=64",
      "Xgemm:GEMMK=1,KREG=1,KWG=1,KWI=1,MDIMA=2,MDIMC=2,MWG=16,NDIMB=2,NDIMC=2,NWG=16,SA=0,SB=0,"
      "STRM=0,STRN=0,VWM=8,VWN=1",
      "GemmRoutine:XGEMM_MIN_INDIRECT_SIZE=256"}},
};

lamp_status lamp__tune_builtin(lamp_context *ctx, lamp_tune_params *sets, size_t *n_sets) {
  *n_sets = 0;
  for (size_t i = 0; i < sizeof(lamp__tune_builtins) / sizeof(lamp__tune_builtins[0]); i++) {
    const lamp__tune_builtin_entry *b = &lamp__tune_builtins[i];
    if (strcmp(ctx->info.platform_name, b->platform) != 0 || !(ctx->info.type & b->type)) continue;
    for (size_t s = 0; s < 3; s++)
      if (lamp_tune_params_parse(b->sets[s], &sets[s]) != LAMP_OK)
        return lamp__fail(ctx, LAMP_ERR_FORMAT, "built-in tuning entry %zu is malformed", i);
    *n_sets = 3;
    return LAMP_OK;
  }
  return LAMP_OK;
}

static lamp_status lamp__tune_apply_builtin(lamp_context *ctx, int *applied) {
  lamp_tune_params sets[3];
  size_t n = 0;
  LAMP__TRY(lamp__tune_builtin(ctx, sets, &n));
  if (!n) return LAMP_OK;
  LAMP__TRY(lamp_tune_params_apply(ctx, sets, n));
  *applied = 2;
  return LAMP_OK;
}

/* CLBlast's own parameters per device, read before lamp first overrides that device in this
 * process: CLBlast keeps overrides process-wide and cannot take them back, so this is the only
 * moment they can be read. Each entry is filled once and never changes. */
static const char *const lamp__tune_kernels[3] = {"XgemmDirect", "Xgemm", "GemmRoutine"};
typedef struct lamp__clblast_own_entry {
  cl_device_id device;
  int ok;
  lamp_tune_params sets[3];
} lamp__clblast_own_entry;
static lamp__clblast_own_entry lamp__clblast_own[64];
static size_t lamp__n_clblast_own;
static pthread_mutex_t lamp__clblast_own_lock = PTHREAD_MUTEX_INITIALIZER;

/* The entry for `device`, read from CLBlast now when there is none yet (NULL: table full). */
static const lamp__clblast_own_entry *lamp__clblast_own_capture(cl_device_id device) {
  const lamp__clblast_own_entry *found = NULL;
  pthread_mutex_lock(&lamp__clblast_own_lock);
  for (size_t i = 0; i < lamp__n_clblast_own && !found; i++)
    if (lamp__clblast_own[i].device == device) found = &lamp__clblast_own[i];
  if (!found && lamp__n_clblast_own < sizeof(lamp__clblast_own) / sizeof(lamp__clblast_own[0])) {
    lamp__clblast_own_entry *e = &lamp__clblast_own[lamp__n_clblast_own++];
    memset(e, 0, sizeof(*e));
    e->device = device;
    e->ok = 1;
    for (size_t k = 0; k < 3 && e->ok; k++) {
      lamp_tune_params *p = &e->sets[k];
      snprintf(p->kernel, sizeof(p->kernel), "%s", lamp__tune_kernels[k]);
      e->ok = lamp__clblast_retrieve(device, p->kernel, LAMP_TUNE_MAX_PARAMS, sizeof(p->names[0]),
                                     &p->names[0][0], p->values, &p->n) == 0 && p->n > 0;
    }
    found = e;
  }
  pthread_mutex_unlock(&lamp__clblast_own_lock);
  return found;
}

lamp_status lamp__tune_clblast_own(lamp_context *ctx, lamp_tune_params *sets) {
  const lamp__clblast_own_entry *e = lamp__clblast_own_capture(ctx->device);
  if (!e || !e->ok)
    return lamp__fail(ctx, LAMP_ERR_CLBLAST, "cannot read CLBlast's own GEMM parameters for %s",
                      ctx->info.name);
  memcpy(sets, e->sets, sizeof(e->sets));
  return LAMP_OK;
}

lamp_status lamp_tune_baseline(lamp_context *ctx, lamp_tune_params *sets, int *kind) {
  if (!ctx || !sets || !kind) return LAMP_ERR_INVALID_ARGUMENT;
  size_t n = 0;
  LAMP__TRY(lamp__tune_builtin(ctx, sets, &n));
  *kind = n ? 2 : 0;
  return n ? LAMP_OK : lamp__tune_clblast_own(ctx, sets);
}

lamp_status lamp_tune_path(const lamp_context *ctx, char *path, size_t path_size) {
  if (!ctx || !path || !path_size) return LAMP_ERR_INVALID_ARGUMENT;
  path[0] = '\0';
  if (!ctx->state_dir[0]) return LAMP_ERR_NOT_FOUND;
  char ident[512];
  snprintf(ident, sizeof(ident), "%s\n%s\n%s", ctx->info.platform_name, ctx->info.name,
           ctx->info.driver_version);
  uint64_t h = lamp__hash64(LAMP__HASH_SEED, ident, strlen(ident));
  int n = snprintf(path, path_size, "%s/tuning/gemm-%016llx.txt", ctx->state_dir,
                   (unsigned long long)h);
  return (n > 0 && (size_t)n < path_size) ? LAMP_OK : LAMP_ERR_INVALID_ARGUMENT;
}

lamp_status lamp_tune_params_format(const lamp_tune_params *p, char *text, size_t size) {
  if (!p || !text || !size || p->n > LAMP_TUNE_MAX_PARAMS) return LAMP_ERR_INVALID_ARGUMENT;
  size_t len = (size_t)snprintf(text, size, "%s:", p->kernel);
  for (size_t i = 0; i < p->n && len < size; i++)
    len += (size_t)snprintf(text + len, size - len, "%s%s=%zu", i ? "," : "", p->names[i],
                            p->values[i]);
  return len < size ? LAMP_OK : LAMP_ERR_INVALID_ARGUMENT;
}

static int lamp__name_ok(const char *s, size_t len, size_t cap) {
  if (len == 0 || len >= cap) return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return 0;
  }
  return 1;
}

lamp_status lamp_tune_params_parse(const char *text, lamp_tune_params *p) {
  if (!text || !p) return LAMP_ERR_INVALID_ARGUMENT;
  memset(p, 0, sizeof(*p));
  const char *colon = strchr(text, ':');
  if (!colon || !lamp__name_ok(text, (size_t)(colon - text), sizeof(p->kernel)))
    return LAMP_ERR_INVALID_ARGUMENT;
  memcpy(p->kernel, text, (size_t)(colon - text));
  const char *s = colon + 1;
  while (*s) {
    const char *eq = strchr(s, '=');
    if (!eq || p->n == LAMP_TUNE_MAX_PARAMS ||
        !lamp__name_ok(s, (size_t)(eq - s), sizeof(p->names[0])))
      return LAMP_ERR_INVALID_ARGUMENT;
    memcpy(p->names[p->n], s, (size_t)(eq - s));
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(eq + 1, &end, 10);
    if (errno || end == eq + 1 || (*end && *end != ',') || eq[1] == '-')
      return LAMP_ERR_INVALID_ARGUMENT;
    p->values[p->n++] = (size_t)v;
    if (*end == ',' && end[1] == '\0') return LAMP_ERR_INVALID_ARGUMENT;
    s = *end ? end + 1 : end;
  }
  return p->n ? LAMP_OK : LAMP_ERR_INVALID_ARGUMENT;
}

lamp_status lamp_tune_params_apply(lamp_context *ctx, const lamp_tune_params *sets,
                                   size_t n_sets) {
  if (!ctx || (n_sets && !sets)) return LAMP_ERR_INVALID_ARGUMENT;
  if (n_sets) lamp__clblast_own_capture(ctx->device); /* before the first override */
  for (size_t s = 0; s < n_sets; s++) {
    const char *names[LAMP_TUNE_MAX_PARAMS];
    for (size_t i = 0; i < sets[s].n; i++) names[i] = sets[s].names[i];
    CLBlastStatusCode st = CLBlastOverrideParameters(ctx->device, sets[s].kernel,
                                                     CLBlastPrecisionSingle, sets[s].n, names,
                                                     sets[s].values);
    if (st != CLBlastSuccess)
      return lamp__fail(ctx, LAMP_ERR_CLBLAST, "CLBlastOverrideParameters(%s) failed: %s (%d)",
                        sets[s].kernel, lamp_clblast_error_name(st), (int)st);
  }
  return LAMP_OK;
}

lamp_status lamp__tune_store(lamp_context *ctx, const lamp_tune_params *sets, size_t n_sets,
                             const char *notes) {
  char path[1200];
  if (lamp_tune_path(ctx, path, sizeof(path)) != LAMP_OK)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "no folder to store tuning results in "
                      "(set LAMP_CACHE_DIR or HOME)");
  size_t cap = 2048 + 512 * n_sets + (notes ? strlen(notes) : 0), len = 0;
  char *text = malloc(cap);
  if (!text) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory storing tuning");
  len += (size_t)snprintf(text, cap, "%s\nplatform=%s\ndevice=%s\ndriver=%s\n%s",
                          lamp__tune_magic, ctx->info.platform_name, ctx->info.name,
                          ctx->info.driver_version, notes ? notes : "");
  lamp_status st = LAMP_OK;
  for (size_t s = 0; s < n_sets && st == LAMP_OK; s++) {
    st = lamp_tune_params_format(&sets[s], text + len, cap - len - 1);
    if (st == LAMP_OK) {
      len += strlen(text + len);
      text[len++] = '\n';
    }
  }
  if (st == LAMP_OK) st = lamp__write_file_atomic(ctx, path, text, len);
  free(text);
  return st;
}

lamp_status lamp__tune_stored(lamp_context *ctx, lamp_tune_params *sets, size_t cap,
                              size_t *n_sets) {
  *n_sets = 0;
  char path[1200];
  if (lamp_tune_path(ctx, path, sizeof(path)) != LAMP_OK) return LAMP_OK;
  FILE *f = fopen(path, "r");
  if (!f) return LAMP_OK; /* never tuned on this device */
  fclose(f);
  char *text = NULL;
  size_t size = 0;
  LAMP__TRY(lamp__read_file(ctx, path, &text, &size));

  /* The header must name exactly this platform, device and driver; anything else is foreign. */
  char expect[600];
  snprintf(expect, sizeof(expect), "%s\nplatform=%s\ndevice=%s\ndriver=%s\n", lamp__tune_magic,
           ctx->info.platform_name, ctx->info.name, ctx->info.driver_version);
  if (strncmp(text, expect, strlen(expect)) != 0) {
    free(text);
    return LAMP_OK;
  }
  size_t n = 0;
  lamp_status st = LAMP_OK;
  char *save = NULL;
  for (char *line = strtok_r(text + strlen(expect), "\n", &save); line && st == LAMP_OK;
       line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == '#' || line[0] == '\0') continue;
    if (n == cap || lamp_tune_params_parse(line, &sets[n]) != LAMP_OK)
      st = lamp__fail(ctx, LAMP_ERR_FORMAT, "%s: malformed tuning line \"%.80s\"", path, line);
    else
      n++;
  }
  free(text);
  if (st == LAMP_OK) *n_sets = n;
  return st;
}

lamp_status lamp_tune_apply(lamp_context *ctx, int *applied) {
  if (!ctx || !applied) return LAMP_ERR_INVALID_ARGUMENT;
  *applied = 0;
  lamp_tune_params sets[8];
  size_t n_sets = 0;
  /* Every line is parsed before any set is applied, so a damaged file changes nothing. */
  LAMP__TRY(lamp__tune_stored(ctx, sets, sizeof(sets) / sizeof(sets[0]), &n_sets));
  if (!n_sets) return lamp__tune_apply_builtin(ctx, applied);
  LAMP__TRY(lamp_tune_params_apply(ctx, sets, n_sets));
  *applied = 1;
  return LAMP_OK;
}

lamp_status lamp__tune_remove(lamp_context *ctx, int *removed) {
  *removed = 0;
  char path[1200];
  if (lamp_tune_path(ctx, path, sizeof(path)) != LAMP_OK) return LAMP_OK;
  if (remove(path) == 0) {
    *removed = 1;
    return LAMP_OK;
  }
  if (errno == ENOENT) return LAMP_OK;
  return lamp__fail(ctx, LAMP_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
}
