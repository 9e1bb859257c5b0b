"""Segmentation quality on SIGHAN 2005 PKU test (issues 3 and 4).

Same sentences, one run: zhtools with the given encoder under each boundary rule (otsu =
scale-free default, dp, the reference's fixed threshold 8), the same rules with a randomly
initialised encoder of the same shape (gain from pretraining), every-character-a-word, jieba.
Scored like the SIGHAN script (word spans; OOV w.r.t. the PKU training word list).
    python benchmarks/bench_segment.py [--model DIR] [--lines N] [--name segment]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, require, write  # noqa: E402

from zhtools.eval.cws import read_segmented, read_words, score_cws  # noqa: E402
from zhtools.models.loader import default_model_path  # noqa: E402
from zhtools.segment import Segmenter  # noqa: E402
from zhtools.segment.segmenter import SHIPPED_TAGGER  # noqa: E402


def random_twin(model_dir: str) -> str:
    """Save a randomly initialised model with the same config and tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModel

    from zhtools.models import save_model
    from zhtools.text import ZhTokenizer

    torch.manual_seed(0)
    m = AutoModel.from_config(AutoConfig.from_pretrained(model_dir))
    out = Path(tempfile.mkdtemp()) / "random-init"
    save_model(m, ZhTokenizer.from_pretrained(model_dir), out)
    return str(out)


