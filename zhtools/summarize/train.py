"""Training and the user-facing summarizer.

Data: TSV rows ``title<TAB>text`` (CSL / CLGE layout: target in column 0) or, with a header
naming ``summary``/``title`` and ``text``/``content``/``abstract`` columns, those columns.
Training runs on the one loop (:mod:`zhtools.train.loop`); dev ROUGE (character level) is
computed every epoch and the best model is kept in ``OUT/best``.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from zhtools.summarize.model import BiSeq2Seq, DecoderConfig
from zhtools.summarize.search import beam_search
from zhtools.text.batching import Batch, epoch_stream, map_batched, pad
from zhtools.text.tokenizer import ZhTokenizer

log = logging.getLogger(__name__)


def read_pairs(path: str | os.PathLike, target_col: int = 0, text_col: int = 1) -> list[tuple[str, str]]:
    """(text, summary) pairs from a TSV; invalid UTF-8 raises ValueError naming the line."""
    pairs = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{n}: invalid UTF-8 at byte {e.start}") from e
            if not line.strip():
                continue
            cols = line.split("\t")
            low = [c.strip().lower() for c in cols]
            if n == 1 and any(c in low for c in ("summary", "title")):
                target_col = next(low.index(c) for c in ("summary", "title") if c in low)
                text_col = next((low.index(c) for c in ("text", "content", "abstract") if c in low),
                                1 - target_col)
                continue
            if len(cols) <= max(target_col, text_col):
                raise ValueError(f"{path}:{n}: expected summary<TAB>text")
            pairs.append((cols[text_col], cols[target_col]))
    return pairs


def encode_pairs(tok: ZhTokenizer, pairs: Sequence[tuple[str, str]], src_len: int, tgt_len: int):
    srcs = [tok.with_specials(e.ids[: src_len - 2]) for e in tok.encode_batch([p[0] for p in pairs])]
    tgts = [e.ids[: tgt_len - 1] for e in tok.encode_batch([p[1] for p in pairs])]
    return srcs, tgts


def collate(srcs: Sequence[list[int]], tgts: Sequence[list[int]] | None, pad_id: int) -> dict[str, torch.Tensor]:
    x, m = pad(srcs, pad_id)
    out = {"src": x, "src_mask": m.bool()}
    if tgts is not None:
        y, _ = pad([t or [pad_id] for t in tgts], pad_id)
        out["tgt"] = y
        out["tgt_len"] = torch.tensor([len(t) for t in tgts])
    return out


# ---------------------------------------------------------------------------- the summarizer
SCRIPTS = ("auto", "model", "simplified", "traditional")


class Summarizer:
    """``Summarizer(DIR)(texts) -> summaries``; ``mode`` is bidirectional, l2r or r2l.
    ``bf16``: decode under bf16 autocast on CPU (default fp32; on CUDA the model runs as loaded).
    ``script``: ``auto`` writes each summary in its input's script (a model trained on simplified
    text reads traditional input through :mod:`zhtools.text.variants`; its summary of a
    traditional text is converted back with OpenCC ``s2t``), ``model`` leaves the model's output
    as is, ``simplified`` / ``traditional`` convert every summary. ``pairing``: ``index`` or
    ``all`` for the SB-NMT bidirectional beam (:func:`~zhtools.summarize.search.beam_search`)."""

    def __init__(self, model: str | os.PathLike | BiSeq2Seq | None = None, tokenizer: ZhTokenizer | None = None,
                 beam: int = 4, mode: str = "bidirectional", max_len: int = 32, alpha: float = 0.6,
                 src_len: int | None = None, device: str | None = None,
                 no_repeat_ngram: int | None = None, bf16: bool = False, script: str = "auto",
                 pairing: str = "index") -> None:
        if script not in SCRIPTS:
            raise ValueError(f"script must be one of {SCRIPTS}, got {script!r}")
        self.script, self.pairing = script, pairing
        if isinstance(model, BiSeq2Seq):
            if tokenizer is None:
                raise ValueError("pass the tokenizer with a model object")
            self.model, self.tokenizer, meta = model, tokenizer, {}
        else:
            from zhtools.models.loader import pick_device

            path = Path(model) if model is not None else default_summarizer_path()
            if not (path / "summarizer.json").exists():
                from zhtools.models import ModelNotFoundError

                raise ModelNotFoundError(f"no summarizer at {path} (train one with `zhtools summarize train`)")
            self.model, self.tokenizer, meta = BiSeq2Seq.load(path, pick_device(device))
        self.beam, self.mode, self.max_len, self.alpha = beam, mode, max_len, alpha
        self.bf16 = bool(bf16)
        # n-gram blocking: the model folder's recommended value unless given
        self.no_repeat_ngram = int(no_repeat_ngram if no_repeat_ngram is not None
                                   else meta.get("no_repeat_ngram", 0))
        enc_max = getattr(self.model.encoder.config, "max_position_embeddings", 512)
        self.src_len = min(src_len or meta.get("src_len", enc_max), enc_max)
        if mode == "bidirectional" and not self.model.cfg.bidirectional:
            self.mode = "l2r"

    def __call__(self, texts: Sequence[str], batch_tokens: int = 8192) -> list[str]:
        if isinstance(texts, str):
            raise TypeError("pass a list of texts (or use zhtools.summarize(text))")
        tok = self.tokenizer
        encs = tok.encode_batch(list(texts))
        long = [i for i, e in enumerate(encs) if len(e.ids) > self.src_len - 2]
        if long:
            warnings.warn(f"{len(long)} input(s) longer than the encoder window ({self.src_len - 2} "
                          f"tokens) were truncated (first: #{long[0]})", stacklevel=2)
        ids = [tok.with_specials(e.ids[: self.src_len - 2]) for e in encs]
        dev = next(self.model.parameters()).device
        self.model.eval()

        def run(b: Batch) -> list[str]:
            batch = collate(b.items, None, tok.pad_id)
            with torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 and dev.type == "cpu" else nullcontext():
                out = beam_search(self.model, batch["src"].to(dev), batch["src_mask"].to(dev),
                                  beam=self.beam, mode=self.mode, max_len=self.max_len, alpha=self.alpha,
                                  no_repeat_ngram=self.no_repeat_ngram, pairing=self.pairing)
            # Latin words and punctuation copied from the source keep its spelling (case, width)
            return [tok.decode_chars(o, tok.surface_forms(encs[i])) for o, i in zip(out, b.indices)]

        # the budget counts beam rows: each source runs `beam` decoder rows
        out = list(map_batched(run, ids, len, max(batch_tokens // max(1, self.beam), self.src_len)))
        return [self._in_script(s, t) for s, t in zip(out, texts)]

    def _in_script(self, summary: str, text: str) -> str:
        from zhtools.text.variants import convert, looks_traditional

        if self.script == "model" or not summary:
            return summary
        if self.script == "auto":
            return convert(summary, "s2t") if looks_traditional(text) else summary
        return convert(summary, "s2t" if self.script == "traditional" else "t2s")


def default_summarizer_path() -> Path:
    from zhtools.models.loader import DEFAULT_MODEL_DIR

    return Path(DEFAULT_MODEL_DIR) / "zhtools-summarizer-csl"


# ---------------------------------------------------------------------------- training
@dataclass
class SummTrainConfig:
    train: str
    dev: str
    out: str
    encoder: str | None = None  # HF encoder name/folder; default shipped
    src_len: int = 128
    tgt_len: int = 48
    epochs: float = 5.0
    batch_tokens: int = 6144  # source tokens per batch
    lr: float = 3e-4
    warmup: float = 0.05
    leak: str = "none"  # none (no gold leakage) | gold (naive gold-vs-gold)
    directions: str = "both"  # both | l2r (plain baseline)
    label_smoothing: float = 0.1
    dev_samples: int = 300  # dev pairs decoded for the per-epoch ROUGE
    dev_beam: int = 1
    seed: int = 0
    bf16: bool = False
    progress: bool = True
    max_minutes: float | None = None
    save_every: int | None = None
    average_last: int = 0  # keep the last N epochs' weights, export their mean to OUT/averaged
    decoder: DecoderConfig = field(default_factory=DecoderConfig)


def build_model(cfg: SummTrainConfig) -> tuple[BiSeq2Seq, ZhTokenizer]:
    from zhtools.models import load_encoder

    enc = load_encoder(cfg.encoder, device="cpu", dtype=torch.float32)
    encoder = enc.model
    encoder.requires_grad_(True)
    if cfg.decoder.halves and cfg.directions != "both":
        raise ValueError("halves (meet-in-the-middle) training needs directions='both'")
    dcfg = DecoderConfig(**{**asdict(cfg.decoder), "bidirectional": cfg.directions == "both",
                            "max_len": max(cfg.decoder.max_len, cfg.tgt_len + 1)})
    tok = enc.tokenizer
    model = BiSeq2Seq(encoder, dcfg, tok.cls_id, tok.sep_id, tok.pad_id)
    return model.train(), tok


def train_summarizer(cfg: SummTrainConfig, resume: bool = False) -> dict[str, Any]:
    from zhtools.eval.summ import score_summ
    from zhtools.train.loop import TrainConfig, Trainer

    torch.manual_seed(cfg.seed)
    model, tok = build_model(cfg)
    tr = read_pairs(cfg.train)
    dv = read_pairs(cfg.dev)[: cfg.dev_samples]
    srcs, tgts = encode_pairs(tok, tr, cfg.src_len, cfg.tgt_len)
    dsrcs, _ = encode_pairs(tok, dv, cfg.src_len, cfg.tgt_len)

    batches = epoch_stream([len(x) for x in srcs], cfg.batch_tokens,
                           lambda g: collate([srcs[k] for k in g], [tgts[k] for k in g], tok.pad_id),
                           seed=cfg.seed)
    per_epoch = batches.per_epoch

    def loss_fn(m: BiSeq2Seq, b: dict[str, torch.Tensor]):
        dev = next(m.parameters()).device
        return m(b["src"].to(dev), b["src_mask"].to(dev), b["tgt"].to(dev), b["tgt_len"].to(dev),
                 leak=cfg.leak, label_smoothing=cfg.label_smoothing, directions=cfg.directions)

    # dev ROUGE decodes the way the model is meant to be used: meet-in-the-middle models with the
    # bidirectional search (one pair), others greedy L2R unless dev_beam >= 2
    dev_beam = max(cfg.dev_beam, 2) if cfg.decoder.halves else cfg.dev_beam
    mode = "l2r" if cfg.directions != "both" else ("bidirectional" if dev_beam >= 2 else "l2r")

    def eval_fn(m: BiSeq2Seq) -> dict[str, float]:
        s = Summarizer(m, tok, beam=dev_beam, mode=mode, max_len=cfg.tgt_len, src_len=cfg.src_len)
        preds = s([p[0] for p in dv])
        res = score_summ([p[1] for p in dv], preds)
        return {k: 100 * res[k] for k in ("rouge1", "rouge2", "rougeL", "bleu")}

    info = {"src_len": cfg.src_len, "tgt_len": cfg.tgt_len, "leak": cfg.leak, "directions": cfg.directions,
            "train": str(cfg.train), "train_pairs": len(tr)}

    def export_fn(m: BiSeq2Seq, out: Path) -> None:
        m.save(out, tok, info)

    steps = max(1, round(cfg.epochs * per_epoch))
    tcfg = TrainConfig(out=cfg.out, steps=steps, lr=cfg.lr, warmup=cfg.warmup, eval_every=per_epoch,
                       save_every=cfg.save_every or max(10, per_epoch // 4), log_every=10, seed=cfg.seed,
                       bf16=cfg.bf16, progress=cfg.progress, max_minutes=cfg.max_minutes,
                       average_last=cfg.average_last, best_metric="rougeL", extra={"summarizer": {**asdict(cfg), "decoder": asdict(cfg.decoder)}})
    trainer = Trainer(model, tcfg, loss_fn, batches, eval_fn=eval_fn, export_fn=export_fn)
    res = trainer.fit(resume=resume)
    res["best"] = trainer.best
    res["steps_per_epoch"] = per_epoch
    return res
