#include "ref_llama.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void *ref_alloc(size_t n) {
  void *p = calloc(n ? n : 1, 1);
  if (!p) abort(); /* test helper: out of memory ends the test program */
  return p;
}

void ref_llama_rmsnorm(double *y, const double *x, const double *w, size_t rows, size_t width,
                       double eps) {
  for (size_t r = 0; r < rows; r++) {
    double ss = 0;
    for (size_t c = 0; c < width; c++) ss += x[r * width + c] * x[r * width + c];
    double k = 1.0 / sqrt(ss / (double)width + eps);
    for (size_t c = 0; c < width; c++) y[r * width + c] = x[r * width + c] * k * w[c];
  }
}

void ref_llama_rope(double *x, size_t rows, size_t stride, size_t heads, size_t dim,
                    size_t prefix, size_t tokens, double base, int interleaved) {
  size_t half = dim / 2;
  for (size_t n = 0; n < rows; n++)
    for (size_t h = 0; h < heads; h++)
      for (size_t i = 0; i < half; i++) {
        size_t pos = n < prefix ? n : prefix + (n - prefix) % tokens;
        double ang = (double)pos * pow(base, -2.0 * (double)i / (double)dim);
        double *p1 = x + n * stride + h * dim + (interleaved ? 2 * i : i);
        double *p2 = interleaved ? p1 + 1 : p1 + half;
        double a = *p1, b = *p2;
        *p1 = a * cos(ang) - b * sin(ang);
        *p2 = b * cos(ang) + a * sin(ang);
      }
}

void ref_llama_attention(double *o, const double *qkv, size_t batch, size_t seq, size_t heads,
                         size_t kv_heads, size_t dim, const int *valid) {
  ref_llama_attention_capped(o, qkv, batch, seq, heads, kv_heads, dim, valid,
                             1.0 / sqrt((double)dim), 0.0, 0);
}

void ref_llama_attention_capped(double *o, const double *qkv, size_t batch, size_t seq,
                                size_t heads, size_t kv_heads, size_t dim, const int *valid,
                                double scale, double softcap, size_t window) {
  size_t width = (heads + 2 * kv_heads) * dim, group = heads / kv_heads;
  double *p = ref_alloc(seq * sizeof(double));
  for (size_t b = 0; b < batch; b++)
    for (size_t h = 0; h < heads; h++)
      for (size_t t = 0; t < seq; t++) {
        double *out = o + (b * seq + t) * heads * dim + h * dim;
        memset(out, 0, dim * sizeof(double));
        if ((int)t >= valid[b]) continue;
        const double *q = qkv + (b * seq + t) * width + h * dim;
        size_t g = h / group;
        double mx = -INFINITY, sum = 0;
        const size_t j0 = window && t + 1 > window ? t + 1 - window : 0;
        for (size_t j = j0; j <= t; j++) {
          const double *k = qkv + (b * seq + j) * width + (heads + g) * dim;
          double s = 0;
          for (size_t d = 0; d < dim; d++) s += q[d] * k[d];
          p[j] = softcap > 0 ? softcap * tanh(s * scale / softcap) : s * scale;
          if (p[j] > mx) mx = p[j];
        }
        for (size_t j = j0; j <= t; j++) sum += (p[j] = exp(p[j] - mx));
        for (size_t j = j0; j <= t; j++) {
          const double *v = qkv + (b * seq + j) * width + (heads + kv_heads + g) * dim;
          for (size_t d = 0; d < dim; d++) out[d] += p[j] / sum * v[d];
        }
      }
  free(p);
}

void ref_llama_geglu(double *a, const double *gu, size_t rows, size_t ffn) {
  for (size_t r = 0; r < rows; r++)
    for (size_t f = 0; f < ffn; f++) {
      double g = gu[r * 2 * ffn + f], u = gu[r * 2 * ffn + ffn + f];
      double k = sqrt(2.0 / 3.14159265358979323846);
      double gelu = 0.5 * g * (1.0 + tanh(k * (g + 0.044715 * g * g * g)));
      a[r * ffn + f] = gelu * u;
    }
}

