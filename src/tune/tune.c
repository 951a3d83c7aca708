/* GEMM tuning search: CLBlast's direct and indirect SGEMM kernels and the switch between them.
 *
 * Each candidate is handed to an evaluator (in this process, or in a child process from the
 * CLI) that applies it with CLBlastOverrideParameters, lets CLBlast compile it, checks the
 * product and times it on the tuning shapes. The search starts from the baseline (what a context
 * runs without a stored result: lamp's built-in result for the device, else CLBlast's own
 * parameters for it), then CLBlast's generic defaults and the configurations its database lists
 * for CPUs, adds random valid configurations, then refines the best by changing one or two
 * parameters at a time. The decision is made per shape against the baseline, with the two
 * timed interleaved in one measurement, and never keeps a shape that got slower. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"

/* The layers of SmolLM2-135M (fused QKV 576 -> 960, output 576 -> 576, fused gate/up
 * 576 -> 3072, down 1536 -> 576) over a training batch of 8 x 128 tokens, and the first and third
 * over one sequence. Each shape is timed as its forward x W^T and its backward dY W. */
static const size_t lamp__tune_default_shapes[] = {
    128,  960, 576, 128,  3072, 576, 1024, 960, 576,
    1024, 576, 576, 1024, 3072, 576, 1024, 576, 1536,
};

enum { LAMP__XGEMM_N = 16, LAMP__DIRECT_N = 10 };

static const char *const lamp__xgemm_names[LAMP__XGEMM_N] = {
    "GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB",
    "NDIMC", "NWG", "SA", "SB", "STRM", "STRN", "VWM", "VWN"};
static const char *const lamp__direct_names[LAMP__DIRECT_N] = {
    "KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD", "PADA", "PADB", "VWMD", "VWND", "WGD"};

/* Starting points after the baseline's: GEMMK=1 configurations that came close to lamp's built-in
 * one on PoCL (other tile sizes), CLBlast 1.5's generic defaults, then its entries for CPUs. */
static const size_t lamp__xgemm_seeds[][LAMP__XGEMM_N] = {
    {1, 2, 1, 1, 8, 8, 64, 8, 8, 64, 0, 0, 0, 0, 8, 1},
    {1, 1, 1, 1, 4, 4, 32, 4, 4, 32, 0, 0, 0, 0, 8, 1},
    {1, 2, 1, 1, 4, 4, 32, 4, 4, 32, 0, 0, 0, 0, 8, 1},
    {0, 1, 32, 2, 8, 8, 32, 16, 16, 32, 1, 1, 0, 0, 4, 2},
    {0, 1, 16, 2, 8, 8, 128, 16, 8, 128, 0, 1, 1, 1, 1, 8},
    {0, 1, 32, 2, 32, 16, 64, 32, 8, 64, 0, 1, 1, 0, 1, 1},
    {1, 16, 1, 1, 2, 2, 64, 2, 2, 128, 0, 0, 0, 0, 8, 2},
    {0, 1, 32, 8, 32, 32, 64, 32, 16, 64, 1, 1, 1, 0, 2, 2},
    {0, 1, 32, 2, 16, 8, 128, 16, 8, 64, 0, 0, 1, 0, 1, 2},
    {0, 1, 32, 2, 32, 8, 128, 8, 8, 128, 1, 1, 1, 1, 2, 8},
    {0, 1, 16, 2, 8, 8, 128, 8, 8, 128, 1, 1, 1, 0, 1, 8},
    {0, 1, 32, 2, 16, 32, 32, 8, 8, 64, 0, 1, 0, 0, 1, 8},
    {1, 2, 1, 1, 16, 16, 64, 4, 4, 64, 0, 0, 0, 0, 1, 1},
};
static const size_t lamp__direct_seeds[][LAMP__DIRECT_N] = {
    {2, 8, 8, 8, 8, 1, 1, 1, 1, 16},   {2, 8, 8, 8, 8, 0, 0, 1, 8, 64},
    {8, 16, 16, 16, 16, 0, 0, 1, 1, 64}, {8, 8, 8, 8, 8, 0, 0, 8, 4, 64},
    {2, 32, 32, 32, 32, 0, 0, 1, 1, 64}, {16, 16, 8, 8, 8, 0, 0, 2, 4, 32},
    {2, 8, 8, 8, 8, 0, 0, 2, 2, 64},   {2, 8, 8, 16, 8, 0, 0, 4, 4, 64},
    {8, 32, 32, 32, 16, 0, 1, 1, 1, 32}, {16, 8, 16, 16, 16, 0, 0, 1, 1, 32},
    {2, 8, 8, 8, 8, 1, 1, 4, 4, 32},
};

/* Values each parameter may take in the random search and refinement. */
typedef struct lamp__range {
  size_t n;
  size_t v[6];
} lamp__range;

static const lamp__range lamp__xgemm_ranges[LAMP__XGEMM_N] = {
    {2, {0, 1}},          {5, {1, 2, 4, 8, 16}}, {3, {1, 16, 32}},       {3, {1, 2, 8}},
    {6, {1, 2, 4, 8, 16, 32}}, {6, {1, 2, 4, 8, 16, 32}}, {4, {16, 32, 64, 128}},
    {6, {1, 2, 4, 8, 16, 32}}, {6, {1, 2, 4, 8, 16, 32}}, {4, {16, 32, 64, 128}},
    {2, {0, 1}},          {2, {0, 1}},
    {2, {0, 1}},          {2, {0, 1}},          {4, {1, 2, 4, 8}},      {4, {1, 2, 4, 8}},
};
static const lamp__range lamp__direct_ranges[LAMP__DIRECT_N] = {
    {3, {2, 8, 16}},   {4, {4, 8, 16, 32}}, {4, {4, 8, 16, 32}}, {4, {4, 8, 16, 32}},
    {4, {4, 8, 16, 32}}, {2, {0, 1}},         {2, {0, 1}},         {4, {1, 2, 4, 8}},
    {4, {1, 2, 4, 8}},   {4, {8, 16, 32, 64}},
};

static int lamp__multiple(size_t x, size_t d) { return d && x % d == 0; }

