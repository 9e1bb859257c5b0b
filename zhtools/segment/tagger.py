"""Self-trained fast segmenter: a character tagger distilled from the perturbed-masking segmenter.

The impact segmenter needs 2n-1 encoder passes per n-character sentence. The tagger needs one:
an encoder with a token-classification head predicts, for every character, whether a word
starts there. It is trained on **pseudo-labels** - the impact + PMI segmenter's output on raw,
unlabelled text - so the whole pipeline stays label-free (no gold segmentation anywhere).
Deterministic pre-split (punctuation, numbers, Latin, whitespace) is shared with
:class:`~zhtools.segment.Segmenter`; the tagger only decides boundaries inside Hanzi runs.

    python -m zhtools.segment.tagger --corpus ../shared/data/raw_zh_corpus/news_xwlb-000.txt.gz \
        --out runs/tagger --sentences 8000
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zhtools.models.loader import default_model_path
from zhtools.segment.segmenter import merge_graphemes, presplit, split_measure
from zhtools.text.batching import Batch, epoch_stream, map_batched, pad
from zhtools.text.tokenizer import ZhTokenizer, iter_lines, split_sentences

log = logging.getLogger(__name__)
INFO = "tagger.json"


def word_start_labels(tok: ZhTokenizer, text: str, words: Sequence[str]) -> tuple[list[int], list[int]]:
    """Token ids of ``text`` and a 0/1 label per token: 1 where a word starts."""
    ids, labels, _offsets = _encode_labels(tok, text, words)
    return ids, labels


def _encode_labels(tok: ZhTokenizer, text: str, words: Sequence[str]) -> tuple[list[int], list[int], list]:
    """:func:`word_start_labels` plus the tokens' character offsets."""
    starts, pos = set(), 0
    for w in words:
        starts.add(pos)
        pos += len(w)
    enc = tok.encode(text)
    return list(enc.ids), [1 if s in starts else 0 for s, _e in enc.offsets], list(enc.offsets)


def _sentences(lines: Iterable[str], max_chars: int) -> Iterator[str]:
    for line in lines:
        for s, e in split_sentences(line, max_chars=max_chars):
            t = line[s:e].strip()
            if sum(1 for ch in t if "\u4e00" <= ch <= "\u9fff") >= 4:
                yield t


SHIPPED_TAGGER = "zhtools-tagger-small"
_LOAD_LOCK = threading.Lock()


