/* The Llama-family kernels, one by one: forward against the double-precision reference in
 * ref_llama.c, backward against central finite differences of that reference (loss
 * L = sum(dy * op(x)) for a random dy), <= 1e-4 relative; and shape errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/llama_ops.h"
#include "fixture.h"
#include "ref.h"
#include "ref_llama.h"

#define TOL 1e-4

static float *rnd(size_t n, uint64_t seed, float lo, float hi) {
  float *x = malloc((n ? n : 1) * sizeof(float));
  assert_non_null(x);
  ref_fill_uniform(x, n, seed, lo, hi);
  return x;
}

static double *widen(const float *x, size_t n) {
  double *y = malloc((n ? n : 1) * sizeof(double));
  assert_non_null(y);
  for (size_t i = 0; i < n; i++) y[i] = x[i];
  return y;
}

static lamp_tensor up(lamp_context *ctx, const float *x, size_t cols, size_t rows) {
  lamp_tensor t;
  size_t ne[2] = {cols, rows};
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, &t));
  if (x) LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &t, x, cols * rows * sizeof(float)));
  return t;
}

static float *down(lamp_context *ctx, const lamp_tensor *t) {
  size_t n = lamp_tensor_numel(t);
  float *x = malloc(n * sizeof(float));
  assert_non_null(x);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, t, x, n * sizeof(float)));
  return x;
}

static cl_mem ints(lamp_context *ctx, const int *v, size_t n) {
  cl_int err;
  cl_mem m = clCreateBuffer(lamp_context_cl_context(ctx), CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                            n * sizeof(cl_int), (void *)v, &err);
  assert_int_equal(err, CL_SUCCESS);
  return m;
}

static void expect_close(const char *what, const float *got, const double *want, size_t n) {
  double err = ref_llama_rel_error(got, want, n);
  if (!(err <= TOL)) fail_msg("%s: max relative error %.3e", what, err);
}

/* ---- RMSNorm ---------------------------------------------------------------------------- */

typedef struct norm_case {
  size_t rows, width;
  const double *w, *dy;
  double eps;
} norm_case;

static double norm_loss(void *user, const double *x) {
  norm_case *c = user;
  double *y = malloc(c->rows * c->width * sizeof(double)), s = 0;
  ref_llama_rmsnorm(y, x, c->w, c->rows, c->width, c->eps);
  for (size_t i = 0; i < c->rows * c->width; i++) s += y[i] * c->dy[i];
  free(y);
  return s;
}

static void test_rmsnorm(void **state) {
  lamp_context *ctx = *state;
  const size_t R = 5, C = 37;
  const float eps = 1e-5f;
  float *x = rnd(R * C, 1, -2, 2), *b = rnd(R * C, 2, -1, 1), *w = rnd(C, 3, 0.5f, 1.5f);
  float *dy = rnd(R * C, 4, -1, 1), *dx0 = rnd(R * C, 5, -1, 1);
  lamp_tensor tx = up(ctx, x, C, R), tb = up(ctx, b, C, R), tw = up(ctx, w, C, 1);
  lamp_tensor ty = up(ctx, NULL, C, R), ts = up(ctx, NULL, C, R), tr = up(ctx, NULL, R, 1);
  lamp_tensor tdy = up(ctx, dy, C, R), tdx = up(ctx, dx0, C, R);
  double *xd = widen(x, R * C), *wd = widen(w, C), *dyd = widen(dy, R * C);
  double *want = malloc(R * C * sizeof(double)), *grad = malloc(R * C * sizeof(double));

  LAMP_OK_OR_FAIL(ctx, lamp__llama_rmsnorm_forward(ctx, &ty, &tr, &tx, &tw, eps));
  float *got = down(ctx, &ty);
  ref_llama_rmsnorm(want, xd, wd, R, C, eps);
  expect_close("rmsnorm forward", got, want, R * C);
  free(got);

  norm_case nc = {R, C, wd, dyd, eps};
  ref_llama_fd(norm_loss, &nc, xd, R * C, 1e-5, grad);
  LAMP_OK_OR_FAIL(ctx, lamp__llama_rmsnorm_backward(ctx, &tdx, &tdy, &tx, &tr, &tw, 0));
  got = down(ctx, &tdx);
  expect_close("rmsnorm backward (=)", got, grad, R * C);
  free(got);
  /* accumulating onto dx0 */
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_upload(ctx, &tdx, dx0, R * C * sizeof(float)));
  LAMP_OK_OR_FAIL(ctx, lamp__llama_rmsnorm_backward(ctx, &tdx, &tdy, &tx, &tr, &tw, 1));
  for (size_t i = 0; i < R * C; i++) grad[i] += dx0[i];
  got = down(ctx, &tdx);
  expect_close("rmsnorm backward (+=)", got, grad, R * C);
  free(got);

  /* fused residual add: s = x + b, y = norm(s) w */
  LAMP_OK_OR_FAIL(ctx, lamp__llama_rmsnorm_add_forward(ctx, &ts, &ty, &tr, &tx, &tb, &tw, eps));
  double *sd = malloc(R * C * sizeof(double));
  for (size_t i = 0; i < R * C; i++) sd[i] = (double)x[i] + b[i];
  got = down(ctx, &ts);
  expect_close("rmsnorm_add sum", got, sd, R * C);
  free(got);
  ref_llama_rmsnorm(want, sd, wd, R, C, eps);
  got = down(ctx, &ty);
  expect_close("rmsnorm_add forward", got, want, R * C);
  free(got);

  /* shape errors name the tensor */
  lamp_tensor small = up(ctx, NULL, C - 1, 1);
  assert_int_equal(lamp__llama_rmsnorm_forward(ctx, &ty, &tr, &tx, &small, eps), LAMP_ERR_SHAPE);
  assert_non_null(strstr(lamp_context_error(ctx), "rmsnorm weight"));
  lamp_tensor *all[] = {&tx, &tb, &tw, &ty, &ts, &tr, &tdy, &tdx, &small};
  for (size_t i = 0; i < 9; i++) lamp_tensor_release(all[i]);
  free(x), free(b), free(w), free(dy), free(dx0), free(xd), free(wd), free(dyd), free(want);
  free(grad), free(sd);
}

