/* The pooled LAMP prompt, forward and backward: lamp's fused tiled kernels against
 *  (a) materialise: form the whole (P, C) prompt with GEMMs, then pool (and the reverse), and
 *  (b) pooled GEMMs: the same pooled-first products as plain CLBlast GEMMs, with the averaging
 *      matrix A (P', P) and diag(q) as dense matrices;
 * outputs and gradients of (a) and (b) are checked against the fused ones. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

const bench_prompt_config bench_prompt_configs[] = {{100, 576, 8, 2}, {100, 768, 8, 2},
                                                    {400, 4096, 16, 4}};
const size_t bench_prompt_config_count =
    sizeof(bench_prompt_configs) / sizeof(bench_prompt_configs[0]);

typedef struct bench {
  lamp_context *ctx;
  size_t l, d, r, s, lp;
  lamp_prompt *prompt;
  lamp_tensor u, q, vt;     /* the prompt's U (P, R), q (R), Vt (R, C) */
  lamp_tensor du, dq, dvt;  /* its gradients */
  lamp_tensor out, dout;    /* (P', C) */
  lamp_tensor qdiag;        /* diag(q) (R, R) */
  /* (a) */
  lamp_tensor a_uq, a_full, a_g, a_w, a_out, a_du, a_dq, a_dvt;
  /* (b) */
  lamp_tensor b_avg, b_up, b_upq, b_w, b_wq, b_out, b_du, b_dq, b_dvt;
} bench;

static lamp_tensor make2(bench *b, size_t rows, size_t cols) {
  lamp_tensor t;
  size_t ne[2] = {cols, rows};
  BENCH_CHECK(b->ctx, lamp_tensor_create(b->ctx, LAMP_DTYPE_F32, 2, ne, &t));
  return t;
}

static void fill_random(bench *b, lamp_tensor *t, unsigned seed) {
  size_t n = lamp_tensor_numel(t);
  float *x = bench_malloc(4 * n);
  bench_fill_uniform(x, n, seed);
  BENCH_CHECK(b->ctx, lamp_tensor_upload(b->ctx, t, x, 4 * n));
  free(x);
}

/* Column k of an (rows, R) matrix as a batch of R (rows, 1) matrices with row stride R, so that
 * one strided-batched GEMM forms the R dot products of dq. */
static lamp_tensor columns(bench *b, const lamp_tensor *m, size_t rows) {
  lamp_tensor t;
  size_t ne[3] = {1, rows, b->r}, nb[3] = {4, 4 * b->r, 4};
  BENCH_CHECK(b->ctx, lamp_tensor_view(b->ctx, m, 0, 3, ne, nb, &t));
  return t;
}

static lamp_tensor as_batch(bench *b, const lamp_tensor *dq) {
  lamp_tensor t;
  size_t ne[3] = {1, 1, b->r}, nb[3] = {4, 4, 4};
  BENCH_CHECK(b->ctx, lamp_tensor_view(b->ctx, dq, 0, 3, ne, nb, &t));
  return t;
}

static void setup(bench *b, lamp_context *ctx, const bench_prompt_config *c) {
  memset(b, 0, sizeof(*b));
  b->ctx = ctx;
  b->l = c->l;
  b->d = c->d;
  b->r = c->r;
  b->s = c->s;
  b->lp = (c->l + c->s - 1) / c->s;
  lamp_prompt_options o;
  lamp_prompt_options_init(&o, LAMP_PROMPT_LAMP, c->d);
  o.length = c->l;
  o.rank = c->r;
  o.pool = c->s;
  o.init = LAMP_PROMPT_INIT_NONE;
  BENCH_CHECK(ctx, lamp_prompt_create(ctx, &o, &b->prompt));
  lamp_param p[3];
  size_t n = 0;
  BENCH_CHECK(ctx, lamp_prompt_params(b->prompt, p, 3, &n));
  b->u = p[0].value;
  b->q = p[1].value;
  b->du = p[0].grad;
  b->dq = p[1].grad;
  /* V is exposed as a transposed view of Vt (R, C); the GEMMs want Vt itself */
  size_t ne_vt[2] = {c->d, c->r};
  BENCH_CHECK(ctx, lamp_tensor_wrap(ctx, p[2].value.buffer, p[2].value.offset, LAMP_DTYPE_F32, 2, ne_vt,
                              NULL, &b->vt));
  BENCH_CHECK(ctx, lamp_tensor_wrap(ctx, p[2].grad.buffer, p[2].grad.offset, LAMP_DTYPE_F32, 2, ne_vt,
                              NULL, &b->dvt));
  fill_random(b, &b->u, 1);
  fill_random(b, &b->q, 2);
  fill_random(b, &b->vt, 3);
  b->out = make2(b, b->lp, c->d);
  b->dout = make2(b, b->lp, c->d);
  fill_random(b, &b->dout, 4);

  /* diag(q) and the averaging matrix, built on the host once (not timed) */
  float *qh = bench_malloc(4 * c->r), *dq = bench_malloc(4 * c->r * c->r);
  float *avg = bench_malloc(4 * b->lp * c->l);
  memset(dq, 0, 4 * c->r * c->r);
  memset(avg, 0, 4 * b->lp * c->l);
  BENCH_CHECK(ctx, lamp_tensor_download(ctx, &b->q, qh, 4 * c->r));
  for (size_t k = 0; k < c->r; k++) dq[k * c->r + k] = qh[k];
  for (size_t j = 0; j < b->lp; j++) {
    size_t t0 = j * c->s, t1 = t0 + c->s < c->l ? t0 + c->s : c->l;
    for (size_t t = t0; t < t1; t++) avg[j * c->l + t] = 1.0f / (float)(t1 - t0);
  }
  b->qdiag = make2(b, c->r, c->r);
  BENCH_CHECK(ctx, lamp_tensor_upload(ctx, &b->qdiag, dq, 4 * c->r * c->r));
  b->b_avg = make2(b, b->lp, c->l);
  BENCH_CHECK(ctx, lamp_tensor_upload(ctx, &b->b_avg, avg, 4 * b->lp * c->l));
  free(qh);
  free(dq);
  free(avg);

  b->a_uq = make2(b, c->l, c->r);
  b->a_full = make2(b, c->l, c->d);
  b->a_g = make2(b, c->l, c->d);
  b->a_w = make2(b, c->l, c->r);
  b->a_out = make2(b, b->lp, c->d);
  b->a_du = make2(b, c->l, c->r);
  b->a_dq = make2(b, 1, c->r);
  b->a_dvt = make2(b, c->r, c->d);
  b->b_up = make2(b, b->lp, c->r);
  b->b_upq = make2(b, b->lp, c->r);
  b->b_w = make2(b, b->lp, c->r);
  b->b_wq = make2(b, b->lp, c->r);
  b->b_out = make2(b, b->lp, c->d);
  b->b_du = make2(b, c->l, c->r);
  b->b_dq = make2(b, 1, c->r);
  b->b_dvt = make2(b, c->r, c->d);
}

