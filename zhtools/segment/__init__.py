"""Unsupervised word segmentation from adjacent impacts (and label-free bigram PMI).

This package is callable: ``zhtools.segment(text, model=None)`` segments with a lazily built
default :class:`Segmenter` (the helper and the package share the name).
"""

import sys
import types

from zhtools.segment.segmenter import Calibration, Segmenter, otsu_threshold, presplit

__all__ = ["Calibration", "Segmenter", "otsu_threshold", "presplit"]


class _CallableModule(types.ModuleType):
    def __call__(self, text: str, model: str | None = None) -> list[str]:
        from zhtools import _segment_text

        return _segment_text(text, model)


sys.modules[__name__].__class__ = _CallableModule
