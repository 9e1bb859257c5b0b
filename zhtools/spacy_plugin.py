"""spaCy integration (optional: ``pip install 'zhtools[spacy]'``, spaCy >= 3.7).

* ``zhtools.Tokenizer.v1``: zhtools segmentation as a spaCy tokenizer (``doc.text == text``
  always; a single space after a word becomes that token's ``whitespace_``, other whitespace
  runs become space tokens, as everywhere in spaCy).
* ``zhtools_parser``: unsupervised dependency parsing as a pipeline component. Each sentence
  (``zhtools.text.split_sentences`` on ``doc.text``, cut at token starts) is parsed over the
  doc's own tokens; it sets ``token.head``, ``token.dep_`` (``ROOT`` or ``dep``: the parser
  is unlabelled) and therefore ``doc.sents``. Space tokens hang on the previous word
  (on the next one at the start of a sentence). ``nlp.pipe`` batches sentences across docs.

Both are found through entry points once zhtools is installed, no import needed::

    import spacy
    nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"@tokenizers": "zhtools.Tokenizer.v1"}}})
    nlp.add_pipe("zhtools_parser")
    doc = nlp("我爱北京天安门。")
    [(t.text, t.head.text, t.dep_) for t in doc]

``model`` (both): None = the shipped encoder, or a Hugging Face name or folder. The settings are
saved with ``nlp.to_disk`` (the encoder itself is referenced, not copied).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from spacy.attrs import DEP, HEAD
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import get_words_and_spaces, minibatch, registry
from spacy.vocab import Vocab

from zhtools.text.tokenizer import split_sentences

__all__ = ["ZhtoolsParser", "ZhtoolsTokenizer", "create_tokenizer", "make_parser"]

_SETTINGS = "zhtools.json"


class _Settings:
    """spaCy serialisation of a component that is fully described by its ``settings`` (the
    encoder is referenced by name or path, reloaded lazily after loading)."""

    settings: dict[str, Any]
    _impl: Any = None  # the zhtools object, built on first use from the settings

    def _build(self) -> Any:
        raise NotImplementedError

    def _get(self) -> Any:
        if self._impl is None:
            self._impl = self._build()
        return self._impl

    def _reset(self) -> None:
        self._impl = None

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        return json.dumps(self.settings).encode()

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()):  # noqa: ANN201
        self.settings.update(json.loads(data))
        self._reset()
        return self

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / _SETTINGS).write_bytes(self.to_bytes())

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()):  # noqa: ANN201
        return self.from_bytes((Path(path) / _SETTINGS).read_bytes())


class ZhtoolsTokenizer(_Settings):
    """A spaCy tokenizer over :class:`zhtools.segment.Segmenter` (lossless)."""

    def __init__(self, vocab: Vocab, model: str | None = None, rule: str = "otsu",
                 batch_size: int = 64) -> None:
        self.vocab = vocab
        self.settings = {"model": model, "rule": rule, "batch_size": batch_size}

    def _build(self) -> Any:
        from zhtools.segment import Segmenter

        return Segmenter(self.settings["model"], rule=self.settings["rule"])

    @property
    def segmenter(self):  # noqa: ANN201
        return self._get()

    def _doc(self, text: str, words: list[str]) -> Doc:
        ws, spaces = get_words_and_spaces(words, text) if words else ([], [])
        return Doc(self.vocab, words=ws, spaces=spaces)

    def __call__(self, text: str) -> Doc:
        if not isinstance(text, str):
            raise TypeError(f"zhtools tokenizer needs str, got {type(text).__name__}")
        return self._doc(text, self.segmenter.segment(text))

    def pipe(self, texts: Iterable[str], batch_size: int | None = None) -> Iterator[Doc]:
        """Tokenize many texts, batching the encoder passes across them."""
        for batch in minibatch(texts, batch_size or self.settings["batch_size"]):
            for text, words in zip(batch, self.segmenter.segment_many(batch)):
                yield self._doc(text, words)


@registry.tokenizers("zhtools.Tokenizer.v1")
def create_tokenizer(model: str | None = None, rule: str = "otsu", batch_size: int = 64):  # noqa: ANN201
    """spaCy config entry: ``[nlp.tokenizer] @tokenizers = "zhtools.Tokenizer.v1"``."""

    def make(nlp: Language) -> ZhtoolsTokenizer:
        return ZhtoolsTokenizer(nlp.vocab, model=model, rule=rule, batch_size=batch_size)

    return make


class ZhtoolsParser(_Settings):
    """Pipeline component: unsupervised dependency heads from perturbed masking."""

    def __init__(self, name: str = "zhtools_parser", model: str | None = None,
                 decoder: str = "eisner", layer: Any = "auto", batch_size: int = 64,
                 conventions: str = "ud", classes: str = "auto") -> None:
        self.name = name
        self.settings = {"model": model, "decoder": decoder, "layer": layer, "batch_size": batch_size,
                         "conventions": conventions, "classes": classes}

    def _build(self) -> Any:
        from zhtools.parse import Parser

        s = self.settings
        return Parser(s["model"], decoder=s["decoder"], layer=s["layer"], conventions=s["conventions"],
                      classes=s["classes"])

    @property
    def parser(self):  # noqa: ANN201
        return self._get()

    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self.pipe([doc])))

    def pipe(self, docs: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
        for batch in minibatch(docs, batch_size or self.settings["batch_size"]):
            plans = [_sentence_plan(doc) for doc in batch]
            words = [w for plan in plans for _toks, w in plan]
            results = iter(self.parser.parse_many([None] * len(words), words))
            for doc, plan in zip(batch, plans):
                _set_heads(doc, [(toks, next(results).heads) for toks, _w in plan])
                yield doc


@Language.factory(
    "zhtools_parser",
    default_config={"model": None, "decoder": "eisner", "layer": "auto", "batch_size": 64, "conventions": "ud",
                    "classes": "auto"},
)
def make_parser(nlp: Language, name: str, model: str | None, decoder: str, layer: Any,
                batch_size: int, conventions: str, classes: str) -> ZhtoolsParser:
    return ZhtoolsParser(name, model=model, decoder=decoder, layer=layer, batch_size=batch_size,
                         conventions=conventions, classes=classes)


def _sentence_plan(doc: Doc) -> list[tuple[list[int], list[str]]]:
    """Per sentence: all its token indices and the words to parse (each token's text and
    trailing whitespace, so the parser sees the original text). A token belongs to the
    sentence its first character is in; groups without a non-space token join a neighbour."""
    starts = [s for s, _e in split_sentences(doc.text)][1:] + [len(doc.text) + 1]
    groups: list[list[int]] = [[]]
    k = 0
    for t in doc:
        if t.idx >= starts[k]:
            while t.idx >= starts[k]:
                k += 1
            if groups[-1]:
                groups.append([])
        groups[-1].append(t.i)
    def has_word(g: list[int]) -> bool:
        return any(not doc[i].is_space for i in g)

    merged: list[list[int]] = []
    for g in groups:
        # a space-only group joins the previous one; a leading space-only group, the next one
        if merged and not (has_word(merged[-1]) and has_word(g)):
            merged[-1].extend(g)
        else:
            merged.append(list(g))
    plan = []
    for g in merged:
        if g:
            words = [w for i in g for w in (doc[i].text, doc[i].whitespace_) if w]
            plan.append((g, words))
    return plan


def _set_heads(doc: Doc, parsed: list[tuple[list[int], list[int]]]) -> None:
    """Write each sentence's 1-based heads (0 = root, over its non-space tokens) into ``doc``;
    space tokens hang on the previous word of their sentence, else on the next one."""
    n = len(doc)
    if not n:
        return
    head = np.arange(n, dtype=np.int64)
    dep = np.zeros(n, dtype=np.uint64)
    root, other = doc.vocab.strings.add("ROOT"), doc.vocab.strings.add("dep")
    for group, heads in parsed:
        toks = [i for i in group if not doc[i].is_space]
        if len(heads) != len(toks):
            raise RuntimeError(f"parser returned {len(heads)} heads for {len(toks)} tokens")
        for tok, h in zip(toks, heads):
            head[tok] = toks[h - 1] if h else tok
            dep[tok] = other if h else root
        for i in group:
            if doc[i].is_space:
                before = [t for t in toks if t < i]
                head[i] = before[-1] if before else (toks[0] if toks else i)
                dep[i] = other if head[i] != i else root
    arr = np.stack([(head - np.arange(n)).astype(np.uint64), dep], axis=1)
    doc.from_array([HEAD, DEP], arr)
