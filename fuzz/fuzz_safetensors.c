/* safetensors: the input as a file, opened by lamp_safetensors_open, every table entry and
 * metadata pair read back and every tensor read; then as a lamp training checkpoint (open, the
 * classifier and trainer options it records, a custom task among them, and the resume check of
 * those options against themselves) and as a PEFT prompt-tuning adapter (the checks
 * lamp_peft_import makes before it needs a device).
 *
 * Reached without a device: lamp_checkpoint_trainer_options and lamp_checkpoint_check_options
 * read only the model's width from the lamp_llm, so a host-only one (a zeroed struct with the
 * width set, as lamp_checkpoint_check_options makes itself) stands in. Not reached:
 * lamp_trainer_resume, lamp_checkpoint_prompt and lamp_peft_import itself, which upload the
 * tensors to a device. */
#include "fuzz_common.h"
#include "train/train_internal.h"

#define MAX_READ (1u << 22) /* tensor bytes read per input */

static void probe_table(lamp_context *ctx, const char *path) {
  lamp_safetensors *st = NULL;
  if (lamp_safetensors_open(ctx, path, &st) != LAMP_OK) {
    FUZZ_CHECK(st == NULL);
    fuzz_message();
    return;
  }
  size_t n = lamp_safetensors_count(st);
  const lamp_st_tensor *t = lamp_safetensors_tensors(st);
  FUZZ_CHECK(n == 0 || t != NULL);
  size_t budget = MAX_READ;
  for (size_t i = 0; i < n; i++) {
    FUZZ_CHECK(t[i].ndim >= 0 && t[i].ndim <= LAMP_SAFETENSORS_MAX_DIMS);
    FUZZ_CHECK(lamp_safetensors_dtype_name(t[i].dtype) != NULL);
    FUZZ_CHECK(t[i].size == t[i].numel * lamp_safetensors_dtype_size(t[i].dtype));
    const lamp_st_tensor *found = NULL;
    FUZZ_CHECK(lamp_safetensors_find(st, t[i].name, &found) == LAMP_OK && found == &t[i]);
    lamp_st_dtype d;
    FUZZ_CHECK(lamp_safetensors_dtype_from_name(lamp_safetensors_dtype_name(t[i].dtype), &d) ==
                   LAMP_OK &&
               d == t[i].dtype);
    if (t[i].size > budget) continue;
    budget -= (size_t)t[i].size;
    size_t sz = (size_t)t[i].size;
    unsigned char *buf = malloc(sz + 1);
    if (!buf) continue;
    /* opened from the same bytes and unchanged since: the read succeeds */
    FUZZ_CHECK(lamp_safetensors_read(st, &t[i], buf, sz) == LAMP_OK);
    FUZZ_CHECK(lamp_safetensors_read(st, &t[i], buf, sz + 1) != LAMP_OK);
    free(buf);
  }
  const lamp_st_tensor *none = NULL;
  if (lamp_safetensors_find(st, "__no such tensor__", &none) == LAMP_OK) FUZZ_CHECK(none != NULL);
  size_t nm = lamp_safetensors_metadata_count(st);
  for (size_t i = 0; i < nm; i++) {
    const char *k = NULL, *v = NULL;
    FUZZ_CHECK(lamp_safetensors_metadata_at(st, i, &k, &v) == LAMP_OK && k && v);
    const char *again = lamp_safetensors_metadata_get(st, k);
    FUZZ_CHECK(again != NULL);
  }
  const char *k, *v;
  FUZZ_CHECK(lamp_safetensors_metadata_at(st, nm, &k, &v) != LAMP_OK);
  lamp_safetensors_release(st);
}

/* What lamp_peft_import checks of an adapter before it makes the prompt on the device. */
static void probe_adapter(lamp_context *ctx, const char *path) {
  lamp_safetensors *st = NULL;
  if (lamp_safetensors_open(ctx, path, &st) != LAMP_OK) return;
  const lamp_st_tensor *t = NULL;
  if (lamp_safetensors_find(st, "prompt_embeddings", &t) == LAMP_OK && t->ndim == 2 &&
      t->shape[0] && t->dtype == LAMP_ST_F32 && t->size <= MAX_READ) {
    float *host = malloc((size_t)t->size + 1);
    if (host) {
      FUZZ_CHECK(lamp_safetensors_read(st, t, host, (size_t)t->size) == LAMP_OK);
      free(host);
    }
  }
  lamp_safetensors_release(st);
}

static void probe_checkpoint(lamp_context *ctx, const char *path) {
  lamp_checkpoint *ck = NULL;
  if (lamp_checkpoint_open(ctx, path, &ck) != LAMP_OK) {
    FUZZ_CHECK(ck == NULL);
    fuzz_message();
    return;
  }
  static const char *const keys[] = {"lamp.format", "train.step", "train.epoch", "train.batch",
                                     "prompt.rows", "prompt.width", "run.task", "task.custom"};
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) (void)lamp_checkpoint_get(ck, keys[i]);
  lamp_classifier_options co;
  lamp_status cs = lamp_checkpoint_classifier_options(ck, &co);
  if (cs == LAMP_OK) {
    FUZZ_CHECK(co.task != NULL);
    const char *tmpl = co.template_text ? co.template_text : co.task->template_text;
    if (lamp_task_check(ctx, co.task) != LAMP_OK) fuzz_message();
    if (tmpl && lamp_template_check(ctx, co.task, tmpl) != LAMP_OK) fuzz_message();
  } else {
    fuzz_message();
  }
  /* the model's width is all the options take from the model */
  lamp_llm llm;
  memset(&llm, 0, sizeof(llm));
  const char *width = lamp_checkpoint_get(ck, "prompt.width");
  llm.config.n_embd = width ? (size_t)strtoul(width, NULL, 10) % 4097 : 32;
  llm.ctx = ctx;
  lamp_trainer_options to;
  lamp_status ts = lamp_checkpoint_trainer_options(ck, &llm, &to);
  if (ts != LAMP_OK) fuzz_message();
  if (cs == LAMP_OK && ts == LAMP_OK) {
    /* a run resumed with the options the checkpoint records agrees with it */
    lamp_status s = lamp_checkpoint_check_options(ck, &co, &to);
    if (s != LAMP_OK) fuzz_message();
  }
  lamp_checkpoint_release(ck);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lamp_context *ctx = fuzz_ctx();
  const char *path = fuzz_file(data, size);
  if (!path) return 0;
  probe_table(ctx, path);
  probe_adapter(ctx, path);
  probe_checkpoint(ctx, path);
  return 0;
}