/* CLBlast's own validity rules for the tiled kernel (its tuner's constraints), plus limits. */
static int lamp__xgemm_valid(const size_t *v, const lamp_device_info *dev) {
  size_t gemmk = v[0], kreg = v[1], kwg = v[2], kwi = v[3], mdima = v[4], mdimc = v[5];
  size_t mwg = v[6], ndimb = v[7], ndimc = v[8], nwg = v[9], sa = v[10], sb = v[11];
  size_t vwm = v[14], vwn = v[15];
  if (mdimc * ndimc > dev->max_work_group_size || mdimc * ndimc > 1024) return 0;
  if (!lamp__multiple(mwg, mdimc * vwm) || !lamp__multiple(nwg, ndimc * vwn)) return 0;
  if (!lamp__multiple(mwg, mdima * vwm) || !lamp__multiple(nwg, ndimb * vwn)) return 0;
  if (gemmk == 0) {
    if (kreg != 1 || kwg < 16 || !lamp__multiple(kwg, kwi) || kwi == 1) return 0;
    if (!lamp__multiple(kwg, (mdimc * ndimc) / mdima) || (mdimc * ndimc) % mdima) return 0;
    if (!lamp__multiple(kwg, (mdimc * ndimc) / ndimb) || (mdimc * ndimc) % ndimb) return 0;
  } else {
    if (kwg != 1 || kwi != 1 || sa || sb || !lamp__multiple(kreg, vwn)) return 0;
    if (mdima != mdimc || ndimb != ndimc) return 0;
    /* CLBlast 1.5 sizes this kernel's grid with NWG along M and MWG along N (xgemm.cpp), so
     * tiles are covered exactly only when the two are equal; otherwise results are wrong. */
    if (mwg != nwg) return 0;
  }
  size_t local = 4 * ((sa ? kwg * mwg : 0) + (sb ? kwg * nwg : 0));
  return local <= dev->local_mem_bytes;
}

static int lamp__direct_valid(const size_t *v, const lamp_device_info *dev) {
  size_t kwid = v[0], mdimad = v[1], mdimcd = v[2], ndimbd = v[3], ndimcd = v[4];
  size_t pada = v[5], padb = v[6], vwmd = v[7], vwnd = v[8], wgd = v[9];
  if (mdimcd * ndimcd > dev->max_work_group_size || mdimcd * ndimcd > 1024) return 0;
  if (!lamp__multiple(wgd, kwid)) return 0;
  if (!lamp__multiple(wgd, mdimcd * vwmd) || !lamp__multiple(wgd, ndimcd * vwnd)) return 0;
  if (!lamp__multiple(wgd, mdimad * vwmd) || !lamp__multiple(wgd, ndimbd * vwnd)) return 0;
  if ((mdimcd * ndimcd) % mdimad || !lamp__multiple(wgd, (mdimcd * ndimcd) / mdimad)) return 0;
  if ((mdimcd * ndimcd) % ndimbd || !lamp__multiple(wgd, (mdimcd * ndimcd) / ndimbd)) return 0;
  return 4 * (wgd * (wgd + pada) + wgd * (wgd + padb)) <= dev->local_mem_bytes;
}

typedef struct lamp__kernel_space {
  const char *kernel;
  size_t n;
  const char *const *names;
  const lamp__range *ranges;
  int (*valid)(const size_t *, const lamp_device_info *);
} lamp__kernel_space;

static const lamp__kernel_space lamp__xgemm_space = {"Xgemm", LAMP__XGEMM_N, lamp__xgemm_names,
                                                     lamp__xgemm_ranges, lamp__xgemm_valid};
static const lamp__kernel_space lamp__direct_space = {
    "XgemmDirect", LAMP__DIRECT_N, lamp__direct_names, lamp__direct_ranges, lamp__direct_valid};

static uint64_t lamp__rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static lamp_tune_params lamp__make_params(const lamp__kernel_space *space, const size_t *v) {
  lamp_tune_params p;
  memset(&p, 0, sizeof(p));
  snprintf(p.kernel, sizeof(p.kernel), "%s", space->kernel);
  p.n = space->n;
  for (size_t i = 0; i < space->n; i++) {
    snprintf(p.names[i], sizeof(p.names[i]), "%s", space->names[i]);
    p.values[i] = v[i];
  }
  return p;
}

/* CLBlast takes the direct kernel when M N K < S^3. */
static lamp_tune_params lamp__switch_params(size_t s) {
  lamp_tune_params p;
  memset(&p, 0, sizeof(p));
  snprintf(p.kernel, sizeof(p.kernel), "GemmRoutine");
  snprintf(p.names[0], sizeof(p.names[0]), "XGEMM_MIN_INDIRECT_SIZE");
  p.values[0] = s;
  p.n = 1;
  return p;
}
#define LAMP__ALWAYS_DIRECT ((size_t)1 << 20)
#define LAMP__ALWAYS_TILED ((size_t)1)

static double lamp__shape_flop(const size_t *shape) {
  return 2.0 * (double)shape[0] * (double)shape[1] * (double)shape[2];
}

/* Repetitions of a forward and backward pair that take about 0.2 s at 20 GFLOP/s, at least 3. */
static int lamp__reps(const size_t *shape) {
  double r = 0.2 * 20e9 / (2 * lamp__shape_flop(shape));
  return r < 3 ? 3 : r > 20 ? 20 : (int)r;
}

static float lamp__uniform(uint64_t *s) {
  return (float)(lamp__rng_next(s) >> 40) / 16777216.0f - 0.5f;
}

/* Whether entry (i, j) of row-major C (m x n) differs from op(A) op(B) computed in double on the
 * host; A is stored k x m when a_trans, else m x k, and B n x k when b_trans, else k x n. */
static int lamp__entry_wrong(const float *a, int a_trans, const float *b, int b_trans,
                             const float *c, size_t m, size_t n, size_t k, size_t i, size_t j) {
  double acc = 0;
  for (size_t p = 0; p < k; p++)
    acc += (double)(a_trans ? a[p * m + i] : a[i * k + p]) *
           (b_trans ? b[j * k + p] : b[p * n + j]);
  return !(fabs(acc - c[i * n + j]) <= 1e-4 * (1 + fabs(acc)));
}

