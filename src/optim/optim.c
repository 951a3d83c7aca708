/* AdamW (kernels/adamw.cl), global-norm clipping (kernels/clip_grad_norm.cl) and learning-rate
 * schedules. Parameters sharing a value buffer and a gradient buffer form one group, updated by
 * one launch through a small table of (offset, length) segments kept on the device. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/internal.h"
#include "lamp/optim.h"

/* Most partial sums one group's reduction leaves: bounds the serial sum in clip_scale. */
#define LAMP__CLIP_MAX_GROUPS 64

typedef struct lamp__optim_group {
  cl_mem val_buf, grad_buf;
  size_t *members;   /* parameter indices */
  size_t n, max_len; /* members, longest member in floats */
  size_t grad_total; /* floats over all members */
  cl_mem seg;        /* ulong [4 n]: value, gradient and moment offsets, length */
  cl_mem clip_seg;   /* ulong [2 n]: gradient offset, length */
  cl_mem hp;         /* float [2 n]: learning rate, weight decay */
  size_t n_part, part_off; /* this group's partial sums in the clip reduction */
} lamp__optim_group;

struct lamp_adamw {
  lamp_context *ctx;
  lamp_adamw_options options;
  lamp_param *params;
  size_t n;
  size_t *moment_off;   /* per parameter, floats into `moments` */
  float *lr, *wd;       /* per parameter */
  lamp__optim_group *groups;
  size_t n_groups;
  size_t total;         /* floats over all parameters */
  cl_mem moments;       /* m [total] then v [total] */
  cl_mem partials;      /* float [n_part] */
  cl_mem norm;          /* float [1] */
  size_t n_part, wg;
  int hp_dirty;
  uint64_t steps;
};

void lamp_adamw_options_init(lamp_adamw_options *options) {
  if (!options) return;
  options->lr = 1e-2f;
  options->beta1 = 0.9f;
  options->beta2 = 0.999f;
  options->eps = 1e-8f;
  options->weight_decay = 0.01f;
}

static lamp_status lamp__adamw_check_options(lamp_context *ctx, const lamp_adamw_options *o) {
  if (!(o->lr >= 0 && isfinite(o->lr)))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "AdamW: learning rate %g", (double)o->lr);
  if (!(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "AdamW: betas (%g, %g) must lie in [0, 1)",
                      (double)o->beta1, (double)o->beta2);
  if (!(o->eps > 0 && isfinite(o->eps)))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "AdamW: eps %g must be positive",
                      (double)o->eps);
  if (!(o->weight_decay >= 0 && isfinite(o->weight_decay)))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "AdamW: weight decay %g",
                      (double)o->weight_decay);
  return LAMP_OK;
}

/* Nonzero when the tensor's elements fill [offset, offset + 4 numel) exactly once: its strides,
 * sorted, are those of a contiguous tensor in some dimension order. */
static int lamp__dense_f32(const lamp_tensor *t) {
  size_t nb[LAMP_MAX_DIMS], ne[LAMP_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < LAMP_MAX_DIMS; d++)
    if (t->ne[d] > 1) {
      int i = n++;
      while (i > 0 && nb[i - 1] > t->nb[d]) {
        nb[i] = nb[i - 1];
        ne[i] = ne[i - 1];
        i--;
      }
      nb[i] = t->nb[d];
      ne[i] = t->ne[d];
    }
  size_t expect = 4;
  for (int i = 0; i < n; i++) {
    if (nb[i] != expect) return 0;
    expect *= ne[i];
  }
  return 1;
}

static lamp_status lamp__adamw_check_param(lamp_context *ctx, const lamp_param *p, size_t i) {
  const lamp_tensor *v = &p->value, *g = &p->grad;
  if (!v->buffer || !g->buffer)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "AdamW: parameter %zu ('%.32s') has no "
                      "buffer", i, p->name);
  if (v->dtype != LAMP_DTYPE_F32 || g->dtype != LAMP_DTYPE_F32)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "AdamW: parameter %zu ('%.32s') is not f32", i,
                      p->name);
  if (memcmp(v->ne, g->ne, sizeof(v->ne)) != 0 || memcmp(v->nb, g->nb, sizeof(v->nb)) != 0)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "AdamW: parameter %zu ('%.32s') and its gradient "
                      "differ in shape or strides", i, p->name);
  if (!lamp__dense_f32(v) || v->offset % 4 || g->offset % 4)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "AdamW: parameter %zu ('%.32s') does not cover a "
                      "dense range of its buffer", i, p->name);
  return LAMP_OK;
}

