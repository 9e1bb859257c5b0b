"""Impact-engine speed (issue 3), one run, same model and sentences:
engine full matrix vs the paper-schedule oracle (sentences/s ratio, goal >= 10x); adjacent
mode chars/s; engine forward FLOP/s as a fraction of a plain fp32 matmul's FLOP/s measured in
the same run (goal >= 0.5).
    python benchmarks/bench_probe.py [--model DIR] [--sentences N] [--max-chars 40]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import SHARED, matmul_flops, require, write  # noqa: E402
from helpers import oracle_matrix  # noqa: E402

from zhtools.models import load_encoder  # noqa: E402
from zhtools.models.loader import default_model_path  # noqa: E402
from zhtools.probe import ImpactEngine  # noqa: E402
from zhtools.text import split_sentences  # noqa: E402


def forward_flops(cfg, seqs: list[tuple[int, int]], layers: int | None = None, factorised: bool = True) -> float:
    """FLOPs (2 per multiply-add) the engine spends on perturbed copies ``(T tokens, m read
    positions)`` through the first ``layers`` layers (default all). ``factorised`` (the engine's
    path on BERT-style encoders): layer 1 skips its query/key/value projections (computed once
    per window and token variant, not counted here: < 2% of the work), the read layer runs only
    at the m read positions with its key/value projections folded into the queries
    (:func:`zhtools.probe.engine.layer_at`). Otherwise every layer runs in full."""
    H, FF, nh = cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads
    L = layers or cfg.num_hidden_layers
    tot = 0.0
    for T, m in seqs:
        full = 2 * T * (4 * H * H + 2 * H * FF) + 4 * T * T * H
        if not factorised:
            tot += L * full
            continue
        first = full - 2 * T * 3 * H * H
        read = m * (2 * 4 * H * H + 4 * H * FF + 4 * nh * T * H)
        tot += (first if L > 1 else 0) + max(L - 2, 0) * full + read
    return tot


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--sentences", type=int, default=40)
    ap.add_argument("--max-chars", type=int, default=40)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    text = require(SHARED / "icwb2_sighan2005" / "testing" / "pku_test.utf8").read_text(encoding="utf-8")
    sents = [ln[s:e] for ln in text.splitlines() for s, e in split_sentences(ln, max_chars=args.max_chars)
             if e - s >= 10][: args.sentences]
    enc = load_encoder(args.model)
    eng = ImpactEngine(enc, budget=8192)
    units = [eng.char_units(s) for s in sents]
    n_units = [len(u) for u in units]
    peak = matmul_flops()
    eng.full(units[:2])  # warm-up
    t = time.perf_counter()
    full = eng.full(units)
    t_full = time.perf_counter() - t
    # FLOPs of the engine's schedule: n singles + n(n-1)/2 pairs, each of length n+2
    # (tokens, read positions): n singles read 1 position, n(n-1)/2 pairs read 2
    seq = [(n + 2, 1) for n in n_units for _ in range(n)] + [(n + 2, 2) for n in n_units
                                                             for _ in range(n * (n - 1) // 2)]
    fl = forward_flops(enc.model.config, seq, factorised=eng._layers is not None)
    t = time.perf_counter()
    for u in units:  # same sentences as the engine (no extrapolation)
        oracle_matrix(enc, u)
    t_oracle = time.perf_counter() - t
    t = time.perf_counter()
    eng.adjacent(units)
    t_adj = time.perf_counter() - t
    # the layer the segmenter and parser read by default ("auto"): the engine runs only the
    # layers up to it; the paper's code runs the whole encoder and picks that hidden state
    auto = ImpactEngine(enc, budget=8192, layer="auto")
    k = auto.layer if auto.layer >= 0 else enc.model.config.num_hidden_layers
    auto.full(units[:2])
    t = time.perf_counter()
    auto.full(units)
    t_auto = time.perf_counter() - t
    t = time.perf_counter()
    for u in units:
        oracle_matrix(enc, u, layer=auto.layer)
    t_oracle_auto = time.perf_counter() - t
    # the same layer through the plain truncated forward (no factorisation), for its share
    plain = ImpactEngine(enc, budget=8192, layer="auto")
    plain._layers = None
    plain.full(units[:2])
    t = time.perf_counter()
    plain.full(units)
    t_plain = time.perf_counter() - t
    # adjacent mode at that layer (what the segmenter runs): factorised vs plain, fp32 vs bf16
    adj = {}
    for bf16 in (False, True):
        for fact in (True, False):
            e = auto if (fact and not bf16) else ImpactEngine(enc, budget=8192, layer="auto", bf16=bf16)
            if not fact:
                e._layers = None
            e.adjacent(units[:2])
            t = time.perf_counter()
            e.adjacent(units)
            adj[bf16, fact] = time.perf_counter() - t
    fl_auto = forward_flops(enc.model.config, seq, k, factorised=auto._layers is not None)
    nchars = sum(n_units)
    rows = [
        {"method": "oracle (paper schedule: n batches of n)", "sentences_per_s": len(units) / t_oracle, "speedup": 1.0},
        {"method": "engine full matrix (n + n(n-1)/2, token budget)", "sentences_per_s": len(units) / t_full,
         "speedup": t_oracle / t_full, "forward_gflops": fl / t_full / 1e9, "matmul_fp32_gflops": peak / 1e9,
         "flops_fraction": fl / t_full / peak},
        {"method": "engine adjacent (2n-1)", "sentences_per_s": len(units) / t_adj, "chars_per_s": nchars / t_adj,
         "speedup": t_oracle / t_adj},
        {"method": f"oracle, reading layer {k} (full forward, as the paper's code)",
         "sentences_per_s": len(units) / t_oracle_auto, "speedup": 1.0},
        {"method": f"engine full matrix, layer {k} (default auto; runs layers 1-{k} only)",
         "sentences_per_s": len(units) / t_auto, "speedup": t_oracle_auto / t_auto,
         "forward_gflops": fl_auto / t_auto / 1e9, "matmul_fp32_gflops": peak / 1e9,
         "flops_fraction": fl_auto / t_auto / peak},
        {"method": f"engine full matrix, layer {k}, plain forward (layers 1-{k} in full, no factorisation)",
         "sentences_per_s": len(units) / t_plain, "speedup": t_oracle_auto / t_plain,
         "forward_gflops": forward_flops(enc.model.config, seq, k, factorised=False) / t_plain / 1e9,
         "matmul_fp32_gflops": peak / 1e9,
         "flops_fraction": forward_flops(enc.model.config, seq, k, factorised=False) / t_plain / peak},
        *({"method": f"engine adjacent (2n-1), layer {k}" + (", bf16 autocast" if bf16 else "")
           + ("" if fact else ", plain forward") + (" (what the segmenter runs)" if fact and not bf16 else ""),
           "sentences_per_s": len(units) / t_a, "chars_per_s": nchars / t_a, "speedup": t_oracle_auto / t_a}
          for (bf16, fact), t_a in adj.items()),
    ]
    assert all(r.matrix.shape[0] == n for r, n in zip(full, n_units))
    write("probe_speed", {"model": args.model, "sentences": len(units), "mean_chars": nchars / len(units),
                          "goal_speedup": 10, "goal_flops_fraction": 0.5}, rows,
          f"{len(units)} PKU test sentences of 10-{args.max_chars} chars, fp32 CPU, engine and oracle on "
          "the same sentences; first rows: last layer (the paper's default), last rows: the layer the "
          "segmenter/parser read by default, each speedup against the oracle reading the same layer "
          "(bf16 rows: bf16 autocast on CPU, not exact). "
          "flops_fraction = engine forward FLOP/s / plain fp32 1024^3 matmul FLOP/s, counting only the FLOPs "
          "the engine does per perturbed copy (factorised forward: layer-1 projections once per window, "
          "read layer at the read positions only).")


if __name__ == "__main__":
    main()
