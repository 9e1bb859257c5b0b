"""Minimal CoNLL-U reading and writing (basic trees only: words, heads, UPOS, relations)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

__all__ = ["Sentence", "is_punct", "parse_conllu", "read_conllu", "write_conllu"]


@dataclass
class Sentence:
    """One CoNLL-U sentence; heads are 1-based with 0 for the root."""

    words: list[str]
    heads: list[int]
    upos: list[str] = field(default_factory=list)
    deprels: list[str] = field(default_factory=list)
    text: str | None = None
    sent_id: str | None = None

    def punct_mask(self) -> list[bool]:
        """``True`` for words tagged PUNCT (all ``False`` when UPOS is missing)."""
        if len(self.upos) != len(self.words):
            return [False] * len(self.words)
        return [is_punct(u) for u in self.upos]


def is_punct(upos: str) -> bool:
    """Whether a UPOS tag marks punctuation."""
    return upos == "PUNCT"


def parse_conllu(text: str, source: str = "<string>") -> list[Sentence]:
    """Parse CoNLL-U text; multiword-token lines (``1-2``) and empty nodes (``1.1``) are skipped.

    Raises ``ValueError`` naming ``source`` and the line number for malformed lines.
    """
    sentences: list[Sentence] = []
    cur: Sentence | None = None

    def new() -> Sentence:
        return Sentence(words=[], heads=[], upos=[], deprels=[])

    def flush() -> None:
        nonlocal cur
        if cur is not None and cur.words:
            sentences.append(cur)
        cur = None

    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            flush()
            continue
        if cur is None:
            cur = new()
        if line.startswith("#"):
            key, sep, value = line[1:].partition("=")
            if sep and key.strip() == "text":
                cur.text = value.strip()
            elif sep and key.strip() == "sent_id":
                cur.sent_id = value.strip()
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            raise ValueError(f"{source}:{lineno}: expected 10 tab-separated columns, "
                             f"got {len(cols)}")
        tid = cols[0]
        if "-" in tid or "." in tid:
            continue
        try:
            idx, head = int(tid), int(cols[6])
        except ValueError:
            raise ValueError(f"{source}:{lineno}: ID and HEAD must be integers") from None
        if idx != len(cur.words) + 1:
            raise ValueError(f"{source}:{lineno}: word ID {idx}, expected {len(cur.words) + 1}")
        cur.words.append(cols[1])
        cur.heads.append(head)
        cur.upos.append(cols[3])
        cur.deprels.append(cols[7])
    flush()
    for k, s in enumerate(sentences, start=1):
        n = len(s.words)
        if any(not 0 <= h <= n for h in s.heads):
            raise ValueError(f"{source}: sentence {k} ({s.sent_id}) has a head outside 0..{n}")
    return sentences


def read_conllu(path: str | PathLike) -> list[Sentence]:
    """Read a UTF-8 CoNLL-U file (see :func:`parse_conllu`)."""
    return parse_conllu(Path(path).read_text(encoding="utf-8-sig"), source=str(path))


def _field(values: list[str], i: int) -> str:
    v = values[i] if i < len(values) else ""
    return v if v else "_"


def write_conllu(sentences: Iterable[Sentence]) -> str:
    """Format sentences as CoNLL-U: ``# sent_id``/``# text`` comments, 10 columns, ``_`` for
    unknown fields, a blank line after each sentence. Without ``text`` the words are joined
    with no spaces (Chinese)."""
    out: list[str] = []
    for s in sentences:
        if len(s.heads) != len(s.words):
            raise ValueError("sentence has different numbers of words and heads")
        if s.sent_id is not None:
            out.append(f"# sent_id = {s.sent_id}")
        out.append(f"# text = {s.text if s.text is not None else ''.join(s.words)}")
        for i, (w, h) in enumerate(zip(s.words, s.heads)):
            if not w or any(c in w for c in "\t\r\n"):
                raise ValueError(f"invalid word form {w!r}")
            cols = [str(i + 1), w, "_", _field(s.upos, i), "_", "_", str(h),
                    _field(s.deprels, i), "_", "_"]
            out.append("\t".join(cols))
        out.append("")
    return "\n".join(out) + ("\n" if out else "")