/* ---- RoPE ------------------------------------------------------------------------------- */

typedef struct rope_case {
  size_t rows, stride, heads, dim, prefix, tokens;
  double base;
  const double *dy;
} rope_case;

static double rope_loss(void *user, const double *x) {
  rope_case *c = user;
  size_t n = c->rows * c->stride;
  double *y = malloc(n * sizeof(double)), s = 0;
  memcpy(y, x, n * sizeof(double));
  ref_llama_rope(y, c->rows, c->stride, c->heads, c->dim, c->prefix, c->tokens, c->base, 0);
  for (size_t i = 0; i < n; i++) s += y[i] * c->dy[i];
  free(y);
  return s;
}

static void test_rope(void **state) {
  lamp_context *ctx = *state;
  /* a shared prefix of 3 rows and 2 sequences of 5, rows of 4 heads of width 8, the first 3
   * heads rotated */
  const size_t prefix = 3, tokens = 5, seq = prefix + tokens, rows = prefix + 2 * tokens;
  const size_t dim = 8, heads = 3, stride = 4 * dim;
  const double base = 10000.0;
  const size_t n = rows * stride, half = dim / 2;
  float *x = rnd(n, 11, -1, 1), *dy = rnd(n, 12, -1, 1);
  float *cs = malloc(seq * half * sizeof(float)), *sn = malloc(seq * half * sizeof(float));
  for (size_t t = 0; t < seq; t++)
    for (size_t i = 0; i < half; i++) {
      double a = (double)t * pow(base, -2.0 * (double)i / (double)dim);
      cs[t * half + i] = (float)cos(a);
      sn[t * half + i] = (float)sin(a);
    }
  lamp_tensor tx = up(ctx, x, stride, rows), tdy = up(ctx, dy, stride, rows);
  lamp_tensor tc = up(ctx, cs, half, seq), ts = up(ctx, sn, half, seq);
  double *want = widen(x, n), *grad = malloc(n * sizeof(double)), *xd = widen(x, n);
  double *dyd = widen(dy, n);
  LAMP_OK_OR_FAIL(ctx, lamp__llama_rope(ctx, &tx, heads, dim, prefix, tokens, &tc, &ts, 0));
  ref_llama_rope(want, rows, stride, heads, dim, prefix, tokens, base, 0);
  float *got = down(ctx, &tx);
  expect_close("rope forward", got, want, n);
  free(got);
  rope_case rc = {rows, stride, heads, dim, prefix, tokens, base, dyd};
  ref_llama_fd(rope_loss, &rc, xd, n, 1e-4, grad);
  LAMP_OK_OR_FAIL(ctx, lamp__llama_rope(ctx, &tdy, heads, dim, prefix, tokens, &tc, &ts, 1));
  got = down(ctx, &tdy);
  expect_close("rope backward", got, grad, n);
  free(got);
  assert_int_equal(lamp__llama_rope(ctx, &tx, 5, dim, prefix, tokens, &tc, &ts, 0),
                   LAMP_ERR_SHAPE);
  assert_int_equal(lamp__llama_rope(ctx, &tx, heads, dim, prefix, tokens + 1, &tc, &ts, 0),
                   LAMP_ERR_SHAPE);
  lamp_tensor_release(&tx), lamp_tensor_release(&tdy), lamp_tensor_release(&tc);
  lamp_tensor_release(&ts);
  free(x), free(dy), free(cs), free(sn), free(want), free(grad), free(xd), free(dyd);
}

/* ---- attention -------------------------------------------------------------------------- */

typedef struct att_case {
  size_t batch, prefix, tokens, heads, kv_heads, dim;
  const int *valid;
  const double *dout;
  double scale, softcap; /* scale 0: 1 / sqrt(dim); softcap 0: none */
  size_t window;         /* 0: none */
} att_case;

static float att_scale(const att_case *c) {
  return (float)(c->scale > 0 ? c->scale : 1.0 / sqrt((double)c->dim));
}

