#!/usr/bin/env python3
"""Reference data for tests/test_tokenizer.c, from the real model's tokenizer.

1. tests/data/smollm2_tokenizer.json: SmolLM2-135M-Instruct's tokenizer in Hugging Face's
   tokenizer.json format, rebuilt from the GGUF file's tokenizer.ggml.* metadata (vocabulary,
   merges, special tokens) with SmolLM2's pipeline: no normalizer, Digits(individual_digits)
   then ByteLevel(add_prefix_space=false) pre-tokenizer, BPE without byte fallback.
2. tests/data/smollm2_tokenizer_ids.txt: the ids that Hugging Face `tokenizers` (an independent
   implementation, in Rust) gives for each test string, one line per string:
   <UTF-8 bytes in hex> <TAB> <ids separated by spaces> [<TAB> lossy]. "lossy" marks strings
   with bytes the vocabulary lacks (SmolLM2 has no token for 21 bytes, e.g. 0x04): the reference
   drops them, so decoding does not give the string back.

Usage: pip install gguf numpy tokenizers; scripts/fetch-model.sh; python3 tests/gen_tokenizer_ref.py
"""
import json
import os

from gguf import GGUFReader
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
DATA = os.path.join(ROOT, "tests", "data")

STRINGS = [
    "Hello world",
    "Hello, world! How are you?",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say we've done it, didn't we? You're right; it's 'quoted'.",
    "don't DON'T 'S 's 'll'd",
    "3.14159 + 2 = 5.14159; 1,000,000 and 42nd on 2024-11-29",
    "   leading spaces",
    "trailing spaces   ",
    "multiple   spaces   between  words",
    "tab\tseparated\tvalues\t",
    "line one\nline two\n\nline four\r\nwindows\r\n",
    "\n\n\n",
    " ",
    "",
    "a",
    "  \n  \t x",
    "Café résumé naïve façade Ångström",
    "日本語のテキストです。中文文本。한국어 텍스트",
    "Emoji: 😀🎉👍🏽 and flags 🇫🇷 and a family 👨\u200d👩\u200d👧",
    "Math ∑∫√∞ ≠ ≤ and Greek αβγ Δ",
    "Arabic: مرحبا بالعالم, Hebrew: שלום, Hindi: नमस्ते, Thai: สวัสดี",
    "Other numbers: ٣٤٥ ४५ ²³ ½ Ⅻ",
    "No-break\u00a0space, em\u2003space, ideographic\u3000space",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more <jupyter_code>x",
    "def f(x):\n    return x**2  # square\n",
    "URL https://example.com/path?q=1&r=two#frag",
    "!!!???... --- *** ((([[[{{{",
    "ALL CAPS AND lowercase MiXeD",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "a" * 300,
    "\u2028line separator\u0085next line",
    "control \x04 and \x7f bytes\x00",
]


def gguf_array(reader, key):
    field = reader.fields[key]
    return [field.parts[i] for i in field.data]


def main():
    reader = GGUFReader(MODEL)
    tokens = [bytes(p).decode("utf-8") for p in gguf_array(reader, "tokenizer.ggml.tokens")]
    types = [int(p[0]) for p in gguf_array(reader, "tokenizer.ggml.token_type")]
    merges = [bytes(p).decode("utf-8") for p in gguf_array(reader, "tokenizer.ggml.merges")]
    control = 3
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True}
             for i, t in enumerate(tokens) if types[i] == control]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": True}
    spec = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True}, byte_level]},
        "post_processor": dict(byte_level, trim_offsets=False),
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": merges},
    }
    text = json.dumps(spec, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(DATA, "smollm2_tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(text)
    tok = Tokenizer.from_str(text)
    with open(os.path.join(DATA, "smollm2_tokenizer_ids.txt"), "w") as f:
        for s in STRINGS:
            ids = tok.encode(s, add_special_tokens=False).ids
            lossy = tok.decode(ids, skip_special_tokens=False) != s
            f.write(s.encode("utf-8").hex() + "\t" + " ".join(map(str, ids)) +
                    ("\tlossy" if lossy else "") + "\n")


if __name__ == "__main__":
    main()
