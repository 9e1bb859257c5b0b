"""Classification metrics: accuracy, macro-F1, balanced accuracy, per-class P/R/F1."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

__all__ = ["score_cls"]


def score_cls(gold: Sequence[str], pred: Sequence[str]) -> dict:
    """Score predicted labels against gold labels.

    ``macro_f1`` averages per-class F1 over every label seen in gold or prediction (as sklearn
    does); ``balanced_accuracy`` averages per-class recall over labels present in gold.
    ``per_class`` maps each label to ``precision, recall, f1, support`` (support = gold count).
    Empty input gives zeros; different lengths raise ``ValueError``.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    n = len(gold)
    g_count, p_count = Counter(gold), Counter(pred)
    tp = Counter(g for g, p in zip(gold, pred) if g == p)
    per_class = {}
    for c in sorted(set(g_count) | set(p_count)):
        p = tp[c] / p_count[c] if p_count[c] else 0.0
        r = tp[c] / g_count[c] if g_count[c] else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        per_class[c] = {"precision": p, "recall": r, "f1": f, "support": g_count[c]}
    in_gold = [per_class[c]["recall"] for c in g_count]
    return {
        "accuracy": sum(tp.values()) / n if n else 0.0,
        "macro_f1": sum(d["f1"] for d in per_class.values()) / len(per_class) if per_class else 0.0,
        "balanced_accuracy": sum(in_gold) / len(in_gold) if in_gold else 0.0,
        "n": n,
        "per_class": per_class,
    }