/* Row of position p of sequence b in the shared-prefix layout (llama_ops.h). */
static size_t att_row(const att_case *c, size_t b, size_t p) {
  return p < c->prefix ? p : c->prefix + b * c->tokens + (p - c->prefix);
}

/* The reference on the shared-prefix layout: every sequence gets its own copy of the prefix
 * rows, ref_llama_attention runs on the B S rows, and each row's output is read back from the
 * sequence that owns it (the first, for prefix rows). */
static void att_ref(const att_case *c, double *o, const double *qkv) {
  const size_t S = c->prefix + c->tokens, W = (c->heads + 2 * c->kv_heads) * c->dim;
  const size_t HD = c->heads * c->dim;
  double *x = malloc(c->batch * S * W * sizeof(double));
  double *y = malloc(c->batch * S * HD * sizeof(double));
  for (size_t b = 0; b < c->batch; b++)
    for (size_t p = 0; p < S; p++) memcpy(x + (b * S + p) * W, qkv + att_row(c, b, p) * W, W * 8);
  /* the scale the kernels get, as a float */
  ref_llama_attention_capped(y, x, c->batch, S, c->heads, c->kv_heads, c->dim, c->valid,
                             (double)att_scale(c), (double)(float)c->softcap, c->window);
  for (size_t b = 0; b < c->batch; b++)
    for (size_t p = b ? c->prefix : 0; p < S; p++)
      memcpy(o + att_row(c, b, p) * HD, y + (b * S + p) * HD, HD * 8);
  free(x), free(y);
}

static double att_loss(void *user, const double *qkv) {
  att_case *c = user;
  size_t n = (c->prefix + c->batch * c->tokens) * c->heads * c->dim;
  double *o = malloc(n * sizeof(double)), s = 0;
  att_ref(c, o, qkv);
  for (size_t i = 0; i < n; i++) s += o[i] * c->dout[i];
  free(o);
  return s;
}

static void check_attention(lamp_context *ctx, att_case c, int backward) {
  const size_t N = c.prefix + c.batch * c.tokens, HD = c.heads * c.dim;
  const size_t W = (c.heads + 2 * c.kv_heads) * c.dim;
  float *qkv = rnd(N * W, 21 + c.dim, -1.5f, 1.5f), *dout = rnd(N * HD, 22 + N, -1, 1);
  cl_mem tv = ints(ctx, c.valid, c.batch);
  lamp_tensor tq = up(ctx, qkv, W, N), to = up(ctx, NULL, HD, N), tl = up(ctx, NULL, c.heads, N);
  double *qd = widen(qkv, N * W), *want = malloc(N * HD * sizeof(double));
  LAMP_OK_OR_FAIL(ctx, lamp__llama_attention_forward(ctx, &to, &tl, &tq, tv, c.batch, c.prefix,
                                                     c.tokens, c.heads, c.kv_heads, c.dim,
                                                     att_scale(&c), (float)c.softcap, c.window));
  att_ref(&c, want, qd);
  float *got = down(ctx, &to);
  char what[160];
  snprintf(what, sizeof(what), "attention forward B=%zu P=%zu T=%zu H=%zu Hkv=%zu D=%zu cap=%g "
           "window=%zu", c.batch, c.prefix, c.tokens, c.heads, c.kv_heads, c.dim, c.softcap,
           c.window);
  expect_close(what, got, want, N * HD);
  free(got);
  if (backward) {
    lamp_tensor tdo = up(ctx, dout, HD, N), tdq = up(ctx, NULL, W, N);
    lamp_tensor tde = up(ctx, NULL, c.heads, N);
    /* garbage in the gradient buffer first: the backward must overwrite every element */
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_fill(ctx, &tdq, 7.0f));
    double *dod = widen(dout, N * HD), *grad = malloc(N * W * sizeof(double));
    c.dout = dod;
    ref_llama_fd(att_loss, &c, qd, N * W, 1e-5, grad);
    LAMP_OK_OR_FAIL(ctx, lamp__llama_attention_backward(ctx, &tdq, &tde, &tq, &to, &tdo, &tl, tv,
                                                        c.batch, c.prefix, c.tokens, c.heads,
                                                        c.kv_heads, c.dim, att_scale(&c),
                                                        (float)c.softcap, c.window));
    got = down(ctx, &tdq);
    snprintf(what, sizeof(what), "attention backward B=%zu P=%zu T=%zu H=%zu Hkv=%zu D=%zu "
             "cap=%g window=%zu", c.batch, c.prefix, c.tokens, c.heads, c.kv_heads, c.dim,
             c.softcap, c.window);
    expect_close(what, got, grad, N * W);
    free(got), free(dod), free(grad);
    lamp_tensor_release(&tdo), lamp_tensor_release(&tdq), lamp_tensor_release(&tde);
  }
  clReleaseMemObject(tv);
  lamp_tensor_release(&tq), lamp_tensor_release(&to), lamp_tensor_release(&tl);
  free(qkv), free(dout), free(qd), free(want);
}