class Tagger:
    """A trained tagger folder: ``Tagger(DIR).segment_many(texts)``; lossless, picklable.
    ``Tagger()`` loads the shipped ``data/models/zhtools-tagger-small``. ``measure``: as in
    :class:`~zhtools.segment.Segmenter` (numeral cut off a following measure word). ``bf16``:
    bf16 autocast of the forward on CPU (default exact fp32; on CUDA the weights are bf16)."""

    def __init__(self, path: str | os.PathLike | None = None, device: str | None = None,
                 threshold: float = 0.5, budget: int = 8192, measure: bool = True, bf16: bool = False) -> None:
        if path is None:
            path = default_model_path(SHIPPED_TAGGER)
        self.path = str(path)
        self.device = device
        self.threshold = threshold
        self.budget = budget
        self.measure = measure
        self.bf16 = bool(bf16)
        self._loaded = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_loaded": None}

    def _load(self):  # noqa: ANN202
        with _LOAD_LOCK:  # one load, also when threads ask at the same time
            if self._loaded is None:
                from zhtools.models import load_encoder

                self._loaded = load_encoder(self.path, head="token-cls", device=self.device)
        return self._loaded

    def start_probs(self, texts: Sequence[str]) -> list[list[tuple[int, float]]]:
        """Per text: (char offset, P(word starts here)) for every token."""
        enc = self._load()
        tok, model = enc.tokenizer, enc.model
        window = enc.max_tokens - 2
        items = []  # (text index, piece start, ids, offsets)
        for i, t in enumerate(texts):
            for s, e in split_sentences(t, max_chars=window):
                e_ = tok.encode(t[s:e])
                for k in range(0, max(1, len(e_.ids)), window):
                    ids = e_.ids[k : k + window]
                    if ids:
                        items.append((i, s, tok.with_specials(ids), e_.offsets[k : k + window]))

        autocast = self.bf16 and enc.device.type == "cpu"

        def run(b: Batch) -> list[list[float]]:
            x, m = pad([it[2] for it in b.items], tok.pad_id)
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = model(input_ids=x.to(enc.device), attention_mask=m.to(enc.device)).logits
            p = logits.float().softmax(-1)[..., 1].cpu()
            return [p[r, 1 : 1 + len(it[3])].tolist() for r, it in enumerate(b.items)]

        out: list[list[tuple[int, float]]] = [[] for _ in texts]
        probs = map_batched(run, items, lambda it: len(it[2]), self.budget)
        for (i, s, _ids, offs), ps in zip(items, probs):
            out[i].extend((s + o[0], p) for o, p in zip(offs, ps))
        return out

    def segment_many(self, texts: Iterable[str]) -> list[list[str]]:
        texts = list(texts)
        out = []
        for t, pr in zip(texts, self.start_probs(texts)):
            p = dict(pr)  # a word starts where P >= threshold (and wherever no token was scored)
            out.append(words_from_margins(t, {k: -1.0 if p.get(k, 1.0) >= self.threshold else 1.0
                                              for k in _han_inner(t)}, self.measure))
        return out

    def segment(self, text: str) -> list[str]:
        return self.segment_many([text])[0]

    def cut(self, text: str) -> Iterator[str]:
        yield from self.segment(text)


@dataclass
class TaggerConfig:
    corpus: list[str]
    out: str
    teacher: str | None = None  # encoder for the impact segmenter (default shipped)
    base: str | None = None  # encoder to fine-tune as the tagger (default = teacher's)
    layers: int | None = None  # keep the first N layers (speed); None = all
    sentences: int = 8000
    max_chars: int = 64
    epochs: float = 15.0
    lr: float = 5e-4
    batch_tokens: int = 4096
    seed: int = 0
    progress: bool = True
    bf16: bool = False
    teacher_bf16: bool = False  # bf16 autocast for the impact segmenter that labels (CPU)
    label_with: str | None = None  # label with this trained tagger instead (self-training round)
    min_margin: float = 0.0  # ignore pseudo-labels whose |join margin| is below this
    teacher_labels: str | None = None  # an earlier round's pseudo.jsonl to mix with label_with's odds


def sample_sentences(files: Sequence[str], n: int, max_chars: int, seed: int = 0) -> list[str]:
    """``n`` raw sentences drawn round-robin from ``files`` (so every file and domain is
    represented), each file thinned to every ~5th sentence for variety; deterministic."""
    rng = random.Random(seed)
    gens = [_sentences(iter_lines([f]), max_chars) for f in files]
    out: list[str] = []
    while gens and len(out) < n:
        for g in list(gens):
            for s in g:
                if rng.random() < 0.2:
                    out.append(s)
                    break
            else:
                gens.remove(g)
            if len(out) >= n:
                break
    return out


class _TeacherLabeller:
    """Words and join margins from the impact segmenter (impact + PMI + entropy, + the shipped
    tagger with the shipped encoder: :attr:`Segmenter.impact_signals`)."""

    def __init__(self, model: str | None, bf16: bool) -> None:
        from zhtools.segment import Segmenter

        full = Segmenter(model).impact_signals
        self.seg = Segmenter(model, bf16=bf16, signals=full)  # rule "otsu": join iff margin >= 0

    def __call__(self, texts: list[str]) -> list[tuple[list[str], dict[int, float]]]:
        # one pass over the signals: under the otsu rule the words are the margins' >= 0 joins
        return [(words_from_margins(t, m), m) for t, m in zip(texts, self.seg.join_margins(texts))]


