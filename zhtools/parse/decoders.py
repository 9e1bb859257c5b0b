"""Tree decoders turning a word-level impact matrix into dependency or constituency trees.

Conventions: an impact matrix ``F`` is an ``(n, n)`` float array where ``F[i, j]`` is how much
word ``j`` affects word ``i`` (row = dependent candidate, column = head candidate); its diagonal
is meaningless. Arc-score matrices are ``(n + 1, n + 1)`` with index 0 = ROOT and
``scores[h, m]`` the score of the arc ``h -> m``. Heads are returned CoNLL-U style: a list of
length ``n`` with 1-based head indices and 0 for the root.

Constituency trees use a small internal form: a leaf is a 0-based word index (``int``), an
internal node is a tuple of subtrees.
"""

from __future__ import annotations

from typing import TypeAlias

import nltk
import numpy as np

Tree: TypeAlias = "int | tuple[Tree, ...]"

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

NORMALIZATIONS = ("none", "row-softmax", "reference-quirk")
ROOT_RULES = ("out-impact", "in-impact", "uniform")


# --------------------------------------------------------------------------- helpers


def _check_square(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"{name} must be a square 2-D array, got shape {a.shape}")
    return a


def _arc_scores(scores: np.ndarray) -> np.ndarray:
    """Validated float copy of ``scores`` with the diagonal and arcs into ROOT set to -inf."""
    sc = _check_square(scores, "scores").copy()
    if sc.shape[0] < 1:
        raise ValueError("scores must be at least 1 x 1 (ROOT only)")
    np.fill_diagonal(sc, -np.inf)
    sc[:, 0] = -np.inf
    return sc


def _off_diagonal(F: np.ndarray) -> np.ndarray:
    """Copy of ``F`` with the (meaningless) diagonal set to 0."""
    G = _check_square(F, "F").copy()
    np.fill_diagonal(G, 0.0)
    return G


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    m = x.max()
    return x - m - np.log(np.exp(x - m).sum())


# --------------------------------------------------------------------------- dependency decoders


def eisner(scores: np.ndarray, single_root: bool = True) -> list[int]:
    """First-order projective maximum spanning tree (Eisner's O(n^3) algorithm).

    ``scores`` is ``(n + 1, n + 1)`` with ``scores[h, m]`` the score of arc ``h -> m`` and index
    0 = ROOT; the diagonal and column 0 are ignored, ``-inf`` marks forbidden arcs. With
    ``single_root`` ROOT gets exactly one child, otherwise any number. The dynamic program is
    vectorised over span starts and split points (one Python iteration per span length).
    Returns the heads of words ``1..n`` (0 = ROOT).
    """
    sc = _arc_scores(scores)
    N = sc.shape[0]
    n = N - 1
    if n == 0:
        return []
    if n == 1:
        return [0]
    # d = 0: head at the right end t (arcs point left); d = 1: head at the left end s.
    C = np.full((N, N, 2), -np.inf)
    Inc = np.full((N, N, 2), -np.inf)
    bp_c = np.zeros((N, N, 2), dtype=np.int64)
    bp_i = np.zeros((N, N), dtype=np.int64)
    C[np.arange(N), np.arange(N), :] = 0.0
    for k in range(1, N):
        s = np.arange(N - k)
        t = s + k
        rows = np.arange(N - k)
        r = s[:, None] + np.arange(k)[None, :]  # split points s .. t-1
        # incomplete spans: C[s, r, ->] + C[r+1, t, <-] plus the arc between s and t
        v = C[s[:, None], r, 1] + C[r + 1, t[:, None], 0]
        best = v.argmax(axis=1)
        bv = v[rows, best]
        Inc[s, t, 0] = bv + sc[t, s]
        Inc[s, t, 1] = bv + sc[s, t]
        bp_i[s, t] = s + best
        # complete span headed at t: C[s, r, <-] + I[r, t, <-], r in s .. t-1
        v = C[s[:, None], r, 0] + Inc[r, t[:, None], 0]
        best = v.argmax(axis=1)
        C[s, t, 0] = v[rows, best]
        bp_c[s, t, 0] = s + best
        # complete span headed at s: I[s, r, ->] + C[r, t, ->], r in s+1 .. t
        v = Inc[s[:, None], r + 1, 1] + C[r + 1, t[:, None], 1]
        best = v.argmax(axis=1)
        C[s, t, 1] = v[rows, best]
        bp_c[s, t, 1] = s + 1 + best

    heads = [-1] * N
    if single_root:
        # ROOT's single child r heads a complete span to each side covering all words.
        cand = sc[0, 1:] + C[1, 1:, 0] + C[1:, n, 1]
        root = int(np.argmax(cand)) + 1
        if not np.isfinite(cand[root - 1]):
            raise ValueError("no single-rooted projective tree with finite score")
        heads[root] = 0
        stack = [(1, root, 0, True), (root, n, 1, True)]
    else:
        if not np.isfinite(C[0, n, 1]):
            raise ValueError("no projective tree with finite score")
        stack = [(0, n, 1, True)]
    while stack:
        s, t, d, complete = stack.pop()
        if s == t:
            continue
        if complete:
            r = int(bp_c[s, t, d])
            if d == 0:
                stack += [(s, r, 0, True), (r, t, 0, False)]
            else:
                stack += [(s, r, 1, False), (r, t, 1, True)]
        else:
            if d == 0:
                heads[s] = t
            else:
                heads[t] = s
            r = int(bp_i[s, t])
            stack += [(s, r, 1, True), (r + 1, t, 0, True)]
    return heads[1:]


