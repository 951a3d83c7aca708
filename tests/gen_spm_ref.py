#!/usr/bin/env python3
"""Reference data for the SentencePiece ("llama") tokenizer tests in tests/test_tokenizer.c.

Not run in CI: the outputs are committed. It trains two small SentencePiece BPE models with the
`sentencepiece` package (Google's C++ implementation, an independent reference) on the corpus
below and writes, for each:

1. tests/data/spm_<name>.gguf: the vocabulary as GGUF metadata, written with gguf-py the way
   llama.cpp's convert_hf_to_gguf.py writes a SentencePiece vocabulary (_create_vocab_sentencepiece
   and the special vocabulary): tokenizer.ggml.model "llama", .pre "default", .tokens (the
   pieces), .scores (f32), .token_type (control for <s> </s>, unknown for <unk>, byte for
   <0xXX>, unused for unused pieces, normal otherwise), bos/eos/unknown ids, add_bos_token true,
   add_eos_token false; no tensors.
2. tests/data/spm_<name>_ids.txt: sentencepiece's own encode ids of each test string (the
   list below, then 120 random ones drawn with a fixed seed), one line per string: <UTF-8 bytes in hex> <TAB> <ids separated by spaces> [<TAB> lossy]. "lossy" marks
   strings that sentencepiece's decode does not give back exactly.

3. For tiny and noprefix, tests/data/spm_<name>_tokenizer.json: the same model as Hugging Face
   transformers' LlamaConverter (legacy mode) writes it: model BPE with the pieces as vocab,
   merges from SentencePieceExtractor (every split of a piece into two pieces, ordered by the
   piece's score), unk_token "<unk>", fuse_unk, byte_fallback; normalizer Sequence[Prepend("▁")
   (with the dummy prefix only), Replace(" ", "▁")]; no pre-tokenizer; decoder Sequence[
   Replace("▁", " "), ByteFallback, Fuse, Strip(" ", 1, 0) (with the prefix only)]; <unk> <s>
   </s> as special added tokens. And tests/data/spm_<name>_json_ids.txt: the ids Hugging Face
   `tokenizers` gives each test string (added tokens matched in the text), lines as above.

The models ("tiny", "noprefix" and "nobytes"):
- tiny: model_type=bpe, byte_fallback=True, add_dummy_prefix=True (the default), 700 pieces.
  GGUF without tokenizer.ggml.add_space_prefix, so the default (true) is what is tested.
- noprefix: the same with add_dummy_prefix=False (Gemma's setting); the GGUF sets
  tokenizer.ggml.add_space_prefix false, as convert_hf_to_gguf.py does for Gemma.
- nobytes: the same as tiny with byte_fallback=False: characters without a piece become <unk>,
  a run of them one <unk>.
Both use the normalizer of Llama 2's tokenizer.model: normalization_rule_name="identity" and
remove_extra_whitespaces=False (sentencepiece's training defaults, nmt_nfkc with whitespace
collapsing, are a normalizer that neither Llama 2 nor llama.cpp applies), and Llama 2's
split_digits=True and allow_whitespace_only_pieces=True. character_coverage=0.995 leaves the
rarest corpus characters out of the vocabulary, so byte fallback is exercised by them as well as
by characters absent from the corpus.

Usage: python3 -m venv /tmp/spmref
       /tmp/spmref/bin/pip install sentencepiece gguf 'numpy<2' tokenizers
       /tmp/spmref/bin/python tests/gen_spm_ref.py
Made with sentencepiece 0.2.3, gguf 0.19.0, numpy 1.26.4, tokenizers 0.23.3.
"""
import io
import json
import os

import gguf
import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")

