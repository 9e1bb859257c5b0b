"""Batching: budget respected, order restored, nothing dropped or duplicated."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zhtools.text import BatchStats, map_batched, pad, token_batches


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 300), max_size=300), st.integers(16, 1024), st.integers(1, 64))
def test_budget_and_order(lengths: list[int], budget: int, pool: int) -> None:
    stats = BatchStats()
    seen = []
    for b in token_batches(enumerate(lengths), lambda x: x[1], budget, pool=pool, stats=stats):
        if b.padded_tokens > budget:
            assert len(b) == 1 and b.lengths[0] > budget
            assert b.indices[0] in stats.oversize
        assert [x[0] for x in b.items] == b.indices
        seen.extend(b.indices)
    assert sorted(seen) == list(range(len(lengths)))
    assert len(stats.oversize) == sum(1 for n in lengths if n > budget)
    out = list(map_batched(lambda b: [x[0] * 2 for x in b.items], enumerate(lengths), lambda x: x[1], budget, pool=pool))
    assert out == [2 * i for i in range(len(lengths))]


def test_streaming_is_lazy() -> None:
    consumed = 0

    def gen():
        nonlocal consumed
        for i in range(10**9):
            consumed += 1
            yield i

    it = token_batches(gen(), lambda x: 5, 100, pool=50)
    next(it)
    assert consumed <= 51


def test_pad() -> None:
    ids, mask = pad([[1, 2, 3], [4], []], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0], [0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    ids, mask = pad([[1, 2, 3], [4]], pad_id=9, left=True)
    assert ids.tolist() == [[1, 2, 3], [9, 9, 4]]


def test_sorted_pool_beats_fixed_batches() -> None:
    import random

    from zhtools.text import fixed_batches

    rng = random.Random(0)
    lengths = [rng.randint(5, 200) for _ in range(2000)]
    s = BatchStats()
    list(token_batches(lengths, lambda x: x, 8192, stats=s))
    fixed = list(fixed_batches(lengths, lambda x: x, 64))
    eff_fixed = sum(sum(b.lengths) for b in fixed) / sum(b.padded_tokens for b in fixed)
    assert s.efficiency > 0.95 > eff_fixed