/* Two parameters, or a parameter and a gradient, sharing bytes would be updated twice. */
static int lamp__ranges_overlap(const lamp_tensor *a, const lamp_tensor *b) {
  if (a->buffer != b->buffer) return 0;
  size_t ea = a->offset + 4 * lamp_tensor_numel(a), eb = b->offset + 4 * lamp_tensor_numel(b);
  return a->offset < eb && b->offset < ea;
}

static lamp_status lamp__make_buffer(lamp_context *ctx, size_t bytes, const void *init,
                                     cl_mem *out, const char *what) {
  return lamp__buffer_create(ctx, CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0), bytes,
                             (void *)init, what, out);
}

/* Builds the groups and their device tables. */
static lamp_status lamp__adamw_groups(lamp_adamw *opt) {
  lamp_context *ctx = opt->ctx;
  opt->groups = calloc(opt->n, sizeof(*opt->groups));
  if (!opt->groups) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < opt->n; i++) {
    const lamp_param *p = &opt->params[i];
    size_t g = 0;
    while (g < opt->n_groups && (opt->groups[g].val_buf != p->value.buffer ||
                                 opt->groups[g].grad_buf != p->grad.buffer))
      g++;
    lamp__optim_group *gr = &opt->groups[g];
    if (g == opt->n_groups) {
      opt->n_groups++;
      gr->val_buf = p->value.buffer;
      gr->grad_buf = p->grad.buffer;
      if (!(gr->members = calloc(opt->n, sizeof(size_t))))
        return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    size_t len = lamp_tensor_numel(&p->value);
    gr->members[gr->n++] = i;
    if (len > gr->max_len) gr->max_len = len;
    gr->grad_total += len;
  }
  for (size_t g = 0; g < opt->n_groups; g++) {
    lamp__optim_group *gr = &opt->groups[g];
    cl_ulong *seg = calloc(4 * gr->n, sizeof(cl_ulong));
    cl_ulong *clip = calloc(2 * gr->n, sizeof(cl_ulong));
    lamp_status s = LAMP_OK;
    if (!seg || !clip) s = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t m = 0; m < gr->n && s == LAMP_OK; m++) {
      const lamp_param *p = &opt->params[gr->members[m]];
      seg[4 * m] = p->value.offset / 4;
      seg[4 * m + 1] = clip[2 * m] = p->grad.offset / 4;
      seg[4 * m + 2] = opt->moment_off[gr->members[m]];
      seg[4 * m + 3] = clip[2 * m + 1] = lamp_tensor_numel(&p->value);
    }
    if (s == LAMP_OK)
      s = lamp__make_buffer(ctx, 4 * gr->n * sizeof(cl_ulong), seg, &gr->seg, "AdamW segments");
    if (s == LAMP_OK)
      s = lamp__make_buffer(ctx, 2 * gr->n * sizeof(cl_ulong), clip, &gr->clip_seg,
                            "clipping segments");
    if (s == LAMP_OK)
      s = lamp__make_buffer(ctx, 2 * gr->n * sizeof(cl_float), NULL, &gr->hp, "AdamW rates");
    free(seg);
    free(clip);
    LAMP__TRY(s);
    size_t groups = (gr->grad_total + opt->wg - 1) / opt->wg;
    gr->n_part = groups < 1 ? 1 : groups > LAMP__CLIP_MAX_GROUPS ? LAMP__CLIP_MAX_GROUPS : groups;
    gr->part_off = opt->n_part;
    opt->n_part += gr->n_part;
  }
  return LAMP_OK;
}

