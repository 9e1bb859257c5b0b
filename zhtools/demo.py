"""``bin/demo``: segment (and parse, once available) the sample paragraph with the shipped model."""

from __future__ import annotations

import sys
from pathlib import Path

from zhtools.models.loader import ModelNotFoundError, default_model_path

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "paragraph.txt"


def main() -> int:
    if not (default_model_path() / "config.json").exists():
        print(f"zhtools demo: no shipped model at {default_model_path()} yet "
              "(train one with `zhtools pretrain`)", file=sys.stderr)
        return 1
    import zhtools
    from zhtools.text import split_sentences

    text = SAMPLE.read_text(encoding="utf-8").strip()
    try:
        for line in text.splitlines():
            print(" / ".join(zhtools.segment(line)))
        parse = getattr(zhtools, "parse", None)
        if callable(parse):
            first = next(line[s:e] for line in text.splitlines() for s, e in split_sentences(line))
            print()
            print(parse(first).pretty())
    except ModelNotFoundError as e:
        print(f"zhtools demo: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
