#!/usr/bin/env python3
"""The PyTorch/transformers peer of `lamp generate`: the same weights (the GGUF file dequantised
by gguf-py, as tests/gen_model_ref.py loads them) in LlamaForCausalLM, float32, greedy
`generate` with and without the key/value cache, tokens per second on this machine's CPU.

  python3 -m venv --system-site-packages /tmp/mref   # Debian's python3-torch (CPU)
  /tmp/mref/bin/pip install transformers gguf
  /tmp/mref/bin/python bench/peer_generate.py [--tokens 32] [--threads 2] [TEXT]

Prints one JSON line per mode: {"cache": true, "new_tokens": 32, "seconds": ..., "tokens_per_s": ...}.
"""
import argparse
import importlib.util
import json
import os
import time

import torch
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("gen_model_ref",
                                              os.path.join(ROOT, "tests", "gen_model_ref.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("text", nargs="?", default="The capital of France is")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = ref.load(ref.MODEL).float()
    ids = Tokenizer.from_file(ref.TOKENIZER).encode(a.text).ids
    x = torch.tensor([ids], dtype=torch.long)
    for cache in (True, False):
        with torch.no_grad():
            model.generate(x, max_new_tokens=2, do_sample=False, use_cache=cache)  # warm-up
            t0 = time.perf_counter()
            out = model.generate(x, max_new_tokens=a.tokens, min_new_tokens=a.tokens,
                                 do_sample=False, use_cache=cache)
            dt = time.perf_counter() - t0
        n = out.shape[1] - x.shape[1]
        print(json.dumps({"cache": cache, "prompt_tokens": len(ids), "new_tokens": n,
                          "seconds": round(dt, 3), "tokens_per_s": round(n / dt, 2),
                          "torch": torch.__version__, "threads": a.threads}))


if __name__ == "__main__":
    main()