static void test_attention(void **state) {
  lamp_context *ctx = *state;
  /* no prefix: two key tiles, one full and one padded sequence, grouped heads */
  const int valid[2] = {19, 11};
  check_attention(ctx, (att_case){2, 0, 19, 4, 2, 8, valid, NULL, 0, 0, 0}, 1);
  /* a prefix inside the first tile, one head per KV head, a sequence with no tokens */
  const int valid2[3] = {5, 8, 33};
  check_attention(ctx, (att_case){3, 5, 28, 2, 2, 6, valid2, NULL, 0, 0, 0}, 1);
  /* a prefix over more than one tile (later sequences skip whole tiles), grouped heads */
  const int valid3[3] = {29, 24, 20};
  check_attention(ctx, (att_case){3, 20, 9, 4, 2, 8, valid3, NULL, 0, 0, 0}, 1);
  /* the real models' head width (four lanes per row on the GPU profile), a prefix */
  const int valid5[2] = {21, 14};
  check_attention(ctx, (att_case){2, 3, 18, 2, 1, 64, valid5, NULL, 0, 0, 0}, 1);
  /* the widest head of the narrow CPU program, forward only */
  const int valid4[2] = {40, 23};
  check_attention(ctx, (att_case){2, 17, 23, 2, 1, 128, valid4, NULL, 0, 0, 0}, 0);
  /* Gemma 2: a scale of its own and soft-capped scores (a cap these scores reach) */
  const int valid6[3] = {20, 13, 9};
  check_attention(ctx, (att_case){3, 4, 16, 4, 2, 16, valid6, NULL, 0.3, 1.5, 0}, 1);
  /* Gemma's head width 256, the widest the kernels hold (the CPU profile's wide program),
   * soft-capped, both directions */
  const int valid7[2] = {9, 7};
  check_attention(ctx, (att_case){2, 3, 6, 2, 1, LAMP__ATTENTION_MAX_DIM, valid7, NULL, 0.0625,
                                  2.0, 0}, 1);
  check_attention(ctx, (att_case){2, 17, 23, 2, 1, LAMP__ATTENTION_MAX_DIM, valid4, NULL, 0, 0,
                                  0}, 0);
  /* sliding windows (Mistral, Gemma's local layers), after a prefix of more than a tile whose
   * keys drop out of the later queries' view: shorter than a tile, and longer; then on the
   * cases above, the last two soft-capped with windows shorter than their prefixes */
  const int valid8[3] = {37, 30, 21};
  check_attention(ctx, (att_case){3, 18, 19, 4, 2, 8, valid8, NULL, 0, 0, 5}, 1);
  check_attention(ctx, (att_case){3, 18, 19, 4, 2, 8, valid8, NULL, 0, 0, 20}, 1);
  check_attention(ctx, (att_case){2, 3, 18, 2, 1, 64, valid5, NULL, 0, 0, 7}, 1);
  check_attention(ctx, (att_case){3, 4, 16, 4, 2, 16, valid6, NULL, 0.3, 1.5, 3}, 1);
  check_attention(ctx, (att_case){2, 3, 6, 2, 1, LAMP__ATTENTION_MAX_DIM, valid7, NULL, 0.0625,
                                  2.0, 4}, 1);
}

/* The same cases with the other kernel profile than the context's, so that both shapes of the
 * attention kernels run on every device the suite runs on. */
static void test_attention_other_profile(void **state) {
  lamp_kernel_profile mine;
  LAMP_OK_OR_FAIL((lamp_context *)*state,
                  lamp_context_get_kernel_profile(*state, &mine));
  lamp_context_options o;
  lamp_context_options_init(&o);
  o.kernel_profile = mine.kind == LAMP_KERNEL_PROFILE_GPU ? LAMP_KERNEL_PROFILE_CPU
                                                          : LAMP_KERNEL_PROFILE_GPU;
  lamp_context *ctx = NULL;
  char err[512];
  assert_int_equal(lamp_context_create(&o, &ctx, err, sizeof(err)), LAMP_OK);
  lamp_kernel_profile other;
  LAMP_OK_OR_FAIL(ctx, lamp_context_get_kernel_profile(ctx, &other));
  assert_int_equal(other.kind, o.kernel_profile);
  void *inner = ctx;
  test_attention(&inner);
  lamp_context_release(ctx);
}

static void test_attention_errors(void **state) {
  lamp_context *ctx = *state;
  const int valid[1] = {3};
  cl_mem tv = ints(ctx, valid, 1);
  const size_t D = LAMP__ATTENTION_MAX_DIM + 2;
  lamp_tensor tq = up(ctx, NULL, 3 * D, 3), to = up(ctx, NULL, D, 3), tl = up(ctx, NULL, 1, 3);
  assert_int_equal(lamp__llama_attention_forward(ctx, &to, &tl, &tq, tv, 1, 0, 3, 1, 1, D, 0.1f,
                                                 0.0f, 0), LAMP_ERR_UNSUPPORTED);
  assert_int_equal(lamp__llama_attention_forward(ctx, &to, &tl, &tq, tv, 1, 0, 3, 3, 2, 10, 0.1f,
                                                 0.0f, 0), LAMP_ERR_SHAPE);
  assert_non_null(strstr(lamp_context_error(ctx), "multiple"));
  clReleaseMemObject(tv);
  lamp_tensor_release(&tq), lamp_tensor_release(&to), lamp_tensor_release(&tl);
}

