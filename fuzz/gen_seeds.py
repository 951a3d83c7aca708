#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ (small, valid inputs;
see fuzz/README.md). Standard library only; the output is deterministic, and the files are
committed, so this needs running only when the seeds change. The lamp checkpoint and PEFT
adapter seeds (corpus/safetensors/ckpt_custom_task.safetensors, adapter_model.safetensors)
were written by lamp itself (the train_prompt example on tests/data/tiny.gguf); the variants
here are derived from their layout."""
import json
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(17)


def out(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- GGUF ------------------------------------------------------------------------------------

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
          U64: "<Q", I64: "<q", F64: "<d"}


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gval(t, v):
    if t == STR:
        return gstr(v)
    if t == ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(gval(et, x) for x in items)
    return struct.pack(SCALAR[t], v)


def gguf(kvs, tensors, version=3, alignment=32):
    """kvs: [(key, type, value)]; tensors: [(name, ne, ggml_type, data)]."""
    body = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        body += gstr(k) + struct.pack("<I", t) + gval(t, v)
    off = 0
    layout = []
    for name, ne, gt, data in tensors:
        off = (off + alignment - 1) // alignment * alignment
        layout.append(off)
        body += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        body += struct.pack("<IQ", gt, off)
        off += len(data)
    body += b"\0" * ((-len(body)) % alignment)
    base = len(body)
    for (name, ne, gt, data), o in zip(tensors, layout):
        body += b"\0" * (base + o - len(body)) + data
    return body


def byte_alphabet():
    """GPT-2's bytes_to_unicode: the character standing for each byte."""
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


ALPHA = byte_alphabet()
BYTE_TOKENS = [ALPHA[b] for b in range(256)]
MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("l", "l"), ("ll", "o"), ("Ġ", "w"), ("o", "r"),
          ("Ġw", "or"), ("Ġwor", "l"), ("Ġworl", "d"), ("e", "r")]


def merged_vocab():
    toks = list(BYTE_TOKENS)
    for a, b in MERGES:
        if a + b not in toks:
            toks.append(a + b)
    return toks


def f32s(xs):
    return b"".join(struct.pack("<f", x) for x in xs)


def tiny_tensors():
    # one tensor of each decoded type (and Q2_K, which lamp lays out but does not decode)
    def q(nbytes):
        return bytes(rng.randrange(256) for _ in range(nbytes))
    t = [("token_embd.weight", [8, 4], 0, f32s([rng.uniform(-1, 1) for _ in range(32)])),
         ("blk.0.attn_norm.weight", [8], 1, b"".join(struct.pack("<e", 1.0) for _ in range(8))),
         ("t.bf16", [4], 30, b"\x80\x3f" * 4),
         ("t.q4_0", [32], 2, b"\x00\x3c" + q(16)),
         ("t.q4_1", [32], 3, b"\x00\x3c\x00\x00" + q(16)),
         ("t.q5_0", [32], 6, b"\x00\x3c" + q(20)),
         ("t.q5_1", [32], 7, b"\x00\x3c\x00\x00" + q(20)),
         ("t.q8_0", [32], 8, b"\x00\x3c" + q(32)),
         ("t.q4_k", [256], 12, b"\x00\x3c\x00\x3c" + q(140)),
         ("t.q5_k", [256], 13, b"\x00\x3c\x00\x3c" + q(172)),
         ("t.q6_k", [256], 14, q(208) + b"\x00\x3c"),
         ("t.q2_k", [256], 10, q(84))]
    return t


def llama_kvs(arch="llama"):
    return [("general.architecture", STR, arch),
            ("general.name", STR, "fuzz-tiny"),
            (arch + ".block_count", U32, 1),
            (arch + ".embedding_length", U32, 8),
            (arch + ".attention.head_count", U32, 2),
            (arch + ".attention.head_count_kv", U32, 1),
            (arch + ".feed_forward_length", U32, 16),
            (arch + ".context_length", U32, 64),
            (arch + ".rope.freq_base", F32, 10000.0),
            (arch + ".attention.layer_norm_rms_epsilon", F32, 1e-5)]


