/* Soft prompts: LAMP, PT and DPT parameters in one device buffer, their initialisation, the
 * pooled compressed outer product (kernels/prompt_cop.cl) forward and backward, save and load. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/internal.h"
#include "lamp/prompt.h"
#include "lamp/safetensors.h"
#include "lamp/svd.h"

/* Parameter tensors start at multiples of this many floats in the shared buffers. */
#define LAMP__PROMPT_ALIGN 16

typedef struct lamp__prompt_slot {
  char name[4];
  size_t off;   /* floats from the start of the buffer */
  int ndim;
  size_t ne[2]; /* lamp_tensor order: dimension 0 fastest */
  size_t nb[2]; /* bytes */
} lamp__prompt_slot;

struct lamp_prompt {
  lamp_context *ctx;
  lamp_prompt_options opt;
  size_t r;        /* R: LAMP rank or DPT bottleneck; 0 for PT */
  size_t rows_out; /* P' = ceil(P / s) */
  size_t tile;     /* LAMP_TILE of the kernels' build */
  size_t cw;       /* columns of C per work-item in prompt_cop_forward and _backward_v (CV) */
  size_t n_slots;
  lamp__prompt_slot slot[LAMP_PROMPT_MAX_PARAMS];
  lamp_tensor values; /* every parameter, 1-D */
  lamp_tensor grads;  /* same layout */
  lamp_tensor work;   /* W (P', R) for the backward of LAMP and DPT */
};

void lamp_prompt_options_init(lamp_prompt_options *options, lamp_prompt_method method,
                              size_t width) {
  if (!options) return;
  memset(options, 0, sizeof(*options));
  options->method = method;
  options->length = 100;
  options->width = width;
  options->rank = 8;
  options->bottleneck = 10;
  options->pool = method == LAMP_PROMPT_LAMP ? 2 : 1;
  options->init = method == LAMP_PROMPT_DPT ? LAMP_PROMPT_INIT_UNIFORM : LAMP_PROMPT_INIT_EMBEDDING;
  options->sample_rows = LAMP_PROMPT_SAMPLE_ROWS;
  options->uniform_range = 0.5f;
}

const char *lamp_prompt_method_name(lamp_prompt_method method) {
  switch (method) {
    case LAMP_PROMPT_LAMP: return "lamp";
    case LAMP_PROMPT_PT: return "pt";
    case LAMP_PROMPT_DPT: return "dpt";
  }
  return NULL;
}

lamp_status lamp_prompt_method_from_name(const char *name, lamp_prompt_method *out) {
  if (!name || !out) return LAMP_ERR_INVALID_ARGUMENT;
  for (int m = LAMP_PROMPT_LAMP; m <= LAMP_PROMPT_DPT; m++)
    if (!strcasecmp(name, lamp_prompt_method_name((lamp_prompt_method)m))) {
      *out = (lamp_prompt_method)m;
      return LAMP_OK;
    }
  return LAMP_ERR_INVALID_ARGUMENT;
}

const char *lamp_prompt_init_name(lamp_prompt_init init) {
  switch (init) {
    case LAMP_PROMPT_INIT_EMBEDDING: return "embedding";
    case LAMP_PROMPT_INIT_UNIFORM: return "uniform";
    case LAMP_PROMPT_INIT_NONE: return "none";
  }
  return NULL;
}

lamp_status lamp_prompt_init_from_name(const char *name, lamp_prompt_init *out) {
  if (!name || !out) return LAMP_ERR_INVALID_ARGUMENT;
  for (int i = LAMP_PROMPT_INIT_EMBEDDING; i <= LAMP_PROMPT_INIT_NONE; i++)
    if (!strcasecmp(name, lamp_prompt_init_name((lamp_prompt_init)i))) {
      *out = (lamp_prompt_init)i;
      return LAMP_OK;
    }
  return LAMP_ERR_INVALID_ARGUMENT;
}

/* a * b + c without wrapping; returns 0 on overflow. */
static int lamp__muladd(size_t a, size_t b, size_t c, size_t *out) {
  if (b && a > (SIZE_MAX - c) / b) return 0;
  *out = a * b + c;
  return 1;
}

static lamp_status lamp__prompt_check(lamp_context *ctx, const lamp_prompt_options *o,
                                      size_t *count) {
  if (!o) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "prompt: NULL options");
  const char *m = lamp_prompt_method_name(o->method);
  if (!m) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "prompt: unknown method %d",
                            (int)o->method);
  const size_t lim = (size_t)1 << 30;
  if (o->length < 1 || o->length > lim || o->width < 1 || o->width > lim)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s prompt: length %zu and width %zu must "
                      "lie in 1 .. 2^30", m, o->length, o->width);
  if (o->pool < 1 || o->pool > lim)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s prompt: pooling window %zu (must be "
                      ">= 1)", m, o->pool);
  size_t l = o->length, d = o->width, n = 0;
  int ok = 1;
  switch (o->method) {
    case LAMP_PROMPT_LAMP:
      if (o->rank < 1 || o->rank > l || o->rank > d)
        return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp prompt: rank %zu must lie in 1 "
                          ".. min(length %zu, width %zu)", o->rank, l, d);
      ok = lamp__muladd(o->rank, l + d + 1, 0, &n);
      break;
    case LAMP_PROMPT_PT:
      ok = lamp__muladd(l, d, 0, &n);
      break;
    case LAMP_PROMPT_DPT:
      if (o->bottleneck < 1 || o->bottleneck > lim)
        return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "dpt prompt: bottleneck %zu must lie "
                          "in 1 .. 2^30", o->bottleneck);
      ok = lamp__muladd(o->bottleneck, l + d, 0, &n);
      break;
  }
  /* the kernels index parameters with 32-bit integers */
  if (!ok || n > UINT32_MAX / 2)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s prompt: too many parameters", m);
  if (o->init != LAMP_PROMPT_INIT_EMBEDDING && o->init != LAMP_PROMPT_INIT_UNIFORM &&
      o->init != LAMP_PROMPT_INIT_NONE)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s prompt: unknown initialisation %d", m,
                      (int)o->init);
  if (o->init == LAMP_PROMPT_INIT_EMBEDDING && o->method == LAMP_PROMPT_DPT)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "dpt prompt: A and B start uniform; use "
                      "LAMP_PROMPT_INIT_UNIFORM (or NONE before a load)");
  if (o->init == LAMP_PROMPT_INIT_UNIFORM && !(o->uniform_range > 0 && o->uniform_range < 1e30f))
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s prompt: uniform range %g must be "
                      "positive and finite", m, (double)o->uniform_range);
  *count = n;
  return LAMP_OK;
}