/* ---- SwiGLU ----------------------------------------------------------------------------- */

typedef void (*glu_ref)(double *a, const double *gu, size_t rows, size_t ffn);
typedef lamp_status (*glu_forward)(lamp_context *, lamp_tensor *, const lamp_tensor *);
typedef lamp_status (*glu_backward)(lamp_context *, lamp_tensor *, const lamp_tensor *,
                                    const lamp_tensor *);

typedef struct glu_case {
  size_t rows, ffn;
  const double *da;
  glu_ref ref;
} glu_case;

static double glu_loss(void *user, const double *gu) {
  glu_case *c = user;
  double *a = malloc(c->rows * c->ffn * sizeof(double)), s = 0;
  c->ref(a, gu, c->rows, c->ffn);
  for (size_t i = 0; i < c->rows * c->ffn; i++) s += a[i] * c->da[i];
  free(a);
  return s;
}

/* A gated unit's forward against its reference and its backward against finite differences,
 * gates drawn from [-range, range]. */
static void check_glu(lamp_context *ctx, const char *name, glu_forward fwd, glu_backward bwd,
                      glu_ref ref, float range, uint64_t seed) {
  const size_t R = 7, F = 13;
  char what[64];
  float *gu = rnd(R * 2 * F, seed, -range, range), *da = rnd(R * F, seed + 1, -1, 1);
  lamp_tensor tg = up(ctx, gu, 2 * F, R), ta = up(ctx, NULL, F, R), tda = up(ctx, da, F, R);
  lamp_tensor tdg = up(ctx, NULL, 2 * F, R);
  double *gd = widen(gu, R * 2 * F), *dad = widen(da, R * F);
  double *want = malloc(R * F * sizeof(double)), *grad = malloc(R * 2 * F * sizeof(double));
  LAMP_OK_OR_FAIL(ctx, fwd(ctx, &ta, &tg));
  ref(want, gd, R, F);
  float *got = down(ctx, &ta);
  snprintf(what, sizeof(what), "%s forward", name);
  expect_close(what, got, want, R * F);
  free(got);
  glu_case gc = {R, F, dad, ref};
  ref_llama_fd(glu_loss, &gc, gd, R * 2 * F, 1e-5, grad);
  LAMP_OK_OR_FAIL(ctx, bwd(ctx, &tdg, &tda, &tg));
  got = down(ctx, &tdg);
  snprintf(what, sizeof(what), "%s backward", name);
  expect_close(what, got, grad, R * 2 * F);
  free(got);
  assert_int_equal(fwd(ctx, &tdg, &tg), LAMP_ERR_SHAPE);
  lamp_tensor_release(&tg), lamp_tensor_release(&ta), lamp_tensor_release(&tda);
  lamp_tensor_release(&tdg);
  free(gu), free(da), free(gd), free(dad), free(want), free(grad);
}

static void test_swiglu(void **state) {
  check_glu(*state, "swiglu", lamp__llama_swiglu_forward, lamp__llama_swiglu_backward,
            ref_llama_swiglu, 4, 31);
}

/* ---- Q/K head norms ----------------------------------------------------------------------- */

typedef struct heads_case {
  size_t rows, stride, q_heads, heads, dim;
  const double *wq, *wk, *dy;
  double eps;
} heads_case;

/* y = x with each of the first `heads` heads of every row normalised (wq below q_heads). */
static void heads_ref(const heads_case *c, double *y, const double *x) {
  memcpy(y, x, c->rows * c->stride * sizeof(double));
  for (size_t r = 0; r < c->rows; r++)
    for (size_t h = 0; h < c->heads; h++) {
      const size_t at = r * c->stride + h * c->dim;
      ref_llama_rmsnorm(y + at, x + at, h < c->q_heads ? c->wq : c->wk, 1, c->dim, c->eps);
    }
}

static double heads_loss(void *user, const double *x) {
  heads_case *c = user;
  const size_t n = c->rows * c->stride;
  double *y = malloc(n * sizeof(double)), s = 0;
  heads_ref(c, y, x);
  for (size_t i = 0; i < n; i++) s += y[i] * c->dy[i];
  free(y);
  return s;
}

/* Gemma 3's norms over 3 query and 2 key heads of width 20 in rows that also hold 2 value
 * heads, which stay as they are (their gradient too). */
