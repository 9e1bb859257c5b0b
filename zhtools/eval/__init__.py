"""Evaluation metrics: segmentation, dependency parsing, summarization, classification."""

from zhtools.eval.cls import score_cls
from zhtools.eval.conllu import Sentence, is_punct, parse_conllu, read_conllu, write_conllu
from zhtools.eval.cws import read_segmented, read_words, score_cws
from zhtools.eval.dep import (
    bracket_f1,
    dep_brackets,
    drop_punct_spans,
    left_branching_spans,
    left_chain,
    random_projective,
    right_branching_spans,
    right_chain,
    score_dep,
    score_dep_spans,
)
from zhtools.eval.summ import score_summ

__all__ = [
    "Sentence",
    "bracket_f1",
    "dep_brackets",
    "drop_punct_spans",
    "is_punct",
    "left_branching_spans",
    "left_chain",
    "parse_conllu",
    "random_projective",
    "read_conllu",
    "read_segmented",
    "read_words",
    "right_branching_spans",
    "right_chain",
    "score_cls",
    "score_cws",
    "score_dep",
    "score_dep_spans",
    "score_summ",
    "write_conllu",
]
