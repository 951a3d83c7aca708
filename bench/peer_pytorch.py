#!/usr/bin/env python3
"""The PyTorch peer of bench_suite's training step: the same prompt-tuning step, on the CPU.

Same weights (the GGUF file, dequantised to float32 here with numpy), same batch (token ids and
targets from the 64-bit LCG that bench/bench_train_lib.c uses), same prompt shapes (LAMP: P
prompt tokens, rank 8, pooled by 2; PT: P x C, no pooling; DPT: bottleneck 10, no pooling), same
step: prompt forward, model forward with the prompt rows prepended, cross-entropy over the label
words at the last token, backward (the frozen weights do not require gradients, so autograd
computes the gradient of the prompt parameters only), global-norm clipping, AdamW with lamp's
defaults. The frozen model is a Llama with the same fused QKV and gate/up products as lamp's.

With --pt-ids the PT prompt starts from those embedding rows, as lamp's does, so the first loss
of PT can be compared with lamp's. Writes a JSON file that bench_suite reads (--peer-json).

Needs numpy and torch (Debian: python3-torch); exits with status 3 and a message without them.
Usage: peer_pytorch.py --model FILE.gguf [--batch 8] [--tokens 128] [--prompt 100]
                       [--labels 2] [--steps 3] [--seed 42] [--methods lamp,pt,dpt]
                       [--threads N (default: every core)] [--pt-ids I,J,...] [--json FILE]
"""
import argparse
import json
import math
import os
import resource
import struct
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the peer is optional: say what is missing and stop
    sys.stderr.write("peer_pytorch.py: %s: install PyTorch for the CPU (Debian: "
                     "apt-get install python3-torch) to run the peer\n" % e)
    sys.exit(3)

MASK64 = (1 << 64) - 1

# ---- GGUF ------------------------------------------------------------------------------------

GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                10: "<Q", 11: "<q", 12: "<d"}
GGML_F32, GGML_F16, GGML_Q4_1, GGML_Q8_0 = 0, 1, 3, 8


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0]

    def string(self):
        n = self.take("<Q")
        s = self.data[self.pos:self.pos + n].decode("utf-8", "replace")
        self.pos += n
        return s

    def value(self, t):
        if t in GGUF_SCALARS:
            return self.take(GGUF_SCALARS[t])
        if t == 8:
            return self.string()
        if t == 9:
            at, n = self.take("<I"), self.take("<Q")
            return [self.value(at) for _ in range(n)]
        raise ValueError("unknown GGUF value type %d" % t)


def dequantise(raw, ggml_type, count):
    if ggml_type == GGML_F32:
        return np.frombuffer(raw, dtype=np.float32, count=count).copy()
    if ggml_type == GGML_F16:
        return np.frombuffer(raw, dtype=np.float16, count=count).astype(np.float32)
    blocks = count // 32
    if ggml_type == GGML_Q4_1:  # per 32: f16 scale d, f16 minimum m, 16 bytes of nibbles
        b = np.frombuffer(raw, dtype=np.uint8, count=blocks * 20).reshape(blocks, 20)
        d = b[:, 0:2].copy().view(np.float16).astype(np.float32)
        m = b[:, 2:4].copy().view(np.float16).astype(np.float32)
        qs = b[:, 4:20]
        q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32)
        return (q * d + m).reshape(-1)
    if ggml_type == GGML_Q8_0:  # per 32: f16 scale d, 32 signed bytes
        b = np.frombuffer(raw, dtype=np.uint8, count=blocks * 34).reshape(blocks, 34)
        d = b[:, 0:2].copy().view(np.float16).astype(np.float32)
        q = b[:, 2:34].copy().view(np.int8).astype(np.float32)
        return (q * d).reshape(-1)
    raise ValueError("GGML type %d is not supported by this peer" % ggml_type)


def load_gguf(path):
    with open(path, "rb") as f:
        data = f.read()
    r = Reader(data)
    if r.take("<I") != 0x46554747:
        raise ValueError("%s is not a GGUF file" % path)
    version = r.take("<I")
    if version not in (2, 3):
        raise ValueError("GGUF version %d not supported" % version)
    n_tensors, n_kv = r.take("<Q"), r.take("<Q")
    meta = {}
    for _ in range(n_kv):
        key = r.string()
        meta[key] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        dims = [r.take("<Q") for _ in range(r.take("<I"))]
        infos.append((name, dims, r.take("<I"), r.take("<Q")))
    align = meta.get("general.alignment", 32)
    start = (r.pos + align - 1) // align * align
    tensors = {}
    for name, dims, t, off in infos:
        count = int(np.prod(dims))
        x = dequantise(memoryview(data)[start + off:], t, count)
        # ggml's dims run fastest first: (cols, rows) is a row-major rows x cols matrix
        tensors[name] = torch.from_numpy(x.reshape(list(reversed(dims))) if len(dims) > 1 else x)
    return meta, tensors


