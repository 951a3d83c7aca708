#!/usr/bin/env python3
"""Reference outputs of the real model for tests/test_model_real.c, from implementations
independent of lamp: gguf-py (the ggml project's GGUF package) reads and dequantises the
weights of models/SmolLM2-135M-Instruct.Q4_1.gguf, Hugging Face `transformers`
(LlamaForCausalLM, eager attention) runs the model on them in float64, and Hugging Face
`tokenizers` encodes the prompts with tests/data/smollm2_tokenizer.json.

The GGUF file stores Q and K rows in llama.cpp's order; they are put back into Hugging Face's
order here (the inverse of llama.cpp's converter permutation) before loading.

Writes tests/data/model_ref_smollm2.txt, one record per line:
  prompt <case> <UTF-8 bytes of the prompt in hex>
  ids <case> <count> <token ids of the prompt>
  top5 <case> <id> <logit> ... (the 5 largest logits at the prompt's last position, largest first)
  step <case> <k> <greedy token> <its logit> <margin over the runner-up>
Lines starting with '#' are comments (the decoded continuations, for people).

The greedy continuation is STEPS tokens long, each step a full forward over the prompt and the
tokens chosen so far (no cache), as lamp's test does. The script refuses prompts where a greedy
choice wins by less than MIN_MARGIN, so that float32 rounding in lamp cannot flip it.

Usage (once, on a developer's machine; nothing here runs in CI):
  python3 -m venv --system-site-packages /tmp/mref   # Debian's python3-torch (CPU)
  /tmp/mref/bin/pip install transformers==4.40.2 gguf
  scripts/fetch-model.sh; /tmp/mref/bin/python tests/gen_model_ref.py
"""
import os
import sys

import numpy as np
import torch
from gguf import GGUFReader
from gguf.quants import dequantize
from tokenizers import Tokenizer
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
TOKENIZER = os.path.join(ROOT, "tests", "data", "smollm2_tokenizer.json")
OUT = os.path.join(ROOT, "tests", "data", "model_ref_smollm2.txt")
STEPS = 8
MIN_MARGIN = 0.05

PROMPTS = [
    "The capital of France is Paris. The capital of Germany is",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "<|im_start|>user\nWhat is the largest planet in the solar system?<|im_end|>\n"
    "<|im_start|>assistant\n",
]

GGUF_TO_HF = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def field(reader, key):
    return reader.fields[key].contents()


def unpermute(w, heads):
    """Inverse of llama.cpp's convert_hf_to_gguf permutation of Q/K rows."""
    rows, cols = w.shape
    return w.reshape(heads, rows // heads // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def load(path):
    reader = GGUFReader(path)
    assert field(reader, "general.architecture") == "llama"
    heads = int(field(reader, "llama.attention.head_count"))
    kv_heads = int(field(reader, "llama.attention.head_count_kv"))
    config = LlamaConfig(
        vocab_size=int(field(reader, "llama.vocab_size")),
        hidden_size=int(field(reader, "llama.embedding_length")),
        intermediate_size=int(field(reader, "llama.feed_forward_length")),
        num_hidden_layers=int(field(reader, "llama.block_count")),
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=int(field(reader, "llama.context_length")),
        rms_norm_eps=float(field(reader, "llama.attention.layer_norm_rms_epsilon")),
        rope_theta=float(field(reader, "llama.rope.freq_base")),
        hidden_act="silu",
        tie_word_embeddings=not any(t.name == "output.weight" for t in reader.tensors),
        attn_implementation="eager",
    )
    state = {}
    for t in reader.tensors:
        shape = tuple(int(n) for n in reversed(t.shape.tolist()))
        w = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        parts = t.name.split(".")
        if t.name == "token_embd.weight":
            name = "model.embed_tokens.weight"
        elif t.name == "output_norm.weight":
            name = "model.norm.weight"
        elif t.name == "output.weight":
            name = "lm_head.weight"
        else:
            assert parts[0] == "blk" and parts[3] == "weight", t.name
            if parts[2] == "attn_q":
                w = unpermute(w, heads)
            elif parts[2] == "attn_k":
                w = unpermute(w, kv_heads)
            name = f"model.layers.{parts[1]}.{GGUF_TO_HF[parts[2]]}.weight"
        state[name] = torch.from_numpy(np.ascontiguousarray(w)).double()
    model = LlamaForCausalLM(config).double().eval()
    missing, unexpected = model.load_state_dict(state, strict=False)
    # the head is tied to the embedding; rotary tables are computed, not loaded
    assert not unexpected and all(m in ("lm_head.weight",) or "rotary" in m for m in missing), \
        (missing, unexpected)
    model.tie_weights()
    return model


def last_logits(model, ids):
    with torch.no_grad():
        out = model(torch.tensor([ids], dtype=torch.long))
    return out.logits[0, -1].numpy()


def main():
    model = load(sys.argv[1] if len(sys.argv) > 1 else MODEL)
    tok = Tokenizer.from_file(TOKENIZER)
    lines = [
        "# SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised by gguf-py), Hugging Face transformers "
        "LlamaForCausalLM in float64,",
        "# prompts encoded by Hugging Face tokenizers; written by tests/gen_model_ref.py",
    ]
    for case, prompt in enumerate(PROMPTS):
        ids = tok.encode(prompt, add_special_tokens=False).ids
        logits = last_logits(model, ids)
        top = np.argsort(-logits, kind="stable")[:5]
        seq = list(ids)
        steps = []
        for k in range(STEPS):
            lg = logits if k == 0 else last_logits(model, seq)
            order = np.argsort(-lg, kind="stable")[:2]
            margin = float(lg[order[0]] - lg[order[1]])
            if margin < MIN_MARGIN:
                sys.exit(f"prompt {case}, step {k}: greedy margin {margin:.4f} is too small; "
                         "choose another prompt")
            steps.append((int(order[0]), float(lg[order[0]]), margin))
            seq.append(int(order[0]))
        text = tok.decode([s[0] for s in steps], skip_special_tokens=False)
        lines.append(f"# case {case}: {prompt!r} -> {text!r}")
        lines.append(f"prompt {case} {prompt.encode('utf-8').hex()}")
        lines.append(f"ids {case} {len(ids)} " + " ".join(str(i) for i in ids))
        lines.append(f"top5 {case} " + " ".join(f"{int(i)} {float(logits[i])!r}" for i in top))
        for k, (t, lg, margin) in enumerate(steps):
            lines.append(f"step {case} {k} {t} {lg!r} {margin!r}")
        print(lines[-STEPS - 4], file=sys.stderr)
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
