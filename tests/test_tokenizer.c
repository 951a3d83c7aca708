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
#include "util/unicode.h"

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

/* Reads a reference file: tests/data/smollm2_tokenizer_ids.txt or spm_*_ids.txt. */
static ref_case *read_cases_from(const char *rel, size_t *n_cases) {
  char path[1024];
  source_path(path, sizeof(path), rel);
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

static ref_case *read_cases(size_t *n_cases) {
  return read_cases_from("data/smollm2_tokenizer_ids.txt", n_cases);
}

static void free_cases(ref_case *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(cases[i].text);
    free(cases[i].ids);
  }
  free(cases);
}

/* Encodes every case of `rel` with `flags`, compares with the reference ids, and decodes back
 * to the exact bytes where the reference does; `n_lossy` cases are marked lossy. */
static void check_cases_from(lamp_context *ctx, lamp_tokenizer *tok, const char *source,
                             const char *rel, unsigned flags, size_t n_lossy) {
  size_t n_cases;
  ref_case *cases = read_cases_from(rel, &n_cases);
  assert_true(n_cases >= 8);
  size_t lossy = 0;
  for (size_t k = 0; k < n_cases; k++) lossy += cases[k].lossy;
  assert_int_equal(lossy, n_lossy); /* only the cases written to be */
  for (size_t k = 0; k < n_cases; k++) {
    ref_case *c = &cases[k];
    size_t count = 0;
    LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, c->text, c->length, flags, NULL, 0,
                                               &count));
    int32_t *ids = malloc((count + 1) * sizeof(int32_t));
    assert_non_null(ids);
    LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, c->text, c->length, flags, ids, count,
                                               &count));
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

