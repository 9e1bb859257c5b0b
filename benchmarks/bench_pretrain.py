"""Pretraining throughput and quality (issue 4), one run on this machine:
training tokens/s of the shipped model's shape (bf16 autocast where the CPU/GPU supports it,
logits only at masked positions) and the share of a plain bf16 matmul's FLOP/s it reaches;
held-out MLM accuracy / perplexity of the shipped model (its own held-out slice).
    python benchmarks/bench_pretrain.py [--model DIR] [--steps 12]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import matmul_flops, write  # noqa: E402

from zhtools.models.loader import default_model_path  # noqa: E402
from zhtools.text import ZhTokenizer  # noqa: E402
from zhtools.train.pretrain import MaskedLMOnly, mask_tokens  # noqa: E402


def train_flops(cfg, batch: int, T: int, masked: int) -> float:
    H, L, FF, V = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size, cfg.vocab_size
    fwd = batch * L * (2 * T * (4 * H * H + 2 * H * FF) + 4 * T * T * H) + masked * 2 * (H * H + H * V)
    return 3 * fwd  # forward + backward (2x)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch-tokens", type=int, default=8192)
    ap.add_argument("--max-len", type=int, default=128)
    args = ap.parse_args()
    from transformers import AutoConfig, AutoModelForMaskedLM

    cfg = AutoConfig.from_pretrained(args.model)
    tok = ZhTokenizer.from_pretrained(args.model)
    model = MaskedLMOnly(AutoModelForMaskedLM.from_config(cfg).float())  # shipped config says fp16
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    B, T = args.batch_tokens // args.max_len, args.max_len
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, tok.vocab_size, (B, T), generator=g)
    attn = torch.ones_like(ids)
    inp, lab = mask_tokens(ids, attn, tok, g)
    masked = int((lab != -100).sum())
    rows = []
    cap = torch.backends.cpu.get_cpu_capability()
    modes = [("fp32", False)] + ([("bf16 autocast", True)] if ("AVX512" in cap or "AMX" in cap) else [])
    peak = {"fp32": matmul_flops(torch.float32), "bf16 autocast": matmul_flops(torch.bfloat16)}
    for name, bf in modes:
        ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf else (lambda: torch.autocast("cpu", enabled=False))
        for k in range(args.steps + 2):
            if k == 2:
                t = time.perf_counter()
            with ctx():
                loss, _, _ = model(inp, attn, lab)
            loss.backward()
            opt.step()
            opt.zero_grad()
        dt = (time.perf_counter() - t) / args.steps
        fl = train_flops(cfg, B, T, masked) / dt
        rows.append({"mode": name, "tokens_per_s": B * T / dt, "train_gflops": fl / 1e9,
                     "matmul_peak_gflops": peak[name] / 1e9, "share_of_peak": fl / peak[name]})
        print(rows[-1], flush=True)
    info_p = Path(args.model) / "pretrain_info.json"
    info = json.loads(info_p.read_text()) if info_p.exists() else {}
    write("pretrain", {"model": args.model, "shape": {"layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size,
                       "vocab": cfg.vocab_size}, "heldout": info.get("last_eval"), "goal_mlm_acc": 0.50,
                       "pretrain_info": info}, rows,
          f"Training step throughput of the shipped shape ({cfg.num_hidden_layers}L-{cfg.hidden_size}H, "
          f"{B}x{T} tokens/step, MLM head at masked positions only) vs a plain 1024^3 matmul in the "
          f"same dtype, same process. Held-out MLM of the shipped model: {info.get('last_eval')}.")


if __name__ == "__main__":
    main()
