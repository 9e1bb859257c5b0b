"""Sub-command definitions for ``zhtools`` (imports of heavy modules stay inside handlers)."""

from __future__ import annotations

import argparse
import sys

from zhtools.cli import _Formatter, command


def _common() -> argparse.ArgumentParser:
    c = argparse.ArgumentParser(add_help=False)
    c.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bars or info logs")
    c.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="debug logging")
    return c


def _sub(sub, name: str, help: str, examples: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=help, epilog="examples:\n" + examples,
                          formatter_class=_Formatter, parents=[_common()])


# ---------------------------------------------------------------------- pretrain
@command
def _pretrain(sub) -> None:
    p = _sub(sub, "pretrain", "pretrain a small character-level Chinese masked-LM encoder",
             "  zhtools pretrain --corpus ../shared/data/raw_zh_corpus --out runs/enc --steps 6000\n"
             "  zhtools pretrain --corpus a.txt b.txt.gz --out runs/enc --resume\n"
             "  zhtools pretrain --corpus a.txt --out runs/enc8 --layers 8 --init-from runs/enc  # grow 4 -> 8\n"
             "  zhtools pretrain --corpus a.txt.gz b.txt --out runs/enc --pack corpus.npz  # tokenize once\n"
             "  zhtools pretrain --corpus corpus.npz --out runs/enc --batch-tokens 131072  # GPU\n"
             "  torchrun --nproc_per_node=2 -m zhtools pretrain --corpus a.txt --out runs/enc\n")
    p.add_argument("--corpus", nargs="+", required=True,
                   help="text files (.txt/.gz) or folders, or one .npz made by --pack")
    p.add_argument("--pack", default=None, metavar="FILE.npz",
                   help="only tokenize and pack the corpus into FILE.npz (for fast accelerators), then exit")
    p.add_argument("--out", required=True, help="output folder (HF model + checkpoint)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--max-len", type=int, default=128, help="tokens per sequence incl. specials")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch-tokens", type=int, default=8192, help="tokens per micro-batch")
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--lr", type=float, default=7e-4)
    p.add_argument("--warmup", type=float, default=0.04, help="fraction (<1) or steps")
    p.add_argument("--lookahead", action="store_true", help="wrap AdamW in Lookahead(k=5, a=0.5)")
    p.add_argument("--span-max", type=int, default=1, help="mask whole n-gram spans up to N")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--max-minutes", type=float, default=None, help="checkpoint and stop after")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                   help="bf16 autocast: auto = on (CUDA, or CPUs with AVX512-bf16/AMX)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    p.add_argument("--init-from", default=None, metavar="DIR",
                   help="start from this HF masked-LM folder's weights and tokenizer (same width; "
                        "a deeper --layers grows it, see --grow)")
    p.add_argument("--grow", choices=["stack", "interleave"], default="stack",
                   help="layer copy when deeper than --init-from: stack = 0 1 2 3 0 1 2 3 "
                        "(progressive stacking), interleave = 0 0 1 1 2 2 3 3")
    p.set_defaults(func=_run_pretrain)


def _threads_bf16(args) -> bool:
    """Apply ``--threads``; resolve ``--bf16 auto|on|off`` (auto = CUDA or a bf16-capable CPU)."""
    import torch

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    bf16 = {"on": True, "off": False}.get(args.bf16)
    if bf16 is not None:
        return bf16
    from zhtools.models.loader import cpu_has_native_bf16

    return torch.cuda.is_available() or cpu_has_native_bf16()


def _run_pretrain(args) -> int:

    from zhtools.train.pretrain import PretrainConfig, corpus_files, pretrain

    bf16 = _threads_bf16(args)
    cfg = PretrainConfig(
        corpus=corpus_files(args.corpus), out=args.out, layers=args.layers, hidden=args.hidden,
        heads=args.heads, max_len=args.max_len, steps=args.steps, batch_tokens=args.batch_tokens,
        grad_accum=args.grad_accum, lr=args.lr, warmup=args.warmup, lookahead=args.lookahead,
        span_max=args.span_max, eval_every=args.eval_every, save_every=args.save_every,
        max_minutes=args.max_minutes, seed=args.seed, bf16=bf16, progress=not args.quiet,
        init_from=args.init_from, grow=args.grow,
    )
    try:
        if args.pack:
            import json

            from zhtools.train.pretrain import pack_corpus

            print(json.dumps(pack_corpus(cfg, args.pack)))
            return 0
        res = pretrain(cfg, resume=args.resume)
    except ValueError as e:
        print(f"zhtools pretrain: error: {e}", file=sys.stderr)
        return 2
    print(res)
    return exit_status(res)


