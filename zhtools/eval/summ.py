"""Character-level ROUGE-1/2/L and BLEU for Chinese summaries (bert4keras / CLUE convention).

Each text becomes its list of non-whitespace characters. Per sample, ROUGE-N and ROUGE-L are
F-scores ``2PR/(P+R)`` (clipped n-gram overlap, and longest common subsequence for L); BLEU is
sentence-level BLEU-4 with NLTK's ``SmoothingFunction().method1``. Scores are averaged over
samples. A sample with an empty prediction or reference scores 0.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence

__all__ = ["chars", "lcs_length", "rouge_l", "rouge_n", "score_summ", "sentence_bleu4"]


def chars(text: str) -> list[str]:
    """Lowercased characters of ``text`` with whitespace removed."""
    return [c for c in text.lower() if not c.isspace()]


def _f(overlap: int, n_pred: int, n_gold: int) -> float:
    if not overlap or not n_pred or not n_gold:
        return 0.0
    p, r = overlap / n_pred, overlap / n_gold
    return 2 * p * r / (p + r)


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def rouge_n(gold: Sequence[str], pred: Sequence[str], n: int) -> float:
    """ROUGE-N F-score of two token sequences (clipped n-gram counts)."""
    g, p = _ngrams(gold, n), _ngrams(pred, n)
    return _f(sum((g & p).values()), sum(p.values()), sum(g.values()))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (O(len(a)*len(b)) time, O(len(b)) memory)."""
    if len(b) > len(a):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(gold: Sequence[str], pred: Sequence[str]) -> float:
    """ROUGE-L F-score ``2PR/(P+R)`` with P = LCS/len(pred), R = LCS/len(gold)."""
    if not gold or not pred:
        return 0.0
    return _f(lcs_length(gold, pred), len(pred), len(gold))


def sentence_bleu4(gold: Sequence[str], pred: Sequence[str]) -> float:
    """Sentence BLEU-4 (uniform weights, smoothing method1); 0 for empty input."""
    if not gold or not pred:
        return 0.0
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(
            sentence_bleu([list(gold)], list(pred), smoothing_function=SmoothingFunction().method1)
        )


def score_summ(golds: Sequence[str], preds: Sequence[str]) -> dict:
    """Mean character-level ``rouge1, rouge2, rougeL, bleu`` over samples, plus ``n``."""
    if len(golds) != len(preds):
        raise ValueError(f"{len(golds)} references but {len(preds)} predictions")
    tot = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0, "bleu": 0.0}
    for g_text, p_text in zip(golds, preds):
        g, p = chars(g_text), chars(p_text)
        tot["rouge1"] += rouge_n(g, p, 1)
        tot["rouge2"] += rouge_n(g, p, 2)
        tot["rougeL"] += rouge_l(g, p)
        tot["bleu"] += sentence_bleu4(g, p)
    n = len(golds)
    out = {k: (v / n if n else 0.0) for k, v in tot.items()}
    out["n"] = n
    return out
