"""``zhtools eval {cws,dep,summ,cls}``: score predictions files against gold files.

Register with :func:`add_eval_parser`. Handlers return 0 on success and 2 on bad input
(missing file, invalid UTF-8, mismatched line counts, texts that differ), printing a one-line
error to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path

__all__ = ["add_eval_parser"]

_F = argparse.RawDescriptionHelpFormatter


class InputError(Exception):
    """Bad user input; reported as a one-line error with exit code 2."""


def layer_arg(v: str) -> int | str:
    """``--layer`` values: ``auto``, ``middle``, ``last`` or an integer index."""
    if v in ("auto", "middle", "last"):
        return v
    try:
        return int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, middle, last or an integer, got {v!r}") from None


def classes_arg(v: str) -> str:
    """``--classes`` values: ``auto``, ``none`` or the path of an existing word-class model file."""
    if v in ("auto", "none") or Path(v).is_file():
        return v
    raise argparse.ArgumentTypeError(f"expected auto, none or a zhtools_classes.safetensors file, got {v!r}")


def _common() -> argparse.ArgumentParser:
    c = argparse.ArgumentParser(add_help=False)
    c.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress or info logs")
    c.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="debug logging")
    return c


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from None


def _read_lines(path: str) -> list[str]:
    """Lines without line endings (``\\n``, ``\\r\\n`` or ``\\r``); no phantom last line."""
    text = _read_text(path)
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _handler(name: str) -> Callable:
    """Turn ``InputError``/``ValueError`` into a one-line message and exit code 2."""

    def deco(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        @wraps(fn)
        def run(args: argparse.Namespace) -> int:
            try:
                return fn(args)
            except Exception as e:  # noqa: BLE001 - bad input and missing models -> exit 2
                if not isinstance(e, (InputError, ValueError)) and type(e).__name__ != "ModelNotFoundError":
                    raise
                msg = " ".join(str(e).split())
                print(f"zhtools eval {name}: error: {msg}", file=sys.stderr)
                return 2

        return run

    return deco


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _emit(result: dict, as_json: bool, keys: Sequence[str]) -> None:
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    width = max(len(k) for k in keys)
    for k in keys:
        if k in result:
            print(f"{k:<{width}}  {_fmt(result[k])}")


def _check_counts(n_gold: int, n_pred: int, what: str = "lines") -> None:
    if n_gold != n_pred:
        raise InputError(f"gold has {n_gold} {what} but prediction has {n_pred}")


# ----------------------------------------------------------------------------------------- cws
def _segmenter(name: str, verbose: bool) -> Callable[[str], list[str]]:
    if name == "jieba":
        import jieba

        jieba.setLogLevel(logging.DEBUG if verbose else logging.WARNING)
        return lambda text: jieba.lcut(text, HMM=True)
    import zhtools

    seg = getattr(zhtools, "segment", None)
    if seg is not None and not callable(seg):  # the ``zhtools.segment`` sub-package
        seg = getattr(seg, "segment", None)
    if not callable(seg):
        raise InputError("zhtools.segment() is not available in this installation")

    def run(text: str) -> list[str]:
        out = seg(text)
        return out.split() if isinstance(out, str) else list(out)

    return run


@_handler("cws")
def _run_cws(args: argparse.Namespace) -> int:
    from zhtools.eval.cws import score_cws

    gold = [line.split() for line in _read_lines(args.gold)]
    words = None
    if args.words:
        words = {w.strip() for w in _read_lines(args.words) if w.strip()}
    if args.pred:
        pred = [line.split() for line in _read_lines(args.pred)]
        _check_counts(len(gold), len(pred))
    else:
        seg = _segmenter(args.segmenter, bool(getattr(args, "verbose", False)))
        pred = [seg(t) if t else [] for t in ("".join(g) for g in gold)]
    res = score_cws(gold, pred, words)
    _emit(res, args.json, ["precision", "recall", "f1", "oov_rate", "oov_recall", "iv_recall",
                           "gold_words", "pred_words", "correct"])
    return 0


# ----------------------------------------------------------------------------------------- dep
@_handler("dep")
def _run_dep(args: argparse.Namespace) -> int:
    from zhtools.eval.conllu import parse_conllu
    from zhtools.eval.dep import (
        left_chain,
        random_projective,
        right_chain,
        score_dep,
        score_dep_spans,
    )

    gold = parse_conllu(_read_text(args.gold), source=args.gold)
    punct = [s.punct_mask() for s in gold]
    g_heads = [s.heads for s in gold]
    if args.pred:
        pred = parse_conllu(_read_text(args.pred), source=args.pred)
        _check_counts(len(gold), len(pred), "sentences")
        p_heads = [s.heads for s in pred]
        if all(g.words == p.words for g, p in zip(gold, pred)):
            res = score_dep(g_heads, p_heads, punct)
        else:  # own segmentation: score through character spans
            res = score_dep_spans([s.words for s in gold], g_heads, [s.words for s in pred],
                                  p_heads, punct)
    elif args.baseline:
        import random

        rng = random.Random(args.seed)
        make = {"right-chain": right_chain, "left-chain": left_chain,
                "random": lambda n: random_projective(n, rng)}[args.baseline]
        res = score_dep(g_heads, [make(len(s.words)) for s in gold], punct)
    else:  # parse the gold sentences with zhtools
        from zhtools.parse import Parser

        parser = Parser(args.model, decoder=args.decoder, layer=args.layer, conventions=args.conventions,
                        classes=args.classes)
        texts = ["".join(s.words) for s in gold]
        if args.words == "gold":
            res_p = parser.parse_many(texts, [s.words for s in gold])
            res = score_dep(g_heads, [r.heads for r in res_p], punct)
        else:
            res_p = parser.parse_many(texts)
            res = score_dep_spans([s.words for s in gold], g_heads, [r.words for r in res_p],
                                  [r.heads for r in res_p], punct)
    _emit(res, args.json, ["uas", "uuas", "uas_nopunct", "uuas_nopunct", "word_f1",
                           "sentences", "words"])
    return 0


# ---------------------------------------------------------------------------------------- const
@_handler("const")
def _run_const(args: argparse.Namespace) -> int:
    from zhtools.eval.conllu import parse_conllu
    from zhtools.eval.dep import (
        bracket_f1,
        dep_brackets,
        drop_punct_spans,
        left_branching_spans,
        right_branching_spans,
    )

    gold = parse_conllu(_read_text(args.gold), source=args.gold)
    keep = []
    for s in gold:
        try:
            keep.append((s, dep_brackets(s.heads)))
        except ValueError:
            continue
    if args.baseline:
        make = {"right-branching": right_branching_spans, "left-branching": left_branching_spans}[args.baseline]
        pred = [make(len(s.words)) for s, _b in keep]
    else:
        from zhtools.parse import Parser
        from zhtools.parse.decoders import tree_spans

        parser = Parser(args.model, kind="constituency", layer=args.layer)
        res = parser.parse_many(["".join(s.words) for s, _b in keep], [s.words for s, _b in keep])
        pred = [tree_spans(r.tree) for r in res]
    gold_b = [b for _s, b in keep]
    if not args.keep_punct:  # EVALB convention: punctuation is not scored
        masks = [s.punct_mask() for s, _b in keep]
        gold_b = [drop_punct_spans(b, m) for b, m in zip(gold_b, masks)]
        pred = [drop_punct_spans(p, m) for p, m in zip(pred, masks)]
    out = bracket_f1(gold_b, pred)
    out = {k: v for k, v in out.items() if k != "per_sentence"}
    _emit(out, args.json, ["f1", "precision", "recall", "f1_micro", "sentences"])
    return 0


# ---------------------------------------------------------------------------------------- summ
@_handler("summ")
def _run_summ(args: argparse.Namespace) -> int:
    from zhtools.eval.summ import score_summ

    golds = []
    for lineno, line in enumerate(_read_lines(args.gold), start=1):
        cols = line.split("\t")
        try:
            golds.append(cols[args.column])
        except IndexError:
            raise InputError(f"{args.gold}:{lineno}: no column {args.column}") from None
    preds = _read_lines(args.pred)
    _check_counts(len(golds), len(preds))
    res = score_summ(golds, preds)
    _emit(res, args.json, ["rouge1", "rouge2", "rougeL", "bleu", "n"])
    return 0


# ----------------------------------------------------------------------------------------- cls
@_handler("cls")
def _run_cls(args: argparse.Namespace) -> int:
    from zhtools.eval.cls import score_cls

    gold = [line.split("\t")[0].strip() for line in _read_lines(args.gold)]
    if gold and gold[0] == "label":
        gold = gold[1:]
    pred = [line.strip() for line in _read_lines(args.pred)]
    if pred and pred[0] == "label":
        pred = pred[1:]
    _check_counts(len(gold), len(pred))
    res = score_cls(gold, pred)
    _emit(res, args.json, ["accuracy", "macro_f1", "balanced_accuracy", "n"])
    if not args.json:
        for label, d in res["per_class"].items():
            print(f"  {label}: P {d['precision']:.4f}  R {d['recall']:.4f}  "
                  f"F1 {d['f1']:.4f}  n {d['support']}")
    return 0


# -------------------------------------------------------------------------------------- parser
def add_eval_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``eval`` sub-command (with tasks cws, dep, summ, cls) to ``sub``."""
    common = _common()
    p = sub.add_parser(
        "eval", help="score predictions: segmentation, dependencies, summaries, labels",
        description="Score predictions against gold data.", formatter_class=_F,
        parents=[common],
        epilog="examples:\n"
               "  zhtools eval cws --gold pku_test_gold.utf8 --segmenter jieba\n"
               "  zhtools eval dep --gold test.conllu --baseline right-chain --json\n")
    tasks = p.add_subparsers(dest="eval_task", metavar="TASK")

    def _help(args: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return 2

    p.set_defaults(func=_help)

    c = tasks.add_parser(
        "cws", help="word segmentation P/R/F1, OOV/IV recall (SIGHAN 2005 style)",
        description="Word segmentation P/R/F1 over spans, OOV and IV recall.",
        formatter_class=_F, parents=[common],
        epilog="examples:\n"
               "  zhtools eval cws --gold pku_test_gold.utf8 --pred out.utf8 \\\n"
               "      --words pku_training_words.utf8\n"
               "  zhtools eval cws --gold pku_test_gold.utf8 --segmenter jieba --json\n")
    c.add_argument("--gold", required=True, help="gold segmented file (words split by spaces)")
    src = c.add_mutually_exclusive_group(required=True)
    src.add_argument("--pred", help="predicted segmented file, same lines as gold")
    src.add_argument("--segmenter", choices=["jieba", "zhtools"],
                     help="segment the gold's raw text with this segmenter instead of --pred")
    c.add_argument("--words", metavar="TRAINING_WORDS",
                   help="training word list (one per line) for OOV/IV recall")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=_run_cws)

    d = tasks.add_parser(
        "dep", help="dependency UAS/UUAS (with and without punctuation)",
        description="Unlabeled attachment scores of CoNLL-U predictions or simple baselines.\n"
                    "A prediction with its own segmentation is scored through character spans.",
        formatter_class=_F, parents=[common],
        epilog="examples:\n"
               "  zhtools eval dep --gold zh_gsdsimp-ud-test.conllu --pred parsed.conllu\n"
               "  zhtools eval dep --gold zh_gsdsimp-ud-test.conllu --baseline random --seed 1\n"
               "  zhtools eval dep --gold zh_gsdsimp-ud-test.conllu --words predicted --json\n")
    d.add_argument("--gold", required=True, help="gold CoNLL-U file")
    src = d.add_mutually_exclusive_group()
    src.add_argument("--pred", help="predicted CoNLL-U file (default: parse with zhtools)")
    src.add_argument("--baseline", choices=["right-chain", "left-chain", "random"],
                     help="score a baseline tree instead of --pred")
    d.add_argument("--words", choices=["gold", "predicted"], default="gold",
                   help="when parsing with zhtools: gold words, or zhtools segmentation "
                        "(then attachments are scored through spans and word_f1 is reported)")
    d.add_argument("--decoder", choices=["eisner", "mst"], default="eisner")
    d.add_argument("--conventions", choices=["ud", "none"], default="ud",
                   help="UD attachment of particles, brackets, final punctuation (zhtools parse --conventions)")
    d.add_argument("--classes", type=classes_arg, default="auto", metavar="auto|none|PATH",
                   help="word-class attachment model (zhtools parse --classes)")
    d.add_argument("--model", default=None, help="encoder for zhtools parsing (default: shipped)")
    d.add_argument("--layer", type=layer_arg, default="auto",
                   help="encoder layer for zhtools parsing: auto (default), middle, last, or a number")
    d.add_argument("--seed", type=int, default=0, help="seed for --baseline random")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.set_defaults(func=_run_dep)

    b = tasks.add_parser(
        "const", help="unlabeled bracket F1 against gold dependency-subtree brackets",
        description="Mean sentence-level bracket F1 (spans of >= 2 words, whole sentence excluded)\n"
                    "of zhtools MART trees (gold words) or a baseline, against brackets derived\n"
                    "from the gold projective dependency subtrees (non-projective sentences skipped).\n"
                    "Punctuation is ignored as in EVALB (spans re-indexed over the other words)\n"
                    "unless --keep-punct.",
        formatter_class=_F, parents=[common],
        epilog="examples:\n"
               "  zhtools eval const --gold zh_gsdsimp-ud-test.conllu --json\n"
               "  zhtools eval const --gold zh_gsdsimp-ud-test.conllu --baseline right-branching\n")
    b.add_argument("--gold", required=True, help="gold CoNLL-U file")
    b.add_argument("--baseline", choices=["right-branching", "left-branching"])
    b.add_argument("--keep-punct", action="store_true",
                   help="score brackets over all words (default: punctuation ignored, as EVALB does)")
    b.add_argument("--model", default=None, help="encoder (default: shipped)")
    b.add_argument("--layer", type=layer_arg, default="auto",
                   help="encoder layer for MART: auto (default), middle, last, or a number")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=_run_const)

    s = tasks.add_parser(
        "summ", help="character-level ROUGE-1/2/L and BLEU-4 of summaries",
        description="Character-level ROUGE-1/2/L F and smoothed sentence BLEU-4, averaged.",
        formatter_class=_F, parents=[common],
        epilog="examples:\n"
               "  zhtools eval summ --gold val.tsv --pred titles.txt\n"
               "  zhtools eval summ --gold csl_test.tsv --column 0 --pred titles.txt --json\n")
    s.add_argument("--gold", required=True, help="TSV, reference summary in --column")
    s.add_argument("--column", type=int, default=-1,
                   help="TSV column of the reference (default -1: last; CLGE CSL needs 0)")
    s.add_argument("--pred", required=True, help="one predicted summary per line")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_run_summ)

    k = tasks.add_parser(
        "cls", help="classification accuracy, macro-F1, balanced accuracy",
        description="Accuracy, macro-F1 and balanced accuracy of predicted labels.",
        formatter_class=_F, parents=[common],
        epilog="examples:\n"
               "  zhtools eval cls --gold test.tsv --pred labels.txt\n"
               "  zhtools eval cls --gold test.tsv --pred labels.txt --json\n")
    k.add_argument("--gold", required=True, help="TSV, label in the first column "
                                                 "(a first line starting with 'label' is skipped)")
    k.add_argument("--pred", required=True, help="one predicted label per line")
    k.add_argument("--json", action="store_true", help="print one JSON object")
    k.set_defaults(func=_run_cls)
    return p
