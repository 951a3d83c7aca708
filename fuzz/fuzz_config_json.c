/* config.json: lamp_model_config_from_hf on the input (the JSON parser and the Hugging Face
 * configuration reader); a configuration it accepts must have its required
 * sizes positive and a known architecture. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lamp_context *ctx = fuzz_ctx();
  /* the text is not NUL-terminated: a reader that runs past `size` is caught by ASan */
  char *json = malloc(size ? size : 1);
  if (!json) return 0;
  memcpy(json, data, size);
  lamp_model_config cfg;
  if (lamp_model_config_from_hf(ctx, json, size, &cfg) == LAMP_OK) {
    /* the required sizes are positive (consistency is lamp_model_create's to check) */
    FUZZ_CHECK(cfg.n_layers > 0 && cfg.n_embd > 0 && cfg.n_heads > 0 && cfg.n_ff > 0 &&
               cfg.n_vocab > 0 && cfg.n_kv_heads > 0);
    FUZZ_CHECK(lamp_model_arch_name(cfg.arch) != NULL);
  } else {
    fuzz_message();
  }
  free(json);
  return 0;
}
