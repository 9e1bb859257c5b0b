"""Dependency parsing evaluation: (U)UAS, span-based UAS for predicted segmentation, baselines,
and constituency-style bracket F1 derived from projective dependency trees.

Heads are 1-based word indices with 0 for the root, one list per sentence. Bracket spans are
0-based half-open word index pairs ``(start, end)``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from zhtools.eval.cws import _clean, word_spans

__all__ = [
    "bracket_f1",
    "dep_brackets",
    "drop_punct_spans",
    "left_branching_spans",
    "left_chain",
    "random_projective",
    "right_branching_spans",
    "right_chain",
    "score_dep",
    "score_dep_spans",
]

Span = tuple[int, int]


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def _check_heads(heads: Sequence[int], where: str) -> None:
    n = len(heads)
    for i, h in enumerate(heads, start=1):
        if not 0 <= h <= n:
            raise ValueError(f"{where}: head {h} of word {i} outside 0..{n}")


# ------------------------------------------------------------------------------------ scoring
def score_dep(
    gold: Sequence[Sequence[int]],
    pred: Sequence[Sequence[int]],
    punct: Sequence[Sequence[bool]] | None = None,
) -> dict:
    """Attachment scores over a corpus with identical gold and predicted words.

    ``uas``: fraction of words whose predicted head equals the gold head. ``uuas``: fraction of
    gold edges ``{dependent, head}`` (unordered; root edges are ``{0, root}``) that occur in the
    predicted edge set. The ``*_nopunct`` variants leave out gold edges whose dependent is marked
    in ``punct`` (the predicted edge set is not filtered); they are ``None`` without ``punct``.
    """
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} sentences but prediction has {len(pred)}")
    if punct is not None and len(punct) != len(gold):
        raise ValueError(f"punct mask has {len(punct)} sentences, gold has {len(gold)}")
    words = words_np = 0
    ok = uok = ok_np = uok_np = 0
    for k, (g, p) in enumerate(zip(gold, pred)):
        where = f"sentence {k + 1}"
        if len(g) != len(p):
            raise ValueError(f"{where}: gold has {len(g)} words but prediction has {len(p)}")
        _check_heads(g, where)
        _check_heads(p, where)
        mask = punct[k] if punct is not None else [False] * len(g)
        if len(mask) != len(g):
            raise ValueError(f"{where}: punct mask has {len(mask)} entries for {len(g)} words")
        p_edges = {frozenset((i, h)) for i, h in enumerate(p, start=1)}
        for i, (gh, ph, is_p) in enumerate(zip(g, p, mask), start=1):
            hit, uhit = gh == ph, frozenset((i, gh)) in p_edges
            words += 1
            ok += hit
            uok += uhit
            if not is_p:
                words_np += 1
                ok_np += hit
                uok_np += uhit
    has_p = punct is not None
    return {
        "uas": _ratio(ok, words),
        "uuas": _ratio(uok, words),
        "uas_nopunct": _ratio(ok_np, words_np) if has_p else None,
        "uuas_nopunct": _ratio(uok_np, words_np) if has_p else None,
        "sentences": len(gold),
        "words": words,
    }


def score_dep_spans(
    gold_words: Sequence[Sequence[str]],
    gold_heads: Sequence[Sequence[int]],
    pred_words: Sequence[Sequence[str]],
    pred_heads: Sequence[Sequence[int]],
    gold_punct: Sequence[Sequence[bool]] | None = None,
) -> dict:
    """Attachment scores when the prediction has its own segmentation.

    Words are mapped to character spans. A gold word's attachment is correct when a predicted
    word has the same span and that word's predicted head has the span of the gold head (or both
    are the root). ``uuas`` compares unordered span edges (root edge = ``{ROOT, span}``).
    Denominators are gold word counts. Also returns ``word_precision/word_recall/word_f1`` of the
    predicted word spans. ``*_nopunct`` skip gold dependents marked in ``gold_punct``.
    """
    n = len(gold_words)
    if not n == len(gold_heads) == len(pred_words) == len(pred_heads):
        raise ValueError("gold/pred words and heads must have the same number of sentences")
    if gold_punct is not None and len(gold_punct) != n:
        raise ValueError(f"punct mask has {len(gold_punct)} sentences, gold has {n}")
    root: Span = (-1, -1)
    words = words_np = n_pred = seg_ok = 0
    ok = uok = ok_np = uok_np = 0
    for k in range(n):
        where = f"sentence {k + 1}"
        gw, pw = _clean(gold_words[k]), _clean(pred_words[k])
        gh, ph = gold_heads[k], pred_heads[k]
        if len(gw) != len(gh) or len(pw) != len(ph):
            raise ValueError(f"{where}: number of words and heads differ")
        if "".join(gw) != "".join(pw):
            raise ValueError(f"{where}: gold and predicted texts differ")
        _check_heads(gh, where)
        _check_heads(ph, where)
        mask = gold_punct[k] if gold_punct is not None else [False] * len(gw)
        if len(mask) != len(gw):
            raise ValueError(f"{where}: punct mask has {len(mask)} entries for {len(gw)} words")
        gs, ps = word_spans(gw), word_spans(pw)
        p_index = {s: j for j, s in enumerate(ps)}
        p_head = {s: (ps[h - 1] if h else root) for s, h in zip(ps, ph)}
        p_edges = {frozenset((s, hs)) for s, hs in p_head.items()}
        n_pred += len(ps)
        for s, h, is_p in zip(gs, gh, mask):
            g_hs = gs[h - 1] if h else root
            seg_ok += s in p_index
            hit = s in p_index and p_head[s] == g_hs
            uhit = frozenset((s, g_hs)) in p_edges
            words += 1
            ok += hit
            uok += uhit
            if not is_p:
                words_np += 1
                ok_np += hit
                uok_np += uhit
    prec, rec = _ratio(seg_ok, n_pred), _ratio(seg_ok, words)
    has_p = gold_punct is not None
    return {
        "uas": _ratio(ok, words),
        "uuas": _ratio(uok, words),
        "uas_nopunct": _ratio(ok_np, words_np) if has_p else None,
        "uuas_nopunct": _ratio(uok_np, words_np) if has_p else None,
        "word_precision": prec,
        "word_recall": rec,
        "word_f1": _ratio(2 * prec * rec, prec + rec),
        "sentences": n,
        "words": words,
        "pred_words": n_pred,
    }


# ---------------------------------------------------------------------------------- baselines
def right_chain(n: int) -> list[int]:
    """Each word's head is the next word; the last word is the root."""
    return [i + 2 for i in range(n - 1)] + [0] if n > 0 else []


