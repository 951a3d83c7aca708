/* The architectures beyond Llama: their names in config.json and GGUF files, and what each
 * changes in the tensors a model loads. */
#include <string.h>

#include "model/model_internal.h"

typedef struct lamp__arch_info {
  const char *name;      /* lamp_model_arch_name */
  const char *hf;        /* HF model_type */
  const char *gguf;      /* general.architecture, NULL when llama.cpp has none of its own */
  int gguf_permuted;     /* llama.cpp reorders Q/K rows for its interleaved RoPE */
  int fused;             /* one QKV matrix and one gate/up matrix */
  int gemma;             /* Gemma's block (lamp__arch_gemma) */
  int qk_norm;           /* norms over each Q and K head (lamp__arch_qk_norm) */
  int prompt_scaled;     /* the prompt rows are scaled by sqrt(C) too (lamp__arch_prompt_scaled) */
} lamp__arch_info;

static const lamp__arch_info lamp__archs[] = {
    [LAMP_MODEL_ARCH_LLAMA] = {"llama", "llama", "llama", 1, 0, 0, 0, 0},
    [LAMP_MODEL_ARCH_MISTRAL] = {"mistral", "mistral", NULL, 1, 0, 0, 0, 0},
    [LAMP_MODEL_ARCH_QWEN2] = {"qwen2", "qwen2", "qwen2", 0, 0, 0, 0, 0},
    [LAMP_MODEL_ARCH_PHI3] = {"phi3", "phi3", "phi3", 0, 1, 0, 0, 0},
    [LAMP_MODEL_ARCH_GEMMA2] = {"gemma2", "gemma2", "gemma2", 0, 0, 1, 0, 1},
    [LAMP_MODEL_ARCH_GEMMA3] = {"gemma3", "gemma3_text", "gemma3", 0, 0, 1, 1, 0},
};

#define LAMP__N_ARCHS (sizeof(lamp__archs) / sizeof(lamp__archs[0]))

const char *lamp_model_arch_name(int arch) {
  return arch >= 0 && (size_t)arch < LAMP__N_ARCHS ? lamp__archs[arch].name : NULL;
}

int lamp__arch_find(const char *name, size_t length, int gguf) {
  for (size_t i = 0; i < LAMP__N_ARCHS; i++) {
    const char *n = gguf ? lamp__archs[i].gguf : lamp__archs[i].hf;
    if (n && strlen(n) == length && !memcmp(n, name, length)) return (int)i;
  }
  return -1;
}

const char *lamp__arch_known(void) {
  return "Hugging Face model_type \"llama\", \"mistral\", \"qwen2\", \"phi3\", \"gemma2\" "
         "or \"gemma3_text\"; GGUF general.architecture \"llama\" (Llama and Mistral), "
         "\"qwen2\", \"phi3\", \"gemma2\" or \"gemma3\"";
}

int lamp__arch_gguf_permuted(int arch) {
  return arch >= 0 && (size_t)arch < LAMP__N_ARCHS && lamp__archs[arch].gguf_permuted;
}

int lamp__arch_fused(int arch) {
  return arch >= 0 && (size_t)arch < LAMP__N_ARCHS && lamp__archs[arch].fused;
}

int lamp__arch_gemma(int arch) {
  return arch >= 0 && (size_t)arch < LAMP__N_ARCHS && lamp__archs[arch].gemma;
}

int lamp__arch_qk_norm(int arch) {
  return arch >= 0 && (size_t)arch < LAMP__N_ARCHS && lamp__archs[arch].qk_norm;
}

int lamp__arch_prompt_scaled(int arch) {
  return arch >= 0 && (size_t)arch < LAMP__N_ARCHS && lamp__archs[arch].prompt_scaled;
}