lamp_status lamp_adamw_create(lamp_context *ctx, const lamp_param *params, size_t count,
                              const lamp_adamw_options *options, lamp_adamw **out) {
  if (!ctx || !params || !count || !out)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_adamw_create: NULL argument or no "
                      "parameters");
  *out = NULL;
  lamp_adamw_options o;
  lamp_adamw_options_init(&o);
  if (options) o = *options;
  LAMP__TRY(lamp__adamw_check_options(ctx, &o));
  for (size_t i = 0; i < count; i++) {
    LAMP__TRY(lamp__adamw_check_param(ctx, &params[i], i));
    if (lamp__ranges_overlap(&params[i].value, &params[i].grad))
      return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "AdamW: parameter %zu ('%.32s') shares "
                        "memory with its gradient", i, params[i].name);
    for (size_t j = 0; j < i; j++)
      if (lamp__ranges_overlap(&params[i].value, &params[j].value) ||
          lamp__ranges_overlap(&params[i].value, &params[j].grad) ||
          lamp__ranges_overlap(&params[i].grad, &params[j].value))
        return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "AdamW: parameters %zu and %zu share "
                          "memory", j, i);
  }
  lamp_adamw *opt = calloc(1, sizeof(*opt));
  if (!opt) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  opt->ctx = ctx;
  opt->options = o;
  opt->n = count;
  opt->wg = ctx->kprof.wg_size;
  opt->hp_dirty = 1;
  opt->params = malloc(count * sizeof(*opt->params));
  opt->moment_off = malloc(count * sizeof(size_t));
  opt->lr = malloc(count * sizeof(float));
  opt->wd = malloc(count * sizeof(float));
  lamp_status s = LAMP_OK;
  if (!opt->params || !opt->moment_off || !opt->lr || !opt->wd)
    s = lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < count && s == LAMP_OK; i++) {
    opt->params[i] = params[i];
    opt->params[i].value.owns_buffer = opt->params[i].grad.owns_buffer = 0;
    opt->moment_off[i] = opt->total;
    opt->total += lamp_tensor_numel(&params[i].value);
    opt->lr[i] = o.lr;
    opt->wd[i] = o.weight_decay;
  }
  if (s == LAMP_OK) s = lamp__adamw_groups(opt);
  if (s == LAMP_OK) s = lamp__make_buffer(ctx, 2 * opt->total * sizeof(float), NULL, &opt->moments,
                                          "AdamW moments");
  if (s == LAMP_OK) {
    const float zero = 0.0f;
    cl_int err = clEnqueueFillBuffer(ctx->queue, opt->moments, &zero, sizeof(zero), 0,
                                     2 * opt->total * sizeof(float), 0, NULL, NULL);
    if (err != CL_SUCCESS)
      s = lamp__fail(ctx, lamp__status_from_cl(err), "clearing the AdamW moments: %s",
                     lamp_cl_error_name(err));
  }
  const float zeros[1] = {0.0f};
  if (s == LAMP_OK)
    s = lamp__make_buffer(ctx, opt->n_part * sizeof(float), NULL, &opt->partials,
                          "clipping partial sums");
  if (s == LAMP_OK) s = lamp__make_buffer(ctx, sizeof(float), zeros, &opt->norm, "gradient norm");
  if (s != LAMP_OK) {
    lamp_adamw_release(opt);
    return s;
  }
  *out = opt;
  return LAMP_OK;
}

void lamp_adamw_release(lamp_adamw *opt) {
  if (!opt) return;
  clFinish(opt->ctx->queue);
  for (size_t g = 0; g < opt->n_groups; g++) {
    lamp__optim_group *gr = &opt->groups[g];
    if (gr->seg) clReleaseMemObject(gr->seg);
    if (gr->clip_seg) clReleaseMemObject(gr->clip_seg);
    if (gr->hp) clReleaseMemObject(gr->hp);
    free(gr->members);
  }
  if (opt->moments) clReleaseMemObject(opt->moments);
  if (opt->partials) clReleaseMemObject(opt->partials);
  if (opt->norm) clReleaseMemObject(opt->norm);
  free(opt->groups);
  free(opt->params);
  free(opt->moment_off);
  free(opt->lr);
  free(opt->wd);
  free(opt);
}