/* Checks 32 entries of C = A op(B), A m x k. */
static int lamp__product_wrong(const float *a, const float *b, int b_trans, const float *c,
                               size_t m, size_t n, size_t k) {
  for (size_t probe = 0; probe < 32; probe++)
    if (lamp__entry_wrong(a, 0, b, b_trans, c, m, n, k, (probe * 7919 + 3) % m,
                          (probe * 104729 + 5) % n))
      return 1;
  return 0;
}

/* Every transpose pair on odd sizes at odd offsets, checked in full against the host: the
 * timed shapes cover x W^T and dY W only, and a stored result serves every product lamp makes.
 * *wrong is set when a product is wrong or CLBlast refuses it. */
static lamp_status lamp__probe_transposes(lamp_context *ctx, int *wrong) {
  enum { PM = 65, PN = 129, PK = 300, OFF = 3 };
  const size_t na = PM * PK + OFF, nb = PN * PK + OFF, nc = PM * PN + OFF;
  float *ha = malloc(4 * na), *hb = malloc(4 * nb), *hc = malloc(4 * nc);
  lamp_tensor ta = {0}, tb = {0}, tc = {0};
  lamp_status st = (ha && hb && hc) ? LAMP_OK
                                    : lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  uint64_t rng = 777;
  for (size_t i = 0; st == LAMP_OK && i < na; i++) ha[i] = lamp__uniform(&rng);
  for (size_t i = 0; st == LAMP_OK && i < nb; i++) hb[i] = lamp__uniform(&rng);
  if (st == LAMP_OK) st = lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &na, &ta);
  if (st == LAMP_OK) st = lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &nb, &tb);
  if (st == LAMP_OK) st = lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &nc, &tc);
  if (st == LAMP_OK) st = lamp_tensor_upload(ctx, &ta, ha, 4 * na);
  if (st == LAMP_OK) st = lamp_tensor_upload(ctx, &tb, hb, 4 * nb);
  *wrong = 0;
  for (int pair = 0; pair < 4 && st == LAMP_OK && !*wrong; pair++) {
    const int at = pair & 1, bt = pair >> 1;
    size_t ne_a[2] = {at ? PM : PK, at ? PK : PM}, ne_b[2] = {bt ? PK : PN, bt ? PN : PK};
    size_t ne_c[2] = {PN, PM};
    lamp_tensor a, b, c;
    st = lamp_tensor_view(ctx, &ta, 4 * OFF, 2, ne_a, NULL, &a);
    if (st == LAMP_OK) st = lamp_tensor_view(ctx, &tb, 4 * OFF, 2, ne_b, NULL, &b);
    if (st == LAMP_OK) st = lamp_tensor_view(ctx, &tc, 4 * OFF, 2, ne_c, NULL, &c);
    if (st != LAMP_OK) break;
    lamp_status run = lamp_gemm(ctx, at ? LAMP_TRANS : LAMP_NO_TRANS,
                                bt ? LAMP_TRANS : LAMP_NO_TRANS, 1.0f, &a, &b, 0.0f, &c);
    if (run == LAMP_OK) run = lamp_tensor_download(ctx, &c, hc, 4 * PM * PN);
    if (run != LAMP_OK) {
      clFinish(ctx->queue);
      *wrong = 1;
      break;
    }
    for (size_t i = 0; i < PM && !*wrong; i++)
      for (size_t j = 0; j < PN && !*wrong; j++)
        *wrong = lamp__entry_wrong(ha + OFF, at, hb + OFF, bt, hc, PM, PN, PK, i, j);
  }
  lamp_tensor_release(&ta);
  lamp_tensor_release(&tb);
  lamp_tensor_release(&tc);
  free(ha);
  free(hb);
  free(hc);
  return st;
}

static lamp_status lamp__apply_config(lamp_context *ctx, const lamp_tune_config *c) {
  return c->n_sets ? lamp_tune_params_apply(ctx, c->sets, c->n_sets) : LAMP_OK;
}

/* The forward C = A B^T and backward D = C B of a layer with weight B (n x k), once. */
static lamp_status lamp__pair(lamp_context *ctx, const lamp_tensor *a, const lamp_tensor *b,
                              lamp_tensor *c, lamp_tensor *d) {
  lamp_status st = lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_TRANS, 1.0f, a, b, 0.0f, c);
  if (st == LAMP_OK) st = lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, c, b, 0.0f, d);
  if (st == LAMP_OK) st = lamp_context_finish(ctx);
  return st;
}