# ---- the frozen model ------------------------------------------------------------------------

class Llama:
    def __init__(self, path):
        meta, t = load_gguf(path)
        a = meta["general.architecture"]
        self.L = meta[a + ".block_count"]
        self.C = meta[a + ".embedding_length"]
        self.H = meta[a + ".attention.head_count"]
        self.Hkv = meta[a + ".attention.head_count_kv"]
        self.D = self.C // self.H
        self.eps = meta[a + ".attention.layer_norm_rms_epsilon"]
        base = meta.get(a + ".rope.freq_base", 10000.0)
        self.inv_freq = base ** (-torch.arange(0, self.D, 2, dtype=torch.float64) / self.D)
        self.embd = t["token_embd.weight"]  # (V, C)
        self.V = self.embd.shape[0]
        self.out = t.get("output.weight", self.embd)
        self.out_norm = t["output_norm.weight"]
        self.layers = []
        for i in range(self.L):
            g = lambda n: t["blk.%d.%s.weight" % (i, n)]
            q = self.unpermute(g("attn_q"), self.H)
            k = self.unpermute(g("attn_k"), self.Hkv)
            self.layers.append({
                "attn_norm": g("attn_norm"), "ffn_norm": g("ffn_norm"),
                "wqkv": torch.cat([q, k, g("attn_v")], 0).contiguous(),
                "wo": g("attn_output").contiguous(),
                "wgu": torch.cat([g("ffn_gate"), g("ffn_up")], 0).contiguous(),
                "wdown": g("ffn_down").contiguous()})

    def unpermute(self, w, heads):
        """llama.cpp's Q/K rows back in Hugging Face order: GGUF row 2i + j of a head is row
        j D/2 + i, so that the rotate-half RoPE below applies."""
        D = self.D
        return w.reshape(heads, D // 2, 2, -1).transpose(1, 2).reshape(heads * D, -1)

    def rmsnorm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rope_tables(self, S):
        ang = torch.arange(S, dtype=torch.float64)[:, None] * self.inv_freq[None, :]
        return torch.cos(ang).float(), torch.sin(ang).float()  # (S, D/2)

    @staticmethod
    def rope(x, cos, sin):  # x (B, heads, S, D), rotate-half pairing
        h = x.shape[-1] // 2
        x1, x2 = x[..., :h], x[..., h:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)

    def forward(self, prompt, ids, labels):
        """prompt (P', C), ids (B, T): label logits (B, K) at each sequence's last token."""
        B, T = ids.shape
        x = torch.cat([prompt.unsqueeze(0).expand(B, -1, -1), self.embd[ids]], 1)
        S, H, Hkv, D = x.shape[1], self.H, self.Hkv, self.D
        cos, sin = self.rope_tables(S)
        mask = torch.full((S, S), float("-inf")).triu(1)
        for y in self.layers:
            h = self.rmsnorm(x, y["attn_norm"])
            qkv = h @ y["wqkv"].t()
            q, k, v = qkv.split([H * D, Hkv * D, Hkv * D], -1)
            q = self.rope(q.view(B, S, H, D).transpose(1, 2), cos, sin)
            k = self.rope(k.view(B, S, Hkv, D).transpose(1, 2), cos, sin)
            v = v.view(B, S, Hkv, D).transpose(1, 2)
            k = k.repeat_interleave(H // Hkv, 1)  # query head h reads KV head h / (H / Hkv)
            v = v.repeat_interleave(H // Hkv, 1)
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D) + mask, -1) @ v
            x = x + att.transpose(1, 2).reshape(B, S, H * D) @ y["wo"].t()
            h = self.rmsnorm(x, y["ffn_norm"])
            g, u = (h @ y["wgu"].t()).chunk(2, -1)
            x = x + (F.silu(g) * u) @ y["wdown"].t()
        hf = self.rmsnorm(x[:, -1], self.out_norm)
        return hf @ self.out[labels].t()


# ---- prompts ---------------------------------------------------------------------------------

def pool_rows(x, s):
    """Average of rows j s .. min(j s + s, P) - 1, as lamp's pool_s."""
    if s == 1:
        return x
    P = x.shape[0]
    return torch.stack([x[j:min(j + s, P)].mean(0) for j in range(0, P, s)])


def make_prompt(method, model, P, gen, pt_ids):
    sample = lambda: model.embd[torch.randperm(min(model.V, 5000), generator=gen)[:P]].clone()
    if method == "lamp":  # truncated SVD of P0 (embedding rows), rank 8, pooled by 2
        U, S, Vh = torch.linalg.svd(sample(), full_matrices=False)
        params = [U[:, :8].contiguous(), S[:8].clone(), Vh[:8].contiguous()]
        forward = lambda p: (pool_rows(p[0], 2) * p[1]) @ p[2]
    elif method == "pt":
        p0 = model.embd[torch.tensor(pt_ids)].clone() if pt_ids else sample()
        params = [p0]
        forward = lambda p: p[0]
    elif method == "dpt":  # A (P, b), B (b, C), Uniform(-0.5, 0.5), b = 10
        params = [torch.rand(P, 10, generator=gen) - 0.5,
                  torch.rand(10, model.C, generator=gen) - 0.5]
        forward = lambda p: p[0] @ p[1]
    else:
        raise ValueError("unknown method %s" % method)
    for p in params:
        p.requires_grad_(True)
    return params, forward


def lcg_batch(B, T, V, K, seed):
    """bench_train_batch: ids then targets from state = state * a + c (mod 2^64), value >> 33."""
    s, out = seed, []
    for _ in range(B * T + B):
        s = (s * 6364136223846793005 + 1442695040888963407) & MASK64
        out.append(s >> 33)
    ids = torch.tensor([v % V for v in out[:B * T]], dtype=torch.long).view(B, T)
    targets = torch.tensor([v % K for v in out[B * T:]], dtype=torch.long)
    return ids, targets


def run_method(method, model, a, pt_ids):
    gen = torch.Generator().manual_seed(1)
    params, prompt_forward = make_prompt(method, model, a.prompt, gen, pt_ids)
    opt = torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    ids, targets = lcg_batch(a.batch, a.tokens, model.V, a.labels, a.seed)
    K = a.labels
    labels = torch.tensor([(k + 1) * model.V // (K + 1) for k in range(K)], dtype=torch.long)
    times, losses = [], []
    for step in range(1 + a.steps):  # one warm-up, then the timed steps
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        logits = model.forward(prompt_forward(params), ids, labels)
        loss = F.cross_entropy(logits, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        losses.append(loss.item())
        if step:
            times.append(dt)
        sys.stderr.write("peer_pytorch.py: %s step %d: %.3f s, loss %.4f\n" % (method, step, dt,
                                                                              losses[-1]))
    times.sort()
    n = len(times)
    median = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    return {"step_seconds": median, "steps": times, "loss_first": losses[0],
            "loss_last": losses[-1], "tokens_per_second": a.batch * a.tokens / median,
            "trainable": sum(p.numel() for p in params)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=100)
    ap.add_argument("--labels", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--methods", default="lamp,pt,dpt")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--pt-ids", default="")
    ap.add_argument("--json", default="peer_pytorch.json")
    a = ap.parse_args()
    if min(a.batch, a.tokens, a.prompt, a.labels, a.steps) < 1:
        ap.error("batch, tokens, prompt, labels and steps must be positive")
    # all the host's cores by default, as PoCL uses them for lamp
    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    pt_ids = [int(v) for v in a.pt_ids.split(",")] if a.pt_ids else None
    if pt_ids is not None and len(pt_ids) != a.prompt:
        ap.error("--pt-ids needs exactly --prompt ids")
    t0 = time.perf_counter()
    model = Llama(a.model)
    load = time.perf_counter() - t0
    sys.stderr.write("peer_pytorch.py: %s loaded in %.1f s (L %d, C %d, V %d), torch %s, %d "
                     "threads\n" % (a.model, load, model.L, model.C, model.V, torch.__version__,
                                    torch.get_num_threads()))
    methods = {}
    for m in a.methods.split(","):
        methods[m] = run_method(m, model, a, pt_ids)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "config": {"model": a.model, "batch": a.batch, "tokens": a.tokens, "prompt": a.prompt,
                      "labels": a.labels, "steps": a.steps, "seed": a.seed},
           "load_seconds": load,
           "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
           "methods": methods}
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
