#!/usr/bin/env python3
"""Reference data for the Llama 3 and Qwen2 pre-tokenizers in tests/test_tokenizer.c.

Not run in CI: the outputs are committed. It trains two small byte-level BPE models with Hugging
Face `tokenizers` (the Rust implementation, an independent reference) on the corpus of
tests/gen_spm_ref.py, one per pattern, and writes for each <name> ("llama3", "qwen2"):

1. tests/data/bpe_<name>_tokenizer.json: the model as Llama 3's and Qwen2's tokenizer.json files
   have it: no normalizer for llama3, NFC for qwen2; pre-tokenizer Sequence[Split(Regex(<the pattern>), Isolated),
   ByteLevel(add_prefix_space false, use_regex false)]; decoder ByteLevel; BPE with
   ignore_merges for llama3 (as Llama 3 sets it) and without for qwen2; two special added
   tokens, <|begin_of_text|> and <|end_of_text|>.
2. tests/data/bpe_<name>.gguf: the same vocabulary as GGUF metadata, written with gguf-py the way
   llama.cpp's convert_hf_to_gguf.py writes a byte-level BPE vocabulary: tokenizer.ggml.model
   "gpt2", .pre "llama-bpe" or "qwen2", .tokens, .token_type (control for the two special
   tokens, normal otherwise), .merges, bos and eos ids; no tensors.
3. tests/data/bpe_<name>_ids.txt: the ids `tokenizers` gives each test string (special tokens
   matched in the text, none added), one line per string: <UTF-8 bytes in hex> <TAB> <ids>.
   For qwen2 only the strings that NFC cannot change by their code points (none with a code
   point of gen_unicode_tables.py's NFC table).
4. tests/data/bpe_qwen2_nfc_ids.txt: the same for the other strings and NFC_STRINGS, through
   qwen2's NFC normalizer (combining marks, their canonical order, Hangul jamo, singletons,
   composition exclusions), which lamp applies too.

The test strings are gen_spm_ref.py's and, in front of them, cases aimed at where the two patterns
differ from GPT-2's: contractions in capitals, digit runs longer than three, a letter run led by
punctuation, newlines after punctuation and inside whitespace runs.

Usage: python3 -m venv /tmp/bperef
       /tmp/bperef/bin/pip install tokenizers sentencepiece gguf 'numpy<2'
       /tmp/bperef/bin/python tests/gen_bpe_ref.py
       /tmp/bperef/bin/python tests/gen_bpe_ref.py --nfc-ids   # only 4., from the committed
                                                              # bpe_qwen2_tokenizer.json
Made with tokenizers 0.23.3, gguf 0.19.0, numpy 1.26.4 (sentencepiece is imported with
gen_spm_ref.py for its corpus and strings).
"""
import importlib.util
import json
import os
import sys

import gguf
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
spec = importlib.util.spec_from_file_location("gen_spm_ref",
                                              os.path.join(ROOT, "tests", "gen_spm_ref.py"))
spm_ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(spm_ref)
spec = importlib.util.spec_from_file_location("gen_unicode_tables",
                                              os.path.join(ROOT, "tests", "gen_unicode_tables.py"))
unicode_tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(unicode_tables)

# Llama 3's pattern (tokenizer.json of Meta-Llama-3-8B); Qwen2's takes one digit at a time.
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
          r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")
MODELS = [  # name, pattern, GGUF pre, ignore_merges, NFC
    ("llama3", LLAMA3, "llama-bpe", True, False),
    ("qwen2", QWEN2, "qwen2", False, True),
]
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>"]

