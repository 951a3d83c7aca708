/* Internals of the model module shared by its source files. Not installed. */
#ifndef LAMP_MODEL_INTERNAL_H
#define LAMP_MODEL_INTERNAL_H

#include "runtime/internal.h"
#include "lamp/model.h"

/* Regions in the big buffers start on this many bytes, a cache line or more on every device. */
#define LAMP__MODEL_ALIGN 256

typedef struct lamp__region {
  cl_mem buffer;
  size_t offset; /* bytes */
} lamp__region;

typedef struct lamp__layer {
  lamp__region attn_norm; /* (C) */
  lamp__region wqkv;      /* (W, C): Q rows (H D), then K rows (Hkv D), then V rows (Hkv D) */
  lamp__region wo;        /* (C, H D) */
  lamp__region ffn_norm;  /* (C) */
  lamp__region wgu;       /* (2F, C): gate rows, then up rows */
  lamp__region wdown;     /* (C, F) */
} lamp__layer;

struct lamp_model {
  lamp_context *ctx;
  lamp_model_config cfg;
  cl_mem *buffers;
  size_t n_buffers;
  size_t bytes;
  lamp__region embd;     /* (V, C) */
  lamp__region out_norm; /* (C) */
  lamp__region output;   /* (V, C), the embedding when tied */
  lamp__layer *layers;   /* L */
};

/* What one block keeps for the backward: one set per block, or a single reused set when
 * recomputing. */
typedef struct lamp__slot {
  lamp__region qkv;   /* (N, W) after RoPE */
  lamp__region o;     /* (N, H D) attention output */
  lamp__region lse;   /* (N, H) attention log-sum-exp */
  lamp__region xmid;  /* (N, C) residual stream between attention and MLP */
  lamp__region gu;    /* (N, 2F) gate and up projections */
  lamp__region rstd1; /* (N) */
  lamp__region rstd2; /* (N) */
} lamp__slot;

struct lamp_model_workspace {
  lamp_model *model;
  lamp_context *ctx;
  lamp_model_shape shape;
  cl_mem *buffers;
  size_t n_buffers;
  size_t bytes;

  /* the current batch */
  size_t batch, tokens;     /* B, T */
  size_t *lengths;          /* (B max) host copy */
  size_t n_out, n_targets;  /* M, rows with a target */
  int32_t *targets;         /* (M max) host copy */
  int has_targets;
  size_t n_labels;
  int forward_done;
  lamp_model_head last_head;

  cl_mem ids, lengths_dev, valid, out_rows, targets_dev, label_ids; /* cl_int arrays */
  /* Host copies the batch's inputs are written from without blocking: a staging area stays
   * untouched until its last write (`staged`) has run, so the host prepares the next batch
   * while the device still works on the one before. */
  cl_int *stage_tokens;  /* ids (B T), lengths (B), valid (B) */
  cl_int *stage_outputs; /* rows (M), targets (M) */
  unsigned char *row_chosen; /* per row (P + B T), for lamp_model_set_outputs' duplicate check */
  cl_event staged[2];    /* the last write from each, or NULL */

  lamp__region prompt, dprompt;      /* (P, C) */
  lamp__region cos_t, sin_t;         /* (P + T, D/2), own buffers (offset 0) */
  lamp__region *xs;                  /* L of (N, C): block inputs */
  lamp__slot *slots;                 /* L, or 1 when recomputing */
  lamp__region h, tmp, dr;           /* (N, C) */
  lamp__region a;                    /* (N, F) swiglu output, then its gradient */
  lamp__region dgu;                  /* (N, 2F) */
  lamp__region dqkv;                 /* (N, W) */
  lamp__region dout;                 /* (N, H D) */
  lamp__region delta;                /* (N, H) */
  lamp__region xsel, tsel, xl, hf, dhf, dxl; /* (M, C) */
  lamp__region rstdf;                /* (M) */
  lamp__region wlab;                 /* (K, C) label rows of the output head */
  lamp__region logits, dlogits;      /* (M, max(V, K)) */
  lamp__region loss, lse_ce;         /* (M) */
};

/* A dense (rows, cols) f32 tensor over a region. */
lamp_tensor lamp__model_mat(lamp__region r, size_t cols, size_t rows);

/* Reserves `floats` at *cursor in a buffer being planned, aligned; the buffer is set later. */
lamp__region lamp__model_reserve(size_t *cursor, size_t floats);

/* One device buffer of `bytes`, refused with a message naming `what` beyond the device limit. */
lamp_status lamp__model_alloc(lamp_context *ctx, size_t bytes, const char *what, cl_mem *out);

/* Blocking write of host floats into a region at a float offset. */
lamp_status lamp__model_write(lamp_context *ctx, lamp__region r, size_t float_offset,
                              const float *data, size_t floats);

#endif