class _TaggerLabeller:
    """Words and join margins (log-odds of "no word starts here") from a trained tagger."""

    def __init__(self, path: str) -> None:
        self.tagger = Tagger(path)

    def __call__(self, texts: list[str]) -> list[tuple[list[str], dict[int, float]]]:
        out = []
        for t, probs in zip(texts, self.tagger.start_probs(texts)):
            p = dict(probs)
            m = {k: join_log_odds(p.get(k, 1.0)) for k in _han_inner(t)}
            out.append((words_from_margins(t, m), m))
        return out


def join_log_odds(p_start: float) -> float:
    """log((1 - p) / p) for a word-start probability p, clipped at 1e-6: > 0 means "join"."""
    return math.log(max(1 - p_start, 1e-6) / max(p_start, 1e-6))


def _han_inner(text: str) -> list[int]:
    """Offsets k inside Hanzi runs: the pair (k-1, k) is the model's decision."""
    return [k for s, e, kind in presplit(text) if kind == "han" for k in range(s + 1, e)]


def _read_pseudo(path: Path) -> list[tuple[str, list[str], dict[int, float]]]:
    rows = []
    if path.exists():
        for x in path.read_text(encoding="utf-8").splitlines():
            try:
                r = json.loads(x)
            except json.JSONDecodeError:
                break  # a line cut by a kill
            rows.append((r["text"], r["words"], {int(k): v for k, v in r.get("margins", {}).items()}))
    return rows


def words_from_margins(text: str, margins: dict[int, float], measure: bool = True) -> list[str]:
    """Lossless words: deterministic pre-split runs, Hanzi runs cut where the join margin is < 0
    (and, with ``measure``, after a leading numeral before a measure word: :func:`split_measure`)."""
    words: list[str] = []
    for s, e, kind in presplit(text):
        if kind != "han":
            words.append(text[s:e])
            continue
        cut, run = s, []
        for k in range(s + 1, e):
            if margins.get(k, 0.0) < 0:
                run.append(text[cut:k])
                cut = k
        run.append(text[cut:e])
        words.extend([p for w in run for p in split_measure(w)] if measure else run)
    return merge_graphemes(text, words)


def _mixed_labels(cfg: TaggerConfig) -> list[tuple[str, list[str], dict[int, float]]]:
    """Self-training round: the sentences of an earlier round's ``teacher_labels`` relabelled by
    the sum of the teacher's join margins and the ``label_with`` tagger's log-odds, each divided
    by its standard deviation over the set (equal weights; label-free), in teacher units."""
    base = _read_pseudo(Path(cfg.teacher_labels))[: cfg.sentences]
    texts = [t for t, _w, _m in base]
    odds = [m for _w, m in _TaggerLabeller(cfg.label_with)(texts)] if texts else []
    sd_t = float(np.std([v for _t, _w, m in base for v in m.values()])) or 1.0
    sd_l = float(np.std([v for m in odds for v in m.values()])) or 1.0
    out = []
    for (t, _w, m), lo in zip(base, odds):
        mix = {k: round((v / sd_t + lo.get(k, 0.0) / sd_l) / 2 * sd_t, 3) for k, v in m.items()}
        out.append((t, words_from_margins(t, mix), mix))
    return out


