/* Training a soft prompt from a host application, start to finish.
 *
 * The application owns its OpenCL context and queue; lamp adopts them. It loads a model (the
 * tiny test model, or SmolLM2 when given), writes a few lines of its own data, trains a LAMP
 * prompt for some steps, saves a checkpoint and a PEFT adapter, and classifies new texts with
 * the prompt loaded back from the checkpoint.
 *
 * Usage: train_prompt MODEL [WORK_DIR] [WORDS]
 *   MODEL: a GGUF file or a Hugging Face folder; WORDS: the label words [" bad| good"] (the
 *   tiny test model knows only " a" and " b" as single tokens) */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>

#include <lamp/lamp.h>
#include <lamp/train.h>

/* Every lamp call returns a status; the context holds the detail. */
#define TRY(call)                                                                          \
  do {                                                                                     \
    lamp_status st_ = (call);                                                              \
    if (st_ != LAMP_OK) {                                                                  \
      fprintf(stderr, "%s: %s: %s\n", #call, lamp_status_name(st_), lamp_context_error(ctx)); \
      exit(1);                                                                             \
    }                                                                                      \
  } while (0)

static const char *data =
    "text\tlabel\n"
    "a warm, funny and moving film\tgood\n"
    "dull, slow and far too long\tbad\n"
    "the best thing I saw this year\tgood\n"
    "I walked out after an hour\tbad\n"
    "sharp writing and a great cast\tgood\n"
    "a mess from start to finish\tbad\n"
    "charming and beautifully shot\tgood\n"
    "tedious, flat and forgettable\tbad\n";

static int on_step(void *user, const lamp_fit_report *r) {
  (void)user;
  if (r->event == LAMP_FIT_STEP && r->step % 10 == 0)
    printf("step %3llu  loss %.4f\n", (unsigned long long)r->step, r->result->loss);
  return 0; /* nonzero would stop the run (and checkpoint it) */
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: train_prompt MODEL [WORK_DIR] [WORDS]\n");
    return 2;
  }
  const char *dir = argc > 2 ? argv[2] : ".";
  char data_path[1024], ckpt_path[1024], adapter_dir[1024];
  snprintf(data_path, sizeof(data_path), "%s/reviews.tsv", dir);
  snprintf(ckpt_path, sizeof(ckpt_path), "%s/reviews.safetensors", dir);
  FILE *f = fopen(data_path, "w");
  if (!f || fputs(data, f) < 0 || fclose(f) != 0) {
    fprintf(stderr, "cannot write %s\n", data_path);
    return 1;
  }

  /* 1. The application's OpenCL objects; lamp adopts them and releases only its references. */
  cl_platform_id platform;
  cl_device_id device;
  cl_int err;
  if (clGetPlatformIDs(1, &platform, NULL) != CL_SUCCESS ||
      clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL) != CL_SUCCESS) {
    fprintf(stderr, "no OpenCL device\n");
    return 1;
  }
  cl_context cl_ctx = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
  cl_command_queue queue = err == CL_SUCCESS ? clCreateCommandQueue(cl_ctx, device, 0, &err) : NULL;
  if (err != CL_SUCCESS) {
    fprintf(stderr, "OpenCL set-up failed: %s\n", lamp_cl_error_name(err));
    return 1;
  }
  lamp_context *ctx = NULL;
  char msg[1024];
  if (lamp_context_adopt(cl_ctx, device, queue, NULL, &ctx, msg, sizeof(msg)) != LAMP_OK) {
    fprintf(stderr, "lamp_context_adopt: %s\n", msg);
    return 1;
  }

  /* 2. The model, and a task of our own: one text column, labels "bad" and "good". */
  lamp_llm *llm = NULL;
  TRY(lamp_llm_load(ctx, argv[1], &llm));
  lamp_task task = {0};
  task.name = "reviews";
  task.folder = "";
  task.format = LAMP_DATA_TSV;
  task.header = 1;
  task.n_fields = 1;
  task.fields[0] = "text";
  task.columns[0] = -1; /* by its name in the header */
  task.label_column = -1;
  task.n_labels = 2;
  task.labels[0] = "bad";
  task.labels[1] = "good";
  task.template_text = "Review: {text}\nSentiment:";
  task.metric = LAMP_DATA_METRIC_ACCURACY;
  lamp_classifier_options co;
  lamp_classifier_options_init(&co, &task);
  co.words = argc > 3 ? argv[3] : " bad| good"; /* what the model should say for each class */
  lamp_classifier *cls = NULL;
  lamp_examples *train = NULL;
  TRY(lamp_classifier_create(llm, &co, &cls));
  TRY(lamp_examples_load(cls, data_path, 0, &train));

  /* 3. A LAMP prompt: 16 tokens, rank 4, pooled by 2; 30 steps of batch 4. */
  lamp_trainer_options to;
  lamp_trainer_options_init(&to, llm, LAMP_PROMPT_LAMP);
  to.prompt.length = 16;
  to.prompt.rank = 4;
  to.batch = 4;
  to.steps = 40;
  to.adamw.lr = 0.1f;
  lamp_trainer *trainer = NULL;
  TRY(lamp_trainer_create(cls, &to, train, &trainer));
  lamp_fit_options fit;
  lamp_fit_options_init(&fit);
  fit.checkpoint = ckpt_path; /* written at the end, atomically */
  fit.callback = on_step;
  TRY(lamp_trainer_fit(trainer, &fit));
  lamp_metrics m;
  TRY(lamp_trainer_evaluate(trainer, train, 0, &m));
  printf("train accuracy %.3f, loss %.4f\n", m.accuracy, m.loss);
  /* the same prompt for Hugging Face PEFT (and examples/classify) */
  snprintf(adapter_dir, sizeof(adapter_dir), "%s/adapter", dir);
  TRY(lamp_peft_export(llm, lamp_trainer_prompt(trainer), adapter_dir, NULL));
  lamp_trainer_release(trainer);

  /* 4. Later, or in another program: the prompt back from the checkpoint, new texts. */
  lamp_checkpoint *ckpt = NULL;
  lamp_prompt *prompt = NULL;
  lamp_examples *texts = NULL;
  TRY(lamp_checkpoint_open(ctx, ckpt_path, &ckpt));
  TRY(lamp_checkpoint_prompt(ckpt, llm, &prompt));
  lamp_checkpoint_release(ckpt);
  const char *inputs[] = {"a lovely, funny film", "slow and dull"};
  TRY(lamp_examples_create(cls, &texts));
  for (int i = 0; i < 2; i++) TRY(lamp_examples_add(cls, texts, &inputs[i], -1));
  int32_t pred[2];
  TRY(lamp_classifier_evaluate(cls, prompt, texts, 0, NULL, pred, NULL));
  for (int i = 0; i < 2; i++) printf("%-24s -> %s\n", inputs[i], task.labels[pred[i]]);

  lamp_examples_release(texts);
  lamp_prompt_release(prompt);
  lamp_examples_release(train);
  lamp_classifier_release(cls);
  lamp_llm_release(llm);
  lamp_context_release(ctx);
  clReleaseCommandQueue(queue);
  clReleaseContext(cl_ctx);
  return 0;
}
