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

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import SHARED, matmul_flops, require, write  # noqa: E402
from helpers import oracle_matrix  # noqa: E402

from zhtools.models import load_encoder  # noqa: E402
from zhtools.models.loader import default_model_path  # noqa: E402
from zhtools.probe import ImpactEngine  # noqa: E402
from zhtools.text import split_sentences  # noqa: E402


def forward_flops(cfg, seqs: list[tuple[int, int]], layers: int | None = None, read_only: bool = True) -> float:
    """FLOPs (2 per multiply-add) the engine spends on sequences ``(T tokens, m read positions)``
    through the first ``layers`` layers (default all). ``read_only``: the read layer runs its
    queries, attention output and feed-forward at the m read positions only, keys and values at
    all T (the engine's path on BERT-style encoders)."""
    H, FF = cfg.hidden_size, cfg.intermediate_size
    L = layers or cfg.num_hidden_layers
    tot = 0.0
    for T, m in seqs:
        full = 2 * T * (4 * H * H + 2 * H * FF) + 4 * T * T * H
        last = 2 * T * 2 * H * H + 2 * m * (2 * H * H + 2 * H * FF) + 4 * m * T * H if read_only else full
        tot += (L - 1) * full + last
    return tot


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--sentences", type=int, default=40)
    ap.add_argument("--max-chars", type=int, default=40)
    args = ap.parse_args()
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
    fl = forward_flops(enc.model.config, seq, read_only=eng._last is not None)
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
    fl_auto = forward_flops(enc.model.config, seq, k, read_only=auto._last is not None)
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
    ]
    assert all(r.matrix.shape[0] == n for r, n in zip(full, n_units))
    write("probe_speed", {"model": args.model, "sentences": len(units), "mean_chars": nchars / len(units),
                          "goal_speedup": 10, "goal_flops_fraction": 0.5}, rows,
          f"{len(units)} PKU test sentences of 10-{args.max_chars} chars, fp32 CPU, engine and oracle on "
          "the same sentences; first rows: last layer (the paper's default), last rows: the layer the "
          "segmenter/parser read by default, each speedup against the oracle reading the same layer. "
          "flops_fraction = engine forward FLOP/s / plain fp32 1024^3 matmul FLOP/s, counting only the FLOPs "
          "the engine does (its read layer runs at the read positions only).")


if __name__ == "__main__":
    main()