lamp_status lamp_prompt_options_param_count(const lamp_prompt_options *options, size_t *count) {
  if (!count) return LAMP_ERR_INVALID_ARGUMENT;
  return lamp__prompt_check(NULL, options, count);
}

static uint64_t lamp__splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Uniform in 0 .. n - 1, without modulo bias. */
static uint64_t lamp__below(uint64_t *state, uint64_t n) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
  do x = lamp__splitmix64(state);
  while (x >= limit);
  return x % n;
}

lamp_status lamp_prompt_sample_tokens(uint64_t seed, size_t pool, size_t count, uint32_t *ids) {
  if (!ids || pool < 1 || pool > UINT32_MAX) return LAMP_ERR_INVALID_ARGUMENT;
  uint32_t *perm = malloc(pool * sizeof(*perm));
  if (!perm) return LAMP_ERR_OUT_OF_MEMORY;
  uint64_t state = seed;
  /* successive partial Fisher-Yates passes over the whole pool: distinct ids within a pass */
  for (size_t done = 0; done < count;) {
    for (size_t i = 0; i < pool; i++) perm[i] = (uint32_t)i;
    size_t take = count - done < pool ? count - done : pool;
    for (size_t i = 0; i < take; i++) {
      size_t j = i + (size_t)lamp__below(&state, pool - i);
      uint32_t t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
      ids[done + i] = perm[i];
    }
    done += take;
  }
  free(perm);
  return LAMP_OK;
}

static void lamp__prompt_add_slot(lamp_prompt *p, const char *name, size_t *at, int ndim,
                                  size_t ne0, size_t ne1, size_t nb0, size_t nb1) {
  lamp__prompt_slot *s = &p->slot[p->n_slots++];
  snprintf(s->name, sizeof(s->name), "%s", name);
  s->off = *at;
  s->ndim = ndim;
  s->ne[0] = ne0;
  s->ne[1] = ne1;
  s->nb[0] = nb0;
  s->nb[1] = nb1;
  size_t n = ne0 * ne1;
  *at += (n + LAMP__PROMPT_ALIGN - 1) / LAMP__PROMPT_ALIGN * LAMP__PROMPT_ALIGN;
}

/* Slots in the order of lamp_prompt_params; returns the floats the buffer needs. */
static size_t lamp__prompt_layout(lamp_prompt *p) {
  size_t l = p->opt.length, d = p->opt.width, r = p->r, at = 0;
  switch (p->opt.method) {
    case LAMP_PROMPT_LAMP:
      lamp__prompt_add_slot(p, "U", &at, 2, r, l, 4, 4 * r);
      lamp__prompt_add_slot(p, "q", &at, 1, r, 1, 4, 4 * r);
      lamp__prompt_add_slot(p, "V", &at, 2, r, d, 4 * d, 4); /* stored as Vt (R, C) */
      break;
    case LAMP_PROMPT_PT:
      lamp__prompt_add_slot(p, "P", &at, 2, d, l, 4, 4 * d);
      break;
    case LAMP_PROMPT_DPT:
      lamp__prompt_add_slot(p, "A", &at, 2, r, l, 4, 4 * r);
      lamp__prompt_add_slot(p, "B", &at, 2, d, r, 4, 4 * d);
      break;
  }
  return at;
}

static lamp_status lamp__prompt_view(lamp_prompt *p, const lamp_tensor *base, size_t i,
                                     lamp_tensor *out) {
  const lamp__prompt_slot *s = &p->slot[i];
  return lamp_tensor_view(p->ctx, base, 4 * s->off, s->ndim, s->ne, s->nb, out);
}

/* x[off .. off + n) = Uniform[lo, hi) from the counter-based stream (seed, first). */
static lamp_status lamp__prompt_uniform(lamp_context *ctx, cl_mem buf, size_t off, size_t n,
                                        uint64_t seed, uint64_t first, float range) {
  cl_kernel k = NULL;
  LAMP__TRY(lamp__kernel(ctx, "prompt_uniform", "prompt_uniform", &k));
  cl_ulong a[4] = {off, n, seed, first};
  cl_float lo = -range, hi = range;
  LAMP__TRY(lamp__arg(ctx, k, 0, sizeof(cl_mem), &buf));
  for (cl_uint i = 0; i < 4; i++) LAMP__TRY(lamp__arg(ctx, k, 1 + i, sizeof(cl_ulong), &a[i]));
  LAMP__TRY(lamp__arg(ctx, k, 5, sizeof(cl_float), &lo));
  LAMP__TRY(lamp__arg(ctx, k, 6, sizeof(cl_float), &hi));
  size_t global = n, local = 64;
  return lamp__launch(ctx, k, "prompt_uniform", 1, &global, &local);
}