def pseudo_labels(cfg: TaggerConfig) -> list[tuple[str, list[str], dict[int, float]]]:
    """Segment ``cfg.sentences`` raw sentences with the teacher (cached in ``pseudo.jsonl``,
    resumable): (text, words, join margins)."""
    cache = Path(cfg.out) / "pseudo.jsonl"
    done = _read_pseudo(cache)  # resume: the sentence sample is deterministic, so keep what is there
    if len(done) >= cfg.sentences:
        return done[: cfg.sentences]
    if cfg.teacher_labels:
        if not cfg.label_with:
            raise ValueError("teacher_labels needs label_with (the tagger to mix in)")
        out = _mixed_labels(cfg)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps({"text": t, "words": w, "margins": m}, ensure_ascii=False) + "\n"
                               for t, w, m in out), encoding="utf-8")
        tmp.replace(cache)
        return out
    sents = sample_sentences(cfg.corpus, cfg.sentences, cfg.max_chars, cfg.seed)
    if cfg.label_with:
        label: Any = _TaggerLabeller(cfg.label_with)
    else:
        label = _TeacherLabeller(cfg.teacher, cfg.teacher_bf16)
    out = list(done)
    it: Any = range(len(done), len(sents), 256)
    if cfg.progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="pseudo-labels", unit="x256")
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache, "w", encoding="utf-8") as f:
        for t, w, m in done:
            f.write(json.dumps({"text": t, "words": w, "margins": m}, ensure_ascii=False) + "\n")
        for k in it:
            chunk = sents[k : k + 256]
            for t, (w, m) in zip(chunk, label(chunk)):
                m = {p: round(v, 3) for p, v in m.items()}
                out.append((t, w, m))
                f.write(json.dumps({"text": t, "words": w, "margins": m}, ensure_ascii=False) + "\n")
            f.flush()
    return out