def run_model(label: str, model: str, texts, gold, words, rows, rules, layer: int | str = "auto",
              bf16: bool = False, tagger: bool = False) -> dict:
    """Score every (rule, signals) on one impact pass; returns their predictions. ``tagger``: the
    shipped self-trained tagger is a signal too (its pass is timed separately)."""
    sig = ("impact", "pmi", "entropy", "tagger") if tagger else ("impact", "pmi", "entropy")
    seg = Segmenter(model, signals=sig, layer=layer, progress=False, bf16=bf16,
                    tagger=SHIPPED_TAGGER if tagger else None)
    t = time.perf_counter()
    seg.ensure_calibrated()
    t_cal = time.perf_counter() - t
    t = time.perf_counter()
    coh = []
    for k in range(0, len(texts), 64):
        coh.extend(seg.cohesion(texts[k : k + 64]))
    dt = time.perf_counter() - t
    t_tag = 0.0
    if tagger:
        t = time.perf_counter()
        for k in range(0, len(texts), 64):
            seg.tagger.start_probs(texts[k : k + 64])
        t_tag = time.perf_counter() - t
    nchars = sum(map(len, texts))
    preds = {}
    for rule, signals in rules:
        pred = preds[rule, signals] = []
        for k in range(0, len(texts), 64):
            pred.extend(seg.segment_with(texts[k : k + 64], coh[k : k + 64], rule, signals))
        s = score_cws(gold, pred, words)
        rows.append({"segmenter": f"zhtools {label}", "layer": f"{layer} ({seg.engine.layer})", "dtype": "bf16" if bf16 else "fp32",
                     "rule": rule, "signals": "+".join(signals),
                     "f1": s["f1"], "precision": s["precision"],
                     "recall": s["recall"], "oov_recall": s["oov_recall"], "iv_recall": s["iv_recall"],
                     "chars_per_s": nchars / (dt * ("impact" in signals) + t_tag * ("tagger" in signals))
                     if {"impact", "tagger"} & set(signals) else None})
        print(rows[-1], flush=True)
    print(f"{label}: calibration {t_cal:.1f}s, impacts {dt:.1f}s, tagger {t_tag:.1f}s", flush=True)
    return preds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--lines", type=int, default=None, help="first N lines only")
    ap.add_argument("--name", default="segment")
    ap.add_argument("--no-random", action="store_true")
    ap.add_argument("--no-last", action="store_true", help="skip the last-layer rows (reference layer)")
    ap.add_argument("--random-only", action="store_true",
                    help="only the randomly initialised twin (run beside a --no-random run)")
    args = ap.parse_args()
    gold = read_segmented(require(SHARED / "icwb2_sighan2005" / "gold" / "pku_test_gold.utf8"))
    words = read_words(SHARED / "icwb2_sighan2005" / "gold" / "pku_training_words.utf8")
    keep = [k for k, g in enumerate(gold) if g][: args.lines]
    gold = [gold[k] for k in keep]
    texts = ["".join(g) for g in gold]
    rows: list[dict] = []
    import jieba

    jieba.initialize()
    t = time.perf_counter()
    pred = [jieba.lcut(x) for x in texts]
    dt = time.perf_counter() - t
    s = score_cws(gold, pred, words)
    rows.append({"segmenter": "jieba 0.42 (HMM)", "rule": "-", "f1": s["f1"], "precision": s["precision"],
                 "recall": s["recall"], "oov_recall": s["oov_recall"], "iv_recall": s["iv_recall"],
                 "chars_per_s": sum(map(len, texts)) / dt})
    s = score_cws(gold, [list(x) for x in texts], words)
    rows.append({"segmenter": "every character a word", "rule": "chars", "f1": s["f1"], "precision": s["precision"],
                 "recall": s["recall"], "oov_recall": s["oov_recall"], "iv_recall": s["iv_recall"]})
    rules = [("otsu", ("impact",)), ("otsu", ("pmi",)), ("otsu", ("entropy",)), ("otsu", ("pmi", "entropy")),
             ("otsu", ("impact", "pmi")), ("otsu", ("impact", "entropy")), ("otsu", ("impact", "pmi", "entropy")),
             ("dp", ("impact",)), ("dp", ("impact", "pmi", "entropy")), ("threshold", ("impact",))]
    tagged = "tagger" in Segmenter(args.model).impact_signals  # shipped encoder + shipped tagger
    if tagged:  # the shipped tagger (distilled from this encoder's segmenter) as a further signal
        rules += [("otsu", ("tagger",)), ("otsu", ("impact", "tagger")), ("otsu", ("impact", "pmi", "tagger")),
                  ("otsu", ("pmi", "entropy", "tagger")), ("otsu", ("impact", "entropy", "tagger")),
                  ("otsu", ("impact", "pmi", "entropy", "tagger")), ("dp", ("impact", "pmi", "entropy", "tagger"))]
    if not args.random_only:
        # the impact segmenter's full combination (the default before session 16; now the teacher)
        full = ("otsu", ("impact", "pmi", "entropy", "tagger") if tagged else ("impact", "pmi", "entropy"))
        fp32 = run_model(Path(args.model).name, args.model, texts, gold, words, rows, rules,
                         tagger=tagged)[full]
        # the same model under bf16 autocast (Segmenter(bf16=True), zhtools segment --bf16)
        bf_rules = [("otsu", ("impact",)), ("otsu", ("impact", "pmi", "entropy")), full]
        bf16 = run_model(Path(args.model).name, args.model, texts, gold, words, rows, list(dict.fromkeys(bf_rules)),
                         bf16=True, tagger=tagged)[full]
        fp32_row = next(r for r in rows if r.get("signals") == "+".join(full[1]) and r.get("dtype") == "fp32")
        speedup = rows[-1]["chars_per_s"] / fp32_row["chars_per_s"]
        same_lines = sum(x == y for x, y in zip(fp32, bf16)) / len(texts)
        print(f"bf16 vs fp32: {speedup:.2f}x chars/s, identical segmentation on {same_lines:.1%} of lines", flush=True)
    # the last layer (the reference's choice; its fixed threshold 8 is defined on it)
    last_rules = [("otsu", ("impact",)), ("otsu", ("impact", "pmi", "entropy")), ("threshold", ("impact",))]
    rules = [r for r in rules if "tagger" not in r[1]]
    if not (args.no_last or args.random_only):
        run_model(Path(args.model).name, args.model, texts, gold, words, rows, last_rules, layer="last")
    if not args.no_random:
        rules_r = [r for r in rules if "impact" in r[1] and r[0] != "threshold"]
        run_model("random-init (same shape)", random_twin(args.model), texts, gold, words, rows, rules_r)
    extra = {"model": args.model, "lines": len(texts), "goal_f1": 0.85}
    if not args.random_only:
        extra.update(bf16_speedup=speedup, bf16_identical_lines=same_lines)
    write(args.name, extra, rows,
          f"SIGHAN 2005 PKU test, {len(texts)} lines; word-span P/R/F1, OOV w.r.t. pku_training_words. "
          "Signals: impact = log adjacent impact (encoder), pmi = bigram PMI from public-domain laws + "
          "CC BY-SA Wikipedia counts (no encoder); entropy = branching entropy of the 2- and 3-grams beside "
          "the gap, from the same counts (four z-scored columns, no encoder); tagger = log-odds of the shipped self-trained tagger "
          "(trained on the impact segmenter's output over raw text, no gold); combined = sum of z-scores. "
          "Default (zhtools.segment): the tagger alone (otsu) with the shipped encoder since session 16 "
          "(before: impact+pmi+entropy+tagger; before session 14 impact+pmi+tagger), impact+pmi+entropy "
          "with other encoders. Every zhtools row cuts a leading Hanzi numeral off a following measure word "
          "(split_measure, since session 16). Impacts read at the encoder's "
          "own probe layer (auto, default: the shipped encoder names one in its config, other encoders use the middle layer) or the last layer (rows say which; the resolved hidden-state index in brackets, -1 = last). Rules: otsu = label-free "
          "Otsu threshold fitted on data/samples/calibration.txt; dp = same + word-length DP (max 6); "
          "threshold = reference fixed threshold 8 on raw impacts. chars_per_s = impact (+ tagger) computation. "
          "dtype: fp32 (exact) or bf16 autocast (same model, same run"
          + (f": {speedup:.2f}x the fp32 chars/s, identical segmentation on {same_lines:.1%} of lines)."
             if not args.random_only else ")."))


if __name__ == "__main__":
    main()