static void test_rmsnorm_heads(void **state) {
  lamp_context *ctx = *state;
  const size_t R = 4, QH = 3, HS = 5, D = 20, W = (HS + 2) * D, n = R * W;
  const float eps = 1e-6f;
  float *x = rnd(n, 51, -2, 2), *dy = rnd(n, 52, -1, 1);
  float *wq = rnd(D, 53, 0.5f, 1.5f), *wk = rnd(D, 54, 0.5f, 1.5f);
  lamp_tensor tx = up(ctx, x, W, R), tdy = up(ctx, dy, W, R), twq = up(ctx, wq, D, 1);
  lamp_tensor twk = up(ctx, wk, D, 1), tsv = up(ctx, NULL, HS * D, R), tr = up(ctx, NULL, HS, R);
  double *xd = widen(x, n), *dyd = widen(dy, n), *wqd = widen(wq, D), *wkd = widen(wk, D);
  double *want = malloc(n * sizeof(double)), *grad = malloc(n * sizeof(double));
  heads_case hc = {R, W, QH, HS, D, wqd, wkd, dyd, eps};
  LAMP_OK_OR_FAIL(ctx, lamp__llama_rmsnorm_heads_forward(ctx, &tx, &tsv, &tr, &twq, &twk, QH, HS,
                                                         D, eps));
  heads_ref(&hc, want, xd);
  float *got = down(ctx, &tx);
  expect_close("head norms forward", got, want, n);
  free(got);
  got = down(ctx, &tsv);
  for (size_t r = 0; r < R; r++)
    for (size_t i = 0; i < HS * D; i++) assert_true(got[r * HS * D + i] == x[r * W + i]);
  free(got);
  ref_llama_fd(heads_loss, &hc, xd, n, 1e-5, grad);
  LAMP_OK_OR_FAIL(ctx, lamp__llama_rmsnorm_heads_backward(ctx, &tdy, &tsv, &tr, &twq, &twk, QH,
                                                          HS, D));
  got = down(ctx, &tdy);
  expect_close("head norms backward", got, grad, n);
  free(got);
  assert_int_equal(lamp__llama_rmsnorm_heads_forward(ctx, &tx, &tsv, &tr, &twq, &twk, QH, 8, D,
                                                     eps), LAMP_ERR_SHAPE);
  lamp_tensor_release(&tx), lamp_tensor_release(&tdy), lamp_tensor_release(&twq);
  lamp_tensor_release(&twk), lamp_tensor_release(&tsv), lamp_tensor_release(&tr);
  free(x), free(dy), free(wq), free(wk), free(xd), free(dyd), free(wqd), free(wkd);
  free(want), free(grad);
}

/* ---- GeGLU ------------------------------------------------------------------------------ */

/* Gates over both of GELU's bends and its flat tails. */
static void test_geglu(void **state) {
  check_glu(*state, "geglu", lamp__llama_geglu_forward, lamp__llama_geglu_backward,
            ref_llama_geglu, 5, 33);
}

/* ---- soft cap ---------------------------------------------------------------------------- */

typedef struct softcap_case {
  size_t n;
  double cap;
  const double *dy;
} softcap_case;

static double softcap_loss(void *user, const double *x) {
  softcap_case *c = user;
  double s = 0;
  for (size_t i = 0; i < c->n; i++) s += c->cap * tanh(x[i] / c->cap) * c->dy[i];
  return s;
}

/* Gemma 2's logit cap on values well past it (rows wider than the 64 columns of a group). */
static void test_softcap(void **state) {
  lamp_context *ctx = *state;
  const size_t R = 3, W = 70, n = R * W;
  const float cap = 3.0f;
  float *x = rnd(n, 35, -10, 10), *dy = rnd(n, 36, -1, 1);
  lamp_tensor tx = up(ctx, x, W, R), tdy = up(ctx, dy, W, R), tbad = up(ctx, dy, W - 1, R);
  double *xd = widen(x, n), *dyd = widen(dy, n), *want = malloc(n * sizeof(double));
  double *grad = malloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) want[i] = cap * tanh(xd[i] / cap);
  LAMP_OK_OR_FAIL(ctx, lamp__llama_softcap_forward(ctx, &tx, cap));
  float *got = down(ctx, &tx);
  expect_close("softcap forward", got, want, n);
  free(got);
  softcap_case sc = {n, cap, dyd};
  ref_llama_fd(softcap_loss, &sc, xd, n, 1e-5, grad);
  LAMP_OK_OR_FAIL(ctx, lamp__llama_softcap_backward(ctx, &tdy, &tx, cap));
  got = down(ctx, &tdy);
  expect_close("softcap backward", got, grad, n);
  free(got);
  assert_int_equal(lamp__llama_softcap_backward(ctx, &tbad, &tx, cap), LAMP_ERR_SHAPE);
  assert_int_equal(lamp__llama_softcap_forward(ctx, &tx, 0.0f), LAMP_ERR_INVALID_ARGUMENT);
  lamp_tensor_release(&tx), lamp_tensor_release(&tdy), lamp_tensor_release(&tbad);
  free(x), free(dy), free(xd), free(dyd), free(want), free(grad);
}

/* ---- bias add ---------------------------------------------------------------------------- */

/* A bias in the middle of the rows, of a width that is not a multiple of the work-group's 64
 * columns, so the bounds check runs; columns outside it stay as they were. */