static lamp_status lamp__prompt_check_embedding(lamp_context *ctx, const lamp_prompt_options *o) {
  const lamp_tensor *e = o->embedding;
  if (!e || !e->buffer)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "%s prompt: LAMP_PROMPT_INIT_EMBEDDING "
                      "needs the token-embedding table in options.embedding",
                      lamp_prompt_method_name(o->method));
  if (e->dtype != LAMP_DTYPE_F32 && e->dtype != LAMP_DTYPE_F16)
    return lamp__fail(ctx, LAMP_ERR_UNSUPPORTED, "prompt: the embedding table must be f32 or f16");
  size_t es = lamp_dtype_size(e->dtype);
  if (e->ne[0] != o->width || e->ne[2] != 1 || e->ne[3] != 1 || e->offset % es)
    return lamp__fail(ctx, LAMP_ERR_SHAPE, "prompt: the embedding table is %zu x %zu x %zu x %zu "
                      "(ne); it must be (V, C) with C = width %zu", e->ne[0], e->ne[1], e->ne[2],
                      e->ne[3], o->width);
  if (e->ne[1] > UINT32_MAX || o->sample_rows < 1)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "prompt: %zu embedding rows, sample_rows "
                      "%zu", e->ne[1], o->sample_rows);
  return LAMP_OK;
}

/* dst (P, C) at float offset `off` with row stride C = P sampled rows of the embedding table. */
static lamp_status lamp__prompt_gather(lamp_context *ctx, const lamp_prompt_options *o,
                                       cl_mem dst, size_t off) {
  const lamp_tensor *e = o->embedding;
  size_t l = o->length, d = o->width;
  size_t pool = e->ne[1] < o->sample_rows ? e->ne[1] : o->sample_rows;
  uint32_t *ids = malloc(l * sizeof(*ids));
  if (!ids) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  lamp_status s = lamp_prompt_sample_tokens(o->seed, pool, l, ids);
  if (s != LAMP_OK) {
    free(ids);
    return lamp__fail(ctx, s, "prompt: sampling %zu of %zu token ids%s", l, pool,
                      s == LAMP_ERR_OUT_OF_MEMORY ? ": out of host memory" : "");
  }
  cl_mem idbuf = NULL;
  s = lamp__buffer_create(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, l * sizeof(*ids), ids,
                          "the prompt's initial token ids", &idbuf);
  free(ids);
  if (s != LAMP_OK) return s;
  int f16 = e->dtype == LAMP_DTYPE_F16;
  size_t es = lamp_dtype_size(e->dtype);
  cl_kernel k = NULL;
  s = lamp__kernel(ctx, "prompt_gather", f16 ? "prompt_gather_f16" : "prompt_gather_f32", &k);
  cl_ulong a[3] = {e->offset / es, e->nb[0] / es, e->nb[1] / es};
  cl_ulong dst_at[2] = {off, d}; /* offset and row stride of the prompt */
  cl_uint dims[2] = {(cl_uint)l, (cl_uint)d};
  if (s == LAMP_OK && (e->nb[0] % es || e->nb[1] % es))
    s = lamp__fail(ctx, LAMP_ERR_SHAPE, "prompt: embedding strides are not whole elements");
  if (s == LAMP_OK) s = lamp__arg(ctx, k, 0, sizeof(cl_mem), &e->buffer);
  for (cl_uint i = 0; i < 3 && s == LAMP_OK; i++)
    s = lamp__arg(ctx, k, 1 + i, sizeof(cl_ulong), &a[i]);
  if (s == LAMP_OK) s = lamp__arg(ctx, k, 4, sizeof(cl_mem), &idbuf);
  if (s == LAMP_OK) s = lamp__arg(ctx, k, 5, sizeof(cl_mem), &dst);
  for (cl_uint i = 0; i < 2 && s == LAMP_OK; i++)
    s = lamp__arg(ctx, k, 6 + i, sizeof(cl_ulong), &dst_at[i]);
  for (cl_uint i = 0; i < 2 && s == LAMP_OK; i++)
    s = lamp__arg(ctx, k, 8 + i, sizeof(cl_uint), &dims[i]);
  if (s == LAMP_OK) {
    size_t global[2] = {d, l}, local[2] = {64, 1};
    s = lamp__launch(ctx, k, f16 ? "prompt_gather_f16" : "prompt_gather_f32", 2, global, local);
  }
  if (s == LAMP_OK) s = lamp_context_finish(ctx); /* the id buffer is released next */
  clReleaseMemObject(idbuf);
  return s;
}