CORPUS = """\
The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away.
Soft prompts are trained while the language model stays frozen.
A tokenizer turns text into pieces, and pieces into numbers.
Hello world! Hello there, world. How are you today? I am fine, thank you.
In 2024 there were 365 days plus one: 366 days, 8784 hours, 527040 minutes.
Prices: 3.14, 2.71, 1.41, 100, 2500, 99.99 and 0.001 percent.
Café, naïve, résumé, façade, Zürich, São Paulo, Kraków, Ångström, smörgåsbord.
Der schnelle braune Fuchs springt über den faulen Hund. Straße, Mädchen, Größe.
El rápido zorro marrón salta sobre el perro perezoso. ¿Dónde está la biblioteca?
Le renard brun rapide saute par-dessus le chien paresseux. À bientôt, garçon !
Быстрая коричневая лиса прыгает через ленивую собаку. Привет, мир!
Γρήγορη καφέ αλεπού πηδά πάνω από τον τεμπέλη σκύλο. Καλημέρα κόσμε.
東京は日本の首都です。今日は天気がいいですね。私は学生です。
我们今天去公园散步。中文分词很有意思。你好，世界！
서울은 한국의 수도입니다. 안녕하세요, 세계!
Emoji: 😀 😂 👍 🎉 ❤️ 🚀 — they are common in chat text 😀😀.
Math: x² + y² = z², ∑ a_i, ∫ f(x) dx, α β γ δ, π ≈ 3.14159.
Code: def f(x): return x * 2  # doubles the value
    if (a == b) { print("equal"); }   else { print("different"); }
Tabs\tand\tcolumns\tare\there.
Whitespace   runs    of     different      lengths.
    Indented line with four spaces.
        Indented line with eight spaces.
Line one
Line two

Line four after an empty line.
"Quotes" and 'single quotes', (parentheses), [brackets], {braces}, <angles>.
email@example.com https://example.org/path?query=1&other=2 #hashtag @mention
The model learns soft prompts; the model learns fast. Learning, learned, learner, learns.
Training training trained trains trainer. Token tokens tokenizer tokenized tokenizing.
"""

STRINGS = [
    "Hello world",
    "Hello, world! How are you?",
    "The quick brown fox jumps over the lazy dog.",
    "Soft prompts are trained while the language model stays frozen.",
    "   leading spaces",
    "trailing spaces   ",
    "multiple   spaces   between  words",
    " ",
    "  ",
    "",
    "a",
    "tab\tseparated\tvalues\t",
    "line one\nline two\n\nline four\r\nwindows\r\n",
    "\n\n\n",
    "3.14159 + 2 = 5.14159; 1,000,000 and 42nd on 2024-11-29",
    "Café naïve résumé Zürich Ångström",
    "Straße Größe Mädchen",
    "東京は日本の首都です。",
    "你好，世界！",
    "안녕하세요",
    "Привет, мир!",
    "Emoji 😀 👍 🎉 🚀",
    "absent characters: ☃ ♞ 𝄞 ẞ ǅ ꙮ 🦙 ⚗",
    "🦙🦙🦙",
    "Ǆ",
    "x² + y² = z²",
    "<s> and </s> and <unk> are plain text here",
    "<0x41> looks like a byte token",
    "\u2581 is the space mark itself",
    "▁▁ twice",
    "def f(x):\n    return x * 2\n",
    "email@example.com https://example.org/path?query=1&other=2",
    "Tokenizers tokenize tokens; learners learn.",
    "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
    "unbelievably antidisestablishmentarianism",
    "\u00a0non-breaking\u00a0spaces\u3000ideographic",
    "\x01\x02 control \x7f bytes",
    "mixed: 日本 text with 😀 and 123 numbers, ¿sí?",
]



def random_strings(n=120, seed=7):
    """Deterministic mixes of corpus words, characters absent from it, space runs, newlines
    and special-token texts, for the ids files' second part."""
    import random
    rng = random.Random(seed)
    words = CORPUS.split() + ["\u2603", "\U0001d11e", "\U0001f999", "  ", "\t", "\n", "   ",
                              "\x01", "<s>", "</s>", "<unk>", "\u65e5\u672c\u8a9e", "\u00e9"]
    chars = sorted(set(CORPUS)) + list("\u2603\U0001d11e\U0001f999\u1e9e\u01c5\ua66e\u2697\u00a0\u3000\x7f")
    out = []
    for _ in range(n):
        if rng.random() < 0.6:
            t = "".join(rng.choice(words) + rng.choice(["", " ", "  ", "\n", ""])
                        for _ in range(rng.randint(1, 10)))
        else:
            t = "".join(rng.choice(chars) for _ in range(rng.randint(1, 24)))
        if rng.random() < 0.2:
            t = " " * rng.randint(1, 4) + t
        if rng.random() < 0.2:
            t = t + " " * rng.randint(1, 3)
        out.append(t)
    return out


STRINGS += random_strings()

