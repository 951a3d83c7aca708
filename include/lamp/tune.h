/* lamp: per-device tuning of CLBlast's GEMM kernels.
 *
 * CLBlast ships tuned kernel parameters for many GPUs, but on other devices (PoCL on a CPU, new
 * GPUs) it falls back to generic defaults that can be several times slower. lamp_tune_gemm
 * searches the parameters of CLBlast's two SGEMM kernels (the single-kernel "direct" one used for
 * small products and the tiled "indirect" one) and the size at which CLBlast switches between
 * them, timing real products of the given shapes, and stores the result in the cache folder
 * when it is faster than the baseline (lamp_tune_baseline: what a context runs without one) and
 * slower on none of the shapes. Every context created afterwards on the same platform, device
 * and driver version applies the stored parameters (CLBlastOverrideParameters); a stored result
 * for another device or driver is ignored.
 *
 * CLBlast keeps parameters per device for the whole process, so applying them also affects other
 * CLBlast users in the process on that device: the speed of their GEMMs, never their results,
 * but with CLBlast 1.5's GEMMK=1 kernel (lamp's built-in choice for PoCL CPUs) the results of
 * CLBlast's SYRK are wrong once N exceeds one tile (SYR2K runs the same kernels). lamp calls
 * neither; a host that does should create lamp's contexts with `tuning = 0` (LAMP_TUNING=0 for
 * the CLI).
 *
 * Some configurations crash the process (CLBlast 1.5's GEMMK=1 kernel with MWG != NWG writes
 * outside its tiles; the search no longer proposes those, but drivers have their own faults).
 * The evaluation is therefore a callback: `lamp tune` runs each candidate in a child process,
 * so a crash rejects the candidate instead of ending the search. */
#ifndef LAMP_TUNE_H
#define LAMP_TUNE_H

#include <stdint.h>
#include <stdio.h>

#include "lamp/context.h"
#include "lamp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LAMP_TUNE_MAX_SHAPES 16
#define LAMP_TUNE_MAX_PARAMS 16

/* One CLBlast kernel's parameters, as CLBlastOverrideParameters takes them. */
typedef struct lamp_tune_params {
  char kernel[32]; /* "Xgemm", "XgemmDirect" or "GemmRoutine" */
  size_t n;
  char names[LAMP_TUNE_MAX_PARAMS][24];
  size_t values[LAMP_TUNE_MAX_PARAMS];
} lamp_tune_params;

/* Writes "Kernel:NAME=V,NAME=V" / reads it back (LAMP_ERR_INVALID_ARGUMENT on bad text). */
LAMP_API lamp_status lamp_tune_params_format(const lamp_tune_params *p, char *text, size_t size);
LAMP_API lamp_status lamp_tune_params_parse(const char *text, lamp_tune_params *p);

/* Applies `n_sets` parameter sets to the context's device (all of them, in order). */
LAMP_API lamp_status lamp_tune_params_apply(lamp_context *ctx, const lamp_tune_params *sets,
                                            size_t n_sets);

/* Times a layer's two products for each of `n_shapes` (M, N, K) triples after applying `sets`:
 * the forward C = A B^T (A M x K, B N x K) and the backward D = C B (M x K), row-major as lamp
 * stores them. seconds[i] is the time of the pair for shape i (the fastest of at least three,
 * the one least slowed by other work on the machine), or -1 when CLBlast refuses the parameters
 * or a product is wrong (32 entries of each checked in double on the host, and first every
 * transpose pair at odd sizes and offsets, checked in full). Other errors are returned. The
 * first run of each shape (CLBlast compiles its kernels there) is never timed. */
LAMP_API lamp_status lamp_tune_evaluate(lamp_context *ctx, const lamp_tune_params *sets,
                                        size_t n_sets, const size_t *shapes, size_t n_shapes,
                                        double *seconds);

/* One complete configuration: parameter sets applied together, in order. */
#define LAMP_TUNE_MAX_SETS 4
#define LAMP_TUNE_MAX_CONFIGS 8 /* configurations one lamp_tune_measure times together */
typedef struct lamp_tune_config {
  size_t n_sets;
  lamp_tune_params sets[LAMP_TUNE_MAX_SETS];
} lamp_tune_config;

/* lamp_tune_evaluate for several configurations on the same shapes, interleaved: each is
 * applied, checked and compiled first, then every repetition of a shape's pair runs each
 * configuration in turn (re-applying it), so load on the machine slows all of them alike.
 * seconds[c * n_shapes + i] is configuration c on shape i (-1 for every shape of one that
 * failed). With one configuration this is lamp_tune_evaluate. */