lamp_status lamp_tune_measure(lamp_context *ctx, const lamp_tune_config *configs,
                              size_t n_configs, const size_t *shapes, size_t n_shapes,
                              double *seconds) {
  if (!ctx || !configs || !shapes || !seconds || !n_shapes || !n_configs ||
      n_configs > LAMP_TUNE_MAX_CONFIGS)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_tune_measure: bad arguments");
  for (size_t c = 0; c < n_configs; c++)
    if (configs[c].n_sets > LAMP_TUNE_MAX_SETS)
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_tune_measure: %zu sets",
                        configs[c].n_sets);
  for (size_t i = 0; i < n_configs * n_shapes; i++) seconds[i] = -1;
  size_t max_a = 0, max_b = 0, max_c = 0;
  for (size_t s = 0; s < n_shapes; s++) {
    const size_t *sh = &shapes[3 * s];
    if (!sh[0] || !sh[1] || !sh[2])
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "tuning shape %zu has a zero size", s);
    if (sh[0] * sh[2] > max_a) max_a = sh[0] * sh[2];
    if (sh[1] * sh[2] > max_b) max_b = sh[1] * sh[2];
    if (sh[0] * sh[1] > max_c) max_c = sh[0] * sh[1];
  }
  /* ok[c]: configuration c is accepted by CLBlast and computes every product right so far */
  int ok[LAMP_TUNE_MAX_CONFIGS], any = 0;
  for (size_t c = 0; c < n_configs; c++) {
    ok[c] = lamp__apply_config(ctx, &configs[c]) == LAMP_OK;
    int wrong = 0;
    if (ok[c]) LAMP__TRY(lamp__probe_transposes(ctx, &wrong));
    ok[c] = ok[c] && !wrong;
    any |= ok[c];
  }
  if (!any) return LAMP_OK;

  float *ha = malloc(4 * max_a), *hb = malloc(4 * max_b), *hc = malloc(4 * max_c);
  float *hd = malloc(4 * max_a);
  lamp_tensor ta = {0}, tb = {0}, tc = {0}, td = {0};
  lamp_status st = (ha && hb && hc && hd)
                       ? LAMP_OK
                       : lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  uint64_t rng = 12345;
  if (st == LAMP_OK) {
    for (size_t i = 0; i < max_a; i++) ha[i] = lamp__uniform(&rng);
    for (size_t i = 0; i < max_b; i++) hb[i] = lamp__uniform(&rng);
  }
  if (st == LAMP_OK) st = lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &max_a, &ta);
  if (st == LAMP_OK) st = lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &max_b, &tb);
  if (st == LAMP_OK) st = lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &max_c, &tc);
  if (st == LAMP_OK) st = lamp_tensor_create(ctx, LAMP_DTYPE_F32, 1, &max_a, &td);
  if (st == LAMP_OK) st = lamp_tensor_upload(ctx, &ta, ha, 4 * max_a);
  if (st == LAMP_OK) st = lamp_tensor_upload(ctx, &tb, hb, 4 * max_b);

  /* Re-applying a configuration between runs is cheap: CLBlast keeps each one's compiled
   * program, keyed by its parameter values. */
  const int switching = n_configs > 1;
  for (size_t s = 0; s < n_shapes && st == LAMP_OK; s++) {
    size_t m = shapes[3 * s], n = shapes[3 * s + 1], k = shapes[3 * s + 2];
    size_t ne_a[2] = {k, m}, ne_b[2] = {k, n}, ne_c[2] = {n, m};
    lamp_tensor a, b, c, d;
    st = lamp_tensor_view(ctx, &ta, 0, 2, ne_a, NULL, &a);
    if (st == LAMP_OK) st = lamp_tensor_view(ctx, &tb, 0, 2, ne_b, NULL, &b);
    if (st == LAMP_OK) st = lamp_tensor_view(ctx, &tc, 0, 2, ne_c, NULL, &c);
    if (st == LAMP_OK) st = lamp_tensor_view(ctx, &td, 0, 2, ne_a, NULL, &d);
    if (st != LAMP_OK) break;
    /* The first run of each configuration compiles and is checked, never timed; a refusal there
     * means these parameters do not work here. */
    for (size_t q = 0; q < n_configs; q++) {
      if (!ok[q]) continue;
      lamp_status run = switching ? lamp__apply_config(ctx, &configs[q]) : LAMP_OK;
      if (run == LAMP_OK) run = lamp__pair(ctx, &a, &b, &c, &d);
      if (run == LAMP_OK) run = lamp_tensor_download(ctx, &c, hc, 4 * m * n);
      if (run == LAMP_OK) run = lamp_tensor_download(ctx, &d, hd, 4 * m * k);
      if (run != LAMP_OK) clFinish(ctx->queue);
      ok[q] = run == LAMP_OK && !lamp__product_wrong(ha, hb, 1, hc, m, n, k) &&
              !lamp__product_wrong(hc, hb, 0, hd, m, k, n);
    }
    /* the fastest of several pairs: other work on the machine only ever adds time. With several
     * configurations each repetition runs all of them in turn, in reverse order every other
     * time: a run right after another finds the runtime's threads awake and is faster. */
    int reps = lamp__reps(&shapes[3 * s]);
    if (switching && reps % 2) reps++;
    double best[LAMP_TUNE_MAX_CONFIGS];
    for (size_t q = 0; q < n_configs; q++) best[q] = -1;
    for (int r = 0; r < reps && st == LAMP_OK; r++)
      for (size_t i = 0; i < n_configs && st == LAMP_OK; i++) {
        size_t q = r % 2 ? n_configs - 1 - i : i;
        if (!ok[q]) continue;
        if (switching) st = lamp__apply_config(ctx, &configs[q]);
        double t0 = lamp__now_seconds();
        if (st == LAMP_OK) st = lamp__pair(ctx, &a, &b, &c, &d);
        double t = lamp__now_seconds() - t0;
        if (best[q] < 0 || t < best[q]) best[q] = t;
      }
    for (size_t q = 0; q < n_configs && st == LAMP_OK; q++)
      if (ok[q]) seconds[q * n_shapes + s] = best[q];
  }
  for (size_t q = 0; q < n_configs; q++)
    if (!ok[q])
      for (size_t s = 0; s < n_shapes; s++) seconds[q * n_shapes + s] = -1;
  lamp_tensor_release(&ta);
  lamp_tensor_release(&tb);
  lamp_tensor_release(&tc);
  lamp_tensor_release(&td);
  free(ha);
  free(hb);
  free(hc);
  free(hd);
  return st;
}

lamp_status lamp_tune_evaluate(lamp_context *ctx, const lamp_tune_params *sets, size_t n_sets,
                               const size_t *shapes, size_t n_shapes, double *seconds) {
  if (!ctx || (n_sets && !sets) || n_sets > LAMP_TUNE_MAX_SETS)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_tune_evaluate: bad arguments");
  lamp_tune_config config;
  memset(&config, 0, sizeof(config));
  config.n_sets = n_sets;
  if (n_sets) memcpy(config.sets, sets, n_sets * sizeof(*sets));
  return lamp_tune_measure(ctx, &config, 1, shapes, n_shapes, seconds);
}

static lamp_status lamp__evaluate_here(void *user, const lamp_tune_config *configs,
                                       size_t n_configs, const size_t *shapes, size_t n_shapes,
                                       double *seconds) {
  return lamp_tune_measure(user, configs, n_configs, shapes, n_shapes, seconds);
}

/* A shape the result runs with another kernel than the baseline may be this much slower than
 * the baseline, measured interleaved with it, before it counts as slower (and this much faster
 * before the result counts as a gain there): timing noise, not a change. */
#define LAMP__TUNE_NOISE 0.03

typedef struct lamp__search {
  lamp_context *ctx;
  const lamp_tune_options *o;
  lamp_tune_evaluate_fn evaluate;
  void *user;
  const size_t *shapes;
  size_t n;
  uint64_t rng;
  lamp_tune_report *report;
  lamp_tune_params base[3]; /* the baseline: XgemmDirect, Xgemm, GemmRoutine */
  size_t base_switch;       /* its XGEMM_MIN_INDIRECT_SIZE */
} lamp__search;

