"""The one zhtools batching layer.

Items of any kind (encoder inputs, perturbed copies of a sentence, seq2seq pairs, labelled
examples) are grouped into length-bucketed batches under a **token budget**: the padded size of
a batch, ``len(batch) * max_len_in_batch``, never exceeds ``budget``. A single item longer than
the budget gets a batch of its own and is counted in :attr:`BatchStats.oversize`.

Streaming: items are read lazily in pools of ``pool`` items; each pool is sorted by length and
cut into batches, so memory stays bounded on unbounded input. :func:`map_batched` runs a
function over the batches and yields results **in input order**.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)


@dataclass
class BatchStats:
    """Counts collected while batching (padding efficiency = real / padded tokens)."""

    batches: int = 0
    items: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    oversize: list[int] = field(default_factory=list)  # input indices of over-budget items

    @property
    def efficiency(self) -> float:
        return self.real_tokens / self.padded_tokens if self.padded_tokens else 1.0


@dataclass
class Batch:
    """A batch: the items, their positions in the input stream, and their lengths."""

    indices: list[int]
    items: list[Any]
    lengths: list[int]

    def __len__(self) -> int:
        return len(self.items)

    @property
    def padded_tokens(self) -> int:
        return len(self.items) * max(self.lengths, default=0)


def _cut_sorted(
    order: Sequence[int], lengths: Sequence[int], budget: int, max_items: int | None
) -> Iterator[list[int]]:
    """Cut an ascending-length order into runs whose padded size stays within ``budget``."""
    cur: list[int] = []
    cur_max = 0
    for k in order:
        n = max(lengths[k], 1)
        new_max = max(cur_max, n)
        if cur and (new_max * (len(cur) + 1) > budget or (max_items and len(cur) >= max_items)):
            yield cur
            cur, new_max = [], n
        cur.append(k)
        cur_max = new_max
    if cur:
        yield cur


def token_batches(
    items: Iterable[T],
    length: Callable[[T], int],
    budget: int,
    *,
    pool: int = 4096,
    max_items: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
    stats: BatchStats | None = None,
) -> Iterator[Batch]:
    """Yield length-bucketed :class:`Batch` es under a padded-token ``budget``.

    Items are consumed lazily, ``pool`` at a time. Inside a pool they are sorted by length, so
    similar lengths share a batch. With ``shuffle`` the batch order inside each pool is shuffled
    (for training); otherwise batches come out shortest first within each pool.
    """
    if budget <= 0:
        raise ValueError("token budget must be positive")
    rng = random.Random(seed)
    it = iter(items)
    base = 0
    while True:
        chunk = list(itertools.islice(it, pool))
        if not chunk:
            return
        lens = [int(length(x)) for x in chunk]
        order = sorted(range(len(chunk)), key=lambda k: lens[k])
        groups = list(_cut_sorted(order, lens, budget, max_items))
        if shuffle:
            rng.shuffle(groups)
        for g in groups:
            b = Batch([base + k for k in g], [chunk[k] for k in g], [lens[k] for k in g])
            if len(g) == 1 and lens[g[0]] > budget:
                log.warning("item %d has %d tokens > budget %d: own batch", b.indices[0], lens[g[0]], budget)
                if stats is not None:
                    stats.oversize.append(b.indices[0])
            if stats is not None:
                stats.batches += 1
                stats.items += len(g)
                stats.real_tokens += sum(b.lengths)
                stats.padded_tokens += b.padded_tokens
            yield b
        base += len(chunk)


def fixed_batches(items: Iterable[T], length: Callable[[T], int], size: int) -> Iterator[Batch]:
    """Naive fixed-size batches in input order (the baseline the benchmark compares with)."""
    it = iter(items)
    base = 0
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield Batch(list(range(base, base + len(chunk))), chunk, [int(length(x)) for x in chunk])
        base += len(chunk)


def map_batched(
    fn: Callable[[Batch], Sequence[R]],
    items: Iterable[T],
    length: Callable[[T], int],
    budget: int,
    *,
    pool: int = 4096,
    stats: BatchStats | None = None,
) -> Iterator[R]:
    """Apply ``fn`` (one result per batch item) over token-budget batches; yield results in
    input order. Memory: at most one pool of pending results."""
    pending: dict[int, R] = {}
    nxt = 0
    for b in token_batches(items, length, budget, pool=pool, stats=stats):
        res = fn(b)
        if len(res) != len(b):
            raise RuntimeError(f"batch function returned {len(res)} results for {len(b)} items")
        for i, r in zip(b.indices, res):
            pending[i] = r
        while nxt in pending:
            yield pending.pop(nxt)
            nxt += 1
    while nxt in pending:  # pragma: no cover - defensive, all indices arrive above
        yield pending.pop(nxt)
        nxt += 1


def pad(
    seqs: Sequence[Sequence[int]], pad_id: int = 0, *, left: bool = False, dtype=torch.long
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad id sequences to one tensor; returns ``(ids, attention_mask)``."""
    n = max((len(s) for s in seqs), default=0)
    ids = torch.full((len(seqs), n), pad_id, dtype=dtype)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for k, s in enumerate(seqs):
        if not len(s):
            continue
        t = torch.as_tensor(list(s), dtype=dtype)
        if left:
            ids[k, n - len(s) :] = t
            mask[k, n - len(s) :] = 1
        else:
            ids[k, : len(s)] = t
            mask[k, : len(s)] = 1
    return ids, mask


def epoch_stream(
    lengths: Sequence[int], budget: int, collate: Callable[[list[int]], Any], *, seed: int = 0,
    pool: int = 2048, max_items: int | None = None,
) -> Callable[[int], Iterator[Any]]:
    """Training data for :class:`zhtools.train.loop.Trainer`: an endless, deterministic stream of
    token-budget batches over example indices ``0..len(lengths)-1``, reshuffled every epoch.

    ``stream(start)`` begins at global batch index ``start`` (exact resume); each batch is
    ``collate(list_of_indices)``; ``stream.per_epoch`` is the number of batches in an epoch.
    """

    def plan(epoch: int) -> list[list[int]]:
        order = list(range(len(lengths)))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        return [b.items for b in token_batches(order, lambda k: lengths[k], budget, pool=pool,
                                               max_items=max_items, shuffle=True, seed=seed + epoch)]

    per_epoch = len(plan(0))
    if not per_epoch:
        raise ValueError("no training examples")

    def stream(start: int) -> Iterator[Any]:
        epoch, skip = divmod(start, per_epoch)
        while True:
            for g in plan(epoch)[skip:]:
                yield collate(g)
            epoch, skip = epoch + 1, 0

    stream.per_epoch = per_epoch  # type: ignore[attr-defined]
    return stream
