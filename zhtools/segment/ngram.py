"""Label-free character n-gram statistics for segmentation: bigram pointwise mutual
information and branching entropy.

    python -m zhtools.segment.ngram OUT.npz CORPUS... [--min-count 3]
    python -m zhtools.segment.ngram --entropy OUT.npz CORPUS... [--min-count 3]

**PMI**: counts unigrams and adjacent bigrams of CJK characters over raw text (plain or .gz,
streamed in blocks), keeps bigrams seen at least ``min_count`` times, and stores sorted uint64
keys (``cp(a) << 32 | cp(b)``) with their counts. ``pmi(a, b) = log(c(ab) N / (c(a) c(b)))``,
with unseen or pruned bigrams backed off to ``c(ab) = 0.5``. Only counts are stored, never text.

**Branching entropy** (Jin & Tanaka-Ishii 2006; Harris's successor variety): for every Hanzi
k-gram ``g`` (k = 2, 3) seen in at least ``min_count`` (k+1)-grams on a side, the entropy of the
character that follows it (right) and of the one that precedes it (left). Inside a word the next
character is predictable (low entropy); at a word boundary many characters can follow. For the
gap between characters ``i`` and ``i+1`` of a run, :meth:`EntropyStats.features` returns minus
the right entropy of the k-gram ending at ``i`` and minus the left entropy of the k-gram starting
at ``i+1`` (``hr2, hl2, hr3, hl3``: larger = more cohesive; NaN where the k-gram is unknown or
does not fit in the run). Stored as sorted k-gram keys (16 bits per BMP Hanzi) and entropies
quantised to 1/32 nat (uint8, 255 = unknown); again counts-derived numbers only, never text.
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


def _read_blocks(paths: Sequence[str], block_chars: int, flush) -> None:  # noqa: ANN001
    """Call ``flush(lines)`` on blocks of about ``block_chars`` characters of each file."""
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


def _group_sums(keys: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sorted unique ``keys`` and, for each of ``values``, its sum over each group of equal keys."""
    order = np.argsort(keys, kind="stable")
    uk, start = np.unique(keys[order], return_index=True)
    return (uk, *(np.add.reduceat(v[order], start) for v in values))