MODELS = [  # name, add_dummy_prefix, byte_fallback
    ("tiny", True, True),
    ("noprefix", False, True),
    ("nobytes", True, False),
]


def train(add_dummy_prefix, byte_fallback=True):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS.splitlines()),
        model_writer=model,
        model_type="bpe",
        vocab_size=700,
        byte_fallback=byte_fallback,
        add_dummy_prefix=add_dummy_prefix,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        character_coverage=0.995,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def write_gguf(sp, path, add_dummy_prefix):
    tokens, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        tokens.append(sp.id_to_piece(i).encode("utf-8"))
        scores.append(sp.get_score(i))
        t = gguf.TokenType.NORMAL
        if sp.is_unknown(i):
            t = gguf.TokenType.UNKNOWN
        elif sp.is_control(i):
            t = gguf.TokenType.CONTROL
        elif sp.is_unused(i):
            t = gguf.TokenType.UNUSED
        elif sp.is_byte(i):
            t = gguf.TokenType.BYTE
        types.append(int(t))
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    if sp.pad_id() >= 0:
        w.add_pad_token_id(sp.pad_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    if not add_dummy_prefix:
        w.add_add_space_prefix(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def hf_tokenizer_json(sp, add_dummy_prefix):
    """transformers' LlamaConverter (legacy), written out without transformers."""
    pieces = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.vocab_size())]
    vocab = {p: i for i, (p, _) in enumerate(pieces)}
    merges = []
    for piece, score in pieces:
        local = [(piece[:k], piece[k:], score) for k in range(1, len(piece))
                 if piece[:k] in vocab and piece[k:] in vocab]
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: m[2], reverse=True)
    norm = [{"type": "Prepend", "prepend": "\u2581"}] if add_dummy_prefix else []
    norm.append({"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"})
    dec = [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
           {"type": "ByteFallback"}, {"type": "Fuse"}]
    if add_dummy_prefix:
        dec.append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    added = [{"id": i, "content": sp.id_to_piece(i), "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True}
             for i in (sp.unk_id(), sp.bos_id(), sp.eos_id())]
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": {"type": "Sequence", "normalizers": norm}, "pre_tokenizer": None,
            "post_processor": None, "decoder": {"type": "Sequence", "decoders": dec},
            "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                      "continuing_subword_prefix": None, "end_of_word_suffix": None,
                      "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                      "vocab": vocab, "merges": [[a, b] for a, b, _ in merges]}}


def write_json_ref(sp, name, add_dummy_prefix):
    from tokenizers import Tokenizer
    text = json.dumps(hf_tokenizer_json(sp, add_dummy_prefix), ensure_ascii=False)
    path = os.path.join(DATA, f"spm_{name}_tokenizer.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    tok = Tokenizer.from_str(text)
    lossy = same = 0
    with open(os.path.join(DATA, f"spm_{name}_json_ids.txt"), "w") as f:
        for s in STRINGS:
            ids = tok.encode(s, add_special_tokens=False).ids
            same += ids == sp.encode(s)
            line = s.encode("utf-8").hex() + "\t" + " ".join(map(str, ids))
            if tok.decode(ids, skip_special_tokens=False) != s:
                line += "\tlossy"
                lossy += 1
            f.write(line + "\n")
    print(f"{name} tokenizer.json: {same} of {len(STRINGS)} strings as sentencepiece, {lossy} lossy")


def main():
    for name, prefix, byte_fallback in MODELS:
        sp = train(prefix, byte_fallback)
        write_gguf(sp, os.path.join(DATA, f"spm_{name}.gguf"), prefix)
        lossy = fallback = 0
        with open(os.path.join(DATA, f"spm_{name}_ids.txt"), "w") as f:
            for s in STRINGS:
                ids = sp.encode(s)
                line = s.encode("utf-8").hex() + "\t" + " ".join(map(str, ids))
                if sp.decode(ids) != s:
                    line += "\tlossy"
                    lossy += 1
                fallback += any(sp.is_byte(i) for i in ids)
                f.write(line + "\n")
        unk = sum(sp.unk_id() in sp.encode(s) for s in STRINGS)
        if byte_fallback:
            write_json_ref(sp, name, prefix)
        print(f"{name}: {sp.vocab_size()} pieces, {len(STRINGS)} strings, {fallback} with byte "
              f"fallback, {unk} with unk, {lossy} lossy")


if __name__ == "__main__":
    main()