def left_chain(n: int) -> list[int]:
    """Each word's head is the previous word; the first word is the root."""
    return list(range(n))


def _randint(rng, lo: int, hi: int) -> int:
    """Uniform integer in ``[lo, hi)`` from a ``random.Random`` or numpy ``Generator``."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(lo, hi))
    return rng.randrange(lo, hi)


def random_projective(
    n: int, rng: random.Random | np.random.Generator | int | None = None
) -> list[int]:
    """A random projective tree by recursive splitting.

    Pick a head uniformly inside the span, attach it to the span's parent, recurse on the
    left and right remainders. ``rng`` may be a ``random.Random``, a numpy ``Generator`` or a
    seed.
    """
    if rng is None or isinstance(rng, int):
        rng = random.Random(rng)
    heads = [0] * n
    stack = [(0, n, 0)]  # (start, end, parent 1-based or 0)
    while stack:
        lo, hi, parent = stack.pop()
        if lo >= hi:
            continue
        r = _randint(rng, lo, hi)
        heads[r] = parent
        stack.append((lo, r, r + 1))
        stack.append((r + 1, hi, r + 1))
    return heads


# ----------------------------------------------------------------------------------- brackets
def dep_brackets(heads: Sequence[int]) -> set[Span]:
    """Constituency-like brackets of a dependency tree.

    For each word, the span ``(start, end)`` (0-based, half-open) of its subtree, kept if it
    covers at least two words and is not the whole sentence. For a non-projective tree the span
    runs from the leftmost to the rightmost descendant. Raises ``ValueError`` for heads out of
    range or words not reachable from the root (cycles).
    """
    n = len(heads)
    _check_heads(heads, "dep_brackets")
    children: list[list[int]] = [[] for _ in range(n + 1)]
    for i, h in enumerate(heads, start=1):
        children[h].append(i)
    order, stack = [], [0]
    while stack:  # preorder from the artificial root
        v = stack.pop()
        order.append(v)
        stack.extend(children[v])
    if len(order) != n + 1:
        raise ValueError("dep_brackets: heads do not form a tree (cycle)")
    lo = list(range(-1, n))  # node i (1-based) covers word index i-1
    hi = list(range(0, n + 1))
    for v in reversed(order[1:]):  # children before parents
        h = heads[v - 1]
        if h:
            lo[h] = min(lo[h], lo[v])
            hi[h] = max(hi[h], hi[v])
    return {(lo[i], hi[i]) for i in range(1, n + 1) if hi[i] - lo[i] >= 2 and hi[i] - lo[i] < n}


def drop_punct_spans(spans: set[Span], punct: Sequence[bool]) -> set[Span]:
    """Brackets with punctuation ignored (the EVALB / PTB convention): each span is re-indexed
    over the non-punctuation words it covers and kept if it still covers at least two of them
    and not all of them (the root span)."""
    pos = [0]
    for p in punct:
        pos.append(pos[-1] + (not p))
    n = pos[-1]
    out = set()
    for s, e in spans:
        a, b = pos[s], pos[e]
        if b - a >= 2 and b - a < n:
            out.add((a, b))
    return out


def right_branching_spans(n: int) -> set[Span]:
    """Brackets of the right-branching binary tree ``(w0 (w1 (w2 ...)))`` minus the root span."""
    return {(i, n) for i in range(1, n - 1)}


def left_branching_spans(n: int) -> set[Span]:
    """Brackets of the left-branching binary tree ``(((w0 w1) w2) ...)`` minus the root span."""
    return {(0, j) for j in range(2, n)}


def _prf(tp: int, n_gold: int, n_pred: int) -> tuple[float, float, float]:
    """Precision/recall/F1 with the empty-set convention of :func:`bracket_f1`."""
    p = tp / n_pred if n_pred else (1.0 if n_gold == 0 else 0.0)
    r = tp / n_gold if n_gold else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def bracket_f1(
    gold_spans_list: Sequence[set[Span]], pred_spans_list: Sequence[set[Span]]
) -> dict:
    """Unlabeled bracket F1, sentence-averaged (``f1``) and corpus micro-averaged (``f1_micro``).

    Convention for empty sets: recall is 1 when gold has no brackets; precision is 1 when both
    are empty and 0 when only the prediction is empty. So empty/empty gives F1 = 1, empty gold
    with non-empty prediction gives P = 0, F1 = 0, and empty prediction with non-empty gold
    gives F1 = 0. Also returns ``precision``/``recall`` (sentence means), their micro versions,
    ``per_sentence`` (list of dicts) and ``sentences``.
    """
    if len(gold_spans_list) != len(pred_spans_list):
        raise ValueError(
            f"gold has {len(gold_spans_list)} sentences but prediction has {len(pred_spans_list)}"
        )
    per, tp_all, g_all, p_all = [], 0, 0, 0
    for g, p in zip(gold_spans_list, pred_spans_list):
        g, p = set(g), set(p)
        tp = len(g & p)
        prec, rec, f = _prf(tp, len(g), len(p))
        per.append({"precision": prec, "recall": rec, "f1": f})
        tp_all, g_all, p_all = tp_all + tp, g_all + len(g), p_all + len(p)
    n = len(per)
    mp, mr, mf = _prf(tp_all, g_all, p_all)
    return {
        "f1": _ratio(sum(d["f1"] for d in per), n),
        "precision": _ratio(sum(d["precision"] for d in per), n),
        "recall": _ratio(sum(d["recall"] for d in per), n),
        "f1_micro": mf,
        "precision_micro": mp,
        "recall_micro": mr,
        "sentences": n,
        "per_sentence": per,
    }
