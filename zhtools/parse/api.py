"""High-level unsupervised parsing: text -> words -> word-level impact matrix -> tree.

:class:`Parser` segments a text with the zhtools :class:`~zhtools.segment.Segmenter` (or takes
given words), computes the full word-level impact matrix ``F`` with the
:class:`~zhtools.probe.engine.ImpactEngine` (one call per chunk of sentences, so perturbed
copies of many sentences share forward batches) and decodes it:

* ``kind="dependency"``: root scores from ``root_rule`` (default ``"verb-probe"``: the most
  verb-like non-punctuation word by the encoder's own masked-LM head, :mod:`zhtools.parse.verbs`;
  an encoder saved without an MLM head falls back to ``"out-impact"``; or
  ``choose_root_scores(F, root_rule)``),
  ``S = scores_from_impact(F, root, normalize)``, heads = ``eisner(S)`` (projective) or
  ``mst(S)`` (non-projective), always single-rooted. With ``conventions="ud"`` (default) the arcs
  of a few closed classes are fixed first (particles and localizers to the preceding word,
  brackets inwards, sentence-final punctuation to the root; :mod:`zhtools.parse.conventions`).
  With ``classes="auto"`` (default) the model folder's self-trained word-class attachment model
  (:mod:`zhtools.parse.classes`, shipped with the default encoder) adds ``log P(head class, side
  | dependent class)`` to every arc score.
* ``kind="constituency"``: ``mart(distance_from_impact(F))``, a binary tree over the words.

Words and whitespace: whitespace-only words (``" "`` from the segmenter, or given) have no
tokens, so they are **excluded** from ``ParseResult.words`` (and from heads, trees and the
matrix); ``ParseResult.text`` keeps the full text and the impacts are still read in the context
of that text. A kept word that gets no token of its own (a dropped control character, the tail
of a Latin word cut mid-token) keeps a zero row and column in ``F``. Empty or whitespace-only
input gives a result with no words (no model call); a one-word input gives heads ``[0]`` or a
one-leaf tree. Inputs longer than the encoder window are windowed by the engine (word pairs
that never share a window get impact 0, counted in ``ParseResult.uncovered``).
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zhtools.parse.conventions import CONVENTIONS, apply_conventions, fixed_dependents
from zhtools.parse.decoders import (
    NORMALIZATIONS,
    ROOT_RULES,
    Tree,
    choose_root_scores,
    distance_from_impact,
    eisner,
    mart,
    mst,
    scores_from_impact,
    to_nltk,
    tree_spans,
)

if TYPE_CHECKING:  # pragma: no cover
    import nltk

    from zhtools.models.loader import LoadedEncoder
    from zhtools.parse.classes import WordClasses
    from zhtools.probe.engine import ImpactEngine
    from zhtools.segment import Segmenter

__all__ = ["DECODERS", "KINDS", "PARSER_ROOT_RULES", "ParseResult", "Parser"]

KINDS = ("dependency", "constituency")
DECODERS = ("eisner", "mst")
PARSER_ROOT_RULES = ("verb-probe", *ROOT_RULES)
_WS = re.compile(r"\s+")


def _width(s: str) -> int:
    """Display width in a terminal: wide/fullwidth characters count 2, combining marks 0."""
    w = 0
    for ch in s:
        if unicodedata.combining(ch):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def _pad(s: str, width: int) -> str:
    return s + " " * max(0, width - _width(s))


@dataclass
class ParseResult:
    """One parsed text.

    ``words`` excludes whitespace-only words; ``heads`` (dependency only) are 1-based with 0 =
    root; ``tree`` (constituency only) is the decoders' nested-tuple tree of 0-based word
    indices (``None`` when there are no words); ``matrix`` is the word-level impact matrix
    (``matrix[i, j]`` = impact of word ``j`` on word ``i``); ``uncovered`` counts word pairs
    that never shared an encoder window (impact 0); ``verb`` the per-word verb scores of the
    ``"verb-probe"`` root rule and ``classes`` the words' classes of the word-class attachment
    model (None when not used).
    """

    text: str
    words: list[str]
    kind: str
    heads: list[int] | None = None
    tree: Tree | None = None
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False)
    uncovered: int = 0
    verb: np.ndarray | None = field(default=None, repr=False)
    classes: np.ndarray | None = field(default=None, repr=False)

    def _need_dependency(self, what: str) -> list[int]:
        if self.kind != "dependency" or self.heads is None:
            raise ValueError(f"{what} needs a dependency parse (this result is {self.kind}); "
                             "use Parser(kind='dependency')")
        return self.heads

    def to_conllu(self, sent_id: str | None = None) -> str:
        """The dependency parse as one CoNLL-U block (``""`` when there are no words).

        Constituency results have no heads: a ``ValueError`` is raised (no head rule is
        guessed)."""
        from zhtools.eval.conllu import Sentence, write_conllu

        heads = self._need_dependency("to_conllu()")
        if not self.words:
            return ""
        text = re.sub(r"[\r\n\t]+", " ", self.text).strip()
        return write_conllu([Sentence(list(self.words), list(heads), text=text, sent_id=sent_id)])

    def to_tree(self) -> nltk.Tree:
        """An ``nltk.Tree``.

        Constituency: :func:`~zhtools.parse.decoders.to_nltk` (nodes ``"X"``, leaves = words).
        Dependency: each word with dependents becomes a node labelled with the word whose
        children are, in sentence order, its dependents' subtrees and the word itself as a leaf;
        a word without dependents is a bare leaf; the result is the root word's node. For
        projective heads ``leaves() == words``. No words: an empty ``Tree("X", [])``.
        """
        import nltk

        if not self.words:
            return nltk.Tree("X", [])
        if self.kind == "constituency":
            return to_nltk(self.tree, self.words)
        heads = self._need_dependency("to_tree()")
        n = len(heads)
        deps: list[list[int]] = [[] for _ in range(n + 1)]
        for m, h in enumerate(heads, 1):
            deps[h].append(m)
        # post-order without recursion (deep chains stay safe)
        order, stack = [], list(deps[0])
        while stack:
            k = stack.pop()
            order.append(k)
            stack.extend(deps[k])
        built: dict[int, nltk.Tree | str] = {}
        for k in reversed(order):
            w = self.words[k - 1]
            if not deps[k]:
                built[k] = w
                continue
            kids = sorted(deps[k] + [k])
            built[k] = nltk.Tree(w, [w if c == k else built[c] for c in kids])
        roots = deps[0]
        if len(roots) == 1:
            top = built[roots[0]]
            return top if isinstance(top, nltk.Tree) else nltk.Tree(top, [top])
        return nltk.Tree("ROOT", [built[r] for r in roots])

    def brackets(self) -> str:
        """The tree of :meth:`to_tree` on one line (``""`` when there are no words)."""
        if not self.words:
            return ""
        return self.to_tree().pformat(margin=10**9)

    def pretty(self) -> str:
        """Human-readable view: dependency = aligned table (index, word, head, head word);
        constituency = indented ``nltk.Tree.pformat()``."""
        if not self.words:
            return ""
        if self.kind == "constituency":
            return self.to_tree().pformat()
        heads = self._need_dependency("pretty()")
        rows = [("#", "word", "head", "head word")]
        rows += [(str(i), w, str(h), self.words[h - 1] if h else "ROOT")
                 for i, (w, h) in enumerate(zip(self.words, heads), 1)]
        widths = [max(_width(r[c]) for r in rows) for c in range(4)]
        lines = []
        for r in rows:
            cells = [r[0].rjust(widths[0]), _pad(r[1], widths[1]), r[2].rjust(widths[2]), r[3]]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: text, kind, words and either ``heads`` (dependency) or
        ``brackets`` + ``spans`` (constituency; 0-based half-open spans of the internal nodes,
        the whole sentence excluded)."""
        d: dict[str, Any] = {"text": self.text, "kind": self.kind, "words": list(self.words)}
        if self.kind == "dependency":
            d["heads"] = [int(h) for h in (self.heads or [])]
        else:
            d["brackets"] = self.brackets()
            spans = tree_spans(self.tree) if self.tree is not None else set()
            d["spans"] = [list(s) for s in sorted(spans)]
        return d

    def to_json(self) -> str:
        """:meth:`to_dict` as one line of JSON (non-ASCII kept)."""
        return json.dumps(self.to_dict(), ensure_ascii=False)