static void test_bias_add(void **state) {
  lamp_context *ctx = *state;
  const size_t R = 5, W = 130, COL = 20, B = 100;
  float *x = rnd(R * W, 41, -2, 2), *b = rnd(B, 42, -1, 1);
  lamp_tensor tx = up(ctx, x, W, R), tb = up(ctx, b, B, 1), tbad = up(ctx, b, B / 2, 2);
  double *want = malloc(R * W * sizeof(double));
  assert_non_null(want);
  for (size_t r = 0; r < R; r++)
    for (size_t c = 0; c < W; c++)
      want[r * W + c] = (double)x[r * W + c] + (c >= COL && c < COL + B ? b[c - COL] : 0.0f);
  LAMP_OK_OR_FAIL(ctx, lamp__llama_bias_add(ctx, &tx, COL, &tb));
  float *got = down(ctx, &tx);
  expect_close("bias add", got, want, R * W);
  free(got);
  assert_int_equal(lamp__llama_bias_add(ctx, &tx, COL, &tbad), LAMP_ERR_SHAPE);
  assert_int_equal(lamp__llama_bias_add(ctx, &tx, W - B + 1, &tb), LAMP_ERR_SHAPE);
  lamp_tensor_release(&tx), lamp_tensor_release(&tb), lamp_tensor_release(&tbad);
  free(x), free(b), free(want);
}

/* ---- cross-entropy ---------------------------------------------------------------------- */

typedef struct ce_case {
  size_t rows, width;
  const int *target;
} ce_case;

static double ce_mean(void *user, const double *z) {
  ce_case *c = user;
  double *loss = malloc(c->rows * sizeof(double)), s = 0;
  size_t count = 0;
  ref_llama_cross_entropy(loss, z, c->rows, c->width, c->target);
  for (size_t r = 0; r < c->rows; r++) {
    s += loss[r];
    count += c->target[r] >= 0;
  }
  free(loss);
  return s / (double)count;
}

static void test_cross_entropy(void **state) {
  lamp_context *ctx = *state;
  /* a vocabulary-sized row set and a verbaliser-sized one; large logits test stability */
  const size_t widths[2] = {300, 3};
  for (size_t k = 0; k < 2; k++) {
    const size_t R = 4, V = widths[k];
    const int target[4] = {0, (int)V - 1, -1, (int)V / 2};
    float *z = rnd(R * V, 41 + k, -8, 8);
    z[1] = 80.0f; /* a logit whose exp overflows float without the max shift */
    lamp_tensor tz = up(ctx, z, V, R), tl = up(ctx, NULL, R, 1), ts = up(ctx, NULL, R, 1);
    lamp_tensor tdz = up(ctx, NULL, V, R);
    cl_mem tt = ints(ctx, target, R);
    double *zd = widen(z, R * V), want[4], *grad = malloc(R * V * sizeof(double));
    LAMP_OK_OR_FAIL(ctx, lamp__llama_cross_entropy_forward(ctx, &tl, &ts, &tz, tt));
    ref_llama_cross_entropy(want, zd, R, V, target);
    float *got = down(ctx, &tl);
    expect_close("cross-entropy forward", got, want, R);
    free(got);
    ce_case cc = {R, V, target};
    ref_llama_fd(ce_mean, &cc, zd, R * V, 1e-5, grad);
    LAMP_OK_OR_FAIL(ctx, lamp__llama_cross_entropy_backward(ctx, &tdz, &tz, &ts, tt, 1.0f / 3.0f));
    got = down(ctx, &tdz);
    expect_close("cross-entropy backward", got, grad, R * V);
    free(got);
    clReleaseMemObject(tt);
    lamp_tensor_release(&tz), lamp_tensor_release(&tl), lamp_tensor_release(&ts);
    lamp_tensor_release(&tdz);
    free(z), free(zd), free(grad);
  }
  /* masked logits (-inf), the first of a work-item's share among them: a finite loss, and a
   * gradient of exactly 0 on the masked ones. A row masked whole has no log-sum-exp: its
   * target is impossible, so its loss is +inf (which training reports as not finite) and its
   * gradient 0, not NaN. */
  const size_t R = 3, V = 300;
  const int target[3] = {150, 299, 10};
  float *z = rnd(R * V, 43, -8, 8);
  for (size_t c = 0; c < 140; c++) z[c] = z[V + c] = -INFINITY;
  for (size_t c = 0; c < V; c++) z[2 * V + c] = -INFINITY;
  lamp_tensor tz = up(ctx, z, V, R), tl = up(ctx, NULL, R, 1), ts = up(ctx, NULL, R, 1);
  lamp_tensor tdz = up(ctx, NULL, V, R);
  cl_mem tt = ints(ctx, target, R);
  double *zd = widen(z, R * V), want[3];
  LAMP_OK_OR_FAIL(ctx, lamp__llama_cross_entropy_forward(ctx, &tl, &ts, &tz, tt));
  ref_llama_cross_entropy(want, zd, 2, V, target);
  float *got = down(ctx, &tl);
  expect_close("cross-entropy forward, masked logits", got, want, 2);
  if (!(isinf(got[2]) && got[2] > 0))
    fail_msg("cross-entropy forward, a row masked whole: loss %g, not +inf", got[2]);
  free(got);
  LAMP_OK_OR_FAIL(ctx, lamp__llama_cross_entropy_backward(ctx, &tdz, &tz, &ts, tt, 1.0f));
  got = down(ctx, &tdz);
  for (size_t i = 0; i < R * V; i++)
    if (!(isfinite(got[i]) && ((i % V >= 140 && i < 2 * V) || got[i] == 0.0f)))
      fail_msg("cross-entropy backward, masked logits: element %zu is %g", i, got[i]);
  free(got);
  clReleaseMemObject(tt);
  lamp_tensor_release(&tz), lamp_tensor_release(&tl), lamp_tensor_release(&ts);
  lamp_tensor_release(&tdz);
  free(z), free(zd);
}

