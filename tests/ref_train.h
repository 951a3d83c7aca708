/* Test helpers for the training commands: a tiny random Llama model with a byte-level tokenizer
 * written as a GGUF file, small files, and running the lamp tool. */
#ifndef LAMP_TEST_REF_TRAIN_H
#define LAMP_TEST_REF_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "ref_llama.h"

/* The tiny model: 2 layers, width 32, 4 heads on 2 KV heads, MLP 64, tied embeddings, and a
 * vocabulary of the 256 GPT-2 byte tokens (id = byte value) plus the merges "Ġ a" (id 256) and
 * "Ġ b" (id 257), so " a" and " b" are single tokens. */
#define REF_TRAIN_VOCAB 258

typedef struct ref_train_model {
  ref_llama_config cfg;
  ref_llama_weights w;  /* interleaved (GGUF) Q/K order */
  ref_llama_layer layers[2];
  float *arrays[32];    /* owned weight arrays */
  size_t n_arrays;
} ref_train_model;

/* Fills `m` with seeded random weights and writes them as a GGUF file at `path`. Returns 0 on
 * success. Free with ref_train_model_free. */
int ref_train_model_write(ref_train_model *m, const char *path, uint32_t seed);
void ref_train_model_free(ref_train_model *m);

/* A learnable SST-2 style split of `n` examples (header "sentence\tlabel"): the class is
 * marked by the sentence's last word ("up" or "down"), the rest is random letters; three in
 * four examples are class 1; fixed by `seed`. Returns 0 on success. */
int ref_train_write_split(const char *path, size_t n, uint64_t seed);

/* The f32 values of a safetensors file's tensors whose names start with `prefix` (NULL: all),
 * in file order, one malloc'ed array; NULL when the file cannot be read. */
float *ref_train_read_tensors(const char *path, const char *prefix, size_t *count);

/* Writes `text` to `path`; 0 on success. */
int ref_train_write_file(const char *path, const char *text);

/* Reads a whole file (NUL-terminated, malloc'ed) or NULL. */
char *ref_train_read_file(const char *path, size_t *size);

/* The lamp executable next to the test's build folder (<build>/lamp), or NULL. */
const char *ref_train_lamp_path(void);

/* Runs `lamp <args>` through the shell with stdout and stderr into `log`; returns the exit
 * status (-1 when it could not run). */
int ref_train_run(const char *log, const char *args);

#endif