class Parser:
    """Reusable, picklable unsupervised parser.

    ``model``: None (shipped default), HF name or folder. ``kind``: dependency | constituency.
    ``decoder`` (dependency): eisner (projective) | mst (non-projective). ``normalize``: see
    :func:`~zhtools.parse.decoders.scores_from_impact`. ``root_rule``: ``"verb-probe"``
    (default: the most verb-like non-punctuation word, asked of the encoder's own masked-LM
    head, :mod:`zhtools.parse.verbs`; ``"out-impact"`` for an encoder saved without that head) or
    one of :func:`~zhtools.parse.decoders.choose_root_scores`'s impact-only rules. ``conventions``:
    ``"ud"`` (default) fixes the UD attachment of particles, localizers, brackets and
    sentence-final punctuation before decoding (:mod:`zhtools.parse.conventions`), ``"none"``
    decodes the impacts alone. ``classes``: the self-trained word-class attachment model added
    to the arc scores (:mod:`zhtools.parse.classes`): ``"auto"`` (default) = the model folder's
    own ``zhtools_classes.safetensors`` when it has one (the shipped encoder does), ``"none"``,
    or the path of such a file. ``layer``: encoder layer read
    (``"auto"``, default, = the model's own probe layer from its config, else ``"middle"`` = layer
    ``max(1, L // 2)`` of an L-layer encoder; -1 = last; or an index); only the first layers run.
    For the shipped 8-layer encoder, UD GSDSimp *dev* (150 sentences, Eisner UAS by layer 1-4:
    0.232/0.263/0.203/0.201) ranks layer 2 first, and its config names layer 2 (the segmenter's
    label-free criterion agrees). Other encoders: the middle layer (chosen on the same dev split
    with the earlier 4-layer encoder: 0.157/0.247/0.203/0.200 by layer 1-4).
    ``budget``: padded tokens per forward batch. ``segmenter``: used when no words are given
    (default: a ``Segmenter`` on the same model; the loaded encoder is shared with it when both
    use the same model). ``bf16``: bf16 autocast of the encoder forward on CPU (off by default).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        kind: str = "dependency",
        decoder: str = "eisner",
        normalize: str = "row-softmax",
        root_rule: str = "verb-probe",
        conventions: str = "ud",
        classes: str = "auto",
        layer: int | str = "auto",
        budget: int = 8192,
        segmenter: Segmenter | None = None,
        bf16: bool = False,
    ) -> None:
        checks = (("kind", kind, KINDS), ("decoder", decoder, DECODERS),
                  ("normalize", normalize, NORMALIZATIONS), ("root_rule", root_rule, PARSER_ROOT_RULES),
                  ("conventions", conventions, CONVENTIONS))
        for name, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if classes not in ("auto", "none") and not Path(classes).is_file():
            raise FileNotFoundError(f"word-class model not found: {classes}")
        if segmenter is None:
            from zhtools.segment import Segmenter

            segmenter = Segmenter(model, budget=budget)
        self.model = model
        self.kind = kind
        self.decoder = decoder
        self.normalize = normalize
        self.root_rule = root_rule
        self.conventions = conventions
        self.classes = classes
        self._classes: WordClasses | None | bool = False  # False: not looked up yet
        self.layer = layer
        self.budget = budget
        self.bf16 = bf16
        self.segmenter = segmenter
        self._engine: ImpactEngine | None = None
        self._mlm: LoadedEncoder | None = None

    # pickling: drop the loaded model, reload lazily
    def __getstate__(self) -> dict:
        st = dict(self.__dict__)
        st["_engine"] = None
        st["_mlm"] = None
        st["_classes"] = False
        return st

    @property
    def engine(self) -> ImpactEngine:
        """The impact engine (built on first use; the encoder is loaded once per process and
        model, so it is shared with the segmenter)."""
        if self._engine is None:
            from zhtools.probe.engine import ImpactEngine

            self._engine = ImpactEngine(self.model, layer=self.layer, budget=self.budget, bf16=self.bf16)
        return self._engine

    @property
    def word_classes(self) -> WordClasses | None:
        """The word-class attachment model in use (None: none)."""
        if self._classes is False:
            from zhtools.parse.classes import FILENAME, WordClasses

            path = None
            if self.classes not in ("auto", "none"):
                path = Path(self.classes)
            elif self.classes == "auto" and self.kind == "dependency":
                from zhtools.models.loader import default_model_path

                folder = default_model_path() if self.model is None else Path(self.model)
                path = folder / FILENAME if (folder / FILENAME).is_file() else None
            self._classes = WordClasses.load(path) if path is not None else None
        return self._classes

    # ------------------------------------------------------------------ public API
    def parse(self, text: str | None = None, words: Sequence[str] | None = None) -> ParseResult:
        """Parse one text (segmented by the segmenter) or one list of given words."""
        return self.parse_many([text], None if words is None else [words])[0]

    def parse_many(
        self,
        texts: Sequence[str | None],
        words_list: Sequence[Sequence[str] | None] | None = None,
        chunk: int = 64,
    ) -> list[ParseResult]:
        """Parse many texts in input order: one ``ImpactEngine.full`` call per ``chunk``.

        ``words_list[k]`` (when given and not None) are the words of text ``k``; the parsed
        text is then ``''.join(words)``, and ``texts[k]`` (may be None) must equal it up to
        whitespace. Texts without words are segmented (batched) with the segmenter.
        """
        texts = list(texts)
        if words_list is None:
            words_list = [None] * len(texts)
        elif len(words_list) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(words_list)} word lists")
        out: list[ParseResult] = []
        for k in range(0, len(texts), max(1, chunk)):
            out.extend(self._parse_chunk(texts[k : k + chunk], list(words_list[k : k + chunk])))
        return out

    def redecode(self, res: ParseResult) -> ParseResult:
        """Decode the impact matrix of an earlier result (same words) with this parser's kind,
        decoder and root/normalisation rules, without recomputing impacts. The matrix must come
        from the same encoder and layer for the result to equal a fresh parse."""
        verb = classes = None
        if len(res.words) > 1:
            verb, classes = res.verb, res.classes
            if (self._uses_verbs() and verb is None) or (self._uses_classes() and classes is None):
                v, c = self._probe([res.words])
                verb = v[0] if verb is None else verb
                classes = c[0] if classes is None else classes
            verb = verb if self._uses_verbs() else None
            classes = classes if self._uses_classes() else None
        return self._decode(res.text, res.words, res.matrix, res.uncovered, verb, classes)

    # ------------------------------------------------------------------ internals
    def _resolve_words(self, texts: list[str | None], given: list[Sequence[str] | None]
                       ) -> tuple[list[str], list[list[str]]]:
        """Full texts and their lossless word lists (whitespace words still included)."""
        full: list[str] = []
        words: list[list[str] | None] = []
        for t, ws in zip(texts, given):
            if ws is None:
                if not isinstance(t, str):
                    raise TypeError(f"parse() needs str text, got {type(t).__name__}")
                full.append(t)
                words.append(None if t.strip() else [t] if t else [])
                continue
            if isinstance(ws, str) or not all(isinstance(w, str) for w in ws):
                raise TypeError("words must be a sequence of str")
            joined = "".join(ws)
            if t is not None and _WS.sub("", t) != _WS.sub("", joined):
                raise ValueError(f"words {list(ws)!r} do not spell the text {t!r}")
            full.append(joined)
            words.append(list(ws))
        todo = [i for i, w in enumerate(words) if w is None]
        if todo:
            for i, ws in zip(todo, self.segmenter.segment_many([full[i] for i in todo])):
                words[i] = list(ws)
        return full, words  # type: ignore[return-value]

    def _parse_chunk(self, texts: list[str | None], given: list[Sequence[str] | None]
                     ) -> list[ParseResult]:
        from zhtools.probe.engine import Units

        full, words = self._resolve_words(texts, given)
        kept: list[list[str]] = []
        units: list[Units] = []
        todo: list[int] = []
        for i, (text, ws) in enumerate(zip(full, words)):
            spans, keep, pos = [], [], 0
            for w in ws:
                if w and not w.isspace():
                    spans.append((pos, pos + len(w)))
                    keep.append(w)
                pos += len(w)
            kept.append(keep)
            if len(keep) > 1:
                todo.append(i)
                units.append(Units(text, spans))
        mats: dict[int, tuple[np.ndarray, int]] = {}
        if units:
            for i, r in zip(todo, self.engine.full(units)):
                mats[i] = (r.matrix, r.uncovered)
        verbs: dict[int, np.ndarray | None] = {}
        classes: dict[int, np.ndarray | None] = {}
        if todo and (self._uses_verbs() or self._uses_classes()):
            v, c = self._probe([kept[i] for i in todo])
            verbs, classes = dict(zip(todo, v)), dict(zip(todo, c))
        results = []
        for i, (text, ws) in enumerate(zip(full, kept)):
            F, unc = mats.get(i, (np.zeros((len(ws), len(ws))), 0))
            results.append(self._decode(text, ws, F, unc, verbs.get(i), classes.get(i)))
        return results

    def _uses_verbs(self) -> bool:
        """The verb-probe root rule applies: dependency parsing with an encoder whose checkpoint
        has a masked-LM head (its config names a ``...ForMaskedLM`` / ``...ForPreTraining``
        architecture); otherwise the rule falls back to ``out-impact``."""
        return self.kind == "dependency" and self.root_rule == "verb-probe" and self._has_mlm()

    def _has_mlm(self) -> bool:
        """The encoder's checkpoint has a masked-LM head (its config names a ``...ForMaskedLM`` /
        ``...ForPreTraining`` architecture)."""
        archs = getattr(self.engine.enc.model.config, "architectures", None) or []
        return any(a.endswith(("ForMaskedLM", "ForPreTraining")) for a in archs)

    def _uses_classes(self) -> bool:
        """A word-class attachment model applies: dependency parsing with a model in use. Its
        features come from the masked-LM head: a model given by path on an encoder without one
        is an error (``"auto"`` finds none there)."""
        if self.kind != "dependency" or self.word_classes is None:
            return False
        self._require_mlm()
        return True

    def _require_mlm(self) -> None:
        """Word classes read their features from the masked-LM head: a clear error without one."""
        if not self._has_mlm():
            raise ValueError(f"word classes need an encoder saved with its masked-LM head; {self.model!r} has none")

    def _probe(self, sentences: list[list[str]], keep: np.ndarray | None = None
               ) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
        """Per sentence the verb scores (None unless the verb probe applies) and the word classes
        (None unless a class model applies), from one pass of mask probes. With ``keep`` the
        second list holds the raw context features over those token ids instead."""
        from zhtools.models.loader import cached_encoder
        from zhtools.parse.verbs import mask_probes

        model = self.word_classes if keep is None and self._uses_classes() else None
        if keep is None and model is not None:
            keep = model.keep
        if self._mlm is None:
            self._mlm = cached_encoder(self.model, head="mlm")
        verbs, feats = mask_probes(self._mlm, sentences, self.budget, bf16=self.bf16, keep=keep)
        out_v: list[np.ndarray | None] = list(verbs) if self._uses_verbs() else [None] * len(sentences)
        if feats is None:
            return out_v, [None] * len(sentences)
        return out_v, [model.classes(f) if model is not None else f for f in feats]

    def fit_classes(self, texts: Sequence[str], k: int = 12, chars: int = 1000, rounds: int = 3,
                    seed: int = 0, weight: float = 1.0, progress: bool = False) -> WordClasses:
        """Fit a word-class attachment model on raw ``texts`` (:func:`zhtools.parse.classes.fit`):
        the texts are segmented and parsed with this parser (its own class model left out), the
        words' context features are read over the ``chars`` most frequent tokens of the texts."""
        from zhtools.parse.classes import fit, frequent_ids

        self._require_mlm()
        own = self._classes
        self._classes = None
        try:
            say = (lambda m: print(m, file=sys.stderr, flush=True)) if progress else (lambda m: None)
            from tqdm.auto import tqdm

            res = []
            for k0 in tqdm(range(0, len(texts), 64), desc="parsing", unit="x64 sentences", disable=not progress):
                res.extend(r for r in self.parse_many(texts[k0 : k0 + 64]) if len(r.words) > 1)
            keep = frequent_ids(self.engine.enc.tokenizer, [r.text for r in res], chars)
            say("reading context features")
            feats = self._probe([r.words for r in res], keep)[1]
            say(f"fitting {k} classes")

            def redecode(model: WordClasses) -> list[list[int]]:
                return [self._decode(r.text, r.words, r.matrix, r.uncovered, r.verb,
                                     model.classes(f), model).heads for r, f in zip(res, feats)]

            return fit(feats, [r.heads for r in res], redecode, keep, k=k, rounds=rounds,
                       weight=weight, seed=seed)
        finally:
            self._classes = own

    def root_scores(self, words: Sequence[str], F: np.ndarray, verb: np.ndarray | None = None,
                    exclude: Sequence[bool] | None = None) -> np.ndarray:
        """Root scores of this parser's root rule for one sentence: from the verb probe when its
        per-word ``verb`` scores are given (``exclude`` marks words that may not be the root),
        else the impact-only rule on ``F`` (``out-impact`` standing in for ``verb-probe``)."""
        if verb is not None:
            from zhtools.parse.verbs import verb_root_scores

            return verb_root_scores(words, verb, exclude=exclude)
        rule = "out-impact" if self.root_rule == "verb-probe" else self.root_rule
        return choose_root_scores(F, rule)

    def _decode(self, text: str, words: list[str], F: np.ndarray, uncovered: int,
                verb: np.ndarray | None = None, classes: np.ndarray | None = None,
                model: WordClasses | None = None) -> ParseResult:
        n = len(words)
        res = ParseResult(text, words, self.kind, matrix=F, uncovered=uncovered, verb=verb, classes=classes)
        if self.kind == "dependency":
            if n <= 1:
                res.heads = [0] * n
            else:
                fixed = fixed_dependents(words) if self.conventions == "ud" else None
                root = self.root_scores(words, F, verb, exclude=fixed)
                S = scores_from_impact(F, root, self.normalize)
                model = model or self.word_classes
                if classes is not None and model is not None:
                    S[1:, 1:] += model.arc_scores(classes).T
                if fixed is not None:  # the final punctuation goes to the best root candidate
                    cand = np.where(fixed, -np.inf, np.asarray(root, dtype=float))
                    S = apply_conventions(S, words, int(np.argmax(cand)))
                res.heads = [int(h) for h in (eisner if self.decoder == "eisner" else mst)(S)]
        elif n:
            res.tree = mart(distance_from_impact(F))
        return res