/* SmolLM2's reference: one lossy case, special tokens parsed. */
static void check_cases(lamp_context *ctx, lamp_tokenizer *tok, const char *source) {
  check_cases_from(ctx, tok, source, "data/smollm2_tokenizer_ids.txt",
                   LAMP_TOKENIZE_PARSE_SPECIAL, 1);
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

/* Llama 3's pre-tokenizer regex as a JSON string's body. */
#define LLAMA3_JSON_REGEX "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|" \
  "\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|" \
  "\\\\s+(?!\\\\S)|\\\\s+"

static void test_tokenizer_malformed(void **state) {
  lamp_context *ctx = *state;
  lamp_tokenizer *tok = NULL;
  struct { const char *model, *pre; int bad_merge, drop_byte; lamp_status st; const char *expect; }
  gg[] = {
      {"bert", NULL, 0, 0, LAMP_ERR_UNSUPPORTED, "model \"bert\""},
      {"gpt2", "chatglm-bpe", 0, 0, LAMP_ERR_UNSUPPORTED, "pre-tokenizer \"chatglm-bpe\""},
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
      {"{\"normalizer\": {\"type\": \"NFKC\"}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}, "
       "\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}", LAMP_ERR_UNSUPPORTED, "normalizers"},
      {"{\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Whitespace\"}, "
       "\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}", LAMP_ERR_UNSUPPORTED, "pre-tokenizer"},
      /* a Split whose regex is neither Llama 3's nor Qwen2's, and Llama 3's with a ByteLevel
       * that splits again */
      {"{\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": "
       "[{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\s+\"}, \"behavior\": \"Isolated\"}, "
       "{\"type\": \"ByteLevel\", \"use_regex\": false}]}, "
       "\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}", LAMP_ERR_UNSUPPORTED,
       "Llama 3's or Qwen2's"},
      {"{\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": "
       "[{\"type\": \"Split\", \"pattern\": {\"Regex\": \"" LLAMA3_JSON_REGEX "\"}, "
       "\"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\"}]}, "
       "\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}", LAMP_ERR_UNSUPPORTED,
       "Llama 3's or Qwen2's"},
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
  /* byte_fallback: only Llama 2's pipeline */
#define SPM_NORM "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", " \
  "\"prepend\": \"\u2581\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, " \
  "\"content\": \"\u2581\"}]}"
#define SPM_DEC(strip) "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", " \
  "\"pattern\": {\"String\": \"\u2581\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"}, " \
  "{\"type\": \"Fuse\"}" strip "]}"
#define SPM_STRIP ", {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}"
#define SPM_MODEL(fuse) "\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"fuse_unk\": " \
  fuse ", \"unk_token\": \"<unk>\", \"vocab\": {\"<unk>\": 0, \"\u2581\": 1, \"a\": 2, " \
  "\"\u2581a\": 3}, \"merges\": [\"\u2581 a\"]}"
  static const struct { const char *json; lamp_status st; const char *expect; } spm[] = {
      {"{\"normalizer\": null, \"pre_tokenizer\": null, \"decoder\": " SPM_DEC(SPM_STRIP) ", "
       SPM_MODEL("true") "}", LAMP_ERR_UNSUPPORTED, "only Llama 2's normalizer"},
      {"{\"normalizer\": " SPM_NORM ", \"pre_tokenizer\": {\"type\": \"Metaspace\"}, "
       "\"decoder\": " SPM_DEC(SPM_STRIP) ", " SPM_MODEL("true") "}", LAMP_ERR_UNSUPPORTED,
       "pre-tokenizer (such as Metaspace)"},
      {"{\"normalizer\": " SPM_NORM ", \"pre_tokenizer\": null, \"decoder\": " SPM_DEC("") ", "
       SPM_MODEL("true") "}", LAMP_ERR_UNSUPPORTED, "only Llama 2's decoder"},
      {"{\"normalizer\": " SPM_NORM ", \"pre_tokenizer\": null, \"decoder\": " SPM_DEC(SPM_STRIP)
       ", " SPM_MODEL("false") "}", LAMP_ERR_UNSUPPORTED, "without fuse_unk"},
  };
  for (size_t k = 0; k < sizeof(spm) / sizeof(spm[0]); k++) {
    lamp_status st = lamp_tokenizer_from_json(ctx, spm[k].json, strlen(spm[k].json), &tok);
    assert_null(tok);
    expect_tok_error(ctx, spm[k].st, spm[k].expect, st);
  }
  {
    /* and the same pipeline accepted: "▁a" by the one merge */
    static const char ok[] = "{\"normalizer\": " SPM_NORM ", \"pre_tokenizer\": null, "
                             "\"decoder\": " SPM_DEC(SPM_STRIP) ", " SPM_MODEL("true") "}";
    LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_from_json(ctx, ok, strlen(ok), &tok));
    expect_ids(ctx, tok, "a", 0, (const int32_t[]){3}, 1);
    expect_ids(ctx, tok, "b", 0, (const int32_t[]){1, 0}, 2); /* no byte tokens: unk */
    lamp_tokenizer_release(tok);
    tok = NULL;
  }
#undef SPM_NORM
#undef SPM_DEC
#undef SPM_STRIP
#undef SPM_MODEL
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

/* ---- SentencePiece ("llama") ---- */

/* The tokenizer of a GGUF file in tests/. */
static lamp_tokenizer *load_gguf_tokenizer(lamp_context *ctx, const char *rel) {
  char path[1024];
  source_path(path, sizeof(path), rel);
  lamp_gguf *g = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_gguf_open(ctx, path, &g));
  lamp_tokenizer *tok = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_from_gguf(ctx, g, &tok));
  lamp_gguf_release(g); /* the tokenizer keeps its own copy of everything */
  return tok;
}

static lamp_tokenizer *load_spm(lamp_context *ctx, const char *rel) {
  lamp_tokenizer *tok = load_gguf_tokenizer(ctx, rel);
  assert_int_equal(lamp_tokenizer_get_model(tok), LAMP_TOKENIZER_LLAMA);
  assert_int_equal(lamp_tokenizer_vocab_size(tok), 700);
  lamp_tokenizer_special sp = lamp_tokenizer_get_special(tok);
  assert_int_equal(sp.unk, 0);
  assert_int_equal(sp.bos, 1);
  assert_int_equal(sp.eos, 2);
  assert_int_equal(sp.pad, -1);
  return tok;
}

static void decode_is(lamp_context *ctx, lamp_tokenizer *tok, const int32_t *ids, size_t n,
                      unsigned flags, const char *want) {
  char text[256];
  size_t len;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_decode(ctx, tok, ids, n, flags, text, sizeof(text), &len));
  if (len != strlen(want) || memcmp(text, want, len) != 0)
    fail_msg("decoded \"%.*s\", expected \"%s\"", (int)len, text, want);
}

