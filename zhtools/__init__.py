"""zhtools: Chinese NLP from perturbed masking (segmentation, parsing), bidirectional
summarization and Theseus distillation, on one tokenizer and one batching layer.

Module-level helpers use lazily built default instances (like jieba)::

    import zhtools
    zhtools.segment("我爱北京天安门")      # -> list[str]
    list(zhtools.cut("..."))             # generator, jieba-style
    zhtools.parse("我爱北京天安门").heads  # dependency parse (ParseResult)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from zhtools.parse import Parser, ParseResult
    from zhtools.segment import Segmenter

_segmenters: dict[str | None, Segmenter] = {}
_DEFAULTS_LOCK = threading.RLock()  # the default instances are built once, whatever the threads


def get_segmenter(model: str | None = None) -> Segmenter:
    """The process-wide default :class:`Segmenter` for ``model`` (built on first use)."""
    from zhtools.segment import Segmenter

    with _DEFAULTS_LOCK:
        if model not in _segmenters:
            _segmenters[model] = Segmenter(model)
        return _segmenters[model]


def _segment_text(text: str, model: str | None = None) -> list[str]:
    """Body of ``zhtools.segment(text, model=None)``: words of ``text`` (lossless:
    ``''.join(words) == text``). ``zhtools.segment`` is the callable ``zhtools.segment``
    package (a plain function would be replaced by the sub-package on its first import)."""
    if not isinstance(text, str):
        raise TypeError(f"segment() needs str, got {type(text).__name__}")
    return get_segmenter(model).segment(text)


def cut(text: str, model: str | None = None) -> Iterator[str]:
    """jieba-style generator over the words of ``text``."""
    yield from _segment_text(text, model)


def lcut(text: str, model: str | None = None) -> list[str]:
    """jieba-style list of words."""
    return _segment_text(text, model)


_parsers: dict[tuple[str | None, str], Parser] = {}


def get_parser(model: str | None = None, kind: str = "dependency") -> Parser:
    """The process-wide default :class:`~zhtools.parse.Parser` for ``(model, kind)`` (built on
    first use; it shares the default segmenter of ``model``)."""
    from zhtools.parse import Parser

    key = (model, kind)
    with _DEFAULTS_LOCK:
        if key not in _parsers:
            _parsers[key] = Parser(model, kind=kind, segmenter=get_segmenter(model))
        return _parsers[key]


def _parse_text(text: str, model: str | None = None, kind: str = "dependency") -> ParseResult:
    """Body of ``zhtools.parse(text, model=None, kind="dependency")``: segment and parse
    ``text`` (``kind``: dependency | constituency). ``zhtools.parse`` is the callable
    ``zhtools.parse`` package (a plain function would be replaced by the sub-package)."""
    if not isinstance(text, str):
        raise TypeError(f"parse() needs str, got {type(text).__name__}")
    return get_parser(model, kind).parse(text)


def parse_many(texts: list[str], model: str | None = None, kind: str = "dependency"
               ) -> list[ParseResult]:
    """Parse many texts, batching perturbed copies across them (input order kept)."""
    return get_parser(model, kind).parse_many(list(texts))


def __getattr__(name: str):
    if name in ("parse", "segment", "summarize"):  # the callable sub-packages
        import importlib

        return importlib.import_module(f"zhtools.{name}")
    if name == "Segmenter":
        from zhtools.segment import Segmenter

        return Segmenter
    raise AttributeError(name)


__all__ = ["segment", "cut", "lcut", "get_segmenter", "Segmenter", "parse", "parse_many",
           "get_parser", "summarize", "__version__"]
