/* Classifying stdin with a trained prompt: a lamp checkpoint (which knows its task, template
 * and label words) or a Hugging Face PEFT prompt-tuning adapter (then name a built-in task, and
 * the label words if not the task's). One line per text; fields of multi-field tasks separated
 * by tabs. Prints the class, its label word and its probability.
 *
 * Usage: classify MODEL CHECKPOINT.safetensors  < texts
 *        classify MODEL ADAPTER_DIR TASK ["W1|W2"] < texts */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lamp/lamp.h>
#include <lamp/train.h>

#define TRY(call)                                                                          \
  do {                                                                                     \
    lamp_status st_ = (call);                                                              \
    if (st_ != LAMP_OK) {                                                                  \
      fprintf(stderr, "%s: %s: %s\n", #call, lamp_status_name(st_), lamp_context_error(ctx)); \
      return 1;                                                                            \
    }                                                                                      \
  } while (0)

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: classify MODEL CHECKPOINT | classify MODEL ADAPTER TASK [WORDS]\n");
    return 2;
  }
  char msg[1024];
  lamp_context *ctx = NULL;
  if (lamp_context_create(NULL, &ctx, msg, sizeof(msg)) != LAMP_OK) {
    fprintf(stderr, "%s\n", msg);
    return 1;
  }
  lamp_llm *llm = NULL;
  TRY(lamp_llm_load(ctx, argv[1], &llm));
  lamp_classifier_options co;
  lamp_prompt *prompt = NULL;
  lamp_checkpoint *ckpt = NULL;
  if (argc == 3) {
    TRY(lamp_checkpoint_open(ctx, argv[2], &ckpt));
    TRY(lamp_checkpoint_classifier_options(ckpt, &co));
    TRY(lamp_checkpoint_prompt(ckpt, llm, &prompt));
  } else {
    const lamp_task *task = NULL;
    if (lamp_task_find(ctx, argv[3], &task) != LAMP_OK) {
      fprintf(stderr, "%s\n", lamp_context_error(ctx));
      return 2;
    }
    lamp_classifier_options_init(&co, task);
    if (argc > 4) co.words = argv[4];
    TRY(lamp_peft_import(llm, argv[2], &prompt));
  }
  lamp_classifier *cls = NULL;
  TRY(lamp_classifier_create(llm, &co, &cls)); /* copies what it needs of the checkpoint's */
  lamp_checkpoint_release(ckpt);
  lamp_classifier_get_options(cls, &co);
  const lamp_task *task = co.task;

  lamp_examples *texts = NULL;
  TRY(lamp_examples_create(cls, &texts));
  char line[8192];
  while (fgets(line, sizeof(line), stdin)) {
    line[strcspn(line, "\r\n")] = '\0';
    const char *fields[LAMP_DATA_MAX_FIELDS];
    size_t n = 0;
    for (char *p = line; n < LAMP_DATA_MAX_FIELDS;) {
      fields[n++] = p;
      char *tab = strchr(p, '\t');
      if (!tab) break;
      *tab = '\0';
      p = tab + 1;
    }
    if (n != task->n_fields) {
      fprintf(stderr, "a line has %zu fields; task %s takes %zu\n", n, task->name, task->n_fields);
      return 1;
    }
    TRY(lamp_examples_add(cls, texts, fields, -1));
  }
  size_t n = lamp_examples_count(texts), K = lamp_classifier_label_count(cls);
  double *scores = malloc((n ? n : 1) * K * sizeof(double));
  int32_t *pred = malloc((n ? n : 1) * sizeof(int32_t));
  if (!scores || !pred) return 1;
  TRY(lamp_classifier_evaluate(cls, prompt, texts, 0, scores, pred, NULL));
  for (size_t i = 0; i < n; i++) {
    const double *s = scores + i * K;
    double z = 0;
    for (size_t k = 0; k < K; k++) z += exp(s[k] - s[pred[i]]);
    printf("%s\t%s\t%.4f\n", task->labels[pred[i]], lamp_classifier_word(cls, (size_t)pred[i], NULL),
           1.0 / z);
  }
  free(scores);
  free(pred);
  lamp_examples_release(texts);
  lamp_prompt_release(prompt);
  lamp_classifier_release(cls);
  lamp_llm_release(llm);
  lamp_context_release(ctx);
  return 0;
}
