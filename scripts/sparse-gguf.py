#!/usr/bin/env python3
"""Writes a GGUF file with the tensor table of a Llama-family model and no data (a sparse file
of zeros), so that `lamp plan --model FILE` can say what the real model would take on a device
before anyone downloads it. The weights read as zeros: the file is for planning only.

  scripts/sparse-gguf.py OUT.gguf [--preset llama2-7b-q4_k] [--layers L --width C --heads H
      --kv-heads K --ff F --vocab V --type Q4_K --output-type Q6_K]

The llama2-7b-q4_k preset is Llama-2-7B (32 layers, width 4096, 32 heads, MLP 11008,
vocabulary 32000) with every matrix in Q4_K and the output head in Q6_K, as llama.cpp's
Q4_K_S stores it. Plain Python, no packages; the GGUF layout is version 3.
"""
import argparse
import struct

TYPES = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20),
         "Q5_0": (6, 32, 22), "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q4_K": (12, 256, 144),
         "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210), "BF16": (30, 1, 2)}
PRESETS = {"llama2-7b-q4_k": dict(layers=32, width=4096, heads=32, kv_heads=32, ff=11008,
                                  vocab=32000, type="Q4_K", output_type="Q6_K")}
ALIGN = 32


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--preset", choices=PRESETS)
    for k in ("layers", "width", "heads", "kv_heads", "ff", "vocab"):
        ap.add_argument("--" + k.replace("_", "-"), type=int)
    ap.add_argument("--type")
    ap.add_argument("--output-type")
    a = ap.parse_args()
    cfg = dict(PRESETS.get(a.preset, {}))
    for k in ("layers", "width", "heads", "kv_heads", "ff", "vocab", "type", "output_type"):
        if getattr(a, k) is not None:
            cfg[k] = getattr(a, k)
    L, C, H, K, F, V = (cfg[k] for k in ("layers", "width", "heads", "kv_heads", "ff", "vocab"))
    D = C // H
    mt, ot = cfg["type"], cfg["output_type"]
    tensors = [("token_embd.weight", (C, V), mt), ("output_norm.weight", (C,), "F32"),
               ("output.weight", (C, V), ot)]
    for l in range(L):
        b = f"blk.{l}."
        tensors += [(b + "attn_norm.weight", (C,), "F32"), (b + "attn_q.weight", (C, H * D), mt),
                    (b + "attn_k.weight", (C, K * D), mt), (b + "attn_v.weight", (C, K * D), mt),
                    (b + "attn_output.weight", (H * D, C), mt),
                    (b + "ffn_norm.weight", (C,), "F32"), (b + "ffn_gate.weight", (C, F), mt),
                    (b + "ffn_up.weight", (C, F), mt), (b + "ffn_down.weight", (F, C), mt)]
    kv = [("general.architecture", 8, gguf_string("llama")),
          ("llama.block_count", 4, struct.pack("<I", L)),
          ("llama.embedding_length", 4, struct.pack("<I", C)),
          ("llama.attention.head_count", 4, struct.pack("<I", H)),
          ("llama.attention.head_count_kv", 4, struct.pack("<I", K)),
          ("llama.feed_forward_length", 4, struct.pack("<I", F)),
          ("llama.context_length", 4, struct.pack("<I", 4096)),
          ("llama.vocab_size", 4, struct.pack("<I", V))]
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, t, value in kv:
        head += gguf_string(key) + struct.pack("<I", t) + value
    offset = 0
    for name, ne, ty in tensors:
        code, block, nbytes = TYPES[ty]
        count = 1
        for n in ne:
            count *= n
        assert ne[0] % block == 0, f"{name}: rows of {ne[0]} are not whole {ty} blocks"
        head += gguf_string(name) + struct.pack("<I", len(ne)) + b"".join(
            struct.pack("<Q", n) for n in ne) + struct.pack("<IQ", code, offset)
        offset += (count // block * nbytes + ALIGN - 1) // ALIGN * ALIGN
    head += b"\0" * ((ALIGN - len(head) % ALIGN) % ALIGN)
    with open(a.out, "wb") as f:
        f.write(head)
        f.truncate(len(head) + offset)
    print(f"{a.out}: {len(tensors)} tensors, {(len(head) + offset) / 2**30:.2f} GiB (sparse)")


if __name__ == "__main__":
    main()
