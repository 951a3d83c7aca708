/* The real model, SmolLM2-135M-Instruct (models/, fetched by scripts/fetch-model.sh; skipped
 * when absent), against tests/data/model_ref_smollm2.txt, which tests/gen_model_ref.py wrote
 * with implementations independent of lamp (gguf-py's dequantiser, Hugging Face transformers in
 * float64, Hugging Face tokenizers): the tokenizer's ids of three prompts, the five largest
 * logits at each prompt's last position, and the greedy continuation of each prompt, computed
 * as lamp generate does (a full forward over the growing sequences at every step, the three
 * prompts in one padded batch).
 *
 * Tolerance: lamp computes in float32 with another accumulation order than the float64
 * reference, so a logit may differ by LOGIT_TOL relative to the largest logit magnitude of its
 * row (1e-4; about 1e-6 measured on PoCL); top-5 ids must be equal, in order wherever the
 * reference's logits are further apart than that tolerance; greedy tokens must be equal (the
 * reference's margins are >= 0.05, far above the tolerance). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "lamp/gguf.h"
#include "lamp/model.h"
#include "lamp/tokenizer.h"

#define LOGIT_TOL 1e-4
enum { CASES = 3, STEPS = 8, TOPK = 5, MAX_IDS = 64 };

typedef struct ref_case {
  char prompt[512];
  size_t n_ids;
  int32_t ids[MAX_IDS];
  int32_t top_id[TOPK];
  double top_logit[TOPK];
  int32_t step_id[STEPS];
  double step_logit[STEPS], step_margin[STEPS];
} ref_case;

static void source_path(char *out, size_t size, const char *rel) {
  const char *slash = strrchr(__FILE__, '/');
  int dir = slash ? (int)(slash - __FILE__) : 1;
  snprintf(out, size, "%.*s/%s", dir, slash ? __FILE__ : ".", rel);
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Reads the reference file; every case must have every record. */
static void read_reference(ref_case *cases) {
  char path[1024];
  source_path(path, sizeof(path), "data/model_ref_smollm2.txt");
  FILE *f = fopen(path, "r");
  if (!f) fail_msg("cannot open %s", path);
  memset(cases, 0, CASES * sizeof(*cases));
  int seen[CASES][3 + STEPS] = {{0}};
  static char line[8192];
  while (fgets(line, sizeof(line), f)) {
    if (line[0] == '#' || line[0] == '\n') continue;
    char kind[16];
    int c = -1, used = 0;
    if (sscanf(line, "%15s %d %n", kind, &c, &used) != 2 || c < 0 || c >= CASES)
      fail_msg("%s: bad line: %s", path, line);
    ref_case *rc = &cases[c];
    const char *rest = line + used;
    if (!strcmp(kind, "prompt")) {
      size_t n = 0;
      for (; hex_value(rest[0]) >= 0 && hex_value(rest[1]) >= 0; rest += 2) {
        assert_true(n + 1 < sizeof(rc->prompt));
        rc->prompt[n++] = (char)(hex_value(rest[0]) * 16 + hex_value(rest[1]));
      }
      seen[c][0] = 1;
    } else if (!strcmp(kind, "ids")) {
      char *end;
      rc->n_ids = strtoul(rest, &end, 10);
      assert_true(rc->n_ids > 0 && rc->n_ids <= MAX_IDS);
      for (size_t i = 0; i < rc->n_ids; i++) rc->ids[i] = (int32_t)strtol(end, &end, 10);
      seen[c][1] = 1;
    } else if (!strcmp(kind, "top5")) {
      char *end = (char *)rest;
      for (int k = 0; k < TOPK; k++) {
        rc->top_id[k] = (int32_t)strtol(end, &end, 10);
        rc->top_logit[k] = strtod(end, &end);
      }
      seen[c][2] = 1;
    } else if (!strcmp(kind, "step")) {
      int k = -1, id = -1;
      double logit, margin;
      if (sscanf(rest, "%d %d %lf %lf", &k, &id, &logit, &margin) != 4 || k < 0 || k >= STEPS)
        fail_msg("%s: bad step line: %s", path, line);
      rc->step_id[k] = id, rc->step_logit[k] = logit, rc->step_margin[k] = margin;
      seen[c][3 + k] = 1;
    } else {
      fail_msg("%s: unknown record '%s'", path, kind);
    }
  }
  fclose(f);
  for (int c = 0; c < CASES; c++)
    for (int r = 0; r < 3 + STEPS; r++)
      if (!seen[c][r]) fail_msg("%s: case %d lacks record %d", path, c, r);
}

