"""zhtools: Chinese NLP from perturbed masking (segmentation, parsing), bidirectional
summarization and Theseus distillation, on one tokenizer and one batching layer.

Module-level helpers use lazily built default instances (like jieba)::

    import zhtools
    zhtools.segment("我爱北京天安门")      # -> list[str]
    list(zhtools.cut("..."))             # generator, jieba-style
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from zhtools.segment import Segmenter

_segmenters: dict[str | None, Segmenter] = {}


def get_segmenter(model: str | None = None) -> Segmenter:
    """The process-wide default :class:`Segmenter` for ``model`` (built on first use)."""
    from zhtools.segment import Segmenter

    if model not in _segmenters:
        _segmenters[model] = Segmenter(model)
    return _segmenters[model]


def segment(text: str, model: str | None = None) -> list[str]:
    """Segment ``text`` into words (lossless: ``''.join(words) == text``)."""
    if not isinstance(text, str):
        raise TypeError(f"segment() needs str, got {type(text).__name__}")
    return get_segmenter(model).segment(text)


def cut(text: str, model: str | None = None) -> Iterator[str]:
    """jieba-style generator over the words of ``text``."""
    yield from segment(text, model)


def lcut(text: str, model: str | None = None) -> list[str]:
    """jieba-style list of words."""
    return segment(text, model)


def __getattr__(name: str):
    if name == "Segmenter":
        from zhtools.segment import Segmenter

        return Segmenter
    raise AttributeError(name)


__all__ = ["segment", "cut", "lcut", "get_segmenter", "Segmenter", "__version__"]