lamp_status lamp_adamw_set_tensor(lamp_adamw *opt, size_t index, float lr, float weight_decay) {
  if (!opt) return LAMP_ERR_INVALID_ARGUMENT;
  if (index >= opt->n)
    return lamp__fail(opt->ctx, LAMP_ERR_INVALID_ARGUMENT, "AdamW: parameter %zu of %zu", index,
                      opt->n);
  lamp_adamw_options o = opt->options;
  o.lr = lr;
  o.weight_decay = weight_decay;
  LAMP__TRY(lamp__adamw_check_options(opt->ctx, &o));
  opt->lr[index] = lr;
  opt->wd[index] = weight_decay;
  opt->hp_dirty = 1;
  return LAMP_OK;
}

/* Sends the per-tensor rates to the groups' tables (blocking: the host arrays may change). */
static lamp_status lamp__adamw_upload_rates(lamp_adamw *opt) {
  lamp_context *ctx = opt->ctx;
  float *hp = malloc(2 * opt->n * sizeof(float));
  if (!hp) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  for (size_t g = 0; g < opt->n_groups; g++) {
    const lamp__optim_group *gr = &opt->groups[g];
    for (size_t m = 0; m < gr->n; m++) {
      hp[2 * m] = opt->lr[gr->members[m]];
      hp[2 * m + 1] = opt->wd[gr->members[m]];
    }
    cl_int err = clEnqueueWriteBuffer(ctx->queue, gr->hp, CL_TRUE, 0, 2 * gr->n * sizeof(float),
                                      hp, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
      free(hp);
      return lamp__fail(ctx, lamp__status_from_cl(err), "uploading AdamW rates: %s",
                        lamp_cl_error_name(err));
    }
  }
  free(hp);
  opt->hp_dirty = 0;
  return LAMP_OK;
}

lamp_status lamp_adamw_step(lamp_adamw *opt, float lr_factor) {
  if (!opt) return LAMP_ERR_INVALID_ARGUMENT;
  lamp_context *ctx = opt->ctx;
  if (!(lr_factor >= 0 && isfinite(lr_factor)))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "AdamW: learning-rate factor %g",
                      (double)lr_factor);
  if (opt->hp_dirty) LAMP__TRY(lamp__adamw_upload_rates(opt));
  cl_kernel k = NULL;
  LAMP__TRY(lamp__kernel(ctx, "adamw", "adamw_step", &k));
  const lamp_adamw_options *o = &opt->options;
  double t = (double)(opt->steps + 1);
  cl_float bc1 = (cl_float)(1.0 - pow(o->beta1, t)), bc2 = (cl_float)(1.0 - pow(o->beta2, t));
  cl_ulong v_base = opt->total;
  for (size_t g = 0; g < opt->n_groups; g++) {
    const lamp__optim_group *gr = &opt->groups[g];
    LAMP__TRY(lamp__arg(ctx, k, 0, sizeof(cl_mem), &gr->val_buf));
    LAMP__TRY(lamp__arg(ctx, k, 1, sizeof(cl_mem), &gr->grad_buf));
    LAMP__TRY(lamp__arg(ctx, k, 2, sizeof(cl_mem), &opt->moments));
    LAMP__TRY(lamp__arg(ctx, k, 3, sizeof(cl_ulong), &v_base));
    LAMP__TRY(lamp__arg(ctx, k, 4, sizeof(cl_mem), &gr->seg));
    LAMP__TRY(lamp__arg(ctx, k, 5, sizeof(cl_mem), &gr->hp));
    LAMP__TRY(lamp__arg(ctx, k, 6, sizeof(cl_float), &lr_factor));
    LAMP__TRY(lamp__arg(ctx, k, 7, sizeof(cl_float), &o->beta1));
    LAMP__TRY(lamp__arg(ctx, k, 8, sizeof(cl_float), &o->beta2));
    LAMP__TRY(lamp__arg(ctx, k, 9, sizeof(cl_float), &o->eps));
    LAMP__TRY(lamp__arg(ctx, k, 10, sizeof(cl_float), &bc1));
    LAMP__TRY(lamp__arg(ctx, k, 11, sizeof(cl_float), &bc2));
    size_t global[2] = {gr->max_len, gr->n}, local[2] = {64, 1};
    LAMP__TRY(lamp__launch(ctx, k, "adamw_step", 2, global, local));
  }
  opt->steps++;
  return LAMP_OK;
}

