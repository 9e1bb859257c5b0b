"""Tests for zhtools.parse.decoders (Eisner, MST, impact normalisation, MART)."""

from __future__ import annotations

import itertools
from functools import cache

import networkx as nx
import numpy as np
import pytest

from zhtools.parse import (
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

# --------------------------------------------------------------------------- brute force


def _is_tree(heads: tuple[int, ...]) -> bool:
    """Every word reaches ROOT (0) by following heads without revisiting a node."""
    n = len(heads)
    for m in range(1, n + 1):
        seen = set()
        node = m
        while node != 0:
            if node in seen:
                return False
            seen.add(node)
            node = heads[node - 1]
    return True


def _descendants(heads: tuple[int, ...], h: int) -> set[int]:
    out: set[int] = set()
    frontier = [h]
    while frontier:
        x = frontier.pop()
        for m, hm in enumerate(heads, start=1):
            if hm == x and m not in out:
                out.add(m)
                frontier.append(m)
    return out


def _is_projective(heads: tuple[int, ...]) -> bool:
    """Each arc h -> m dominates every word strictly between h and m (ROOT at position 0)."""
    for m, h in enumerate(heads, start=1):
        lo, hi = min(h, m), max(h, m)
        desc = _descendants(heads, h)
        if any(w not in desc for w in range(lo + 1, hi)):
            return False
    return True


@cache
def _all_trees(n: int, projective: bool) -> np.ndarray:
    """All head assignments (rows) forming a tree over words 1..n, optionally projective."""
    trees = []
    for heads in itertools.product(range(n + 1), repeat=n):
        if any(h == m for m, h in enumerate(heads, start=1)):
            continue
        if not _is_tree(heads):
            continue
        if projective and not _is_projective(heads):
            continue
        trees.append(heads)
    return np.array(trees, dtype=int)


def _score(scores: np.ndarray, heads) -> float:
    heads = np.asarray(heads)
    return float(scores[heads, np.arange(1, len(heads) + 1)].sum())


def _brute_best(scores: np.ndarray, projective: bool, single_root: bool) -> float:
    n = scores.shape[0] - 1
    trees = _all_trees(n, projective)
    if single_root:
        trees = trees[(trees == 0).sum(axis=1) == 1]
    totals = scores[trees, np.arange(1, n + 1)].sum(axis=1)
    return float(totals.max())


def _random_scores(rng: np.random.Generator, n: int) -> np.ndarray:
    s = rng.normal(size=(n + 1, n + 1))
    s[:, 0] = -np.inf
    np.fill_diagonal(s, -np.inf)
    return s


def test_enumerator_counts():
    # Cayley: (n+1)^(n-1) rooted trees; projective trees with ROOT: 1, 3, 12, 55 (n = 1..4).
    assert [len(_all_trees(n, False)) for n in range(1, 5)] == [1, 3, 16, 125]
    assert [len(_all_trees(n, True)) for n in range(1, 5)] == [1, 3, 12, 55]


# --------------------------------------------------------------------------- Eisner


@pytest.mark.parametrize("single_root", [True, False])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_eisner_matches_brute_force(n, single_root):
    rng = np.random.default_rng(100 * n + single_root)
    for _ in range(4):
        s = _random_scores(rng, n)
        heads = eisner(s, single_root=single_root)
        assert len(heads) == n
        assert _is_tree(tuple(heads)) and _is_projective(tuple(heads))
        if single_root:
            assert heads.count(0) == 1
        assert _score(s, heads) == pytest.approx(_brute_best(s, True, single_root))


def test_eisner_single_root_differs_when_needed():
    # Two strong root arcs: unconstrained keeps both, single_root must drop one.
    s = np.full((3, 3), -5.0)
    s[0, 1] = s[0, 2] = 10.0
    assert eisner(s, single_root=False) == [0, 0]
    assert eisner(s, single_root=True) in ([0, 1], [2, 0])


@pytest.mark.parametrize("single_root", [True, False])
def test_eisner_long_sentence_is_valid_projective_tree(single_root):
    rng = np.random.default_rng(7)
    n = 40
    heads = eisner(rng.normal(size=(n + 1, n + 1)), single_root=single_root)
    assert len(heads) == n and all(0 <= h <= n for h in heads)
    assert _is_tree(tuple(heads)) and _is_projective(tuple(heads))
    if single_root:
        assert heads.count(0) == 1


def test_eisner_ignores_diagonal_and_arcs_into_root():
    s = np.zeros((3, 3))
    s[1, 1] = s[2, 2] = 1e9  # self-loops
    s[1, 0] = s[2, 0] = 1e9  # arcs into ROOT
    s[0, 1] = 1.0
    s[1, 2] = 1.0
    assert eisner(s) == [0, 1]


# --------------------------------------------------------------------------- MST


@pytest.mark.parametrize("single_root", [True, False])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_mst_matches_brute_force(n, single_root):
    rng = np.random.default_rng(200 * n + single_root)
    for _ in range(3):
        s = _random_scores(rng, n)
        heads = mst(s, single_root=single_root)
        assert len(heads) == n and _is_tree(tuple(heads))
        if single_root:
            assert heads.count(0) == 1
        assert _score(s, heads) == pytest.approx(_brute_best(s, False, single_root))


def test_mst_multi_root_equals_networkx():
    rng = np.random.default_rng(3)
    for n in (3, 6, 9):
        s = rng.normal(size=(n + 1, n + 1))
        g = nx.DiGraph()
        g.add_weighted_edges_from(
            (h, m, s[h, m]) for h in range(n + 1) for m in range(1, n + 1) if h != m
        )
        ref = nx.maximum_spanning_arborescence(g)
        expected = [0] * n
        for h, m in ref.edges():
            expected[m - 1] = h
        assert mst(s, single_root=False) == expected


def _networkx_single_root(s: np.ndarray) -> float:
    """Reference: best single-rooted tree = best over ROOT children r of the arborescence with
    0 -> r as the only ROOT arc (one networkx run per r)."""
    n = s.shape[0] - 1
    best = -np.inf
    for r in range(1, n + 1):
        g = nx.DiGraph()
        g.add_weighted_edges_from((h, m, s[h, m]) for h in range(1, n + 1) for m in range(1, n + 1) if h != m)
        g.add_edge(0, r, weight=s[0, r])
        t = nx.maximum_spanning_arborescence(g)
        best = max(best, sum(s[h, m] for h, m in t.edges()))
    return best


def test_mst_single_root_equals_networkx_on_larger_graphs():
    rng = np.random.default_rng(7)
    for n in (6, 12, 25):
        for _ in range(3):
            s = rng.normal(size=(n + 1, n + 1))
            s[0, 1:] += 1.5  # ROOT arcs strong: the unconstrained optimum has several roots
            heads = mst(s)
            assert heads.count(0) == 1 and _is_tree(tuple(heads))
            assert _score(s, heads) == pytest.approx(_networkx_single_root(s))
            assert mst(s, single_root=False).count(0) > 1


def test_mst_missing_arcs():
    s = np.full((4, 4), -np.inf)
    s[0, 1] = s[1, 2] = s[2, 3] = 1.0
    assert mst(s) == [0, 1, 2]
    s[1, 2] = -np.inf  # word 2 has no possible head
    with pytest.raises(ValueError, match="no spanning tree"):
        mst(s)


def test_mst_non_projective_beats_eisner():
    # Crossing arcs 1 -> 3 and 2 -> 4 are both strong: the optimum is non-projective.
    s = np.full((5, 5), -10.0)
    s[0, 1] = 5.0
    s[1, 3] = s[2, 4] = s[1, 2] = 5.0
    heads = mst(s)
    assert heads == [0, 1, 1, 2]
    assert not _is_projective(tuple(heads))
    assert _score(s, eisner(s)) < _score(s, heads)


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("decoder", [eisner, mst])
@pytest.mark.parametrize("single_root", [True, False])
def test_dependency_decoders_tiny(decoder, single_root):
    assert decoder(np.zeros((2, 2)), single_root=single_root) == [0]
    s = np.zeros((3, 3))
    s[0, 2] = 2.0
    s[2, 1] = 1.0
    assert decoder(s, single_root=single_root) == [2, 0]
    s = np.zeros((3, 3))
    s[0, 1] = s[0, 2] = 2.0
    assert decoder(s, single_root=False) == [0, 0]
    assert decoder(s, single_root=True) in ([0, 1], [2, 0])


def test_pipeline_from_impact_tiny():
    for n in (1, 2):
        F = np.arange(n * n, dtype=float).reshape(n, n)
        root = choose_root_scores(F)
        assert root.shape == (n,)
        for mode in ("none", "row-softmax", "reference-quirk"):
            s = scores_from_impact(F, root, normalize=mode)
            assert s.shape == (n + 1, n + 1)
            assert eisner(s) == mst(s)
    assert mart(np.zeros((1, 1))) == 0
    assert mart(np.zeros((2, 2))) == (0, 1)
    assert tree_spans(0) == set() and tree_spans((0, 1)) == set()


# --------------------------------------------------------------------------- scores_from_impact


def test_reference_quirk_divides_by_row_sum_of_column_index():
    # F = log(E) with max(E) = 1, so e = exp(F - F.max()) = E exactly.
    E = np.array([[1.0, 0.5, 0.5], [0.25, 1.0, 0.25], [0.5, 0.5, 1.0]])
    F = np.log(E)
    # Row sums of E: [2, 1.5, 2]. The quirk divides entry [i, j] by row sum j (not i):
    # G = [[1/2, 0.5/1.5, 0.5/2], [0.25/2, 1/1.5, 0.25/2], [0.5/2, 0.5/1.5, 1/2]].
    G = np.array(
        [
            [1 / 2, 1 / 3, 1 / 4],
            [1 / 8, 2 / 3, 1 / 8],
            [1 / 4, 1 / 3, 1 / 2],
        ]
    )
    root = np.array([0.1, 0.2, 0.3])
    s = scores_from_impact(F, root, normalize="reference-quirk")
    for h in range(1, 4):
        for m in range(1, 4):
            if h != m:
                assert s[h, m] == pytest.approx(G[m - 1, h - 1])
    # e.g. head 2 -> dependent 1 reads G[0, 1] = 0.5 / 1.5, a correct row softmax gives 0.5 / 2.
    assert s[2, 1] == pytest.approx(1 / 3)
    np.testing.assert_allclose(s[0, 1:], root)
    assert np.all(np.isneginf(s[:, 0])) and np.all(np.isneginf(np.diag(s)))


def test_row_softmax_is_log_distribution_over_heads():
    rng = np.random.default_rng(0)
    n = 5
    F = rng.normal(size=(n, n))
    F[np.diag_indices(n)] = 100.0  # diagonal must be ignored
    root = rng.normal(size=n)
    s = scores_from_impact(F, root, normalize="row-softmax")
    for m in range(1, n + 1):
        heads = [h for h in range(1, n + 1) if h != m]
        probs = np.exp(s[heads, m])
        assert probs.sum() == pytest.approx(1.0)
        # proportional to exp(F[m-1, h-1])
        raw = np.exp(F[m - 1, [h - 1 for h in heads]])
        np.testing.assert_allclose(probs, raw / raw.sum())
    assert np.exp(s[0, 1:]).sum() == pytest.approx(1.0)
    assert np.all(np.isneginf(s[:, 0])) and np.all(np.isneginf(np.diag(s)))


def test_none_mode_is_transpose():
    F = np.array([[0.0, 1.0, 2.0], [3.0, 0.0, 4.0], [5.0, 6.0, 0.0]])
    s = scores_from_impact(F, np.zeros(3), normalize="none")
    assert s[2, 1] == F[0, 1] and s[1, 3] == F[2, 0] and s[3, 2] == F[1, 2]
    with pytest.raises(ValueError):
        scores_from_impact(F, np.zeros(3), normalize="bogus")


def test_choose_root_scores():
    # Word 0 affects the others strongly and is barely affected.
    F = np.array([[0.0, 0.1, 0.1], [0.9, 0.0, 0.2], [0.8, 0.3, 0.0]])
    out = choose_root_scores(F, "out-impact")
    assert int(np.argmax(out)) == 0
    assert out.mean() == pytest.approx(0.0) and out.std() == pytest.approx(1.0)
    np.testing.assert_allclose(choose_root_scores(F, "in-impact"), [-0.2, -1.1, -1.1])
    np.testing.assert_array_equal(choose_root_scores(F, "uniform"), np.zeros(3))


# --------------------------------------------------------------------------- constituency


def _sym(d01, d02, d03, d12, d13, d23):
    return np.array(
        [
            [0.0, d01, d02, d03],
            [d01, 0.0, d12, d13],
            [d02, d12, 0.0, d23],
            [d03, d13, d23, 0.0],
        ]
    )


def test_mart_hand_example_balanced():
    # Symmetric D, zero diagonal, n = 4:
    #   k=1: left 0,           right 2*d23/6,  between 2*(d02+d03)/3
    #   k=2: left 2*d01/4,     right 0,        between 2*(d03+d13)/4
    #   k=3: left 2*(d01+d02+d12)/6, right 0,  between 0 (word 3 excluded)
    # d01=.2 d02=.1 d03=1 d12=.5 d13=1 d23=.6:
    #   k=1: 0.2 - 2.2/3 = -0.533;  k=2: 0.1 - 1.0 = -0.9;  k=3: 0.8/3 = 0.267  -> k=2
    # node = (MART([0, 1]), (2, MART([3]))) = ((0, 1), (2, 3)).
    D = _sym(0.2, 0.1, 1.0, 0.5, 1.0, 0.6)
    tree = mart(D)
    assert tree == ((0, 1), (2, 3))
    assert tree_spans(tree) == {(0, 2), (2, 4)}


def test_mart_hand_example_first_split():
    # d01=.2 d02=.8 d03=.9 d12=.7 d13=.8 d23=.3:
    #   k=1: 0.3/3 - 2*1.7/3 = -1.033;  k=2: 0.1 - 1.7/2 = -0.75;  k=3: 1.7/3 = 0.567 -> k=1
    # node = (MART([0]), (1, MART([2, 3]))) = (0, (1, (2, 3))).
    D = _sym(0.2, 0.8, 0.9, 0.7, 0.8, 0.3)
    tree = mart(D)
    assert tree == (0, (1, (2, 3)))
    assert tree_spans(tree) == {(1, 4), (2, 4)}


def test_mart_three_words_and_leaf_right_child():
    D3 = np.full((3, 3), 0.1)
    np.fill_diagonal(D3, 0.0)
    # n=3: k=1: left 0, right 0 (single word 2), between (d02+d20)/2 = 0.1 -> -0.1
    #      k=2: left (d01+d10)/4 = 0.05, right 0, between 0 (word 2 excluded) -> 0.05
    # -> k=1: (0, (1, MART([2]))) = (0, (1, 2)).
    assert mart(D3) == (0, (1, 2))
    # Negative d01 makes k=2 win: k=1 cost -(d02+d20)/2 = 0, k=2 cost (d01+d10)/4 = -0.5.
    # words[k+1:] is empty, so the right child is the bare leaf 2: ((0, 1), 2).
    D3 = np.zeros((3, 3))
    D3[0, 1] = D3[1, 0] = -1.0
    assert mart(D3) == ((0, 1), 2)
    assert tree_spans(((0, 1), 2)) == {(0, 2)}


def _leaves(tree) -> list[int]:
    if isinstance(tree, tuple):
        return [leaf for child in tree for leaf in _leaves(child)]
    return [tree]


def test_mart_random_covers_words_in_order():
    rng = np.random.default_rng(1)
    for n in range(1, 9):
        D = distance_from_impact(rng.normal(size=(n, n)))
        tree = mart(D)
        assert _leaves(tree) == list(range(n))
        for lo, hi in tree_spans(tree):
            assert 0 <= lo < hi <= n and hi - lo >= 2 and (lo, hi) != (0, n)


def test_distance_from_impact():
    F = np.array([[1.0, 2.0], [3.0, 0.5]])
    e = np.exp(F - 3.0)
    M = e / e.sum(axis=0)
    D = distance_from_impact(F)
    assert D[0, 0] == 0.0 and D[1, 1] == 0.0
    assert D[0, 1] == pytest.approx(1 - M[0, 1]) and D[1, 0] == pytest.approx(1 - M[1, 0])


def test_branching_baselines():
    assert right_branching(1) == 0 and left_branching(1) == 0
    assert right_branching(4) == (0, (1, (2, 3)))
    assert left_branching(4) == (((0, 1), 2), 3)
    assert tree_spans(right_branching(4)) == {(1, 4), (2, 4)}
    assert tree_spans(left_branching(4)) == {(0, 2), (0, 3)}


def test_to_nltk_leaves_in_order():
    words = ["我", "喜欢", "自然", "语言"]
    t = to_nltk(((0, 1), (2, 3)), words)
    assert t.label() == "X" and t.leaves() == words
    assert all(sub.label() == "X" for sub in t.subtrees())
    assert to_nltk(right_branching(4), words).leaves() == words
    assert to_nltk(0, ["好"]).leaves() == ["好"]
