/* Byte-level BPE tokenizer: exact ids of SmolLM2-135M-Instruct's tokenizer on a committed list of
 * strings (tests/data/smollm2_tokenizer_ids.txt, written by Hugging Face `tokenizers` through
 * tests/gen_tokenizer_ref.py), from the committed tokenizer.json and, when the model has been
 * fetched, from the GGUF metadata; a small hand-checked vocabulary written as GGUF by the test;
 * round trips; buffer contracts; malformed inputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "ref_gguf.h"

static void source_path(char *out, size_t size, const char *rel) {
  const char *slash = strrchr(__FILE__, '/');
  int dir = slash ? (int)(slash - __FILE__) : 1;
  snprintf(out, size, "%.*s/%s", dir, slash ? __FILE__ : ".", rel);
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct ref_case {
  char *text;
  size_t length;
  int32_t *ids;
  size_t n_ids;
  int lossy; /* has bytes the vocabulary lacks, which encoding drops */
} ref_case;

static int hexval(int c) {
  return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* Reads tests/data/smollm2_tokenizer_ids.txt. */
static ref_case *read_cases(size_t *n_cases) {
  char path[1024];
  source_path(path, sizeof(path), "data/smollm2_tokenizer_ids.txt");
  FILE *f = fopen(path, "r");
  if (!f) fail_msg("cannot open %s", path);
  ref_case *cases = NULL;
  size_t n = 0;
  static char line[1 << 16];
  while (fgets(line, sizeof(line), f)) {
    char *tab = strchr(line, '\t');
    assert_non_null(tab);
    cases = realloc(cases, (n + 1) * sizeof(*cases));
    assert_non_null(cases);
    ref_case *c = &cases[n++];
    c->length = (size_t)(tab - line) / 2;
    c->text = malloc(c->length + 1);
    c->ids = malloc(sizeof(int32_t) * (strlen(tab) + 1));
    assert_true(c->text && c->ids);
    for (size_t i = 0; i < c->length; i++)
      c->text[i] = (char)(hexval(line[2 * i]) * 16 + hexval(line[2 * i + 1]));
    c->text[c->length] = '\0';
    c->n_ids = 0;
    char *p = tab + 1, *end;
    for (long v; (v = strtol(p, &end, 10)), end != p; p = end) c->ids[c->n_ids++] = (int32_t)v;
    c->lossy = strstr(p, "lossy") != NULL;
  }
  fclose(f);
  *n_cases = n;
  return cases;
}

static void free_cases(ref_case *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(cases[i].text);
    free(cases[i].ids);
  }
  free(cases);
}

/* Encodes every case, compares with the reference ids, and decodes back to the exact bytes. */
static void check_cases(lamp_context *ctx, lamp_tokenizer *tok, const char *source) {
  size_t n_cases;
  ref_case *cases = read_cases(&n_cases);
  assert_true(n_cases >= 30);
  size_t lossy = 0;
  for (size_t k = 0; k < n_cases; k++) lossy += cases[k].lossy;
  assert_int_equal(lossy, 1); /* only the case written to have them */
  for (size_t k = 0; k < n_cases; k++) {
    ref_case *c = &cases[k];
    size_t count = 0;
    LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, c->text, c->length,
                                               LAMP_TOKENIZE_PARSE_SPECIAL, NULL, 0, &count));
    int32_t *ids = malloc((count + 1) * sizeof(int32_t));
    assert_non_null(ids);
    LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, c->text, c->length,
                                               LAMP_TOKENIZE_PARSE_SPECIAL, ids, count, &count));
    int same = count == c->n_ids && memcmp(ids, c->ids, count * sizeof(int32_t)) == 0;
    if (!same) {
      char got[4096] = "", want[4096] = "";
      for (size_t i = 0; i < count && strlen(got) < 4000; i++)
        snprintf(got + strlen(got), sizeof(got) - strlen(got), " %d", ids[i]);
      for (size_t i = 0; i < c->n_ids && strlen(want) < 4000; i++)
        snprintf(want + strlen(want), sizeof(want) - strlen(want), " %d", c->ids[i]);
      fail_msg("%s, case %zu \"%.60s\": ids%s, reference%s", source, k, c->text, got, want);
    }
    size_t length = 0;
    LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_decode(ctx, tok, ids, count, 0, NULL, 0, &length));
    char *back = malloc(length + 1);
    assert_non_null(back);
    LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_decode(ctx, tok, ids, count, 0, back, length + 1, &length));
    if (!c->lossy && (length != c->length || memcmp(back, c->text, length) != 0))
      fail_msg("%s, case %zu: decode(encode(s)) != s (\"%.60s\")", source, k, back);
    assert_int_equal(back[length], '\0');
    free(back);
    free(ids);
  }
  free_cases(cases, n_cases);
}