/* ---- embedding, gather, scatter --------------------------------------------------------- */

static void test_embedding(void **state) {
  lamp_context *ctx = *state;
  const size_t B = 3, T = 5, P = 2, C = 7, V = 11, N = P + B * T;
  const int ids[15] = {1, 2, 3, 4, 5, 10, 0, 99, 99, 99, 7, 7, 7, 7, 7};
  const int lengths[3] = {5, 2, 0};
  float *table = rnd(V * C, 51, -1, 1), *prompt = rnd(P * C, 52, -1, 1), *dx = rnd(N * C, 53, -1, 1);
  lamp_tensor tt = up(ctx, table, C, V), tp = up(ctx, prompt, C, P), tx = up(ctx, NULL, C, N);
  lamp_tensor tdx = up(ctx, dx, C, N), tdp = up(ctx, NULL, C, P);
  cl_mem ti = ints(ctx, ids, B * T), tl = ints(ctx, lengths, B);
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_fill(ctx, &tx, 3.0f));
  LAMP_OK_OR_FAIL(ctx, lamp__llama_embedding_forward(ctx, &tx, &tt, &tp, ti, tl, B, T, P));
  double *want = calloc(N * C, sizeof(double)), *dp = calloc(P * C, sizeof(double));
  /* the prompt rows once, then each sequence's tokens, zeros past its length */
  for (size_t c = 0; c < C; c++) {
    for (size_t p = 0; p < P; p++) {
      want[p * C + c] = prompt[p * C + c];
      dp[p * C + c] = dx[p * C + c];
    }
    for (size_t b = 0; b < B; b++)
      for (size_t t = 0; t < T; t++)
        if ((int)t < lengths[b]) want[(P + b * T + t) * C + c] = table[ids[b * T + t] * C + c];
  }
  float *got = down(ctx, &tx);
  expect_close("embedding forward", got, want, N * C);
  free(got);
  LAMP_OK_OR_FAIL(ctx, lamp__llama_embedding_backward(ctx, &tdp, &tdx, B, T, P));
  got = down(ctx, &tdp);
  expect_close("embedding backward (prompt)", got, dp, P * C);
  free(got);

  /* gather rows 4, 0, 9 of the table; scatter them back into a filled matrix */
  const int idx[3] = {4, 0, 9};
  cl_mem tix = ints(ctx, idx, 3);
  lamp_tensor tg = up(ctx, NULL, C, 3), tdst = up(ctx, NULL, C, V);
  LAMP_OK_OR_FAIL(ctx, lamp__llama_gather(ctx, &tg, &tt, tix));
  LAMP_OK_OR_FAIL(ctx, lamp_tensor_fill(ctx, &tdst, -1.0f));
  LAMP_OK_OR_FAIL(ctx, lamp__llama_scatter(ctx, &tdst, &tg, tix));
  double *wg = malloc(3 * C * sizeof(double)), *ws = malloc(V * C * sizeof(double));
  for (size_t i = 0; i < V * C; i++) ws[i] = -1.0;
  for (size_t m = 0; m < 3; m++)
    for (size_t c = 0; c < C; c++) {
      wg[m * C + c] = table[idx[m] * C + c];
      ws[idx[m] * C + c] = table[idx[m] * C + c];
    }
  got = down(ctx, &tg);
  expect_close("gather", got, wg, 3 * C);
  free(got);
  got = down(ctx, &tdst);
  expect_close("scatter", got, ws, V * C);
  free(got);
  clReleaseMemObject(ti), clReleaseMemObject(tl), clReleaseMemObject(tix);
  lamp_tensor *all[] = {&tt, &tp, &tx, &tdx, &tdp, &tg, &tdst};
  for (size_t i = 0; i < 7; i++) lamp_tensor_release(all[i]);
  free(table), free(prompt), free(dx), free(want), free(dp), free(wg), free(ws);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rmsnorm),        cmocka_unit_test(test_rope),
      cmocka_unit_test(test_attention),      cmocka_unit_test(test_attention_other_profile),
      cmocka_unit_test(test_attention_errors),
      cmocka_unit_test(test_swiglu),         cmocka_unit_test(test_geglu),
      cmocka_unit_test(test_softcap),        cmocka_unit_test(test_rmsnorm_heads),
      cmocka_unit_test(test_bias_add),
      cmocka_unit_test(test_cross_entropy),
      cmocka_unit_test(test_embedding),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
