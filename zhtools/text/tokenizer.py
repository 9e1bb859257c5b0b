"""The one zhtools tokenizer: a thin layer over a Hugging Face *fast* tokenizer.

Hanzi are single-character tokens (BERT Chinese convention), Latin words go through WordPiece,
digits and punctuation are their own units. Every token carries its exact ``(start, end)`` span
in the *original* text, so callers can always recover the input, also where the vocabulary
says ``[UNK]`` (rare Hanzi, emoji) or the normaliser dropped a character (NUL, control chars).

Long texts: :func:`split_sentences` cuts text into sentence spans; :func:`windows` cuts a token
sequence longer than the encoder window into overlapping windows, and :func:`stitch_ranges`
says which window "owns" each token (the window in which the token is farthest from an edge:
every overlap is split at its midpoint). Concatenating the owned ranges reproduces
``range(n)`` exactly once, so per-token results computed per window stitch back losslessly.
"""

from __future__ import annotations

import collections
import gzip
import io
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Sentence-final punctuation (full- and half-width) optionally followed by closing quotes/brackets.
_SENT_END = re.compile(r"[。！？!?…；;]+[”’」』》）)\]】]*|\n+")


def is_cjk(ch: str) -> bool:
    """True for CJK ideographs (all blocks incl. extensions and compatibility ideographs)."""
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2FA1F
        or 0xF900 <= cp <= 0xFAFF
        or 0x3007 == cp  # 〇
    )


@dataclass
class Encoding:
    """Token ids of one text (no specials) with their character spans in ``text``."""

    text: str
    ids: list[int]
    offsets: list[tuple[int, int]]
    tokens: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def pieces(self) -> list[str]:
        """Lossless cover of ``text``: each token's original substring, with the uncovered
        gaps (whitespace, dropped characters) attached to the following token (or the last)."""
        out: list[str] = []
        prev = 0
        for _s, e in self.offsets:
            out.append(self.text[prev:e])
            prev = e
        if out:
            out[-1] += self.text[prev:]
        elif self.text:
            out.append(self.text)
        return out


class ZhTokenizer:
    """Character-level Chinese tokenizer over a HF fast tokenizer (any BERT-style vocab).

    ``ZhTokenizer.from_pretrained(dir_or_name)`` wraps ``AutoTokenizer``; ``hf`` is the
    underlying ``PreTrainedTokenizerFast`` for code that needs it directly. With ``variants``
    (default), a Hanzi the vocabulary lacks is looked up as its simplified form (traditional
    國 -> 国, see :mod:`zhtools.text.variants`) before it becomes ``[UNK]``; offsets and text are
    unchanged.
    """

    def __init__(self, hf_tokenizer, variants: bool = True) -> None:  # noqa: ANN001 - any PreTrainedTokenizerFast
        if not getattr(hf_tokenizer, "is_fast", False):
            raise TypeError("ZhTokenizer needs a fast (Rust) tokenizer; got a slow one")
        self.hf = hf_tokenizer
        self.variants = variants
        self._vocab: dict[str, int] | None = None
        self.cls_id = hf_tokenizer.cls_token_id
        self.sep_id = hf_tokenizer.sep_token_id
        self.pad_id = hf_tokenizer.pad_token_id if hf_tokenizer.pad_token_id is not None else 0
        self.mask_id = hf_tokenizer.mask_token_id
        self.unk_id = hf_tokenizer.unk_token_id
        # RoBERTa-style tokenizers use <s> </s>; fall back to bos/eos.
        if self.cls_id is None:
            self.cls_id = hf_tokenizer.bos_token_id
        if self.sep_id is None:
            self.sep_id = hf_tokenizer.eos_token_id
        self.special_ids = {i for i in hf_tokenizer.all_special_ids}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kw) -> ZhTokenizer:
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(name_or_path), use_fast=True, **kw))

    def save_pretrained(self, path: str | os.PathLike) -> None:
        self.hf.save_pretrained(str(path))

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    def __getstate__(self) -> dict:
        return {"hf": self.hf, "variants": self.variants}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["hf"], state.get("variants", True))

    # ------------------------------------------------------------------ encoding
    def encode(self, text: str) -> Encoding:
        """Tokenize ``text`` (no special tokens) keeping exact character offsets."""
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str]) -> list[Encoding]:
        if not texts:
            return []
        enc = self.hf(
            [_no_surrogates(t) for t in texts],
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )
        out = []
        for k, text in enumerate(texts):
            ids = list(enc["input_ids"][k])
            offs = [tuple(o) for o in enc["offset_mapping"][k]]
            ids, offs = _clean_offsets(text, ids, offs)
            if self.variants and self.unk_id is not None and self.unk_id in ids:
                ids = self._known_variant_ids(text, ids, offs)
            out.append(Encoding(text=text, ids=ids, offsets=offs))
        return out

    def _known_variant_ids(self, text: str, ids: list[int], offs: list[tuple[int, int]]) -> list[int]:
        """Read single Hanzi as their simplified variants (:func:`~zhtools.text.variants.known_variants`)
        where the text has a Hanzi the vocabulary lacks."""
        if not any(i == self.unk_id and e - s == 1 and is_cjk(text[s]) for i, (s, e) in zip(ids, offs)):
            return ids
        from zhtools.text.variants import known_variants

        if self._vocab is None:
            self._vocab = self.hf.get_vocab()
        vocab = self._vocab
        alt = known_variants(text, vocab.__contains__)
        ids = list(ids)
        for k, (s, e) in enumerate(offs):
            if e - s == 1 and alt[s] != text[s]:
                ids[k] = vocab.get(alt[s], ids[k])
        return ids

    def with_specials(self, ids: Sequence[int]) -> list[int]:
        return [self.cls_id, *ids, self.sep_id]

    def decode_chars(self, ids: Sequence[int], surface: dict[int, str] | None = None) -> str:
        """Decode ids to text without WordPiece spaces between Hanzi (for generated text).
        ``surface`` (see :meth:`surface_forms`) spells ids as a source text did (case, width)."""
        ids = [i for i in ids if i not in self.special_ids]
        surface = surface or {}
        out: list[str] = []
        for i, t in zip(ids, self.hf.convert_ids_to_tokens(ids)):
            shown = surface.get(i)
            if t.startswith("##"):
                out.append(shown or t[2:])
            elif out and _is_latin_word(t) and _is_latin_word(out[-1][-1:]):
                out.append(" " + (shown or t))
            else:
                out.append(shown or t)
        return "".join(out)

    def surface_forms(self, enc: Encoding) -> dict[int, str]:
        """Id -> the text's own spelling of that token (first occurrence), for tokens other than
        Hanzi and [UNK] whose spelling the normaliser changed: ``COVID`` (lowercased in the
        vocabulary), full-width ``，`` and ``ＧＰＵ`` (NFKC). Generated text copied from a source
        then reads as the source does."""
        vocab_tokens = None
        out: dict[int, str] = {}
        for i, (s, e) in zip(enc.ids, enc.offsets):
            piece = enc.text[s:e]
            if i in out or i == self.unk_id or (len(piece) == 1 and is_cjk(piece)):
                continue
            if vocab_tokens is None:
                vocab_tokens = dict(zip(enc.ids, self.hf.convert_ids_to_tokens(enc.ids)))
            tok = vocab_tokens[i].removeprefix("##")
            if piece != tok and unicodedata.normalize("NFKC", piece).lower() == tok:
                out[i] = piece
        return out


