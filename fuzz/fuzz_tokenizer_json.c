/* tokenizer.json: lamp_tokenizer_from_json on the input, then the accessors, special ids, and
 * encode/decode round trips of texts with every flag, with the buffer contracts (count only,
 * exact, too small). Input: the JSON, optionally followed by the 4 bytes "\0TXT" and a text to
 * encode (without them a fixed text is used). When every byte has a token of its own, decoding
 * must give back exactly the bytes encoded (tokenizer.h's promise), or their NFC (a tokenizer
 * with Qwen2's NFC normalizer). */
#include "fuzz_common.h"
#include "util/unicode.h"

static const char fixed_text[] =
    "Hello world! 12345 caf\xc3\xa9 <|im_start|>user\nhi<|im_end|>\n\xff\xfe\x80  \t x\r\n";

/* 1 when every byte has a normal token of its own (GPT-2's byte-level alphabet; SentencePiece:
 * a byte token). */
static int has_every_byte(lamp_tokenizer *tok) {
  if (lamp_tokenizer_get_model(tok) == LAMP_TOKENIZER_LLAMA) return fuzz_spm_has_every_byte(tok);
  int n = 0;
  for (int b = 0; b < 256; b++) {
    int self = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
    unsigned cp = self ? (unsigned)b : 0x100u + (unsigned)n++;
    char s[2];
    size_t len = 1;
    if (cp < 0x80) {
      s[0] = (char)cp;
    } else {
      s[0] = (char)(0xc0 | (cp >> 6));
      s[1] = (char)(0x80 | (cp & 0x3f));
      len = 2;
    }
    int32_t id;
    lamp_token_type type;
    const char *text;
    size_t tl;
    if (lamp_tokenizer_find(NULL, tok, s, len, &id) != LAMP_OK ||
        lamp_tokenizer_token(NULL, tok, id, &text, &tl, &type) != LAMP_OK ||
        type != LAMP_TOKEN_NORMAL)
      return 0;
  }
  return 1;
}