LAMP_API lamp_status lamp_tune_measure(lamp_context *ctx, const lamp_tune_config *configs,
                                       size_t n_configs, const size_t *shapes, size_t n_shapes,
                                       double *seconds);

/* An evaluator as lamp_tune_gemm calls it, with lamp_tune_measure's arguments and results;
 * lamp_tune_measure on the context is the default. */
typedef lamp_status (*lamp_tune_evaluate_fn)(void *user, const lamp_tune_config *configs,
                                             size_t n_configs, const size_t *shapes,
                                             size_t n_shapes, double *seconds);

typedef struct lamp_tune_options {
  const size_t *shapes; /* n_shapes triples (M, N, K); NULL: the SmolLM2-135M training shapes */
  size_t n_shapes;
  unsigned budget;      /* candidates tried per kernel, the baseline's first; 0: 24 */
  uint64_t seed;        /* for the random part of the search */
  FILE *log;            /* one line per candidate when not NULL */
  lamp_tune_evaluate_fn evaluate; /* NULL: in this process, on the context */
  void *evaluate_user;
} lamp_tune_options;

/* What a context on this device runs without a stored result, which a stored result must beat:
 * lamp's built-in result for this kind of device (*kind = 2, as lamp_tune_apply's `applied`),
 * else CLBlast's own parameters for the device (*kind = 0), as they were before lamp first
 * overrode them in this process. Three sets: XgemmDirect, Xgemm, GemmRoutine. */
LAMP_API lamp_status lamp_tune_baseline(lamp_context *ctx, lamp_tune_params *sets, int *kind);

LAMP_API void lamp_tune_options_init(lamp_tune_options *options);

typedef struct lamp_tune_shape {
  size_t m, n, k;
  double gflops_before; /* forward and backward pair with the baseline (lamp_tune_baseline) */
  double gflops_after;  /* with the result, measured interleaved with the baseline's */
  int direct;           /* 1 when the result uses the direct kernel for this shape */
  int kept;             /* 1 when the result runs the baseline's own kernel for this shape */
} lamp_tune_shape;

typedef struct lamp_tune_report {
  lamp_tune_shape shapes[LAMP_TUNE_MAX_SHAPES];
  size_t n_shapes;
  unsigned tried;    /* candidates evaluated */
  unsigned rejected; /* candidates that failed, crashed or computed wrong results */
  double seconds;
  int baseline;      /* lamp_tune_baseline's kind: 2 lamp's built-in result, 0 CLBlast's own */
  lamp_tune_params baseline_sets[3];
  lamp_tune_params result[3]; /* XgemmDirect, Xgemm, GemmRoutine: the result, or the baseline */
  int stored;        /* 1: the result is stored at `path`; 0: the baseline was kept, nothing is
                      * stored (a result stored before was removed: removed_previous) */
  int removed_previous;
  char path[1024];   /* where the result is (or would be) stored */
} lamp_tune_report;

/* Searches, applies and stores GEMM parameters for the context's device. Needs a folder to store
 * the result in (LAMP_ERR_INVALID_ARGUMENT when there is none). Takes minutes on a CPU.
 *
 * The baseline (lamp_tune_baseline) is the first candidate of each kernel. The chosen
 * configuration is then timed against the baseline, interleaved (lamp_tune_measure), on every
 * shape, and those times are the report's before and after. A shape where the result would run
 * another kernel than the baseline and is slower beyond noise (3%) gets the baseline's kernel
 * back (by the baseline's parameters for that kernel, or by moving the direct/tiled switch) and
 * the result is timed again; a result that is faster beyond noise on no shape is not stored: the
 * baseline is kept, any result stored before is removed, and `stored` is 0. */
LAMP_API lamp_status lamp_tune_gemm(lamp_context *ctx, const lamp_tune_options *options,
                                    lamp_tune_report *report);

/* Applies the stored parameters for this device: `*applied` is 1 when a result stored for this
 * platform, device and driver was applied; else 2 when lamp ships a result for this kind of
 * device (PoCL CPU devices) and it was applied; else 0 (CLBlast's own parameters stay). A
 * stored file that is damaged is LAMP_ERR_FORMAT and changes nothing. Contexts call this on
 * creation unless their `tuning` option is 0 (or LAMP_TUNING=0). */
LAMP_API lamp_status lamp_tune_apply(lamp_context *ctx, int *applied);

/* The file that holds (or would hold) the stored parameters for this context's device. */
LAMP_API lamp_status lamp_tune_path(const lamp_context *ctx, char *path, size_t path_size);

#ifdef __cplusplus
}
#endif

#endif