static lamp_tokenizer *load_json_tokenizer(lamp_context *ctx) {
  char path[1024];
  source_path(path, sizeof(path), "data/smollm2_tokenizer.json");
  lamp_tokenizer *tok = NULL;
  lamp_status st = lamp_tokenizer_from_json_file(ctx, path, &tok);
  if (st != LAMP_OK) fail_msg("%s: %s: %s", path, lamp_status_name(st), lamp_context_error(ctx));
  return tok;
}

static void test_tokenizer_json_reference(void **state) {
  lamp_context *ctx = *state;
  lamp_tokenizer *tok = load_json_tokenizer(ctx);
  assert_int_equal(lamp_tokenizer_vocab_size(tok), 49152);
  assert_int_equal(lamp_tokenizer_pretokenizer(tok), LAMP_PRETOKENIZER_SMOLLM);
  check_cases(ctx, tok, "tokenizer.json");
  /* Special tokens are plain text when not parsed. */
  const char *chat = "<|im_start|>";
  int32_t ids[32];
  size_t count;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, chat, strlen(chat), LAMP_TOKENIZE_PARSE_SPECIAL,
                                             ids, 32, &count));
  assert_int_equal(count, 1);
  assert_int_equal(ids[0], 1);
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, chat, strlen(chat), 0, ids, 32, &count));
  assert_true(count > 1);
  for (size_t i = 0; i < count; i++) assert_true(ids[i] > 16);
  /* bytes without a token are dropped, as Hugging Face tokenizers 0.23.3 drops them: it
   * encodes "a\x04b" and "\x04" of this tokenizer.json as [81, 82] and [] */
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, "a\x04" "b", 3, 0, ids, 32, &count));
  assert_int_equal(count, 2);
  assert_int_equal(ids[0], 81);
  assert_int_equal(ids[1], 82);
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, "\x04", 1, 0, ids, 32, &count));
  assert_int_equal(count, 0);
  lamp_tokenizer_release(tok);
}

static void test_tokenizer_gguf_real_model(void **state) {
  lamp_context *ctx = *state;
  char path[1024];
  source_path(path, sizeof(path), "../models/SmolLM2-135M-Instruct.Q4_1.gguf");
  if (access(path, R_OK) != 0) {
    FIXTURE_NEED_FILE(path, "run scripts/fetch-model.sh");
  }
  lamp_gguf *g = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_gguf_open(ctx, path, &g));
  lamp_tokenizer *tok = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_from_gguf(ctx, g, &tok));
  lamp_gguf_release(g); /* the tokenizer keeps its own copy of everything */
  assert_int_equal(lamp_tokenizer_vocab_size(tok), 49152);
  assert_int_equal(lamp_tokenizer_pretokenizer(tok), LAMP_PRETOKENIZER_SMOLLM);
  lamp_tokenizer_special sp = lamp_tokenizer_get_special(tok);
  assert_int_equal(sp.bos, 1);
  assert_int_equal(sp.eos, 2);
  assert_int_equal(sp.pad, 2);
  assert_int_equal(sp.unk, 0);
  check_cases(ctx, tok, "GGUF");
  lamp_tokenizer_release(tok);
}

/* A hand-checked vocabulary: the 256 byte tokens (id = byte), a few merges, one control and
 * one user-defined token. */
enum { ID_HE = 256, ID_LL, ID_HELL, ID_HELLO, ID_SW, ID_OR, ID_SWOR, ID_12, ID_END, ID_USER, N_TOY };