# ---------------------------------------------------------------------- shared line streaming
class InputError(Exception):
    """Bad input (unreadable file, invalid UTF-8): reported on one line, exit status 2."""


def iter_input_lines(path: str):
    """Yield ``(line_number, text)`` from FILE or '-' (stdin) without line terminators;
    invalid UTF-8 raises :class:`InputError` naming the 1-based line number."""
    import sys

    if path == "-":
        fh = sys.stdin.buffer
    else:
        try:
            fh = open(path, "rb")
        except OSError as e:
            raise InputError(f"cannot read {path}: {e.strerror}") from e
    try:
        for n, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"{path}: line {n}: invalid UTF-8 at byte {e.start}") from e
            if n == 1 and line.startswith("\ufeff"):
                line = line[1:]
            yield n, line.rstrip("\r\n")
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


def per_line(process):
    """Adapt ``process(list[str]) -> list[str]`` (non-empty texts only) to a block function:
    one output line per input line, blank input lines copied through unchanged."""

    def block(batch: list[tuple[int, str]]) -> list[str]:
        texts = [t for _n, t in batch if t.strip()]
        res = iter(process(texts)) if texts else iter(())
        return [(next(res) if t.strip() else t) + "\n" for _n, t in batch]

    return block


def run_line_job(args, block, chunk: int = 64) -> int:
    """Stream input lines through ``block(list[(line_no, text)]) -> list[str]`` (one
    terminated output string per input line, may be multi-line or empty) to stdout or
    atomically to ``-o``; bad input or a missing model -> one-line error, exit status 2."""
    import os
    import sys
    import tempfile

    from zhtools.models import ModelNotFoundError

    out_path = getattr(args, "output", None)
    if out_path:
        d = os.path.dirname(os.path.abspath(out_path))
        fd, tmp = tempfile.mkstemp(prefix=".zhtools-", dir=d)
        out = os.fdopen(fd, "w", encoding="utf-8")
    else:
        tmp, out = None, sys.stdout
    pbar = None
    if args.input != "-" and not getattr(args, "quiet", False):
        from tqdm.auto import tqdm

        pbar = tqdm(desc=args.command, unit="line", dynamic_ncols=True, file=sys.stderr)
    ok = False
    try:
        buf: list[tuple[int, str]] = []

        def flush() -> None:
            if buf:
                out.write("".join(block(buf)))
                out.flush()
                if pbar is not None:
                    pbar.update(len(buf))
            buf.clear()

        for n, line in iter_input_lines(args.input):
            buf.append((n, line))
            if len(buf) >= chunk or args.input == "-":
                flush()
        flush()
        ok = True
    except (InputError, ModelNotFoundError) as e:
        print(f"zhtools {args.command}: {e}", file=sys.stderr)
        return 2
    finally:
        if pbar is not None:
            pbar.close()
        if tmp is not None:
            out.close()
            if ok:
                os.replace(tmp, out_path)
            else:
                os.unlink(tmp)
    return 0