def tokenizer_kvs(pre="smollm", with_types=True):
    toks = merged_vocab() + ["<|im_start|>", "<|im_end|>"]
    kv = [("tokenizer.ggml.model", STR, "gpt2"),
          ("tokenizer.ggml.pre", STR, pre),
          ("tokenizer.ggml.tokens", ARR, (STR, toks)),
          ("tokenizer.ggml.merges", ARR, (STR, [a + " " + b for a, b in MERGES])),
          ("tokenizer.ggml.bos_token_id", U32, len(toks) - 2),
          ("tokenizer.ggml.eos_token_id", U32, len(toks) - 1)]
    if with_types:
        kv.append(("tokenizer.ggml.token_type", ARR, (I32, [1] * (len(toks) - 2) + [3, 3])))
    return kv


def spm_tokenizer_kvs(add_space_prefix=None):
    """A SentencePiece ("llama") vocabulary: <unk> <s> </s>, the 256 byte tokens, "▁" and a few
    scored pieces, a user-defined token."""
    pieces = ["\u2581", "e", "l", "o", "H", "w", "r", "d", "t", "\u2581H", "el", "lo", "ll",
              "\u2581w", "or", "ld", "\u2581wor", "Hel", "\u2581Hel", "\u2581t", "\u2581\u2581"]
    toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + pieces + ["<u>"]
    types = [2, 3, 3] + [6] * 256 + [1] * len(pieces) + [4]
    scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [-float(i) for i in range(len(pieces))] + [0.0]
    kv = [("tokenizer.ggml.model", STR, "llama"),
          ("tokenizer.ggml.pre", STR, "default"),
          ("tokenizer.ggml.tokens", ARR, (STR, toks)),
          ("tokenizer.ggml.scores", ARR, (F32, scores)),
          ("tokenizer.ggml.token_type", ARR, (I32, types)),
          ("tokenizer.ggml.bos_token_id", U32, 1),
          ("tokenizer.ggml.eos_token_id", U32, 2),
          ("tokenizer.ggml.unknown_token_id", U32, 0),
          ("tokenizer.ggml.add_bos_token", BOOL, True)]
    if add_space_prefix is not None:
        kv.append(("tokenizer.ggml.add_space_prefix", BOOL, add_space_prefix))
    return kv


def gen_gguf():
    out("gguf", "tiny_llama_v3.gguf",
        gguf(llama_kvs() + [("general.alignment", U32, 32)] + tokenizer_kvs(), tiny_tensors()))
    out("gguf", "tokenizer_gpt2_v2.gguf",
        gguf(llama_kvs() + tokenizer_kvs("gpt2", with_types=False), [], version=2))
    out("gguf", "tokenizer_llama3.gguf", gguf(llama_kvs() + tokenizer_kvs("llama-bpe"), []))
    out("gguf", "tokenizer_spm.gguf", gguf(llama_kvs() + spm_tokenizer_kvs(), []))
    out("gguf", "tokenizer_spm_noprefix.gguf", gguf(llama_kvs() + spm_tokenizer_kvs(False), []))
    every = [("k.u8", U8, 200), ("k.i8", I8, -5), ("k.u16", U16, 60000), ("k.i16", I16, -300),
             ("k.u32", U32, 4000000000), ("k.i32", I32, -7), ("k.f32", F32, 0.5),
             ("k.bool", BOOL, True), ("k.str", STR, "h\u00e9llo"), ("k.u64", U64, 2**63 + 1),
             ("k.i64", I64, -2**40), ("k.f64", F64, 2.5)]
    for t in (U8, I8, U16, I16, U32, I32, F32, BOOL, U64, I64, F64):
        vals = [1, 0, 1] if t == BOOL else ([0.25, -1.5, 3.0] if t in (F32, F64) else [1, 2, 3])
        every.append(("a.%d" % t, ARR, (t, vals)))
    every.append(("a.str", ARR, (STR, ["x", "", "yz"])))
    every.append(("a.empty", ARR, (U32, [])))
    out("gguf", "every_type.gguf",
        gguf(every + [("general.alignment", U32, 64)],
             [("scalar", [], 0, f32s([1.0])), ("m", [2, 2, 1, 1], 0, f32s([1, 2, 3, 4]))],
             alignment=64))


# ---- safetensors -----------------------------------------------------------------------------

