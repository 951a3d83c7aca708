#!/usr/bin/env python3
"""Tiny random-weight models of the architectures beyond Llama, and their reference outputs,
for tests/test_arch.c. Hugging Face `transformers` builds each model (Qwen2ForCausalLM,
MistralForCausalLM, Phi3ForCausalLM, eager attention) and runs it in float64; gguf-py's
GGUFWriter writes the same weights as a GGUF file the way llama.cpp's convert_hf_to_gguf.py
names and orders them:
  qwen2   general.architecture "qwen2", Q/K/V biases as blk.<i>.attn_{q,k,v}.bias, no Q/K
          row reordering (llama.cpp runs Qwen2 with rotate-half RoPE), tied embeddings
  mistral general.architecture "llama" (llama.cpp converts Mistral as Llama), Q/K rows
          reordered for llama.cpp's interleaved RoPE; the HF config has a 16-position
          sliding window, which every sequence here fits (GGUF "llama" does not carry it)
  phi3    general.architecture "phi3", fused blk.<i>.attn_qkv.weight (rows Q, K, V) and
          blk.<i>.ffn_up.weight (rows gate, then up), no reordering, sliding window 2047
  gemma2  general.architecture "gemma2": sandwich norms (blk.<i>.post_attention_norm,
          ffn_norm, post_ffw_norm), GeGLU, embeddings times sqrt(width), attention and final
          logit soft-capping (1.5 and 3.0, small enough to bend these scores), sliding window
          32 on the even layers, query_pre_attn_scalar = head width (llama.cpp stores no such
          key); norms stored as 1 + w as llama.cpp's converter writes them, no reordering
  gemma3  general.architecture "gemma3" (HF Gemma3ForCausalLM, model_type "gemma3_text"): as
          gemma2 without soft-capping, plus Q/K norms (blk.<i>.attn_{q,k}_norm) and RoPE base
          10000 on local layers, 1e6 on global ones; sliding_window_pattern 2 (layer 1 global),
          written as <arch>.attention.sliding_window_pattern and the local base as
          <arch>.rope.freq_base_swa (llama.cpp's defaults are 6 and 10000)

Every model: 2 layers, width 64, 4 heads, 2 KV heads, head width 16, MLP 128, vocabulary 256,
weights drawn with a fixed seed and rounded to float16, the precision both files store (so the
float64 reference runs on exactly the weights lamp reads).

Writes tests/data/arch/<name>/{config.json, model.safetensors, model.gguf, ref.txt}; ref.txt is
whitespace-separated records:
  tokens T <T ids>
  logits T V <T V values>      (the model on the tokens alone, every position)
  prompt P C <P C values>      (a soft prompt, prepended as inputs_embeds)
  outputs M <M token positions> <M targets>   (positions counted from the first token)
  loss <mean cross-entropy at those positions, with the prompt>
  grad P C <P C values>        (its gradient with respect to the prompt)

With --window (mistral, gemma2, gemma3) it writes tests/data/arch/<name>/window.txt instead,
from the checked-in model.safetensors: the logits of every position of a sequence 8 positions
longer than the sliding window, where the masks of transformers' eager attention keep each
query's last `window` positions on the windowed layers (all of Mistral's, Gemma's local ones):
  window W
  tokens T <T ids>
  logits T V <T V values, 9 significant digits>

Usage (once, on a developer's machine; nothing here runs in CI), with the names to write
(default: all):
  python3 -m venv /tmp/g3ref
  /tmp/g3ref/bin/pip install torch==2.5.1 transformers==4.50.3 safetensors gguf 'numpy<2'
  /tmp/g3ref/bin/python tests/gen_arch_models.py [qwen2 mistral phi3 gemma2 gemma3]
  /tmp/g3ref/bin/python tests/gen_arch_models.py --window [mistral gemma2 gemma3]
window.txt was written with transformers 4.50.3 and torch 2.5.1.
qwen2, mistral and phi3 were written with transformers 4.41.2 and Debian's torch 1.13 (4.41 is
the first with Phi-3); gemma2 and gemma3 with transformers 4.50.3 and torch 2.5.1 (Gemma 3
needs 4.50). Rerun with 4.50.3, the first three come out with identical weight files and
reference values within 1e-6 of those checked in (4.41 computed RoPE's frequencies in float32
differently), so they stay as 4.41.2 wrote them.
"""
import copy
import os
import sys

