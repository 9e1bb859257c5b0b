"""Word segmentation scoring in the style of the SIGHAN 2005 bakeoff (``score`` script).

Words are compared as character spans within each line, so a predicted word is correct only when
both its boundaries agree with a gold word. Whitespace (ASCII or full-width U+3000) separates
words and is never part of the text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path

__all__ = ["read_segmented", "read_words", "score_cws", "word_spans"]


def _clean(words: Iterable[str]) -> list[str]:
    """Drop whitespace inside words and empty words."""
    out = []
    for w in words:
        w = "".join(w.split())
        if w:
            out.append(w)
    return out


def word_spans(words: Sequence[str]) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` (half-open) of consecutive words."""
    spans, pos = [], 0
    for w in words:
        spans.append((pos, pos + len(w)))
        pos += len(w)
    return spans


def read_segmented(path: str | PathLike) -> list[list[str]]:
    """Read a segmented UTF-8 file: one sentence per line, words separated by whitespace.

    Any whitespace separates words (SIGHAN gold uses two spaces; U+3000 is accepted too).
    Empty lines give ``[]`` and are kept so that line numbers of gold and prediction align.
    """
    with open(path, encoding="utf-8-sig") as f:
        return [line.split() for line in f]


def read_words(path: str | PathLike) -> set[str]:
    """Read a word list (one word per line, e.g. SIGHAN ``*_training_words.utf8``)."""
    text = Path(path).read_text(encoding="utf-8-sig")
    return {w for w in (line.strip() for line in text.splitlines()) if w}


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def score_cws(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    train_words: set[str] | None = None,
) -> dict:
    """Score a predicted segmentation against gold, SIGHAN-2005 style, over a whole corpus.

    Returns ``precision, recall, f1, oov_recall, iv_recall, oov_rate, gold_words, pred_words,
    correct``. A gold word is OOV when it is not in ``train_words``; without ``train_words`` the
    OOV/IV figures are ``None``. Zero denominators give 0.0. Raises ``ValueError`` when the
    line counts differ or a line's gold and predicted texts differ (1-based line number).
    """
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} lines but prediction has {len(pred)}")
    n_gold = n_pred = correct = 0
    n_oov = oov_ok = n_iv = iv_ok = 0
    for lineno, (g_line, p_line) in enumerate(zip(gold, pred), start=1):
        g_words, p_words = _clean(g_line), _clean(p_line)
        g_text, p_text = "".join(g_words), "".join(p_words)
        if g_text != p_text:
            raise ValueError(
                f"line {lineno}: gold and predicted texts differ "
                f"({g_text[:30]!r} vs {p_text[:30]!r})"
            )
        p_spans = set(word_spans(p_words))
        n_gold += len(g_words)
        n_pred += len(p_words)
        for w, span in zip(g_words, word_spans(g_words)):
            hit = span in p_spans
            correct += hit
            if train_words is not None:
                if w in train_words:
                    n_iv += 1
                    iv_ok += hit
                else:
                    n_oov += 1
                    oov_ok += hit
    p, r = _ratio(correct, n_pred), _ratio(correct, n_gold)
    known = train_words is not None
    return {
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "oov_recall": _ratio(oov_ok, n_oov) if known else None,
        "iv_recall": _ratio(iv_ok, n_iv) if known else None,
        "oov_rate": _ratio(n_oov, n_gold) if known else None,
        "gold_words": n_gold,
        "pred_words": n_pred,
        "correct": correct,
    }
