"""Sequence classification on the one training loop: TSV data, fine-tuning, prediction.

Serves ``zhtools finetune`` (the teacher, or a shallower model fine-tuned directly) and the
Theseus distiller (:mod:`zhtools.distill.theseus`), which reuses the data, loss and evaluation
here. Losses: plain cross-entropy or logit-adjusted cross-entropy; prediction optionally applies
post-hoc logit adjustment (:mod:`zhtools.train.losses`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from zhtools.text.batching import Batch, epoch_stream, map_batched, pad
from zhtools.text.tokenizer import ZhTokenizer
from zhtools.train.losses import (
    label_log_priors,
    logit_adjusted_cross_entropy,
    posthoc_adjust,
    tune_posthoc_tau,
)

log = logging.getLogger(__name__)
INFO_FILE = "zhtools_cls.json"


# ----------------------------------------------------------------------------------- data
@dataclass
class ClsData:
    """Texts and string labels of one TSV file."""

    texts: list[str]
    labels: list[str]

    def __len__(self) -> int:
        return len(self.texts)


def read_tsv(path: str | os.PathLike) -> ClsData:
    """Read ``label<TAB>text`` rows. A header row naming a ``label`` column (and ``text_a`` or
    ``text``) selects the columns; without a header the label is column 0 and the text column 1.
    Rows with a missing text and invalid UTF-8 raise ``ValueError`` naming the line."""
    texts, labels = [], []
    li, ti = 0, 1
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").lstrip("\ufeff" if n == 1 else "").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{n}: invalid UTF-8 at byte {e.start}") from e
            if not line.strip():
                continue
            cols = line.split("\t")
            if n == 1 and "label" in cols:
                li = cols.index("label")
                ti = next((cols.index(c) for c in ("text_a", "text", "sentence") if c in cols), 1 - li)
                continue
            if len(cols) <= max(li, ti):
                raise ValueError(f"{path}:{n}: expected label<TAB>text, got {len(cols)} column(s)")
            labels.append(cols[li].strip())
            texts.append(cols[ti])
    return ClsData(texts, labels)


def label_order(labels: Sequence[str]) -> list[str]:
    """Sorted label set (numeric labels sorted as numbers)."""
    uniq = set(labels)
    if all(u.lstrip("-").isdigit() for u in uniq):
        return sorted(uniq, key=int)
    return sorted(uniq)


def encode_texts(tok: ZhTokenizer, texts: Sequence[str], max_len: int) -> list[list[int]]:
    """[CLS] ids [SEP], truncated to ``max_len`` tokens (empty text -> [CLS][SEP])."""
    out = []
    for enc in tok.encode_batch(list(texts)):
        out.append(tok.with_specials(enc.ids[: max(0, max_len - 2)]))
    return out


def train_batches(
    ids: list[list[int]], y: list[int], budget: int, seed: int, max_items: int = 256, pad_id: int = 0
) -> Callable[[int], Iterator[dict[str, torch.Tensor]]]:
    """Endless deterministic stream of padded training batches (see :func:`epoch_stream`)."""

    def collate(g: list[int]) -> dict[str, torch.Tensor]:
        x, m = pad([ids[k] for k in g], pad_id)
        return {"input_ids": x, "attention_mask": m, "labels": torch.tensor([y[k] for k in g])}

    return epoch_stream([len(x) for x in ids], budget, collate, seed=seed, max_items=max_items)


# ------------------------------------------------------------------------------- prediction
@torch.no_grad()
def predict_logits(
    model: torch.nn.Module, ids: list[list[int]], budget: int = 8192, progress: bool = False,
    autocast: bool | None = None,
) -> torch.Tensor:
    """Logits for every encoded text (input order), batched under a padded-token budget."""
    dev = next(model.parameters()).device
    was = model.training
    model.eval()
    use_bf16 = autocast if autocast is not None else dev.type == "cuda"
    ctx = torch.autocast(dev.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()

    def run(b: Batch) -> list[torch.Tensor]:
        x, m = pad(b.items, model.config.pad_token_id or 0)
        with ctx:
            out = model(input_ids=x.to(dev), attention_mask=m.to(dev)).logits
        return list(out.float().cpu())

    it = map_batched(run, ids, len, budget)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=len(ids), desc="predict", leave=False)
    res = list(it)
    model.train(was)
    return torch.stack(res) if res else torch.zeros((0, model.config.num_labels))


def evaluate_logits(logits: torch.Tensor, gold: Sequence[str], id2label: Sequence[str],
                    log_prior: torch.Tensor | None = None, tau: float = 0.0) -> dict[str, float]:
    """accuracy / macro_f1 / balanced_accuracy of (optionally post-hoc adjusted) logits."""
    from zhtools.eval.cls import score_cls

    if log_prior is not None and tau:
        logits = posthoc_adjust(logits, log_prior, tau)
    pred = [id2label[i] for i in logits.argmax(-1).tolist()]
    s = score_cls(list(gold), pred)
    return {k: s[k] for k in ("accuracy", "macro_f1", "balanced_accuracy")}


class Classifier:
    """A fine-tuned classifier folder: ``Classifier(DIR)(texts) -> labels``.

    ``posthoc_tau`` > 0 subtracts ``tau * log(prior)`` from the logits (priors saved at training);
    ``"auto"``: the tau tuned on the dev set at training time (``posthoc_tau_dev`` in
    ``zhtools_cls.json``: the one maximising dev balanced accuracy, cross-entropy models only).
    """

    def __init__(self, path: str | os.PathLike, posthoc_tau: float | str = 0.0, max_len: int | None = None,
                 device: str | None = None) -> None:
        from zhtools.models import load_encoder

        enc = load_encoder(path, head="cls", device=device)
        self.model, self.tokenizer = enc.model, enc.tokenizer
        cfg = self.model.config
        self.labels = [cfg.id2label[i] for i in range(cfg.num_labels)]
        info_path = Path(path) / INFO_FILE
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
        self.log_prior = torch.tensor(info["log_prior"]) if "log_prior" in info else None
        if posthoc_tau == "auto":
            if "posthoc_tau_dev" not in info:
                raise ValueError(f"{path} has no dev-tuned post-hoc tau ({INFO_FILE}: trained with an "
                                 "older zhtools or with the logit-adjusted loss); give a number")
            posthoc_tau = float(info["posthoc_tau_dev"])
        elif isinstance(posthoc_tau, str):
            raise ValueError(f"posthoc_tau must be a number or 'auto', got {posthoc_tau!r}")
        if posthoc_tau and self.log_prior is None:
            raise ValueError(f"{path} has no saved label priors ({INFO_FILE}); cannot post-hoc adjust")
        self.tau = posthoc_tau
        self.max_len = max_len or info.get("max_len") or enc.max_tokens

    def logits(self, texts: Sequence[str]) -> torch.Tensor:
        ids = encode_texts(self.tokenizer, texts, self.max_len)
        out = predict_logits(self.model, ids)
        if self.tau and self.log_prior is not None:
            out = posthoc_adjust(out, self.log_prior, self.tau)
        return out

    def __call__(self, texts: Sequence[str]) -> list[str]:
        if not texts:
            return []
        return [self.labels[i] for i in self.logits(texts).argmax(-1).tolist()]


# ------------------------------------------------------------------------------- fine-tuning
@dataclass(kw_only=True)
class ClsTrainConfig:
    """Data and optimisation settings shared by fine-tuning and Theseus distillation."""

    train: str
    dev: str
    out: str
    max_len: int = 128
    epochs: float = 3.0
    batch_tokens: int = 4096
    lr: float = 1e-4
    warmup: float = 0.06
    weight_decay: float = 0.01
    loss: str = "ce"  # ce | la (logit-adjusted)
    tau: float = 1.0
    lookahead: bool = False
    lazy_embeddings: bool = False
    best_metric: str = "accuracy"
    eval_every: int | None = None  # default: once per epoch
    seed: int = 0
    save_every: int | None = None  # default: four checkpoints per epoch
    bf16: bool = False
    progress: bool = True
    max_minutes: float | None = None


@dataclass(kw_only=True)
class FinetuneConfig(ClsTrainConfig):
    model: str | None  # base encoder (name or folder); None = shipped default
    layers: int | None = None  # keep only the first N encoder layers (direct shallow baseline)


def prepare(cfg: ClsTrainConfig, tok: ZhTokenizer, label_names: list[str] | None = None):
    """Read + encode train/dev; returns (train ids, train y, dev ids, dev labels, label names)."""
    tr, dv = read_tsv(cfg.train), read_tsv(cfg.dev)
    if not len(tr):
        raise ValueError(f"{cfg.train}: no training rows")
    names = label_names or label_order(tr.labels)
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted(set(tr.labels) - set(index))
    if unknown:
        raise ValueError(f"training labels {unknown} are not among the model's labels {names}")
    return (encode_texts(tok, tr.texts, cfg.max_len), [index[lab] for lab in tr.labels],
            encode_texts(tok, dv.texts, cfg.max_len), dv.labels, names)


def make_loss(kind: str, log_prior: torch.Tensor, tau: float):
    """loss_fn(model, batch) -> (loss, metrics) for the Trainer: CE or logit-adjusted CE."""
    if kind not in ("ce", "la"):
        raise ValueError(f"unknown loss {kind!r} (ce | la)")

    def loss_fn(model: torch.nn.Module, batch: dict[str, torch.Tensor]):
        dev = next(model.parameters()).device
        y = batch["labels"].to(dev)
        logits = model(input_ids=batch["input_ids"].to(dev),
                       attention_mask=batch["attention_mask"].to(dev)).logits
        if kind == "la":
            loss = logit_adjusted_cross_entropy(logits, y, log_prior, tau)
        else:
            loss = F.cross_entropy(logits.float(), y)
        acc = (logits.argmax(-1) == y).float().mean()
        return loss, {"acc": float(acc)}

    return loss_fn


def run_classifier_training(
    model: torch.nn.Module, tok: ZhTokenizer, cfg: ClsTrainConfig, data, *, params=None,
    resume: bool = False, prepare_fn: Callable[[Any], None] | None = None,
    export_model: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Shared by finetune and distill: build batches/loss/eval/export and run the Trainer.

    ``prepare_fn(trainer)`` runs before fitting (the distiller hooks its replacement schedule
    there); ``export_model(model)`` maps the training model to the model saved (identity by
    default).
    """
    from zhtools.models import save_model
    from zhtools.train.loop import TrainConfig, Trainer

    tr_ids, tr_y, dv_ids, dv_labels, names = data
    log_prior = label_log_priors(tr_y, len(names))
    batches = train_batches(tr_ids, tr_y, cfg.batch_tokens, cfg.seed, pad_id=tok.pad_id)
    steps = max(1, round(cfg.epochs * batches.per_epoch))
    tcfg = TrainConfig(
        out=cfg.out, steps=steps, lr=cfg.lr, weight_decay=cfg.weight_decay, warmup=cfg.warmup,
        lookahead=cfg.lookahead, lazy_embeddings=cfg.lazy_embeddings,
        eval_every=cfg.eval_every or batches.per_epoch, save_every=cfg.save_every or max(20, batches.per_epoch // 4),
        log_every=max(1, min(20, batches.per_epoch // 4)), seed=cfg.seed, bf16=cfg.bf16,
        progress=cfg.progress, max_minutes=cfg.max_minutes, best_metric=cfg.best_metric,
        extra=asdict(cfg),
    )
    meta = {"labels": names, "log_prior": log_prior.tolist(), "max_len": cfg.max_len,
            "loss": cfg.loss, "tau": cfg.tau, "train": str(cfg.train), **(info or {})}

    dv_y = torch.tensor([names.index(lab) if lab in names else -1 for lab in dv_labels])
    tuned: dict[str, float] = {}  # post-hoc tau tuned on dev for the model evaluated last

    def eval_fn(m: torch.nn.Module) -> dict[str, float]:
        logits = predict_logits(m, dv_ids, autocast=cfg.bf16)
        res = evaluate_logits(logits, dv_labels, names)
        if cfg.loss == "ce":  # post-hoc adjusted views of the same logits: given tau, tuned tau
            adj = evaluate_logits(logits, dv_labels, names, log_prior, cfg.tau)
            res.update({f"posthoc_{k}": v for k, v in adj.items()})
            known = dv_y >= 0
            tau, bal = tune_posthoc_tau(logits[known], dv_y[known], log_prior)
            tuned.update(posthoc_tau_dev=tau, posthoc_tau_dev_balanced_accuracy=bal)
            res.update({"posthoc_tau_tuned": tau, "posthoc_tuned_balanced_accuracy": bal})
        return res

    def export_fn(m: torch.nn.Module, out: Path) -> None:
        exported = export_model(m) if export_model else m
        save_model(exported, tok, out)
        (Path(out) / INFO_FILE).write_text(json.dumps({**meta, **tuned}, ensure_ascii=False, indent=1))

    trainer = Trainer(model, tcfg, make_loss(cfg.loss, log_prior, cfg.tau), batches,
                      eval_fn=eval_fn, export_fn=export_fn, params=params)
    if prepare_fn is not None:
        prepare_fn(trainer)
    res = trainer.fit(resume=resume)
    res["best"] = trainer.best
    res["steps_per_epoch"] = batches.per_epoch
    return res


def load_for_finetune(name: str | None, names: list[str], layers: int | None = None):
    """A sequence-classification model initialised from an encoder (fp32, train mode) and its
    tokenizer. ``layers`` keeps only the first N encoder layers."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from zhtools.models.loader import _from_pretrained, _resolve, load_trainable

    kw: dict[str, Any] = {"num_labels": len(names), "id2label": dict(enumerate(names)),
                          "label2id": {n: i for i, n in enumerate(names)}}
    if layers:
        conf = _from_pretrained(AutoConfig, *_resolve(name))
        if layers > conf.num_hidden_layers:
            raise ValueError(f"--layers {layers} > the model's {conf.num_hidden_layers} layers")
        kw["num_hidden_layers"] = layers
    return load_trainable(name, AutoModelForSequenceClassification, **kw)


def finetune(cfg: FinetuneConfig, resume: bool = False) -> dict[str, Any]:
    """Fine-tune an encoder with a classification head on a TSV; saves the best (dev
    ``best_metric``) model to ``OUT/best`` and the final model to ``OUT``."""
    torch.manual_seed(cfg.seed)
    names = label_order(read_tsv(cfg.train).labels)
    model, tok = load_for_finetune(cfg.model, names, cfg.layers)
    data = prepare(cfg, tok, names)
    return run_classifier_training(model, tok, cfg, data, resume=resume)