STRINGS = [
    "DON'T, I'LL, WE'VE, SHE'S, THEY'RE, I'M, HE'D; don't, it's, 'S 'LL 'd",
    "Isn't it o'clock? rock'n'roll ''quoted'' '",
    "1 12 123 1234 12345 123456 1234567 and 3.14159265 and 1,234,567.89",
    "x² ³√27 ½ Ⅻ ٣٤٥ ۱۲۳۴ 一二三",
    "(hello) [world] {braces} -dash _under #hash @at $dollar %percent",
    "!!!\n\n next ...\r\n\r\n  after",
    "end.\n\n\n    indented\n\t\ttabs\n \n  \n",
    "a\n\n b  \n c \n\nd",
    "   \n",
    " \r\n",
    "word\r\nword\r\n\r\nword",
    "abc123def456ghi7890",
    "   leading and trailing   ",
    "<|begin_of_text|>Hello<|end_of_text|> <|end_of_text|>",
    "\u00a0\u3000 wide spaces\u2003em",
    "mixed: 日本 text with 😀 and 12345 numbers, ¿sí?",
    "नमस्ते दुनिया, क्या हाल है?",  # combining vowel signs and viramas, in NFC
    "Cafe\u0301 and A\u030a: decomposed",  # not in NFC
]
STRINGS += spm_ref.STRINGS

NFC_STRINGS = [
    "\u212b \u2126 \u00c5ngstr\u00f6m",  # singletons: the Angstrom and Ohm signs
    "a\u0301\u0323 a\u0323\u0301 e\u0323\u0302",  # marks out of canonical order
    "Tie\u0302\u0301ng Vie\u0323\u0302t",  # Vietnamese, decomposed
    "\u1112\u1161\u11ab\u1100\u116e\u11a8 \ud55c\uad6d",  # Hangul jamo, and syllables
    "\u0958 \u0915\u093c",  # an excluded composite (NFC decomposes it)
    "o\u0308\u0304 \u01ea\u0304 \u0344",  # a two-step composite, a non-starter decomposition
]


def train(pattern, ignore_merges, nfc):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(spm_ref.CORPUS.splitlines(), trainer)
    return tok


def write_gguf(tok, path, pre):
    doc = json.loads(tok.to_str())
    vocab = doc["model"]["vocab"]
    tokens = [None] * len(vocab)
    for piece, i in vocab.items():
        tokens[i] = piece
    special = {a["id"] for a in doc["added_tokens"] if a["special"]}
    types = [int(gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL)
             for i in range(len(tokens))]
    merges = [m if isinstance(m, str) else " ".join(m) for m in doc["model"]["merges"]]
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(vocab[SPECIALS[0]])
    w.add_eos_token_id(vocab[SPECIALS[1]])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_ids(tok, path, strings):
    lossy = 0
    with open(path, "w") as f:
        for s in strings:
            ids = tok.encode(s, add_special_tokens=False).ids
            line = s.encode("utf-8").hex() + "\t" + " ".join(map(str, ids))
            if tok.decode(ids, skip_special_tokens=False) != s:
                line += "\tlossy"
                lossy += 1
            f.write(line + "\n")
    return lossy


def write_nfc_ids(tok, may_change):
    strings = [s for s in STRINGS if any(may_change(ord(c)) for c in s)] + NFC_STRINGS
    lossy = write_ids(tok, os.path.join(DATA, "bpe_qwen2_nfc_ids.txt"), strings)
    print(f"qwen2 NFC: {len(strings)} strings, {lossy} lossy")


def main():
    may_change = unicode_tables.nfc_unstable()
    if sys.argv[1:] == ["--nfc-ids"]:
        write_nfc_ids(Tokenizer.from_file(os.path.join(DATA, "bpe_qwen2_tokenizer.json")),
                      may_change)
        return
    for name, pattern, pre, ignore_merges, nfc in MODELS:
        tok = train(pattern, ignore_merges, nfc)
        strings = [s for s in STRINGS if not nfc or not any(may_change(ord(c)) for c in s)]
        with open(os.path.join(DATA, f"bpe_{name}_tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(tok.to_str())
        write_gguf(tok, os.path.join(DATA, f"bpe_{name}.gguf"), pre)
        lossy = write_ids(tok, os.path.join(DATA, f"bpe_{name}_ids.txt"), strings)
        print(f"{name}: {tok.get_vocab_size()} tokens, {len(strings)} strings, {lossy} lossy")
        if nfc:
            write_nfc_ids(tok, may_change)


if __name__ == "__main__":
    main()