/* Largest logits first; ties broken by the lower id, as the reference's stable sort. */
static void top_k(const float *z, size_t n, int32_t *ids, int k) {
  for (int j = 0; j < k; j++) ids[j] = -1;
  for (size_t i = 0; i < n; i++) {
    int j = k;
    while (j > 0 && (ids[j - 1] < 0 || z[i] > z[ids[j - 1]])) j--;
    if (j == k) continue;
    memmove(ids + j + 1, ids + j, (size_t)(k - 1 - j) * sizeof(*ids));
    ids[j] = (int32_t)i;
  }
}

static double row_scale(const float *z, size_t n) {
  double m = 1.0;
  for (size_t i = 0; i < n; i++)
    if (fabs(z[i]) > m) m = fabs(z[i]);
  return m;
}

/* Top-5 ids and logits at the prompt's last position against the reference. Returns the
 * largest error relative to the row's scale. */
static double check_top5(const ref_case *rc, int c, const float *z, size_t V) {
  int32_t got[TOPK];
  top_k(z, V, got, TOPK);
  double scale = row_scale(z, V), worst = 0;
  for (int k = 0; k < TOPK; k++) {
    int32_t want = rc->top_id[k];
    double err = fabs(z[want] - rc->top_logit[k]) / scale;
    if (err > worst) worst = err;
    if (!(err <= LOGIT_TOL))
      fail_msg("case %d: logit of token %d is %.6f, reference %.6f (error %.2e of the row's "
               "scale %.2f)", c, want, z[want], rc->top_logit[k], err, scale);
    /* ids in order, except between reference logits closer than the tolerance */
    if (got[k] != want) {
      int near_tie = 0;
      for (int j = 0; j < TOPK; j++)
        if (rc->top_id[j] == got[k] &&
            fabs(rc->top_logit[j] - rc->top_logit[k]) <= 2 * LOGIT_TOL * scale)
          near_tie = 1;
      if (!near_tie)
        fail_msg("case %d: top-%d token is %d (logit %.6f), reference %d (%.6f)", c, k + 1,
                 got[k], z[got[k]], want, rc->top_logit[k]);
    }
  }
  /* nothing outside the reference's top five may score above its fifth */
  for (int k = 0; k < TOPK; k++) {
    int in_ref = 0;
    for (int j = 0; j < TOPK; j++) in_ref |= got[k] == rc->top_id[j];
    if (!in_ref) fail_msg("case %d: token %d (logit %.6f) is in lamp's top 5, not the "
                          "reference's", c, got[k], z[got[k]]);
  }
  return worst;
}

