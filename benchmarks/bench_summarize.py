"""CSL title generation: l2r vs r2l vs bidirectional decoding of the same model, in one run.

Scores character-level ROUGE-1/2/L F and BLEU (bert4keras convention: characters joined by
spaces, averaged per sample; `zhtools eval summ`) on the CLGE CSL test split after dropping the
test abstracts that also occur in the training file, and the decode latency of each mode at
equal beam (ratio to l2r). Extra models (e.g. a naive gold-vs-gold bidirectional model or a
plain L2R baseline) are decoded in the same run with --compare NAME=DIR (l2r, and bidirectional
when the model has both directions).

    python benchmarks/bench_summarize.py --model runs/summ/bi/best \
        --compare naive-gold=runs/summ/gold/best --compare l2r-only=runs/summ/l2r/best
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import csl_pairs, write  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="summarizer folder (bidirectional)")
    ap.add_argument("--compare", action="append", default=[], help="NAME=DIR, decoded with its default mode")
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=0.6)
    ap.add_argument("--max-len", type=int, default=32)
    ap.add_argument("--limit", type=int, default=None, help="first N test pairs only")
    ap.add_argument("--no-repeat-ngram", type=int, default=None, help="default: the model's setting")
    ap.add_argument("--split", default="test", choices=["test", "val"],
                    help="val = tune decoding settings on the dev split")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--pairing-all", action="store_true",
                    help="also decode SB-NMT bidirectional models with the all-pairs averaging variant")
    ap.add_argument("--name", default="summarize_csl")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from zhtools.eval.summ import score_summ
    from zhtools.summarize import Summarizer

    test, dropped = csl_pairs(args.split)
    if args.limit:
        test = test[: args.limit]
    texts, golds = [p[0] for p in test], [p[1] for p in test]

    runs = [("zhtools", args.model, m) for m in ("l2r", "r2l", "bidirectional", "bidirectional+bf16")]
    for spec in args.compare:
        name, _, path = spec.partition("=")
        meta = json.loads((Path(path) / "summarizer.json").read_text())
        modes = ["l2r", "bidirectional"] if meta["decoder"]["bidirectional"] else ["l2r"]
        runs += [(name, path, m) for m in modes]
        if args.pairing_all and "bidirectional" in modes and not meta["decoder"].get("halves"):
            runs.append((name, path, "bidirectional+all-pairs"))
    rows, results, samples = [], {}, {}
    loaded: dict[str, Summarizer] = {}
    for name, path, mode in runs:
        if path not in loaded:
            loaded[path] = Summarizer(path)
        base = loaded[path]
        s = Summarizer(base.model, base.tokenizer, beam=args.beam, mode=mode.split("+")[0],
                       pairing="all" if mode.endswith("+all-pairs") else "index",
                       max_len=args.max_len, alpha=args.alpha, src_len=base.src_len,
                       no_repeat_ngram=args.no_repeat_ngram if args.no_repeat_ngram is not None
                       else base.no_repeat_ngram, bf16=mode.endswith("+bf16"))
        s(texts[:8])  # warm-up
        t0 = time.perf_counter()
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # truncation of long abstracts is expected here
            preds = s(texts)
        dt = time.perf_counter() - t0
        sc = score_summ(golds, preds)
        key = f"{name}/{mode}"
        results[key] = {**{k: 100 * sc[k] for k in ("rouge1", "rouge2", "rougeL", "bleu")},
                        "seconds": dt, "ms_per_text": 1000 * dt / len(texts)}
        samples[key] = preds[:5]
        print(key, results[key], flush=True)
    base_ms = results["zhtools/l2r"]["ms_per_text"]
    for key, r in results.items():
        rows.append({"model/mode": key, "ROUGE-1": r["rouge1"], "ROUGE-2": r["rouge2"],
                     "ROUGE-L": r["rougeL"], "BLEU": r["bleu"], "ms/text": r["ms_per_text"],
                     "latency vs l2r": r["ms_per_text"] / base_ms})
    summary = {
        "bidirectional_minus_l2r_rougeL": results["zhtools/bidirectional"]["rougeL"] - results["zhtools/l2r"]["rougeL"],
        "bidirectional_latency_ratio": results["zhtools/bidirectional"]["ms_per_text"] / base_ms,
        "bf16_speedup_bidirectional": results["zhtools/bidirectional"]["ms_per_text"]
        / results["zhtools/bidirectional+bf16"]["ms_per_text"],
    }
    note = (f"CSL (CLGE) {args.split}: {len(test)} pairs ({dropped} test abstracts that also occur in train.tsv "
            f"dropped); no_repeat_ngram {s.no_repeat_ngram}; beam {args.beam}, length penalty alpha {args.alpha}, max {args.max_len} tokens; "
            f"character-level ROUGE F x100 / BLEU x100 (bert4keras convention); +bf16 = the same decoding "
            f"under bf16 autocast on CPU (Summarizer(bf16=True)). "
            f"Summary: {json.dumps(summary)}. Samples (gold first): "
            + json.dumps({"gold": golds[:5], **samples}, ensure_ascii=False))
    write(args.name, {"config": vars(args), "dropped_duplicates": dropped, "n": len(test),
                      "results": results, "summary": summary}, rows, note)


if __name__ == "__main__":
    main()