static size_t lamp__value(const lamp_tune_params *p, const char *name) {
  for (size_t i = 0; i < p->n; i++)
    if (!strcmp(p->names[i], name)) return p->values[i];
  return 0;
}

/* Same kernel, same names and same values, in any order. */
static int lamp__params_equal(const lamp_tune_params *a, const lamp_tune_params *b) {
  if (strcmp(a->kernel, b->kernel) || a->n != b->n) return 0;
  for (size_t i = 0; i < a->n; i++) {
    size_t j = 0;
    while (j < b->n && strcmp(a->names[i], b->names[j])) j++;
    if (j == b->n || a->values[i] != b->values[j]) return 0;
  }
  return 1;
}

/* The values of `p` in the order of `space`'s names; 0 when `p` names other parameters. */
static int lamp__params_vector(const lamp__kernel_space *space, const lamp_tune_params *p,
                               size_t *v) {
  if (strcmp(p->kernel, space->kernel) || p->n != space->n) return 0;
  for (size_t i = 0; i < space->n; i++) {
    size_t j = 0;
    while (j < p->n && strcmp(p->names[j], space->names[i])) j++;
    if (j == p->n) return 0;
    v[i] = p->values[j];
  }
  return 1;
}

static lamp_tune_config lamp__config(const lamp_tune_params *direct, const lamp_tune_params *tiled,
                                     const lamp_tune_params *route) {
  lamp_tune_config c;
  memset(&c, 0, sizeof(c));
  c.n_sets = 3;
  c.sets[0] = *direct;
  c.sets[1] = *tiled;
  c.sets[2] = *route;
  return c;
}

/* Times `configs` on `subset` (indices into the shapes): out[c * LAMP_TUNE_MAX_SHAPES + index].
 * A child that crashes fails every configuration it was given; each is then timed alone, so
 * one bad configuration does not take the others with it. */
static lamp_status lamp__time(lamp__search *S, const lamp_tune_config *configs, size_t n_configs,
                              const size_t *subset, size_t n, double *out) {
  size_t shapes[3 * LAMP_TUNE_MAX_SHAPES] = {0};
  double t[LAMP_TUNE_MAX_CONFIGS * LAMP_TUNE_MAX_SHAPES];
  for (size_t i = 0; i < n; i++)
    memcpy(&shapes[3 * i], &S->shapes[3 * subset[i]], 3 * sizeof(size_t));
  LAMP__TRY(S->evaluate(S->user, configs, n_configs, shapes, n, t));
  int none = 1;
  for (size_t i = 0; i < n_configs * n; i++) none = none && t[i] < 0;
  for (size_t c = 0; none && n_configs > 1 && c < n_configs; c++)
    LAMP__TRY(S->evaluate(S->user, &configs[c], 1, shapes, n, &t[c * n]));
  for (size_t c = 0; c < n_configs; c++)
    for (size_t i = 0; i < n; i++) out[c * LAMP_TUNE_MAX_SHAPES + subset[i]] = t[c * n + i];
  return LAMP_OK;
}

/* Searches one kernel's parameters on `subset` with the kernel switch forced to `route` and the
 * other kernel at the baseline's parameters. `first` (n_first sets) are tried before anything
 * else and whatever lamp's validity rules say: the baseline's own set is first of all, so it is
 * always a candidate. Then the valid `seeds`, random valid configurations for a third of the
 * budget, then refinements of the best. *found is 0 when no candidate worked. */
static lamp_status lamp__search_kernel(lamp__search *S, const lamp__kernel_space *space,
                                       const lamp_tune_params *first, size_t n_first,
                                       const size_t *seeds, size_t n_seeds, size_t route,
                                       const size_t *subset, size_t n_subset,
                                       lamp_tune_params *best, int *found) {
  const lamp_device_info *dev = &S->ctx->info;
  const int is_direct = !strcmp(space->kernel, "XgemmDirect");
  const lamp_tune_params route_set = lamp__switch_params(route);
  /* the fixed candidates: `first`, then the valid seeds, none twice */
  enum { MAX_FIXED = 32 };
  lamp_tune_params fixed[MAX_FIXED];
  size_t n_fixed = 0;
  for (size_t i = 0; i < n_first + n_seeds && n_fixed < MAX_FIXED; i++) {
    lamp_tune_params p;
    if (i < n_first) {
      p = first[i];
    } else {
      if (!space->valid(seeds + (i - n_first) * space->n, dev)) continue;
      p = lamp__make_params(space, seeds + (i - n_first) * space->n);
    }
    int dup = 0;
    for (size_t j = 0; j < n_fixed && !dup; j++) dup = lamp__params_equal(&fixed[j], &p);
    if (!dup) fixed[n_fixed++] = p;
  }

  double best_time = -1;
  size_t best_v[LAMP_TUNE_MAX_PARAMS], cand[LAMP_TUNE_MAX_PARAMS];
  int best_has_v = 0; /* best_v holds the best as a vector (refinements start there) */
  unsigned budget = S->o->budget ? S->o->budget : 24;
  for (unsigned trial = 0; trial < budget; trial++) {
    lamp_tune_params p;
    if (trial < n_fixed) {
      p = fixed[trial];
    } else {
      int ok = 0;
      for (int attempt = 0; attempt < 10000 && !ok; attempt++) {
        if (trial < n_fixed + budget / 3 || !best_has_v) {
          for (size_t i = 0; i < space->n; i++)
            cand[i] = space->ranges[i].v[lamp__rng_next(&S->rng) % space->ranges[i].n];
        } else {
          memcpy(cand, best_v, space->n * sizeof(size_t));
          for (int changes = 1 + (int)(lamp__rng_next(&S->rng) % 2); changes > 0; changes--) {
            size_t i = lamp__rng_next(&S->rng) % space->n;
            cand[i] = space->ranges[i].v[lamp__rng_next(&S->rng) % space->ranges[i].n];
          }
        }
        ok = space->valid(cand, dev) &&
             (!best_has_v || memcmp(cand, best_v, space->n * sizeof(size_t)) != 0);
      }
      if (!ok) continue;
      p = lamp__make_params(space, cand);
    }
    lamp_tune_config config = is_direct ? lamp__config(&p, &S->base[1], &route_set)
                                        : lamp__config(&S->base[0], &p, &route_set);
    double per[LAMP_TUNE_MAX_SHAPES], t = 0;
    LAMP__TRY(lamp__time(S, &config, 1, subset, n_subset, per));
    for (size_t i = 0; i < n_subset; i++)
      t = (t < 0 || per[subset[i]] < 0) ? -1 : t + per[subset[i]];
    S->report->tried++;
    if (t < 0) S->report->rejected++;
    if (S->o->log) {
      char text[512];
      lamp_tune_params_format(&p, text, sizeof(text));
      const char *tag = trial == 0 ? "  (baseline)" : "";
      if (t < 0)
        fprintf(S->o->log, "tune %2u/%u %s  rejected%s\n", trial + 1, budget, text, tag);
      else
        fprintf(S->o->log, "tune %2u/%u %s  %.2f ms%s%s\n", trial + 1, budget, text, 1e3 * t,
                (best_time < 0 || t < best_time) ? "  best" : "", tag);
      fflush(S->o->log);
    }
    if (t >= 0 && (best_time < 0 || t < best_time)) {
      best_time = t;
      *best = p;
      best_has_v = lamp__params_vector(space, &p, best_v);
    }
  }
  *found = best_time >= 0;
  return LAMP_OK;
}