def safetensors(tensors, metadata=None, pad=True):
    """tensors: [(name, dtype, shape, data)]."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    off = 0
    blob = b""
    for name, dt, shape, data in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blob += data
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def read_safetensors(path):
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def gen_safetensors():
    d = os.path.join(HERE, "corpus", "safetensors")
    ck = os.path.join(d, "ckpt_custom_task.safetensors")
    if os.path.exists(ck):
        header, blob = read_safetensors(ck)
        meta = header.pop("__metadata__")
        # the same run on a built-in task
        m2 = {k: v for k, v in meta.items() if not k.startswith("task.")}
        m2.update({"run.task": "sst2", "run.template": "", "run.words": "", "run.method": "pt",
                   "run.schedule": "cosine", "run.accumulate": "2", "run.ranks": "1"})
        ts = [(k, v["dtype"], v["shape"], blob[v["data_offsets"][0]:v["data_offsets"][1]])
              for k, v in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])]
        p = [t for t in ts if t[0] in ("param.V",)]
        out("safetensors", "ckpt_builtin_task.safetensors", safetensors(p, m2))
        # a CSV task found by column numbers, JSONL with a label key
        m3 = dict(meta)
        m3.update({"task.format": "csv", "task.header": "0", "task.columns": "3",
                   "task.fields": "a|b", "task.field-columns": "0|2", "task.label-column": "1",
                   "task.labels": "x|y|z", "task.metric": "macro_f1",
                   "run.template": "{a} {{and}} {b}:", "run.words": " x| y| z",
                   "run.method": "dpt", "run.init": "uniform"})
        out("safetensors", "ckpt_csv_task.safetensors", safetensors(p, m3))
        m4 = dict(meta)
        m4.update({"task.format": "jsonl", "task.label-field": "answer", "task.header": "0",
                   "task.labels": "false|true", "task.metric": "mcc"})
        out("safetensors", "ckpt_jsonl_task.safetensors", safetensors([], m4))
    tensors = [("f16", "F16", [2, 2], struct.pack("<4e", 1, 2, 3, 4)),
               ("bf16", "BF16", [2], b"\x80\x3f\x00\x40"),
               ("i64", "I64", [1], struct.pack("<q", -1)),
               ("bool", "BOOL", [3], b"\x01\x00\x01"),
               ("u8", "U8", [2], b"ab"),
               ("scalar", "F32", [], struct.pack("<f", 3.5)),
               ("empty", "F32", [0, 4], b""),
               ("f64", "F64", [1, 1, 1, 1, 1, 1, 1, 1], struct.pack("<d", 1.0))]
    out("safetensors", "dtypes.safetensors",
        safetensors(tensors, {"format": "pt", "note": "caf\u00e9 \"quoted\" \\ \u0001"}))
    out("safetensors", "no_metadata_unpadded.safetensors",
        safetensors([("x", "F32", [2], f32s([1, 2]))], None, pad=False))
    out("safetensors", "adapter_f16.safetensors",
        safetensors([("prompt_embeddings", "F16", [2, 4], struct.pack("<8e", *range(8)))],
                    {"format": "pt"}))


# ---- tokenizer.json --------------------------------------------------------------------------

def tokenizer_json(vocab, merges, pre, added, pairs=False, ignore_merges=False, normalizer=None):
    return json.dumps({
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre,
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": ignore_merges,
                  "vocab": {t: i for i, t in enumerate(vocab)},
                  "merges": [[a, b] for a, b in merges] if pairs else
                            [a + " " + b for a, b in merges]}}, ensure_ascii=False)


def gen_tokenizer_json():
    bytelevel = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                 "use_regex": True}
    smollm = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, bytelevel]}
    vocab = ["<|im_start|>", "<|im_end|>"] + merged_vocab()
    added = [{"id": 0, "content": "<|im_start|>", "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True},
             {"id": 1, "content": "<|im_end|>", "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True},
             {"id": len(vocab), "content": "[user]", "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": False}]
    text = "\0TXT<|im_start|>user\nHello world 2024! caf\u00e9 [user]".encode() + b"\xff<|im_end|>\n"
    out("tokenizer_json", "smollm_style.json", tokenizer_json(vocab, MERGES, smollm, added).encode() + text)
    out("tokenizer_json", "gpt2_pairs.json",
        tokenizer_json(merged_vocab(), MERGES, bytelevel, [], pairs=True).encode() +
        b"\0TXTthe hello   world\r\n\t\x80\xc3")
    out("tokenizer_json", "ignore_merges.json",
        tokenizer_json(merged_vocab(), MERGES, smollm, [], ignore_merges=True).encode() +
        b"\0TXThello world the 42")
    # Llama 3's pre-tokenizer: its regex in a Split, then a ByteLevel that does not split again
    llama3_regex = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
    llama3 = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": llama3_regex}, "behavior": "Isolated",
         "invert": False},
        dict(bytelevel, use_regex=False)]}
    out("tokenizer_json", "llama3_style.json",
        tokenizer_json(merged_vocab(), MERGES, llama3, [], ignore_merges=True).encode() +
        b"\0TXTDON'T the 12345 hello!!\n\n  world\r\n")
    # Qwen2's: one digit at a time, and NFC (a decomposed accent, marks out of order, Hangul
    # jamo, an invalid byte between a base and its mark)
    qwen2 = json.loads(json.dumps(llama3))
    qwen2["pretokenizers"][0]["pattern"]["Regex"] = llama3_regex.replace(r"\p{N}{1,3}", r"\p{N}")
    out("tokenizer_json", "qwen2_nfc.json",
        tokenizer_json(merged_vocab(), MERGES, qwen2, [], normalizer={"type": "NFC"}).encode() +
        "\0TXThello 2024 cafe\u0301 a\u0301\u0323 \u1112\u1161\u11ab e".encode() + b"\xff"
        + "\u0301 world".encode())
    # a vocabulary lacking most bytes: encoding drops what it cannot spell
    small = list("abcdefghijklmnopqrstuvwxyz") + ["Ġ", "Ġa", "ab"]
    out("tokenizer_json", "small_vocab.json",
        tokenizer_json(small, [("Ġ", "a"), ("a", "b")], bytelevel, []).encode() +
        b"\0TXTab ab zz AB 12")

    # SentencePiece BPE as Hugging Face writes Llama 2's (byte_fallback, "▁" normalizer)
    sp_toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    sp_pieces = ["\u2581", "H", "e", "l", "o", "w", "r", "d", "\u2581H", "el", "ll", "lo",
                 "\u2581w", "or", "\u2581Hel", "\u2581wor", "Hel"]
    sp_merges = [("\u2581", "H"), ("e", "l"), ("l", "l"), ("l", "o"), ("\u2581", "w"), ("o", "r"),
                 ("\u2581H", "el"), ("\u2581w", "or"), ("H", "el")]
    sp = json.loads(tokenizer_json(sp_toks + sp_pieces, sp_merges, None, [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True} for i, t in enumerate(sp_toks[:3])]))
    sp["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    sp["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    sp["model"].update({"unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True})
    out("tokenizer_json", "spm_llama2.json", json.dumps(sp, ensure_ascii=False).encode() +
        "\0TXTHello world <s>Hel\u2581lo caf\u00e9 \u2603".encode() + b"\xff")


# ---- datasets --------------------------------------------------------------------------------

def ds(name, b0, b1, content, template=None, b2=0, b345=(0, 0, 0)):
    data = bytes([b0, b1, b2]) + bytes(x & 255 for x in b345) + content.encode()
    if template is not None:
        data += b"\0" + template.encode()
    out("dataset", name, data)


def gen_dataset():
    ds("sst2.tsv", 0, 0, "sentence\tlabel\nit is a charming film \t1\na dull mess\t0\r\n\n",
       "Review: {sentence}\nSentiment:")
    ds("rte.tsv", 1, 0, "index\tsentence1\tsentence2\tlabel\n0\tA cat sat.\tA cat is sitting."
       "\tentailment\n1\tIt rains.\tIt is dry.\tnot_entailment\n", "{sentence1} {{?}} {sentence2}")
    ds("mrpc.tsv", 2, 0, "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tHe left."
       "\tHe went away.\n0\t3\t4\tRed.\tBlue.\n")
    ds("cola.tsv", 3, 0, "gj04\t1\t\tThe book was read.\ngj04\t0\t*\tBook the read was.\n",
       "{sentence}")
    ds("boolq.jsonl", 4, 0, '{"passage": "Water is wet.", "question": "is water wet", '
       '"label": true}\n{"question": "q\\u00e9", "passage": "p\\n", "label": false, "idx": 1}\n')
    ds("cb.jsonl", 5, 0, '{"premise": "A", "hypothesis": "B", "label": "neutral"}\n\n'
       '{"premise": "C", "hypothesis": "D", "label": "contradiction"}\n', "{premise}|{hypothesis}")
    ds("copa.jsonl", 6, 0, '{"premise": "P", "choice1": "a", "choice2": "b", "question": '
       '"cause", "label": 1}\n{"premise": "Q", "choice1": "c", "choice2": "d", "question": '
       '"effect", "label": 0.0}\n')
    ds("wic.jsonl", 7, 0, '{"word": "bank", "sentence1": "river bank", "sentence2": "bank '
       'loan", "label": false}\n')
    # described tasks: byte 1 = format | header 4 | by name 8 | label key 16 | 3 labels 32 |
    # 2 fields 64 | f1 128
    ds("custom_tsv_by_name.tsv", 8, 0 | 4 | 8, "label\ttext\nbad\tslow and dull\ngood\tfun\n",
       "Text: {text}\nLabel:", b2=2)
    ds("custom_tsv_columns.tsv", 8, 0 | 64, "a warm film\tmore\t1\nslow\tless\t0\n",
       "{text}{extra}", b2=0)
    ds("custom_csv_quoted.csv", 8, 2 | 4 | 8 | 64 | 32,
       'extra, text ,label\r\n"x, y","a ""quoted""\nline",2\r\nplain,,0\n"",z,1\n',
       "{text} / {extra}:", b2=0)
    ds("custom_csv_columns.csv", 8, 3, "hello,1\n\"multi\r\nline\",0\n", b2=0)
    ds("custom_jsonl_label_key.jsonl", 8, 1 | 16 | 64,
       '{"text": "t", "extra": "e", "y": "true"}\n{"y": false, "text": "u", "extra": ""}\n',
       "{extra}{text}", b2=1)
    ds("custom_jsonl_numbers.jsonl", 8, 1 | 32, '{"text": "a", "label": 2}\n'
       '{"text": "b", "label": 1e0}\n{"text": "c", "label": "0"}\n', b2=128)
    ds("custom_raw_columns.tsv", 0x88, 0, "x\ty\t1\n", b2=3, b345=(1, -1, 2))


# ---- config.json -----------------------------------------------------------------------------

def gen_config_json():
    smollm2 = {"architectures": ["LlamaForCausalLM"], "attention_bias": False,
               "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
               "hidden_act": "silu", "hidden_size": 576, "initializer_range": 0.041666666666666664,
               "intermediate_size": 1536, "is_llama_config": True,
               "max_position_embeddings": 8192, "mlp_bias": False, "model_type": "llama",
               "num_attention_heads": 9, "num_hidden_layers": 30, "num_key_value_heads": 3,
               "pad_token_id": 2, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
               "rope_interleaved": False, "rope_scaling": None, "rope_theta": 100000,
               "tie_word_embeddings": True, "torch_dtype": "bfloat16",
               "transformers_version": "4.42.3", "use_cache": True, "vocab_size": 49152}
    out("config_json", "smollm2_135m.json", json.dumps(smollm2, indent=2))
    out("config_json", "tiny.json", '{"model_type":"llama","num_hidden_layers":1,"hidden_size":8,'
        '"num_attention_heads":2,"num_key_value_heads":1,"intermediate_size":16,'
        '"vocab_size":300,"head_dim":4,"tie_word_embeddings":false,"rms_norm_eps":1e-6,'
        '"rope_theta":5e5,"max_position_embeddings":null}')
    out("config_json", "escapes.json", '{"model_type":"ll\\u0061ma","hidden_act":"silu",'
        '"num_hidden_layers":2.0,"hidden_size":64,"num_attention_heads":4,'
        '"intermediate_size":128,"vocab_size":1000,"nested":{"a":[1,2,{"b":[]}],"s":"\\"\\\\\\/'
        '\\b\\f\\n\\r\\t\\ud83d\\ude00"},"rope_scaling":null,"x":-0.5e-3,"t":true,"n":null}')
    # the other architectures: Qwen2's switched window, Phi-3's window and LongRoPE (refused)
    out("config_json", "qwen2.json", '{"model_type":"qwen2","num_hidden_layers":2,'
        '"hidden_size":64,"num_attention_heads":4,"num_key_value_heads":2,'
        '"intermediate_size":128,"vocab_size":256,"rope_theta":1000000.0,'
        '"tie_word_embeddings":true,"use_sliding_window":true,"sliding_window":4096,'
        '"max_window_layers":21}')
    out("config_json", "phi3.json", '{"model_type":"phi3","num_hidden_layers":2,'
        '"hidden_size":64,"num_attention_heads":4,"intermediate_size":128,"vocab_size":256,'
        '"sliding_window":2047,"partial_rotary_factor":1.0,"rope_scaling":{"type":"longrope",'
        '"long_factor":[1.0,2.0],"short_factor":[1.0,1.0]}}')


if __name__ == "__main__":
    gen_gguf()
    gen_safetensors()
    gen_tokenizer_json()
    gen_dataset()
    gen_config_json()