/* ids of `text` encoded with `flags`, into ids[64]; returns the count */
static size_t encode_into(lamp_context *ctx, lamp_tokenizer *tok, const char *text,
                          unsigned flags, int32_t *ids) {
  size_t count;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, text, strlen(text), flags, ids, 64,
                                             &count));
  return count;
}

/* Exact ids of sentencepiece 0.2.3 on three models trained by tests/gen_spm_ref.py (with and
 * without the dummy prefix, without byte fallback), written as GGUF the way convert_hf_to_gguf.py writes them; round
 * trips; BOS and special tokens around the text. */
static void test_tokenizer_spm_reference(void **state) {
  lamp_context *ctx = *state;
  lamp_tokenizer *tok = load_spm(ctx, "data/spm_tiny.gguf");
  /* sentencepiece parses no control tokens in the text: "<s>" is plain text to it */
  check_cases_from(ctx, tok, "spm_tiny.gguf", "data/spm_tiny_ids.txt", 0, 2);
  lamp_tokenizer *nop = load_spm(ctx, "data/spm_noprefix.gguf");
  check_cases_from(ctx, nop, "spm_noprefix.gguf", "data/spm_noprefix_ids.txt", 0, 2);
  /* without byte fallback: unknown characters become <unk> (decoded as "<unk>": lossy) */
  lamp_tokenizer *nob = load_spm(ctx, "data/spm_nobytes.gguf");
  check_cases_from(ctx, nob, "spm_nobytes.gguf", "data/spm_nobytes_ids.txt", 0, 102);
  lamp_tokenizer_release(nob);
  /* BOS first on request; the dummy prefix still goes before the text */
  int32_t a[64], b[64];
  size_t na = encode_into(ctx, tok, "Hello world", LAMP_TOKENIZE_ADD_BOS, a);
  size_t nb = encode_into(ctx, tok, "Hello world", 0, b);
  assert_int_equal(na, nb + 1);
  assert_int_equal(a[0], 1);
  assert_memory_equal(a + 1, b, nb * sizeof(int32_t));
  decode_is(ctx, tok, a, na, LAMP_DETOKENIZE_SKIP_SPECIAL, "Hello world");
  decode_is(ctx, tok, a, na, 0, "<s>Hello world");
  /* streaming, one id at a time after the first (as lamp generate prints): the same text */
  {
    char text[256];
    size_t total = 0, len;
    for (size_t i = 1; i < na; i++) {
      LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_decode(ctx, tok, a + i, 1,
                                                 i > 1 ? LAMP_DETOKENIZE_CONTINUE : 0,
                                                 text + total, sizeof(text) - total, &len));
      total += len;
    }
    assert_int_equal(total, 11);
    assert_memory_equal(text, "Hello world", 11);
  }
  /* control tokens parsed: each text piece after one gets the prefix, as llama.cpp does, and
   * decoding drops it again */
  na = encode_into(ctx, tok, "Hello</s>world", LAMP_TOKENIZE_PARSE_SPECIAL, a);
  nb = encode_into(ctx, tok, "Hello", 0, b);
  b[nb] = 2;
  nb += 1 + encode_into(ctx, tok, "world", 0, b + nb + 1);
  assert_int_equal(na, nb);
  assert_memory_equal(a, b, na * sizeof(int32_t));
  decode_is(ctx, tok, a, na, 0, "Hello</s>world");
  decode_is(ctx, tok, a, na, LAMP_DETOKENIZE_SKIP_SPECIAL, "Helloworld");
  /* without the prefix, nothing is added or dropped */
  na = encode_into(ctx, nop, " Hello", LAMP_TOKENIZE_ADD_BOS, a);
  decode_is(ctx, nop, a, na, LAMP_DETOKENIZE_SKIP_SPECIAL, " Hello");
  /* byte fallback: a character absent from the vocabulary is its UTF-8 bytes (<0xXX> is id
   * 3 + byte), and bytes that are not UTF-8 round-trip exactly */
  na = encode_into(ctx, nop, "\xE2\x98\x83", 0, a);
  assert_int_equal(na, 3);
  assert_int_equal(a[0], 3 + 0xE2);
  assert_int_equal(a[1], 3 + 0x98);
  assert_int_equal(a[2], 3 + 0x83);
  const char raw[] = "\xc3 abc \xe6\x97 end\x80\xbf";
  int32_t many[64];
  size_t count, len;
  char text[64];
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, raw, sizeof(raw) - 1, 0, many, 64, &count));
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_decode(ctx, tok, many, count, 0, text, sizeof(text), &len));
  assert_int_equal(len, sizeof(raw) - 1);
  assert_memory_equal(text, raw, len);
  /* vocabulary strings are stored as written: "▁" for the space */
  int32_t id;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_find(ctx, tok, "\xE2\x96\x81", 3, &id));
  const char *t;
  lamp_token_type type;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_token(ctx, tok, 3 + 'A', &t, &len, &type));
  assert_int_equal(type, LAMP_TOKEN_BYTE);
  assert_memory_equal(t, "<0x41>", 6);
  /* a long text (one piece of 300 kB, then a 100 000-letter word) encodes quickly and
   * round-trips */
  size_t n_cases, cap = 500000, n = 0;
  ref_case *cases = read_cases_from("data/spm_tiny_ids.txt", &n_cases);
  char *longtext = malloc(cap), *back = malloc(cap + 1);
  assert_true(longtext && back);
  while (n < 300000)
    for (size_t k = 0; k < n_cases; k++)
      if (!cases[k].lossy) {
        memcpy(longtext + n, cases[k].text, cases[k].length);
        n += cases[k].length;
      }
  memset(longtext + n, 'q', 100000);
  n += 100000;
  double t0 = now_seconds();
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, longtext, n, 0, NULL, 0, &count));
  int32_t *longids = malloc(count * sizeof(int32_t));
  assert_non_null(longids);
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, tok, longtext, n, 0, longids, count, &count));
  print_message("SentencePiece: encoded %zu bytes into %zu tokens twice in %.3f s\n", n, count,
                now_seconds() - t0);
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_decode(ctx, tok, longids, count, 0, back, cap + 1, &len));
  assert_int_equal(len, n);
  assert_memory_equal(back, longtext, n);
  free(longids);
  free(longtext);
  free(back);
  free_cases(cases, n_cases);
  lamp_tokenizer_release(tok);
  lamp_tokenizer_release(nop);
}