/* The smallest S with S^3 > mnk. */
static size_t lamp__switch_above(double mnk) {
  size_t sw = (size_t)floor(cbrt(mnk));
  while ((double)sw * sw * sw <= mnk) sw++;
  while (sw > 1 && (double)(sw - 1) * (sw - 1) * (sw - 1) > mnk) sw--;
  return sw;
}

void lamp_tune_options_init(lamp_tune_options *options) {
  if (!options) return;
  memset(options, 0, sizeof(*options));
  options->budget = 24;
  options->seed = 1;
}

/* CLBlast's rule: the direct kernel when M N K < S^3. */
static int lamp__is_direct(const size_t *shape, size_t sw) {
  return lamp__shape_flop(shape) / 2 < (double)sw * sw * sw;
}

/* A combination of the kernels timed in the table: direct choice d, tiled choice t (0 is the
 * baseline's, 1 the search's best when it differs) and the switch. */
typedef struct lamp__choice {
  size_t d, t, sw;
} lamp__choice;

/* Whether the choice runs another kernel than the baseline on shape s. */
static int lamp__changed(const lamp__search *S, const lamp__choice *c, size_t s) {
  const size_t *sh = &S->shapes[3 * s];
  int direct = lamp__is_direct(sh, c->sw);
  if (direct != lamp__is_direct(sh, S->base_switch)) return 1;
  return direct ? c->d != 0 : c->t != 0;
}

/* The choice of least total time among those where every shape that changes kernel is, in the
 * table, no slower than the baseline and not marked `keep`; the baseline itself when none is
 * better. t_direct[d][s] and t_tiled[t][s] are the table's times; base[s] the baseline's. */
static lamp__choice lamp__select(const lamp__search *S, const size_t *order, size_t nd,
                                 double t_direct[][LAMP_TUNE_MAX_SHAPES], size_t nt,
                                 double t_tiled[][LAMP_TUNE_MAX_SHAPES], const double *base,
                                 const int *keep) {
  const size_t n = S->n;
  /* One switch per cut between the sorted shapes (the first `cut` direct, the rest tiled): of
   * the values that make that cut, the nearest to the baseline's, so that sizes between and
   * beyond the measured ones change kernel no more than the measurements ask. */
  size_t switches[LAMP_TUNE_MAX_SHAPES + 1], n_sw = 0;
  for (size_t cut = 0; cut <= n; cut++) {
    size_t lo = cut ? lamp__switch_above(lamp__shape_flop(&S->shapes[3 * order[cut - 1]]) / 2)
                    : LAMP__ALWAYS_TILED;
    size_t hi = LAMP__ALWAYS_DIRECT;
    if (cut < n) {
      hi = lamp__switch_above(lamp__shape_flop(&S->shapes[3 * order[cut]]) / 2) - 1;
      if (hi < lo) continue; /* two shapes of the same size cannot be split */
    }
    switches[n_sw++] = S->base_switch < lo ? lo : S->base_switch > hi ? hi : S->base_switch;
  }
  lamp__choice best = {0, 0, S->base_switch};
  double best_total = 0;
  for (size_t s = 0; s < n; s++) best_total += base[s];
  for (size_t d = 0; d < nd; d++)
    for (size_t t = 0; t < nt; t++)
      for (size_t w = 0; w < n_sw; w++) {
        lamp__choice c = {d, t, switches[w]};
        double total = 0;
        int feasible = 1;
        for (size_t s = 0; s < n && feasible; s++) {
          double p = lamp__is_direct(&S->shapes[3 * s], c.sw) ? t_direct[d][s] : t_tiled[t][s];
          if (lamp__changed(S, &c, s)) feasible = !keep[s] && p >= 0 && p <= base[s];
          total += p;
        }
        if (feasible && total < best_total) {
          best_total = total;
          best = c;
        }
      }
  return best;
}

static int lamp__is_baseline(const lamp__search *S, const lamp__choice *c) {
  for (size_t s = 0; s < S->n; s++)
    if (lamp__changed(S, c, s)) return 0;
  return 1;
}