/* P0 (P, C) -> rank-R truncated SVD straight into U, q and Vt. */
static lamp_status lamp__prompt_init_lamp(lamp_prompt *p) {
  lamp_context *ctx = p->ctx;
  const lamp_prompt_options *o = &p->opt;
  size_t ne[2] = {o->width, o->length};
  lamp_tensor p0;
  LAMP__TRY(lamp__tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, "the prompt's initial rows", &p0));
  lamp_status s = o->init == LAMP_PROMPT_INIT_EMBEDDING
                      ? lamp__prompt_gather(ctx, o, p0.buffer, 0)
                      : lamp__prompt_uniform(ctx, p0.buffer, 0, o->length * o->width, o->seed, 0,
                                             o->uniform_range);
  lamp_tensor u, q, vt;
  size_t ne_u[2] = {p->r, o->length}, ne_q[1] = {p->r}, ne_vt[2] = {o->width, p->r};
  if (s == LAMP_OK) s = lamp_tensor_view(ctx, &p->values, 4 * p->slot[0].off, 2, ne_u, NULL, &u);
  if (s == LAMP_OK) s = lamp_tensor_view(ctx, &p->values, 4 * p->slot[1].off, 1, ne_q, NULL, &q);
  if (s == LAMP_OK) s = lamp_tensor_view(ctx, &p->values, 4 * p->slot[2].off, 2, ne_vt, NULL, &vt);
  if (s == LAMP_OK) {
    lamp_svd_options so;
    lamp_svd_options_init(&so, p->r);
    so.seed = o->seed;
    s = lamp_svd_randomized(ctx, &p0, &so, &u, &q, &vt);
  }
  if (s == LAMP_OK) s = lamp_context_finish(ctx);
  lamp_tensor_release(&p0);
  return s;
}

static lamp_status lamp__prompt_init(lamp_prompt *p) {
  const lamp_prompt_options *o = &p->opt;
  if (o->init == LAMP_PROMPT_INIT_NONE) return LAMP_OK;
  switch (o->method) {
    case LAMP_PROMPT_LAMP:
      return lamp__prompt_init_lamp(p);
    case LAMP_PROMPT_PT:
      if (o->init == LAMP_PROMPT_INIT_EMBEDDING)
        return lamp__prompt_gather(p->ctx, o, p->values.buffer, p->slot[0].off);
      return lamp__prompt_uniform(p->ctx, p->values.buffer, p->slot[0].off,
                                  o->length * o->width, o->seed, 0, o->uniform_range);
    case LAMP_PROMPT_DPT: {
      /* A and B continue one stream: B starts where A's counters end */
      size_t na = o->length * p->r, nb = p->r * o->width;
      LAMP__TRY(lamp__prompt_uniform(p->ctx, p->values.buffer, p->slot[0].off, na, o->seed, 0,
                                     o->uniform_range));
      return lamp__prompt_uniform(p->ctx, p->values.buffer, p->slot[1].off, nb, o->seed, na,
                                  o->uniform_range);
    }
  }
  return LAMP_ERR_INVALID_ARGUMENT;
}

/* The tiled kernels need LAMP_TILE^2 work-items per group and their tiles in local memory. */
static lamp_status lamp__prompt_check_kernels(lamp_prompt *p) {
  if (p->opt.method == LAMP_PROMPT_PT) return LAMP_OK;
  static const char *names[] = {"prompt_cop_forward", "prompt_cop_backward_v",
                                "prompt_cop_backward_u"};
  for (size_t i = 0; i < 3; i++) {
    cl_kernel k = NULL;
    size_t max = 0;
    LAMP__TRY(lamp__kernel(p->ctx, "prompt_cop", names[i], &k));
    LAMP__CL(p->ctx, clGetKernelWorkGroupInfo(k, p->ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                              sizeof(max), &max, NULL));
    if (max < p->tile * p->tile)
      return lamp__fail(p->ctx, LAMP_ERR_UNSUPPORTED, "%s needs %zu x %zu work-groups; %s allows "
                        "%zu", names[i], p->tile, p->tile, p->ctx->info.name, max);
    cl_ulong local = 0;
    LAMP__CL(p->ctx, clGetKernelWorkGroupInfo(k, p->ctx->device, CL_KERNEL_LOCAL_MEM_SIZE,
                                              sizeof(local), &local, NULL));
    if (p->ctx->info.local_mem_bytes && local > p->ctx->info.local_mem_bytes)
      return lamp__fail(p->ctx, LAMP_ERR_UNSUPPORTED, "%s needs %llu bytes of local memory; %s "
                        "has %llu", names[i], (unsigned long long)local, p->ctx->info.name,
                        (unsigned long long)p->ctx->info.local_mem_bytes);
  }
  return LAMP_OK;
}

lamp_status lamp_prompt_create(lamp_context *ctx, const lamp_prompt_options *options,
                               lamp_prompt **out) {
  if (!ctx || !options || !out)
    return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "lamp_prompt_create: NULL argument");
  *out = NULL;
  size_t count = 0;
  LAMP__TRY(lamp__prompt_check(ctx, options, &count));
  if (options->init == LAMP_PROMPT_INIT_EMBEDDING)
    LAMP__TRY(lamp__prompt_check_embedding(ctx, options));
  lamp_prompt *p = calloc(1, sizeof(*p));
  if (!p) return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory");
  p->ctx = ctx;
  p->opt = *options;
  p->r = options->method == LAMP_PROMPT_LAMP  ? options->rank
         : options->method == LAMP_PROMPT_DPT ? options->bottleneck
                                              : 0;
  p->rows_out = (options->length + options->pool - 1) / options->pool;
  p->tile = ctx->kprof.tile;
  p->cw = ctx->kprof.tile_vec;
  size_t total = lamp__prompt_layout(p);
  lamp_status s = lamp__tensor_create(ctx, LAMP_DTYPE_F32, 1, &total, "the prompt's parameters",
                                          &p->values);
  if (s == LAMP_OK) s = lamp__tensor_create(ctx, LAMP_DTYPE_F32, 1, &total,
                                                "the prompt's gradients", &p->grads);
  if (s == LAMP_OK && p->r) {
    size_t ne[2] = {p->r, p->rows_out};
    s = lamp__tensor_create(ctx, LAMP_DTYPE_F32, 2, ne, "the prompt's work rows", &p->work);
  }
  if (s == LAMP_OK) s = lamp__prompt_check_kernels(p);
  if (s == LAMP_OK) s = lamp__prompt_init(p);
  p->opt.embedding = NULL;
  if (s != LAMP_OK) {
    lamp_prompt_release(p);
    return s;
  }
  *out = p;
  return LAMP_OK;
}

