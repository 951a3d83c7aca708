/* The trainer's memory plan: the model file's weights in either mode, the classifier's
 * workspace with and without recomputation, and the prompt with its optimiser state. */
#include <stdio.h>
#include <string.h>

#include "train/trainer_internal.h"

lamp_status lamp_trainer_plan_make(lamp_classifier *cls, const lamp_trainer_options *o,
                                   lamp_model_weights weights, lamp_trainer_plan *plan) {
  if (!cls || !o || !plan) return LAMP_ERR_INVALID_ARGUMENT;
  lamp_context *ctx = cls->ctx;
  memset(plan, 0, sizeof(*plan));
  lamp_prompt_options po = o->prompt;
  po.width = cls->llm->config.n_embd;
  size_t params = 0;
  LAMP__TRY(lamp_prompt_options_param_count(&po, &params));
  if (!po.pool) return lamp__fail(ctx, LAMP_ERR_INVALID_ARGUMENT, "trainer plan: pool 0");
  size_t rows = (po.length + po.pool - 1) / po.pool;
  lamp__classifier_shape(cls, rows, o->batch, o->recompute, &plan->shape);
  LAMP__TRY(lamp__llm_plan(cls->llm, &plan->shape, weights, &plan->model));
  /* value, gradient and AdamW's two moments per parameter (lamp__trainer_device_bytes) */
  plan->prompt = 4 * sizeof(float) * (uint64_t)params;
  plan->total = plan->model.total + plan->prompt;
  const lamp_model_plan *m = &plan->model;
  plan->fits = (!m->device_global || plan->total <= m->device_global) &&
               (!m->device_max_alloc || m->largest_buffer <= m->device_max_alloc);
  return LAMP_OK;
}

/* One plan as text: its parts and total. */
static void lamp__plan_text(const lamp_trainer_plan *p, char *out, size_t size) {
  char w[32], ws[32], a[32], pr[32], t[32];
  snprintf(out, size, "weights %s %s + workspace %s + activations %s%s + prompt %s = %s",
           lamp_model_weights_name(p->model.weights),
           lamp__bytes_text(p->model.weights_total, w, sizeof(w)),
           lamp__bytes_text(p->model.workspace, ws, sizeof(ws)),
           lamp__bytes_text(p->model.activations, a, sizeof(a)),
           p->shape.recompute ? " (recomputed)" : "", lamp__bytes_text(p->prompt, pr, sizeof(pr)),
           lamp__bytes_text(p->total, t, sizeof(t)));
}

lamp_status lamp__trainer_fit(lamp_classifier *cls, const lamp_trainer_options *o) {
  lamp_context *ctx = cls->ctx;
  lamp_llm *llm = cls->llm;
  LAMP__TRY(lamp__llm_check(llm));
  const lamp_model_weights now = lamp_model_get_weights(llm->model);
  lamp_trainer_plan plan;
  LAMP__TRY(lamp_trainer_plan_make(cls, o, now, &plan));
  if (plan.fits) return LAMP_OK;
  lamp_trainer_plan stored;
  /* a reload frees the f32 model, so it is done only while this classifier is its one user */
  const int shared = llm->classifiers > 1;
  if (now == LAMP_MODEL_WEIGHTS_F32 && llm->requested == LAMP_MODEL_WEIGHTS_AUTO && !shared) {
    LAMP__TRY(lamp_trainer_plan_make(cls, o, LAMP_MODEL_WEIGHTS_STORED, &stored));
    if (stored.fits) {
      /* the classifier's workspace belongs to the f32 model */
      lamp_model_workspace_release(cls->ws);
      cls->ws = NULL;
      return lamp__llm_set_weights(llm, LAMP_MODEL_WEIGHTS_STORED);
    }
  }
  /* refuse, with the table and the alternatives that fit */
  char have[32], big[32], largest[32], line[256], alt[768] = "";
  size_t used = 0;
  for (int w = 0; w < 2; w++)
    for (int rc = 0; rc < 2; rc++) {
      lamp_trainer_options oo = *o;
      oo.recompute = rc || o->recompute;
      lamp_model_weights mode = w ? LAMP_MODEL_WEIGHTS_STORED : now;
      if ((mode == now && oo.recompute == o->recompute) ||
          lamp_trainer_plan_make(cls, &oo, mode, &stored) != LAMP_OK || !stored.fits)
        continue;
      lamp__plan_text(&stored, line, sizeof(line));
      int n = snprintf(alt + used, sizeof(alt) - used, "%s%s%s: %s", used ? "; " : "",
                       mode != now ? "weights stored (--weights stored)" : "",
                       oo.recompute != o->recompute
                           ? (mode != now ? " and recompute (--recompute)" : "recompute (--recompute)")
                           : "",
                       line);
      if (n > 0 && (size_t)n < sizeof(alt) - used) used += (size_t)n;
    }
  lamp__plan_text(&plan, line, sizeof(line));
  return lamp__fail(ctx, LAMP_ERR_OUT_OF_MEMORY, "trainer: %s does not fit the device (%s of "
                    "global memory, buffers up to %s; the largest planned is %s)%s%s%s", line,
                    lamp__bytes_text(plan.model.device_global, have, sizeof(have)),
                    lamp__bytes_text(plan.model.device_max_alloc, big, sizeof(big)),
                    lamp__bytes_text(plan.model.largest_buffer, largest, sizeof(largest)),
                    used ? "; it fits with " : "; nor with recomputation or stored weights: "
                    "use a smaller batch or shorter texts", alt,
                    shared && now == LAMP_MODEL_WEIGHTS_F32 &&
                            llm->requested == LAMP_MODEL_WEIGHTS_AUTO
                        ? " (not reloaded as stored by itself: other classifiers use the model; "
                          "load it with LAMP_MODEL_WEIGHTS_STORED)"
                        : "");
}
