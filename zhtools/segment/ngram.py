"""Label-free character bigram statistics for segmentation (pointwise mutual information).

    python -m zhtools.segment.ngram OUT.npz CORPUS... [--min-count 3]

Counts unigrams and adjacent bigrams of CJK characters over raw text (plain or .gz, streamed in
blocks), keeps bigrams seen at least ``min_count`` times, and stores sorted uint64 keys
(``cp(a) << 32 | cp(b)``) with their counts. ``pmi(a, b) = log(c(ab) N / (c(a) c(b)))``, with
unseen or pruned bigrams backed off to ``c(ab) = 0.5``. Only counts are stored, never text.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zhtools.text.tokenizer import open_text
from zhtools.text.variants import known_variants


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _is_han(c: np.ndarray) -> np.ndarray:
    return ((c >= 0x4E00) & (c <= 0x9FFF)) | ((c >= 0x3400) & (c <= 0x4DBF)) | (c == 0x3007)


def build_stats(paths: Sequence[str], out: str | Path, min_count: int = 3, block_chars: int = 20_000_000) -> dict:
    uni: dict[int, int] = {}
    bi_keys: list[np.ndarray] = []
    bi_counts: list[np.ndarray] = []
    total = 0

    def flush(buf: list[str]) -> None:
        nonlocal total
        c = _codes("\n".join(buf))
        han = _is_han(c)
        u, n = np.unique(c[han], return_counts=True)
        for k, v in zip(u.tolist(), n.tolist()):
            uni[k] = uni.get(k, 0) + v
        total += int(han.sum())
        both = han[:-1] & han[1:]
        keys = (c[:-1][both].astype(np.uint64) << np.uint64(32)) | c[1:][both].astype(np.uint64)
        k, n = np.unique(keys, return_counts=True)
        bi_keys.append(k)
        bi_counts.append(n)

    for p in paths:
        buf, size = [], 0
        with open_text(p) as f:
            for line in f:
                buf.append(line)
                size += len(line)
                if size >= block_chars:
                    flush(buf)
                    buf, size = [], 0
        if buf:
            flush(buf)
    keys = np.concatenate(bi_keys)
    counts = np.concatenate(bi_counts)
    order = np.argsort(keys, kind="stable")
    keys, counts = keys[order], counts[order]
    uk, start = np.unique(keys, return_index=True)
    summed = np.add.reduceat(counts, start)
    keep = summed >= min_count
    u_keys = np.fromiter(uni.keys(), dtype=np.uint32)
    u_counts = np.fromiter(uni.values(), dtype=np.int64)
    o = np.argsort(u_keys)
    np.savez_compressed(out, bi_keys=uk[keep], bi_counts=summed[keep].astype(np.uint32),
                        uni_keys=u_keys[o], uni_counts=u_counts[o].astype(np.uint64),
                        total=np.int64(total), min_count=np.int64(min_count))
    return {"characters": total, "bigrams_kept": int(keep.sum()), "bigrams_distinct": int(uk.size)}


class NgramStats:
    """Bigram PMI lookups over a stats file written by :func:`build_stats`."""

    def __init__(self, path: str | Path) -> None:
        d = np.load(path)
        self.bi_keys, self.bi_counts = d["bi_keys"], d["bi_counts"].astype(np.float64)
        self.uni_keys, self.uni_counts = d["uni_keys"], d["uni_counts"].astype(np.float64)
        self.total = float(d["total"])
        self.log_n = math.log(max(self.total, 1.0))
        self._chars = frozenset(chr(int(k)) for k in self.uni_keys)

    def _lookup(self, keys: np.ndarray, table: np.ndarray, counts: np.ndarray) -> np.ndarray:
        if table.size == 0:
            return np.zeros(keys.shape)
        i = np.clip(np.searchsorted(table, keys), 0, table.size - 1)
        return np.where(table[i] == keys, counts[i], 0.0)

    def pmi(self, run: str) -> np.ndarray:
        """PMI of each adjacent character pair of ``run`` (length ``len(run) - 1``). Characters
        the statistics lack are looked up as their simplified variant (:mod:`zhtools.text.variants`)."""
        c = _codes(known_variants(run, self._chars.__contains__))
        if c.size < 2:
            return np.zeros(0)
        ua = np.maximum(self._lookup(c[:-1], self.uni_keys, self.uni_counts), 1.0)
        ub = np.maximum(self._lookup(c[1:], self.uni_keys, self.uni_counts), 1.0)
        keys = (c[:-1].astype(np.uint64) << np.uint64(32)) | c[1:].astype(np.uint64)
        ab = np.maximum(self._lookup(keys, self.bi_keys, self.bi_counts), 0.5)
        return np.log(ab) + self.log_n - np.log(ua) - np.log(ub)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("corpus", nargs="+")
    ap.add_argument("--min-count", type=int, default=3)
    a = ap.parse_args(argv)
    print(build_stats(a.corpus, a.out, a.min_count))


if __name__ == "__main__":
    main()