/* The same models as Hugging Face's converter writes Llama 2's tokenizer.json (byte_fallback,
 * merges by rank): exact ids of Hugging Face tokenizers 0.23.3, which matches the added tokens
 * in the text and puts the prefix after each of them, as lamp does for GGUF. */
static void test_tokenizer_spm_json_reference(void **state) {
  lamp_context *ctx = *state;
  static const struct { const char *json, *ids; size_t lossy; int prefix; } ref[] = {
      {"data/spm_tiny_tokenizer.json", "data/spm_tiny_json_ids.txt", 4, 1},
      {"data/spm_noprefix_tokenizer.json", "data/spm_noprefix_json_ids.txt", 2, 0},
  };
  for (size_t k = 0; k < sizeof(ref) / sizeof(ref[0]); k++) {
    char path[1024];
    source_path(path, sizeof(path), ref[k].json);
    lamp_tokenizer *tok = NULL;
    LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_from_json_file(ctx, path, &tok));
    assert_int_equal(lamp_tokenizer_get_model(tok), LAMP_TOKENIZER_LLAMA);
    assert_int_equal(lamp_tokenizer_vocab_size(tok), 700);
    lamp_tokenizer_special sp = lamp_tokenizer_get_special(tok);
    assert_int_equal(sp.unk, 0); /* the model's unk_token; bos and eos come from config.json */
    assert_int_equal(sp.bos, -1);
    check_cases_from(ctx, tok, ref[k].json, ref[k].ids, LAMP_TOKENIZE_PARSE_SPECIAL,
                     ref[k].lossy);
    /* the GGUF of the same model gives the same ids where no special token is in the text */
    lamp_tokenizer *gg = load_spm(ctx, ref[k].prefix ? "data/spm_tiny.gguf"
                                                     : "data/spm_noprefix.gguf");
    int32_t a[64], b[64];
    const char *text = "Caf\xC3\xA9 \xE2\x98\x83 and   spaces";
    size_t na = encode_into(ctx, tok, text, 0, a), nb = encode_into(ctx, gg, text, 0, b);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof(int32_t));
    lamp_tokenizer_release(gg);
    lamp_tokenizer_release(tok);
  }
}