def _cle(sc: np.ndarray) -> np.ndarray:
    """Chu-Liu/Edmonds maximum spanning arborescence rooted at node 0 of the arc-score matrix
    ``sc[h, m]`` (-inf = no arc; the diagonal and column 0 are ignored). Returns ``heads`` with
    ``heads[0] = -1``. Recursive contraction, O(n^3) in numpy. Raises ValueError when some node
    has no finite incoming arc or no spanning arborescence exists."""
    n = sc.shape[0]
    sc = sc.copy()
    np.fill_diagonal(sc, -np.inf)
    sc[:, 0] = -np.inf
    heads = sc.argmax(axis=0)
    heads[0] = -1
    if n > 1 and not np.isfinite(sc[heads[1:], np.arange(1, n)]).all():
        raise ValueError("no spanning tree with finite score")
    cycle = _find_cycle(heads)
    if cycle is None:
        return heads
    in_c = np.zeros(n, dtype=bool)
    in_c[cycle] = True
    rest = np.flatnonzero(~in_c)  # node 0 stays first
    c = len(rest)  # index of the contracted node in the smaller graph
    cyc_in = sc[heads[cycle], cycle]  # score of each cycle node's cycle arc
    small = np.full((c + 1, c + 1), -np.inf)
    small[:c, :c] = sc[np.ix_(rest, rest)]
    # entering the cycle at m from u: gain sc[u, m] - cyc_in[m] (the cycle arc into m is broken)
    enter = sc[np.ix_(rest, cycle)] - cyc_in[None, :]
    enter_at = enter.argmax(axis=1)
    small[:c, c] = enter[np.arange(c), enter_at]
    leave = sc[np.ix_(cycle, rest)]  # leaving the cycle from h to v
    leave_from = leave.argmax(axis=0)
    small[c, :c] = leave[leave_from, np.arange(c)]
    sub = _cle(small)
    out = np.empty(n, dtype=int)
    out[cycle] = heads[cycle]
    for k, v in enumerate(rest):
        h = sub[k]
        out[v] = -1 if h < 0 else (cycle[leave_from[k]] if h == c else rest[h])
    u = sub[c]
    out[cycle[enter_at[u]]] = rest[u]
    return out


def _find_cycle(heads: np.ndarray) -> np.ndarray | None:
    """Nodes of one cycle in the head graph (node 0 = root), or None."""
    n = len(heads)
    state = np.zeros(n, dtype=int)  # 0 new, 1 on the current path, 2 done
    state[0] = 2
    for s in range(1, n):
        path = []
        v = s
        while state[v] == 0:
            state[v] = 1
            path.append(v)
            v = heads[v]
        if state[v] == 1:  # closed a cycle through v
            return np.array(path[path.index(v):])
        for w in path:
            state[w] = 2
    return None


