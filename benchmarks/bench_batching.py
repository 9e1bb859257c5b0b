"""Padding efficiency of the batching layer on PKU test sentences (issue 2).

Token-budget length-bucketed batches (budget 8,192 padded tokens) vs naive fixed-size batches
in input order, same sentences and tokenizer, one run.
    python benchmarks/bench_batching.py [--model DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, require, write  # noqa: E402

from zhtools.models.loader import default_model_path  # noqa: E402
from zhtools.text import BatchStats, ZhTokenizer, fixed_batches, split_sentences, token_batches  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--budget", type=int, default=8192)
    args = ap.parse_args()
    text = require(SHARED / "icwb2_sighan2005" / "testing" / "pku_test.utf8").read_text(encoding="utf-8")
    sents = [ln[s:e] for ln in text.splitlines() if ln.strip() for s, e in split_sentences(ln, max_chars=126)]
    tok = ZhTokenizer.from_pretrained(args.model)
    lens = [len(e) + 2 for e in tok.encode_batch(sents)]
    rows = []
    st = BatchStats()
    list(token_batches(lens, lambda n: n, args.budget, stats=st))
    rows.append({"method": f"token budget {args.budget}, length-bucketed", "batches": st.batches,
                 "real_tokens": st.real_tokens, "padded_tokens": st.padded_tokens, "efficiency": st.efficiency})
    size = max(1, args.budget // max(lens))
    for bs in sorted({size, 32, 64}):
        fb = list(fixed_batches(lens, lambda n: n, bs))
        real = sum(sum(b.lengths) for b in fb)
        padded = sum(b.padded_tokens for b in fb)
        rows.append({"method": f"fixed {bs} in input order", "batches": len(fb), "real_tokens": real,
                     "padded_tokens": padded, "efficiency": real / padded})
    write("batching", {"sentences": len(sents), "budget": args.budget, "target_efficiency": 0.90}, rows,
          "Padding efficiency = real tokens / padded tokens on PKU test sentences "
          "(lines split into sentences of <= 126 chars). Target >= 0.90.")


if __name__ == "__main__":
    main()
