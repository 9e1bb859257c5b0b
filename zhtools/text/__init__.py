"""Shared text layer: tokenizer (offsets, sentences, windows, vocabulary) and batching."""

from zhtools.text.batching import Batch, BatchStats, fixed_batches, map_batched, pad, token_batches
from zhtools.text.tokenizer import (
    Encoding,
    ZhTokenizer,
    build_vocab,
    split_sentences,
    stitch_ranges,
    tokenizer_from_vocab,
    windows,
)

__all__ = [
    "Batch",
    "BatchStats",
    "Encoding",
    "ZhTokenizer",
    "build_vocab",
    "fixed_batches",
    "map_batched",
    "pad",
    "split_sentences",
    "stitch_ranges",
    "token_batches",
    "tokenizer_from_vocab",
    "windows",
]
