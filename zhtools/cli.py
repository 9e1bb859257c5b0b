"""``zhtools`` command line: one entry point, sub-commands registered as parts land."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

EPILOG = """examples:
  echo '我爱北京天安门。' | zhtools segment
  zhtools segment corpus.txt -o corpus.seg --sep ' '
  zhtools parse sentences.txt --kind dependency --format conllu
  zhtools eval cws --gold gold.utf8 --pred pred.utf8 --json
  zhtools pretrain --corpus data/*.txt.gz --out runs/enc --steps 6000
  zhtools summarize abstracts.txt -o titles.txt --beam 4 --mode bidirectional
  zhtools distill --teacher runs/teacher/best --train t.tsv --dev d.tsv --layers 2 --out runs/th
"""

_REGISTRY: list[Callable[[argparse._SubParsersAction], None]] = []


def command(fn: Callable[[argparse._SubParsersAction], None]):
    """Decorator: register a function that adds one sub-command parser."""
    _REGISTRY.append(fn)
    return fn


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    import zhtools.cli_commands  # noqa: F401 - registers sub-commands

    p = argparse.ArgumentParser(
        prog="zhtools",
        description="Chinese NLP toolkit: unsupervised segmentation and parsing from "
        "perturbed masking, bidirectional summarization, Theseus distillation.",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info logs")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for add in _REGISTRY:
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    k = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if k is not None and argv[k] == "summarize" and argv[k + 1 : k + 2] == ["train"]:
        argv[k : k + 2] = ["summarize-train"]  # `zhtools summarize train ...`
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `zhtools segment big.txt | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