static void teardown(bench *b) {
  lamp_tensor *ts[] = {&b->out, &b->dout, &b->qdiag, &b->a_uq, &b->a_full, &b->a_g, &b->a_w,
                       &b->a_out, &b->a_du, &b->a_dq, &b->a_dvt, &b->b_avg, &b->b_up, &b->b_upq,
                       &b->b_w, &b->b_wq, &b->b_out, &b->b_du, &b->b_dq, &b->b_dvt};
  for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) lamp_tensor_release(ts[i]);
  lamp_prompt_release(b->prompt);
}

static void forward(bench *b, int how) {
  lamp_context *ctx = b->ctx;
  if (how == BENCH_PROMPT_FUSED) {
    BENCH_CHECK(ctx, lamp_prompt_forward(b->prompt, &b->out));
  } else if (how == BENCH_PROMPT_MATERIALISE) {
    BENCH_CHECK(ctx, lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1, &b->u, &b->qdiag, 0, &b->a_uq));
    BENCH_CHECK(ctx, lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1, &b->a_uq, &b->vt, 0, &b->a_full));
    BENCH_CHECK(ctx, lamp_pool_avg_forward(ctx, &b->a_out, &b->a_full, b->s));
  } else {
    BENCH_CHECK(ctx, lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1, &b->b_avg, &b->u, 0, &b->b_up));
    BENCH_CHECK(ctx, lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1, &b->b_up, &b->qdiag, 0, &b->b_upq));
    BENCH_CHECK(ctx, lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1, &b->b_upq, &b->vt, 0, &b->b_out));
  }
}

/* Accumulates into each variant's own gradients. (a) and (b) read the products their forward
 * left (Uq, pooled U), as a training step would. */
static void backward(bench *b, int how) {
  lamp_context *ctx = b->ctx;
  if (how == BENCH_PROMPT_FUSED) {
    BENCH_CHECK(ctx, lamp_prompt_backward(b->prompt, &b->dout));
  } else if (how == BENCH_PROMPT_MATERIALISE) {
    lamp_tensor uc = columns(b, &b->u, b->l), wc = columns(b, &b->a_w, b->l);
    lamp_tensor dqb = as_batch(b, &b->a_dq);
    BENCH_CHECK(ctx, lamp_pool_avg_backward(ctx, &b->a_g, &b->dout, b->s, 0));
    BENCH_CHECK(ctx, lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_TRANS, 1, &b->a_g, &b->vt, 0, &b->a_w));
    BENCH_CHECK(ctx, lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1, &b->a_w, &b->qdiag, 1, &b->a_du));
    BENCH_CHECK(ctx, lamp_gemm(ctx, LAMP_TRANS, LAMP_NO_TRANS, 1, &b->a_uq, &b->a_g, 1, &b->a_dvt));
    BENCH_CHECK(ctx, lamp_gemm(ctx, LAMP_TRANS, LAMP_NO_TRANS, 1, &uc, &wc, 1, &dqb));
  } else {
    lamp_tensor uc = columns(b, &b->b_up, b->lp), wc = columns(b, &b->b_w, b->lp);
    lamp_tensor dqb = as_batch(b, &b->b_dq);
    BENCH_CHECK(ctx, lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_TRANS, 1, &b->dout, &b->vt, 0, &b->b_w));
    BENCH_CHECK(ctx, lamp_gemm(ctx, LAMP_NO_TRANS, LAMP_NO_TRANS, 1, &b->b_w, &b->qdiag, 0, &b->b_wq));
    BENCH_CHECK(ctx, lamp_gemm(ctx, LAMP_TRANS, LAMP_NO_TRANS, 1, &b->b_avg, &b->b_wq, 1, &b->b_du));
    BENCH_CHECK(ctx, lamp_gemm(ctx, LAMP_TRANS, LAMP_NO_TRANS, 1, &b->b_upq, &b->dout, 1, &b->b_dvt));
    BENCH_CHECK(ctx, lamp_gemm(ctx, LAMP_TRANS, LAMP_NO_TRANS, 1, &uc, &wc, 1, &dqb));
  }
}