import numpy as np
import torch
from gguf import GGUFWriter
from transformers import (MistralConfig, MistralForCausalLM, Phi3Config, Phi3ForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

ALL = ["qwen2", "mistral", "phi3", "gemma2", "gemma3"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "arch")

DIMS = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
H, HKV, D, C = 4, 2, 16, 64
TOKENS = [3, 141, 59, 26, 253, 58, 97, 93, 238, 4, 62, 64]
P = 3
OUT_POS = [2, 5, 11]
OUT_TARGETS = [17, 200, 5]


def build(name):
    if name == "qwen2":
        cfg = Qwen2Config(**DIMS, rms_norm_eps=1e-6, rope_theta=1000000.0,
                          tie_word_embeddings=True, use_sliding_window=False)
        return Qwen2ForCausalLM(cfg), "qwen2"
    if name == "mistral":
        cfg = MistralConfig(**DIMS, rms_norm_eps=1e-5, rope_theta=10000.0,
                            tie_word_embeddings=False, sliding_window=16)
        return MistralForCausalLM(cfg), "llama"
    if name == "gemma2":
        from transformers import Gemma2Config, Gemma2ForCausalLM
        cfg = Gemma2Config(**DIMS, head_dim=D, query_pre_attn_scalar=D, rms_norm_eps=1e-6,
                           rope_theta=10000.0, sliding_window=32, attn_logit_softcapping=1.5,
                           final_logit_softcapping=3.0, hidden_activation="gelu_pytorch_tanh",
                           tie_word_embeddings=True)
        return Gemma2ForCausalLM(cfg), "gemma2"
    if name == "gemma3":
        from transformers import Gemma3ForCausalLM, Gemma3TextConfig
        cfg = Gemma3TextConfig(**DIMS, head_dim=D, query_pre_attn_scalar=D, rms_norm_eps=1e-6,
                               rope_theta=1000000.0, rope_local_base_freq=10000.0,
                               sliding_window=32, sliding_window_pattern=2,
                               hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True)
        return Gemma3ForCausalLM(cfg), "gemma3"
    cfg = Phi3Config(**DIMS, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                     sliding_window=2047, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return Phi3ForCausalLM(cfg), "phi3"


def llama_permute(w, heads):
    """llama.cpp's converter order of Q/K rows (LlamaModel.permute)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(
        w.shape)


GGUF_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.qkv_proj.weight": "attn_qkv.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.gate_up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}

# Gemma's sandwich norms: post_attention_layernorm follows the attention there
GEMMA_NAMES = dict(GGUF_NAMES, **{
    "post_attention_layernorm.weight": "post_attention_norm.weight",
    "pre_feedforward_layernorm.weight": "ffn_norm.weight",
    "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
})


def write_gguf(path, arch, model, cfg):
    w = GGUFWriter(path, arch)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(C)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(H)
    w.add_head_count_kv(HKV)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_rope_dimension_count(D)
    w.add_vocab_size(cfg.vocab_size)
    if arch == "phi3":
        w.add_sliding_window(cfg.sliding_window)
    gemma = arch.startswith("gemma")
    if gemma:
        w.add_key_length(D)
        w.add_value_length(D)
        w.add_sliding_window(cfg.sliding_window)
    if arch == "gemma2":
        w.add_attn_logit_softcapping(cfg.attn_logit_softcapping)
        w.add_final_logit_softcapping(cfg.final_logit_softcapping)
    if arch == "gemma3":
        w.add_sliding_window_pattern(cfg.sliding_window_pattern)
        w.add_rope_freq_base_swa(cfg.rope_local_base_freq)
    for hf, t in model.state_dict().items():
        a = t.detach().to(torch.float16).numpy()
        if hf == "model.embed_tokens.weight":
            name = "token_embd.weight"
        elif hf == "model.norm.weight":
            name = "output_norm.weight"
        elif hf == "lm_head.weight":
            if cfg.tie_word_embeddings:
                continue
            name = "output.weight"
        else:
            parts = hf.split(".")
            layer, rest = parts[2], ".".join(parts[3:])
            name = "blk.%s.%s" % (layer, (GEMMA_NAMES if gemma else GGUF_NAMES)[rest])
            if arch == "llama" and rest == "self_attn.q_proj.weight":
                a = llama_permute(a, H)
            elif arch == "llama" and rest == "self_attn.k_proj.weight":
                a = llama_permute(a, HKV)
        # llama.cpp's Gemma converters store every norm weight as 1 + w
        if gemma and hf.endswith("norm.weight"):
            a = a.astype(np.float64) + 1.0
        # norms stay f32 as in llama.cpp's files; matrices f16
        w.add_tensor(name, a.astype(np.float32) if a.ndim == 1 else a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def fmt(values):
    return " ".join("%.17g" % v for v in np.asarray(values, dtype=np.float64).ravel())


def write_window(name):
    from safetensors.torch import load_file
    model, _ = build(name)
    model.config._attn_implementation = "eager"
    d = os.path.join(OUT, name)
    weights = {k: v.to(torch.float64) for k, v in load_file(os.path.join(d, "model.safetensors")).items()}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert not unexpected and all(k == "lm_head.weight" for k in missing), (missing, unexpected)
    model = model.to(torch.float64).eval()
    if missing:
        model.tie_weights()
    w = model.config.sliding_window
    gen = torch.Generator().manual_seed(11)
    ids = torch.randint(0, model.config.vocab_size, (1, w + 8), generator=gen)
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=False).logits[0]
    with open(os.path.join(d, "window.txt"), "w") as f:
        f.write("window %d\n" % w)
        f.write("tokens %d %s\n" % (ids.shape[1], " ".join(map(str, ids[0].tolist()))))
        f.write("logits %d %d %s\n" % (ids.shape[1], model.config.vocab_size,
                                        " ".join("%.9g" % v for v in logits.ravel().tolist())))
    print(name, "window", w, "tokens", ids.shape[1])


def main():
    # torch 1.13's masks are built in the default dtype and hold float64's minimum
    torch.set_default_dtype(torch.float64)
    if sys.argv[1:2] == ["--window"]:
        for name in sys.argv[2:] or ["mistral", "gemma2", "gemma3"]:
            write_window(name)
        return
    for name in sys.argv[1:] or ALL:
        torch.manual_seed({"qwen2": 1, "mistral": 2, "phi3": 3, "gemma2": 4, "gemma3": 5}[name])
        model, arch = build(name)
        cfg = model.config
        cfg._attn_implementation = "eager"
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if pname.endswith("norm.weight") and arch.startswith("gemma"):
                    p.copy_(0.2 * torch.randn_like(p))  # Gemma's norms scale by 1 + w
                elif pname.endswith("norm.weight"):
                    p.copy_(1.0 + 0.2 * torch.randn_like(p))
                else:  # biases included: transformers initialises them to zero
                    p.copy_(0.15 * torch.randn_like(p))
                p.copy_(p.to(torch.float16).to(p.dtype))
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        # a copy: .to() also rounds buffers such as RoPE's inverse frequencies
        copy.deepcopy(model).to(torch.float16).save_pretrained(d, safe_serialization=True)
        for extra in ["generation_config.json"]:
            if os.path.exists(os.path.join(d, extra)):
                os.remove(os.path.join(d, extra))
        model = model.to(torch.float64).eval()
        write_gguf(os.path.join(d, "model.gguf"), arch, model, cfg)

        ids = torch.tensor([TOKENS])
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits[0]
        gen = torch.Generator().manual_seed(7)
        prompt = (0.5 * torch.randn(P, C, generator=gen, dtype=torch.float64))
        prompt = prompt.to(torch.float32).to(torch.float64).requires_grad_(True)
        emb = model.get_input_embeddings()(ids)[0].detach()
        # Gemma 3's embedding module scales its rows (inputs_embeds are taken as they are);
        # Gemma 2 scales whatever enters the first block, the prompt included
        out = model(inputs_embeds=torch.cat([prompt, emb]).unsqueeze(0),
                    use_cache=False).logits[0]
        rows = torch.tensor([P + p for p in OUT_POS])
        loss = torch.nn.functional.cross_entropy(out[rows], torch.tensor(OUT_TARGETS))
        loss.backward()
        with open(os.path.join(d, "ref.txt"), "w") as f:
            f.write("tokens %d %s\n" % (len(TOKENS), " ".join(map(str, TOKENS))))
            f.write("logits %d %d %s\n" % (len(TOKENS), cfg.vocab_size, fmt(logits)))
            f.write("prompt %d %d %s\n" % (P, C, fmt(prompt.detach())))
            f.write("outputs %d %s %s\n" % (len(OUT_POS), " ".join(map(str, OUT_POS)),
                                             " ".join(map(str, OUT_TARGETS))))
            f.write("loss %.17g\n" % loss.item())
            f.write("grad %d %d %s\n" % (P, C, fmt(prompt.grad)))
        print(name, "loss", loss.item(), "files", sorted(os.listdir(d)))


if __name__ == "__main__":
    main()