static void write_toy_gguf(ref_buf *file, const char *model, const char *pre, int bad_merge,
                           int drop_byte) {
  static char byte_tok[256][4];
  const char *tokens[N_TOY];
  for (int b = 0; b < 256; b++) {
    /* GPT-2's byte-level alphabet, spelled out independently of the library */
    int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    int cp = b;
    if (!printable) {
      cp = 256;
      for (int k = 0; k < b; k++)
        if (!((k >= 33 && k <= 126) || (k >= 161 && k <= 172) || k >= 174)) cp++;
    }
    if (cp < 0x80) {
      byte_tok[b][0] = (char)cp;
      byte_tok[b][1] = 0;
    } else {
      byte_tok[b][0] = (char)(0xC0 | (cp >> 6));
      byte_tok[b][1] = (char)(0x80 | (cp & 0x3F));
      byte_tok[b][2] = 0;
    }
    tokens[b] = byte_tok[b];
  }
  if (drop_byte) tokens['z'] = "zz";
  tokens[ID_HE] = "he";
  tokens[ID_LL] = "ll";
  tokens[ID_HELL] = "hell";
  tokens[ID_HELLO] = "hello";
  tokens[ID_SW] = "\xC4\xA0w"; /* "Ġw": space then w */
  tokens[ID_OR] = "or";
  tokens[ID_SWOR] = "\xC4\xA0wor";
  tokens[ID_12] = "12";
  tokens[ID_END] = "<|end|>";
  tokens[ID_USER] = "<u>";
  int32_t types[N_TOY];
  for (int i = 0; i < N_TOY; i++) types[i] = 1;
  types[ID_END] = 3;
  types[ID_USER] = 4;
  const char *merges[] = {"h e", "l l", "he ll", "hell o", "\xC4\xA0 w", "o r",
                          "\xC4\xA0w or", "1 2", "q x"};
  ref_gguf_writer w;
  ref_gguf_init(&w, 3, 32);
  ref_gguf_kv_str(&w, "tokenizer.ggml.model", model);
  if (pre) ref_gguf_kv_str(&w, "tokenizer.ggml.pre", pre);
  ref_gguf_kv_str_array(&w, "tokenizer.ggml.tokens", tokens, N_TOY);
  ref_gguf_kv_i32_array(&w, "tokenizer.ggml.token_type", types, N_TOY);
  ref_gguf_kv_str_array(&w, "tokenizer.ggml.merges", merges, bad_merge ? 9 : 8);
  ref_gguf_kv_u32(&w, "tokenizer.ggml.bos_token_id", ID_END);
  ref_gguf_finish(&w, file);
}

static lamp_tokenizer *toy(lamp_context *ctx, const char *pre) {
  ref_buf file = {0};
  write_toy_gguf(&file, "gpt2", pre, 0, 0);
  lamp_gguf *g = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_gguf_open_memory(ctx, file.data, file.size, &g));
  lamp_tokenizer *tok = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_from_gguf(ctx, g, &tok));
  lamp_gguf_release(g);
  ref_buf_free(&file);
  return tok;
}

static void expect_ids(lamp_context *ctx, lamp_tokenizer *tok, const char *text, unsigned flags,
                       const int32_t *want, size_t n_want) {
  int32_t ids[64];
  size_t count;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, text, strlen(text), flags, ids, 64, &count));
  if (count != n_want || memcmp(ids, want, n_want * sizeof(int32_t)) != 0) {
    char got[512] = "";
    for (size_t i = 0; i < count; i++) snprintf(got + strlen(got), sizeof(got) - strlen(got), " %d", ids[i]);
    fail_msg("\"%s\": got%s", text, got);
  }
}