_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_surrogates(text: str) -> str:
    """Lone surrogates (possible in Python str, never in decoded UTF-8) -> U+FFFD, one code
    point for one, so character offsets stay valid and the original text is what callers see."""
    return text if text.isascii() or not _SURROGATE.search(text) else _SURROGATE.sub("\ufffd", text)


def _is_latin_word(s: str) -> bool:
    return bool(s) and s[0].isascii() and s[0].isalnum()


def _clean_offsets(
    text: str, ids: list[int], offs: list[tuple[int, int]]
) -> tuple[list[int], list[tuple[int, int]]]:
    """Make spans strictly increasing and non-overlapping; drop empty spans.

    Fast tokenizers can emit several tokens with the same span (a character expanded by the
    normaliser) or zero-width spans; downstream code wants one token per disjoint span.
    """
    out_ids: list[int] = []
    out_offs: list[tuple[int, int]] = []
    last_end = 0
    for i, (s, e) in zip(ids, offs):
        s = max(s, last_end)
        if e <= s:
            continue
        out_ids.append(i)
        out_offs.append((s, e))
        last_end = e
    return out_ids, out_offs


# ---------------------------------------------------------------------- sentences & windows
def split_sentences(text: str, max_chars: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans covering ``text`` exactly (no gaps, in order).

    Cuts after sentence-final punctuation (。！？!?…；;, with closing quotes) and at newlines.
    If ``max_chars`` is given, longer sentences are further cut at commas/、 and, failing
    that, hard-cut, so no span is longer than ``max_chars``.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENT_END.finditer(text):
        end = m.end()
        if end > start:
            spans.append((start, end))
            start = end
    if start < len(text):
        spans.append((start, len(text)))
    if max_chars is None:
        return spans
    out: list[tuple[int, int]] = []
    for s, e in spans:
        out.extend(_cut_long(text, s, e, max_chars))
    return out


def _cut_long(text: str, s: int, e: int, limit: int) -> list[tuple[int, int]]:
    if e - s <= limit:
        return [(s, e)]
    res = []
    while e - s > limit:
        seg = text[s : s + limit]
        cut = max(seg.rfind(c) for c in "，,、：:")
        cut = s + cut + 1 if cut > limit // 4 else s + limit
        res.append((s, cut))
        s = cut
    if e > s:
        res.append((s, e))
    return res


def windows(n: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """Overlapping ``[start, end)`` windows of at most ``size`` covering ``range(n)``.

    Consecutive windows share ``overlap`` positions (the last window is aligned to ``n``).
    """
    if size <= 0:
        raise ValueError("window size must be positive")
    if not 0 <= overlap < size:
        raise ValueError("overlap must be in [0, size)")
    if n <= size:
        return [(0, n)]
    stride = size - overlap
    out = []
    start = 0
    while True:
        end = min(start + size, n)
        out.append((end - size, end) if end == n else (start, end))
        if end == n:
            break
        start += stride
    return out


def stitch_ranges(wins: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """For each window, the ``[start, end)`` positions it owns when stitching results.

    Overlaps are split at their midpoint, so each position is owned by the window where it
    lies farther from a cut edge (more context on both sides). Owned ranges tile ``range(n)``.
    """
    cuts = [0]
    for k in range(len(wins) - 1):
        cuts.append((wins[k + 1][0] + wins[k][1]) // 2)
    cuts.append(wins[-1][1] if wins else 0)
    owned = [(cuts[k], cuts[k + 1]) for k in range(len(wins))]
    return owned


# ---------------------------------------------------------------------- vocabulary builder
def open_text(path: str | os.PathLike) -> io.TextIOBase:
    """Open plain or .gz text; invalid UTF-8 bytes are replaced (corpus reading only)."""
    p = str(path)
    if p.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8", errors="replace")
    return open(p, encoding="utf-8", errors="replace")


def iter_lines(paths: Iterable[str | os.PathLike]) -> Iterator[str]:
    for p in paths:
        with open_text(p) as f:
            for line in f:
                line = line.strip()
                if line:
                    yield line


_LATIN_WORD = re.compile(r"[A-Za-z]+|[0-9]+")


def build_vocab(
    lines: Iterable[str],
    coverage: float = 0.9995,
    max_chars: int = 8000,
    latin_words: int = 1500,
    min_count: int = 5,
) -> list[str]:
    """Character vocabulary: specials, then the most frequent characters until they cover
    ``coverage`` of all non-space characters (at most ``max_chars``), then ``##``-continuations
    of ASCII letters/digits and the ``latin_words`` most frequent lowercase Latin words and
    digit runs (whole-word WordPiece entries)."""
    chars: collections.Counter[str] = collections.Counter()
    words: collections.Counter[str] = collections.Counter()
    for line in lines:
        line = unicodedata.normalize("NFKC", line).lower()
        chars.update(c for c in line if not c.isspace())
        words.update(w.lower() for w in _LATIN_WORD.findall(line) if len(w) > 1)
    total = sum(chars.values())
    vocab = list(SPECIAL_TOKENS)
    seen = set(vocab)
    acc = 0
    for c, n in chars.most_common():
        if len(vocab) - len(SPECIAL_TOKENS) >= max_chars or (total and acc / total >= coverage):
            break
        if n < min_count:
            break
        if c in seen or unicodedata.category(c).startswith("C"):
            continue
        vocab.append(c)
        seen.add(c)
        acc += n
    for c in "abcdefghijklmnopqrstuvwxyz0123456789":
        for tok in (c, "##" + c):
            if tok not in seen:
                vocab.append(tok)
                seen.add(tok)
    for w, n in words.most_common(latin_words):
        if n < min_count:
            break
        for tok in (w, "##" + w):
            if tok not in seen:
                vocab.append(tok)
                seen.add(tok)
    return vocab


def tokenizer_from_vocab(vocab: Sequence[str], model_max_length: int = 512) -> ZhTokenizer:
    """A BERT-style fast tokenizer over ``vocab``.

    Pipeline: NFKC (full-width Latin/digits become ASCII) + BERT normaliser (drop control
    chars, lowercase, spaces around CJK ideographs) -> split on whitespace, isolating every
    character that is not a letter/digit/mark (punctuation, emoji, symbols) -> WordPiece.
    Saved with ``tokenizer.json``; plain ``AutoTokenizer.from_pretrained`` loads it.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    vocab_map = {t: i for i, t in enumerate(dict.fromkeys(vocab))}
    tk = Tokenizer(models.WordPiece(vocab_map, unk_token="[UNK]", max_input_chars_per_word=100))
    tk.normalizer = normalizers.Sequence(
        [
            normalizers.NFKC(),
            normalizers.BertNormalizer(
                clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True
            ),
        ]
    )
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Split(Regex(r"[^\p{L}\p{N}\p{M}]"), behavior="isolated"),
        ]
    )
    cls_id, sep_id = vocab_map["[CLS]"], vocab_map["[SEP]"]
    tk.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tk.decoder = decoders.WordPiece(prefix="##")
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
    )
    return ZhTokenizer(hf)


def save_vocab_stats(path: str | os.PathLike, stats: dict) -> None:
    Path(path).write_text(json.dumps(stats, ensure_ascii=False, indent=1), encoding="utf-8")