void ref_llama_swiglu(double *a, const double *gu, size_t rows, size_t ffn) {
  for (size_t r = 0; r < rows; r++)
    for (size_t f = 0; f < ffn; f++) {
      double g = gu[r * 2 * ffn + f], u = gu[r * 2 * ffn + ffn + f];
      a[r * ffn + f] = g / (1.0 + exp(-g)) * u;
    }
}

void ref_llama_cross_entropy(double *loss, const double *z, size_t rows, size_t width,
                             const int *target) {
  for (size_t r = 0; r < rows; r++) {
    const double *zr = z + r * width;
    double mx = -INFINITY, sum = 0;
    for (size_t c = 0; c < width; c++) mx = zr[c] > mx ? zr[c] : mx;
    for (size_t c = 0; c < width; c++) sum += exp(zr[c] - mx);
    loss[r] = target[r] >= 0 ? mx + log(sum) - zr[target[r]] : 0.0;
  }
}

/* y (rows, out) = x (rows, in) W^T with W (out, in) float. */
static void ref_linear(double *y, const double *x, const float *w, size_t rows, size_t in,
                       size_t out) {
  for (size_t r = 0; r < rows; r++)
    for (size_t o = 0; o < out; o++) {
      double acc = 0;
      for (size_t i = 0; i < in; i++) acc += x[r * in + i] * (double)w[o * in + i];
      y[r * out + o] = acc;
    }
}

static double *ref_widen(const float *x, size_t n) {
  double *y = ref_alloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) y[i] = x[i];
  return y;
}

void ref_llama_forward(const ref_llama_config *cfg, const ref_llama_weights *w,
                       const ref_llama_batch *bt, double *logits) {
  const size_t C = cfg->n_embd, D = cfg->head_dim, H = cfg->n_heads, KV = cfg->n_kv_heads;
  const size_t HD = H * D, KD = KV * D, W = HD + 2 * KD, F = cfg->n_ff;
  const size_t P = bt->prompt_rows, S = P + bt->tokens, N = bt->batch * S;
  double *x = ref_alloc(N * C * 8), *h = ref_alloc(N * C * 8), *qkv = ref_alloc(N * W * 8);
  double *q = ref_alloc(N * HD * 8), *k = ref_alloc(N * KD * 8), *v = ref_alloc(N * KD * 8);
  double *o = ref_alloc(N * HD * 8), *t = ref_alloc(N * C * 8), *gu = ref_alloc(N * 2 * F * 8);
  double *g = ref_alloc(N * F * 8), *u = ref_alloc(N * F * 8), *a = ref_alloc(N * F * 8);
  int *valid = ref_alloc(bt->batch * sizeof(int));
  for (size_t b = 0; b < bt->batch; b++) {
    valid[b] = (int)(P + bt->lengths[b]);
    for (size_t s = 0; s < S; s++) {
      double *row = x + (b * S + s) * C;
      for (size_t c = 0; c < C; c++) {
        if (s < P) row[c] = bt->prompt[s * C + c];
        else if (s - P < bt->lengths[b])
          row[c] = w->embd[(size_t)bt->ids[b * bt->tokens + s - P] * C + c];
        else row[c] = 0;
      }
    }
  }
  for (size_t l = 0; l < cfg->n_layers; l++) {
    const ref_llama_layer *y = &w->layers[l];
    double *wn = ref_widen(y->attn_norm, C), *fn = ref_widen(y->ffn_norm, C);
    ref_llama_rmsnorm(h, x, wn, N, C, cfg->eps);
    ref_linear(q, h, y->wq, N, C, HD);
    ref_linear(k, h, y->wk, N, C, KD);
    ref_linear(v, h, y->wv, N, C, KD);
    ref_llama_rope(q, N, HD, H, D, 0, S, cfg->rope_base, w->interleaved);
    ref_llama_rope(k, N, KD, KV, D, 0, S, cfg->rope_base, w->interleaved);
    /* the attention reference reads a fused row; with interleaved pairs the head layout
     * differs from Hugging Face's only inside q and k, which the dot products do not see */
    for (size_t n = 0; n < N; n++) {
      memcpy(qkv + n * W, q + n * HD, HD * 8);
      memcpy(qkv + n * W + HD, k + n * KD, KD * 8);
      memcpy(qkv + n * W + HD + KD, v + n * KD, KD * 8);
    }
    ref_llama_attention(o, qkv, bt->batch, S, H, KV, D, valid);
    ref_linear(t, o, y->wo, N, HD, C);
    for (size_t i = 0; i < N * C; i++) x[i] += t[i];
    ref_llama_rmsnorm(h, x, fn, N, C, cfg->eps);
    ref_linear(g, h, y->wgate, N, C, F);
    ref_linear(u, h, y->wup, N, C, F);
    for (size_t n = 0; n < N; n++) {
      memcpy(gu + n * 2 * F, g + n * F, F * 8);
      memcpy(gu + n * 2 * F + F, u + n * F, F * 8);
    }
    ref_llama_swiglu(a, gu, N, F);
    ref_linear(t, a, y->wdown, N, F, C);
    for (size_t i = 0; i < N * C; i++) x[i] += t[i];
    free(wn);
    free(fn);
  }
  double *on = ref_widen(w->out_norm, C), *hs = ref_alloc(bt->n_out * C * 8);
  double *xs = ref_alloc(bt->n_out * C * 8);
  for (size_t m = 0; m < bt->n_out; m++)
    memcpy(xs + m * C, x + (bt->seq[m] * S + P + bt->pos[m]) * C, C * 8);
  ref_llama_rmsnorm(hs, xs, on, bt->n_out, C, cfg->eps);
  const float *head = w->output ? w->output : w->embd;
  size_t width = bt->labels ? bt->n_labels : cfg->n_vocab;
  for (size_t m = 0; m < bt->n_out; m++)
    for (size_t j = 0; j < width; j++) {
      size_t id = bt->labels ? (size_t)bt->labels[j] : j;
      double acc = 0;
      for (size_t c = 0; c < C; c++) acc += hs[m * C + c] * (double)head[id * C + c];
      logits[m * width + j] = acc;
    }
  free(on);
  free(hs);
  free(xs);
  free(x), free(h), free(qkv), free(q), free(k), free(v), free(o), free(t), free(gu);
  free(g), free(u), free(a), free(valid);
}