static void test_tokenizer_toy_vocabulary(void **state) {
  lamp_context *ctx = *state;
  lamp_tokenizer *gpt2 = toy(ctx, NULL), *smol = toy(ctx, "smollm");
  const unsigned P = LAMP_TOKENIZE_PARSE_SPECIAL;
  /* merges in rank order: h+e, l+l, he+ll, hell+o; " w"+"or" */
  expect_ids(ctx, gpt2, "hello world", P, (const int32_t[]){ID_HELLO, ID_SWOR, 'l', 'd'}, 4);
  /* equal ranks merge leftmost first */
  expect_ids(ctx, gpt2, "lll", P, (const int32_t[]){ID_LL, 'l'}, 2);
  /* digits: whole runs for GPT-2, one piece per digit for SmolLM */
  expect_ids(ctx, gpt2, "x12", P, (const int32_t[]){'x', ID_12}, 2);
  expect_ids(ctx, smol, "x12", P, (const int32_t[]){'x', '1', '2'}, 3);
  /* spaces: a run before a word leaves its last space to the word */
  expect_ids(ctx, gpt2, "a   wor", P, (const int32_t[]){'a', ' ', ' ', ID_SWOR}, 4);
  /* special tokens: control only when parsed, user-defined always */
  expect_ids(ctx, gpt2, "hello<|end|><u>", P, (const int32_t[]){ID_HELLO, ID_END, ID_USER}, 3);
  expect_ids(ctx, gpt2, "hello<|end|><u>", 0,
             (const int32_t[]){ID_HELLO, '<', '|', 'e', 'n', 'd', '|', '>', ID_USER}, 9);
  expect_ids(ctx, gpt2, "hello", P | LAMP_TOKENIZE_ADD_BOS, (const int32_t[]){ID_END, ID_HELLO}, 2);
  /* contractions */
  expect_ids(ctx, gpt2, "he's", P, (const int32_t[]){ID_HE, '\'', 's'}, 3);
  /* decoding skips control tokens on request */
  int32_t ids[] = {ID_HELLO, ID_END, ID_SWOR, ID_USER};
  char text[64];
  size_t len;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_decode(ctx, gpt2, ids, 4, 0, text, sizeof(text), &len));
  assert_string_equal(text, "hello<|end|> wor<u>");
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_decode(ctx, gpt2, ids, 4, LAMP_DETOKENIZE_SKIP_SPECIAL, text,
                                             sizeof(text), &len));
  assert_string_equal(text, "hello wor<u>");
  lamp_tokenizer_release(gpt2);
  lamp_tokenizer_release(smol);
  /* a byte without a token is dropped, as the references do */
  ref_buf file = {0};
  write_toy_gguf(&file, "gpt2", NULL, 0, 1);
  lamp_gguf *g = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_gguf_open_memory(ctx, file.data, file.size, &g));
  lamp_tokenizer *noz = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_from_gguf(ctx, g, &noz));
  expect_ids(ctx, noz, "aze", P, (const int32_t[]){'a', 'e'}, 2);
  lamp_tokenizer_release(noz);
  lamp_gguf_release(g);
  ref_buf_free(&file);
}

static void test_tokenizer_buffers_and_bytes(void **state) {
  lamp_context *ctx = *state;
  lamp_tokenizer *tok = load_json_tokenizer(ctx);
  const char *s = "Hello, world! How are you?";
  size_t count = 0;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, s, strlen(s), 0, NULL, 0, &count));
  assert_int_equal(count, 8);
  int32_t ids[8];
  assert_int_equal(lamp_tokenizer_encode(ctx, tok, s, strlen(s), 0, ids, 7, &count),
                   LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(count, 8);
  assert_non_null(strstr(lamp_context_error(ctx), "needs 8 ids"));
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, s, strlen(s), 0, ids, 8, &count));
  size_t len;
  char text[64];
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_decode(ctx, tok, ids, 8, 0, NULL, 0, &len));
  assert_int_equal(len, strlen(s));
  /* room for the bytes but not the NUL: fine, no terminator */
  memset(text, 'X', sizeof(text));
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_decode(ctx, tok, ids, 8, 0, text, len, &len));
  assert_memory_equal(text, s, len);
  assert_int_equal(text[len], 'X');
  assert_int_equal(lamp_tokenizer_decode(ctx, tok, ids, 8, 0, text, 5, &len),
                   LAMP_ERR_INVALID_ARGUMENT);
  int32_t bad[2] = {5, 49152};
  assert_int_equal(lamp_tokenizer_decode(ctx, tok, bad, 2, 0, text, sizeof(text), &len),
                   LAMP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(lamp_context_error(ctx), "49152"));
  /* a text of no ids into a buffer: LAMP_OK, count 0, the buffer untouched (the copy once
   * passed memcpy a NULL source, undefined behaviour that UBSan reports) */
  ids[0] = -7;
  count = 99;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, "", 0, 0, ids, 8, &count));
  assert_int_equal(count, 0);
  assert_int_equal(ids[0], -7);
  /* ADD_BOS needs a BOS id, which tokenizer.json does not carry */
  assert_int_equal(lamp_tokenizer_encode(ctx, tok, s, 1, LAMP_TOKENIZE_ADD_BOS, ids, 8, &count),
                   LAMP_ERR_INVALID_ARGUMENT);
  lamp_tokenizer_special sp = {1, 2, 2, -1};
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_set_special(ctx, tok, &sp));
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, "a", 1, LAMP_TOKENIZE_ADD_BOS, ids, 8, &count));
  assert_int_equal(ids[0], 1);
  sp.eos = 1 << 20;
  assert_int_equal(lamp_tokenizer_set_special(ctx, tok, &sp), LAMP_ERR_INVALID_ARGUMENT);
  /* Bytes that are not UTF-8, and cuts through characters, still round-trip exactly. */
  const char raw[] = "\xc3 abc \xe6\x97 end\x80\xbf";
  int32_t many[64];
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, raw, sizeof(raw) - 1, 0, many, 64, &count));
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_decode(ctx, tok, many, count, 0, text, sizeof(text), &len));
  assert_int_equal(len, sizeof(raw) - 1);
  assert_memory_equal(text, raw, len);
  /* vocabulary lookups */
  const char *t;
  lamp_token_type type;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_token(ctx, tok, 2, &t, &len, &type));
  assert_int_equal(type, LAMP_TOKEN_CONTROL);
  assert_memory_equal(t, "<|im_end|>", len);
  int32_t id;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_find(ctx, tok, "<|im_end|>", 10, &id));
  assert_int_equal(id, 2);
  assert_int_equal(lamp_tokenizer_find(ctx, tok, "no such token", 13, &id), LAMP_ERR_NOT_FOUND);
  lamp_tokenizer_release(tok);
}

