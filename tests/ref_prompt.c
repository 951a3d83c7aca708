#include "ref_prompt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t ref_prompt_nparams(int method, size_t l, size_t d, size_t r) {
  if (method == REF_PROMPT_LAMP) return r * (l + d + 1);
  if (method == REF_PROMPT_PT) return l * d;
  return r * (l + d);
}

/* P_hat (l, d) in full. */
static void ref_prompt_full(int method, size_t l, size_t d, size_t r, const double *th,
                            double *full) {
  if (method == REF_PROMPT_PT) {
    memcpy(full, th, l * d * sizeof(double));
    return;
  }
  for (size_t t = 0; t < l; t++)
    for (size_t c = 0; c < d; c++) {
      double acc = 0;
      for (size_t k = 0; k < r; k++) {
        if (method == REF_PROMPT_LAMP)
          acc += th[t * r + k] * th[l * r + k] * th[l * r + r + c * r + k];
        else
          acc += th[t * r + k] * th[l * r + k * d + c];
      }
      full[t * d + c] = acc;
    }
}

void ref_prompt_forward(int method, size_t l, size_t d, size_t r, size_t s, const double *theta,
                        double *out) {
  double *full = malloc(l * d * sizeof(double));
  ref_prompt_full(method, l, d, r, theta, full);
  size_t lp = (l + s - 1) / s;
  for (size_t j = 0; j < lp; j++) {
    size_t t0 = j * s, t1 = t0 + s < l ? t0 + s : l;
    for (size_t c = 0; c < d; c++) {
      double acc = 0;
      for (size_t t = t0; t < t1; t++) acc += full[t * d + c];
      out[j * d + c] = acc / (double)(t1 - t0);
    }
  }
  free(full);
}

void ref_prompt_backward(int method, size_t l, size_t d, size_t r, size_t s, const double *theta,
                         const double *gout, double *dtheta) {
  double *g = malloc(l * d * sizeof(double));
  for (size_t t = 0; t < l; t++) {
    size_t j = t / s, t0 = j * s, n = (t0 + s < l ? t0 + s : l) - t0;
    for (size_t c = 0; c < d; c++) g[t * d + c] = gout[j * d + c] / (double)n;
  }
  memset(dtheta, 0, ref_prompt_nparams(method, l, d, r) * sizeof(double));
  if (method == REF_PROMPT_PT) {
    memcpy(dtheta, g, l * d * sizeof(double));
  } else if (method == REF_PROMPT_LAMP) {
    const double *u = theta, *q = theta + l * r, *v = theta + l * r + r;
    double *du = dtheta, *dq = dtheta + l * r, *dv = dtheta + l * r + r;
    for (size_t t = 0; t < l; t++)
      for (size_t c = 0; c < d; c++)
        for (size_t k = 0; k < r; k++) {
          double gtc = g[t * d + c];
          du[t * r + k] += gtc * v[c * r + k] * q[k];
          dq[k] += u[t * r + k] * gtc * v[c * r + k];
          dv[c * r + k] += gtc * u[t * r + k] * q[k];
        }
  } else {
    const double *a = theta, *b = theta + l * r;
    double *da = dtheta, *db = dtheta + l * r;
    for (size_t t = 0; t < l; t++)
      for (size_t c = 0; c < d; c++)
        for (size_t k = 0; k < r; k++) {
          da[t * r + k] += g[t * d + c] * b[k * d + c];
          db[k * d + c] += a[t * r + k] * g[t * d + c];
        }
  }
  free(g);
}

double ref_dot(const double *x, const double *y, size_t n) {
  double acc = 0;
  for (size_t i = 0; i < n; i++) acc += x[i] * y[i];
  return acc;
}

void ref_adamw_step(double *p, double *m, double *v, const double *g, size_t n, double lr,
                    double beta1, double beta2, double eps, double weight_decay, uint64_t t) {
  double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
  for (size_t i = 0; i < n; i++) {
    p[i] *= 1.0 - lr * weight_decay;
    m[i] = beta1 * m[i] + (1.0 - beta1) * g[i];
    v[i] = beta2 * v[i] + (1.0 - beta2) * g[i] * g[i];
    p[i] -= lr * (m[i] / bc1) / (sqrt(v[i] / bc2) + eps);
  }
}

float ref_prompt_uniform(uint64_t seed, uint64_t first, uint64_t i, float lo, float hi) {
  uint64_t z = seed + (first + i + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  float u = (float)(z >> 40) * (1.0f / 16777216.0f);
  return lo + (hi - lo) * u;
}

static int ref_desc(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? 1 : x > y ? -1 : 0;
}

void ref_singular_values(const double *a, size_t m, size_t n, double *sv) {
  /* columns to orthogonalise: k of length len, stored column-major in w */
  size_t k = m < n ? m : n, len = m < n ? n : m;
  double *w = malloc(k * len * sizeof(double));
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < n; j++) {
      if (n <= m) w[j * len + i] = a[i * n + j]; /* columns of A */
      else w[i * len + j] = a[i * n + j];         /* columns of A^T = rows of A */
    }
  for (int sweep = 0; sweep < 60; sweep++) {
    double off = 0;
    for (size_t p = 0; p + 1 < k; p++)
      for (size_t q = p + 1; q < k; q++) {
        double *x = w + p * len, *y = w + q * len;
        double alpha = ref_dot(x, x, len), beta = ref_dot(y, y, len), gamma = ref_dot(x, y, len);
        if (fabs(gamma) <= 1e-15 * sqrt(alpha * beta) || gamma == 0) continue;
        off = fmax(off, fabs(gamma) / sqrt(alpha * beta));
        double zeta = (beta - alpha) / (2 * gamma);
        double t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1 + zeta * zeta));
        double c = 1 / sqrt(1 + t * t), s = c * t;
        for (size_t i = 0; i < len; i++) {
          double xi = x[i], yi = y[i];
          x[i] = c * xi - s * yi;
          y[i] = s * xi + c * yi;
        }
      }
    if (off < 1e-14) break;
  }
  for (size_t p = 0; p < k; p++) sv[p] = sqrt(ref_dot(w + p * len, w + p * len, len));
  qsort(sv, k, sizeof(double), ref_desc);
  free(w);
}

uint16_t ref_f32_to_f16(float x) {
  uint32_t b;
  memcpy(&b, &x, 4);
  uint16_t sign = (uint16_t)((b >> 16) & 0x8000);
  float ax = fabsf(x);
  if (ax >= 65520.0f) return sign | 0x7c00;
  if (ax < 6.103515625e-05f) {
    /* subnormal: units of 2^-24, round half to even */
    double units = (double)ax * 16777216.0;
    double fl = floor(units), rem = units - fl;
    uint32_t q = (uint32_t)fl;
    if (rem > 0.5 || (rem == 0.5 && (q & 1))) q++;
    return sign | (uint16_t)q;
  }
  uint32_t exp = ((b >> 23) & 0xff) - 127 + 15, mant = b & 0x7fffff;
  uint32_t h = (exp << 10) | (mant >> 13), rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
  return sign | (uint16_t)h;
}
