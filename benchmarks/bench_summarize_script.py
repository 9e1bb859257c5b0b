"""Summarizing traditional-script input with a model trained on simplified text, in one run.

The CSL test abstracts and titles are converted to traditional script with OpenCC ``s2t`` (a
proxy: no traditional title-generation set is available here). Rows, all bidirectional beam
search with the same model:
- simplified input, simplified references (the usual benchmark);
- traditional input with the variant lookup off (``ZhTokenizer(variants=False)``: traditional
  characters reach the encoder as ``[UNK]``), the summary as generated;
- traditional input with the variant lookup (default), the summary as generated (``script="model"``,
  simplified) and written back in the input's script (``script="auto"``, the default).
Each row is scored against the traditional and the simplified references (character ROUGE-L).

    python benchmarks/bench_summarize_script.py [--model DIR] [--limit N] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import csl_pairs, write  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="summarizer folder (default: shipped)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--name", default="summarize_script")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from zhtools.eval.summ import score_summ
    from zhtools.summarize import Summarizer
    from zhtools.text.variants import convert

    test = csl_pairs("test")[0][: args.limit]
    src_s, ref_s = [p[0] for p in test], [p[1] for p in test]
    src_t, ref_t = [convert(t, "s2t") for t in src_s], [convert(t, "s2t") for t in ref_s]
    changed = sum(a != b for s, t in zip(src_s, src_t) for a, b in zip(s, t)) / sum(map(len, src_s))

    base = Summarizer(args.model)
    rows = []
    runs = [("simplified", src_s, True, "auto"), ("traditional, variant lookup off", src_t, False, "model"),
            ("traditional", src_t, True, "model"), ("traditional", src_t, True, "auto")]
    for label, srcs, variants, script in runs:
        base.tokenizer.variants = variants
        s = Summarizer(base.model, base.tokenizer, src_len=base.src_len, no_repeat_ngram=base.no_repeat_ngram,
                       script=script)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # long abstracts are truncated, as in bench_summarize
            preds = s(srcs)
        dt = time.perf_counter() - t0
        row = {"input": label, "variants": variants, "script": script,
               "R-L vs traditional refs": 100 * score_summ(ref_t, preds)["rougeL"],
               "R-L vs simplified refs": 100 * score_summ(ref_s, preds)["rougeL"],
               "ms/text": 1000 * dt / len(srcs), "sample": preds[0]}
        rows.append(row)
        print(row, flush=True)
    base.tokenizer.variants = True
    write(args.name, {"n": len(test), "changed_chars": changed}, rows,
          f"CSL test ({len(test)} pairs, abstracts also in train dropped), shipped summarizer, bidirectional "
          f"beam 4; traditional = OpenCC s2t of abstract and title ({100 * changed:.1f}% of the abstract "
          f"characters change). Character-level ROUGE-L F x100. First gold title: {ref_s[0]} / {ref_t[0]}.")


if __name__ == "__main__":
    main()
