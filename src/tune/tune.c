/* GEMM tuning search: CLBlast's direct and indirect SGEMM kernels and the switch between them.
 *
 * Each candidate is handed to an evaluator (in this process, or in a child process from the
 * CLI) that applies it with CLBlastOverrideParameters, lets CLBlast compile it, checks the
 * product and times it on the tuning shapes. The search starts from CLBlast's defaults and the
 * configurations CLBlast's database lists for CPUs, adds random valid configurations, then
 * refines the best by changing one or two parameters at a time. */
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

/* Starting points: GEMMK=1 configurations that came close to lamp's built-in one on PoCL (other
 * tile sizes), CLBlast 1.5's generic defaults, then its entries for CPUs. */
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

lamp_status lamp_tune_evaluate(lamp_context *ctx, const lamp_tune_params *sets, size_t n_sets,
                               const size_t *shapes, size_t n_shapes, double *seconds) {
  if (!ctx || !shapes || !seconds || !n_shapes || (n_sets && !sets))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_tune_evaluate: bad arguments");
  for (size_t s = 0; s < n_shapes; s++) seconds[s] = -1;
  if (n_sets && lamp_tune_params_apply(ctx, sets, n_sets) != LAMP_OK) return LAMP_OK;
  int wrong = 0;
  LAMP__TRY(lamp__probe_transposes(ctx, &wrong));
  if (wrong) return LAMP_OK;

  size_t max_a = 0, max_b = 0, max_c = 0;
  for (size_t s = 0; s < n_shapes; s++) {
    const size_t *sh = &shapes[3 * s];
    if (!sh[0] || !sh[1] || !sh[2])
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "tuning shape %zu has a zero size", s);
    if (sh[0] * sh[2] > max_a) max_a = sh[0] * sh[2];
    if (sh[1] * sh[2] > max_b) max_b = sh[1] * sh[2];
    if (sh[0] * sh[1] > max_c) max_c = sh[0] * sh[1];
  }
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

  for (size_t s = 0; s < n_shapes && st == LAMP_OK; s++) {
    size_t m = shapes[3 * s], n = shapes[3 * s + 1], k = shapes[3 * s + 2];
    /* the forward C = A B^T and the backward D = C B of a layer with weight B (n x k) */
    size_t ne_a[2] = {k, m}, ne_b[2] = {k, n}, ne_c[2] = {n, m};
    lamp_tensor a, b, c, d;
    st = lamp_tensor_view(ctx, &ta, 0, 2, ne_a, NULL, &a);
    if (st == LAMP_OK) st = lamp_tensor_view(ctx, &tb, 0, 2, ne_b, NULL, &b);
    if (st == LAMP_OK) st = lamp_tensor_view(ctx, &tc, 0, 2, ne_c, NULL, &c);
    if (st == LAMP_OK) st = lamp_tensor_view(ctx, &td, 0, 2, ne_a, NULL, &d);
    if (st != LAMP_OK) break;
    /* The first calls compile; a refusal there means these parameters do not work here. */
    lamp_status run = lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_TRANS, 1.0f, &a, &b, 0.0f, &c);
    if (run == LAMP_OK) run = lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, &c, &b, 0.0f, &d);
    if (run == LAMP_OK) run = lamp_context_finish(ctx);
    if (run == LAMP_OK) run = lamp_tensor_download(ctx, &c, hc, 4 * m * n);
    if (run == LAMP_OK) run = lamp_tensor_download(ctx, &d, hd, 4 * m * k);
    if (run != LAMP_OK) {
      clFinish(ctx->queue);
      break;
    }
    if (lamp__product_wrong(ha, hb, 1, hc, m, n, k) || lamp__product_wrong(hc, hb, 0, hd, m, k, n))
      break;
    /* the fastest of several pairs: other work on the machine only ever adds time */
    int reps = lamp__reps(&shapes[3 * s]);
    double best = -1;
    for (int r = 0; r < reps && st == LAMP_OK; r++) {
      double t0 = lamp__now_seconds();
      st = lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_TRANS, 1.0f, &a, &b, 0.0f, &c);
      if (st == LAMP_OK) st = lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1.0f, &c, &b, 0.0f, &d);
      if (st == LAMP_OK) st = lamp_context_finish(ctx);
      double t = lamp__now_seconds() - t0;
      if (best < 0 || t < best) best = t;
    }
    if (st == LAMP_OK) seconds[s] = best;
  }
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