def mst(scores: np.ndarray, single_root: bool = True) -> list[int]:
    """Non-projective maximum spanning arborescence rooted at ROOT (Chu-Liu/Edmonds, numpy).

    ``scores`` follows the same convention as :func:`eisner`; non-finite arcs are absent. With
    ``single_root`` every ROOT arc is lowered by a constant M larger than the score range of any
    tree, so the optimum takes exactly one ROOT arc and is the best single-rooted tree (exact,
    one Chu-Liu/Edmonds run instead of one per root candidate). Returns the heads of words
    ``1..n`` (0 = ROOT).
    """
    sc = _arc_scores(scores)
    n = sc.shape[0] - 1
    if n == 0:
        return []
    if n == 1:
        if not np.isfinite(sc[0, 1]):
            raise ValueError("no spanning tree with finite score")
        return [0]
    if single_root:
        finite = sc[np.isfinite(sc)]
        big = (n + 1) * (float(finite.max() - finite.min()) + 1.0)
        sc[0, 1:] -= big
    try:
        heads = _cle(sc)
    except ValueError:
        raise ValueError("no spanning tree with finite score") from None
    if single_root and np.count_nonzero(heads[1:] == 0) != 1:  # only when no 1-root tree exists
        raise ValueError("no single-rooted spanning tree with finite score")
    return [int(h) for h in heads[1:]]