/* A hand-checked SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens, a few pieces
 * with scores and a user-defined token. */
enum { SP_UNK, SP_BOS, SP_EOS, SP_BYTE0, SP_SPACE = SP_BYTE0 + 256, SP_A, SP_B, SP_SA, SP_AB,
       SP_AA, SP_USER, N_SP };

typedef enum spm_flaw {
  SPM_OK, SPM_NO_PREFIX, SPM_NO_SCORES, SPM_INT_SCORES, SPM_FEW_SCORES, SPM_BAD_BYTE,
  SPM_PREFIX_STRING, SPM_NO_BYTES, SPM_NAN_SCORE
} spm_flaw;

static void write_spm_gguf(ref_buf *file, spm_flaw flaw) {
  static char byte_tok[256][8];
  const char *tokens[N_SP];
  float scores[N_SP];
  int32_t types[N_SP];
  tokens[SP_UNK] = "<unk>";
  tokens[SP_BOS] = "<s>";
  tokens[SP_EOS] = "</s>";
  for (int b = 0; b < 256; b++) {
    snprintf(byte_tok[b], sizeof(byte_tok[b]), "<0x%02X>", b);
    tokens[SP_BYTE0 + b] = byte_tok[b];
  }
  if (flaw == SPM_BAD_BYTE) tokens[SP_BYTE0 + 7] = "<0xZ7>";
  tokens[SP_SPACE] = "\xE2\x96\x81";
  tokens[SP_A] = "a";
  tokens[SP_B] = "b";
  tokens[SP_SA] = "\xE2\x96\x81" "a";
  tokens[SP_AB] = "ab";
  tokens[SP_AA] = "aa";
  tokens[SP_USER] = "<u>";
  for (int i = 0; i < N_SP; i++) {
    scores[i] = 0;
    types[i] = i >= SP_BYTE0 && i < SP_SPACE ? (flaw == SPM_NO_BYTES ? 1 : 6) : 1;
  }
  types[SP_UNK] = 2;
  types[SP_BOS] = types[SP_EOS] = 3;
  types[SP_USER] = 4;
  scores[SP_SPACE] = -1;
  scores[SP_A] = -2;
  scores[SP_B] = -3;
  scores[SP_SA] = -4;
  scores[SP_AB] = -0.5f; /* merged before "▁a" */
  scores[SP_AA] = -6;
  if (flaw == SPM_NAN_SCORE) scores[SP_AA] = 0.0f / 0.0f;
  ref_gguf_writer w;
  ref_gguf_init(&w, 3, 32);
  ref_gguf_kv_str(&w, "tokenizer.ggml.model", "llama");
  ref_gguf_kv_str(&w, "tokenizer.ggml.pre", "default");
  ref_gguf_kv_str_array(&w, "tokenizer.ggml.tokens", tokens, N_SP);
  if (flaw == SPM_INT_SCORES) {
    ref_gguf_kv_i32_array(&w, "tokenizer.ggml.scores", types, N_SP);
  } else if (flaw != SPM_NO_SCORES) {
    size_t n = flaw == SPM_FEW_SCORES ? N_SP - 1 : N_SP;
    ref_gguf_key(&w, "tokenizer.ggml.scores", REF_GGUF_ARRAY);
    ref_buf_u32(&w.kv, REF_GGUF_FLOAT32);
    ref_buf_u64(&w.kv, n);
    for (size_t i = 0; i < n; i++) ref_buf_f32(&w.kv, scores[i]);
  }
  ref_gguf_kv_i32_array(&w, "tokenizer.ggml.token_type", types, N_SP);
  ref_gguf_kv_u32(&w, "tokenizer.ggml.bos_token_id", SP_BOS);
  ref_gguf_kv_u32(&w, "tokenizer.ggml.eos_token_id", SP_EOS);
  ref_gguf_kv_u32(&w, "tokenizer.ggml.unknown_token_id", SP_UNK);
  if (flaw == SPM_NO_PREFIX) ref_gguf_kv_bool(&w, "tokenizer.ggml.add_space_prefix", 0);
  if (flaw == SPM_PREFIX_STRING) ref_gguf_kv_str(&w, "tokenizer.ggml.add_space_prefix", "no");
  ref_gguf_finish(&w, file);
}