static lamp_status lamp__evaluate_here(void *user, const lamp_tune_params *sets, size_t n_sets,
                                       const size_t *shapes, size_t n_shapes, double *seconds) {
  return lamp_tune_evaluate(user, sets, n_sets, shapes, n_shapes, seconds);
}

typedef struct lamp__search {
  lamp_context *ctx;
  const lamp_tune_options *o;
  lamp_tune_evaluate_fn evaluate;
  void *user;
  const size_t *shapes;
  uint64_t rng;
  lamp_tune_report *report;
} lamp__search;

/* Total time of `subset` (indices into the shapes) with `sets`, or < 0 if any shape failed;
 * per-shape times go to per_shape[index] when it is not NULL. */
static lamp_status lamp__time(lamp__search *S, const lamp_tune_params *sets, size_t n_sets,
                              const size_t *subset, size_t n, double *total, double *per_shape) {
  size_t shapes[3 * LAMP_TUNE_MAX_SHAPES] = {0};
  double t[LAMP_TUNE_MAX_SHAPES];
  for (size_t i = 0; i < n; i++) memcpy(&shapes[3 * i], &S->shapes[3 * subset[i]], 3 * sizeof(size_t));
  LAMP__TRY(S->evaluate(S->user, sets, n_sets, shapes, n, t));
  *total = 0;
  for (size_t i = 0; i < n; i++) {
    if (per_shape) per_shape[subset[i]] = t[i];
    if (t[i] < 0 || *total < 0)
      *total = -1;
    else
      *total += t[i];
  }
  return LAMP_OK;
}

/* `seeds` (n of them) into `out`, after the built-in set for this kernel when one exists and
 * names every parameter; returns the number of seeds in `out` (at most 16). */
static size_t lamp__seeds_with(const lamp__kernel_space *space, const lamp_tune_params *builtin,
                               size_t n_builtin, const size_t *seeds, size_t n, size_t *out) {
  size_t count = 0;
  for (size_t b = 0; b < n_builtin; b++) {
    if (strcmp(builtin[b].kernel, space->kernel) != 0) continue;
    size_t found = 0;
    for (size_t i = 0; i < space->n; i++)
      for (size_t j = 0; j < builtin[b].n; j++)
        if (!strcmp(builtin[b].names[j], space->names[i])) {
          out[i] = builtin[b].values[j];
          found++;
        }
    if (found == space->n) count = 1;
  }
  for (size_t s = 0; s < n && count < 16; s++, count++)
    memcpy(out + count * space->n, seeds + s * space->n, space->n * sizeof(size_t));
  return count;
}