lamp_status lamp_adamw_step_count(const lamp_adamw *opt, uint64_t *steps) {
  if (!opt || !steps) return LAMP_ERR_INVALID_ARGUMENT;
  *steps = opt->steps;
  return LAMP_OK;
}

lamp_status lamp_adamw_set_step_count(lamp_adamw *opt, uint64_t steps) {
  if (!opt) return LAMP_ERR_INVALID_ARGUMENT;
  opt->steps = steps;
  return LAMP_OK;
}

/* Element i of a parameter's dense range has its moments at moment_off + i in m and at
 * total + moment_off + i in v, so the parameter's strides carry over. */
lamp_status lamp_adamw_moments(const lamp_adamw *opt, size_t index, lamp_tensor *m,
                               lamp_tensor *v) {
  if (!opt) return LAMP_ERR_INVALID_ARGUMENT;
  if (index >= opt->n)
    return lamp__fail(opt->ctx, LAMP_ERR_INVALID_ARGUMENT, "AdamW moments: parameter %zu of %zu",
                      index, opt->n);
  lamp_tensor view = opt->params[index].value;
  view.buffer = opt->moments;
  view.owns_buffer = 0;
  if (m) {
    *m = view;
    m->offset = 4 * opt->moment_off[index];
  }
  if (v) {
    *v = view;
    v->offset = 4 * (opt->total + opt->moment_off[index]);
  }
  return LAMP_OK;
}

/* Kernels with a required work-group size fail to launch where the device allows less. */
static lamp_status lamp__check_wg(lamp_context *ctx, cl_kernel k, size_t need, const char *name) {
  size_t max = 0;
  LAMP__CL(ctx, clGetKernelWorkGroupInfo(k, ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof(max),
                                         &max, NULL));
  if (max < need)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "%s needs work-groups of %zu on %s, which "
                      "allows %zu for it", name, need, ctx->info.name, max);
  return LAMP_OK;
}

lamp_status lamp_adamw_clip_grad_norm(lamp_adamw *opt, float max_norm) {
  if (!opt) return LAMP_ERR_INVALID_ARGUMENT;
  lamp_context *ctx = opt->ctx;
  if (!(max_norm > 0 && isfinite(max_norm)))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "gradient clipping: max_norm %g must be "
                      "positive", (double)max_norm);
  cl_kernel ks = NULL, kc = NULL;
  LAMP__TRY(lamp__kernel(ctx, "clip_grad_norm", "clip_sumsq", &ks));
  LAMP__TRY(lamp__kernel(ctx, "clip_grad_norm", "clip_scale", &kc));
  LAMP__TRY(lamp__check_wg(ctx, ks, opt->wg, "clip_sumsq"));
  LAMP__TRY(lamp__check_wg(ctx, kc, opt->wg, "clip_scale"));
  for (size_t g = 0; g < opt->n_groups; g++) {
    const lamp__optim_group *gr = &opt->groups[g];
    cl_uint n_seg = (cl_uint)gr->n, part_off = (cl_uint)gr->part_off;
    LAMP__TRY(lamp__arg(ctx, ks, 0, sizeof(cl_mem), &gr->grad_buf));
    LAMP__TRY(lamp__arg(ctx, ks, 1, sizeof(cl_mem), &gr->clip_seg));
    LAMP__TRY(lamp__arg(ctx, ks, 2, sizeof(cl_uint), &n_seg));
    LAMP__TRY(lamp__arg(ctx, ks, 3, sizeof(cl_mem), &opt->partials));
    LAMP__TRY(lamp__arg(ctx, ks, 4, sizeof(cl_uint), &part_off));
    size_t global = gr->n_part * opt->wg, local = opt->wg;
    LAMP__TRY(lamp__launch(ctx, ks, "clip_sumsq", 1, &global, &local));
  }
  cl_uint n_part = (cl_uint)opt->n_part;
  for (size_t g = 0; g < opt->n_groups; g++) {
    const lamp__optim_group *gr = &opt->groups[g];
    cl_uint n_seg = (cl_uint)gr->n;
    LAMP__TRY(lamp__arg(ctx, kc, 0, sizeof(cl_mem), &gr->grad_buf));
    LAMP__TRY(lamp__arg(ctx, kc, 1, sizeof(cl_mem), &gr->clip_seg));
    LAMP__TRY(lamp__arg(ctx, kc, 2, sizeof(cl_uint), &n_seg));
    LAMP__TRY(lamp__arg(ctx, kc, 3, sizeof(cl_mem), &opt->partials));
    LAMP__TRY(lamp__arg(ctx, kc, 4, sizeof(cl_uint), &n_part));
    LAMP__TRY(lamp__arg(ctx, kc, 5, sizeof(cl_float), &max_norm));
    LAMP__TRY(lamp__arg(ctx, kc, 6, sizeof(cl_mem), &opt->norm));
    size_t global = gr->n_part * opt->wg, local = opt->wg;
    LAMP__TRY(lamp__launch(ctx, kc, "clip_scale", 1, &global, &local));
  }
  return LAMP_OK;
}