static void test_real_model(void **state) {
  lamp_context *ctx = *state;
  char path[1024];
  source_path(path, sizeof(path), "../models/SmolLM2-135M-Instruct.Q4_1.gguf");
  if (access(path, R_OK) != 0) {
    FIXTURE_NEED_FILE(path, "run scripts/fetch-model.sh");
  }
  ref_case cases[CASES];
  read_reference(cases);

  lamp_gguf *g = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_gguf_open(ctx, path, &g));
  lamp_tokenizer *tok = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_from_gguf(ctx, g, &tok));
  lamp_model *model = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_create_gguf(ctx, g, &model));
  lamp_gguf_release(g);
  lamp_model_config cfg;
  LAMP_OK_OR_FAIL(ctx, lamp_model_get_config(model, &cfg));
  const size_t V = cfg.n_vocab;

  /* the tokenizer against Hugging Face tokenizers */
  size_t longest = 0;
  for (int c = 0; c < CASES; c++) {
    int32_t ids[MAX_IDS];
    size_t n = 0;
    const ref_case *rc = &cases[c];
    LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, rc->prompt, strlen(rc->prompt),
                                               LAMP_TOKENIZE_PARSE_SPECIAL, ids, MAX_IDS, &n));
    assert_int_equal(n, rc->n_ids);
    for (size_t i = 0; i < n; i++)
      if (ids[i] != rc->ids[i])
        fail_msg("case %d: token %zu is %d, reference %d", c, i, ids[i], rc->ids[i]);
    if (n > longest) longest = n;
  }

  /* the three prompts in one padded batch, the reference's tokens appended step by step */
  const size_t T = longest + STEPS - 1;
  lamp_model_shape shape = {CASES, T, 0, CASES, 0, 0};
  lamp_model_workspace *ws = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_model_workspace_create(model, &shape, &ws));
  int32_t *ids = calloc(CASES * T, sizeof(int32_t));
  float *z = malloc(CASES * V * sizeof(float));
  assert_non_null(ids);
  assert_non_null(z);
  size_t lengths[CASES], seq[CASES], pos[CASES];
  int32_t generated[CASES][STEPS];
  for (int c = 0; c < CASES; c++) {
    memcpy(ids + c * T, cases[c].ids, cases[c].n_ids * sizeof(int32_t));
    lengths[c] = cases[c].n_ids;
    seq[c] = (size_t)c;
  }
  double worst_top = 0, worst_step = 0;
  for (int k = 0; k < STEPS; k++) {
    for (int c = 0; c < CASES; c++) pos[c] = lengths[c] - 1;
    LAMP_OK_OR_FAIL(ctx, lamp_model_set_tokens(ws, CASES, T, ids, lengths));
    LAMP_OK_OR_FAIL(ctx, lamp_model_set_outputs(ws, CASES, seq, pos, NULL));
    LAMP_OK_OR_FAIL(ctx, lamp_model_forward(ws, LAMP_MODEL_HEAD_VOCAB));
    lamp_tensor lt;
    LAMP_OK_OR_FAIL(ctx, lamp_model_logits(ws, &lt));
    assert_int_equal(lamp_tensor_numel(&lt), CASES * V);
    LAMP_OK_OR_FAIL(ctx, lamp_tensor_download(ctx, &lt, z, CASES * V * sizeof(float)));
    for (int c = 0; c < CASES; c++) {
      const ref_case *rc = &cases[c];
      const float *zc = z + c * V;
      if (k == 0) {
        double e = check_top5(rc, c, zc, V);
        if (e > worst_top) worst_top = e;
      }
      int32_t best;
      top_k(zc, V, &best, 1);
      double scale = row_scale(zc, V);
      double e = fabs(zc[rc->step_id[k]] - rc->step_logit[k]) / scale;
      if (e > worst_step) worst_step = e;
      if (best != rc->step_id[k])
        fail_msg("case %d, greedy step %d: token %d (logit %.6f), reference %d (%.6f, margin "
                 "%.4f)", c, k, best, zc[best], rc->step_id[k], rc->step_logit[k],
                 rc->step_margin[k]);
      if (e > LOGIT_TOL)
        fail_msg("case %d, greedy step %d: logit %.6f, reference %.6f", c, k,
                 zc[rc->step_id[k]], rc->step_logit[k]);
      generated[c][k] = best;
      if (k + 1 < STEPS) ids[c * T + lengths[c]++] = best;
    }
  }
  print_message("top-5 logits: largest error %.2e, greedy logits: %.2e (relative to the row's "
                "largest |logit|; tolerance %.0e)\n", worst_top, worst_step, LOGIT_TOL);

  /* the continuation decodes to the reference's text for people reading the log */
  for (int c = 0; c < CASES; c++) {
    char text[256];
    size_t n = 0;
    LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_decode(ctx, tok, generated[c], STEPS, 0, text,
                                               sizeof(text), &n));
    print_message("case %d continues: \"%s\"\n", c, text);
  }
  free(ids), free(z);
  lamp_model_workspace_release(ws);
  lamp_model_release(model);
  lamp_tokenizer_release(tok);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_real_model),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