static lamp_status spm_toy(lamp_context *ctx, spm_flaw flaw, lamp_tokenizer **tok) {
  ref_buf file = {0};
  write_spm_gguf(&file, flaw);
  lamp_gguf *g = NULL;
  LAMP_OK_OR_FAIL(ctx, lamp_gguf_open_memory(ctx, file.data, file.size, &g));
  lamp_status st = lamp_tokenizer_from_gguf(ctx, g, tok);
  lamp_gguf_release(g);
  ref_buf_free(&file);
  return st;
}

static void test_tokenizer_spm_toy(void **state) {
  lamp_context *ctx = *state;
  lamp_tokenizer *tok = NULL, *nop = NULL, *nob = NULL;
  LAMP_OK_OR_FAIL(ctx, spm_toy(ctx, SPM_OK, &tok));
  LAMP_OK_OR_FAIL(ctx, spm_toy(ctx, SPM_NO_PREFIX, &nop));
  LAMP_OK_OR_FAIL(ctx, spm_toy(ctx, SPM_NO_BYTES, &nob));
  const unsigned P = LAMP_TOKENIZE_PARSE_SPECIAL;
  /* "▁ab": a+b (-0.5) beats ▁+a (-4); "▁ab" is no piece */
  expect_ids(ctx, tok, "ab", 0, (const int32_t[]){SP_SPACE, SP_AB}, 2);
  expect_ids(ctx, nop, "ab", 0, (const int32_t[]){SP_AB}, 1);
  expect_ids(ctx, tok, "a", 0, (const int32_t[]){SP_SA}, 1);
  /* equal scores: leftmost first */
  expect_ids(ctx, nop, "aaa", 0, (const int32_t[]){SP_AA, SP_A}, 2);
  /* spaces are "▁"; the prefix goes before the text only */
  expect_ids(ctx, tok, "a a", 0, (const int32_t[]){SP_SA, SP_SA}, 2);
  expect_ids(ctx, nop, " a", 0, (const int32_t[]){SP_SA}, 1);
  expect_ids(ctx, tok, "", 0, (const int32_t[]){-1}, 0);
  /* byte fallback, or unk where there are no byte tokens */
  expect_ids(ctx, nop, "\xC3\xA9" "b", 0, (const int32_t[]){SP_BYTE0 + 0xC3, SP_BYTE0 + 0xA9, SP_B},
             3);
  expect_ids(ctx, nob, "\xC3\xA9", 0, (const int32_t[]){SP_SPACE, SP_UNK}, 2);
  /* a run of unknown characters is one unk, as sentencepiece gives it */
  expect_ids(ctx, nob, "\xC3\xA9\xC3\xA9 b\xC3\xA9", 0,
             (const int32_t[]){SP_SPACE, SP_UNK, SP_SPACE, SP_B, SP_UNK}, 5);
  /* user-defined tokens always cut out, control ones when parsed; each piece after one gets
   * the prefix */
  expect_ids(ctx, tok, "a<u>b", 0, (const int32_t[]){SP_SA, SP_USER, SP_SPACE, SP_B}, 4);
  expect_ids(ctx, tok, "<s>a", P, (const int32_t[]){SP_BOS, SP_SA}, 2);
  expect_ids(ctx, tok, "a", LAMP_TOKENIZE_ADD_BOS, (const int32_t[]){SP_BOS, SP_SA}, 2);
  /* a continuation (a label word) gets no prefix: its own space is the "▁" */
  const unsigned C = LAMP_TOKENIZE_CONTINUE;
  expect_ids(ctx, tok, " a", C, (const int32_t[]){SP_SA}, 1);
  expect_ids(ctx, tok, "a", C, (const int32_t[]){SP_A}, 1);
  expect_ids(ctx, tok, "a<s>a", C | P, (const int32_t[]){SP_A, SP_BOS, SP_SA}, 3);
  decode_is(ctx, tok, (const int32_t[]){SP_SA}, 1, LAMP_DETOKENIZE_CONTINUE, " a");
  decode_is(ctx, tok, (const int32_t[]){SP_SA}, 1, 0, "a");
  decode_is(ctx, tok, (const int32_t[]){SP_SA, SP_USER, SP_SPACE, SP_B}, 4, 0, "a<u>b");
  decode_is(ctx, tok, (const int32_t[]){SP_BOS, SP_SA, SP_SA, SP_EOS}, 4,
            LAMP_DETOKENIZE_SKIP_SPECIAL, "a a");
  decode_is(ctx, nop, (const int32_t[]){SP_SA, SP_SA, SP_BYTE0 + 'Z'}, 3, 0, " a aZ");
  /* the decode buffer contract holds for byte tokens and "▁" */
  size_t len;
  char text[4];
  assert_int_equal(lamp_tokenizer_decode(ctx, tok, (const int32_t[]){SP_SA, SP_SA, SP_AB}, 3, 0,
                                         text, 4, &len), LAMP_ERR_INVALID_ARGUMENT);
  assert_int_equal(len, 5);
  lamp_tokenizer_release(tok);
  lamp_tokenizer_release(nop);
  lamp_tokenizer_release(nob);
  /* malformed entries name the key (or the token) */
  static const struct { spm_flaw flaw; const char *expect; } bad[] = {
      {SPM_NO_SCORES, "\"tokenizer.ggml.scores\" is missing"},
      {SPM_INT_SCORES, "\"tokenizer.ggml.scores\" is not an array of floats"},
      {SPM_FEW_SCORES, "\"tokenizer.ggml.scores\" has 265 scores for 266 tokens"},
      {SPM_NAN_SCORE, "score of token 264 is not a number"},
      {SPM_BAD_BYTE, "byte token 10 (\"<0xZ7>\")"},
      {SPM_PREFIX_STRING, "tokenizer.ggml.add_space_prefix"},
  };
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    lamp_tokenizer *t = NULL;
    expect_tok_error(ctx, LAMP_ERR_FORMAT, bad[k].expect, spm_toy(ctx, bad[k].flaw, &t));
    assert_null(t);
    assert_int_equal(spm_toy(NULL, bad[k].flaw, &t), LAMP_ERR_FORMAT); /* status only */
    assert_null(t);
  }
}

