"""Bidirectional seq2seq summarization (synchronous L2R + R2L decoding, bidirectional beam).

This package is callable: ``zhtools.summarize(text, model=None, beam=4, mode="bidirectional")``
summarizes with a lazily loaded default :class:`Summarizer` (the shipped CSL model unless
``model`` names a folder).
"""

import sys
import threading
import types
from functools import lru_cache

from zhtools.summarize.model import BiSeq2Seq, DecoderConfig
from zhtools.summarize.search import beam_search, greedy
from zhtools.summarize.train import (
    Summarizer,
    SummTrainConfig,
    default_summarizer_path,
    read_pairs,
    train_summarizer,
)

__all__ = ["BiSeq2Seq", "DecoderConfig", "SummTrainConfig", "Summarizer", "beam_search", "default_summarizer_path", "greedy",
           "get_summarizer", "read_pairs", "train_summarizer"]


@lru_cache(maxsize=4)
def _cached(model: str | None):  # noqa: ANN202
    return Summarizer(model)


_LOAD_LOCK = threading.Lock()


def _loaded(model: str | None):  # noqa: ANN202
    with _LOAD_LOCK:  # concurrent first calls (service threads) load the model once
        return _cached(model)


def get_summarizer(model: str | None = None, beam: int = 4, mode: str = "bidirectional",
                   script: str = "auto") -> Summarizer:
    """The process-wide summarizer for ``model`` (loaded once), set to ``beam``/``mode``/``script``."""
    base = _loaded(model)
    return Summarizer(base.model, base.tokenizer, beam=beam, mode=mode, max_len=base.max_len,
                      alpha=base.alpha, src_len=base.src_len, no_repeat_ngram=base.no_repeat_ngram,
                      script=script)


class _CallableModule(types.ModuleType):
    def __call__(self, text: str, model: str | None = None, beam: int = 4,
                 mode: str = "bidirectional", script: str = "auto") -> str:
        if not isinstance(text, str):
            raise TypeError(f"summarize() needs str, got {type(text).__name__}")
        if not text.strip():
            return ""
        return get_summarizer(model, beam, mode, script)([text])[0]


sys.modules[__name__].__class__ = _CallableModule