static float *download(bench *b, const lamp_tensor *t) {
  size_t n = lamp_tensor_numel(t);
  float *x = bench_malloc(4 * n);
  BENCH_CHECK(b->ctx, lamp_tensor_download(b->ctx, t, x, 4 * n));
  return x;
}

/* max |x - y| / max |y| */
static double rel_diff(bench *b, const lamp_tensor *x, const lamp_tensor *y) {
  float *a = download(b, x), *c = download(b, y);
  double scale = 1e-30, err = 0;
  for (size_t i = 0; i < lamp_tensor_numel(y); i++) {
    scale = fmax(scale, fabs(c[i]));
    err = fmax(err, fabs((double)a[i] - c[i]));
  }
  free(a);
  free(c);
  return err / scale;
}

/* Worst relative difference of a variant's output and gradients from the fused kernels'. */
static double check_variant(bench *b, int how) {
  lamp_tensor *out = how == BENCH_PROMPT_MATERIALISE ? &b->a_out : &b->b_out;
  lamp_tensor *du = how == BENCH_PROMPT_MATERIALISE ? &b->a_du : &b->b_du;
  lamp_tensor *dq = how == BENCH_PROMPT_MATERIALISE ? &b->a_dq : &b->b_dq;
  lamp_tensor *dvt = how == BENCH_PROMPT_MATERIALISE ? &b->a_dvt : &b->b_dvt;
  lamp_tensor dq_flat;
  size_t ne = b->r;
  BENCH_CHECK(b->ctx, lamp_tensor_view(b->ctx, dq, 0, 1, &ne, NULL, &dq_flat));
  double e = rel_diff(b, out, &b->out);
  e = fmax(e, rel_diff(b, du, &b->du));
  e = fmax(e, rel_diff(b, &dq_flat, &b->dq));
  return fmax(e, rel_diff(b, dvt, &b->dvt));
}

/* Seconds per call: a warm-up, then enough calls for about 0.3 s (at least 5). */
static double time_it(bench *b, int how, int is_backward, int quick) {
  void (*fn)(bench *, int) = is_backward ? backward : forward;
  fn(b, how);
  BENCH_CHECK(b->ctx, lamp_context_finish(b->ctx));
  double t0 = bench_now();
  fn(b, how);
  BENCH_CHECK(b->ctx, lamp_context_finish(b->ctx));
  double one = bench_now() - t0;
  int reps = one > 0 ? (int)((quick ? 0.05 : 0.3) / one) : 100;
  if (reps < 5) reps = 5;
  if (reps > 2000) reps = 2000;
  t0 = bench_now();
  for (int i = 0; i < reps; i++) fn(b, how);
  BENCH_CHECK(b->ctx, lamp_context_finish(b->ctx));
  return (bench_now() - t0) / reps;
}

void bench_prompt_measure(lamp_context *ctx, const bench_prompt_config *c, int quick,
                          bench_prompt_result *out) {
  bench b;
  setup(&b, ctx, c);
  /* one clean pass of each variant from zero gradients, for the cross-check */
  BENCH_CHECK(ctx, lamp_prompt_zero_grad(b.prompt));
  lamp_tensor *zero[] = {&b.a_du, &b.a_dq, &b.a_dvt, &b.b_du, &b.b_dq, &b.b_dvt};
  for (size_t z = 0; z < 6; z++) BENCH_CHECK(ctx, lamp_tensor_fill(ctx, zero[z], 0.0f));
  for (int how = BENCH_PROMPT_FUSED; how <= BENCH_PROMPT_POOLED_GEMM; how++) {
    forward(&b, how);
    backward(&b, how);
  }
  out->diff_a = check_variant(&b, BENCH_PROMPT_MATERIALISE);
  out->diff_b = check_variant(&b, BENCH_PROMPT_POOLED_GEMM);
  for (int bw = 0; bw < 2; bw++)
    for (int how = BENCH_PROMPT_FUSED; how <= BENCH_PROMPT_POOLED_GEMM; how++)
      out->seconds[bw][how] = time_it(&b, how, bw, quick);
  teardown(&b);
}