/* Exact ids of Hugging Face tokenizers 0.23.3 on two byte-level BPE models trained by
 * tests/gen_bpe_ref.py with Llama 3's and Qwen2's pre-tokenizers (Qwen2's with its NFC
 * normalizer), read from their tokenizer.json and from GGUF (tokenizer.ggml.pre "llama-bpe" and
 * "qwen2"). */
static void test_tokenizer_bpe_patterns(void **state) {
  lamp_context *ctx = *state;
  static const struct {
    const char *name;
    lamp_pretokenizer pre;
  } ref[] = {{"llama3", LAMP_PRETOKENIZER_LLAMA3}, {"qwen2", LAMP_PRETOKENIZER_QWEN2}};
  for (size_t k = 0; k < sizeof(ref) / sizeof(ref[0]); k++) {
    char rel[128], ids[128], path[1024];
    snprintf(ids, sizeof(ids), "data/bpe_%s_ids.txt", ref[k].name);
    snprintf(rel, sizeof(rel), "data/bpe_%s_tokenizer.json", ref[k].name);
    source_path(path, sizeof(path), rel);
    lamp_tokenizer *tok = NULL;
    LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_from_json_file(ctx, path, &tok));
    assert_int_equal(lamp_tokenizer_pretokenizer(tok), ref[k].pre);
    check_cases_from(ctx, tok, rel, ids, LAMP_TOKENIZE_PARSE_SPECIAL, 0);
    lamp_tokenizer_release(tok);
    snprintf(rel, sizeof(rel), "data/bpe_%s.gguf", ref[k].name);
    tok = load_gguf_tokenizer(ctx, rel);
    assert_int_equal(lamp_tokenizer_get_model(tok), LAMP_TOKENIZER_GPT2);
    assert_int_equal(lamp_tokenizer_pretokenizer(tok), ref[k].pre);
    check_cases_from(ctx, tok, rel, ids, LAMP_TOKENIZE_PARSE_SPECIAL, 0);
    lamp_tokenizer_release(tok);
  }
  /* Qwen2's tokenizer.json normalises to NFC, and so does lamp: tokenizers' ids on texts NFC
   * changes or could (marks out of order, Hangul jamo, singletons, an excluded composite); the
   * GGUF, without a normalizer (as llama.cpp reads it), encodes the text as it is */
  char path[1024];
  source_path(path, sizeof(path), "data/bpe_qwen2_tokenizer.json");
  lamp_tokenizer *json = NULL, *gg = load_gguf_tokenizer(ctx, "data/bpe_qwen2.gguf");
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_from_json_file(ctx, path, &json));
  check_cases_from(ctx, json, "qwen2 NFC", "data/bpe_qwen2_nfc_ids.txt", 0, 7);
  const char decomposed[] = "Cafe\xcc\x81", composed[] = "Caf\xc3\xa9";
  int32_t a[16], b[16];
  size_t na = 0, nb = 0;
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, gg, decomposed, 6, 0, a, 16, &na));
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, gg, composed, 5, 0, b, 16, &nb));
  assert_true(na != nb || memcmp(a, b, na * sizeof(int32_t)));
  LAMP_OK_OR_FAIL(ctx, lamp_tokenizer_encode(ctx, json, decomposed, 6, 0, a, 16, &na));
  assert_true(na == nb && memcmp(a, b, na * sizeof(int32_t)) == 0);
  lamp_tokenizer_release(json);
  lamp_tokenizer_release(gg);
}

