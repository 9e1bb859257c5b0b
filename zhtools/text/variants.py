"""Traditional and variant Hanzi seen through a simplified-Chinese model, character for character.

The shipped encoder, tagger and n-gram statistics were built from simplified-Chinese text, so
traditional characters (這 國 發 後 裡) are unknown to them: a quarter of the characters of a
Taiwanese or Hong Kong sentence would reach the encoder as ``[UNK]``. :func:`known_variants`
replaces each *unknown* CJK character by its simplified form when the model knows that form;
in text that looks traditional, characters the model knows but OpenCC would rewrite in context
(於 -> 于) are read as rewritten too. Text without unknown characters is returned as is, so
simplified input is unaffected; the text keeps its length, so every offset and every returned
word is still the caller's original text.

Conversion by OpenCC (BYVoid/OpenCC, Apache-2.0): context-aware traditional -> simplified
(``t2s``, e.g. 乾燥 -> 干燥 but 乾隆 stays), then the Taiwan (``tw2s``) and Hong Kong (``hk2s``)
variant tables for what is left. A whole-text conversion is used where it keeps the length
(phrase tables almost always do); otherwise each character is converted on its own.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

from zhtools.text.tokenizer import is_cjk

CONFIGS = ("t2s", "tw2s", "hk2s")


@functools.cache
def _converter(config: str):  # noqa: ANN202 - opencc.OpenCC
    try:
        import opencc
    except ImportError:  # pragma: no cover - opencc is a declared dependency
        warnings.warn("opencc is not installed: traditional characters stay unknown to the model "
                      "(pip install opencc)", stacklevel=3)
        return None
    return opencc.OpenCC(config)


def _surrogate(ch: str) -> bool:
    return "\ud800" <= ch <= "\udfff"


def _convert(conv, text: str) -> str:  # noqa: ANN001 - opencc.OpenCC
    """``conv.convert(text)``, safe for lone surrogates (which OpenCC, working on UTF-8, cannot
    take): they pass through as U+FFFD and are put back where the result keeps the length."""
    if not any(map(_surrogate, text)):
        return conv.convert(text)
    out = conv.convert("".join("\ufffd" if _surrogate(ch) else ch for ch in text))
    if len(out) != len(text):
        return out
    return "".join(a if _surrogate(a) else b for a, b in zip(text, out))


def known_variants(text: str, known: Callable[[str], bool]) -> str:
    """``text`` with every CJK character for which ``known(ch)`` is false replaced by its first
    OpenCC simplified form that *is* known (same length). Where the text looks traditional
    (:func:`looks_traditional`), every character that t2s rewrites is read as rewritten, known
    ones included (於 -> 于: 於 is in a simplified vocabulary, but rare there); elsewhere
    known characters are never touched."""
    todo = [i for i, ch in enumerate(text) if is_cjk(ch) and not known(ch)]
    if not todo:
        return text
    t2s = _converter("t2s")
    if t2s is None:
        return text
    out = list(text)
    converted = {"t2s": _convert(t2s, text)}  # whole-text conversions, each made once
    whole = converted["t2s"]
    if len(whole) == len(text) and _mostly_changed(text, whole):
        for i, (a, b) in enumerate(zip(text, whole)):
            if a != b and known(b):
                out[i] = b
        todo = [i for i in todo if out[i] == text[i]]

    def usable(cand: str, i: int) -> bool:
        return len(cand) == 1 and cand != text[i] and known(cand)

    for config in CONFIGS:
        if not todo:
            break
        conv = _converter(config)
        whole = converted.get(config) or _convert(conv, text)
        left = []
        for i in todo:
            cand = whole[i] if len(whole) == len(text) else ""
            if not usable(cand, i):
                cand = _convert(conv, text[i])  # context gave nothing usable: the character alone
            if usable(cand, i):
                out[i] = cand
            else:
                left.append(i)
        todo = left
    return "".join(out)


def _mostly_changed(text: str, converted: str) -> bool:
    n = sum(1 for ch in text if is_cjk(ch))
    changed = sum(a != b for a, b in zip(text, converted))
    return n > 0 and changed >= max(1.0, 0.05 * n)


def looks_traditional(text: str) -> bool:
    """True when OpenCC's ``t2s`` rewrites at least 5% of the Hanzi of ``text`` (and at least one):
    traditional-script text (typically 20-30% of its characters change), not simplified text
    with a stray traditional character or two."""
    conv = _converter("t2s")
    return conv is not None and _mostly_changed(text, _convert(conv, text))


def convert(text: str, config: str) -> str:
    """OpenCC conversion (``s2t``, ``t2s``, ``s2tw``, ...); the text as is without OpenCC."""
    conv = _converter(config)
    return text if conv is None else _convert(conv, text)
