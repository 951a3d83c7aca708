#!/usr/bin/env python3
"""Writes tests/data/smollm2_tensors.txt: for a few tensors of the real model, dequantised by
gguf-py (the GGUF package of the ggml project, an implementation independent of lamp), the
name, type, sum, sum of squares and first four values. test_gguf compares lamp's
dequantisation with it when the model file is present.

Usage: pip install gguf numpy; scripts/fetch-model.sh; python3 tests/gen_gguf_ref.py
"""
import os
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = os.path.join(ROOT, "tests", "data", "smollm2_tensors.txt")
NAMES = ["token_embd.weight", "blk.0.attn_norm.weight", "blk.0.ffn_down.weight",
         "blk.0.attn_k.weight", "blk.29.ffn_gate.weight", "output_norm.weight"]


def main():
    reader = GGUFReader(sys.argv[1] if len(sys.argv) > 1 else MODEL)
    tensors = {t.name: t for t in reader.tensors}
    with open(OUT, "w") as f:
        for name in NAMES:
            t = tensors[name]
            y = dequantize(t.data, t.tensor_type).astype(np.float32).ravel()
            y64 = y.astype(np.float64)
            first = " ".join(repr(float(v)) for v in y[:4])
            f.write(f"{name} {t.tensor_type.name} {float(y64.sum())!r} "
                    f"{float((y64 * y64).sum())!r} {first}\n")


if __name__ == "__main__":
    main()