static lamp_status lamp__tune_run(lamp__search *S) {
  lamp_tune_report *report = S->report;
  lamp_context *ctx = S->ctx;
  const size_t n = S->n;
  /* Shapes by size: the direct kernel is searched on the smaller half, the tiled kernel on the
   * larger half, then both are timed on every shape to place the switch. */
  size_t order[LAMP_TUNE_MAX_SHAPES];
  for (size_t i = 0; i < n; i++) order[i] = i;
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && lamp__shape_flop(&S->shapes[3 * order[j - 1]]) >
                                    lamp__shape_flop(&S->shapes[3 * order[j]]); j--) {
      size_t t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  size_t n_small = (n + 1) / 2, n_large = n > 1 ? n / 2 : 1;
  const size_t *small = order, *large = order + (n - n_large);

  /* The baseline: what a context runs without a stored result. */
  LAMP__TRY(lamp_tune_baseline(ctx, S->base, &report->baseline));
  memcpy(report->baseline_sets, S->base, sizeof(S->base));
  S->base_switch = lamp__value(&S->base[2], "XGEMM_MIN_INDIRECT_SIZE");
  if (strcmp(S->base[0].kernel, "XgemmDirect") || strcmp(S->base[1].kernel, "Xgemm") ||
      !S->base_switch)
    return lamp__fail(ctx, LAMP_ERR_CLBLAST, "tuning: the baseline's parameters are incomplete");
  const lamp_tune_config base_config = lamp__config(&S->base[0], &S->base[1], &S->base[2]);
  if (S->o->log) {
    fprintf(S->o->log, "baseline: %s\n", report->baseline == 2 ? "lamp's built-in result for "
                                                                 "this kind of device"
                                                               : "CLBlast's own parameters");
    for (size_t k = 0; k < 3; k++) {
      char text[512];
      lamp_tune_params_format(&S->base[k], text, sizeof(text));
      fprintf(S->o->log, "  %s\n", text);
    }
    fflush(S->o->log);
  }

  /* First candidates of each kernel: the baseline's, CLBlast's own (when the baseline is lamp's
   * built-in result) and the result stored before (a new result replaces it). */
  lamp_tune_params first_d[3], first_t[3], extra[8];
  size_t n_first_d = 0, n_first_t = 0, n_extra = 0;
  first_d[n_first_d++] = S->base[0];
  first_t[n_first_t++] = S->base[1];
  if (report->baseline == 2 && lamp__tune_clblast_own(ctx, extra) == LAMP_OK) {
    first_d[n_first_d++] = extra[0];
    first_t[n_first_t++] = extra[1];
  }
  if (lamp__tune_stored(ctx, extra, sizeof(extra) / sizeof(extra[0]), &n_extra) != LAMP_OK)
    n_extra = 0;
  for (size_t i = 0; i < n_extra; i++) {
    if (!strcmp(extra[i].kernel, "XgemmDirect") && n_first_d < 3) first_d[n_first_d++] = extra[i];
    if (!strcmp(extra[i].kernel, "Xgemm") && n_first_t < 3) first_t[n_first_t++] = extra[i];
  }

  lamp_tune_params best_d, best_t;
  int found = 0;
  LAMP__TRY(lamp__search_kernel(S, &lamp__direct_space, first_d, n_first_d,
                                &lamp__direct_seeds[0][0],
                                sizeof(lamp__direct_seeds) / sizeof(lamp__direct_seeds[0]),
                                LAMP__ALWAYS_DIRECT, small, n_small, &best_d, &found));
  if (!found) best_d = S->base[0];
  LAMP__TRY(lamp__search_kernel(S, &lamp__xgemm_space, first_t, n_first_t,
                                &lamp__xgemm_seeds[0][0],
                                sizeof(lamp__xgemm_seeds) / sizeof(lamp__xgemm_seeds[0]),
                                LAMP__ALWAYS_TILED, large, n_large, &best_t, &found));
  if (!found) best_t = S->base[1];

  /* The table: each kernel choice (the baseline's and the best, when they differ) on every
   * shape, with the switch forced, all interleaved in one measurement. */
  lamp_tune_params d_choice[2] = {S->base[0], best_d}, t_choice[2] = {S->base[1], best_t};
  size_t nd = lamp__params_equal(&best_d, &S->base[0]) ? 1 : 2;
  size_t nt = lamp__params_equal(&best_t, &S->base[1]) ? 1 : 2;
  const lamp_tune_params to_direct = lamp__switch_params(LAMP__ALWAYS_DIRECT);
  const lamp_tune_params to_tiled = lamp__switch_params(LAMP__ALWAYS_TILED);
  lamp_tune_config configs[4];
  for (size_t d = 0; d < nd; d++) configs[d] = lamp__config(&d_choice[d], &S->base[1], &to_direct);
  for (size_t t = 0; t < nt; t++)
    configs[nd + t] = lamp__config(&S->base[0], &t_choice[t], &to_tiled);
  double table[4][LAMP_TUNE_MAX_SHAPES];
  double t_direct[2][LAMP_TUNE_MAX_SHAPES], t_tiled[2][LAMP_TUNE_MAX_SHAPES];
  double base[LAMP_TUNE_MAX_SHAPES];
  LAMP__TRY(lamp__time(S, configs, nd + nt, order, n, &table[0][0]));
  for (size_t s = 0; s < n; s++) {
    for (size_t d = 0; d < nd; d++) t_direct[d][s] = table[d][s];
    for (size_t t = 0; t < nt; t++) t_tiled[t][s] = table[nd + t][s];
    base[s] = lamp__is_direct(&S->shapes[3 * s], S->base_switch) ? t_direct[0][s] : t_tiled[0][s];
    if (base[s] < 0)
      return lamp__fail(ctx, LAMP_ERR_CLBLAST, "tuning: GEMM with the baseline's parameters fails "
                        "or is wrong on %s", ctx->info.name);
  }

  /* The decision: the best choice by the table, then timed against the baseline, interleaved;
   * a shape slower there beyond noise keeps the baseline's kernel and the choice is made again. */
  int keep[LAMP_TUNE_MAX_SHAPES] = {0}, accepted = 0;
  lamp__choice chosen = {0, 0, S->base_switch};
  double before[LAMP_TUNE_MAX_SHAPES], after[LAMP_TUNE_MAX_SHAPES];
  memcpy(before, base, sizeof(before));
  memcpy(after, base, sizeof(after));
  lamp_tune_params result_route = S->base[2];
  for (int round = 0; round < 3 && !accepted; round++) {
    lamp__choice c = lamp__select(S, order, nd, t_direct, nt, t_tiled, base, keep);
    if (lamp__is_baseline(S, &c)) {
      if (S->o->log) {
        fprintf(S->o->log, "%s\n", round ? "no other choice of kernels and switch is faster "
                                            "without those shapes: the baseline stays"
                                          : "no other choice of kernels and switch is faster "
                                            "than the baseline on every shape it changes: the "
                                            "baseline stays");
        fflush(S->o->log);
      }
      break;
    }
    const lamp_tune_params route = lamp__switch_params(c.sw);
    lamp_tune_config pair[2] = {base_config, lamp__config(&d_choice[c.d], &t_choice[c.t], &route)};
    double v[2][LAMP_TUNE_MAX_SHAPES];
    LAMP__TRY(lamp__time(S, pair, 2, order, n, &v[0][0]));
    int regress = 0, gain = 0, failed = 0;
    for (size_t s = 0; s < n; s++) {
      if (v[0][s] < 0)
        return lamp__fail(ctx, LAMP_ERR_CLBLAST, "tuning: GEMM with the baseline's parameters "
                          "fails or is wrong on %s", ctx->info.name);
      if (v[1][s] < 0) failed = 1;
      if (!lamp__changed(S, &c, s)) continue;
      if (v[1][s] > v[0][s] * (1 + LAMP__TUNE_NOISE)) {
        keep[s] = 1;
        regress = 1;
      }
      if (v[1][s] >= 0 && v[1][s] < v[0][s] * (1 - LAMP__TUNE_NOISE)) gain = 1;
    }
    if (S->o->log) {
      fprintf(S->o->log, "check %d, result/baseline interleaved (ms; = same kernel, ! slower):",
              round + 1);
      for (size_t s = 0; s < n; s++)
        fprintf(S->o->log, " %.2f/%.2f%s", 1e3 * v[1][s], 1e3 * v[0][s],
                !lamp__changed(S, &c, s)                       ? "="
                : v[1][s] > v[0][s] * (1 + LAMP__TUNE_NOISE) ? "!"
                                                              : "");
      fprintf(S->o->log, "%s\n", failed ? "  failed" : regress ? "  slower: kept the baseline "
                                                                  "there"
                                          : gain ? "  accepted" : "  no gain beyond noise");
      fflush(S->o->log);
    }
    /* A shape the choice leaves on the baseline's kernel ran the same kernel twice: both
     * timings are of it, and the faster is its time before and after. */
    for (size_t s = 0; s < n; s++)
      if (!lamp__changed(S, &c, s) && v[1][s] >= 0 && v[1][s] < v[0][s]) v[0][s] = v[1][s];
    memcpy(before, v[0], sizeof(before));
    memcpy(after, v[0], sizeof(after)); /* until a result is accepted: the baseline */
    if (failed) break;
    if (!regress && gain) {
      accepted = 1;
      chosen = c;
      result_route = route;
      for (size_t s = 0; s < n; s++) after[s] = lamp__changed(S, &c, s) ? v[1][s] : v[0][s];
    } else if (!regress) {
      break;
    }
  }

  char notes[3072];
  size_t len = (size_t)snprintf(notes, sizeof(notes),
                                "# %u candidates tried, %u rejected; against %s, interleaved\n",
                                report->tried, report->rejected,
                                report->baseline == 2 ? "lamp's built-in result"
                                                      : "CLBlast's own parameters");
  for (size_t s = 0; s < n; s++) {
    const size_t *sh = &S->shapes[3 * s];
    lamp_tune_shape *r = &report->shapes[s];
    r->m = sh[0];
    r->n = sh[1];
    r->k = sh[2];
    r->gflops_before = 2 * lamp__shape_flop(sh) / before[s] * 1e-9;
    r->gflops_after = 2 * lamp__shape_flop(sh) / after[s] * 1e-9;
    r->direct = lamp__is_direct(sh, chosen.sw);
    r->kept = !lamp__changed(S, &chosen, s);
    if (len < sizeof(notes))
      len += (size_t)snprintf(notes + len, sizeof(notes) - len,
                              "# %zux%zux%zu: %.1f -> %.1f GFLOP/s (%s kernel, %s)\n", r->m, r->n,
                              r->k, r->gflops_before, r->gflops_after,
                              r->direct ? "direct" : "tiled",
                              r->kept ? "as the baseline" : "changed");
  }
  report->result[0] = d_choice[chosen.d];
  report->result[1] = t_choice[chosen.t];
  report->result[2] = result_route;
  report->stored = accepted;
  LAMP__TRY(lamp_tune_path(ctx, report->path, sizeof(report->path)));
  if (accepted)
    LAMP__TRY(lamp__tune_store(ctx, report->result, 3, notes));
  else
    LAMP__TRY(lamp__tune_remove(ctx, &report->removed_previous));
  /* this process now runs what every later context on the device will */
  return lamp_tune_params_apply(ctx, report->result, 3);
}

