"""Traditional and variant Hanzi seen through a simplified-Chinese model, character for character.

The shipped encoder, tagger and n-gram statistics were built from simplified-Chinese text, so
traditional characters (這 國 發 後 裡) are unknown to them: a quarter of the characters of a
Taiwanese or Hong Kong sentence would reach the encoder as ``[UNK]``. :func:`known_variants`
replaces each *unknown* CJK character by its simplified form when the model knows that form.
Characters the model knows are never touched, so simplified input is unaffected; the text keeps
its length, so every offset and every returned word is still the caller's original text.

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


def known_variants(text: str, known: Callable[[str], bool]) -> str:
    """``text`` with every CJK character for which ``known(ch)`` is false replaced by its first
    OpenCC simplified form that *is* known (same length; other characters unchanged)."""
    todo = [i for i, ch in enumerate(text) if is_cjk(ch) and not known(ch)]
    if not todo:
        return text
    out = list(text)
    for config in CONFIGS:
        conv = _converter(config)
        if conv is None:
            return text
        whole = conv.convert(text)
        left = []
        for i in todo:
            cand = whole[i] if len(whole) == len(text) else conv.convert(text[i])
            if len(cand) != 1 or cand == text[i] or not known(cand):
                cand = conv.convert(text[i])  # context gave nothing usable: the character alone
            if len(cand) == 1 and cand != text[i] and known(cand):
                out[i] = cand
            else:
                left.append(i)
        todo = left
        if not todo:
            break
    return "".join(out)
