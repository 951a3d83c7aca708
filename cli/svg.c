/* A two-panel SVG plot of a run (training loss, dev accuracy) written by hand: no plotting
 * dependency for one picture. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

#define SVG_W 720
#define SVG_PANEL_H 230
#define SVG_LEFT 70
#define SVG_RIGHT 20
#define SVG_TOP 40
#define SVG_GAP 50

typedef struct svg_axis {
  double lo, hi;
} svg_axis;

/* A "nice" tick step (1, 2 or 5 times a power of ten) giving about `n` ticks. */
static double svg_step(double span, int n) {
  if (!(span > 0)) return 1;
  double raw = span / n, p = pow(10, floor(log10(raw))), m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void svg_escape(FILE *f, const char *s) {
  for (; *s; s++) {
    if (*s == '<') fputs("&lt;", f);
    else if (*s == '>') fputs("&gt;", f);
    else if (*s == '&') fputs("&amp;", f);
    else fputc(*s, f);
  }
}

static double svg_x(const svg_axis *ax, double v) {
  return SVG_LEFT + (v - ax->lo) / (ax->hi - ax->lo) * (SVG_W - SVG_LEFT - SVG_RIGHT);
}

static double svg_y(const svg_axis *ay, double top, double v) {
  return top + SVG_PANEL_H - (v - ay->lo) / (ay->hi - ay->lo) * SVG_PANEL_H;
}

static void svg_panel(FILE *f, const svg_axis *ax, const svg_axis *ay, double top,
                      const char *label) {
  fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"none\" "
             "stroke=\"#444\"/>\n", SVG_LEFT, top, SVG_W - SVG_LEFT - SVG_RIGHT, SVG_PANEL_H);
  double ys = svg_step(ay->hi - ay->lo, 5);
  for (double v = ceil(ay->lo / ys) * ys; v <= ay->hi + 1e-9 * ys; v += ys) {
    double y = svg_y(ay, top, v);
    fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", SVG_LEFT,
            y, SVG_W - SVG_RIGHT, y);
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", SVG_LEFT - 6, y + 4,
            fabs(v) < 1e-12 ? 0.0 : v);
  }
  double xs = svg_step(ax->hi - ax->lo, 8);
  for (double v = ceil(ax->lo / xs) * xs; v <= ax->hi + 1e-9 * xs; v += xs) {
    double x = svg_x(ax, v);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", x,
            top + SVG_PANEL_H + 16, v);
  }
  fprintf(f, "<text x=\"16\" y=\"%.1f\" transform=\"rotate(-90 16 %.1f)\" "
             "text-anchor=\"middle\">%s</text>\n", top + SVG_PANEL_H / 2.0,
          top + SVG_PANEL_H / 2.0, label);
}

static void svg_line(FILE *f, const svg_axis *ax, const svg_axis *ay, double top,
                     const double *xs, const double *ys, size_t n, const char *color,
                     double width) {
  if (!n) return;
  fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" points=\"", color, width);
  for (size_t i = 0; i < n; i++)
    fprintf(f, "%.1f,%.1f ", svg_x(ax, xs[i]), svg_y(ay, top, ys[i]));
  fputs("\"/>\n", f);
}

int tr_svg_plot(const char *path, const char *title, const double *loss_step,
                const double *loss, size_t n_loss, const double *eval_step,
                const double *eval_acc, size_t n_eval) {
  char tmp[4200];
  if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) return -1;
  FILE *f = fopen(tmp, "wb");
  if (!f) return -1;
  svg_axis ax = {0, 1}, al = {0, 1}, aa = {0, 1};
  for (size_t i = 0; i < n_loss; i++) {
    if (loss_step[i] > ax.hi) ax.hi = loss_step[i];
    if (loss[i] > al.hi) al.hi = loss[i];
  }
  for (size_t i = 0; i < n_eval; i++)
    if (eval_step[i] > ax.hi) ax.hi = eval_step[i];
  al.hi *= 1.05;
  /* moving average over a window of about a twentieth of the run */
  size_t win = n_loss / 20 ? n_loss / 20 : 1;
  double *avg = malloc((n_loss ? n_loss : 1) * sizeof(double));
  if (!avg) {
    fclose(f);
    remove(tmp);
    return -1;
  }
  double acc = 0;
  for (size_t i = 0; i < n_loss; i++) {
    acc += loss[i];
    if (i >= win) acc -= loss[i - win];
    avg[i] = acc / (double)(i + 1 < win ? i + 1 : win);
  }
  int height = SVG_TOP + 2 * SVG_PANEL_H + SVG_GAP + 40;
  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
             "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" "
             "height=\"100%%\" fill=\"white\"/>\n<text x=\"%d\" y=\"22\" font-size=\"15\">",
          SVG_W, height, SVG_LEFT);
  svg_escape(f, title);
  fputs("</text>\n", f);
  double top1 = SVG_TOP, top2 = SVG_TOP + SVG_PANEL_H + SVG_GAP;
  svg_panel(f, &ax, &al, top1, "training loss");
  svg_line(f, &ax, &al, top1, loss_step, loss, n_loss, "#9ecae1", 1.0);
  svg_line(f, &ax, &al, top1, loss_step, avg, n_loss, "#08519c", 2.0);
  svg_panel(f, &ax, &aa, top2, "dev accuracy");
  svg_line(f, &ax, &aa, top2, eval_step, eval_acc, n_eval, "#a63603", 2.0);
  for (size_t i = 0; i < n_eval; i++)
    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#a63603\"/>\n",
            svg_x(&ax, eval_step[i]), svg_y(&aa, top2, eval_acc[i]));
  fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">step</text>\n",
          (SVG_W + SVG_LEFT) / 2, height - 6);
  fputs("</svg>\n", f);
  free(avg);
  if (fclose(f) != 0 || rename(tmp, path) != 0) {
    remove(tmp);
    return -1;
  }
  return 0;
}
