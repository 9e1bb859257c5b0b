"""BERT-of-Theseus (Xu et al., EMNLP 2020): compress a fine-tuned classifier by progressive
module replacement.

The predecessor's L encoder layers are grouped into k modules of r = L/k consecutive layers.
Each module gets a successor layer (a copy of the predecessor's first k layers by default, or of
evenly spaced layers). During training, every batch draws an independent Bernoulli(p) gate per
module: 1 runs the successor layer, 0 runs the module's r predecessor layers. Only successor
parameters train (the predecessor, pooler and classifier stay frozen); the loss is the task
cross-entropy. Optionally the embedding layer is a replaceable module too (Su's variant), and
optionally (``tune_head``) the pooler/classifier head trains too once p reaches 1, i.e. during
successor fine-tuning (Su's third phase).
Inference runs the successor alone, and :func:`export_successor` writes a plain k-layer HF model.

Schedules: ``constant`` (p for the replacing phase, then p = 1: successor fine-tuning) and
``linear`` (p_t = min(1, slope * t + b)).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zhtools.distill.classify import ClsTrainConfig


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The encoder's layer list of a HF BERT-like model (BERT, RoBERTa, ELECTRA, ...)."""
    base = getattr(model, "base_model", model)
    enc = getattr(base, "encoder", None)
    layers = getattr(enc, "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise TypeError(
            f"{type(model).__name__}: no encoder.layer list (Theseus needs separate layers per "
            "depth, as in BERT/RoBERTa/ELECTRA; ALBERT shares one layer and cannot be replaced)"
        )
    return layers


class Replaceable(nn.Module):
    """A predecessor module (a chain of modules) and the successor module that replaces it."""

    def __init__(self, predecessor: Sequence[nn.Module], successor: nn.Module) -> None:
        super().__init__()
        self.predecessor = nn.ModuleList(predecessor)
        self.successor = successor
        self.use_successor = True

    def forward(self, hidden: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.training or self.use_successor:
            return self.successor(hidden, *args, **kwargs)
        out = hidden
        for k, mod in enumerate(self.predecessor):
            out = mod(out, *args, **kwargs)
            if k < len(self.predecessor) - 1 and isinstance(out, tuple):
                out = out[0]  # older transformers layers return tuples
        return out


class EmbeddingReplaceable(Replaceable):
    """The embedding layer as a replaceable module (predecessor = one embedding module)."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        mod = self.successor if (not self.training or self.use_successor) else self.predecessor[0]
        return mod(*args, **kwargs)


@dataclass
class Schedule:
    """Replacement probability p as a function of the optimizer step."""

    kind: str = "constant"  # constant | linear
    p: float = 0.5  # constant: p during the replacing phase
    replacing_steps: int = 0  # constant: steps before p jumps to 1
    slope: float = 6e-4  # linear: p_t = min(1, slope * t + b)
    b: float = 0.3

    def __call__(self, step: int) -> float:
        if self.kind == "constant":
            return self.p if step < self.replacing_steps else 1.0
        if self.kind == "linear":
            return min(1.0, self.slope * step + self.b)
        raise ValueError(f"unknown schedule {self.kind!r} (constant | linear)")


class Theseus:
    """Wrap a fine-tuned sequence-classification model in place for module replacement.

    ``model`` keeps its HF interface (``model(input_ids=..., attention_mask=...).logits``);
    its encoder layer list is replaced by k :class:`Replaceable` modules.
    """

    def __init__(self, model: nn.Module, k: int, init: str = "first", replace_embeddings: bool = False,
                 seed: int = 0) -> None:
        layers = encoder_layers(model)
        L = len(layers)
        if k < 1 or L % k:
            raise ValueError(f"successor depth {k} must divide the predecessor depth {L}")
        r = L // k
        if init == "first":
            src = list(range(k))
        elif init == "even":
            src = [i * r + r - 1 for i in range(k)]  # the last layer of each module
        else:
            raise ValueError(f"unknown init {init!r} (first | even)")
        self.model = model
        self.k, self.L, self.r, self.init = k, L, r, init
        model.requires_grad_(False)
        mods = [Replaceable([layers[i * r + j] for j in range(r)], copy.deepcopy(layers[src[i]]))
                for i in range(k)]
        base = model.base_model
        base.encoder.layer = nn.ModuleList(mods)
        self.modules: list[Replaceable] = list(mods)
        if replace_embeddings:
            emb = EmbeddingReplaceable([base.embeddings], copy.deepcopy(base.embeddings))
            base.embeddings = emb
            self.modules.insert(0, emb)
        for m in self.modules:
            m.successor.requires_grad_(True)
        self.seed = seed
        self.p = 1.0

    def successor_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.modules for p in m.successor.parameters()]

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters outside the embeddings and the encoder layers (pooler, classifier)."""
        base = self.model.base_model
        inner = {id(p) for p in base.embeddings.parameters()} | {id(p) for p in base.encoder.parameters()}
        return [p for p in self.model.parameters() if id(p) not in inner]

    def predecessor_state(self) -> dict[str, torch.Tensor]:
        """Copies of every frozen tensor (for checking that training leaves them unchanged)."""
        succ = {id(p) for p in self.successor_parameters()}
        return {n: p.detach().clone() for n, p in self.model.named_parameters() if id(p) not in succ}

    def sample(self, p: float, batch_index: int) -> list[bool]:
        """Independent Bernoulli(p) draws, one per module, for micro-batch ``batch_index``.

        The draws are a function of (seed, batch index) only, so a resumed run repeats them.
        """
        self.p = p
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + batch_index)
        draws = (torch.rand(len(self.modules), generator=gen) < p).tolist()
        for m, d in zip(self.modules, draws):
            m.use_successor = bool(d)
        return draws


