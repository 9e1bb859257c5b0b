"""Unsupervised parsing from impact matrices: dependency and constituency tree decoders.

This package is callable: ``zhtools.parse(text, model=None, kind="dependency")`` parses with a
lazily built default :class:`Parser` (the helper and the package share the name, so the
package itself is the helper).
"""

import sys
import types

from zhtools.parse.api import Parser, ParseResult
from zhtools.parse.decoders import (
    Tree,
    choose_root_scores,
    distance_from_impact,
    eisner,
    left_branching,
    mart,
    mst,
    right_branching,
    scores_from_impact,
    to_nltk,
    tree_spans,
)

__all__ = [
    "ParseResult",
    "Parser",
    "Tree",
    "choose_root_scores",
    "distance_from_impact",
    "eisner",
    "left_branching",
    "mart",
    "mst",
    "right_branching",
    "scores_from_impact",
    "to_nltk",
    "tree_spans",
]


class _CallableModule(types.ModuleType):
    def __call__(self, text: str, model: str | None = None, kind: str = "dependency"
                 ) -> ParseResult:
        from zhtools import _parse_text

        return _parse_text(text, model, kind)


sys.modules[__name__].__class__ = _CallableModule
