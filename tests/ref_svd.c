#include "ref_svd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define REF_PI 3.14159265358979323846

static uint32_t mulhilo32(uint32_t a, uint32_t b, uint32_t *hi) {
  uint64_t p = (uint64_t)a * (uint64_t)b;
  *hi = (uint32_t)(p >> 32);
  return (uint32_t)p;
}

void ref_svd_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t x[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
  uint32_t k[2] = {key[0], key[1]};
  for (int round = 0; round < 10; round++) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo32(0xD2511F53u, x[0], &hi0);
    uint32_t lo1 = mulhilo32(0xCD9E8D57u, x[2], &hi1);
    uint32_t y[4] = {hi1 ^ x[1] ^ k[0], lo1, hi0 ^ x[3] ^ k[1], lo0};
    memcpy(x, y, sizeof(x));
    k[0] += 0x9E3779B9u; /* the bump after the last round is unused */
    k[1] += 0xBB67AE85u;
  }
  memcpy(out, x, sizeof(x));
}

double ref_svd_philox_value(uint64_t seed, uint32_t stream, uint64_t row, uint64_t col, int dist) {
  uint32_t ctr[4] = {(uint32_t)(col / 4), (uint32_t)row, (uint32_t)(row >> 32), stream};
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, w[4];
  ref_svd_philox4x32_10(ctr, key, w);
  unsigned lane = (unsigned)(col % 4);
  if (dist == 1) return (w[lane] >> 31) ? -1.0 : 1.0;
  unsigned pair = lane / 2;
  double u1 = ((double)(w[2 * pair] >> 8) + 1.0) / 16777216.0;
  double u2 = (double)(w[2 * pair + 1] >> 8) / 16777216.0;
  double r = sqrt(-2.0 * log(u1)), th = 2.0 * REF_PI * u2;
  return lane % 2 ? r * sin(th) : r * cos(th);
}

static uint64_t ref_splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static double ref_normal(uint64_t *s) {
  double u1 = ((double)(ref_splitmix(s) >> 11) + 1.0) / 9007199254740993.0;
  double u2 = (double)(ref_splitmix(s) >> 11) / 9007199254740992.0;
  return sqrt(-2.0 * log(u1)) * cos(2.0 * REF_PI * u2);
}

void ref_svd_orthonormal_rows(size_t count, size_t len, uint64_t seed, double *q) {
  uint64_t s = seed * 0x2545F4914F6CDD1DULL + 1;
  for (size_t i = 0; i < count * len; i++) q[i] = ref_normal(&s);
  for (size_t t = 0; t < count; t++) {
    double *v = q + t * len;
    for (int pass = 0; pass < 2; pass++)
      for (size_t p = 0; p < t; p++) {
        const double *w = q + p * len;
        double d = 0.0;
        for (size_t i = 0; i < len; i++) d += w[i] * v[i];
        for (size_t i = 0; i < len; i++) v[i] -= d * w[i];
      }
    double nn = 0.0;
    for (size_t i = 0; i < len; i++) nn += v[i] * v[i];
    nn = 1.0 / sqrt(nn);
    for (size_t i = 0; i < len; i++) v[i] *= nn;
  }
}

void ref_svd_matrix_with_spectrum(size_t m, size_t n, size_t r, const double *sigma, uint64_t seed,
                              float *a, size_t lda) {
  double *xt = malloc(r * m * sizeof(double)), *yt = malloc(r * n * sizeof(double));
  double *row = malloc(n * sizeof(double));
  ref_svd_orthonormal_rows(r, m, seed, xt);
  ref_svd_orthonormal_rows(r, n, seed + 1, yt);
  for (size_t i = 0; i < m; i++) {
    memset(row, 0, n * sizeof(double));
    for (size_t t = 0; t < r; t++) {
      double c = xt[t * m + i] * sigma[t];
      const double *y = yt + t * n;
      for (size_t j = 0; j < n; j++) row[j] += c * y[j];
    }
    for (size_t j = 0; j < n; j++) a[i * lda + j] = (float)row[j];
  }
  free(xt);
  free(yt);
  free(row);
}

static int ref_desc(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? 1 : a > b ? -1 : 0;
}