static void round_trip(lamp_context *ctx, lamp_tokenizer *tok, const char *text, size_t len,
                       unsigned flags, int full) {
  size_t count = 0;
  lamp_status st = lamp_tokenizer_encode(ctx, tok, text, len, flags, NULL, 0, &count);
  if (st != LAMP_OK) {
    fuzz_message();
    return;
  }
  int32_t *ids = malloc((count + 1) * sizeof(int32_t));
  if (!ids) return;
  size_t again = 0;
  st = lamp_tokenizer_encode(ctx, tok, text, len, flags, ids, count, &again);
  FUZZ_CHECK(st == LAMP_OK && again == count);
  if (count) {
    /* one id short: refused, with the count still given */
    st = lamp_tokenizer_encode(ctx, tok, text, len, flags, ids, count - 1, &again);
    FUZZ_CHECK(st == LAMP_ERR_INVALID_ARGUMENT && again == count);
    fuzz_message();
    st = lamp_tokenizer_encode(ctx, tok, text, len, flags, ids, count, &again);
    FUZZ_CHECK(st == LAMP_OK);
  }
  size_t vocab = lamp_tokenizer_vocab_size(tok);
  for (size_t i = 0; i < count; i++) FUZZ_CHECK(ids[i] >= 0 && (size_t)ids[i] < vocab);
  /* a continuation decodes as one */
  unsigned cont = (flags & LAMP_TOKENIZE_CONTINUE) ? LAMP_DETOKENIZE_CONTINUE : 0;
  for (unsigned dflags = cont; dflags < cont + 2; dflags++) {
    size_t length = 0;
    st = lamp_tokenizer_decode(ctx, tok, ids, count, dflags, NULL, 0, &length);
    FUZZ_CHECK(st == LAMP_OK);
    char *back = malloc(length + 1);
    if (!back) break;
    size_t got = 0;
    st = lamp_tokenizer_decode(ctx, tok, ids, count, dflags, back, length + 1, &got);
    FUZZ_CHECK(st == LAMP_OK && got == length && back[length] == '\0');
    if (full && dflags == cont) {
      size_t skip = (flags & LAMP_TOKENIZE_ADD_BOS) ? 1 : 0; /* the BOS id decodes too */
      size_t blen = 0;
      if (skip) {
        st = lamp_tokenizer_decode(ctx, tok, ids, 1, 0, NULL, 0, &blen);
        FUZZ_CHECK(st == LAMP_OK);
      }
      int same = length == blen + len && !memcmp(back + blen, text, len);
      unsigned char *nfc = NULL;
      size_t nfc_len = 0;
      if (!same && !lamp__unicode_nfc_utf8((const unsigned char *)text, len, &nfc, &nfc_len))
        same = length == blen + nfc_len && !memcmp(back + blen, nfc, nfc_len);
      free(nfc);
      FUZZ_CHECK(same);
    }
    if (length) {
      /* exactly the bytes without room for the NUL, then one byte short */
      st = lamp_tokenizer_decode(ctx, tok, ids, count, dflags, back, length, &got);
      FUZZ_CHECK(st == LAMP_OK && got == length);
      st = lamp_tokenizer_decode(ctx, tok, ids, count, dflags, back, length - 1, &got);
      FUZZ_CHECK(st == LAMP_ERR_INVALID_ARGUMENT && got == length);
      fuzz_message();
    }
    free(back);
  }
  free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lamp_context *ctx = fuzz_ctx();
  char *json, *text;
  size_t json_len, text_len;
  fuzz_split(data, size, "\0TXT", 4, &json, &json_len, &text, &text_len);
  lamp_tokenizer *tok = NULL;
  if (lamp_tokenizer_from_json(ctx, json, json_len, &tok) != LAMP_OK) {
    FUZZ_CHECK(tok == NULL);
    fuzz_message();
    free(json);
    free(text);
    return 0;
  }
  size_t vocab = lamp_tokenizer_vocab_size(tok);
  FUZZ_CHECK(vocab > 0);
  (void)lamp_tokenizer_pretokenizer(tok);
  lamp_tokenizer_special sp = lamp_tokenizer_get_special(tok);
  /* no special ids but, for SentencePiece (byte_fallback), the model's unk_token */
  int spm = lamp_tokenizer_get_model(tok) == LAMP_TOKENIZER_LLAMA;
  FUZZ_CHECK(sp.bos == -1 && sp.eos == -1 && sp.pad == -1 &&
             (sp.unk == -1 || (spm && sp.unk >= 0 && (size_t)sp.unk < vocab)));
  /* every token's text, looked up again */
  for (size_t id = 0; id < vocab && id < 4096; id++) {
    const char *t;
    size_t tl;
    lamp_token_type type;
    if (lamp_tokenizer_token(ctx, tok, (int32_t)id, &t, &tl, &type) != LAMP_OK) {
      fuzz_message();
      continue;
    }
    int32_t found;
    if (type != LAMP_TOKEN_UNUSED && lamp_tokenizer_find(ctx, tok, t, tl, &found) == LAMP_OK) {
      const char *t2;
      size_t tl2;
      FUZZ_CHECK(lamp_tokenizer_token(ctx, tok, found, &t2, &tl2, &type) == LAMP_OK);
      FUZZ_CHECK(tl2 == tl && !memcmp(t, t2, tl));
    }
  }
  const char *t;
  size_t tl;
  lamp_token_type type;
  FUZZ_CHECK(lamp_tokenizer_token(ctx, tok, (int32_t)vocab, &t, &tl, &type) != LAMP_OK);
  FUZZ_CHECK(lamp_tokenizer_token(ctx, tok, -1, &t, &tl, &type) != LAMP_OK);
  /* special ids: -1, valid ids and one past the end */
  lamp_tokenizer_special bad = {(int32_t)vocab, -1, -1, -1};
  FUZZ_CHECK(lamp_tokenizer_set_special(ctx, tok, &bad) == LAMP_ERR_INVALID_ARGUMENT);
  fuzz_message();
  const char *txt = text ? text : fixed_text;
  size_t len = text ? text_len : sizeof(fixed_text) - 1;
  /* SentencePiece decodes a "▁" of the text as a space */
  int full = has_every_byte(tok) && !(lamp_tokenizer_get_model(tok) == LAMP_TOKENIZER_LLAMA &&
                                      fuzz_has_space_mark(txt, len));
  for (unsigned flags = 0; flags < 2; flags++) round_trip(ctx, tok, txt, len, flags, full);
  round_trip(ctx, tok, txt, len, LAMP_TOKENIZE_CONTINUE | LAMP_TOKENIZE_PARSE_SPECIAL, full);
  size_t count;
  FUZZ_CHECK(lamp_tokenizer_encode(ctx, tok, txt, len, LAMP_TOKENIZE_ADD_BOS, NULL, 0, &count) ==
             LAMP_ERR_INVALID_ARGUMENT); /* no BOS id yet */
  fuzz_message();
  lamp_tokenizer_special good = {0, (int32_t)(vocab - 1), -1, -1};
  FUZZ_CHECK(lamp_tokenizer_set_special(ctx, tok, &good) == LAMP_OK);
  /* SentencePiece: exact after a BOS that is a control token (id 0 here) */
  lamp_token_type bos_type = LAMP_TOKEN_NORMAL;
  const char *bt;
  size_t btl;
  FUZZ_CHECK(lamp_tokenizer_token(ctx, tok, 0, &bt, &btl, &bos_type) == LAMP_OK);
  int bos_full = full && (lamp_tokenizer_get_model(tok) != LAMP_TOKENIZER_LLAMA ||
                          bos_type == LAMP_TOKEN_CONTROL);
  round_trip(ctx, tok, txt, len, LAMP_TOKENIZE_PARSE_SPECIAL | LAMP_TOKENIZE_ADD_BOS, bos_full);
  /* ids taken from the text's bytes, some outside the vocabulary */
  int32_t ids[16];
  size_t n = 0;
  for (size_t i = 0; i + 1 < len && n < 16; i += 2)
    ids[n++] = (int32_t)(((unsigned char)txt[i] << 8 | (unsigned char)txt[i + 1]) %
                         (vocab + 2)) - 1;
  size_t length;
  if (lamp_tokenizer_decode(ctx, tok, ids, n, 0, NULL, 0, &length) != LAMP_OK) fuzz_message();
  if (lamp_tokenizer_decode(ctx, tok, ids, n, LAMP_DETOKENIZE_SKIP_SPECIAL, NULL, 0, &length) !=
      LAMP_OK)
    fuzz_message();
  lamp_tokenizer_release(tok);
  free(json);
  free(text);
  return 0;
}