void lamp_prompt_release(lamp_prompt *prompt) {
  if (!prompt) return;
  clFinish(prompt->ctx->queue);
  lamp_tensor_release(&prompt->values);
  lamp_tensor_release(&prompt->grads);
  lamp_tensor_release(&prompt->work);
  free(prompt);
}

lamp_status lamp_prompt_get_options(const lamp_prompt *prompt, lamp_prompt_options *options) {
  if (!prompt || !options) return LAMP_ERR_INVALID_ARGUMENT;
  *options = prompt->opt;
  return LAMP_OK;
}

lamp_status lamp_prompt_output_shape(const lamp_prompt *prompt, size_t *rows, size_t *width) {
  if (!prompt || !rows || !width) return LAMP_ERR_INVALID_ARGUMENT;
  *rows = prompt->rows_out;
  *width = prompt->opt.width;
  return LAMP_OK;
}

lamp_status lamp_prompt_param_count(const lamp_prompt *prompt, size_t *count) {
  if (!prompt || !count) return LAMP_ERR_INVALID_ARGUMENT;
  return lamp__prompt_check(prompt->ctx, &prompt->opt, count);
}

lamp_status lamp_prompt_params(lamp_prompt *prompt, lamp_param *params, size_t capacity,
                               size_t *count) {
  if (!prompt || !count || (capacity && !params)) return LAMP_ERR_INVALID_ARGUMENT;
  *count = prompt->n_slots;
  for (size_t i = 0; i < prompt->n_slots && i < capacity; i++) {
    memset(&params[i], 0, sizeof(params[i]));
    snprintf(params[i].name, sizeof(params[i].name), "%s", prompt->slot[i].name);
    LAMP__TRY(lamp__prompt_view(prompt, &prompt->values, i, &params[i].value));
    LAMP__TRY(lamp__prompt_view(prompt, &prompt->grads, i, &params[i].grad));
  }
  return LAMP_OK;
}

lamp_status lamp_prompt_zero_grad(lamp_prompt *prompt) {
  if (!prompt) return LAMP_ERR_INVALID_ARGUMENT;
  return lamp_tensor_fill(prompt->ctx, &prompt->grads, 0.0f);
}

/* `t` must be an f32 (P', C) matrix with unit element stride. */
static lamp_status lamp__prompt_check_io(lamp_prompt *p, const lamp_tensor *t, const char *what) {
  if (!t || !t->buffer)
    return lamp__fail(p->ctx, LAMP_ERR_INVALID_ARGUMENT, "prompt: %s is NULL", what);
  if (t->dtype != LAMP_DTYPE_F32)
    return lamp__fail(p->ctx, LAMP_ERR_UNSUPPORTED, "prompt: %s is not f32", what);
  if (t->ne[0] != p->opt.width || t->ne[1] != p->rows_out || t->ne[2] != 1 || t->ne[3] != 1)
    return lamp__fail(p->ctx, LAMP_ERR_SHAPE, "prompt: %s must be (P', C) = (%zu, %zu) (ne = "
                      "{%zu, %zu}), not ne = {%zu, %zu, %zu, %zu}", what, p->rows_out,
                      p->opt.width, p->opt.width, p->rows_out, t->ne[0], t->ne[1], t->ne[2],
                      t->ne[3]);
  if (t->nb[0] != 4 || t->nb[1] % 4 || t->offset % 4)
    return lamp__fail(p->ctx, LAMP_ERR_SHAPE, "prompt: %s needs unit element stride and 4-byte "
                      "aligned rows", what);
  return LAMP_OK;
}

/* Kernel arguments shared by the cop kernels: sizes (P, C, R, s) from index `first`. */
static lamp_status lamp__prompt_sizes(lamp_prompt *p, cl_kernel k, cl_uint first) {
  cl_uint v[4] = {(cl_uint)p->opt.length, (cl_uint)p->opt.width, (cl_uint)p->r,
                  (cl_uint)p->opt.pool};
  for (cl_uint i = 0; i < 4; i++)
    LAMP__TRY(lamp__arg(p->ctx, k, first + i, sizeof(cl_uint), &v[i]));
  return LAMP_OK;
}

static size_t lamp__round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

