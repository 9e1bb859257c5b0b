"""Attachment conventions for Chinese function words and punctuation (a prior on the arcs).

With the shipped encoder the impacts say where a word is, not what it is: arcs from their mean
by word distance alone parse as well as the impacts themselves (``benchmarks/bench_parse.py``,
diagnostic rows). A few closed classes of words attach the same way in every UD Chinese treebank,
whatever the encoder says, and ``conventions="ud"`` (the :class:`~zhtools.parse.Parser` default)
fixes those arcs before decoding:

* structural particles 的 之 地 -> the preceding word (UD ``case`` / ``mark:rel`` / ``mark:adv``);
* aspect particles 了 着 过 (著 過) -> the preceding word (``aux``);
* localizers 上 中 后 里 下 内 外 前 间 (後 裡 裏 內 間) after a word that is not punctuation ->
  that word (``case`` of the preceding noun);
* closing brackets and quotes -> the preceding word, opening ones -> the following word;
* sentence-final 。！？ (and ASCII ``.!?``) -> the root.

Only the word itself is looked at (a one-character word equal to the particle; 的确 or 上海 are
other words). The fixed arcs are hard constraints, and the root is chosen among the words they
leave free. The lists come from the UD guidelines for Chinese and were chosen on UD GSDSimp
*dev* only: with the shipped encoder's impacts and the verb-probe root, Eisner UAS 0.2821 ->
0.3425 on 150 sentences (right-chain 0.2609); in the design runs (all 449 dev sentences of 2-40
words, arcs from the impacts' positional profile, a large bonus instead of hard constraints)
0.2759 -> 0.3326 (right-chain 0.2549), of which the structural particles +3.0, 了 着 过 +0.3,
brackets +0.4, final punctuation +1.6, localizers +0.4. Left out there: 得 (的 之 alone scored as
much as 的 之 地 得, +0.02; 地 is kept as UD's adverbial marker ``mark:adv``), commas to their
clause's most verb-like word (-0.6), 、 to the following word (+0.04), a numeral's measure word
to the numeral (-0.1), sentence-final 吗 呢 吧 啊 to the root (0.0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from zhtools.parse.verbs import is_punctuation

__all__ = ["CONVENTIONS", "apply_conventions", "convention_arcs", "fixed_dependents"]

CONVENTIONS = ("ud", "none")

_TO_PREVIOUS = frozenset("的之地了着过著過")
_LOCALIZERS = frozenset("上中后里下内外前间後裡裏內間")
_CLOSING = frozenset("）)]］】》〉」』”’")
_OPENING = frozenset("（([［【《〈「『“‘")
_FINAL = frozenset(["。", "！", "？", ".", "!", "?", "！？", "？！", "……", "…"])


def _attached(words: Sequence[str]) -> dict[int, int]:
    """``{dependent: head}`` (0-based) for the word-fixed conventions (all but the final
    punctuation); an arc that would close a cycle with an earlier one is left out."""
    words = [w.strip() for w in words]  # a token's trailing space (spaCy) is not part of the word
    n = len(words)
    heads: dict[int, int] = {}
    for m, w in enumerate(words):
        if m > 0 and (w in _TO_PREVIOUS or w in _CLOSING
                      or (w in _LOCALIZERS and not is_punctuation(words[m - 1]))):
            h = m - 1
        elif w in _OPENING and m + 1 < n:
            h = m + 1
        else:
            continue
        k = h
        while k in heads and k != m:
            k = heads[k]
        if k != m:
            heads[m] = h
    return heads


def fixed_dependents(words: Sequence[str]) -> list[bool]:
    """Per word: the conventions give it a head (so it cannot be the root)."""
    dep = _attached(words)
    return [m in dep for m in range(len(words))]


def convention_arcs(words: Sequence[str], root: int) -> list[tuple[int, int]]:
    """The arcs the conventions fix, as ``(head, dependent)`` in arc-score indices (1-based words,
    0 = ROOT). ``root``: 0-based index of the word chosen as the root (the final punctuation
    attaches to it)."""
    dep = _attached(words)
    arcs = [(h + 1, m + 1) for m, h in sorted(dep.items())]
    n = len(words)
    if n and words[-1].strip() in _FINAL and 0 <= root < n - 1 and n - 1 not in dep:
        arcs.append((root + 1, n))
    return arcs


def apply_conventions(scores: np.ndarray, words: Sequence[str], root: int) -> np.ndarray:
    """A copy of the ``(n + 1, n + 1)`` arc scores in which each dependent of a convention arc
    keeps only that head (every other arc into it is ``-inf``). The fixed arcs join adjacent
    words or the root and the last word, so they never cross and never close a cycle; with a
    ``root`` that none of them makes a dependent (:func:`fixed_dependents`) a tree always exists."""
    out = np.array(scores, dtype=float, copy=True)
    for h, m in convention_arcs(words, root):
        keep = out[h, m]
        out[:, m] = -np.inf
        out[h, m] = keep
    return out