/* Searches one kernel's parameters on `subset` with the kernel switch forced to `route`. */
static lamp_status lamp__search_kernel(lamp__search *S, const lamp__kernel_space *space,
                                       const size_t *seeds, size_t n_seeds, size_t route,
                                       const size_t *subset, size_t n_subset, size_t *best) {
  const lamp_device_info *dev = &S->ctx->info;
  double best_time = -1;
  size_t cand[LAMP_TUNE_MAX_PARAMS];
  unsigned budget = S->o->budget ? S->o->budget : 24;
  for (unsigned trial = 0; trial < budget; trial++) {
    int ok = 0;
    if (trial < n_seeds) {
      memcpy(cand, seeds + trial * space->n, space->n * sizeof(size_t));
      ok = space->valid(cand, dev);
    }
    /* after the seeds: random configurations for a third of the budget, then refinements */
    for (int attempt = 0; attempt < 10000 && !ok && trial >= n_seeds; attempt++) {
      if (trial < n_seeds + budget / 3 || best_time < 0) {
        for (size_t i = 0; i < space->n; i++)
          cand[i] = space->ranges[i].v[lamp__rng_next(&S->rng) % space->ranges[i].n];
      } else {
        memcpy(cand, best, space->n * sizeof(size_t));
        for (int changes = 1 + (int)(lamp__rng_next(&S->rng) % 2); changes > 0; changes--) {
          size_t i = lamp__rng_next(&S->rng) % space->n;
          cand[i] = space->ranges[i].v[lamp__rng_next(&S->rng) % space->ranges[i].n];
        }
      }
      ok = space->valid(cand, dev) &&
           (best_time < 0 || memcmp(cand, best, space->n * sizeof(size_t)) != 0);
    }
    if (!ok) continue;
    lamp_tune_params sets[2] = {lamp__switch_params(route), lamp__make_params(space, cand)};
    double t = -1;
    LAMP__TRY(lamp__time(S, sets, 2, subset, n_subset, &t, NULL));
    S->report->tried++;
    if (t < 0) S->report->rejected++;
    if (S->o->log) {
      char text[512];
      lamp_tune_params_format(&sets[1], text, sizeof(text));
      if (t < 0)
        fprintf(S->o->log, "tune %2u/%u %s  rejected\n", trial + 1, budget, text);
      else
        fprintf(S->o->log, "tune %2u/%u %s  %.2f ms%s\n", trial + 1, budget, text, 1e3 * t,
                (best_time < 0 || t < best_time) ? "  best" : "");
      fflush(S->o->log);
    }
    if (t >= 0 && (best_time < 0 || t < best_time)) {
      best_time = t;
      memcpy(best, cand, space->n * sizeof(size_t));
    }
  }
  if (best_time < 0)
    return lamp__fail(S->ctx, LAMP_ERR_CLBLAST, "tuning %s: no candidate worked on %s",
                      space->kernel, dev->name);
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

static lamp_status lamp__tune_run(lamp__search *S, size_t n) {
  lamp_tune_report *report = S->report;
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

  double total, before[LAMP_TUNE_MAX_SHAPES], t_direct[LAMP_TUNE_MAX_SHAPES];
  double t_tiled[LAMP_TUNE_MAX_SHAPES], after[LAMP_TUNE_MAX_SHAPES];
  LAMP__TRY(lamp__time(S, NULL, 0, order, n, &total, before));
  if (total < 0)
    return lamp__fail(S->ctx, LAMP_ERR_CLBLAST, "tuning: GEMM with CLBlast's current parameters "
                      "fails or is wrong on %s", S->ctx->info.name);

  size_t best_direct[LAMP_TUNE_MAX_PARAMS], best_tiled[LAMP_TUNE_MAX_PARAMS];
  /* lamp's built-in result for this kind of device, when there is one, is the first seed, so
   * a short search never stores something worse than what the device gets without it */
  lamp_tune_params builtin[3];
  size_t n_builtin = 0;
  LAMP__TRY(lamp__tune_builtin(S->ctx, builtin, &n_builtin));
  size_t seeds[16 * LAMP_TUNE_MAX_PARAMS];
  size_t n_seeds = lamp__seeds_with(&lamp__direct_space, builtin, n_builtin,
                                    &lamp__direct_seeds[0][0],
                                    sizeof(lamp__direct_seeds) / sizeof(lamp__direct_seeds[0]),
                                    seeds);
  LAMP__TRY(lamp__search_kernel(S, &lamp__direct_space, seeds, n_seeds, LAMP__ALWAYS_DIRECT,
                                small, n_small, best_direct));
  n_seeds = lamp__seeds_with(&lamp__xgemm_space, builtin, n_builtin, &lamp__xgemm_seeds[0][0],
                             sizeof(lamp__xgemm_seeds) / sizeof(lamp__xgemm_seeds[0]), seeds);
  LAMP__TRY(lamp__search_kernel(S, &lamp__xgemm_space, seeds, n_seeds, LAMP__ALWAYS_TILED,
                                large, n_large, best_tiled));
  lamp_tune_params sets[3] = {lamp__make_params(&lamp__direct_space, best_direct),
                              lamp__make_params(&lamp__xgemm_space, best_tiled),
                              lamp__switch_params(LAMP__ALWAYS_DIRECT)};
  LAMP__TRY(lamp__time(S, sets, 3, order, n, &total, t_direct));
  sets[2] = lamp__switch_params(LAMP__ALWAYS_TILED);
  LAMP__TRY(lamp__time(S, sets, 3, order, n, &total, t_tiled));

  /* Try each cut between the sorted shapes (the first `cut` direct, the rest tiled). */
  size_t best_switch = LAMP__ALWAYS_TILED;
  double best_total = -1;
  for (size_t cut = 0; cut <= n; cut++) {
    size_t sw = cut == 0 ? LAMP__ALWAYS_TILED
                         : lamp__switch_above(lamp__shape_flop(&S->shapes[3 * order[cut - 1]]) / 2);
    if (cut < n && (double)sw * sw * sw > lamp__shape_flop(&S->shapes[3 * order[cut]]) / 2)
      continue; /* two shapes of the same size cannot be split */
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
      double t = i < cut ? t_direct[order[i]] : t_tiled[order[i]];
      sum += t < 0 ? 1e30 : t;
    }
    if (best_total < 0 || sum < best_total) {
      best_total = sum;
      best_switch = sw;
    }
  }
  sets[2] = lamp__switch_params(best_switch);
  LAMP__TRY(lamp__time(S, sets, 3, order, n, &total, after));
  if (total < 0)
    return lamp__fail(S->ctx, LAMP_ERR_CLBLAST, "tuning: the chosen parameters fail when "
                      "combined on %s", S->ctx->info.name);

  char notes[3072];
  size_t len = (size_t)snprintf(notes, sizeof(notes), "# %u candidates tried, %u rejected\n",
                                report->tried, report->rejected);
  for (size_t s = 0; s < n; s++) {
    const size_t *sh = &S->shapes[3 * s];
    lamp_tune_shape *r = &report->shapes[s];
    r->m = sh[0];
    r->n = sh[1];
    r->k = sh[2];
    r->gflops_before = 2 * lamp__shape_flop(sh) / before[s] * 1e-9;
    r->gflops_after = 2 * lamp__shape_flop(sh) / after[s] * 1e-9;
    r->direct = lamp__shape_flop(sh) / 2 < (double)best_switch * best_switch * best_switch;
    if (len < sizeof(notes))
      len += (size_t)snprintf(notes + len, sizeof(notes) - len,
                              "# %zux%zux%zu: %.1f -> %.1f GFLOP/s (%s kernel)\n", r->m, r->n,
                              r->k, r->gflops_before, r->gflops_after,
                              r->direct ? "direct" : "tiled");
  }
  memcpy(report->result, sets, sizeof(sets));
  LAMP__TRY(lamp__tune_store(S->ctx, sets, 3, notes));
  LAMP__TRY(lamp_tune_params_apply(S->ctx, sets, 3));
  return lamp_tune_path(S->ctx, report->path, sizeof(report->path));
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
  lamp__search S = {ctx, o, o->evaluate ? o->evaluate : lamp__evaluate_here,
                    o->evaluate ? o->evaluate_user : ctx, shapes, o->seed ? o->seed : 1, report};
  report->n_shapes = n;
  double t0 = lamp__now_seconds();
  lamp_status st = lamp__tune_run(&S, n);
  report->seconds = lamp__now_seconds() - t0;
  return st;
}