def scores_from_impact(
    F: np.ndarray, root_scores: np.ndarray, normalize: str = "row-softmax"
) -> np.ndarray:
    """Build the ``(n + 1, n + 1)`` arc-score matrix from an impact matrix.

    Word arcs are ``scores[h, m] = G[m - 1, h - 1]`` (head ``h``'s impact on dependent ``m``),
    root arcs ``scores[0, m]`` come from ``root_scores[m - 1]``; the diagonal and arcs into ROOT
    are ``-inf``. ``G`` depends on ``normalize``:

    * ``"none"``: ``G = F`` (diagonal ignored); root scores used as given.
    * ``"row-softmax"``: log-softmax of each row of ``F`` over the off-diagonal entries, i.e. for
      each dependent a log-distribution over candidate heads, so a tree's total score is a
      log-probability; root scores also go through a log-softmax over words.
    * ``"reference-quirk"``: reproduces the reference implementation's bug verbatim:
      ``e = exp(F - F.max()); G = e / e.sum(axis=1)`` without ``keepdims``, so by broadcasting
      ``G[i, j] = e[i, j] / sum(e[j, :])`` (row sum of row ``j``, not ``i``; diagonal included);
      raw probabilities, not logs; root scores used as given.
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    F = _check_square(F, "F")
    n = F.shape[0]
    root = np.asarray(root_scores, dtype=float).reshape(-1)
    if root.shape[0] != n:
        raise ValueError(f"root_scores must have length {n}, got {root.shape[0]}")
    if normalize == "none":
        G = _off_diagonal(F)
    elif normalize == "row-softmax":
        G = _off_diagonal(F)
        off = ~np.eye(n, dtype=bool)
        masked = np.where(off, G, -np.inf)
        G = np.full((n, n), -np.inf)
        if n > 1:
            mx = masked.max(axis=1, keepdims=True)
            lse = mx + np.log(np.exp(masked - mx).sum(axis=1, keepdims=True))
            G = np.where(off, masked - lse, -np.inf)
        root = _log_softmax(root) if n else root
    else:
        e = np.exp(F - F.max())
        G = e / e.sum(axis=1)
    scores = np.full((n + 1, n + 1), -np.inf)
    scores[1:, 1:] = G.T
    scores[0, 1:] = root
    np.fill_diagonal(scores, -np.inf)
    scores[:, 0] = -np.inf
    return scores


def choose_root_scores(F: np.ndarray, rule: str = "out-impact") -> np.ndarray:
    """Label-free root heuristics; returns a length-``n`` vector, larger = more root-like.

    * ``"out-impact"``: column sum minus row sum of ``F`` (affects others a lot, is little
      affected by them), standardised to zero mean / unit std (only centred if the std is 0).
    * ``"in-impact"``: negative row sum (least affected by the other words).
    * ``"uniform"``: zeros.

    The diagonal of ``F`` is ignored.
    """
    if rule not in ROOT_RULES:
        raise ValueError(f"rule must be one of {ROOT_RULES}, got {rule!r}")
    G = _off_diagonal(F)
    n = G.shape[0]
    if rule == "uniform":
        return np.zeros(n)
    if rule == "in-impact":
        return -G.sum(axis=1)
    v = G.sum(axis=0) - G.sum(axis=1)
    if n == 0:
        return v
    v = v - v.mean()
    std = v.std()
    return v / std if std > 0 else v


# --------------------------------------------------------------------------- constituency


def distance_from_impact(F: np.ndarray) -> np.ndarray:
    """Distance matrix for :func:`mart`: ``1 -`` column-wise softmax of ``F``.

    ``M = exp(F - max(F))`` divided by its column sums, diagonal zeroed, ``D = 1 - M`` with the
    diagonal zeroed again.
    """
    F = _check_square(F, "F")
    M = np.exp(F - F.max()) if F.size else F.copy()
    M = M / M.sum(axis=0, keepdims=True)
    np.fill_diagonal(M, 0.0)
    D = 1.0 - M
    np.fill_diagonal(D, 0.0)
    return D


def _mart(D: np.ndarray, words: list[int]) -> Tree:
    n = len(words)
    if n == 1:
        return words[0]
    if n == 2:
        return (words[0], words[1])
    sub = D[np.ix_(words, words)]
    costs = []
    for k in range(1, n):
        left = sub[:k, :k].sum() / (2 * k)
        right = sub[k + 1 :, k + 1 :].sum() / (2 * (n - k))
        between = (sub[:k, k + 1 :].sum() + sub[k + 1 :, :k].sum()) / (k * (n - k))
        costs.append(left + right - between)
    k = int(np.argmin(costs)) + 1
    rest = words[k + 1 :]
    right_node: Tree = (words[k], _mart(D, rest)) if rest else words[k]
    return (_mart(D, words[:k]), right_node)


def mart(D: np.ndarray) -> Tree:
    """MART top-down splitting of the words ``0..n-1`` on a distance matrix ``D``.

    For a span of ``n > 2`` words, every split ``k`` in ``1..n-1`` is scored with
    ``left + right - between`` where ``left = sum(D[:k, :k]) / 2k``,
    ``right = sum(D[k+1:, k+1:]) / 2(n-k)`` and
    ``between = (sum(D[:k, k+1:]) + sum(D[k+1:, :k])) / k(n-k)`` (word ``k`` itself is left out
    of the right and between blocks). The minimum (first on ties) gives the node
    ``(MART(words[:k]), (word_k, MART(words[k+1:])))``; when ``words[k+1:]`` is empty the
    right child is just the leaf ``word_k``. Two words give ``(0, 1)``, one word the leaf ``0``.
    """
    D = _check_square(D, "D")
    if D.shape[0] == 0:
        raise ValueError("D must cover at least one word")
    return _mart(D, list(range(D.shape[0])))


def right_branching(n: int) -> Tree:
    """Right-branching tree ``(0, (1, (..., (n-2, n-1))))`` over ``n >= 1`` words."""
    if n < 1:
        raise ValueError("n must be >= 1")
    tree: Tree = n - 1
    for i in range(n - 2, -1, -1):
        tree = (i, tree)
    return tree


def left_branching(n: int) -> Tree:
    """Left-branching tree ``((((0, 1), 2), ...), n-1)`` over ``n >= 1`` words."""
    if n < 1:
        raise ValueError("n must be >= 1")
    tree: Tree = 0
    for i in range(1, n):
        tree = (tree, i)
    return tree


def to_nltk(tree: Tree, words: list[str]) -> nltk.Tree:
    """Convert an internal tree to an ``nltk.Tree``: nodes labelled ``"X"``, leaves = words."""

    def build(node: Tree) -> nltk.Tree | str:
        if isinstance(node, tuple):
            return nltk.Tree("X", [build(child) for child in node])
        return words[node]

    out = build(tree)
    return out if isinstance(out, nltk.Tree) else nltk.Tree("X", [out])


def tree_spans(tree: Tree) -> set[tuple[int, int]]:
    """0-based half-open spans of internal nodes covering >= 2 words, minus the whole sentence."""
    spans: set[tuple[int, int]] = set()

    def walk(node: Tree) -> tuple[int, int]:
        if not isinstance(node, tuple):
            return node, node + 1
        bounds = [walk(child) for child in node]
        span = (min(b[0] for b in bounds), max(b[1] for b in bounds))
        if span[1] - span[0] >= 2:
            spans.add(span)
        return span

    whole = walk(tree)
    spans.discard(whole)
    return spans
