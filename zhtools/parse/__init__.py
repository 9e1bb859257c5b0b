"""Unsupervised parsing from impact matrices: dependency and constituency tree decoders."""

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