/* A long text encodes quickly and round-trips (BPE is driven by a priority queue). */
static void test_tokenizer_long_text(void **state) {
  lamp_context *ctx = *state;
  lamp_tokenizer *tok = load_json_tokenizer(ctx);
  size_t n_cases;
  ref_case *cases = read_cases(&n_cases);
  size_t cap = 1 << 20, n = 0;
  char *text = malloc(cap);
  assert_non_null(text);
  for (size_t rep = 0; n < cap / 2; rep++)
    for (size_t k = 0; k < n_cases && n + cases[k].length < cap; k++) {
      if (cases[k].lossy) continue;
      memcpy(text + n, cases[k].text, cases[k].length);
      n += cases[k].length;
    }
  /* and one 100 000-letter word */
  memset(text + n, 'q', 100000);
  n += 100000;
  double t0 = now_seconds();
  size_t count;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, text, n, LAMP_TOKENIZE_PARSE_SPECIAL, NULL, 0,
                                             &count));
  int32_t *ids = malloc(count * sizeof(int32_t));
  char *back = malloc(n + 1);
  assert_true(ids && back);
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, text, n, LAMP_TOKENIZE_PARSE_SPECIAL, ids,
                                             count, &count));
  double t1 = now_seconds();
  size_t len;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_decode(ctx, tok, ids, count, 0, back, n + 1, &len));
  assert_int_equal(len, n);
  assert_memory_equal(back, text, n);
  print_message("encoded %zu bytes into %zu tokens twice in %.3f s\n", n, count, t1 - t0);
  free(ids);
  free(back);
  free(text);
  free_cases(cases, n_cases);
  lamp_tokenizer_release(tok);
}

static void expect_tok_error(lamp_context *ctx, lamp_status want, const char *expect,
                             lamp_status got) {
  const char *err = lamp_context_error(ctx);
  if (got != want)
    fail_msg("expected %s, got %s (%s)", lamp_status_name(want), lamp_status_name(got), err);
  if (!strstr(err, expect)) fail_msg("message \"%s\" lacks \"%s\"", err, expect);
}