lamp_status lamp_prompt_forward(lamp_prompt *prompt, lamp_tensor *out) {
  if (!prompt) return LAMP_ERR_INVALID_ARGUMENT;
  lamp_prompt *p = prompt;
  LAMP__TRY(lamp__prompt_check_io(p, out, "the output"));
  if (p->opt.method == LAMP_PROMPT_PT) {
    lamp_tensor pv;
    LAMP__TRY(lamp__prompt_view(p, &p->values, 0, &pv));
    return lamp_pool_avg_forward(p->ctx, out, &pv, p->opt.pool);
  }
  lamp_context *ctx = p->ctx;
  cl_kernel k = NULL;
  LAMP__TRY(lamp__kernel(ctx, "prompt_cop", "prompt_cop_forward", &k));
  int lamp = p->opt.method == LAMP_PROMPT_LAMP;
  /* DPT has no q: the kernel never reads it, any in-range offset will do */
  cl_ulong offs[3] = {p->slot[0].off, lamp ? p->slot[1].off : 0, p->slot[lamp ? 2 : 1].off};
  cl_int has_q = lamp;
  cl_ulong out_off = out->offset / 4, out_ld = out->nb[1] / 4;
  LAMP__TRY(lamp__arg(ctx, k, 0, sizeof(cl_mem), &p->values.buffer));
  for (cl_uint i = 0; i < 3; i++) LAMP__TRY(lamp__arg(ctx, k, 1 + i, sizeof(cl_ulong), &offs[i]));
  LAMP__TRY(lamp__arg(ctx, k, 4, sizeof(cl_int), &has_q));
  LAMP__TRY(lamp__prompt_sizes(p, k, 5));
  LAMP__TRY(lamp__arg(ctx, k, 9, sizeof(cl_mem), &out->buffer));
  LAMP__TRY(lamp__arg(ctx, k, 10, sizeof(cl_ulong), &out_off));
  LAMP__TRY(lamp__arg(ctx, k, 11, sizeof(cl_ulong), &out_ld));
  size_t t = p->tile;
  size_t global[2] = {lamp__round_up(p->opt.width, t * p->cw) / p->cw,
                      lamp__round_up(p->rows_out, t)};
  size_t local[2] = {t, t};
  return lamp__launch(ctx, k, "prompt_cop_forward", 2, global, local);
}

lamp_status lamp_prompt_backward(lamp_prompt *prompt, const lamp_tensor *dprompt) {
  if (!prompt) return LAMP_ERR_INVALID_ARGUMENT;
  lamp_prompt *p = prompt;
  LAMP__TRY(lamp__prompt_check_io(p, dprompt, "dprompt"));
  if (p->opt.method == LAMP_PROMPT_PT) {
    lamp_tensor dp;
    LAMP__TRY(lamp__prompt_view(p, &p->grads, 0, &dp));
    return lamp_pool_avg_backward(p->ctx, &dp, dprompt, p->opt.pool, 1);
  }
  lamp_context *ctx = p->ctx;
  int lamp = p->opt.method == LAMP_PROMPT_LAMP;
  size_t v_slot = lamp ? 2 : 1;
  cl_ulong u_off = p->slot[0].off, q_off = lamp ? p->slot[1].off : 0, v_off = p->slot[v_slot].off;
  cl_ulong g_off = dprompt->offset / 4, g_ld = dprompt->nb[1] / 4, w_off = p->work.offset / 4;
  cl_int has_q = lamp;
  size_t t = p->tile, local[2] = {t, t};

  cl_kernel kv = NULL;
  LAMP__TRY(lamp__kernel(ctx, "prompt_cop", "prompt_cop_backward_v", &kv));
  LAMP__TRY(lamp__arg(ctx, kv, 0, sizeof(cl_mem), &p->values.buffer));
  LAMP__TRY(lamp__arg(ctx, kv, 1, sizeof(cl_ulong), &u_off));
  LAMP__TRY(lamp__arg(ctx, kv, 2, sizeof(cl_ulong), &q_off));
  LAMP__TRY(lamp__arg(ctx, kv, 3, sizeof(cl_int), &has_q));
  LAMP__TRY(lamp__arg(ctx, kv, 4, sizeof(cl_mem), &p->grads.buffer));
  LAMP__TRY(lamp__arg(ctx, kv, 5, sizeof(cl_ulong), &v_off));
  LAMP__TRY(lamp__arg(ctx, kv, 6, sizeof(cl_mem), &dprompt->buffer));
  LAMP__TRY(lamp__arg(ctx, kv, 7, sizeof(cl_ulong), &g_off));
  LAMP__TRY(lamp__arg(ctx, kv, 8, sizeof(cl_ulong), &g_ld));
  LAMP__TRY(lamp__prompt_sizes(p, kv, 9));
  size_t gv[2] = {lamp__round_up(p->opt.width, t * p->cw) / p->cw,
                  lamp__round_up(p->r, t)};
  LAMP__TRY(lamp__launch(ctx, kv, "prompt_cop_backward_v", 2, gv, local));

  cl_kernel ku = NULL;
  LAMP__TRY(lamp__kernel(ctx, "prompt_cop", "prompt_cop_backward_u", &ku));
  LAMP__TRY(lamp__arg(ctx, ku, 0, sizeof(cl_mem), &p->values.buffer));
  LAMP__TRY(lamp__arg(ctx, ku, 1, sizeof(cl_ulong), &q_off));
  LAMP__TRY(lamp__arg(ctx, ku, 2, sizeof(cl_ulong), &v_off));
  LAMP__TRY(lamp__arg(ctx, ku, 3, sizeof(cl_int), &has_q));
  LAMP__TRY(lamp__arg(ctx, ku, 4, sizeof(cl_mem), &p->grads.buffer));
  LAMP__TRY(lamp__arg(ctx, ku, 5, sizeof(cl_ulong), &u_off));
  LAMP__TRY(lamp__arg(ctx, ku, 6, sizeof(cl_mem), &p->work.buffer));
  LAMP__TRY(lamp__arg(ctx, ku, 7, sizeof(cl_ulong), &w_off));
  LAMP__TRY(lamp__arg(ctx, ku, 8, sizeof(cl_mem), &dprompt->buffer));
  LAMP__TRY(lamp__arg(ctx, ku, 9, sizeof(cl_ulong), &g_off));
  LAMP__TRY(lamp__arg(ctx, ku, 10, sizeof(cl_ulong), &g_ld));
  LAMP__TRY(lamp__prompt_sizes(p, ku, 11));
  size_t gu[2] = {lamp__round_up(p->r, t), lamp__round_up(p->rows_out, t)};
  LAMP__TRY(lamp__launch(ctx, ku, "prompt_cop_backward_u", 2, gu, local));
  if (!lamp) return LAMP_OK;

  cl_kernel kq = NULL;
  cl_uint sizes[3] = {(cl_uint)p->opt.length, (cl_uint)p->r, (cl_uint)p->opt.pool};
  LAMP__TRY(lamp__kernel(ctx, "prompt_cop", "prompt_cop_backward_q", &kq));
  LAMP__TRY(lamp__arg(ctx, kq, 0, sizeof(cl_mem), &p->values.buffer));
  LAMP__TRY(lamp__arg(ctx, kq, 1, sizeof(cl_ulong), &u_off));
  LAMP__TRY(lamp__arg(ctx, kq, 2, sizeof(cl_mem), &p->grads.buffer));
  LAMP__TRY(lamp__arg(ctx, kq, 3, sizeof(cl_ulong), &q_off));
  LAMP__TRY(lamp__arg(ctx, kq, 4, sizeof(cl_mem), &p->work.buffer));
  LAMP__TRY(lamp__arg(ctx, kq, 5, sizeof(cl_ulong), &w_off));
  for (cl_uint i = 0; i < 3; i++) LAMP__TRY(lamp__arg(ctx, kq, 6 + i, sizeof(cl_uint), &sizes[i]));
  size_t gq = p->r;
  return lamp__launch(ctx, kq, "prompt_cop_backward_q", 1, &gq, NULL);
}