/* lamp's NFC against Python's unicodedata.normalize on tests/data/nfc_cases.txt (written by
 * tests/gen_unicode_tables.py --nfc-cases from the same Unicode version as lamp's tables):
 * every code point NFC may change, alone and as its NFD, and random runs of them. Invalid UTF-8
 * bytes are kept and nothing composes across one. */
static void test_unicode_nfc(void **state) {
  (void)state;
  char path[1024];
  source_path(path, sizeof(path), "data/nfc_cases.txt");
  FILE *f = fopen(path, "r");
  if (!f) fail_msg("cannot open %s", path);
  char line[512];
  size_t cases = 0, changed = 0;
  while (fgets(line, sizeof(line), f)) {
    uint32_t in[32], want[32], got[32 * LAMP__UNICODE_NFD_MAX];
    size_t n = 0, m = 0;
    char *p = line, *end;
    int right = 0;
    for (;;) {
      while (*p == ' ') p++;
      if (*p == ';') {
        right = 1;
        p++;
        continue;
      }
      unsigned long v = strtoul(p, &end, 16);
      if (end == p) break;
      p = end;
      if (right) {
        assert_true(m < 32);
        want[m++] = (uint32_t)v;
      } else {
        assert_true(n < 32);
        in[n++] = (uint32_t)v;
      }
    }
    assert_true(right && n > 0);
    size_t k = lamp__unicode_nfc(in, n, got);
    if (k != m || memcmp(got, want, m * sizeof(uint32_t)))
      fail_msg("NFC of case %zu (%s) gives %zu code points, first U+%04X", cases, line, k,
               k ? (unsigned)got[0] : 0u);
    changed += k != n || memcmp(got, in, n * sizeof(uint32_t));
    cases++;
  }
  fclose(f);
  assert_true(cases > 4000 && changed > 2000);
  /* UTF-8: an invalid byte between a base and its mark stays, and blocks the composition */
  const unsigned char text[] = "e\xcc\x81 e\xff\xcc\x81";
  unsigned char *out = NULL;
  size_t len = 0;
  assert_int_equal(lamp__unicode_nfc_utf8(text, sizeof(text) - 1, &out, &len), 0);
  const unsigned char expect[] = "\xc3\xa9 e\xff\xcc\x81";
  assert_int_equal(len, sizeof(expect) - 1);
  assert_memory_equal(out, expect, len);
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tokenizer_json_reference),
      cmocka_unit_test(test_tokenizer_gguf_real_model),
      cmocka_unit_test(test_tokenizer_toy_vocabulary),
      cmocka_unit_test(test_tokenizer_buffers_and_bytes),
      cmocka_unit_test(test_tokenizer_long_text),
      cmocka_unit_test(test_tokenizer_malformed),
      cmocka_unit_test(test_tokenizer_spm_reference),
      cmocka_unit_test(test_tokenizer_spm_json_reference),
      cmocka_unit_test(test_tokenizer_spm_toy),
      cmocka_unit_test(test_tokenizer_bpe_patterns),
      cmocka_unit_test(test_unicode_nfc),
  };
  return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