static void test_tokenizer_malformed(void **state) {
  lamp_context *ctx = *state;
  lamp_tokenizer *tok = NULL;
  struct { const char *model, *pre; int bad_merge, drop_byte; lamp_status st; const char *expect; }
  gg[] = {
      {"llama", NULL, 0, 0, LAMP_ERR_UNSUPPORTED, "model \"llama\""},
      {"gpt2", "qwen2", 0, 0, LAMP_ERR_UNSUPPORTED, "pre-tokenizer \"qwen2\""},
      {"gpt2", NULL, 1, 0, LAMP_ERR_FORMAT, "merge 8 (\"q\" \"x\"): the result"},
  };
  for (size_t k = 0; k < sizeof(gg) / sizeof(gg[0]); k++) {
    ref_buf file = {0};
    write_toy_gguf(&file, gg[k].model, gg[k].pre, gg[k].bad_merge, gg[k].drop_byte);
    lamp_gguf *g = NULL;
    LAMP_OK_OR_FAIL(ctx, lamp_gguf_open_memory(ctx, file.data, file.size, &g));
    lamp_status st = lamp_tokenizer_from_gguf(ctx, g, &tok);
    assert_null(tok);
    expect_tok_error(ctx, gg[k].st, gg[k].expect, st);
    assert_int_equal(lamp_tokenizer_from_gguf(NULL, g, &tok), gg[k].st); /* status only */
    assert_null(tok);
    lamp_gguf_release(g);
    ref_buf_free(&file);
  }
  /* A GGUF without tokenizer keys. */
  {
    ref_gguf_writer w;
    ref_buf file = {0};
    ref_gguf_init(&w, 3, 32);
    ref_gguf_kv_str(&w, "tokenizer.ggml.model", "gpt2");
    ref_gguf_finish(&w, &file);
    lamp_gguf *g = NULL;
    LAMP_OK_OR_FAIL(ctx, lamp_gguf_open_memory(ctx, file.data, file.size, &g));
    expect_tok_error(ctx, LAMP_ERR_FORMAT, "tokenizer.ggml.tokens",
                     lamp_tokenizer_from_gguf(ctx, g, &tok));
    lamp_gguf_release(g);
    ref_buf_free(&file);
  }
  /* tokenizer.json: broken JSON and unsupported pipelines. */
  static const struct { const char *json; lamp_status st; const char *expect; } js[] = {
      {"", LAMP_ERR_FORMAT, "unexpected end"},
      {"{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []", LAMP_ERR_FORMAT, "expected ','"},
      {"{\"model\": 5}", LAMP_ERR_FORMAT, "no \"model\""},
      {"{\"a\": \"\\q\"}", LAMP_ERR_FORMAT, "unknown escape"},
      {"{\"a\": \"\\ud800\"}", LAMP_ERR_FORMAT, "surrogate"},
      {"{\"a\": 01}", LAMP_ERR_FORMAT, "expected ','"},
      {"{\"a\": [1,]}", LAMP_ERR_FORMAT, "bad number"},
      {"{\"a\": tru}", LAMP_ERR_FORMAT, "unexpected character"},
      {"[] []", LAMP_ERR_FORMAT, "text after"},
      {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}, \"merges\": []}}", LAMP_ERR_UNSUPPORTED,
       "not BPE"},
      {"{\"normalizer\": {\"type\": \"NFC\"}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}, "
       "\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}", LAMP_ERR_UNSUPPORTED, "normalizers"},
      {"{\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Whitespace\"}, "
       "\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}", LAMP_ERR_UNSUPPORTED, "pre-tokenizer"},
      {"{\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}, "
       "\"model\": {\"vocab\": {\"a\": -3}, \"merges\": []}}", LAMP_ERR_FORMAT, "\"a\" has no valid id"},
      {"{\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}, "
       "\"model\": {\"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}", LAMP_ERR_FORMAT,
       "merge 0 (\"a\" \"b\"): the right part"},
  };
  for (size_t k = 0; k < sizeof(js) / sizeof(js[0]); k++) {
    lamp_status st = lamp_tokenizer_from_json(ctx, js[k].json, strlen(js[k].json), &tok);
    assert_null(tok);
    expect_tok_error(ctx, js[k].st, js[k].expect, st);
  }
  /* deep nesting is refused, not recursed into */
  char deep[4001];
  memset(deep, '[', 4000);
  deep[4000] = 0;
  expect_tok_error(ctx, LAMP_ERR_FORMAT, "nesting",
                   lamp_tokenizer_from_json(ctx, deep, 4000, &tok));
  /* the real tokenizer.json cut at many points: always a clean error */
  char path[1024];
  source_path(path, sizeof(path), "data/smollm2_tokenizer.json");
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *json = malloc((size_t)size);
  assert_non_null(json);
  assert_int_equal(fread(json, 1, (size_t)size, f), (size_t)size);
  fclose(f);
  for (long cut = 0; cut < size; cut += size / 37 + 1) {
    char *copy = malloc((size_t)cut + 1);
    assert_non_null(copy);
    memcpy(copy, json, (size_t)cut);
    assert_int_equal(lamp_tokenizer_from_json(ctx, copy, (size_t)cut, &tok), LAMP_ERR_FORMAT);
    assert_true(lamp_context_error(ctx)[0] != '\0');
    free(copy);
  }
  free(json);
  expect_tok_error(ctx, LAMP_ERR_IO, "/nonexistent.json",
                   lamp_tokenizer_from_json_file(ctx, "/nonexistent.json", &tok));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tokenizer_json_reference),
      cmocka_unit_test(test_tokenizer_gguf_real_model),
      cmocka_unit_test(test_tokenizer_toy_vocabulary),
      cmocka_unit_test(test_tokenizer_buffers_and_bytes),
      cmocka_unit_test(test_tokenizer_long_text),
      cmocka_unit_test(test_tokenizer_malformed),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
