/* lamp: generation with a key/value cache. A cache belongs to one sequence of one model and
 * keeps, for every layer, the keys (after RoPE) and values of the positions appended so far;
 * appending n rows runs the model on those n rows only (GEMMs on n rows, attention of n queries
 * against the cached positions), so a generation step costs one row's work, not the whole
 * sequence's.
 *
 * Rows are appended in order: soft-prompt embeddings (a (P, C) tensor such as
 * lamp_prompt_forward writes) and token ids, positions counting from 0 at the first row, as in
 * lamp_model_forward with a prompt. lamp_model_cache_truncate goes back to the first n
 * positions, so a prompt's keys and values are computed once and reused by every text
 * generated after it; lamp_model_forward_prefixed reuses them for whole scoring batches.
 *
 * Typical use:
 *   lamp_model_cache_create(model, 512, &cache);
 *   lamp_model_cache_append(cache, &prompt_rows, ids, n_ids, &logits);  prefill
 *   loop: choose a token from logits; lamp_model_cache_append(cache, NULL, &tok, 1, &logits);
 *   lamp_model_cache_truncate(cache, P);  the next text after the same prompt
 *
 * Synchronisation: append copies the token ids to the device before returning and enqueues the
 * rest; the logits are ready once the queue has run them (lamp_tensor_download waits). */
#ifndef LAMP_CACHE_H
#define LAMP_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "lamp/export.h"
#include "lamp/model.h"
#include "lamp/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lamp_model_cache lamp_model_cache;

/* An empty cache for up to `max_positions` positions (the model's context length is not
 * enforced, as elsewhere; for Phi-3 and Qwen2 more positions than their sliding_window are
 * LAMP_ERR_UNSUPPORTED, as for a workspace). Every architecture of lamp_model_arch runs, Gemma's included. The model
 * must outlive the cache. */
LAMP_API lamp_status lamp_model_cache_create(lamp_model *model, size_t max_positions,
                                             lamp_model_cache **out);

/* Waits for queued work and frees the cache. NULL is accepted. */
LAMP_API void lamp_model_cache_release(lamp_model_cache *cache);

/* Positions held. */
LAMP_API size_t lamp_model_cache_length(const lamp_model_cache *cache);

/* Bytes of device memory the cache takes (keys, values and scratch). */
LAMP_API size_t lamp_model_cache_bytes(const lamp_model_cache *cache);

/* Appends the rows of `rows` ((n, C) f32 embeddings on the device, NULL for none), then the
 * `count` token ids (ids in 0 .. V-1; NULL when count is 0), at least one row in all and no more
 * than the positions left. With `logits` non-NULL it receives a (1, V) view of the logits at
 * the last appended position, valid until the next append, truncate or release; NULL skips the
 * output head (a prefill whose next token is not wanted). On failure the cache holds what it
 * held before. */
LAMP_API lamp_status lamp_model_cache_append(lamp_model_cache *cache, const lamp_tensor *rows,
                                             const int32_t *ids, size_t count,
                                             lamp_tensor *logits);

/* Keeps the first `length` positions (at most the current length) and forgets the others. */
LAMP_API lamp_status lamp_model_cache_truncate(lamp_model_cache *cache, size_t length);

/* lamp_model_forward with the prompt's keys and values taken from `prefix` instead of computed:
 * only the token rows run through the blocks (P + B T rows become B T), which is what
 * classifying many batches after one trained prompt costs. `prefix` must hold exactly the P
 * prompt positions of the workspace's shape, appended from the prompt's rows
 * (lamp_model_cache_append(prefix, &prompt_rows, NULL, 0, NULL)), on the workspace's model;
 * the workspace's own prompt rows (lamp_model_prompt) are not read. Logits and losses agree
 * with lamp_model_forward's to rounding (the cache computes the prompt rows in other
 * products). A workspace without prompt rows or a cache of another model is
 * LAMP_ERR_INVALID_ARGUMENT, a cache of another length LAMP_ERR_SHAPE, each naming the
 * mismatch. lamp_model_backward after it is LAMP_ERR_UNSUPPORTED: the cache keeps no gradient
 * path to the prompt. The cache is only read, and may serve any number of workspaces. */
LAMP_API lamp_status lamp_model_forward_prefixed(lamp_model_workspace *ws,
                                                 const lamp_model_cache *prefix,
                                                 lamp_model_head head);

#ifdef __cplusplus
}
#endif

#endif