def _sum_counts(keys: list[np.ndarray], counts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-block (unique keys, counts): sorted unique keys with their summed counts."""
    return _group_sums(np.concatenate(keys), np.concatenate(counts))


def _find(keys: np.ndarray, table: np.ndarray, values: np.ndarray, missing: float) -> np.ndarray:
    """``values`` of ``keys`` in the sorted ``table`` (float64), ``missing`` where absent."""
    if table.size == 0:
        return np.full(keys.shape, missing, dtype=np.float64)
    i = np.clip(np.searchsorted(table, keys), 0, table.size - 1)
    return np.where(table[i] == keys, values[i], missing).astype(np.float64)


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

    _read_blocks(paths, block_chars, flush)
    uk, summed = _sum_counts(bi_keys, bi_counts)
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

    def pmi(self, run: str) -> np.ndarray:
        """PMI of each adjacent character pair of ``run`` (length ``len(run) - 1``). Characters
        the statistics lack are looked up as their simplified variant (:mod:`zhtools.text.variants`)."""
        c = _codes(known_variants(run, self._chars.__contains__))
        if c.size < 2:
            return np.zeros(0)
        ua = np.maximum(_find(c[:-1], self.uni_keys, self.uni_counts, 0.0), 1.0)
        ub = np.maximum(_find(c[1:], self.uni_keys, self.uni_counts, 0.0), 1.0)
        keys = (c[:-1].astype(np.uint64) << np.uint64(32)) | c[1:].astype(np.uint64)
        ab = np.maximum(_find(keys, self.bi_keys, self.bi_counts, 0.0), 0.5)
        return np.log(ab) + self.log_n - np.log(ua) - np.log(ub)


ENTROPY_ORDERS = (2, 3)
ENTROPY_COLUMNS = tuple(f"h{side}{k}" for k in ENTROPY_ORDERS for side in "rl")
_BITS = np.uint64(16)  # every Hanzi counted here (_is_han) is in the BMP
_H_STEP = 1 / 32  # quantisation of stored entropies, in nats
_H_UNKNOWN = 255


def _gram_keys(c: np.ndarray, k: int) -> np.ndarray:
    """Packed keys of the ``len(c) - k + 1`` k-grams of the code array ``c`` (uint64)."""
    m = c.size - k + 1
    key = np.zeros(max(m, 0), dtype=np.uint64)
    for j in range(k):
        key = (key << _BITS) | c[j : j + m].astype(np.uint64)
    return key


def _group_entropy(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entropy of the counts within each group of equal ``keys``: (unique keys, H, group total)."""
    n = counts.astype(np.float64)
    uk, tot, nlogn = _group_sums(keys, n, n * np.log(n))
    return uk, np.log(tot) - nlogn / tot, tot


def build_entropy(paths: Sequence[str], out: str | Path, min_count: int = 3, block_chars: int = 20_000_000) -> dict:
    """Count Hanzi (k+1)-grams (k in :data:`ENTROPY_ORDERS`) over raw text and store the right
    and left branching entropy of every k-gram with at least ``min_count`` occurrences."""
    grams: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {k + 1: [] for k in ENTROPY_ORDERS}

    def flush(buf: list[str]) -> None:
        c = _codes("\n".join(buf))
        han = _is_han(c)
        for k in grams:
            ok = np.ones(max(c.size - k + 1, 0), dtype=bool)
            for j in range(k):
                ok &= han[j : j + ok.size]
            grams[k].append(np.unique(_gram_keys(c, k)[ok], return_counts=True))

    _read_blocks(paths, block_chars, flush)
    arrays: dict[str, np.ndarray] = {}
    info = {}
    for k in ENTROPY_ORDERS:
        # one count per (k+1)-gram over all blocks
        keys, counts = _sum_counts([g[0] for g in grams[k + 1]], [g[1] for g in grams[k + 1]])
        low = np.uint64((1 << (16 * k)) - 1)
        tables = {}
        for side, gkeys in (("r", keys >> _BITS), ("l", keys & low)):  # k-gram before / after the char
            uk, h, tot = _group_entropy(gkeys, counts)
            keep = tot >= min_count
            tables[side] = (uk[keep], h[keep])
        allk = np.union1d(tables["r"][0], tables["l"][0])
        arrays[f"k{k}"] = allk
        for side, (uk, h) in tables.items():
            q = np.full(allk.size, _H_UNKNOWN, dtype=np.uint8)
            q[np.searchsorted(allk, uk)] = np.clip(np.rint(h / _H_STEP), 0, _H_UNKNOWN - 1).astype(np.uint8)
            arrays[f"{side}{k}"] = q
        info[f"{k}-grams"] = int(allk.size)
    np.savez_compressed(out, min_count=np.int64(min_count), step=np.float64(_H_STEP), **arrays)
    return info


class EntropyStats:
    """Branching-entropy lookups over a file written by :func:`build_entropy`."""

    def __init__(self, path: str | Path) -> None:
        d = np.load(path)
        self.step = float(d["step"])
        self.tables = {k: (d[f"k{k}"], d[f"r{k}"], d[f"l{k}"]) for k in ENTROPY_ORDERS}
        self._chars = frozenset(chr(int(x)) for x in np.unique(self.tables[ENTROPY_ORDERS[0]][0] & np.uint64(0xFFFF)))

    def _lookup(self, keys: np.ndarray, table: np.ndarray, values: np.ndarray) -> np.ndarray:
        v = _find(keys, table, values, _H_UNKNOWN)
        return np.where(v == _H_UNKNOWN, np.nan, v * self.step)

    def features(self, run: str) -> dict[str, np.ndarray]:
        """Per adjacent pair of ``run`` (length ``len(run) - 1``): minus the right entropy of the
        k-gram ending at the left character, minus the left entropy of the k-gram starting at
        the right character (columns :data:`ENTROPY_COLUMNS`; NaN = unknown). Characters the
        statistics lack are looked up as their simplified variant."""
        c = _codes(known_variants(run, self._chars.__contains__))
        n = c.size
        out = {}
        for k in ENTROPY_ORDERS:
            keys, right, left = self.tables[k]
            g = _gram_keys(c, k)
            hr, hl = self._lookup(g, keys, right), self._lookup(g, keys, left)
            r = np.full(max(n - 1, 0), np.nan)
            lft = np.full(max(n - 1, 0), np.nan)
            if g.size:  # gap i (between i and i+1): k-gram ending at i starts at i-k+1; next starts at i+1
                r[k - 1 :] = hr[: n - k]
                lft[: n - k] = hl[1:]
            out[f"hr{k}"], out[f"hl{k}"] = -r, -lft
        return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("corpus", nargs="+")
    ap.add_argument("--min-count", type=int, default=3)
    ap.add_argument("--entropy", action="store_true", help="write branching-entropy tables instead of bigram counts")
    a = ap.parse_args(argv)
    print((build_entropy if a.entropy else build_stats)(a.corpus, a.out, a.min_count))


if __name__ == "__main__":
    main()