# ---------------------------------------------------------------------- segment
@command
def _segment(sub) -> None:
    p = _sub(sub, "segment", "segment Chinese text into words (one output line per input line)",
             "  echo '北京是中国的首都。' | zhtools segment\n"
             "  zhtools segment news.txt -o news.seg --sep ' / '\n"
             "  zhtools segment news.txt --model path/to/bert-base-chinese --rule dp\n"
             "  zhtools segment news.txt --signals impact,pmi,entropy,tagger   # the impact segmenter\n"
             "  zhtools segment news.txt --fast                      # shipped tagger, threshold 0.5\n"
             "  zhtools segment news.txt --tagger runs/tagger/best   # your own tagger\n"
             "  zhtools segment big.txt -o big.seg --bf16           # bf16 autocast on CPU\n")
    p.add_argument("input", nargs="?", default="-", help="input file, '-' = stdin")
    p.add_argument("-o", "--output", help="output file (written atomically); default stdout")
    p.add_argument("--sep", default=" ", help="word separator")
    p.add_argument("--model", default=None, help="HF model name or folder (default: shipped)")
    p.add_argument("--rule", default="otsu", choices=["otsu", "dp", "threshold", "chars"],
                   help="boundary rule (see zhtools.segment docs)")
    p.add_argument("--signals", default=None, metavar="LIST",
                   help="comma-separated boundary signals out of impact,pmi,entropy,tagger (default: "
                        "the shipped tagger with the shipped encoder, else impact,pmi,entropy)")
    p.add_argument("--no-measure", action="store_true",
                   help="keep a numeral and a following measure word as the model joined them "
                        "(without it they are cut: 一种 -> 一 种)")
    p.add_argument("--tagger", default=None, metavar="DIR",
                   help="use a self-trained fast tagger folder instead (one encoder pass per line)")
    p.add_argument("--fast", action="store_true",
                   help="use the shipped self-trained tagger alone at probability 0.5 (the default "
                        "uses it too, at its calibrated Otsu threshold: same words on 95%% of the PKU "
                        "test lines, F1 0.8508 vs 0.8511)")
    p.add_argument("--bf16", action="store_true",
                   help="bf16 autocast of the encoder(s) on CPU (default exact fp32); on CPUs with "
                        "native bf16 (AVX512-BF16/AMX) the default tagger runs ~2.4x and the impact "
                        "segmenter ~1.8x faster, with identical words on ~99%% of lines")
    p.set_defaults(func=_run_segment, _segment_parser=p)


def _run_segment(args) -> int:
    from zhtools.segment import Segmenter
    from zhtools.segment.tagger import Tagger

    if args.tagger or args.fast:
        if args.model or args.rule != "otsu" or args.signals:
            args._segment_parser.error("--fast / --tagger run a tagger alone: drop --model / --rule / --signals")
        seg = Tagger(args.tagger, measure=not args.no_measure, bf16=args.bf16)
    else:
        signals = [x.strip() for x in args.signals.split(",") if x.strip()] if args.signals else None
        try:
            seg = Segmenter(args.model, rule=args.rule, bf16=args.bf16, signals=signals,
                            measure=not args.no_measure)
        except ValueError as e:
            args._segment_parser.error(str(e))
    return run_line_job(args, per_line(lambda texts: [args.sep.join(w) for w in seg.segment_many(texts)]))


# ---------------------------------------------------------------------- eval
def _eval(sub) -> None:
    from zhtools.eval.cli import add_eval_parser

    add_eval_parser(sub)


command(_eval)


# ---------------------------------------------------------------------- parse
@command
def _parse(sub) -> None:
    from zhtools.eval.cli import classes_arg, layer_arg

    p = _sub(sub, "parse", "unsupervised dependency or constituency parsing (one parse per "
             "non-empty input line)",
             "  echo '北京是中国的首都。' | zhtools parse\n"
             "  zhtools parse news.txt -o news.conllu --decoder mst\n"
             "  zhtools parse news.seg --words-from-input --format json\n"
             "  zhtools parse news.txt --kind constituency -o news.trees\n"
             "\n"
             "output per input line: conllu = one CoNLL-U block (ending with a blank line,\n"
             "'# sent_id' = input line number), empty input lines give no block; brackets =\n"
             "one bracketed tree per line; json = one JSON object per line. For brackets and\n"
             "json every input line gives exactly one output line (empty line -> empty line /\n"
             "an object with no words). Invalid UTF-8 stops with exit status 2 naming the line\n"
             "and leaves no -o file.\n")
    p.add_argument("input", nargs="?", default="-", help="input file, '-' = stdin")
    p.add_argument("-o", "--output", help="output file (written atomically); default stdout")
    p.add_argument("--kind", default="dependency", choices=["dependency", "constituency"])
    p.add_argument("--decoder", default="eisner", choices=["eisner", "mst"],
                   help="dependency decoder: eisner (projective) or mst (non-projective)")
    p.add_argument("--root", default="verb-probe",
                   choices=["verb-probe", "out-impact", "in-impact", "uniform"],
                   help="root rule for dependencies: verb-probe = the most verb-like word by the "
                        "encoder's own masked-LM head (out-impact without one)")
    p.add_argument("--conventions", default="ud", choices=["ud", "none"],
                   help="ud: attach particles (的 了 ...), localizers, brackets and sentence-final "
                        "punctuation as UD does before decoding; none: the impacts alone")
    p.add_argument("--classes", type=classes_arg, default="auto", metavar="auto|none|PATH",
                   help="word-class attachment model: auto = the model folder's own (the shipped encoder has one), "
                        "none, or a zhtools_classes.safetensors path (python -m zhtools.parse.classes fits one)")
    p.add_argument("--layer", type=layer_arg, default="auto",
                   help="encoder layer whose impacts are read: auto (the model's own probe layer, else middle), middle, last, or a number")
    p.add_argument("--format", default=argparse.SUPPRESS, choices=["conllu", "brackets", "json"],
                   help="output format (default: conllu for dependency, brackets for "
                   "constituency; conllu needs --kind dependency)")
    p.add_argument("--words-from-input", action="store_true",
                   help="input lines are already segmented: words = line.split()")
    p.add_argument("--model", default=None, help="HF model name or folder (default: shipped)")
    p.set_defaults(func=_run_parse, _parse_parser=p)


