/* Writes the tiny test model (tests/ref_train.h, seed 7) as a GGUF file: the fixture that the
 * tests, the benchmarks and the examples share, checked in as tests/data/tiny.gguf. The test
 * check_tiny_fixture regenerates it and compares the bytes, so the file and this code agree.
 * Usage: gen_tiny_model OUT.gguf */
#include <stdio.h>

#include "ref_train.h"

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gen_tiny_model OUT.gguf\n");
    return 2;
  }
  ref_train_model m;
  int rc = ref_train_model_write(&m, argv[1], 7);
  ref_train_model_free(&m);
  if (rc) fprintf(stderr, "gen_tiny_model: cannot write %s\n", argv[1]);
  return rc ? 1 : 0;
}