def train_tagger(cfg: TaggerConfig, resume: bool = False) -> dict[str, Any]:
    from transformers import AutoModelForTokenClassification

    from zhtools.models import save_model
    from zhtools.models.loader import load_trainable
    from zhtools.train.loop import TrainConfig, Trainer

    data = pseudo_labels(cfg)
    kw: dict[str, Any] = {"num_labels": 2, "id2label": {0: "I", 1: "B"}, "label2id": {"I": 0, "B": 1}}
    if cfg.layers:
        kw["num_hidden_layers"] = cfg.layers
    model, tok = load_trainable(cfg.base or cfg.teacher, AutoModelForTokenClassification, **kw)
    window = getattr(model.config, "max_position_embeddings", 512) - 2
    ex = []
    kept = total = 0
    for t, w, margins in data:
        ids, lab, offs = _encode_labels(tok, t, w)
        if cfg.min_margin > 0:  # drop the teacher's least confident decisions
            for k, (s0, _e) in enumerate(offs):
                mk = margins.get(s0)
                if mk is not None:
                    total += 1
                    if abs(mk) < cfg.min_margin:
                        lab[k] = -100
                    else:
                        kept += 1
        ex.append((tok.with_specials(ids[:window]), [-100] + lab[:window] + [-100]))
    rng = random.Random(cfg.seed)
    rng.shuffle(ex)
    n_dev = max(1, len(ex) // 20)
    dev, train = ex[:n_dev], ex[n_dev:]

    def collate(rows: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
        x, m = pad([r[0] for r in rows], tok.pad_id)
        y, _ = pad([r[1] for r in rows], -100)
        return {"x": x, "m": m, "y": y}

    batches = epoch_stream([len(r[0]) for r in train], cfg.batch_tokens,
                           lambda g: collate([train[k] for k in g]), seed=cfg.seed)
    per_epoch = batches.per_epoch

    def loss_fn(m, b):  # noqa: ANN001, ANN202
        dev_ = next(m.parameters()).device
        logits = m(input_ids=b["x"].to(dev_), attention_mask=b["m"].to(dev_)).logits
        y = b["y"].to(dev_)
        loss = F.cross_entropy(logits.float().view(-1, 2), y.view(-1), ignore_index=-100)
        return loss, {}

    def eval_fn(m) -> dict[str, float]:  # noqa: ANN001
        """Agreement with the teacher's boundaries on held-out pseudo-labelled sentences."""
        b = collate(dev)
        dev_ = next(m.parameters()).device
        pred = m(input_ids=b["x"].to(dev_), attention_mask=b["m"].to(dev_)).logits.argmax(-1).cpu()
        ok = b["y"] != -100
        return {"agreement": float((pred[ok] == b["y"][ok]).float().mean())}

    info = {"teacher": cfg.teacher or "shipped default", "config": asdict(cfg),
            "train_sentences": len(train), "labels": "1 = a word starts at this token"}
    if cfg.min_margin > 0:
        info["kept_inner_labels"] = kept / max(total, 1)
    if cfg.label_with:
        info["labelled_by"] = f"tagger {cfg.label_with}" + (
            f" mixed with the teacher margins of {cfg.teacher_labels}" if cfg.teacher_labels else "")
    else:
        from zhtools.segment import Segmenter

        info["labelled_by"] = "segmenter signals " + "+".join(Segmenter(cfg.teacher).impact_signals)
    teacher_info = (Path(cfg.teacher) if cfg.teacher else default_model_path()) / "pretrain_info.json"
    if teacher_info.exists():  # which encoder checkpoint produced the pseudo-labels
        info["teacher_encoder_steps"] = json.loads(teacher_info.read_text(encoding="utf-8")).get("steps")

    def export_fn(m, out: Path) -> None:  # noqa: ANN001
        save_model(m, tok, out)
        (Path(out) / INFO).write_text(json.dumps(info, ensure_ascii=False, indent=1))

    tcfg = TrainConfig(out=cfg.out, steps=max(1, round(cfg.epochs * per_epoch)), lr=cfg.lr,
                       eval_every=per_epoch, save_every=max(20, per_epoch // 4), seed=cfg.seed,
                       bf16=cfg.bf16, progress=cfg.progress, best_metric="agreement")
    trainer = Trainer(model, tcfg, loss_fn, batches, eval_fn=eval_fn, export_fn=export_fn)
    res = trainer.fit(resume=resume)
    res["best"] = trainer.best
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", nargs="+", required=True, help="raw text files (.txt/.gz) or folders")
    ap.add_argument("--out", required=True)
    ap.add_argument("--teacher", default=None, help="encoder for the impact segmenter (default shipped)")
    ap.add_argument("--layers", type=int, default=None, help="keep the first N encoder layers (default all)")
    ap.add_argument("--sentences", type=int, default=8000)
    ap.add_argument("--epochs", type=float, default=15.0)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--min-margin", type=float, default=0.0,
                    help="ignore pseudo-labels whose |join margin| is below this (teacher's least confident)")
    ap.add_argument("--teacher-bf16", action="store_true", help="bf16 autocast for the labelling segmenter (CPU)")
    ap.add_argument("--label-with", default=None, help="label with this trained tagger (self-training round)")
    ap.add_argument("--teacher-labels", default=None,
                    help="with --label-with: relabel this earlier pseudo.jsonl by mixing its teacher margins "
                         "with the tagger's log-odds (a self-training round)")
    ap.add_argument("--labels-only", action="store_true", help="write pseudo.jsonl and stop")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast while training (CPU with native bf16)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from zhtools.train.pretrain import corpus_files

    cfg = TaggerConfig(corpus=[str(p) for p in corpus_files(a.corpus)], out=a.out, teacher=a.teacher,
                       layers=a.layers, sentences=a.sentences, epochs=a.epochs, lr=a.lr, progress=not a.quiet,
                       teacher_bf16=a.teacher_bf16, label_with=a.label_with, min_margin=a.min_margin,
                       teacher_labels=a.teacher_labels,
                       bf16=a.bf16)
    if a.labels_only:
        print(json.dumps({"pseudo_labelled": len(pseudo_labels(cfg))}))
        return 0
    res = train_tagger(cfg, resume=a.resume)
    print(json.dumps(res, default=str))
    from zhtools.cli_commands import exit_status

    return exit_status(res)


if __name__ == "__main__":
    raise SystemExit(main())