double ref_llama_loss(const ref_llama_config *cfg, const ref_llama_weights *w,
                      const ref_llama_batch *bt, const int32_t *targets) {
  size_t width = bt->labels ? bt->n_labels : cfg->n_vocab;
  double *z = ref_alloc(bt->n_out * width * 8), *loss = ref_alloc(bt->n_out * 8);
  int *tg = ref_alloc(bt->n_out * sizeof(int));
  size_t count = 0;
  for (size_t m = 0; m < bt->n_out; m++) count += (tg[m] = targets[m]) >= 0;
  ref_llama_forward(cfg, w, bt, z);
  ref_llama_cross_entropy(loss, z, bt->n_out, width, tg);
  double total = 0;
  for (size_t m = 0; m < bt->n_out; m++) total += loss[m];
  free(z);
  free(loss);
  free(tg);
  return count ? total / (double)count : 0.0;
}

void ref_llama_fd(double (*f)(void *user, const double *x), void *user, double *x, size_t n,
                  double h, double *grad) {
  for (size_t i = 0; i < n; i++) {
    double keep = x[i];
    x[i] = keep + h;
    double fp = f(user, x);
    x[i] = keep - h;
    double fm = f(user, x);
    x[i] = keep;
    grad[i] = (fp - fm) / (2 * h);
  }
}

double ref_llama_rel_error(const float *x, const double *y, size_t n) {
  double scale = 1e-30, err = 0;
  for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(y[i]));
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)x[i] - y[i]);
    if (isnan(e)) return NAN; /* a later finite error must not hide it */
    if (e > err) err = e;
  }
  return err / scale;
}
