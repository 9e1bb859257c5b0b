"""Segmentation on a second standard and domain: UD Chinese GSDSimp test words (issue 3).

PKU (People's Daily news) is the issue's benchmark; UD GSD (Wikipedia, CTB-like word standard)
checks that the label-free choices generalise. Same sentences, one run: the impact segmenter's
signal combinations (impact + PMI + entropy, + tagger; ``tagger`` alone is the default since
session 16), the shipped tagger alone at probability 0.5, jieba, every character a word. Scored as SIGHAN does (word spans); no OOV split (GSD has no training word list here).
    python benchmarks/bench_segment_ud.py [--bf16] [--split test] [--treebank gsdsimp|gsd]

``--treebank gsd`` scores the same sentences in their original traditional script (UD GSD), where
the shipped models, built from simplified text, see traditional characters through
``zhtools.text.variants`` (OpenCC).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, require, write  # noqa: E402

from zhtools.eval.conllu import read_conllu  # noqa: E402
from zhtools.eval.cws import score_cws  # noqa: E402
from zhtools.segment import Segmenter  # noqa: E402
from zhtools.segment.tagger import Tagger  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="test", choices=["dev", "test"])
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast for the impacts (CPU)")
    ap.add_argument("--treebank", default="gsdsimp", choices=["gsdsimp", "gsd"],
                    help="gsd: the original traditional-script treebank (same sentences)")
    ap.add_argument("--name", default=None, help="result name (default segment_ud_SPLIT[_gsd])")
    args = ap.parse_args()
    tb = args.treebank
    sents = read_conllu(require(SHARED / "ud_chinese" / tb / f"zh_{tb}-ud-{args.split}.conllu"))
    gold = [s.words for s in sents if s.words]
    texts = ["".join(g) for g in gold]
    rows = []

    def add(label: str, signals: str, pred, dt: float | None) -> None:
        assert all("".join(p) == t for p, t in zip(pred, texts))
        s = score_cws(gold, pred)
        rows.append({"segmenter": label, "signals": signals, "f1": s["f1"], "precision": s["precision"],
                     "recall": s["recall"], "chars_per_s": sum(map(len, texts)) / dt if dt else None})
        print(rows[-1], flush=True)

    import jieba

    jieba.initialize()
    t = time.perf_counter()
    add("jieba 0.42 (HMM)", "-", [jieba.lcut(x) for x in texts], time.perf_counter() - t)
    add("every character a word", "-", [list(x) for x in texts], None)
    default = Segmenter()  # the tagger alone with the shipped encoder
    seg = Segmenter(bf16=args.bf16, signals=default.impact_signals)  # impact + PMI + entropy + tagger
    seg.ensure_calibrated()
    t = time.perf_counter()
    coh = [c for k in range(0, len(texts), 64) for c in seg.cohesion(texts[k : k + 64])]
    dt = time.perf_counter() - t
    for sig in (("impact",), ("pmi",), ("entropy",), ("impact", "pmi"), ("impact", "pmi", "entropy"), ("tagger",),
                ("pmi", "entropy", "tagger"), ("impact", "pmi", "tagger"), ("impact", "pmi", "entropy", "tagger")):
        if set(sig) <= set(seg.signals):
            pred = [w for k in range(0, len(texts), 64)
                    for w in seg.segment_with(texts[k : k + 64], coh[k : k + 64], "otsu", sig)]
            label = "zhtools default (otsu)" if sig == default.signals else "zhtools segmenter (otsu)"
            add(label, "+".join(sig), pred, dt if "impact" in sig else None)
    tg = Tagger()
    tg.segment_many(texts[:16])
    t = time.perf_counter()
    add("zhtools tagger alone (p >= 0.5)", "-", tg.segment_many(texts), time.perf_counter() - t)
    name = args.name or f"segment_ud_{args.split}" + ("_gsd" if tb == "gsd" else "")
    script = "GSD, traditional script" if tb == "gsd" else "GSDSimp"
    write(name, {"sentences": len(gold), "bf16": args.bf16, "treebank": tb}, rows,
          f"UD Chinese {script} {args.split} ({len(gold)} sentences, Wikipedia, CTB-like word standard; "
          "a different domain and standard from PKU, used only to score). Word-span P/R/F1. Segmenter rows "
          f"share one impact pass ({'bf16 autocast' if args.bf16 else 'fp32'}); the Otsu thresholds come from "
          "the shipped calibration (unlabelled sample). chars_per_s: impact pass or tagger pass. Numeral + "
          "measure word cut (split_measure) in every zhtools row since session 16.")


if __name__ == "__main__":
    main()