def export_successor(model: nn.Module) -> nn.Module:
    """A plain HF model of the successor alone (k layers), ready for ``save_pretrained``."""
    out = copy.deepcopy(model)
    base = out.base_model
    layers = base.encoder.layer
    if layers and isinstance(layers[0], Replaceable):
        base.encoder.layer = nn.ModuleList([m.successor for m in layers])
    if isinstance(base.embeddings, Replaceable):
        base.embeddings = base.embeddings.successor
    k = len(base.encoder.layer)
    for i, layer in enumerate(base.encoder.layer):
        for sub in layer.modules():  # keep cache indices consistent with the new depth
            if hasattr(sub, "layer_idx"):
                sub.layer_idx = i
    out.config.num_hidden_layers = k
    out.requires_grad_(False)
    return out.eval()


# ------------------------------------------------------------------------------- training
@dataclass(kw_only=True)
class DistillConfig(ClsTrainConfig):
    teacher: str  # fine-tuned classifier folder (zhtools finetune OUT/best, or any HF one)
    layers: int  # successor depth k
    schedule: str = "constant"
    p: float = 0.5
    replace_frac: float = 0.5  # constant: share of steps before successor fine-tuning (p = 1)
    slope: float | None = None  # linear: default reaches p = 1 at 50% of the steps
    b: float = 0.3
    init: str = "first"
    replace_embeddings: bool = False
    tune_head: bool = False  # train the pooler/classifier head too once p = 1
    kd_alpha: float = 0.0  # > 0: loss = (1 - a) * task loss + a * T^2 * KL(teacher || mixed model)
    kd_temperature: float = 2.0


def load_classifier(path: str):
    """A fine-tuned sequence-classification model (fp32, CPU, train mode) and its tokenizer."""
    from transformers import AutoModelForSequenceClassification

    from zhtools.models.loader import load_trainable

    return load_trainable(path, AutoModelForSequenceClassification)


def distill(cfg: DistillConfig, resume: bool = False) -> dict[str, Any]:
    """Theseus-compress ``cfg.teacher`` to ``cfg.layers`` layers; the best successor on dev
    (``best_metric``) is exported to ``OUT/best`` as a plain k-layer HF model, the last to OUT."""
    from zhtools.distill.classify import prepare, run_classifier_training

    torch.manual_seed(cfg.seed)
    model, tok = load_classifier(cfg.teacher)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    data = prepare(cfg, tok, names)
    th = Theseus(model, cfg.layers, cfg.init, cfg.replace_embeddings, cfg.seed)
    head = th.head_parameters() if cfg.tune_head else []
    for q in head:  # in the optimizer from the start; the schedule hook freezes them while p < 1
        q.requires_grad_(True)

    def hook(trainer) -> None:  # noqa: ANN001
        steps = trainer.cfg.steps
        if cfg.schedule == "constant":
            sched = Schedule("constant", p=cfg.p, replacing_steps=round(cfg.replace_frac * steps))
        else:
            slope = cfg.slope if cfg.slope is not None else (1 - cfg.b) / max(1, 0.5 * steps)
            sched = Schedule("linear", slope=slope, b=cfg.b)
        sched(0)  # validates the kind
        base = trainer.loss_fn

        def loss_fn(m, batch):  # noqa: ANN001, ANN202
            p = sched(trainer.step)
            for q in head:  # tune_head: frozen while replacing, trained in successor fine-tuning
                q.requires_grad_(p >= 1.0)
            if cfg.kd_alpha > 0:  # the predecessor's soft labels: every module on its predecessor path
                m.eval()  # no dropout in the teacher pass ...
                for mod in th.modules:
                    mod.training = True  # ... but Replaceable modules keep obeying their gates
                    mod.use_successor = False
                dev = next(m.parameters()).device
                with torch.no_grad():
                    teacher = m(input_ids=batch["input_ids"].to(dev),
                                attention_mask=batch["attention_mask"].to(dev)).logits.float()
                m.train()
            th.sample(p, trainer.micro)
            if cfg.kd_alpha <= 0:
                loss, metrics = base(m, batch)
                return loss, {**metrics, "p": p}
            seen: list[torch.Tensor] = []  # the mixed model's logits, from the task loss's own forward
            h = m.register_forward_hook(lambda _m, _i, out: seen.append(out.logits))
            try:
                loss, metrics = base(m, batch)
            finally:
                h.remove()
            T = cfg.kd_temperature
            kd = F.kl_div(F.log_softmax(seen[-1].float() / T, -1), F.log_softmax(teacher / T, -1),
                          log_target=True, reduction="batchmean") * T * T
            loss = (1 - cfg.kd_alpha) * loss + cfg.kd_alpha * kd
            return loss, {**metrics, "p": p, "kd": float(kd.detach())}

        trainer.loss_fn = loss_fn

    info = {"distilled_from": str(cfg.teacher), "theseus": {
        "layers": cfg.layers, "schedule": cfg.schedule, "p": cfg.p, "replace_frac": cfg.replace_frac,
        "slope": cfg.slope, "b": cfg.b, "init": cfg.init, "replace_embeddings": cfg.replace_embeddings,
        "tune_head": cfg.tune_head, "kd_alpha": cfg.kd_alpha, "kd_temperature": cfg.kd_temperature}}
    res = run_classifier_training(model, tok, cfg, data, params=th.successor_parameters() + head,
                                  resume=resume, prepare_fn=hook, export_model=export_successor,
                                  info=info)
    res["theseus"] = th
    return res
