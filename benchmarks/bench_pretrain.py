"""Pretraining throughput and quality (issue 4), one run on this machine:
training tokens/s of the shipped model's shape (bf16 autocast where the CPU/GPU supports it,
logits only at masked positions) and the share of a plain bf16 matmul's FLOP/s it reaches;
held-out MLM accuracy / perplexity of the shipped model (its own held-out slice: the 256
sequences scored during training, and all of them up to 1,024: 691 here), next to --compare models
(same vocabulary) scored on the same sequences and masks in the same run.
    python benchmarks/bench_pretrain.py [--model DIR] [--steps 12] [--compare NAME=DIR ...]
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
from zhtools.train.pretrain import (  # noqa: E402
    MaskedLMOnly,
    PretrainConfig,
    evaluate_mlm,
    heldout_sequences,
    mask_tokens,
)


def train_flops(cfg, batch: int, T: int, masked: int) -> float:
    H, L, FF, V = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size, cfg.vocab_size
    fwd = batch * L * (2 * T * (4 * H * H + 2 * H * FF) + 4 * T * T * H) + masked * 2 * (H * H + H * V)
    return 3 * fwd  # forward + backward (2x)


def heldout_table(model_dir: str, models: list[tuple[str, str]]) -> list[dict]:
    """Held-out MLM accuracy / perplexity of each model (fp16 weights loaded as fp32, no autocast)
    on the shipped run's held-out slice, 256 and 1,024 sequences, same masks for every model."""
    from transformers import AutoModelForMaskedLM

    pcfg = PretrainConfig(**json.loads((Path(model_dir) / "pretrain_config.json").read_text()))
    tok = ZhTokenizer.from_pretrained(model_dir)
    pcfg.heldout_seqs = 1024
    held = heldout_sequences(pcfg, tok)  # its first 256 are the training-time slice, same masks
    rows: dict[tuple[int, str], dict] = {}
    for name, path in models:
        m = MaskedLMOnly(AutoModelForMaskedLM.from_pretrained(path, dtype=torch.float32)).eval()
        for n in (256, len(held)):
            with torch.inference_mode():
                ev = evaluate_mlm(m, held[:n], tok, pcfg, torch.device("cpu"))
            rows[n, name] = {"mode": f"held-out MLM, {name}, {n} sequences",
                             "layers": m.mlm.config.num_hidden_layers, **ev}
            print(rows[n, name], flush=True)
    return [rows[k] for k in sorted(rows, key=lambda k: (k[0], [n for n, _ in models].index(k[1])))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch-tokens", type=int, default=8192)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--compare", nargs="*", default=[], metavar="NAME=DIR",
                    help="other masked LMs with the same tokenizer, scored on the same held-out masks")
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
    heldout = heldout_table(args.model, [("shipped", args.model), *(c.split("=", 1) for c in args.compare)])
    write("pretrain", {"model": args.model, "shape": {"layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size,
                       "vocab": cfg.vocab_size}, "heldout": info.get("last_eval"), "goal_mlm_acc": 0.50,
                       "heldout_same_run": heldout, "pretrain_info": info}, rows + heldout,
          f"Training step throughput of the shipped shape ({cfg.num_hidden_layers}L-{cfg.hidden_size}H, "
          f"{B}x{T} tokens/step, MLM head at masked positions only) vs a plain 1024^3 matmul in the "
          f"same dtype, same process. Held-out MLM of the shipped model: {info.get('last_eval')}.")


if __name__ == "__main__":
    main()