lamp_status lamp_tune_gemm(lamp_context *ctx, const lamp_tune_options *options,
                           lamp_tune_report *report) {
  if (!ctx || !report) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_tune_gemm: NULL");
  memset(report, 0, sizeof(*report));
  lamp_tune_options defaults;
  lamp_tune_options_init(&defaults);
  const lamp_tune_options *o = options ? options : &defaults;
  const size_t *shapes = o->shapes ? o->shapes : lamp__tune_default_shapes;
  size_t n = o->shapes ? o->n_shapes : sizeof(lamp__tune_default_shapes) / (3 * sizeof(size_t));
  if (n == 0 || n > LAMP_TUNE_MAX_SHAPES)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "tuning needs 1 to %d shapes, not %zu",
                      LAMP_TUNE_MAX_SHAPES, n);
  for (size_t i = 0; i < 3 * n; i++)
    if (!shapes[i]) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "a tuning shape is 0");
  if (!ctx->state_dir[0])
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "tuning needs a folder to store its "
                      "result: set LAMP_CACHE_DIR or HOME");
  lamp__search S;
  memset(&S, 0, sizeof(S));
  S.ctx = ctx;
  S.o = o;
  S.evaluate = o->evaluate ? o->evaluate : lamp__evaluate_here;
  S.user = o->evaluate ? o->evaluate_user : ctx;
  S.shapes = shapes;
  S.n = n;
  S.rng = o->seed ? o->seed : 1;
  S.report = report;
  report->n_shapes = n;
  double t0 = lamp__now_seconds();
  lamp_status st = lamp__tune_run(&S);
  report->seconds = lamp__now_seconds() - t0;
  return st;
}