void ref_svd_singular_values(size_t m, size_t n, double *a, double *sigma) {
  /* Work on the columns of the taller orientation: columns of A when m >= n, else of A^T. */
  size_t rows = m >= n ? m : n, cols = m >= n ? n : m;
  double *c = malloc(rows * cols * sizeof(double)); /* column j at c + j * rows */
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < n; j++) {
      if (m >= n)
        c[j * rows + i] = a[i * n + j];
      else
        c[i * rows + j] = a[i * n + j];
    }
  for (int sweep = 0; sweep < 100; sweep++) {
    int rotated = 0;
    for (size_t p = 0; p + 1 < cols; p++)
      for (size_t q = p + 1; q < cols; q++) {
        double *x = c + p * rows, *y = c + q * rows, al = 0, be = 0, ga = 0;
        for (size_t i = 0; i < rows; i++) {
          al += x[i] * x[i];
          be += y[i] * y[i];
          ga += x[i] * y[i];
        }
        if (fabs(ga) <= 1e-15 * sqrt(al * be) || ga == 0.0) continue;
        rotated = 1;
        double zeta = (be - al) / (2.0 * ga);
        double t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1.0 + zeta * zeta));
        double cs = 1.0 / sqrt(1.0 + t * t), sn = cs * t;
        for (size_t i = 0; i < rows; i++) {
          double u = x[i], v = y[i];
          x[i] = cs * u - sn * v;
          y[i] = sn * u + cs * v;
        }
      }
    if (!rotated) break;
  }
  for (size_t j = 0; j < cols; j++) {
    double nn = 0.0;
    for (size_t i = 0; i < rows; i++) nn += c[j * rows + i] * c[j * rows + i];
    sigma[j] = sqrt(nn);
  }
  qsort(sigma, cols, sizeof(double), ref_desc);
  free(c);
}

double ref_svd_orthogonality(const float *v, size_t count, size_t len, size_t step, size_t stride) {
  double worst = 0.0;
  for (size_t p = 0; p < count; p++)
    for (size_t q = p; q < count; q++) {
      double d = 0.0;
      for (size_t j = 0; j < len; j++)
        d += (double)v[p * step + j * stride] * (double)v[q * step + j * stride];
      double e = fabs(d - (p == q ? 1.0 : 0.0));
      if (!(e <= worst)) worst = e;
    }
  return worst;
}

double ref_svd_lowrank_error(size_t m, size_t n, size_t k, const float *a, const float *u,
                         const float *s, const float *vt) {
  double *row = malloc(n * sizeof(double)), sum = 0.0;
  for (size_t i = 0; i < m; i++) {
    for (size_t j = 0; j < n; j++) row[j] = a[i * n + j];
    for (size_t t = 0; t < k; t++) {
      double c = (double)u[i * k + t] * s[t];
      for (size_t j = 0; j < n; j++) row[j] -= c * vt[t * n + j];
    }
    for (size_t j = 0; j < n; j++) sum += row[j] * row[j];
  }
  free(row);
  return sqrt(sum);
}

void ref_svd_srft(size_t m, size_t n, size_t l, size_t fft_n, const float *a, double alpha,
              uint64_t seed, double *y) {
  /* the chosen columns: the same seeded partial shuffle lamp documents */
  size_t *perm = malloc(fft_n * sizeof(size_t)), half = fft_n / 2;
  for (size_t i = 0; i < fft_n; i++) perm[i] = i;
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  for (size_t t = 0; t < l; t++) {
    uint32_t ctr[4] = {(uint32_t)t, (uint32_t)(t >> 32), 0, 2}, w[4];
    ref_svd_philox4x32_10(ctr, key, w);
    size_t pick = t + (size_t)(((uint64_t)w[0] * (fft_n - t)) >> 32), tmp = perm[t];
    perm[t] = perm[pick];
    perm[pick] = tmp;
  }
  double *d = malloc(n * sizeof(double));
  for (size_t c = 0; c < n; c++) d[c] = ref_svd_philox_value(seed, 1, 0, c, 1);
  for (size_t t = 0; t < l; t++) {
    size_t col = perm[t];
    int imag = col > half;
    size_t bin = imag ? col - half : col;
    double scale = ((!imag && (bin == 0 || 2 * bin == fft_n)) ? 1.0 : sqrt(2.0)) / sqrt((double)l);
    for (size_t i = 0; i < m; i++) {
      double acc = 0.0;
      for (size_t c = 0; c < n; c++) {
        double ang = 2.0 * REF_PI * (double)((bin * c) % fft_n) / (double)fft_n;
        acc += a[i * n + c] * d[c] * (imag ? -sin(ang) : cos(ang));
      }
      y[i * l + t] = alpha * scale * acc;
    }
  }
  free(perm);
  free(d);
}