def _render_parse(res, lineno: int, fmt: str) -> str:
    """Output for one input line (terminated; ``""`` = nothing is written)."""
    if fmt == "json":
        return res.to_json() + "\n"
    if not res.words:
        return "" if fmt == "conllu" else "\n"
    if fmt == "conllu":
        return res.to_conllu(sent_id=str(lineno))
    return res.brackets() + "\n"


def _run_parse(args) -> int:

    from zhtools.parse import Parser

    fmt = getattr(args, "format", None) or ("conllu" if args.kind == "dependency" else "brackets")
    if fmt == "conllu" and args.kind != "dependency":
        args._parse_parser.error("--format conllu needs --kind dependency")
    parser = Parser(args.model, kind=args.kind, decoder=args.decoder, layer=args.layer, root_rule=args.root,
                    conventions=args.conventions, classes=args.classes)

    def process(batch: list[tuple[int, str]]) -> list[str]:
        texts = [t for _n, t in batch]
        words = [t.split() for t in texts] if args.words_from_input else None
        return [_render_parse(r, n, fmt)
                for (n, _t), r in zip(batch, parser.parse_many(texts, words))]

    return run_line_job(args, process)


# ---------------------------------------------------------------------- finetune / distill / classify
def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", required=True, help="training TSV (label<TAB>text, header optional)")
    p.add_argument("--dev", required=True, help="dev TSV (best checkpoint chosen on it)")
    p.add_argument("--out", required=True, help="output folder (OUT/best = best on dev)")
    p.add_argument("--max-len", type=int, default=128, help="tokens per text incl. [CLS]/[SEP]")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--batch-tokens", type=int, default=4096, help="padded tokens per batch")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--lookahead", action="store_true", help="Lookahead(AdamW, k=5, alpha=0.5)")
    p.add_argument("--lazy-embeddings", action="store_true",
                   help="leave embedding rows of tokens absent from a batch untouched")
    p.add_argument("--best-metric", default="accuracy",
                   choices=["accuracy", "macro_f1", "balanced_accuracy"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", choices=["auto", "on", "off"], default="off",
                   help="bf16 autocast (auto = CUDA or AVX512-bf16/AMX CPUs)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--max-minutes", type=float, default=None, help="checkpoint and stop after")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")


def _train_common(args) -> dict:

    bf16 = _threads_bf16(args)
    return dict(train=args.train, dev=args.dev, out=args.out, max_len=args.max_len,
                epochs=args.epochs, batch_tokens=args.batch_tokens, lr=args.lr,
                lookahead=args.lookahead, lazy_embeddings=args.lazy_embeddings,
                best_metric=args.best_metric, seed=args.seed, bf16=bf16,
                progress=not getattr(args, "quiet", False), max_minutes=args.max_minutes)


def exit_status(res: dict) -> int:
    """Exit status of a training command: 0, or 143 (128 + SIGTERM) when a SIGTERM stopped the
    run early (its checkpoint is saved; ``--resume`` finishes it), so wrappers never mistake a
    stopped run for a finished one."""
    if res.get("interrupted"):
        print(f"zhtools: stopped by SIGTERM at step {res['step']}; checkpoint saved, rerun with --resume "
              "to finish", file=sys.stderr)
        return 143
    return 0


def _report(res: dict, out: str) -> int:
    import json

    ev = {k: round(v, 4) for k, v in (res.get("eval") or {}).items()}
    print(json.dumps({"step": res["step"], "done": res["done"], "best": res.get("best"),
                      "final_dev": ev, "best_model": f"{out}/best"}, ensure_ascii=False))
    return exit_status(res)


@command
def _finetune(sub) -> None:
    p = _sub(sub, "finetune", "fine-tune an encoder as a text classifier (the Theseus teacher)",
             "  zhtools finetune --train train.tsv --dev dev.tsv --out runs/teacher\n"
             "  zhtools finetune --model path/to/bert-base-chinese --train t.tsv --dev d.tsv "
             "--out runs/t --epochs 3 --lr 2e-5\n"
             "  zhtools finetune --train t.tsv --dev d.tsv --out runs/la --loss la --tau 1 "
             "--best-metric balanced_accuracy\n"
             "  zhtools finetune --train t.tsv --dev d.tsv --out runs/direct2 --layers 2\n")
    p.add_argument("--model", default=None, help="HF encoder name or folder (default: shipped)")
    p.add_argument("--layers", type=int, default=None, help="keep only the first N encoder layers")
    p.add_argument("--loss", choices=["ce", "la"], default="ce",
                   help="ce = cross-entropy, la = logit-adjusted cross-entropy (imbalanced classes)")
    p.add_argument("--tau", type=float, default=1.0, help="logit-adjustment temperature")
    _train_args(p)
    p.set_defaults(func=_run_finetune)


def _run_finetune(args) -> int:
    from zhtools.distill import FinetuneConfig, finetune

    cfg = FinetuneConfig(model=args.model, layers=args.layers, loss=args.loss, tau=args.tau,
                         **_train_common(args))
    return _report(finetune(cfg, resume=args.resume), args.out)


@command
def _distill(sub) -> None:
    p = _sub(sub, "distill", "compress a fine-tuned classifier by BERT-of-Theseus module replacement",
             "  zhtools distill --teacher runs/teacher/best --train t.tsv --dev d.tsv --layers 2 "
             "--out runs/theseus\n"
             "  zhtools distill --teacher T --train t.tsv --dev d.tsv --layers 6 --schedule linear "
             "--b 0.3 --slope 6e-4 --out runs/th\n"
             "  zhtools distill --teacher T --train t.tsv --dev d.tsv --layers 3 --replace-embeddings "
             "--init even --out runs/th3\n")
    p.add_argument("--teacher", required=True, help="fine-tuned classifier folder (any HF BERT/RoBERTa)")
    p.add_argument("--layers", type=int, required=True, help="successor depth k (divides teacher depth)")
    p.add_argument("--schedule", choices=["constant", "linear"], default="constant")
    p.add_argument("--p", type=float, default=0.5, help="constant: replacement probability")
    p.add_argument("--replace-frac", type=float, default=0.5,
                   help="constant: share of steps before successor fine-tuning (p = 1)")
    p.add_argument("--slope", type=float, default=None,
                   help="linear: p = min(1, slope*step + b); default reaches 1 at half the steps")
    p.add_argument("--b", type=float, default=0.3, help="linear: initial p")
    p.add_argument("--init", choices=["first", "even"], default="first",
                   help="successor layers copied from the first k or evenly spaced layers")
    p.add_argument("--replace-embeddings", action="store_true",
                   help="the embedding layer is a replaceable module too")
    p.add_argument("--tune-head", action="store_true",
                   help="once p = 1 (successor fine-tuning), the pooler/classifier head trains too (Su's phase 3)")
    p.add_argument("--kd-alpha", type=float, default=0.0,
                   help="mix in knowledge distillation: (1-a) * task loss + a * T^2 * KL(predecessor || model)")
    p.add_argument("--kd-temperature", type=float, default=2.0, help="softmax temperature T for --kd-alpha")
    _train_args(p)
    p.set_defaults(func=_run_distill)


def _run_distill(args) -> int:
    from zhtools.distill import DistillConfig, distill

    cfg = DistillConfig(teacher=args.teacher, layers=args.layers, schedule=args.schedule, p=args.p,
                        replace_frac=args.replace_frac, slope=args.slope, b=args.b, init=args.init,
                        replace_embeddings=args.replace_embeddings, tune_head=args.tune_head,
                        kd_alpha=args.kd_alpha, kd_temperature=args.kd_temperature, **_train_common(args))
    return _report(distill(cfg, resume=args.resume), args.out)


@command
def _classify(sub) -> None:
    p = _sub(sub, "classify", "label texts with a fine-tuned classifier (one label per input line)",
             "  zhtools classify reviews.txt --model runs/teacher/best -o labels.txt\n"
             "  echo '这家酒店很干净' | zhtools classify --model runs/theseus/best\n"
             "  zhtools classify weibo.txt --model runs/t/best --posthoc-tau 1   # balanced errors\n"
             "  zhtools classify weibo.txt --model runs/t/best --posthoc-tau auto   # tau tuned on dev\n")
    p.add_argument("input", nargs="?", default="-", help="input file, '-' = stdin")
    p.add_argument("-o", "--output", help="output file (written atomically); default stdout")
    p.add_argument("--model", required=True, help="fine-tuned classifier folder")
    p.add_argument("--posthoc-tau", type=_tau_arg, default=0.0,
                   help="subtract tau*log(prior) from logits (priors saved at training); 'auto': the "
                        "tau tuned on the dev set at training time (best dev balanced accuracy)")
    p.set_defaults(func=_run_classify)


def _tau_arg(v: str) -> float | str:
    if v == "auto":
        return v
    try:
        return float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number or 'auto', got {v!r}") from None


def _run_classify(args) -> int:
    import sys

    from zhtools.distill import Classifier
    from zhtools.models import ModelNotFoundError

    try:
        clf = Classifier(args.model, posthoc_tau=args.posthoc_tau)
    except (ModelNotFoundError, ValueError) as e:
        print(f"zhtools classify: {e}", file=sys.stderr)
        return 2
    # every line gets a label (an empty line is classified as the empty text)
    return run_line_job(args, lambda batch: [lab + "\n" for lab in clf([t for _n, t in batch])])


# ---------------------------------------------------------------------- summarize
@command
def _summarize(sub) -> None:
    p = _sub(sub, "summarize", "summarize / title each input line (training: `zhtools summarize train`)",
             "  echo '本文研究了……' | zhtools summarize\n"
             "  zhtools summarize abstracts.txt -o titles.txt --beam 4 --mode bidirectional\n"
             "  zhtools summarize abstracts.txt --model runs/summ/best --mode l2r\n"
             "  zhtools summarize abstracts.txt -o titles.txt --bf16   # bf16 autocast on CPU\n"
             "  zhtools summarize zh_tw.txt --script model   # keep the model's (simplified) output\n"
             "  zhtools summarize train --help\n")
    p.add_argument("input", nargs="?", default="-", help="input file, '-' = stdin")
    p.add_argument("-o", "--output", help="output file (written atomically); default stdout")
    p.add_argument("--model", default=None, help="summarizer folder (default: shipped CSL model)")
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--mode", choices=["bidirectional", "l2r", "r2l"], default="bidirectional")
    p.add_argument("--max-len", type=int, default=32, help="maximum summary tokens")
    p.add_argument("--alpha", type=float, default=0.6, help="length penalty exponent")
    p.add_argument("--no-repeat-ngram", type=int, default=None,
                   help="forbid repeating any n-gram in a summary (default: the model's setting)")
    p.add_argument("--bf16", action="store_true",
                   help="decode under bf16 autocast on CPU (default fp32): ~1.8x faster on CPUs with "
                        "native bf16 (AVX512-BF16/AMX)")
    p.add_argument("--pairing", choices=["index", "all"], default="index",
                   help="SB-NMT bidirectional beam: each hypothesis attends to its index partner in the "
                        "other half, or averages over all of them (not for meet-in-the-middle models)")
    p.add_argument("--script", choices=["auto", "model", "simplified", "traditional"], default="auto",
                   help="script of the summaries: auto = that of each input line (traditional input "
                        "gets a traditional summary), model = as generated")
    p.set_defaults(func=_run_summarize)


def _run_summarize(args) -> int:
    import sys
    import warnings

    from zhtools.models import ModelNotFoundError
    from zhtools.summarize import Summarizer

    try:
        s = Summarizer(args.model, beam=args.beam, mode=args.mode, max_len=args.max_len, alpha=args.alpha,
                       no_repeat_ngram=args.no_repeat_ngram, bf16=args.bf16, script=args.script,
                       pairing=args.pairing)
    except (ModelNotFoundError, ValueError) as e:
        print(f"zhtools summarize: {e}", file=sys.stderr)
        return 2
    warnings.simplefilter("always")
    warnings.formatwarning = lambda msg, *a, **k: f"zhtools summarize: warning: {msg}\n"
    return run_line_job(args, per_line(s))


@command
def _summarize_train(sub) -> None:
    p = _sub(sub, "summarize-train", "train a bidirectional summarizer (`zhtools summarize train`)",
             "  zhtools summarize train --train csl/train.tsv --dev csl/val.tsv --out runs/summ\n"
             "  zhtools summarize train --train t.tsv --dev d.tsv --out runs/l2r --directions l2r\n"
             "  zhtools summarize train --train t.tsv --dev d.tsv --out runs/naive --leak gold "
             "--interact all\n"
             "  zhtools summarize train --train t.tsv --dev d.tsv --out runs/meet --halves\n"
             "  zhtools summarize train --train t.tsv --dev d.tsv --out runs/summ --resume\n"
             "  zhtools summarize train --train t.tsv --dev d.tsv --out runs/summ --average-last 5\n")
    p.add_argument("--train", required=True, help="TSV summary<TAB>text (CSL layout) or with header")
    p.add_argument("--dev", required=True, help="dev TSV (ROUGE-L each epoch, best kept in OUT/best)")
    p.add_argument("--out", required=True)
    p.add_argument("--encoder", default=None, help="HF encoder name or folder (default: shipped)")
    p.add_argument("--epochs", type=float, default=5.0)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--batch-tokens", type=int, default=6144, help="source tokens per batch")
    p.add_argument("--src-len", type=int, default=128)
    p.add_argument("--tgt-len", type=int, default=48)
    p.add_argument("--layers", type=int, default=3, help="decoder layers")
    p.add_argument("--directions", choices=["both", "l2r"], default="both",
                   help="both = bidirectional decoder; l2r = plain baseline")
    p.add_argument("--leak", choices=["none", "gold"], default="none",
                   help="none = masks that hide each target from the other direction; "
                        "gold = naive gold-vs-gold")
    p.add_argument("--interact", choices=["top", "all"], default="top",
                   help="decoder layers with cross-direction attention")
    p.add_argument("--lam", type=float, default=0.5, help="weight of the cross-direction term")
    p.add_argument("--halves", action="store_true",
                   help="also train meet-in-the-middle halves (L2R first half + R2L second half, "
                        "interacting in every layer); bidirectional decoding then meets in the "
                        "middle in ~n/2 steps")
    p.add_argument("--no-copy", action="store_true", help="disable the copy gate")
    p.add_argument("--dev-samples", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--bf16", choices=["auto", "on", "off"], default="off")
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--average-last", type=int, default=0, metavar="N",
                   help="keep the weights of the last N epochs and export their mean (checkpoint "
                        "averaging) to OUT/averaged, scored on dev like every epoch")
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=_run_summarize_train)


def _run_summarize_train(args) -> int:
    import json

    from zhtools.summarize import DecoderConfig, SummTrainConfig, train_summarizer

    bf16 = _threads_bf16(args)
    cfg = SummTrainConfig(
        train=args.train, dev=args.dev, out=args.out, encoder=args.encoder, src_len=args.src_len,
        tgt_len=args.tgt_len, epochs=args.epochs, batch_tokens=args.batch_tokens, lr=args.lr,
        leak=args.leak, directions=args.directions, dev_samples=args.dev_samples, seed=args.seed,
        bf16=bf16, progress=not getattr(args, "quiet", False), max_minutes=args.max_minutes,
        average_last=args.average_last,
        decoder=DecoderConfig(layers=args.layers, lam=args.lam, copy=not args.no_copy,
                              interact="all" if args.halves else args.interact, halves=args.halves))
    res = train_summarizer(cfg, resume=args.resume)
    print(json.dumps({k: res[k] for k in ("step", "done", "best", "eval", "averaged") if k in res},
                     ensure_ascii=False))
    return exit_status(res)
