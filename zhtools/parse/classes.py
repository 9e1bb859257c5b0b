"""A self-trained word-class attachment model: which class of word heads which, learned from
the parser's own parses of raw text (no treebank, no tags).

Word classes come from context: for each word, the encoder's masked LM says which characters
could stand right before and right after it (:func:`zhtools.parse.verbs.mask_probes`, the same
forward passes as the verb probe). The square roots of those probabilities over the fitting
corpus's ``chars`` most frequent characters, projected on their first ``dims`` principal
axes (whitened), are clustered into ``K`` classes (k-means, best of 5 restarts). The attachment model is
``log P(class of head, side of head | class of dependent)``, counted (add-one smoothing) from
the parser's own trees of a raw corpus, then refitted ``rounds`` times on the trees it helps
decode (Viterbi self-training). At parse time ``weight * log P(...)`` is added to the impact
scores of every arc before decoding (:class:`zhtools.parse.api.Parser`, ``classes=``).

``python -m zhtools.parse.classes FILE... -o DIR`` fits it on raw text (one or more UTF-8 or
``.gz`` files; a sample of their sentences) and writes ``DIR/zhtools_classes.safetensors``;
the shipped encoder carries one (``data/models/zhtools-char-small``), fitted on news,
Wikipedia and web text; any other encoder can get its own the same way.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILENAME = "zhtools_classes.safetensors"


@dataclass
class WordClasses:
    """Context-feature classes and their attachment model (see the module docstring).

    ``keep``: token ids of the feature characters; ``mean`` ``[2C]``, ``basis`` ``[2C, d]``:
    the projection; ``centroids`` ``[K, d]``; ``attach`` ``[K, K, 2]``: ``attach[c_m, c_h, s]``
    = log P(head class ``c_h``, head on side ``s`` (0 left, 1 right) | dependent class ``c_m``);
    ``weight``: its weight against the impact scores (the decoders' log-probabilities)."""

    keep: np.ndarray
    mean: np.ndarray
    basis: np.ndarray
    centroids: np.ndarray
    attach: np.ndarray
    weight: float = 1.0

    def classes(self, feats: np.ndarray) -> np.ndarray:
        """Class index of each row of ``feats`` ``[n, 2C]`` (nearest centroid)."""
        z = (np.asarray(feats, dtype=np.float32) - self.mean) @ self.basis
        return _nearest(z, self.centroids)

    def arc_scores(self, classes: np.ndarray) -> np.ndarray:
        """``[n, n]`` arc bonus for words of the given classes: ``out[m, h]`` for head ``h`` of
        dependent ``m``, ``weight * attach[c_m, c_h, h > m]`` (diagonal 0)."""
        c = np.asarray(classes, dtype=int)
        n = len(c)
        side = (np.arange(n)[None, :] > np.arange(n)[:, None]).astype(int)
        out = self.weight * self.attach[c[:, None], c[None, :], side]
        np.fill_diagonal(out, 0.0)
        return out

    def save(self, path: str | Path) -> None:
        """Write as safetensors (the weight in its metadata)."""
        from safetensors.numpy import save_file

        tensors = {k: np.ascontiguousarray(v, dtype=t) for k, v, t in  # row-major: safetensors writes raw bytes
                   (("keep", self.keep, np.int64), ("mean", self.mean, np.float32), ("basis", self.basis, np.float32),
                    ("centroids", self.centroids, np.float32), ("attach", self.attach, np.float32))}
        save_file(tensors, str(path), metadata={"weight": json.dumps(self.weight)})

    @classmethod
    def load(cls, path: str | Path) -> WordClasses:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            t = {k: f.get_tensor(k) for k in f.keys()}
        return cls(t["keep"], t["mean"], t["basis"], t["centroids"], t["attach"],
                   float(json.loads(meta.get("weight", "1.0"))))


def _nearest(z: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    d = (z * z).sum(1)[:, None] - 2 * z @ centroids.T + (centroids * centroids).sum(1)[None]
    return d.argmin(1) if len(z) else np.zeros(0, dtype=int)


def kmeans(z: np.ndarray, k: int, seed: int = 0, iters: int = 50, restarts: int = 5) -> np.ndarray:
    """Centroids ``[k, d]`` of Lloyd's k-means on the rows of ``z``, started from ``k`` distinct
    random rows: the lowest within-class sum of squares of ``restarts`` runs."""
    rng = np.random.default_rng(seed)
    k = min(k, len(z))
    best, best_sse = None, np.inf
    for _ in range(max(1, restarts)):
        cent = z[rng.choice(len(z), k, replace=False)].astype(np.float64)
        for _ in range(iters):
            a = _nearest(z, cent)
            cent = np.array([z[a == j].mean(0) if (a == j).any() else cent[j] for j in range(k)])
        sse = float(((z - cent[_nearest(z, cent)]) ** 2).sum())
        if sse < best_sse:
            best, best_sse = cent, sse
    return best.astype(np.float32)


def count_attachments(classes: Sequence[np.ndarray], heads: Sequence[Sequence[int]], k: int,
                      alpha: float = 1.0) -> np.ndarray:
    """``[k, k, 2]`` log P(head class, side | dependent class) from trees (heads 1-based, 0 =
    root, root arcs not counted), add-``alpha`` smoothed over the ``2k`` outcomes."""
    cnt = np.full((k, k, 2), alpha, dtype=np.float64)
    for c, hs in zip(classes, heads):
        for m, h in enumerate(hs):
            if h:
                cnt[c[m], c[h - 1], int(h - 1 > m)] += 1
    return np.log(cnt / cnt.sum(axis=(1, 2), keepdims=True)).astype(np.float32)


def fit(feats: Sequence[np.ndarray], heads: Sequence[Sequence[int]], redecode, keep: np.ndarray,
        k: int = 12, dims: int = 32, rounds: int = 3, weight: float = 1.0, seed: int = 0) -> WordClasses:
    """Fit classes on the words' context features (one ``[n, 2C]`` array per sentence) and the
    attachment model on the parser's trees ``heads``; ``redecode(model) -> heads`` decodes the
    same sentences again with a model (Viterbi self-training, ``rounds`` refits)."""
    x = np.concatenate([f for f in feats if len(f)]).astype(np.float32)
    mean = x.mean(0)
    _, sv, vt = np.linalg.svd(x - mean, full_matrices=False)
    scale = np.maximum(sv[:dims, None] / np.sqrt(len(x)), 1e-8)
    basis = (vt[:dims] / scale).T.astype(np.float32)  # whitened: unit variance per axis
    cent = kmeans((x - mean) @ basis, k, seed)
    model = WordClasses(np.asarray(keep), mean, basis, cent, np.zeros((len(cent),) * 2 + (2,), np.float32), weight)
    cls = [model.classes(f) for f in feats]
    for r in range(max(1, rounds)):
        model.attach = count_attachments(cls, heads, len(cent))
        if r < rounds - 1:
            heads = redecode(model)
    return model


def frequent_ids(tokenizer, texts: Iterable[str], n: int) -> np.ndarray:
    """The ``n`` most frequent token ids of ``texts`` (special and unknown tokens excluded)."""
    cnt: Counter[int] = Counter()
    skip = {tokenizer.unk_id, tokenizer.mask_id, tokenizer.pad_id}
    for t in texts:
        cnt.update(i for i in tokenizer.encode(t).ids if i not in skip)
    return np.array([i for i, _ in cnt.most_common(n)], dtype=np.int64)


def sample_sentences(paths: Sequence[str], per_file: int, lo: int = 8, hi: int = 60) -> list[str]:
    """Up to ``per_file`` sentences of ``lo``-``hi`` characters from each file, spread evenly
    over the file (deterministic); undecodable bytes are replaced."""
    from zhtools.text.tokenizer import split_sentences

    out = []
    for p in paths:
        opener = gzip.open if str(p).endswith(".gz") else open
        with opener(p, "rt", encoding="utf-8", errors="replace") as f:
            sents = [t for line in f for a, b in split_sentences(line)
                     if lo <= len(t := line[a:b].strip()) <= hi]
        step = max(1, len(sents) // max(1, per_file))
        out.extend(sents[::step][:per_file])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m zhtools.parse.classes",
        description="Fit the parser's self-trained word-class attachment model on raw text.",
        epilog="example: python -m zhtools.parse.classes wiki.txt.gz news.txt -o data/models/zhtools-char-small",
    )
    ap.add_argument("files", nargs="+", help="raw UTF-8 text files (.gz allowed)")
    ap.add_argument("-o", "--out", required=True, help="model folder to write zhtools_classes.safetensors into")
    ap.add_argument("--model", default=None, help="encoder (default: the shipped one)")
    ap.add_argument("--per-file", type=int, default=500, help="sentences sampled per file (default 500)")
    ap.add_argument("--classes", type=int, default=12, help="number of word classes (default 12)")
    ap.add_argument("--chars", type=int, default=1000, help="feature characters (default 1000)")
    ap.add_argument("--rounds", type=int, default=3, help="self-training refits (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    a = ap.parse_args(argv)
    from zhtools.parse.api import Parser

    texts = sample_sentences(a.files, a.per_file)
    if not texts:
        print("error: no sentences found in the input files", file=sys.stderr)
        return 1
    parser = Parser(a.model, classes="none")
    model = parser.fit_classes(texts, k=a.classes, chars=a.chars, rounds=a.rounds, seed=a.seed,
                               progress=not a.quiet)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / FILENAME)
    if not a.quiet:
        print(f"{len(texts)} sentences, {len(model.centroids)} classes -> {out / FILENAME}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