lamp_status lamp_adamw_grad_norm(lamp_adamw *opt, float *norm) {
  if (!opt || !norm) return LAMP_ERR_INVALID_ARGUMENT;
  LAMP__CL(opt->ctx, clEnqueueReadBuffer(opt->ctx->queue, opt->norm, CL_TRUE, 0, sizeof(float),
                                         norm, 0, NULL, NULL));
  return LAMP_OK;
}

lamp_status lamp_adamw_grad_norm_tensor(const lamp_adamw *opt, lamp_tensor *norm) {
  if (!opt || !norm) return LAMP_ERR_INVALID_ARGUMENT;
  size_t ne[1] = {1};
  return lamp_tensor_wrap(opt->ctx, opt->norm, 0, LAMP_DTYPE_F32, 1, ne, NULL, norm);
}

const char *lamp_lr_decay_name(lamp_lr_decay decay) {
  switch (decay) {
    case LAMP_LR_CONSTANT: return "constant";
    case LAMP_LR_LINEAR: return "linear";
    case LAMP_LR_COSINE: return "cosine";
  }
  return NULL;
}

lamp_status lamp_lr_decay_from_name(const char *name, lamp_lr_decay *out) {
  if (!name || !out) return LAMP_ERR_INVALID_ARGUMENT;
  for (int d = LAMP_LR_CONSTANT; d <= LAMP_LR_COSINE; d++)
    if (!strcasecmp(name, lamp_lr_decay_name((lamp_lr_decay)d))) {
      *out = (lamp_lr_decay)d;
      return LAMP_OK;
    }
  return LAMP_ERR_INVALID_ARGUMENT;
}

lamp_status lamp_lr_schedule_factor(const lamp_lr_schedule *schedule, uint64_t step,
                                    float *factor) {
  if (!schedule || !factor) return LAMP_ERR_INVALID_ARGUMENT;
  const lamp_lr_schedule *s = schedule;
  if (!lamp_lr_decay_name(s->decay))
    return lamp__fail(NULL, LAMP_ERR_INVALID_ARGUMENT, "unknown learning-rate decay %d",
                      (int)s->decay);
  if (!(s->min_factor >= 0 && s->min_factor <= 1))
    return lamp__fail(NULL, LAMP_ERR_INVALID_ARGUMENT, "learning-rate floor %g is outside [0, 1]",
                      (double)s->min_factor);
  if (s->decay != LAMP_LR_CONSTANT && s->total_steps <= s->warmup_steps)
    return lamp__fail(NULL, LAMP_ERR_INVALID_ARGUMENT, "a decaying schedule needs total_steps > "
                      "warmup_steps");
  if (step < s->warmup_steps) {
    *factor = (float)((double)(step + 1) / (double)s->warmup_steps);
    return LAMP_OK;
  }
  if (s->decay == LAMP_LR_CONSTANT) {
    *factor = 1.0f;
    return LAMP_OK;
  }
  double p = (double)(step - s->warmup_steps) / (double)(s->total_steps - s->warmup_steps);
  if (p > 1) p = 1;
  double lo = s->min_factor;
  const double pi = 3.14159265358979323846;
  double f = s->decay == LAMP_LR_LINEAR ? 1.0 - (1.0 - lo) * p
                                        : lo + (1.0 - lo) * 0.5 * (1.0 + cos(pi * p));
  *factor = (float)f;
  return LAMP_OK;
}