/* ---- save and load ---- */

#define LAMP__PROMPT_FORMAT "lamp-prompt"
#define LAMP__PROMPT_VERSION "1"

/* The file shape of slot i, slowest first (the reverse of ne). */
static int lamp__prompt_file_shape(const lamp_prompt *p, size_t i, uint64_t shape[2]) {
  const lamp__prompt_slot *s = &p->slot[i];
  if (s->ndim == 1) {
    shape[0] = s->ne[0];
    return 1;
  }
  shape[0] = s->ne[1];
  shape[1] = s->ne[0];
  return 2;
}

lamp_status lamp_prompt_save(lamp_prompt *prompt, const char *path) {
  if (!prompt || !path)
    return lamp__fail(prompt ? prompt->ctx : NULL, LAMP_ERR_INVALID_ARGUMENT,
                      "lamp_prompt_save: NULL argument");
  lamp_prompt *p = prompt;
  const lamp_prompt_options *o = &p->opt;
  float *host[LAMP_PROMPT_MAX_PARAMS] = {NULL};
  uint64_t shapes[LAMP_PROMPT_MAX_PARAMS][2];
  lamp_st_entry entries[LAMP_PROMPT_MAX_PARAMS];
  lamp_status s = LAMP_OK;
  for (size_t i = 0; i < p->n_slots && s == LAMP_OK; i++) {
    lamp_tensor v;
    size_t n = p->slot[i].ne[0] * p->slot[i].ne[1];
    s = lamp__prompt_view(p, &p->values, i, &v);
    if (s == LAMP_OK && !(host[i] = malloc(n * sizeof(float))))
      s = lamp__fail(p->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory saving %s", path);
    if (s == LAMP_OK) s = lamp_tensor_download(p->ctx, &v, host[i], n * sizeof(float));
    entries[i].name = p->slot[i].name;
    entries[i].ndim = lamp__prompt_file_shape(p, i, shapes[i]);
    entries[i].shape = shapes[i];
    entries[i].data = host[i];
  }
  char vals[6][32];
  snprintf(vals[0], sizeof(vals[0]), "%zu", o->length);
  snprintf(vals[1], sizeof(vals[1]), "%zu", o->width);
  snprintf(vals[2], sizeof(vals[2]), "%zu", p->r);
  snprintf(vals[3], sizeof(vals[3]), "%zu", o->pool);
  snprintf(vals[4], sizeof(vals[4]), "%llu", (unsigned long long)o->seed);
  const char *keys[] = {"lamp.format", "lamp.version", "lamp.method", "lamp.length",
                        "lamp.width", "lamp.rank", "lamp.pool", "lamp.seed"};
  const char *values[] = {LAMP__PROMPT_FORMAT, LAMP__PROMPT_VERSION,
                          lamp_prompt_method_name(o->method), vals[0], vals[1], vals[2], vals[3],
                          vals[4]};
  if (s == LAMP_OK)
    s = lamp_safetensors_write_f32(p->ctx, path, entries, p->n_slots, keys, values, 8);
  for (size_t i = 0; i < p->n_slots; i++) free(host[i]);
  return s;
}

/* A metadata value that must equal `want`. */
static lamp_status lamp__prompt_meta_is(lamp_prompt *p, lamp_safetensors *st, const char *path,
                                        const char *key, const char *want, lamp_status on_diff) {
  const char *got = lamp_safetensors_metadata_get(st, key);
  if (!got)
    return lamp__fail(p->ctx, LAMP_ERR_FORMAT, "%s: not a lamp prompt file (metadata \"%s\" "
                      "missing)", path, key);
  if (strcmp(got, want) != 0)
    return lamp__fail(p->ctx, on_diff, "%s: metadata \"%s\" is \"%.64s\", this prompt has \"%s\"",
                      path, key, got, want);
  return LAMP_OK;
}

static lamp_status lamp__prompt_load_checked(lamp_prompt *p, lamp_safetensors *st,
                                             const char *path, float **host) {
  const lamp_prompt_options *o = &p->opt;
  char vals[4][32];
  snprintf(vals[0], sizeof(vals[0]), "%zu", o->length);
  snprintf(vals[1], sizeof(vals[1]), "%zu", o->width);
  snprintf(vals[2], sizeof(vals[2]), "%zu", p->r);
  snprintf(vals[3], sizeof(vals[3]), "%zu", o->pool);
  LAMP__TRY(lamp__prompt_meta_is(p, st, path, "lamp.format", LAMP__PROMPT_FORMAT, LAMP_ERR_FORMAT));
  LAMP__TRY(lamp__prompt_meta_is(p, st, path, "lamp.version", LAMP__PROMPT_VERSION,
                                 LAMP_ERR_FORMAT));
  LAMP__TRY(lamp__prompt_meta_is(p, st, path, "lamp.method", lamp_prompt_method_name(o->method),
                                 LAMP_ERR_SHAPE));
  LAMP__TRY(lamp__prompt_meta_is(p, st, path, "lamp.length", vals[0], LAMP_ERR_SHAPE));
  LAMP__TRY(lamp__prompt_meta_is(p, st, path, "lamp.width", vals[1], LAMP_ERR_SHAPE));
  LAMP__TRY(lamp__prompt_meta_is(p, st, path, "lamp.rank", vals[2], LAMP_ERR_SHAPE));
  LAMP__TRY(lamp__prompt_meta_is(p, st, path, "lamp.pool", vals[3], LAMP_ERR_SHAPE));
  if (lamp_safetensors_count(st) != p->n_slots)
    return lamp__fail(p->ctx, LAMP_ERR_FORMAT, "%s holds %zu tensors; a %s prompt has %zu", path,
                      lamp_safetensors_count(st), lamp_prompt_method_name(o->method), p->n_slots);
  for (size_t i = 0; i < p->n_slots; i++) {
    const lamp_st_tensor *t = NULL;
    uint64_t want[2];
    int nd = lamp__prompt_file_shape(p, i, want);
    LAMP__TRY(lamp_safetensors_find(st, p->slot[i].name, &t));
    if (t->dtype != LAMP_ST_F32)
      return lamp__fail(p->ctx, LAMP_ERR_FORMAT, "%s: tensor '%s' is %s, not F32", path, t->name,
                        lamp_safetensors_dtype_name(t->dtype));
    if (t->ndim != nd || t->shape[0] != want[0] || (nd == 2 && t->shape[1] != want[1]))
      return lamp__fail(p->ctx, LAMP_ERR_SHAPE, "%s: tensor '%s' has shape [%llu%s%llu], this "
                        "prompt needs [%llu%s%llu]", path, t->name,
                        (unsigned long long)(t->ndim ? t->shape[0] : 0), t->ndim > 1 ? ", " : "",
                        (unsigned long long)(t->ndim > 1 ? t->shape[1] : 0),
                        (unsigned long long)want[0], nd > 1 ? ", " : "",
                        (unsigned long long)(nd > 1 ? want[1] : 0));
    if (!(host[i] = malloc((size_t)t->size)))
      return lamp__fail(p->ctx, LAMP_ERR_OUT_OF_MEMORY, "out of memory loading %s", path);
    LAMP__TRY(lamp_safetensors_read(st, t, host[i], (size_t)t->size));
  }
  return LAMP_OK;
}

lamp_status lamp_prompt_load(lamp_prompt *prompt, const char *path) {
  if (!prompt || !path)
    return lamp__fail(prompt ? prompt->ctx : NULL, LAMP_ERR_INVALID_ARGUMENT,
                      "lamp_prompt_load: NULL argument");
  lamp_prompt *p = prompt;
  lamp_safetensors *st = NULL;
  LAMP__TRY(lamp_safetensors_open(p->ctx, path, &st));
  float *host[LAMP_PROMPT_MAX_PARAMS] = {NULL};
  /* everything is read and checked before the first upload, so a bad file changes nothing */
  lamp_status s = lamp__prompt_load_checked(p, st, path, host);
  for (size_t i = 0; i < p->n_slots && s == LAMP_OK; i++) {
    lamp_tensor v;
    size_t n = p->slot[i].ne[0] * p->slot[i].ne[1];
    s = lamp__prompt_view(p, &p->values, i, &v);
    if (s == LAMP_OK) s = lamp_tensor_upload(p->ctx, &v, host[i], n * sizeof(float));
  }
  for (size_t i = 0; i < p->n_slots; i++) free(host[i]);
  lamp_safetensors_release(st);
  return s;
}
